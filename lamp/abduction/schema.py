"""The JSON schema of a structured reply (``abduction.response_format: json_schema``)."""
from __future__ import annotations

__all__ = ["cause_list_schema"]


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

