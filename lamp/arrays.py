"""Integer array arguments checked once, for every wrapper of a C kernel: ids, labels and offsets become
``int64`` only when every value fits and is whole, and an error names the argument otherwise (NumPy's own
conversion would wrap ``2**64 - 1`` to ``-1`` and truncate ``100.7`` to ``100`` without a word)."""
from __future__ import annotations

import numpy as np

__all__ = ["as_int64"]

_INT64_MAX = np.iinfo(np.int64).max


def as_int64(values, name: str, whole_floats: bool = False) -> np.ndarray:
    """``values`` as a C-contiguous ``int64`` array.

    Raises ``TypeError`` when they are not integers (booleans count; with ``whole_floats=True`` floats that
    are all whole numbers count too) and ``ValueError`` naming ``name`` and the first offending value when one
    does not fit ``int64`` or is fractional."""
    arr = np.asarray(values)
    kind = arr.dtype.kind
    if arr.size and kind == "f" and whole_floats:
        finite = np.isfinite(arr)
        whole = finite & (arr == np.floor(np.where(finite, arr, 0.0)))
        if not whole.all():
            bad = float(arr.ravel()[np.argmin(whole.ravel())])
            raise ValueError(f"{name} must hold whole numbers, got {bad!r}")
        if np.abs(arr).max() >= 2.0 ** 63:
            raise ValueError(f"{name} holds {float(np.abs(arr).max())!r}, which does not fit int64")
    elif arr.size and kind not in "iub":
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    elif arr.size and kind == "u" and arr.dtype.itemsize >= 8:
        top = arr.max()
        if top > _INT64_MAX:
            raise ValueError(f"{name} holds {int(top)}, which does not fit int64 (at most {_INT64_MAX})")
    return np.ascontiguousarray(arr, dtype=np.int64)
