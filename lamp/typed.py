"""The LAMP pipeline on typed event sequences: next-type and next-time prediction.

Typed sequences (EasyTPP data, Amazon reviews) have no entities: an event is a
type and a time inside one sequence (one customer, one user).  The stages are
those of the knowledge-graph pipeline, adapted:

* **queries**: train and valid ask for every event after the first of each
  sequence, test for the last event of each sequence (its history is the events
  before it); see :func:`lamp.stages.select_queries`.
* **proposer**: a proposer with ``propose_batch(seqs, queries, m)`` — lamp's C
  :class:`~lamp.tpp.HawkesProcess` (``proposer.model: hawkes``, fitted on the
  training split, sequences measured from their first event) or a trained
  EasyTPP model through :class:`lamp.easytpp.EasyTPPProposer`
  (:func:`run_typed`).  ``next_type``: the top-M types at the event's known
  time.  ``next_time``: M next events drawn by exact thinning
  (:meth:`~lamp.tpp.HawkesProcess.propose_times`), most probable first.
* **abduction**: :class:`~lamp.abduction.ReviewAbductor` asks for the earlier
  reviews (events) of the same sequence that led to each candidate.
* **matching**: BM25 over the event texts (type name, plus title and review
  for Amazon), restricted to the query's own sequence and to events strictly
  before the query (for ``next_time``, before the last history event: the true
  time is never used).
* **ranking and evaluation**: the energy ranker with typed samples (subject =
  object = 0, relation = type); ``next_type`` is scored like the
  knowledge-graph tasks (MR among the M proposals, ...), ``next_time`` by the
  RMSE and MAE of the chosen candidate's time (the base picks the most
  probable sample), with paired bootstrap intervals against the base.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from lamp.pipeline import Queries

__all__ = ["run", "run_typed", "TYPED_PROPOSERS"]

TYPED_PROPOSERS = ("hawkes",)


# ---------------------------------------------------------------------------- proposer


def fit_proposer(pipe):
    """Fit lamp's Hawkes process on the training split (or load ``proposer.checkpoint``)."""
    from lamp.config import ConfigError
    from lamp.tpp import HawkesProcess

    store = pipe.load_data()
    settings = pipe.settings["proposer"]
    if settings["model"] not in TYPED_PROPOSERS:
        raise ConfigError(f"lamp.proposer.model={settings['model']!r}: typed tasks use {TYPED_PROPOSERS} "
                          "(or an EasyTPP model through lamp.easytpp.LampRunner / lamp.typed.run_typed)")
    if settings.get("checkpoint"):
        model = HawkesProcess.load(pipe.config.resolve_path(settings["checkpoint"]))
        if model.num_types != store.num_types:
            raise ConfigError(f"lamp.proposer.checkpoint has {model.num_types} types, the data {store.num_types}")
        model.fingerprint = _fingerprint_arrays(model.mu, model.alpha, model.beta)
        pipe._say(f"proposer: loaded {settings['checkpoint']}")
        return model
    params = {"relative_time": True, **dict(settings.get("params") or {})}
    unknown = set(params) - {"decay", "l2", "l1", "relative_time"}
    if unknown:
        raise ConfigError(f"lamp.proposer.params: unknown {sorted(unknown)} for hawkes; valid: decay, l1, l2, "
                          "relative_time")

    def compute():
        model = HawkesProcess(store.num_types, **params).fit(store.train)
        return {"mu": model.mu, "alpha": model.alpha, "beta": model.beta, "fit_report": model.fit_result}

    out = pipe.run_dir.stage("proposer", {"model": "hawkes", "params": params, "task": pipe.task},
                             [pipe.data_fingerprint], compute, resume=pipe.resume)
    model = HawkesProcess(store.num_types, l2=params.get("l2", 0.0), l1=params.get("l1", 0.0),
                          relative_time=params["relative_time"]).set_params(out["mu"], out["alpha"], out["beta"])
    model.fingerprint = out.fingerprint
    pipe._say(f"proposer: hawkes ({'reused' if out.loaded else 'fitted'}), {store.num_types} types, decay "
              f"{float(np.mean(model.beta)):.3g} per {store.time_unit}")
    return model


def _fingerprint_arrays(*arrays) -> str:
    from lamp.runs import fingerprint

    return fingerprint(*arrays)


