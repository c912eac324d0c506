"""Stage 4: the energy ranker trained on each method's evidence, and its energies for the test candidates."""
from __future__ import annotations

import numpy as np

from lamp.pipeline.match import EventWorld
from lamp.pipeline.propose import proposals_fingerprint
from lamp.pipeline.tasks import Queries, StageContext, progress_enabled
from lamp.runs import fingerprint

__all__ = ["ranking_samples", "rerank", "time_scale"]


def ranking_samples(ctx: StageContext, world: EventWorld, q: Queries, prop: dict, evidence_idx: np.ndarray):
    """:class:`lamp.rank.RankingSamples` of one split: candidates, their evidence events and the
    proposer's log-score relative to the query's best as the prior (``ranker.use_proposer_score``)."""
    from lamp.rank import RankingSamples

    n, m = prop["candidates"].shape
    ev, ev_times = world.evidence_events(evidence_idx)
    if ctx.kind == "tkg":
        candidates = effects_triples(ctx, q, prop)
        cand_times = np.repeat(q.times[:, None], m, axis=1)
    else:
        candidates = np.zeros((n, m, 3), dtype=np.int64)
        candidates[..., 1] = prop["candidates"]
        cand_times = prop["times"]
    prior = None
    if ctx.settings["ranker"].get("use_proposer_score", True):
        scores = np.maximum(prop["scores"], 1e-300)
        prior = np.log(scores) - np.log(scores.max(axis=1, keepdims=True))
    return RankingSamples(ev, ev_times, candidates, cand_times, prop["truth"], prior)


def effects_triples(ctx: StageContext, q: Queries, prop: dict) -> np.ndarray:
    from lamp.pipeline.abduce import effects

    n, m = prop["candidates"].shape
    return effects(ctx, q, prop).reshape(n, m, 4)[..., :3]


def time_scale(ctx: StageContext) -> float:
    """The ranker's time unit: a knowledge graph's smallest positive gap between training events; for
    typed sequences the median positive gap between consecutive events of a training sequence."""
    train = ctx.store.train
    if ctx.kind == "tkg":
        gaps = np.diff(np.unique(train.times))
        return float(gaps[gaps > 0].min()) if np.any(gaps > 0) else 1.0
    same_sequence = np.diff(np.repeat(np.arange(train.num_sequences), train.lengths)) == 0
    gaps = np.diff(train.times)[same_sequence]
    gaps = gaps[gaps > 0]
    return float(np.median(gaps)) if len(gaps) else 1.0


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


def rerank(ctx: StageContext, world: EventWorld, queries: dict, proposals: dict, evidence: dict) -> dict:
    """Energies (Q, M) of the test candidates for every method of ``evidence`` (``{method: {split: idx}}``)."""
    from lamp.rank import EnergyRanker, ranker_settings

    r = ctx.settings["ranker"]
    options = ranker_settings(r)
    scale = time_scale(ctx)
    vocab = (ctx.store.num_entities, ctx.store.num_relations) if ctx.kind == "tkg" else (1, ctx.store.num_types)
    energies = {}
    for method, by_split in evidence.items():
        samples = {split: ranking_samples(ctx, world, q, proposals[split], by_split[split])
                   for split, q in queries.items()}

        def compute(samples=samples, method=method):
            ctx.say(f"ranker[{method}]: training on {len(samples['train'])} queries, selecting on "
                    f"{len(samples['valid'])}")
            model = EnergyRanker(*vocab, **options, time_scale=scale, seed=ctx.seed, progress=progress_enabled())
            model.fit(samples["train"], samples["valid"])
            out = {"energies": model.energy(samples["test"]), "params": model.params, "history": model.history,
                   "best_epoch": model.best_epoch}
            for split, smp in samples.items():
                out[f"{split}_evidence"] = _stored_evidence(ctx, smp)
            return out

        settings = {"ranker": r, "method": method, "seed": ctx.seed, "time_scale": scale,
                    "evidence": dict(by_split)}
        out = ctx.stage(f"ranker_{method}", settings, [proposals_fingerprint(proposals), fingerprint(ctx.task)],
                        compute)
        energies[method] = out["energies"]
        ctx.say(f"ranker[{method}]: best epoch {out['best_epoch']}")
    return energies
