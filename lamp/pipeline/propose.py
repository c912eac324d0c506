"""Stage 1: the proposer (fitted or loaded) and its top-M proposals for every query.

Knowledge graphs use :class:`~lamp.tpp.KGHawkes` or
:class:`~lamp.tpp.RecurrencyBaseline`; typed sequences lamp's
:class:`~lamp.tpp.HawkesProcess` or any proposer of the contract in
:mod:`lamp.tpp.contract` (e.g. an EasyTPP model).
"""
from __future__ import annotations

import os
import tempfile

import numpy as np

from lamp.config.registry import proposer_spec, resolve
from lamp.errors import ConfigError, storage_error
from lamp.pipeline.tasks import Queries, StageContext
from lamp.report import rank_metrics, truth_ranks
from lamp.runs import file_sha256, fingerprint
from lamp.tpp.contract import SupportsDensity, SupportsQuality, SupportsRanks, SupportsTimes

__all__ = ["fit_proposer", "propose", "proposer_quality", "proposer_ranks", "proposals_fingerprint"]


# ---------------------------------------------------------------------------- fitting


def fit_proposer(ctx: StageContext):
    """The configured proposer (``lamp.proposer``: a name of the registry :mod:`lamp.config.registry`),
    loaded from ``proposer.checkpoint`` or fitted on the data.  A proposer the registry can write and read
    back is kept in the run folder's ``proposer`` stage, so a rerun does not fit it again."""
    settings = ctx.settings.proposer
    name = ctx.settings.proposer_model
    spec = proposer_spec(name)
    params = dict(settings.params or {})
    if settings.path is not None:
        if "path" in params:
            raise ConfigError("lamp.proposer.params.path: give the file once, as lamp.proposer.path")
        params["path"] = ctx.resolve_path(settings.path)
    if settings.checkpoint:
        if not spec.persistent:
            raise ConfigError(f"lamp.proposer.checkpoint: proposer {name!r} was registered without save/load, so it "
                              "cannot be read from a file")
        path = ctx.resolve_path(settings.checkpoint)
        if not os.path.isfile(path):
            raise ConfigError(f"lamp.proposer.checkpoint {settings.checkpoint}: no such file")
        model = resolve(spec.load)(path, ctx.store)
        _set_fingerprint(model, fingerprint(name, file_sha256(path)))
        ctx.say(f"proposer: loaded {settings.checkpoint}")
        return model

    def build():
        return resolve(spec.factory)(ctx.store, ctx.task, **params)

    stage_settings = {"model": name, "params": params, "task": ctx.task}
    if not spec.persistent:
        model = build()
        _set_fingerprint(model, fingerprint(stage_settings, ctx.data_fingerprint))
        source = getattr(model, "path", None)
        ctx.say(f"proposer: {name} (read from {source} on every run)" if isinstance(source, str) else
                f"proposer: {name} (fitted; registered without save/load, so it is fitted on every run)")
        return model

    def compute():
        model = build()
        folder = ctx.run_dir.stage_dir("proposer")
        with tempfile.TemporaryDirectory(prefix=".proposer.tmp-", dir=os.path.dirname(folder)) as tmp:
            path = os.path.join(tmp, "model.npz")
            try:
                resolve(spec.save)(model, path)
            except OSError as exc:
                raise storage_error(exc, path, f"could not save the fitted {name} proposer") from exc
            with np.load(path, allow_pickle=False) as saved:
                out = {k: saved[k] for k in saved.files}
        report = getattr(model, "fit_report", None) or getattr(model, "fit_result", None)
        if report:
            out["fit_report"] = report
        return out

    out = ctx.stage("proposer", stage_settings, [ctx.data_fingerprint], compute)
    model = resolve(spec.load)(os.path.join(ctx.run_dir.stage_dir("proposer"), "arrays.npz"), ctx.store)
    _set_fingerprint(model, out.fingerprint)
    ctx.say(f"proposer: {name} ({'reused' if out.loaded else 'fitted'}){_describe(model)}")
    return model


def _set_fingerprint(model, value: str) -> None:
    """Key the proposals on ``value`` unless the proposer states its own fingerprint."""
    if not getattr(model, "fingerprint", None):
        try:
            model.fingerprint = value
        except AttributeError:  # a read-only attribute: proposer_fingerprint falls back to its weights or identity
            pass


def _describe(model) -> str:
    if getattr(model, "half_lives", None) is not None and getattr(model, "step", None) is not None:
        return f", half-lives {model.half_lives} x step {model.step:g}"
    if getattr(model, "beta", None) is not None and getattr(model, "num_types", None):
        return f", {model.num_types} types, decay {float(np.mean(model.beta)):.3g}"
    return ""


