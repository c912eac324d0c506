#include <curl/curl.h>
#include <math.h>

#include "../http.h"
#include "check.h"

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

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    RUN(test_retry_after_parsing);
    RUN(test_backoff);
    RUN(test_retryable);
    RUN(test_connection_refused_is_reported_per_request);
    curl_global_cleanup();
    return CHECK_SUMMARY("test_http");
}
