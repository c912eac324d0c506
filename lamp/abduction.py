"""Abductive reasoning with an LLM (LAMP's second stage): few-shot prompts, demonstrations, a tolerant parser.

For every proposed event (the *effect*), the LLM is asked for 3 to 5 events
that could have caused it.  The prompt is built from the data set's schema:

1. a system message describing the domain and the task, and the reply format;
2. a message listing the allowed relation names (the most frequent ones when
   the data set has many);
3. ``k`` demonstrations built from the training split, not written by hand:
   an effect event (user turn) and, as its causes, real earlier events linked
   to it — sharing an entity, within a time window, most related first —
   rendered exactly in the reply format (assistant turn);
4. the query effect event, with no field that would leak the answer.

The demonstrations, the query and the parser use one field vocabulary
(``event type``, ``subject name``, ``object name``, ``time``), and the parser
also accepts the styles LLMs write instead (field-name synonyms, numbered or
bulleted items, bold and ``#`` headings, one-line fields, ``subject | relation
| object`` lines, markdown tables, JSON — fenced, wrapped or cut short —, chatter;
see docs/abduction.md).  :func:`cause_list_schema` is the JSON schema of a
structured reply, for ``ChatClient(response_format=...)``.  Replies that parse to zero causes are counted; a
run where most do raises a loud warning (the authors' code silently parsed
nothing because its demonstrations and parser disagreed).

``Abductor(store, client=None)`` is the paper's "no LLM" ablation through the
same code path: each effect's own text is its only cause.
"""
from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass

import numpy as np

from lamp.data import EventStore
from lamp.text import display_name, event_text, format_time, normalize_name

__all__ = ["Cause", "ParseStats", "Abductor", "ReviewAbductor", "parse_causes", "cause_list_schema",
           "ZeroCauseWarning"]


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


# ------------------------------------------------------------------ the reply parser
#
# A reply is read in three ways, the first that gives causes wins:
#   1. JSON (a whole reply, a ```json fence, or JSON after a preamble; a list of objects, an object with a
#      wrapper key such as "causes", an object of objects, lists of strings or of [s, r, o, t] lists), with a
#      tolerant fallback for truncated or single-quoted JSON;
#   2. markdown tables whose header names the fields;
#   3. lines: numbered / bulleted / bold / "#" / "Cause N:" items, "name: value" fields (several on one line,
#      separated by ";", "|", "," or nothing but the next field name), positional "s | r | o | t" items.

# field synonyms (after _field_key: lower case, camelCase and snake_case split into words)
_SYNONYMS = {
    "relation": ("event type", "event predicate", "predicate", "relation", "relationship", "relation type",
                 "relation name", "event relation", "action", "event action", "event", "type", "event category",
                 "category", "product category", "review category", "item category", "verb", "event name"),
    "subject": ("subject", "subject name", "subject entity", "subject actor", "actor", "actor 1", "actor1",
                "source", "source name", "source actor", "source entity", "head", "head entity", "initiator",
                "agent", "who"),
    "object": ("object", "object name", "object entity", "object actor", "target", "target name",
               "target actor", "target entity", "actor 2", "actor2", "recipient", "tail", "tail entity"),
    "time": ("time", "date", "event time", "event date", "when", "timestamp", "time stamp", "datetime",
             "date time", "day", "review time", "review date"),
    "title": ("title", "review title", "event title", "headline", "event headline", "product title"),
    "summary": ("summary", "event summary", "review summary", "description", "event description", "review",
                "review text", "text"),
}
_FIELD_OF = {syn: canon for canon, syns in _SYNONYMS.items() for syn in syns}
# labels that may follow another field on the same line with no separator in between
_STRONG_LABELS = {s for s in _FIELD_OF if " " in s} | {"time", "date", "relation", "predicate", "category",
                                                      "subject", "object", "title", "summary"}
_CONTENT = ("relation", "subject", "object", "title", "summary")


def _label_pattern(name: str) -> str:
    return r"[\s_-]*".join(re.escape(w) for w in re.findall(r"[a-z]+|\d+", name))


_LABELS = "|".join(_label_pattern(s) for s in sorted(_FIELD_OF, key=len, reverse=True))
_FIELD_RE = re.compile(r"(?:(?<=^)|(?<=[\s;|,(\[{>•*\-–—:]))[*_`\"'“‘]*(?P<label>" + _LABELS + r")[*_`\"'”’]*"
                       r"[ \t]*(?:\([^()\n]{0,40}\)[ \t]*)?(?P<sep>[:=]|(?<=\s)[-–—](?=\s))", re.IGNORECASE)
