"""The names every part of lamp agrees on: tasks, backends, methods and every other choice list.

This module imports nothing.  Each list is written here once; the config schema
(:mod:`lamp.config.schema`) builds its choices from it, and the stages, the ranker and the CLI
read it from here (or from the validated settings) instead of keeping copies.
"""

__all__ = ["TKG_TASKS", "TYPED_TASKS", "TASKS", "RANK_TASKS", "DEFAULT_M", "DEFAULT_PROPOSER", "SPLITS", "BACKENDS",
           "LLM_BACKENDS", "UNITS", "RESPONSE_FORMATS", "MATCHING_METHODS", "MATCHING_SCOPES", "EMBEDDER_BACKENDS",
           "LOSSES", "PRECISIONS", "SELECTION_RULES", "EVIDENCE_METHODS", "ABLATIONS", "task_kind"]

#: Knowledge-graph tasks: predict the object (given s, r, t), the relation (given s, o, t) or both (given s, t).
TKG_TASKS = ("object", "relation", "pair")
#: Typed-sequence tasks: the type, or the time, of the next event.
TYPED_TASKS = ("next_type", "next_time")
TASKS = TKG_TASKS + TYPED_TASKS
#: Tasks scored by the rank of the true candidate among the M proposals.
RANK_TASKS = TKG_TASKS + ("next_type",)
#: M when ``lamp.num_candidates`` is null: the paper's settings.
DEFAULT_M = {"object": 20, "relation": 5, "pair": 100, "next_type": 5, "next_time": 5}
#: The default proposer of each kind of data.
DEFAULT_PROPOSER = {"tkg": "kg_hawkes", "typed": "hawkes"}

SPLITS = ("train", "valid", "test")

#: Who answers the abduction prompts: a local llama.cpp server, an OpenAI-compatible server, the answer
#: cache only, nobody (each candidate's own text), the oracle (reads the truth: a ceiling, never a result),
#: the training split itself (cause patterns mined as temporal rules; abduction per event type only).
BACKENDS = ("local", "openai", "replay", "none", "oracle", "rules")
#: The backends that send prompts to an LLM (through the answer cache).
LLM_BACKENDS = ("local", "openai", "replay")
#: What one prompt asks about: one candidate (the paper's method) or one event type (its cause patterns,
#: instantiated for every candidate of that type).
UNITS = ("candidate", "event_type")
#: ``abduction.response_format``.
RESPONSE_FORMATS = ("auto", "json_schema", "text")

MATCHING_METHODS = ("bm25", "dense")
MATCHING_SCOPES = ("entity",)
EMBEDDER_BACKENDS = ("minilm", "openai")

LOSSES = ("softmax", "binary")
PRECISIONS = ("float32", "float64")
#: ``ranker.selection``: the validation test before the trained ranker reranks test (``bootstrap``), or none.
SELECTION_RULES = ("bootstrap", "ranker")

#: Evaluated method -> the evidence it reranks with (see :mod:`lamp.pipeline.match`).
EVIDENCE_METHODS = {"lamp": "llm", "no_llm": "no_llm", "random_evidence": "random", "recent_evidence": "recent"}
#: ``evaluation.ablations``: the evaluated methods besides ``lamp``.
ABLATIONS = tuple(k for k in EVIDENCE_METHODS if k != "lamp")


def task_kind(task: str) -> str:
    """``"tkg"`` for a knowledge-graph task, ``"typed"`` for a typed-sequence task."""
    return "tkg" if task in TKG_TASKS else "typed"
