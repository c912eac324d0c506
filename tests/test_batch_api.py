"""Batch jobs (OpenAI's Batch API) through BatchClient: the chat contract, retries of failed lines, kill and
resume without submitting anything twice, secrets, bad input; the test server's Files and Batch APIs."""
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from lamp.abduction import cause_list_schema
from lamp.llm import AnswerCache, ChatClient, LLMError, request_key
from lamp.llm.batch import BatchClient
from lamp.llm.client import request_params
from lamp.llm.testserver import CANNED_REPLY, TestServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = {"batch_latency": 0.1}


def _requests(n, tag="q"):
    return [[{"role": "user", "content": f"{tag}{i}"}] for i in range(n)]


def _client(server, tmp_path, lines=None, **kw):
    kw.setdefault("poll_interval", 0.02)
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("backoff_max", 0.05)
    kw.setdefault("say", (lines if lines is not None else []).append)
    return BatchClient(server.base_url, "test", cache=str(tmp_path / "cache.sqlite"), state_dir=tmp_path / "state",
                       **kw)


def _rows(path):
    with sqlite3.connect(path) as db:
        return sorted(db.execute("SELECT key, model, request, reply, text, prompt_tokens, completion_tokens "
                                 "FROM answers").fetchall())


def _input_lines(server, batch):
    return [json.loads(line) for line in server.httpd.batches.content(batch["input_file_id"]).splitlines()]


@pytest.mark.parametrize("schema", [False, True])
def test_answers_and_cache_rows_are_those_of_the_chat_endpoint(tmp_path, schema):
    fmt = cause_list_schema() if schema else None
    requests = _requests(5) + _requests(2)  # two asked twice: sent once
    lines = []
    with TestServer(faults=FAST) as server:
        results = _client(server, tmp_path, lines, response_format=fmt).chat(requests)
        chat = ChatClient(server.base_url, "test", cache=str(tmp_path / "chat.sqlite"), response_format=fmt)
        direct = chat.chat(requests)
        assert server.batches_created == 1 and server.files_uploaded == 1
        batch = server.batches[0]
        sent = _input_lines(server, batch)
    assert [r.text for r in results] == [r.text for r in direct] and all(r.error is None for r in results)
    assert not schema or json.loads(results[0].text)["causes"]
    assert [r.cached for r in results] == [False] * 7 and all(r.usage["prompt_tokens"] for r in results)
    # the rows ChatClient writes, field for field
    assert _rows(tmp_path / "cache.sqlite") == _rows(tmp_path / "chat.sqlite")
    assert len(_rows(tmp_path / "chat.sqlite")) == 5
    # each line: the request key, POST to the chat endpoint, the body ChatClient sent
    params = request_params(0.0, 256, fmt)
    assert [line["custom_id"] for line in sent] == [request_key("test", m, params) for m in requests[:5]]
    assert all(line["method"] == "POST" and line["url"] == "/v1/chat/completions" for line in sent)
    assert sorted(json.dumps(line["body"]) for line in sent) == sorted({json.dumps(r) for r in server.requests})
    assert batch["metadata"]["created_by"] == "lamp" and batch["completion_window"] == "24h"
    # a replay client (and a second call) read the batch answers as cached answers
    replay = ChatClient("http://127.0.0.1:9/v1", "test", cache=str(tmp_path / "cache.sqlite"), replay=True,
                        response_format=fmt).chat(requests)
    assert all(r.cached for r in replay) and [r.text for r in replay] == [r.text for r in results]
    with TestServer(faults=FAST) as server:
        again = _client(server, tmp_path, response_format=fmt).chat(requests)
        assert server.batches_created == 0 and all(r.cached for r in again)
    # progress: an event per step, a line per poll with status, counts and time
    assert any("uploaded 5 requests" in line for line in lines) and any("created batch_" in line for line in lines)
    polls = [line for line in lines if "elapsed" in line]
    assert polls and all("/5 completed" in line for line in polls)


def test_progress_goes_to_stderr_by_default(tmp_path, capsys):
    with TestServer(faults={"batch_latency": 0.3}) as server:
        client = _client(server, tmp_path, say=None)
        client.progress_interval = 0.0  # no terminal here: poll lines at most this often
        client.chat(_requests(3))
    err = capsys.readouterr().err
    assert "[lamp] LLM batch: uploaded 3 requests" in err and "/3 completed" in err and "elapsed" in err


