"""Abductive prompts for typed event sequences with text (the Amazon reviews data): :class:`ReviewAbductor`.

An effect event is a (sequence index, event index) of a split; it is shown by its category and time only
(its own title and review would reveal it).  Demonstrations come from the training split: the last review
of a customer as the effect and that customer's earlier reviews, most recent first, as its causes.  Causes
are parsed by :func:`lamp.abduction.parse.parse_causes` (the ``category`` field resolves to a type id).
"""
from __future__ import annotations

import numpy as np

from lamp.abduction.base import BaseAbductor
from lamp.abduction.parse import Cause
from lamp.data import EventStore

__all__ = ["ReviewAbductor", "SYSTEM"]

SYSTEM = (
    "You are an expert analyst of {domain}. Each event is one review a customer wrote, described by the "
    "fields: category (the product's category), title, time and summary.\n"
    "Given the category and time of a customer's next review, list {low} to {high} earlier reviews by the same "
    "customer that plausibly led to it. Every cause must have happened before it. Answer with a numbered list and "
    "nothing else, each item in exactly this form:\n"
    "1. category: <one of the allowed categories>\n"
    "   title: <the review's title>\n"
    "   time: <YYYY-MM-DD>\n"
    "   summary: <one sentence about the product and the opinion>"
)


class ReviewAbductor(BaseAbductor):
    """Abductive prompts for typed event sequences with text (see the module docstring).

    Parameters (besides those of :class:`~lamp.abduction.base.BaseAbductor`)
    ----------
    summary_chars : int
        A review's summary in a demonstration or an oracle reply is cut to this many characters.
    """

    kind = "typed"
    default_domain = "online shopping and product reviews"

    def __init__(self, store: EventStore, client=None, num_shots: int = 8, seed: int = 0, max_causes: int = 5,
                 summary_chars: int = 160, domain: str | None = None):
        super().__init__(store, client, num_shots=num_shots, seed=seed, max_causes=max_causes, domain=domain)
        self.summary_chars = int(summary_chars)
        self.types = self.texts.types
        self.listed_relations = self.types
        self.demonstrations = self._review_demonstrations()

    def review_text(self, seqs, i: int, with_text: bool = True, mark: int | None = None,
                    time: float | None = None) -> str:
        """The fields of event ``i`` of ``seqs`` in the reply format (``mark`` / ``time`` replace its own)."""
        with_text = with_text and seqs.texts is not None
        title = str(seqs.fields["review_title"][i]) if with_text and "review_title" in seqs.fields else ""
        lines = [f"category: {self.types[int(seqs.marks[i] if mark is None else mark)]}"]
        if with_text and title:
            lines.append(f"title: {title}")
        lines.append(f"time: {self._time(seqs.times[i] if time is None else time)}")
        if with_text:
            body = seqs.texts[i][len(title):].strip(" .") if seqs.texts[i].startswith(title) else seqs.texts[i]
            summary = " ".join(body.split())[:self.summary_chars]
            if summary:
                lines.append(f"summary: {summary}")
        return "\n".join(lines)

    def _review_demonstrations(self):
        if self.num_shots == 0:
            return []
        train = self.store.train
        rng = np.random.default_rng(self.seed)
        chosen = []
        for s in rng.permutation(train.num_sequences):
            b, e = int(train.offsets[s]), int(train.offsets[s + 1])
            if e - b < 3:
                continue
            effect = e - 1
            causes = list(range(max(b, effect - 3), effect))[::-1]
            chosen.append((effect, causes))
            if len(chosen) == self.num_shots:
                break
        return chosen

    def build_prompt(self, effect, split: str = "test") -> list[dict]:
        """Messages for the effect (sequence index, event index[, type[, time]]) of ``split``.

        The effect is shown by its category and time only; ``type`` and ``time``, when given, replace the
        event's own (a proposal is a candidate type, or a candidate time, for that event).
        """
        seqs = getattr(self.store, split)
        if seqs is None:
            raise ValueError(f"the data set has no {split} split")
        s, j = int(effect[0]), int(effect[1])
        mark = int(effect[2]) if len(effect) > 2 else None
        time = float(effect[3]) if len(effect) > 3 else None
        if mark is not None and not 0 <= mark < len(self.types):
            raise ValueError(f"effect type {mark} is out of range for {len(self.types)} types")
        if not 0 <= s < seqs.num_sequences or not 0 <= j < seqs.lengths[s]:
            raise ValueError(f"effect ({s}, {j}) is not an event of the {split} split")
        train = self.store.train
        messages = [{"role": "system", "content": SYSTEM.format(domain=self.domain, low=2, high=4)},
                    {"role": "user", "content": "Allowed categories: " + "; ".join(self.types) + "."},
                    {"role": "assistant", "content": "Understood."}]
        for demo_effect, causes in self.demonstrations:
            messages.append({"role": "user", "content": "Next review:\n" + self.review_text(train, demo_effect, False)})
            messages.append({"role": "assistant", "content": self.numbered([self.review_text(train, c)
                                                                            for c in causes])})
        i = int(seqs.offsets[s]) + j
        messages.append({"role": "user", "content": "Next review:\n" + self.review_text(seqs, i, False, mark, time)})
        return messages

    def _check_effects(self, effects) -> np.ndarray:
        effects = np.asarray(effects)
        if effects.ndim != 2 or effects.shape[1] < 2:
            raise ValueError(f"effects must be an array (n, >= 2) of (sequence index, event index), got "
                             f"{effects.shape}")
        return effects

    def own_causes(self, effects: np.ndarray, split: str) -> list[list[Cause]]:
        """The "no LLM" causes: each effect's own category (the ``type`` column when given, else the event's
        own type)."""
        seqs = getattr(self.store, split)
        marks = effects[:, 2].astype(np.int64) if effects.shape[1] > 2 else \
            seqs.marks[seqs.offsets[effects[:, 0].astype(np.int64)] + effects[:, 1].astype(np.int64)]
        return [[Cause(text=self.types[int(k)])] for k in marks]
