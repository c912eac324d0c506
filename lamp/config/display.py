"""How a config value is shown in an error message."""
from __future__ import annotations

from typing import Any

__all__ = ["show"]


def show(value: Any, limit: int = 60) -> str:
    """A value as error messages show it: ``null``/``true``/``false``, a repr cut at ``limit`` characters."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, int) and value.bit_length() > 200:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - any value must be shown somehow
        text = f"a {type(value).__name__}"
    return text if len(text) <= limit else text[:limit - 3] + "..."
