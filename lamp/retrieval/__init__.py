"""Retrieval (LAMP's third stage): the real past events that match a generated cause.

- :mod:`lamp.retrieval.bm25` (:class:`BM25Index`) and :mod:`lamp.retrieval.dense` (:class:`DenseIndex`):
  one signature, ``search(queries, k, before=None, scope=None) -> (indices, scores)`` — for each query
  text the ``k`` best events among those with index ``< before[i]`` (the events strictly before the
  query's effect), best first;
- :mod:`lamp.retrieval.embedders` (all-MiniLM-L6-v2 in NumPy, an OpenAI-compatible endpoint) and
  :mod:`lamp.retrieval.embedding_cache` (every text embedded once, on disk);
- :mod:`lamp.retrieval.evidence` (:func:`assemble_evidence`): a candidate's evidence from its hits.
"""
from lamp.retrieval.bm25 import ENGLISH_STOP_WORDS, BM25Index
from lamp.retrieval.dense import DenseIndex
from lamp.retrieval.embedders import EndpointEmbedder, MiniLMEmbedder, default_minilm_dir, make_embedder
from lamp.retrieval.embedding_cache import EmbeddingCache, corpus_embeddings, embed_texts
from lamp.retrieval.evidence import assemble_evidence

__all__ = ["BM25Index", "DenseIndex", "assemble_evidence", "ENGLISH_STOP_WORDS", "MiniLMEmbedder", "EndpointEmbedder",
           "make_embedder", "default_minilm_dir", "EmbeddingCache", "embed_texts", "corpus_embeddings"]
