"""A study: the proposer against the literature and several pipeline runs, reported as one table.

An experiment block with a ``study`` section is run by ``lamp run`` as a study (the main job's
``lamp/configs/icews14_main.yaml`` is one)::

    LAMP_icews14_main:
      base_config: {stage: lamp, dataset_id: icews14}
      lamp: {...}                        # the settings every run starts from
      study:
        literature: [kg_hawkes, recurrency]   # whole test split, both directions, time-aware filtered
        runs:                                  # each: the lamp section with these settings over it
          headroom: {abduction.backend: oracle, query_limit: 3000, train_query_limit: 2000}
          smollm2: {abduction.backend: local, query_limit: 25}

Each run is a :class:`lamp.pipeline.Pipeline` in ``<out>/<run name>`` (its stages resume as usual);
the literature rows are a stage of ``<out>`` itself.  The study writes ``metrics.json``,
``metrics.csv`` and ``metrics.png`` (a forest plot of every method against its run's base, and the
proposers beside the published models) into ``<out>`` and prints the table.
"""
from __future__ import annotations

import csv
import json
import os
import time
from typing import Any

import numpy as np
import yaml

from lamp import config as lamp_config
from lamp.config.names import LLM_BACKENDS
from lamp.config.registry import proposer_names, proposer_spec, resolve
from lamp.errors import ConfigError
from lamp.report import set_aside_metrics, write_json_atomic
from lamp.runs import RunDirectory, data_fingerprint, file_sha256

__all__ = ["LITERATURE", "LITERATURE_SOURCE", "is_study", "parse_study", "run_study", "plan_study", "study_table"]

#: Published time-aware filtered results on ICEWS14 (object and subject queries), in percent: MRR and Hits@10.
LITERATURE_SOURCE = ("Gastinger, Meilicke, Errica, Sztyler, Schuelke, Stuckenschmidt: History Repeats Itself: "
                     "A Baseline for Temporal Knowledge Graph Forecasting. IJCAI 2024, Table 2 (ICEWS14, "
                     "time-aware filtered)")
LITERATURE = {
    "TiRGN": (44.0, 63.8),
    "TLogic": (42.5, 60.3),
    "RE-GCN": (42.1, 62.7),
    "CEN": (41.8, 60.9),
    "xERTE": (40.9, 57.1),
    "RecurrencyBaseline": (37.4, 51.5),
}


def is_study(config: lamp_config.Config) -> bool:
    """Whether the selected experiment block has a ``study`` section."""
    return isinstance(config.experiment, dict) and config.experiment.get("study") is not None


def _literature_entry_ok(entry) -> bool:
    if isinstance(entry, str):
        return entry in proposer_names("tkg")
    return (isinstance(entry, dict) and set(entry) <= {"name", "model", "path", "params"}
            and isinstance(entry.get("name"), str) and bool(entry["name"])
            and entry.get("model") in proposer_names("tkg")
            and isinstance(entry.get("path", ""), str) and isinstance(entry.get("params") or {}, dict))


def _literature_label(name: str, row: dict) -> str:
    """A measured literature row's label: ``lamp NAME`` for lamp's own proposers, else ``NAME (scores)`` etc."""
    proposer = row.get("proposer", name)
    return f"lamp {name}" if proposer == name else f"{name} ({proposer})"


def _literature_name(entry) -> str:
    return entry if isinstance(entry, str) else str(entry.get("name"))


