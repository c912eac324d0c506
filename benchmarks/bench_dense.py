"""Dense cosine top-k with time cutoffs: lamp's DenseIndex (blocked sgemm + k-heaps in C) against NumPy
(matrix product + mask + argpartition, in blocks of queries) and faiss-cpu exact search.

python benchmarks/bench_dense.py --corpus icews14 [--queries 10000]   # real MiniLM embeddings of ICEWS14
python benchmarks/bench_dense.py --corpus 1000000 [--queries 10000]   # synthetic 1M x 384 corpus

Cutoffs are those of a temporal knowledge graph: the corpus is in time order, events share timestamps,
and a query sees the events strictly before its own timestamp.  faiss has no per-query cutoff; its best
exact workaround (timed here) sorts the queries by cutoff, adds the corpus to an IndexFlatIP in time
order, and searches each group of queries sharing a cutoff once the index holds exactly its prefix.
faiss without any cutoff (wrong results, less work) is shown as a lower bound on its cost.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import best_time, machine, run, table  # noqa: E402

from lamp.match import DenseIndex  # noqa: E402


def icews14_corpus(n_queries: int, rng):
    """MiniLM embeddings of the ICEWS14 event texts (computed once, cached under benchmarks/.cache)."""
    from lamp.abduction import Abductor
    from lamp.datasets import load_icews14
    from lamp.embed import MiniLMEmbedder, corpus_embeddings

    store = load_icews14()
    ab = Abductor(store, None)
    quads, times = store.stream()
    cache = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".cache", "embeddings")
    texts = [ab.event_text(q) for q in quads]
    computed = []
    t0 = time.perf_counter()
    corpus = corpus_embeddings(texts, MiniLMEmbedder(), cache,
                               say=lambda line: (print(line), computed.append(line)))
    if computed:  # not cached yet: the cost of embedding, once
        wall = time.perf_counter() - t0
        distinct = len(set(texts))
        print(f"MiniLMEmbedder: {distinct:,} distinct texts embedded in {wall:.0f} s, "
              f"{distinct / wall:,.0f} texts per second")
    # queries: embeddings of real events (standing in for cause texts) at real query times
    pick = rng.integers(len(corpus) // 4, len(corpus), size=n_queries)
    queries = corpus[pick] + rng.normal(scale=0.02, size=(n_queries, corpus.shape[1])).astype(np.float32)
    before = np.searchsorted(times, times[pick], side="left")
    return corpus, queries, before, f"ICEWS14 MiniLM embeddings ({len(corpus):,} x {corpus.shape[1]})"


def synthetic_corpus(n: int, d: int, n_queries: int, rng, timestamps: int = 2000):
    corpus = rng.normal(size=(n, d)).astype(np.float32)
    stamp = np.sort(rng.integers(0, timestamps, size=n))
    qstamp = rng.integers(timestamps // 4, timestamps, size=n_queries)
    before = np.searchsorted(stamp, qstamp, side="left")
    queries = rng.normal(size=(n_queries, d)).astype(np.float32)
    return corpus, queries, before, f"synthetic {n:,} x {d} float32 corpus over {timestamps:,} timestamps"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", default="icews14", help="'icews14' or a number of synthetic events")
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-numpy", action="store_true", help="skip the NumPy anchor (slow at 1M)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    if args.corpus == "icews14":
        corpus, queries, before, what = icews14_corpus(args.queries, rng)
    else:
        corpus, queries, before, what = synthetic_corpus(int(args.corpus), args.dim, args.queries, rng)
    k, nq = args.k, args.queries
    index = DenseIndex(corpus)
    unit = index.vectors
    qn = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    wall, cpu, (ids, scores) = best_time(lambda: index.search_vectors(queries, k, before=before), repeat=args.repeat)
    rows = [["lamp `DenseIndex.search` (C, blocked sgemm + heaps)", f"{nq / wall:,.0f}", "1.0x", "exact"]]

    def add(name, fn, check=True):
        w, _, out = best_time(fn, repeat=args.repeat)
        note = ""
        if check:  # equal top-1 similarity (duplicated texts make exact ties, broken differently)
            top = np.einsum("ij,ij->i", qn, unit[np.maximum(out[:, 0], 0)])
            same = np.mean(np.abs(top - scores[:, 0]) < 1e-5)
            note = f"same top-1 similarity for {same:.1%}"
        rows.append([name, f"{nq / w:,.0f}", f"{(nq / wall) / (nq / w):.2f}x", note])

    if not args.no_numpy:
        def numpy_search():
            out = np.empty((nq, k), dtype=np.int64)
            cols = np.arange(len(unit))
            for s in range(0, nq, 256):
                sc = qn[s:s + 256] @ unit.T
                sc[cols[None, :] >= before[s:s + 256, None]] = -np.inf
                top = np.argpartition(-sc, k, axis=1)[:, :k]
                order = np.argsort(-np.take_along_axis(sc, top, axis=1), axis=1)
                out[s:s + 256] = np.take_along_axis(top, order, axis=1)
            return out

        add("NumPy (matmul per 256 queries, mask, argpartition)", numpy_search)
    try:
        import faiss
    except ImportError:
        faiss = None
        print("faiss-cpu is not installed (pip install faiss-cpu): no faiss rows")
    if faiss is not None:
        def faiss_grouped():
            out = np.empty((nq, k), dtype=np.int64)
            order = np.argsort(before, kind="stable")
            cuts, starts = np.unique(before[order], return_index=True)
            ends = np.append(starts[1:], nq)
            flat = faiss.IndexFlatIP(unit.shape[1])
            added = 0
            for cut, s, e in zip(cuts, starts, ends):
                if cut > added:
                    flat.add(unit[added:cut])
                    added = cut
                rows_ = order[s:e]
                if cut == 0:
                    out[rows_] = -1
                    continue
                _, found = flat.search(qn[rows_], min(k, int(cut)))
                out[rows_, :found.shape[1]] = found
                out[rows_, found.shape[1]:] = -1
            return out

        def faiss_plain():
            flat = faiss.IndexFlatIP(unit.shape[1])
            flat.add(unit)
            return flat.search(qn, k)[1]

        add(f"faiss {faiss.__version__} IndexFlatIP, exact: grow in time order, search per cutoff group",
            faiss_grouped)
        add("faiss IndexFlatIP with no cutoff at all (wrong answers; lower bound on its cost)",
            faiss_plain, check=False)
    print(f"{what}, {nq:,} queries, each restricted to the events before its timestamp "
          f"({len(np.unique(before)):,} distinct cutoffs), top-{k}; {machine()}\n")
    print(table(["implementation", "queries / s", "lamp speed-up", "check"], rows))


def timed_main():
    t0 = time.time()
    main()
    print(f"\n({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    run(timed_main)
