"""Stage 4: the energy ranker trained on each method's evidence, and its energies for the test candidates."""
from __future__ import annotations

import numpy as np

from lamp.pipeline.match import EventWorld
from lamp.pipeline.propose import proposals_fingerprint
from lamp.pipeline.tasks import Queries, StageContext, excludes_inserted, progress_enabled
from lamp.runs import fingerprint

__all__ = ["ranking_samples", "rerank", "time_scale", "select_against_proposer", "load_ranker_params"]


def ranking_samples(ctx: StageContext, world: EventWorld, q: Queries, prop: dict, evidence: dict):
    """:class:`lamp.rank.RankingSamples` of one split: candidates, their evidence events and the
    proposer's log-score relative to the query's best as the prior (``ranker.use_proposer_score``)."""
    from lamp.rank import RankingSamples

    n, m = prop["candidates"].shape
    ev, ev_times = world.evidence_events(evidence["idx"])
    if ctx.kind == "tkg":
        candidates = effects_triples(ctx, q, prop)
        cand_times = np.repeat(q.times[:, None], m, axis=1)
    else:
        candidates = np.zeros((n, m, 3), dtype=np.int64)
        candidates[..., 1] = prop["candidates"]
        cand_times = prop["times"]
    prior = None
    if ctx.settings.ranker.use_proposer_score:
        scores = np.maximum(prop["scores"], 1e-300)
        prior = np.log(scores) - np.log(scores.max(axis=1, keepdims=True))
    aux = evidence.get("aux") if options_agreement(ctx) else None
    labels = prop["truth"]
    if excludes_inserted(ctx):
        labels = np.where(prop["inserted"], -1, labels)  # -1: not a training query (EnergyRanker.fit skips it)
    return RankingSamples(ev, ev_times, candidates, cand_times, labels, prior, aux)


def options_agreement(ctx: StageContext) -> bool:
    """Whether the ranker is agreement-aware (``ranker.agreement``): only then does it read the evidence's
    retrieval features."""
    return ctx.settings.ranker.agreement


def effects_triples(ctx: StageContext, q: Queries, prop: dict) -> np.ndarray:
    from lamp.pipeline.abduce import effects

    n, m = prop["candidates"].shape
    return effects(ctx, q, prop).reshape(n, m, 4)[..., :3]


def time_scale(ctx: StageContext) -> float:
    """The ranker's time unit: the data's time step (:meth:`lamp.data.EventStore.time_step`)."""
    return ctx.store.time_step()


def _stored_evidence(ctx: StageContext, smp) -> np.ndarray:
    """The evidence as kept in the stage: knowledge graphs (Q, M, L, 4) of (s, r, o, t); typed sequences
    (Q, M, L, 2) of (type, time); -1 padding."""
    pad = smp.evidence[..., 0] < 0 if ctx.kind == "tkg" else smp.evidence[..., 1] < 0
    if ctx.kind == "tkg":
        ev = np.concatenate([smp.evidence, smp.evidence_times[..., None].astype(np.int64)], axis=-1)
    else:
        ev = np.stack([smp.evidence[..., 1].astype(np.float64), smp.evidence_times], axis=-1)
    ev[pad] = -1
    return ev


def proposer_order(m: int, n: int) -> np.ndarray:
    """Energies that keep the proposer's order (position = energy)."""
    return np.tile(np.arange(m, dtype=np.float64), (n, 1))


