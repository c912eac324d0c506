"""Former import paths keep working: the shim modules re-export the very objects of the modules that
replaced them (not copies), and nothing else."""
import importlib

import pytest

SHIMS = {
    # shim module: {public name: the module that defines it}
    "lamp.typed": {"run_typed": "lamp.pipeline.core"},
    "lamp.tpp.kg": {name: "lamp.tpp.kg_hawkes"
                    for name in ("KGHawkes", "RecurrencyBaseline", "feature_names", "time_aware_filter")},
    "lamp.match": {name: "lamp.retrieval" for name in ("BM25Index", "DenseIndex", "assemble_evidence",
                                                       "ENGLISH_STOP_WORDS")},
    "lamp.embed": {**{name: "lamp.retrieval" for name in ("MiniLMEmbedder", "EndpointEmbedder", "make_embedder",
                                                          "default_minilm_dir", "EmbeddingCache", "embed_texts",
                                                          "corpus_embeddings")},
                   "MINILM_PACKAGE": "lamp.retrieval.embedders", "EmbedderError": "lamp.errors"},
    "lamp.schema": {**{name: "lamp.config.schema" for name in ("LampSection", "validate_lamp", "key_paths", "allowed",
                                                               "raise_problems")},
                    **{name: "lamp.config.bounds" for name in ("check_tree", "tree_problem", "MAX_NODES",
                                                               "MAX_DEPTH", "MAX_PARAMS_NODES", "MAX_PARAMS_DEPTH")},
                    **{name: "lamp.config.names" for name in ("TASKS", "TKG_TASKS", "TYPED_TASKS", "BACKENDS",
                                                              "ABLATIONS")}},
}
# names a shim computes (not re-exports): what they must equal
COMPUTED = {("lamp.typed", "TYPED_PROPOSERS"): lambda: importlib.import_module("lamp.config.registry").proposer_names(
    "typed")}


@pytest.mark.parametrize("shim", sorted(SHIMS))
def test_shim_reexports_the_real_objects(shim):
    module = importlib.import_module(shim)
    computed = {name for s, name in COMPUTED if s == shim}
    assert sorted(module.__all__) == sorted(set(SHIMS[shim]) | computed)
    star = {}
    exec(f"from {shim} import *", star)  # what `from shim import *` gives a script
    for name, home in SHIMS[shim].items():
        real = getattr(importlib.import_module(home), name)
        assert getattr(module, name) is real, f"{shim}.{name} is not {home}.{name}"
        assert star[name] is real
        assert name in importlib.import_module(home).__all__  # a public name where it lives, too
    for name in computed:
        assert getattr(module, name) == COMPUTED[(shim, name)]()
