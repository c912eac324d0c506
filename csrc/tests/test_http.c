#include <curl/curl.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "http/http.h"
#include "tests/check.h"

static void test_retry_after_parsing(void)
{
    CHECK_CLOSE(lamp_http_parse_retry_after(" 120\r\n"), 120.0, 1e-12);
    CHECK_CLOSE(lamp_http_parse_retry_after("0"), 0.0, 1e-12);
    CHECK(lamp_http_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") < 0);
    CHECK(lamp_http_parse_retry_after("12abc") < 0);
    CHECK(lamp_http_parse_retry_after(NULL) < 0);
}

static void test_backoff(void)
{
    CHECK_CLOSE(lamp_http_backoff(1, -1.0, 0.5, 30.0, 0.5), 0.5, 1e-12);
    CHECK_CLOSE(lamp_http_backoff(4, -1.0, 0.5, 30.0, 0.0), 2.0, 1e-12);
    CHECK_CLOSE(lamp_http_backoff(20, -1.0, 0.5, 30.0, 0.7), 30.0, 1e-12);
    CHECK_CLOSE(lamp_http_backoff(2, 3.0, 0.5, 30.0, 0.9), 3.0, 1e-12);
    CHECK_CLOSE(lamp_http_backoff(2, 300.0, 0.5, 30.0, 0.9), 30.0, 1e-12);
}

static void test_retryable(void)
{
    CHECK(lamp_http_retryable_status(0));
    CHECK(lamp_http_retryable_status(429));
    CHECK(lamp_http_retryable_status(503));
    CHECK(!lamp_http_retryable_status(400));
    CHECK(!lamp_http_retryable_status(404));
    CHECK(!lamp_http_retryable_status(200));
}

static void test_connection_refused_is_reported_per_request(void)
{
    /* port 9 (discard) on loopback: nothing listens there in the test environment */
    lamp_http_request reqs[2] = {{"http://127.0.0.1:9/v1/x", "{}", 2}, {"http://127.0.0.1:9/v1/y", "{}", 2}};
    lamp_http_response resps[2];
    lamp_http_options o = {.concurrency = 2, .timeout = 2.0, .connect_timeout = 1.0, .max_retries = 1,
                           .backoff_base = 0.01, .backoff_max = 0.02, .max_response = 1024, .verify_tls = 1};
    lamp_error err;
    CHECK(lamp_http_batch(reqs, 2, &o, resps, &err) == LAMP_OK);
    for (int i = 0; i < 2; i++) {
        CHECK(resps[i].done && !resps[i].ok && resps[i].attempts == 2);
        lamp_http_response_clear(&resps[i]);
    }
    o.concurrency = 0;
    CHECK(lamp_http_batch(reqs, 2, &o, resps, &err) == LAMP_EVALUE);
}

static void test_only_http_and_https_urls(void)
{
    lamp_error err;
    CHECK(lamp_http_check_url("http://127.0.0.1:9/v1", &err) == LAMP_OK);
    CHECK(lamp_http_check_url("https://example.org/v1", &err) == LAMP_OK);
    CHECK(lamp_http_check_url("HTTPS://example.org/v1", &err) == LAMP_OK); /* schemes are case-insensitive */
    const char *bad[] = {"file:///etc/passwd", "FILE:///etc/passwd", "ftp://example.org/x", "gopher://h/x",
                         "dict://h:11/x", "scp://h/x", "ldap://h/x", "telnet://h", "smtp://h", "httpx://h"};
    const char *scheme[] = {"'file'", "'FILE'", "'ftp'", "'gopher'", "'dict'", "'scp'", "'ldap'", "'telnet'",
                            "'smtp'", "'httpx'"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        lamp_error_clear(&err);
        CHECK(lamp_http_check_url(bad[i], &err) == LAMP_EVALUE);
        CHECK(strstr(err.message, scheme[i]) != NULL);
        CHECK(strstr(err.message, "http:// and https://") != NULL);
    }
    CHECK(lamp_http_check_url("http:/127.0.0.1/x", &err) == LAMP_EVALUE && strstr(err.message, "'http'"));
    CHECK(lamp_http_check_url("127.0.0.1:9/v1", &err) == LAMP_EVALUE && strstr(err.message, "no scheme"));
    CHECK(lamp_http_check_url(" http://127.0.0.1/", &err) == LAMP_EVALUE);
    CHECK(lamp_http_check_url("", &err) == LAMP_EVALUE);
}

static void test_file_url_is_refused_before_sending(void)
{
    lamp_http_request req = {"file:///etc/hostname", "{}", 2};
    lamp_http_response resp;
    lamp_http_options o = {.concurrency = 1, .timeout = 2.0, .connect_timeout = 1.0, .max_retries = 0,
                           .backoff_base = 0.01, .backoff_max = 0.02, .max_response = 1 << 20, .verify_tls = 1};
    lamp_error err;
    lamp_error_clear(&err);
    CHECK(lamp_http_batch(&req, 1, &o, &resp, &err) == LAMP_EVALUE);
    CHECK(strstr(err.message, "'file'") != NULL);
    CHECK(resp.body == NULL && resp.attempts == 0 && !resp.done);
}

static void test_headers_without_cr_or_lf(void)
{
    lamp_error err;
    CHECK(lamp_http_check_header("Content-Type: application/json", &err) == LAMP_OK);
    CHECK(lamp_http_check_header("Authorization: Bearer sk-123", &err) == LAMP_OK);
    const char *secret = "sk-very-secret-42";
    const char *bad[] = {"Authorization: Bearer sk-very-secret-42\r\nX-Evil: 1", "Authorization: Bearer sk-very-secret-42\n",
                         "Authorization: Bearer sk-very\r-secret-42"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        lamp_error_clear(&err);
        CHECK(lamp_http_check_header(bad[i], &err) == LAMP_EVALUE);
        CHECK(strstr(err.message, "'Authorization'") != NULL);
        CHECK(strstr(err.message, secret) == NULL && strstr(err.message, "sk-") == NULL);
    }
    CHECK(lamp_http_check_header("X-Na\nme: v", &err) == LAMP_EVALUE && strstr(err.message, "'X-Na'"));
    /* the batch refuses such a header before sending anything */
    const char *headers[] = {"Content-Type: application/json", bad[0], NULL};
    lamp_http_request req = {"http://127.0.0.1:9/v1", "{}", 2};
    lamp_http_response resp;
    lamp_http_options o = {.concurrency = 1, .timeout = 2.0, .connect_timeout = 1.0, .max_retries = 0,
                           .backoff_base = 0.01, .backoff_max = 0.02, .max_response = 1024, .verify_tls = 1,
                           .headers = headers};
    lamp_error_clear(&err);
    CHECK(lamp_http_batch(&req, 1, &o, &resp, &err) == LAMP_EVALUE);
    CHECK(strstr(err.message, "'Authorization'") != NULL && strstr(err.message, secret) == NULL);
    CHECK(resp.attempts == 0);
}

static int progress_calls;
static int64_t progress_failed;

static void count_progress(void *arg, int64_t answered, int64_t failed)
{
    (void)arg;
    (void)answered;
    progress_calls++;
    progress_failed = failed;
}

static void test_endpoints_all_refusing_use_every_endpoint_budget(void)
{
    /* ports 9 and 1 on loopback: nothing listens; every request gets 1 + max_retries attempts on each */
    const char *endpoints[] = {"http://127.0.0.1:9/v1", "http://127.0.0.1:1/v1"};
    lamp_http_request reqs[3] = {{"/x", "{}", 2}, {"/y", "{}", 2}, {"/z", "{}", 2}};
    lamp_http_response resps[3];
    lamp_http_endpoint_stats stats[2];
    lamp_http_options o = {.concurrency = 2, .timeout = 2.0, .connect_timeout = 1.0, .max_retries = 1,
                           .backoff_base = 0.001, .backoff_max = 0.004, .max_response = 1024, .verify_tls = 1,
                           .endpoints = endpoints, .n_endpoints = 2, .endpoint_stats = stats,
                           .on_progress = count_progress};
    lamp_error err;
    lamp_error_clear(&err);
    CHECK(lamp_http_batch(reqs, 3, &o, resps, &err) == LAMP_OK);
    for (int i = 0; i < 3; i++) {
        CHECK(resps[i].done && !resps[i].ok && resps[i].attempts == 4);
        CHECK(resps[i].endpoint == 0 || resps[i].endpoint == 1);
        CHECK(strstr(resps[i].error, "curl error") != NULL);
        lamp_http_response_clear(&resps[i]);
    }
    for (int e = 0; e < 2; e++) {
        CHECK(stats[e].sent == 6 && stats[e].failed == 6 && stats[e].answered == 0);
        CHECK(stats[e].taken_out >= 1); /* a refused connection takes an endpoint out at once */
    }
    CHECK(stats[0].retried_elsewhere + stats[1].retried_elsewhere >= 3); /* each request moved at least once */
    CHECK(progress_calls >= 1 && progress_failed == 3);
    /* a bad endpoint URL is refused before anything is sent */
    const char *bad[] = {"http://127.0.0.1:9/v1", "file:///etc/hostname"};
    o.endpoints = bad;
    lamp_error_clear(&err);
    CHECK(lamp_http_batch(reqs, 3, &o, resps, &err) == LAMP_EVALUE && strstr(err.message, "'file'"));
    CHECK(resps[0].attempts == 0);
    o.n_endpoints = 0;
    CHECK(lamp_http_batch(reqs, 3, &o, resps, &err) == LAMP_EVALUE);
}

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void test_health_carries_a_take_out_to_the_next_batch(void)
{
    lamp_http_request req = {"/x", "{}", 2};
    lamp_http_response resp;
    const char *endpoints[] = {"http://127.0.0.1:9/v1"};
    lamp_http_endpoint_health health = {0};
    lamp_http_options o = {.concurrency = 1, .timeout = 2.0, .connect_timeout = 1.0, .max_retries = 0,
                           .backoff_base = 0.2, .backoff_max = 0.4, .max_response = 1024, .verify_tls = 1,
                           .endpoints = endpoints, .n_endpoints = 1, .health = &health};
    lamp_error err;
    CHECK(lamp_http_batch(&req, 1, &o, &resp, &err) == LAMP_OK && resp.done && !resp.ok);
    lamp_http_response_clear(&resp);
    CHECK(health.outs == 1 && health.consecutive == 1 && health.out_for > 0.05 && health.out_for <= 0.4);
    /* the next batch waits for the cool-down before its first attempt */
    health.out_for = 0.3;
    double t0 = seconds_now();
    CHECK(lamp_http_batch(&req, 1, &o, &resp, &err) == LAMP_OK && resp.done && resp.attempts == 1);
    CHECK(seconds_now() - t0 >= 0.29);
    CHECK(health.outs == 2); /* its probe failed: out again */
    lamp_http_response_clear(&resp);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    RUN(test_retry_after_parsing);
    RUN(test_backoff);
    RUN(test_retryable);
    RUN(test_connection_refused_is_reported_per_request);
    RUN(test_only_http_and_https_urls);
    RUN(test_file_url_is_refused_before_sending);
    RUN(test_headers_without_cr_or_lf);
    RUN(test_endpoints_all_refusing_use_every_endpoint_budget);
    RUN(test_health_carries_a_take_out_to_the_next_batch);
    curl_global_cleanup();
    return CHECK_SUMMARY("test_http");
}
