"""The event store: one in-memory representation of event data, and its loaders.

Every stage of lamp reads events from :class:`EventSequences` (one split) or
:class:`EventStore` (a data set with train/valid/test splits).  Columns are
NumPy arrays laid out back to back with ``offsets``, so the C kernels take
them without copying.

Loaders
-------
- :func:`load_easytpp` / :func:`save_easytpp_json`: EasyTPP pickle and JSON.
- :func:`load_tkg`: temporal knowledge graphs in the ICEWS/GDELT folder layout.
- :func:`load_amazon_jsonl`: Amazon reviews (per-user sequences with text).

Bad input raises :class:`DataError` (a ``ValueError``) naming the file, the
line or sequence, and the problem.  Nothing is silently dropped; where lamp
repairs something (sorting a stream that is out of order) it warns.
"""
from __future__ import annotations

import ast
import gzip
import json
import math
import os
import pickle
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from lamp import _core

__all__ = [
    "DataError",
    "EventSequences",
    "EventStore",
    "load_easytpp",
    "load_easytpp_splits",
    "save_easytpp_json",
    "load_tkg",
    "load_amazon_jsonl",
]


class DataError(ValueError):
    """Malformed event data.  ``path``, ``line`` and ``sequence`` say where (None when unknown)."""

    def __init__(self, message: str, path: str | os.PathLike | None = None, line: int | None = None,
                 sequence: int | None = None):
        where = []
        if path is not None:
            where.append(str(path))
        if line is not None:
            where.append(f"line {line}")
        if sequence is not None:
            where.append(f"sequence {sequence}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
        self.path = None if path is None else str(path)
        self.line = line
        self.sequence = sequence


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


def _open_text(path: str):
    if str(path).endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, "r", encoding="utf-8")


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


# --------------------------------------------------------------------------
# EasyTPP pickle and JSON

_EASYTPP_SPLIT_KEYS = {"train": "train", "dev": "valid", "valid": "valid", "test": "test"}


def load_easytpp(path, split: str | None = None, num_types: int | None = None) -> EventSequences:
    """Load one split of an EasyTPP data set (``.pkl`` or ``.json``, by extension).

    Parameters
    ----------
    path : str or path
        A pickle ``{"dim_process": K, "train"|"dev"|"test": [sequence, ...]}``
        where a sequence is a list of ``{"time_since_start", "time_since_last_event",
        "type_event"}`` dicts; or a JSON file (an array of records, or one
        record per line) with fields ``time_since_start``, ``time_since_last_event``,
        ``type_event``, ``seq_len``, ``seq_idx``, ``dim_process``.
    split : {"train", "dev", "valid", "test"}, optional
        Which split of a pickle holding several.  Required when it holds more than one.
    num_types : int, optional
        Overrides ``dim_process``.
    """
    path = _require_file(path)
    lower = path.lower()
    if lower.endswith((".pkl", ".pickle")):
        return _load_easytpp_pickle(path, split, num_types)
    if lower.endswith((".json", ".jsonl", ".json.gz", ".jsonl.gz")):
        return _load_easytpp_json(path, num_types)
    raise DataError("unknown EasyTPP file type: expected .pkl or .json", path=path)


def load_easytpp_splits(train=None, valid=None, test=None, *, name: str = "easytpp",
                        num_types: int | None = None) -> EventStore:
    """Load EasyTPP train/valid/test files into one :class:`EventStore`."""
    splits = {}
    for key, path, pkl_key in (("train", train, "train"), ("valid", valid, "dev"), ("test", test, "test")):
        if path is None:
            splits[key] = None
            continue
        split = pkl_key if os.fspath(path).lower().endswith((".pkl", ".pickle")) and \
            _pickle_has_several_splits(path) else None
        splits[key] = load_easytpp(path, split=split, num_types=num_types)
    present = [s for s in splits.values() if s is not None]
    if not present:
        raise ValueError("load_easytpp_splits: give at least one of train, valid, test")
    k = max(s.num_types for s in present)
    for s in present:
        s.num_types = k
    return EventStore(name=name, kind="typed", num_types=k, **splits)


def _pickle_has_several_splits(path) -> bool:
    with open(path, "rb") as f:
        data = pickle.load(f)
    return isinstance(data, dict) and sum(k in data for k in ("train", "dev", "test")) > 1


