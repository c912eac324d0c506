"""The containers every stage reads: :class:`EventSequences` (one split) and :class:`EventStore` (a data set).

Columns are NumPy arrays laid out back to back with ``offsets``, so the C kernels take them without copying.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from lamp import _core
from lamp.errors import DataError

__all__ = ["DataError", "EventSequences", "EventStore"]


class EventSequences:
    """One split of a data set: ``S`` event sequences holding ``N`` events in all.

    Parameters
    ----------
    times : array of float64, shape (N,)
        Event times, non-decreasing within each sequence.
    marks : array of int64, shape (N,)
        Event types in ``[0, num_types)``.  For a temporal knowledge graph the
        mark is the relation id.
    offsets : array of int64, shape (S + 1,)
        Sequence ``s`` holds events ``offsets[s]:offsets[s + 1]``.
    num_types : int
        Number of event types ``K``.
    subjects, objects : array of int64, shape (N,), optional
        Entity ids of knowledge-graph events (quadruples ``(s, r, o, t)``).
    texts : list of str, optional
        A text per event, when the data has one (reviews).
    dtimes : array of float64, shape (N,), optional
        Time since the previous event as given by the source (EasyTPP's
        ``time_since_last_event``, which need not equal ``diff(times)``).
    fields : dict, optional
        Extra per-event columns (arrays or lists of length N).
    sequence_ids : list, optional
        An identifier per sequence (EasyTPP ``seq_idx``, Amazon ``user_id``).
    type_names : list of str, optional
        Names of the event types, when known.

    Notes
    -----
    The columns are validated on construction by the C core; a bad column
    raises :class:`DataError` naming the sequence and event.
    """

    def __init__(self, times, marks, offsets=None, num_types: int | None = None, *, subjects=None, objects=None,
                 texts: Sequence[str] | None = None, dtimes=None, fields: dict[str, Any] | None = None,
                 sequence_ids: Sequence[Any] | None = None, type_names: Sequence[str] | None = None,
                 source: str | None = None):
        self.times = _column(times, np.float64, "times")
        self.marks = _column(marks, np.int64, "marks")
        n = len(self.times)
        if len(self.marks) != n:
            raise ValueError(f"'marks' has {len(self.marks)} events but 'times' has {n}")
        self.offsets = _column(np.array([0, n]) if offsets is None else offsets, np.int64, "offsets")
        if num_types is None:
            num_types = int(self.marks.max()) + 1 if n else 0
        self.num_types = int(num_types)
        self.source = source
        try:
            _core.check_sequences(self.times, self.marks, self.offsets, self.num_types)
        except ValueError as exc:
            seq = getattr(exc, "sequence", -1)
            raise DataError(str(exc), path=source, sequence=None if seq is None or seq < 0 else seq) from None
        self.subjects = None if subjects is None else _column(subjects, np.int64, "subjects", n)
        self.objects = None if objects is None else _column(objects, np.int64, "objects", n)
        self.dtimes = None if dtimes is None else _column(dtimes, np.float64, "dtimes", n)
        if texts is not None and len(texts) != n:
            raise ValueError(f"'texts' has {len(texts)} entries but there are {n} events")
        self.texts = None if texts is None else list(texts)
        self.fields = {}
        for name, column in (fields or {}).items():
            if len(column) != n:
                raise ValueError(f"field {name!r} has {len(column)} entries but there are {n} events")
            self.fields[name] = column
        if sequence_ids is not None and len(sequence_ids) != self.num_sequences:
            raise ValueError(f"'sequence_ids' has {len(sequence_ids)} entries but there are "
                             f"{self.num_sequences} sequences")
        self.sequence_ids = None if sequence_ids is None else list(sequence_ids)
        if type_names is not None and len(type_names) != self.num_types:
            raise ValueError(f"'type_names' has {len(type_names)} names but there are {self.num_types} types")
        self.type_names = None if type_names is None else list(type_names)

    def __len__(self) -> int:
        return len(self.times)

    @property
    def num_sequences(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def is_tkg(self) -> bool:
        return self.subjects is not None

    def sequence(self, i: int) -> "EventSequences":
        """Sequence ``i`` alone (NumPy views of the columns, lists copied)."""
        s = self.num_sequences
        if not -s <= i < s:
            raise IndexError(f"sequence index {i} is out of range for {s} sequences")
        i %= s
        b, e = int(self.offsets[i]), int(self.offsets[i + 1])
        return EventSequences(
            self.times[b:e], self.marks[b:e], np.array([0, e - b]), self.num_types,
            subjects=None if self.subjects is None else self.subjects[b:e],
            objects=None if self.objects is None else self.objects[b:e],
            texts=None if self.texts is None else self.texts[b:e],
            dtimes=None if self.dtimes is None else self.dtimes[b:e],
            fields={k: v[b:e] for k, v in self.fields.items()},
            sequence_ids=None if self.sequence_ids is None else [self.sequence_ids[i]],
            type_names=self.type_names, source=self.source)

    def sequences(self) -> Iterable["EventSequences"]:
        """Iterate over the sequences one at a time."""
        for i in range(self.num_sequences):
            yield self.sequence(i)

    def time_deltas(self) -> np.ndarray:
        """Time since the previous event of the same sequence (0 for first events),
        or the source's own ``dtimes`` when it had them."""
        if self.dtimes is not None:
            return self.dtimes
        deltas = np.diff(self.times, prepend=0.0)
        deltas[self.offsets[:-1][self.lengths > 0]] = 0.0
        return deltas

    def quadruples(self) -> np.ndarray:
        """Knowledge-graph events as an int64 array (N, 4) of (subject, relation, object, time)."""
        if not self.is_tkg:
            raise ValueError("these sequences are not knowledge-graph events (no subjects/objects)")
        return np.stack([self.subjects, self.marks, self.objects, self.times.astype(np.int64)], axis=1)

    def __repr__(self) -> str:
        kind = "knowledge-graph events" if self.is_tkg else "events"
        return (f"EventSequences({len(self)} {kind} in {self.num_sequences} sequence"
                f"{'s' if self.num_sequences != 1 else ''}, {self.num_types} types)")

    @classmethod
    def from_lists(cls, times: Sequence[Sequence[float]], marks: Sequence[Sequence[int]],
                   num_types: int | None = None, **kwargs) -> "EventSequences":
        """Build from per-sequence lists of times and marks."""
        if len(times) != len(marks):
            raise ValueError(f"'times' has {len(times)} sequences but 'marks' has {len(marks)}")
        lengths = [len(t) for t in times]
        for i, (t, m) in enumerate(zip(times, marks)):
            if len(t) != len(m):
                raise DataError(f"{len(t)} times but {len(m)} marks", sequence=i)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        flat_t = np.concatenate([np.asarray(t, dtype=np.float64) for t in times]) if times else np.zeros(0)
        flat_m = np.concatenate([_int_array(m, "marks", i) for i, m in enumerate(marks)]) if marks else \
            np.zeros(0, np.int64)
        return cls(flat_t, flat_m, offsets, num_types, **kwargs)


