"""A proposer that reads another model's saved scores (``proposer: {model: scores, path: FILE}``).

Researchers with their own temporal knowledge-graph forecaster (TiRGN, RE-GCN, LogCL, TLogic, the
RecurrencyBaseline, ...) save its scores once; :class:`ScoresProposer` answers lamp's proposer contract
(:class:`lamp.tpp.contract.KGProposer`: ``propose`` and ``quality``) from the file.  Three formats:

``.npz`` (lamp's own, written by :func:`save_scores`)
    ``queries`` int64 (Q, 4) of (subject, relation, object, time) in the data set's ids and time unit;
    ``direction`` one of ``"object"`` (each row asks for the object of ``(s, r, ?, t)``; relations
    ``>= num_relations`` are inverse queries ``(o, r^-1, ?, t)``), ``"subject"`` (each row asks for the
    subject of ``(?, r, o, t)``) or ``"relation"`` (``(s, ?, o, t)``); and either ``scores`` float
    (Q, C) over all C candidates (entities, or relations for ``"relation"``) or ``topk_ids`` int64
    (Q, k) with ``topk_scores`` float (Q, k).
``.pkl`` (the evaluation dictionary of Gastinger et al., as the RecurrencyBaseline repository writes it)
    a dict keyed ``"{s}_{r}_xxx{o}_{t}"`` (inverse queries carry ``r + num_relations``), each value
    ``[scores over all entities (a torch tensor or NumPy array), the query quadruple]``.  It is read by a
    restricted unpickler (:func:`load_pickle`) that builds only containers, strings, numbers, NumPy arrays
    and tensors' raw storage, parsed without torch; any other global is refused before it is built, so no
    code of the file runs.  Score rows stay views of the file's bytes: one copy in memory.
``.npy`` (a plain score matrix, as RE-GCN-style code dumps it)
    scores float (Q, C) in the order of a sidecar query list ``FILE.queries.txt`` beside it (``scores.npy``
    -> ``scores.queries.txt``): one query per line, ``s r o t`` (a fifth column, as in the data sets' own
    files, is ignored), ``#`` comments; a line ``# direction: subject`` (or ``relation``) sets the direction
    (default ``object``).  The matrix is memory-mapped.

Every file is checked against the data set when it is read: integer ids in range, each query an event of
the data set (no extra queries), times among the data set's times (a different time unit is named as
such), no query twice, finite scores of the right shape.  Queries the run asks for that the file lacks
are an error naming the query; for training and validation queries ``fallback: kg_hawkes`` (or
``recurrency``) answers them instead, with a warning.  Each problem is a :class:`~lamp.errors.DataError`
naming the file, the query and the problem.

Scores may be probabilities, intensities or logarithms (logits, log-probabilities): ``log_scores``
(default: the scores are logarithms iff one is negative).  ``propose`` returns positive scores (the
exponential of a log score minus the row's best), as lamp's ranker takes their logarithm.

Metrics (``quality``): the time-aware filtered rank of the truth among all candidates, the other true
answers of the same question at the same time (among the queries given) left out.  Ties count half:
``rank = 1 + greater + equal / 2`` (lamp's rule, the same as :class:`~lamp.tpp.KGHawkes`); beside
``mrr`` the dictionary gives ``mrr_optimistic`` (``1 + greater``, which the RE-GCN / Gastinger et al.
evaluation gives where no score ties) and ``mrr_pessimistic`` (``1 + greater + equal``).
"""
from __future__ import annotations

import builtins
import collections
import hashlib
import io
import os
import pickle
import re
import warnings
import zipfile

import numpy as np

from lamp.errors import ConfigError, DataError
from lamp.runs import file_sha256

__all__ = ["ScoresProposer", "ScoreTable", "save_scores", "read_scores", "load_pickle", "write_pickle",
           "sidecar_path", "fit_scores", "tie_ranks", "DIRECTIONS"]

DIRECTIONS = ("object", "subject", "relation")
_CHUNK = 256
_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
_KEY = re.compile(r"(\d+)_(\d+)_xxx(\d+)_(\d+)(?:\.0+)?\Z")


# ------------------------------------------------------------------------------------------ restricted unpickling

