#include "http/http.h"

#include "common/rng.h"

#include <ctype.h>
#include <curl/curl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double lamp_http_backoff(int attempt, double retry_after, double base, double max, double jitter01)
{
    if (retry_after >= 0.0)
        return retry_after < max ? retry_after : max;
    double wait = base * ldexp(1.0, attempt > 1 ? attempt - 1 : 0) * (0.5 + jitter01);
    return wait < max ? wait : max;
}

/* Skips spaces and tabs. */
static const char *skip_blanks(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* 1 when only spaces, tabs, CR and LF are left. */
static int only_blanks(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    return *s == '\0';
}

/* A non-negative decimal number at the start of s (digits, at most one point): its value and *end, or -1. */
static double leading_number(const char *s, const char **end)
{
    const char *c = s;
    int digits = 0;
    while (isdigit((unsigned char)*c))
        c++, digits++;
    if (*c == '.') {
        c++;
        while (isdigit((unsigned char)*c))
            c++, digits++;
    }
    if (!digits)
        return -1.0;
    char tmp[64];
    size_t n = (size_t)(c - s) < sizeof tmp - 1 ? (size_t)(c - s) : sizeof tmp - 1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    *end = c;
    double v = strtod(tmp, NULL);
    return isfinite(v) ? v : -1.0;
}

double lamp_http_parse_retry_after_at(const char *value, double now_epoch)
{
    if (!value)
        return -1.0;
    value = skip_blanks(value);
    if (isdigit((unsigned char)*value)) {
        const char *end;
        double seconds = leading_number(value, &end);
        return seconds >= 0.0 && only_blanks(end) ? seconds : -1.0;
    }
    /* an HTTP date (RFC 9110: IMF-fixdate, or the obsolete RFC 850 and asctime forms curl also reads) */
    char date[64];
    size_t n = 0;
    while (value[n] && value[n] != '\r' && value[n] != '\n' && n < sizeof date - 1)
        n++;
    memcpy(date, value, n);
    date[n] = '\0';
    if (!isalpha((unsigned char)date[0]))
        return -1.0;
    time_t at = curl_getdate(date, NULL);
    if (at == (time_t)-1)
        return -1.0;
    double left = (double)at - now_epoch;
    return left > 0.0 ? left : 0.0;
}

double lamp_http_parse_retry_after(const char *value)
{
    return lamp_http_parse_retry_after_at(value, (double)time(NULL));
}

double lamp_http_parse_duration(const char *value)
{
    if (!value)
        return -1.0;
    const char *c = skip_blanks(value);
    double total = 0.0;
    int parts = 0;
    while (!only_blanks(c)) {
        const char *end;
        double v = leading_number(c, &end);
        if (v < 0.0)
            return -1.0;
        c = end;
        double unit;
        if (c[0] == 'h')
            unit = 3600.0, c += 1;
        else if (c[0] == 'm' && c[1] == 's')
            unit = 1e-3, c += 2;
        else if (c[0] == 'm')
            unit = 60.0, c += 1;
        else if (c[0] == 's')
            unit = 1.0, c += 1;
        else if (c[0] == 'u' && c[1] == 's')
            unit = 1e-6, c += 2;
        else if ((unsigned char)c[0] == 0xc2 && (unsigned char)c[1] == 0xb5 && c[2] == 's') /* UTF-8 micro sign */
            unit = 1e-6, c += 3;
        else if (c[0] == 'n' && c[1] == 's')
            unit = 1e-9, c += 2;
        else if (parts == 0 && only_blanks(c))
            unit = 1.0; /* a plain number: seconds */
        else
            return -1.0;
        total += v * unit;
        parts++;
    }
    return parts ? total : -1.0;
}

void lamp_http_reply_info_clear(lamp_http_reply_info *info)
{
    info->retry_after = info->retry_after_ms = -1.0;
    info->remaining_requests = info->reset_requests = -1.0;
    info->remaining_tokens = info->reset_tokens = -1.0;
}

/* 1 when the line starts with `name` (lower case, with its ':'), any case; *value then points after it. */
static int header_is(const char *line, size_t len, const char *name, const char **value)
{
    size_t n = strlen(name);
    if (len < n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (tolower((unsigned char)line[i]) != name[i])
            return 0;
    *value = line + n;
    return 1;
}

void lamp_http_reply_info_line(lamp_http_reply_info *info, const char *line, size_t len)
{
    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        lamp_http_reply_info_clear(info); /* a new reply (after a 100 Continue, say) */
        return;
    }
    static const char *const names[] = {"retry-after:", "retry-after-ms:", "x-ratelimit-remaining-requests:",
                                        "x-ratelimit-reset-requests:", "x-ratelimit-remaining-tokens:",
                                        "x-ratelimit-reset-tokens:"};
    for (int k = 0; k < 6; k++) {
        const char *start;
        if (!header_is(line, len, names[k], &start))
            continue;
        char value[96];
        size_t n = len - (size_t)(start - line);
        n = n < sizeof value - 1 ? n : sizeof value - 1;
        memcpy(value, start, n);
        value[n] = '\0';
        const char *v = skip_blanks(value), *end;
        double number;
        switch (k) {
        case 0:
            info->retry_after = lamp_http_parse_retry_after(v);
            break;
        case 1:
            number = leading_number(v, &end);
            info->retry_after_ms = number >= 0.0 && only_blanks(end) ? number / 1000.0 : -1.0;
            break;
        case 2:
        case 4:
            number = leading_number(v, &end);
            *(k == 2 ? &info->remaining_requests : &info->remaining_tokens) =
                number >= 0.0 && only_blanks(end) ? number : -1.0;
            break;
        default:
            *(k == 3 ? &info->reset_requests : &info->reset_tokens) = lamp_http_parse_duration(v);
        }
        return;
    }
}

double lamp_http_reply_retry_after(const lamp_http_reply_info *info)
{
    return info->retry_after_ms >= 0.0 ? info->retry_after_ms : info->retry_after;
}

double lamp_http_server_pause(const lamp_http_reply_info *info, long status)
{
    double pause = 0.0, asked = lamp_http_reply_retry_after(info);
    if ((status == 429 || status == 503) && asked > LAMP_HTTP_PAUSE_AFTER)
        pause = asked;
    if (info->remaining_requests == 0.0 && info->reset_requests > pause)
        pause = info->reset_requests;
    if (info->remaining_tokens == 0.0 && info->reset_tokens > pause)
        pause = info->reset_tokens;
    return pause;
}

int lamp_http_retryable_status(long status)
{
    return status == 0 || status == 408 || status == 429 || status >= 500;
}

static int starts_with_nocase(const char *s, const char *prefix)
{
    for (; *prefix; s++, prefix++)
        if (tolower((unsigned char)*s) != *prefix)
            return 0;
    return 1;
}

int lamp_http_check_url(const char *url, lamp_error *err)
{
    if (starts_with_nocase(url, "http://") || starts_with_nocase(url, "https://"))
        return LAMP_OK;
    /* a scheme is a letter then letters, digits, '+', '-' or '.', up to a ':' */
    size_t n = 0;
    if (isalpha((unsigned char)url[0]))
        while (isalnum((unsigned char)url[n]) || url[n] == '+' || url[n] == '-' || url[n] == '.')
            n++;
    if (n > 0 && url[n] == ':' && (starts_with_nocase(url, "http:") || starts_with_nocase(url, "https:")))
        return lamp_error_set(err, LAMP_EVALUE, "URL scheme '%.*s' must be followed by '//': only http:// and "
                              "https:// URLs are accepted", (int)n, url);
    if (n > 0 && url[n] == ':')
        return lamp_error_set(err, LAMP_EVALUE,
                              "URL scheme '%.*s' is not allowed: only http:// and https:// URLs are accepted",
                              n > 32 ? 32 : (int)n, url);
    return lamp_error_set(err, LAMP_EVALUE, "the URL has no scheme: only http:// and https:// URLs are accepted");
}

int lamp_http_check_header(const char *header, lamp_error *err)
{
    if (!strpbrk(header, "\r\n"))
        return LAMP_OK;
    /* the name: up to the ':' (or to the CR / LF when that comes first), printable characters only */
    char name[65];
    size_t n = 0;
    for (const char *c = header; *c && *c != ':' && *c != '\r' && *c != '\n' && n < sizeof name - 1; c++)
        name[n++] = isprint((unsigned char)*c) ? *c : '?';
    name[n] = '\0';
    return lamp_error_set(err, LAMP_EVALUE,
                          "header '%s' contains a carriage return or line feed, which HTTP headers may not hold "
                          "(its value is not shown)",
                          name);
}

void lamp_http_response_clear(lamp_http_response *r)
{
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    CURL *easy;
    int64_t index; /* request being served, -1 when free */
    int endpoint;
    char *buf;
    size_t len, cap, limit;
    int too_big;
    size_t reply_bytes; /* bytes of a reply received (status line, headers, body) */
    lamp_http_reply_info info;
    char *url;
    size_t url_cap;
} transfer;

/* The circuit breaker of one endpoint. */
typedef struct {
    const char *prefix; /* "" without endpoints */
    size_t prefix_len;
    double out_until;   /* taken out until then */
    int outs;           /* take-outs for want of a reply since its last reply: > 0 means half-open once back */
    int hung;           /* timeouts in a row without a byte of a reply */
    int unreachable;    /* take-outs in a row for a connection that could not be made; any HTTP reply resets it */
    int in_flight;
} endpoint_state;

static size_t on_body(char *data, size_t size, size_t count, void *arg)
{
    transfer *t = arg;
    size_t n = size * count;
    t->reply_bytes += n;
    if (t->len + n > t->limit) {
        t->too_big = 1;
        return 0;
    }
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *bigger = realloc(t->buf, cap);
        if (!bigger)
            return 0;
        t->buf = bigger;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, data, n);
    t->len += n;
    t->buf[t->len] = '\0';
    return n;
}

