"""Abduction priced per event type (``abduction.unit: event_type``): cause *patterns* instead of causes.

The cause patterns of an event type are largely the same for every effect of that type (``Host a
visit(X, Y)`` follows ``Make a visit(Y, X)``, ``Express intent to meet(Y, X)``, ...), so the LLM is asked
once per event type — which earlier event types cause an event of this type, and in which roles of its
participants — and every candidate's causes are its type's patterns *instantiated* with the candidate's
own entities (:func:`instantiate`).  The causes then go through the unchanged matching and ranking stages.

A :class:`Pattern` is an event type and, for a knowledge graph, who its subject and object are in the
effect: the effect's ``subject`` (X), its ``object`` (Y) or ``anyone`` else; written
``Make a visit(object -> subject)``.  Typed sequences have one actor per sequence, so their patterns are
event types only.  :func:`parse_patterns` reads a reply with the tolerance of the cause parser (numbered
fields, one-line and arrow forms ``Make a visit(Y -> X)``, ``s | r | o`` lines, tables, JSON, chatter);
unknown event types are dropped and counted.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from lamp.abduction.parse import reply_rows
from lamp.abduction.reply import _clean
from lamp.text import event_text, normalize_name

__all__ = ["Pattern", "SUBJECT", "OBJECT", "ANYONE", "role_of", "parse_patterns", "instantiate", "effect_types",
           "pattern_text"]

SUBJECT, OBJECT, ANYONE = "subject", "object", "anyone"
ROLE_LETTER = {SUBJECT: "X", OBJECT: "Y", ANYONE: "someone else"}


@dataclass(frozen=True)
class Pattern:
    """A cause pattern: the cause's event type (``relation``, an id) and the roles of its subject and object
    in the effect (``"subject"``, ``"object"`` or ``"anyone"``); ``score`` and ``support`` when it was
    mined (:mod:`lamp.abduction.rules`)."""

    relation: int
    subject: str = ANYONE
    object: str = ANYONE
    score: float | None = None
    support: int | None = None

    def as_list(self) -> list:
        return [int(self.relation), self.subject, self.object, self.score, self.support]

    @classmethod
    def from_list(cls, row) -> "Pattern":
        return cls(int(row[0]), str(row[1]), str(row[2]), None if row[3] is None else float(row[3]),
                   None if row[4] is None else int(row[4]))


def pattern_text(p: Pattern, names: list[str], typed: bool = False) -> str:
    """``Make a visit(object -> subject)`` (typed sequences: the type's name)."""
    return names[p.relation] if typed else f"{names[p.relation]}({p.subject} -> {p.object})"


# ------------------------------------------------------------------ reading a reply

_SUBJECT_WORDS = {"subject", "actor", "source", "initiator", "agent", "head"}
_OBJECT_WORDS = {"object", "target", "recipient", "receiver", "tail"}


def role_of(value: str | None) -> str:
    """The role a reply names: ``X`` or a subject word -> ``"subject"``, ``Y`` or an object word ->
    ``"object"``, anything else (``Z``, ``someone else``, a name) -> ``"anyone"``."""
    words = normalize_name(value or "").split()
    if not words:
        return ANYONE
    if words[0] == "x":
        return SUBJECT
    if words[0] == "y":
        return OBJECT
    if words[0] in ("z", "someone", "anyone", "anybody", "other", "others", "any", "unknown", "none", "n", "a"):
        return ANYONE
    subject, obj = bool(_SUBJECT_WORDS & set(words)), bool(_OBJECT_WORDS & set(words))
    if subject != obj:
        return SUBJECT if subject else OBJECT
    return ANYONE


_ARROW = re.compile(r"^\s*(?:\(?\d{1,3}[.):\]]|[-*•+])?\s*[*_`\"']*(?P<rel>[^()\[\]\n|:]*?[^\W\d_][^()\[\]\n|:]*?)"
                    r"[*_`\"']*\s*(?:[(\[]\s*(?P<a>[^()\[\]\n,]*?)\s*(?:->|→|=>|,|\bto\b)\s*(?P<b>[^()\[\]\n]*?)\s*"
                    r"[)\]]|:\s*(?P<c>[^\n]*?)\s*(?:->|→|=>)\s*(?P<d>[^\n]*?))\s*\.?\s*$", re.IGNORECASE)


def _arrow_rows(text: str) -> list[tuple[str, str | None, str | None]]:
    """``Make a visit(Y -> X)``, ``Consult (X, Z)``, ``Make a visit: Y -> X`` lines."""
    out = []
    for line in text.splitlines():
        m = _ARROW.match(line)
        if m:
            a, b = (m.group("a"), m.group("b")) if m.group("a") is not None else (m.group("c"), m.group("d"))
            out.append((_clean(m.group("rel")), a, b))
    return out


def _resolve(index: dict, name: str | None) -> int | None:
    if not name:
        return None
    found = index.get(normalize_name(name))
    if found is None and "(" in name:
        found = index.get(normalize_name(re.sub(r"\s*\([^)]*\)", "", name)))
    return found


def parse_patterns(text: str | None, relation_index: dict, max_patterns: int = 5, typed: bool = False
                   ) -> tuple[list[Pattern], int]:
    """The patterns of a reply and the number of items naming an event type that is not in the data set
    (dropped).  Duplicates are kept once; at most ``max_patterns``.  Never raises on any string."""
    if not text or not isinstance(text, str):
        return [], 0
    rows = []
    parsed, _ = reply_rows(text)
    for _, values in parsed:
        relation = values.get("relation") or (values.get("_free") if typed else None)
        if relation:
            rows.append((relation, values.get("subject"), values.get("object")))
    rows += _arrow_rows(text)
    out, seen, unknown = [], set(), 0
    for name, a, b in rows:
        relation = _resolve(relation_index, name)
        if relation is None:
            unknown += 1
            continue
        pattern = Pattern(relation) if typed else Pattern(relation, role_of(a), role_of(b))
        key = (pattern.relation, pattern.subject, pattern.object)
        if key in seen:
            continue
        seen.add(key)
        out.append(pattern)
        if len(out) >= max_patterns:
            break
    return out, unknown


# ------------------------------------------------------------------ from patterns to causes

def effect_types(effects: np.ndarray, typed: bool) -> np.ndarray:
    """The event type of every effect row: a knowledge graph's relation (column 1), a typed sequence's
    candidate type (column 2)."""
    effects = np.asarray(effects)
    return effects[:, 2 if typed else 1].astype(np.int64)


def instantiate(patterns: dict[int, list[Pattern]], effects: np.ndarray, texts) -> list[list[str]]:
    """Every effect's causes: its event type's patterns with the effect's own entities in their roles, as
    the one-line texts retrieval matches (:class:`lamp.text.EventTexts`): ``subject | relation | object``
    with an ``anyone`` part left out (typed sequences: the type's name).  An effect whose type has no
    pattern gets no cause."""
    effects = np.asarray(effects)
    typed = texts.kind != "tkg"
    out = []
    for effect, kind in zip(effects, effect_types(effects, typed)):
        causes = []
        for p in patterns.get(int(kind), ()):
            if typed:
                causes.append(texts.types[p.relation])
                continue
            who = {SUBJECT: int(effect[0]), OBJECT: int(effect[2])}
            subject = texts.entities[who[p.subject]] if p.subject in who else None
            obj = texts.entities[who[p.object]] if p.object in who else None
            causes.append(event_text(subject, texts.relations[p.relation], obj))
        out.append(causes)
    return out
