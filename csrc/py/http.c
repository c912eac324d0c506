/* Binding of csrc/http/http.c: batched HTTP POST over libcurl for the LLM client, and single GET / POST
 * requests (the control calls of a batch API). */
#include "py/binding.h"

#include <math.h>
#include <string.h>

#include <curl/curl.h>

#include "http/http.h"

/* What the C loop's callbacks need: the saved thread state, the Python callables (or NULL) and the first
 * exception raised by the answer callable (NULL: none), which stops the batch and is raised at its end. */
typedef struct {
    PyThreadState *save;
    PyObject *progress;
    PyObject *answer;
    PyObject *error_type, *error_value, *error_traceback;
} batch_context;

/* 1 when the batch must stop: the answer callable raised, or Python's signal handlers (run with the GIL
 * re-taken briefly) raised (Ctrl-C). */
static int check_signals(void *arg)
{
    batch_context *ctx = arg;
    if (ctx->error_type)
        return 1;
    PyEval_RestoreThread(ctx->save);
    int interrupted = PyErr_CheckSignals() < 0;
    ctx->save = PyEval_SaveThread();
    return interrupted;
}

/* Re-takes the GIL to call progress(answered, failed); an exception there is reported, not raised. */
static void report_progress(void *arg, int64_t answered, int64_t failed)
{
    batch_context *ctx = arg;
    PyEval_RestoreThread(ctx->save);
    PyObject *out = PyObject_CallFunction(ctx->progress, "LL", (long long)answered, (long long)failed);
    if (out)
        Py_DECREF(out);
    else
        PyErr_WriteUnraisable(ctx->progress);
    ctx->save = PyEval_SaveThread();
}

/* Re-takes the GIL to call answer(index, body) as soon as a request is answered.  An exception there (the
 * answer could not be stored: a full disk) stops the batch: no request starts after it, and the binding
 * raises it instead of returning, since answers that cannot be kept are not worth paying for. */
static void report_answer(void *arg, int64_t index, const lamp_http_response *r)
{
    batch_context *ctx = arg;
    if (ctx->error_type)
        return;
    PyEval_RestoreThread(ctx->save);
    PyObject *out = PyObject_CallFunction(ctx->answer, "Ly#", (long long)index, r->body, (Py_ssize_t)r->body_len);
    if (out)
        Py_DECREF(out);
    else
        PyErr_Fetch(&ctx->error_type, &ctx->error_value, &ctx->error_traceback);
    ctx->save = PyEval_SaveThread();
}

/* 0 when the transport options are in range; -1 with a ValueError otherwise. */
static int check_options(double timeout, double connect_timeout, int max_retries, double backoff_base,
                         double backoff_max, long long max_response, int take_out_after)
{
    if (!(timeout > 0) || !(connect_timeout > 0) || max_retries < 0 || max_retries > 100 || !(backoff_base >= 0) ||
        !(backoff_max >= 0) || max_response <= 0 || take_out_after < 0) {
        PyErr_SetString(PyExc_ValueError, "timeouts must be positive, max_retries in 0..100, backoff >= 0, "
                                          "max_response > 0 and take_out_after >= 0");
        return -1;
    }
    return 0;
}

/* Fills headers[0..len(hseq)) with the UTF-8 of the str items of hseq (borrowed); -1 with an exception set. */
static int header_strings(PyObject *hseq, const char **headers)
{
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(hseq); i++) {
        PyObject *h = PySequence_Fast_GET_ITEM(hseq, i);
        Py_ssize_t len;
        if (!PyUnicode_Check(h) || !(headers[i] = PyUnicode_AsUTF8AndSize(h, &len))) {
            PyErr_SetString(PyExc_TypeError, "argument 'headers' must hold str");
            return -1;
        }
        if ((size_t)len != strlen(headers[i])) { /* C would cut the header at its NUL */
            char name[65]; /* the name only: the value may be a secret */
            size_t nlen = strcspn(headers[i], ":\r\n");
            nlen = nlen < sizeof name - 1 ? nlen : sizeof name - 1;
            memcpy(name, headers[i], nlen);
            name[nlen] = '\0';
            PyErr_Format(PyExc_ValueError, "header '%s' contains a NUL character (its value is not shown)", name);
            return -1;
        }
    }
    return 0;
}

