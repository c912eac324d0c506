"""What lamp's test server answers a chat request: the canned causes, structured output checked the way
OpenAI checks it, and a JSON instance of the requested schema (:mod:`lamp.llm.testserver`)."""
from __future__ import annotations

import json
import re

__all__ = ["CANNED_REPLY", "CANNED_CAUSES", "response_format_problem", "schema_instance", "chat_answer"]

CANNED_REPLY = """1. event type: Consult
   subject name: Government (Nigeria)
   object name: Citizen (Nigeria)
   time: 2014-11-20
2. event type: Make an appeal or request
   subject name: Citizen (Nigeria)
   object name: Government (Nigeria)
   time: 2014-11-25
3. event type: Express intent to cooperate
   subject name: Government (Nigeria)
   object name: Citizen (Nigeria)
   time: 2014-11-28"""


# the canned causes as fields, for structured (JSON) replies: knowledge-graph fields and review fields
CANNED_CAUSES = [
    {"relation": "Consult", "subject": "Government (Nigeria)", "object": "Citizen (Nigeria)", "time": "2014-11-20",
     "category": "Books", "title": "Great read", "summary": "A gripping thriller"},
    {"relation": "Make an appeal or request", "subject": "Citizen (Nigeria)", "object": "Government (Nigeria)",
     "time": "2014-11-25", "category": "Kindle Store", "title": "Handy e-reader", "summary": "Light and sharp"},
    {"relation": "Express intent to cooperate", "subject": "Government (Nigeria)", "object": "Citizen (Nigeria)",
     "time": "2014-11-28", "category": "Electronics", "title": "Solid headphones", "summary": "Good sound"},
]
_TYPES = {"object", "array", "string", "number", "integer", "boolean", "null"}
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def response_format_problem(fmt) -> str | None:
    """Why a request's ``response_format`` would be rejected (None when it is valid)."""
    if not isinstance(fmt, dict):
        return "response_format must be an object"
    kind = fmt.get("type")
    if kind in ("text", "json_object"):
        return None
    if kind != "json_schema":
        return f"response_format.type must be 'text', 'json_object' or 'json_schema', got {kind!r}"
    spec = fmt.get("json_schema")
    if not isinstance(spec, dict):
        return "response_format.json_schema must be an object"
    if not isinstance(spec.get("name"), str) or not _NAME_RE.match(spec["name"]):
        return "response_format.json_schema.name must be 1-64 letters, digits, '_' or '-'"
    if "strict" in spec and not isinstance(spec["strict"], bool):
        return "response_format.json_schema.strict must be a boolean"
    if not isinstance(spec.get("schema"), dict):
        return "response_format.json_schema.schema must be an object"
    return _schema_problem(spec["schema"], bool(spec.get("strict")), "schema", 0)


def _schema_problem(node, strict: bool, where: str, depth: int) -> str | None:
    if depth > 32:
        return f"{where}: the schema is nested too deeply"
    if not isinstance(node, dict):
        return f"{where} must be an object"
    if "anyOf" in node:
        if not isinstance(node["anyOf"], list) or not node["anyOf"]:
            return f"{where}.anyOf must be a non-empty list"
        for k, sub in enumerate(node["anyOf"]):
            problem = _schema_problem(sub, strict, f"{where}.anyOf[{k}]", depth + 1)
            if problem:
                return problem
        return None
    types = node.get("type")
    types = types if isinstance(types, list) else [types]
    if not types or not all(isinstance(t, str) and t in _TYPES for t in types):
        return f"{where}.type must be one of {sorted(_TYPES)}, got {node.get('type')!r}"
    if "enum" in node and (not isinstance(node["enum"], list) or not node["enum"]):
        return f"{where}.enum must be a non-empty list"
    if "object" in types:
        props = node.get("properties", {})
        if not isinstance(props, dict):
            return f"{where}.properties must be an object"
        required = node.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            return f"{where}.required must be a list of property names"
        if any(r not in props for r in required):
            return f"{where}.required names a property that is not in properties"
        if strict:
            if node.get("additionalProperties") is not False:
                return f"{where}: strict mode needs additionalProperties: false"
            if set(required) != set(props):
                return f"{where}: strict mode needs every property in required"
        for name, sub in props.items():
            problem = _schema_problem(sub, strict, f"{where}.properties.{name}", depth + 1)
            if problem:
                return problem
    if "array" in types:
        if not isinstance(node.get("items"), dict):
            return f"{where}.items must be a schema object"
        return _schema_problem(node["items"], strict, f"{where}.items", depth + 1)
    return None


