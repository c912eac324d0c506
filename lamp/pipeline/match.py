"""Stage 3: evidence for every candidate, retrieved from the real past events.

One interface for both data kinds: an :class:`EventWorld` holds every event
the queries may look back on (a knowledge graph's whole stream in time
order; every typed sequence of every split back to back), their texts and a
retrieval index.  The evidence of a candidate is an array of event indices
into the world (time-sorted, -1 padding), built by one of:

- ``llm``: the LLM's causes of the candidate, each matched against the past
  (BM25 or dense retrieval, top ``causes_top_k`` per cause);
- ``no_llm``: the candidate's own text as the only query (``3 x causes_top_k`` hits);
- ``random``: events drawn uniformly from the query's past (ablation);
- ``recent``: the most recent past events of the candidate's entities (of
  its sequence, for typed data) (ablation).
"""
from __future__ import annotations

import os
from abc import ABC, abstractmethod

import numpy as np

from lamp.pipeline.abduce import effects
from lamp.pipeline.queries import history_cutoffs
from lamp.pipeline.tasks import SPLITS, Queries, StageContext
from lamp.retrieval import BM25Index, DenseIndex, EmbeddingCache, assemble_evidence, corpus_embeddings, make_embedder
from lamp.text import EventTexts

__all__ = ["EventWorld", "TKGWorld", "TypedWorld", "make_world", "gather_evidence", "random_evidence",
           "recent_evidence", "evaluated_methods", "cause_grounding"]


