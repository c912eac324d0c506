"""Former name of :mod:`lamp.tpp.kg_hawkes` (the knowledge-graph Hawkes proposer); kept so that
``from lamp.tpp.kg import KGHawkes`` keeps working."""
from lamp.tpp.kg_hawkes import KGHawkes, RecurrencyBaseline, feature_names, time_aware_filter

__all__ = ["KGHawkes", "RecurrencyBaseline", "feature_names", "time_aware_filter"]
