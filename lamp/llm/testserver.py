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
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

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


def _chat_answer(server, request: dict, raw: bytes) -> tuple[int, dict]:
    """The chat endpoint's answer to a parsed request (``raw``: its bytes): ``(status, JSON reply)``; a
    batch line is answered by the same function."""
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
    return 200, {"id": "test", "object": "chat.completion", "model": request.get("model"),
                 "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                              "finish_reason": "stop"}],
                 "usage": {"prompt_tokens": len(raw) // 4, "completion_tokens": len(content) // 4}}


_BATCH_ENDPOINT = "/v1/chat/completions"
_BATCH_LINE_ERROR = {"error": {"message": "injected line error (batch_line_errors)", "type": "server_error"}}


def _multipart(content_type: str, raw: bytes) -> dict[str, bytes] | None:
    """The fields of a multipart/form-data body (None when it is not one)."""
    m = re.search(r'boundary="?([^";]+)"?', content_type or "")
    if not content_type.startswith("multipart/form-data") or not m:
        return None
    fields = {}
    for part in raw.split(b"--" + m.group(1).encode())[1:]:
        if part.startswith(b"--"):
            break
        head, sep, value = part.partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]*)"', head)
        if not sep or not name:
            return None
        fields[name.group(1).decode()] = value[:-2] if value.endswith(b"\r\n") else value
    return fields


