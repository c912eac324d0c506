"""An OpenAI-compatible test server on 127.0.0.1 with canned abductions and injected faults.

Use it as a context manager::

    with TestServer(faults={"status_500": 2}) as server:
        client = ChatClient(server.base_url, "test")

``faults`` (all optional): ``latency`` (seconds per reply), ``status_429`` /
``status_500`` / ``status_400`` (the first N requests of each prompt get that
status; 429 carries ``Retry-After: retry_after``), ``malformed`` (first N get
invalid JSON), ``truncated`` (first N get a body shorter than its
Content-Length), ``reset`` (first N connections are closed without a reply),
``drip`` (seconds between the bytes of a reply).  ``server.counts`` says how
many requests each prompt received; ``server.total`` how many in all;
``server.answered`` how many successful (200, valid) replies each prompt got.
``server.kill()`` stops it abruptly, as a crashed server: open connections are
reset, requests being served get no reply, new connections are refused.

``python -m lamp.llm.testserver --port 8080`` serves it until Ctrl-C.
"""
from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["TestServer", "CANNED_REPLY"]

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
        content = server.reply(request) if callable(server.reply) else server.reply
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
