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
      <stage>/DONE             written last, with a SHA-256 of every file: a stage without it is
                               unfinished, one whose files do not match it is damaged (computed again)
      .lock                    held by the process running in this folder (one writer at a time)

Stages are written atomically (a temporary folder beside the stage, fsynced, renamed into place).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from typing import Any, Callable

import numpy as np

from lamp._version import __version__
from lamp.errors import LampError, storage_error

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
    """A folder holding the outputs of one experiment's stages.

    One writer at a time (:meth:`locked`); every stage written atomically and verified when read back
    (:meth:`save`, :meth:`finished`); a damaged finished stage is computed again, and so is every stage
    after it."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.path.abspath(os.fspath(path))
        try:
            os.makedirs(self.path, exist_ok=True)
            if not os.path.isdir(self.path):
                raise NotADirectoryError(20, "Not a directory", self.path)
            self.log = logging.getLogger(f"lamp.run.{os.path.basename(self.path)}")
            self.log.setLevel(logging.INFO)
            log_file = os.path.join(self.path, "run.log")
            if not any(getattr(h, "baseFilename", None) == log_file for h in self.log.handlers):
                handler = _LogFile(log_file, encoding="utf-8")
                handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
                self.log.addHandler(handler)
        except OSError as exc:
            raise storage_error(exc, self.path, "cannot use it as a run folder") from exc
        self.used: dict[str, str] = {}  # stage -> fingerprint, of this process's run, in order
        self._recompute_after = False   # a damaged stage was found: every later stage is computed again

    # ------------------------------------------------------------------ one writer

    @contextlib.contextmanager
    def locked(self, wait: bool = True, say: Callable[[str], None] | None = None):
        """Hold the folder's lock (``fcntl.flock`` on ``DIR/.lock``, released by the OS when the process dies)
        for the block.  Another process holding it: wait for it (saying so), or with ``wait=False`` raise
        :class:`~lamp.errors.RunLockedError` naming its PID.  Re-entrant within a process.  A file-system
        failure in the block that no lamp code named becomes a :class:`~lamp.errors.StorageError` naming the
        file (or this folder) and the problem."""
        with _locked(os.path.join(self.path, ".lock"), wait, say, self.path) as first:
            try:
                if first:
                    self._tidy()
                yield self
            except OSError as exc:
                if isinstance(exc, LampError) or not first or exc.errno is None:  # None: lamp's own message
                    raise
                raise storage_error(exc, self.path, "the run stopped") from exc

    def _tidy(self) -> None:
        """Left by a process that died while saving a stage: a temporary folder (removed) or the previous
        version of a stage set aside just before the new one was renamed into place (put back when the
        stage itself is missing, else removed)."""
        for entry in os.listdir(self.path):
            match = _LEFTOVER.fullmatch(entry)
            if not match:
                continue
            name, kind = match.group(1), match.group(2)
            leftover = os.path.join(self.path, entry)
            if kind == "old" and not os.path.lexists(self.stage_dir(name)) \
                    and os.path.isdir(os.path.join(leftover, name)):
                os.rename(os.path.join(leftover, name), self.stage_dir(name))
                self.log.info("stage %s: put back the version set aside by an interrupted save", name)
            shutil.rmtree(leftover, ignore_errors=True)

    # ------------------------------------------------------------------ stages

    def stage_dir(self, name: str) -> str:
        return os.path.join(self.path, name)

    def _state(self, name: str, fp: str) -> str:
        """``"finished"``, ``"absent"`` (no finished output with this fingerprint) or ``"damaged: <why>"``
        (a finished output with this fingerprint whose files are missing or do not match their checksums)."""
        folder = self.stage_dir(name)
        try:
            with open(os.path.join(folder, "DONE"), encoding="utf-8") as f:
                done = f.read()
        except OSError:
            return "absent"
        try:
            with open(os.path.join(folder, "fingerprint.json"), encoding="utf-8") as f:
                stored = json.load(f).get("fingerprint")
        except (OSError, ValueError, AttributeError):
            stored = None
        try:
            record = json.loads(done)
        except ValueError:  # a DONE of an older lamp: the fingerprint alone
            record = {"fingerprint": done.strip(), "files": None}
        if not isinstance(record, dict) or record.get("fingerprint") != fp:
            return "absent" if stored != fp else "damaged: its DONE marker does not match"
        if stored != fp:
            return "damaged: fingerprint.json is missing or does not match"
        for file, digest in (record.get("files") or {}).items():
            try:
                actual = file_sha256(os.path.join(folder, file))
            except OSError:
                return f"damaged: {file} is missing"
            if actual != digest:
                return f"damaged: {file} does not match its checksum"
        return "finished"

    def finished(self, name: str, fp: str) -> bool:
        return self._state(name, fp) == "finished"

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
        """Write a stage's output atomically: into a temporary folder beside it, each file fsynced, ``DONE`` last
        with a SHA-256 of every file, then renamed into place (a crash leaves the old stage or the new one,
        never a mix).  ``complete=False`` (work that partly failed) writes it without ``DONE``, so the next
        run computes the stage again, and gives it a fingerprint of its content, so that the stages
        downstream of it are computed again too once it is complete."""
        folder = self.stage_dir(name)
        try:
            tmp = tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=self.path)
        except OSError as exc:
            raise storage_error(exc, self.path, f"could not save stage {name}") from exc
        try:
            arrays = {k: v for k, v in output.items() if isinstance(v, np.ndarray)}
            values = {k: v for k, v in output.items() if not isinstance(v, np.ndarray)}
            files = {}
            if arrays:
                files["arrays.npz"] = _write(os.path.join(tmp, "arrays.npz"), lambda f: np.savez(f, **arrays))
            if values:
                files["result.json"] = _write(os.path.join(tmp, "result.json"), lambda f: f.write(
                    json.dumps(_canonical(values), indent=2).encode("utf-8")))
            record = {"fingerprint": fp, "lamp_version": __version__, "settings": _canonical(settings)}
            files["fingerprint.json"] = _write(os.path.join(tmp, "fingerprint.json"), lambda f: f.write(
                json.dumps(record, indent=2, default=str).encode("utf-8")))
            if complete:
                _write(os.path.join(tmp, "DONE"), lambda f: f.write(
                    json.dumps({"fingerprint": fp, "files": files}, indent=1).encode("utf-8")))
            _fsync_dir(tmp)
            old = None
            if os.path.lexists(folder):
                old = tempfile.mkdtemp(prefix=f".{name}.old-", dir=self.path)
                os.rename(folder, os.path.join(old, name))
            os.rename(tmp, folder)
            _fsync_dir(self.path)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(exc, OSError):
                raise storage_error(exc, folder, f"could not save stage {name}") from exc
            raise
        result = StageOutput(output)
        result.fingerprint = fp if complete else fingerprint(name, fp, "unfinished", output)
        return result

    def stage(self, name: str, settings: Any, upstream: list[str], compute: Callable[[], dict],
              resume: bool = True, complete: Callable[[dict], bool] | None = None) -> StageOutput:
        """Load stage ``name`` if it finished with the same inputs and its files are intact, else compute and
        save it (as unfinished when ``complete(output)`` is false: see :meth:`save`).  A finished stage whose
        files are damaged is computed again with a warning, and so is every stage after it in this run."""
        fp = fingerprint(name, settings, upstream, __version__)
        self.used[name] = fp
        state = self._state(name, fp) if resume else "absent"
        if state.startswith("damaged"):
            message = f"stage {name}: {state.split(': ', 1)[1]}; computing it again, and every stage after it"
            self.log.warning(message)
            warnings.warn(f"{self.path}: {message}", RuntimeWarning, stacklevel=3)
            self._recompute_after = True
        elif state == "finished" and not self._recompute_after:
            self.log.info("stage %s: reusing finished output (%s)", name, fp)
            return self.load(name, fp)
        self.log.info("stage %s: computing (%s)", name, fp)
        output = compute()
        return self.save(name, fp, settings, output, complete=True if complete is None else bool(complete(output)))


class _LogFile(logging.FileHandler):
    """``run.log``: a line that cannot be written (a full disk) is dropped quietly; the failure itself is
    reported once by whatever write of the run fails next, not as a traceback per log line."""

    def handleError(self, record) -> None:
        pass


def file_sha256(path) -> str:
    """The SHA-256 of a file's bytes (hex), read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write(path: str, write: Callable) -> str:
    """Write a file with ``write(f)`` (binary), fsync it, and return its SHA-256."""
    with open(path, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    return file_sha256(path)


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_LEFTOVER = re.compile(r"\.(.+)\.(tmp|old)-[A-Za-z0-9_]+")
_HELD: dict[str, list] = {}  # lock file -> [fd, depth] held by this process


@contextlib.contextmanager
def _locked(path: str, wait: bool, say, folder: str):
    import fcntl

    from lamp.errors import RunLockedError

    if path in _HELD:
        _HELD[path][1] += 1
        try:
            yield False
        finally:
            _HELD[path][1] -= 1
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise storage_error(exc, path, "cannot take the run folder's lock") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.lseek(fd, 0, os.SEEK_SET)
            holder = os.read(fd, 64).decode("ascii", errors="replace").strip() or "unknown"
            if not wait:
                raise RunLockedError(f"{folder}: another lamp process (PID {holder}) is using this run folder; "
                                     "wait for it to finish, or give this run another --out") from None
            (say or print)(f"{folder}: another lamp process (PID {holder}) is using this run folder; waiting for "
                           "it to finish (--no-wait to stop instead)")
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        except OSError:  # a full disk: the lock holds all the same, its holder's PID is unknown
            pass
        _HELD[path] = [fd, 1]
        try:
            yield True
        finally:
            del _HELD[path]
    finally:
        os.close(fd)  # releases the lock
