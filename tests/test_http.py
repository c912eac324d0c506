"""Input checks of the C HTTP transport (csrc/http/http.c, `_core.http_post_batch`): only http:// and
https:// URLs, no CR or LF in a header, and no header value (a secret) in the error."""
import pytest

from lamp import _core
from lamp.llm import ChatClient

SECRET = "sk-test-0123456789-very-secret"


def _post(url, headers=(), bodies=(b"{}",)):
    # url, bodies, headers, concurrency, timeout, connect_timeout, max_retries, backoff_base, backoff_max,
    # max_response, verify_tls, seed
    return _core.http_post_batch(url, list(bodies), list(headers), 1, 2.0, 1.0, 0, 0.01, 0.02, 1 << 20, True, 0)


def _post_endpoints(urls, headers=(), bodies=(b"{}",)):
    # urls, path, bodies, headers, concurrency, timeout, connect_timeout, max_retries, backoff_base, backoff_max,
    # max_response, verify_tls, seed, progress, take_out_after, health, answer, rate
    return _core.http_post_endpoints(list(urls), "/chat/completions", list(bodies), list(headers), 1, 2.0, 1.0, 0,
                                     0.01, 0.02, 1 << 20, True, 0, None, 0, None, None, None)


def test_endpoints_refuse_file_urls_and_cr_lf_headers(tmp_path):
    """The multi-endpoint entry point checks every URL and header as http_post_batch does."""
    path = tmp_path / "local.txt"
    path.write_text("local file contents")
    for urls in ([f"file://{path}"], ["http://127.0.0.1:9/v1", f"FILE://{path}"], ["ftp://127.0.0.1:9/v1"]):
        with pytest.raises(ValueError, match="only http:// and https://") as info:
            _post_endpoints(urls)
        assert "local file contents" not in str(info.value)
    for bad in (f"Bearer {SECRET}\r\nX-Injected: 1", f"Bearer {SECRET}\nX: 1", f"Bearer {SECRET}\r"):
        with pytest.raises(ValueError, match="header 'Authorization'") as info:
            _post_endpoints(["http://127.0.0.1:9/v1"], ["Authorization: " + bad])
        assert SECRET not in str(info.value)
    results, counts, health, interrupted, pace = _post_endpoints(["http://127.0.0.1:9/v1"])  # well-formed: sent, fails
    assert not interrupted and results[0][2] is False


def test_file_url_is_refused_and_returns_no_file(tmp_path):
    path = tmp_path / "local.txt"
    path.write_text("local file contents")
    with pytest.raises(ValueError, match="scheme 'file'") as info:
        _post(f"file://{path}")
    assert "local file contents" not in str(info.value)


@pytest.mark.parametrize("url, scheme", [("ftp://127.0.0.1:9/x", "ftp"), ("gopher://127.0.0.1:9/x", "gopher"),
                                         ("dict://127.0.0.1:9/x", "dict"), ("FILE:///etc/hostname", "FILE"),
                                         ("telnet://127.0.0.1:9", "telnet"), ("ldap://127.0.0.1:9/x", "ldap")])
def test_other_schemes_are_refused_naming_the_scheme(url, scheme):
    with pytest.raises(ValueError, match=f"scheme '{scheme}'.*only http:// and https://"):
        _post(url)


@pytest.mark.parametrize("url", ["127.0.0.1:9/v1", "", " http://127.0.0.1:9/"])
def test_url_without_scheme_is_refused(url):
    with pytest.raises(ValueError, match="http:// and https://"):
        _post(url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/v1", "HTTP://127.0.0.1:9/v1"])
def test_http_urls_are_sent(url):
    # nothing listens on port 9: a per-request transport failure, not a refusal
    results, interrupted = _post(url)
    status, body, ok, done, attempts, error = results[0]
    assert not interrupted and done and not ok and attempts == 1 and error


@pytest.mark.parametrize("bad", [f"Bearer {SECRET}\r\nX-Injected: 1", f"Bearer {SECRET}\n", f"Bearer sk\r{SECRET}"])
def test_cr_or_lf_in_a_header_is_refused_without_showing_its_value(bad):
    with pytest.raises(ValueError, match="header 'Authorization'") as info:
        _post("http://127.0.0.1:9/v1", ["Content-Type: application/json", "Authorization: " + bad])
    assert SECRET not in str(info.value) and "Bearer" not in str(info.value)


def test_cr_or_lf_in_a_header_name_is_refused():
    with pytest.raises(ValueError, match="header 'X-A'"):
        _post("http://127.0.0.1:9/v1", ["X-A\r\nB: c"])


def test_nul_in_a_header_is_refused_without_showing_its_value():
    with pytest.raises(ValueError, match="header 'Authorization'.*NUL") as info:
        _post("http://127.0.0.1:9/v1", [f"Authorization: Bearer {SECRET}\0tail"])
    assert SECRET not in str(info.value)


def test_api_key_with_a_line_break_is_refused_without_showing_it(monkeypatch):
    monkeypatch.setenv("LAMP_TEST_KEY", SECRET + "\r\nX-Injected: 1")
    client = ChatClient("http://127.0.0.1:9/v1", "m", api_key_env="LAMP_TEST_KEY", max_retries=0)
    with pytest.raises(ValueError, match="Authorization") as info:
        client.chat([[{"role": "user", "content": "hi"}]])
    assert SECRET not in str(info.value)