static size_t on_header(char *data, size_t size, size_t count, void *arg)
{
    transfer *t = arg;
    size_t n = size * count;
    t->reply_bytes += n;
    lamp_http_reply_info_line(&t->info, data, n);
    return n;
}

/* The options every transfer shares: http(s) only, headers, body and header sinks, timeouts, TLS. */
static void set_common_options(CURL *e, transfer *t, const lamp_http_options *o, struct curl_slist *headers)
{
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85.0 */
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(o->timeout * 1000.0));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(o->connect_timeout * 1000.0));
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, o->verify_tls ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, o->verify_tls ? 2L : 0L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)t);
}

/* The NULL-terminated "Name: value" strings as a curl list (*out, which the caller frees). */
static int header_list(const char *const *strings, struct curl_slist **out, lamp_error *err)
{
    for (const char *const *h = strings; h && *h; h++) {
        struct curl_slist *more = curl_slist_append(*out, *h);
        if (!more)
            return lamp_error_set(err, LAMP_ENOMEM, "out of memory for headers");
        *out = more;
    }
    return LAMP_OK;
}

/* 0, or -1 when out of memory or curl refused the transfer */
static int start(CURLM *multi, transfer *t, const lamp_http_request *req, const endpoint_state *ep, int endpoint,
                 const lamp_http_options *o, struct curl_slist *headers, int64_t index)
{
    const char *path = req->url ? req->url : "";
    size_t path_len = strlen(path), need = ep->prefix_len + path_len + 1;
    if (need > t->url_cap) {
        char *bigger = realloc(t->url, need);
        if (!bigger)
            return -1;
        t->url = bigger;
        t->url_cap = need;
    }
    memcpy(t->url, ep->prefix, ep->prefix_len);
    memcpy(t->url + ep->prefix_len, path, path_len + 1);
    curl_easy_reset(t->easy);
    t->index = index;
    t->endpoint = endpoint;
    t->len = 0;
    t->too_big = 0;
    t->reply_bytes = 0;
    lamp_http_reply_info_clear(&t->info);
    t->limit = o->max_response;
    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, t->url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    set_common_options(e, t, o, headers);
    return curl_multi_add_handle(multi, e) == CURLM_OK ? 0 : -1;
}

