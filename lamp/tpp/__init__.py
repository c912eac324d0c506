"""Temporal point processes: the proposers of LAMP's first stage."""
from lamp.tpp.hawkes import (HawkesProcess, hawkes_intensity, hawkes_loglik, hawkes_loglik_batch,
                              hawkes_loglik_grad)
from lamp.tpp.kg_hawkes import KGHawkes, RecurrencyBaseline

__all__ = ["HawkesProcess", "KGHawkes", "RecurrencyBaseline", "hawkes_intensity", "hawkes_loglik", "hawkes_loglik_batch",
           "hawkes_loglik_grad"]
