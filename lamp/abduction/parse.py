"""From an LLM reply to causes: :func:`parse_causes` (the tolerant parser) and what it returns.

A reply is read in three ways, the first that gives causes wins (:mod:`lamp.abduction.reply`,
:mod:`lamp.abduction.reply_json`): JSON; markdown tables whose header names the fields; lines
(numbered / bulleted / bold / ``#`` / ``Cause N:`` items, ``name: value`` fields, positional
``s | r | o | t`` items).  Names that resolve against the data set get ids.  Never raises on any string.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from lamp.abduction.reply import _CAUSE_HEAD_RE, _CHATTER, _CONTENT, _Item, _clean, _line_items, _positional, _time
from lamp.abduction.reply_json import _json_items
from lamp.text import normalize_name

__all__ = ["Cause", "ParseStats", "ZeroCauseWarning", "parse_causes", "reply_rows"]


class ZeroCauseWarning(UserWarning):
    """Most LLM replies of a run parsed to zero causes: check the prompts and the model."""


@dataclass
class Cause:
    """One generated cause: its text, and ids when its names resolve against the data set."""

    text: str
    relation: str | None = None
    subject: str | None = None
    object: str | None = None
    time: str | None = None
    relation_id: int | None = None
    subject_id: int | None = None
    object_id: int | None = None


@dataclass
class ParseStats:
    """Counts of one run: replies, replies with zero causes, failed requests, causes."""

    replies: int = 0
    zero_cause_replies: int = 0
    failed_requests: int = 0
    causes: int = 0

    def as_dict(self) -> dict:
        return dict(vars(self))


def _complete(values: dict, others: list[dict]) -> bool:
    """Is a cut item worth keeping: an event type and both names (or a category and a title/summary when
    the reply's causes have no names)?"""
    if values.get("relation") and values.get("subject") and values.get("object"):
        return True
    nameless = not any(o.get("subject") or o.get("object") for o in others)
    return bool(nameless and values.get("relation") and (values.get("title") or values.get("summary")))


def _resolve(index: dict | None, name: str | None, strip_note: bool = False) -> int | None:
    if not index or not name:
        return None
    found = index.get(normalize_name(name))
    if found is None and strip_note and "(" in name:
        found = index.get(normalize_name(re.sub(r"\s*\([^)]*\)", "", name)))
    return found


def reply_rows(text: str) -> tuple[list[tuple[_Item, dict]], bool]:
    """The items of a reply with their field values (``relation``, ``subject``, ``object``, ``time``,
    ``title``, ``summary``; ``_free`` for an item's own words when it has no field), a last item cut short
    by the token limit dropped unless it is still complete enough; and whether any item had fields."""
    items = _json_items(text) if ("{" in text or "[" in text) else []
    if not items:
        items = _line_items(text)
    rows: list[tuple[_Item, dict]] = []
    for item in items:
        values = {k: _clean(v) for k, v in item.values().items()}
        values = {k: v for k, v in values.items() if v}
        if not any(values.get(k) for k in _CONTENT) and item.free:
            free = _clean(" ".join(item.free))
            values = _positional(free) or values
            if not any(values.get(k) for k in _CONTENT):
                values = dict(values, _free=free)
        rows.append((item, values))
    structured = any(any(v.get(k) for k in _CONTENT) for _, v in rows)
    # a reply cut short: its last item (the one the limit fell in) is kept only when complete enough
    with_fields = [(item, v) for item, v in rows if any(v.get(k) for k in _CONTENT)]
    if with_fields:
        last, values = with_fields[-1]
        # evidence of a cut: an unclosed JSON object, a field label with no value, a date fragment or a
        # table row without its closing "|" at the very end (a name cut short cannot be told from a name)
        tail = last.pairs[-1] if last.last_open and last.pairs else None
        cut = (last.kind == "json" and not last.closed) or last.dangling or \
            (tail is not None and (last.kind == "row" or tail[0] == "time" and _time(tail[1]) is None))
        if cut:
            if last.last_open and last.pairs:
                values.pop(last.pairs[-1][0], None)
            if not _complete(values, [v for _, v in with_fields[:-1]]):
                rows = [(i, v) for i, v in rows if i is not last]
    return rows, structured


def parse_causes(text: str | None, relation_index: dict | None = None, entity_index: dict | None = None,
                 max_causes: int = 5) -> list[Cause]:
    """Parse an LLM reply into causes.

    Parameters
    ----------
    text : str
        The reply: lamp's own numbered format, or the styles models write instead (markdown bullets and
        headings, one-line fields separated by ``;`` / ``|`` / ``,``, ``subject | relation | object``
        items, markdown tables, JSON arrays and objects — fenced, wrapped, or cut short — with chatter
        around them); see ``docs/abduction.md`` for the list.
    relation_index, entity_index : dict, optional
        ``normalize_name(name) -> id`` maps; names that resolve get ids.
    max_causes : int
        Keep at most this many causes.

    Returns
    -------
    list of Cause
        Each with ``.text`` (``subject | relation | object``, then the title or summary when given; the
        item's own words when it has no fields) and ``.time`` as ``YYYY-MM-DD`` when it is a date.
        Items without any letter (e.g. a run of dates) are dropped; so are free-text items when other
        items of the reply have fields, and a last item cut short by the token limit unless it still has
        an event type and both names.  Never raises on any string.
    """
    if not text or not isinstance(text, str):
        return []
    rows, structured = reply_rows(text)
    causes: list[Cause] = []
    for item, values in rows:
        core = [values.get("subject"), values.get("relation"), values.get("object")]
        headline = values.get("title") or values.get("summary")
        if any(core):
            cause_text = " | ".join([c for c in core if c] + ([headline] if headline else []))
        elif headline:
            cause_text = headline
        elif values.get("_free") and item.kind in ("number", "bullet", "heading", "json") and not structured:
            cause_text = values["_free"]
            if cause_text.lower().startswith(_CHATTER) or _CAUSE_HEAD_RE.fullmatch(cause_text + " "):
                continue
        else:
            continue  # unstructured chatter is not a cause
        if not re.search(r"[^\W\d_]", re.sub(r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}", "", cause_text)):
            continue
        time = _time(values["time"]) if values.get("time") else None
        cause = Cause(text=cause_text, relation=values.get("relation"), subject=values.get("subject"),
                      object=values.get("object"), time=time)
        cause.relation_id = _resolve(relation_index, cause.relation, strip_note=True)
        cause.subject_id = _resolve(entity_index, cause.subject)
        cause.object_id = _resolve(entity_index, cause.object)
        causes.append(cause)
        if len(causes) >= max_causes:
            break
    return causes
