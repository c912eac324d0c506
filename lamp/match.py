"""Matching generated causes against real past events (LAMP's third stage).

:class:`BM25Index` is a C inverted index over event texts in time order;
``search(queries, k, before=...)`` returns, for each query text, the ``k``
most similar events among those with index ``< before[i]`` (the events that
happened strictly before the query's effect event), best first.
:func:`assemble_evidence` turns the hits of a candidate's causes into its
evidence: merged, de-duplicated on (subject, relation, object, time), sorted
by time, the last ``L`` kept.

Tokenizer (shared by documents and queries): ASCII letters lower-cased; a
token is a maximal run of ASCII letters and digits and non-ASCII bytes (so
UTF-8 words stay whole); everything else separates tokens.  Texts are
encoded as UTF-8; unencodable characters (lone surrogates) are replaced, and
``bytes`` are taken as they are, valid UTF-8 or not.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from lamp import _core

__all__ = ["BM25Index", "DenseIndex", "assemble_evidence", "ENGLISH_STOP_WORDS"]

ENGLISH_STOP_WORDS = ("a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "into", "is", "it",
                      "of", "on", "or", "that", "the", "to", "was", "were", "with")


def _blob(texts: Sequence[str | bytes], name: str) -> tuple[bytes, np.ndarray]:
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"'{name}' must be a sequence of texts, not a single {type(texts).__name__}")
    parts = []
    for i, t in enumerate(texts):
        if isinstance(t, bytes):
            parts.append(t)
        elif isinstance(t, str):
            parts.append(t.encode("utf-8", errors="replace"))
        else:
            raise TypeError(f"'{name}'[{i}] must be str or bytes, got {type(t).__name__}")
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in parts], out=offsets[1:])
    return b"".join(parts), offsets


class BM25Index:
    """Okapi BM25 over texts in time order, searchable with a per-query time cutoff.

    Parameters
    ----------
    texts : sequence of str or bytes
        One text per event, in time order (index ``i`` = event ``i``).
    k1, b : float
        BM25 parameters (defaults 1.2 and 0.75).
    stop_words : sequence of str, optional
        Tokens ignored in documents and queries (e.g. :data:`ENGLISH_STOP_WORDS`).
    entities : int array (N, 2), optional
        Two entity ids per event (subject, object), needed for ``scope``.
    threads : int
        Threads used by :meth:`search` (default 2).

    Notes
    -----
    Scoring: ``idf(w) = ln(1 + (N - n(w) + 0.5) / (n(w) + 0.5))`` with ``N`` and
    the average length over the whole corpus; every token of a query counts
    (a repeated token counts twice).
    """

    def __init__(self, texts: Sequence[str | bytes], k1: float = 1.2, b: float = 0.75,
                 stop_words: Sequence[str] | None = None, entities=None, threads: int = 2):
        blob, offsets = _blob(texts, "texts")
        if len(offsets) == 1:
            raise ValueError("texts is empty: the index needs at least one document")
        stop_blob, stop_offsets = _blob(list(stop_words or ()), "stop_words")
        if entities is not None:
            entities = np.asarray(entities)
            if entities.shape != (len(offsets) - 1, 2):
                raise ValueError(f"entities must have shape ({len(offsets) - 1}, 2), got {entities.shape}")
        self._index = _core.bm25_build(blob, offsets, stop_blob, stop_offsets, entities, float(k1), float(b))
        self.k1, self.b = float(k1), float(b)
        self.threads = int(threads)
        self.has_entities = entities is not None

    def __len__(self) -> int:
        return _core.bm25_info(self._index)[0]

    @property
    def vocabulary_size(self) -> int:
        return _core.bm25_info(self._index)[1]

    def search(self, queries: Sequence[str | bytes], k: int, before=None, scope=None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` events per query.

        Parameters
        ----------
        queries : sequence of str or bytes
        k : int
            Results per query (``1 <= k <= len(index)``).
        before : int array (Q,), optional
            Query ``i`` sees only events with index ``< before[i]``.
        scope : int array (Q, 2), optional
            Entity ids per query: only events sharing one of them are searched
            (-1 entries are ignored).  Needs ``entities`` at build time.

        Returns
        -------
        indices : int64 (Q, k)
            Event indices, best first; ties go to the more recent event; -1
            pads when fewer than ``k`` events match.
        scores : float64 (Q, k)
            BM25 scores; ``-inf`` for padding.
        """
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
            raise TypeError(f"k must be an integer, got {k!r}")
        n = len(self)
        if not 1 <= k <= n:
            raise ValueError(f"k must be in 1..{n} (the number of indexed events), got {k}")
        blob, offsets = _blob(queries, "queries")
        q = len(offsets) - 1
        if before is not None:
            before = np.asarray(before)
            if before.dtype.kind not in "iu":
                raise TypeError(f"before must hold integers, got dtype {before.dtype}")
            if before.shape != (q,):
                raise ValueError(f"before must have shape ({q},), got {before.shape}")
            if q and (before.min() < 0 or before.max() > n):
                raise ValueError(f"before must be in [0, {n}], got values in [{before.min()}, {before.max()}]")
        if scope is not None and not self.has_entities:
            raise ValueError("scope needs an index built with entities=")
        return _core.bm25_search(self._index, blob, offsets, before, scope, int(k), self.threads)

    def tokenize(self, text: str | bytes) -> np.ndarray:
        """Term ids of a text under this index (-1 for tokens it has never seen)."""
        data = text.encode("utf-8", errors="replace") if isinstance(text, str) else text
        return _core.bm25_tokenize(self._index, data)