/* Posts bodies to `url` (endpoints == NULL) or to each of `endpoints` + `url`; returns
 * (results, interrupted) without endpoints, (results, endpoint stats, health, interrupted, pace) with them,
 * or NULL with an exception set. */
static PyObject *post(const char *url, PyObject *endpoints_obj, PyObject *bodies, PyObject *headers_obj,
                      int concurrency, double timeout, double connect_timeout, int max_retries, double backoff_base,
                      double backoff_max, long long max_response, int verify_tls, unsigned long long seed,
                      PyObject *progress, int take_out_after, PyObject *health_obj, PyObject *answer,
                      PyObject *rate_obj)
{
    PyObject *result = NULL, *list = NULL, *stats_list = NULL, *eseq = NULL;
    if (concurrency < 1 || concurrency > 1024) {
        PyErr_Format(PyExc_ValueError, "argument 'concurrency' must be in 1..1024, got %d", concurrency);
        return NULL;
    }
    if (check_options(timeout, connect_timeout, max_retries, backoff_base, backoff_max, max_response,
                      take_out_after) < 0)
        return NULL;
    if (progress && progress != Py_None && !PyCallable_Check(progress)) {
        PyErr_SetString(PyExc_TypeError, "argument 'progress' must be callable or None");
        return NULL;
    }
    if (answer && answer != Py_None && !PyCallable_Check(answer)) {
        PyErr_SetString(PyExc_TypeError, "argument 'answer' must be callable or None");
        return NULL;
    }
    double requests_per_minute = 0.0, tokens_per_minute = 0.0;
    long long tokens_per_request = 0;
    lamp_http_pace pace = {0.0, 0.0};
    if (rate_obj && rate_obj != Py_None) {
        if (!PyTuple_Check(rate_obj) ||
            !PyArg_ParseTuple(rate_obj, "ddLdd", &requests_per_minute, &tokens_per_minute, &tokens_per_request,
                              &pace.request_wait, &pace.token_wait)) {
            PyErr_Clear();
            PyErr_SetString(PyExc_TypeError, "argument 'rate' must be None or a (requests_per_minute, "
                                             "tokens_per_minute, tokens_per_request, request_wait, token_wait) tuple");
            return NULL;
        }
        if (!(requests_per_minute >= 0.0) || !(tokens_per_minute >= 0.0) || !isfinite(requests_per_minute) ||
            !isfinite(tokens_per_minute) || tokens_per_request < 0 || !(pace.request_wait >= 0.0) ||
            !(pace.token_wait >= 0.0)) {
            PyErr_SetString(PyExc_ValueError, "rate limits must be finite and >= 0 (0: none), waits >= 0");
            return NULL;
        }
    }
    Py_ssize_t n_endpoints = 0;
    if (endpoints_obj) {
        if (!(eseq = PySequence_Fast(endpoints_obj, "argument 'endpoints' must be a sequence of str")))
            return NULL;
        n_endpoints = PySequence_Fast_GET_SIZE(eseq);
        if (n_endpoints < 1 || n_endpoints > 1024) {
            PyErr_Format(PyExc_ValueError, "argument 'endpoints' must hold 1 to 1024 URLs, got %zd", n_endpoints);
            Py_DECREF(eseq);
            return NULL;
        }
    }
    PyObject *seq = PySequence_Fast(bodies, "argument 'bodies' must be a sequence of bytes");
    PyObject *hseq = PySequence_Fast(headers_obj, "argument 'headers' must be a sequence of str");
    if (!seq || !hseq) {
        Py_XDECREF(seq);
        Py_XDECREF(hseq);
        Py_XDECREF(eseq);
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), nh = PySequence_Fast_GET_SIZE(hseq);
    Py_ssize_t n_stats = n_endpoints ? n_endpoints : 1;
    lamp_http_request *reqs = PyMem_Calloc((size_t)(n ? n : 1), sizeof *reqs);
    lamp_http_response *resps = PyMem_Calloc((size_t)(n ? n : 1), sizeof *resps);
    const char **headers = PyMem_Calloc((size_t)nh + 1, sizeof(char *));
    const char **endpoints = PyMem_Calloc((size_t)n_endpoints + 1, sizeof(char *));
    lamp_http_endpoint_stats *stats = PyMem_Calloc((size_t)n_stats, sizeof *stats);
    lamp_http_endpoint_health *health = PyMem_Calloc((size_t)n_stats, sizeof *health);
    PyObject *health_list = NULL;
    if (!reqs || !resps || !headers || !endpoints || !stats || !health) {
        PyErr_NoMemory();
        goto finally;
    }
    if (health_obj && health_obj != Py_None) {
        PyObject *hs = PySequence_Fast(health_obj, "argument 'health' must be a sequence");
        if (!hs)
            goto finally;
        int ok = PySequence_Fast_GET_SIZE(hs) == n_stats;
        for (Py_ssize_t e = 0; ok && e < n_stats; e++)
            ok = PyArg_ParseTuple(PySequence_Fast_GET_ITEM(hs, e), "diii", &health[e].out_for, &health[e].outs,
                                  &health[e].consecutive, &health[e].unreachable);
        Py_DECREF(hs);
        if (!ok) {
            PyErr_Clear();
            PyErr_SetString(PyExc_ValueError, "argument 'health' must hold one (out_for, outs, consecutive, "
                                              "unreachable) tuple per endpoint");
            goto finally;
        }
    }
    for (Py_ssize_t e = 0; e < n_endpoints; e++) {
        PyObject *u = PySequence_Fast_GET_ITEM(eseq, e);
        Py_ssize_t len;
        if (!PyUnicode_Check(u) || !(endpoints[e] = PyUnicode_AsUTF8AndSize(u, &len))) {
            PyErr_SetString(PyExc_TypeError, "argument 'endpoints' must hold str");
            goto finally;
        }
        if ((size_t)len != strlen(endpoints[e])) {
            PyErr_Format(PyExc_ValueError, "endpoint %zd contains a NUL character", e);
            goto finally;
        }
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *b = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyBytes_Check(b)) {
            PyErr_Format(PyExc_TypeError, "argument 'bodies'[%zd] must be bytes", i);
            goto finally;
        }
        reqs[i].url = url;
        reqs[i].body = PyBytes_AS_STRING(b);
        reqs[i].body_len = (size_t)PyBytes_GET_SIZE(b);
    }
    if (header_strings(hseq, headers) < 0)
        goto finally;
    batch_context ctx = {.save = NULL, .progress = progress && progress != Py_None ? progress : NULL,
                         .answer = answer && answer != Py_None ? answer : NULL, .error_type = NULL};
    lamp_http_options opt = {
        .concurrency = concurrency, .timeout = timeout, .connect_timeout = connect_timeout,
        .max_retries = max_retries, .backoff_base = backoff_base, .backoff_max = backoff_max,
        .max_response = (size_t)max_response, .verify_tls = verify_tls, .headers = headers, .seed = seed,
        .should_stop = check_signals, .stop_arg = &ctx,
        .endpoints = n_endpoints ? endpoints : NULL, .n_endpoints = (int)n_endpoints,
        .take_out_after = take_out_after, .endpoint_stats = stats, .health = health,
        .on_progress = ctx.progress ? report_progress : NULL, .progress_arg = &ctx,
        .on_answer = ctx.answer ? report_answer : NULL,
        .requests_per_minute = requests_per_minute, .tokens_per_minute = tokens_per_minute,
        .tokens_per_request = (int64_t)tokens_per_request, .pace = &pace,
    };
    lamp_error err;
    lamp_error_clear(&err);
    ctx.save = PyEval_SaveThread();
    int rc = lamp_http_batch(reqs, n, &opt, resps, &err);
    PyEval_RestoreThread(ctx.save);
    if (ctx.error_type) { /* the answer callable raised: that exception, whatever the batch's return */
        PyErr_Clear();
        PyErr_Restore(ctx.error_type, ctx.error_value, ctx.error_traceback);
        goto finally;
    }
    int interrupted = rc == LAMP_EINTR;
    if (rc != LAMP_OK && !interrupted) {
        lamp_raise_kernel_error(&err);
        goto finally;
    }
    if (interrupted)
        PyErr_Clear(); /* the caller keeps the finished answers, then raises KeyboardInterrupt itself */
    if (!(list = PyList_New(n)))
        goto finally;
    for (Py_ssize_t i = 0; i < n; i++) {
        lamp_http_response *r = &resps[i];
        PyObject *body = r->body ? PyBytes_FromStringAndSize(r->body, (Py_ssize_t)r->body_len) : Py_NewRef(Py_None);
        if (!body)
            goto finally;
        PyObject *item = endpoints_obj
            ? Py_BuildValue("lNOOisi", r->status, body, r->ok ? Py_True : Py_False, r->done ? Py_True : Py_False,
                            r->attempts, r->error, r->endpoint)
            : Py_BuildValue("lNOOis", r->status, body, r->ok ? Py_True : Py_False, r->done ? Py_True : Py_False,
                            r->attempts, r->error);
        if (!item)
            goto finally;
        PyList_SET_ITEM(list, i, item);
    }
    if (!endpoints_obj) {
        result = Py_BuildValue("OO", list, interrupted ? Py_True : Py_False);
        goto finally;
    }
    if (!(stats_list = PyList_New(n_stats)) || !(health_list = PyList_New(n_stats)))
        goto finally;
    for (Py_ssize_t e = 0; e < n_stats; e++) {
        PyObject *item = Py_BuildValue("diii", health[e].out_for, health[e].outs, health[e].consecutive,
                                       health[e].unreachable);
        if (!item)
            goto finally;
        PyList_SET_ITEM(health_list, e, item);
    }
    for (Py_ssize_t e = 0; e < n_stats; e++) {
        PyObject *item = Py_BuildValue("LLLLL", (long long)stats[e].sent, (long long)stats[e].answered,
                                       (long long)stats[e].failed, (long long)stats[e].retried_elsewhere,
                                       (long long)stats[e].taken_out);
        if (!item)
            goto finally;
        PyList_SET_ITEM(stats_list, e, item);
    }
    result = Py_BuildValue("OOOO(dd)", list, stats_list, health_list, interrupted ? Py_True : Py_False,
                           pace.request_wait, pace.token_wait);
