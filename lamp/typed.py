"""LAMP on typed event sequences with an external proposer: :func:`run_typed`.

Typed sequences run through the same stages as knowledge graphs
(:mod:`lamp.pipeline`); this module keeps the import path
``lamp.typed.run_typed`` that scripts use.
"""
from lamp.pipeline.core import run_typed
from lamp.config.registry import proposer_names

__all__ = ["run_typed", "TYPED_PROPOSERS"]

TYPED_PROPOSERS = proposer_names("typed")  # the registered proposers of typed sequences
