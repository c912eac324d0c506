"""The whole pipeline: :class:`Pipeline` builds the stage context and runs the stages in order."""
from __future__ import annotations

import json
import os
import time

from lamp import config as lamp_config
from lamp.config.names import LLM_BACKENDS
from lamp.data import EventStore
from lamp.errors import ConfigError
from lamp.pipeline.abduce import abduce, make_abductor
from lamp.pipeline.evaluate import evaluate
from lamp.pipeline.match import cause_grounding, evaluated_methods, gather_evidence, make_world
from lamp.pipeline.plan import plan, plan_text
from lamp.pipeline.propose import fit_proposer, propose, proposer_quality, proposer_ranks
from lamp.pipeline.queries import select_queries
from lamp.pipeline.rank import rerank
from lamp.pipeline.tasks import StageContext
from lamp.report import set_aside_metrics
from lamp.runs import RunDirectory, data_fingerprint
from lamp.tpp.contract import check_proposer

__all__ = ["Pipeline", "run_typed", "load_metrics"]


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
    wait : bool
        When another process is running in the same directory: wait for it (default), or raise
        :class:`~lamp.errors.RunLockedError` naming its PID.
    """

    def __init__(self, config: lamp_config.Config, out: str | None = None, limit: int | None = None,
                 resume: bool = True, wait: bool = True):
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
                raise ConfigError(f"limit must be a positive number of queries, got {limit!r}")
            config = config.with_overrides(f"lamp.query_limit={int(limit)}")
        self.config = config
        self.settings = config.lamp
        self.task = self.settings.task
        self.m = self.settings.m
        name = config.experiment_id or config.dataset_id or "lamp"
        out = out or os.path.join(config.resolve_path(self.settings.run_dir) or "runs", name)
        self.run_dir = RunDirectory(out)
        self.resume, self.wait = resume, wait
        self.store: EventStore | None = None
        self.context: StageContext | None = None

    @classmethod
    def from_yaml(cls, path, experiment: str | None = None, **kwargs) -> "Pipeline":
        """Build from a YAML config file (EasyTPP layout with a lamp experiment block)."""
        return cls(lamp_config.load(path, experiment), **kwargs)

    def say(self, message: str) -> None:
        """A progress line on the terminal and in the run's log."""
        self.run_dir.log.info(message)
        print(f"[lamp] {message}", flush=True)

    def load_data(self, store: EventStore | None = None) -> EventStore:
        """The data set (loaded once; ``store`` replaces the config's data), checked against the task."""
        if store is not None:
            self.store, self.context = store, None
        if self.store is None:
            self.store = self.config.load_data()
        if self.context is None:
            self.context = self._make_context(self.store)
        return self.store

    def _make_context(self, store: EventStore) -> StageContext:
        if self.settings.kind != store.kind:
            needs = "a temporal knowledge graph" if self.settings.kind == "tkg" else "typed sequences"
            holds = "holds typed sequences" if store.kind == "typed" else "is a temporal knowledge graph"
            raise ConfigError(f"lamp.task={self.task!r} needs {needs}, but data set {store.name!r} {holds}")
        data_fp = data_fingerprint(store)
        self.say(f"data: {store!r}")
        return StageContext(settings=self.settings, task=self.task, m=self.m, store=store, run_dir=self.run_dir,
                            data_fingerprint=data_fp, resume=self.resume, say=self.say,
                            resolve_path=self.config.resolve_path)

    def _proposals(self, proposer=None):
        ctx = self.context
        queries = select_queries(ctx)
        if proposer is None:
            proposer = fit_proposer(ctx)
        check_proposer(proposer, ctx.kind)
        return queries, proposer, propose(ctx, proposer, queries)

    def plan(self, proposer=None) -> dict:
        """The abduction cost plan (:func:`lamp.pipeline.abduce.plan`): runs (or reuses) the stages up to
        the proposals, asks no LLM, prints the plan and returns it."""
        with self.run_dir.locked(self.wait, self.say):
            self.load_data()
            queries, _, proposals = self._proposals(proposer)
            result = plan(self.context, queries, proposals, make_abductor(self.context))
        print(plan_text(result), flush=True)
        return result

    def run(self, proposer=None) -> dict:
        """Run every stage (reusing finished ones) and return ``{task: {method: metrics}}``.

        ``proposer`` replaces ``lamp.proposer`` (any proposer of :mod:`lamp.tpp.contract`).  The run holds the
        folder's lock throughout; a ``metrics.json`` of an earlier run is set aside as
        ``metrics.previous.json`` until this run writes its own, so a run that stops early leaves no metrics
        that disagree with the folder's stages.
        """
        with self.run_dir.locked(self.wait, self.say):
            set_aside_metrics(self.run_dir.path)
            return self._run(proposer)

    def _run(self, proposer=None) -> dict:
        started = time.time()
        self.timings = {}
        clock = [started]

        def lap(stage):
            now = time.time()
            self.timings[stage] = round(self.timings.get(stage, 0.0) + now - clock[0], 2)
            clock[0] = now

        self.load_data()
        ctx = self.context
        methods = evaluated_methods(ctx)  # an unknown ablation fails before any work
        lap("data")
        queries, proposer, proposals = self._proposals(proposer)
        proposer_quality(ctx, proposer, queries, proposals)
        full_ranks = proposer_ranks(ctx, proposer, queries)
        lap("propose")
        abductor = make_abductor(ctx)
        causes = None
        if ctx.settings.abduction.backend != "none":
            if ctx.settings.abduction.backend in LLM_BACKENDS:
                self.say(plan_text(plan(ctx, queries, proposals, abductor)))
            causes = abduce(ctx, queries, proposals, abductor)
        lap("abduce")
        world = make_world(ctx)
        evidence = gather_evidence(ctx, world, queries, proposals, causes)
        extras = {}
        if causes is not None:
            grounding = cause_grounding(ctx, world, "test", queries["test"], causes["test"], proposals["test"])
            if grounding is not None:
                extras["lamp"] = {"cause_grounding": grounding}
                rate = grounding["rate"]
                self.say(f"matching: {grounding['causes']} test causes; grounded (best match shares both entities "
                         f"with the proposal): {'-' if rate is None else f'{rate:.1%}'} of all, "
                         + ", ".join(f"{'-' if grounding[k] is None else f'{grounding[k]:.1%}'} for the {w}"
                                     for k, w in (("rate_true", "true candidate"), ("rate_other", "others"))))
        lap("match")
        energies, selections, own = rerank(ctx, world, queries, proposals, {k: evidence[k] for k in methods})
        lap("rank")
        metrics = evaluate(ctx, queries, proposals, energies, selections, extras, own, proposer_ranks=full_ranks)
        lap("evaluate")
        self.say(f"finished in {time.time() - started:.0f} s; results in {self.run_dir.path}")
        return metrics


def run_typed(store: EventStore, proposer, config: lamp_config.Config, out: str | None = None,
              resume: bool = True) -> dict:
    """The LAMP pipeline on ``store`` with an external typed proposer (e.g. :class:`lamp.easytpp.EasyTPPProposer`).

    ``config`` is a :class:`lamp.config.Config` whose lamp section says the
    task (``next_type``; ``next_time`` needs ``propose_times``), M, abduction,
    matching, ranker and evaluation settings; the proposer replaces
    ``lamp.proposer``.  Returns ``{task: {method: metrics}}`` and writes the
    run directory like :meth:`Pipeline.run`.
    """
    pipe = Pipeline(config, out=out, resume=resume)
    pipe.load_data(store)
    return pipe.run(proposer=proposer)


def load_metrics(run_dir: str, provenance: bool = False) -> dict:
    """The ``metrics.json`` of a finished run: ``{task: {method: metrics}}``; with ``provenance=True`` also its
    ``"provenance"`` (the fingerprint of every stage the metrics come from, and the resolved settings)."""
    with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as f:
        metrics = json.load(f)
    if not provenance:
        metrics.pop("provenance", None)
    return metrics
