"""Metrics of reranked proposals, paired bootstrap intervals, and the report files (JSON, CSV, PNG).

Each method orders the same M proposals of the same queries.  ``rank`` is the
1-based position of the ground truth in a method's order, or 0 when the truth
is not among the proposals (a *miss*: the proposer did not cover it).
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
from typing import Mapping

import numpy as np

__all__ = ["write_json_atomic", "set_aside_metrics", "replace_block", "truth_ranks", "rank_metrics", "paired_bootstrap", "time_metrics", "paired_bootstrap_errors",
           "metrics_table", "write_report", "forest_plot"]


def truth_ranks(order: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """1-based rank of the truth under ``order``, 0 for a miss.

    Parameters
    ----------
    order : int array (Q, M)
        Candidate indices (0..M-1) from best to worst, per query.
    truth : int array (Q,)
        Index of the true candidate among the M proposals, or -1 when absent.
    """
    order = np.asarray(order)
    truth = np.asarray(truth)
    if order.ndim != 2 or truth.shape != (order.shape[0],):
        raise ValueError(f"order must be (Q, M) and truth (Q,), got {order.shape} and {truth.shape}")
    hit = order == truth[:, None]
    ranks = np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, 0)
    ranks[truth < 0] = 0
    return ranks.astype(np.int64)


def rank_metrics(ranks: np.ndarray, m: int) -> dict[str, float]:
    """The paper's metrics and the full-coverage ones.

    ``mr``/``mrr``/``hits@k`` are over the queries whose truth is among the
    proposals (the paper's convention; random order gives MR = (M + 1)/2);
    ``coverage`` is the share of such queries; ``mr_all``/``mrr_all`` count a
    miss as rank M + 1.
    """
    ranks = np.asarray(ranks)
    covered = ranks[ranks > 0]
    n = int(len(ranks))
    all_ranks = np.where(ranks > 0, ranks, m + 1).astype(np.float64)
    out = {
        "n": int(len(covered)),
        "n_queries": n,
        "coverage": float(len(covered) / n) if n else float("nan"),
        "mr": float(covered.mean()) if len(covered) else float("nan"),
        "mrr": float((1.0 / covered).mean()) if len(covered) else float("nan"),
        "hits@1": float((covered <= 1).mean()) if len(covered) else float("nan"),
        "hits@3": float((covered <= 3).mean()) if len(covered) else float("nan"),
        "mr_all": float(all_ranks.mean()) if n else float("nan"),
        "mrr_all": float((1.0 / all_ranks).mean()) if n else float("nan"),
        "random_mr": (m + 1) / 2,
    }
    return out


def paired_bootstrap(base_ranks: np.ndarray, other_ranks: np.ndarray, num_samples: int = 1000,
                     seed: int = 0, level: float = 0.95) -> dict[str, float]:
    """Paired bootstrap of the MR difference ``other - base`` over covered queries.

    Returns the observed difference, its ``level`` interval, and the share of
    resamples in which ``other`` is not better (a one-sided p-value).  A gain
    is significant when the whole interval is below zero.
    """
    base_ranks = np.asarray(base_ranks)
    other_ranks = np.asarray(other_ranks)
    if base_ranks.shape != other_ranks.shape:
        raise ValueError("base_ranks and other_ranks must describe the same queries")
    covered = (base_ranks > 0) & (other_ranks > 0)
    diff = (other_ranks[covered] - base_ranks[covered]).astype(np.float64)
    if len(diff) == 0:
        return {"delta_mr": float("nan"), "low": float("nan"), "high": float("nan"), "p_not_better": float("nan"),
                "n": 0}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(diff), size=(num_samples, len(diff)))
    means = diff[idx].mean(axis=1)
    alpha = (1.0 - level) / 2
    return {"delta_mr": float(diff.mean()), "low": float(np.quantile(means, alpha)),
            "high": float(np.quantile(means, 1 - alpha)), "p_not_better": float((means >= 0).mean()),
            "n": int(len(diff))}


def time_metrics(errors: np.ndarray) -> dict[str, float]:
    """RMSE and MAE of predicted minus true times (time tasks), over ``n`` queries."""
    errors = np.asarray(errors, dtype=np.float64)
    n = int(len(errors))
    return {"rmse": float(np.sqrt(np.mean(errors ** 2))) if n else float("nan"),
            "mae": float(np.mean(np.abs(errors))) if n else float("nan"), "n": n}


def paired_bootstrap_errors(base_errors: np.ndarray, other_errors: np.ndarray, num_samples: int = 1000,
                            seed: int = 0, level: float = 0.95) -> dict[str, float]:
    """Paired bootstrap of the RMSE difference ``other - base`` over the same queries.

    A gain is significant when the whole interval is below zero;
    ``p_not_better`` is the share of resamples where ``other`` is not better.
    """
    base = np.asarray(base_errors, dtype=np.float64)
    other = np.asarray(other_errors, dtype=np.float64)
    if base.shape != other.shape:
        raise ValueError("base_errors and other_errors must describe the same queries")
    if len(base) == 0:
        return {"delta_rmse": float("nan"), "low": float("nan"), "high": float("nan"), "p_not_better": float("nan"),
                "n": 0}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(base), size=(num_samples, len(base)))
    deltas = np.sqrt((other[idx] ** 2).mean(axis=1)) - np.sqrt((base[idx] ** 2).mean(axis=1))
    alpha = (1.0 - level) / 2
    return {"delta_rmse": float(np.sqrt(np.mean(other ** 2)) - np.sqrt(np.mean(base ** 2))),
            "low": float(np.quantile(deltas, alpha)), "high": float(np.quantile(deltas, 1 - alpha)),
            "p_not_better": float((deltas >= 0).mean()), "n": int(len(base))}


def _is_time_task(methods: Mapping) -> bool:
    return "rmse" in next(iter(methods.values()))


def metrics_table(metrics: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """A plain-text table of ``{task: {method: metrics}}`` for the terminal."""
    lines = []
    for task, methods in metrics.items():
        lines.append(f"task: {task}")
        if _is_time_task(methods):
            lines.append(f"  {'method':18s} {'RMSE':>10s} {'MAE':>10s} {'n':>5s}  {'RMSE 95% CI (vs base)':>26s}")
            for method, m in methods.items():
                ci = m.get("vs_base")
                ci_text = f"{ci['delta_rmse']:+.3g} [{ci['low']:+.3g}, {ci['high']:+.3g}]" if ci else ""
                lines.append(f"  {method:18s} {m['rmse']:10.4g} {m['mae']:10.4g} {m['n']:5d}  {ci_text:>26s}")
            lines.append("  (error of the chosen candidate's time; best_of_m: the closest of the M candidates)")
            continue
        rows = [(method, m) for method, m in methods.items()]
        rows += [(f"{method}@ranker", m["ranker_order"]) for method, m in methods.items() if m.get("ranker_order")]
        width = max(18, *(len(method) for method, _ in rows))
        lines.append(f"  {'method':{width}s} {'MR':>7s} {'MRR':>7s} {'H@1':>6s} {'H@3':>6s} {'cover':>6s} "
                     f"{'n':>5s}  {'MR 95% CI (vs base)':>22s}")
        for method, m in rows:
            ci = m.get("vs_base")
            ci_text = f"{ci['delta_mr']:+.2f} [{ci['low']:+.2f}, {ci['high']:+.2f}]" if ci else ""
            lines.append(f"  {method:{width}s} {m['mr']:7.3f} {m['mrr']:7.3f} {m['hits@1']:6.3f} {m['hits@3']:6.3f} "
                         f"{m['coverage']:6.3f} {m['n']:5d}  {ci_text:>22s}")
        first = next(iter(methods.values()))
        lines.append(f"  (random order: MR {first['random_mr']:.1f}; MR/MRR/Hits over the {first['n']} queries "
                     f"whose truth is in the top M)")
        lines.extend(f"  ({method}: {m['note']})" for method, m in methods.items() if m.get("note"))
        kept = [method for method, m in methods.items() if (m.get("selection") or {}).get("used") == "proposer"]
        if kept:
            lines.append(f"  ({', '.join(kept)}: not better than the proposer on validation, so the test "
                         "candidates keep the proposer's order; see 'selection' in metrics.json; <method>@ranker: "
                         "the trained ranker's own order, not used)")
    return "\n".join(lines)


def write_report(folder: str, metrics: Mapping[str, Mapping[str, Mapping[str, float]]], plot: bool = True,
                 provenance: dict | None = None) -> dict:
    """Write ``metrics.csv``, (optionally) ``metrics.png`` and, last and atomically, ``metrics.json`` into
    ``folder``; ``provenance`` (the fingerprints of the stages the metrics come from and the resolved
    settings) is kept in ``metrics.json`` under ``"provenance"``."""
    os.makedirs(folder, exist_ok=True)
    paths = {"json": os.path.join(folder, "metrics.json"), "csv": os.path.join(folder, "metrics.csv")}
    keys = ["mr", "mrr", "hits@1", "hits@3", "coverage", "n", "n_queries", "mr_all", "mrr_all", "rmse", "mae"]
    with open(paths["csv"], "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["task", "method", *keys, "delta_vs_base", "ci_low", "ci_high"])
        for task, methods in metrics.items():
            for method, m in methods.items():
                ci = m.get("vs_base") or {}
                writer.writerow([task, method, *[m.get(k) for k in keys], ci.get("delta_mr", ci.get("delta_rmse")),
                                 ci.get("low"), ci.get("high")])
    if plot:
        paths["png"] = os.path.join(folder, "metrics.png")
        _plot(metrics, paths["png"])
    write_json_atomic(paths["json"], {**metrics, **({"provenance": provenance} if provenance else {})})
    return paths


def write_json_atomic(path: str, value) -> None:
    """Write ``value`` as JSON to ``path`` through a temporary file, fsynced and renamed: readers see the old
    file or the new one, never a part."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(value, f, indent=2, allow_nan=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def set_aside_metrics(folder: str) -> None:
    """Rename ``metrics.json`` / ``.csv`` / ``.png`` of an earlier run to ``metrics.previous.*`` (replacing older
    ones): until this run writes its own, the folder holds no metrics that may disagree with its stages."""
    for ext in ("json", "csv", "png"):
        path = os.path.join(folder, f"metrics.{ext}")
        if os.path.exists(path):
            os.replace(path, os.path.join(folder, f"metrics.previous.{ext}"))


def _plot(metrics, path: str) -> None:
    """A forest plot per task: each method's paired difference to the base (MR or time RMSE) with its 95%
    interval, on an axis fitted to the intervals (differences of 0.1 stay visible)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(metrics)
    heights = [max(2.0, 0.45 * len(metrics[t]) + 1.2) for t in tasks]
    fig, axes = plt.subplots(len(tasks), 1, figsize=(6.4, sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, task in zip(axes[:, 0], tasks):
        methods = metrics[task]
        time_task = _is_time_task(methods)
        rows = [(f"{name} (n {m['n']})", m["vs_base"]) for name, m in methods.items() if m.get("vs_base")]
        forest_plot(ax, rows, "RMSE" if time_task else "MR", f"{task}: difference to the base "
                    f"({'RMSE' if time_task else 'MR'} {methods['base']['rmse' if time_task else 'mr']:.3g})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def forest_plot(ax, rows, key: str = "MR", title: str | None = None) -> None:
    """Draw ``rows`` = ``[(label, vs_base), ...]`` (``vs_base`` as :func:`paired_bootstrap` returns it, or
    its time twin) on ``ax``: a point at the paired difference, a bar over the 95% interval, a line at 0.
    Intervals left of 0 mean lower (better) than the base."""
    delta_key = f"delta_{key.lower()}"
    for y, (label, ci) in enumerate(reversed(rows)):
        d, lo, hi = ci[delta_key], ci["low"], ci["high"]
        color = "#1e8449" if hi < 0 else "#c0392b" if lo > 0 else "#555555"
        ax.plot([lo, hi], [y, y], color=color, linewidth=2.2, solid_capstyle="butt")
        ax.plot([d], [y], "o", color=color, markersize=6)
        ax.annotate(f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]", (hi, y), xytext=(6, 0), textcoords="offset points",
                    va="center", fontsize=8)
    ax.axvline(0.0, color="k", linewidth=0.8)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([label for label, _ in reversed(rows)], fontsize=9)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    if rows:
        lo = min(min(ci["low"] for _, ci in rows), 0.0)
        hi = max(max(ci["high"] for _, ci in rows), 0.0)
        pad = max(0.05, 0.35 * (hi - lo))
        ax.set_xlim(lo - 0.1 * pad, hi + pad)
    ax.set_xlabel(f"{key} minus the base's {key}, 95% paired-bootstrap interval (left = better)")
    if title:
        ax.set_title(title, fontsize=10)


def replace_block(text: str, start: str, end: str, body: str, where: str = "the page") -> str:
    """``text`` with what stands between the markers ``start`` and ``end`` replaced by ``body`` (a recorded
    table written into a documentation page); ValueError when a marker is missing."""
    if start not in text or end not in text:
        raise ValueError(f"{where} has no {start} ... {end} block")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"

