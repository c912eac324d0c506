"""Temporal point processes: the proposers of LAMP's first stage."""
from lamp.tpp.kg import KGHawkes, RecurrencyBaseline

__all__ = ["KGHawkes", "RecurrencyBaseline"]