def _load_easytpp_pickle(path: str, split: str | None, num_types: int | None) -> EventSequences:
    try:
        with open(path, "rb") as f:
            data = pickle.load(f, encoding="latin1")
    except Exception as exc:  # pickle raises many types on garbage input
        raise DataError(f"not a readable pickle ({type(exc).__name__}: {exc})", path=path) from None
    if not isinstance(data, dict):
        raise DataError(f"expected a dict with 'dim_process' and a split key, got {type(data).__name__}", path=path)
    present = [k for k in ("train", "dev", "test") if k in data]
    if split is None:
        if len(present) != 1:
            raise DataError(f"holds splits {present or 'none'}; pass split= one of them", path=path)
        split = present[0]
    elif split == "valid" and "valid" not in data:
        split = "dev"
    if split not in data:
        raise DataError(f"has no split {split!r} (it has {present})", path=path)
    k = num_types if num_types is not None else data.get("dim_process")
    if k is None:
        raise DataError("has no 'dim_process' (number of event types); pass num_types=", path=path)
    sequences = data[split]
    if not isinstance(sequences, (list, tuple)):
        raise DataError(f"split {split!r} must be a list of sequences", path=path)
    times, dtimes, marks = [], [], []
    for i, seq in enumerate(sequences):
        t, d, m = [], [], []
        for j, event in enumerate(seq):
            try:
                t.append(float(event["time_since_start"]))
                d.append(float(event["time_since_last_event"]))
                m.append(event["type_event"])
            except (KeyError, TypeError, ValueError) as exc:
                raise DataError(f"event {j} is malformed ({type(exc).__name__}: {exc}); expected keys "
                                "time_since_start, time_since_last_event, type_event",
                                path=path, sequence=i) from None
        times.append(t)
        dtimes.append(d)
        marks.append(m)
    return _typed_from_lists(path, times, dtimes, marks, int(k), sequence_ids=list(range(len(times))))


def _read_json_records(path: str) -> list[dict]:
    with _open_text(path) as f:
        text = f.read()
    if not text.strip():
        raise DataError("file is empty", path=path)
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"invalid JSON: {exc.msg}", path=path, line=exc.lineno) from None
        return records
    records = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DataError(f"invalid JSON: {exc.msg}", path=path, line=lineno) from None
    return records


