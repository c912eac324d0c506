"""Plain NumPy O(N^2) versions of csrc/hawkes/hawkes.c (the tests' oracle)."""
import numpy as np


def intensity(times, marks, mu, alpha, beta, query_times):
    beta = np.broadcast_to(beta, alpha.shape)
    out = np.tile(np.asarray(mu, float), (len(query_times), 1))
    for q, t in enumerate(query_times):
        past = times < t
        for ti, c in zip(times[past], marks[past]):
            out[q] += alpha[:, c] * beta[:, c] * np.exp(-beta[:, c] * (t - ti))
    return out


def loglik(times, marks, mu, alpha, beta, end_time):
    beta = np.broadcast_to(beta, alpha.shape)
    lam = intensity(times, marks, mu, alpha, beta, times)[np.arange(len(times)), marks]
    compensator = np.sum(mu) * end_time
    for ti, c in zip(times, marks):
        compensator += np.sum(alpha[:, c] * (1 - np.exp(-beta[:, c] * (end_time - ti))))
    return float(np.sum(np.log(lam)) - compensator)
