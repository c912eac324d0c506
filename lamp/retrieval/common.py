"""Argument checks shared by the retrieval indexes."""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["text_blob", "check_k", "check_before"]


def text_blob(texts: Sequence[str | bytes], name: str) -> tuple[bytes, np.ndarray]:
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"'{name}' must be a sequence of texts, not a single {type(texts).__name__}")
    parts = []
    for i, t in enumerate(texts):
        if isinstance(t, bytes):
            parts.append(t)
        elif isinstance(t, str):
            parts.append(t.encode("utf-8", errors="replace"))
        else:
            raise TypeError(f"'{name}'[{i}] must be str or bytes, got {type(t).__name__}")
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in parts], out=offsets[1:])
    return b"".join(parts), offsets


def check_k(k, n: int) -> int:
    """``k`` as an int in ``1..n`` (the number of indexed events), else TypeError / ValueError naming it."""
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
        raise TypeError(f"k must be an integer, got {k!r}")
    if not 1 <= k <= n:
        raise ValueError(f"k must be in 1..{n} (the number of indexed events), got {k}")
    return int(k)


def check_before(before, q: int, n: int):
    """The per-query cutoffs (None, or integers of shape (q,) in [0, n]), else TypeError / ValueError."""
    if before is None:
        return None
    before = np.asarray(before)
    if before.dtype.kind not in "iu":
        raise TypeError(f"before must hold integers, got dtype {before.dtype}")
    if before.shape != (q,):
        raise ValueError(f"before must have shape ({q},), got {before.shape}")
    if q and (before.min() < 0 or before.max() > n):
        raise ValueError(f"before must be in [0, {n}], got values in [{before.min()}, {before.max()}]")
    return before
