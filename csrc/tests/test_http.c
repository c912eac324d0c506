#include <arpa/inet.h>
#include <curl/curl.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http/http.h"
#include "tests/check.h"

static void test_retry_after_parsing(void)
{
    CHECK_CLOSE(lamp_http_parse_retry_after(" 120\r\n"), 120.0, 1e-12);
    CHECK_CLOSE(lamp_http_parse_retry_after("0"), 0.0, 1e-12);
    CHECK_CLOSE(lamp_http_parse_retry_after("1.5"), 1.5, 1e-12);
    CHECK(lamp_http_parse_retry_after("12abc") < 0);
    CHECK(lamp_http_parse_retry_after("-3") < 0);
    CHECK(lamp_http_parse_retry_after("") < 0);
    CHECK(lamp_http_parse_retry_after(NULL) < 0);
    /* an HTTP date: the seconds until then (1445412480 is Wed, 21 Oct 2015 07:28:00 GMT), 0 once passed */
    CHECK_CLOSE(lamp_http_parse_retry_after_at("Wed, 21 Oct 2015 07:28:00 GMT\r\n", 1445412480.0 - 90.0), 90.0, 1e-12);
    CHECK_CLOSE(lamp_http_parse_retry_after_at("Wednesday, 21-Oct-15 07:28:00 GMT", 1445412480.0 - 2.0), 2.0, 1e-12);
    CHECK_CLOSE(lamp_http_parse_retry_after_at("Wed Oct 21 07:28:00 2015", 1445412480.0 - 5.0), 5.0, 1e-12);
    CHECK_CLOSE(lamp_http_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), 0.0, 1e-12);
    CHECK(lamp_http_parse_retry_after("soon") < 0);
}

static void test_duration_parsing(void)
{
    CHECK_CLOSE(lamp_http_parse_duration("1s"), 1.0, 1e-12);
    CHECK_CLOSE(lamp_http_parse_duration("6m0s"), 360.0, 1e-12);
    CHECK_CLOSE(lamp_http_parse_duration(" 250ms\r\n"), 0.25, 1e-12);
    CHECK_CLOSE(lamp_http_parse_duration("1h2m3.5s"), 3723.5, 1e-12);
    CHECK_CLOSE(lamp_http_parse_duration("20us"), 20e-6, 1e-12);
    CHECK_CLOSE(lamp_http_parse_duration("0.5"), 0.5, 1e-12); /* a plain number: seconds */
    CHECK_CLOSE(lamp_http_parse_duration("0s"), 0.0, 1e-12);
    CHECK(lamp_http_parse_duration("") < 0);
    CHECK(lamp_http_parse_duration("5x") < 0);
    CHECK(lamp_http_parse_duration("1.5 2") < 0);
    CHECK(lamp_http_parse_duration("s") < 0);
    CHECK(lamp_http_parse_duration(NULL) < 0);
}

static void reply_lines(lamp_http_reply_info *info, const char *const *lines)
{
    lamp_http_reply_info_clear(info);
    for (; *lines; lines++)
        lamp_http_reply_info_line(info, *lines, strlen(*lines));
}

