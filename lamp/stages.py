"""The stages of :class:`lamp.pipeline.Pipeline`, each a function of the pipeline and upstream outputs.

Each stage goes through :meth:`lamp.runs.RunDirectory.stage`, so it is
computed once per distinct input and reused by later runs.
"""
from __future__ import annotations

import os
import sys

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
    the split's quadruples.  Typed-sequence test queries are the last event of
    each sequence (its history is the events before it); train and valid
    queries are every event after the first of each sequence.
    """
    store = pipe.load_data()
    s = pipe.settings
    rng = np.random.default_rng(int(s["seed"]))
    train_limit = s["train_query_limit"]
    valid_limit = s["valid_query_limit"]
    if valid_limit is None and train_limit is not None:
        valid_limit = max(20, int(train_limit) // 4)
    limits = {"train": train_limit, "valid": valid_limit, "test": s["query_limit"]}
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
    pipe._say("queries: " + ", ".join(f"{k} {len(v)}" for k, v in out.items()))
    return out


def history_cutoffs(stream_times: np.ndarray, query_times: np.ndarray) -> np.ndarray:
    """For each query, the number of stream events strictly before its time (events at the same
    timestamp are not history)."""
    return np.searchsorted(stream_times, query_times, side="left").astype(np.int64)


def random_evidence(cutoffs: np.ndarray, m: int, length: int, seed: int) -> np.ndarray:
    """Ablation: ``length`` events drawn uniformly from each query's past (indices into the stream,
    time-sorted, then -1 padding), the same for all ``m`` candidates of a query."""
    rng = np.random.default_rng(seed)
    out = np.full((len(cutoffs), m, length), -1, dtype=np.int64)
    for q, c in enumerate(cutoffs):
        if c == 0:
            continue
        k = min(length, int(c))
        picked = np.sort(rng.choice(int(c), size=k, replace=False))
        out[q, :, :k] = picked
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


# ---------------------------------------------------------------------------- proposer

PROPOSERS = ("kg_hawkes", "recurrency")


def fit_proposer(pipe):
    """Fit the proposer on the training split (decay scales chosen on valid), or load a checkpoint."""
    from lamp.config import ConfigError
    from lamp.tpp import KGHawkes, RecurrencyBaseline

    store = pipe.load_data()
    settings = pipe.settings["proposer"]
    name = settings["model"]
    if pipe.task not in ("object", "relation", "pair"):
        raise ConfigError(f"lamp.task={pipe.task!r}: this version proposes for the knowledge-graph tasks object, "
                          "relation and pair (proposer.model kg_hawkes or recurrency)")
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
            if split == "train" and np.any(truth < 0) and pipe.task == "pair":
                # scoring all 1.6M pairs per query to find the truth's own score is not worth it: the truth
                # ranks below every proposal, so the smallest proposal score bounds its score from above
                missing = truth < 0
                ids[missing, -1] = q.truth[missing]
                scores[missing, -1] = scores[missing].min(axis=1)
                truth[missing] = m - 1
            elif split == "train" and np.any(truth < 0):
                missing = np.flatnonzero(truth < 0)
                n_all = proposer.num_entities if pipe.task == "object" else proposer.num_relations
                all_ids, all_scores = proposer.propose(q.events[missing], task=pipe.task, m=n_all)
                position = np.argmax(all_ids == q.truth[missing][:, None], axis=1)
                ids[missing, -1] = q.truth[missing]
                scores[missing, -1] = all_scores[np.arange(len(missing)), position]
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


# ---------------------------------------------------------------------------- abduction, matching, ranking


class _World:
    """The data set's whole event stream in time order, with texts and a BM25 index over them."""

    def __init__(self, pipe, abductor):
        self.quads, self.times = pipe.load_data().stream()
        from lamp.match import BM25Index

        m = pipe.settings["matching"]
        self.texts = [abductor.event_text(q) for q in self.quads]
        self.method = m["method"]  # method and scope were validated when the Pipeline was built
        self.scoped = m["scope"] == "entity"
        if self.method == "bm25":
            self.index = BM25Index(self.texts, k1=m["k1"], b=m["b"], entities=self.quads[:, [0, 2]])
        else:
            from lamp.embed import EmbeddingCache, corpus_embeddings, make_embedder
            from lamp.match import DenseIndex

            self.embedder = make_embedder(m["embedder"])
            cache_dir = pipe.config.resolve_path(m["embedding_cache"]) if m.get("embedding_cache") else \
                os.path.join(pipe.config.resolve_path(pipe.settings["run_dir"]) or "runs", "embeddings")
            pipe._say(f"matching: dense retrieval with {self.embedder.identity}; embeddings cached in {cache_dir}")
            self.index = DenseIndex(corpus_embeddings(self.texts, self.embedder, cache_dir, say=pipe._say))
            self.cache = EmbeddingCache(os.path.join(cache_dir, "embeddings.sqlite"))
            self._say = pipe._say

    def search(self, texts: list, k: int, before: np.ndarray, scope: np.ndarray | None = None):
        """Top-``k`` past events for each query text (BM25 or cosine of embeddings), before the cutoffs;
        with ``scope`` (Q, 2) entity ids, only events sharing one of them (BM25 only)."""
        k = min(int(k), len(self.texts))
        if self.method == "bm25":
            return self.index.search(texts, k, before=before, scope=scope)
        from lamp.embed import embed_texts

        vectors = embed_texts(texts, self.embedder, self.cache, progress=True, say=self._say)
        return self.index.search(vectors, k, before=before)

    def cutoffs(self, query_times: np.ndarray) -> np.ndarray:
        return history_cutoffs(self.times, query_times)


