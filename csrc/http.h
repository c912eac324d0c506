/* A batch HTTP POST engine over libcurl's multi interface (LLM transport).
 *
 * Many requests are in flight on one thread.  A request that fails with a
 * connection error, a timeout, a partial body, HTTP 429 or a 5xx status is
 * retried after an exponential backoff with jitter (base * 2^attempt, times a
 * factor in [0.5, 1.5), capped), or after the server's Retry-After seconds
 * when it sends them; other 4xx are final at once.  The final failure of a
 * request is reported in its own response; the batch goes on.
 *
 * The engine knows nothing of JSON or of the LLM API: it posts bytes and
 * returns bytes.  Headers (including any Authorization header) are passed
 * in by the caller and never copied into an error message.
 */
#ifndef LAMP_HTTP_H
#define LAMP_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "lamp_error.h"

typedef struct {
    const char *url;
    const char *body;
    size_t body_len;
} lamp_http_request;

typedef struct {
    long status;     /* last HTTP status (0: no response) */
    char *body;      /* malloc'ed (caller frees with lamp_http_response_clear) */
    size_t body_len;
    int done;        /* 1 when finished (success or final failure) */
    int ok;          /* 1 on a 2xx response */
    int attempts;
    char error[256]; /* why it failed, when !ok */
} lamp_http_response;

typedef struct {
    int concurrency;          /* requests in flight (>= 1) */
    double timeout;           /* seconds per attempt */
    double connect_timeout;   /* seconds */
    int max_retries;          /* retries after the first attempt */
    double backoff_base;      /* seconds */
    double backoff_max;       /* seconds */
    size_t max_response;      /* bytes; larger replies fail */
    int verify_tls;
    const char *const *headers; /* NULL-terminated "Name: value" strings */
    uint64_t seed;            /* jitter */
    /* polled about every 100 ms; non-zero stops the batch (LAMP_EINTR), keeping finished responses */
    int (*should_stop)(void *arg);
    void *stop_arg;
} lamp_http_options;

/* Backoff before retry number `attempt` (1-based), in seconds: the server's
 * Retry-After when >= 0, else base * 2^(attempt-1) * jitter, capped at max. */
double lamp_http_backoff(int attempt, double retry_after, double base, double max, double jitter01);

/* Seconds of a Retry-After header value ("120"), or -1 when absent or not a number of seconds. */
double lamp_http_parse_retry_after(const char *value);

/* 1 when a status (0 = transport failure) is worth retrying. */
int lamp_http_retryable_status(long status);

/* LAMP_OK when url starts with http:// or https:// (scheme in any case); else LAMP_EVALUE with a
 * message naming the URL's scheme (and nothing else of the URL). */
int lamp_http_check_url(const char *url, lamp_error *err);

/* LAMP_OK when a "Name: value" header holds no CR or LF (which would smuggle in more headers or a
 * request of their own); else LAMP_EVALUE with a message naming the header, never its value (an
 * API key, say). */
int lamp_http_check_header(const char *header, lamp_error *err);

/* Posts every request; only http:// and https:// URLs are accepted (checked before anything is
 * sent, and libcurl is restricted to those two protocols, redirects included), and the headers
 * are checked with lamp_http_check_header. */
int lamp_http_batch(const lamp_http_request *requests, int64_t n, const lamp_http_options *options,
                    lamp_http_response *responses, lamp_error *err);

void lamp_http_response_clear(lamp_http_response *response);

#endif