finally:
    for (Py_ssize_t i = 0; resps && i < n; i++)
        lamp_http_response_clear(&resps[i]);
    PyMem_Free(reqs);
    PyMem_Free(resps);
    PyMem_Free(headers);
    PyMem_Free(endpoints);
    PyMem_Free(stats);
    PyMem_Free(health);
    Py_XDECREF(health_list);
    Py_XDECREF(list);
    Py_XDECREF(stats_list);
    Py_DECREF(seq);
    Py_DECREF(hseq);
    Py_XDECREF(eseq);
    return result;
}

PyDoc_STRVAR(http_post_batch_doc,
"http_post_batch(url, bodies, headers, concurrency, timeout, connect_timeout, max_retries,\n"
"                backoff_base, backoff_max, max_response, verify_tls, seed)\n--\n\n"
"POST every body (bytes) to url with libcurl's multi interface, the GIL released.\n"
"Returns (results, interrupted): results[i] = (status, body or None, ok, done, attempts,\n"
"error); interrupted is True when Ctrl-C stopped the batch (finished results are kept;\n"
"unfinished ones have done=False).");

static PyObject *http_post_batch(PyObject *self, PyObject *args)
{
    (void)self;
    const char *url;
    PyObject *bodies, *headers_obj;
    int concurrency, max_retries, verify_tls;
    double timeout, connect_timeout, backoff_base, backoff_max;
    long long max_response;
    unsigned long long seed;
    if (!PyArg_ParseTuple(args, "sOOiddiddLpK", &url, &bodies, &headers_obj, &concurrency, &timeout, &connect_timeout,
                          &max_retries, &backoff_base, &backoff_max, &max_response, &verify_tls, &seed))
        return NULL;
    return post(url, NULL, bodies, headers_obj, concurrency, timeout, connect_timeout, max_retries, backoff_base,
                backoff_max, max_response, verify_tls, seed, NULL, 0, NULL, NULL, NULL);
}