def _model_fingerprint(proposer) -> str:
    """A fingerprint of an external proposer: its own, else its torch weights, else its identity."""
    fp = getattr(proposer, "fingerprint", None)
    if fp:
        return str(fp)
    model = getattr(proposer, "model", None)
    if model is not None and hasattr(model, "state_dict"):
        state = model.state_dict()
        return _fingerprint_arrays(type(model).__name__, *[(k, v.detach().cpu().numpy()) for k, v in
                                                            sorted(state.items())])
    return _fingerprint_arrays(type(proposer).__name__, id(proposer))


def _split_pairs(seqs, q: Queries) -> np.ndarray:
    return np.ascontiguousarray(q.events[:, :2], dtype=np.int64)


def propose(pipe, proposer, queries: dict) -> dict:
    """Top-M proposals of every split: ``{split: {"candidates" (Q, M) types, "times" (Q, M), "scores" (Q, M),
    "truth" (Q,), "predicted_time" (Q,)}}``; ``truth`` is the true candidate's index or -1.

    ``next_type``: candidates are types at the event's known time; in train a
    missing truth replaces the last candidate (score: its own probability).
    ``next_time``: candidates are sampled next events; train and valid get the
    true event in place of the last candidate (the ranker learns to pick the
    real event among samples); test has no true candidate (its metric is the
    chosen time's error).
    """
    store = pipe.load_data()
    m = pipe.m
    if pipe.task == "next_type" and m > store.num_types:
        from lamp.config import ConfigError

        raise ConfigError(f"lamp.num_candidates={m} exceeds the {store.num_types} event types")
    seed = int(pipe.settings["seed"])

    def compute():
        out = {}
        for split, q in queries.items():
            seqs = getattr(store, split)
            pairs = _split_pairs(seqs, q)
            if pipe.task == "next_type":
                types, scores, predicted = proposer.propose_batch(seqs, pairs, m)
                cand_times = np.repeat(q.times[:, None], m, axis=1)
                hit = types == q.truth[:, None]
                truth = np.where(hit.any(axis=1), hit.argmax(axis=1), -1)
                if split == "train" and np.any(truth < 0):
                    missing = np.flatnonzero(truth < 0)
                    k = store.num_types
                    all_types, all_scores, _ = proposer.propose_batch(seqs, pairs[missing], k)
                    position = np.argmax(all_types == q.truth[missing][:, None], axis=1)
                    types[missing, -1] = q.truth[missing]
                    scores[missing, -1] = all_scores[np.arange(len(missing)), position]
                    truth[missing] = m - 1
            else:
                if not hasattr(proposer, "propose_times"):
                    from lamp.config import ConfigError

                    raise ConfigError("lamp.task='next_time' needs a proposer with propose_times (lamp's "
                                      "HawkesProcess); this proposer only ranks types")
                cand_times, types, scores = proposer.propose_times(seqs, pairs, m, seed=seed)
                scores = np.exp(scores - scores.max(axis=1, keepdims=True))  # densities relative to the best
                predicted = cand_times[:, 0].copy()
                truth = np.full(len(q), -1, dtype=np.int64)
                if split != "test":
                    # the real event in place of the least probable sample, scored by its own density
                    _, _, own = _true_event_density(proposer, seqs, pairs, q)
                    best = np.log(np.maximum(scores.max(axis=1), 1e-300))
                    cand_times[:, -1] = q.times
                    types[:, -1] = q.truth
                    scores[:, -1] = np.exp(np.minimum(own - best, 0.0)) if own is not None else scores[:, -1]
                    truth[:] = m - 1
            out[f"{split}_candidates"] = types.astype(np.int64)
            out[f"{split}_times"] = cand_times.astype(np.float64)
            out[f"{split}_scores"] = scores.astype(np.float64)
            out[f"{split}_truth"] = truth.astype(np.int64)
            out[f"{split}_predicted_time"] = np.asarray(predicted, dtype=np.float64)
        return out

    settings = {"m": m, "task": pipe.task, "seed": seed, **{f"{k}_queries": v.events for k, v in queries.items()}}
    out = pipe.run_dir.stage("proposals", settings, [_model_fingerprint(proposer)], compute, resume=pipe.resume)
    result = {split: {k: out[f"{split}_{k}"] for k in ("candidates", "times", "scores", "truth", "predicted_time")}
              for split in queries}
    if pipe.task == "next_type":
        covered = float(np.mean(result["test"]["truth"] >= 0))
        pipe._say(f"proposals: top-{m} types for {sum(len(q) for q in queries.values())} queries; the truth is "
                  f"in the top {m} for {covered:.1%} of test queries")
    else:
        pipe._say(f"proposals: {m} sampled next events for {sum(len(q) for q in queries.values())} queries")
    return result


