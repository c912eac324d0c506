"""Reading an LLM reply into items of fields: the styles models write (numbered, bulleted, bold or ``#``
items, ``name: value`` fields on one line or several, ``subject | relation | object`` lines, markdown
tables; JSON is read by :mod:`lamp.abduction.reply_json`), field-name synonyms, dates.

:func:`lamp.abduction.parse.parse_causes` and :func:`lamp.abduction.patterns.parse_patterns` turn the items
into causes and cause patterns; nothing here raises on any string.
"""
from __future__ import annotations

import re

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