/* How many more requests endpoint `ep` may take now: none while out, one probe at a time while
 * half-open (taken out for want of a reply, and no reply since), else up to `concurrency` in flight.  When
 * every endpoint is out or half-open (`all_out`: one endpoint, or all of them unreachable) there is nowhere
 * better to send a request: once its cool-down is over an endpoint takes up to `concurrency` again, so a
 * dead server fails a batch after each request's own attempts instead of one probe per cool-down. */
enum { LAMP_HTTP_DOWN_AFTER = 4 };

static int room(const endpoint_state *ep, double now, int concurrency, int all_out)
{
    if (now < ep->out_until)
        return 0;
    int cap = ep->outs > 0 && !all_out ? 1 : concurrency;
    return cap - ep->in_flight;
}

/* A request waiting to be retried that endpoint e may take now (its attempts there not used up and its
 * backoff there over), else a new one; -1 when none. */
static int64_t pick(int e, int E, double now, int max_retries, const int *tries, const double *ready,
                    int64_t *waiting, int64_t *n_waiting, int64_t *next_new, int64_t n)
{
    for (int64_t w = 0; w < *n_waiting; w++) {
        int64_t i = waiting[w];
        if (tries[i * E + e] <= max_retries && ready[i * E + e] <= now) {
            waiting[w] = waiting[--*n_waiting];
            return i;
        }
    }
    return *next_new < n ? (*next_new)++ : -1;
}