def select_against_proposer(valid_energies: np.ndarray, labels: np.ndarray, rule: str, p_max: float,
                            bootstrap: int, seed: int) -> dict:
    """Whether the trained ranker or the proposer's order reranks the test candidates.

    Both orders are scored on the validation queries (mean rank of the truth); ``rule == "bootstrap"``
    uses the ranker only when its validation MR is lower and the paired bootstrap's share of resamples
    where it is not lower (``p_not_better``) is at most ``p_max``; ``rule == "ranker"`` always uses it.
    """
    from lamp.report import paired_bootstrap, truth_ranks

    n, m = valid_energies.shape
    base = truth_ranks(np.tile(np.arange(m), (n, 1)), labels)
    ranked = truth_ranks(np.argsort(valid_energies, axis=1, kind="stable"), labels)
    covered = base > 0
    out = {"rule": rule, "p_max": float(p_max), "valid_n": int(covered.sum())}
    if covered.any():
        boot = paired_bootstrap(base, ranked, num_samples=bootstrap, seed=seed)
        out.update(valid_mr_proposer=float(base[covered].mean()), valid_mr_ranker=float(ranked[covered].mean()),
                   delta_mr=boot["delta_mr"], low=boot["low"], high=boot["high"], p_not_better=boot["p_not_better"])
        better = boot["delta_mr"] < 0 and boot["p_not_better"] <= p_max
    else:
        better = False
    out["used"] = "ranker" if rule == "ranker" or better else "proposer"
    return out


def select_by_time(valid_energies: np.ndarray, candidate_times: np.ndarray, rule: str, p_max: float,
                   bootstrap: int, seed: int) -> dict:
    """``next_time``: the same choice by the validation error of the chosen time.  In train and valid the
    real event is the last candidate, so the choice is scored among the M - 1 sampled candidates (as on
    test): the ranker's lowest-energy sample against the proposer's most probable one."""
    from lamp.report import paired_bootstrap_errors

    truth = candidate_times[:, -1]
    samples = candidate_times[:, :-1]
    picked = samples[np.arange(len(samples)), np.argmin(valid_energies[:, :-1], axis=1)]
    base_err, ranker_err = samples[:, 0] - truth, picked - truth
    out = {"rule": rule, "p_max": float(p_max), "valid_n": int(len(truth))}
    better = False
    if len(truth):
        boot = paired_bootstrap_errors(base_err, ranker_err, num_samples=bootstrap, seed=seed)
        out.update(valid_rmse_proposer=float(np.sqrt(np.mean(base_err ** 2))),
                   valid_rmse_ranker=float(np.sqrt(np.mean(ranker_err ** 2))), delta_rmse=boot["delta_rmse"],
                   low=boot["low"], high=boot["high"], p_not_better=boot["p_not_better"])
        better = boot["delta_rmse"] < 0 and boot["p_not_better"] <= p_max
    out["used"] = "ranker" if rule == "ranker" or better else "proposer"
    return out


def load_ranker_params(path: str) -> np.ndarray:
    """The parameters of a trained ranker (``ranker.init_from``): a ranker stage folder of a run
    (``<run>/ranker_<method>``, its ``arrays.npz``) or a checkpoint written by :meth:`lamp.rank.EnergyRanker.save`."""
    import os

    from lamp.errors import ConfigError

    if os.path.isdir(path):
        arrays = os.path.join(path, "arrays.npz")
        if not os.path.exists(os.path.join(path, "DONE")) or not os.path.exists(arrays):
            raise ConfigError(f"lamp.ranker.init_from {path}: not a finished ranker stage folder (no DONE or "
                              "arrays.npz); run the run that trains it first")
        try:
            with np.load(arrays, allow_pickle=False) as data:
                if "params" not in data.files:
                    raise ConfigError(f"lamp.ranker.init_from {path}: its arrays.npz holds no ranker parameters")
                return np.asarray(data["params"], dtype=np.float64)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"lamp.ranker.init_from {path}: cannot read arrays.npz ({exc})") from None
    if not os.path.isfile(path):
        raise ConfigError(f"lamp.ranker.init_from {path}: no such file or folder")
    from lamp.rank import EnergyRanker

    try:
        return EnergyRanker.load(path).params
    except (OSError, ValueError) as exc:
        raise ConfigError(f"lamp.ranker.init_from {path}: not a ranker checkpoint ({exc})") from None