static void test_reply_headers_and_server_pause(void)
{
    lamp_http_reply_info info;
    const char *short_429[] = {"HTTP/1.1 429 Too Many Requests\r\n", "Retry-After: 2\r\n", "\r\n", NULL};
    reply_lines(&info, short_429);
    CHECK_CLOSE(lamp_http_reply_retry_after(&info), 2.0, 1e-12);
    CHECK(lamp_http_server_pause(&info, 429) == 0.0); /* a short Retry-After is for the request only */
    const char *long_429[] = {"HTTP/1.1 429 Too Many Requests\r\n", "retry-after: 30\r\n", NULL};
    reply_lines(&info, long_429);
    CHECK_CLOSE(lamp_http_server_pause(&info, 429), 30.0, 1e-12);
    CHECK_CLOSE(lamp_http_server_pause(&info, 503), 30.0, 1e-12);
    CHECK(lamp_http_server_pause(&info, 500) == 0.0);
    const char *ms[] = {"HTTP/2 429\r\n", "Retry-After: 30\r\n", "retry-after-ms: 1500\r\n", NULL};
    reply_lines(&info, ms); /* retry-after-ms is the more precise: it wins */
    CHECK_CLOSE(lamp_http_reply_retry_after(&info), 1.5, 1e-12);
    CHECK(lamp_http_server_pause(&info, 429) == 0.0);
    const char *used_up[] = {"HTTP/1.1 200 OK\r\n", "x-ratelimit-limit-requests: 60\r\n",
                             "X-RateLimit-Remaining-Requests: 0\r\n", "x-ratelimit-reset-requests: 6m0s\r\n",
                             "x-ratelimit-remaining-tokens: 1000\r\n", "x-ratelimit-reset-tokens: 250ms\r\n", NULL};
    reply_lines(&info, used_up);
    CHECK_CLOSE(info.remaining_requests, 0.0, 1e-12);
    CHECK_CLOSE(info.remaining_tokens, 1000.0, 1e-12);
    CHECK_CLOSE(info.reset_tokens, 0.25, 1e-12);
    CHECK_CLOSE(lamp_http_server_pause(&info, 200), 360.0, 1e-12);
    const char *left[] = {"HTTP/1.1 200 OK\r\n", "x-ratelimit-remaining-requests: 3\r\n",
                          "x-ratelimit-reset-requests: 1s\r\n", NULL};
    reply_lines(&info, left);
    CHECK(lamp_http_server_pause(&info, 200) == 0.0);
    const char *tokens[] = {"HTTP/1.1 429 Too Many Requests\r\n", "x-ratelimit-remaining-tokens: 0\r\n",
                            "x-ratelimit-reset-tokens: 1.5s\r\n", "Retry-After: 1\r\n", NULL};
    reply_lines(&info, tokens);
    CHECK_CLOSE(lamp_http_server_pause(&info, 429), 1.5, 1e-12);
    /* a status line starts a new reply: what a 100 Continue said is forgotten */
    const char *two[] = {"HTTP/1.1 100 Continue\r\n", "Retry-After: 60\r\n", "HTTP/1.1 200 OK\r\n", NULL};
    reply_lines(&info, two);
    CHECK(lamp_http_reply_retry_after(&info) < 0 && lamp_http_server_pause(&info, 200) == 0.0);
    const char *bad[] = {"HTTP/1.1 429 x\r\n", "Retry-After: soon\r\n", "x-ratelimit-remaining-requests: none\r\n",
                         "x-ratelimit-reset-requests: 0\r\n", NULL};
    reply_lines(&info, bad);
    CHECK(lamp_http_reply_retry_after(&info) < 0 && info.remaining_requests < 0 && lamp_http_server_pause(&info, 429) == 0.0);
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
    CHECK(health.outs == 1 && health.unreachable == 1 && health.consecutive == 0);
    CHECK(health.out_for > 0.05 && health.out_for <= 0.4);
    /* the next batch waits for the cool-down before its first attempt */
    health.out_for = 0.3;
    double t0 = seconds_now();
    CHECK(lamp_http_batch(&req, 1, &o, &resp, &err) == LAMP_OK && resp.done && resp.attempts == 1);
    CHECK(seconds_now() - t0 >= 0.29);
    CHECK(health.outs == 2); /* its probe failed: out again */
    lamp_http_response_clear(&resp);
}

/* A one-thread HTTP server on a free port of 127.0.0.1: it serves one canned reply per connection, in order,
 * and records each request's method and body. */
typedef struct {
    int fd, port, n_replies, served;
    const char *replies[6];
    char method[6][8];
    char body[6][64];
    double at[6]; /* when each connection was accepted */
} mini_server;

static void *mini_serve(void *arg)
{
    mini_server *s = arg;
    for (int k = 0; k < s->n_replies; k++) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            break;
        s->at[k] = seconds_now();
        char buf[4096];
        size_t len = 0;
        char *end = NULL;
        while (len < sizeof buf - 1 && !end) {
            ssize_t got = recv(c, buf + len, sizeof buf - 1 - len, 0);
            if (got <= 0)
                break;
            len += (size_t)got;
            buf[len] = '\0';
            end = strstr(buf, "\r\n\r\n");
        }
        size_t want = 0;
        for (char *h = buf; end && h && h < end; h = strstr(h, "\r\n") ? strstr(h, "\r\n") + 2 : NULL)
            if (strncasecmp(h, "Content-Length:", 15) == 0)
                want = (size_t)strtoul(h + 15, NULL, 10);
        while (end && len < (size_t)(end + 4 - buf) + want && len < sizeof buf - 1) {
            ssize_t got = recv(c, buf + len, sizeof buf - 1 - len, 0);
            if (got <= 0)
                break;
            len += (size_t)got;
            buf[len] = '\0';
        }
        sscanf(buf, "%7s", s->method[k]);
        if (end)
            snprintf(s->body[k], sizeof s->body[k], "%.*s", (int)want, end + 4);
        if (write(c, s->replies[k], strlen(s->replies[k])) < 0)
            break;
        close(c);
        s->served++;
    }
    return NULL;
}

