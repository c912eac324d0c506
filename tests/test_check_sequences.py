"""num_types >= 1 is checked in C (csrc/data/events.c) wherever event sequences with marks are checked:
0 or a negative number of types raises ValueError naming num_types instead of accepting any mark."""
import numpy as np
import pytest

from lamp import _core
from lamp.data import DataError, EventSequences

TIMES = np.array([0.0, 1.0, 2.0])
MARKS = np.array([0, 7, 123])
OFFSETS = np.array([0, 3])


@pytest.mark.parametrize("num_types", [0, -1, -5])
def test_check_sequences_rejects_num_types_below_one(num_types):
    with pytest.raises(ValueError, match=f"num_types must be >= 1.*got {num_types}"):
        _core.check_sequences(TIMES, MARKS, OFFSETS, num_types)


@pytest.mark.parametrize("num_types", [0, -1])
def test_check_sequences_rejects_num_types_below_one_without_events(num_types):
    with pytest.raises(ValueError, match="num_types"):
        _core.check_sequences(np.zeros(0), np.zeros(0, dtype=np.int64), np.array([0, 0]), num_types)


def test_marks_are_checked_against_num_types():
    with pytest.raises(ValueError, match=r"event 2: type 123 is outside \[0, 100\)"):
        _core.check_sequences(TIMES, MARKS, OFFSETS, 100)
    _core.check_sequences(TIMES, MARKS, OFFSETS, 124)


@pytest.mark.parametrize("num_types", [0, -1])
def test_event_sequences_reject_num_types_below_one(num_types):
    with pytest.raises(DataError, match="num_types") as info:
        EventSequences(TIMES, MARKS, OFFSETS, num_types)
    assert isinstance(info.value, ValueError)


def test_event_sequences_with_num_types_accept_marks_below_it():
    seqs = EventSequences(TIMES, MARKS, OFFSETS, 124)
    assert seqs.num_types == 124
    with pytest.raises(DataError, match="outside"):
        EventSequences(TIMES, MARKS, OFFSETS, 123)
