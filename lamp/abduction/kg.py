"""Abductive prompts for temporal knowledge graphs: :class:`Abductor`.

For every proposed event (the *effect*), the LLM is asked for 3 to 5 events that could have caused it.
The prompt is built from the data set's schema:

1. a system message describing the domain and the task, and the reply format;
2. a message listing the allowed relation names (the most frequent ones when the data set has many);
3. ``k`` demonstrations built from the training split, not written by hand: an effect event (user turn)
   and, as its causes, real earlier events linked to it — sharing an entity, within a time window, most
   related first — rendered exactly in the reply format (assistant turn);
4. the query effect event, with no field that would leak the answer.

The demonstrations, the query and the parser use one field vocabulary (``event type``, ``subject name``,
``object name``, ``time``).
"""
from __future__ import annotations

import numpy as np

from lamp.abduction.base import BaseAbductor
from lamp.data import EventStore

__all__ = ["Abductor", "SYSTEM"]

SYSTEM = (
    "You are an expert analyst of {domain}. Events are described by the fields: event type (the relation), "
    "subject name, object name and time.\n"
    "Given an effect event, list {low} to {high} earlier events that plausibly caused it. Every cause must have "
    "happened before the effect event. Answer with a numbered list and nothing else, each item in exactly this "
    "form:\n"
    "1. event type: <one of the allowed event types>\n"
    "   subject name: <who acts>\n"
    "   object name: <who is acted upon>\n"
    "   time: <YYYY-MM-DD>"
)


def listed_relations(store: EventStore, relations: list[str], limit: int = 40) -> list[str]:
    """The allowed-relations list of a prompt: the ``limit`` most frequent relations of the training split,
    in id order."""
    counts = np.bincount(store.train.quadruples()[:, 1], minlength=store.num_relations)
    top = np.argsort(-counts, kind="stable")[:limit]
    return [relations[r] for r in sorted(top)]


class Abductor(BaseAbductor):
    """Builds abductive prompts for a knowledge-graph data set and parses the LLM's causes.

    Parameters (besides those of :class:`~lamp.abduction.base.BaseAbductor`)
    ----------
    max_listed_relations : int
        The allowed-relations message lists the most frequent relations up to this many.
    window : float, optional
        Causes of a demonstration are at most this long before the effect (time units of the data set);
        default: 30 time steps.
    """

    kind = "tkg"
    default_domain = "international relations and political events"

    def __init__(self, store: EventStore, client=None, num_shots: int = 8, seed: int = 0,
                 max_listed_relations: int = 40, window: float | None = None, max_causes: int = 5,
                 domain: str | None = None):
        super().__init__(store, client, num_shots=num_shots, seed=seed, max_causes=max_causes, domain=domain)
        self.entities, self.relations = self.texts.entities, self.texts.relations
        self.listed_relations = listed_relations(store, self.relations, max_listed_relations)
        self.window = float(window) if window is not None else 30.0 * store.time_step()
        self.demonstrations = self._demonstrations(store.train.quadruples())

    # ------------------------------------------------------------------ rendering

    def render_event(self, event, include_time: bool = True) -> str:
        """The fields of one event (s, r, o, t) in the reply format."""
        s, r, o, t = (int(event[0]), int(event[1]), int(event[2]), float(event[3]))
        lines = [f"event type: {self.relations[r]}", f"subject name: {self.entities[s]}",
                 f"object name: {self.entities[o]}"]
        if include_time:
            lines.append(f"time: {self._time(t)}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ demonstrations

    def _demonstrations(self, train: np.ndarray) -> list[tuple[np.ndarray, list[np.ndarray]]]:
        """k (effect, causes) pairs from the training split: causes share an entity with the effect,
        lie within the window before it, both entities shared first, then the most recent."""
        if self.num_shots == 0:
            return []
        rng = np.random.default_rng(self.seed)
        times = train[:, 3].astype(float)
        by_entity: dict[int, list[int]] = {}
        for i, (s, _, o, _) in enumerate(train):
            by_entity.setdefault(int(s), []).append(i)
            if o != s:
                by_entity.setdefault(int(o), []).append(i)
        chosen: list[tuple[np.ndarray, list[np.ndarray]]] = []
        used_relations: set[int] = set()
        for i in rng.permutation(len(train)):
            effect = train[i]
            s, r, o, t = int(effect[0]), int(effect[1]), int(effect[2]), times[i]
            if r in used_relations and len(used_relations) < self.store.num_relations:
                continue  # vary the demonstrated event types
            pool = set(by_entity.get(s, [])) | set(by_entity.get(o, []))
            linked = [j for j in pool if t - self.window <= times[j] < t]
            if len(linked) < 3:
                continue
            both = {j for j in linked if {int(train[j][0]), int(train[j][2])} == {s, o}}
            linked.sort(key=lambda j: (j not in both, -times[j], j))
            causes, seen = [], set()
            for j in linked:
                key = tuple(train[j][:3])
                if key in seen or key == (s, r, o):
                    continue
                seen.add(key)
                causes.append(train[j])
                if len(causes) == 3:
                    break
            if len(causes) < 3:
                continue
            chosen.append((effect, sorted(causes, key=lambda c: c[3])))
            used_relations.add(r)
            if len(chosen) == self.num_shots:
                break
        return chosen

    # ------------------------------------------------------------------ prompts

    def build_prompt(self, effect, split: str = "test") -> list[dict]:
        """The chat messages asking for the causes of ``effect`` = (subject, relation, object, time).

        ``split`` is accepted for the interface shared with :class:`~lamp.abduction.reviews.ReviewAbductor`
        (a knowledge-graph effect carries everything the prompt shows)."""
        messages = [{"role": "system", "content": SYSTEM.format(domain=self.domain, low=3, high=5)},
                    {"role": "user", "content": "Allowed event types: " + "; ".join(self.listed_relations) + "."},
                    {"role": "assistant", "content": "Understood."}]
        for demo_effect, causes in self.demonstrations:
            messages.append({"role": "user", "content": "Effect event:\n" + self.render_event(demo_effect)})
            messages.append({"role": "assistant", "content": self.numbered([self.render_event(c) for c in causes])})
        messages.append({"role": "user", "content": "Effect event:\n" + self.render_event(effect)})
        return messages

    def _check_effects(self, effects) -> np.ndarray:
        effects = np.asarray(effects)
        if effects.ndim != 2 or effects.shape[1] != 4:
            raise ValueError(f"effects must be an array (n, 4) of (subject, relation, object, time), got "
                             f"{effects.shape}")
        return effects