def parse_study(section: Any, where: str = "study") -> dict:
    """``{"literature": [proposer, ...], "runs": {name: {dotted lamp key: value}}}``, checked: one
    :class:`ConfigError` line per problem (run settings are checked again by the config schema)."""
    problems = []
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: expected a mapping with 'literature' and 'runs'")
    unknown = set(section) - {"literature", "runs", "compare"}
    if unknown:
        problems.append(f"{where}: unknown keys {sorted(unknown)}; a study has 'literature', 'runs' and 'compare'")
    literature = section.get("literature") or []
    if not isinstance(literature, list) or not all(_literature_entry_ok(p) for p in literature):
        problems.append(f"{where}.literature: expected a list of knowledge-graph proposers, each a name drawn from "
                        f"{list(proposer_names('tkg'))} or a mapping {{name: ROW NAME, model: PROPOSER, path: FILE, "
                        f"params: {{...}}}} (e.g. another model's scores: model: scores), got {literature!r}")
    names = [_literature_name(p) for p in literature] if isinstance(literature, list) else []
    if len(set(names)) != len(names):
        problems.append(f"{where}.literature: row names must differ, got {names}")
    runs = section.get("runs") or {}
    if not isinstance(runs, dict):
        problems.append(f"{where}.runs: expected a mapping of run name -> settings")
        runs = {}
    for name, sets in runs.items():
        if not isinstance(name, str) or not name.replace("_", "").isalnum():
            problems.append(f"{where}.runs: run name {name!r} must be letters, digits and '_' (it names a folder)")
        if not isinstance(sets, dict) or not all(isinstance(k, str) and k for k in sets):
            problems.append(f"{where}.runs.{name}: expected a mapping of lamp keys (e.g. abduction.backend) -> values")
    if not runs and not literature:
        problems.append(f"{where}: nothing to run (no literature proposers and no runs)")
    compare = section.get("compare") or []
    pairs = []
    if not isinstance(compare, list):
        problems.append(f"{where}.compare: expected a list of [run.method, run.method] pairs")
        compare = []
    for item in compare:
        sides = item if isinstance(item, list) and len(item) == 2 else None
        parsed = [str(x).split(".") for x in sides] if sides and all(isinstance(x, str) for x in sides) else None
        if not parsed or any(len(p) != 2 or p[0] not in runs or not p[1] for p in parsed):
            problems.append(f"{where}.compare: {item!r} is not a pair [run.method, run.method] of this study's runs "
                            f"({', '.join(map(str, runs))}), e.g. [smollm2.lamp, rules.lamp]")
            continue
        pairs.append([tuple(p) for p in parsed])
    if problems:
        raise ConfigError("\n".join(problems))
    return {"literature": list(literature), "runs": {k: dict(v) for k, v in runs.items()}, "compare": pairs}


def compare_runs(folder: str, pairs: list, bootstrap: int, seed: int) -> list[dict]:
    """The paired difference in MR of each ``[(run, method), (run, method)]`` pair (first minus second) over the
    test queries both cover, with its bootstrap interval; only runs with the same test candidates (the same
    queries and proposals) are compared."""
    from lamp.report import paired_bootstrap, rank_metrics

    out = []
    for (run_a, method_a), (run_b, method_b) in pairs:
        row = {"a": f"{run_a}.{method_a}", "b": f"{run_b}.{method_b}"}
        ranks, own, candidates = [], [], []
        for run, method in ((run_a, method_a), (run_b, method_b)):
            with np.load(os.path.join(folder, run, "test_ranks.npz")) as saved:
                if method not in saved.files:
                    raise ConfigError(f"study.compare: run {run!r} has no method {method!r} (it has "
                                      f"{', '.join(f for f in saved.files if '@' not in f)})")
                ranks.append(saved[method])
                own.append(saved[f"{method}@ranker"] if f"{method}@ranker" in saved.files else saved[method])
            with np.load(os.path.join(folder, run, "proposals", "arrays.npz")) as saved:
                candidates.append(saved["test_candidates"])
        if candidates[0].shape != candidates[1].shape or not np.array_equal(*candidates):
            row["note"] = "not comparable: the runs have different test queries or proposals"
        else:
            m = candidates[0].shape[1]
            row.update(paired_bootstrap(ranks[1], ranks[0], num_samples=bootstrap, seed=seed),
                       mr_a=rank_metrics(ranks[0], m)["mr"], mr_b=rank_metrics(ranks[1], m)["mr"])
            row["rankers"] = {**paired_bootstrap(own[1], own[0], num_samples=bootstrap, seed=seed),
                              "mr_a": rank_metrics(own[0], m)["mr"], "mr_b": rank_metrics(own[1], m)["mr"]}
        out.append(row)
    return out


