"""Multivariate exponential Hawkes process: intensities, exact log-likelihood and gradients (C kernels).

    lambda_k(t) = mu[k] + sum_{t_i < t} alpha[k, c_i] * beta[k, c_i] * exp(-beta[k, c_i] * (t - t_i))

``alpha[k, j]`` is the total excitation of type ``k`` by one event of type ``j``
(its integral, tick's convention); ``beta`` is a float or a (K, K) array.
Intensities are left limits (an event exactly at ``t`` does not count at
``t``) and simultaneous events do not excite each other.  Every function costs
O(N K) per sequence with O(K^2) memory (lazily decayed per-pair states).
"""
from __future__ import annotations

import math

import numpy as np

from lamp import _core
from lamp.arrays import as_int64

__all__ = ["HawkesProcess", "hawkes_intensity", "hawkes_loglik", "hawkes_loglik_grad", "hawkes_loglik_batch"]


def _params(mu, alpha, beta, matrix=True):
    """Checked ``(mu, alpha, beta, scalar)``; a scalar beta comes back as a (K, K) matrix unless
    ``matrix=False`` (the C functions take a float too)."""
    if isinstance(beta, float) and type(mu) is np.ndarray and type(alpha) is np.ndarray:  # noqa: E721
        k = len(mu)
        if (mu.dtype == np.float64 and alpha.dtype == np.float64 and mu.ndim == 1 and k
                and alpha.shape == (k, k) and math.isfinite(beta) and beta > 0):
            # the common case, without conversions (they cost more than the kernel on short sequences)
            return mu, alpha, np.full((k, k), beta) if matrix else beta, True
    mu = np.asarray(mu, dtype=np.float64)
    if mu.ndim != 1 or len(mu) == 0:
        raise ValueError(f"mu must be a non-empty 1-D array of base rates, got shape {mu.shape}")
    k = len(mu)
    alpha = np.asarray(alpha, dtype=np.float64)
    if alpha.shape != (k, k):
        raise ValueError(f"alpha must have shape ({k}, {k}), got {alpha.shape}")
    # isinstance first: np.ndim on a float costs more than the kernel on a short sequence
    scalar = isinstance(beta, (float, int, np.floating, np.integer)) or np.ndim(beta) == 0
    if scalar:
        beta = float(beta)
        if not math.isfinite(beta) or beta <= 0:
            raise ValueError(f"beta must be finite and > 0, got {beta}")
        beta_matrix = np.full((k, k), beta) if matrix else beta
    else:
        beta_matrix = np.asarray(beta, dtype=np.float64)
        if beta_matrix.shape != (k, k):
            raise ValueError(f"beta must be a float or have shape ({k}, {k}), got {beta_matrix.shape}")
    return mu, alpha, beta_matrix, scalar


def _events(times, marks):
    if (type(times) is np.ndarray and type(marks) is np.ndarray and times.dtype == np.float64  # noqa: E721
            and marks.dtype == np.int64 and times.ndim == 1 and times.shape == marks.shape and len(times)
            and times.flags.c_contiguous and marks.flags.c_contiguous):
        return times, marks  # already what the kernels take: skip the conversions (µs per call)
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
    return np.ascontiguousarray(times, dtype=np.float64), as_int64(marks, "marks")


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
    mu, alpha, beta_matrix, _ = _params(mu, alpha, beta, matrix=False)
    return _core.hawkes_loglik(times, marks, mu, alpha, beta_matrix, float(end_time), False)


def hawkes_loglik_grad(times, marks, mu, alpha, beta, end_time):
    """``(loglik, dmu, dalpha, dbeta)``: exact gradients; ``dbeta`` has the shape of ``beta`` (a float
    for a scalar decay)."""
    times, marks = _events(times, marks)
    mu, alpha, beta_matrix, scalar = _params(mu, alpha, beta, matrix=False)
    ll, dmu, dalpha, dbeta = _core.hawkes_loglik(times, marks, mu, alpha, beta_matrix, float(end_time), True)
    return ll, dmu, dalpha, _scalar_sum(dbeta) if scalar else dbeta


