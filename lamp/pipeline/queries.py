"""Stage 0: the train, valid and test queries of a run."""
from __future__ import annotations

import numpy as np

from lamp.errors import DataError
from lamp.pipeline.tasks import SPLITS, TKG_TASKS, Queries, StageContext

__all__ = ["select_queries", "history_cutoffs"]


def _subset(n: int, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    if limit is None or limit >= n:
        return np.arange(n)
    return np.sort(rng.choice(n, size=int(limit), replace=False))


def select_queries(ctx: StageContext) -> dict[str, Queries]:
    """The train, valid and test queries: seeded random subsets of each split, in time order.

    Test: ``query_limit`` queries; train: ``train_query_limit``; valid: a
    quarter of the training count (at least 20; :attr:`lamp.config.schema.LampSection.valid_limit`).  Knowledge-graph queries are
    the split's quadruples.  Typed-sequence test queries are the last event of
    each sequence (its history is the events before it); train and valid
    queries are every event after the first of each sequence.
    """
    store, s = ctx.store, ctx.settings
    rng = np.random.default_rng(ctx.seed)
    limits = {"train": s.train_query_limit, "valid": s.valid_limit, "test": s.query_limit}
    out = {}
    for split in SPLITS:
        seqs = getattr(store, split)
        if seqs is None or len(seqs) == 0:
            raise DataError(f"data set {store.name!r} has no {split} split; the pipeline needs train, valid and "
                            "test")
        if ctx.task in TKG_TASKS:
            quads = seqs.quadruples()
            idx = _subset(len(quads), limits[split], rng)
            events = quads[idx]
            truth = {"object": events[:, 2], "relation": events[:, 1],
                     "pair": events[:, 1] * store.num_entities + events[:, 2]}[ctx.task]
            out[split] = Queries(split, events, seqs.times[idx].astype(np.float64), truth.astype(np.int64))
        else:
            lengths = seqs.lengths
            if split == "test":  # the last event of every sequence with a history
                seq_all = np.flatnonzero(lengths >= 2)
                pos_all = lengths[seq_all] - 1
            else:  # every event after the first: more queries to train and select the ranker on
                counts = np.maximum(lengths - 1, 0)
                seq_all = np.repeat(np.arange(len(lengths)), counts)
                pos_all = np.arange(len(seq_all)) - np.repeat(np.cumsum(counts) - counts, counts) + 1
            pick = _subset(len(seq_all), limits[split], rng)
            seq_idx, pos = seq_all[pick], pos_all[pick]
            rows = seqs.offsets[seq_idx] + pos
            events = np.stack([seq_idx, pos, seqs.marks[rows], np.zeros_like(rows)], axis=1)
            out[split] = Queries(split, events.astype(np.int64), seqs.times[rows].astype(np.float64),
                                 seqs.marks[rows].astype(np.int64))
    ctx.say("queries: " + ", ".join(f"{k} {len(v)}" for k, v in out.items()))
    return out


def history_cutoffs(stream_times: np.ndarray, query_times: np.ndarray) -> np.ndarray:
    """For each query, the number of stream events strictly before its time (events at the same
    timestamp are not history)."""
    return np.searchsorted(stream_times, query_times, side="left").astype(np.int64)
