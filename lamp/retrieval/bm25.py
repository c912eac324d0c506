"""Okapi BM25 over event texts in time order, searchable with a per-query time cutoff (the C inverted index
``lamp._core.bm25_*``).

Tokenizer (shared by documents and queries): ASCII letters lower-cased; a token is a maximal run of ASCII
letters and digits and non-ASCII bytes (so UTF-8 words stay whole); everything else separates tokens.
Texts are encoded as UTF-8; unencodable characters (lone surrogates) are replaced, and ``bytes`` are taken
as they are, valid UTF-8 or not.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from lamp import _core
from lamp.retrieval.common import check_before, check_k, text_blob

__all__ = ["BM25Index", "ENGLISH_STOP_WORDS"]

ENGLISH_STOP_WORDS = ("a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "into", "is", "it",
                      "of", "on", "or", "that", "the", "to", "was", "were", "with")


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
        blob, offsets = text_blob(texts, "texts")
        if len(offsets) == 1:
            raise ValueError("texts is empty: the index needs at least one document")
        stop_blob, stop_offsets = text_blob(list(stop_words or ()), "stop_words")
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
        check_k(k, len(self))
        blob, offsets = text_blob(queries, "queries")
        before = check_before(before, len(offsets) - 1, len(self))
        if scope is not None and not self.has_entities:
            raise ValueError("scope needs an index built with entities=")
        return _core.bm25_search(self._index, blob, offsets, before, scope, int(k), self.threads)

    def tokenize(self, text: str | bytes) -> np.ndarray:
        """Term ids of a text under this index (-1 for tokens it has never seen)."""
        data = text.encode("utf-8", errors="replace") if isinstance(text, str) else text
        return _core.bm25_tokenize(self._index, data)