def _effects(pipe, q: Queries, candidates: np.ndarray) -> np.ndarray:
    """The effect event of every candidate: (Q * M, 4) rows (s, r, o, t)."""
    n, m = candidates.shape
    ev = np.repeat(q.events, m, axis=0).copy()
    flat = candidates.reshape(-1)
    if pipe.task == "object":
        ev[:, 2] = flat
    elif pipe.task == "pair":
        num_entities = pipe.load_data().num_entities
        ev[:, 1], ev[:, 2] = flat // num_entities, flat % num_entities
    else:
        ev[:, 1] = flat
    return ev


def _make_client(pipe, settings: dict, prompts: list):
    """The chat client of the configured backend; the local server is started only when the cache misses."""
    from lamp.llm import AnswerCache, ChatClient, request_key
    from lamp.llm.client import LLMError

    backend = settings["backend"]
    cache_path = pipe.config.resolve_path(settings["cache"]) if settings["cache"] else \
        os.path.join(pipe.run_dir.path, "llm_cache.sqlite")
    cache = AnswerCache(cache_path)
    sampling = {"temperature": settings["temperature"], "max_tokens": settings["max_tokens"]}
    common = dict(cache=cache, concurrency=settings["concurrency"], max_retries=settings["max_retries"],
                  timeout=settings["timeout"], temperature=settings["temperature"], max_tokens=settings["max_tokens"],
                  verify_tls=settings["verify_tls"])
    if backend == "openai":
        if not settings["base_url"] or not settings["model"]:
            raise LLMError("abduction.backend 'openai' needs abduction.base_url and abduction.model")
        return ChatClient(settings["base_url"], settings["model"], api_key_env=settings["api_key_env"], **common), None
    from lamp.llm.local import DEFAULT_MODEL_NAME, LocalServer, default_model_path

    model = settings["model"] or (os.path.basename(settings["model_path"]) if settings["model_path"]
                                  else DEFAULT_MODEL_NAME)
    if backend == "replay":
        return ChatClient("http://127.0.0.1:9/v1", model, replay=True, **common), None
    model_path = settings["model_path"] or default_model_path()
    missing = len(prompts) - len(cache.get_many({request_key(model, p, sampling) for p in prompts}))
    if missing == 0:
        return ChatClient("http://127.0.0.1:9/v1", model, replay=True, **common), None
    pipe._say(f"abduction: {missing} prompts are not cached; starting the local llama.cpp server "
              f"({os.path.basename(model_path)})")
    server = LocalServer(model_path).start()
    return ChatClient(server.base_url, model, **dict(common, concurrency=1)), server