def test_expired_batch_uses_its_partial_output_and_resubmits_the_rest_once(tmp_path):
    with TestServer(faults={**FAST, "batch_expire": 1, "batch_expire_share": 0.5}) as server:
        results = _client(server, tmp_path).chat(_requests(6))
        assert server.batches_created == 2
        first, second = server.batches
    assert first["status"] == "expired" and second["status"] == "completed"
    assert second["request_counts"]["total"] == 3
    assert all(r.text == CANNED_REPLY for r in results)
    assert [r.attempts for r in results] == [1, 1, 1, 2, 2, 2]


def test_failed_batch_reports_the_server_message_and_caches_nothing(tmp_path):
    with TestServer(faults={**FAST, "batch_fail": 5}) as server:
        results = _client(server, tmp_path, max_retries=2).chat(_requests(4))
        assert server.batches_created == 1  # a refused file is not sent again
    assert all(r.text is None and "injected batch failure (batch_fail)" in r.error for r in results)
    assert all(request_key("test", _requests(4)[0], request_params(0.0, 256)) not in r.error for r in results)
    assert len(AnswerCache(tmp_path / "cache.sqlite")) == 0


def test_line_errors_go_out_again_as_a_smaller_batch(tmp_path):
    faults = {**FAST, "batch_line_errors": 0.5}
    with TestServer(faults=faults) as server:
        results = _client(server, tmp_path, max_retries=1).chat(_requests(12))
        sizes = [b["request_counts"]["total"] for b in server.batches]
    assert all(r.text == CANNED_REPLY for r in results)
    assert len(sizes) == 2 and sizes[0] == 12 and 0 < sizes[1] < 12
    assert sum(r.attempts == 2 for r in results) == sizes[1]
    # without retry rounds the same lines are reported, the others answered
    with TestServer(faults=faults) as server:
        results = _client(server, tmp_path / "b", max_retries=0).chat(_requests(12))
        assert server.batches_created == 1
    failed = [r for r in results if r.error]
    assert len(failed) == sizes[1] and all("injected line error" in r.error and r.text is None for r in failed)
    assert sum(r.text == CANNED_REPLY for r in results) == 12 - sizes[1]


def test_a_bad_line_answered_400_is_final_at_once(tmp_path):
    bad = {"type": "json_schema", "json_schema": {"name": "bad name!", "schema": {"type": "object"}}}
    with TestServer(faults=FAST) as server:
        results = _client(server, tmp_path, max_retries=2, response_format=bad).chat(_requests(2))
        assert server.batches_created == 1
    assert all("HTTP 400" in r.error and "Invalid response_format" in r.error for r in results)


def test_large_jobs_are_split_at_max_requests_per_batch(tmp_path):
    with TestServer(faults=FAST) as server:
        results = _client(server, tmp_path, max_requests_per_batch=3).chat(_requests(7))
        assert [b["request_counts"]["total"] for b in server.batches] == [3, 3, 1]
        assert server.files_uploaded == 3
    assert all(r.text == CANNED_REPLY for r in results)


def test_control_calls_are_retried_and_a_batch_is_created_once(tmp_path):
    # every POST body gets a 500, then a 429 with Retry-After, before it succeeds: the upload is retried by the
    # transport; the creation is retried only after the list of batches shows that it was not made
    with TestServer(faults={**FAST, "status_500": 1, "status_429": 2, "retry_after": 0}) as server:
        results = _client(server, tmp_path).chat(_requests(3))
        assert server.batches_created == 1 and server.files_uploaded == 1
    assert all(r.text == CANNED_REPLY for r in results)


_WORKER = textwrap.dedent("""
    import os, signal, sys
    from lamp.llm.batch import BatchClient
    url, cache, state, mode, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    die = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
    if mode == "after_upload":  # killed once the input file id is in the state, before the batch is created
        BatchClient._create = die
    elif mode == "after_create":  # killed when the server made the batch, before its id is in the state
        real = BatchClient._json
        def json_then_die(self, method, path, *args, **kw):
            out = real(self, method, path, *args, **kw)
            if (method, path) == ("POST", "/batches"):
                die()
            return out
        BatchClient._json = json_then_die
    client = BatchClient(url, "test", cache=cache, state_dir=state, poll_interval=0.05, say=print)
    client.chat([[{"role": "user", "content": f"k{i}"}] for i in range(n)])
    print("done", flush=True)
""")