def _chosen(text: str, share: float) -> bool:
    """True for that share of the texts, chosen by a hash (the same texts every time)."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) < share * 16 ** 8


class _Batches:
    """The server's files and batch jobs (OpenAI's Files and Batch APIs), each batch processed by a thread:
    validating -> in_progress -> finalizing -> completed over ``batch_latency`` seconds, or failed, expired
    or cancelled."""

    def __init__(self, server):
        self.server = server
        self.files: dict[str, dict] = {}     # id -> {"object": file object, "content": bytes}
        self.jobs: dict[str, dict] = {}      # id -> batch object, in creation order
        self.lines_seen: dict[str, int] = {}  # custom_id -> times processed
        self.created = self.uploaded = 0

    def _new_file(self, content: bytes, filename: str, purpose: str) -> dict:
        file_id = "file-" + hashlib.sha256(f"{time.time_ns()}{len(self.files)}".encode()).hexdigest()[:24]
        obj = {"id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
               "filename": filename, "purpose": purpose, "status": "processed"}
        self.files[file_id] = {"object": obj, "content": content}
        return obj

    def upload(self, content_type: str, raw: bytes) -> tuple[int, dict]:
        fields = _multipart(content_type, raw)
        if fields is None or "file" not in fields:
            return 400, {"error": {"message": "expected multipart/form-data with a 'file' field"}}
        if fields.get("purpose") != b"batch":
            return 400, {"error": {"message": "purpose must be 'batch'"}}
        with self.server.lock:
            self.uploaded += 1
            return 200, self._new_file(fields["file"], "batch_input.jsonl", "batch")

    def create(self, request) -> tuple[int, dict]:
        if not isinstance(request, dict):
            return 400, {"error": {"message": "expected a JSON object"}}
        if request.get("endpoint") != _BATCH_ENDPOINT:
            return 400, {"error": {"message": f"endpoint must be {_BATCH_ENDPOINT}"}}
        if request.get("completion_window") != "24h":
            return 400, {"error": {"message": "completion_window must be '24h'"}}
        with self.server.lock:
            file = self.files.get(request.get("input_file_id"))
            if file is None or file["object"]["purpose"] != "batch":
                return 404, {"error": {"message": "no such input file"}}
            index = self.created
            self.created += 1
            now = int(time.time())
            batch_id = "batch_" + hashlib.sha256(f"{time.time_ns()}{index}".encode()).hexdigest()[:24]
            job = {"id": batch_id, "object": "batch", "endpoint": _BATCH_ENDPOINT, "errors": None,
                   "input_file_id": file["object"]["id"], "completion_window": "24h", "status": "validating",
                   "output_file_id": None, "error_file_id": None, "created_at": now, "in_progress_at": None,
                   "expires_at": now + 86400, "finalizing_at": None, "completed_at": None, "failed_at": None,
                   "expired_at": None, "cancelling_at": None, "cancelled_at": None,
                   "request_counts": {"total": 0, "completed": 0, "failed": 0},
                   "metadata": request.get("metadata")}
            self.jobs[batch_id] = job
            threading.Thread(target=self._run, args=(job, index, file["content"]), daemon=True).start()
            return 200, dict(job)

    def get(self, batch_id: str) -> tuple[int, dict]:
        with self.server.lock:
            job = self.jobs.get(batch_id)
            return (200, json.loads(json.dumps(job))) if job else (404, {"error": {"message": "no such batch"}})

    def listing(self, query: dict) -> tuple[int, dict]:
        with self.server.lock:
            jobs = list(reversed(list(self.jobs.values())))
            after = query.get("after", [None])[0]
            if after in self.jobs:
                jobs = jobs[[j["id"] for j in jobs].index(after) + 1:]
            limit = max(1, min(100, int(query.get("limit", ["20"])[0])))
            page = json.loads(json.dumps(jobs[:limit]))
        return 200, {"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
                     "last_id": page[-1]["id"] if page else None, "has_more": len(jobs) > limit}

    def cancel(self, batch_id: str) -> tuple[int, dict]:
        with self.server.lock:
            job = self.jobs.get(batch_id)
            if job is None:
                return 404, {"error": {"message": "no such batch"}}
            if job["status"] not in ("validating", "in_progress", "finalizing"):
                return 400, {"error": {"message": f"cannot cancel a batch with status '{job['status']}'"}}
            job["status"], job["cancelling_at"] = "cancelling", int(time.time())
            return 200, dict(job)

    def content(self, file_id: str) -> bytes | None:
        with self.server.lock:
            file = self.files.get(file_id)
            return file["content"] if file else None

    def _set(self, job: dict, **fields) -> bool:
        """Updates the job unless it is being cancelled; False when it is."""
        with self.server.lock:
            if job["status"] == "cancelling":
                return False
            job.update(fields)
            return True

    @staticmethod
    def _validate(content: bytes) -> tuple[list[dict], list[dict]]:
        """(lines, errors) of an input file."""
        lines, errors, ids, models = [], [], set(), set()
        for k, text in enumerate(content.decode("utf-8", errors="replace").splitlines(), 1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except ValueError:
                errors.append({"code": "invalid_json_line", "message": "the line is not valid JSON", "line": k})
                continue
            body = line.get("body") if isinstance(line, dict) else None
            if not isinstance(body, dict) or not isinstance(line.get("custom_id"), str) \
                    or line.get("method") != "POST" or line.get("url") != _BATCH_ENDPOINT:
                errors.append({"code": "invalid_request", "message": "each line needs custom_id, method POST, "
                               f"url {_BATCH_ENDPOINT} and a body object", "line": k})
            elif line["custom_id"] in ids:
                errors.append({"code": "duplicate_custom_id", "message": "custom_id is not unique", "line": k})
            else:
                ids.add(line["custom_id"])
                models.add(body.get("model"))
                lines.append(line)
        if len(models) > 1:
            errors.append({"code": "mismatched_model", "message": "a batch holds one model", "line": None})
        if not lines and not errors:
            errors.append({"code": "empty_file", "message": "the input file has no requests", "line": None})
        return lines, errors

    def _run(self, job: dict, index: int, content: bytes) -> None:
        server, faults = self.server, self.server.faults
        latency = float(faults.get("batch_latency", 0.2))
        time.sleep(latency * 0.2)
        lines, errors = self._validate(content)
        if index < faults.get("batch_fail", 0):
            errors = [{"code": "invalid_request", "message": "injected batch failure (batch_fail)", "line": 1}]
        if errors:
            self._set(job, status="failed", failed_at=int(time.time()),
                      errors={"object": "list", "data": [{"param": None, **e} for e in errors]})
            return
        if not self._set(job, status="in_progress", in_progress_at=int(time.time()),
                         request_counts={"total": len(lines), "completed": 0, "failed": 0}):
            return self._finish(job, [], [], "cancelled")
        expire = index < faults.get("batch_expire", 0)
        stop = int(len(lines) * faults.get("batch_expire_share", 0.5)) if expire else len(lines)
        out, err, status = [], [], "completed"
        for k, line in enumerate(lines):
            if k >= stop:
                status = "expired"
                err += [{"id": f"batch_req_{index}_{j}", "custom_id": rest["custom_id"], "response": None,
                         "error": {"code": "batch_expired", "message": "This request could not be executed before "
                                   "the completion window expired."}} for j, rest in enumerate(lines[k:], k)]
                break
            time.sleep(latency * 0.6 / len(lines))
            with server.lock:
                seen = self.lines_seen.get(line["custom_id"], 0)
                self.lines_seen[line["custom_id"]] = seen + 1
            code, reply = _chat_answer(server, line["body"], json.dumps(line["body"]).encode())
            if code == 200 and not seen and _chosen(line["custom_id"], faults.get("batch_line_errors", 0)):
                code, reply = 500, _BATCH_LINE_ERROR
            (out if code == 200 else err).append(
                {"id": f"batch_req_{index}_{k}", "custom_id": line["custom_id"],
                 "response": {"status_code": code, "request_id": f"req_{index}_{k}", "body": reply}, "error": None})
            with server.lock:
                job["request_counts"]["completed" if code == 200 else "failed"] += 1
                if job["status"] == "cancelling":
                    status = "cancelled"
                    break
        if status == "completed" and not self._set(job, status="finalizing", finalizing_at=int(time.time())):
            status = "cancelled"
        time.sleep(latency * 0.2)
        self._finish(job, out, err, status)

    def _finish(self, job: dict, out: list, err: list, status: str) -> None:
        with self.server.lock:
            for lines, field in ((out, "output_file_id"), (err, "error_file_id")):
                if lines:
                    content = "".join(json.dumps(line) + "\n" for line in lines).encode()
                    job[field] = self._new_file(content, f"{job['id']}_{field[:-8]}.jsonl", "batch_output")["id"]
            job["status"] = status
            job[{"completed": "completed_at", "expired": "expired_at", "cancelled": "cancelled_at"}[status]] = \
                int(time.time())


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

    def _reply(self, status: int, body: bytes, headers: dict | None = None, declared: int | None = None,
               content_type: str = "application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
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
        status, reply = _chat_answer(server, request, raw)
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
        self.httpd.batches = _Batches(self.httpd)
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
