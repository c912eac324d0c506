"""Dense cosine top-k with time cutoffs: lamp's DenseIndex (blocked sgemm + k-heaps in C) vs NumPy
(matrix product + mask + argpartition, in blocks of queries).

python benchmarks/bench_dense.py [--corpus 200000] [--queries 2000]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import best_time, machine, table  # noqa: E402

from lamp.match import DenseIndex  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    corpus = rng.normal(size=(args.corpus, args.dim)).astype(np.float32)
    queries = rng.normal(size=(args.queries, args.dim)).astype(np.float32)
    before = rng.integers(args.corpus // 2, args.corpus + 1, size=args.queries)
    k = args.k
    index = DenseIndex(corpus)
    wall, _, (ids, _) = best_time(lambda: index.search(queries, k, before=before), repeat=2)
    lamp_rate = args.queries / wall
    unit = index.vectors
    qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)

    def numpy_search():
        out = np.empty((len(qn), k), dtype=np.int64)
        cols = np.arange(len(unit))
        for s in range(0, len(qn), 256):
            scores = qn[s:s + 256] @ unit.T
            scores[cols[None, :] >= before[s:s + 256, None]] = -np.inf
            top = np.argpartition(-scores, k, axis=1)[:, :k]
            order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
            out[s:s + 256] = np.take_along_axis(top, order, axis=1)
        return out

    wall_np, _, ids_np = best_time(numpy_search, repeat=2)
    agree = np.mean(ids[:, 0] == ids_np[:, 0])
    rows = [["lamp `DenseIndex.search` (C, blocked sgemm + heaps)", f"{lamp_rate:,.0f}", "1.0x"],
            ["NumPy (matmul per 256 queries, mask, argpartition)", f"{args.queries / wall_np:,.0f}",
             f"{lamp_rate / (args.queries / wall_np):.2f}x"]]
    print(f"{args.corpus:,} x {args.dim} float32 corpus, {args.queries:,} queries with cutoffs, top-{k}; "
          f"top-1 agreement {agree:.3f}; {machine()}\n")
    print(table(["implementation", "queries / s", "lamp speed-up"], rows))


if __name__ == "__main__":
    main()
