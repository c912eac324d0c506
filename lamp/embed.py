"""Former home of the sentence embedders and their cache, now :mod:`lamp.retrieval.embedders` and
:mod:`lamp.retrieval.embedding_cache` (this import path keeps working)."""
from lamp.retrieval.embedders import MINILM_PACKAGE, EndpointEmbedder, MiniLMEmbedder, default_minilm_dir, make_embedder
from lamp.errors import EmbedderError
from lamp.retrieval.embedding_cache import EmbeddingCache, corpus_embeddings, embed_texts

__all__ = ["MiniLMEmbedder", "EndpointEmbedder", "make_embedder", "default_minilm_dir", "MINILM_PACKAGE",
           "EmbeddingCache", "embed_texts", "corpus_embeddings", "EmbedderError"]