def _state(tmp_path):
    try:
        with open(tmp_path / "state" / "batch_state.json", encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


@pytest.mark.parametrize("mode", ["polling", "after_upload", "after_create"])
def test_killed_run_resumes_and_submits_nothing_twice(tmp_path, mode):
    latency = 1.5 if mode == "polling" else 0.1
    with TestServer(faults={"batch_latency": latency}) as server:
        proc = subprocess.Popen([sys.executable, "-c", _WORKER, server.base_url, str(tmp_path / "cache.sqlite"),
                                 str(tmp_path / "state"), mode, "8"], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        if mode == "polling":
            deadline = time.time() + 30
            while time.time() < deadline and not (_state(tmp_path) and _state(tmp_path)["jobs"][0]["batch_id"]):
                time.sleep(0.02)
            proc.kill()
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == -9 and "done" not in out, err
        state = _state(tmp_path)
        job = state["jobs"][0]
        assert job["input_file_id"] and (job["batch_id"] is None) == (mode != "polling")
        assert server.batches_created == (0 if mode == "after_upload" else 1)
        if mode == "polling":
            assert server.batches[0]["status"] in ("validating", "in_progress")
        lines = []
        results = _client(server, tmp_path, lines).chat(_requests(8, "k"))
        assert server.batches_created == 1 and server.files_uploaded == 1
    assert all(r.text == CANNED_REPLY and not r.cached for r in results)
    expected = {"polling": "resuming", "after_upload": "created", "after_create": "adopted"}[mode]
    assert any(expected in line for line in lines), lines
    assert len(AnswerCache(tmp_path / "cache.sqlite")) == 8
    job = _state(tmp_path)["jobs"][0]
    assert job["done"] and job["requests"] == 8 and not job["custom_ids"]  # an ended job keeps no ids ...
    assert not os.path.exists(tmp_path / "state" / job["file"])  # ... nor its input file


def test_cancelled_batch_gives_its_partial_output_and_the_rest_goes_out_again(tmp_path):
    with TestServer(faults={"batch_latency": 3.0}) as server:
        proc = subprocess.Popen([sys.executable, "-c", _WORKER, server.base_url, str(tmp_path / "cache.sqlite"),
                                 str(tmp_path / "state"), "polling", "40"], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 30
        while time.time() < deadline and not (server.batches and server.batches[0]["request_counts"]["completed"]):
            time.sleep(0.02)
        proc.kill()
        proc.communicate(timeout=60)
        client = _client(server, tmp_path)
        assert client.cancel() == [server.batches[0]["id"]]
        results = client.chat(_requests(40, "k"))
        first = server.batches[0]
        assert first["status"] == "cancelled" and 0 < first["request_counts"]["completed"] < 40
        assert server.batches_created == 2
        assert server.batches[1]["request_counts"]["total"] == 40 - first["request_counts"]["completed"]
    assert all(r.text == CANNED_REPLY for r in results)


def test_the_key_is_sent_but_never_written(tmp_path, monkeypatch):
    secret = "sk-test-TOPSECRET-batch-0042"
    monkeypatch.setenv("LAMP_BATCH_KEY", secret)
    lines = []
    with TestServer(faults={**FAST, "batch_line_errors": 0.5}) as server:
        ok = _client(server, tmp_path, lines, api_key_env="LAMP_BATCH_KEY", max_retries=0).chat(_requests(6))
        assert all(h.get("Authorization") == "Bearer " + secret for h in server.headers_seen)
    with TestServer(faults={**FAST, "batch_fail": 1}) as server:
        failed = _client(server, tmp_path / "f", lines, api_key_env="LAMP_BATCH_KEY").chat(_requests(2))
    assert any(r.error for r in ok) and all(r.error for r in failed)
    client = _client(server, tmp_path / "down", lines, api_key_env="LAMP_BATCH_KEY", http_retries=0)
    down = client.chat(_requests(1))  # the server is stopped: the upload fails
    assert down[0].error and "POST /files" in down[0].error
    texts = lines + [r.error or "" for r in ok + failed + down] + [repr(client)]
    assert not any(secret in t for t in texts)
    for folder, _, files in os.walk(tmp_path):
        for name in files:
            with open(os.path.join(folder, name), "rb") as f:
                assert secret.encode() not in f.read(), name
    monkeypatch.delenv("LAMP_BATCH_KEY")
    with pytest.raises(LLMError, match="LAMP_BATCH_KEY") as info:
        client.chat(_requests(1, "new"))
    assert secret not in str(info.value)


def test_one_process_at_a_time_uses_a_state_dir(tmp_path):
    with TestServer(faults=FAST) as server:
        client = _client(server, tmp_path)
        with client._lock():
            with pytest.raises(LLMError, match="another process"):
                _client(server, tmp_path).chat(_requests(1))


def test_bad_input_is_refused_clearly(tmp_path):
    def make(url="http://127.0.0.1:9/v1", **kw):
        kw.setdefault("cache", str(tmp_path / "c.sqlite"))
        kw.setdefault("state_dir", tmp_path / "s")
        return BatchClient(url, "test", **kw)

    with pytest.raises(ValueError, match="requests is empty"):
        make().chat([])
    with pytest.raises(ValueError, match=r"requests\[1\] has no message"):
        make().chat([[{"role": "user", "content": "x"}], []])
    with pytest.raises(TypeError, match=r"requests\[0\]"):
        make().chat(["not messages"])
    with pytest.raises(TypeError, match="one URL"):
        make(["http://127.0.0.1:9/v1", "http://127.0.0.1:8/v1"])
    for url in ("ftp://example.org/v1", "localhost:8080/v1", "file:///etc/hostname"):
        with pytest.raises(ValueError, match="http:// or https://"):
            make(url)
    with pytest.raises(TypeError, match="cache is required"):
        make(cache=None)
    with pytest.raises(TypeError, match="state_dir"):
        make(state_dir=None)
    for n in (0, 50_001):
        with pytest.raises(ValueError, match="max_requests_per_batch"):
            make(max_requests_per_batch=n)
    with pytest.raises(ValueError, match="poll_interval"):
        make(poll_interval=0)
    with pytest.raises(ValueError, match="api_key_env"):
        make(api_key_env="sk-TOPSECRET")
    assert not os.path.exists(tmp_path / "s" / "batch_state.json")  # nothing was written


def test_server_batch_api_shapes():
    """The test server's list is newest first and pages; a cancel of an ended batch is refused; a bad input
    file makes a failed batch with an errors list."""
    from lamp import _core

    def call(method, path, payload=None):
        body = None if payload is None else json.dumps(payload).encode()
        status, reply, ok, *_ = _core.http_request(method, server.base_url + path, [], body, 5.0, 2.0, 0, 0.01,
                                                   0.01, 1 << 20, True, 1)
        return status, json.loads(reply)

    with TestServer(faults={"batch_latency": 0.05}) as server:
        upload = server.httpd.batches._new_file(b'{"custom_id": "a"}\n', "x.jsonl", "batch")
        ids = [call("POST", "/batches", {"input_file_id": upload["id"], "endpoint": "/v1/chat/completions",
                                         "completion_window": "24h"})[1]["id"] for _ in range(3)]
        status, page = call("GET", "/batches?limit=2")
        assert status == 200 and [b["id"] for b in page["data"]] == ids[::-1][:2] and page["has_more"]
        status, rest = call("GET", f"/batches?limit=2&after={page['last_id']}")
        assert [b["id"] for b in rest["data"]] == ids[:1] and not rest["has_more"]
        deadline = time.time() + 10
        while time.time() < deadline and call("GET", f"/batches/{ids[0]}")[1]["status"] != "failed":
            time.sleep(0.02)
        batch = call("GET", f"/batches/{ids[0]}")[1]
        assert batch["status"] == "failed" and batch["errors"]["data"][0]["line"] == 1
        assert call("POST", f"/batches/{ids[0]}/cancel", {})[0] == 400
        assert call("GET", "/batches/nope")[0] == 404 and call("GET", "/files/nope/content")[0] == 404
        assert call("POST", "/batches", {"input_file_id": "nope", "endpoint": "/v1/chat/completions",
                                         "completion_window": "24h"})[0] == 404
        assert server.batches_created == 3 and server.files_uploaded == 0


def test_a_single_request_stops_on_ctrl_c():
    """http_request releases the GIL and polls for signals: Ctrl-C ends a request the server never answers."""
    import signal
    import socket
    import threading

    from lamp import _core

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            _core.http_request("GET", f"http://127.0.0.1:{silent.getsockname()[1]}/v1/batches", [], None, 60.0, 5.0,
                               0, 0.01, 0.01, 1024, True, 1)
        timer.join()
