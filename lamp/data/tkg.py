"""Temporal knowledge graphs in the ICEWS / GDELT folder layout (entity2id.txt, relation2id.txt, train/valid/test)."""
from __future__ import annotations

import math
import os
import re
import warnings

import numpy as np

from lamp.data.events import EventSequences, EventStore, _existing, _require_file
from lamp.data.validate import parse_int, parse_time, read_text
from lamp.errors import DataError

__all__ = ["load_tkg"]

# --------------------------------------------------------------------------
# Temporal knowledge graphs (ICEWS / GDELT layout)

_TKG_ID_FILES = ("entity2id.txt", "relation2id.txt")


def _read_names(path: str, what: str) -> list[str]:
    """``name<TAB>id`` lines; the ids must be 0..n-1 for the file's n names (so no id exceeds its size)."""
    lines = read_text(path)
    count = sum(1 for line in lines if line.strip())
    names: dict[int, str] = {}
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        name, sep, idx = line.rpartition("\t")
        if not sep:
            raise DataError(f"expected '<name><TAB><id>', got {line[:80]!r}", path=path, line=lineno)
        i = parse_int(idx.strip(" "), f"{what} id", path, lineno)
        if not 0 <= i < count:
            raise DataError(f"{what} id {i} is out of range: the file has {count} names, so ids must be "
                            f"0..{count - 1}", path=path, line=lineno)
        if i in names:
            raise DataError(f"{what} id {i} appears twice ({names[i]!r} and {name!r})", path=path, line=lineno)
        names[i] = name
    if not names:
        raise DataError(f"no {what} names", path=path)
    # count distinct ids in [0, count) means every id 0..count-1 is present
    return [names[i] for i in range(count)]


_COLUMNS = re.compile(r"[ \t\f\v]+")


def _read_quadruples(path: str, num_entities: int, num_relations: int) -> np.ndarray:
    rows = []
    for lineno, line in enumerate(read_text(path), start=1):
        line = line.strip(" \t\f\v")
        if not line:
            continue
        cols = _COLUMNS.split(line)
        if len(cols) < 4:
            raise DataError(f"expected at least 4 columns (subject relation object time), got {len(cols)}",
                            path=path, line=lineno)
        s = parse_int(cols[0], "subject id", path, lineno)
        r = parse_int(cols[1], "relation id", path, lineno)
        o = parse_int(cols[2], "object id", path, lineno)
        t = parse_time(cols[3], "time", path, lineno)
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




def load_section(section: dict, resolve, name: str | None = None) -> EventStore:
    """A ``data_format: tkg`` section (``data_dir``, optional ``stream``, ``time_unit``, ``time_origin``)."""
    from lamp.errors import ConfigError

    folder = section.get("data_dir")
    if folder is None:
        raise ConfigError(f"data.{name}: data_format 'tkg' needs data_dir (a folder, or lamp://icews14)")
    return load_tkg(resolve(folder), name=name, stream=section.get("stream"),
                    time_unit=section.get("time_unit") or "unit", time_origin=section.get("time_origin"))
