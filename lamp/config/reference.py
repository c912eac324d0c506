"""The configuration reference, generated from the schema (:mod:`lamp.config.schema`).

``docs/configuration.md`` holds :func:`reference_markdown` between the markers
``<!-- config-reference:start -->`` and ``<!-- config-reference:end -->`` (a test compares them);
``lamp config --reference`` prints it, and ``python scripts/config_reference.py`` writes it into the page.
"""
from __future__ import annotations

import json

from lamp.config import schema

__all__ = ["reference_markdown", "replace_reference", "START", "END"]

START = "<!-- config-reference:start -->"
END = "<!-- config-reference:end -->"


def _default(path: str) -> str:
    if path in schema.key_paths() and path not in schema.key_paths(leaves_only=True):
        return ""  # a section: its keys have the defaults
    value = schema.default_of(path)
    if value == {}:
        return "`{}`"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"`{value}`"
    if isinstance(value, list):
        return "`[" + ", ".join(map(str, value)) + "]`"
    return f"`{json.dumps(value)}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def reference_markdown() -> str:
    """One table row per key of the ``lamp`` section: key, default, what it accepts, what it means."""
    lines = ["| key | default | allowed | meaning |", "|---|---|---|---|"]
    for path in schema.key_paths():
        key = path[len("lamp."):]
        lines.append(f"| `{key}` | {_default(path)} | {_cell(schema.allowed(path))} | {_cell(schema.describe(path))} |")
    return "\n".join(lines)


def replace_reference(page: str) -> str:
    """``page`` with the text between the reference markers replaced by :func:`reference_markdown`."""
    from lamp.report import replace_block

    return replace_block(page, START, END, reference_markdown())
