"""Exact cosine top-k over sentence embeddings in time order, with per-query time cutoffs (OpenBLAS
``sgemm`` in blocks, ``lamp._core.dense_*``)."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from lamp import _core
from lamp.retrieval.common import check_before, check_k

__all__ = ["DenseIndex"]


class DenseIndex:
    """Exact cosine top-k over embedding vectors in time order, with per-query time cutoffs.

    Parameters
    ----------
    vectors : array (N, d)
        One embedding per event, in time order; stored as float32, L2-normalised once.  A zero, NaN or
        infinite row raises ValueError naming it.
    embedder : optional
        What embeds the query texts of :meth:`search` (``encode(texts) -> (n, d)`` and an ``identity``):
        :class:`lamp.retrieval.embedders.MiniLMEmbedder`, an endpoint, or your own.
    cache : lamp.retrieval.embedding_cache.EmbeddingCache, optional
        Query embeddings are read from and written to it (each distinct text is embedded once).
    progress : bool
        A progress bar while query texts are embedded.
    say : callable, optional
        Progress lines (e.g. a run's log).

    Notes
    -----
    :meth:`search_vectors` multiplies blocks of queries by blocks of the corpus with OpenBLAS ``sgemm``
    (256 x 4,096 scores at a time, never an N x Q matrix) and keeps a k-heap per query; query ``i`` only
    sees rows ``< before[i]``.
    """

    def __init__(self, vectors, embedder=None, cache=None, progress: bool = False,
                 say: Callable[[str], None] | None = None):
        self.vectors = _core.dense_normalize(vectors, "vectors")
        self.embedder, self.cache, self.progress, self.say = embedder, cache, bool(progress), say

    @classmethod
    def from_texts(cls, texts, embedder=None, cache_dir: str | None = None, progress: bool = True) -> "DenseIndex":
        """An index over the embeddings of ``texts`` (in time order).

        ``embedder`` defaults to the local all-MiniLM-L6-v2 (:class:`~lamp.retrieval.embedders.MiniLMEmbedder`);
        with ``cache_dir`` the matrix is cached on disk under the fingerprint of the model and the texts
        (:func:`~lamp.retrieval.embedding_cache.corpus_embeddings`).
        """
        from lamp.retrieval.embedders import MiniLMEmbedder
        from lamp.retrieval.embedding_cache import corpus_embeddings

        embedder = embedder or MiniLMEmbedder()
        if cache_dir is not None:
            vectors = corpus_embeddings(texts, embedder, cache_dir, progress=progress)
        else:
            vectors = embedder.encode(texts, progress=progress)
        return cls(vectors, embedder=embedder)

    def __len__(self) -> int:
        return len(self.vectors)

    @property
    def dimension(self) -> int:
        return self.vectors.shape[1]

    def search(self, queries: Sequence[str], k: int, before=None, scope=None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` events per query text (the signature of :meth:`lamp.retrieval.BM25Index.search`): the
        texts are embedded by the index's embedder (through its cache), then :meth:`search_vectors`.
        ``scope`` (an entity restriction) is BM25's only: it must be None here."""
        if scope is not None:
            raise ValueError("scope (retrieval restricted to entities) needs BM25; dense retrieval searches every "
                             "event before the cutoff")
        if self.embedder is None:
            raise ValueError("searching with texts needs an embedder: DenseIndex(vectors, embedder=...) or "
                             "DenseIndex.from_texts(...); search_vectors takes query vectors")
        from lamp.retrieval.embedding_cache import embed_texts

        vectors = embed_texts(queries, self.embedder, self.cache, progress=self.progress, say=self.say)
        return self.search_vectors(vectors, k, before=before)

    def search_vectors(self, query_vectors, k: int, before=None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` rows by cosine similarity per query vector: (indices int64 (Q, k), scores float64 (Q, k)),
        best first, ties to the more recent row, -1 / -inf padding."""
        k = check_k(k, len(self))
        queries = np.asarray(query_vectors)
        if queries.ndim != 2 or queries.shape[1] != self.dimension:
            raise ValueError(f"query_vectors must have shape (Q, {self.dimension}), got {queries.shape}")
        queries = _core.dense_normalize(queries, "query_vectors")
        return _core.dense_search(self.vectors, queries, check_before(before, len(queries), len(self)), k)