_SEP_BEFORE = re.compile(r"(?:[;|,]|\s{2,}|\t)\s*[*_`\"'“‘]*$")
_NUMBER_RE = re.compile(r"^(?:\(\d{1,3}\)|\d{1,3}[.):]|\[\d{1,3}\])\s+|^\d{1,3}[.)]$")
_BULLET_RE = re.compile(r"^[-*•+–—▪◦>]\s+")
_HASH_RE = re.compile(r"^#{1,6}\s*")
_CAUSE_HEAD_RE = re.compile(r"^(?:possible\s+|potential\s+|plausible\s+)?(?:cause|reason|factor|event|causal\s+event|"
                            r"cause\s+event|candidate)s?\s*(?:event\s*)?(?:no\.?\s*|#\s*)?\d{1,3}\b\s*[:.)\-–—]?\s*",
                            re.IGNORECASE)
_TABLE_SEP_RE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)+\|?\s*$")
_CHATTER = ("here are", "here is", "sure", "certainly", "of course", "okay", "ok,", "the following",
            "possible cause", "potential cause", "plausible cause", "causes:", "cause events", "note:", "i hope",
            "let me know", "in summary", "please note", "i cannot", "i can't", "as an ai")
_TERMINATORS = ";|,}])\"'”’"


def _field_key(name: str) -> str:
    name = re.sub(r"(?<=[a-z])(?=[A-Z0-9])", " ", str(name))
    return " ".join(re.findall(r"[a-z]+|\d+", name.lower()))


def _clean(value) -> str:
    value = re.sub(r"\*+|`+|(?<!\w)_+|_+(?!\w)", "", str(value))
    value = re.sub(r"\s+", " ", value).strip().strip("\"'“”‘’").strip()
    return value.rstrip(";,.|").strip().lstrip(":-–— ").strip()


# ------------------------------------------------------------------ dates

_MONTHS = {m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                           "nov", "dec"))}
_MON = r"(?P<mon>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|" \
       r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
_DATE_PATTERNS = [
    ("ymd", re.compile(r"(?<!\d)(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})(?!\d)"
                       r"(?:(?:T|\s+)(?P<hm>\d{1,2}:\d{2}))?")),
    ("xyz", re.compile(r"(?<!\d)(?P<a>\d{1,2})(?P<sep>[/.-])(?P<b>\d{1,2})(?P=sep)(?P<y>\d{4}|\d{2})(?!\d)")),
    ("mdy", re.compile(r"\b" + _MON + r"\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<y>\d{4})\b", re.IGNORECASE)),
    ("dmy", re.compile(r"\b(?P<d>\d{1,2})(?:st|nd|rd|th)?(?:\s+of)?[\s-]+" + _MON + r",?[\s-]+(?P<y>\d{4})\b",
                       re.IGNORECASE)),
    ("my", re.compile(r"\b" + _MON + r",?\s+(?P<y>\d{4})\b", re.IGNORECASE)),
    ("ym", re.compile(r"(?<![\d-])(?P<y>\d{4})-(?P<m>\d{1,2})(?![\d-])")),
]
_PARTIAL_DATE_RE = re.compile(r"^[\d\s./-]*[./-][\d\s./-]*$")


def _date(value: str, *, whole: bool = False) -> str | None:
    """The first date in ``value`` as ``YYYY-MM-DD`` (``YYYY-MM`` for a month, ``YYYY-MM-DD HH:MM`` with a
    clock time).  Month/day/year is read US-style unless the first number exceeds 12 (then day/month/year);
    dd.mm.yyyy is day first.  ``whole``: the date must be all of ``value``."""
    import datetime as dt

    for kind, pattern in _DATE_PATTERNS:
        m = pattern.fullmatch(value.strip()) if whole else pattern.search(value)
        if not m:
            continue
        g = m.groupdict()
        try:
            if kind == "ymd":
                y, mo, d = int(g["y"]), int(g["m"]), int(g["d"])
            elif kind == "xyz":
                a, b, y = int(g["a"]), int(g["b"]), int(g["y"])
                y = y + (2000 if y < 70 else 1900) if len(g["y"]) == 2 else y
                mo, d = (b, a) if g["sep"] == "." or a > 12 else (a, b)
            elif kind in ("mdy", "dmy"):
                y, mo, d = int(g["y"]), _MONTHS[g["mon"][:3].lower()], int(g["d"])
            else:
                y = int(g["y"])
                mo = _MONTHS[g["mon"][:3].lower()] if kind == "my" else int(g["m"])
                dt.date(y, mo, 1)
                return f"{y:04d}-{mo:02d}"
            dt.date(y, mo, d)
        except (ValueError, KeyError):
            continue
        out = f"{y:04d}-{mo:02d}-{d:02d}"
        if g.get("hm"):
            h, mi = (int(x) for x in g["hm"].split(":"))
            if h < 24 and mi < 60:
                out += f" {h:02d}:{mi:02d}"
        return out
    return None


