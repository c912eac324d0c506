"""OpenAI-compatible chat client over lamp's C transport (libcurl), with a durable cache.

The client builds request bodies and parses replies with :mod:`json`; the C
core only moves bytes.  Requests are sent in chunks; each chunk's answers go
into the SQLite cache as soon as the chunk returns, so a killed run loses at
most the chunk in flight and a rerun sends only what is missing.

Retries (documented behaviour):

- transport errors (connection refused or reset, timeouts, partial bodies),
  HTTP 408, 429 and 5xx are retried up to ``max_retries`` times (per
  endpoint), each request on its own: after the server's ``retry-after-ms``
  or ``Retry-After`` (seconds or an HTTP date) when it sends one, else after
  ``backoff_base * 2**(attempt-1)`` (jitter x0.5-1.5), capped at
  ``backoff_max``.  A request waiting for its backoff holds no slot: the
  other requests keep flowing at full concurrency;
- a 200 reply that is not valid JSON or has no message (a malformed or
  truncated reply) is retried the same number of times;
- other 4xx statuses are final at once;
- the endpoint as a whole pauses only when the server asks for it: a 429 or
  503 whose ``Retry-After`` is over 5 s, or ``x-ratelimit-remaining-requests``
  (or ``-tokens``) ``0`` on any reply, for that ``Retry-After`` or
  ``x-ratelimit-reset-requests`` (``-tokens``: ``1s``, ``6m0s``, ``250ms``),
  at most ``backoff_max``; or when it cannot be reached (below);
- ``requests_per_minute`` / ``tokens_per_minute`` (None: no limit) pace the
  starts of all attempts, over all endpoints, to stay under a known quota:
  in any window of w seconds at most 1 + (w + 0.05) * limit / 60 start, a
  request counting ``len(body) // 4 + max_tokens`` tokens.  The pace carries
  over from chunk to chunk and call to call.

Structured output: ``response_format=schema`` (a JSON schema, e.g.
:func:`lamp.abduction.cause_list_schema`) sends ``"response_format": {"type":
"json_schema", "json_schema": {"name": "causes", "schema": schema, "strict":
true}}`` with every request (OpenAI structured outputs; vLLM and llama.cpp's
server accept the same field); a complete ``response_format`` object (``{"type":
"json_schema", ...}`` or ``{"type": "json_object"}``) is sent as given.  It is
part of the cache key: a cached text answer is never reused for a schema
request, nor the reverse.

A request that still fails is reported in its own result (``.error``); the
batch never raises for it.

Several endpoints (``base_url`` a list: vLLM replicas, or a hosted API and a
local fallback; documented behaviour):

- each endpoint has ``concurrency`` requests in flight; the requests of a
  chunk are handed to the endpoints that are in, one at a time to each in
  turn, so a faster endpoint (one that frees its slots sooner) takes more;
- an endpoint is *taken out* when it cannot be reached: a refused
  connection, no such host, a connect timeout, a connection closed before a
  byte of a reply, or 3 timeouts in a row without a byte of a reply.  It stays
  out for ``backoff_base * 2**(k-1)`` (jitter x0.5-1.5, capped at
  ``backoff_max``; k counts such take-outs since its last reply), then takes
  one probe request at a time until one gets a reply (any status), which puts
  it fully back in.  It is also taken out when the server asks for a pause
  (above), for that long, then fully back.  A 429 or 5xx by itself never
  takes an endpoint out.  When every endpoint is out (one URL, or all
  unreachable) there is nowhere better to send, so each takes its full
  concurrency after its cool-down, and once every endpoint has been taken out
  4 times in a row because no connection could be made to it (refused, no such
  host, connect timeout) with nothing in flight, the requests still waiting
  fail at once ("every endpoint is down") instead of waiting through more
  cool-downs; a server that replies at all (429, 500, a reset after
  connecting) is never "down": its requests use their own attempts;
- a failed request is retried on another endpoint at once (counted as
  "retried elsewhere" for the endpoint that failed it), or on the same one
  after its backoff; it has ``1 + max_retries`` attempts on *each* endpoint
  and is final-failed only when every endpoint has used those up (a
  non-retryable 4xx is final at once; a malformed reply is re-sent up to
  ``(1 + max_retries) * len(base_url)`` attempts in all);
- a request is in flight on one endpoint at a time, and is answered once;
- the cache key is ``(model, messages, sampling)``: which endpoint answered
  does not matter, so a cache filled through several endpoints serves a
  client with any other list;
- ``client.stats.endpoints`` counts per endpoint the attempts sent, answered,
  failed, retried elsewhere and the take-outs (``str(client.stats)`` lists
  them when there are several endpoints); URLs are shown without user
  information or query string, and no header is ever shown.

Progress: in a terminal a tqdm bar (answered/total, req/s, tokens, ETA); with
no terminal (CI, nohup, Jupyter's captured output) a line on stderr at least
every ``progress_interval`` seconds (30), e.g. ``[lamp] LLM: 120/480
answered (3 failed), 1.3 req/s, 131k tokens in / 9k out, ETA 4m 37s``.
Answered counts are live; token counts are added as each chunk's replies are
parsed.  Ctrl-C stops the batch within about 100 ms,
keeps (and caches) every answer received, then raises ``KeyboardInterrupt``.

The API key is read from the environment variable *named* by
``api_key_env`` at send time; it is never stored in the client's attributes,
config, cache, logs, results or exception messages.
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Sequence
from urllib.parse import urlsplit

from lamp import _core
from lamp.errors import LLMError, ReplayMissError
from lamp.llm.cache import AnswerCache, request_key, token_count

__all__ = ["ChatClient", "ChatResult", "EndpointStats", "LLMError", "ReplayMissError", "RunStats"]


@dataclass
class ChatResult:
    """One answer: ``text`` (None on failure), ``error`` (None on success), ``cached``, ``usage``."""

    text: str | None
    error: str | None = None
    cached: bool = False
    usage: dict = field(default_factory=dict)
    attempts: int = 0


def _shown_url(url: str) -> str:
    """A URL without its user information and query string (either may hold a secret)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


