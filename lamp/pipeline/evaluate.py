"""Stage 5: metrics of the base order, LAMP and the ablations on the test queries, and the report."""
from __future__ import annotations

import numpy as np

from lamp.pipeline.tasks import Queries, StageContext
from lamp.runs import _canonical
from lamp.report import (
    metrics_table,
    paired_bootstrap,
    paired_bootstrap_errors,
    rank_metrics,
    time_metrics,
    truth_ranks,
    write_report,
)

__all__ = ["evaluate", "rank_results", "time_results", "ORACLE_METHOD"]

ORACLE_METHOD = "oracle_ceiling"
ORACLE_NOTE = ("oracle abducer: what perfect abduction would give with this proposer, matching and ranker "
               "(a ceiling, not a result)")


def rank_results(test: dict, energies: dict, bootstrap: int, seed: int) -> tuple[dict, dict]:
    """Rank metrics of the base order and of each method's energies, with paired-bootstrap intervals of
    each method against the base; also the per-query ranks ``{method: (Q,)}`` (0 = truth not proposed)."""
    truth = test["truth"]
    m = test["candidates"].shape[1]
    ranks = {"base": truth_ranks(np.tile(np.arange(m), (len(truth), 1)), truth)}
    for method, energy in energies.items():
        ranks[method] = truth_ranks(np.argsort(energy, axis=1, kind="stable"), truth)
    result = {}
    for method, r in ranks.items():
        result[method] = rank_metrics(r, m)
        if method != "base":
            result[method]["vs_base"] = paired_bootstrap(ranks["base"], r, num_samples=bootstrap, seed=seed)
    return result, ranks


def time_results(test: dict, q: Queries, energies: dict, bootstrap: int, seed: int) -> tuple[dict, dict]:
    """``next_time``: RMSE / MAE of the chosen candidate's time (base: the most probable sample), with
    paired-bootstrap intervals against the base, and the best of the M samples as a bound."""
    picks = {"base": test["times"][:, 0]}
    for method, energy in energies.items():
        picks[method] = test["times"][np.arange(len(q)), np.argmin(energy, axis=1)]
    errors = {method: t - q.times for method, t in picks.items()}
    result = {}
    for method, err in errors.items():
        result[method] = time_metrics(err)
        if method != "base":
            result[method]["vs_base"] = paired_bootstrap_errors(errors["base"], err, num_samples=bootstrap,
                                                                seed=seed)
    result["best_of_m"] = time_metrics(np.abs(test["times"] - q.times[:, None]).min(axis=1))
    return result, errors


def filtered_ranks_in_top(candidates: np.ndarray, order: np.ndarray, truth: np.ndarray, filter_offsets: np.ndarray,
                          filter_ids: np.ndarray) -> np.ndarray:
    """Per query, the time-aware filtered rank of the truth in a method's order of its M candidates: its
    position (1-based) less the other true answers (``filter_ids[filter_offsets[j]:filter_offsets[j + 1]]``)
    placed before it; 0 where the truth is not among the candidates (``truth`` -1)."""
    out = np.zeros(len(truth))
    for j in np.flatnonzero(truth >= 0):
        p = int(np.flatnonzero(order[j] == truth[j])[0])
        before = candidates[j, order[j, :p]]
        out[j] = p + 1 - np.count_nonzero(np.isin(before, filter_ids[filter_offsets[j]:filter_offsets[j + 1]]))
    return out


def all_query_results(ctx: StageContext, queries: dict[str, Queries], test: dict, energies: dict,
                      proposer_ranks: np.ndarray) -> dict:
    """``{method: {"mrr", "hits@1", "hits@3", "hits@10", "n"}}`` over **all** test queries, time-aware filtered:
    the method's order of the top M where the truth is among them, the proposer's own rank elsewhere (its
    order beyond M, and the queries whose truth it did not propose), so a reranking row reads beside a
    published table.  ``energies`` may include ``<method>@ranker`` orders."""
    from lamp.tpp.kg_hawkes import time_aware_filter

    num = ctx.store.num_entities if ctx.task == "object" else ctx.store.num_relations
    foff, fids = time_aware_filter(queries["test"].events, ctx.task, ctx.store.num_entities)
    candidates, truth = test["candidates"], test["truth"]
    orders = {"base": np.tile(np.arange(candidates.shape[1]), (len(truth), 1))}
    orders.update({method: np.argsort(e, axis=1, kind="stable") for method, e in energies.items()})
    covered = truth >= 0
    out = {}
    for method, order in orders.items():
        ranks = np.asarray(proposer_ranks, dtype=np.float64).copy()
        ranks[covered] = filtered_ranks_in_top(candidates, order, truth, foff, fids)[covered]
        out[method] = {"mrr": float(np.mean(1.0 / ranks)), "hits@1": float(np.mean(ranks <= 1)),
                       "hits@3": float(np.mean(ranks <= 3)), "hits@10": float(np.mean(ranks <= 10)),
                       "n": int(len(ranks)), "candidates": int(num)}
    return out