_STORAGE_DTYPES = {"DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
                   "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
                   "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_}


class _Refused(Exception):
    """Raised inside the unpickler; turned into a DataError naming the file."""


class _StorageType:
    def __init__(self, name: str):
        self.name, self.dtype = name, np.dtype(_STORAGE_DTYPES[name])


class _StorageRef:
    def __init__(self, key: str, dtype: np.dtype, numel: int):
        self.key, self.dtype, self.numel = key, dtype, numel


class _StorageUnpickler(pickle.Unpickler):
    """The pickles inside a tensor's storage bytes (torch's legacy format): only storage type markers, and
    persistent ids naming storages."""

    def find_class(self, module, name):
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise _Refused(f"global {module}.{name} inside a tensor's storage")

    def persistent_load(self, pid):
        if (not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage" or not isinstance(pid[1], _StorageType)
                or not isinstance(pid[2], str) or not isinstance(pid[4], int) or pid[4] < 0):
            raise _Refused(f"a tensor storage reference that is not understood: {str(pid)[:80]}")
        if len(pid) > 5 and pid[5] is not None:
            raise _Refused("a view of a tensor storage (torch's pre-1.0 format) is not supported")
        return _StorageRef(pid[2], pid[1].dtype, pid[4])


def _storage_from_bytes(data) -> np.ndarray:
    """A tensor storage pickled with ``torch.storage._load_from_bytes`` (torch's legacy serialisation) as a
    read-only NumPy view of ``data``: parsed without torch."""
    if not isinstance(data, (bytes, bytearray)):
        raise _Refused("torch.storage._load_from_bytes was given something other than bytes")
    f = io.BytesIO(data)
    try:
        magic = _StorageUnpickler(f).load()
        version = _StorageUnpickler(f).load()
        info = _StorageUnpickler(f).load()
        if magic != _LEGACY_MAGIC or version != 1001 or not isinstance(info, dict):
            raise _Refused("tensor storage bytes in a format other than torch's legacy one")
        if info.get("little_endian") is not True:
            raise _Refused("big-endian tensor storage")
        ref = _StorageUnpickler(f).load()
        keys = _StorageUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise _Refused(f"damaged tensor storage bytes ({exc})") from None
    if not isinstance(ref, _StorageRef) or keys != [ref.key]:
        raise _Refused("tensor storage bytes holding something other than one storage")
    pos = f.tell()
    if pos + 8 > len(data):
        raise _Refused("truncated tensor storage bytes")
    count = int(np.frombuffer(data, dtype="<i8", count=1, offset=pos)[0])
    itemsize = ref.dtype.itemsize
    if count != ref.numel or count < 0 or pos + 8 + count * itemsize > len(data):
        raise _Refused("tensor storage bytes whose size does not match their header")
    return np.frombuffer(data, dtype=ref.dtype.newbyteorder("<"), count=count, offset=pos + 8)


def _rebuild_tensor(storage, storage_offset, size, stride, *rest) -> np.ndarray:
    """``torch._utils._rebuild_tensor_v2`` as a NumPy array over the storage, bounds checked."""
    if not isinstance(storage, np.ndarray) or storage.ndim != 1:
        raise _Refused("a tensor rebuilt from something other than a storage")
    ints = [storage_offset, *size, *stride]
    if (not all(isinstance(v, int) and not isinstance(v, bool) for v in ints) or len(size) != len(stride)
            or storage_offset < 0 or any(v < 0 for v in size) or any(v < 0 for v in stride)):
        raise _Refused("a tensor with a bad offset, size or stride")
    shape, stride = tuple(size), tuple(stride)
    if 0 in shape:
        return np.zeros(shape, dtype=storage.dtype)
    last = storage_offset + sum((n - 1) * s for n, s in zip(shape, stride))
    if last >= len(storage):
        raise _Refused("a tensor reaching beyond its storage")
    if len(shape) == 1 and stride[0] == 1:
        return storage[storage_offset:storage_offset + shape[0]]
    view = np.lib.stride_tricks.as_strided(storage[storage_offset:], shape=shape,
                                           strides=tuple(s * storage.itemsize for s in stride), writeable=False)
    return np.array(view)


def _ndarray_reconstruct(subtype, shape, dtype):
    if subtype is not np.ndarray:
        raise _Refused("an array of a type other than numpy.ndarray")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _safe_dtype(spec, align=False, copy=False):
    d = np.dtype(spec, align, copy)
    if d.hasobject:
        raise _Refused("an array of Python objects")
    return d


def _scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise _Refused("a NumPy scalar of Python objects")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _frombuffer(buf, dtype, shape, order="C"):
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise _Refused("an array of Python objects")
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order)


def _latin1(text, encoding="latin1", errors="strict"):
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _Refused("_codecs.encode with an encoding other than latin1")
    return text.encode("latin1")


_ALLOWED = {("builtins", n): getattr(builtins, n) for n in ("set", "frozenset", "bytearray", "complex", "bytes", "dict",
                                                              "list", "tuple", "str", "int", "float", "bool")}
_ALLOWED.update({
    ("_codecs", "encode"): _latin1,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _safe_dtype,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
})
for _m in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_m, "_reconstruct")] = _ndarray_reconstruct
    _ALLOWED[(_m, "scalar")] = _scalar
for _m in ("numpy.core.numeric", "numpy._core.numeric"):
    _ALLOWED[(_m, "_frombuffer")] = _frombuffer


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise _Refused(f"refused to load the global {module}.{name} (a score file may hold only dicts, lists, "
                           "tuples, strings, numbers, NumPy arrays and torch tensors)") from None

    def persistent_load(self, pid):
        raise _Refused("refused a persistent id (a score file is a plain pickle, not a torch.save archive)")


def load_pickle(path):
    """Read a pickled score file with the restricted unpickler; :class:`~lamp.errors.DataError` naming the file
    and the refused global for anything that is not data (nothing of the file runs)."""
    try:
        with open(path, "rb") as f:
            unpickler = _RestrictedUnpickler(f)
            try:
                return unpickler.load()
            finally:
                del unpickler  # its memo holds every object: let it go before the caller copies anything
    except _Refused as exc:
        raise DataError(str(exc), path) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError, RecursionError) as exc:
        raise DataError(f"not a readable pickle: {type(exc).__name__}: {exc}", path) from None


