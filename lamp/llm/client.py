"""OpenAI-compatible chat client over lamp's C transport (libcurl), with a durable cache.

The client builds request bodies and parses replies with :mod:`json`; the C
core only moves bytes.  Requests are sent in chunks; each chunk's answers go
into the SQLite cache as soon as the chunk returns, so a killed run loses at
most the chunk in flight and a rerun sends only what is missing.

Retries (documented behaviour):

- transport errors (connection refused or reset, timeouts, partial bodies),
  HTTP 408, 429 and 5xx are retried up to ``max_retries`` times with
  exponential backoff (``backoff_base * 2**(attempt-1)``, jitter x0.5-1.5,
  capped at ``backoff_max``) or after the server's ``Retry-After`` seconds;
- a 200 reply that is not valid JSON or has no message (a malformed or
  truncated reply) is retried the same number of times;
- other 4xx statuses are final at once.

Structured output: ``response_format=schema`` (a JSON schema, e.g.
:func:`lamp.abduction.cause_list_schema`) sends ``"response_format": {"type":
"json_schema", "json_schema": {"name": "causes", "schema": schema, "strict":
true}}`` with every request (OpenAI structured outputs; vLLM and llama.cpp's
server accept the same field); a complete ``response_format`` object (``{"type":
"json_schema", ...}`` or ``{"type": "json_object"}``) is sent as given.  It is
part of the cache key: a cached text answer is never reused for a schema
request, nor the reverse.

A request that still fails is reported in its own result (``.error``); the
batch never raises for it.  Ctrl-C stops the batch within about 100 ms,
keeps (and caches) every answer received, then raises ``KeyboardInterrupt``.

The API key is read from the environment variable *named* by
``api_key_env`` at send time; it is never stored in the client's attributes,
config, cache, logs, results or exception messages.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Sequence

from lamp import _core
from lamp.errors import LLMError, ReplayMissError
from lamp.llm.cache import AnswerCache, request_key

__all__ = ["ChatClient", "ChatResult", "LLMError", "ReplayMissError", "RunStats"]


@dataclass
class ChatResult:
    """One answer: ``text`` (None on failure), ``error`` (None on success), ``cached``, ``usage``."""

    text: str | None
    error: str | None = None
    cached: bool = False
    usage: dict = field(default_factory=dict)
    attempts: int = 0


@dataclass
class RunStats:
    """Counts of a client's work: cache hits and misses, failures, tokens, and an estimated cost."""

    hits: int = 0
    misses: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    price_per_million: tuple[float, float] = (0.0, 0.0)

    @property
    def cost(self) -> float:
        p, c = self.price_per_million
        return (self.prompt_tokens * p + self.completion_tokens * c) / 1e6

    def __str__(self) -> str:
        return (f"LLM: {self.hits} cached, {self.misses} sent, {self.failures} failed; tokens "
                f"{self.prompt_tokens:,} in / {self.completion_tokens:,} out; est. cost ${self.cost:.4f}")


def _parse_reply(body: bytes) -> tuple[str | None, dict, str | None]:
    try:
        data = json.loads(body)
        text = data["choices"][0]["message"]["content"]
        if not isinstance(text, str):
            raise TypeError("content is not a string")
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        return None, {}, f"malformed reply ({type(exc).__name__})"
    usage = data.get("usage") or {}
    return text, {"prompt_tokens": usage.get("prompt_tokens"), "completion_tokens": usage.get("completion_tokens")}, None