def _field(name: str) -> str | None:
    name = name.lower()
    for field, words in (("relation", ("type", "relation", "predicate", "action")), ("category", ("category",)),
                         ("subject", ("subject", "actor", "source")), ("object", ("object", "target")),
                         ("time", ("time", "date")), ("title", ("title", "headline")), ("summary", ("summary",))):
        if any(w in name for w in words):
            return field
    return None


def schema_instance(node: dict, k: int = 0, name: str = "", depth: int = 0):
    """JSON conforming to ``node`` (a schema accepted by :func:`response_format_problem`), filled with
    the ``k``-th canned cause; arrays hold every canned cause."""
    if "anyOf" in node:
        return schema_instance(node["anyOf"][0], k, name, depth + 1)
    if "enum" in node:
        return node["enum"][0]
    types = node["type"] if isinstance(node["type"], list) else [node["type"]]
    kind = next((t for t in types if t != "null"), "null")
    if kind == "object":
        return {p: schema_instance(sub, k, p, depth + 1) for p, sub in node.get("properties", {}).items()}
    if kind == "array":
        return [schema_instance(node["items"], i, name, depth + 1) for i in range(len(CANNED_CAUSES))]
    if kind == "string":
        field = _field(name)
        return CANNED_CAUSES[k % len(CANNED_CAUSES)][field] if field else f"{name or 'value'} {k + 1}"
    return {"number": 0.0, "integer": 0, "boolean": False, "null": None}[kind]


def chat_answer(server, request: dict, raw: bytes, headers: dict | None = None) -> tuple[int, dict]:
    """The chat endpoint's answer to a parsed request (``raw``: its bytes; ``headers``: the request's):
    ``(status, JSON reply)``; a batch line is answered by the same function.  Faults of a hostile server:
    ``echo_headers`` appends every request header to the reply text (a key in ``Authorization`` too);
    ``usage`` replaces the reply's ``usage`` object with the given value (malformed token counts)."""
    faults = getattr(server, "faults", None) or {}
    fmt = request.get("response_format") if isinstance(request, dict) else None
    if isinstance(request, dict) and "response_format" in request:
        problem = response_format_problem(fmt)
        if problem:
            return 400, {"error": {"message": f"Invalid response_format: {problem}", "type": "invalid_request_error"}}
    if callable(server.reply):
        content = server.reply(request)
    elif server.reply is CANNED_REPLY and fmt and fmt["type"] == "json_schema":
        content = json.dumps(schema_instance(fmt["json_schema"]["schema"]))
    elif server.reply is CANNED_REPLY and fmt and fmt["type"] == "json_object":
        content = json.dumps({"causes": [{"event_type": c["relation"], "subject_name": c["subject"],
                                          "object_name": c["object"], "time": c["time"]} for c in CANNED_CAUSES]})
    else:
        content = server.reply
    if faults.get("echo_headers") and headers:
        content = f"{content}\n(the request's headers: " + "; ".join(f"{k}: {v}" for k, v in headers.items()) + ")"
    usage = faults["usage"] if "usage" in faults else {"prompt_tokens": len(raw) // 4,
                                                        "completion_tokens": len(content) // 4}
    return 200, {"id": "test", "object": "chat.completion", "model": request.get("model"),
                 "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                              "finish_reason": "stop"}],
                 "usage": usage}
