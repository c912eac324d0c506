"""The JSON in an LLM reply (a whole reply, a fenced block, or JSON after a preamble; cut short or written
with single quotes too), read into the items of :mod:`lamp.abduction.reply`."""
from __future__ import annotations

import json
import re

from lamp.abduction.reply import _CONTENT, _FIELD_OF, _Item, _field_key, _line_items

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
