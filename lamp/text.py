"""Event text: the one rendering of an event as text, used by retrieval and prompts alike.

Knowledge-graph names such as ``Citizen_(Nigeria)`` are normalised to
``citizen nigeria`` for matching (:func:`normalize_name`) and shown as
``Citizen (Nigeria)`` to people and LLMs (:func:`display_name`).
"""
from __future__ import annotations

import datetime as _dt
import re

__all__ = ["normalize_name", "display_name", "format_time", "event_text", "TIME_UNITS"]

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