def _run_config(config: lamp_config.Config, sets: dict, folder: str) -> lamp_config.Config:
    """The experiment with one run's settings over its lamp section (after the command line's ``--set``);
    ``{study}`` in a string value is the study's folder (e.g. ``ranker.init_from: "{study}/headroom/ranker_no_llm"``)."""
    def value_of(v):
        return v.replace("{study}", folder) if isinstance(v, str) else v

    overrides = list(config.overrides) + [f"lamp.{key}={json.dumps(value_of(value))}" for key, value in sets.items()]
    text = yaml.safe_dump(config.raw, sort_keys=False)
    return lamp_config.loads(text, config.experiment_id, path=config.path, overrides=overrides)


def literature_rows(store, run_dir: RunDirectory, proposers: list, seed_settings: dict, resume: bool,
                    say, resolve_path=lambda p: p) -> dict:
    """Time-aware filtered MRR and Hits@1/3/10 of knowledge-graph proposers on the whole test split, object and
    subject queries (their ``evaluate(store, split, task, m, both_directions=True)``), as a stage of ``run_dir``.
    An entry is a proposer's name, or ``{name, model, path, params}``: e.g. another model's saved scores
    (``model: scores``, ``path`` relative to the config)."""
    def entry(item):
        """(row name, proposer name, keyword arguments of its factory)."""
        if isinstance(item, str):
            return item, item, dict(seed_settings.get(item) or {})
        params = dict(item.get("params") or {})
        if item.get("path"):
            params["path"] = resolve_path(item["path"])
        return item["name"], item["model"], params

    def compute():
        out = {}
        for item in proposers:
            started = time.time()
            name, proposer, params = entry(item)
            model = resolve(proposer_spec(proposer).factory)(store, "object", **params)
            if not hasattr(model, "evaluate"):
                raise ConfigError(f"study.literature: proposer {name!r} has no evaluate(store, split, task, m, "
                                  "both_directions) method, which the literature rows need")
            result = model.evaluate(store, split="test", task="object", m=10, both_directions=True)
            result["seconds"] = round(time.time() - started, 2)
            if proposer != name:
                result["proposer"] = proposer
            say(f"literature: {name} on the whole test split, both directions ({result['n']} queries): MRR "
                f"{result['mrr']:.3f}, Hits@10 {result['hits@10']:.3f} ({result['seconds']:.0f} s)")
            out[name] = result
        return {"proposers": out}

    files = {}  # a row read from a file is recomputed when the file changes
    for item in proposers:
        if isinstance(item, dict) and item.get("path"):
            path = resolve_path(item["path"])
            if not os.path.isfile(path):
                raise ConfigError(f"study.literature: {item['name']}: {item['path']}: no such file")
            files[item["name"]] = file_sha256(path)
    out = run_dir.stage("literature", {"proposers": proposers, "params": seed_settings, "files": files},
                        [data_fingerprint(store)], compute, resume=resume)
    return dict(out["proposers"])


def run_study(config: lamp_config.Config, out: str | None = None, resume: bool = True, wait: bool = True) -> dict:
    """Run the study of ``config``'s experiment (see the module docstring) and return its metrics.

    The study holds its folder's lock throughout (and each run its own folder's): another process running in
    it is waited for, or with ``wait=False`` is a :class:`~lamp.errors.RunLockedError`."""
    study, folder, run_configs = _prepare(config, out)
    run_dir = RunDirectory(folder)

    def say(message):
        run_dir.log.info(message)
        print(f"[lamp] {message}", flush=True)

    with run_dir.locked(wait, say):
        set_aside_metrics(run_dir.path)
        return _run_study(config, study, run_dir, run_configs, resume, wait, say)