class DenseIndex:
    """Exact cosine top-k over embedding vectors in time order, with per-query time cutoffs.

    Parameters
    ----------
    vectors : array (N, d)
        One embedding per event, in time order; stored as float32, L2-normalised
        once.  A zero, NaN or infinite row raises ValueError naming it.

    Notes
    -----
    ``search`` multiplies blocks of queries by blocks of the corpus with
    OpenBLAS ``sgemm`` (256 x 4,096 scores at a time, never an N x Q matrix)
    and keeps a k-heap per query; query ``i`` only sees rows ``< before[i]``.
    Embeddings come from any source: a user matrix, ``lamp.llm.ChatClient.embed``
    against an ``/v1/embeddings`` endpoint, or a local sentence encoder.
    """

    def __init__(self, vectors):
        self.vectors = _core.dense_normalize(vectors, "vectors")

    @classmethod
    def from_texts(cls, texts, embedder=None, cache_dir: str | None = None, progress: bool = True) -> "DenseIndex":
        """An index over the embeddings of ``texts`` (in time order).

        ``embedder`` defaults to the local all-MiniLM-L6-v2 (:class:`lamp.embed.MiniLMEmbedder`); with
        ``cache_dir`` the matrix is cached on disk under the fingerprint of the model and the texts
        (:func:`lamp.embed.corpus_embeddings`). The embedder is kept as ``index.embedder`` for
        :meth:`search_texts`.
        """
        from lamp.embed import MiniLMEmbedder, corpus_embeddings

        embedder = embedder or MiniLMEmbedder()
        if cache_dir is not None:
            vectors = corpus_embeddings(texts, embedder, cache_dir, progress=progress)
        else:
            vectors = embedder.encode(texts, progress=progress)
        index = cls(vectors)
        index.embedder = embedder
        return index

    def search_texts(self, texts, k: int, before=None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`search` with query texts, embedded by the index's embedder (see :meth:`from_texts`)."""
        embedder = getattr(self, "embedder", None)
        if embedder is None:
            raise ValueError("search_texts needs an index built with DenseIndex.from_texts (it holds the embedder)")
        return self.search(embedder.encode(texts), k, before=before)

    def __len__(self) -> int:
        return len(self.vectors)

    @property
    def dimension(self) -> int:
        return self.vectors.shape[1]

    def search(self, query_vectors, k: int, before=None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` rows by cosine similarity per query: (indices int64 (Q, k), scores float64 (Q, k)),
        best first, ties to the more recent row, -1 / -inf padding."""
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
            raise TypeError(f"k must be an integer, got {k!r}")
        queries = np.asarray(query_vectors)
        if queries.ndim != 2 or queries.shape[1] != self.dimension:
            raise ValueError(f"query_vectors must have shape (Q, {self.dimension}), got {queries.shape}")
        queries = _core.dense_normalize(queries, "query_vectors")
        if before is not None:
            before = np.asarray(before)
            if before.dtype.kind not in "iu":
                raise TypeError(f"before must hold integers, got dtype {before.dtype}")
        return _core.dense_search(self.vectors, queries, before, int(k))


def assemble_evidence(hits: np.ndarray, subjects, relations, objects, times, length: int = 10) -> np.ndarray:
    """Evidence of each candidate from the event indices its causes retrieved.

    Parameters
    ----------
    hits : int array (n_candidates, per_candidate)
        Retrieved event indices (e.g. the top-K of every cause, concatenated);
        -1 for none.
    subjects, relations, objects, times : arrays (N,)
        The event columns the indices point into.
    length : int
        L, the number of (most recent) events kept.

    Returns
    -------
    int64 array (n_candidates, length)
        Event indices in time order (de-duplicated on (s, r, o, t)), then -1.
    """
    return _core.assemble_evidence(hits, subjects, relations, objects, times, int(length))
