"""The run directory: every stage's output kept on disk, keyed by a fingerprint of its inputs.

A stage's fingerprint hashes its own settings together with the fingerprints
of the stages it reads, so changing a setting invalidates that stage and
everything downstream of it, and nothing upstream.  A stage whose folder holds
a finished output with the same fingerprint is loaded instead of recomputed.

Layout::

    DIR/
      run.log                  log of every run in this directory
      <stage>/fingerprint.json settings + upstream fingerprints + lamp version
      <stage>/arrays.npz       NumPy outputs
      <stage>/result.json      JSON outputs
      <stage>/DONE             written last: a stage without it is unfinished
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from typing import Any, Callable

import numpy as np

from lamp._version import __version__

__all__ = ["fingerprint", "RunDirectory", "StageOutput"]


_URL_USER = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#@\s]*@")


def _canonical(value: Any) -> Any:
    if hasattr(value, "model_dump"):  # a validated settings section: its values
        value = value.model_dump()
    if isinstance(value, str) and "@" in value:  # a URL's user information may hold a password: never kept
        return _URL_USER.sub(r"\1", value)
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, np.ndarray):
        return {"__array__": hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest(),
                "shape": list(value.shape), "dtype": str(value.dtype)}
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value


def fingerprint(*parts: Any) -> str:
    """A short stable hash of JSON-able values (arrays are hashed by content)."""
    text = json.dumps([_canonical(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def data_fingerprint(store) -> str:
    """The fingerprint of an :class:`~lamp.data.EventStore`'s content (name and every split's arrays): the
    upstream of the stages that read the data."""
    return fingerprint(store.name, *[(s.times, s.marks, s.subjects, s.objects, s.offsets)
                                     for s in store.splits.values()])


class StageOutput(dict):
    """What a stage produced: NumPy arrays and JSON values, by name; ``.fingerprint`` says for which inputs."""

    fingerprint: str = ""
    loaded: bool = False


class RunDirectory:
    """A folder holding the outputs of one experiment's stages."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.path.abspath(os.fspath(path))
        os.makedirs(self.path, exist_ok=True)
        self.log = logging.getLogger(f"lamp.run.{os.path.basename(self.path)}")
        self.log.setLevel(logging.INFO)
        log_file = os.path.join(self.path, "run.log")
        if not any(getattr(h, "baseFilename", None) == log_file for h in self.log.handlers):
            handler = logging.FileHandler(log_file, encoding="utf-8")
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            self.log.addHandler(handler)

    def stage_dir(self, name: str) -> str:
        return os.path.join(self.path, name)

    def finished(self, name: str, fp: str) -> bool:
        folder = self.stage_dir(name)
        try:
            with open(os.path.join(folder, "fingerprint.json"), encoding="utf-8") as f:
                stored = json.load(f)
        except (OSError, ValueError):
            return False
        return stored.get("fingerprint") == fp and os.path.exists(os.path.join(folder, "DONE"))

    def load(self, name: str, fp: str) -> StageOutput:
        folder = self.stage_dir(name)
        out = StageOutput()
        arrays = os.path.join(folder, "arrays.npz")
        if os.path.exists(arrays):
            with np.load(arrays, allow_pickle=False) as data:
                out.update({k: data[k] for k in data.files})
        result = os.path.join(folder, "result.json")
        if os.path.exists(result):
            with open(result, encoding="utf-8") as f:
                out.update(json.load(f))
        out.fingerprint = fp
        out.loaded = True
        return out

    def save(self, name: str, fp: str, settings: Any, output: dict, complete: bool = True) -> StageOutput:
        """Write a stage's output; ``complete=False`` (work that partly failed) writes it without ``DONE``, so
        the next run computes the stage again, and gives it a fingerprint of its content, so that the stages
        downstream of it are computed again too once it is complete."""
        folder = self.stage_dir(name)
        if os.path.exists(folder):
            shutil.rmtree(folder)
        os.makedirs(folder)
        arrays = {k: v for k, v in output.items() if isinstance(v, np.ndarray)}
        values = {k: v for k, v in output.items() if not isinstance(v, np.ndarray)}
        if arrays:
            np.savez(os.path.join(folder, "arrays.npz"), **arrays)
        if values:
            with open(os.path.join(folder, "result.json"), "w", encoding="utf-8") as f:
                json.dump(_canonical(values), f, indent=2)
        with open(os.path.join(folder, "fingerprint.json"), "w", encoding="utf-8") as f:
            json.dump({"fingerprint": fp, "lamp_version": __version__, "settings": _canonical(settings)}, f,
                      indent=2, default=str)
        if complete:
            with open(os.path.join(folder, "DONE"), "w") as f:
                f.write(fp + "\n")
        result = StageOutput(output)
        result.fingerprint = fp if complete else fingerprint(name, fp, "unfinished", output)
        return result

    def stage(self, name: str, settings: Any, upstream: list[str], compute: Callable[[], dict],
              resume: bool = True, complete: Callable[[dict], bool] | None = None) -> StageOutput:
        """Load stage ``name`` if it finished with the same inputs, else compute and save it (as unfinished
        when ``complete(output)`` is false: see :meth:`save`)."""
        fp = fingerprint(name, settings, upstream, __version__)
        if resume and self.finished(name, fp):
            self.log.info("stage %s: reusing finished output (%s)", name, fp)
            return self.load(name, fp)
        self.log.info("stage %s: computing (%s)", name, fp)
        output = compute()
        return self.save(name, fp, settings, output, complete=True if complete is None else bool(complete(output)))
