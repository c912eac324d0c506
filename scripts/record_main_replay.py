"""Re-record the main job's results from its recorded LLM replies, and the README's table from them.

    python scripts/record_main_replay.py [LIVE_STUDY_DIR]

With ``LIVE_STUDY_DIR`` (the folder of a live ``bash scripts/main.sh`` run, e.g.
``runs/LAMP_icews14_main``), first copies that run's SmolLM2 answer cache to
``notebooks/replay/icews14_main_smollm2.sqlite`` and its measured stage times to
``notebooks/replay/icews14_main_timings.json`` (with ``scripts/main.sh``'s set-up time).  Then:

- runs the study of ``lamp/configs/icews14_main.yaml`` with the ``smollm2`` run's
  ``abduction.backend: replay`` on that cache (SmolLM2 at temperature 0 answers
  deterministically, so replayed and live runs give the same metrics; the other runs
  need no LLM) and writes ``notebooks/replay/icews14_main_study.json``;
- rewrites the table between the README's ``main-job-table`` markers with
  :func:`lamp.study.study_table` of that file;
- runs the notebook's pipeline (the config's lamp section, replayed) and writes
  ``notebooks/replay/icews14_main_metrics.json``, which the notebook test compares with.

Run it after any change that moves the main job's numbers; ``tests/test_docs_and_notebook.py``
checks the README and the notebook against these files.
"""
import json
import os
import shutil
import sqlite3
import sys
import tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPLAY = os.path.join(ROOT, "notebooks", "replay")
CONFIG = os.path.join(ROOT, "lamp", "configs", "icews14_main.yaml")
CACHE = os.path.join(REPLAY, "icews14_main_smollm2.sqlite")
START, END = "<!-- main-job-table:start -->", "<!-- main-job-table:end -->"


def copy_live(live: str) -> None:
    """The live run's answer cache (one self-contained SQLite file) and its timings."""
    source = os.path.join(live, "smollm2", "llm_cache.sqlite")
    if not os.path.exists(source):
        raise SystemExit(f"{source}: no answer cache; give the folder of a finished live main-job run")
    if os.path.exists(CACHE):
        os.remove(CACHE)
    with sqlite3.connect(source) as db:
        db.execute("VACUUM INTO ?", (CACHE,))
    with open(os.path.join(live, "metrics.json"), encoding="utf-8") as f:
        timings = json.load(f)["timings"]
    setup = os.path.join(live, "setup_seconds.json")  # written by scripts/main.sh
    if os.path.exists(setup):
        with open(setup, encoding="utf-8") as f:
            timings["setup"] = json.load(f)["setup"]
    if timings.get("headroom", {}).get("abduce", 0) < 1:
        raise SystemExit(f"{live}: its stage times are a rerun's (every stage reused); record a first run")
    with open(os.path.join(REPLAY, "icews14_main_timings.json"), "w", encoding="utf-8") as f:
        json.dump({"source": "a live run of bash scripts/main.sh on this 2-core machine", "seconds": timings}, f,
                  indent=2)
        f.write("\n")


def replay_config(study: bool):
    from lamp import config as lamp_config

    with open(CONFIG, encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    block = raw["LAMP_icews14_main"]
    if study:
        block["study"]["runs"]["smollm2"].update({"abduction.backend": "replay", "abduction.cache": CACHE})
    else:
        del block["study"]
        block["lamp"]["abduction"].update({"backend": "replay", "cache": CACHE})
    return lamp_config.loads(yaml.safe_dump(raw, sort_keys=False), path=CONFIG)


def main() -> int:
    from lamp.pipeline import Pipeline
    from lamp.report import replace_block
    from lamp.study import run_study, study_rows, study_table

    if len(sys.argv) > 1:
        copy_live(sys.argv[1])
    out = tempfile.mkdtemp(prefix="lamp_main_replay_")
    try:
        study = run_study(replay_config(study=True), out=os.path.join(out, "study"), resume=False)
        metrics = Pipeline(replay_config(study=False), out=os.path.join(out, "notebook"), resume=False).run()
    finally:
        shutil.rmtree(out, ignore_errors=True)
    # what the live job ran (not the replay's cache path) and no replay timings: the live ones are in
    # icews14_main_timings.json
    with open(CONFIG, encoding="utf-8") as f:
        study["runs"]["smollm2"]["settings"] = yaml.safe_load(f)["LAMP_icews14_main"]["study"]["runs"]["smollm2"]
    study["runs"]["smollm2"]["backend"] = "local"
    study["rows"] = study_rows(study["runs"])
    del study["timings"]
    for row in study["literature"]["measured"].values():
        row.pop("seconds", None)  # the replay's own; the live run's are in icews14_main_timings.json
    for name, value in (("icews14_main_study.json", study), ("icews14_main_metrics.json", metrics)):
        with open(os.path.join(REPLAY, name), "w", encoding="utf-8") as f:
            json.dump(value, f, indent=2)
            f.write("\n")
    readme_path = os.path.join(ROOT, "README.md")
    table = "\n".join(line.rstrip() for line in study_table(study).splitlines())
    with open(readme_path, encoding="utf-8") as f:
        readme = replace_block(f.read(), START, END, f"```text\n{table}\n```", "README.md")
    with open(readme_path, "w", encoding="utf-8") as f:
        f.write(readme)
    print(f"recorded {REPLAY}/icews14_main_study.json, icews14_main_metrics.json and the README table")
    return 0


if __name__ == "__main__":
    sys.exit(main())
