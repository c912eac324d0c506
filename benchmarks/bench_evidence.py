"""End-to-end evidence assembly for the ICEWS14 object task, against the authors' approach.

python benchmarks/bench_evidence.py [--causes 5] [--candidates 20] [--authors-sample 30]

Every ICEWS14 test query in both directions ((s, r, ?) and (o, r^-1, ?): 14,742 queries) x 20
candidates x 5 causes = 1,474,200 cause texts.  For each cause lamp retrieves the top K = 2 past
events strictly before the query's timestamp, then merges the hits of each candidate's causes,
de-duplicates on (s, r, o, t), sorts by time and keeps the last L = 10 (``assemble_evidence``).

The causes stand in for LLM output: the text of a random real event that shares the candidate's
entity (or any random event), so retrieval does real work.  Two matching methods are timed:
BM25 (the pipeline's default; the whole stage from texts) and dense cosine over MiniLM embeddings
(search and assembly; the cause vectors are noisy copies of event embeddings, because embedding
1.5M texts with MiniLM costs about two hours on 2 cores, which is reported separately).

The authors' approach is a Python loop, per cause, over every earlier event, computing the cosine
similarity of two embeddings, then sorting: it is timed on a random subsample of causes and
extrapolated linearly (its cost is proportional to the number of earlier events per cause, which
the subsample draws from the same distribution).
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine, run, table  # noqa: E402

from lamp.abduction import Abductor  # noqa: E402
from lamp.datasets import load_icews14  # noqa: E402
from lamp.match import BM25Index, DenseIndex, assemble_evidence  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--candidates", type=int, default=20)
    parser.add_argument("--causes", type=int, default=5)
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--length", type=int, default=10)
    parser.add_argument("--authors-sample", type=int, default=30)
    parser.add_argument("--no-dense", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    store = load_icews14()
    ab = Abductor(store, None)
    quads, times = store.stream()
    texts = [ab.event_text(q) for q in quads]
    test = store.test.quadruples()
    nq = 2 * len(test)
    qtimes = np.concatenate([test[:, 3], test[:, 3]]).astype(float)
    cutoff = np.searchsorted(times, qtimes, side="left")
    m, c, k, L = args.candidates, args.causes, args.k, args.length
    n_causes = nq * m * c
    # a stand-in cause: a real earlier event (before the query's cutoff) picked at random
    owner_cut = np.repeat(cutoff, m * c)
    source = (rng.random(n_causes) * owner_cut).astype(np.int64)
    cause_texts = [texts[i] for i in source]
    print(f"ICEWS14: {len(texts):,} events; {nq:,} test queries x {m} candidates x {c} causes = "
          f"{n_causes:,} cause texts; top-{k} per cause, evidence length {L}; {machine()}\n")
    rows = []

    t0 = time.perf_counter()
    index = BM25Index(texts)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    ids, _ = index.search(cause_texts, k, before=owner_cut)
    t_search = time.perf_counter() - t0
    t0 = time.perf_counter()
    ev = assemble_evidence(ids.reshape(nq * m, c * k), quads[:, 0], quads[:, 1], quads[:, 2], times, L)
    t_asm = time.perf_counter() - t0
    assert np.all(ids.reshape(nq * m * c, k).max(axis=1) < owner_cut)
    total_bm25 = t_build + t_search + t_asm
    rows.append(["lamp BM25 (index build + search + assembly, C)", f"{t_build:.2f} + {t_search:.2f} + {t_asm:.2f}",
                 f"{total_bm25:.1f}", "measured, all"])
    print(f"evidence rows filled: {np.mean((ev >= 0).sum(axis=1)):.1f} events per candidate on average")

    emb = None
    if not args.no_dense:
        from lamp.embed import MiniLMEmbedder, corpus_embeddings

        cache = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".cache", "embeddings")
        emb = corpus_embeddings(texts, MiniLMEmbedder(), cache, say=print)
        dense = DenseIndex(emb)
        qv = emb[source] + rng.normal(scale=0.05, size=(n_causes, emb.shape[1])).astype(np.float32)
        t0 = time.perf_counter()
        ids_d, _ = dense.search_vectors(qv, k, before=owner_cut)
        t_dsearch = time.perf_counter() - t0
        t0 = time.perf_counter()
        assemble_evidence(ids_d.reshape(nq * m, c * k), quads[:, 0], quads[:, 1], quads[:, 2], times, L)
        t_dasm = time.perf_counter() - t0
        rows.append(["lamp dense MiniLM cosine (search + assembly, C; embeddings given)",
                     f"{t_dsearch:.2f} + {t_dasm:.2f}", f"{t_dsearch + t_dasm:.1f}", "measured, all"])
        total_dense = t_dsearch + t_dasm
    else:
        total_dense = None
        emb = np.random.default_rng(1).normal(size=(len(texts), 384)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)

    # the authors' approach: per cause, a Python loop over every earlier event, then a sort
    sample = rng.choice(n_causes, size=args.authors_sample, replace=False)
    t0 = time.perf_counter()
    for i in sample:
        q = emb[source[i]]
        sims = []
        for j in range(int(owner_cut[i])):
            e = emb[j]
            sims.append((float(np.dot(q, e) / (np.linalg.norm(q) * np.linalg.norm(e))), j))
        sims.sort(key=lambda x: -x[0])     # descending (the authors sorted ascending: least similar)
        _ = sims[:k]
    per = (time.perf_counter() - t0) / len(sample)
    mean_cut = owner_cut[sample].mean()
    scaled = per / mean_cut * owner_cut.mean()
    authors_total = scaled * n_causes
    rows.append([f"authors' loop (Python, cosine per earlier event; {len(sample)} causes timed)",
                 f"{per * 1e3:.0f} ms per cause", f"{authors_total:,.0f} (= {authors_total / 86400:.1f} days)",
                 "extrapolated"])
    print(table(["approach", "seconds (parts)", "total seconds", "how"], rows))
    print(f"\nlamp BM25 is {authors_total / total_bm25:,.0f}x faster than the authors' loop on this stage")
    if total_dense is not None:
        print(f"lamp dense is {authors_total / total_dense:,.0f}x faster than the authors' loop on this stage")


if __name__ == "__main__":
    run(main)
