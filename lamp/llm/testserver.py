"""An OpenAI-compatible test server on 127.0.0.1 with canned abductions and injected faults.

Use it as a context manager::

    with TestServer(faults={"status_500": 2}) as server:
        client = ChatClient(server.base_url, "test")

``faults`` (all optional): ``latency`` (seconds per reply), ``status_429`` /
``status_500`` / ``status_400`` (the first N requests of each prompt get that
status, in that order: ``{"status_429": 1, "status_500": 1}`` answers each new
prompt 429, then 500, then 200; a 429 carries ``Retry-After: retry_after``),
``status_429_share`` (that share of the prompts, chosen by a hash of the request,
get a 429 with ``Retry-After: retry_after`` the first time they are seen),
``malformed`` (first N get invalid JSON), ``truncated`` (first N get a body
shorter than its Content-Length), ``reset`` (first N connections are closed
without a reply), ``status_400_share`` (that share of the prompts, chosen by a
hash of the request, get 400 every time), ``drip`` (seconds between the bytes
of a reply), ``ratelimit_requests`` (a quota as OpenAI's: that many POSTs per
window of ``ratelimit_window`` seconds (1), each reply carrying
``x-ratelimit-limit-requests``, ``x-ratelimit-remaining-requests`` and
``x-ratelimit-reset-requests`` (e.g. ``250ms``); a POST over the quota gets a
429 with ``x-ratelimit-remaining-requests: 0`` and no Retry-After), and two
faults of a hostile server: ``echo_headers`` (every request header appended to
the reply text, an ``Authorization`` key included) and ``usage`` (the reply's
``usage`` object replaced by the given value, e.g. ``{"prompt_tokens": "n/a"}``).
``server.counts`` says how many requests each prompt received; ``server.total``
how many in all; ``server.answered`` how many successful (200, valid) replies
each prompt got; ``server.arrivals`` one ``(time.monotonic(), status, key)`` per
POST, in order of arrival, with the status it was answered (0: no reply) and
the SHA-256 of its body (the key of ``counts``).
``server.kill()`` stops it abruptly, as a crashed server: open connections are
reset, requests being served get no reply, new connections are refused.

Structured output: a request with a ``response_format`` is checked the way
OpenAI checks it (``{"type": "text" | "json_object" | "json_schema"}``; a
``json_schema`` needs a ``name`` of up to 64 letters, digits, ``_`` or ``-`` and
a ``schema`` object whose every node has a known ``type``; with ``strict: true``
every object lists all its properties in ``required`` and sets
``additionalProperties: false``); a malformed one gets HTTP 400.  A valid one is
answered with JSON that conforms to the schema, filled with the canned causes
(field names with type/relation/predicate/category, subject, object, time/date,
title, summary get those values) — unless the server was given its own ``reply``,
which is sent as is.  ``server.requests`` holds every parsed request body.

Batch jobs (OpenAI's Files and Batch APIs): ``POST /v1/files`` (multipart, ``purpose=batch``), ``GET
/v1/files/{id}/content``, ``POST /v1/batches``, ``GET /v1/batches/{id}``, ``GET /v1/batches`` (newest first,
``limit`` and ``after``), ``POST /v1/batches/{id}/cancel``.  A batch is processed in the background:
``validating`` -> ``in_progress`` -> ``finalizing`` -> ``completed`` over ``batch_latency`` seconds (0.2),
each line answered like the chat endpoint answers it (the same canned reply, structured output and 400 for a
bad ``response_format``; answers in the output file, non-200 lines in the error file); an input file with a
bad line (not JSON, no ``custom_id``, a repeated ``custom_id``, another method or URL, two models) makes a
``failed`` batch with an ``errors`` list.  Faults: ``batch_fail`` (the first N batches end ``failed``),
``batch_expire`` (the first N batches end ``expired`` once ``batch_expire_share`` (0.5) of their lines are
answered; the others are ``batch_expired`` lines of the error file), ``batch_line_errors`` (that share of the
lines, chosen by a hash of the ``custom_id``, get a 500 line in the error file the first time they are
processed).  The POST faults above apply to the batch API's POSTs too (each body counts as a prompt).
``server.batches_created`` and ``server.files_uploaded`` count the accepted creations and uploads;
``server.batches`` holds a copy of every batch object.

``python -m lamp.llm.testserver --port 8080`` serves it until Ctrl-C.
"""
from __future__ import annotations

import hashlib
import json
import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from lamp.llm.testserver_batch import Batches
from lamp.llm.testserver_replies import CANNED_CAUSES, CANNED_REPLY, chat_answer, response_format_problem, schema_instance