def proposer_fingerprint(proposer) -> str:
    """A proposer's own ``fingerprint``, else one of its torch weights, else of its identity."""
    fp = getattr(proposer, "fingerprint", None)
    if fp:
        return str(fp)
    model = getattr(proposer, "model", None)
    if model is not None and hasattr(model, "state_dict"):
        state = model.state_dict()
        return fingerprint(type(model).__name__, *[(k, v.detach().cpu().numpy()) for k, v in sorted(state.items())])
    return fingerprint(type(proposer).__name__, id(proposer))


def proposals_fingerprint(proposals: dict) -> str:
    """The fingerprint downstream stages key on: every array of every split's proposals."""
    return fingerprint({k: v for split in sorted(proposals) for k, v in proposals[split].items()})


# ---------------------------------------------------------------------------- proposing

PROPOSAL_KEYS = {"tkg": ("candidates", "scores", "truth", "inserted"),
                 "typed": ("candidates", "times", "scores", "truth", "predicted_time", "inserted")}


def propose(ctx: StageContext, proposer, queries: dict[str, Queries]) -> dict:
    """Top-M proposals of every split: ``{split: {"candidates" (Q, M), "scores" (Q, M), "truth" (Q,), ...}}``.

    ``truth`` is the true candidate's index or -1.  In the training split a
    missing truth replaces the last candidate (the ranker needs the real event
    among its candidates); ``"inserted"`` (Q,) flags those queries.  Typed tasks add ``"times"`` (Q, M), the candidates'
    times, and ``"predicted_time"`` (Q,).  ``next_time``: candidates are
    sampled next events; train and valid get the true event in place of the
    last sample; test has no true candidate (its metric is the chosen time's
    error).
    """
    m, kind = ctx.m, ctx.kind
    if ctx.task == "next_type" and m > ctx.store.num_types:
        raise ConfigError(f"lamp.num_candidates={m} exceeds the {ctx.store.num_types} event types")
    if ctx.task == "next_time" and not isinstance(proposer, SupportsTimes):
        raise ConfigError("lamp.task='next_time' needs a proposer with propose_times (lamp's HawkesProcess); "
                          "this proposer only ranks types")

    def compute():
        out = {}
        for split, q in queries.items():
            if kind == "tkg":
                result = _propose_kg(ctx, proposer, split, q)
            elif ctx.task == "next_type":
                result = _propose_types(ctx, proposer, split, q)
            else:
                result = _propose_times(ctx, proposer, split, q)
            out.update({f"{split}_{k}": v for k, v in result.items()})
        return out

    settings = {"m": m, "task": ctx.task, **{f"{k}_queries": v.events for k, v in queries.items()}}
    if kind == "typed":
        settings["seed"] = ctx.seed
    out = ctx.stage("proposals", settings, [proposer_fingerprint(proposer)], compute)
    result = {split: {k: out[f"{split}_{k}"] for k in PROPOSAL_KEYS[kind]} for split in queries}
    total = sum(len(q) for q in queries.values())
    if ctx.task == "next_time":
        ctx.say(f"proposals: {m} sampled next events for {total} queries")
    else:
        covered = float(np.mean(result["test"]["truth"] >= 0))
        what = "types" if kind == "typed" else ""
        ctx.say(f"proposals: top-{m} {what + ' ' if what else ''}for {total} queries; the truth is in the top {m} "
                f"for {covered:.1%} of test queries")
    return result


def _truth_index(ids: np.ndarray, truth: np.ndarray) -> np.ndarray:
    hit = ids == truth[:, None]
    return np.where(hit.any(axis=1), hit.argmax(axis=1), -1)


def _propose_kg(ctx: StageContext, proposer, split: str, q: Queries) -> dict:
    m = ctx.m
    ids, scores = proposer.propose(q.events, task=ctx.task, m=m)
    truth = _truth_index(ids, q.truth)
    inserted = (truth < 0) & (split == "train")
    if split == "train" and np.any(truth < 0) and ctx.task == "pair":
        # scoring all 1.6M pairs per query to find the truth's own score is not worth it: the truth
        # ranks below every proposal, so the smallest proposal score bounds its score from above
        missing = truth < 0
        ids[missing, -1] = q.truth[missing]
        scores[missing, -1] = scores[missing].min(axis=1)
        truth[missing] = m - 1
    elif split == "train" and np.any(truth < 0):
        missing = np.flatnonzero(truth < 0)
        n_all = proposer.num_entities if ctx.task == "object" else proposer.num_relations
        all_ids, all_scores = proposer.propose(q.events[missing], task=ctx.task, m=n_all)
        position = np.argmax(all_ids == q.truth[missing][:, None], axis=1)
        ids[missing, -1] = q.truth[missing]
        scores[missing, -1] = all_scores[np.arange(len(missing)), position]
        truth[missing] = m - 1
    return {"candidates": ids, "scores": scores, "truth": truth.astype(np.int64), "inserted": inserted}