PyDoc_STRVAR(http_post_endpoints_doc,
"http_post_endpoints(endpoints, path, bodies, headers, concurrency, timeout, connect_timeout,\n"
"                    max_retries, backoff_base, backoff_max, max_response, verify_tls, seed,\n"
"                    progress=None, take_out_after=0, health=None, answer=None, rate=None)\n--\n\n"
"POST every body (bytes) to one of the endpoints (base URLs; each body goes to endpoint + path),\n"
"`concurrency` in flight per endpoint, each failed request retried after its own backoff, endpoints\n"
"taken out only when unreachable or when the server asks for a pause (csrc/http/http.h says the\n"
"rules), the GIL released.  progress(answered, failed) is called about every 100 ms while requests\n"
"finish.  take_out_after: timeouts in a row without a reply that take an endpoint out (0: 3).\n"
"health: None (every endpoint in) or the health returned by the previous batch, so that a\n"
"taken-out endpoint stays out across batches.  answer(index, body) is called as soon as request\n"
"`index` is answered (2xx), so that its reply can be stored before the batch ends; an exception\n"
"it raises stops the batch (no request starts after it) and is raised.\n"
"rate: None or (requests_per_minute, tokens_per_minute, tokens_per_request, request_wait,\n"
"token_wait): client-side rate limits over all endpoints (0: none; a request counts len(body) // 4\n"
"+ tokens_per_request tokens) and the waits the previous batch left (the pace returned).\n"
"Returns (results, endpoint_stats, health, interrupted, pace): results[i] = (status, body or None, ok,\n"
"done, attempts, error, endpoint); endpoint_stats[e] = (sent, answered, failed,\n"
"retried_elsewhere, taken_out); health[e] = (out_for seconds, outs, consecutive failures,\n"
"take-outs in a row for want of a connection); pace = (request_wait, token_wait) seconds.");

