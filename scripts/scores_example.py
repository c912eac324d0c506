"""Another forecaster's scores reranked by LAMP, worked through on ICEWS14 (docs/proposer.md).

    python scripts/scores_example.py [FOLDER] [--record]

In FOLDER (default: a new temporary folder), on ICEWS14's object task with M = 10, the oracle abducer
and the no-LLM ablation (the test queries of ``query_limit``, the ranker trained on ``train_query_limit``):

1. ``lamp run`` with lamp's ``recurrency`` proposer;
2. ``lamp export-scores`` of the same config: recurrency's scores of the same queries, in the Gastinger et al.
   ``.pkl`` format a reference implementation writes;
3. ``lamp run`` with ``proposer: {model: scores, path: recurrency.pkl}``: the file as the proposer.

Steps 1 and 3 must print the same table.  With ``--record`` the commands and outputs go to
``docs/recorded/scores_example.txt`` and the tables between the ``scores-example`` markers of
docs/proposer.md are rewritten from it (``tests/test_docs_numbers.py`` checks the page against it).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from recording import table, write_record

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECORDED = os.path.join(ROOT, "docs", "recorded", "scores_example.txt")
PAGE = os.path.join(ROOT, "docs", "proposer.md")
START, END = "<!-- scores-example:start -->", "<!-- scores-example:end -->"
CONFIG = "lamp/configs/icews14_object.yaml"
SETTINGS = ["lamp.num_candidates=10", "lamp.query_limit=1000", "lamp.train_query_limit=2000",
            "lamp.abduction.backend=oracle", "lamp.evaluation.ablations=[no_llm]"]


def commands(folder: str) -> list[tuple[str, list[str]]]:
    sets = [a for s in SETTINGS for a in ("--set", s)]
    pkl = os.path.join(folder, "recurrency.pkl")
    return [
        ("recurrency", ["run", CONFIG, *sets, "--set", "lamp.proposer.model=recurrency", "--out",
                        os.path.join(folder, "recurrency")]),
        ("export", ["export-scores", CONFIG, *sets, "--set", "lamp.proposer.model=recurrency", "--out", pkl]),
        ("scores", ["run", CONFIG, *sets, "--set", "lamp.proposer.model=scores", "--set", f"lamp.proposer.path={pkl}",
                    "--out", os.path.join(folder, "scores")]),
    ]


def shown(args: list[str], folder: str) -> str:
    return "lamp " + " ".join(args).replace(folder + os.sep, "").replace(folder, ".")


def main(argv: list[str]) -> int:
    record = "--record" in argv
    args = [a for a in argv if a != "--record"]
    folder = os.path.abspath(args[0] if args else tempfile.mkdtemp(prefix="lamp-scores-example-"))
    os.makedirs(folder, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}
    outputs = {}
    log = []
    for name, cmd in commands(folder):
        started = time.time()
        run = subprocess.run([sys.executable, "-m", "lamp", *cmd], cwd=ROOT, env=env, capture_output=True, text=True)
        lines = [line for line in run.stdout.splitlines() if line.startswith(("[lamp]", "task:", "  ", "wrote"))]
        lines += [line for line in run.stderr.splitlines() if line.startswith("lamp: ")]
        log += [f"$ {shown(cmd, folder)}", *[line.replace(folder + os.sep, "") for line in lines],
                f"(exit {run.returncode}, {time.time() - started:.0f} s)", ""]
        print("\n".join(log[-len(lines) - 3:]), flush=True)
        if run.returncode != 0:
            print(run.stderr[-3000:], file=sys.stderr)
            return run.returncode
        outputs[name] = run.stdout
    same = table(outputs["recurrency"]) == table(outputs["scores"])
    print(f"recurrency and scores tables identical: {same}")
    if not same:
        return 1
    if record:
        write_record(RECORDED, "python scripts/scores_example.py --record", log, PAGE, (START, END),
                     table(outputs["scores"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
