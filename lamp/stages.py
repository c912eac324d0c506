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


# ---------------------------------------------------------------------------- proposer

PROPOSERS = ("kg_hawkes", "recurrency")


def fit_proposer(pipe):
    """Fit the proposer on the training split (decay scales chosen on valid), or load a checkpoint."""
    from lamp.config import ConfigError
    from lamp.tpp import KGHawkes, RecurrencyBaseline

    store = pipe.load_data()
    settings = pipe.settings["proposer"]
    name = settings["model"]
    if pipe.task not in ("object", "relation"):
        raise ConfigError(f"lamp.task={pipe.task!r}: this version proposes for the knowledge-graph object and "
                          "relation tasks (proposer.model kg_hawkes or recurrency)")
    if name not in PROPOSERS:
        raise ConfigError(f"lamp.proposer.model must be one of {PROPOSERS}, got {name!r}")
    if settings.get("checkpoint"):
        model = KGHawkes.load(pipe.config.resolve_path(settings["checkpoint"]), store)
        pipe._say(f"proposer: loaded {settings['checkpoint']}")
        return model
    cls = KGHawkes if name == "kg_hawkes" else RecurrencyBaseline
    params = dict(settings.get("params") or {})

    def compute():
        model = cls(task=pipe.task, **params).fit(store)
        folder = pipe.run_dir.stage_dir("proposer")
        import os
        import tempfile

        with tempfile.TemporaryDirectory(dir=os.path.dirname(folder)) as tmp:
            path = os.path.join(tmp, "model.npz")
            model.save(path)
            with np.load(path) as saved:
                out = {k: saved[k] for k in saved.files}
        out["fit_report"] = model.fit_report
        return out

    out = pipe.run_dir.stage("proposer", {"model": name, "params": params, "task": pipe.task},
                             [pipe.data_fingerprint], compute, resume=pipe.resume)
    model = KGHawkes.load(pipe.run_dir.stage_dir("proposer") + "/arrays.npz", store)
    model.fingerprint = out.fingerprint
    pipe._say(f"proposer: {name} ({'reused' if out.loaded else 'fitted'}), half-lives {model.half_lives} x "
              f"step {model.step:g}")
    return model


def propose(pipe, proposer, queries: dict) -> dict:
    """Top-M proposals for every query of every split.

    Returns ``{split: {"candidates" (Q, M), "scores" (Q, M), "truth" (Q,)}}``;
    ``truth`` is the index of the true answer among the candidates or -1.  In
    the training split a missing truth replaces the last candidate (the
    ranker needs the real event among its candidates).
    """
    m = pipe.m

    def compute():
        out = {}
        for split, q in queries.items():
            ids, scores = proposer.propose(q.events, task=pipe.task, m=m)
            hit = ids == q.truth[:, None]
            truth = np.where(hit.any(axis=1), hit.argmax(axis=1), -1)
            if split == "train":
                missing = truth < 0
                ids[missing, -1] = q.truth[missing]
                truth[missing] = m - 1
            out[f"{split}_candidates"] = ids
            out[f"{split}_scores"] = scores
            out[f"{split}_truth"] = truth.astype(np.int64)
        return out

    settings = {"m": m, "task": pipe.task,
                **{f"{k}_queries": v.events for k, v in queries.items()}}
    out = pipe.run_dir.stage("proposals", settings, [proposer.fingerprint], compute, resume=pipe.resume)
    result = {split: {"candidates": out[f"{split}_candidates"], "scores": out[f"{split}_scores"],
                      "truth": out[f"{split}_truth"]} for split in queries}
    covered = float(np.mean(result["test"]["truth"] >= 0))
    pipe._say(f"proposals: top-{m} for {sum(len(q) for q in queries.values())} queries; the truth is in the "
              f"top {m} for {covered:.1%} of test queries")
    return result


def proposer_quality(pipe, proposer, queries: dict) -> dict:
    """Time-aware filtered MRR / Hits of the proposer over all candidates, on the evaluated test queries."""
    from lamp.tpp.kg import _ranking_metrics

    q = queries["test"].events
    metrics = _ranking_metrics(proposer._score(q, pipe.task, pipe.m, proposer.weights, want_ranks=True), q, pipe.task,
                               pipe.m)
    pipe._say("proposer over all candidates (time-aware filter): " +
              ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if k != "n"))
    return metrics


def rerank(pipe, queries: dict, proposals: dict) -> dict:
    """Energies of LAMP and of the ablations for the test proposals, ``{method: (Q, M)}``.

    Abduction, matching and the energy-based ranker land in later versions
    (issues 4, 5 and 6); until then the pipeline reports the proposer's order.
    """
    pipe._say("reranking: the abduction, matching and ranker stages are not in this version yet; reporting the "
              "proposer's order (base)")
    return {}