/* The client-side rate limits, one generic cell rate algorithm per limit: `due` is when the next start is
 * due; a start is allowed from due - LAMP_HTTP_PACE_SLACK on, and moves due to max(due, now) + its cost *
 * 60 / rate (cost 1 request, or body_len / 4 + tokens_per_request tokens).  So in any window of w seconds
 * at most 1 + (w + slack) * rate / 60 requests (tokens) start. */
#define LAMP_HTTP_PACE_SLACK 0.05

typedef struct {
    double requests_per_minute, tokens_per_minute;
    int64_t tokens_per_request;
    double due_requests, due_tokens;
} pacer;

/* The time from which the next start is allowed (-inf without limits). */
static double pace_allowed_at(const pacer *p)
{
    double at = -INFINITY;
    if (p->requests_per_minute > 0.0)
        at = p->due_requests - LAMP_HTTP_PACE_SLACK;
    if (p->tokens_per_minute > 0.0 && p->due_tokens - LAMP_HTTP_PACE_SLACK > at)
        at = p->due_tokens - LAMP_HTTP_PACE_SLACK;
    return at;
}

static void pace_take(pacer *p, double now, size_t body_len)
{
    if (p->requests_per_minute > 0.0)
        p->due_requests = (p->due_requests > now ? p->due_requests : now) + 60.0 / p->requests_per_minute;
    if (p->tokens_per_minute > 0.0) {
        double tokens = (double)(body_len / 4) + (double)p->tokens_per_request;
        p->due_tokens = (p->due_tokens > now ? p->due_tokens : now) + tokens * 60.0 / p->tokens_per_minute;
    }
}

/* The server asked endpoint `ep` to pause for `pause` seconds (at most `max`): it is out until then. */
static void pause_endpoint(endpoint_state *ep, double now, double pause, double max, lamp_http_endpoint_stats *stats)
{
    double until = now + (pause < max ? pause : max);
    if (!(pause > 0.0) || until <= ep->out_until)
        return;
    if (stats && now >= ep->out_until)
        stats->taken_out++;
    ep->out_until = until;
}

static double seconds_left(double until, double now)
{
    double left = until - now;
    return left > 0.0 && left < 1e9 ? left : 0.0;
}