def _time(value: str) -> str | None:
    """A cause's time: a date in any common format becomes ISO; a fragment of a date (a truncated reply)
    is dropped; anything else (``t=8016``, ``early 2014``) is kept as written."""
    value = _clean(value)
    if not value:
        return None
    found = _date(value)
    if found:
        return found
    if _PARTIAL_DATE_RE.match(value):
        return None
    return value


# ------------------------------------------------------------------ items

class _Item:
    __slots__ = ("kind", "pairs", "free", "sealed", "dangling", "last_open", "closed")

    def __init__(self, kind: str):
        self.kind = kind              # heading, number, bullet, plain, row, json
        self.pairs: list[tuple[str, str]] = []
        self.free: list[str] = []
        self.sealed = False           # a blank line followed its content
        self.dangling = False         # ends in a field label with no value (a cut reply)
        self.last_open = False        # its last value runs to the very end of the reply
        self.closed = True            # (JSON) its object was closed

    @property
    def fields(self) -> set:
        return {name for name, _ in self.pairs}

    def values(self) -> dict:
        out: dict[str, str] = {}
        for name, value in self.pairs:
            if name not in out and value:
                out[name] = value
        return out


def _split_fields(content: str) -> tuple[str, list[tuple[str, str]], bool]:
    """``(prefix, [(field, raw value)], dangling)`` of one line: the fields named in it, in order."""
    starts = []
    lead = len(content) - len(content.lstrip(" \t*_`\"'>•-–—"))
    ws_lead = len(content) - len(content.lstrip())
    for m in _FIELD_RE.finditer(content):
        label = _field_key(m.group("label"))
        before = content[max(0, m.start() - 60):m.start()]  # a bounded look back: linear in the line
        if m.group("sep") not in ":=" and m.start() > lead:
            continue  # "name - value" only at the start of a line
        if starts and not (_SEP_BEFORE.search(before) or label in _STRONG_LABELS):
            continue  # a weak word inside a value ("... the event: ...") is not a new field
        if not starts and m.start() > ws_lead and not (re.search(r"[:;|,(\-–—]\s*[*_`\"'“‘]*$", before)
                                                  or label in _STRONG_LABELS and " " in label):
            continue  # a field inside prose
        starts.append((m.start(), m.end(), _FIELD_OF.get(label)))
    if not starts:
        return content, [], False
    pairs = []
    for k, (s, e, name) in enumerate(starts):
        end = starts[k + 1][0] if k + 1 < len(starts) else len(content)
        if name:
            pairs.append((name, content[e:end]))
    dangling = bool(pairs) and not _clean(pairs[-1][1]) and not content[starts[-1][1]:].strip()
    return content[:starts[0][0]], pairs, dangling


def _line_marker(content: str) -> tuple[str, str]:
    """``(kind, rest)``: the item marker a line starts with (heading, number, bullet or none)."""
    kind = "plain"
    bold_only = re.fullmatch(r"\s*(\*\*|__)(?P<inner>[^*]+?)(\*\*|__)\s*:?\s*", content)
    for _ in range(4):
        stripped = content.lstrip()
        if m := _HASH_RE.match(stripped):
            kind, content = "heading", stripped[m.end():]
        elif (m := _BULLET_RE.match(stripped)) and not stripped.startswith("**"):
            kind, content = (kind if kind != "plain" else "bullet"), stripped[m.end():]
        elif m := _NUMBER_RE.match(re.sub(r"^[*_]{2}", "", stripped)):
            kind, content = (kind if kind == "heading" else "number"), re.sub(r"^[*_]{2}", "", stripped)[m.end():]
            content = re.sub(r"^[*_]{2}\s*", "", content)
        else:
            break
    content = content.replace("**", "").replace("__", " ").strip()
    if bold_only and kind in ("plain", "bullet"):
        kind = "heading"
    if m := _CAUSE_HEAD_RE.match(content):
        if kind == "plain":
            kind = "heading"
        content = content[m.end():]
    return kind, content.strip()


def _table_items(lines: list[str], i: int) -> tuple[list[_Item], int] | None:
    """Rows of a markdown table whose header (line i) names fields; None when it is not one."""
    if i + 1 >= len(lines) or "|" not in lines[i] or not _TABLE_SEP_RE.match(lines[i + 1]):
        return None
    cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
    columns = [_FIELD_OF.get(_field_key(_clean(c))) for c in cells]
    if sum(c is not None for c in columns) < 2:
        return None
    items, j = [], i + 2
    while j < len(lines) and "|" in lines[j] and lines[j].strip():
        row = lines[j].strip()
        if not _TABLE_SEP_RE.match(row):
            values = [c.strip() for c in (row[1:] if row.startswith("|") else row).split("|")]
            if row.endswith("|"):
                values = values[:-1]
            item = _Item("row")
            item.pairs = [(name, v) for name, v in zip(columns, values) if name and _clean(v)]
            item.last_open = lines[i].rstrip().endswith("|") and not row.endswith("|")
            items.append(item)
        j += 1
    return items, j


