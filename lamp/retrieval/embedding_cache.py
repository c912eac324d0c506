"""Embeddings computed once: :class:`EmbeddingCache` (SQLite, one row per distinct text and model),
:func:`embed_texts` (every text embedded once, a killed run resumes where it stopped, and a second data set
sharing texts reuses them) and :func:`corpus_embeddings` (a whole-matrix file keyed by the fingerprint of
the corpus and the model, which loads in a fraction of a second)."""
from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from typing import Callable, Sequence

import numpy as np

from lamp.retrieval.embedders import _bar, _check_texts

__all__ = ["EmbeddingCache", "embed_texts", "corpus_embeddings"]


class EmbeddingCache:
    """Embeddings on disk in SQLite, one row per (model identity, text); safe to share between runs."""

    def __init__(self, path: str):
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS embeddings (key BLOB PRIMARY KEY, dim INTEGER, vec BLOB)")
        self._db.commit()

    @staticmethod
    def key(identity: str, text: str) -> bytes:
        return hashlib.sha256(f"{identity}\0{text}".encode("utf-8", errors="replace")).digest()

    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        found = {}
        keys = list(keys)
        for s in range(0, len(keys), 900):
            chunk = keys[s:s + 900]
            rows = self._db.execute(f"SELECT key, dim, vec FROM embeddings WHERE key IN ({','.join('?' * len(chunk))})",
                                    chunk).fetchall()
            for key, dim, vec in rows:
                found[bytes(key)] = np.frombuffer(vec, dtype=np.float32, count=dim)
        return found

    def put_many(self, items: Sequence[tuple[bytes, np.ndarray]]) -> None:
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)",
                                 [(k, int(v.shape[0]), np.ascontiguousarray(v, dtype=np.float32).tobytes())
                                  for k, v in items])

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]

    def close(self) -> None:
        self._db.close()


def embed_texts(texts: Sequence[str], embedder, cache: EmbeddingCache | None = None, chunk: int = 4096,
                progress: bool = False, say: Callable[[str], None] | None = None) -> np.ndarray:
    """Embeddings of ``texts`` (float32, unit rows), each distinct text embedded once.

    With a ``cache``, texts already embedded by the same model are read from it and new ones are
    written every ``chunk`` texts, so an interrupted call loses at most one chunk.
    """
    texts = _check_texts(texts)
    unique, inverse = np.unique(np.asarray(texts, dtype=object), return_inverse=True) if texts else ([], [])
    unique = list(unique)
    vectors: list[np.ndarray | None] = [None] * len(unique)
    keys = [EmbeddingCache.key(embedder.identity, t) for t in unique] if cache is not None else []
    if cache is not None:
        found = cache.get_many(keys)
        for i, k in enumerate(keys):
            vectors[i] = found.get(k)
    todo = [i for i, v in enumerate(vectors) if v is None]
    if say is not None and unique:
        say(f"embeddings: {len(texts):,} texts, {len(unique):,} distinct, {len(todo):,} to compute "
            f"with {embedder.identity.split(':')[0]}")
    bar = _bar(len(todo), "embedding", progress)
    started = time.time()
    for s in range(0, len(todo), chunk):
        rows = todo[s:s + chunk]
        vecs = embedder.encode([unique[i] for i in rows])
        for i, v in zip(rows, vecs):
            vectors[i] = v
        if cache is not None:
            cache.put_many([(keys[i], vectors[i]) for i in rows])
        if bar is not None:
            bar.update(len(rows))
    if bar is not None:
        bar.close()
    if say is not None and todo:
        say(f"embeddings: {len(todo):,} computed in {time.time() - started:.1f} s")
    if not texts:
        return np.zeros((0, getattr(embedder, "dimension", None) or 0), dtype=np.float32)
    matrix = np.stack(vectors).astype(np.float32, copy=False)
    return matrix[np.asarray(inverse).reshape(-1)]


def corpus_embeddings(texts: Sequence[str], embedder, cache_dir: str, progress: bool = True,
                      say: Callable[[str], None] | None = None) -> np.ndarray:
    """Embeddings of a whole corpus, stored as ``cache_dir/corpus-<fingerprint>.npy`` where the
    fingerprint covers the model and every text in order; per-text rows go to
    ``cache_dir/embeddings.sqlite`` as they are computed, so a killed run resumes."""
    texts = _check_texts(texts)
    h = hashlib.sha256(embedder.identity.encode())
    for t in texts:
        h.update(t.encode("utf-8", errors="replace"))
        h.update(b"\0")
    path = os.path.join(cache_dir, f"corpus-{h.hexdigest()[:24]}.npy")
    if os.path.isfile(path):
        matrix = np.load(path)
        if matrix.shape[0] == len(texts):
            return matrix
    cache = EmbeddingCache(os.path.join(cache_dir, "embeddings.sqlite"))
    try:
        matrix = embed_texts(texts, embedder, cache, progress=progress, say=say)
    finally:
        cache.close()
    tmp = path + ".tmp.npy"
    np.save(tmp, matrix)
    os.replace(tmp, path)
    return matrix
