"""Plain Python versions of csrc/retrieval/bm25.c and csrc/retrieval/evidence.c (the tests' oracle)."""
import math
import re

import numpy as np

_TOKEN = re.compile(rb"[0-9A-Za-z\x80-\xff]+")


def tokenize(text, stop=()):
    data = text.encode("utf-8", errors="replace") if isinstance(text, str) else text
    stop = {s.lower() for s in stop}
    return [t.lower().decode("latin-1") for t in _TOKEN.findall(data) if t.lower().decode("latin-1") not in stop]


def bm25_scores(docs, query, k1=1.2, b=0.75, stop=()):
    """BM25 score of every document for one query (a float array)."""
    toks = [tokenize(d, stop) for d in docs]
    n = len(docs)
    avgdl = sum(len(t) for t in toks) / n
    df = {}
    for t in toks:
        for w in set(t):
            df[w] = df.get(w, 0) + 1
    scores = np.zeros(n)
    for w in tokenize(query, stop):
        if w not in df:
            continue
        idf = math.log(1 + (n - df[w] + 0.5) / (df[w] + 0.5))
        for d, t in enumerate(toks):
            tf = t.count(w)
            if tf:
                scores[d] += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(t) / avgdl))
    return scores


def top_k(scores, k, before):
    """Best-first indices among documents < before; ties to the larger index; -1 padding."""
    cands = [d for d in range(min(before, len(scores))) if scores[d] > 0]
    cands.sort(key=lambda d: (-scores[d], -d))
    ids = cands[:k] + [-1] * (k - len(cands[:k]))
    return np.array(ids), np.array([scores[d] if d >= 0 else -np.inf for d in ids])


def evidence(hits, quads, length):
    """Merge, de-duplicate on (s, r, o, t), sort by time, keep the last `length`."""
    seen = {}
    for h in hits:
        if h < 0:
            continue
        key = tuple(quads[h])
        if key not in seen or h < seen[key]:
            seen[key] = h
    order = sorted(seen.values(), key=lambda h: (quads[h][3], quads[h][0], quads[h][1], quads[h][2], h))
    kept = order[-length:]
    return kept + [-1] * (length - len(kept))