def rerank(ctx: StageContext, world: EventWorld, queries: dict, proposals: dict, evidence: dict
           ) -> tuple[dict, dict, dict]:
    """Energies (Q, M) of the test candidates for every method of ``evidence`` (``{method: {split: idx}}``),
    for each method the validation selection between the trained ranker and the proposer's order
    (:func:`select_against_proposer`: a method whose ranker is not better on validation keeps the
    proposer's order on test), and the trained rankers' own energies (what each evidence gives when it is
    trusted, reported beside the order used)."""
    from lamp.errors import ConfigError
    from lamp.rank import EnergyRanker

    r = ctx.settings.ranker
    rule, p_max = r.selection, r.selection_p
    scale = time_scale(ctx)
    vocab = (ctx.store.num_entities, ctx.store.num_relations) if ctx.kind == "tkg" else (1, ctx.store.num_types)
    bootstrap = ctx.settings.evaluation.bootstrap
    init = load_ranker_params(ctx.resolve_path(r.init_from)) if r.init_from else None
    energies, selections, own = {}, {}, {}
    for method, by_split in evidence.items():
        samples = {split: ranking_samples(ctx, world, q, proposals[split], by_split[split])
                   for split, q in queries.items()}

        def compute(samples=samples, method=method):
            ctx.say(f"ranker[{method}]: training on {len(samples['train'])} queries, selecting on "
                    f"{len(samples['valid'])}")
            model = EnergyRanker.from_settings(r, *vocab, time_scale=scale, seed=ctx.seed, progress=progress_enabled())
            if init is not None:
                try:
                    model.warm_start(init, aux=samples["train"].num_aux)
                except ValueError as exc:
                    raise ConfigError(f"lamp.ranker.init_from {r.init_from}: {exc}") from None
                ctx.say(f"ranker[{method}]: starting from the parameters of {r.init_from}")
            model.fit(samples["train"], samples["valid"])
            valid = samples["valid"]
            if ctx.task == "next_time":
                selection = select_by_time(model.energy(valid), valid.candidate_times, rule, p_max, bootstrap,
                                           ctx.seed)
            else:
                selection = select_against_proposer(model.energy(valid), valid.labels, rule, p_max, bootstrap,
                                                    ctx.seed)
            test = samples["test"]
            ranker_energies = model.energy(test)
            out = {"ranker_energies": ranker_energies, "params": model.params, "history": model.history,
                   "best_epoch": model.best_epoch, "selection": selection,
                   "energies": ranker_energies if selection["used"] == "ranker" else
                   proposer_order(test.candidates.shape[1], len(test))}
            for split, smp in samples.items():
                out[f"{split}_evidence"] = _stored_evidence(ctx, smp)
            return out

        settings = {"ranker": r, "init_params": None if init is None else fingerprint(init),
                    "method": method, "seed": ctx.seed, "time_scale": scale,
                    "evidence": dict(by_split), "bootstrap": bootstrap}
        out = ctx.stage(f"ranker_{method}", settings, [proposals_fingerprint(proposals), fingerprint(ctx.task)],
                        compute)
        energies[method], selections[method], own[method] = out["energies"], out["selection"], out["ranker_energies"]
        sel = out["selection"]
        key = "rmse" if ctx.task == "next_time" else "mr"
        valid_text = (f"validation {key.upper()} {sel[f'valid_{key}_ranker']:.4g} vs proposer "
                      f"{sel[f'valid_{key}_proposer']:.4g} (p_not_better {sel['p_not_better']:.3f}, n "
                      f"{sel['valid_n']})" if "p_not_better" in sel else "no covered validation query")
        ctx.say(f"ranker[{method}]: best epoch {out['best_epoch']}; {valid_text}: test reranked by the "
                f"{'trained ranker' if sel['used'] == 'ranker' else 'proposer order'}")
    return energies, selections, own
