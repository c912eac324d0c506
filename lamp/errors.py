"""Every exception lamp raises on purpose derives from :class:`LampError`.

``except lamp.errors.LampError`` catches any of them.  Each also keeps the
built-in base it always had (``ValueError`` for bad configs and data,
``RuntimeError`` for failing LLM or embedding backends), so existing
``except ValueError`` clauses keep working.
"""
from __future__ import annotations

import os

__all__ = ["LampError", "ConfigError", "DataError", "LLMError", "ReplayMissError", "BatchAPIError", "EmbedderError",
           "RunLockedError", "StorageError", "storage_error"]


class LampError(Exception):
    """The root of every lamp exception."""


class ConfigError(LampError, ValueError):
    """An invalid configuration: the message names the key path and the problem."""


class DataError(LampError, ValueError):
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


class LLMError(LampError, RuntimeError):
    """A failure of the LLM backend that is not about one request."""


class ReplayMissError(LLMError):
    """Replay mode found requests that are not in the cache."""


class BatchAPIError(LLMError):
    """A control call of a batch API (upload, job creation, poll, download) that failed for good; ``status`` is
    the last HTTP status (0: none).  :meth:`lamp.llm.BatchClient.chat` reports it in the results of the
    requests it concerns instead of raising it."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


class EmbedderError(LampError, RuntimeError):
    """An embedder could not be built or asked (missing model files, packages or endpoint)."""


class RunLockedError(LampError, RuntimeError):
    """Another process is running in this run folder (``lamp run --no-wait``): the message names its PID."""


class StorageError(LampError, OSError):
    """A file or database lamp writes or reads failed (disk full, read-only, not a directory, not an answer
    cache): the message names the path and the problem; nothing finished is lost."""


_HINTS = {
    "ENOSPC": "the disk is full; finished stages and cached answers are kept: free some space and run again",
    "EDQUOT": "the disk quota is exhausted; finished stages and cached answers are kept: free some space and run again",
    "EROFS": "the file system is read-only; give a writable folder (--out, llm.cache)",
    "EACCES": "permission denied; give a folder you can write to (--out, llm.cache)",
    "EPERM": "permission denied; give a folder you can write to (--out, llm.cache)",
    "ENOTDIR": "a part of the path is a file, not a folder",
    "EEXIST": "a file of that name is in the way of a folder",
}


def storage_error(exc: BaseException, path: str | os.PathLike, doing: str) -> StorageError:
    """A :class:`StorageError` for an ``OSError`` or ``sqlite3.Error`` met while ``doing`` something with
    ``path``: one line naming the path, what was being done, the problem and what to do."""
    import errno

    code = errno.errorcode.get(getattr(exc, "errno", None) or 0, "")
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    text = str(exc).lower()
    if not code and ("disk is full" in text or "disk full" in text):
        code = "ENOSPC"
    where = getattr(exc, "filename", None) or path
    hint = _HINTS.get(code)
    return StorageError(f"{os.fspath(where)}: {doing}: {reason}" + (f" ({hint})" if hint else ""))