@dataclass
class EndpointStats:
    """One endpoint's counts: attempts sent, answered (2xx), failed, requests it failed that were
    retried on another endpoint, and times it was taken out."""

    url: str
    sent: int = 0
    answered: int = 0
    failed: int = 0
    retried_elsewhere: int = 0
    taken_out: int = 0

    def __str__(self) -> str:
        return (f"{self.url}: {self.sent} sent, {self.answered} answered, {self.failed} failed, "
                f"{self.retried_elsewhere} retried elsewhere, taken out {self.taken_out}x")


@dataclass
class RunStats:
    """Counts of a client's work: cache hits and misses, failures, tokens, an estimated cost, and the
    counts of each endpoint (``endpoints``)."""

    hits: int = 0
    misses: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    price_per_million: tuple[float, float] = (0.0, 0.0)
    endpoints: list[EndpointStats] = field(default_factory=list)
    redacted: int = 0
    unknown_usage: int = 0

    @property
    def cost(self) -> float:
        p, c = self.price_per_million
        return (self.prompt_tokens * p + self.completion_tokens * c) / 1e6

    def __str__(self) -> str:
        text = (f"LLM: {self.hits} cached, {self.misses} sent, {self.failures} failed; tokens "
                f"{self.prompt_tokens:,} in / {self.completion_tokens:,} out; est. cost ${self.cost:.4f}")
        if len(self.endpoints) > 1:
            text += "; endpoints: " + "; ".join(str(e) for e in self.endpoints)
        if self.redacted:
            text += f"; {self.redacted} replies held a secret (the API key or the base URL's user information), " \
                    "redacted before anything was stored"
        if self.unknown_usage:
            text += f"; {self.unknown_usage} replies had a malformed token count (recorded as unknown)"
        return text


def _count(n: int) -> str:
    return f"{n}" if n < 1000 else f"{n / 1e3:.0f}k" if n < 999_500 else f"{n / 1e6:.1f}M"