def _line_items(text: str) -> list[_Item]:
    lines = text.splitlines()
    ends_open = not text.endswith(("\n", "\r"))
    items: list[_Item] = []
    current: _Item | None = None
    i = 0
    while i < len(lines):
        raw = lines[i].rstrip()
        if raw.lstrip().startswith("```"):
            raw = ""
        if not raw.strip():
            if current is not None and (current.pairs or current.free):
                current.sealed = True
            i += 1
            continue
        table = _table_items(lines, i) if raw.lstrip().startswith("|") else None
        if table:
            items.extend(table[0])
            current = None
            i = table[1]
            continue
        last_line = i == len(lines) - 1
        kind, content = _line_marker(raw)
        prefix, pairs, dangling = _split_fields(content)
        prefix = _clean(prefix)
        if prefix and pairs and _CAUSE_HEAD_RE.fullmatch(prefix + " "):
            prefix = ""
        fields = {n for n, _ in pairs}
        merge = (current is not None and pairs and not prefix and not current.sealed
                 and not (fields & current.fields) and
                 (kind in ("plain", "bullet") or (kind == "number" and current.kind == "heading")))
        if kind == "plain" and not pairs and current is not None and not current.sealed and not _positional(prefix):
            merge = True  # a continuation line
        if not merge:
            current = _Item(kind)
            items.append(current)
            if prefix and not pairs:
                current.free.append(prefix)
            elif prefix:
                current.free.append(prefix)
        elif not pairs:
            current.free.append(prefix)
        current.pairs.extend(pairs)
        if dangling or (last_line and ends_open and not pairs and _is_label_start(content)):
            current.dangling = True
        if pairs and last_line and ends_open and not dangling:
            current.last_open = not pairs[-1][1].rstrip().endswith(tuple(_TERMINATORS))
        i += 1
    return items


def _is_label_start(content: str) -> bool:
    """Is ``content`` the beginning of a field label (a reply cut inside a label, "object na")?"""
    key = _clean(content).lower()
    return len(key) >= 2 and ":" not in key and any(s.startswith(key) and s != key for s in _FIELD_OF)


# ------------------------------------------------------------------ JSON

_JSON_TOKEN_RE = re.compile(r"\s*(?:(?P<str>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')|(?P<punct>[{}\[\]:,])|"
                            r"(?P<scalar>[^{}\[\]:,\"'\s][^{}\[\]:,\"'\n]*))", re.DOTALL)
_WRAPPERS = {"causes", "cause", "cause events", "events", "causal events", "possible causes", "results", "items",
             "data", "answer", "output", "response", "list", "reviews", "earlier events", "earlier reviews"}
_MAX_DEPTH = 64


def _json_candidates(text: str) -> list[tuple[str, int]]:
    """(text, offset) where a JSON value may start: fenced blocks first, then the first bracket."""
    out = []
    for m in re.finditer(r"```[ \t]*(?:json|javascript|js)?[ \t]*\n?(.*?)(?:```|$)", text, re.DOTALL | re.IGNORECASE):
        body = m.group(1)
        k = min((p for p in (body.find("{"), body.find("[")) if p >= 0), default=-1)
        if k >= 0:
            out.append((body, k))
    k = min((p for p in (text.find("{"), text.find("[")) if p >= 0), default=-1)
    if k >= 0:
        out.append((text, k))
    return out


def _tolerant_json(text: str, start: int):
    """Parse JSON (or a Python-like literal with single quotes) that may be cut short; returns
    ``(value, closed_ids)``: the ids of the dicts that were closed."""
    root: list = []
    stack: list = []  # [container, state, pending key]
    closed: set[int] = set()
    last_scalar = None

    def attach(value):
        if not stack:
            root.append(value)
            return
        top = stack[-1]
        if isinstance(top[0], list):
            top[0].append(value)
        elif top[1] == "value" and top[2] is not None:
            top[0][top[2]] = value
            top[1] = "comma"

    pos = start
    for m in _JSON_TOKEN_RE.finditer(text, pos):
        if m.start() != pos:
            break
        pos = m.end()
        tok = m.group("punct")
        if tok in ("{", "["):
            container = {} if tok == "{" else []
            attach(container)
            if len(stack) >= _MAX_DEPTH:
                return None, closed
            stack.append([container, "key", None])
            last_scalar = None
        elif tok in ("}", "]"):
            if not stack:
                break
            container = stack.pop()[0]
            if isinstance(container, dict):
                closed.add(id(container))
            last_scalar = None
            if not stack:
                break
        elif tok == ":":
            if stack and isinstance(stack[-1][0], dict) and stack[-1][1] == "colon":
                stack[-1][1] = "value"
        elif tok == ",":
            if stack and isinstance(stack[-1][0], dict):
                stack[-1][1] = "key"
            last_scalar = None
        else:
            if m.group("str") is not None:
                raw = m.group("str")
                try:
                    value = json.loads(raw) if raw[0] == '"' else raw[1:-1].replace("\\'", "'")
                except ValueError:
                    value = raw[1:-1]
                last_scalar = None
            else:
                value = m.group("scalar").strip()
                value = {"null": None, "None": None, "true": True, "false": False}.get(value, value)
                last_scalar = (stack[-1] if stack else None, value)
            if not stack:
                break
            top = stack[-1]
            if isinstance(top[0], dict) and top[1] == "key":
                top[2], top[1] = str(value), "colon"
            else:
                attach(value)
    if stack and last_scalar is not None and pos >= len(text.rstrip()):
        top, value = last_scalar  # a bare scalar at the very end may be cut ("2014", "tru")
        if top is not None and isinstance(top[0], dict) and top[2] in top[0] and top[0][top[2]] is value:
            del top[0][top[2]]
        elif top is not None and isinstance(top[0], list) and top[0] and top[0][-1] is value:
            top[0].pop()
    return (root[0] if root else None), closed