def _true_event_density(proposer, seqs, pairs, q: Queries):
    """Log density of the true next time under a HawkesProcess (for the inserted training candidate)."""
    from lamp import _core

    if not hasattr(proposer, "_history"):
        return None, None, None
    out = np.zeros(len(pairs))
    for row, (s, i) in enumerate(pairs):
        times, marks, origin = proposer._history(seqs, int(s), int(i))
        t = float(q.times[row]) - origin
        last = float(times[-1])
        lam = _core.hawkes_intensity(times, marks, proposer.mu, proposer.alpha, proposer.beta,
                                     np.array([t])).sum()
        base = _core.hawkes_loglik(times, marks, proposer.mu, proposer.alpha, proposer.beta, last, False)
        comp = base - _core.hawkes_loglik(times, marks, proposer.mu, proposer.alpha, proposer.beta, t, False)
        out[row] = np.log(max(lam, 1e-300)) - comp
    return None, None, out


# ---------------------------------------------------------------------------- the event stream and evidence


class _TypedWorld:
    """Every event of every split in one array (split by split, sequence by sequence), with texts and a BM25
    index whose two "entities" per event are its global sequence id (retrieval stays inside a sequence)."""

    def __init__(self, pipe, abductor):
        from lamp.match import BM25Index

        store = pipe.load_data()  # matching.method 'dense' was refused for typed tasks by the Pipeline
        self.event_base, self.seq_base, self.splits = {}, {}, {}
        marks, times, seq_ids, texts = [], [], [], []
        n_events = n_seqs = 0
        for split in ("train", "valid", "test"):
            seqs = getattr(store, split)
            self.splits[split] = seqs
            self.event_base[split], self.seq_base[split] = n_events, n_seqs
            marks.append(seqs.marks)
            times.append(seqs.times)
            seq_ids.append(n_seqs + np.repeat(np.arange(seqs.num_sequences), seqs.lengths))
            for i in range(len(seqs)):
                name = abductor.types[int(seqs.marks[i])]
                texts.append(f"{name}. {seqs.texts[i]}" if seqs.texts is not None else name)
            n_events += len(seqs)
            n_seqs += seqs.num_sequences
        self.marks = np.concatenate(marks).astype(np.int64)
        self.times = np.concatenate(times).astype(np.float64)
        self.seq_ids = np.concatenate(seq_ids).astype(np.int64)
        self.texts = texts
        m = pipe.settings["matching"]
        self.index = BM25Index(texts, k1=m["k1"], b=m["b"], entities=np.stack([self.seq_ids, self.seq_ids], 1))

    def cutoffs(self, split: str, q: Queries, known_time: bool) -> np.ndarray:
        """Global index bound of each query's past: events of its sequence strictly before its time
        (``known_time``), or its history events only (the time is what is predicted)."""
        seqs = self.splits[split]
        s, j = q.events[:, 0], q.events[:, 1]
        start = seqs.offsets[s]
        out = start + j
        if known_time:
            for row in range(len(q)):
                b = int(start[row])
                out[row] = b + int(np.searchsorted(seqs.times[b:b + int(j[row])], q.times[row], side="left"))
        return (self.event_base[split] + out).astype(np.int64)

    def scope(self, split: str, q: Queries) -> np.ndarray:
        return np.stack([self.seq_base[split] + q.events[:, 0], np.full(len(q), -1)], axis=1).astype(np.int64)


def _assemble(world, hits: np.ndarray, length: int) -> np.ndarray:
    from lamp.match import assemble_evidence

    zeros = np.zeros(len(world.marks), dtype=np.int64)
    # de-duplication on (sequence, type, time): two events of one sequence are the same only if all three agree
    return assemble_evidence(hits, world.seq_ids, world.marks, zeros, world.times, length)


def _evidence_by_text(pipe, world, split, q, prop, query_texts, owner, per_candidate: int) -> np.ndarray:
    """Top-k events of the query's own past for each text, gathered per candidate, then assembled."""
    m = pipe.settings["matching"]
    k, length = int(m["causes_top_k"]), int(m["evidence_length"])
    n, mm = prop["candidates"].shape
    known = pipe.task == "next_type"
    cut = np.repeat(world.cutoffs(split, q, known), mm)
    scope = np.repeat(world.scope(split, q), mm, axis=0)
    hits = np.full((n * mm, max(1, per_candidate) * k), -1, dtype=np.int64)
    if query_texts:
        owner = np.asarray(owner, dtype=np.int64)
        ids, _ = world.index.search(query_texts, min(k, len(world.texts)), before=cut[owner], scope=scope[owner])
        slot = np.zeros(n * mm, dtype=np.int64)
        for row, c in enumerate(owner):
            hits[c, slot[c]:slot[c] + ids.shape[1]] = ids[row]
            slot[c] += ids.shape[1]
    return _assemble(world, hits, length).reshape(n, mm, length)


