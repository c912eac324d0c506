"""BM25 retrieval with time cutoffs: lamp's C index vs bm25s and rank_bm25 on ICEWS14 event texts.

python benchmarks/bench_match.py [--queries 10000]                   # ICEWS14, 90,730 event texts
python benchmarks/bench_match.py --corpus 1000000 [--queries 10000]  # synthetic 1M events

The synthetic corpus draws (subject, relation, object) names from ICEWS14's vocabularies, in time
order over 2,000 timestamps, so term statistics resemble real event texts.

Queries are the texts of real test events (as an LLM's causes would read), each restricted to the
events strictly before its own time.  bm25s has no cutoff: its best workaround here is to retrieve
a larger top-k over the whole corpus and filter by index, doubling k until every query has k hits
before its cutoff (the time of that loop is counted).  rank_bm25 scores every document and the
cutoff is a mask before argpartition.  All three use k1 = 1.2, b = 0.75 and the same tokens.
"""
import argparse
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import best_time, machine, run, table  # noqa: E402

import lamp.datasets  # noqa: E402
from lamp.match import BM25Index  # noqa: E402
from lamp.text import display_name, event_text  # noqa: E402

TOKEN = re.compile(r"[0-9a-z\x80-\uffff]+")


def tokens(text):
    return TOKEN.findall(text.lower())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--corpus", default="icews14", help="'icews14' or a number of synthetic events")
    parser.add_argument("--okapi-queries", type=int, default=50, help="queries timed for rank_bm25 (slow)")
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    store = lamp.datasets.load_icews14()
    names, rels = store.entity_names, store.relation_names
    rng = np.random.default_rng(0)
    if args.corpus == "icews14":
        quads = np.concatenate([s.quadruples() for s in (store.train, store.valid, store.test)])
        quads = quads[np.argsort(quads[:, 3], kind="stable")]
        what = f"ICEWS14 event texts ({len(quads):,} events)"
        first_query = len(store.train)
    else:
        n = int(args.corpus)
        quads = np.stack([rng.integers(0, len(names), n), rng.integers(0, len(rels), n),
                          rng.integers(0, len(names), n), np.sort(rng.integers(0, 2000, n))], axis=1)
        what = f"synthetic event texts ({n:,} events over 2,000 timestamps, ICEWS14 names)"
        first_query = n // 4
    texts = [event_text(display_name(names[s]), display_name(rels[r]), display_name(names[o])) for s, r, o, _ in quads]
    picks = rng.choice(np.arange(first_query, len(quads)), size=args.queries, replace=False)
    queries = [texts[p] for p in picks]
    before = np.searchsorted(quads[:, 3], quads[picks, 3], side="left")
    k = args.k
    rows = []

    index = BM25Index(texts)
    wall, cpu, (ids, _) = best_time(lambda: index.search(queries, k, before=before))
    lamp_rate = len(queries) / wall
    rows.append(["lamp `BM25Index.search` (C, cutoff by binary search)", f"{lamp_rate:,.0f}", f"{cpu / len(queries) * 1e3:.3f}", "1.0x"])

    import bm25s

    corpus_tokens = [tokens(t) for t in texts]
    retriever = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    vocab = {}
    ids_corpus = [[vocab.setdefault(w, len(vocab)) for w in doc] for doc in corpus_tokens]
    retriever.index(bm25s.tokenization.Tokenized(ids=ids_corpus, vocab=vocab), show_progress=False)

    def bm25s_with_cutoff():
        q_ids = [[vocab[w] for w in tokens(q) if w in vocab] for q in queries]
        results = [None] * len(queries)
        todo, kk = list(range(len(queries))), k
        while todo:
            kk = min(kk * 2, len(texts))
            docs, _ = retriever.retrieve(bm25s.tokenization.Tokenized(ids=[q_ids[i] for i in todo], vocab=vocab),
                                         k=kk, show_progress=False, n_threads=1)
            rest = []
            for row, i in zip(docs, todo):
                kept = row[row < before[i]][:k]
                if len(kept) == k or kk == len(texts):
                    results[i] = kept
                else:
                    rest.append(i)
            todo = rest
        return results

    wall, cpu, _ = best_time(bm25s_with_cutoff, repeat=1)
    rows.append(["bm25s (retrieve a larger k, filter by index, repeat)", f"{len(queries) / wall:,.0f}",
                 f"{cpu / len(queries) * 1e3:.3f}", f"{lamp_rate / (len(queries) / wall):.1f}x"])

    from rank_bm25 import BM25Okapi

    okapi = BM25Okapi(corpus_tokens, k1=1.2, b=0.75, epsilon=0.0)
    nok = args.okapi_queries
    sub = queries[:nok]

    def rank_bm25_with_cutoff():
        out = []
        for q, c in zip(sub, before[:nok]):
            scores = okapi.get_scores(tokens(q))[:c]
            top = np.argpartition(-scores, min(k, len(scores) - 1))[:k]
            out.append(top[np.argsort(-scores[top])])
        return out

    wall, cpu, _ = best_time(rank_bm25_with_cutoff, repeat=1)
    rows.append([f"rank_bm25 (score all, mask, argpartition; {nok} queries)", f"{len(sub) / wall:,.0f}",
                 f"{cpu / len(sub) * 1e3:.3f}", f"{lamp_rate / (len(sub) / wall):,.0f}x"])

    print(f"{what}, {len(queries):,} queries, top-{k} before each query's time "
          f"({machine()})\n")
    print(table(["implementation", "queries / s", "CPU ms / query", "lamp speed-up"], rows))
    assert np.all((ids < before[:, None]) | (ids < 0))


if __name__ == "__main__":
    run(main)
