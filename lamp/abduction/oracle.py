"""The oracle abducer: what a perfect abducer would answer, in the reply format of each kind of data.

It reads which candidate is true, so what it gives is a ceiling of the proposer, matching and ranker,
never a result (the pipeline labels its row ``oracle_ceiling``).  For a true effect it names real earlier
events most related to it; for any other effect it invents events.
"""
from __future__ import annotations

import numpy as np

from lamp.abduction.base import BaseAbductor
from lamp.abduction.kg import Abductor
from lamp.abduction.reviews import ReviewAbductor

__all__ = ["oracle_replies"]


def oracle_replies(abductor: BaseAbductor, effects, is_true, split: str = "test", seed: int = 0,
                   num_causes: int = 3) -> list[str]:
    """The oracle's reply to each effect of ``split`` (``is_true``: a flag per effect)."""
    if isinstance(abductor, Abductor):
        return _kg_replies(abductor, np.asarray(effects), is_true, seed, num_causes)
    if isinstance(abductor, ReviewAbductor):
        return _review_replies(abductor, np.asarray(effects), is_true, split, seed, num_causes)
    raise TypeError(f"no oracle for {type(abductor).__name__}")


def _kg_replies(ab: Abductor, effects: np.ndarray, is_true, seed: int, num_causes: int) -> list[str]:
    """True effect (s, r, o, t): its ``num_causes`` most related real earlier events (sharing its subject or
    object; the same pair first, then the same relation, then its object; most recent first).  Any other
    effect: invented events (random entities and relations)."""
    store = ab.store
    quads, times = store.stream()
    rng = np.random.default_rng(seed)
    entities = np.concatenate([quads[:, 0], quads[:, 2]])
    rows = np.concatenate([np.arange(len(quads))] * 2)
    order = np.lexsort((rows, entities))
    ent_sorted, row_sorted = entities[order], rows[order]
    starts = np.searchsorted(ent_sorted, np.arange(store.num_entities + 1))
    out = []
    for effect, true in zip(effects, is_true):
        s, r, o, t = int(effect[0]), int(effect[1]), int(effect[2]), float(effect[3])
        if true:
            pool = np.unique(np.concatenate([row_sorted[starts[e]:starts[e + 1]] for e in {s, o}]))
            pool = pool[times[pool] < t]
            ev = quads[pool]
            pair = ((ev[:, 0] == s) & (ev[:, 2] == o)) | ((ev[:, 0] == o) & (ev[:, 2] == s))
            score = 4 * pair + 2 * (ev[:, 1] == r) + ((ev[:, 0] == o) | (ev[:, 2] == o))
            picked, seen = [], set()
            for i in np.lexsort((-times[pool], -score)):
                key = tuple(ev[i, :3])
                if key not in seen:
                    seen.add(key)
                    picked.append((*ev[i, :3], times[pool[i]]))
                if len(picked) == num_causes:
                    break
            causes = sorted(picked, key=lambda c: c[3])
        else:
            causes = [(int(rng.integers(store.num_entities)), int(rng.integers(store.num_relations)),
                       int(rng.integers(store.num_entities)), t - float(rng.uniform(0.0, ab.window)))
                      for _ in range(num_causes)]
        out.append(ab.numbered([ab.render_event(c) for c in causes]))
    return out


def _review_replies(ab: ReviewAbductor, effects: np.ndarray, is_true, split: str, seed: int,
                    num_causes: int) -> list[str]:
    """True effect (sequence, index, type, time): its sequence's earlier reviews (the candidate's category
    first, then the most recent).  Any other effect: invented reviews."""
    seqs = getattr(ab.store, split)
    rng = np.random.default_rng(seed)
    out = []
    for effect, true in zip(effects, is_true):
        s, j, mark, t = int(effect[0]), int(effect[1]), int(effect[2]), float(effect[3])
        if true:
            b = int(seqs.offsets[s])
            history = np.arange(b, b + j)
            same = seqs.marks[history] == mark
            picked = history[np.lexsort((-history, ~same))][:num_causes]
            items = [ab.review_text(seqs, int(i)) for i in sorted(picked)]
        else:
            items = [f"category: {ab.types[int(rng.integers(len(ab.types)))]}\ntitle: Invented item\n"
                     f"time: {ab._time(t - float(rng.uniform(1.0, 30.0)))}\nsummary: nothing that happened"
                     for _ in range(num_causes)]
        out.append(ab.numbered(items))
    return out
