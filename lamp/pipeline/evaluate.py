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


def evaluate(ctx: StageContext, queries: dict[str, Queries], proposals: dict, energies: dict,
             selections: dict | None = None, extras: dict | None = None, ranker_energies: dict | None = None) -> dict:
    """``{task: {method: metrics}}`` on the test queries; writes metrics.json / .csv / .png and the
    per-query ranks (``test_ranks.npz``) or time errors (``test_errors.npz``).  ``extras``
    (``{method: {key: value}}``, e.g. the cause grounding of ``lamp``) is added to the methods' metrics.
    A method whose trained ranker was not used (the proposer's order was kept) also gets the metrics of the
    ranker's own order, ``ranker_order`` (per-query ranks ``<method>@ranker``): what its evidence gives when
    it is trusted."""
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
    for method, values in (extras or {}).items():
        if method in result:
            result[method].update(values)
    if ORACLE_METHOD in result:
        result[ORACLE_METHOD]["note"] = ORACLE_NOTE
    metrics = {ctx.task: result}
    provenance = {"stages": dict(ctx.run_dir.used), "settings": _canonical(ctx.settings)}
    paths = write_report(ctx.run_dir.path, metrics, plot=ev.plot, provenance=provenance)
    np.savez(ctx.path(name), **per_query)
    print(metrics_table(metrics), flush=True)
    ctx.say(f"metrics written to {paths['json']}")
    return metrics
