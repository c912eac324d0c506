"""lamp: LLM-assisted event prediction (LAMP, NeurIPS 2023) with a C core.

Stages: a temporal point process proposes the top-M next events
(:mod:`lamp.tpp`), an LLM abduces plausible causes of each proposal
(:mod:`lamp.abduction`, :mod:`lamp.llm`), the causes are matched against real
past events (:mod:`lamp.retrieval`) and an energy-based ranker reranks the
proposals (:mod:`lamp.rank`).  Data enters once through :mod:`lamp.data`.
"""
import importlib

from lamp._version import __version__

_SUBMODULES = {"abduction", "config", "data", "datasets", "llm", "match", "rank", "retrieval", "tpp", "pipeline",
               "text"}

__all__ = ["__version__", "Pipeline", "register_proposer", *sorted(_SUBMODULES)]


def __getattr__(name):
    # Submodules load on first use so that `import lamp` stays cheap.
    if name in _SUBMODULES:
        return importlib.import_module(f"lamp.{name}")
    if name == "Pipeline":
        return importlib.import_module("lamp.pipeline").Pipeline
    if name == "register_proposer":
        return importlib.import_module("lamp.config.registry").register_proposer
    raise AttributeError(f"module 'lamp' has no attribute {name!r}")
