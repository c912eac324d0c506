/* Binding of csrc/http.c: batched HTTP POST over libcurl for the LLM client. */
#include "binding.h"

#include <string.h>

#include <curl/curl.h>

#include "../http.h"

/* Re-takes the GIL briefly to run Python's signal handlers (Ctrl-C). */
static int check_signals(void *arg)
{
    PyThreadState **save = arg;
    PyEval_RestoreThread(*save);
    int interrupted = PyErr_CheckSignals() < 0;
    *save = PyEval_SaveThread();
    return interrupted;
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
    PyObject *bodies, *headers_obj, *result = NULL, *list = NULL;
    int concurrency, max_retries, verify_tls;
    double timeout, connect_timeout, backoff_base, backoff_max;
    long long max_response;
    unsigned long long seed;
    if (!PyArg_ParseTuple(args, "sOOiddiddLpK", &url, &bodies, &headers_obj, &concurrency, &timeout, &connect_timeout,
                          &max_retries, &backoff_base, &backoff_max, &max_response, &verify_tls, &seed))
        return NULL;
    if (concurrency < 1 || concurrency > 1024) {
        PyErr_Format(PyExc_ValueError, "argument 'concurrency' must be in 1..1024, got %d", concurrency);
        return NULL;
    }
    if (!(timeout > 0) || !(connect_timeout > 0) || max_retries < 0 || max_retries > 100 || !(backoff_base >= 0) ||
        !(backoff_max >= 0) || max_response <= 0) {
        PyErr_SetString(PyExc_ValueError,
                        "timeouts must be positive, max_retries in 0..100, backoff >= 0 and max_response > 0");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(bodies, "argument 'bodies' must be a sequence of bytes");
    PyObject *hseq = PySequence_Fast(headers_obj, "argument 'headers' must be a sequence of str");
    if (!seq || !hseq) {
        Py_XDECREF(seq);
        Py_XDECREF(hseq);
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), nh = PySequence_Fast_GET_SIZE(hseq);
    lamp_http_request *reqs = PyMem_Calloc((size_t)(n ? n : 1), sizeof *reqs);
    lamp_http_response *resps = PyMem_Calloc((size_t)(n ? n : 1), sizeof *resps);
    const char **headers = PyMem_Calloc((size_t)nh + 1, sizeof(char *));
    if (!reqs || !resps || !headers) {
        PyErr_NoMemory();
        goto finally;
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
    for (Py_ssize_t i = 0; i < nh; i++) {
        PyObject *h = PySequence_Fast_GET_ITEM(hseq, i);
        Py_ssize_t len;
        if (!PyUnicode_Check(h) || !(headers[i] = PyUnicode_AsUTF8AndSize(h, &len))) {
            PyErr_SetString(PyExc_TypeError, "argument 'headers' must hold str");
            goto finally;
        }
        if ((size_t)len != strlen(headers[i])) { /* C would cut the header at its NUL */
            char name[65]; /* the name only: the value may be a secret */
            size_t nlen = strcspn(headers[i], ":\r\n");
            nlen = nlen < sizeof name - 1 ? nlen : sizeof name - 1;
            memcpy(name, headers[i], nlen);
            name[nlen] = '\0';
            PyErr_Format(PyExc_ValueError, "header '%s' contains a NUL character (its value is not shown)", name);
            goto finally;
        }
    }
    PyThreadState *save = NULL;
    lamp_http_options opt = {
        .concurrency = concurrency, .timeout = timeout, .connect_timeout = connect_timeout,
        .max_retries = max_retries, .backoff_base = backoff_base, .backoff_max = backoff_max,
        .max_response = (size_t)max_response, .verify_tls = verify_tls, .headers = headers, .seed = seed,
        .should_stop = check_signals, .stop_arg = &save,
    };
    lamp_error err;
    lamp_error_clear(&err);
    save = PyEval_SaveThread();
    int rc = lamp_http_batch(reqs, n, &opt, resps, &err);
    PyEval_RestoreThread(save);
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
        PyObject *item = Py_BuildValue("lNOOis", r->status, body, r->ok ? Py_True : Py_False,
                                       r->done ? Py_True : Py_False, r->attempts, r->error);
        if (!item)
            goto finally;
        PyList_SET_ITEM(list, i, item);
    }
    result = Py_BuildValue("OO", list, interrupted ? Py_True : Py_False);
finally:
    for (Py_ssize_t i = 0; resps && i < n; i++)
        lamp_http_response_clear(&resps[i]);
    PyMem_Free(reqs);
    PyMem_Free(resps);
    PyMem_Free(headers);
    Py_XDECREF(list);
    Py_DECREF(seq);
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
    return PyModule_AddFunctions(module, http_methods);
}
