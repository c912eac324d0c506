"""The LLM client over the C transport: retries, faults, cache, resume, secrets."""
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from lamp import _core
from lamp.llm import AnswerCache, ChatClient, LLMError, ReplayMissError
from lamp.llm.testserver import CANNED_REPLY, TestServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _requests(n, tag="q"):
    return [[{"role": "user", "content": f"{tag}{i}"}] for i in range(n)]


def _client(server, tmp_path=None, **kw):
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("backoff_max", 0.05)
    cache = str(tmp_path / "cache.sqlite") if tmp_path is not None else None
    return ChatClient(server.base_url, "test", cache=cache, **kw)


@pytest.mark.parametrize("fault", ["status_500", "status_429", "malformed", "truncated", "reset"])
def test_retryable_faults_are_retried_then_succeed(fault):
    with TestServer(faults={fault: 2, "retry_after": 0}) as server:
        results = _client(server).chat(_requests(5))
    assert all(r.text == CANNED_REPLY and r.error is None for r in results)
    assert server.total == 15  # two faults and one success per prompt
    assert all(r.attempts == 3 for r in results)


def test_non_retryable_is_not_retried_and_reported_per_request():
    with TestServer(faults={"status_400": 1}) as server:
        results = _client(server).chat(_requests(3))
    assert server.total == 3
    assert all(r.text is None and "HTTP 400" in r.error and "injected 400" in r.error for r in results)


def test_gives_up_after_max_retries_without_failing_the_batch():
    with TestServer(faults={"status_500": 100}) as server:
        client = _client(server, max_retries=2)
        results = client.chat(_requests(2))
    assert server.total == 6 and all("HTTP 500 after 3 attempt(s)" in r.error for r in results)
    assert client.stats.failures == 2


def test_retry_after_is_honoured():
    with TestServer(faults={"status_429": 1, "retry_after": 1}) as server:
        started = time.time()
        results = _client(server, backoff_max=5).chat(_requests(1))
    assert results[0].text == CANNED_REPLY and time.time() - started >= 0.9


def test_timeout_and_response_cap():
    with TestServer(faults={"latency": 1.0}) as server:
        results = _client(server, timeout=0.2, max_retries=1).chat(_requests(1))
    assert results[0].text is None and "Timeout" in results[0].error
    with TestServer() as server:
        results = _client(server, max_response=100, max_retries=3).chat(_requests(1))
    assert "larger than the 100-byte limit" in results[0].error and server.total == 1


def test_backoff_formula():
    assert _core.http_backoff(1, -1.0, 0.5, 30.0, 0.5) == pytest.approx(0.5)
    assert _core.http_backoff(3, -1.0, 0.5, 30.0, 0.5) == pytest.approx(2.0)
    assert _core.http_backoff(10, -1.0, 0.5, 30.0, 0.99) == 30.0
    assert _core.http_backoff(2, 7.0, 0.5, 30.0, 0.1) == 7.0


def test_cache_hits_and_replay(tmp_path):
    with TestServer() as server:
        client = _client(server, tmp_path)
        client.chat(_requests(4))
        again = client.chat(_requests(6))
        assert server.total == 6 and [r.cached for r in again] == [True] * 4 + [False] * 2
    replay = ChatClient("http://127.0.0.1:9/v1", "test", cache=str(tmp_path / "cache.sqlite"), replay=True)
    assert all(r.cached for r in replay.chat(_requests(6)))
    with pytest.raises(ReplayMissError, match="2 of 8 requests are not in the cache"):
        replay.chat(_requests(8))


def test_api_key_never_stored_or_shown(tmp_path, monkeypatch):
    secret = "sk-test-0123456789-very-secret"
    monkeypatch.setenv("LAMP_TEST_KEY", secret)
    with TestServer(faults={"status_400": 1}) as server:
        client = _client(server, tmp_path, api_key_env="LAMP_TEST_KEY")
        failed = client.chat(_requests(1, "fail"))
        server.httpd.faults = {}
        ok = client.chat(_requests(2, "ok"))
    assert server.headers_seen[-1]["Authorization"] == f"Bearer {secret}"  # it was sent ...
    assert ok[0].text == CANNED_REPLY
    raw = b"".join(open(p, "rb").read() for p in tmp_path.iterdir())
    assert secret.encode() not in raw  # ... but is in no cache file
    assert secret not in repr(client) and secret not in str(vars(client)) and secret not in failed[0].error
    monkeypatch.delenv("LAMP_TEST_KEY")
    with pytest.raises(Exception, match="LAMP_TEST_KEY") as info:
        client.chat(_requests(1, "new"))
    assert secret not in str(info.value)


