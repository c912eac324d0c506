#include "http.h"

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

double lamp_http_parse_retry_after(const char *value)
{
    if (!value)
        return -1.0;
    while (*value == ' ' || *value == '\t')
        value++;
    if (!isdigit((unsigned char)*value))
        return -1.0;
    char *end;
    double seconds = strtod(value, &end);
    while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
        end++;
    return (*end == '\0' && isfinite(seconds)) ? seconds : -1.0;
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

static uint64_t next_random(uint64_t *state)
{
    uint64_t x = (*state += 0x9e3779b97f4a7c15ULL);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

typedef struct {
    CURL *easy;
    int64_t index; /* request being served, -1 when free */
    char *buf;
    size_t len, cap, limit;
    int too_big;
    double retry_after;
} transfer;

static size_t on_body(char *data, size_t size, size_t count, void *arg)
{
    transfer *t = arg;
    size_t n = size * count;
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
    static const char name[] = "retry-after:";
    if (n > sizeof name - 1) {
        size_t i = 0;
        while (i < sizeof name - 1 && tolower((unsigned char)data[i]) == name[i])
            i++;
        if (i == sizeof name - 1) {
            char value[64];
            size_t len = n - i < sizeof value - 1 ? n - i : sizeof value - 1;
            memcpy(value, data + i, len);
            value[len] = '\0';
            t->retry_after = lamp_http_parse_retry_after(value);
        }
    }
    return n;
}

static int start(CURLM *multi, transfer *t, const lamp_http_request *req, const lamp_http_options *o,
                 struct curl_slist *headers, int64_t index)
{
    curl_easy_reset(t->easy);
    t->index = index;
    t->len = 0;
    t->too_big = 0;
    t->retry_after = -1.0;
    t->limit = o->max_response;
    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, req->url);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85.0 */
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
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
    return curl_multi_add_handle(multi, e) == CURLM_OK ? 0 : -1;
}

int lamp_http_batch(const lamp_http_request *requests, int64_t n, const lamp_http_options *o,
                    lamp_http_response *responses, lamp_error *err)
{
    if (o->concurrency < 1)
        return lamp_error_set(err, LAMP_EVALUE, "concurrency must be at least 1");
    if (o->max_retries < 0 || !(o->timeout > 0.0) || !(o->connect_timeout > 0.0))
        return lamp_error_set(err, LAMP_EVALUE, "max_retries must be >= 0 and timeouts positive");
    for (int64_t i = 0; i < n; i++) {
        memset(&responses[i], 0, sizeof responses[i]);
        if (!requests[i].url || !requests[i].body)
            return lamp_error_set(err, LAMP_EVALUE, "request %lld has no URL or body", (long long)i);
        if (lamp_http_check_url(requests[i].url, err) != LAMP_OK)
            return LAMP_EVALUE;
    }
    for (const char *const *h = o->headers; h && *h; h++)
        if (lamp_http_check_header(*h, err) != LAMP_OK)
            return LAMP_EVALUE;
    if (n == 0)
        return LAMP_OK;
    int rc = LAMP_OK, slots = o->concurrency < n ? o->concurrency : (int)n;
    uint64_t rng = o->seed ? o->seed : 0x5eed;
    CURLM *multi = curl_multi_init();
    transfer *pool = calloc((size_t)slots, sizeof *pool);
    double *ready_at = calloc((size_t)n, sizeof(double));
    int64_t *waiting = malloc((size_t)n * sizeof(int64_t)); /* retry queue, unordered */
    struct curl_slist *headers = NULL;
    int64_t n_waiting = 0, next_new = 0, finished = 0;
    if (!multi || !pool || !ready_at || !waiting) {
        rc = lamp_error_set(err, LAMP_ENOMEM, "out of memory starting the HTTP batch");
        goto finally;
    }
    for (const char *const *h = o->headers; h && *h; h++) {
        struct curl_slist *more = curl_slist_append(headers, *h);
        if (!more) {
            rc = lamp_error_set(err, LAMP_ENOMEM, "out of memory for headers");
            goto finally;
        }
        headers = more;
    }
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
        double now = now_seconds(), next_ready = INFINITY;
        for (int s = 0; s < slots; s++) {
            if (pool[s].index >= 0)
                continue;
            int64_t pick = -1;
            for (int64_t w = 0; w < n_waiting; w++)
                if (ready_at[waiting[w]] <= now) {
                    pick = waiting[w];
                    waiting[w] = waiting[--n_waiting];
                    break;
                }
            if (pick < 0 && next_new < n)
                pick = next_new++;
            if (pick < 0)
                break;
            responses[pick].attempts++;
            if (start(multi, &pool[s], &requests[pick], o, headers, pick) < 0) {
                rc = lamp_error_set(err, LAMP_ERUNTIME, "curl could not start a transfer");
                goto finally;
            }
        }
        for (int64_t w = 0; w < n_waiting; w++)
            if (ready_at[waiting[w]] < next_ready)
                next_ready = ready_at[waiting[w]];
        int running = 0;
        curl_multi_perform(multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            transfer *t = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
            CURLcode code = msg->data.result;
            long status = 0;
            curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
            curl_multi_remove_handle(multi, t->easy);
            int64_t i = t->index;
            lamp_http_response *r = &responses[i];
            t->index = -1;
            r->status = status;
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
                finished++;
                continue;
            }
            if (t->too_big)
                snprintf(r->error, sizeof r->error, "response larger than the %zu-byte limit", o->max_response);
            else if (code != CURLE_OK)
                snprintf(r->error, sizeof r->error, "%s (curl error %d)", curl_easy_strerror(code), (int)code);
            else
                snprintf(r->error, sizeof r->error, "HTTP %ld", status);
            int retry = !t->too_big && (code != CURLE_OK ? 1 : lamp_http_retryable_status(status)) &&
                        r->attempts <= o->max_retries;
            if (retry) {
                double jitter = (double)(next_random(&rng) >> 11) * 0x1.0p-53;
                ready_at[i] = now_seconds() + lamp_http_backoff(r->attempts, t->retry_after, o->backoff_base,
                                                                o->backoff_max, jitter);
                waiting[n_waiting++] = i;
            } else {
                /* keep the error body of a final HTTP failure for the caller to show */
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
            }
        }
        if (finished >= n)
            break;
        int wait_ms = 100;
        if (isfinite(next_ready)) {
            double until = (next_ready - now_seconds()) * 1000.0;
            if (until < wait_ms)
                wait_ms = until < 1.0 ? 1 : (int)until;
        }
        curl_multi_poll(multi, NULL, 0, wait_ms, NULL);
    }
finally:
    for (int s = 0; pool && s < slots; s++) {
        if (pool[s].easy) {
            if (pool[s].index >= 0)
                curl_multi_remove_handle(multi, pool[s].easy);
            curl_easy_cleanup(pool[s].easy);
        }
        free(pool[s].buf);
    }
    free(pool);
    free(ready_at);
    free(waiting);
    curl_slist_free_all(headers);
    if (multi)
        curl_multi_cleanup(multi);
    return rc;
}
