"""Per-request retries at full concurrency, pauses the server asks for, and client-side rate limits
(csrc/http/http.c through ChatClient).

Loopback test servers only.  No test asserts a speed: the counts come from the server's own log of arrivals
(`TestServer.arrivals`), and the only bounds on wall time are far above what the rules need and far below what
a run took when every 429 or 5xx took the whole endpoint out (minutes)."""
import json
import textwrap
import time

import pytest

from lamp.llm import ChatClient
from lamp.llm.client import request_body
from lamp.llm.testserver import CANNED_REPLY, TestServer


def _requests(n, tag="q"):
    return [[{"role": "user", "content": f"{tag}{i:03d}"}] for i in range(n)]


def _client(urls, **kw):
    kw.setdefault("progress", False)
    return ChatClient(urls, "test", **kw)


def test_a_request_in_backoff_does_not_hold_up_the_others():
    # a quarter of the prompts get a 429 asking for 1 s the first time: that is the request's own wait (1 s is
    # not a pause of the endpoint), and the other requests keep flowing meanwhile
    with TestServer(faults={"latency": 0.02, "status_429_share": 0.25, "retry_after": 1}) as server:
        client = _client(server.base_url, concurrency=4, backoff_max=5.0, chunk_size=100)
        results = client.chat(_requests(60))
        arrivals = server.arrivals
    assert all(r.text == CANNED_REPLY and r.error is None for r in results)
    limited = {key for _, status, key in arrivals if status == 429}
    assert 5 <= len(limited) <= 30
    assert all(r.attempts in (1, 2) for r in results) and len(arrivals) == 60 + len(limited)
    during = []  # per prompt that got a 429: the other requests the server received while it waited
    for key in limited:
        first, retry = [t for t, _, k in arrivals if k == key]
        assert retry - first >= 0.95  # its Retry-After was honoured
        during.append(sum(first < t < retry for t, _, k in arrivals if k != key))
    # when a 429 took the endpoint out (the old rule), nothing arrived while a request waited
    assert max(during) >= 10, during
    assert client.stats.endpoints[0].taken_out == 0


def test_a_long_retry_after_moves_the_run_to_the_other_endpoint():
    # one endpoint answers every request 429 asking for 30 s: it is taken out as a whole, once, and the run ends
    # on the other one without waiting for it; it stays out for the next call of the same client
    with TestServer(faults={"status_429": 10 ** 9, "retry_after": 30}) as paused, \
            TestServer(faults={"latency": 0.02}) as healthy:
        client = _client([paused.base_url, healthy.base_url], concurrency=4, backoff_max=60.0)
        started = time.time()
        results = client.chat(_requests(100))
        again = client.chat(_requests(20, "again"))
        elapsed = time.time() - started
        seen = paused.total
    assert all(r.text == CANNED_REPLY and r.error is None for r in results + again)
    assert elapsed < 25  # waiting for the paused endpoint would take 30 s
    stats, other = client.stats.endpoints
    assert seen <= 4 and stats.sent == seen and stats.taken_out == 1 and stats.retried_elsewhere == seen
    assert other.answered == 120 and other.taken_out == 0


def test_an_always_500_server_fails_every_request_quickly_with_its_own_error():
    # the old rules took the endpoint out for longer and longer after each burst of 500s (12 requests took
    # 146 s); now each request backs off on its own (0.5 s, then 1 s, jitter x0.5-1.5) and fails alone
    with TestServer(faults={"status_500": 10 ** 9}) as server:
        client = _client(server.base_url, concurrency=8, max_retries=2)
        started = time.time()
        results = client.chat(_requests(100))
        elapsed = time.time() - started
    assert all(r.text is None and r.error.startswith("HTTP 500 after 3 attempt(s): ") for r in results)
    assert all("injected 500" in r.error for r in results)
    assert server.total == 300 and client.stats.failures == 100
    assert client.stats.endpoints[0].taken_out == 0
    assert elapsed < 60


def test_rate_limit_headers_take_the_endpoint_out_for_the_reset_only():
    # a quota of 10 requests a second, told in OpenAI's x-ratelimit headers: once a reply says none remain, no
    # request starts before the reset, so only the requests already in flight then get a 429
    with TestServer(faults={"latency": 0.01, "ratelimit_requests": 10, "ratelimit_window": 1.0}) as server:
        client = _client(server.base_url, concurrency=4, max_retries=20, backoff_max=30.0, chunk_size=100)
        started = time.time()
        results = client.chat(_requests(50))
        elapsed = time.time() - started
        arrivals = server.arrivals
    assert all(r.text == CANNED_REPLY and r.error is None for r in results)
    refused = sum(status == 429 for _, status, _ in arrivals)
    windows = int(elapsed) + 2
    assert refused <= 3 * windows, (refused, elapsed)  # at most the 3 others in flight per window
    assert client.stats.endpoints[0].taken_out >= 4  # once per used-up window (5 windows of 10)
    # out for the reset only (under 1 s each), not for a growing backoff (30 s at most): 5 windows' work
    assert elapsed < 20