def _typed_result(types, times, scores, truth, predicted, inserted) -> dict:
    return {"candidates": np.asarray(types).astype(np.int64), "times": np.asarray(times, dtype=np.float64),
            "scores": np.asarray(scores, dtype=np.float64), "truth": np.asarray(truth).astype(np.int64),
            "predicted_time": np.asarray(predicted, dtype=np.float64), "inserted": np.asarray(inserted, dtype=bool)}


def _propose_types(ctx: StageContext, proposer, split: str, q: Queries) -> dict:
    m, seqs = ctx.m, getattr(ctx.store, split)
    pairs = np.ascontiguousarray(q.events[:, :2], dtype=np.int64)
    types, scores, predicted = proposer.propose_batch(seqs, pairs, m)
    truth = _truth_index(types, q.truth)
    inserted = (truth < 0) & (split == "train")
    if split == "train" and np.any(truth < 0):
        missing = np.flatnonzero(truth < 0)
        all_types, all_scores, _ = proposer.propose_batch(seqs, pairs[missing], ctx.store.num_types)
        position = np.argmax(all_types == q.truth[missing][:, None], axis=1)
        types[missing, -1] = q.truth[missing]
        scores[missing, -1] = all_scores[np.arange(len(missing)), position]
        truth[missing] = m - 1
    return _typed_result(types, np.repeat(q.times[:, None], m, axis=1), scores, truth, predicted, inserted)


def _propose_times(ctx: StageContext, proposer, split: str, q: Queries) -> dict:
    m, seqs = ctx.m, getattr(ctx.store, split)
    pairs = np.ascontiguousarray(q.events[:, :2], dtype=np.int64)
    cand_times, types, scores = proposer.propose_times(seqs, pairs, m, seed=ctx.seed)
    scores = np.exp(scores - scores.max(axis=1, keepdims=True))  # densities relative to the best
    predicted = cand_times[:, 0].copy()
    truth = np.full(len(q), -1, dtype=np.int64)
    if split != "test":
        # the real event in place of the least probable sample, scored by its own density
        own = _true_event_density(proposer, seqs, pairs, q)
        best = np.log(np.maximum(scores.max(axis=1), 1e-300))
        cand_times[:, -1] = q.times
        types[:, -1] = q.truth
        if own is not None:
            scores[:, -1] = np.exp(np.minimum(own - best, 0.0))
        truth[:] = m - 1
    # next_time: the real event among the samples is the task's design in train and valid, not a repair
    return _typed_result(types, cand_times, scores, truth, predicted, np.zeros(len(q), dtype=bool))


def _true_event_density(proposer, seqs, pairs, q: Queries):
    """Log density of each query's true next event under a HawkesProcess (None for other proposers)."""
    if not isinstance(proposer, SupportsDensity):
        return None
    return proposer.log_density_of_next(seqs, pairs, q.times)


# ---------------------------------------------------------------------------- quality


def proposer_quality(ctx: StageContext, proposer, queries: dict[str, Queries], proposals: dict) -> dict:
    """The proposer's own quality on the evaluated test queries, written to ``proposer_metrics.json``.

    Knowledge graphs: time-aware filtered MRR / Hits over all candidates (a proposer with ``quality``, see
    :class:`lamp.tpp.contract.KGProposer`), else, as for ``next_type``, the rank metrics of its order among
    its M proposals.
    ``next_time``: the RMSE of its predicted time.
    """
    import json

    test = proposals["test"]
    if ctx.kind == "tkg" and isinstance(proposer, SupportsQuality):
        quality = proposer.quality(queries["test"].events, ctx.task, ctx.m)
        ctx.say("proposer over all candidates (time-aware filter): " +
                ", ".join(f"{k} {v:.3f}" for k, v in quality.items() if k != "n"))
    elif ctx.task != "next_time":  # its order among its own M proposals
        quality = rank_metrics(truth_ranks(test["candidates"], queries["test"].truth), ctx.m)
    else:
        quality = {"rmse_predicted_time": float(np.sqrt(np.mean((test["predicted_time"] -
                                                                  queries["test"].times) ** 2)))}
    with open(ctx.path("proposer_metrics.json"), "w", encoding="utf-8") as f:
        json.dump({ctx.task: quality}, f, indent=2)
    return quality


def proposer_ranks(ctx: StageContext, proposer, queries: dict[str, Queries]) -> np.ndarray | None:
    """The proposer's time-aware filtered rank of each test query's truth among all candidates (a proposer
    with ``filtered_ranks``, :class:`lamp.tpp.contract.SupportsRanks`; object and relation tasks), for the
    metrics over all test queries; None otherwise."""
    if ctx.kind != "tkg" or ctx.task not in ("object", "relation") or not isinstance(proposer, SupportsRanks):
        return None
    ranks = np.asarray(proposer.filtered_ranks(queries["test"].events, ctx.task), dtype=np.float64)
    if ranks.shape != (len(queries["test"].events),):
        raise ValueError(f"the proposer's filtered_ranks gave shape {ranks.shape} for {len(queries['test'].events)} "
                         "test queries")
    return ranks