def _run_study(config, study, run_dir, run_configs, resume, wait, say) -> dict:
    from lamp.pipeline import Pipeline

    name = _study_name(config)
    started = time.time()
    say(f"study {name}: literature rows {study['literature'] or 'none'}, runs {list(run_configs)}; results in "
        f"{run_dir.path}")
    store = config.load_data()
    timings: dict[str, Any] = {"data": round(time.time() - started, 2)}
    literature = {}
    if study["literature"]:
        if store.kind != "tkg":
            raise ConfigError(f"{config.experiment_id}.study.literature: data set {store.name!r} is not a temporal "
                              "knowledge graph; the published rows are ICEWS14's")
        clock = time.time()
        params = {config.lamp.proposer_model: dict(config.lamp.proposer.params or {})}
        literature = literature_rows(store, run_dir, study["literature"], params, resume, say,
                                     resolve_path=config.resolve_path)
        timings["literature"] = round(time.time() - clock, 2)
    runs = {}
    for run_name, cfg in run_configs.items():
        clock = time.time()
        say(f"study run {run_name!r}: " + ", ".join(f"{k}={v}" for k, v in study["runs"][run_name].items()))
        pipe = Pipeline(cfg, out=os.path.join(run_dir.path, run_name), resume=resume, wait=wait)
        pipe.load_data(store)
        runs[run_name] = {"metrics": pipe.run(), "settings": study["runs"][run_name],
                          "backend": cfg.lamp.abduction.backend, "m": pipe.m, "task": pipe.task}
        timings[run_name] = {"total": round(time.time() - clock, 2), **pipe.timings}
    comparisons = compare_runs(run_dir.path, study["compare"], config.lamp.evaluation.bootstrap,
                               config.lamp.seed) if study["compare"] else []
    timings["total"] = round(time.time() - started, 2)
    metrics = {"study": name, "dataset": store.name, "comparisons": comparisons, "literature": {
        "source": LITERATURE_SOURCE, "published": {k: {"mrr": v[0] / 100, "hits@10": v[1] / 100}
                                                   for k, v in LITERATURE.items()},
        "measured": literature}, "runs": runs, "rows": study_rows(runs), "timings": timings}
    paths = write_study(run_dir.path, metrics)
    print(study_table(metrics), flush=True)
    say(f"study finished in {timings['total']:.0f} s; table in {paths['json']}, figure in {paths['png']}")
    return metrics


def _study_name(config: lamp_config.Config) -> str:
    return config.experiment_id or config.dataset_id or "lamp"


def _prepare(config: lamp_config.Config, out: str | None) -> tuple[dict, str, dict]:
    """The parsed study, its folder (``out``, default ``lamp.run_dir/<experiment>``) and every run's config,
    all checked before any work."""
    study = parse_study(config.experiment.get("study"), f"{config.experiment_id}.study")
    folder = os.path.abspath(out or os.path.join(config.resolve_path(config.lamp.run_dir) or "runs",
                                                 _study_name(config)))
    return study, folder, {name: _run_config(config, sets, folder) for name, sets in study["runs"].items()}


def plan_study(config: lamp_config.Config, out: str | None = None, wait: bool = True) -> dict:
    """The abduction plan of every run of the study (``lamp plan``): no LLM is asked."""
    from lamp.pipeline import Pipeline

    _, folder, run_configs = _prepare(config, out)
    store, plans = None, {}
    for run_name, cfg in run_configs.items():
        print(f"[lamp] study run {run_name!r}:", flush=True)
        pipe = Pipeline(cfg, out=os.path.join(folder, run_name), wait=wait)
        store = pipe.load_data(store)
        if cfg.lamp.abduction.backend not in LLM_BACKENDS:
            print(f"  abduction backend {cfg.lamp.abduction.backend!r}: no LLM is asked", flush=True)
            continue
        plans[run_name] = pipe.plan()
    return plans


