"""Plain NumPy version of csrc/data/events.c (the tests' oracle)."""
import numpy as np


def first_bad_event(times, marks, offsets, num_types):
    """(sequence, event) of the first invalid event, or None when all are valid."""
    times = np.asarray(times, dtype=np.float64)
    marks = np.asarray(marks, dtype=np.int64)
    for s in range(len(offsets) - 1):
        b, e = offsets[s], offsets[s + 1]
        for i in range(b, e):
            bad = not np.isfinite(times[i]) or (i > b and times[i] < times[i - 1])
            bad = bad or (num_types > 0 and not 0 <= marks[i] < num_types)
            if bad:
                return s, i - b
    return None
