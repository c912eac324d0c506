"""Former module paths keep working: each alias module re-exports the very objects of the module that now
holds them (no copy that could drift)."""
import importlib

import pytest

ALIASES = {
    "lamp.match": ("lamp.retrieval", ["BM25Index", "DenseIndex", "assemble_evidence", "ENGLISH_STOP_WORDS"]),
    "lamp.embed": ("lamp.retrieval", ["MiniLMEmbedder", "EndpointEmbedder", "make_embedder", "default_minilm_dir",
                                      "EmbeddingCache", "embed_texts", "corpus_embeddings"]),
    "lamp.schema": ("lamp.config.schema", ["LampSection", "validate_lamp", "key_paths", "allowed", "raise_problems"]),
}


@pytest.mark.parametrize("alias", sorted(ALIASES))
def test_alias_module_reexports_the_same_objects(alias):
    target, names = ALIASES[alias]
    old, new = importlib.import_module(alias), importlib.import_module(target)
    assert set(names) <= set(old.__all__)
    for name in names:
        assert getattr(old, name) is getattr(new, name), name
    for name in old.__all__:
        assert hasattr(old, name), name