def study_rows(runs: dict) -> list[dict]:
    """One row per (run, method) of the rank tasks: MR, MRR, Hits, n and the interval vs the run's base."""
    rows = []
    for run_name, run in runs.items():
        for task, methods in run["metrics"].items():
            listed = [(method, m, (m.get("selection") or {}).get("used")) for method, m in methods.items()]
            listed += [(f"{method}@ranker", m["ranker_order"], "not used") for method, m in methods.items()
                       if m.get("ranker_order")]
            for method, m, used in listed:
                if "mr" not in m:
                    continue
                ci = m.get("vs_base") or {}
                grounding = m.get("cause_grounding") or {}
                rows.append({
                    "run": run_name, "task": task, "method": method, "backend": run["backend"], "m": run["m"],
                    "mr": m["mr"], "mrr": m["mrr"], "hits@1": m["hits@1"], "hits@3": m["hits@3"], "n": m["n"],
                    "delta_mr": ci.get("delta_mr"), "low": ci.get("low"), "high": ci.get("high"),
                    "used": used, "grounded": grounding.get("rate"), "grounded_true": grounding.get("rate_true"),
                    "grounded_other": grounding.get("rate_other")})
    return rows


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def study_table(metrics: dict) -> str:
    """The study's table as text (what ``lamp run`` prints and the README shows)."""
    lines = []
    lit = metrics["literature"]
    if lit["measured"]:
        n = next(iter(lit["measured"].values()))["n"]
        lines += [f"Proposers on the whole {metrics['dataset']} test split, object and subject queries ({n:,}), "
                  "time-aware filtered (%):",
                  f"  {'model':34s} {'MRR':>6s} {'H@1':>6s} {'H@3':>6s} {'H@10':>6s}"]
        for name, r in lit["measured"].items():
            lines.append(f"  {_literature_label(name, r) + ' (this run)':34s} {_pct(r['mrr']):>6s} {_pct(r['hits@1']):>6s} "
                         f"{_pct(r['hits@3']):>6s} {_pct(r['hits@10']):>6s}")
        for name, r in lit["published"].items():
            lines.append(f"  {name + ' (published)':34s} {_pct(r['mrr']):>6s} {'':>6s} {'':>6s} "
                         f"{_pct(r['hits@10']):>6s}")
        lines.append(f"  (published: {lit['source']})")
    rows = metrics["rows"]
    if rows:
        rw = max(10, *(len(r["run"]) for r in rows))
        mw = max(16, *(len(r["method"]) for r in rows))
        lines += ["Reranking the proposer's top M (MR, MRR, Hits over the test queries whose truth is proposed; "
                  "paired bootstrap vs the run's base):",
                  f"  {'run':{rw}s} {'method':{mw}s} {'M':>3s} {'MR':>6s} {'MRR':>6s} {'H@1':>6s} {'n':>5s} "
                  f"{'MR vs base [95% CI]':>22s} {'order':>8s}  grounded causes % (all / true / others)"]
        for r in rows:
            ci = "" if r["delta_mr"] is None else f"{r['delta_mr']:+.2f} [{r['low']:+.2f}, {r['high']:+.2f}]"
            grounded = "" if r["grounded"] is None else \
                f"{_pct(r['grounded'])} / {_pct(r['grounded_true'])} / {_pct(r['grounded_other'])}"
            order = "" if r["method"] == "base" else (r["used"] or "")
            lines.append(f"  {r['run']:{rw}s} {r['method']:{mw}s} {r['m']:3d} {r['mr']:6.3f} {r['mrr']:6.3f} "
                         f"{r['hits@1']:6.3f} {r['n']:5d} {ci:>22s} {order:>8s}  {grounded}")
        lines.append("  (order: what reranked the test candidates, the trained ranker or the proposer's order when "
                     "the ranker was not better on validation; <method>@ranker: that trained ranker's own order, not "
                     "used, shown for what its evidence gives; oracle_ceiling reads the truth: a ceiling, not a "
                     "result)")
    comparisons = metrics.get("comparisons") or []
    if comparisons:
        lines.append("Paired comparisons between runs (the same test queries; MR of the first minus the second):")
        for c in comparisons:
            if "note" in c:
                lines.append(f"  {c['a']} vs {c['b']}: {c['note']}")
            else:
                r = c["rankers"]
                lines.append(f"  {c['a']} vs {c['b']}: as used MR {c['mr_a']:.3f} vs {c['mr_b']:.3f}, "
                             f"{c['delta_mr']:+.2f} [{c['low']:+.2f}, {c['high']:+.2f}]; the trained rankers' own "
                             f"orders MR {r['mr_a']:.3f} vs {r['mr_b']:.3f}, {r['delta_mr']:+.2f} [{r['low']:+.2f}, "
                             f"{r['high']:+.2f}] (n {c['n']})")
    return "\n".join(lines)