class EventWorld(ABC):
    """The events queries look back on: every method a stage calls on a world.

    A world sets ``texts`` (the text of every event, what causes are matched against), ``times``
    (float64), ``index`` (a retrieval index of :mod:`lamp.retrieval`: ``search(texts, k, before, scope)``)
    and the columns ``subjects``, ``relations``, ``objects`` (int64) that de-duplicate and describe
    evidence.  Texts come from :class:`lamp.text.EventTexts`, the one rendering of an event.
    """

    texts: list
    times: np.ndarray
    subjects: np.ndarray
    relations: np.ndarray
    objects: np.ndarray

    @abstractmethod
    def cutoffs(self, split: str, q: Queries) -> np.ndarray:
        """Per query, the world index bound of its past (events at indices below it may be evidence)."""

    @abstractmethod
    def scope(self, split: str, q: Queries, prop: dict) -> np.ndarray | None:
        """Per candidate (Q * M, 2) the entity ids evidence must share one of, or None (no restriction)."""

    @abstractmethod
    def candidate_texts(self, split: str, q: Queries, prop: dict) -> list:
        """Per candidate the text of the candidate itself (the no-LLM query)."""

    @abstractmethod
    def random_evidence(self, split: str, q: Queries, m: int, length: int, seed: int) -> np.ndarray:
        """(Q, M, length) events drawn uniformly from each query's past (the ``random_evidence`` ablation)."""

    @abstractmethod
    def recent_evidence(self, split: str, q: Queries, prop: dict, length: int) -> np.ndarray:
        """(Q, M, length) the most recent past events of each candidate (the ``recent_evidence`` ablation)."""

    @abstractmethod
    def evidence_events(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(s, r, o) int64 rows (typed: (0, type, 0)) and times of world events ``idx`` (-1: padding rows of
        -1 and time 0)."""

    def search(self, texts: list, k: int, before: np.ndarray, scope: np.ndarray | None = None):
        """Top-``k`` world events per text, restricted to indices below ``before`` (and to ``scope``)."""
        k = min(int(k), len(self.texts))
        return self.index.search(texts, k, before=before, scope=scope)

    def assemble(self, hits: np.ndarray, length: int) -> np.ndarray:
        """Hits (n, H) -> de-duplicated, time-sorted evidence (n, length), -1 padding."""
        return assemble_evidence(hits, self.subjects, self.relations, self.objects, self.times, length)


class TKGWorld(EventWorld):
    """A knowledge graph's whole event stream in time order, with texts and a BM25 or dense index."""

    def __init__(self, ctx: StageContext):
        self.ctx = ctx
        self.quads, self.times = ctx.store.stream()
        self.subjects, self.relations, self.objects = self.quads[:, 0], self.quads[:, 1], self.quads[:, 2]
        self.event_texts = EventTexts(ctx.store)
        self.texts = [self.event_texts.line(q) for q in self.quads]
        m = ctx.settings.matching
        self.scoped = m.scope == "entity"
        if m.method == "bm25":
            self.index = BM25Index(self.texts, k1=m.k1, b=m.b, entities=self.quads[:, [0, 2]])
        else:
            embedder = make_embedder(m.embedder)
            cache_dir = ctx.resolve_path(m.embedding_cache) if m.embedding_cache else \
                os.path.join(ctx.resolve_path(ctx.settings.run_dir) or "runs", "embeddings")
            ctx.say(f"matching: dense retrieval with {embedder.identity}; embeddings cached in {cache_dir}")
            self.index = DenseIndex(corpus_embeddings(self.texts, embedder, cache_dir, say=ctx.say), embedder=embedder,
                                    cache=EmbeddingCache(os.path.join(cache_dir, "embeddings.sqlite")),
                                    progress=True, say=ctx.say)

    def cutoffs(self, split, q):
        return history_cutoffs(self.times, q.times)

    def scope(self, split, q, prop):
        return effects(self.ctx, q, prop)[:, [0, 2]] if self.scoped else None

    def candidate_texts(self, split, q, prop):
        return [self.event_texts.line(e) for e in effects(self.ctx, q, prop)]

    def random_evidence(self, split, q, m, length, seed):
        return random_evidence(self.cutoffs(split, q), m, length, seed)

    def recent_evidence(self, split, q, prop, length):
        m = prop["candidates"].shape[1]
        ents = effects(self.ctx, q, prop).reshape(len(q), m, 4)[..., [0, 2]]
        return recent_evidence(self.subjects, self.objects, self.cutoffs(split, q), ents, length,
                               self.ctx.store.num_entities)

    def evidence_events(self, idx: np.ndarray):
        """(s, r, o) int64 and times of world events ``idx`` (-1: padding rows of -1 and time 0)."""
        valid = idx >= 0
        safe = np.where(valid, idx, 0)
        ev = self.quads[safe][..., :3].copy()
        ev[~valid] = -1
        return ev, np.where(valid, self.times[safe], 0.0)


class TypedWorld(EventWorld):
    """Every event of every split in one array (split by split, sequence by sequence), with texts and a
    BM25 index whose two "entities" per event are its global sequence id (retrieval stays inside a
    sequence).  Evidence events are (0, type, 0)."""

    def __init__(self, ctx: StageContext):
        self.ctx, store = ctx, ctx.store
        self.event_texts = EventTexts(store)
        self.types = self.event_texts.types
        self.event_base, self.seq_base, self.splits = {}, {}, {}
        marks, times, seq_ids, texts = [], [], [], []
        n_events = n_seqs = 0
        for split in SPLITS:
            seqs = getattr(store, split)
            self.splits[split] = seqs
            self.event_base[split], self.seq_base[split] = n_events, n_seqs
            marks.append(seqs.marks)
            times.append(seqs.times)
            seq_ids.append(n_seqs + np.repeat(np.arange(seqs.num_sequences), seqs.lengths))
            for i in range(len(seqs)):
                texts.append(self.event_texts.typed_line(seqs.marks[i], None if seqs.texts is None else seqs.texts[i]))
            n_events += len(seqs)
            n_seqs += seqs.num_sequences
        self.marks = np.concatenate(marks).astype(np.int64)
        self.times = np.concatenate(times).astype(np.float64)
        self.seq_ids = np.concatenate(seq_ids).astype(np.int64)
        self.texts = texts
        # de-duplication on (sequence, type, time): two events of one sequence are the same only if all agree
        self.subjects, self.relations, self.objects = self.seq_ids, self.marks, np.zeros_like(self.marks)
        m = ctx.settings.matching
        self.index = BM25Index(texts, k1=m.k1, b=m.b, entities=np.stack([self.seq_ids, self.seq_ids], 1))

    def _bounds(self, split, q):
        """Per query: the world index of its sequence's first event, and the bound of its past: events
        strictly before its time (``next_type``: the time is known), or its history events only
        (``next_time``: the time is what is predicted)."""
        seqs = self.splits[split]
        s, j = q.events[:, 0], q.events[:, 1]
        start = seqs.offsets[s]
        out = start + j
        if self.ctx.task == "next_type":
            for row in range(len(q)):
                b = int(start[row])
                out[row] = b + int(np.searchsorted(seqs.times[b:b + int(j[row])], q.times[row], side="left"))
        base = self.event_base[split]
        return (base + start).astype(np.int64), (base + out).astype(np.int64)

    def cutoffs(self, split, q):
        return self._bounds(split, q)[1]

    def scope(self, split, q, prop):
        m = prop["candidates"].shape[1]
        per_query = np.stack([self.seq_base[split] + q.events[:, 0], np.full(len(q), -1)], axis=1)
        return np.repeat(per_query.astype(np.int64), m, axis=0)

    def candidate_texts(self, split, q, prop):
        return [self.types[int(k)] for k in prop["candidates"].reshape(-1)]

    def random_evidence(self, split, q, m, length, seed):
        rng = np.random.default_rng(seed)
        start, cut = self._bounds(split, q)
        out = np.full((len(q), m, length), -1, dtype=np.int64)
        for row in range(len(q)):
            pool = np.arange(int(start[row]), int(cut[row]))
            if len(pool):
                k = min(length, len(pool))
                out[row, :, :k] = np.sort(rng.choice(pool, size=k, replace=False))
        return out

    def recent_evidence(self, split, q, prop, length):
        m = prop["candidates"].shape[1]
        start, cut = self._bounds(split, q)
        out = np.full((len(q), m, length), -1, dtype=np.int64)
        for row in range(len(q)):
            pool = np.arange(max(int(start[row]), int(cut[row]) - length), int(cut[row]))
            out[row, :, :len(pool)] = pool
        return out

    def evidence_events(self, idx: np.ndarray):
        valid = idx >= 0
        safe = np.where(valid, idx, 0)
        ev = np.zeros(idx.shape + (3,), dtype=np.int64)
        ev[..., 1] = self.marks[safe]
        ev[~valid] = -1
        return ev, np.where(valid, self.times[safe], 0.0)


def make_world(ctx: StageContext) -> EventWorld:
    """The world of the run's kind of data."""
    return TKGWorld(ctx) if ctx.kind == "tkg" else TypedWorld(ctx)


# ---------------------------------------------------------------------------- evidence


AUX_FEATURES = ("retrieval score / the candidate's best", "1 / (1 + retrieval rank)",
                "1 / (1 + index of the cause that retrieved it)")


def _hit_features(hits: np.ndarray, scores: np.ndarray, ranks: np.ndarray, causes: np.ndarray,
                  evidence: np.ndarray, world_size: int) -> np.ndarray:
    """Per evidence event (n, L) the :data:`AUX_FEATURES` of the best hit that retrieved it (zeros for an
    event no hit names, e.g. a duplicate merged by the assembly)."""
    n, length = evidence.shape
    out = np.zeros((n, length, len(AUX_FEATURES)))
    valid = hits >= 0
    if not valid.any():
        return out
    rows = np.nonzero(valid)[0]
    best = np.where(valid, scores, -np.inf).max(axis=1)
    rel = np.where(best[rows] > 0, scores[valid] / np.where(best[rows] > 0, best[rows], 1.0), 0.0)
    feats = np.stack([rel, 1.0 / (1.0 + ranks[valid]), 1.0 / (1.0 + causes[valid])], axis=1)
    keys = rows * world_size + hits[valid]
    order = np.lexsort((-scores[valid], keys))  # per (candidate, event): the best-scoring hit first
    keys, feats = keys[order], feats[order]
    first = np.r_[True, keys[1:] != keys[:-1]]
    keys, feats = keys[first], feats[first]
    ev_valid = evidence >= 0
    ekeys = np.nonzero(ev_valid)[0] * world_size + evidence[ev_valid]
    pos = np.minimum(np.searchsorted(keys, ekeys), len(keys) - 1)
    found = keys[pos] == ekeys
    out[ev_valid] = np.where(found[:, None], feats[pos], 0.0)
    return out


def _by_texts(world: EventWorld, split: str, q: Queries, prop: dict, texts: list, owner, per_candidate: int, k: int,
              length: int) -> dict:
    """Top-``k`` past events of each text, gathered per candidate (``owner``), then assembled:
    ``{"idx": (Q, M, L) world indices, "aux": (Q, M, L, 3) the hits' AUX_FEATURES}``."""
    n, m = prop["candidates"].shape
    cut = np.repeat(world.cutoffs(split, q), m)
    scope = world.scope(split, q, prop)
    width = max(1, per_candidate) * k
    hits = np.full((n * m, width), -1, dtype=np.int64)
    scores, ranks, causes = (np.zeros((n * m, width)) for _ in range(3))
    if texts:
        owner = np.asarray(owner, dtype=np.int64)
        ids, hit_scores = world.search(texts, k, before=cut[owner], scope=None if scope is None else scope[owner])
        slot = np.zeros(n * m, dtype=np.int64)
        cause = np.zeros(n * m, dtype=np.int64)
        got = ids.shape[1]
        for row, c in enumerate(owner):
            s = slot[c]
            hits[c, s:s + got] = ids[row]
            scores[c, s:s + got] = hit_scores[row]
            ranks[c, s:s + got] = np.arange(got)
            causes[c, s:s + got] = cause[c]
            slot[c] += got
            cause[c] += 1
    idx = world.assemble(hits, length)
    aux = _hit_features(hits, scores, ranks, causes, idx, len(world.texts))
    return {"idx": idx.reshape(n, m, length), "aux": aux.reshape(n, m, length, len(AUX_FEATURES))}


def _no_aux(idx: np.ndarray) -> dict:
    """Evidence not retrieved by text (the random and recent ablations): no retrieval features."""
    return {"idx": idx, "aux": np.zeros(idx.shape + (len(AUX_FEATURES),))}


def llm_evidence(ctx: StageContext, world: EventWorld, queries: dict, causes: dict, proposals: dict) -> dict:
    """Evidence retrieved by the LLM's causes: ``{split: {"idx": (Q, M, L), "aux": (Q, M, L, 3)}}``."""
    mt = ctx.settings.matching
    k, length = int(mt.causes_top_k), int(mt.evidence_length)
    out = {}
    for split, q in queries.items():
        texts, owner = [], []
        for c, cs in enumerate(causes[split]):
            texts.extend(cs)
            owner.extend([c] * len(cs))
        per = max((len(cs) for cs in causes[split]), default=1)
        out[split] = _by_texts(world, split, q, proposals[split], texts, owner, per, k, length)
    return out


def no_llm_evidence(ctx: StageContext, world: EventWorld, queries: dict, proposals: dict) -> dict:
    """Evidence retrieved by each candidate's own text (as many hits as all causes would give)."""
    mt = ctx.settings.matching
    k, length = 3 * int(mt.causes_top_k), int(mt.evidence_length)
    out = {}
    for split, q in queries.items():
        texts = world.candidate_texts(split, q, proposals[split])
        out[split] = _by_texts(world, split, q, proposals[split], texts, np.arange(len(texts)), 1, k, length)
    return out


def random_evidence(cutoffs: np.ndarray, m: int, length: int, seed: int) -> np.ndarray:
    """Ablation: ``length`` events drawn uniformly from each query's past (indices into the stream,
    time-sorted, then -1 padding), the same for all ``m`` candidates of a query."""
    rng = np.random.default_rng(seed)
    out = np.full((len(cutoffs), m, length), -1, dtype=np.int64)
    for q, c in enumerate(cutoffs):
        if c == 0:
            continue
        k = min(length, int(c))
        out[q, :, :k] = np.sort(rng.choice(int(c), size=k, replace=False))
    return out


def recent_evidence(stream_subjects: np.ndarray, stream_objects: np.ndarray, cutoffs: np.ndarray,
                    candidate_entities: np.ndarray, length: int, num_entities: int) -> np.ndarray:
    """Ablation: for each candidate, the ``length`` most recent past events involving one of its
    entities (``candidate_entities`` int (Q, M, E), -1 ignored), time-sorted, then -1 padding."""
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
            out[q, j, :len(merged)] = merged
    return out


def evaluated_methods(ctx: StageContext) -> list[str]:
    """``lamp`` and the configured ablations (names of :data:`~lamp.config.names.EVIDENCE_METHODS`)."""
    return ["lamp"] + list(ctx.settings.evaluation.ablations)


def gather_evidence(ctx: StageContext, world: EventWorld, queries: dict, proposals: dict, causes: dict | None
                    ) -> dict:
    """``{method: {split: {"idx": (Q, M, L) world indices, "aux": (Q, M, L, 3)}}}`` for LAMP and every
    ablation (``aux``: the retrieval features of each evidence event, :data:`AUX_FEATURES`).

    ``causes`` are the LLM's (None when ``abduction.backend`` is ``none``: LAMP's
    evidence is then the no-LLM retrieval, computed once for both).
    """
    methods = evaluated_methods(ctx)
    length = int(ctx.settings.matching.evidence_length)
    evidence: dict[str, dict] = {}
    if causes is None:
        ctx.say("abduction: backend 'none' (no LLM): LAMP evidence is retrieved with each candidate's own text")
        evidence["lamp"] = no_llm_evidence(ctx, world, queries, proposals)
    else:
        evidence["lamp"] = llm_evidence(ctx, world, queries, causes, proposals)
    if "no_llm" in methods:
        evidence["no_llm"] = evidence["lamp"] if causes is None else no_llm_evidence(ctx, world, queries, proposals)
    for split, q in queries.items():
        m = proposals[split]["candidates"].shape[1]
        if "random_evidence" in methods:
            evidence.setdefault("random_evidence", {})[split] = _no_aux(
                world.random_evidence(split, q, m, length, ctx.seed))
        if "recent_evidence" in methods:
            evidence.setdefault("recent_evidence", {})[split] = _no_aux(
                world.recent_evidence(split, q, proposals[split], length))
    return evidence


def cause_grounding(ctx: StageContext, world: EventWorld, split: str, q: Queries, causes: list, prop: dict
                    ) -> dict | None:
    """How many of the generated causes are grounded: the best match of the cause among the query's past
    events shares both entities with the proposal it was generated for (either direction).  Reported
    over all causes and separately for the causes of the true candidate and of the others, so a reader
    sees *why* a model helps or does not.  None for typed sequences (their events have no entities)."""
    if ctx.kind != "tkg":
        return None
    n, m = prop["candidates"].shape
    texts, owner = [], []
    for c, cs in enumerate(causes):
        texts.extend(cs)
        owner.extend([c] * len(cs))
    out = {"causes": len(texts), "candidates_asked": int(sum(1 for cs in causes if cs))}
    if not texts:
        return {**out, "rate": None, "rate_true": None, "rate_other": None}
    owner = np.asarray(owner, dtype=np.int64)
    cut = np.repeat(world.cutoffs(split, q), m)
    scope = world.scope(split, q, prop)
    ids, _ = world.search(texts, 1, before=cut[owner], scope=None if scope is None else scope[owner])
    best = ids[:, 0]
    found = best >= 0
    safe = np.where(found, best, 0)
    hs, ho = world.subjects[safe], world.objects[safe]
    eff = effects(ctx, q, prop)
    ps, po = eff[owner, 0], eff[owner, 2]
    grounded = found & (((hs == ps) & (ho == po)) | ((hs == po) & (ho == ps)))
    truth = np.asarray(prop["truth"])[owner // m]
    is_true = (owner % m) == truth

    def share(mask):
        return float(grounded[mask].mean()) if mask.any() else None

    return {**out, "rate": share(np.ones_like(grounded)), "rate_true": share(is_true), "rate_other": share(~is_true),
            "causes_true": int(is_true.sum())}