def _effects(q: Queries, prop: dict) -> np.ndarray:
    """(Q * M, 4) float rows (sequence index, event index, candidate type, candidate time)."""
    n, m = prop["candidates"].shape
    rows = np.zeros((n * m, 4), dtype=np.float64)
    rows[:, 0] = np.repeat(q.events[:, 0], m)
    rows[:, 1] = np.repeat(q.events[:, 1], m)
    rows[:, 2] = prop["candidates"].reshape(-1)
    rows[:, 3] = prop["times"].reshape(-1)
    return rows


def abduce(pipe, queries: dict, proposals: dict, abductor) -> dict:
    """LLM causes of every candidate: ``{split: list (Q * M) of list of cause texts}`` (through the cache)."""
    from lamp.stages import _make_client, fingerprint_of

    settings = pipe.settings["abduction"]
    effects = {split: _effects(q, proposals[split]) for split, q in queries.items()}
    keep = {k: settings[k] for k in ("backend", "model", "model_path", "num_shots", "temperature", "max_tokens")}

    def compute():
        prompts = {split: [abductor.build_prompt(e, split) for e in ev] for split, ev in effects.items()}
        client, server = _make_client(pipe, settings, [p for ps in prompts.values() for p in ps])
        try:
            abductor.client = client
            out = {}
            for split, ev in effects.items():
                pipe._say(f"abduction: {len(ev)} prompts for the {split} candidates")
                out[f"{split}_causes"] = [[c.text for c in cs] for cs in abductor.abduce(ev, split)]
            out["stats"] = {**abductor.stats.as_dict(), "llm": str(client.stats)}
            return out
        finally:
            abductor.client = None
            if server is not None:
                server.stop()

    out = pipe.run_dir.stage("abduction", {**keep, "seed": pipe.settings["seed"], "effects": effects},
                             [fingerprint_of(proposals)], compute, resume=pipe.resume)
    pipe._say(f"abduction: {out['stats']}")
    return {split: out[f"{split}_causes"] for split in queries}


def _llm_evidence(pipe, world, queries, causes_by_split, proposals) -> dict:
    out = {}
    for split, q in queries.items():
        causes = causes_by_split[split]
        texts, owner = [], []
        for c, cs in enumerate(causes):
            for text in cs:
                texts.append(text)
                owner.append(c)
        per = max((len(cs) for cs in causes), default=1)
        out[split] = _evidence_by_text(pipe, world, split, q, proposals[split], texts, owner, per)
    return out


def _no_llm_evidence(pipe, world, queries, proposals, abductor) -> dict:
    out = {}
    for split, q in queries.items():
        cands = proposals[split]["candidates"].reshape(-1)
        texts = [abductor.types[int(k)] for k in cands]
        saved = pipe.settings["matching"]["causes_top_k"]
        try:  # the candidate's own text is its only query: take as many hits as all causes would
            pipe.settings["matching"]["causes_top_k"] = int(saved) * 3
            out[split] = _evidence_by_text(pipe, world, split, q, proposals[split], texts, np.arange(len(texts)), 1)
        finally:
            pipe.settings["matching"]["causes_top_k"] = saved
    return out