def abduce(pipe, store, queries: dict, proposals: dict, abductor) -> dict:
    """LLM causes of every candidate of every query: ``{split: list (Q * M) of list of cause texts}``."""
    settings = pipe.settings["abduction"]
    effects = {split: _effects(pipe, q, proposals[split]["candidates"]) for split, q in queries.items()}
    keep = {k: settings[k] for k in ("backend", "model", "model_path", "num_shots", "temperature", "max_tokens")}

    def compute():
        prompts_by_split = {split: [abductor.build_prompt(e) for e in ev] for split, ev in effects.items()}
        everything = [p for ps in prompts_by_split.values() for p in ps]
        client, server = _make_client(pipe, settings, everything)
        try:
            abductor.client = client
            out, stats = {}, {}
            for split, ev in effects.items():
                pipe._say(f"abduction: {len(ev)} prompts for the {split} candidates")
                causes = abductor.abduce(ev)
                out[f"{split}_causes"] = [[c.text for c in cs] for cs in causes]
            stats = abductor.stats.as_dict()
            stats["llm"] = str(client.stats)
            out["stats"] = stats
            return out
        finally:
            abductor.client = None
            if server is not None:
                server.stop()

    upstream = [fingerprint_of(proposals)]
    out = pipe.run_dir.stage("abduction", {**keep, "seed": pipe.settings["seed"], "effects": effects}, upstream,
                             compute, resume=pipe.resume)
    pipe._say(f"abduction: {out['stats']}")
    return {split: out[f"{split}_causes"] for split in queries}


def fingerprint_of(proposals: dict) -> str:
    from lamp.runs import fingerprint

    return fingerprint({k: v for split in sorted(proposals) for k, v in proposals[split].items()})


def _llm_evidence(pipe, world, queries, causes_by_split, proposals) -> dict:
    m = pipe.settings["matching"]
    k, length = int(m["causes_top_k"]), int(m["evidence_length"])
    from lamp.match import assemble_evidence

    out = {}
    for split, q in queries.items():
        causes = causes_by_split[split]
        n_cand = proposals[split]["candidates"].size
        cutoffs = np.repeat(world.cutoffs(q.times), proposals[split]["candidates"].shape[1])
        texts, owner = [], []
        for c, cs in enumerate(causes):
            for text in cs:
                texts.append(text)
                owner.append(c)
        per = max(1, max((len(cs) for cs in causes), default=1)) * k
        hits = np.full((n_cand, per), -1, dtype=np.int64)
        if texts:
            owner = np.asarray(owner)
            scope = None
            if world.scoped:  # the effect's subject and (candidate) object
                scope = _effects(pipe, q, proposals[split]["candidates"])[:, [0, 2]][owner]
            ids, _ = world.search(texts, k, before=cutoffs[owner], scope=scope)
            slot = np.zeros(n_cand, dtype=np.int64)
            for row, c in enumerate(owner):
                hits[c, slot[c]:slot[c] + k] = ids[row]
                slot[c] += k
        out[split] = assemble_evidence(hits, world.quads[:, 0], world.quads[:, 1], world.quads[:, 2],
                                       world.times, length).reshape(len(q), -1, length)
    return out


def _no_llm_evidence(pipe, world, queries, proposals, abductor) -> dict:
    from lamp.match import assemble_evidence

    m = pipe.settings["matching"]
    k, length = int(m["causes_top_k"]), int(m["evidence_length"])
    out = {}
    for split, q in queries.items():
        cands = proposals[split]["candidates"]
        effects = _effects(pipe, q, cands)
        cutoffs = np.repeat(world.cutoffs(q.times), cands.shape[1])
        ids, _ = world.search([abductor.event_text(e) for e in effects], 3 * k, before=cutoffs,
                              scope=effects[:, [0, 2]] if world.scoped else None)
        out[split] = assemble_evidence(ids, world.quads[:, 0], world.quads[:, 1], world.quads[:, 2], world.times,
                                       length).reshape(len(q), -1, length)
    return out


def _samples(pipe, world, q: Queries, prop: dict, evidence_idx: np.ndarray):
    from lamp.rank import RankingSamples

    cands = prop["candidates"]
    n, m = cands.shape
    effects = _effects(pipe, q, cands).reshape(n, m, 4)
    valid = evidence_idx >= 0
    safe = np.where(valid, evidence_idx, 0)
    ev = world.quads[safe][..., :3].copy()
    ev[~valid] = -1
    ev_times = np.where(valid, world.times[safe], 0.0)
    prior = None
    if pipe.settings["ranker"].get("use_proposer_score", True):
        scores = np.maximum(prop["scores"], 1e-300)
        prior = np.log(scores) - np.log(scores.max(axis=1, keepdims=True))
    return RankingSamples(ev, ev_times, effects[..., :3], np.repeat(q.times[:, None], m, axis=1), prop["truth"],
                          prior)


