"""An OpenAI-compatible test server on 127.0.0.1 with canned abductions and injected faults.

Use it as a context manager::

    with TestServer(faults={"status_500": 2}) as server:
        client = ChatClient(server.base_url, "test")

``faults`` (all optional): ``latency`` (seconds per reply), ``status_429`` /
``status_500`` / ``status_400`` (the first N requests of each prompt get that
status; 429 carries ``Retry-After: retry_after``), ``malformed`` (first N get
invalid JSON), ``truncated`` (first N get a body shorter than its
Content-Length), ``reset`` (first N connections are closed without a reply),
``status_400_share`` (that share of the prompts, chosen by a hash of the request, get 400 every time),
``drip`` (seconds between the bytes of a reply).  ``server.counts`` says how
many requests each prompt received; ``server.total`` how many in all;
``server.answered`` how many successful (200, valid) replies each prompt got.
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

``python -m lamp.llm.testserver --port 8080`` serves it until Ctrl-C.
"""
from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["TestServer", "CANNED_REPLY", "CANNED_CAUSES", "response_format_problem", "schema_instance"]

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


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output quiet
        pass

    def setup(self):
        super().setup()
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

    def _reply(self, status: int, body: bytes, headers: dict | None = None, declared: int | None = None):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(declared if declared is not None else len(body)))
        for k, v in (headers or {}).items():
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
        if self.path.rstrip("/").endswith("/models"):
            self._reply(200, json.dumps({"object": "list", "data": [{"id": "test", "object": "model"}]}).encode())
        else:
            self._reply(404, b'{"error": "not found"}')

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        server = self.server
        with server.lock:
            server.total += 1
            server.headers_seen.append(dict(self.headers))
            key = hashlib.sha256(raw).hexdigest()
            n = server.counts.get(key, 0)
            server.counts[key] = n + 1
        faults = server.faults
        if faults.get("latency"):
            time.sleep(faults["latency"])
        if server.killed or n < faults.get("reset", 0):
            self._reset()
            return
        if int(key[:8], 16) < faults.get("status_400_share", 0) * 16 ** 8:  # the same prompts fail every time
            self._reply(400, json.dumps({"error": {"message": "injected 400 (status_400_share)"}}).encode())
            return
        for status in (429, 500, 400):
            if n < faults.get(f"status_{status}", 0):
                headers = {"Retry-After": str(faults.get("retry_after", 0))} if status == 429 else {}
                self._reply(status, json.dumps({"error": {"message": f"injected {status}"}}).encode(), headers)
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
        fmt = request.get("response_format") if isinstance(request, dict) else None
        if isinstance(request, dict) and "response_format" in request:
            problem = response_format_problem(fmt)
            if problem:
                self._reply(400, json.dumps({"error": {"message": f"Invalid response_format: {problem}",
                                                       "type": "invalid_request_error"}}).encode())
                return
        if callable(server.reply):
            content = server.reply(request)
        elif server.reply is CANNED_REPLY and fmt and fmt["type"] == "json_schema":
            content = json.dumps(schema_instance(fmt["json_schema"]["schema"]))
        elif server.reply is CANNED_REPLY and fmt and fmt["type"] == "json_object":
            content = json.dumps({"causes": [{"event_type": c["relation"], "subject_name": c["subject"],
                                              "object_name": c["object"], "time": c["time"]} for c in CANNED_CAUSES]})
        else:
            content = server.reply
        body = json.dumps({"id": "test", "object": "chat.completion", "model": request.get("model"),
                           "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                        "finish_reason": "stop"}],
                           "usage": {"prompt_tokens": len(raw) // 4, "completion_tokens": len(content) // 4}}).encode()
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


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default backlog of 5 drops concurrent connects (a 1 s SYN retry)


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
        self.httpd.connections = set()
        self.httpd.killed = False
        self.httpd.stopped = False
        self.httpd.lock = threading.Lock()
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
