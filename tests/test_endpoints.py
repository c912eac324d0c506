"""Several endpoints per ChatClient (csrc/http/http.c's circuit breaker), and progress without a terminal.

Loopback test servers only; every batch is bounded in requests, retries and time."""
import re
import sys
import threading
import time

import pytest

from lamp.llm import ChatClient
from lamp.llm.testserver import CANNED_REPLY, TestServer


def _requests(n, tag="q"):
    return [[{"role": "user", "content": f"{tag}{i}"}] for i in range(n)]


def _client(urls, **kw):
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("backoff_max", 2.0)
    kw.setdefault("progress", False)
    return ChatClient(urls, "test", **kw)


def _kill_after(server, answers, deadline=30.0):
    """Kills `server` (from a thread) once it has answered `answers` requests."""
    def watch():
        stop = time.time() + deadline
        while time.time() < stop and sum(server.answered.values()) < answers:
            time.sleep(0.002)
        server.kill()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
def test_one_killed_one_rate_limited_every_request_answered_once():
    # the rate-limited server asks for a pause (a Retry-After over 5 s, capped at backoff_max, 2 s): it is
    # taken out as a whole each time
    n = 160
    with TestServer(faults={"latency": 0.05}) as doomed, TestServer(faults={"latency": 0.05}) as healthy, \
            TestServer(faults={"status_429": 10 ** 9, "retry_after": 10}) as limited:
        client = _client([doomed.base_url, healthy.base_url, limited.base_url], concurrency=4, max_retries=2)
        killer = _kill_after(doomed, 30)
        started = time.time()
        results = client.chat(_requests(n))
        elapsed = time.time() - started
        killer.join(timeout=10)
        assert doomed.httpd.killed
        servers = (doomed, healthy, limited)
        answered = [dict(s.answered) for s in servers]
    assert all(r.text == CANNED_REPLY and r.error is None for r in results)
    # every prompt answered exactly once over the three servers: none lost, none answered twice
    keys = set().union(*answered)
    assert len(keys) == n
    assert all(sum(a.get(k, 0) for a in answered) == 1 for k in keys)
    assert 30 <= sum(answered[0].values()) < n  # the doomed one answered some, then died
    assert sum(answered[2].values()) == 0 and limited.total >= 1
    # the client's per-endpoint counts match the servers'
    by_url = {e.url: e for e in client.stats.endpoints}
    doomed_stats, healthy_stats, limited_stats = (by_url[s.base_url] for s in servers)
    for stats, got in zip((doomed_stats, healthy_stats, limited_stats), answered):
        assert stats.answered == sum(got.values())
        assert stats.sent == stats.answered + stats.failed
    assert sum(e.answered for e in client.stats.endpoints) == n == client.stats.misses
    assert limited_stats.sent == limited.total and limited_stats.failed == limited.total
    assert limited_stats.taken_out >= 1 and limited_stats.retried_elsewhere >= 1
    # one pause of 2 s at a time: the rate-limited server saw few requests, not a retry storm
    assert limited.total <= 4 * (elapsed + 1) + 4
    assert doomed_stats.taken_out >= 1 and doomed_stats.failed >= 1
    # its failed requests went elsewhere (a probe may also retry one that failed there before)
    assert 1 <= doomed_stats.retried_elsewhere <= doomed_stats.failed
    assert healthy_stats.failed == 0 and healthy_stats.taken_out == 0
    text = str(client.stats)
    for s in servers:
        assert s.base_url in text
    assert "retried elsewhere" in text and "taken out" in text
    assert client.stats.failures == 0


def test_final_failure_only_when_every_endpoint_failed_it():
    with TestServer(faults={"status_500": 10 ** 9}) as a, TestServer(faults={"status_500": 10 ** 9}) as b:
        client = _client([a.base_url, b.base_url], concurrency=2, max_retries=1, backoff_max=0.05)
        results = client.chat(_requests(3))
    assert all(r.text is None and "HTTP 500 after 4 attempt(s)" in r.error for r in results)
    assert a.total == 6 and b.total == 6  # 1 + max_retries attempts on each endpoint
    # a 500 is the request's own failure: neither endpoint is taken out for it
    assert all(e.failed == 6 and e.answered == 0 and e.taken_out == 0 for e in client.stats.endpoints)
    assert client.stats.failures == 3


def test_a_dead_endpoint_costs_nothing_but_its_probes():
    # port 9: nothing listens (connection refused); every request is answered by the live server
    with TestServer() as live:
        client = _client(["http://127.0.0.1:9/v1", live.base_url], concurrency=2)
        results = client.chat(_requests(20))
    assert all(r.text == CANNED_REPLY for r in results) and live.total == 20
    dead = client.stats.endpoints[0]
    # taken out at its first refusal, then one probe per cool-down (0.01 s doubling: a handful)
    assert dead.answered == 0 and dead.taken_out >= 1 and 1 <= dead.retried_elsewhere <= dead.failed <= 12


def test_a_server_that_keeps_rate_limiting_is_never_down():
    # each prompt gets six 429s (Retry-After: 0, each the request's own: the endpoint is never taken out)
    # before its answer: the server replies, so the requests use their own attempts, never "every endpoint
    # is down"
    with TestServer(faults={"status_429": 6, "retry_after": 0}) as server:
        client = _client(server.base_url, concurrency=1, max_retries=8, backoff_max=0.02)
        results = client.chat(_requests(3))
    assert all(r.text == CANNED_REPLY and r.error is None and r.attempts == 7 for r in results)
    assert server.total == 21 and client.stats.endpoints[0].taken_out == 0