def write_pickle(path, queries, scores, num_relations: int, direction: str = "object") -> None:
    """Write scores in the Gastinger et al. evaluation format (a dict ``"{s}_{r}_xxx{o}_{t}" -> [float64 torch
    tensor, int32 quadruple]``); subject-direction rows are written as inverse queries ``(o, r + R, s, t)``.
    Needs torch (the format's score rows are tensors)."""
    import torch

    q = _internal(np.asarray(queries, dtype=np.int64), direction, num_relations)
    out = {}
    for i, (s, r, o, t) in enumerate(q.tolist()):
        out[f"{s}_{r}_xxx{o}_{t}"] = [torch.from_numpy(np.array(scores[i], dtype=np.float64)),
                                      np.array([s, r, o, t], dtype=np.int32)]
    with open(path, "wb") as f:
        pickle.dump(out, f, protocol=pickle.HIGHEST_PROTOCOL)


# ------------------------------------------------------------------------------------------ writing lamp's format


def save_scores(path, queries, direction: str = "object", *, scores=None, topk_ids=None, topk_scores=None) -> None:
    """Write a score file in lamp's ``.npz`` format (see the module docstring).

    Give ``scores`` (Q, C) over all candidates, or ``topk_ids`` (Q, k) with ``topk_scores`` (Q, k).
    ``ValueError`` / ``TypeError`` naming the argument for a bad shape or type.
    """
    q = np.asarray(queries)
    if q.ndim != 2 or q.shape[1] != 4 or (q.size and q.dtype.kind not in "iu"):
        raise ValueError(f"queries must be an integer array (Q, 4) of (subject, relation, object, time), got "
                         f"{q.dtype} {q.shape}")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    arrays = {"queries": q.astype(np.int64), "direction": np.array(direction)}
    if (scores is None) == (topk_ids is None):
        raise ValueError("give either scores (Q, C) or topk_ids with topk_scores (Q, k)")
    if scores is not None:
        s = np.asarray(scores)
        if s.ndim != 2 or len(s) != len(q) or s.dtype.kind != "f":
            raise ValueError(f"scores must be a float array (Q={len(q)}, candidates), got {s.dtype} {s.shape}")
        arrays["scores"] = s
    else:
        ids, sc = np.asarray(topk_ids), np.asarray(topk_scores)
        if ids.ndim != 2 or len(ids) != len(q) or ids.dtype.kind not in "iu":
            raise ValueError(f"topk_ids must be an integer array (Q={len(q)}, k), got {ids.dtype} {ids.shape}")
        if sc.shape != ids.shape or sc.dtype.kind != "f":
            raise ValueError(f"topk_scores must be a float array of the shape of topk_ids {ids.shape}, got "
                             f"{sc.dtype} {sc.shape}")
        arrays["topk_ids"], arrays["topk_scores"] = ids.astype(np.int64), sc
    np.savez(path, **arrays)


def sidecar_path(path) -> str:
    """The query list of a ``.npy`` score matrix: ``scores.npy`` -> ``scores.queries.txt``."""
    path = os.fspath(path)
    return (path[:-4] if path.endswith(".npy") else path) + ".queries.txt"


def write_sidecar(path, queries, direction: str = "object") -> None:
    """Write the query list of a ``.npy`` score matrix (:func:`sidecar_path`)."""
    with open(sidecar_path(path), "w", encoding="utf-8") as f:
        f.write(f"# direction: {direction}\n")
        for s, r, o, t in np.asarray(queries, dtype=np.int64).tolist():
            f.write(f"{s} {r} {o} {t}\n")


# ------------------------------------------------------------------------------------------ reading


def _internal(q: np.ndarray, direction: str, num_relations: int) -> np.ndarray:
    """Rows as the proposer asks them: subject-direction rows become inverse object queries (o, r + R, s, t)."""
    if direction != "subject":
        return q
    return np.stack([q[:, 2], q[:, 1] + num_relations, q[:, 0], q[:, 3]], axis=1)


def _show(q) -> str:
    s, r, o, t = (int(v) for v in q)
    return f"(s={s}, r={r}, o={o}, t={t})"


class ScoreTable:
    """The validated content of a score file: internal queries (object task: relations ``>= R`` are inverse
    queries), and either full score rows or sorted top-k lists."""

    def __init__(self, path, queries, rows=None, topk_ids=None, topk_scores=None, original=None):
        self.path = os.fspath(path)
        self.queries = queries            # internal (Q, 4)
        self.original = original if original is not None else queries  # as written in the file, for messages
        self.rows = rows                  # (Q, C) array / memmap, or a list of (C,) arrays; or None
        self.topk_ids, self.topk_scores = topk_ids, topk_scores
        self.keys = None
        self.order = None

    def __len__(self) -> int:
        return len(self.queries)

    @property
    def dense(self) -> bool:
        return self.rows is not None

    def gather(self, idx) -> np.ndarray:
        """float64 (n, C) score rows of file rows ``idx``."""
        if isinstance(self.rows, list):
            return np.stack([np.asarray(self.rows[i], dtype=np.float64) for i in idx]) if len(idx) else \
                np.zeros((0, 0))
        return np.asarray(self.rows[np.asarray(idx)], dtype=np.float64)


