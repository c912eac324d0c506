"""The prompts of abduction per event type (``abduction.unit: event_type``): :class:`EventTypeAbductor`.

One prompt per event type: a system message with the reply format, the allowed event types, ``k``
demonstrations — event types of the training split and their patterns *mined from the training split*
(:mod:`lamp.abduction.rules`), never the asked type's own — and the asked event type.  Replies are read by
:func:`lamp.abduction.patterns.parse_patterns`; unknown event types are dropped and counted.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass

import numpy as np

from lamp.abduction.kg import listed_relations
from lamp.abduction.parse import ZeroCauseWarning
from lamp.abduction.patterns import ROLE_LETTER, Pattern, parse_patterns
from lamp.data import EventStore
from lamp.text import EventTexts

__all__ = ["EventTypeAbductor", "PatternStats", "SYSTEM_TKG", "SYSTEM_TYPED"]

SYSTEM_TKG = (
    "You are an expert analyst of {domain}. An event has an event type (the relation), a subject (who acts) and "
    "an object (who is acted upon). Given the type of an effect event whose subject is X and whose object is Y, "
    "list {low} to {high} types of earlier events that plausibly cause events of that type, and who takes part in "
    "each: X, Y or someone else. Answer with a numbered list and nothing else, each item in exactly this form:\n"
    "1. event type: <one of the allowed event types>\n"
    "   subject: <X, Y or someone else>\n"
    "   object: <X, Y or someone else>"
)
SYSTEM_TYPED = (
    "You are an expert analyst of {domain}. Each sequence of events belongs to one actor, and each event has a "
    "type. Given the type of an actor's next event, list {low} to {high} types of earlier events of the same actor "
    "that plausibly led to it. Answer with a numbered list and nothing else, each item in exactly this form:\n"
    "1. event type: <one of the allowed event types>"
)
DOMAINS = {"tkg": "international relations and political events", "typed": "online shopping and product reviews"}


@dataclass
class PatternStats:
    """Counts of one run: prompts answered, patterns, replies with none, items naming an unknown event type
    (dropped), failed requests."""

    replies: int = 0
    patterns: int = 0
    zero_pattern_replies: int = 0
    unknown_event_types: int = 0
    failed_requests: int = 0

    def as_dict(self) -> dict:
        return dict(vars(self))


class EventTypeAbductor:
    """Prompts per event type and the patterns of the replies.

    Parameters
    ----------
    store : EventStore
    client : optional
        A chat client (``chat(prompts) -> results`` with ``.text``); set it before :meth:`abduce_types`.
    demos : dict
        Event type -> patterns mined from the training split (the demonstrations' answers).
    num_shots : int
        Demonstrations per prompt (event types of the training split with at least two mined patterns, the
        most frequent first; the asked type is never its own demonstration).
    max_patterns : int
        Patterns kept per reply.
    domain : str, optional
        The domain named in the system message (default: by the kind of data).
    """

    def __init__(self, store: EventStore, client=None, demos: dict | None = None, num_shots: int = 4,
                 max_patterns: int = 5, domain: str | None = None, max_listed: int = 40):
        if not isinstance(store, EventStore):
            raise TypeError("EventTypeAbductor needs an EventStore")
        if isinstance(num_shots, bool) or int(num_shots) != num_shots or num_shots < 0:
            raise ValueError(f"num_shots must be >= 0, got {num_shots!r}")
        self.store, self.client = store, client
        self.texts = EventTexts(store)
        self.typed = store.kind != "tkg"
        self.names = self.texts.types if self.typed else self.texts.relations
        self.max_patterns, self.num_shots = int(max_patterns), int(num_shots)
        self.domain = domain or DOMAINS["typed" if self.typed else "tkg"]
        self.listed = list(self.names) if self.typed else listed_relations(store, self.names, max_listed)
        train_types = store.train.marks if self.typed else store.train.quadruples()[:, 1]
        counts = np.bincount(train_types, minlength=len(self.names))
        demos = demos or {}
        eligible = [t for t in np.argsort(-counts, kind="stable").tolist() if len(demos.get(t, ())) >= 2]
        self.demo_types = eligible[:self.num_shots + 1]
        self.demos = {t: demos[t] for t in self.demo_types}
        self.stats = PatternStats()

    # ------------------------------------------------------------------ prompts

    def _effect(self, event_type: int) -> str:
        lines = [f"event type: {self.names[event_type]}"]
        if not self.typed:
            lines += ["subject: X", "object: Y"]
        return "\n".join(lines)

    def _item(self, p: Pattern) -> str:
        lines = [f"event type: {self.names[p.relation]}"]
        if not self.typed:
            lines += [f"subject: {ROLE_LETTER[p.subject]}", f"object: {ROLE_LETTER[p.object]}"]
        return "\n".join(lines)

    def build_prompt(self, event_type: int) -> list[dict]:
        """The chat messages asking for the cause patterns of ``event_type`` (an id)."""
        event_type = int(event_type)
        if not 0 <= event_type < len(self.names):
            raise ValueError(f"event type {event_type} is out of range for {len(self.names)} event types")
        system = (SYSTEM_TYPED if self.typed else SYSTEM_TKG).format(domain=self.domain, low=2 if self.typed else 3,
                                                                      high=4 if self.typed else 5)
        head = "Next event:\n" if self.typed else "Effect event:\n"
        messages = [{"role": "system", "content": system},
                    {"role": "user", "content": "Allowed event types: " + "; ".join(self.listed) + "."},
                    {"role": "assistant", "content": "Understood."}]
        for demo in [t for t in self.demo_types if t != event_type][:self.num_shots]:
            items = [self._item(p) for p in self.demos[demo][:self.max_patterns]]
            messages.append({"role": "user", "content": head + self._effect(demo)})
            messages.append({"role": "assistant", "content": "\n".join(
                f"{k + 1}. " + item.replace("\n", "\n   ") for k, item in enumerate(items))})
        messages.append({"role": "user", "content": head + self._effect(event_type)})
        return messages

    # ------------------------------------------------------------------ asking

    def abduce_types(self, event_types) -> dict[int, list[Pattern]]:
        """The patterns of every event type (one prompt each, through the client and its cache); a failed
        request gives none (counted in ``stats.failed_requests``)."""
        if self.client is None:
            raise ValueError("abduction per event type needs a client (an LLM backend)")
        types = [int(t) for t in dict.fromkeys(int(t) for t in event_types)]
        if not types:
            return {}
        prompts = [self.build_prompt(t) for t in types]
        unique = list({json.dumps(p, sort_keys=True): p for p in prompts}.values())
        results = dict(zip((json.dumps(p, sort_keys=True) for p in unique), self.client.chat(unique)))
        out = {}
        for t, prompt in zip(types, prompts):
            result = results[json.dumps(prompt, sort_keys=True)]
            if result.text is None:
                self.stats.failed_requests += 1
                out[t] = []
                continue
            found, unknown = parse_patterns(result.text, self.texts.relation_index, self.max_patterns, self.typed)
            self.stats.replies += 1
            self.stats.patterns += len(found)
            self.stats.unknown_event_types += unknown
            self.stats.zero_pattern_replies += not found
            out[t] = found
        if self.stats.replies and self.stats.zero_pattern_replies > self.stats.replies / 2:
            warnings.warn(f"{self.stats.zero_pattern_replies} of {self.stats.replies} LLM replies gave ZERO cause "
                          "patterns: the model does not follow the reply format (look at a few replies in the "
                          "cache)", ZeroCauseWarning, stacklevel=2)
        return out
