"""Model files: NumPy arrays in a ``.npz`` with a JSON header (format version, lamp version, settings)."""
from __future__ import annotations

import json
import os

import numpy as np

from lamp._version import __version__

__all__ = ["save_checkpoint", "load_checkpoint"]


def save_checkpoint(path, kind: str, format_version: int, header: dict, **arrays: np.ndarray) -> None:
    """Write ``arrays`` and ``header`` (plus kind, format and lamp version) to ``path``."""
    meta = {"kind": kind, "format": format_version, "lamp_version": __version__, **header}
    np.savez(path, header=np.array(json.dumps(meta)), **arrays)


def load_checkpoint(path, kind: str, format_version: int, names: tuple[str, ...]) -> tuple[dict, dict]:
    """Read a file written by :func:`save_checkpoint`: ``(header, arrays)``.

    Raises FileNotFoundError for a missing file and ValueError naming the file
    when it is not a ``kind`` checkpoint, lacks one of ``names``, or has
    another format version.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    with np.load(path, allow_pickle=False) as data:
        missing = [n for n in ("header", *names) if n not in data.files]
        if missing:
            raise ValueError(f"{path}: not a {kind} checkpoint (missing {', '.join(missing)})")
        header = json.loads(str(data["header"]))
        arrays = {n: data[n] for n in names}
    if header.get("kind", kind) != kind:
        raise ValueError(f"{path}: holds a {header.get('kind')}, not a {kind}")
    if header.get("format") != format_version:
        raise ValueError(f"{path}: format {header.get('format')} (lamp {header.get('lamp_version')}) is not this "
                         f"version's format {format_version}")
    return header, arrays
