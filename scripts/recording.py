"""What the example scripts share: the metrics table of a ``lamp run`` output, and writing a recorded run and
its table into a documentation page (``docs/recorded/*.txt``, checked by tests/test_docs_numbers.py)."""
from __future__ import annotations

import datetime
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def table(output: str) -> str:
    """The metrics table of a ``lamp run`` output (from ``task:`` to the last note line)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("task: "))
    end = start + 1
    while end < len(lines) and lines[end].startswith("  "):
        end += 1
    return "\n".join(lines[start:end])


def write_record(recorded: str, command: str, lines: list[str], page: str, markers: tuple[str, str],
                 shown_table: str) -> None:
    """``recorded`` gets the command, date, commit and ``lines``; ``page`` the table between its markers."""
    from lamp.report import replace_block

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with open(recorded, "w", encoding="utf-8") as f:
        f.write(f"command: {command}\ndate: {stamp}\ncommit: {commit}\n\n" + "\n".join(lines) + "\n")
    with open(page, encoding="utf-8") as f:
        text = f.read()
    text = replace_block(text, *markers, "```text\n" + shown_table + "\n```", os.path.relpath(page, ROOT))
    with open(page, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"recorded: {os.path.relpath(recorded, ROOT)}; {os.path.relpath(page, ROOT)} updated")