def _read_npz(path, num_relations) -> ScoreTable:
    try:
        with np.load(path, allow_pickle=False) as z:
            files = set(z.files)
            unknown = files - {"queries", "direction", "scores", "topk_ids", "topk_scores"}
            if unknown:
                raise DataError(f"unknown array(s) {sorted(unknown)}; a lamp score file holds queries, direction and "
                                "scores, or topk_ids and topk_scores", path)
            for need in ("queries", "direction"):
                if need not in files:
                    raise DataError(f"has no {need!r} array", path)
            has_dense, has_top = "scores" in files, ("topk_ids" in files or "topk_scores" in files)
            if has_dense == has_top:
                raise DataError("must hold either 'scores' (Q, C) or 'topk_ids' with 'topk_scores' (Q, k)", path)
            if has_top and not {"topk_ids", "topk_scores"} <= files:
                raise DataError("'topk_ids' and 'topk_scores' go together", path)
            direction = z["direction"]
            if direction.shape != () or direction.dtype.kind != "U" or str(direction) not in DIRECTIONS:
                raise DataError(f"direction must be one of {DIRECTIONS}, got {direction!r}", path)
            direction = str(direction)
            q = _int_queries(z["queries"], path)
            internal = _internal(q, direction, num_relations)
            if has_dense:
                rows = z["scores"]
                return direction, ScoreTable(path, internal, rows=rows, original=q)
            return direction, ScoreTable(path, internal, topk_ids=z["topk_ids"], topk_scores=z["topk_scores"],
                                         original=q)
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"not a readable .npz file: {exc}", path) from None


def _int_queries(arr, path, what="queries") -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise DataError(f"{what} must be an array (Q, 4) of (subject, relation, object, time), got shape {arr.shape}",
                        path)
    if arr.dtype.kind not in "iu":
        raise DataError(f"{what} must be integers (the data set's ids and times), got dtype {arr.dtype}", path)
    if len(arr) == 0:
        raise DataError(f"{what} is empty", path)
    return arr.astype(np.int64)


def _read_npy(path, num_relations):
    side = sidecar_path(path)
    if not os.path.isfile(side):
        raise DataError(f"a .npy score matrix needs its query list beside it, {side} (one 's r o t' line per row)",
                        path)
    direction, rows = "object", []
    with open(side, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            text = line.strip()
            if text.startswith("#"):
                m = re.match(r"#\s*direction\s*:\s*(\S+)", text)
                if m:
                    if m.group(1) not in DIRECTIONS or rows:
                        raise DataError(f"direction must be one of {DIRECTIONS}, before the first query; got "
                                        f"{m.group(1)!r}", side, line=n)
                    direction = m.group(1)
                continue
            if not text:
                continue
            parts = text.split()
            if len(parts) not in (4, 5) or not all(re.fullmatch(r"-?\d+", p) for p in parts):
                raise DataError(f"expected 's r o t' (four integers, a fifth ignored), got {text[:80]!r}", side, line=n)
            rows.append([int(p) for p in parts[:4]])
    if not rows:
        raise DataError("the query list is empty", side)
    q = np.array(rows, dtype=np.int64)
    try:
        matrix = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"not a readable .npy file: {exc}", path) from None
    if matrix.ndim != 2 or len(matrix) != len(q):
        raise DataError(f"the score matrix has shape {matrix.shape}, but {side} lists {len(q)} queries: expected "
                        f"({len(q)}, candidates)", path)
    return direction, ScoreTable(path, _internal(q, direction, num_relations), rows=matrix, original=q)


def _read_pkl(path, num_relations):
    data = load_pickle(path)
    if not isinstance(data, dict):
        raise DataError(f"expected a dict keyed 's_r_xxxo_t' (the Gastinger et al. evaluation format), got "
                        f"{type(data).__name__}", path)
    if not data:
        raise DataError("the dict is empty", path)
    n = len(data)
    queries = np.empty((n, 4), dtype=np.int64)
    rows = []
    for i in range(n):
        key, value = data.popitem()  # one copy: each row leaves the dict as it is taken
        m = _KEY.match(key) if isinstance(key, str) else None
        if m is None:
            raise DataError(f"key {str(key)[:60]!r} is not 's_r_xxxo_t'", path)
        quad = [int(v) for v in m.groups()]
        if not isinstance(value, (list, tuple)) or len(value) < 1:
            raise DataError(f"the value of key {key!r} is not [scores, quadruple]", path)
        row = value[0]
        if not isinstance(row, np.ndarray) or row.ndim != 1 or row.dtype.kind not in "fiu":
            raise DataError(f"the scores of key {key!r} are not a vector of numbers (got "
                            f"{type(row).__name__} {getattr(row, 'shape', '')})", path)
        if len(value) > 1 and value[1] is not None:
            given = np.asarray(value[1]).ravel()
            if given.dtype.kind not in "iuf" or len(given) < 4 or [int(v) for v in given[:4]] != quad:
                raise DataError(f"key {key!r} and its quadruple {given.tolist()[:6]} disagree", path)
        queries[n - 1 - i] = quad
        rows.append(row)
    rows.reverse()  # the dict's own order
    return "object", ScoreTable(path, queries, rows=rows, original=queries)