int lamp_http_batch(const lamp_http_request *requests, int64_t n, const lamp_http_options *o,
                    lamp_http_response *responses, lamp_error *err)
{
    if (o->concurrency < 1)
        return lamp_error_set(err, LAMP_EVALUE, "concurrency must be at least 1");
    if (o->max_retries < 0 || !(o->timeout > 0.0) || !(o->connect_timeout > 0.0))
        return lamp_error_set(err, LAMP_EVALUE, "max_retries must be >= 0 and timeouts positive");
    if (!(o->requests_per_minute >= 0.0) || !(o->tokens_per_minute >= 0.0) || !isfinite(o->requests_per_minute) ||
        !isfinite(o->tokens_per_minute) || o->tokens_per_request < 0)
        return lamp_error_set(err, LAMP_EVALUE, "rate limits must be finite and >= 0 (0: none)");
    if (o->endpoints && (o->n_endpoints < 1 || o->n_endpoints > 1024))
        return lamp_error_set(err, LAMP_EVALUE, "there must be 1 to 1024 endpoints, got %d", o->n_endpoints);
    const int E = o->endpoints ? o->n_endpoints : 1;
    for (int64_t i = 0; i < n; i++) {
        memset(&responses[i], 0, sizeof responses[i]);
        responses[i].endpoint = -1;
    }
    for (int e = 0; o->endpoints && e < E; e++) {
        if (!o->endpoints[e])
            return lamp_error_set(err, LAMP_EVALUE, "endpoint %d has no URL", e);
        if (lamp_http_check_url(o->endpoints[e], err) != LAMP_OK)
            return LAMP_EVALUE;
    }
    for (int64_t i = 0; i < n; i++) {
        if ((!o->endpoints && !requests[i].url) || !requests[i].body)
            return lamp_error_set(err, LAMP_EVALUE, "request %lld has no URL or body", (long long)i);
        if (!o->endpoints && lamp_http_check_url(requests[i].url, err) != LAMP_OK)
            return LAMP_EVALUE;
    }
    for (const char *const *h = o->headers; h && *h; h++)
        if (lamp_http_check_header(*h, err) != LAMP_OK)
            return LAMP_EVALUE;
    lamp_http_endpoint_stats *stats = o->endpoint_stats;
    if (stats)
        memset(stats, 0, (size_t)E * sizeof *stats);
    if (n == 0)
        return LAMP_OK;
    const int take_out_after = o->take_out_after > 0 ? o->take_out_after : 3;
    int64_t want = (int64_t)o->concurrency * E;
    int rc = LAMP_OK, slots = (int)(want < n ? want : n);
    uint64_t rng = o->seed ? o->seed : 0x5eed;
    CURLM *multi = curl_multi_init();
    transfer *pool = calloc((size_t)slots, sizeof *pool);
    endpoint_state *eps = calloc((size_t)E, sizeof *eps);
    double *ready = calloc((size_t)n * (size_t)E, sizeof(double)); /* per request and endpoint: retry after */
    int *tries = calloc((size_t)n * (size_t)E, sizeof(int));       /* per request and endpoint: attempts */
    int *last_failed = malloc((size_t)n * sizeof(int));           /* endpoint of its last failure, or -1 */
    int64_t *waiting = malloc((size_t)n * sizeof(int64_t));       /* retry queue, unordered */
    struct curl_slist *headers = NULL;
    int64_t n_waiting = 0, next_new = 0, finished = 0, n_ok = 0, n_failed = 0, reported = -1;
    int free_slots = slots, turn = 0;
    double last_report = now_seconds();
    double began = now_seconds();
    pacer pace = {o->requests_per_minute, o->tokens_per_minute, o->tokens_per_request, began, began};
    if (o->pace) {
        pace.due_requests += seconds_left(began + o->pace->request_wait, began);
        pace.due_tokens += seconds_left(began + o->pace->token_wait, began);
    }
    if (!multi || !pool || !eps || !ready || !tries || !last_failed || !waiting) {
        rc = lamp_error_set(err, LAMP_ENOMEM, "out of memory starting the HTTP batch");
        goto finally;
    }
    for (int64_t i = 0; i < n; i++)
        last_failed[i] = -1;
    for (int e = 0; e < E; e++) {
        eps[e].prefix = o->endpoints ? o->endpoints[e] : "";
        eps[e].prefix_len = strlen(eps[e].prefix);
        if (o->health) {
            double out_for = o->health[e].out_for;
            eps[e].out_until = out_for > 0.0 && out_for < 1e9 ? began + out_for : 0.0;
            eps[e].outs = o->health[e].outs > 0 ? o->health[e].outs : 0;
            eps[e].hung = o->health[e].consecutive > 0 ? o->health[e].consecutive : 0;
            eps[e].unreachable = o->health[e].unreachable > 0 ? o->health[e].unreachable : 0;
        }
    }
    if ((rc = header_list(o->headers, &headers, err)) != LAMP_OK)
        goto finally;
    /* endpoints may share a host and port: the per-endpoint limit is kept by `room` */
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)slots);
    for (int s = 0; s < slots; s++) {
        pool[s].index = -1;
        if (!(pool[s].easy = curl_easy_init())) {
            rc = lamp_error_set(err, LAMP_ENOMEM, "curl_easy_init failed");
            goto finally;
        }
    }
    while (finished < n) {
        if (o->should_stop && o->should_stop(o->stop_arg)) {
            rc = lamp_error_set(err, LAMP_EINTR, "interrupted");
            break;
        }
        double now = now_seconds();
        int all_out = 1, down = 1;
        for (int e = 0; e < E; e++) {
            if (now >= eps[e].out_until && eps[e].outs == 0)
                all_out = 0;
            if (eps[e].unreachable < LAMP_HTTP_DOWN_AFTER)
                down = 0;
        }
        if (all_out && down && free_slots == slots) {
            /* every endpoint was taken out LAMP_HTTP_DOWN_AFTER times in a row because no connection could be made
             * to it, and nothing is in flight: they are down, so the requests still waiting fail now instead of
             * one burst per growing cool-down (a server that replies, even 429 or 500, is never "down") */
            for (int64_t i = 0; i < n; i++) {
                lamp_http_response *r = &responses[i];
                if (r->done)
                    continue;
                if (!r->error[0])
                    snprintf(r->error, sizeof r->error,
                             "not sent: every endpoint is down (unreachable, taken out %d times in a row)",
                             LAMP_HTTP_DOWN_AFTER);
                r->done = 1;
                finished++;
                n_failed++;
            }
            break;
        }
        /* dispatch: one request per endpoint in turn while any endpoint has room and a request for it, and the
         * client-side rate limits allow a start */
        for (int started = 1; started && free_slots > 0 && now >= pace_allowed_at(&pace);) {
            started = 0;
            for (int k = 0; k < E && free_slots > 0 && now >= pace_allowed_at(&pace); k++) {
                int e = (turn + k) % E;
                if (room(&eps[e], now, o->concurrency, all_out) <= 0)
                    continue;
                int64_t i = pick(e, E, now, o->max_retries, tries, ready, waiting, &n_waiting, &next_new, n);
                if (i < 0)
                    continue;
                int s = 0;
                while (pool[s].index >= 0)
                    s++;
                if (start(multi, &pool[s], &requests[i], &eps[e], e, o, headers, i) < 0) {
                    rc = lamp_error_set(err, LAMP_ERUNTIME, "curl could not start a transfer");
                    goto finally;
                }
                pace_take(&pace, now, requests[i].body_len);
                free_slots--;
                eps[e].in_flight++;
                responses[i].attempts++;
                responses[i].endpoint = e;
                tries[i * E + e]++;
                if (stats) {
                    stats[e].sent++;
                    if (last_failed[i] >= 0 && last_failed[i] != e)
                        stats[last_failed[i]].retried_elsewhere++;
                }
                last_failed[i] = -1;
                started = 1;
            }
            turn = (turn + 1) % E;
        }
        int running = 0, freed = 0;
        curl_multi_perform(multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            transfer *t = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
            CURLcode code = msg->data.result;
            long status = 0, request_size = 0;
            curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
            curl_easy_getinfo(t->easy, CURLINFO_REQUEST_SIZE, &request_size);
            curl_multi_remove_handle(multi, t->easy);
            int64_t i = t->index;
            int e = t->endpoint;
            endpoint_state *ep = &eps[e];
            lamp_http_response *r = &responses[i];
            t->index = -1;
            free_slots++;
            freed = 1;
            ep->in_flight--;
            r->status = status;
            now = now_seconds();
            if (t->reply_bytes > 0) {
                /* the endpoint replied: it is reachable (fully back in after a take-out); the server may ask
                 * for a pause all the same (a long Retry-After, a rate limit used up) */
                ep->outs = ep->hung = ep->unreachable = 0;
                pause_endpoint(ep, now, lamp_http_server_pause(&t->info, status), o->backoff_max,
                               stats ? &stats[e] : NULL);
            }
            if (code == CURLE_OK && status >= 200 && status < 300) {
                r->body = malloc(t->len + 1);
                if (!r->body) {
                    rc = lamp_error_set(err, LAMP_ENOMEM, "out of memory for a response");
                    goto finally;
                }
                memcpy(r->body, t->buf ? t->buf : "", t->len);
                r->body[t->len] = '\0';
                r->body_len = t->len;
                r->ok = r->done = 1;
                if (stats)
                    stats[e].answered++;
                finished++;
                n_ok++;
                if (o->on_answer)
                    o->on_answer(o->progress_arg, i, r);
                continue;
            }
            if (stats)
                stats[e].failed++;
            if (t->too_big)
                snprintf(r->error, sizeof r->error, "response larger than the %zu-byte limit", o->max_response);
            else if (code != CURLE_OK)
                snprintf(r->error, sizeof r->error, "%s (curl error %d)", curl_easy_strerror(code), (int)code);
            else
                snprintf(r->error, sizeof r->error, "HTTP %ld", status);
            int retryable = !t->too_big && (code != CURLE_OK ? 1 : lamp_http_retryable_status(status));
            if (retryable) {
                if (t->reply_bytes == 0) {
                    /* no reply: no connection was made (refused, no such host, connect timeout: nothing was sent),
                     * or the connection was closed before a byte of a reply, or the attempt timed out waiting */
                    int unreached = request_size == 0;
                    int timed_out = !unreached && code == CURLE_OPERATION_TIMEDOUT;
                    if (timed_out)
                        ep->hung++;
                    if (!unreached)
                        ep->unreachable = 0;
                    if ((!timed_out || ep->hung >= take_out_after) && now >= ep->out_until) {
                        ep->outs++;
                        if (unreached)
                            ep->unreachable++;
                        ep->out_until = now + lamp_http_backoff(ep->outs, -1.0, o->backoff_base, o->backoff_max,
                                                                lamp_rng_uniform(&rng));
                        if (stats)
                            stats[e].taken_out++;
                    }
                }
                /* the request's own backoff on this endpoint: the server's retry-after-ms or Retry-After, else
                 * exponential in its attempts there; another endpoint may take it at once */
                ready[i * E + e] = now + lamp_http_backoff(tries[i * E + e], lamp_http_reply_retry_after(&t->info),
                                                           o->backoff_base, o->backoff_max, lamp_rng_uniform(&rng));
                last_failed[i] = e;
                int queued = 0;
                for (int f = 0; f < E && !queued; f++)
                    queued = tries[i * E + f] <= o->max_retries;
                if (queued) {
                    waiting[n_waiting++] = i;
                    continue;
                }
            }
            /* final: keep the error body of an HTTP failure for the caller to show */
            if (code == CURLE_OK && t->len) {
                r->body = malloc(t->len + 1);
                if (r->body) {
                    memcpy(r->body, t->buf, t->len);
                    r->body[t->len] = '\0';
                    r->body_len = t->len;
                }
            }
            r->done = 1;
            finished++;
            n_failed++;
        }
        now = now_seconds();
        if (o->on_progress && ((finished != reported && (finished >= n || now - last_report >= 0.1)) ||
                               now - last_report >= 1.0)) {
            o->on_progress(o->progress_arg, n_ok, n_failed);
            reported = finished;
            last_report = now;
        }
        if (finished >= n)
            break;
        if (freed)
            continue; /* fill the freed slots at once rather than after the next socket event */
        /* sleep until a socket is ready, a backoff, a take-out or the pace's wait ends, or 100 ms (Ctrl-C) */
        double next = now + 0.1;
        for (int e = 0; e < E; e++)
            if (eps[e].out_until > now && eps[e].out_until < next)
                next = eps[e].out_until;
        for (int64_t w = 0; w < n_waiting; w++)
            for (int e = 0; e < E; e++) {
                double at = ready[waiting[w] * E + e];
                if (tries[waiting[w] * E + e] <= o->max_retries && at > now && at < next)
                    next = at;
            }
        double paced = pace_allowed_at(&pace);
        if (free_slots > 0 && (n_waiting > 0 || next_new < n) && paced > now && paced < next)
            next = paced;
        double until = (next - now) * 1000.0;
        int wait_ms = until < 1.0 ? 1 : until > 100.0 ? 100 : (int)ceil(until);
        curl_multi_poll(multi, NULL, 0, wait_ms, NULL);
    }
