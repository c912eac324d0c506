"""Hawkes log-likelihood + gradient throughput: lamp's C kernel (O(N K)) vs the O(N^2) NumPy reference.

python benchmarks/bench_hawkes.py

tick (pip install tick numpydoc: tick parses its attribute docs with numpydoc and fails to
construct its models without it) is the anchor for a scalar decay: ModelHawkesExpKernLogLik
precomputes per-event weights at its first loss/gradient for a fixed decay, then evaluates loss
and gradient from them.  Both are timed: the first evaluation (weights included, what a fit with
a new decay pays) and a later one (weights cached).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import best_paired, best_time, machine, run, table  # noqa: E402

from lamp import _core  # noqa: E402
from lamp._reference import hawkes as ref  # noqa: E402
from lamp.tpp import hawkes_loglik_grad  # noqa: E402


def data(k, n, seed=0):
    rng = np.random.default_rng(seed)
    return (np.sort(rng.uniform(0, n / 10, n)), rng.integers(0, k, n), rng.uniform(0.1, 1, k),
            rng.uniform(0, 0.5, (k, k)) / k, rng.uniform(0.5, 2, (k, k)))


def reps(n):
    """Enough runs for a stable best time: a call on 10,000 events lasts ~20 us."""
    return max(15, 2_000_000 // n)


def times_floor(wall, floor):
    r = wall / floor
    return f"{r:,.1f}x" if r < 10 else f"{r:,.0f}x"


def main():
    rows, notes, lamp_10k = [], [], {}
    for k in (1, 10, 100):
        for n in (10_000, 1_000_000):
            t, m, mu, alpha, beta = data(k, n)
            wall, floor, _ = best_paired(lambda: hawkes_loglik_grad(t, m, mu, alpha, beta, t[-1]),
                                         lambda: _core._hawkes_stream_floor(t, m), repeat=reps(n))
            rows.append([k, f"{n:,}", "lamp C loglik + gradient (K x K beta)", f"{n / wall:,.0f}",
                         times_floor(wall, floor)])
            if k == 1:
                notes.append(f"K = 1, N = {n:,}: lamp {wall / n * 1e9:.2f} ns per event, "
                             f"streaming floor {floor / n * 1e9:.2f} ns per event")
            if n == 10_000:
                lamp_10k[k] = wall
        t, m, mu, alpha, beta = data(k, 10_000)
        grid = np.linspace(0, 1, 20)  # EasyTPP's default loss_integral_num_sample_per_step
        starts, gaps = np.concatenate([[0.0], t[:-1]]), np.diff(t, prepend=0.0)

        def easytpp_grid():  # its compensator: mean intensity on a 20-point grid per interval, times the interval
            points = (starts[:, None] + gaps[:, None] * grid).ravel()
            lam = _core.hawkes_intensity(t, m, mu, alpha, beta, points).sum(axis=1).reshape(len(t), -1)
            return float((lam.mean(axis=1) * gaps).sum())

        wall, _, _ = best_time(easytpp_grid, repeat=1)
        notes.append(f"K = {k}, N = 10,000: lamp loglik + gradient is {wall / lamp_10k[k]:,.0f}x faster than "
                     f"the EasyTPP-style grid compensator alone")
        rows.append([k, "10,000", "EasyTPP-style grid compensator only (20 points per interval, C intensities)",
                     f"{10_000 / wall:,.0f}", ""])
        t, m, mu, alpha, beta = data(k, 1000)
        wall, _, _ = best_time(lambda: ref.loglik(t, m, mu, alpha, beta, t[-1]), repeat=1)
        rows.append([k, "1,000", "NumPy reference loglik only (O(N^2))", f"{1000 / wall:,.0f}", ""])
    more, tick_notes = tick_rows()
    rows += more
    print(f"SIMD width {_core.simd_width()} doubles; events per second ({machine()})\n")
    print(table(["K", "N", "implementation", "events / s", "time / streaming floor"], rows))
    print()
    for line in notes + tick_notes:
        print(line)


def tick_rows():
    try:
        import tick
        from tick.hawkes import ModelHawkesExpKernLogLik
    except ImportError as exc:
        print(f"tick is not installed ({exc}): no tick rows")
        return [], []
    rows, notes = [], []
    decay = 1.3
    for k in (1, 10, 100):
        for n in (10_000, 1_000_000):
            t, m, mu, alpha, _ = data(k, n)
            coeffs = np.concatenate([mu, alpha.ravel()])
            per_type = [t[m == j] for j in range(k)]
            wall, floor, (ll, dmu, dalpha, _) = best_paired(
                lambda: hawkes_loglik_grad(t, m, mu, alpha, decay, t[-1]), lambda: _core._hawkes_stream_floor(t, m),
                repeat=reps(n))
            rows.append([k, f"{n:,}", "lamp C loglik + gradient (scalar beta)", f"{n / wall:,.0f}",
                         times_floor(wall, floor)])

            def tick_first():
                model = ModelHawkesExpKernLogLik(decay).fit(per_type, end_times=t[-1])
                return model, model.loss(coeffs), model.grad(coeffs)

            wall_first, _, (model, loss, grad) = best_time(tick_first, repeat=1)
            # same model: tick's loss is -loglik / n minus the constant K * end_time / n
            assert abs(loss * n + k * t[-1] + ll) < 1e-6 * max(1.0, abs(ll)), (loss * n + k * t[-1], -ll)
            assert np.allclose(grad * n, -np.concatenate([dmu, dalpha.ravel()]), rtol=1e-6, atol=1e-8)
            wall_cached, _, _ = best_time(lambda: (model.loss(coeffs), model.grad(coeffs)), repeat=reps(n))
            rows.append([k, f"{n:,}", f"tick {tick.__version__} loss + grad, first call (weights computed)",
                         f"{n / wall_first:,.0f}", times_floor(wall_first, floor)])
            rows.append([k, f"{n:,}", f"tick {tick.__version__} loss + grad, weights cached",
                         f"{n / wall_cached:,.0f}", times_floor(wall_cached, floor)])
            notes.append(f"K = {k}, N = {n:,}: lamp (scalar beta) is {ratio(wall_cached, wall)} tick's cached "
                         f"evaluation and {ratio(wall_first, wall)} its first call")
    return rows, notes


def ratio(slow, fast):
    """How many times faster `fast` is, as a speed ratio: 2 decimals below 10, else 1."""
    r = slow / fast
    return f"{r:.2f}x" if r < 10 else f"{r:.1f}x"


if __name__ == "__main__":
    run(main)
