"""What every stage shares: task names, the queries of a split, and the small context a stage runs in.

This module imports no other pipeline module; every stage imports it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from lamp.config.names import DEFAULT_M, EVIDENCE_METHODS, RANK_TASKS, SPLITS, TKG_TASKS, TYPED_TASKS, task_kind
from lamp.config.schema import LampSection
from lamp.data import EventStore
from lamp.runs import RunDirectory

__all__ = ["Queries", "StageContext", "DEFAULT_M", "TKG_TASKS", "TYPED_TASKS", "RANK_TASKS", "EVIDENCE_METHODS",
           "SPLITS", "progress_enabled", "excludes_inserted"]


@dataclass
class Queries:
    """The queries of one split: the true events to predict.

    ``events`` is int64 (Q, 4) of (subject, relation, object, time) for a
    knowledge graph, or (sequence index, event index, type, 0) for typed
    sequences; ``times`` float64 (Q,); ``truth`` int64 (Q,) the id the task
    predicts (object, relation, r * num_entities + o, or type).
    """

    split: str
    events: np.ndarray
    times: np.ndarray
    truth: np.ndarray

    def __len__(self) -> int:
        return len(self.truth)


@dataclass
class StageContext:
    """Everything a stage function may read besides its inputs.

    ``settings`` is the config's validated, frozen ``lamp`` section
    (:class:`lamp.config.schema.LampSection`); ``say`` writes a
    progress line to the terminal and to the run's log; ``resolve_path``
    resolves a path of the config (relative to the config file).
    """

    settings: LampSection
    task: str
    m: int
    store: EventStore
    run_dir: RunDirectory
    data_fingerprint: str
    resume: bool = True
    say: Callable[[str], None] = print
    resolve_path: Callable[[Any], Any] = field(default=lambda p: p)

    @property
    def seed(self) -> int:
        return int(self.settings.seed)

    @property
    def kind(self) -> str:
        """``"tkg"`` for the knowledge-graph tasks, ``"typed"`` for typed sequences."""
        return task_kind(self.task)

    def stage(self, name: str, settings: Any, upstream: list, compute: Callable[[], dict],
              complete: Callable[[dict], bool] | None = None):
        """Run (or reuse) a stage of this run directory (:meth:`lamp.runs.RunDirectory.stage`)."""
        return self.run_dir.stage(name, settings, upstream, compute, resume=self.resume, complete=complete)

    def path(self, *parts: str) -> str:
        return os.path.join(self.run_dir.path, *parts)


def excludes_inserted(ctx: StageContext) -> bool:
    """``ranker.train_on_inserted: false`` (default): training queries whose truth the proposer did not
    propose (the truth put in place of its last candidate) are left out of the ranker's training.  With
    the proposer's score as a prior they would teach it that the truth is often the lowest-scored
    candidate, which is never so on valid and test (uncovered queries there have no truth to find)."""
    return ctx.task != "next_time" and not ctx.settings.ranker.train_on_inserted


def progress_enabled() -> bool:
    """Progress bars in a terminal, or everywhere with ``LAMP_PROGRESS=1``."""
    import sys

    return os.environ.get("LAMP_PROGRESS") == "1" or sys.stderr.isatty()