def _scalar_sum(a):
    return a.item() if a.size == 1 else float(a.sum())


def hawkes_loglik_batch(data, mu, alpha, beta, end_times=None, grad: bool = False):
    """Log-likelihood summed over the sequences of an :class:`~lamp.data.EventSequences` in one C call.

    ``end_times`` (one per sequence) default to each sequence's last time.
    With ``grad=True`` returns ``(loglik, dmu, dalpha, dbeta)`` like
    :func:`hawkes_loglik_grad`.  An error names the sequence.
    """
    if not (hasattr(data, "offsets") and hasattr(data, "times") and hasattr(data, "marks")):
        raise TypeError(f"data must be EventSequences (times, marks, offsets), got {type(data).__name__}")
    mu, alpha, beta_matrix, scalar = _params(mu, alpha, beta)
    offsets = as_int64(data.offsets, "data.offsets", whole_floats=True)
    if end_times is None:
        lengths = np.diff(offsets)
        end_times = np.where(lengths > 0, data.times[np.maximum(offsets[1:] - 1, 0)], 0.0)
    out = _core.hawkes_loglik_batch(data.times, data.marks, offsets, mu, alpha, beta_matrix,
                                    np.asarray(end_times, dtype=np.float64), bool(grad))
    if not grad:
        return out
    ll, dmu, dalpha, dbeta = out
    return ll, dmu, dalpha, _scalar_sum(dbeta) if scalar else dbeta