__all__ = ["TestServer", "CANNED_REPLY", "CANNED_CAUSES", "response_format_problem", "schema_instance"]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output quiet
        pass

    def setup(self):
        super().setup()
        # a reply is written in two parts (headers, body): without TCP_NODELAY, Nagle's algorithm holds the body
        # back until the client acknowledges the headers, up to its delayed-ACK time (40 ms) on a kept-alive
        # connection; servers in use (vLLM's uvicorn, asyncio's transports) set it
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.lock:
            self.server.connections.add(self.connection)

    def finish(self):
        with self.server.lock:
            self.server.connections.discard(self.connection)
        try:
            super().finish()
        except OSError:  # reset by kill()
            pass

    def _reset(self):
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.close_connection = True
        self.connection.close()

    extra_headers: dict = {}  # the rate-limit headers of the POST being answered
    arrival = -1               # its index in server.arrivals

    def _reply(self, status: int, body: bytes, headers: dict | None = None, declared: int | None = None,
               content_type: str = "application/json"):
        if self.arrival >= 0:
            with self.server.lock:
                at, _, key = self.server.arrivals[self.arrival]
                self.server.arrivals[self.arrival] = (at, status, key)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(declared if declared is not None else len(body)))
        for k, v in {**self.extra_headers, **(headers or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        drip = self.server.faults.get("drip", 0)
        if drip:
            for i in range(len(body)):
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
                time.sleep(drip)
        else:
            self.wfile.write(body)

    def do_GET(self):
        self.extra_headers, self.arrival = {}, -1
        url = urlsplit(self.path)
        path = url.path.rstrip("/")
        batches = self.server.batches
        m = re.fullmatch(r"/v1/files/([^/]+)/content", path)
        if path.endswith("/models"):
            self._reply(200, json.dumps({"object": "list", "data": [{"id": "test", "object": "model"}]}).encode())
        elif m:
            content = batches.content(m.group(1))
            if content is None:
                self._reply(404, b'{"error": {"message": "no such file"}}')
            else:
                self._reply(200, content, content_type="application/jsonl")
        elif path == "/v1/batches":
            self._reply(*self._json(*batches.listing(parse_qs(url.query))))
        elif re.fullmatch(r"/v1/batches/[^/]+", path):
            self._reply(*self._json(*batches.get(path.rsplit("/", 1)[1])))
        else:
            self._reply(404, b'{"error": "not found"}')

    @staticmethod
    def _json(status: int, reply: dict) -> tuple[int, bytes]:
        return status, json.dumps(reply).encode()

    def _batch_api(self, path: str, raw: bytes) -> bool:
        """Answers a request of the Files or Batch API; False when the path is not one."""
        batches = self.server.batches
        m = re.fullmatch(r"/v1/batches/([^/]+)/cancel", path)
        if path == "/v1/files":
            self._reply(*self._json(*batches.upload(self.headers.get("Content-Type", ""), raw)))
        elif m:
            self._reply(*self._json(*batches.cancel(m.group(1))))
        elif path == "/v1/batches":
            try:
                request = json.loads(raw)
            except ValueError:
                request = None
            self._reply(*self._json(*batches.create(request)))
        else:
            return False
        return True

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        server = self.server
        faults = server.faults
        with server.lock:
            server.total += 1
            server.headers_seen.append(dict(self.headers))
            key = hashlib.sha256(raw).hexdigest()
            n = server.counts.get(key, 0)
            server.counts[key] = n + 1
            arrival = len(server.arrivals)
            server.arrivals.append((time.monotonic(), 0, key))
            over_quota, self.extra_headers = _quota(server, faults)
        self.arrival = arrival
        if faults.get("latency"):
            time.sleep(faults["latency"])
        if server.killed or n < faults.get("reset", 0):
            self._reset()
            return
        if over_quota:
            self._reply(429, json.dumps({"error": {"message": "injected 429 (ratelimit_requests)"}}).encode())
            return
        if int(key[:8], 16) < faults.get("status_400_share", 0) * 16 ** 8:  # the same prompts fail every time
            self._reply(400, json.dumps({"error": {"message": "injected 400 (status_400_share)"}}).encode())
            return
        retry_after = {"Retry-After": str(faults.get("retry_after", 0))}
        if n == 0 and int(key[8:16], 16) < faults.get("status_429_share", 0) * 16 ** 8:
            self._reply(429, json.dumps({"error": {"message": "injected 429 (status_429_share)"}}).encode(),
                        retry_after)
            return
        first = n
        for status in (429, 500, 400):  # in turn: the first status_429 requests get 429, the next status_500 ...
            if first < faults.get(f"status_{status}", 0):
                self._reply(status, json.dumps({"error": {"message": f"injected {status}"}}).encode(),
                            retry_after if status == 429 else {})
                return
            first -= faults.get(f"status_{status}", 0)
        if self._batch_api(urlsplit(self.path).path.rstrip("/"), raw):
            return
        if n < faults.get("malformed", 0):
            self._reply(200, b'{"choices": [ this is not json')
            return
        try:
            request = json.loads(raw)
        except ValueError:
            self._reply(400, b'{"error": "bad json"}')
            return
        if self.path.rstrip("/").endswith("/embeddings"):
            text = str(request.get("input", ""))
            vec = [float(b) / 255.0 for b in hashlib.sha256(text.encode()).digest()[:8]]
            self._reply(200, json.dumps({"data": [{"embedding": vec, "index": 0}]}).encode())
            return
        with server.lock:
            server.requests.append(request)
        status, reply = chat_answer(server, request, raw, dict(self.headers))
        if status != 200:
            self._reply(status, json.dumps(reply).encode())
            return
        body = json.dumps(reply).encode()
        if n < faults.get("truncated", 0):
            self._reply(200, body[: len(body) // 2], declared=len(body))
            self.close_connection = True
            return
        if faults.get("drip"):
            with server.lock:
                server.answered[key] = server.answered.get(key, 0) + 1
            self._reply(200, body)
            return
        with server.lock:  # counted and written together: kill() cannot fall between the two
            if server.killed:
                self._reset()
                return
            server.answered[key] = server.answered.get(key, 0) + 1
            self._reply(200, body)


def _quota(server, faults) -> tuple[bool, dict]:
    """With the ``ratelimit_requests`` fault: (whether this POST is over the quota of its window, the
    x-ratelimit headers of its reply); called under the server's lock."""
    limit = faults.get("ratelimit_requests")
    if not limit:
        return False, {}
    window = faults.get("ratelimit_window", 1.0)
    now = time.monotonic()
    start, used = server.quota
    if now - start >= window:
        start, used = start + (now - start) // window * window, 0
    used += 1
    server.quota = (start, used)
    reset_ms = max(1, int(round((start + window - now) * 1000)))
    return used > limit, {"x-ratelimit-limit-requests": str(limit),
                          "x-ratelimit-remaining-requests": str(max(0, limit - used)),
                          "x-ratelimit-reset-requests": f"{reset_ms}ms"}


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default backlog of 5 drops concurrent connects (a 1 s SYN retry)

    def handle_error(self, request, client_address):
        # a client that went away (a stopped batch, a killed run) is no fault of the server: say nothing
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class TestServer:
    """The server, started on a free port of 127.0.0.1 in a background thread."""

    __test__ = False  # not a pytest test class

    def __init__(self, faults: dict | None = None, reply=CANNED_REPLY, port: int = 0):
        self.httpd = _Server(("127.0.0.1", port), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.faults = dict(faults or {})
        self.httpd.reply = reply
        self.httpd.counts = {}
        self.httpd.total = 0
        self.httpd.headers_seen = []
        self.httpd.requests = []
        self.httpd.answered = {}
        self.httpd.arrivals = []
        self.httpd.quota = (time.monotonic(), 0)  # the ratelimit_requests window: its start, the POSTs in it
        self.httpd.connections = set()
        self.httpd.killed = False
        self.httpd.stopped = False
        self.httpd.lock = threading.RLock()  # _reply takes it too, also when called under it
        self.httpd.batches = Batches(self.httpd)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    @property
    def counts(self) -> dict:
        return self.httpd.counts

    @property
    def total(self) -> int:
        return self.httpd.total

    @property
    def requests(self) -> list:
        return self.httpd.requests

    @property
    def headers_seen(self) -> list:
        return self.httpd.headers_seen

    @property
    def answered(self) -> dict:
        return self.httpd.answered

    @property
    def arrivals(self) -> list[tuple[float, int, str]]:
        """``(time.monotonic(), status, key)`` of every POST, in order of arrival (status 0: not answered yet
        or reset; key: the SHA-256 of its body)."""
        with self.httpd.lock:
            return list(self.httpd.arrivals)

    @property
    def batches_created(self) -> int:
        """Batch jobs created (``POST /v1/batches`` accepted)."""
        return self.httpd.batches.created

    @property
    def files_uploaded(self) -> int:
        """Files uploaded (``POST /v1/files`` accepted)."""
        return self.httpd.batches.uploaded

    @property
    def batches(self) -> list[dict]:
        """A copy of every batch object, in creation order."""
        with self.httpd.lock:
            return json.loads(json.dumps(list(self.httpd.batches.jobs.values())))

    def kill(self) -> None:
        """Stops abruptly: no more replies, open connections reset, then the listening socket closed."""
        with self.httpd.lock:
            self.httpd.killed = True
            for conn in list(self.httpd.connections):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.stop()

    def start(self) -> "TestServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        if not self.httpd.stopped:
            self.httpd.stopped = True
            self.httpd.shutdown()
            self.httpd.server_close()

    def __enter__(self) -> "TestServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="OpenAI-compatible test server with fault injection")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--faults", default="{}", help='JSON, e.g. {"status_500": 1, "latency": 0.05}')
    args = parser.parse_args(argv)
    server = TestServer(json.loads(args.faults), port=args.port).start()
    print(f"serving {server.base_url} (Ctrl-C stops)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
