"""Hawkes log-likelihood + gradient throughput: lamp's C kernel (O(N K)) vs the O(N^2) NumPy reference.

python benchmarks/bench_hawkes.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import best_time, machine, table  # noqa: E402

from lamp import _core  # noqa: E402
from lamp._reference import hawkes as ref  # noqa: E402
from lamp.tpp import hawkes_loglik_grad  # noqa: E402


def data(k, n, seed=0):
    rng = np.random.default_rng(seed)
    return (np.sort(rng.uniform(0, n / 10, n)), rng.integers(0, k, n), rng.uniform(0.1, 1, k),
            rng.uniform(0, 0.5, (k, k)) / k, rng.uniform(0.5, 2, (k, k)))


def main():
    rows = []
    for k in (1, 10, 100):
        for n in (10_000, 1_000_000):
            t, m, mu, alpha, beta = data(k, n)
            wall, _, _ = best_time(lambda: hawkes_loglik_grad(t, m, mu, alpha, beta, t[-1]), repeat=3)
            floor, _, _ = best_time(lambda: _core._hawkes_stream_floor(t, m), repeat=3)
            rows.append([k, f"{n:,}", "lamp C loglik + gradient (K x K beta)", f"{n / wall:,.0f}",
                         f"{wall / floor:,.0f}x"])
        t, m, mu, alpha, beta = data(k, 10_000)
        grid = np.linspace(0, 1, 20)  # EasyTPP's default loss_integral_num_sample_per_step
        starts, gaps = np.concatenate([[0.0], t[:-1]]), np.diff(t, prepend=0.0)

        def easytpp_grid():  # its compensator: mean intensity on a 20-point grid per interval, times the interval
            points = (starts[:, None] + gaps[:, None] * grid).ravel()
            lam = _core.hawkes_intensity(t, m, mu, alpha, beta, points).sum(axis=1).reshape(len(t), -1)
            return float((lam.mean(axis=1) * gaps).sum())

        wall, _, _ = best_time(easytpp_grid, repeat=1)
        rows.append([k, "10,000", "EasyTPP-style grid compensator only (20 points per interval, C intensities)",
                     f"{10_000 / wall:,.0f}", ""])
        t, m, mu, alpha, beta = data(k, 1000)
        wall, _, _ = best_time(lambda: ref.loglik(t, m, mu, alpha, beta, t[-1]), repeat=1)
        rows.append([k, "1,000", "NumPy reference loglik only (O(N^2))", f"{1000 / wall:,.0f}", ""])
    print(f"events per second ({machine()})\n")
    print(table(["K", "N", "implementation", "events / s", "time / streaming floor"], rows))


if __name__ == "__main__":
    main()
