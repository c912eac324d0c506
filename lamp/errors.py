"""Every exception lamp raises on purpose derives from :class:`LampError`.

``except lamp.errors.LampError`` catches any of them.  Each also keeps the
built-in base it always had (``ValueError`` for bad configs and data,
``RuntimeError`` for failing LLM or embedding backends), so existing
``except ValueError`` clauses keep working.
"""
from __future__ import annotations

import os

__all__ = ["LampError", "ConfigError", "DataError", "LLMError", "ReplayMissError", "BatchAPIError", "EmbedderError"]


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