static int mini_start(mini_server *s, pthread_t *thread)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(s->fd, 8) < 0 ||
        getsockname(s->fd, (struct sockaddr *)&a, &alen) < 0)
        return -1;
    s->port = ntohs(a.sin_port);
    return pthread_create(thread, NULL, mini_serve, s);
}

static void test_single_request_retries_then_answers(void)
{
    mini_server s = {.n_replies = 3, .replies = {
        "HTTP/1.1 503 Busy\r\nRetry-After: 0\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        "HTTP/1.1 429 Slow down\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{\"id\": \"b\"}"}};
    pthread_t thread;
    CHECK(mini_start(&s, &thread) == 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/batches", s.port);
    const char *headers[] = {"Content-Type: application/json", NULL};
    lamp_http_options o = {.timeout = 5.0, .connect_timeout = 2.0, .max_retries = 3, .backoff_base = 0.001,
                           .backoff_max = 0.01, .max_response = 1024, .verify_tls = 1, .headers = headers};
    lamp_http_response r;
    double retry_after = 99.0;
    lamp_error err;
    lamp_error_clear(&err);
    CHECK(lamp_http_single("POST", url, "{\"x\": 1}", 8, &o, &r, &retry_after, &err) == LAMP_OK);
    pthread_join(thread, NULL);
    close(s.fd);
    CHECK(r.done && r.ok && r.status == 200 && r.attempts == 3);
    CHECK(r.body && r.body_len == 11 && strcmp(r.body, "{\"id\": \"b\"}") == 0);
    CHECK(retry_after < 0); /* the last reply had no Retry-After */
    CHECK(s.served == 3 && strcmp(s.method[0], "POST") == 0 && strcmp(s.body[2], "{\"x\": 1}") == 0);
    lamp_http_response_clear(&r);
}

static void test_single_get_final_status_keeps_body_and_retry_after(void)
{
    mini_server s = {.n_replies = 1, .replies = {
        "HTTP/1.1 404 Not Found\r\nRetry-After: 7\r\nContent-Length: 9\r\nConnection: close\r\n\r\nno batch!"}};
    pthread_t thread;
    CHECK(mini_start(&s, &thread) == 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/batches/b", s.port);
    lamp_http_options o = {.timeout = 5.0, .connect_timeout = 2.0, .max_retries = 3, .backoff_base = 0.001,
                           .backoff_max = 0.01, .max_response = 1024, .verify_tls = 1};
    lamp_http_response r;
    double retry_after = -1.0;
    lamp_error err;
    CHECK(lamp_http_single("GET", url, NULL, 0, &o, &r, &retry_after, &err) == LAMP_OK);
    pthread_join(thread, NULL);
    close(s.fd);
    CHECK(r.done && !r.ok && r.status == 404 && r.attempts == 1); /* a 404 is final at once */
    CHECK(r.body && strcmp(r.body, "no batch!") == 0 && strcmp(r.error, "HTTP 404") == 0);
    CHECK_CLOSE(retry_after, 7.0, 1e-12);
    CHECK(strcmp(s.method[0], "GET") == 0);
    lamp_http_response_clear(&r);
}

static void test_single_request_refusals(void)
{
    lamp_http_options o = {.timeout = 2.0, .connect_timeout = 1.0, .max_retries = 2, .backoff_base = 0.001,
                           .backoff_max = 0.002, .max_response = 1024, .verify_tls = 1};
    lamp_http_response r;
    double retry_after;
    lamp_error err;
    /* nothing listens on port 9: every attempt fails, the last error is kept */
    CHECK(lamp_http_single("GET", "http://127.0.0.1:9/v1/batches", NULL, 0, &o, &r, &retry_after, &err) == LAMP_OK);
    CHECK(r.done && !r.ok && r.attempts == 3 && r.status == 0 && strstr(r.error, "curl error") && !r.body);
    lamp_http_response_clear(&r);
    /* refused before anything is sent */
    lamp_error_clear(&err);
    CHECK(lamp_http_single("DELETE", "http://127.0.0.1:9/", NULL, 0, &o, &r, &retry_after, &err) == LAMP_EVALUE);
    CHECK(strstr(err.message, "GET or POST") != NULL && r.attempts == 0);
    CHECK(lamp_http_single("GET", "http://127.0.0.1:9/", "{}", 2, &o, &r, &retry_after, &err) == LAMP_EVALUE);
    CHECK(lamp_http_single("GET", "file:///etc/hostname", NULL, 0, &o, &r, &retry_after, &err) == LAMP_EVALUE);
    CHECK(strstr(err.message, "'file'") != NULL && r.attempts == 0);
    const char *headers[] = {"Authorization: Bearer sk-secret\r\nX: 1", NULL};
    o.headers = headers;
    CHECK(lamp_http_single("POST", "http://127.0.0.1:9/", NULL, 0, &o, &r, &retry_after, &err) == LAMP_EVALUE);
    CHECK(strstr(err.message, "sk-secret") == NULL && r.attempts == 0);
}

static int stop_at_once(void *arg)
{
    (void)arg;
    return 1;
}

static const char ok_reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";

/* Posts n requests ("/x") to the mini server as one endpoint; returns lamp_http_batch's code. */
static int mini_batch(mini_server *s, int n, lamp_http_options *o, lamp_http_response *resps,
                      lamp_http_endpoint_stats *stats)
{
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d/v1", s->port);
    const char *endpoints[] = {base};
    lamp_http_request reqs[6];
    for (int i = 0; i < n; i++)
        reqs[i] = (lamp_http_request){"/x", "{\"p\": 0123456789}", 17};
    o->endpoints = endpoints;
    o->n_endpoints = 1;
    o->endpoint_stats = stats;
    lamp_error err;
    lamp_error_clear(&err);
    int rc = lamp_http_batch(reqs, n, o, resps, &err);
    o->endpoints = NULL;
    return rc;
}

static void test_requests_per_minute_paces_the_starts(void)
{
    mini_server s = {.n_replies = 4, .replies = {ok_reply, ok_reply, ok_reply, ok_reply}};
    pthread_t thread;
    CHECK(mini_start(&s, &thread) == 0);
    lamp_http_pace pace = {0.0, 0.0};
    lamp_http_options o = {.concurrency = 4, .timeout = 5.0, .connect_timeout = 2.0, .max_retries = 0,
                           .backoff_base = 0.001, .backoff_max = 0.01, .max_response = 1024, .verify_tls = 1,
                           .requests_per_minute = 600.0, .pace = &pace};
    lamp_http_response resps[4];
    lamp_http_endpoint_stats stats;
    CHECK(mini_batch(&s, 4, &o, resps, &stats) == LAMP_OK);
    pthread_join(thread, NULL);
    close(s.fd);
    for (int i = 0; i < 4; i++) {
        CHECK(resps[i].ok);
        lamp_http_response_clear(&resps[i]);
    }
    /* 600 a minute: one start every 0.1 s (0.05 s of slack), although 4 could be in flight at once */
    CHECK(s.served == 4 && s.at[3] - s.at[0] >= 0.2);
    CHECK(pace.request_wait > 0.0 && pace.request_wait <= 0.15 && pace.token_wait == 0.0);
    /* tokens: each request counts 17 / 4 + 96 = 100 tokens; 60,000 a minute is 10 requests a second */
    mini_server t = {.n_replies = 3, .replies = {ok_reply, ok_reply, ok_reply}};
    CHECK(mini_start(&t, &thread) == 0);
    o.requests_per_minute = 0.0;
    o.tokens_per_minute = 60000.0;
    o.tokens_per_request = 96;
    pace = (lamp_http_pace){0.0, 0.0};
    CHECK(mini_batch(&t, 3, &o, resps, &stats) == LAMP_OK);
    pthread_join(thread, NULL);
    close(t.fd);
    for (int i = 0; i < 3; i++) {
        CHECK(resps[i].ok);
        lamp_http_response_clear(&resps[i]);
    }
    CHECK(t.served == 3 && t.at[2] - t.at[0] >= 0.1);
    CHECK(pace.token_wait > 0.0 && pace.request_wait == 0.0);
    o.tokens_per_minute = -1.0;
    lamp_error err;
    lamp_http_request req = {"http://127.0.0.1:9/v1", "{}", 2};
    CHECK(lamp_http_batch(&req, 1, &o, resps, &err) == LAMP_EVALUE);
}

static void test_rate_limit_headers_pause_the_endpoint(void)
{
    /* a reply that says the requests are used up for 300 ms: the next request waits for the reset */
    mini_server s = {.n_replies = 2, .replies = {
        "HTTP/1.1 200 OK\r\nx-ratelimit-remaining-requests: 0\r\nx-ratelimit-reset-requests: 300ms\r\n"
        "Content-Length: 2\r\nConnection: close\r\n\r\n{}", ok_reply}};
    pthread_t thread;
    CHECK(mini_start(&s, &thread) == 0);
    lamp_http_options o = {.concurrency = 1, .timeout = 5.0, .connect_timeout = 2.0, .max_retries = 0,
                           .backoff_base = 0.001, .backoff_max = 5.0, .max_response = 1024, .verify_tls = 1};
    lamp_http_response resps[2];
    lamp_http_endpoint_stats stats;
    CHECK(mini_batch(&s, 2, &o, resps, &stats) == LAMP_OK);
    pthread_join(thread, NULL);
    close(s.fd);
    CHECK(resps[0].ok && resps[1].ok && s.at[1] - s.at[0] >= 0.25);
    CHECK(stats.taken_out == 1 && stats.answered == 2);
    for (int i = 0; i < 2; i++)
        lamp_http_response_clear(&resps[i]);
    /* a 429 with Retry-After: 0, then a 500: the request retries on its own; the endpoint is never out */
    mini_server t = {.n_replies = 3, .replies = {
        "HTTP/1.1 429 Slow down\r\nRetry-After: 0\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        "HTTP/1.1 500 Oops\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}", ok_reply}};
    CHECK(mini_start(&t, &thread) == 0);
    o.max_retries = 2;
    o.backoff_max = 0.01;
    CHECK(mini_batch(&t, 1, &o, resps, &stats) == LAMP_OK);
    pthread_join(thread, NULL);
    close(t.fd);
    CHECK(resps[0].ok && resps[0].attempts == 3 && stats.taken_out == 0 && stats.failed == 2);
    lamp_http_response_clear(&resps[0]);
}

static void test_single_request_stops_when_asked(void)
{
    lamp_http_options o = {.timeout = 2.0, .connect_timeout = 1.0, .max_retries = 2, .backoff_base = 0.001,
                           .backoff_max = 0.002, .max_response = 1024, .verify_tls = 1,
                           .should_stop = stop_at_once};
    lamp_http_response r;
    double retry_after;
    lamp_error err;
    CHECK(lamp_http_single("GET", "http://127.0.0.1:9/v1", NULL, 0, &o, &r, &retry_after, &err) == LAMP_EINTR);
    CHECK(!r.done && !r.body);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    RUN(test_retry_after_parsing);
    RUN(test_duration_parsing);
    RUN(test_reply_headers_and_server_pause);
    RUN(test_backoff);
    RUN(test_retryable);
    RUN(test_connection_refused_is_reported_per_request);
    RUN(test_only_http_and_https_urls);
    RUN(test_file_url_is_refused_before_sending);
    RUN(test_headers_without_cr_or_lf);
    RUN(test_endpoints_all_refusing_use_every_endpoint_budget);
    RUN(test_health_carries_a_take_out_to_the_next_batch);
    RUN(test_single_request_retries_then_answers);
    RUN(test_single_get_final_status_keeps_body_and_retry_after);
    RUN(test_single_request_refusals);
    RUN(test_single_request_stops_when_asked);
    RUN(test_requests_per_minute_paces_the_starts);
    RUN(test_rate_limit_headers_pause_the_endpoint);
    curl_global_cleanup();
    return CHECK_SUMMARY("test_http");
}