def _load_easytpp_json(path: str, num_types: int | None) -> EventSequences:
    records = _read_json_records(path)
    times, dtimes, marks, ids = [], [], [], []
    k = num_types
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise DataError("record is not an object", path=path, sequence=i)
        try:
            t = [float(x) for x in rec["time_since_start"]]
            d = [float(x) for x in rec["time_since_last_event"]]
            m = list(rec["type_event"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"record is malformed ({type(exc).__name__}: {exc}); expected lists "
                            "time_since_start, time_since_last_event, type_event", path=path, sequence=i) from None
        if not len(t) == len(d) == len(m):
            raise DataError(f"time_since_start has {len(t)} entries, time_since_last_event {len(d)}, "
                            f"type_event {len(m)}", path=path, sequence=i)
        if "seq_len" in rec and rec["seq_len"] != len(t):
            raise DataError(f"seq_len is {rec['seq_len']} but the sequence has {len(t)} events",
                            path=path, sequence=i)
        if num_types is None and "dim_process" in rec:
            if k is not None and rec["dim_process"] != k:
                raise DataError(f"dim_process {rec['dim_process']} differs from earlier records ({k})",
                                path=path, sequence=i)
            k = int(rec["dim_process"])
        times.append(t)
        dtimes.append(d)
        marks.append(m)
        ids.append(rec.get("seq_idx", i))
    if k is None:
        raise DataError("records have no 'dim_process'; pass num_types=", path=path)
    return _typed_from_lists(path, times, dtimes, marks, int(k), sequence_ids=ids)


def _typed_from_lists(path, times, dtimes, marks, k: int, **kwargs) -> EventSequences:
    if k <= 0:
        raise DataError(f"number of event types must be positive, got {k}", path=path)
    for i, m in enumerate(marks):
        if any(isinstance(x, float) and not float(x).is_integer() for x in m) or \
                any(not isinstance(x, (int, np.integer, float)) or isinstance(x, bool) for x in m):
            raise DataError("type_event must hold integers", path=path, sequence=i)
    marks = [[int(x) for x in m] for m in marks]
    flat_d = np.array([x for d in dtimes for x in d], dtype=np.float64)
    if not np.all(np.isfinite(flat_d)):
        bad = int(np.argmin(np.isfinite(flat_d)))
        seq = int(np.searchsorted(np.cumsum([len(d) for d in dtimes]), bad, side="right"))
        raise DataError("time_since_last_event is not finite", path=path, sequence=seq)
    return EventSequences.from_lists(times, marks, k, dtimes=flat_d, source=path, **kwargs)


def save_easytpp_json(data: EventSequences, path) -> None:
    """Write sequences as EasyTPP JSON (one record per line; EasyTPP and
    HuggingFace ``datasets`` read it), the inverse of :func:`load_easytpp`."""
    if not isinstance(data, EventSequences):
        raise TypeError(f"'data' must be EventSequences, got {type(data).__name__}")
    deltas = data.time_deltas()
    ids = data.sequence_ids or list(range(data.num_sequences))
    with open(path, "w", encoding="utf-8") as f:
        for s in range(data.num_sequences):
            b, e = int(data.offsets[s]), int(data.offsets[s + 1])
            record = {
                "dim_process": data.num_types,
                "seq_len": e - b,
                "seq_idx": ids[s],
                "time_since_start": data.times[b:e].tolist(),
                "time_since_last_event": deltas[b:e].tolist(),
                "type_event": data.marks[b:e].tolist(),
            }
            f.write(json.dumps(record) + "\n")


# --------------------------------------------------------------------------
# Temporal knowledge graphs (ICEWS / GDELT layout)

_TKG_ID_FILES = ("entity2id.txt", "relation2id.txt")


def _read_names(path: str, what: str) -> list[str]:
    names: dict[int, str] = {}
    with _open_text(path) as f:
        for lineno, line in enumerate(f, start=1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            name, sep, idx = line.rpartition("\t")
            if not sep:
                raise DataError(f"expected '<name><TAB><id>', got {line[:80]!r}", path=path, line=lineno)
            try:
                i = int(idx)
            except ValueError:
                raise DataError(f"{what} id {idx!r} is not an integer", path=path, line=lineno) from None
            if i in names:
                raise DataError(f"{what} id {i} appears twice ({names[i]!r} and {name!r})", path=path, line=lineno)
            names[i] = name
    if not names:
        raise DataError(f"no {what} names", path=path)
    n = max(names) + 1
    missing = [i for i in range(n) if i not in names]
    if missing or min(names) < 0:
        raise DataError(f"{what} ids must be 0..{n - 1} without gaps; missing {missing[:5]}", path=path)
    return [names[i] for i in range(n)]


def _read_quadruples(path: str, num_entities: int, num_relations: int) -> np.ndarray:
    rows = []
    with _open_text(path) as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            cols = line.split()
            if len(cols) < 4:
                raise DataError(f"expected at least 4 columns (subject relation object time), got {len(cols)}",
                                path=path, line=lineno)
            try:
                s, r, o = int(cols[0]), int(cols[1]), int(cols[2])
            except ValueError:
                raise DataError(f"subject/relation/object ids must be integers, got {cols[:3]}",
                                path=path, line=lineno) from None
            try:
                t = float(cols[3])
            except ValueError:
                raise DataError(f"time {cols[3]!r} is not a number", path=path, line=lineno) from None
            if not math.isfinite(t):
                raise DataError(f"time {cols[3]!r} is not finite", path=path, line=lineno)
            if not 0 <= s < num_entities:
                raise DataError(f"subject id {s} is not in entity2id.txt (0..{num_entities - 1})",
                                path=path, line=lineno)
            if not 0 <= o < num_entities:
                raise DataError(f"object id {o} is not in entity2id.txt (0..{num_entities - 1})",
                                path=path, line=lineno)
            if not 0 <= r < num_relations:
                raise DataError(f"relation id {r} is not in relation2id.txt (0..{num_relations - 1})",
                                path=path, line=lineno)
            rows.append((s, r, o, t))
    if not rows:
        raise DataError("no events", path=path)
    return np.array(rows, dtype=np.float64)


def _tkg_split(quads: np.ndarray, path: str, num_relations: int) -> EventSequences:
    times = quads[:, 3]
    if np.any(np.diff(times) < 0):
        n_bad = int(np.sum(np.diff(times) < 0))
        warnings.warn(f"{path}: events are not in time order ({n_bad} decreasing steps); lamp sorted them "
                      "(stable, by time)", stacklevel=3)
        quads = quads[np.argsort(times, kind="stable")]
    return EventSequences(quads[:, 3], quads[:, 1].astype(np.int64), None, num_relations,
                          subjects=quads[:, 0].astype(np.int64), objects=quads[:, 2].astype(np.int64), source=path)


def load_tkg(folder, *, name: str | None = None, stream: str | None = None,
             split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), time_unit: str = "unit",
             time_origin: str | None = None, attribution: str | None = None) -> EventStore:
    """Load a temporal knowledge graph folder (ICEWS/GDELT layout).

    The folder holds ``entity2id.txt`` and ``relation2id.txt`` (``name<TAB>id``;
    names may contain spaces) and ``train.txt``/``valid.txt``/``test.txt`` with
    ``subject relation object time [extra...]`` per line (any file may be
    gzipped, ``.txt.gz``).  The result is one time-ordered stream of
    quadruples per split, with text names.

    When the folder has no ``train.txt`` but exactly one other data file (or
    ``stream=`` names one), that stream is split chronologically into
    train/valid/test by ``split_fractions`` at timestamp boundaries (events of
    one timestamp never straddle two splits), with a warning.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder}: no such directory (expected a TKG folder with entity2id.txt, "
                                "relation2id.txt and train/valid/test.txt)")
    id_files = {}
    for fname in _TKG_ID_FILES:
        p = _existing(os.path.join(folder, fname))
        if p is None:
            raise FileNotFoundError(f"{os.path.join(folder, fname)}: no such file (required for a TKG folder)")
        id_files[fname] = _require_file(p)
    entities = _read_names(id_files["entity2id.txt"], "entity")
    relations = _read_names(id_files["relation2id.txt"], "relation")
    name = name or os.path.basename(os.path.normpath(folder))

    split_paths = {k: _existing(os.path.join(folder, f"{k}.txt")) for k in ("train", "valid", "test")}
    if stream is None and split_paths["train"] is not None:
        splits = {}
        for k, p in split_paths.items():
            splits[k] = None if p is None else _tkg_split(
                _read_quadruples(_require_file(p), len(entities), len(relations)), p, len(relations))
        _check_split_order(splits, folder)
    else:
        stream_path = _find_stream(folder, stream)
        quads = _read_quadruples(stream_path, len(entities), len(relations))
        splits = _chronological_split(quads, stream_path, len(relations), split_fractions)
    return EventStore(name=name, kind="tkg", num_types=len(relations), type_names=relations,
                      entity_names=entities, relation_names=relations, time_unit=time_unit,
                      time_origin=time_origin, source=folder, attribution=attribution, **splits)


def _check_split_order(splits: dict, folder: str) -> None:
    order = [(k, v) for k, v in splits.items() if v is not None]
    for (ka, a), (kb, b) in zip(order, order[1:]):
        if len(a) and len(b) and a.times.max() > b.times.min():
            warnings.warn(f"{folder}: {ka} has events after the first {kb} event "
                          f"({a.times.max():g} > {b.times.min():g}); forecasting assumes {ka} precedes {kb}",
                          stacklevel=3)


def _find_stream(folder: str, stream: str | None) -> str:
    if stream is not None:
        p = _existing(os.path.join(folder, stream))
        if p is None:
            raise FileNotFoundError(f"{os.path.join(folder, stream)}: no such file")
        return _require_file(p)
    skip = {"entity2id", "relation2id", "stat"}
    candidates = sorted(f for f in os.listdir(folder)
                        if f.endswith((".txt", ".txt.gz")) and not any(f.startswith(s) for s in skip))
    if len(candidates) != 1:
        raise FileNotFoundError(f"{folder}: no train.txt, and {len(candidates)} other data files "
                                f"({candidates}); pass stream= to choose one")
    return _require_file(os.path.join(folder, candidates[0]))


def _chronological_split(quads: np.ndarray, path: str, num_relations: int,
                         fractions: tuple[float, float, float]) -> dict:
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not math.isclose(sum(fractions), 1.0):
        raise ValueError(f"split_fractions must be three non-negative numbers summing to 1, got {fractions}")
    stream = _tkg_split(quads, path, num_relations)
    times = stream.times
    n = len(times)
    cut1 = int(np.searchsorted(times, times[min(int(n * fractions[0]), n - 1)], side="left"))
    cut2 = int(np.searchsorted(times, times[min(int(n * (fractions[0] + fractions[1])), n - 1)], side="left"))
    warnings.warn(f"{path}: no train/valid/test files; split the stream chronologically at timestamps "
                  f"{times[cut1]:g} and {times[cut2]:g} ({cut1}/{cut2 - cut1}/{n - cut2} events)", stacklevel=3)

    def part(b, e):
        return EventSequences(times[b:e], stream.marks[b:e], None, num_relations, subjects=stream.subjects[b:e],
                              objects=stream.objects[b:e], source=path)

    return {"train": part(0, cut1), "valid": part(cut1, cut2), "test": part(cut2, n)}


# --------------------------------------------------------------------------
# Amazon reviews (JSONL, one user per line: history + heldout)


def _review_product(review: dict, path: str, lineno: int) -> dict:
    product = review.get("product") or {}
    if isinstance(product, str):
        try:
            product = ast.literal_eval(product)
        except (ValueError, SyntaxError):
            raise DataError("field 'product' is neither an object nor a readable literal",
                            path=path, line=lineno) from None
    if not isinstance(product, dict):
        raise DataError("field 'product' must be an object", path=path, line=lineno)
    return product


def load_amazon_jsonl(path, categories: Sequence[str] | None = None,
                      unknown_category: str = "Unknown") -> EventSequences:
    """Load Amazon reviews JSONL (Amazon Reviews 2023 sample layout) as typed sequences with text.

    Each line is a user: ``{"user_id", "history": [review, ...], "heldout": review}``;
    a review has ``timestamp_ms``, ``rating``, ``review_title``, ``review_full``
    and ``product`` (with ``title`` and ``main_category``).  One sequence per
    user (history then heldout), time in days since 1970-01-01, mark = the
    product's main category, text = review title + review text.

    Parameters
    ----------
    categories : list of str, optional
        The category vocabulary (mark ``i`` is ``categories[i]``).  By default
        the sorted categories of this file; pass the training file's list to
        load other splits with the same marks.  A category outside a given
        vocabulary is an error.
    unknown_category : str
        Name used for reviews whose product has no main category.
    """
    path = _require_file(path)
    users = []
    with _open_text(path) as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON: {exc.msg}", path=path, line=lineno) from None
            if not isinstance(rec, dict) or "history" not in rec:
                raise DataError("expected an object with 'user_id', 'history' and 'heldout'", path=path, line=lineno)
            reviews = list(rec.get("history") or [])
            if rec.get("heldout"):
                reviews.append(rec["heldout"])
            events = []
            for review in reviews:
                try:
                    t = float(review["timestamp_ms"]) / 86_400_000.0
                except (KeyError, TypeError, ValueError):
                    raise DataError("a review has no numeric 'timestamp_ms'", path=path, line=lineno) from None
                if not math.isfinite(t):
                    raise DataError("a review has a non-finite 'timestamp_ms'", path=path, line=lineno)
                product = _review_product(review, path, lineno)
                category = product.get("main_category") or unknown_category
                title = str(review.get("review_title") or "")
                body = str(review.get("review_full") or review.get("review_excerpt") or "")
                try:
                    rating = float(review.get("rating")) if review.get("rating") is not None else math.nan
                except (TypeError, ValueError):
                    raise DataError(f"rating {review.get('rating')!r} is not a number", path=path,
                                    line=lineno) from None
                events.append((t, category, f"{title}. {body}".strip(". ").strip(), rating,
                               str(product.get("title") or ""), title))
            if not events:
                raise DataError("user has no reviews", path=path, line=lineno)
            order = sorted(range(len(events)), key=lambda i: events[i][0])
            if order != list(range(len(events))):
                warnings.warn(f"{path}: line {lineno}: reviews were not in time order; lamp sorted them",
                              stacklevel=2)
                events = [events[i] for i in order]
            users.append((rec.get("user_id", str(lineno)), events))
    if not users:
        raise DataError("no users", path=path)
    if categories is None:
        categories = sorted({e[1] for _, evs in users for e in evs})
    index = {c: i for i, c in enumerate(categories)}
    marks, times, texts, ratings, products, titles, cats = [], [], [], [], [], [], []
    for u, (uid, evs) in enumerate(users):
        m = []
        for e in evs:
            if e[1] not in index:
                raise DataError(f"category {e[1]!r} of user {uid} is not in the given categories",
                                path=path, sequence=u)
            m.append(index[e[1]])
            texts.append(e[2])
            ratings.append(e[3])
            products.append(e[4])
            titles.append(e[5])
            cats.append(e[1])
        marks.append(m)
        times.append([e[0] for e in evs])
    seqs = EventSequences.from_lists(
        times, marks, len(categories), texts=texts,
        fields={"rating": np.array(ratings), "product_title": products, "review_title": titles, "category": cats},
        sequence_ids=[uid for uid, _ in users], type_names=categories, source=path)
    return seqs
