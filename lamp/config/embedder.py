"""The rule of ``lamp.matching.embedder`` (a name or a mapping of the embedder's own keys), in one place: the
schema checks a config with it and :func:`lamp.retrieval.make_embedder` checks its argument with it."""
from __future__ import annotations

import math

from lamp.config.display import show
from lamp.llm.client import ENV_NAME

__all__ = ["EMBEDDER_TEXT", "embedder_problem", "is_int"]


EMBEDDER_TEXT = ("null or 'minilm' (the local all-MiniLM-L6-v2), or a mapping {backend: minilm, model_dir, "
                  "batch_size, max_length} or {backend: openai, base_url, model, api_key_env, batch_size, "
                  "concurrency, max_retries, timeout, verify_tls}")
_EMBEDDER_KEYS = {"minilm": {"backend", "model_dir", "batch_size", "max_length"},
                  "openai": {"backend", "base_url", "model", "api_key_env", "batch_size", "concurrency",
                             "max_retries", "timeout", "verify_tls", "connect_timeout"}}


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def embedder_problem(spec) -> str | None:
    """What is wrong with a ``matching.embedder`` value (None when it is fine); never shows api_key_env."""
    if spec is None or spec == "minilm":
        return None
    if not isinstance(spec, dict):
        return "is not 'minilm' or a mapping"
    backend = spec.get("backend", "minilm")
    if backend not in _EMBEDDER_KEYS:
        return f"has backend {show(backend)}, not 'minilm' or 'openai'"
    unknown = sorted(map(str, set(spec) - _EMBEDDER_KEYS[backend]))
    if unknown:
        return f"has unknown keys {unknown} for backend {backend!r}"
    if "api_key_env" in spec and spec["api_key_env"] is not None and not (
            isinstance(spec["api_key_env"], str) and ENV_NAME.match(spec["api_key_env"])):
        return "has an api_key_env (not shown) that is not a valid environment variable name"
    if backend == "openai":
        for key in ("base_url", "model"):
            if not isinstance(spec.get(key), str) or not spec[key]:
                return f"has backend 'openai' but no {key} (a string)"
        if not spec["base_url"].startswith(("http://", "https://")):
            return "has a base_url that does not start with http:// or https://"
    if "model_dir" in spec and spec["model_dir"] is not None and not isinstance(spec["model_dir"], str):
        return "has a model_dir that is not a string"
    for key, lo, hi in (("batch_size", 1, 100_000), ("max_length", 2, 512), ("concurrency", 1, 1024),
                        ("max_retries", 0, 100)):
        if key in spec and not (is_int(spec[key]) and lo <= spec[key] <= hi):
            return f"has a {key} that is not an integer >= {lo} and <= {hi}"
    for key in ("timeout", "connect_timeout"):
        if key in spec and not (isinstance(spec[key], (int, float)) and not isinstance(spec[key], bool)
                                and math.isfinite(spec[key]) and spec[key] > 0):
            return f"has a {key} that is not a number > 0"
    if "verify_tls" in spec and not isinstance(spec["verify_tls"], bool):
        return "has a verify_tls that is not true or false"
    return None
