"""No reply can break a run or leak a secret: malformed token counts, a server that echoes the key, a base URL
with user information, a cache row that cannot be read back, an error inside a cache transaction."""
import base64
import json
import os
import sqlite3
import textwrap

import pytest

from lamp.llm import AnswerCache, ChatClient
from lamp.llm.testserver import TestServer

PROMPTS = [[{"role": "user", "content": f"effect {i}"}] for i in range(4)]


@pytest.mark.parametrize("usage", [{"prompt_tokens": "12", "completion_tokens": 3}, {"prompt_tokens": "n/a"},
                                   {"prompt_tokens": 10 ** 20, "completion_tokens": 10 ** 30},
                                   {"prompt_tokens": -3}, {"prompt_tokens": 1.5}, {"prompt_tokens": True},
                                   {"prompt_tokens": {"nested": 1}}, "n/a", [1, 2], None, 7])
def test_a_malformed_usage_is_unknown_tokens_and_the_cache_stays_usable(tmp_path, usage):
    cache = str(tmp_path / "cache.sqlite")
    with TestServer(faults={"usage": usage}) as server:
        client = ChatClient(server.base_url, "m", cache=cache, progress=False)
        results = client.chat(PROMPTS)
        assert all(r.text and r.error is None for r in results)  # the answers are kept
        assert all(r.usage["prompt_tokens"] is None for r in results)
        assert client.stats.prompt_tokens == 0
        reported = isinstance(usage, dict) and any(v is not None for v in usage.values()) or \
            (usage is not None and not isinstance(usage, dict))
        assert client.stats.unknown_usage == (len(PROMPTS) if reported else 0)
        if reported:
            assert "malformed token count" in str(client.stats)
        # the same cache serves a replay and a live client afterwards, and no request goes out again
        sent = server.total
        replay = ChatClient("http://127.0.0.1:9/v1", "m", cache=cache, replay=True).chat(PROMPTS)
        assert [r.text for r in replay] == [r.text for r in results]
        ChatClient(server.base_url, "m", cache=cache, progress=False).chat(PROMPTS + [[{"role": "user", "content": "x"}]])
        assert server.total == sent + 1
    rows = sqlite3.connect(cache).execute("SELECT prompt_tokens, completion_tokens FROM answers").fetchall()
    assert all(p is None for p, _ in rows)


def test_an_error_inside_a_cache_transaction_rolls_it_back(tmp_path):
    cache = AnswerCache(tmp_path / "c.sqlite")
    with pytest.raises((sqlite3.Error, TypeError, ValueError)):
        cache.put_many([("k1", "m", {"messages": []}, "{}", "text", {}), ("k2", "m", {}, "{}", {"not": "bindable"}, {})])
    assert len(cache) == 0  # the whole transaction rolled back: not even k1
    assert cache.put_many([("k3", "m", {}, "{}", "ok", {"prompt_tokens": 10 ** 20})]) == 1  # and the next one works
    assert cache.get_many(["k3"])["k3"]["usage"]["prompt_tokens"] is None


def test_a_row_that_cannot_be_read_back_is_asked_again(tmp_path):
    path = str(tmp_path / "cache.sqlite")
    with TestServer() as server:
        client = ChatClient(server.base_url, "m", cache=path, progress=False)
        client.chat(PROMPTS)
        with sqlite3.connect(path) as db:  # something else damaged one row: its text is bytes, not text
            db.execute("UPDATE answers SET text = X'00ff' WHERE rowid = (SELECT min(rowid) FROM answers)")
        sent = server.total
        with pytest.warns(RuntimeWarning, match="1 cached answer\\(s\\) cannot be read back"):
            again = ChatClient(server.base_url, "m", cache=path, progress=False).chat(PROMPTS)
        assert server.total == sent + 1 and all(isinstance(r.text, str) for r in again)
        assert len(AnswerCache(path).get_many([r for r in _keys(path)])) == len(PROMPTS)  # replaced


def _keys(path):
    return [k for (k,) in sqlite3.connect(path).execute("SELECT key FROM answers")]


CONFIG = textwrap.dedent("""
    data:
      icews14: {{data_format: tkg, data_dir: lamp://icews14}}
    E:
      base_config: {{dataset_id: icews14}}
      lamp:
        task: object
        num_candidates: 5
        query_limit: 10
        train_query_limit: 10
        valid_query_limit: 5
        proposer: {{model: recurrency}}
        abduction: {{backend: openai, base_url: "{url}", model: test, num_shots: 1, api_key_env: LAMP_TEST_SECRET_KEY}}
        ranker: {{epochs: 1, width: 8}}
        evaluation: {{bootstrap: 20, ablations: []}}
""")


def _grep(folder, secrets):
    """Every file under ``folder`` that holds one of ``secrets`` (read as bytes)."""
    found = []
    for root, _, files in os.walk(folder):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                data = f.read()
            found += [(name, s) for s in secrets if s.encode() in data]
    return found


@pytest.mark.parametrize("secret_in", ["api_key_env", "base_url"])
def test_a_server_echoing_the_key_or_the_url_password_leaks_nothing(tmp_path, monkeypatch, capsys, secret_in):
    """A hostile server puts every request header into its replies: the Bearer key, or the Basic credentials
    libcurl derives from a base URL's user information.  The run finishes, says it redacted them, and no file
    of the run folder holds the key, the password or the Basic credentials."""
    from lamp.pipeline import Pipeline

    key = "sk-test-SECRET-0123456789"
    basic = base64.b64encode(b"lampuser:pa55w0rd-secret").decode()
    monkeypatch.setenv("LAMP_TEST_SECRET_KEY", key)
    with TestServer(faults={"echo_headers": True}) as server:
        url = server.base_url.replace("http://", "http://lampuser:pa55w0rd-secret@")
        config = CONFIG.format(url=url if secret_in == "base_url" else server.base_url)
        if secret_in == "base_url":
            config = config.replace(", api_key_env: LAMP_TEST_SECRET_KEY", "")
        path = tmp_path / "c.yaml"
        path.write_text(config)
        metrics = Pipeline.from_yaml(path, out=str(tmp_path / "run")).run()
        seen = json.dumps(server.headers_seen)
    assert (key if secret_in == "api_key_env" else basic) in seen  # the server did see (and echo) the secret
    assert "lamp" in metrics["object"]
    assert _grep(tmp_path / "run", [key, "pa55w0rd-secret", basic]) == []
    out = capsys.readouterr().out
    assert "held a secret" in out and key not in out and "pa55w0rd" not in out and basic not in out
    fingerprint = (tmp_path / "run" / "abduction" / "fingerprint.json").read_text()
    assert "pa55w0rd" not in fingerprint and "lampuser" not in fingerprint and "127.0.0.1" in fingerprint
    cached = " ".join(t for (t,) in sqlite3.connect(tmp_path / "run" / "llm_cache.sqlite").execute(
        "SELECT text FROM answers"))
    assert "[redacted]" in cached
