"""``lamp export-scores CONFIG``: a knowledge-graph proposer's scores over all candidates for the queries of
a config, in a format the ``scores`` proposer reads (:mod:`lamp.tpp.scores`).

The queries are the ones ``lamp run`` selects for the same config (the seeded subsets of train, valid and
test), so the config with ``proposer: {model: scores, path: FILE}`` runs on the exported file without a
fallback.  Formats, by ``--format`` or the extension of ``--out``: ``npz`` (lamp's, written streaming; or
its top-k form with ``--top-k``), ``npy`` (a memory-mapped matrix and ``FILE.queries.txt``), ``pkl``
(Gastinger et al.'s evaluation dictionary of torch tensors; held in memory as the reference code does,
needs torch).
"""
from __future__ import annotations

import os
import tempfile
import zipfile

import numpy as np

from lamp.config.registry import proposer_spec, resolve
from lamp.errors import ConfigError, storage_error

__all__ = ["export_scores", "FORMATS"]

FORMATS = ("npz", "npy", "pkl")
_CHUNK = 256


def _queries(cfg, store, splits) -> np.ndarray:
    from lamp.pipeline.queries import select_queries
    from lamp.pipeline.tasks import StageContext

    settings = cfg.lamp
    ctx = StageContext(settings=settings, task=settings.task, m=settings.m, store=store, run_dir=None,
                       data_fingerprint="", say=lambda message: None, resolve_path=cfg.resolve_path)
    chosen = select_queries(ctx)
    return np.concatenate([chosen[s].events for s in splits])


def _proposer(cfg, store):
    settings = cfg.lamp
    name = settings.proposer_model
    if name == "scores":
        raise ConfigError("lamp.proposer.model 'scores': export-scores writes the scores of a proposer that computes "
                          "them (kg_hawkes, recurrency or one you registered), not of a score file")
    spec = proposer_spec(name)
    if settings.proposer.checkpoint:
        path = cfg.resolve_path(settings.proposer.checkpoint)
        if not spec.persistent or not os.path.isfile(path):
            raise ConfigError(f"lamp.proposer.checkpoint {settings.proposer.checkpoint}: no such file, or {name!r} "
                              "cannot be read from one")
        return resolve(spec.load)(path, store)
    params = dict(settings.proposer.params or {})
    if settings.proposer.path is not None:
        params["path"] = cfg.resolve_path(settings.proposer.path)
    return resolve(spec.factory)(store, settings.task, **params)


def _rows(proposer, queries, task, n_cand):
    """Full score rows (n, C) of ``queries``, in chunks."""
    for start in range(0, len(queries), _CHUNK):
        chunk = queries[start:start + _CHUNK]
        ids, scores = proposer.propose(chunk, task=task, m=n_cand)
        full = np.empty((len(chunk), n_cand), dtype=np.float64)
        np.put_along_axis(full, ids, scores, axis=1)
        yield start, full


def _write_npz_stream(path, arrays: dict, name: str, shape, chunks) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, value in arrays.items():
            with zf.open(key + ".npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asarray(value), allow_pickle=False)
        with zf.open(name + ".npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float64)),
                                                     "fortran_order": False, "shape": tuple(shape)})
            for _, rows in chunks:
                f.write(np.ascontiguousarray(rows, dtype=np.float64).tobytes())


def export_scores(cfg, out: str | None = None, fmt: str | None = None, splits=("train", "valid", "test"),
                  top_k: int | None = None, both_directions: bool = False, say=print) -> str:
    """Write the config's proposer's scores of the config's queries to ``out``; return the path written."""
    from lamp.tpp.scores import save_scores, write_pickle, write_sidecar

    settings = cfg.lamp
    task = settings.task
    if task not in ("object", "relation"):
        raise ConfigError(f"lamp.task {task!r}: export-scores writes object or relation scores (the scores proposer "
                          "does not read the pair task or typed sequences)")
    if fmt is None:
        ext = os.path.splitext(out or "")[1].lower().lstrip(".")
        fmt = {"pickle": "pkl"}.get(ext, ext) or "npz"
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: must be one of {', '.join(FORMATS)} (or an --out ending in one)")
    bad = [s for s in splits if s not in ("train", "valid", "test")]
    if bad or not splits:
        raise ConfigError(f"--splits {','.join(splits)}: give some of train, valid, test")
    if top_k is not None and (fmt != "npz" or top_k < 1):
        raise ConfigError("--top-k: a positive number, with the npz format only")
    if both_directions and task != "object":
        raise ConfigError("--both-directions: only for lamp.task 'object' (subject queries are inverse object queries)")
    if out is None:
        out = f"{settings.proposer_model}_scores.{fmt}"
    if os.path.isdir(out):
        raise ConfigError(f"--out {out}: is a folder; give a file name")
    store = cfg.load_data()
    if store.kind != "tkg":
        raise ConfigError(f"data set {store.name!r} is not a temporal knowledge graph")
    queries = _queries(cfg, store, splits)
    if both_directions:
        R = store.num_relations
        inverse = np.stack([queries[:, 2], queries[:, 1] + R, queries[:, 0], queries[:, 3]], axis=1)
        queries = np.concatenate([queries, inverse])
    proposer = _proposer(cfg, store)
    n_cand = store.num_entities if task == "object" else store.num_relations
    direction = "object" if task == "object" else "relation"
    folder = os.path.dirname(os.path.abspath(out))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".export-", suffix="." + fmt, dir=folder)
        os.close(fd)
    except OSError as exc:
        raise storage_error(exc, out, "cannot write the score file") from exc
    try:
        if fmt == "npz" and top_k is not None:
            k = min(int(top_k), n_cand)
            ids, scores = proposer.propose(queries, task=task, m=k)
            save_scores(tmp, queries, direction, topk_ids=ids, topk_scores=scores)  # tmp ends in .npz
        elif fmt == "npz":
            _write_npz_stream(tmp, {"queries": queries.astype(np.int64), "direction": np.array(direction)}, "scores",
                              (len(queries), n_cand), _rows(proposer, queries, task, n_cand))
        elif fmt == "npy":
            matrix = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float64, shape=(len(queries), n_cand))
            for start, rows in _rows(proposer, queries, task, n_cand):
                matrix[start:start + len(rows)] = rows
            matrix.flush()
            del matrix
        else:
            import importlib.util

            if importlib.util.find_spec("torch") is None:  # the format's score rows are torch tensors
                raise ConfigError("--format pkl writes torch tensors (the Gastinger et al. format): install torch, "
                                  "or use npz / npy")
            full = np.empty((len(queries), n_cand), dtype=np.float64)
            for start, rows in _rows(proposer, queries, task, n_cand):
                full[start:start + len(rows)] = rows
            write_pickle(tmp, queries, full, store.num_relations)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # as an ordinary new file, not mkstemp's 0600
        os.replace(tmp, out)
        if fmt == "npy":
            write_sidecar(out, queries, direction)
    except OSError as exc:
        raise storage_error(exc, out, "cannot write the score file") from exc
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    say(f"wrote the {settings.proposer_model} scores of {len(queries)} queries ({', '.join(splits)}"
        f"{', both directions' if both_directions else ''}) to {out}")
    return out
