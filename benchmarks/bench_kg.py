"""KG proposer throughput: lamp's C scoring of all candidates vs the same scoring in vectorized NumPy.

python benchmarks/bench_kg.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import best_time, machine, run, table  # noqa: E402

import lamp.datasets  # noqa: E402
from lamp.tpp import KGHawkes  # noqa: E402



def numpy_scores(model, hist_q, hist_t, query):
    """The same intensities as the C kernel, recomputed from the raw history with NumPy masks."""
    s, r, _, t = query
    R, E = model.num_relations, model.num_entities
    before = hist_t < t
    q, ht = hist_q[before], hist_t[before]
    heads = np.concatenate([q[:, 0], q[:, 2]])
    rels = np.concatenate([q[:, 1], q[:, 1] + R])
    tails = np.concatenate([q[:, 2], q[:, 0]])
    times = np.concatenate([ht, ht])
    inv = r + R if r < R else r - R
    w = model.weights
    scores = np.full(E, w[0]) + w[1] * np.bincount(tails, minlength=E)
    for k, rate in enumerate(model.rates):
        decay = np.exp(-rate * (t - times))
        wk = w[2 + 5 * k: 7 + 5 * k]
        for j, mask in enumerate([(heads == s) & (rels == r), (heads == s) & (rels == inv), heads == s,
                                  rels == r, np.ones(len(heads), bool)]):
            scores += wk[j] * np.bincount(tails[mask], weights=decay[mask], minlength=E)
    return scores


def main():
    store = lamp.datasets.load_icews14()
    model = KGHawkes(half_lives=(1, 30, 365)).fit(store)
    quads = store.test.quadruples()
    rows = []
    for n in (1000, len(quads)):
        q = quads[:n]
        wall, cpu, _ = best_time(lambda: model.propose(q, m=20))
        rows.append(["lamp C (`KGHawkes.propose`, m=20)", n, f"{n / wall:,.0f}", "1.0x"])
    hist_q, hist_t = store.stream()
    sub = quads[:50]
    wall_np, _, np_scores = best_time(lambda: [numpy_scores(model, hist_q, hist_t, x) for x in sub], repeat=1)
    ids, scores = model.propose(sub, m=20)
    agree = all(np.allclose(np.sort(s)[::-1][:20], sc) for s, sc in zip(np_scores, scores))
    c_rate = float(rows[-1][2].replace(",", ""))
    rows.append(["NumPy (masks over the history per query)", len(sub), f"{len(sub) / wall_np:,.0f}",
                 f"{c_rate / (len(sub) / wall_np):,.0f}x slower"])
    print(f"ICEWS14 object queries scored over all {store.num_entities:,} candidates ({machine()}); "
          f"NumPy top-20 scores equal C's: {agree}\n")
    print(table(["implementation", "queries", "queries / s", "C speed-up"], rows))
    # the costs other pages quote: the default fit (half-life sets chosen on valid), the filtered evaluation,
    # and the pair task (all R x E (relation, object) pairs)
    wall_fit, _, default = best_time(lambda: KGHawkes().fit(store), repeat=1)
    print(f"\nKGHawkes().fit(store) (half-life sets chosen on valid, L-BFGS-B with C gradients): {wall_fit:.1f} s")
    n_eval = 2 * len(quads)
    wall_eval, _, metrics = best_time(lambda: default.evaluate(store), repeat=1)
    print(f"evaluate(store) ({n_eval:,} object queries, both directions, filtered ranks over all candidates): "
          f"{wall_eval:.1f} s, {n_eval / wall_eval:,.0f} queries / s, MRR {metrics['mrr']:.3f}")
    wall_pair, _, _ = best_time(lambda: default.propose(quads, task="pair", m=100))
    print(f"pair task propose ({len(quads):,} test queries over all {store.num_relations * store.num_entities:,} "
          f"(relation, object) pairs, m=100): {len(quads) / wall_pair:,.0f} queries / s")


if __name__ == "__main__":
    run(main)
