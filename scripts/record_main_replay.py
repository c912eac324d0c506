"""Re-record the main job's metrics from its recorded LLM replies, and the README's table from them.

    python scripts/record_main_replay.py

runs ``lamp/configs/icews14_main.yaml`` with ``abduction.backend: replay`` on the
answer cache ``notebooks/replay/icews14_main_smollm2.sqlite`` (the replies of a
live run: SmolLM2 at temperature 0 answers deterministically, so replay and live
runs give the same metrics), writes ``notebooks/replay/icews14_main_metrics.json``
and rewrites the table between the README's ``main-job-table`` markers with
:func:`lamp.report.metrics_table` of that file.  Run it after any change that
moves the main job's numbers; ``tests/test_docs_and_notebook.py`` checks both.
"""
import json
import os
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPLAY = os.path.join(ROOT, "notebooks", "replay")
START, END = "<!-- main-job-table:start -->", "<!-- main-job-table:end -->"


def main() -> int:
    from lamp import config as lamp_config
    from lamp.pipeline import Pipeline
    from lamp.report import metrics_table

    cfg = lamp_config.load(os.path.join(ROOT, "lamp", "configs", "icews14_main.yaml"), overrides=[
        "lamp.abduction.backend=replay", f"lamp.abduction.cache={os.path.join(REPLAY, 'icews14_main_smollm2.sqlite')}"])
    out = tempfile.mkdtemp(prefix="lamp_main_replay_")
    try:
        metrics = Pipeline(cfg, out=out, resume=False).run()
    finally:
        shutil.rmtree(out, ignore_errors=True)
    with open(os.path.join(REPLAY, "icews14_main_metrics.json"), "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=2)
        f.write("\n")
    readme_path = os.path.join(ROOT, "README.md")
    with open(readme_path, encoding="utf-8") as f:
        readme = f.read()
    if START not in readme or END not in readme:
        print(f"README.md has no {START} ... {END} block", file=sys.stderr)
        return 1
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    table = "\n".join(line.rstrip() for line in metrics_table(metrics).splitlines())
    with open(readme_path, "w", encoding="utf-8") as f:
        f.write(f"{head}{START}\n```text\n{table}\n```\n{END}{tail}")
    print(f"recorded {os.path.join(REPLAY, 'icews14_main_metrics.json')} and the README table")
    return 0


if __name__ == "__main__":
    sys.exit(main())