def _response_format(value: dict | None) -> dict | None:
    """The ``response_format`` field of a request: a JSON schema becomes a strict ``json_schema`` format
    named ``causes``; a complete response format (``{"type": "json_schema" | "json_object" | "text", ...}``)
    is kept as given."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError(f"response_format must be a JSON schema (a dict) or None, got {type(value).__name__}")
    try:
        value = json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"response_format is not JSON-serializable: {exc}") from None
    if value.get("type") in ("json_schema", "json_object", "text"):
        if value["type"] == "json_schema" and not isinstance(value.get("json_schema"), dict):
            raise ValueError('a "json_schema" response_format needs a "json_schema" object')
        return value
    return {"type": "json_schema", "json_schema": {"name": "causes", "schema": value, "strict": True}}


class ChatClient:
    """Chat completions against an OpenAI-compatible server (OpenAI, vLLM, llama.cpp, Ollama).

    Parameters
    ----------
    base_url : str
        E.g. ``https://api.openai.com/v1`` or ``http://127.0.0.1:8080/v1``.
    model : str
        Model name sent with each request.
    api_key_env : str, optional
        Name of the environment variable holding the API key.
    cache : AnswerCache or str, optional
        The answer cache (a path makes one).
    concurrency, max_retries, timeout : int, int, float
        Requests in flight; retries per request; seconds per attempt.
    temperature, max_tokens, seed : sampling parameters (seed only when given).
    replay : bool
        Answer from the cache only; missing answers raise :class:`ReplayMissError`.
    response_format : dict, optional
        A JSON schema the replies must follow (sent as OpenAI's ``json_schema`` response format, strict,
        named ``causes``), or a complete ``response_format`` object; None (default) asks for plain text.
    """

    def __init__(self, base_url: str, model: str, api_key_env: str | None = None, cache=None, concurrency: int = 8,
                 max_retries: int = 5, timeout: float = 60.0, *, temperature: float = 0.0, max_tokens: int = 256,
                 seed: int | None = None, connect_timeout: float = 10.0, backoff_base: float = 0.5,
                 backoff_max: float = 30.0, max_response: int = 8 << 20, verify_tls: bool = True,
                 chunk_size: int | None = None, replay: bool = False, progress: bool | None = None,
                 price_per_million: tuple[float, float] = (0.0, 0.0), response_format: dict | None = None):
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if api_key_env is not None and not isinstance(api_key_env, str):
            raise TypeError("api_key_env is the NAME of an environment variable (a str)")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.cache = AnswerCache(cache) if isinstance(cache, (str, os.PathLike)) else cache
        self.concurrency, self.max_retries, self.timeout = int(concurrency), int(max_retries), float(timeout)
        self.connect_timeout, self.backoff_base, self.backoff_max = connect_timeout, backoff_base, backoff_max
        self.max_response, self.verify_tls = int(max_response), bool(verify_tls)
        self.sampling: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens}
        if seed is not None:
            self.sampling["seed"] = seed
        self.chunk_size = chunk_size or max(4 * self.concurrency, 16)
        self.replay = replay
        self.response_format = _response_format(response_format)
        self.progress = progress
        self.stats = RunStats(price_per_million=price_per_million)

    @property
    def _params(self) -> dict:
        """What a request sends besides the model and messages (and what its cache key covers): the sampling
        parameters, and the response format when one is set (text requests keep their old keys)."""
        if self.response_format is None:
            return self.sampling
        return {**self.sampling, "response_format": self.response_format}

    def __repr__(self) -> str:
        return (f"ChatClient(base_url={self.base_url!r}, model={self.model!r}, api_key_env={self.api_key_env!r}, "
                f"concurrency={self.concurrency})")

    def _headers(self) -> list[str]:
        headers = ["Content-Type: application/json", "Accept: application/json"]
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise LLMError(f"the environment variable {self.api_key_env} (named by api_key_env) is not set")
            headers.append("Authorization: Bearer " + key)
        return headers

    def _post(self, path: str, bodies: list[bytes]):
        return _core.http_post_batch(self.base_url + path, bodies, self._headers(), self.concurrency, self.timeout,
                                     self.connect_timeout, self.max_retries, self.backoff_base, self.backoff_max,
                                     self.max_response, self.verify_tls, 0x5eed)

    def chat(self, requests: Sequence[list[dict]]) -> list[ChatResult]:
        """Answer every request (a list of ``{"role", "content"}`` messages), in order.

        Cached answers are returned without sending; the rest are sent with
        retries and cached as they arrive.  One failed request never raises.
        """
        requests = list(requests)
        for i, messages in enumerate(requests):
            if not isinstance(messages, list) or not all(isinstance(m, dict) and "role" in m and "content" in m
                                                         for m in messages):
                raise TypeError(f"requests[{i}] must be a list of {{'role': ..., 'content': ...}} messages")
        keys = [request_key(self.model, m, self._params) for m in requests]
        results: list[ChatResult | None] = [None] * len(requests)
        cached = self.cache.get_many(set(keys)) if self.cache is not None else {}
        todo = []
        for i, key in enumerate(keys):
            if key in cached:
                row = cached[key]
                results[i] = ChatResult(row["text"], None, True, row["usage"])
                self.stats.hits += 1
            else:
                todo.append(i)
        if todo and self.replay:
            raise ReplayMissError(f"replay mode: {len(todo)} of {len(requests)} requests are not in the cache "
                                  f"{self.cache.path if self.cache is not None else '(no cache)'}; run with a live backend first")
        self._send(requests, keys, todo, results)
        return results  # type: ignore[return-value]

    def _send(self, requests, keys, todo, results) -> None:
        from tqdm.auto import tqdm

        show = self.progress if self.progress is not None else (len(todo) > self.chunk_size and sys.stderr.isatty())
        bar = tqdm(total=len(todo), desc="LLM requests", unit="req", disable=not show)
        pending = list(todo)
        tries = {i: 0 for i in todo}
        try:
            while pending:
                chunk, pending = pending[:self.chunk_size], pending[self.chunk_size:]
                bodies = [json.dumps({"model": self.model, "messages": requests[i], **self._params}).encode("utf-8")
                          for i in chunk]
                replies, interrupted = self._post("/chat/completions", bodies)
                rows, retry = [], []
                for i, (status, body, ok, done, attempts, error) in zip(chunk, replies):
                    tries[i] += max(attempts, 0)
                    if not done:
                        continue
                    if ok:
                        text, usage, problem = _parse_reply(body)
                        if problem is None:
                            results[i] = ChatResult(text, None, False, usage, tries[i])
                            rows.append((keys[i], self.model, {"messages": requests[i], **self._params},
                                         body.decode("utf-8", errors="replace"), text, usage))
                            self.stats.misses += 1
                            self.stats.prompt_tokens += usage.get("prompt_tokens") or 0
                            self.stats.completion_tokens += usage.get("completion_tokens") or 0
                            bar.update(1)
                            continue
                        error = problem
                        if tries[i] <= self.max_retries:
                            retry.append(i)
                            continue
                    detail = ""
                    if body and not ok:
                        detail = ": " + body[:200].decode("utf-8", errors="replace").replace("\n", " ")
                    results[i] = ChatResult(None, f"{error} after {tries[i]} attempt(s){detail}", False, {}, tries[i])
                    self.stats.failures += 1
                    bar.update(1)
                if self.cache is not None and rows:
                    self.cache.put_many(rows)
                if interrupted:
                    raise KeyboardInterrupt
                pending = retry + pending
        finally:
            bar.close()

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embeddings of ``texts`` from the server's ``/embeddings`` endpoint (not cached here)."""
        bodies = [json.dumps({"model": self.model, "input": t}).encode("utf-8") for t in texts]
        replies, interrupted = self._post("/embeddings", bodies)
        if interrupted:
            raise KeyboardInterrupt
        out = []
        for i, (status, body, ok, done, attempts, error) in enumerate(replies):
            if not ok:
                raise LLMError(f"embedding request {i} failed: {error} after {attempts} attempt(s)")
            try:
                out.append(json.loads(body)["data"][0]["embedding"])
            except (ValueError, KeyError, IndexError) as exc:
                raise LLMError(f"embedding request {i}: malformed reply ({type(exc).__name__})") from None
        return out


def request_params(temperature: float, max_tokens: int, response_format: dict | None = None) -> dict:
    """What a chat request sends besides the model and messages, as :class:`ChatClient` sends it and its
    cache key covers it (to look answers up without a client)."""
    params: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens}
    fmt = _response_format(response_format)
    if fmt is not None:
        params["response_format"] = fmt
    return params
