"""The LAMP pipeline end to end: propose -> abduce -> match -> rank -> evaluate.

``Pipeline.from_yaml(path).run()`` (or ``lamp run CONFIG``) loads the data,
fits or loads the proposer, proposes the top-M events for every train, valid
and test query (the true event added to the training candidates), asks the LLM
for the causes of every candidate (through the cache), retrieves the evidence,
trains the ranker on train with validation selection, reranks test, and
writes the metrics of the base order, LAMP and the ablations.

Every stage writes its output to the run directory keyed by a fingerprint of
its inputs and settings (:mod:`lamp.runs`): a rerun skips finished stages, a
config change recomputes only the stages downstream of it, and LLM answers are
kept one by one in the SQLite cache, so a killed run resumes without
re-sending a single answered request.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from lamp import config as lamp_config
from lamp.data import EventStore
from lamp.report import metrics_table, paired_bootstrap, rank_metrics, truth_ranks, write_report
from lamp.runs import RunDirectory, fingerprint

__all__ = ["Pipeline", "Queries", "run_typed", "load_metrics", "DEFAULT_M", "TKG_TASKS", "TYPED_TASKS"]

log = logging.getLogger("lamp.pipeline")

DEFAULT_M = {"object": 20, "relation": 5, "pair": 100, "next_type": 5, "next_time": 5}
TKG_TASKS = ("object", "relation", "pair")
TYPED_TASKS = ("next_type", "next_time")
EVIDENCE_METHODS = {"lamp": "llm", "no_llm": "no_llm", "random_evidence": "random", "recent_evidence": "recent"}


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


def _progress(iterable=None, **kwargs):
    from tqdm.auto import tqdm

    kwargs.setdefault("disable", not sys.stderr.isatty() and os.environ.get("LAMP_PROGRESS") != "1")
    return tqdm(iterable, **kwargs)


class Pipeline:
    """One LAMP experiment.

    Parameters
    ----------
    config : lamp.config.Config
        A loaded config (see :func:`lamp.config.load`).
    out : str, optional
        Run directory; default ``<lamp.run_dir>/<experiment id>``.
    limit : int, optional
        Overrides ``lamp.query_limit`` (number of test queries).
    resume : bool
        Reuse finished stages of an earlier run in the same directory (default).
    """

    def __init__(self, config: lamp_config.Config, out: str | None = None, limit: int | None = None,
                 resume: bool = True):
        self.config = config
        self.settings = config.lamp
        if limit is not None:
            if limit <= 0:
                raise ValueError(f"limit must be a positive number of queries, got {limit}")
            self.settings["query_limit"] = int(limit)
        self.task = self.settings["task"]
        self.m = int(self.settings["num_candidates"] or DEFAULT_M[self.task])
        if self.m < 2:
            raise ValueError(f"lamp.num_candidates must be at least 2, got {self.m}")
        method = self.settings["matching"]["method"]
        if method not in ("bm25", "dense"):
            raise lamp_config.ConfigError(f"lamp.matching.method must be 'bm25' or 'dense', got {method!r}")
        scope = self.settings["matching"]["scope"]
        if scope not in (None, "entity"):
            raise lamp_config.ConfigError(f"lamp.matching.scope must be null or 'entity', got {scope!r}")
        if scope == "entity" and (method != "bm25" or self.task in TYPED_TASKS):
            raise lamp_config.ConfigError("lamp.matching.scope 'entity' needs method 'bm25' and a knowledge-graph "
                                          "task (typed tasks always retrieve inside the query's own sequence)")
        if method == "dense" and self.task in TYPED_TASKS:
            raise lamp_config.ConfigError(f"lamp.matching.method 'dense' with task {self.task!r}: typed tasks "
                                          "retrieve inside each sequence with BM25's scope; use method 'bm25'")
        from lamp.rank import ranker_settings

        ranker_settings(self.settings["ranker"])  # heads, layers, loss, width: ConfigError naming the key
        name = config.experiment_id or config.dataset_id or "lamp"
        out = out or os.path.join(config.resolve_path(self.settings["run_dir"]) or "runs", name)
        self.run_dir = RunDirectory(out)
        self.resume = resume
        self.store: EventStore | None = None
        self.outputs: dict[str, Any] = {}

    @classmethod
    def from_yaml(cls, path, experiment: str | None = None, **kwargs) -> "Pipeline":
        """Build from a YAML config file (EasyTPP layout with a lamp experiment block)."""
        return cls(lamp_config.load(path, experiment), **kwargs)

    # ------------------------------------------------------------------ stages

    def _say(self, message: str) -> None:
        self.run_dir.log.info(message)
        print(f"[lamp] {message}", flush=True)

    def load_data(self) -> EventStore:
        if self.store is None:
            self.store = self.config.load_data()
            self._check_and_fingerprint()
        return self.store

    def _check_and_fingerprint(self) -> None:
        store = self.store
        if self.task in TKG_TASKS and store.kind != "tkg":
            raise lamp_config.ConfigError(f"lamp.task={self.task!r} needs a temporal knowledge graph, but "
                                          f"data set {store.name!r} holds typed sequences")
        if self.task in TYPED_TASKS and store.kind != "typed":
            raise lamp_config.ConfigError(f"lamp.task={self.task!r} needs typed sequences, but data set "
                                          f"{store.name!r} is a temporal knowledge graph")
        self.data_fingerprint = fingerprint(
            store.name, *[(s.times, s.marks, s.subjects, s.objects, s.offsets) for s in store.splits.values()])
        self._say(f"data: {store!r}")

    def run(self) -> dict:
        """Run every stage (reusing finished ones) and return ``{task: {method: metrics}}``."""
        started = time.time()
        self.load_data()
        if self.task in TYPED_TASKS:
            from lamp import typed

            return typed.run(self)
        from lamp import stages

        queries = stages.select_queries(self)
        proposer = stages.fit_proposer(self)
        proposals = stages.propose(self, proposer, queries)
        quality = stages.proposer_quality(self, proposer, queries)
        with open(os.path.join(self.run_dir.path, "proposer_metrics.json"), "w", encoding="utf-8") as f:
            json.dump({self.task: quality}, f, indent=2)
        energies = stages.rerank(self, queries, proposals)
        metrics = self.evaluate(queries, proposals, energies)
        self._say(f"finished in {time.time() - started:.0f} s; results in {self.run_dir.path}")
        return metrics

    def evaluate(self, queries: dict[str, Queries], proposals: dict, energies: dict) -> dict:
        """Metrics of the base order, LAMP and the ablations on the test queries."""
        test = proposals["test"]
        truth = test["truth"]
        m = test["candidates"].shape[1]
        base_order = np.tile(np.arange(m), (len(truth), 1))
        methods = {"base": truth_ranks(base_order, truth)}
        for method, energy in energies.items():
            methods[method] = truth_ranks(np.argsort(energy, axis=1, kind="stable"), truth)
        ev = self.settings["evaluation"]
        result = {}
        for method, ranks in methods.items():
            result[method] = rank_metrics(ranks, m)
            if method != "base":
                result[method]["vs_base"] = paired_bootstrap(methods["base"], ranks, num_samples=int(ev["bootstrap"]),
                                                             seed=int(self.settings["seed"]))
        metrics = {self.task: result}
        paths = write_report(self.run_dir.path, metrics, plot=bool(ev.get("plot", True)))
        np.savez(os.path.join(self.run_dir.path, "test_ranks.npz"), **methods)
        print(metrics_table(metrics), flush=True)
        self._say(f"metrics written to {paths['json']}")
        return metrics


def run_typed(store: EventStore, proposer, config: lamp_config.Config, out: str | None = None,
              resume: bool = True) -> dict:
    """LAMP on typed sequences with an external proposer (see :func:`lamp.typed.run_typed`)."""
    from lamp.typed import run_typed as _run_typed

    return _run_typed(store, proposer, config, out=out, resume=resume)


def load_metrics(run_dir: str) -> dict:
    """The ``metrics.json`` of a finished run."""
    with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as f:
        return json.load(f)