def _duration(seconds: float) -> str:
    if not seconds < 360_000:
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}h {s // 60 % 60:02d}m" if s >= 3600 else f"{s // 60}m {s % 60:02d}s" if s >= 60 else f"{s}s"


class _Progress:
    """The progress of one ``chat`` call: a tqdm bar in a terminal, else a line on stderr at least every
    ``interval`` seconds (and a last one when any was written); nothing when ``mode`` is None."""

    def __init__(self, stats: RunStats, total: int, mode: str | None, interval: float):
        self.stats, self.total, self.mode, self.interval = stats, total, mode, interval
        self.tokens0 = (stats.prompt_tokens, stats.completion_tokens)
        self.answered = self.failed = 0  # final, from the chunks parsed so far
        self.live = (0, 0)               # answered and failed in the chunk in flight
        self.started = self.last_line = time.monotonic()
        self.lines = 0
        self.bar = None
        if mode == "bar":
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc="LLM", unit="req")

    def figures(self) -> tuple[int, int, float, int, int, float]:
        answered, failed = self.answered + self.live[0], self.failed + self.live[1]
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = (answered + failed) / elapsed
        eta = (self.total - answered - failed) / rate if rate > 0 else float("inf")
        return (answered, failed, rate, self.stats.prompt_tokens - self.tokens0[0],
                self.stats.completion_tokens - self.tokens0[1], eta)

    def line(self) -> str:
        answered, failed, rate, tok_in, tok_out, eta = self.figures()
        return (f"[lamp] LLM: {answered}/{self.total} answered ({failed} failed), {rate:.1f} req/s, "
                f"{_count(tok_in)} tokens in / {_count(tok_out)} out, ETA {_duration(eta)}")

    def chunk_progress(self, answered: int, failed: int) -> None:
        """Called by the C transport while a chunk is in flight (about every 100 ms)."""
        self.live = (answered, failed)
        self.show()

    def chunk_done(self, answered: int, failed: int) -> None:
        self.answered += answered
        self.failed += failed
        self.live = (0, 0)
        self.show()

    def show(self, final: bool = False) -> None:
        if self.mode == "bar":
            answered, failed, _, tok_in, tok_out, _ = self.figures()
            self.bar.set_postfix_str(f"{failed} failed, {_count(tok_in)} tokens in / {_count(tok_out)} out",
                                     refresh=False)
            self.bar.update(answered + failed - self.bar.n)
        elif self.mode == "log":
            now = time.monotonic()
            if now - self.last_line >= self.interval or (final and self.lines):
                print(self.line(), file=sys.stderr, flush=True)
                self.last_line = now
                self.lines += 1

    def close(self) -> None:
        self.show(final=True)
        if self.bar is not None:
            self.bar.close()


def _parse_reply(body: bytes) -> tuple[str | None, dict, str | None]:
    """``(text, usage, problem)`` of a 200 reply: every field is checked before anything is kept (a malformed
    ``usage`` gives unknown token counts, None, never an exception)."""
    try:
        data = json.loads(body)
        text = data["choices"][0]["message"]["content"]
        if not isinstance(text, str):
            raise TypeError("content is not a string")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError) as exc:
        return None, {}, f"malformed reply ({type(exc).__name__})"
    usage = data.get("usage") if isinstance(data, dict) else None
    usage = usage if isinstance(usage, dict) else {}
    return text, {"prompt_tokens": token_count(usage.get("prompt_tokens")),
                  "completion_tokens": token_count(usage.get("completion_tokens"))}, None


def _usage_malformed(body: bytes, usage: dict) -> bool:
    """Whether the reply reported a token count that :func:`token_count` could not take."""
    try:
        reported = json.loads(body).get("usage")
    except (ValueError, AttributeError, RecursionError):
        return False
    if not isinstance(reported, dict):
        return reported is not None
    return any(reported.get(k) is not None and usage.get(k) is None for k in ("prompt_tokens", "completion_tokens"))


