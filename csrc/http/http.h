/* A batch HTTP POST engine over libcurl's multi interface (LLM transport), and single GET / POST
 * requests with the same retries (lamp_http_single).
 *
 * Many requests are in flight on one thread.  A request that fails with a connection error, a timeout,
 * a partial body, HTTP 408, 429 or a 5xx status is retried after its own backoff: the server's
 * retry-after-ms or Retry-After (seconds or an HTTP date) when it sends one, else base * 2^(attempt-1)
 * times a factor in [0.5, 1.5), capped at backoff_max.  A request waiting for its backoff holds no slot:
 * the other requests keep flowing.  Other 4xx are final at once.  The final failure of a request is
 * reported in its own response; the batch goes on.
 *
 * Several endpoints (base URLs: replicas of one server, or a hosted API and a local fallback) may share
 * one batch.  Each endpoint has `concurrency` requests in flight; the requests are spread over the
 * endpoints that are in, one at a time per endpoint in turn.  An endpoint is taken out as a whole only
 * (1) when it cannot be reached: no connection (refused, no such host, connect timeout), a connection
 * closed before any byte of a reply, or `take_out_after` timeouts in a row without a byte of a reply;
 * it stays out backoff_base * 2^(k-1) * jitter (k: such take-outs since its last reply), capped at
 * backoff_max, then takes one probe request at a time until one gets a reply; or (2) when the server
 * asks for a pause: a 429 or 503 whose Retry-After is over LAMP_HTTP_PAUSE_AFTER seconds, or
 * x-ratelimit-remaining-requests (or -tokens): 0 with x-ratelimit-reset-requests (-tokens), on any
 * reply; it is out for that long (at most backoff_max), then fully back.  A 429 or 5xx by itself never
 * takes an endpoint out.  A failed request is retried on another endpoint at once, or on the same one
 * after its backoff; each request has up to 1 + max_retries attempts on each endpoint and is
 * final-failed only when every endpoint has used those up (or at once on a non-retryable status).  A
 * request is in flight on one endpoint at a time and is answered once.
 *
 * Optional client-side rate limits (requests_per_minute, tokens_per_minute) pace the starts of all
 * attempts over all endpoints: a start is allowed when it keeps the count of starts in any window of w
 * seconds within 1 + (w + 0.05) * rate / 60 (a request's tokens: its body length / 4 plus
 * tokens_per_request).  The pace carries from one batch to the next in `pace`.
 *
 * The engine knows nothing of JSON or of the LLM API: it posts bytes and
 * returns bytes.  Headers (including any Authorization header) are passed
 * in by the caller and never copied into an error message.
 */
#ifndef LAMP_HTTP_H
#define LAMP_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "common/lamp_error.h"

typedef struct {
    const char *url; /* the full URL; with options->endpoints, the path appended to each endpoint's URL */
    const char *body;
    size_t body_len;
} lamp_http_request;

typedef struct {
    int64_t sent;              /* attempts started on this endpoint */
    int64_t answered;          /* 2xx replies */
    int64_t failed;            /* failed attempts (transport errors, HTTP errors) */
    int64_t retried_elsewhere; /* requests that failed here and were then sent to another endpoint */
    int64_t taken_out;         /* times the endpoint was taken out */
} lamp_http_endpoint_stats;

/* An endpoint's circuit breaker, carried by the caller from one batch to the next. */
typedef struct {
    double out_for;  /* seconds it stays out from now (0: in) */
    int outs;        /* take-outs for want of a reply since its last reply (> 0: one probe at a time once back) */
    int consecutive; /* timeouts in a row without a byte of a reply */
    int unreachable; /* take-outs in a row for a connection that could not be made (no HTTP reply since) */
} lamp_http_endpoint_health;

/* The client-side pace, carried by the caller from one batch to the next: seconds from now until the
 * next start is due by each limit (0: at once). */
typedef struct {
    double request_wait;
    double token_wait;
} lamp_http_pace;

/* What the headers of a reply say about retrying and rate limits (-1: not sent or not understood). */
typedef struct {
    double retry_after;        /* Retry-After, in seconds (an HTTP date: the seconds until then, >= 0) */
    double retry_after_ms;     /* retry-after-ms (OpenAI's), in seconds */
    double remaining_requests; /* x-ratelimit-remaining-requests */
    double reset_requests;     /* x-ratelimit-reset-requests, in seconds ("1s", "6m0s", "250ms") */
    double remaining_tokens;   /* x-ratelimit-remaining-tokens */
    double reset_tokens;       /* x-ratelimit-reset-tokens, in seconds */
} lamp_http_reply_info;

/* A Retry-After of more than this many seconds on a 429 or 503 takes the whole endpoint out. */
#define LAMP_HTTP_PAUSE_AFTER 5.0