finally:
    if (eps && o->health) {
        double now = now_seconds();
        for (int e = 0; e < E; e++) {
            o->health[e].out_for = seconds_left(eps[e].out_until, now);
            o->health[e].outs = eps[e].outs;
            o->health[e].consecutive = eps[e].hung;
            o->health[e].unreachable = eps[e].unreachable;
        }
    }
    if (o->pace) {
        double now = now_seconds();
        o->pace->request_wait = o->requests_per_minute > 0.0 ? seconds_left(pace.due_requests, now) : 0.0;
        o->pace->token_wait = o->tokens_per_minute > 0.0 ? seconds_left(pace.due_tokens, now) : 0.0;
    }
    for (int s = 0; pool && s < slots; s++) {
        if (pool[s].easy) {
            if (pool[s].index >= 0)
                curl_multi_remove_handle(multi, pool[s].easy);
            curl_easy_cleanup(pool[s].easy);
        }
        free(pool[s].buf);
        free(pool[s].url);
    }
    free(pool);
    free(eps);
    free(ready);
    free(tries);
    free(last_failed);
    free(waiting);
    curl_slist_free_all(headers);
    if (multi)
        curl_multi_cleanup(multi);
    return rc;
}

/* Sleeps `seconds` in slices of at most 100 ms; 1 when should_stop asked to stop. */
static int wait_or_stop(double seconds, const lamp_http_options *o)
{
    double until = now_seconds() + seconds;
    for (double left = seconds; left > 0.0; left = until - now_seconds()) {
        if (o->should_stop && o->should_stop(o->stop_arg))
            return 1;
        double slice = left < 0.1 ? left : 0.1;
        struct timespec ts = {(time_t)slice, (long)((slice - (double)(time_t)slice) * 1e9)};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* One attempt of lamp_http_single on `t`: LAMP_OK with *code set, LAMP_EINTR when stopped. */
static int single_attempt(CURLM *multi, transfer *t, const lamp_http_options *o, CURLcode *code, lamp_error *err)
{
    if (curl_multi_add_handle(multi, t->easy) != CURLM_OK)
        return lamp_error_set(err, LAMP_ERUNTIME, "curl could not start a transfer");
    for (;;) {
        if (o->should_stop && o->should_stop(o->stop_arg)) {
            curl_multi_remove_handle(multi, t->easy);
            return lamp_error_set(err, LAMP_EINTR, "interrupted");
        }
        int running = 0, left;
        curl_multi_perform(multi, &running);
        CURLMsg *msg;
        while ((msg = curl_multi_info_read(multi, &left))) {
            if (msg->msg == CURLMSG_DONE) {
                *code = msg->data.result;
                curl_multi_remove_handle(multi, t->easy);
                return LAMP_OK;
            }
        }
        curl_multi_poll(multi, NULL, 0, 100, NULL);
    }
}

int lamp_http_single(const char *method, const char *url, const char *body, size_t body_len,
                     const lamp_http_options *o, lamp_http_response *r, double *retry_after, lamp_error *err)
{
    memset(r, 0, sizeof *r);
    r->endpoint = -1;
    *retry_after = -1.0;
    int get = method && strcmp(method, "GET") == 0;
    if (!method || (!get && strcmp(method, "POST") != 0))
        return lamp_error_set(err, LAMP_EVALUE, "method must be GET or POST");
    if (get && body)
        return lamp_error_set(err, LAMP_EVALUE, "a GET request has no body");
    if (o->max_retries < 0 || !(o->timeout > 0.0) || !(o->connect_timeout > 0.0))
        return lamp_error_set(err, LAMP_EVALUE, "max_retries must be >= 0 and timeouts positive");
    if (!url)
        return lamp_error_set(err, LAMP_EVALUE, "the request has no URL");
    if (lamp_http_check_url(url, err) != LAMP_OK)
        return LAMP_EVALUE;
    for (const char *const *h = o->headers; h && *h; h++)
        if (lamp_http_check_header(*h, err) != LAMP_OK)
            return LAMP_EVALUE;
    int rc = LAMP_OK;
    uint64_t rng = o->seed ? o->seed : 0x5eed;
    struct curl_slist *headers = NULL;
    transfer t = {.index = -1};
    CURLM *multi = curl_multi_init();
    t.easy = curl_easy_init();
    if (!multi || !t.easy) {
        rc = lamp_error_set(err, LAMP_ENOMEM, "curl could not be initialised");
        goto finally;
    }
    if ((rc = header_list(o->headers, &headers, err)) != LAMP_OK)
        goto finally;
    for (int attempt = 1;; attempt++) {
        curl_easy_reset(t.easy);
        t.len = 0;
        t.too_big = 0;
        t.reply_bytes = 0;
        lamp_http_reply_info_clear(&t.info);
        t.limit = o->max_response;
        curl_easy_setopt(t.easy, CURLOPT_URL, url);
        if (get) {
            curl_easy_setopt(t.easy, CURLOPT_HTTPGET, 1L);
        } else {
            curl_easy_setopt(t.easy, CURLOPT_POST, 1L);
            curl_easy_setopt(t.easy, CURLOPT_POSTFIELDS, body ? body : "");
            curl_easy_setopt(t.easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? body_len : 0));
        }
        set_common_options(t.easy, &t, o, headers);
        CURLcode code = CURLE_OK;
        if ((rc = single_attempt(multi, &t, o, &code, err)) != LAMP_OK)
            goto finally;
        long status = 0;
        curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &status);
        r->status = status;
        r->attempts = attempt;
        *retry_after = lamp_http_reply_retry_after(&t.info);
        int ok = code == CURLE_OK && status >= 200 && status < 300;
        if (!ok) {
            if (t.too_big)
                snprintf(r->error, sizeof r->error, "response larger than the %zu-byte limit", o->max_response);
            else if (code != CURLE_OK)
                snprintf(r->error, sizeof r->error, "%s (curl error %d)", curl_easy_strerror(code), (int)code);
            else
                snprintf(r->error, sizeof r->error, "HTTP %ld", status);
        }
        int retryable = !ok && !t.too_big && (code != CURLE_OK || lamp_http_retryable_status(status));
        if (retryable && attempt <= o->max_retries) {
            /* its own backoff (or the server's retry-after), and at least the pause the server asks for */
            double wait = lamp_http_backoff(attempt, *retry_after, o->backoff_base, o->backoff_max,
                                            lamp_rng_uniform(&rng));
            double pause = lamp_http_server_pause(&t.info, status);
            pause = pause < o->backoff_max ? pause : o->backoff_max;
            if (wait_or_stop(wait > pause ? wait : pause, o)) {
                rc = lamp_error_set(err, LAMP_EINTR, "interrupted");
                goto finally;
            }
            continue;
        }
        /* final: the body of a 2xx reply, or the error body of an HTTP failure for the caller to show */
        if (code == CURLE_OK) {
            if (!(r->body = malloc(t.len + 1))) {
                rc = lamp_error_set(err, LAMP_ENOMEM, "out of memory for a response");
                goto finally;
            }
            memcpy(r->body, t.buf ? t.buf : "", t.len);
            r->body[t.len] = '\0';
            r->body_len = t.len;
        }
        r->ok = ok;
        r->done = 1;
        break;
    }
finally:
    if (t.easy)
        curl_easy_cleanup(t.easy);
    if (multi)
        curl_multi_cleanup(multi);
    curl_slist_free_all(headers);
    free(t.buf);
    free(t.url);
    return rc;
}
