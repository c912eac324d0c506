"""Record the measured table of abduction per event type (docs/abduction.md) from live study runs.

    python scripts/record_abduction_table.py [RUNS_DIR]

``RUNS_DIR`` holds one folder per experiment of ``lamp/configs/abduction_event_types.yaml``, each a
finished ``lamp run lamp/configs/abduction_event_types.yaml --experiment E --out RUNS_DIR/E``.  With it, each
study's ``metrics.json`` is copied (without its run-specific timings) to
``docs/recorded/abduction_event_types/E.json``; then the table between docs/abduction.md's
``event-type-table`` markers is rewritten from the recorded files (:func:`render`).  Without ``RUNS_DIR`` only
the table is rewritten.  ``tests/test_docs_numbers.py`` checks the page against the recorded files.
"""
from __future__ import annotations

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECORDED = os.path.join(ROOT, "docs", "recorded", "abduction_event_types")
PAGE = os.path.join(ROOT, "docs", "abduction.md")
START, END = "<!-- event-type-table:start -->", "<!-- event-type-table:end -->"
EXPERIMENTS = {"LAMP_icews14_m10": "ICEWS14 object", "LAMP_icews14_m20": "ICEWS14 object",
               "LAMP_gdelt_m20": "GDELT sample object", "LAMP_icews14_actors_next_type": "ICEWS14 actors next_type"}
ROWS = [("headroom", "base", "base (the proposer's order)"), ("headroom", "no_llm", "no_llm (each candidate's own text)"),
        ("headroom", "oracle_ceiling", "candidate oracle (ceiling)"),
        ("type_oracle", "oracle_ceiling", "event-type oracle (ceiling)"), ("rules", "lamp", "rules (mined, no LLM)"),
        ("smollm2", "lamp", "SmolLM2-135M, per event type")]


def _ci(m: dict | None) -> str:
    if not m or m.get("delta_mr") is None:
        return ""
    return f"{m['delta_mr']:+.2f} [{m['low']:+.2f}, {m['high']:+.2f}]"


def _pct(x) -> str:
    return "" if x is None else f"{100 * x:.0f}"


def render() -> str:
    """The markdown table of every recorded experiment, rows in :data:`ROWS` order."""
    lines = ["| data, task | M | n | method | MR | MR vs base [95% CI] | order used | trained ranker's own order: "
             "MR vs base | grounded causes % (true / others) |", "|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for experiment, title in EXPERIMENTS.items():
        path = os.path.join(RECORDED, f"{experiment}.json")
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as f:
            study = json.load(f)
        for run, method, label in ROWS:
            if run not in study["runs"]:
                continue
            task_metrics = next(iter(study["runs"][run]["metrics"].values()))
            m = task_metrics.get(method)
            if m is None:
                continue
            used = (m.get("selection") or {}).get("used", "")
            own = _ci((m.get("ranker_order") or {}).get("vs_base"))
            g = m.get("cause_grounding") or {}
            grounded = f"{_pct(g.get('rate_true'))} / {_pct(g.get('rate_other'))}" if g else ""
            lines.append(f"| {title} | {study['runs'][run]['m']} | {m['n']} | {label} | {m['mr']:.3f} | {_ci(m.get('vs_base'))} "
                         f"| {used if method != 'base' else ''} | {own} | {grounded} |")
        for c in study.get("comparisons") or []:
            if "note" not in c:
                r = c["rankers"]
                notes.append(f"- {title}, M = {study['runs']['headroom']['m']}: SmolLM2 minus rules, as used "
                             f"{c['delta_mr']:+.2f} [{c['low']:+.2f}, {c['high']:+.2f}]; the trained rankers' own "
                             f"orders {r['delta_mr']:+.2f} [{r['low']:+.2f}, {r['high']:+.2f}] (n {c['n']})")
    return "\n".join(lines + [""] + notes)


def main(argv) -> int:
    if argv:
        os.makedirs(RECORDED, exist_ok=True)
        for experiment in EXPERIMENTS:
            source = os.path.join(argv[0], experiment, "metrics.json")
            if not os.path.exists(source):
                print(f"{source}: missing (run that experiment first)", file=sys.stderr)
                continue
            with open(source, encoding="utf-8") as f:
                study = json.load(f)
            study.pop("timings", None)
            with open(os.path.join(RECORDED, f"{experiment}.json"), "w", encoding="utf-8") as f:
                json.dump(study, f, indent=2)
                f.write("\n")
    from lamp.report import replace_block

    with open(PAGE, encoding="utf-8") as f:
        page = replace_block(f.read(), START, END, render(), PAGE)
    with open(PAGE, "w", encoding="utf-8") as f:
        f.write(page)
    print(f"wrote the table into {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
