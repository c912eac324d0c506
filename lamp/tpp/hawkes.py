"""Multivariate exponential Hawkes process: intensities, exact log-likelihood and gradients (C kernels).

    lambda_k(t) = mu[k] + sum_{t_i < t} alpha[k, c_i] * beta[k, c_i] * exp(-beta[k, c_i] * (t - t_i))

``alpha[k, j]`` is the total excitation of type ``k`` by one event of type ``j``
(its integral, tick's convention); ``beta`` is a float or a (K, K) array.
Intensities are left limits (an event exactly at ``t`` does not count at
``t``) and simultaneous events do not excite each other.  Every function costs
O(N K) per sequence with O(K^2) memory (lazily decayed per-pair states).
"""
from __future__ import annotations

import numpy as np

from lamp import _core

__all__ = ["hawkes_intensity", "hawkes_loglik", "hawkes_loglik_grad"]


def _params(mu, alpha, beta):
    mu = np.asarray(mu, dtype=np.float64)
    if mu.ndim != 1 or len(mu) == 0:
        raise ValueError(f"mu must be a non-empty 1-D array of base rates, got shape {mu.shape}")
    k = len(mu)
    alpha = np.asarray(alpha, dtype=np.float64)
    if alpha.shape != (k, k):
        raise ValueError(f"alpha must have shape ({k}, {k}), got {alpha.shape}")
    scalar = np.ndim(beta) == 0
    if scalar:
        beta = float(beta)
        if not np.isfinite(beta) or beta <= 0:
            raise ValueError(f"beta must be finite and > 0, got {beta}")
        beta_matrix = np.full((k, k), beta)
    else:
        beta_matrix = np.asarray(beta, dtype=np.float64)
        if beta_matrix.shape != (k, k):
            raise ValueError(f"beta must be a float or have shape ({k}, {k}), got {beta_matrix.shape}")
    return mu, alpha, beta_matrix, scalar


def _events(times, marks):
    times = np.asarray(times)
    if times.dtype.kind not in "fiu":
        raise TypeError(f"times must be numbers, got dtype {times.dtype}")
    marks = np.asarray(marks)
    if marks.size and marks.dtype.kind not in "iu":
        raise TypeError(f"marks must be integer types, got dtype {marks.dtype}")
    if times.ndim != 1 or marks.ndim != 1 or len(times) != len(marks):
        raise ValueError(f"times and marks must be 1-D of the same length, got {times.shape} and {marks.shape}")
    if len(times) == 0:
        raise ValueError("the sequence is empty: times and marks have no events")
    return np.ascontiguousarray(times, dtype=np.float64), np.ascontiguousarray(marks, dtype=np.int64)


def hawkes_intensity(times, marks, mu, alpha, beta, query_times) -> np.ndarray:
    """Intensities of every type at ``query_times`` (left limits): an array (Q, K)."""
    times, marks = _events(times, marks)
    mu, alpha, beta_matrix, _ = _params(mu, alpha, beta)
    query_times = np.asarray(query_times, dtype=np.float64)
    if query_times.ndim != 1:
        raise ValueError(f"query_times must be 1-D, got shape {query_times.shape}")
    return _core.hawkes_intensity(times, marks, mu, alpha, beta_matrix, query_times)


def hawkes_loglik(times, marks, mu, alpha, beta, end_time) -> float:
    """``sum_i log lambda_{c_i}(t_i) - sum_k integral_0^end_time lambda_k`` (compensator in closed form)."""
    times, marks = _events(times, marks)
    mu, alpha, beta_matrix, _ = _params(mu, alpha, beta)
    return _core.hawkes_loglik(times, marks, mu, alpha, beta_matrix, float(end_time), False)


def hawkes_loglik_grad(times, marks, mu, alpha, beta, end_time):
    """``(loglik, dmu, dalpha, dbeta)``: exact gradients; ``dbeta`` has the shape of ``beta`` (a float
    for a scalar decay)."""
    times, marks = _events(times, marks)
    mu, alpha, beta_matrix, scalar = _params(mu, alpha, beta)
    ll, dmu, dalpha, dbeta = _core.hawkes_loglik(times, marks, mu, alpha, beta_matrix, float(end_time), True)
    return ll, dmu, dalpha, float(dbeta.sum()) if scalar else dbeta
