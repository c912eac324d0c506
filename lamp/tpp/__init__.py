"""Temporal point processes: the proposers of LAMP's first stage."""
from lamp.tpp.hawkes import (HawkesProcess, hawkes_intensity, hawkes_loglik, hawkes_loglik_batch,
                              hawkes_loglik_grad)
from lamp.tpp.kg_hawkes import KGHawkes, RecurrencyBaseline
from lamp.tpp.scores import ScoresProposer, save_scores

__all__ = ["HawkesProcess", "KGHawkes", "RecurrencyBaseline", "ScoresProposer", "save_scores", "hawkes_intensity", "hawkes_loglik", "hawkes_loglik_batch",
           "hawkes_loglik_grad"]