def rerank(pipe, queries: dict, proposals: dict) -> dict:
    """Energies of LAMP and of the ablations for the test proposals, ``{method: (Q, M)}``."""
    from lamp.abduction import Abductor
    from lamp.rank import EnergyRanker, ranker_settings

    ranker_settings(pipe.settings["ranker"])  # a bad ranker setting fails before the LLM work
    store = pipe.load_data()
    ab = pipe.settings["abduction"]
    abductor = Abductor(store, None, num_shots=int(ab["num_shots"]), seed=int(pipe.settings["seed"]))
    world = _World(pipe, abductor)
    methods = ["lamp"] + [a for a in pipe.settings["evaluation"]["ablations"]]
    unknown = set(methods) - {"lamp", "no_llm", "random_evidence", "recent_evidence"}
    if unknown:
        from lamp.config import ConfigError

        raise ConfigError(f"lamp.evaluation.ablations: unknown {sorted(unknown)}; choose from no_llm, "
                          "random_evidence, recent_evidence")
    length = int(pipe.settings["matching"]["evidence_length"])
    evidence: dict[str, dict] = {}
    if ab["backend"] == "none":
        pipe._say("abduction: backend 'none' (no LLM): LAMP evidence is retrieved with each candidate's own text")
        evidence["lamp"] = _no_llm_evidence(pipe, world, queries, proposals, abductor)
    else:
        causes = abduce(pipe, store, queries, proposals, abductor)
        evidence["lamp"] = _llm_evidence(pipe, world, queries, causes, proposals)
    if "no_llm" in methods:  # without an LLM the LAMP evidence is this very retrieval: reuse it
        evidence["no_llm"] = evidence["lamp"] if ab["backend"] == "none" else \
            _no_llm_evidence(pipe, world, queries, proposals, abductor)
    seed = int(pipe.settings["seed"])
    for split, q in queries.items():
        m = proposals[split]["candidates"].shape[1]
        cut = world.cutoffs(q.times)
        if "random_evidence" in methods:
            evidence.setdefault("random_evidence", {})[split] = random_evidence(cut, m, length, seed)
        if "recent_evidence" in methods:
            ents = _effects(pipe, q, proposals[split]["candidates"]).reshape(len(q), m, 4)[..., [0, 2]]
            evidence.setdefault("recent_evidence", {})[split] = recent_evidence(
                world.quads[:, 0], world.quads[:, 2], cut, ents, length, store.num_entities)
    r = pipe.settings["ranker"]
    options = ranker_settings(r)
    energies = {}
    for method in methods:
        samples = {split: _samples(pipe, world, q, proposals[split], evidence[method][split])
                   for split, q in queries.items()}

        def compute(samples=samples, method=method):
            pipe._say(f"ranker[{method}]: training on {len(samples['train'])} queries, selecting on "
                      f"{len(samples['valid'])}")
            model = EnergyRanker(store.num_entities, store.num_relations, **options, time_scale=_time_step(store),
                                 seed=seed,
                                 progress=os.environ.get("LAMP_PROGRESS") == "1" or sys.stderr.isatty())
            model.fit(samples["train"], samples["valid"])
            out = {"energies": model.energy(samples["test"]), "params": model.params,
                   "history": model.history, "best_epoch": model.best_epoch}
            for split, smp in samples.items():  # the evidence itself: (Q, M, L, 4) of (s, r, o, t), -1 padding
                ev = np.concatenate([smp.evidence, smp.evidence_times[..., None].astype(np.int64)], axis=-1)
                ev[smp.evidence[..., 0] < 0] = -1
                out[f"{split}_evidence"] = ev
            return out

        settings = {"ranker": r, "method": method, "seed": seed,
                    "evidence": {k: v for k, v in evidence[method].items()}}
        out = pipe.run_dir.stage(f"ranker_{method}", settings, [fingerprint_of(proposals)], compute,
                                 resume=pipe.resume)
        energies[method] = out["energies"]
        pipe._say(f"ranker[{method}]: best epoch {out['best_epoch']}")
    return energies


def _time_step(store) -> float:
    gaps = np.diff(np.unique(store.train.times))
    return float(gaps[gaps > 0].min()) if np.any(gaps > 0) else 1.0