def write_study(folder: str, metrics: dict) -> dict:
    """``metrics.json``, ``metrics.csv`` (one row per run and method) and ``metrics.png``."""
    paths = {k: os.path.join(folder, f"metrics.{k}") for k in ("json", "csv", "png")}
    keys = ["run", "task", "method", "backend", "m", "mr", "mrr", "hits@1", "hits@3", "n", "delta_mr", "low",
            "high", "used", "grounded", "grounded_true", "grounded_other"]
    with open(paths["csv"], "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(keys)
        for r in metrics["rows"]:
            writer.writerow([r[k] for k in keys])
        for name, r in metrics["literature"]["measured"].items():
            writer.writerow(["literature", "object+subject", _literature_label(name, r), "", "", "", r["mrr"], r["hits@1"],
                             r["hits@3"], r["n"], "", "", "", "", "", "", ""])
    _study_figure(metrics, paths["png"])
    write_json_atomic(paths["json"], metrics)  # last: a study stopped early leaves no metrics.json
    return paths


def _study_figure(metrics: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lamp.report import forest_plot

    rows = [(f"{r['run']}: {r['method']} (n {r['n']}" + ("; proposer order kept)" if r["used"] == "proposer" else ")"),
             {"delta_mr": r["delta_mr"], "low": r["low"], "high": r["high"]})
            for r in metrics["rows"] if r["delta_mr"] is not None]
    lit = metrics["literature"]
    panels = int(bool(rows)) + int(bool(lit["measured"]))
    if not panels:
        return
    fig, axes = plt.subplots(1, panels, figsize=(6.6 * panels, max(3.2, 0.5 * max(len(rows), 8) + 1.2)),
                             squeeze=False)
    axes = list(axes[0])
    if rows:
        forest_plot(axes.pop(0), rows, "MR", "LAMP vs its proposer: difference in MR (95% interval)")
    if lit["measured"]:
        ax = axes.pop(0)
        names = [f"lamp {k}" for k in lit["measured"]] + list(lit["published"])
        values = [(r["mrr"], r["hits@10"]) for r in lit["measured"].values()] + \
                 [(r["mrr"], r["hits@10"]) for r in lit["published"].values()]
        y = np.arange(len(names))[::-1]
        ax.barh(y + 0.2, [100 * v[0] for v in values], height=0.4, color="#2e86c1", label="MRR")
        ax.barh(y - 0.2, [100 * v[1] for v in values], height=0.4, color="#aed6f1", label="Hits@10")
        ax.set_yticks(y)
        ax.set_yticklabels(names, fontsize=9)
        for tick, name in zip(ax.get_yticklabels(), names):
            tick.set_fontweight("bold" if name.startswith("lamp ") else "normal")
        ax.set_xlabel("% (time-aware filtered, object and subject queries)")
        ax.set_title("The proposer beside published models (ICEWS14)", fontsize=10)
        ax.set_xlim(0, 100 * max(max(v) for v in values) * 1.3)  # room for the legend right of the bars
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