def test_every_endpoint_refusing_fails_the_waiting_requests_at_once():
    # nothing listens on ports 9 and 1: after 4 take-outs in a row of each, the 200 requests not yet
    # sent fail at once (30 s cool-downs: without the rule this batch would take minutes)
    client = _client(["http://127.0.0.1:9/v1", "http://127.0.0.1:1/v1"], concurrency=2, max_retries=3,
                     backoff_base=0.05, backoff_max=30.0)
    started = time.time()
    results = client.chat(_requests(200))
    assert time.time() - started < 20
    assert all(r.text is None and r.error for r in results)
    assert sum("every endpoint is down" in r.error for r in results) >= 150


def test_cache_key_does_not_depend_on_the_endpoint(tmp_path):
    cache = str(tmp_path / "cache.sqlite")
    with TestServer() as a, TestServer() as b:
        _client([a.base_url, b.base_url], cache=cache).chat(_requests(10))
        assert a.total > 0 and b.total > 0 and a.total + b.total == 10
    replay = ChatClient("http://127.0.0.1:9/v1", "test", cache=cache, replay=True)
    assert all(r.cached and r.text == CANNED_REPLY for r in replay.chat(_requests(10)))


def test_stats_show_no_user_information_or_query():
    with TestServer() as a, TestServer() as b:
        url = a.base_url.replace("http://", "http://user:s3cr3t-pw@")
        client = _client([url, b.base_url + "?key=s3cr3t-key"])
        client.chat(_requests(4))
    text = str(client.stats)
    assert "s3cr3t" not in text and "user" not in text and a.base_url in text and b.base_url in text


def test_bad_base_urls():
    with pytest.raises(ValueError, match="non-empty list"):
        ChatClient([], "m")
    with pytest.raises(ValueError, match="http:// or https://"):
        ChatClient(["http://127.0.0.1:9/v1", "ftp://x/v1"], "m")
    client = ChatClient(("http://127.0.0.1:9/v1/", "http://127.0.0.1:1/v1"), "m")
    assert client.base_urls == ["http://127.0.0.1:9/v1", "http://127.0.0.1:1/v1"]
    assert client.chunk_size == 16 * 8 * 2
    assert ChatClient("http://127.0.0.1:9/v1/", "m").base_url == "http://127.0.0.1:9/v1"


def _timed(urls, n, tag):
    client = _client(urls, concurrency=4)
    started = time.perf_counter()
    results = client.chat(_requests(n, tag))
    wall = time.perf_counter() - started
    assert all(r.text == CANNED_REPLY for r in results)
    return wall


@pytest.mark.slow
def test_two_endpoints_nearly_double_the_throughput():
    # same 50 ms per reply on both servers, 4 in flight per endpoint; one server vs two, side by side
    n = 200
    with TestServer(faults={"latency": 0.05}) as a, TestServer(faults={"latency": 0.05}) as b:
        _timed([a.base_url, b.base_url], 16, "warm")
        one = _timed([a.base_url], n, "one")
        two = _timed([a.base_url, b.base_url], n, "two")
    ratio = two / one
    print(f"two endpoints / one endpoint wall time: {two:.2f} s / {one:.2f} s = {ratio:.3f}")
    assert ratio <= 1 / 1.8, f"two endpoints took {ratio:.3f} of one endpoint's wall time"


def test_progress_lines_without_a_terminal(capsys):
    with TestServer(faults={"latency": 0.02}) as server:
        client = ChatClient(server.base_url, "test", concurrency=2, chunk_size=8)
        client.progress_interval = 0.1
        client.chat(_requests(60))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("[lamp] LLM:")]
    pattern = re.compile(r"\[lamp\] LLM: (\d+)/60 answered \((\d+) failed\), [\d.]+ req/s, \d+k? tokens in / "
                         r"\d+k? out, ETA (\d+s|\d+m \d\ds|\?)$")
    assert len(lines) >= 3, err
    assert all(pattern.match(line) for line in lines), lines
    counts = [int(pattern.match(line).group(1)) for line in lines]
    assert counts == sorted(counts) and counts[-1] == 60 and counts[0] < 60
    assert "tqdm" not in err and "\r" not in err  # no bar in a log
    capsys.readouterr()
    ChatClient(server.base_url, "test", progress=False).chat([])
    quiet = _client([server.base_url])  # progress=False: no line even with a tiny interval
    quiet.progress_interval = 0.0
    assert quiet._progress_mode(100) is None


def test_progress_bar_in_a_terminal(capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with TestServer() as server:
        client = ChatClient(server.base_url, "test", concurrency=2, chunk_size=8)
        assert client._progress_mode(9) == "bar" and client._progress_mode(8) is None  # one chunk: no bar
        client.chat(_requests(20))
    err = capsys.readouterr().err
    assert "LLM: 100%" in err and "20/20" in err and "0 failed" in err and "tokens in /" in err
    assert "[lamp] LLM:" not in err  # no log lines in a terminal
