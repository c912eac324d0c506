"""EasyTPP data: the ``.pkl`` and ``.json`` files of EasyTPP's published data sets."""
from __future__ import annotations

import json
import os
import re

import numpy as np

from lamp.data.events import EventSequences, EventStore, _require_file
from lamp.data.validate import as_int, as_time, file_size, load_json, load_pickle, read_text
from lamp.errors import DataError

__all__ = ["load_easytpp", "load_easytpp_splits", "save_easytpp_json", "hub_source", "load_hub_split"]

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

    Notes
    -----
    A pickle is read by a restricted unpickler (:func:`lamp.data.validate.load_pickle`): it builds
    only builtin containers and scalars and NumPy arrays, dtypes and scalars, and refuses anything
    else with a :class:`DataError`.  Times must be finite numbers with ``|t| < 2**62``,
    ``time_since_last_event`` also non-negative, ``type_event`` integers in ``[0, K)``.
    """
    path = _require_file(path)
    if _is_pickle(path):
        return _from_pickle(load_pickle(path), path, split, num_types)
    if path.lower().endswith((".json", ".jsonl", ".json.gz", ".jsonl.gz")):
        return _load_easytpp_json(path, num_types)
    raise DataError("unknown EasyTPP file type: expected .pkl or .json", path=path)


def load_easytpp_splits(train=None, valid=None, test=None, *, name: str = "easytpp",
                        num_types: int | None = None) -> EventStore:
    """Load EasyTPP train/valid/test files into one :class:`EventStore` (each file is read once)."""
    splits = {}
    pickles: dict[str, object] = {}
    for key, path, pkl_key in (("train", train, "train"), ("valid", valid, "dev"), ("test", test, "test")):
        if path is None:
            splits[key] = None
            continue
        if _is_pickle(os.fspath(path)):
            path = _require_file(path)
            real = os.path.realpath(path)
            if real not in pickles:
                pickles[real] = load_pickle(path)
            data = pickles[real]
            several = isinstance(data, dict) and sum(k in data for k in ("train", "dev", "test")) > 1
            splits[key] = _from_pickle(data, path, pkl_key if several else None, num_types)
        else:
            splits[key] = load_easytpp(path, num_types=num_types)
    return _store(splits, name)


def _store(splits: dict, name: str) -> EventStore:
    """The splits (None where absent) as one typed EventStore, every split with the largest number of types."""
    present = [s for s in splits.values() if s is not None]
    if not present:
        raise ValueError("load_easytpp_splits: give at least one of train, valid, test")
    k = max(s.num_types for s in present)
    for s in present:
        s.num_types = k
    return EventStore(name=name, kind="typed", num_types=k, **splits)


def _is_pickle(path: str) -> bool:
    return str(path).lower().endswith((".pkl", ".pickle"))


def _num_types(value, what: str, path: str, line: int | None = None, sequence: int | None = None) -> int:
    return as_int(value, what, path, line, sequence, lo=1, hi=_MAX_TYPES)


def _from_pickle(data, path: str, split: str | None, num_types: int | None) -> EventSequences:
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
    if num_types is not None:
        k = _num_types(num_types, "num_types", path)
    elif data.get("dim_process") is None:
        raise DataError("has no 'dim_process' (number of event types); pass num_types=", path=path)
    else:
        k = _num_types(data["dim_process"], "dim_process", path)
    sequences = data[split]
    if not isinstance(sequences, (list, tuple)):
        raise DataError(f"{split} must be a list of sequences, got {type(sequences).__name__}", path=path)
    budget = file_size(path)  # a pickle cannot hold more events than bytes (except by shared references)
    times, dtimes, marks = [], [], []
    for i, seq in enumerate(sequences):
        if not isinstance(seq, (list, tuple)):
            raise DataError(f"{split}[{i}] must be a list of events, got {type(seq).__name__}", path=path,
                            sequence=i)
        budget -= len(seq)
        if budget < 0:
            raise DataError("holds more events than bytes (shared references?); refusing to expand it",
                            path=path, sequence=i)
        t, d, m = [], [], []
        for j, event in enumerate(seq):
            where = f"{split}[{i}][{j}]"
            if not isinstance(event, dict):
                raise DataError(f"{where} must be a dict with keys time_since_start, time_since_last_event, "
                                f"type_event, got {type(event).__name__}", path=path, sequence=i)
            for key in _FIELDS:
                if key not in event:
                    raise DataError(f"{where} has no {key!r} (expected keys time_since_start, "
                                    "time_since_last_event, type_event)", path=path, sequence=i)
            t.append(as_time(event["time_since_start"], f"{where}.time_since_start", path, sequence=i))
            d.append(_dtime(event["time_since_last_event"], f"{where}.time_since_last_event", path, None, i))
            m.append(as_int(event["type_event"], f"{where}.type_event", path, sequence=i, lo=0, hi=k))
        times.append(t)
        dtimes.append(d)
        marks.append(m)
    return _typed_from_lists(path, times, dtimes, marks, k, sequence_ids=list(range(len(times))))


_FIELDS = ("time_since_start", "time_since_last_event", "type_event")
_MAX_TYPES = 2 ** 31


def _dtime(value, what: str, path: str, line: int | None, sequence: int) -> float:
    d = as_time(value, what, path, line, sequence)
    if d < 0:
        raise DataError(f"{what} {d:g} is negative", path=path, line=line, sequence=sequence)
    return d


def _read_json_records(path: str) -> list[tuple[object, int | None]]:
    """The records of an EasyTPP JSON file with their line (None for the array form)."""
    lines = read_text(path)
    if not any(line.strip() for line in lines):
        raise DataError("file is empty", path=path)
    text = "\n".join(lines)
    if text.lstrip().startswith("["):
        records = load_json(text, path)
        if not isinstance(records, list):
            raise DataError(f"expected a JSON array of records, got {type(records).__name__}", path=path)
        return [(rec, None) for rec in records]
    return [(load_json(line, path, lineno), lineno) for lineno, line in enumerate(lines, start=1) if line.strip()]


def _load_easytpp_json(path: str, num_types: int | None) -> EventSequences:
    return _from_records(_read_json_records(path), path, num_types)


def _from_records(records, path: str, num_types: int | None) -> EventSequences:
    """Sequences from EasyTPP records (``(record, line or None)``), each field checked; ``path`` names the source."""
    times, dtimes, marks, ids, where_marks = [], [], [], [], []
    k = None if num_types is None else _num_types(num_types, "num_types", path)
    for i, (rec, line) in enumerate(records):
        at = "" if line is not None else f"[{i}]."
        if not isinstance(rec, dict):
            raise DataError(f"{at or 'record '}must be an object, got {type(rec).__name__}", path=path,
                            line=line, sequence=i)
        columns = {}
        for key in _FIELDS:
            if key not in rec:
                raise DataError(f"record has no {at}{key} (expected lists time_since_start, "
                                "time_since_last_event, type_event)", path=path, line=line, sequence=i)
            if not isinstance(rec[key], list):
                raise DataError(f"{at}{key} must be a list, got {type(rec[key]).__name__} {rec[key]!r:.40}",
                                path=path, line=line, sequence=i)
            columns[key] = rec[key]
        t = [as_time(x, f"{at}time_since_start[{j}]", path, line, i) for j, x in enumerate(columns[_FIELDS[0]])]
        d = [_dtime(x, f"{at}time_since_last_event[{j}]", path, line, i) for j, x in enumerate(columns[_FIELDS[1]])]
        m = [as_int(x, f"{at}type_event[{j}]", path, line, i, lo=0) for j, x in enumerate(columns[_FIELDS[2]])]
        if not len(t) == len(d) == len(m):
            raise DataError(f"time_since_start has {len(t)} entries, time_since_last_event {len(d)}, "
                            f"type_event {len(m)}", path=path, line=line, sequence=i)
        if "seq_len" in rec and (isinstance(rec["seq_len"], bool) or rec["seq_len"] != len(t)):
            raise DataError(f"{at}seq_len is {rec['seq_len']!r:.40} but the sequence has {len(t)} events",
                            path=path, line=line, sequence=i)
        if num_types is None and "dim_process" in rec:
            dim = _num_types(rec["dim_process"], f"{at}dim_process", path, line, i)
            if k is not None and dim != k:
                raise DataError(f"{at}dim_process {dim} differs from earlier records ({k})",
                                path=path, line=line, sequence=i)
            k = dim
        times.append(t)
        dtimes.append(d)
        marks.append(m)
        where_marks.append((at, line))
        ids.append(rec.get("seq_idx", i))
    if k is None:
        raise DataError("records have no 'dim_process'; pass num_types=", path=path)
    for i, m in enumerate(marks):
        for j, x in enumerate(m):
            if x >= k:
                at, line = where_marks[i]
                raise DataError(f"{at}type_event[{j}] {x} is outside [0, {k})", path=path, line=line, sequence=i)
    return _typed_from_lists(path, times, dtimes, marks, k, sequence_ids=ids)


def _typed_from_lists(path, times, dtimes, marks, k: int, **kwargs) -> EventSequences:
    """Sequences from lists already checked (times and deltas finite and in range, marks in [0, k))."""
    flat_d = np.array([x for d in dtimes for x in d], dtype=np.float64)
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
    """An EasyTPP data section (``train_dir``/``valid_dir``/``test_dir``, ``data_specs.num_event_types``).

    With ``data_format: json`` a ``*_dir`` may also name a Hugging Face data set, as in EasyTPP's own configs
    (``easytpp/taxi``; see :func:`hub_source`): its split ``train``, ``validation`` or ``test`` is loaded with
    ``datasets.load_dataset`` and checked like a JSON file."""
    specs = section.get("data_specs") or {}
    num_types = specs.get("num_event_types")
    paths = {k: section.get(f"{k}_dir") for k in ("train", "valid", "test")}
    hub = {k: hub_source(v, resolve) if section.get("data_format") == "json" else None for k, v in paths.items()}
    if not any(hub.values()):
        return load_easytpp_splits(*(resolve(paths[k]) for k in ("train", "valid", "test")),
                                   name=name or "easytpp", num_types=num_types)
    splits = {}
    for key, value in paths.items():
        if value is None:
            splits[key] = None
        elif hub[key]:
            splits[key] = load_hub_split(hub[key], key, num_types, shown=value)
        else:
            splits[key] = load_easytpp(resolve(value), num_types=num_types)
    return _store(splits, name or "easytpp")


# --------------------------------------------------------------------------
# Hugging Face data sets (EasyTPP's configs name them: train_dir: easytpp/taxi)

_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")
_HUB_SPLITS = {"train": "train", "valid": "validation", "test": "test"}  # EasyTPP's 'dev' is 'validation'


def hub_source(value, resolve=lambda p: p) -> str | None:
    """What ``datasets.load_dataset`` should read for a ``*_dir`` value, or None for a plain file: a local
    directory (a data set folder, as ``datasets`` reads one), or an ``owner/name`` id with no such file or
    folder (a data set on the Hugging Face Hub or in its local cache)."""
    if not isinstance(value, str) or not value:
        return None
    path = resolve(value)
    if path is not None and os.path.isdir(path):
        return path
    if _HUB_ID.fullmatch(value) and not value.lower().endswith((".json", ".jsonl", ".gz", ".pkl", ".pickle")) \
            and (path is None or not os.path.exists(path)):
        return value
    return None


def load_hub_split(source: str, split: str, num_types: int | None = None, shown: str | None = None) -> EventSequences:
    """One split (``train``, ``valid`` or ``test``) of a Hugging Face data set of EasyTPP records, loaded as
    EasyTPP loads it (``datasets.load_dataset(source, split=...)``; the local cache and ``HF_DATASETS_OFFLINE``
    are honoured) and checked like a JSON file."""
    shown = shown or source
    hf_split = _HUB_SPLITS[split]
    where = f"{shown} (Hugging Face data set, split {hf_split!r})"
    try:
        import datasets
    except ImportError:
        raise DataError("reading a Hugging Face data set needs the datasets package: pip install 'lamp[easytpp]' "
                        "(or pip install datasets), or point the data section at local JSON files",
                        path=shown) from None
    try:
        data = datasets.load_dataset(source, split=hf_split)
    except ValueError as exc:
        if "split" in str(exc).lower():
            raise DataError(f"has no split {hf_split!r}: {_first_line(exc)}", path=where) from None
        raise DataError(f"cannot be loaded: {_first_line(exc)}", path=where) from None
    except Exception as exc:  # noqa: BLE001 - datasets raises many kinds (ConnectionError, FileNotFoundError, ...)
        raise DataError(
            f"cannot be loaded: {type(exc).__name__}: {_first_line(exc)}.  Without a network, download it once "
            f"where there is one (python -c \"import datasets; datasets.load_dataset('{source}')\") and copy the "
            "Hugging Face cache (~/.cache/huggingface) here, then set HF_DATASETS_OFFLINE=1; or save its splits "
            "as JSON files and point train_dir / valid_dir / test_dir at them", path=where) from None
    return _from_records([(dict(record), None) for record in data], where, num_types)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
