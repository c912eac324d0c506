"""Event text: the one rendering of an event as text, used by retrieval and prompts alike.

Knowledge-graph names such as ``Citizen_(Nigeria)`` are normalised to
``citizen nigeria`` for matching (:func:`normalize_name`) and shown as
``Citizen (Nigeria)`` to people and LLMs (:func:`display_name`).
"""
from __future__ import annotations

import datetime as _dt
import re

__all__ = ["normalize_name", "display_name", "format_time", "event_text", "EventTexts", "TIME_UNITS"]

_NON_ALNUM = re.compile(r"[^0-9a-z]+")

# length of one time unit, for rendering dates
TIME_UNITS = {
    "second": _dt.timedelta(seconds=1),
    "minute": _dt.timedelta(minutes=1),
    "15min": _dt.timedelta(minutes=15),
    "hour": _dt.timedelta(hours=1),
    "day": _dt.timedelta(days=1),
}


def normalize_name(name: str) -> str:
    """Lower-case a name and reduce it to space-separated alphanumeric words.

    >>> normalize_name("Citizen_(Nigeria)")
    'citizen nigeria'
    """
    return _NON_ALNUM.sub(" ", str(name).lower()).strip()


def display_name(name: str) -> str:
    """A readable form of a data set name: underscores become spaces.

    >>> display_name("Make_an_appeal_or_request")
    'Make an appeal or request'
    """
    return " ".join(str(name).replace("_", " ").split())


def format_time(t: float, unit: str = "unit", origin: str | None = None) -> str:
    """Render a time as a date when the data set's origin and unit are known,
    else as the number itself (``"t=8016"``)."""
    if origin is not None and unit in TIME_UNITS:
        when = _dt.datetime.fromisoformat(origin) + TIME_UNITS[unit] * float(t)
        return when.strftime("%Y-%m-%d %H:%M") if unit in ("second", "minute", "15min") else \
            when.strftime("%Y-%m-%d")
    return f"t={float(t):g}"


def event_text(subject: str | None = None, relation: str | None = None, obj: str | None = None,
               time: str | None = None, *, category: str | None = None, title: str | None = None,
               summary: str | None = None) -> str:
    """One line of text describing an event.

    Knowledge-graph events give ``subject``, ``relation``, ``obj`` (display
    names) and optionally ``time`` (already formatted); reviews give
    ``category``, ``title`` and ``summary``.  Empty parts are left out.

    >>> event_text("Citizen (Nigeria)", "Make statement", "Government (Nigeria)", "2014-01-02")
    'Citizen (Nigeria) | Make statement | Government (Nigeria) | 2014-01-02'
    """
    parts = [subject, relation, obj, category, title, summary, time]
    return " | ".join(str(p) for p in parts if p not in (None, ""))


class EventTexts:
    """The names of one data set as people and LLMs read them, and every text of its events built from them.

    Knowledge graphs: ``entities`` and ``relations`` (display names); typed sequences: ``types`` (the
    data set's type names, or ``type k``).  ``relation_index`` / ``entity_index`` map a normalised name to
    its id (an LLM's reply is resolved against them; for typed sequences the types are the "relations").
    Retrieval matches against :meth:`line`; prompts show :meth:`time`.
    """

    def __init__(self, store):
        self.kind = store.kind
        self.time_unit, self.time_origin = store.time_unit, store.time_origin
        if store.kind == "tkg":
            self.entities = [display_name(n) for n in store.entity_names]
            self.relations = [display_name(n) for n in store.relation_names]
            self.types: list[str] = []
            self.relation_index = {normalize_name(n): i for i, n in enumerate(store.relation_names)}
            self.entity_index = {normalize_name(n): i for i, n in enumerate(store.entity_names)}
        else:
            names = store.type_names or [f"type {k}" for k in range(store.num_types)]
            self.types = [display_name(n) for n in names]
            self.entities, self.relations = [], self.types
            self.relation_index = {normalize_name(n): i for i, n in enumerate(names)}
            self.entity_index = {}

    def time(self, t: float) -> str:
        """A time of the data set as a date (or ``t=...`` when its origin is unknown)."""
        return format_time(t, self.time_unit, self.time_origin)

    def line(self, event) -> str:
        """The one-line text of an event: ``subject | relation | object`` for a knowledge-graph row (s, r, o,
        ...); for a typed-sequence effect row (sequence, index, type, ...) its type's name."""
        if self.kind == "tkg":
            return event_text(self.entities[int(event[0])], self.relations[int(event[1])],
                              self.entities[int(event[2])])
        return self.types[int(event[2])] if len(event) > 2 else ""

    def typed_line(self, mark: int, text: str | None = None) -> str:
        """The text of a typed event: its type's name, then its own text when the data has one."""
        name = self.types[int(mark)]
        return f"{name}. {text}" if text is not None else name

