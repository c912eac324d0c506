"""EasyTPP data: the ``.pkl`` and ``.json`` files of EasyTPP's published data sets."""
from __future__ import annotations

import json
import os
import pickle

import numpy as np

from lamp.data.events import EventSequences, EventStore, _require_file, _open_text
from lamp.errors import DataError

__all__ = ["load_easytpp", "load_easytpp_splits", "save_easytpp_json"]

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




def load_section(section: dict, resolve, name: str | None = None) -> EventStore:
    """An EasyTPP data section (``train_dir``/``valid_dir``/``test_dir``, ``data_specs.num_event_types``)."""
    specs = section.get("data_specs") or {}
    return load_easytpp_splits(*(resolve(section.get(f"{k}_dir")) for k in ("train", "valid", "test")),
                               name=name or "easytpp", num_types=specs.get("num_event_types"))