REDACTED = "[redacted]"


class Redactor:
    """Removes the secrets a server could echo from what it sent, before anything is stored, returned or shown:
    the API key (the value of the variable named by ``api_key_env``, read now) and the user information of
    the base URLs (``http://user:secret@host/v1``: the user information, its password, and the Basic
    credentials libcurl derives from them).  ``count`` says how many texts held one."""

    def __init__(self, api_key_env: str | None, base_urls: Sequence[str] = ()):
        import base64
        from urllib.parse import unquote

        found = set()
        key = os.environ.get(api_key_env) if api_key_env else None
        if key:
            found.add(key)
        for url in base_urls:
            info = urlsplit(url).netloc.rpartition("@")[0]
            if not info:
                continue
            user, _, password = info.partition(":")
            for value in (info, unquote(info), password, unquote(password)):
                if len(value) >= 3:
                    found.add(value)
            found.add(base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode())
        self.secrets = sorted(found, key=len, reverse=True)
        self.count = 0

    def __call__(self, text: str, count: bool = True) -> str:
        hit = False
        for secret in self.secrets:
            if secret in text:
                text, hit = text.replace(secret, REDACTED), True
        self.count += hit and count
        return text

    def body(self, raw: bytes | None, count: bool = True) -> bytes | None:
        """A reply body with every secret replaced (the body is read as UTF-8 only when it holds one);
        ``count=False`` for a second look at a body already counted."""
        if raw is None or not self.secrets:
            return raw
        if not any(s.encode("utf-8") in raw for s in self.secrets):
            return raw
        return self(raw.decode("utf-8", errors="replace"), count).encode("utf-8")


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


#: What ``api_key_env`` must look like: the name of an environment variable (the config schema checks it too).
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_PLAIN_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*\Z")


def _env_name_shown(name, fmt=str):
    """The variable's name for a message, unless it is not an upper-case name (a key put there by mistake
    looks like ``sk_AbC...`` or ``hf_xYz...``: such a name is not shown)."""
    if name is None or _PLAIN_ENV_NAME.match(name):
        return fmt(name)
    return "<a mixed-case name, not shown: it may be a key>"


def _check_url(url) -> None:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f"base_url must start with http:// or https://, got {url!r}")


def _check_common(max_retries: int, timeout: float, api_key_env) -> None:
    """The checks the chat and batch clients share."""
    if max_retries < 0:
        raise ValueError(f"max_retries must be >= 0, got {max_retries}")
    if not timeout > 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    if api_key_env is not None and not isinstance(api_key_env, str):
        raise TypeError("api_key_env is the NAME of an environment variable (a str)")
    if api_key_env is not None and not ENV_NAME.match(api_key_env):
        raise ValueError("api_key_env (not shown: it may be a key) is not an environment variable name; it is "
                         "the NAME of the variable that holds the key, e.g. OPENAI_API_KEY")


def auth_headers(api_key_env: str | None) -> list[str]:
    """The Authorization header with the key read now from the variable named ``api_key_env`` (none without
    one); :class:`LLMError` naming the variable (never the key) when it is not set."""
    if not api_key_env:
        return []
    key = os.environ.get(api_key_env)
    if not key:
        raise LLMError(f"the environment variable {_env_name_shown(api_key_env)} (named by api_key_env) is not set")
    return ["Authorization: Bearer " + key]


def check_requests(requests: Sequence[list[dict]]) -> list[list[dict]]:
    """The requests as a list; TypeError naming the first one that is not a list of chat messages."""
    requests = list(requests)
    for i, messages in enumerate(requests):
        if not isinstance(messages, list) or not all(isinstance(m, dict) and "role" in m and "content" in m
                                                     for m in messages):
            raise TypeError(f"requests[{i}] must be a list of {{'role': ..., 'content': ...}} messages")
    return requests


def with_format(sampling: dict, response_format: dict | None) -> dict:
    """The parameters a request sends besides the model and messages: the sampling parameters, and the
    response format when one is set (text requests keep their old cache keys)."""
    return sampling if response_format is None else {**sampling, "response_format": response_format}