def test_a_key_put_in_api_key_env_is_never_echoed(tmp_path, monkeypatch):
    """A user who writes the key itself where its variable's name belongs: no message or repr shows it."""
    from lamp.embed import EndpointEmbedder

    for key in ("sk-proj-TOPSECRET42", "sk proj TOPSECRET42"):  # not a variable name: refused at construction
        for make in (lambda: ChatClient("http://127.0.0.1:9/v1", "m", api_key_env=key),
                     lambda: EndpointEmbedder("http://127.0.0.1:9/v1", "m", api_key_env=key)):
            with pytest.raises(ValueError, match="api_key_env") as info:
                make()
            assert "TOPSECRET42" not in str(info.value)
    # a key that happens to be a valid (mixed-case) variable name: unset, so sending fails, without the key
    key = "hf_AbCdTOPSECRET42xyz"
    monkeypatch.delenv(key, raising=False)
    client = ChatClient("http://127.0.0.1:9/v1", "m", api_key_env=key, max_retries=0, cache=str(tmp_path / "c.sqlite"))
    assert "TOPSECRET42" not in repr(client)
    with pytest.raises(LLMError) as info:
        client.chat(_requests(1))
    assert "TOPSECRET42" not in str(info.value) and "api_key_env" in str(info.value)
    # a conventional upper-case name is shown, so the user knows which variable to set
    monkeypatch.delenv("LAMP_UNSET_KEY_VAR", raising=False)
    with pytest.raises(LLMError, match="LAMP_UNSET_KEY_VAR"):
        ChatClient("http://127.0.0.1:9/v1", "m", api_key_env="LAMP_UNSET_KEY_VAR", max_retries=0).chat(_requests(1))


_WORKER = textwrap.dedent("""
    import sys
    from lamp.llm import ChatClient
    url, cache, tag, n, chunk = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    client = ChatClient(url, "test", cache=cache, concurrency=2, chunk_size=chunk, backoff_base=0.01)
    client.chat([[{"role": "user", "content": f"{tag}{i}"}] for i in range(n)])
    print("done", flush=True)
""")


def _spawn(server, cache, tag, n, chunk=2):
    return subprocess.Popen([sys.executable, "-c", _WORKER, server.base_url, str(cache), tag, str(n), str(chunk)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("chunk", [2, 100])
def test_killed_run_resumes_without_resending(tmp_path, chunk):
    # chunk 100: every answer is stored as it arrives, not when its chunk of 100 ends
    cache = tmp_path / "cache.sqlite"
    with TestServer(faults={"latency": 0.1}) as server:
        proc = _spawn(server, cache, "k", 40, chunk)
        deadline = time.time() + 30
        while time.time() < deadline and (not cache.exists() or len(AnswerCache(cache)) < 6):
            time.sleep(0.05)
        proc.kill()
        proc.wait()
        saved = len(AnswerCache(cache))
        assert 6 <= saved < 40
        # requests the killed client had in flight may still reach the server's handlers: wait until
        # its count has been still for longer than the server's latency before taking it
        sent_before, still_since = server.total, time.time()
        while time.time() - still_since < 0.5:
            time.sleep(0.05)
            if server.total != sent_before:
                sent_before, still_since = server.total, time.time()
        results = _client(server, tmp_path).chat(_requests(40, "k"))
        assert all(r.text == CANNED_REPLY for r in results)
        assert sum(r.cached for r in results) == saved
        assert server.total - sent_before == 40 - saved  # only the missing ones were sent


def test_sigint_keeps_received_answers(tmp_path):
    cache = tmp_path / "cache.sqlite"
    with TestServer(faults={"latency": 0.1}) as server:
        proc = _spawn(server, cache, "i", 200)
        deadline = time.time() + 30
        while time.time() < deadline and (not cache.exists() or len(AnswerCache(cache)) < 4):
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        started = time.time()
        _, err = proc.communicate(timeout=20)
        assert time.time() - started < 5 and "KeyboardInterrupt" in err
        saved = len(AnswerCache(cache))
        assert saved >= 4 and saved < 200


def test_concurrent_writers_do_not_corrupt_the_cache(tmp_path):
    cache = tmp_path / "cache.sqlite"
    with TestServer() as server:
        procs = [_spawn(server, cache, f"w{j}-", 30) for j in range(3)]
        for p in procs:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
    assert len(AnswerCache(cache)) == 90
    assert sqlite3.connect(cache).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_bad_arguments():
    with pytest.raises(ValueError, match="base_url"):
        ChatClient("localhost:8080", "m")
    with pytest.raises(ValueError, match="concurrency"):
        ChatClient("http://x/v1", "m", concurrency=0)
    with pytest.raises(TypeError, match=r"requests\[0\]"):
        ChatClient("http://127.0.0.1:9/v1", "m").chat(["not messages"])
    with pytest.raises(TypeError, match="NAME"):
        ChatClient("http://x/v1", "m", api_key_env=123)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_local_server_process_dies_with_a_killed_parent():
    # what LocalServer does for the llama.cpp server: its process ends when lamp is killed with -9
    code = textwrap.dedent("""
        import os, subprocess, sys, time
        from lamp.llm.local import _die_with_parent
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True,
                                 preexec_fn=_die_with_parent(os.getpid()))
        print(child.pid, flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    os.kill(child, 0)  # running
    parent.kill()
    parent.wait()
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            with open(f"/proc/{child}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":  # ended, not yet reaped by its new parent
                    break
        except FileNotFoundError:
            break
        time.sleep(0.05)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the child outlived its killed parent")
