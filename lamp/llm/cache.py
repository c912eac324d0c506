"""A durable cache of LLM answers: SQLite in WAL mode, one row per answer.

Keyed by a hash of (model, messages, sampling parameters).  Rows are written
as answers arrive, in short transactions, so several processes can share one
cache file and a killed run loses nothing it had received.  The cache stores
requests and replies only: no URL, no header, no key.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
import time
import warnings
from typing import Any, Iterable

from lamp.errors import StorageError, storage_error

__all__ = ["AnswerCache", "request_key", "token_count", "MAX_TOKENS_REPORTED"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    request TEXT NOT NULL,
    reply TEXT NOT NULL,
    text TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    created REAL NOT NULL
)
"""


#: the largest token count a reply may report (larger, or not a whole number >= 0: recorded as unknown)
MAX_TOKENS_REPORTED = 10 ** 9


def token_count(value) -> int | None:
    """A token count as kept: an int in ``[0, MAX_TOKENS_REPORTED]``, else None (unknown): ``"12"``,
    ``"n/a"``, ``10**20``, ``-1``, ``1.5`` and ``true`` are unknown."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    return int(value) if 0 <= value <= MAX_TOKENS_REPORTED else None


def request_key(model: str, messages: list, sampling: dict) -> str:
    """The cache key of a chat request (hex SHA-256 of its canonical JSON)."""
    payload = json.dumps({"model": model, "messages": messages, "sampling": sampling}, sort_keys=True,
                         ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class AnswerCache:
    """SQLite cache of chat answers.

    Parameters
    ----------
    path : str
        The database file (created with its folder when missing).
    timeout : float
        Seconds to wait for another process's write lock.
    """

    def __init__(self, path: str | os.PathLike, timeout: float = 60.0):
        self.path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(self.path))
        self._local = threading.local()
        self.timeout = timeout
        with self._storage("cannot open the answer cache"):
            os.makedirs(folder, exist_ok=True)
            if os.path.isdir(self.path):
                raise IsADirectoryError(21, "Is a directory", self.path)
            with self._connect() as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute(_SCHEMA)
                db.execute("SELECT key, model, request, reply, text, prompt_tokens, completion_tokens, created "
                           "FROM answers LIMIT 0")

    @contextlib.contextmanager
    def _storage(self, doing: str):
        """SQLite and file-system failures as a :class:`~lamp.errors.StorageError` naming the cache file."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            if isinstance(exc, (sqlite3.ProgrammingError, sqlite3.InterfaceError)):
                raise  # a fault of the caller (a value SQLite cannot store), not of the file
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                reason = "another process holds its write lock for too long"
            elif isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError) \
                    or "malformed" in str(exc) or "no such column" in str(exc) or "no such table" in str(exc):
                reason = f"{exc}: it is not a lamp answer cache, or it is damaged; move it aside (lamp starts a new " \
                         "one) or give another llm.cache"
            else:
                reason = None
            error = storage_error(exc, self.path, doing)
            if reason:
                error = StorageError(f"{self.path}: {doing}: {reason}")
            raise error from exc

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            db.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    def get_many(self, keys: Iterable[str]) -> dict[str, dict]:
        with self._storage("cannot read the answer cache"):
            return self._get_many(keys)

    def _get_many(self, keys: Iterable[str]) -> dict[str, dict]:
        """Rows of the keys present: ``{key: {"text", "reply", "usage"}}``.  A row that cannot be read back (its
        text or reply not a string: written by something else, or damaged) is treated as missing — asked
        again and replaced — with a warning; a token count that is not a whole number in range is unknown
        (None)."""
        keys = list(keys)
        out, unreadable = {}, 0
        db = self._connect()
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            rows = db.execute(f"SELECT key, text, reply, prompt_tokens, completion_tokens FROM answers WHERE key IN "
                              f"({','.join('?' * len(chunk))})", chunk).fetchall()
            for key, text, reply, pt, ct in rows:
                if not isinstance(text, str) or not isinstance(reply, str):
                    unreadable += 1
                    continue
                out[key] = {"text": text, "reply": reply,
                            "usage": {"prompt_tokens": token_count(pt), "completion_tokens": token_count(ct)}}
        if unreadable:
            warnings.warn(f"{self.path}: {unreadable} cached answer(s) cannot be read back; they are asked again",
                          RuntimeWarning, stacklevel=2)
        return out

    def put_many(self, rows: Iterable[tuple[str, str, Any, str, str | None, dict | None]]) -> int:
        with self._storage("cannot store answers in the answer cache (the answers stored before are kept)"):
            return self._put_many(rows)

    def _put_many(self, rows: Iterable[tuple[str, str, Any, str, str | None, dict | None]]) -> int:
        """Insert ``(key, model, request, reply, text, usage)`` rows in one short transaction; any error rolls it
        back (the connection stays usable), and a token count that is not a whole number in range is stored as
        unknown (NULL)."""
        rows = [(k, m, json.dumps(req, ensure_ascii=False), reply, text,
                 token_count((u or {}).get("prompt_tokens")), token_count((u or {}).get("completion_tokens")),
                 time.time()) for k, m, req, reply, text, u in rows]
        if not rows:
            return 0
        db = self._connect()
        for attempt in range(20):
            try:
                db.execute("BEGIN IMMEDIATE")
                db.executemany("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
                db.execute("COMMIT")
                return len(rows)
            except BaseException as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                if not isinstance(exc, sqlite3.OperationalError) or "locked" not in str(exc) or attempt == 19:
                    raise
                time.sleep(0.05 * (attempt + 1))  # "database is locked" beyond busy_timeout: try again
        return 0

    def __len__(self) -> int:
        with self._storage("cannot read the answer cache"):
            return self._connect().execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