def read_scores(path, num_relations: int):
    """``(direction, ScoreTable)`` of a score file by its extension (.npz, .pkl/.pickle, .npy), not yet checked
    against a data set."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError("no such score file", path)
    lower = path.lower()
    if lower.endswith(".npz"):
        return _read_npz(path, num_relations)
    if lower.endswith((".pkl", ".pickle")):
        return _read_pkl(path, num_relations)
    if lower.endswith(".npy"):
        return _read_npy(path, num_relations)
    raise DataError("unknown score file format: give a .npz (lamp's), .pkl (Gastinger et al.'s evaluation dict) "
                    "or .npy (with FILE.queries.txt) file", path)


# ------------------------------------------------------------------------------------------ ranks


def tie_ranks(greater: np.ndarray, equal: np.ndarray) -> dict:
    """Ranks from counts of (unfiltered, other) candidates scored above / equal to the truth: lamp's rule
    (ties count half), the optimistic and the pessimistic rank."""
    g, e = np.asarray(greater, dtype=np.float64), np.asarray(equal, dtype=np.float64)
    return {"lamp": 1.0 + g + 0.5 * e, "optimistic": 1.0 + g, "pessimistic": 1.0 + g + e}


def _metrics(ranks: dict, in_top: np.ndarray, m: int) -> dict:
    r = ranks["lamp"]
    with np.errstate(divide="ignore"):
        out = {"mrr": float(np.mean(1.0 / r)), "hits@1": float(np.mean(r <= 1)), "hits@3": float(np.mean(r <= 3)),
               "hits@10": float(np.mean(r <= 10)), f"coverage@{m}": float(np.mean(in_top)), "n": int(len(r)),
               "mrr_optimistic": float(np.mean(1.0 / ranks["optimistic"])),
               "mrr_pessimistic": float(np.mean(1.0 / ranks["pessimistic"]))}
    return out


# ------------------------------------------------------------------------------------------ the proposer


class ScoresProposer:
    """A knowledge-graph proposer answering from a saved score file (see the module docstring).

    Parameters
    ----------
    path : str
        The score file (.npz, .pkl or .npy with its query list).
    store : lamp.data.EventStore
        The data set the file's ids and times belong to; every query is checked against it.
    task : {"object", "relation"}
        ``object`` reads object- and subject-direction files (subject queries are inverse object queries),
        ``relation`` relation-direction files.
    fallback : {None, "kg_hawkes", "recurrency"}
        Answers the training and validation queries the file lacks (fitted on ``store`` when first needed),
        with a warning; ``None``: such queries are an error.  Test queries are always read from the file.
    log_scores : bool or None
        Whether the file's scores are logarithms (logits, log-probabilities); None: iff one is negative.
    """

    def __init__(self, path, store, task: str = "object", fallback: str | None = None,
                 log_scores: bool | None = None):
        if task not in ("object", "relation"):
            raise ConfigError(f"lamp.task {task!r}: the scores proposer reads object (and subject) or relation "
                              "scores; the pair task is not supported")
        if fallback not in (None, "kg_hawkes", "recurrency"):
            raise ConfigError(f"lamp.proposer.params.fallback: {fallback!r} is not one of null, 'kg_hawkes', "
                              "'recurrency'")
        if log_scores is not None and not isinstance(log_scores, bool):
            raise ConfigError(f"lamp.proposer.params.log_scores: {log_scores!r} is not null, true or false")
        if getattr(store, "kind", None) != "tkg":
            raise TypeError("the scores proposer needs a temporal knowledge graph EventStore")
        self.path = os.fspath(path)
        self.task = task
        self.num_entities, self.num_relations = int(store.num_entities), int(store.num_relations)
        self.fallback_name = fallback
        self._fallback = None
        self._store = store
        direction, table = read_scores(self.path, self.num_relations)
        if (task == "relation") != (direction == "relation"):
            raise DataError(f"holds {direction}-direction scores, but lamp.task is {task!r}", self.path)
        self.direction = direction
        self.table = table
        self._prepare_store_keys(store)
        self._validate()
        self.log_scores = self._check_scores(log_scores)
        self.fingerprint = "scores:" + hashlib.sha256(repr((
            file_sha256(self.path), task, fallback, self.log_scores)).encode()).hexdigest()

    # ---------------------------------------------------------------------- keys and validation

    @property
    def num_candidates(self) -> int:
        return self.num_entities if self.task == "object" else self.num_relations

    def _prepare_store_keys(self, store) -> None:
        quads = {split: getattr(store, split).quadruples() for split in ("train", "valid", "test")
                 if getattr(store, split, None) is not None and len(getattr(store, split))}
        self._times = np.unique(np.concatenate([q[:, 3] for q in quads.values()]))
        self._r2 = 2 * self.num_relations if self.task == "object" else self.num_relations
        if len(self._times) * self._r2 * self.num_entities ** 2 >= 2 ** 62:
            raise DataError("the data set is too large for the score file's 64-bit query keys", self.path)

        def both(q):
            if self.task != "object":
                return q
            return np.concatenate([q, np.stack([q[:, 2], q[:, 1] + self.num_relations, q[:, 0], q[:, 3]], axis=1)])

        self._event_keys = np.unique(np.concatenate([self._keys(both(q)) for q in quads.values()]))
        self._test_keys = np.unique(self._keys(both(quads["test"]))) if "test" in quads else np.zeros(0, np.int64)

    def _keys(self, q: np.ndarray) -> np.ndarray:
        """int64 keys of internal queries whose ids and times are valid."""
        t_idx = np.searchsorted(self._times, q[:, 3])
        E = self.num_entities
        return ((t_idx.astype(np.int64) * self._r2 + q[:, 1]) * E + q[:, 0]) * E + q[:, 2]

    def _bad_row(self, i: int, problem: str) -> DataError:
        return DataError(f"row {i}, query {_show(self.table.original[i])}: {problem}", self.path)

    def _validate(self) -> None:
        t, E, R = self.table, self.num_entities, self.num_relations
        q, orig = t.queries, t.original
        r_max = 2 * R if self.direction == "object" else R
        for col, hi, what in ((0, E, "subject"), (2, E, "object"), (1, r_max, "relation")):
            bad = np.flatnonzero((orig[:, col] < 0) | (orig[:, col] >= hi))
            if len(bad):
                i = int(bad[0])
                extra = f" (>= {R}: inverse queries)" if hi == 2 * R and col == 1 else ""
                raise self._bad_row(i, f"{what} id {int(orig[i, col])} is out of range [0, {hi}){extra}")
        pos = np.searchsorted(self._times, q[:, 3])
        found = (pos < len(self._times)) & (self._times[np.minimum(pos, len(self._times) - 1)] == q[:, 3])
        bad = np.flatnonzero(~found)
        if len(bad):
            i = int(bad[0])
            raise self._bad_row(i, f"time {int(q[i, 3])} is not a time of the data set: " + self._time_hint(q[:, 3]))
        keys = self._keys(q)
        extra = np.flatnonzero(~np.isin(keys, self._event_keys))
        if len(extra):
            i = int(extra[0])
            raise self._bad_row(i, f"is not an event of the data set ({len(extra)} such row(s); a score file holds "
                                   f"queries of the data set's events, in its ids, as direction "
                                   f"{self.direction!r})")
        order = np.argsort(keys, kind="stable")
        sk = keys[order]
        dup = np.flatnonzero(sk[1:] == sk[:-1])
        if len(dup):
            a, b = int(order[dup[0]]), int(order[dup[0] + 1])
            raise self._bad_row(b, f"appears twice (rows {a} and {b})")
        t.keys, t.order = sk, order

    def _time_hint(self, file_times: np.ndarray) -> str:
        times = self._times
        steps = np.diff(times)
        step = int(steps[steps > 0].min()) if np.any(steps > 0) else 1
        text = (f"its times run from {int(times[0])} to {int(times[-1])} in steps of {step}; the file's from "
                f"{int(file_times.min())} to {int(file_times.max())}: the file's time unit (or origin) does not match")
        ft = np.unique(file_times)
        for factor in (step, 24, 1 / 24):
            if factor not in (1, 0) and np.all(np.isin(np.round(ft * factor).astype(np.int64), times)) and \
                    np.allclose(ft * factor, np.round(ft * factor)):
                text += f" (times x {factor:g} would match)"
                break
        return text

    def _check_scores(self, log_scores) -> bool:
        t, C = self.table, self.num_candidates
        negative = False
        if t.dense:
            if isinstance(t.rows, list):
                for i, row in enumerate(t.rows):
                    if len(row) != C:
                        raise self._bad_row(i, f"has {len(row)} scores, expected one per candidate ({C})")
                    if not np.all(np.isfinite(row)):
                        raise self._bad_row(i, "has a score that is NaN or infinite")
                    negative = negative or bool(row.min() < 0)
            else:
                rows = t.rows
                if rows.ndim != 2 or rows.shape[1] != C or rows.dtype.kind not in "fiu":
                    raise DataError(f"scores have {rows.dtype} shape {rows.shape}, expected numbers ({len(t)}, {C}) "
                                    "(one per candidate)", self.path)
                for start in range(0, len(rows), _CHUNK * 4):
                    chunk = np.asarray(rows[start:start + _CHUNK * 4])
                    finite = np.isfinite(chunk).all(axis=1)
                    if not finite.all():
                        raise self._bad_row(start + int(np.argmin(finite)), "has a score that is NaN or infinite")
                    negative = negative or bool(chunk.min() < 0)
        else:
            ids, sc = np.asarray(t.topk_ids), np.asarray(t.topk_scores)
            if ids.ndim != 2 or len(ids) != len(t) or ids.dtype.kind not in "iu" or ids.shape[1] < 1:
                raise DataError(f"topk_ids must be integers ({len(t)}, k), got {ids.dtype} {ids.shape}", self.path)
            if sc.shape != ids.shape or sc.dtype.kind not in "fiu":
                raise DataError(f"topk_scores must be numbers of the shape of topk_ids {ids.shape}, got {sc.dtype} "
                                f"{sc.shape}", self.path)
            bad = np.flatnonzero(((ids < 0) | (ids >= C)).any(axis=1))
            if len(bad):
                i = int(bad[0])
                raise self._bad_row(i, f"topk_ids hold an id out of range [0, {C})")
            srt = np.sort(ids, axis=1)
            bad = np.flatnonzero((srt[:, 1:] == srt[:, :-1]).any(axis=1))
            if len(bad):
                raise self._bad_row(int(bad[0]), "topk_ids list a candidate twice")
            bad = np.flatnonzero(~np.isfinite(sc).all(axis=1))
            if len(bad):
                raise self._bad_row(int(bad[0]), "has a score that is NaN or infinite")
            sc = sc.astype(np.float64)
            order = _row_order(sc, ids)
            t.topk_ids = np.take_along_axis(ids.astype(np.int64), order, axis=1)
            t.topk_scores = np.take_along_axis(sc, order, axis=1)
            negative = bool(sc.min() < 0)
        if log_scores is False and negative:
            raise DataError("has negative scores, but lamp.proposer.params.log_scores is false (probabilities or "
                            "intensities); set it true (or null) for logits or log-probabilities", self.path)
        return negative if log_scores is None else log_scores

    # ---------------------------------------------------------------------- lookup

    def _lookup(self, q: np.ndarray) -> np.ndarray:
        """File row of each internal query, -1 where the file has none."""
        t = self.table
        pos = np.searchsorted(self._times, q[:, 3])
        ok = (pos < len(self._times)) & (self._times[np.minimum(pos, len(self._times) - 1)] == q[:, 3])
        keys = self._keys(q)
        at = np.searchsorted(t.keys, keys)
        at = np.minimum(at, len(t.keys) - 1)
        hit = ok & (t.keys[at] == keys)
        return np.where(hit, t.order[at], -1)

    def _check_args(self, queries, task, m):
        if task != self.task:
            raise ValueError(f"this scores proposer reads {self.task} scores, not {task!r}")
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)):
            raise TypeError(f"m must be an integer, got {m!r}")
        C = self.num_candidates
        if not 1 <= m <= C:
            raise ValueError(f"m must be in 1..{C} (the number of candidates), got {m}")
        q = np.asarray(queries)
        if q.ndim != 2 or q.shape[1] != 4:
            raise ValueError(f"queries must be an array (n, 4) of (subject, relation, object, time), got {q.shape}")
        if q.size and q.dtype.kind not in "iu":
            if q.dtype.kind != "f" or not np.all(q == np.round(q)):
                raise TypeError("queries must be integers (subject, relation, object, time)")
        q = q.astype(np.int64)
        E, r_max = self.num_entities, (2 * self.num_relations if task == "object" else self.num_relations)
        for col, hi, what in ((0, E, "subject"), (2, E, "object"), (1, r_max, "relation")):
            bad = np.flatnonzero((q[:, col] < 0) | (q[:, col] >= hi))
            if len(bad):
                raise ValueError(f"queries[{bad[0]}]: {what} id {q[bad[0], col]} is out of range [0, {hi})")
        return q

    def _rows_for(self, q: np.ndarray, allow_fallback: bool) -> np.ndarray:
        rows = self._lookup(q)
        missing = np.flatnonzero(rows < 0)
        if len(missing):
            is_test = np.isin(self._keys(q[missing]), self._test_keys)
            if np.any(is_test) or not allow_fallback or self.fallback_name is None:
                i = int(missing[np.argmax(is_test)]) if np.any(is_test) else int(missing[0])
                what = "a test query" if np.any(is_test) else "a training or validation query"
                hint = ("every query the run evaluates must be in the file" if np.any(is_test) else
                        "put the ranker's training and validation queries in the file (lamp export-scores writes "
                        "them) or set lamp.proposer.params.fallback: kg_hawkes")
                raise DataError(f"has no scores for {what} {_show(q[i])} ({len(missing)} of {len(q)} queries "
                                f"missing): {hint}", self.path)
        return rows

    # ---------------------------------------------------------------------- the contract

    def _top(self, rows: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
        t = self.table
        n, C = len(rows), self.num_candidates
        ids = np.empty((n, m), dtype=np.int64)
        scores = np.empty((n, m), dtype=np.float64)
        best = np.empty(n, dtype=np.float64)
        if t.dense:
            for start in range(0, n, _CHUNK):
                chunk = t.gather(rows[start:start + _CHUNK])
                order = np.argsort(-chunk, axis=1, kind="stable")[:, :m]  # ties: lower id first
                ids[start:start + _CHUNK] = order
                scores[start:start + _CHUNK] = np.take_along_axis(chunk, order, axis=1)
                best[start:start + _CHUNK] = chunk.max(axis=1)
        else:
            k = t.topk_ids.shape[1]
            if m > k and m != C:
                raise DataError(f"holds the top {k} candidates of each query, but {m} proposals are asked for "
                                f"(lamp.num_candidates): write at least {m}", self.path)
            top_ids, top_sc = t.topk_ids[rows], t.topk_scores[rows]
            best[:] = top_sc[:, 0]
            if m <= k:
                ids[:], scores[:] = top_ids[:, :m], top_sc[:, :m]
            else:  # all candidates: the unlisted ones after the listed, each at the lowest listed score (a bound)
                for j in range(n):
                    rest = np.setdiff1d(np.arange(C), top_ids[j], assume_unique=True)
                    ids[j] = np.concatenate([top_ids[j], rest])
                    scores[j] = np.concatenate([top_sc[j], np.full(len(rest), top_sc[j, -1])])
        if self.log_scores:
            scores = np.exp(scores - best[:, None])
        return ids, scores

    def _fallback_model(self):
        if self._fallback is None:
            from lamp.tpp.builders import fit_kg_hawkes, fit_recurrency

            fit = fit_kg_hawkes if self.fallback_name == "kg_hawkes" else fit_recurrency
            self._fallback = fit(self._store, self.task)
        return self._fallback

    def propose(self, queries, task: str = "object", m: int = 20) -> tuple[np.ndarray, np.ndarray]:
        """Top-``m`` candidates of each query from the file, best first (ties: lower id first); scores positive
        (see the module docstring).  Queries the file lacks: a DataError, or for training and validation
        queries the fallback proposer's answer (with a warning)."""
        q = self._check_args(queries, task, m)
        rows = self._rows_for(q, allow_fallback=True)
        ids = np.empty((len(q), m), dtype=np.int64)
        scores = np.empty((len(q), m), dtype=np.float64)
        have = rows >= 0
        if have.any():
            ids[have], scores[have] = self._top(rows[have], m)
        if not have.all():
            missing = np.flatnonzero(~have)
            warnings.warn(f"{self.path}: {len(missing)} of {len(q)} training/validation queries are not in the "
                          f"file; the fallback proposer {self.fallback_name} answers them (its scores are on "
                          "another scale than the file's)", RuntimeWarning, stacklevel=2)
            ids[missing], scores[missing] = self._fallback_model().propose(q[missing], task=task, m=m)
        return ids, scores

    def evaluate(self, store=None, split: str = "test", task: str | None = None, m: int = 20,
                 both_directions: bool = True) -> dict:
        """:meth:`quality` over every event of a split (object queries asked in both directions, as is standard;
        the file must hold them all), as :meth:`lamp.tpp.KGHawkes.evaluate`."""
        store = self._store if store is None else store
        task = task or self.task
        quads = getattr(store, split).quadruples()
        if task == "object" and both_directions:
            R = self.num_relations
            quads = np.concatenate([quads, np.stack([quads[:, 2], quads[:, 1] + R, quads[:, 0], quads[:, 3]], axis=1)])
        return self.quality(quads, task, m)

    def filtered_ranks(self, queries, task: str | None = None) -> np.ndarray:
        """The time-aware filtered rank of each query's true answer among all candidates, ties counting half
        (float64 (Q,); ``inf`` where a top-k file does not list the truth): the ranks :meth:`quality` averages."""
        task = task or self.task
        q = self._check_args(queries, task, 1)
        return self._ranks(q, task)[2]["lamp"]

    def _ranks(self, q: np.ndarray, task: str):
        """(file rows, true answers, {"lamp", "optimistic", "pessimistic"}: per-query filtered ranks) of ``q``."""
        from lamp.tpp.kg_hawkes import time_aware_filter

        rows = self._rows_for(q, allow_fallback=False)
        col = 2 if task == "object" else 1
        truth = q[:, col]
        foff, fids = time_aware_filter(q, task, self.num_entities)
        n = len(q)
        greater = np.zeros(n)
        equal = np.zeros(n)
        t = self.table
        if t.dense:
            for start in range(0, n, _CHUNK):
                stop = min(start + _CHUNK, n)
                chunk = t.gather(rows[start:stop])
                ts = chunk[np.arange(stop - start), truth[start:stop]]
                g = (chunk > ts[:, None]).sum(axis=1).astype(np.float64)
                e = (chunk == ts[:, None]).sum(axis=1).astype(np.float64) - 1.0  # not the truth itself
                for j in range(start, stop):
                    other = fids[foff[j]:foff[j + 1]]
                    if len(other):
                        s_other = chunk[j - start, other]
                        g[j - start] -= np.count_nonzero(s_other > ts[j - start])
                        e[j - start] -= np.count_nonzero(s_other == ts[j - start])
                greater[start:stop], equal[start:stop] = g, e
            ranks = tie_ranks(greater, equal)
        else:
            top_ids, top_sc = t.topk_ids[rows], t.topk_scores[rows]
            listed = top_ids == truth[:, None]
            unlisted_opt = np.zeros(n)
            for j in range(n):
                other = fids[foff[j]:foff[j + 1]]
                keep = ~np.isin(top_ids[j], other) & ~listed[j]
                if listed[j].any():
                    ts = top_sc[j][listed[j]][0]
                    greater[j] = np.count_nonzero(top_sc[j][keep] > ts)
                    equal[j] = np.count_nonzero(top_sc[j][keep] == ts)
                else:
                    unlisted_opt[j] = 1.0 + np.count_nonzero(keep)
            ranks = tie_ranks(greater, equal)
            gone = ~listed.any(axis=1)
            for key in ("lamp", "pessimistic"):
                ranks[key][gone] = np.inf
            ranks["optimistic"][gone] = unlisted_opt[gone]
        return rows, truth, ranks

    def quality(self, queries, task: str | None = None, m: int = 20) -> dict:
        """Time-aware filtered MRR and Hits@1/3/10 over all candidates of the given queries (the filter: other
        true answers of the same question at the same time among ``queries``), ties counting half, with
        ``mrr_optimistic`` and ``mrr_pessimistic``, and the share whose truth is in the top ``m``.  Every query
        must be in the file.  A top-k file knows only the listed candidates: a truth it does not list counts
        as rank infinity (``mrr``, ``mrr_pessimistic``: lower bounds) and as just below the listed candidates
        (``mrr_optimistic``)."""
        task = task or self.task
        q = self._check_args(queries, task, m)
        rows, truth, ranks = self._ranks(q, task)
        t = self.table
        if t.dense:
            ids, _ = self._top(rows, m)
        else:
            ids = t.topk_ids[rows][:, :m]
        in_top = (ids == truth[:, None]).any(axis=1)
        return _metrics(ranks, in_top, m)


def _row_order(scores: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Per row, the order best score first, ties lower id first."""
    order = np.empty(scores.shape, dtype=np.int64)
    for j in range(len(scores)):
        order[j] = np.lexsort((ids[j], -scores[j]))
    return order


def fit_scores(store, task: str, path=None, fallback: str | None = None, log_scores: bool | None = None
               ) -> ScoresProposer:
    """The registry's factory for ``proposer: {model: scores, path: FILE}`` (the pipeline passes the resolved
    ``lamp.proposer.path`` as ``path``)."""
    if path is None:
        raise ConfigError("lamp.proposer.path: the scores proposer needs a score file (proposer: {model: scores, "
                          "path: FILE})")
    return ScoresProposer(path, store, task=task, fallback=fallback, log_scores=log_scores)
