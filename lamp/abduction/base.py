"""What every abductor shares: the data set's names, the client, the tolerant parser and the counts.

An abductor turns effect events into prompts (:meth:`BaseAbductor.build_prompt`, written by each kind of
data: :class:`lamp.abduction.kg.Abductor` for knowledge graphs, :class:`lamp.abduction.reviews.ReviewAbductor`
for typed sequences with text) and the LLM's replies into causes (:func:`lamp.abduction.parse.parse_causes`).
Without a client it is the paper's "no LLM" ablation: each effect's own text is its only cause.
"""
from __future__ import annotations

import json
import warnings

import numpy as np

from lamp.abduction.parse import Cause, ParseStats, ZeroCauseWarning, parse_causes
from lamp.data import EventStore
from lamp.text import EventTexts

__all__ = ["BaseAbductor"]


class BaseAbductor:
    """The shared part of an abductor (see the module docstring).

    Parameters
    ----------
    store : EventStore
        The data set, of the subclass's :attr:`kind`.
    client : optional
        A chat client (``chat(prompts) -> results`` with ``.text``), or None for the "no LLM" ablation.
    num_shots : int
        Demonstrations per prompt, >= 0.
    seed : int
        Seed of the deterministic choice of demonstrations.
    max_causes : int
        Causes kept per reply.
    domain : str
        The domain named in the system message.
    """

    kind = ""           # "tkg" or "typed": the data the subclass prompts for
    default_domain = ""

    def __init__(self, store: EventStore, client=None, num_shots: int = 8, seed: int = 0, max_causes: int = 5,
                 domain: str | None = None):
        if not isinstance(store, EventStore) or store.kind != self.kind or store.train is None:
            what = "a temporal knowledge graph" if self.kind == "tkg" else "typed sequences"
            raise TypeError(f"{type(self).__name__} needs {what} (an EventStore of kind {self.kind!r} with a train "
                            "split)")
        if isinstance(num_shots, bool) or int(num_shots) != num_shots or num_shots < 0:
            raise ValueError(f"num_shots must be >= 0, got {num_shots!r}")
        self.store, self.client = store, client
        self.num_shots, self.seed, self.max_causes = int(num_shots), int(seed), int(max_causes)
        self.domain = domain or self.default_domain
        self.texts = EventTexts(store)
        self.stats = ParseStats()

    # ------------------------------------------------------------------ names

    @property
    def relation_index(self) -> dict:
        """normalised relation (or type) name -> id, for resolving the LLM's names."""
        return self.texts.relation_index

    @property
    def entity_index(self) -> dict:
        return self.texts.entity_index

    def event_text(self, event) -> str:
        """One-line text of an effect event (:meth:`lamp.text.EventTexts.line`)."""
        return self.texts.line(event)

    def _time(self, t: float) -> str:
        return self.texts.time(t)

    # ------------------------------------------------------------------ to be written by each kind

    def build_prompt(self, effect, split: str = "test") -> list[dict]:
        """The chat messages asking for the causes of one effect event of ``split``."""
        raise NotImplementedError

    def own_causes(self, effects: np.ndarray, split: str) -> list[list[Cause]]:
        """The "no LLM" causes: each effect's own text."""
        return [[Cause(text=self.event_text(e))] for e in effects]

    def _check_effects(self, effects) -> np.ndarray:
        return np.asarray(effects)

    # ------------------------------------------------------------------ running

    def abduce(self, effects, split: str = "test") -> list[list[Cause]]:
        """Causes of every effect event of ``split``.

        With a client, identical prompts are asked once; failed requests give no causes (counted in
        ``stats.failed_requests``).  Without a client, each effect's own text is its single cause.
        """
        effects = self._check_effects(effects)
        if self.client is None:
            return self.own_causes(effects, split)
        return [causes or [] for causes in self.ask([self.build_prompt(e, split) for e in effects])]

    def ask(self, prompts: list) -> list[list[Cause] | None]:
        """The client's answers to ``prompts`` (built by :meth:`build_prompt`), parsed, in one call of the client
        (one batch job for a batch client); identical prompts are asked (and parsed) once.  A failed request
        gives None (counted in ``stats.failed_requests``)."""
        if not prompts:
            return []
        first: dict[str, int] = {}
        where = [first.setdefault(json.dumps(p, sort_keys=True), len(first)) for p in prompts]
        unique = [None] * len(first)
        for p, w in zip(prompts, where):
            unique[w] = p
        parsed = self._parse_results(self.client.chat(unique))
        return [parsed[w] for w in where]

    def _parse_results(self, results) -> list[list[Cause] | None]:
        out: list[list[Cause] | None] = []
        for result in results:
            if result.text is None:
                self.stats.failed_requests += 1
                out.append(None)
                continue
            causes = parse_causes(result.text, self.relation_index, self.entity_index, self.max_causes)
            self.stats.replies += 1
            self.stats.causes += len(causes)
            self.stats.zero_cause_replies += not causes
            out.append(causes)
        if self.stats.replies and self.stats.zero_cause_replies > self.stats.replies / 2:
            warnings.warn(f"{self.stats.zero_cause_replies} of {self.stats.replies} LLM replies parsed to ZERO "
                          "causes: the model does not follow the reply format (look at a few replies in the cache)",
                          ZeroCauseWarning, stacklevel=2)
        return out

    @staticmethod
    def numbered(items: list[str]) -> str:
        """Items in the reply format: ``1. first field\\n   next field`` ..."""
        return "\n".join(f"{k + 1}. " + item.replace("\n", "\n   ") for k, item in enumerate(items))
