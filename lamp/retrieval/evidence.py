"""A candidate's evidence from the events its causes retrieved: merged, de-duplicated on (subject, relation,
object, time), sorted by time, the last ``L`` kept (``lamp._core.assemble_evidence``)."""
from __future__ import annotations

import numpy as np

from lamp import _core

__all__ = ["assemble_evidence"]


def assemble_evidence(hits: np.ndarray, subjects, relations, objects, times, length: int = 10) -> np.ndarray:
    """Evidence of each candidate from the event indices its causes retrieved.

    Parameters
    ----------
    hits : int array (n_candidates, per_candidate)
        Retrieved event indices (e.g. the top-K of every cause, concatenated);
        -1 for none.
    subjects, relations, objects, times : arrays (N,)
        The event columns the indices point into.
    length : int
        L, the number of (most recent) events kept.

    Returns
    -------
    int64 array (n_candidates, length)
        Event indices in time order (de-duplicated on (s, r, o, t)), then -1.
    """
    return _core.assemble_evidence(hits, subjects, relations, objects, times, int(length))