def _starts_per_window(times, rate_per_second):
    """The largest excess, over any run of arrivals, of their count over 1 + (span + 0.05) * rate."""
    worst = 0.0
    for i in range(len(times)):
        for j in range(i + 1, len(times)):
            worst = max(worst, (j - i + 1) - (1 + (times[j] - times[i] + 0.05) * rate_per_second))
    return worst


def test_requests_per_minute_is_honoured():
    # 600 a minute: 10 a second, however many may be in flight; the pace carries over chunks and calls
    with TestServer() as server:
        client = _client(server.base_url, concurrency=8, chunk_size=8, requests_per_minute=600)
        started = time.time()
        results = client.chat(_requests(15, "a")) + client.chat(_requests(15, "b"))
        elapsed = time.time() - started
        times = [t for t, _, _ in server.arrivals]
    assert all(r.text == CANNED_REPLY for r in results) and len(times) == 30
    assert _starts_per_window(times, 10.0) <= 1.0  # one more for the server's own scheduling
    assert elapsed >= 2.5  # 29 gaps of 0.1 s, less the slack


def test_tokens_per_minute_is_honoured():
    # each request counts its body length / 4 plus max_tokens; the limit allows 8 such requests a second
    prompts = _requests(20)
    client = _client("http://127.0.0.1:9/v1", max_tokens=100)
    cost = len(json.dumps(request_body("test", prompts[0], client._params)).encode()) // 4 + 100
    with TestServer() as server:
        client = _client(server.base_url, concurrency=8, max_tokens=100, tokens_per_minute=cost * 8 * 60)
        results = client.chat(prompts)
        times = [t for t, _, _ in server.arrivals]
    assert all(r.text == CANNED_REPLY for r in results) and len(times) == 20
    assert _starts_per_window(times, 8.0) <= 1.0
    assert times[-1] - times[0] >= 19 / 8 - 0.1


def test_rate_limit_arguments_are_checked():
    for bad in (0, -5, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="requests_per_minute"):
            ChatClient("http://127.0.0.1:9/v1", "m", requests_per_minute=bad)
        with pytest.raises(ValueError, match="tokens_per_minute"):
            ChatClient("http://127.0.0.1:9/v1", "m", tokens_per_minute=bad)
    client = ChatClient("http://127.0.0.1:9/v1", "m", requests_per_minute=30, tokens_per_minute=90_000)
    assert (client.requests_per_minute, client.tokens_per_minute) == (30.0, 90_000.0)


def test_the_config_passes_the_rate_limits_to_the_client(tmp_path):
    from lamp.config.schema import Abduction
    from lamp.pipeline.abduce import make_client

    with pytest.raises(ValueError, match="requests_per_minute"):
        Abduction(requests_per_minute=0)
    settings = Abduction(backend="openai", base_url="http://127.0.0.1:9/v1", model="m", requests_per_minute=120,
                         tokens_per_minute=40_000)

    class Context:
        kind = "tkg"

        def path(self, name):
            return str(tmp_path / name)

        def resolve_path(self, path):
            return path

    client, server = make_client(Context(), settings, [])
    assert server is None and (client.requests_per_minute, client.tokens_per_minute) == (120.0, 40_000.0)
    assert Abduction().requests_per_minute is None and Abduction().tokens_per_minute is None


@pytest.mark.slow
def test_a_pipeline_run_through_429_then_500_then_200(tmp_path):
    # the server: every new prompt is answered 429 (Retry-After: 0), then 500, then 200.  Under the
    # old rules (each 429 or 5xx took the one endpoint out, for longer and longer) a 460-prompt run did not
    # finish in 25 minutes; now each prompt costs its own short backoff and the run takes seconds
    from lamp.pipeline import Pipeline

    config = textwrap.dedent("""
        data:
          icews14: {{data_format: tkg, data_dir: lamp://icews14}}
        E:
          base_config: {{dataset_id: icews14}}
          lamp:
            task: object
            num_candidates: 10
            query_limit: 60
            train_query_limit: 60
            valid_query_limit: 10
            proposer: {{model: recurrency}}
            abduction: {{backend: openai, concurrency: 16, base_url: "{url}", model: test, num_shots: 2}}
            ranker: {{epochs: 3, width: 16}}
            evaluation: {{bootstrap: 200}}
    """)
    with TestServer(faults={"latency": 0.02, "status_429": 1, "status_500": 1, "retry_after": 0}) as server:
        path = tmp_path / "c.yaml"
        path.write_text(config.format(url=server.base_url))
        started = time.time()
        metrics = Pipeline.from_yaml(path, out=str(tmp_path / "run")).run()["object"]
        elapsed = time.time() - started
        arrivals = server.arrivals
    prompts = {key for _, _, key in arrivals}
    assert len(prompts) >= 500
    statuses = {}
    for _, status, key in arrivals:
        statuses.setdefault(key, []).append(status)
    assert all(seen == [429, 500, 200] for seen in statuses.values())  # each answered once, after its faults
    stats = json.loads((tmp_path / "run" / "abduction" / "result.json").read_text())["stats"]
    assert not sum(stats["failed_by_split"].values()) and metrics["lamp"]["n"] == metrics["base"]["n"] > 0
    assert elapsed < 120  # the bound; the old rules took over 25 minutes