def _json_fields(obj: dict, depth: int = 0) -> list[tuple[str, str]]:
    pairs = []
    for key, value in obj.items():
        name = _FIELD_OF.get(_field_key(key))
        if isinstance(value, dict) and depth < 3:
            inner = _json_fields(value, depth + 1) if name else []  # {"subject": {"name": ...}}, {"event": {...}}
            if inner:
                pairs.extend(inner)
                continue
            value = next((value[k] for k in ("name", "value", "label", "text") if k in value), None)
        if name and isinstance(value, (str, int, float)) and not isinstance(value, bool):
            pairs.append((name, str(value)))
    return pairs


def _json_collect(value, closed: set | None, depth: int = 0) -> list[_Item]:
    if depth > 8:
        return []
    if isinstance(value, dict):
        pairs = _json_fields(value)
        if any(n in _CONTENT for n, _ in pairs):
            item = _Item("json")
            item.pairs = pairs
            item.closed = closed is None or id(value) in closed
            return [item]
        keys = {_field_key(k): v for k, v in value.items()}
        for key in keys:
            if key in _WRAPPERS and isinstance(keys[key], (list, dict)):
                return _json_collect(keys[key], closed, depth + 1)
        out = []
        for v in value.values():
            if isinstance(v, (list, dict)):
                out.extend(_json_collect(v, closed, depth + 1))
        return out
    if isinstance(value, list):
        out = []
        for v in value:
            if isinstance(v, str):
                sub = _line_items(v)
                if len(sub) == 1:
                    sub[0].kind = "json"
                    out.extend(sub)
            elif isinstance(v, list) and v and all(isinstance(x, (str, int, float)) for x in v):
                item = _Item("json")
                item.free.append(" | ".join(str(x) for x in v))
                out.append(item)
            elif isinstance(v, (list, dict)):
                out.extend(_json_collect(v, closed, depth + 1))
        return out
    return []


def _json_items(text: str) -> list[_Item]:
    decoder = json.JSONDecoder()
    candidates = _json_candidates(text)
    for body, k in candidates:
        try:
            value, _ = decoder.raw_decode(body, k)
        except (ValueError, RecursionError):
            continue
        items = _json_collect(value, None)
        if items:
            return items
    for body, k in candidates:
        if not re.search(r"[\"']\s*:", body[k:k + 2000]):
            continue  # not JSON objects
        value, closed = _tolerant_json(body, k)
        items = _json_collect(value, closed)
        if items:
            return items
    return []


# ------------------------------------------------------------------ from items to causes

def _positional(text: str) -> dict[str, str]:
    """``subject | relation | object [| time]`` (or ``;``-separated, or a tuple ``(s, r, o, t)``)."""
    text = text.strip()
    m = re.fullmatch(r"[(\[]\s*(.+?)\s*[)\]]\.?", text, re.DOTALL)
    if m and m.group(1).count(",") >= 2:
        parts = [p.strip().strip("\"'") for p in m.group(1).split(",")]
    else:
        parts = [p.strip() for p in re.split(r"\s*[|;]\s*", text) if p.strip()]
        if len(parts) < 3:
            parts = [p.strip() for p in re.split(r"\s*(?:->|→|=>)\s*", text) if p.strip()]
    parts = [p for p in parts if p]
    if len(parts) < 3:
        return {}
    values = {}
    if len(parts) >= 4 and _date(parts[0], whole=True):
        values["time"], parts = parts[0], parts[1:]
    values.update(subject=parts[0], relation=parts[1], object=parts[2])
    if len(parts) > 3 and "time" not in values:
        values["time"] = ", ".join(parts[3:])
    if not all(re.search(r"[^\W\d_]", values[k]) for k in ("subject", "relation", "object")):
        return {}
    return values


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
    structured = [v for _, v in rows if any(v.get(k) for k in _CONTENT)]
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