static PyObject *http_post_endpoints(PyObject *self, PyObject *args)
{
    (void)self;
    const char *path;
    PyObject *endpoints, *bodies, *headers_obj, *progress = Py_None, *health = Py_None, *answer = Py_None,
             *rate = Py_None;
    int concurrency, max_retries, verify_tls, take_out_after = 0;
    double timeout, connect_timeout, backoff_base, backoff_max;
    long long max_response;
    unsigned long long seed;
    if (!PyArg_ParseTuple(args, "OsOOiddiddLpK|OiOOO", &endpoints, &path, &bodies, &headers_obj, &concurrency,
                          &timeout, &connect_timeout, &max_retries, &backoff_base, &backoff_max, &max_response,
                          &verify_tls, &seed, &progress, &take_out_after, &health, &answer, &rate))
        return NULL;
    if (PyUnicode_Check(endpoints)) {
        PyErr_SetString(PyExc_TypeError, "argument 'endpoints' must be a list of URLs, not a str");
        return NULL;
    }
    return post(path, endpoints, bodies, headers_obj, concurrency, timeout, connect_timeout, max_retries,
                backoff_base, backoff_max, max_response, verify_tls, seed, progress, take_out_after, health,
                answer, rate);
}

PyDoc_STRVAR(http_request_doc,
"http_request(method, url, headers, body, timeout, connect_timeout, max_retries, backoff_base,\n"
"             backoff_max, max_response, verify_tls, seed)\n--\n\n"
"One GET or POST (body: bytes, or None for none) to a full http(s) URL with libcurl, the GIL\n"
"released; transport errors, 408, 429 and 5xx are retried up to max_retries times after a backoff\n"
"(the server's retry-after-ms or Retry-After when it sends one); other statuses are final at once.  Ctrl-C raises\n"
"KeyboardInterrupt within about 100 ms.  Returns (status, body or None, ok, attempts, error,\n"
"retry_after): the last reply's status (0: none), its body (on a final HTTP failure too), its\n"
"retry-after-ms or Retry-After seconds (-1: none).");