class HawkesProcess:
    """A multivariate exponential Hawkes process for typed event sequences.

    Parameters
    ----------
    num_types : int
        K.
    decay : float or (K, K) array, optional
        A fixed decay ``beta``; by default one scalar decay is fitted with the other parameters.
    l2, l1 : float
        L2 and L1 penalties on ``alpha`` (per event of the training data; with
        ``alpha >= 0`` the L1 penalty is the smooth ``l1 * sum(alpha)``).
    relative_time : bool
        Measure every sequence from its own first event (default False: from
        time 0).  Use it for data in absolute time (e.g. days since 1970),
        where the base rate would otherwise be integrated over decades before
        a sequence starts.  It applies to ``fit``, ``loglik`` and
        ``propose_batch``/``propose_times``.

    Notes
    -----
    ``fit`` maximises the log-likelihood with SciPy's L-BFGS-B (bounds: mu > 0,
    alpha >= 0, beta > 0) using the exact C gradient; ``sample_next`` and
    ``simulate`` use Ogata thinning with the exact bound (the intensity only
    decays between events), seeded and reproducible.
    """

    def __init__(self, num_types: int, decay=None, l2: float = 0.0, l1: float = 0.0, relative_time: bool = False):
        if not isinstance(num_types, (int, np.integer)) or num_types < 1:
            raise ValueError(f"num_types must be a positive integer, got {num_types!r}")
        self.num_types = int(num_types)
        self.fixed_decay = None
        if decay is not None:
            _, _, self.fixed_decay, _ = _params(np.ones(self.num_types), np.zeros((self.num_types,) * 2), decay)
        if l2 < 0 or l1 < 0:
            raise ValueError(f"penalties must be >= 0, got l2={l2}, l1={l1}")
        self.l2, self.l1 = float(l2), float(l1)
        self.relative_time = bool(relative_time)
        self.mu = self.alpha = self.beta = None
        self.fit_result: dict = {}

    def _sequences(self, dataset):
        if hasattr(dataset, "offsets") and hasattr(dataset, "times"):
            seqs = [(dataset.times[b:e], dataset.marks[b:e])
                    for b, e in zip(dataset.offsets[:-1], dataset.offsets[1:]) if e > b]
        else:
            seqs = [(np.asarray(t, float), np.asarray(m)) for t, m in dataset if len(t)]
        if self.relative_time:
            seqs = [(t - t[0], m) for t, m in seqs]
        return seqs

    def fit(self, dataset, end_times=None) -> "HawkesProcess":
        """Maximum-likelihood fit on ``dataset`` (an EventSequences, or a list of (times, marks)).

        ``end_times`` (one per sequence) default to each sequence's last time.
        """
        from scipy.optimize import minimize

        seqs = self._sequences(dataset)
        if not seqs:
            raise ValueError("the dataset has no events")
        if end_times is not None and self.relative_time:
            raise ValueError("end_times cannot be combined with relative_time=True (each sequence ends at its "
                             "last event)")
        ends = [t[-1] for t, _ in seqs] if end_times is None else list(end_times)
        if len(ends) != len(seqs):
            raise ValueError(f"end_times has {len(ends)} entries for {len(seqs)} non-empty sequences")
        k = self.num_types
        n_events = sum(len(t) for t, _ in seqs)
        span = sum(max(e, 1e-12) for e in ends)
        fit_beta = self.fixed_decay is None
        gaps = np.concatenate([np.diff(t) for t, _ in seqs if len(t) > 1] or [np.ones(1)])
        x0 = np.concatenate([np.full(k, n_events / (2 * k * span)), np.full(k * k, 0.1 / k),
                             [1.0 / max(np.mean(gaps), 1e-9)] if fit_beta else []])

        def unpack(x):
            beta = np.full((k, k), x[-1]) if fit_beta else self.fixed_decay
            return x[:k], x[k:k + k * k].reshape(k, k), beta

        def objective(x):
            mu, alpha, beta = unpack(x)
            total, g_mu, g_alpha, g_beta = 0.0, np.zeros(k), np.zeros((k, k)), 0.0
            for (t, m), end in zip(seqs, ends):
                ll, dmu, dalpha, dbeta = _core.hawkes_loglik(np.ascontiguousarray(t, dtype=np.float64),
                                                             np.ascontiguousarray(m, dtype=np.int64), mu, alpha, beta,
                                                             float(end), True)
                total += ll
                g_mu += dmu
                g_alpha += dalpha
                g_beta += dbeta.sum()
            value = -total / n_events + self.l2 * float((alpha ** 2).sum()) + self.l1 * float(alpha.sum())
            grad = np.concatenate([-g_mu / n_events, (-g_alpha / n_events + 2 * self.l2 * alpha + self.l1).ravel(),
                                   [-g_beta / n_events] if fit_beta else []])
            return value, grad

        bounds = [(1e-10, None)] * k + [(0.0, None)] * (k * k) + ([(1e-6, None)] if fit_beta else [])
        res = minimize(objective, x0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 1000})
        self.mu, self.alpha, self.beta = unpack(res.x)
        self.fit_result = {"converged": bool(res.success), "message": str(res.message),
                           "loglik_per_event": -float(res.fun), "iterations": int(res.nit)}
        return self

    def _require_fitted(self):
        if self.mu is None:
            raise RuntimeError("the process has no parameters: call fit(...) or set_params(...) first")

    def set_params(self, mu, alpha, beta) -> "HawkesProcess":
        """Use given parameters (checked like the kernels' arguments)."""
        mu, alpha, beta_matrix, _ = _params(mu, alpha, beta)
        if len(mu) != self.num_types:
            raise ValueError(f"mu has {len(mu)} types, the process has {self.num_types}")
        self.mu, self.alpha, self.beta = mu, alpha, beta_matrix
        return self

    def loglik(self, dataset, end_times=None) -> float:
        """Total log-likelihood of ``dataset``."""
        self._require_fitted()
        seqs = self._sequences(dataset)
        ends = [t[-1] for t, _ in seqs] if end_times is None else list(end_times)
        return float(sum(hawkes_loglik(t, m, self.mu, self.alpha, self.beta, e) for (t, m), e in zip(seqs, ends)))

    def intensity(self, times, marks, query_times) -> np.ndarray:
        self._require_fitted()
        return hawkes_intensity(times, marks, self.mu, self.alpha, self.beta, query_times)

    def sample_next(self, times, marks, n: int = 1, seed: int = 0, t_start: float | None = None):
        """``n`` independent draws of the next event after the history: (times (n,), marks (n,))."""
        self._require_fitted()
        times = np.ascontiguousarray(times, dtype=np.float64)
        marks = as_int64(marks, "marks")
        start = float(times[-1]) if t_start is None and len(times) else float(t_start or 0.0)
        return _core.hawkes_sample_next(times, marks, self.mu, self.alpha, self.beta, start, int(n), int(seed))

    def simulate(self, end_time: float, seed: int = 0, max_events: int = 1_000_000):
        """A whole sequence on ``[0, end_time]``: (times, marks)."""
        self._require_fitted()
        t, m = _core.hawkes_simulate(self.mu, self.alpha, self.beta, float(end_time), int(max_events), int(seed))
        return t.copy(), m.copy()

    def propose(self, times, marks, m: int, n_samples: int = 2000, seed: int = 0):
        """Top-``m`` next types with their probabilities, and the expected next time.

        Probabilities and the expected time are Monte-Carlo estimates from
        ``n_samples`` exact thinning draws.
        """
        if not 1 <= m <= self.num_types:
            raise ValueError(f"m must be in 1..{self.num_types}, got {m}")
        t, k = self.sample_next(times, marks, n_samples, seed)
        probs = np.bincount(k, minlength=self.num_types) / n_samples
        order = np.argsort(-probs, kind="stable")[:m]
        return order, probs[order], float(t.mean())

    # ------------------------------------------------------------------ batched proposals (the typed pipeline)

    def _history(self, seqs, s: int, i: int):
        b = int(seqs.offsets[s])
        times = np.ascontiguousarray(seqs.times[b:b + i], dtype=np.float64)
        origin = float(times[0]) if self.relative_time else 0.0
        return times - origin, np.ascontiguousarray(seqs.marks[b:b + i], dtype=np.int64), origin

    def propose_batch(self, seqs, queries, m: int, n_samples: int = 200, seed: int = 0):
        """Top-``m`` next types, their probabilities and the predicted next time for every query.

        The proposer contract of the typed pipeline (shared with
        :class:`lamp.easytpp.EasyTPPProposer`).  Query ``(s, i)`` asks for
        event ``i`` of sequence ``s`` given events ``0..i-1``.  Types are
        ranked by ``lambda_k(t) / sum_j lambda_j(t)`` at the event's own time
        ``t`` (the type of an event known to happen at ``t``; exact, no
        sampling); the predicted time is the mean of ``n_samples`` exact
        thinning draws (seeded).

        Returns
        -------
        types : int64 (Q, m)
        scores : float64 (Q, m)
            Probabilities, best first.
        next_times : float64 (Q,)
        """
        from lamp.tpp.contract import check_queries

        self._require_fitted()
        q = check_queries(seqs, queries, m, self.num_types)
        types = np.zeros((len(q), m), dtype=np.int64)
        scores = np.zeros((len(q), m), dtype=np.float64)
        next_times = np.zeros(len(q), dtype=np.float64)
        for row, (s, i) in enumerate(q):
            times, marks, origin = self._history(seqs, s, i)
            t = float(seqs.times[int(seqs.offsets[s]) + i]) - origin
            lam = _core.hawkes_intensity(times, marks, self.mu, self.alpha, self.beta, np.array([t]))[0]
            probs = lam / lam.sum()
            order = np.argsort(-probs, kind="stable")[:m]
            types[row], scores[row] = order, probs[order]
            draws, _ = _core.hawkes_sample_next(times, marks, self.mu, self.alpha, self.beta, float(times[-1]),
                                                int(n_samples), int(seed) + row)
            next_times[row] = float(draws.mean()) + origin
        return types, scores, next_times

    def propose_times(self, seqs, queries, m: int, seed: int = 0):
        """``m`` candidate next events per query, drawn by exact thinning, most probable time first.

        Returns
        -------
        times : float64 (Q, m)
            Sampled next times (absolute, like ``seqs.times``).
        types : int64 (Q, m)
            The type drawn with each time.
        log_density : float64 (Q, m)
            ``log(lambda(t) exp(-(Lambda(t) - Lambda(t_last))))``, the log
            density of the next time at each sample; rows are sorted by it,
            highest first.
        """
        from lamp.tpp.contract import check_queries

        self._require_fitted()
        q = check_queries(seqs, queries, 1, self.num_types)
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
            raise ValueError(f"m must be a positive integer, got {m!r}")
        times_out = np.zeros((len(q), m), dtype=np.float64)
        types_out = np.zeros((len(q), m), dtype=np.int64)
        dens_out = np.zeros((len(q), m), dtype=np.float64)
        for row, (s, i) in enumerate(q):
            times, marks, origin = self._history(seqs, s, i)
            last = float(times[-1])
            draws, kinds = _core.hawkes_sample_next(times, marks, self.mu, self.alpha, self.beta, last, int(m),
                                                    int(seed) + row)
            base = _core.hawkes_loglik(times, marks, self.mu, self.alpha, self.beta, last, False)
            lam = _core.hawkes_intensity(times, marks, self.mu, self.alpha, self.beta, draws).sum(axis=1)
            comp = np.array([base - _core.hawkes_loglik(times, marks, self.mu, self.alpha, self.beta, float(t), False)
                             for t in draws])
            dens = np.log(lam) - comp
            order = np.argsort(-dens, kind="stable")
            times_out[row], types_out[row], dens_out[row] = draws[order] + origin, kinds[order], dens[order]
        return times_out, types_out, dens_out

    def log_density_of_next(self, seqs, queries, times) -> np.ndarray:
        """Log density of event ``i`` of sequence ``s`` happening at ``times[j]`` (any type), for each query
        ``(s, i)`` given events ``0..i-1``: ``log lambda(t) - integral of lambda from the last history event to t``."""
        self._require_fitted()
        times = np.asarray(times, dtype=np.float64)
        out = np.zeros(len(queries))
        for row, (s, i) in enumerate(as_int64(queries, "queries")):
            hist_times, marks, origin = self._history(seqs, int(s), int(i))
            t = float(times[row]) - origin
            last = float(hist_times[-1])
            lam = _core.hawkes_intensity(hist_times, marks, self.mu, self.alpha, self.beta, np.array([t])).sum()
            base = _core.hawkes_loglik(hist_times, marks, self.mu, self.alpha, self.beta, last, False)
            comp = base - _core.hawkes_loglik(hist_times, marks, self.mu, self.alpha, self.beta, t, False)
            out[row] = np.log(max(lam, 1e-300)) - comp
        return out

    def save(self, path) -> None:
        from lamp.checkpoint import save_checkpoint

        self._require_fitted()
        save_checkpoint(path, "HawkesProcess", 1, {"num_types": self.num_types, "l2": self.l2, "l1": self.l1,
                                                   "relative_time": self.relative_time},
                        mu=self.mu, alpha=self.alpha, beta=self.beta)

    @classmethod
    def load(cls, path) -> "HawkesProcess":
        from lamp.checkpoint import load_checkpoint

        header, arrays = load_checkpoint(path, "HawkesProcess", 1, ("mu", "alpha", "beta"))
        model = cls(header["num_types"], l2=header["l2"], l1=header.get("l1", 0.0),
                    relative_time=header.get("relative_time", False))
        return model.set_params(arrays["mu"], arrays["alpha"], arrays["beta"])