def cause_list_schema(kind: str = "tkg") -> dict:
    """The JSON schema of a structured reply: ``{"causes": [{fields...}, ...]}``.

    ``kind`` is ``"tkg"`` (event type, subject name, object name, time) or ``"review"`` (category, title,
    time, summary).  It follows the subset of JSON Schema that OpenAI's strict structured outputs accept
    (every property required, no additional properties), which vLLM and llama.cpp's server accept too;
    :func:`parse_causes` reads the replies.
    """
    if kind == "tkg":
        fields = {"event_type": "one of the allowed event types", "subject_name": "who acts",
                  "object_name": "who is acted upon", "time": "YYYY-MM-DD"}
    elif kind == "review":
        fields = {"category": "one of the allowed categories", "title": "the review's title",
                  "time": "YYYY-MM-DD", "summary": "one sentence about the product and the opinion"}
    else:
        raise ValueError(f"kind must be 'tkg' or 'review', got {kind!r}")
    item = {"type": "object",
            "properties": {name: {"type": "string", "description": text} for name, text in fields.items()},
            "required": list(fields), "additionalProperties": False}
    return {"type": "object", "properties": {"causes": {"type": "array", "items": item}},
            "required": ["causes"], "additionalProperties": False}


_SYSTEM = (
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


class Abductor:
    """Builds abductive prompts for a knowledge-graph data set and parses the LLM's causes.

    Parameters
    ----------
    store : EventStore
        A temporal knowledge graph (demonstrations come from ``store.train``).
    client : lamp.llm.ChatClient, optional
        The LLM; ``None`` is the "no LLM" ablation (the effect's own text is its only cause).
    num_shots : int
        Demonstrations per prompt (default 8).
    seed : int
        Seed of the deterministic choice of demonstrations.
    max_listed_relations : int
        The allowed-relations message lists the most frequent relations up to this many.
    window : float, optional
        Causes of a demonstration are at most this long before the effect (time
        units of the data set); default: 30 time steps.
    domain : str
        The domain named in the system message.
    """

    def __init__(self, store: EventStore, client=None, num_shots: int = 8, seed: int = 0,
                 max_listed_relations: int = 40, window: float | None = None, max_causes: int = 5,
                 domain: str = "international relations and political events"):
        if not isinstance(store, EventStore) or store.kind != "tkg":
            raise TypeError("Abductor needs a temporal knowledge graph EventStore")
        if num_shots < 0:
            raise ValueError(f"num_shots must be >= 0, got {num_shots}")
        self.store, self.client = store, client
        self.num_shots, self.seed, self.max_causes, self.domain = int(num_shots), int(seed), max_causes, domain
        self.entities = [display_name(n) for n in store.entity_names]
        self.relations = [display_name(n) for n in store.relation_names]
        self.relation_index = {normalize_name(n): i for i, n in enumerate(store.relation_names)}
        self.entity_index = {normalize_name(n): i for i, n in enumerate(store.entity_names)}
        train = store.train.quadruples()
        counts = np.bincount(train[:, 1], minlength=store.num_relations)
        top = np.argsort(-counts, kind="stable")[:max_listed_relations]
        self.listed_relations = [self.relations[r] for r in sorted(top)]
        gaps = np.diff(np.unique(store.train.times))
        step = float(gaps[gaps > 0].min()) if np.any(gaps > 0) else 1.0
        self.window = float(window) if window is not None else 30.0 * step
        self.demonstrations = self._demonstrations(train)
        self.stats = ParseStats()

    # ------------------------------------------------------------------ rendering

    def _time(self, t: float) -> str:
        return format_time(t, self.store.time_unit, self.store.time_origin)

    def render_event(self, event, include_time: bool = True) -> str:
        """The fields of one event (s, r, o, t) in the reply format."""
        s, r, o, t = (int(event[0]), int(event[1]), int(event[2]), float(event[3]))
        lines = [f"event type: {self.relations[r]}", f"subject name: {self.entities[s]}",
                 f"object name: {self.entities[o]}"]
        if include_time:
            lines.append(f"time: {self._time(t)}")
        return "\n".join(lines)

    def event_text(self, event) -> str:
        """One-line text of an event (the text retrieval matches against)."""
        s, r, o = int(event[0]), int(event[1]), int(event[2])
        return event_text(self.entities[s], self.relations[r], self.entities[o])

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

        ``split`` is accepted for the interface shared with :class:`ReviewAbductor` (a knowledge-graph
        effect carries everything the prompt shows)."""
        messages = [{"role": "system", "content": _SYSTEM.format(domain=self.domain, low=3, high=5)},
                    {"role": "user", "content": "Allowed event types: " + "; ".join(self.listed_relations) + "."},
                    {"role": "assistant", "content": "Understood."}]
        for demo_effect, causes in self.demonstrations:
            messages.append({"role": "user", "content": "Effect event:\n" + self.render_event(demo_effect)})
            items = [f"{k + 1}. " + self.render_event(c).replace("\n", "\n   ") for k, c in enumerate(causes)]
            messages.append({"role": "assistant", "content": "\n".join(items)})
        messages.append({"role": "user", "content": "Effect event:\n" + self.render_event(effect)})
        return messages

    # ------------------------------------------------------------------ the oracle abducer (a diagnostic)

    def oracle_replies(self, effects, is_true, split: str = "test", seed: int = 0, num_causes: int = 3) -> list[str]:
        """What a perfect abducer would answer, in the reply format, for each effect (s, r, o, t).

        For a true effect: its ``num_causes`` most related real earlier events (sharing its subject or
        object; the same pair first, then the same relation, then its object; most recent first).  For
        any other effect: invented events (random entities and relations).  It reads which effect is true,
        so what it gives is a ceiling of this proposer, matching and ranker, never a result.
        """
        quads, times = self.store.stream()
        effects = np.asarray(effects)
        rng = np.random.default_rng(seed)
        entities = np.concatenate([quads[:, 0], quads[:, 2]])
        rows = np.concatenate([np.arange(len(quads))] * 2)
        order = np.lexsort((rows, entities))
        ent_sorted, row_sorted = entities[order], rows[order]
        starts = np.searchsorted(ent_sorted, np.arange(self.store.num_entities + 1))
        out = []
        for effect, true in zip(effects, is_true):
            s, r, o, t = int(effect[0]), int(effect[1]), int(effect[2]), float(effect[3])
            if true:
                pool = np.unique(np.concatenate([row_sorted[starts[e]:starts[e + 1]] for e in {s, o}]))
                pool = pool[times[pool] < t]
                ev = quads[pool]
                pair = ((ev[:, 0] == s) & (ev[:, 2] == o)) | ((ev[:, 0] == o) & (ev[:, 2] == s))
                score = 4 * pair + 2 * (ev[:, 1] == r) + ((ev[:, 0] == o) | (ev[:, 2] == o))
                picked, seen = [], set()
                for i in np.lexsort((-times[pool], -score)):
                    key = tuple(ev[i, :3])
                    if key not in seen:
                        seen.add(key)
                        picked.append((*ev[i, :3], times[pool[i]]))
                    if len(picked) == num_causes:
                        break
                causes = sorted(picked, key=lambda c: c[3])
            else:
                causes = [(int(rng.integers(self.store.num_entities)), int(rng.integers(self.store.num_relations)),
                           int(rng.integers(self.store.num_entities)), t - float(rng.uniform(0.0, self.window)))
                          for _ in range(num_causes)]
            out.append("\n".join(f"{k + 1}. " + self.render_event(c).replace("\n", "\n   ")
                                  for k, c in enumerate(causes)))
        return out

    # ------------------------------------------------------------------ running

    def abduce(self, effects: np.ndarray, split: str = "test") -> list[list[Cause]]:
        """Causes of every effect event (rows (subject, relation, object, time)); ``split`` as in
        :meth:`build_prompt`.

        With a client, identical prompts are asked once; failed requests give
        no causes (counted in ``stats.failed_requests``).  Without a client,
        each effect's own text is its single cause.
        """
        effects = np.asarray(effects)
        if effects.ndim != 2 or effects.shape[1] != 4:
            raise ValueError(f"effects must be an array (n, 4) of (subject, relation, object, time), got "
                             f"{effects.shape}")
        if self.client is None:
            return [[Cause(text=self.event_text(e))] for e in effects]
        return self._ask([self.build_prompt(e) for e in effects])

    def _ask(self, prompts: list) -> list[list[Cause]]:
        """The client's answers to ``prompts``, parsed; identical prompts are asked (and parsed) once."""
        import json

        first: dict[str, int] = {}
        where = [first.setdefault(json.dumps(p, sort_keys=True), len(first)) for p in prompts]
        unique = [None] * len(first)
        for p, w in zip(prompts, where):
            unique[w] = p
        parsed = self._parse_results(self.client.chat(unique))
        return [parsed[w] for w in where]

    def _parse_results(self, results) -> list[list[Cause]]:
        out = []
        for result in results:
            if result.text is None:
                self.stats.failed_requests += 1
                out.append([])
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


_REVIEW_SYSTEM = (
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


class ReviewAbductor(Abductor):
    """Abductive prompts for typed event sequences with text (the Amazon reviews data).

    An effect event is a (sequence index, event index) of ``split``; it is shown
    by its category and time only (its own title and review would reveal
    it).  Demonstrations come from the training split: the last review of a
    customer as the effect and that customer's earlier reviews, most recent
    first, as its causes.  Causes are parsed by :func:`parse_causes` (the
    ``category`` field resolves to a type id through ``relation_index``).
    """

    def __init__(self, store: EventStore, client=None, num_shots: int = 8, seed: int = 0, max_causes: int = 5,
                 summary_chars: int = 160, domain: str = "online shopping and product reviews"):
        if not isinstance(store, EventStore) or store.kind != "typed" or store.train is None:
            raise TypeError("ReviewAbductor needs typed sequences (an EventStore of kind 'typed' with a train split)")
        if num_shots < 0:
            raise ValueError(f"num_shots must be >= 0, got {num_shots}")
        self.store, self.client = store, client
        self.num_shots, self.seed, self.max_causes, self.domain = int(num_shots), int(seed), max_causes, domain
        self.summary_chars = int(summary_chars)
        names = store.type_names or [f"type {k}" for k in range(store.num_types)]
        self.types = [display_name(n) for n in names]
        self.relation_index = {normalize_name(n): i for i, n in enumerate(names)}
        self.entity_index = {}
        self.listed_relations = self.types
        self.stats = ParseStats()
        self.demonstrations = self._review_demonstrations()

    def _review(self, seqs, i: int, with_text: bool = True, mark: int | None = None, time: float | None = None) -> str:
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

        The effect is shown by its category and time only; ``type`` and
        ``time``, when given, replace the event's own (a proposal is a
        candidate type, or a candidate time, for that event).
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
        messages = [{"role": "system", "content": _REVIEW_SYSTEM.format(domain=self.domain, low=2, high=4)},
                    {"role": "user", "content": "Allowed categories: " + "; ".join(self.types) + "."},
                    {"role": "assistant", "content": "Understood."}]
        for demo_effect, causes in self.demonstrations:
            messages.append({"role": "user", "content": "Next review:\n" + self._review(train, demo_effect, False)})
            items = [f"{k + 1}. " + self._review(train, c).replace("\n", "\n   ") for k, c in enumerate(causes)]
            messages.append({"role": "assistant", "content": "\n".join(items)})
        i = int(seqs.offsets[s]) + j
        messages.append({"role": "user", "content": "Next review:\n" + self._review(seqs, i, False, mark, time)})
        return messages

    def oracle_replies(self, effects, is_true, split: str = "test", seed: int = 0, num_causes: int = 3) -> list[str]:
        """What a perfect abducer would answer for each effect (sequence index, event index, type, time) of
        ``split``: for a true effect, its sequence's earlier reviews (the candidate's category first, then the
        most recent); for any other effect, invented reviews.  A ceiling, never a result (it reads the truth).
        """
        seqs = getattr(self.store, split)
        effects = np.asarray(effects)
        rng = np.random.default_rng(seed)
        out = []
        for effect, true in zip(effects, is_true):
            s, j, mark, t = int(effect[0]), int(effect[1]), int(effect[2]), float(effect[3])
            if true:
                b = int(seqs.offsets[s])
                history = np.arange(b, b + j)
                same = seqs.marks[history] == mark
                picked = history[np.lexsort((-history, ~same))][:num_causes]
                items = [self._review(seqs, int(i)) for i in sorted(picked)]
            else:
                items = [f"category: {self.types[int(rng.integers(len(self.types)))]}\ntitle: Invented item\n"
                         f"time: {self._time(t - float(rng.uniform(1.0, 30.0)))}\nsummary: nothing that happened"
                         for _ in range(num_causes)]
            out.append("\n".join(f"{k + 1}. " + item.replace("\n", "\n   ") for k, item in enumerate(items)))
        return out

    def event_text(self, event) -> str:
        return self.types[int(event[2])] if len(event) > 2 else ""

    def abduce(self, effects, split: str = "test") -> list[list[Cause]]:
        """Causes of every effect (rows (sequence index, event index[, type[, time]])) of ``split``.

        Without a client (the "no LLM" ablation) each effect's own category is
        its single cause: the ``type`` column when given, else the event's own
        type.
        """
        effects = np.asarray(effects)
        if effects.ndim != 2 or effects.shape[1] < 2:
            raise ValueError(f"effects must be an array (n, >= 2) of (sequence index, event index), got "
                             f"{effects.shape}")
        if self.client is None:
            seqs = getattr(self.store, split)
            marks = effects[:, 2].astype(np.int64) if effects.shape[1] > 2 else \
                seqs.marks[seqs.offsets[effects[:, 0].astype(np.int64)] + effects[:, 1].astype(np.int64)]
            return [[Cause(text=self.types[int(k)])] for k in marks]
        return self._ask([self.build_prompt(e, split) for e in effects])