def all_query_note(result: dict) -> str:
    """One line under the table: each row's MRR / Hits@10 over all test queries."""
    rows = [(m, r["all_queries"]) for m, r in result.items() if isinstance(r, dict) and "all_queries" in r]
    own = [(f"{m}@ranker", r["ranker_order"]["all_queries"]) for m, r in result.items()
           if isinstance(r, dict) and "all_queries" in r.get("ranker_order", {})]
    if not rows:
        return ""
    n = rows[0][1]["n"]
    return (f"  (over all {n} test queries, time-aware filtered, the proposer's rank where the truth is not in the "
            "top M: MRR / Hits@10 " + ", ".join(f"{m} {a['mrr']:.3f} / {a['hits@10']:.3f}" for m, a in rows + own)
            + ")")


def evaluate(ctx: StageContext, queries: dict[str, Queries], proposals: dict, energies: dict,
             selections: dict | None = None, extras: dict | None = None, ranker_energies: dict | None = None,
             proposer_ranks: np.ndarray | None = None) -> dict:
    """``{task: {method: metrics}}`` on the test queries; writes metrics.json / .csv / .png and the
    per-query ranks (``test_ranks.npz``) or time errors (``test_errors.npz``).  ``extras``
    (``{method: {key: value}}``, e.g. the cause grounding of ``lamp``) is added to the methods' metrics.
    A method whose trained ranker was not used (the proposer's order was kept) also gets the metrics of the
    ranker's own order, ``ranker_order`` (per-query ranks ``<method>@ranker``): what its evidence gives when
    it is trusted.  With ``proposer_ranks`` (the proposer's filtered rank of every test query's truth among all
    candidates, :func:`lamp.pipeline.propose.proposer_ranks`) every row also gets ``all_queries``: its
    time-aware filtered MRR / Hits over all test queries (:func:`all_query_results`)."""
    ev = ctx.settings.evaluation
    bootstrap = ev.bootstrap
    selections = dict(selections or {})
    ranker_energies = dict(ranker_energies or {})
    if ctx.settings.abduction.backend == "oracle" and "lamp" in energies:
        # the oracle abducer reads the truth: its row is a ceiling, named so everywhere it appears
        def rename(d):
            return {(ORACLE_METHOD if k == "lamp" else k): v for k, v in (d or {}).items()}

        energies, selections, extras, ranker_energies = (rename(d) for d in (energies, selections, extras,
                                                                              ranker_energies))
    if ctx.task == "next_time":
        result, per_query = time_results(proposals["test"], queries["test"], energies, bootstrap, ctx.seed)
        name = "test_errors.npz"
    else:
        result, per_query = rank_results(proposals["test"], energies, bootstrap, ctx.seed)
        name = "test_ranks.npz"
    for method, selection in selections.items():
        result[method]["selection"] = selection
    unused = {m: e for m, e in ranker_energies.items() if (selections.get(m) or {}).get("used") == "proposer"}
    if unused and ctx.task != "next_time":
        own, own_ranks = rank_results(proposals["test"], unused, bootstrap, ctx.seed)
        for method in unused:
            result[method]["ranker_order"] = own[method]
            per_query[f"{method}@ranker"] = own_ranks[method]
    if proposer_ranks is not None and ctx.task != "next_time":
        every = all_query_results(ctx, queries, proposals["test"],
                                  {**energies, **{f"{m}@ranker": e for m, e in unused.items()}}, proposer_ranks)
        for method, values in every.items():
            if method.endswith("@ranker"):
                result[method[:-len("@ranker")]]["ranker_order"]["all_queries"] = values
            else:
                result[method]["all_queries"] = values
    for method, values in (extras or {}).items():
        if method in result:
            result[method].update(values)
    if ORACLE_METHOD in result:
        result[ORACLE_METHOD]["note"] = ORACLE_NOTE
    metrics = {ctx.task: result}
    provenance = {"stages": dict(ctx.run_dir.used), "settings": _canonical(ctx.settings)}
    paths = write_report(ctx.run_dir.path, metrics, plot=ev.plot, provenance=provenance)
    np.savez(ctx.path(name), **per_query)
    note = all_query_note(result)
    print(metrics_table(metrics) + (f"\n{note}" if note else ""), flush=True)
    ctx.say(f"metrics written to {paths['json']}")
    return metrics