@dataclass
class EventStore:
    """A data set: train/valid/test splits plus the names of its types and entities.

    For a temporal knowledge graph (``kind == "tkg"``) each split is one
    time-ordered stream of quadruples and the marks are relation ids.
    """

    name: str
    kind: str
    train: EventSequences | None
    valid: EventSequences | None
    test: EventSequences | None
    num_types: int
    type_names: list[str] | None = None
    entity_names: list[str] | None = None
    relation_names: list[str] | None = None
    time_unit: str = "unit"
    time_origin: str | None = None
    source: str | None = None
    attribution: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_entities(self) -> int:
        return 0 if self.entity_names is None else len(self.entity_names)

    @property
    def num_relations(self) -> int:
        return 0 if self.relation_names is None else len(self.relation_names)

    @property
    def splits(self) -> dict[str, EventSequences]:
        return {k: v for k, v in (("train", self.train), ("valid", self.valid), ("test", self.test))
                if v is not None}

    def time_step(self) -> float:
        """The data's unit of time for windows and encodings: a knowledge graph's smallest positive gap
        between training timestamps; for typed sequences the median positive gap between consecutive events
        of a training sequence (1 when there is none)."""
        train = self.train
        if train is None or len(train) == 0:
            return 1.0
        if self.kind == "tkg":
            gaps = np.diff(np.unique(train.times))
            return float(gaps[gaps > 0].min()) if np.any(gaps > 0) else 1.0
        same_sequence = np.diff(np.repeat(np.arange(train.num_sequences), train.lengths)) == 0
        gaps = np.diff(train.times)[same_sequence]
        gaps = gaps[gaps > 0]
        return float(np.median(gaps)) if len(gaps) else 1.0

    def stream(self, splits=("train", "valid", "test")) -> tuple[np.ndarray, np.ndarray]:
        """The knowledge-graph events of ``splits`` as one stream in time order: ``(quadruples (N, 4),
        times (N,))``, equal times kept in split order."""
        parts = [getattr(self, s) for s in splits if getattr(self, s) is not None]
        quads = np.concatenate([p.quadruples() for p in parts])
        times = np.concatenate([p.times for p in parts])
        order = np.argsort(times, kind="stable")
        return quads[order], times[order]

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={len(v)}" for k, v in self.splits.items())
        names = f", {self.num_entities} entities, {self.num_relations} relations" if self.kind == "tkg" else ""
        return f"EventStore({self.name!r}, {self.kind}, {counts}, {self.num_types} types{names})"

    def summary(self) -> str:
        """A few lines describing the data set, for people."""
        lines = [f"{self.name} ({'temporal knowledge graph' if self.kind == 'tkg' else 'typed event sequences'})"]
        if self.kind == "tkg":
            lines.append(f"  {self.num_entities:,} entities, {self.num_relations:,} relations, "
                         f"time unit: {self.time_unit}")
        else:
            lines.append(f"  {self.num_types} event types, time unit: {self.time_unit}")
        for k, v in self.splits.items():
            span = f"t in [{v.times.min():g}, {v.times.max():g}]" if len(v) else "empty"
            lines.append(f"  {k:5s}: {len(v):>8,} events in {v.num_sequences:,} sequence(s), {span}")
        if self.attribution:
            lines.append(f"  source: {self.attribution}")
        return "\n".join(lines)



# --------------------------------------------------------------------------
# column helpers


def _column(values, dtype, name: str, n: int | None = None) -> np.ndarray:
    arr = np.asarray(values)
    if dtype == np.int64 and arr.size and arr.dtype.kind not in "iub":
        raise TypeError(f"'{name}' must hold integers, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if arr.ndim != 1:
        raise ValueError(f"'{name}' must be one-dimensional, got shape {arr.shape}")
    if n is not None and len(arr) != n:
        raise ValueError(f"'{name}' has {len(arr)} entries but there are {n} events")
    return arr


def _int_array(values, name: str, sequence: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.size and arr.dtype.kind not in "iub":
        raise DataError(f"'{name}' must be integers, got {arr.dtype}", sequence=sequence)
    return arr.astype(np.int64)


def _existing(path: str) -> str | None:
    for candidate in (path, path + ".gz"):
        if os.path.isfile(candidate):
            return candidate
    return None


def _require_file(path) -> str:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    if os.path.isdir(path):
        raise DataError("is a directory, expected a file", path=path)
    if os.path.getsize(path) == 0:
        raise DataError("file is empty", path=path)
    return path