def _random_evidence(pipe, world, split, q, m: int, length: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    start = world.event_base[split] + world.splits[split].offsets[q.events[:, 0]]
    cut = world.cutoffs(split, q, pipe.task == "next_type")
    out = np.full((len(q), m, length), -1, dtype=np.int64)
    for row in range(len(q)):
        pool = np.arange(int(start[row]), int(cut[row]))
        if len(pool):
            out[row, :, :min(length, len(pool))] = np.sort(rng.choice(pool, size=min(length, len(pool)),
                                                                      replace=False))
    return out


def _recent_evidence(pipe, world, split, q, m: int, length: int) -> np.ndarray:
    start = world.event_base[split] + world.splits[split].offsets[q.events[:, 0]]
    cut = world.cutoffs(split, q, pipe.task == "next_type")
    out = np.full((len(q), m, length), -1, dtype=np.int64)
    for row in range(len(q)):
        pool = np.arange(max(int(start[row]), int(cut[row]) - length), int(cut[row]))
        out[row, :, :len(pool)] = pool
    return out


def _samples(pipe, world, q: Queries, prop: dict, evidence_idx: np.ndarray):
    from lamp.rank import RankingSamples

    cands = prop["candidates"]
    n, m = cands.shape
    valid = evidence_idx >= 0
    safe = np.where(valid, evidence_idx, 0)
    ev = np.zeros(evidence_idx.shape + (3,), dtype=np.int64)
    ev[..., 1] = world.marks[safe]
    ev[~valid] = -1
    ev_times = np.where(valid, world.times[safe], 0.0)
    candidates = np.zeros((n, m, 3), dtype=np.int64)
    candidates[..., 1] = cands
    prior = None
    if pipe.settings["ranker"].get("use_proposer_score", True):
        scores = np.maximum(prop["scores"], 1e-300)
        prior = np.log(scores) - np.log(scores.max(axis=1, keepdims=True))
    return RankingSamples(ev, ev_times, candidates, prop["times"], prop["truth"], prior)


def _time_scale(store) -> float:
    """The median positive gap between consecutive events of a training sequence (the ranker's time unit)."""
    train = store.train
    same_sequence = np.diff(np.repeat(np.arange(train.num_sequences), train.lengths)) == 0
    gaps = np.diff(train.times)[same_sequence]
    gaps = gaps[gaps > 0]
    return float(np.median(gaps)) if len(gaps) else 1.0


def rerank(pipe, queries: dict, proposals: dict) -> dict:
    """Energies (Q, M) of LAMP and of the ablations on the test proposals."""
    from lamp.abduction import ReviewAbductor
    from lamp.config import ConfigError
    from lamp.rank import EnergyRanker, ranker_settings
    from lamp.runs import fingerprint
    from lamp.stages import fingerprint_of

    ranker_settings(pipe.settings["ranker"])  # a bad ranker setting fails before the LLM work
    store = pipe.load_data()
    ab = pipe.settings["abduction"]
    seed = int(pipe.settings["seed"])
    abductor = ReviewAbductor(store, None, num_shots=int(ab["num_shots"]), seed=seed)
    world = _TypedWorld(pipe, abductor)
    methods = ["lamp"] + list(pipe.settings["evaluation"]["ablations"])
    unknown = set(methods) - {"lamp", "no_llm", "random_evidence", "recent_evidence"}
    if unknown:
        raise ConfigError(f"lamp.evaluation.ablations: unknown {sorted(unknown)}; choose from no_llm, "
                          "random_evidence, recent_evidence")
    if pipe.settings["matching"]["method"] != "bm25":
        raise ConfigError("lamp.matching.method: typed sequences are matched with 'bm25' in this version")
    length = int(pipe.settings["matching"]["evidence_length"])
    evidence: dict[str, dict] = {}
    if ab["backend"] == "none":
        pipe._say("abduction: backend 'none' (no LLM): LAMP evidence is retrieved with each candidate's own text")
        evidence["lamp"] = _no_llm_evidence(pipe, world, queries, proposals, abductor)
    else:
        causes = abduce(pipe, queries, proposals, abductor)
        evidence["lamp"] = _llm_evidence(pipe, world, queries, causes, proposals)
    if "no_llm" in methods:
        evidence["no_llm"] = _no_llm_evidence(pipe, world, queries, proposals, abductor)
    for split, q in queries.items():
        m = proposals[split]["candidates"].shape[1]
        if "random_evidence" in methods:
            evidence.setdefault("random_evidence", {})[split] = _random_evidence(pipe, world, split, q, m, length,
                                                                                 seed)
        if "recent_evidence" in methods:
            evidence.setdefault("recent_evidence", {})[split] = _recent_evidence(pipe, world, split, q, m, length)
    r = pipe.settings["ranker"]
    options = ranker_settings(r)
    energies = {}
    time_scale = _time_scale(store)
    for method in methods:
        samples = {split: _samples(pipe, world, q, proposals[split], evidence[method][split])
                   for split, q in queries.items()}

        def compute(samples=samples, method=method):
            pipe._say(f"ranker[{method}]: training on {len(samples['train'])} queries, selecting on "
                      f"{len(samples['valid'])}")
            model = EnergyRanker(1, store.num_types, **options, time_scale=time_scale, seed=seed,
                                 progress=os.environ.get("LAMP_PROGRESS") == "1" or sys.stderr.isatty())
            model.fit(samples["train"], samples["valid"])
            out = {"energies": model.energy(samples["test"]), "params": model.params, "history": model.history,
                   "best_epoch": model.best_epoch}
            for split, smp in samples.items():  # the evidence: (Q, M, L, 2) of (type, time), -1 padding
                ev = np.stack([smp.evidence[..., 1].astype(np.float64), smp.evidence_times], axis=-1)
                ev[smp.evidence[..., 1] < 0] = -1
                out[f"{split}_evidence"] = ev
            return out

        settings = {"ranker": r, "method": method, "seed": seed, "time_scale": time_scale,
                    "evidence": {k: v for k, v in evidence[method].items()}}
        out = pipe.run_dir.stage(f"ranker_{method}", settings, [fingerprint_of(proposals), fingerprint(pipe.task)],
                                 compute, resume=pipe.resume)
        energies[method] = out["energies"]
        pipe._say(f"ranker[{method}]: best epoch {out['best_epoch']}")
    return energies


# ---------------------------------------------------------------------------- evaluation and entry points


def evaluate(pipe, queries: dict, proposals: dict, energies: dict) -> dict:
    """``{task: {method: metrics}}`` for the test queries (see :mod:`lamp.report`)."""
    from lamp.report import (
        metrics_table,
        paired_bootstrap_errors,
        time_metrics,
        write_report,
    )

    if pipe.task == "next_type":
        return pipe.evaluate(queries, proposals, energies)
    test, q = proposals["test"], queries["test"]
    ev = pipe.settings["evaluation"]
    picks = {"base": test["times"][:, 0]}
    for method, energy in energies.items():
        picks[method] = test["times"][np.arange(len(q)), np.argmin(energy, axis=1)]
    errors = {method: t - q.times for method, t in picks.items()}
    result = {}
    for method, err in errors.items():
        result[method] = time_metrics(err)
        if method != "base":
            result[method]["vs_base"] = paired_bootstrap_errors(errors["base"], err, num_samples=int(ev["bootstrap"]),
                                                                seed=int(pipe.settings["seed"]))
    oracle = np.abs(test["times"] - q.times[:, None]).min(axis=1)
    result["best_of_m"] = time_metrics(oracle)
    metrics = {pipe.task: result}
    paths = write_report(pipe.run_dir.path, metrics, plot=bool(ev.get("plot", True)))
    np.savez(os.path.join(pipe.run_dir.path, "test_errors.npz"), **errors)
    print(metrics_table(metrics), flush=True)
    pipe._say(f"metrics written to {paths['json']}")
    return metrics


def run(pipe, proposer=None) -> dict:
    """Every stage of a typed task (reusing finished ones); ``proposer`` overrides ``lamp.proposer``."""
    import json
    import time

    from lamp import stages

    started = time.time()
    pipe.load_data()
    queries = stages.select_queries(pipe)
    if proposer is None:
        proposer = fit_proposer(pipe)
    proposals = propose(pipe, proposer, queries)
    if pipe.task == "next_type":
        from lamp.easytpp import base_metrics

        test = proposals["test"]
        quality = base_metrics(test["candidates"], queries["test"].truth, pipe.m)
    else:
        quality = {"rmse_predicted_time": float(np.sqrt(np.mean((proposals["test"]["predicted_time"] -
                                                                  queries["test"].times) ** 2)))}
    with open(os.path.join(pipe.run_dir.path, "proposer_metrics.json"), "w", encoding="utf-8") as f:
        json.dump({pipe.task: quality}, f, indent=2)
    energies = rerank(pipe, queries, proposals)
    metrics = evaluate(pipe, queries, proposals, energies)
    pipe._say(f"finished in {time.time() - started:.0f} s; results in {pipe.run_dir.path}")
    return metrics


def run_typed(store, proposer, config, out: str | None = None, resume: bool = True) -> dict:
    """The LAMP pipeline on ``store`` with an external typed proposer (e.g. :class:`lamp.easytpp.EasyTPPProposer`).

    ``config`` is a :class:`lamp.config.Config` whose lamp section says the
    task (``next_type``; ``next_time`` needs ``propose_times``), M, abduction,
    matching, ranker and evaluation settings; the proposer replaces
    ``lamp.proposer``.  Returns ``{task: {method: metrics}}`` and writes the
    run directory like :meth:`lamp.pipeline.Pipeline.run`.
    """
    from lamp.pipeline import Pipeline

    pipe = Pipeline(config, out=out, resume=resume)
    pipe.store = store
    pipe._check_and_fingerprint()
    return run(pipe, proposer=proposer)