def request_body(model: str, messages: list[dict], params: dict) -> dict:
    """The JSON body of a chat completion request."""
    return {"model": model, "messages": messages, **params}


def answer_row(key: str, model: str, messages: list[dict], params: dict, reply: str, text: str, usage: dict) -> tuple:
    """The cache row of an answer, as every client writes it: ``(key, model, request, reply, text, usage)``."""
    return key, model, {"messages": messages, **params}, reply, text, usage


def cached_results(cache, model: str, params: dict, requests: list, stats: RunStats):
    """``(keys, results, todo)``: each request's cache key; its result when the cache holds it (counted as a hit
    in ``stats``), else None; the indices of the others, in order."""
    keys = [request_key(model, m, params) for m in requests]
    results: list[ChatResult | None] = [None] * len(requests)
    cached = cache.get_many(set(keys)) if cache is not None else {}
    todo = []
    for i, key in enumerate(keys):
        if key in cached:
            row = cached[key]
            results[i] = ChatResult(row["text"], None, True, row["usage"])
            stats.hits += 1
        else:
            todo.append(i)
    return keys, results, todo


class ChatClient:
    """Chat completions against an OpenAI-compatible server (OpenAI, vLLM, llama.cpp, Ollama).

    Parameters
    ----------
    base_url : str or list of str
        E.g. ``https://api.openai.com/v1`` or ``http://127.0.0.1:8080/v1``; several URLs spread the
        requests over several servers (see the module docstring for the rules).
    model : str
        Model name sent with each request.
    api_key_env : str, optional
        Name of the environment variable holding the API key.
    cache : AnswerCache or str, optional
        The answer cache (a path makes one).
    concurrency, max_retries, timeout : int, int, float
        Requests in flight per endpoint; retries per request and endpoint; seconds per attempt.
    requests_per_minute, tokens_per_minute : float, optional
        Client-side rate limits over all endpoints (None: none); see the module docstring.
    temperature, max_tokens, seed : sampling parameters (seed only when given).
    replay : bool
        Answer from the cache only; missing answers raise :class:`ReplayMissError`.
    response_format : dict, optional
        A JSON schema the replies must follow (sent as OpenAI's ``json_schema`` response format, strict,
        named ``causes``), or a complete ``response_format`` object; None (default) asks for plain text.
    progress : bool, optional
        False: none; True: a bar in a terminal, else log lines; None (default): the same, but the
        bar only for more than one chunk.  ``progress_interval`` (attribute, 30 s): seconds between
        log lines.
    """

    progress_interval: float = 30.0

    def __init__(self, base_url: str | Sequence[str], model: str, api_key_env: str | None = None, cache=None,
                 concurrency: int = 8,
                 max_retries: int = 5, timeout: float = 60.0, *, temperature: float = 0.0, max_tokens: int = 256,
                 seed: int | None = None, connect_timeout: float = 10.0, backoff_base: float = 0.5,
                 backoff_max: float = 30.0, max_response: int = 8 << 20, verify_tls: bool = True,
                 chunk_size: int | None = None, replay: bool = False, progress: bool | None = None,
                 price_per_million: tuple[float, float] = (0.0, 0.0), response_format: dict | None = None,
                 requests_per_minute: float | None = None, tokens_per_minute: float | None = None):
        urls = [base_url] if isinstance(base_url, str) else list(base_url) if isinstance(base_url, (list, tuple)) \
            else None
        if not urls:
            raise ValueError(f"base_url must be a URL or a non-empty list of URLs, got {base_url!r}")
        for url in urls:
            _check_url(url)
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        _check_common(max_retries, timeout, api_key_env)
        for name, limit in (("requests_per_minute", requests_per_minute), ("tokens_per_minute", tokens_per_minute)):
            if limit is not None and not 0 < limit < float("inf"):
                raise ValueError(f"{name} must be None or a number > 0, got {limit!r}")
        self.base_urls = [url.rstrip("/") for url in urls]
        self.base_url = self.base_urls[0] if isinstance(base_url, str) else list(self.base_urls)
        self.model = model
        self.api_key_env = api_key_env
        self.cache = AnswerCache(cache) if isinstance(cache, (str, os.PathLike)) else cache
        self.concurrency, self.max_retries, self.timeout = int(concurrency), int(max_retries), float(timeout)
        self.connect_timeout, self.backoff_base, self.backoff_max = connect_timeout, backoff_base, backoff_max
        self.max_response, self.verify_tls = int(max_response), bool(verify_tls)
        self.requests_per_minute = None if requests_per_minute is None else float(requests_per_minute)
        self.tokens_per_minute = None if tokens_per_minute is None else float(tokens_per_minute)
        self._pace = (0.0, 0.0)  # time.monotonic() from which the next start is due by each limit
        self.sampling: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens}
        if seed is not None:
            self.sampling["seed"] = seed
        # a chunk ends when its last request does: 16 waves of requests a chunk keep the wait for its last
        # backoffs (when no new request is left to send) a small part of its time
        self.chunk_size = chunk_size or max(16 * self.concurrency * len(self.base_urls), 16)
        self.replay = replay
        self.response_format = _response_format(response_format)
        self.progress = progress
        self._health = None  # per endpoint: (out until, time.monotonic(); take-outs; consecutive failures;
        #                     take-outs in a row for want of a connection)
        self.stats = RunStats(price_per_million=price_per_million,
                              endpoints=[EndpointStats(_shown_url(url)) for url in self.base_urls])

    @property
    def _params(self) -> dict:
        """What a request sends besides the model and messages (and what its cache key covers): the sampling
        parameters, and the response format when one is set (text requests keep their old keys)."""
        return with_format(self.sampling, self.response_format)

    def __repr__(self) -> str:
        return (f"ChatClient(base_url={self.base_url!r}, model={self.model!r}, "
                f"api_key_env={_env_name_shown(self.api_key_env, repr)}, concurrency={self.concurrency})")

    def _headers(self) -> list[str]:
        return ["Content-Type: application/json", "Accept: application/json", *auth_headers(self.api_key_env)]

    def _post(self, path: str, bodies: list[bytes], progress=None, answer=None, max_tokens: int = 0):
        """(results, interrupted), results[i] = (status, body, ok, done, attempts, error); adds the
        per-endpoint counts to ``self.stats.endpoints``.  ``max_tokens``: what a request counts against
        ``tokens_per_minute`` besides its body length / 4."""
        now = time.monotonic()
        health = None
        if self._health is not None:  # taken-out endpoints stay out from one chunk (and call) to the next
            health = [(max(0.0, until - now), *rest) for until, *rest in self._health]
        # the client-side rate limits carry over too: a new chunk does not start with a fresh budget
        rate = (self.requests_per_minute or 0.0, self.tokens_per_minute or 0.0, int(max_tokens),
                *(max(0.0, due - now) for due in self._pace))
        results, counts, health, interrupted, pace = _core.http_post_endpoints(
            self.base_urls, path, bodies, self._headers(), self.concurrency, self.timeout, self.connect_timeout,
            self.max_retries, self.backoff_base, self.backoff_max, self.max_response, self.verify_tls, 0x5eed,
            progress, 0, health, answer, rate)
        now = time.monotonic()
        self._health = [(now + out_for, *rest) for out_for, *rest in health]
        self._pace = tuple(now + wait for wait in pace)
        for mine, (sent, answered, failed, elsewhere, taken_out) in zip(self.stats.endpoints, counts):
            mine.sent += sent
            mine.answered += answered
            mine.failed += failed
            mine.retried_elsewhere += elsewhere
            mine.taken_out += taken_out
        return [r[:6] for r in results], interrupted

    def chat(self, requests: Sequence[list[dict]]) -> list[ChatResult]:
        """Answer every request (a list of ``{"role", "content"}`` messages), in order.

        Cached answers are returned without sending; the rest are sent with
        retries and cached as they arrive.  One failed request never raises.
        """
        requests = check_requests(requests)
        keys, results, todo = cached_results(self.cache, self.model, self._params, requests, self.stats)
        if todo and self.replay:
            raise ReplayMissError(f"replay mode: {len(todo)} of {len(requests)} requests are not in the cache "
                                  f"{self.cache.path if self.cache is not None else '(no cache)'}; run with a live backend first")
        self._send(requests, keys, todo, results)
        return results  # type: ignore[return-value]

    def _progress_mode(self, n: int) -> str | None:
        """'bar' (a terminal), 'log' (lines on stderr) or None for a batch of n requests to send."""
        if not n or self.progress is False:
            return None
        isatty = getattr(sys.stderr, "isatty", None)
        if not (isatty and isatty()):
            return "log"
        return "bar" if self.progress or n > self.chunk_size else None

    def _send(self, requests, keys, todo, results) -> None:
        progress = _Progress(self.stats, len(todo), self._progress_mode(len(todo)), self.progress_interval)
        redact = Redactor(self.api_key_env, self.base_urls)
        unknown_usage = set()
        pending = list(todo)
        tries = {i: 0 for i in todo}
        most_tries = (self.max_retries + 1) * len(self.base_urls)

        def cache_row(i, body, text, usage):
            return answer_row(keys[i], self.model, requests[i], self._params, body.decode("utf-8", errors="replace"),
                              text, usage)

        try:
            while pending:
                chunk, pending = pending[:self.chunk_size], pending[self.chunk_size:]
                bodies = [json.dumps(request_body(self.model, requests[i], self._params)).encode("utf-8")
                          for i in chunk]
                stored = set()

                def store_now(j, body, chunk=chunk, stored=stored):
                    # each answer is in the cache as soon as it arrives: a kill -9 loses none of them
                    i = chunk[j]
                    body = redact.body(body, count=False)  # counted when the chunk's replies are read
                    text, usage, problem = _parse_reply(body)
                    if problem is None:
                        self.cache.put_many([cache_row(i, body, text, usage)])
                        stored.add(i)

                replies, interrupted = self._post("/chat/completions", bodies,
                                                  progress.chunk_progress if progress.mode else None,
                                                  store_now if self.cache is not None else None,
                                                  self.sampling["max_tokens"])
                answered_before, failed_before = self.stats.misses, self.stats.failures
                rows, retry = [], []
                for i, (status, body, ok, done, attempts, error) in zip(chunk, replies):
                    tries[i] += max(attempts, 0)
                    if not done:
                        continue
                    body = redact.body(body)
                    if ok:
                        text, usage, problem = _parse_reply(body)
                        if problem is None:
                            if _usage_malformed(body, usage):
                                unknown_usage.add(i)
                            results[i] = ChatResult(text, None, False, usage, tries[i])
                            if i not in stored:
                                rows.append(cache_row(i, body, text, usage))
                            self.stats.misses += 1
                            self.stats.prompt_tokens += usage.get("prompt_tokens") or 0
                            self.stats.completion_tokens += usage.get("completion_tokens") or 0
                            continue
                        error = problem
                        if tries[i] < most_tries:
                            retry.append(i)
                            continue
                    detail = ""
                    if body and not ok:
                        detail = ": " + redact(body[:200].decode("utf-8", errors="replace"), False).replace(
                            "\n", " ")
                    results[i] = ChatResult(None, f"{redact(str(error), False)} after {tries[i]} attempt(s){detail}", False, {},
                                            tries[i])
                    self.stats.failures += 1
                if self.cache is not None and rows:
                    self.cache.put_many(rows)
                progress.chunk_done(self.stats.misses - answered_before, self.stats.failures - failed_before)
                if interrupted:
                    raise KeyboardInterrupt
                pending = retry + pending
        finally:
            self.stats.redacted += redact.count
            self.stats.unknown_usage += len(unknown_usage)
            progress.close()

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
    return with_format({"temperature": temperature, "max_tokens": max_tokens}, _response_format(response_format))