typedef struct {
    long status;     /* last HTTP status (0: no response) */
    char *body;      /* malloc'ed (caller frees with lamp_http_response_clear) */
    size_t body_len;
    int done;        /* 1 when finished (success or final failure) */
    int ok;          /* 1 on a 2xx response */
    int attempts;    /* on all endpoints */
    int endpoint;    /* endpoint of the last attempt (-1: none) */
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
    /* optional: base URLs ("http://host:8000/v1"), each request's url a path appended to them; NULL: one
     * endpoint, the requests' full URLs */
    const char *const *endpoints;
    int n_endpoints;
    int take_out_after;       /* timeouts in a row without a byte of a reply that take an endpoint out (0: 3) */
    lamp_http_endpoint_stats *endpoint_stats; /* optional out: one per endpoint (1 without endpoints) */
    lamp_http_endpoint_health *health; /* optional in/out, one per endpoint: NULL starts every endpoint in */
    /* optional: called about every 100 ms while requests finish, at least every second otherwise, and at
     * the end, with the number of requests answered (2xx) and final-failed so far (same thread as
     * should_stop) */
    void (*on_progress)(void *arg, int64_t answered, int64_t failed);
    void *progress_arg;
    /* optional: called as soon as request `index` is answered (2xx; its body complete in responses[index]),
     * before any other request is handled, so that the caller can store it at once (same thread as
     * should_stop; with progress_arg) */
    void (*on_answer)(void *arg, int64_t index, const lamp_http_response *response);
    /* optional client-side rate limits over all endpoints (0: none): attempts started per minute, and
     * tokens per minute, a request counting body_len / 4 + tokens_per_request tokens (its max_tokens) */
    double requests_per_minute;
    double tokens_per_minute;
    int64_t tokens_per_request;
    lamp_http_pace *pace; /* optional in/out: the pace left by the previous batch (NULL: none) */
} lamp_http_options;

/* Backoff before retry number `attempt` (1-based), in seconds: the server's
 * Retry-After when >= 0, else base * 2^(attempt-1) * jitter, capped at max. */
double lamp_http_backoff(int attempt, double retry_after, double base, double max, double jitter01);

/* Seconds of a Retry-After header value: "120", or an HTTP date ("Wed, 21 Oct 2015 07:28:00 GMT"): the
 * seconds from `now_epoch` (seconds since 1970) until then, 0 when it has passed; -1 when absent or
 * neither. */
double lamp_http_parse_retry_after_at(const char *value, double now_epoch);

/* lamp_http_parse_retry_after_at with the current time. */
double lamp_http_parse_retry_after(const char *value);

/* Seconds of a duration: "1s", "6m0s", "1h2m3.5s", "250ms", "20us", or a plain number of seconds ("0.5");
 * -1 when absent or not one. */
double lamp_http_parse_duration(const char *value);

/* Sets every field of *info to -1 (nothing known). */
void lamp_http_reply_info_clear(lamp_http_reply_info *info);

/* Reads one header line ("Name: value\r\n", `len` bytes, not NUL-terminated) into *info; a status line
 * ("HTTP/...") starts a new reply and clears it. */
void lamp_http_reply_info_line(lamp_http_reply_info *info, const char *line, size_t len);

/* The seconds the server asks this request to wait (retry-after-ms, else Retry-After), or -1. */
double lamp_http_reply_retry_after(const lamp_http_reply_info *info);

/* The seconds the server asks the whole endpoint to pause after a reply with this status and headers:
 * the Retry-After of a 429 or 503 when over LAMP_HTTP_PAUSE_AFTER, the reset time of a rate limit whose
 * remaining count is 0, whichever is longer; 0 when it asks for none. */
double lamp_http_server_pause(const lamp_http_reply_info *info, long status);

/* 1 when a status (0 = transport failure) is worth retrying. */
int lamp_http_retryable_status(long status);

/* LAMP_OK when url starts with http:// or https:// (scheme in any case); else LAMP_EVALUE with a
 * message naming the URL's scheme (and nothing else of the URL). */
int lamp_http_check_url(const char *url, lamp_error *err);

/* LAMP_OK when a "Name: value" header holds no CR or LF (which would smuggle in more headers or a
 * request of their own); else LAMP_EVALUE with a message naming the header, never its value (an
 * API key, say). */
int lamp_http_check_header(const char *header, lamp_error *err);

/* Posts every request (spread over the endpoints, see above); only http:// and https:// URLs are accepted (checked before anything is
 * sent, and libcurl is restricted to those two protocols, redirects included), and the headers
 * are checked with lamp_http_check_header.  `concurrency` is per endpoint. */
int lamp_http_batch(const lamp_http_request *requests, int64_t n, const lamp_http_options *options,
                    lamp_http_response *responses, lamp_error *err);

/* One request, GET or POST (the control calls of a batch API: upload a file, create or poll a job,
 * download its output), to a full http:// or https:// URL (checked like lamp_http_batch's, and the
 * headers with lamp_http_check_header, before anything is sent).  `body` NULL sends none (a GET must
 * have none; a POST then sends an empty body).  Retried like a request of lamp_http_batch on one endpoint:
 * a transport error (connection refused or reset, timeout, partial body), HTTP 408, 429 or 5xx is
 * retried up to options->max_retries times, after lamp_http_backoff (the server's retry-after-ms or
 * Retry-After when it sends one), and at least the pause lamp_http_server_pause asks for (at most
 * backoff_max); other statuses are final at once.  Of the options, timeout, connect_timeout,
 * max_retries, backoff_base, backoff_max, max_response, verify_tls, headers, seed and should_stop /
 * stop_arg (polled about every 100 ms, also while waiting to retry) are used; the rest is ignored.
 * Returns LAMP_OK with *response done (ok on a 2xx; its body, or the error body of a final HTTP failure;
 * status, attempts, error) and *retry_after the last reply's retry-after-ms or Retry-After seconds (-1: none);
 * LAMP_EVALUE for a bad method, URL or header (nothing sent); LAMP_EINTR when should_stop stopped it. */
int lamp_http_single(const char *method, const char *url, const char *body, size_t body_len,
                     const lamp_http_options *options, lamp_http_response *response, double *retry_after,
                     lamp_error *err);

void lamp_http_response_clear(lamp_http_response *response);

#endif
