"""The stages of :class:`lamp.pipeline.Pipeline`, each a function of the pipeline and upstream outputs.

Each stage goes through :meth:`lamp.runs.RunDirectory.stage`, so it is
computed once per distinct input and reused by later runs.
"""
from __future__ import annotations

import numpy as np

from lamp.pipeline import TKG_TASKS, Queries

__all__ = ["select_queries", "history_cutoffs", "random_evidence", "recent_evidence"]


def _subset(n: int, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    if limit is None or limit >= n:
        return np.arange(n)
    return np.sort(rng.choice(n, size=int(limit), replace=False))


def select_queries(pipe) -> dict[str, Queries]:
    """The train, valid and test queries: seeded random subsets of each split, in time order.

    Test: ``query_limit`` queries; train: ``train_query_limit``; valid: a
    quarter of the training count (at least 20).  Knowledge-graph queries are
    the split's quadruples; typed-sequence queries are the last event of each
    sequence (its history is the events before it).
    """
    store = pipe.load_data()
    s = pipe.settings
    rng = np.random.default_rng(int(s["seed"]))
    train_limit = s["train_query_limit"]
    limits = {"train": train_limit, "valid": None if train_limit is None else max(20, int(train_limit) // 4),
              "test": s["query_limit"]}
    out = {}
    for split in ("train", "valid", "test"):
        seqs = getattr(store, split)
        if seqs is None or len(seqs) == 0:
            raise ValueError(f"data set {store.name!r} has no {split} split; the pipeline needs train, valid and "
                             "test")
        if pipe.task in TKG_TASKS:
            quads = seqs.quadruples()
            idx = _subset(len(quads), limits[split], rng)
            events = quads[idx]
            truth = {"object": events[:, 2], "relation": events[:, 1],
                     "pair": events[:, 1] * store.num_entities + events[:, 2]}[pipe.task]
            out[split] = Queries(split, events, seqs.times[idx].astype(np.float64), truth.astype(np.int64))
        else:
            lengths = seqs.lengths
            usable = np.flatnonzero(lengths >= 2)
            seq_idx = usable[_subset(len(usable), limits[split], rng)]
            last = seqs.offsets[seq_idx + 1] - 1
            events = np.stack([seq_idx, last - seqs.offsets[seq_idx], seqs.marks[last], np.zeros_like(last)], axis=1)
            out[split] = Queries(split, events.astype(np.int64), seqs.times[last], seqs.marks[last].astype(np.int64))
    pipe._say("queries: " + ", ".join(f"{k} {len(v)}" for k, v in out.items()))
    return out


def history_cutoffs(stream_times: np.ndarray, query_times: np.ndarray) -> np.ndarray:
    """For each query, the number of stream events strictly before its time (events at the same
    timestamp are not history)."""
    return np.searchsorted(stream_times, query_times, side="left").astype(np.int64)


def random_evidence(cutoffs: np.ndarray, m: int, length: int, seed: int) -> np.ndarray:
    """Ablation: ``length`` events drawn uniformly from each query's past (indices into the stream,
    time-sorted, -1 padded), the same for all ``m`` candidates of a query."""
    rng = np.random.default_rng(seed)
    out = np.full((len(cutoffs), m, length), -1, dtype=np.int64)
    for q, c in enumerate(cutoffs):
        if c == 0:
            continue
        k = min(length, int(c))
        picked = np.sort(rng.choice(int(c), size=k, replace=False))
        out[q, :, length - k:] = picked
    return out


def recent_evidence(stream_subjects: np.ndarray, stream_objects: np.ndarray, cutoffs: np.ndarray,
                    candidate_entities: np.ndarray, length: int, num_entities: int) -> np.ndarray:
    """Ablation: for each candidate, the ``length`` most recent past events involving one of its
    entities (``candidate_entities`` int (Q, M, E), -1 ignored), time-sorted, -1 padded."""
    entities = np.concatenate([stream_subjects, stream_objects])
    events_all = np.concatenate([np.arange(len(stream_subjects))] * 2)
    order = np.lexsort((events_all, entities))  # by entity, then by time (stream index)
    entity_of, event_of = entities[order], events_all[order]
    starts = np.searchsorted(entity_of, np.arange(num_entities + 1), side="left")
    q_count, m, _ = candidate_entities.shape
    out = np.full((q_count, m, length), -1, dtype=np.int64)
    for q in range(q_count):
        for j in range(m):
            pools = []
            for e in set(int(x) for x in candidate_entities[q, j] if x >= 0):
                events = event_of[starts[e]:starts[e + 1]]
                events = events[events < cutoffs[q]]
                pools.append(events[-length:])
            if not pools:
                continue
            merged = np.unique(np.concatenate(pools))[-length:]
            out[q, j, length - len(merged):] = merged
    return out