static PyObject *http_request(PyObject *self, PyObject *args)
{
    (void)self;
    const char *method, *url;
    PyObject *headers_obj, *body_obj;
    int max_retries, verify_tls;
    double timeout, connect_timeout, backoff_base, backoff_max;
    long long max_response;
    unsigned long long seed;
    if (!PyArg_ParseTuple(args, "ssOOddiddLpK", &method, &url, &headers_obj, &body_obj, &timeout, &connect_timeout,
                          &max_retries, &backoff_base, &backoff_max, &max_response, &verify_tls, &seed))
        return NULL;
    if (body_obj != Py_None && !PyBytes_Check(body_obj)) {
        PyErr_SetString(PyExc_TypeError, "argument 'body' must be bytes or None");
        return NULL;
    }
    if (check_options(timeout, connect_timeout, max_retries, backoff_base, backoff_max, max_response, 0) < 0)
        return NULL;
    PyObject *hseq = PySequence_Fast(headers_obj, "argument 'headers' must be a sequence of str");
    if (!hseq)
        return NULL;
    PyObject *result = NULL;
    const char **headers = PyMem_Calloc((size_t)PySequence_Fast_GET_SIZE(hseq) + 1, sizeof(char *));
    if (!headers) {
        PyErr_NoMemory();
        goto finally;
    }
    if (header_strings(hseq, headers) < 0)
        goto finally;
    batch_context ctx = {.save = NULL, .progress = NULL, .answer = NULL};
    lamp_http_options opt = {
        .concurrency = 1, .timeout = timeout, .connect_timeout = connect_timeout, .max_retries = max_retries,
        .backoff_base = backoff_base, .backoff_max = backoff_max, .max_response = (size_t)max_response,
        .verify_tls = verify_tls, .headers = headers, .seed = seed, .should_stop = check_signals, .stop_arg = &ctx,
    };
    const char *body = body_obj == Py_None ? NULL : PyBytes_AS_STRING(body_obj);
    size_t body_len = body_obj == Py_None ? 0 : (size_t)PyBytes_GET_SIZE(body_obj);
    lamp_http_response r;
    double retry_after = -1.0;
    lamp_error err;
    lamp_error_clear(&err);
    ctx.save = PyEval_SaveThread();
    int rc = lamp_http_single(method, url, body, body_len, &opt, &r, &retry_after, &err);
    PyEval_RestoreThread(ctx.save);
    if (rc == LAMP_EINTR) { /* check_signals left the KeyboardInterrupt (or the handler's exception) set */
        if (!PyErr_Occurred())
            PyErr_SetNone(PyExc_KeyboardInterrupt);
    } else if (rc != LAMP_OK) {
        lamp_raise_kernel_error(&err);
    } else {
        PyObject *reply = r.body ? PyBytes_FromStringAndSize(r.body, (Py_ssize_t)r.body_len) : Py_NewRef(Py_None);
        if (reply)
            result = Py_BuildValue("lNOisd", r.status, reply, r.ok ? Py_True : Py_False, r.attempts, r.error,
                                   retry_after);
    }
    lamp_http_response_clear(&r);
finally:
    PyMem_Free(headers);
    Py_DECREF(hseq);
    return result;
}

static PyObject *http_backoff(PyObject *self, PyObject *args)
{
    (void)self;
    int attempt;
    double retry_after, base, max, jitter;
    if (!PyArg_ParseTuple(args, "idddd", &attempt, &retry_after, &base, &max, &jitter))
        return NULL;
    return PyFloat_FromDouble(lamp_http_backoff(attempt, retry_after, base, max, jitter));
}

static PyMethodDef http_methods[] = {
    {"http_post_batch", http_post_batch, METH_VARARGS, http_post_batch_doc},
    {"http_post_endpoints", http_post_endpoints, METH_VARARGS, http_post_endpoints_doc},
    {"http_request", http_request, METH_VARARGS, http_request_doc},
    {"http_backoff", http_backoff, METH_VARARGS,
     "http_backoff(attempt, retry_after, base, max, jitter01) -> seconds before retry `attempt`"},
    {NULL, NULL, 0, NULL},
};

int lamp_http_exec(PyObject *module)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        PyErr_SetString(PyExc_ImportError, "libcurl failed to initialise");
        return -1;
    }
    return lamp_add_kernel(module, http_methods, NULL);
}
