"""The JSON schema of a structured reply (``abduction.response_format: json_schema``)."""
from __future__ import annotations

__all__ = ["cause_list_schema", "pattern_list_schema"]


def cause_list_schema(kind: str = "tkg") -> dict:
    """The JSON schema of a structured reply: ``{"causes": [{fields...}, ...]}``.

    ``kind`` is ``"tkg"`` (event type, subject name, object name, time) or ``"review"`` (category, title,
    time, summary).  It follows the subset of JSON Schema that OpenAI's strict structured outputs accept
    (every property required, no additional properties), which vLLM and llama.cpp's server accept too;
    :func:`lamp.abduction.parse.parse_causes` reads the replies.
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


def pattern_list_schema(kind: str = "tkg") -> dict:
    """The JSON schema of a structured reply to an event-type prompt: ``{"patterns": [{"event_type",
    "subject", "object"}, ...]}`` (``kind="tkg"``; the roles are ``X``, ``Y`` or ``someone else``) or
    ``{"patterns": [{"event_type"}, ...]}`` (``"typed"``); :func:`lamp.abduction.patterns.parse_patterns` reads
    the replies."""
    if kind not in ("tkg", "typed"):
        raise ValueError(f"kind must be 'tkg' or 'typed', got {kind!r}")
    props = {"event_type": {"type": "string", "description": "one of the allowed event types"}}
    if kind == "tkg":
        for field, who in (("subject", "who acts"), ("object", "who is acted upon")):
            props[field] = {"type": "string", "enum": ["X", "Y", "someone else"], "description": who}
    item = {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}
    return {"type": "object", "properties": {"patterns": {"type": "array", "items": item}},
            "required": ["patterns"], "additionalProperties": False}

