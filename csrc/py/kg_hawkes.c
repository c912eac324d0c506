/* Binding of csrc/kg_hawkes.c: the knowledge-graph Hawkes proposer. */
#include "binding.h"

#include "../kg_hawkes.h"

/* Arrays taken from Python, released together. */
typedef struct {
    PyArrayObject *s, *r, *o, *t, *target;
} kg_arrays;

static void kg_arrays_release(kg_arrays *a)
{
    Py_XDECREF(a->s);
    Py_XDECREF(a->r);
    Py_XDECREF(a->o);
    Py_XDECREF(a->t);
    Py_XDECREF(a->target);
}

/* Reads parallel 1-D arrays (names prefixed by `what`); target may be None. */
static int take_events(PyObject *s, PyObject *r, PyObject *o, PyObject *t, PyObject *target, const char *what,
                       kg_arrays *out)
{
    char name[64];
    memset(out, 0, sizeof *out);
    snprintf(name, sizeof name, "%s_subjects", what);
    if (!(out->s = lamp_array_from(s, NPY_INT64, 1, name)))
        return -1;
    npy_intp n = PyArray_DIM(out->s, 0);
    snprintf(name, sizeof name, "%s_relations", what);
    if (!(out->r = lamp_array_from(r, NPY_INT64, 1, name)) || lamp_require_dim(out->r, 0, n, name) < 0)
        return -1;
    snprintf(name, sizeof name, "%s_objects", what);
    if (!(out->o = lamp_array_from(o, NPY_INT64, 1, name)) || lamp_require_dim(out->o, 0, n, name) < 0)
        return -1;
    snprintf(name, sizeof name, "%s_times", what);
    if (!(out->t = lamp_array_from(t, NPY_FLOAT64, 1, name)) || lamp_require_dim(out->t, 0, n, name) < 0 ||
        lamp_require_finite(out->t, name) < 0)
        return -1;
    if (target && target != Py_None) {
        snprintf(name, sizeof name, "%s_targets", what);
        if (!(out->target = lamp_array_from(target, NPY_INT64, 1, name)) ||
            lamp_require_dim(out->target, 0, n, name) < 0)
            return -1;
    }
    return 0;
}

static int take_config(long long num_entities, long long num_relations, PyObject *rates_obj, lamp_kg_config *cfg)
{
    PyArrayObject *rates = lamp_array_from(rates_obj, NPY_FLOAT64, 1, "rates");
    if (!rates)
        return -1;
    npy_intp n = PyArray_DIM(rates, 0);
    if (n < 1 || n > LAMP_KG_MAX_SCALES) {
        PyErr_Format(PyExc_ValueError, "argument 'rates' must have 1 to %d decay rates, got %zd", LAMP_KG_MAX_SCALES,
                     (Py_ssize_t)n);
        Py_DECREF(rates);
        return -1;
    }
    cfg->num_entities = num_entities;
    cfg->num_relations = num_relations;
    cfg->num_scales = (int)n;
    memcpy(cfg->rates, PyArray_DATA(rates), (size_t)n * sizeof(double));
    Py_DECREF(rates);
    return 0;
}

static void fill_stream(const kg_arrays *a, lamp_kg_stream *s)
{
    s->subjects = PyArray_DATA(a->s);
    s->relations = PyArray_DATA(a->r);
    s->objects = PyArray_DATA(a->o);
    s->times = PyArray_DATA(a->t);
    s->n = PyArray_DIM(a->s, 0);
}

static void fill_queries(const kg_arrays *a, lamp_kg_queries *q)
{
    q->subjects = PyArray_DATA(a->s);
    q->relations = PyArray_DATA(a->r);
    q->objects = PyArray_DATA(a->o);
    q->times = PyArray_DATA(a->t);
    q->targets = a->target ? PyArray_DATA(a->target) : NULL;
    q->n = PyArray_DIM(a->s, 0);
}

static int parse_task(const char *task)
{
    if (strcmp(task, "object") == 0)
        return LAMP_KG_TASK_OBJECT;
    if (strcmp(task, "relation") == 0)
        return LAMP_KG_TASK_RELATION;
    PyErr_Format(PyExc_ValueError, "argument 'task' must be 'object' or 'relation', got '%s'", task);
    return -1;
}

PyDoc_STRVAR(kg_features_doc,
"kg_features(stream_subjects, stream_relations, stream_objects, stream_times,\n"
"            query_subjects, query_relations, query_objects, query_times, query_targets,\n"
"            num_entities, num_relations, rates, task)\n--\n\n"
"Features of the knowledge-graph Hawkes proposer for fitting: (phi_true, phi_total),\n"
"two float64 arrays (Q, F) with phi of the true candidate and the sum of phi over all\n"
"candidates, each query seeing only history events strictly before its time.\n"
"History and queries must be sorted by time.");

static PyObject *kg_features(PyObject *self, PyObject *args, PyObject *kwargs)
{
    (void)self;
    static char *kw[] = {"stream_subjects", "stream_relations", "stream_objects", "stream_times", "query_subjects",
                         "query_relations", "query_objects", "query_times", "query_targets", "num_entities",
                         "num_relations", "rates", "task", NULL};
    PyObject *ss, *sr, *so, *st, *qs, *qr, *qo, *qt, *qtarget, *rates;
    long long ne, nr;
    const char *task_name;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOOOOOLLOs", kw, &ss, &sr, &so, &st, &qs, &qr, &qo, &qt,
                                     &qtarget, &ne, &nr, &rates, &task_name))
        return NULL;
    kg_arrays hist, query;
    PyArrayObject *truef = NULL, *totalf = NULL;
    PyObject *result = NULL;
    lamp_kg_config cfg;
    int task = parse_task(task_name);
    if (task < 0 || take_config(ne, nr, rates, &cfg) < 0) {
        memset(&hist, 0, sizeof hist);
        memset(&query, 0, sizeof query);
        goto finally;
    }
    if (take_events(ss, sr, so, st, NULL, "stream", &hist) < 0) {
        memset(&query, 0, sizeof query);
        goto finally;
    }
    if (take_events(qs, qr, qo, qt, qtarget, "query", &query) < 0)
        goto finally;
    if (!query.target) {
        PyErr_SetString(PyExc_ValueError, "argument 'query_targets' is required for fitting");
        goto finally;
    }
    lamp_kg_stream stream;
    lamp_kg_queries queries;
    fill_stream(&hist, &stream);
    fill_queries(&query, &queries);
    npy_intp dims[2] = {queries.n, LAMP_KG_NUM_FEATURES(cfg.num_scales)};
    truef = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_FLOAT64, 0);
    totalf = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_FLOAT64, 0);
    if (!truef || !totalf)
        goto finally;
    lamp_error err;
    lamp_error_clear(&err);
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = lamp_kg_features(&cfg, &stream, &queries, task, PyArray_DATA(truef), PyArray_DATA(totalf), &err);
    Py_END_ALLOW_THREADS
    if (rc != LAMP_OK) {
        lamp_raise_kernel_error(&err);
        goto finally;
    }
    result = Py_BuildValue("OO", truef, totalf);
finally:
    kg_arrays_release(&hist);
    kg_arrays_release(&query);
    Py_XDECREF(truef);
    Py_XDECREF(totalf);
    return result;
}

PyDoc_STRVAR(kg_score_doc,
"kg_score(stream_subjects, stream_relations, stream_objects, stream_times,\n"
"         query_subjects, query_relations, query_objects, query_times, query_targets,\n"
"         num_entities, num_relations, rates, task, weights, m,\n"
"         filter_offsets=None, filter_ids=None)\n--\n\n"
"Scores every candidate of every query with intensities w . phi and returns\n"
"(top_ids int64 (Q, m), top_scores float64 (Q, m), ranks float64 (Q,) or None).\n"
"ranks (when query_targets is given) is the filtered rank of the target:\n"
"1 + #better + #equal / 2 over candidates outside the query's filter set\n"
"filter_ids[filter_offsets[i]:filter_offsets[i+1]].");

static PyObject *kg_score(PyObject *self, PyObject *args, PyObject *kwargs)
{
    (void)self;
    static char *kw[] = {"stream_subjects", "stream_relations", "stream_objects", "stream_times", "query_subjects",
                         "query_relations", "query_objects", "query_times", "query_targets", "num_entities",
                         "num_relations", "rates", "task", "weights", "m", "filter_offsets", "filter_ids", NULL};
    PyObject *ss, *sr, *so, *st, *qs, *qr, *qo, *qt, *qtarget, *rates, *weights_obj;
    PyObject *foff_obj = Py_None, *fids_obj = Py_None;
    long long ne, nr, m;
    const char *task_name;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOOOOOLLOsOL|OO", kw, &ss, &sr, &so, &st, &qs, &qr, &qo, &qt,
                                     &qtarget, &ne, &nr, &rates, &task_name, &weights_obj, &m, &foff_obj,
                                     &fids_obj))
        return NULL;
    kg_arrays hist, query;
    memset(&hist, 0, sizeof hist);
    memset(&query, 0, sizeof query);
    PyArrayObject *weights = NULL, *foff = NULL, *fids = NULL, *ids = NULL, *scores = NULL, *ranks = NULL;
    PyObject *result = NULL;
    lamp_kg_config cfg;
    int task = parse_task(task_name);
    if (task < 0 || take_config(ne, nr, rates, &cfg) < 0)
        goto finally;
    if (take_events(ss, sr, so, st, NULL, "stream", &hist) < 0 ||
        take_events(qs, qr, qo, qt, qtarget, "query", &query) < 0)
        goto finally;
    if (!(weights = lamp_array_from(weights_obj, NPY_FLOAT64, 1, "weights")) ||
        lamp_require_dim(weights, 0, LAMP_KG_NUM_FEATURES(cfg.num_scales), "weights") < 0)
        goto finally;
    lamp_kg_stream stream;
    lamp_kg_queries queries;
    fill_stream(&hist, &stream);
    fill_queries(&query, &queries);
    if ((foff_obj == Py_None) != (fids_obj == Py_None)) {
        PyErr_SetString(PyExc_ValueError, "give both 'filter_offsets' and 'filter_ids', or neither");
        goto finally;
    }
    if (foff_obj != Py_None) {
        if (!(foff = lamp_array_from(foff_obj, NPY_INT64, 1, "filter_offsets")) ||
            lamp_require_dim(foff, 0, queries.n + 1, "filter_offsets") < 0 ||
            !(fids = lamp_array_from(fids_obj, NPY_INT64, 1, "filter_ids")))
            goto finally;
        const int64_t *o = PyArray_DATA(foff);
        if (o[0] != 0 || o[queries.n] != PyArray_DIM(fids, 0)) {
            PyErr_SetString(PyExc_ValueError,
                            "argument 'filter_offsets' must start at 0 and end at len(filter_ids)");
            goto finally;
        }
    }
    npy_intp n_cand = task == LAMP_KG_TASK_OBJECT ? ne : nr;
    if (m < 1 || m > n_cand) {
        PyErr_Format(PyExc_ValueError, "argument 'm' must be in 1..%zd (the number of candidates), got %lld",
                     (Py_ssize_t)n_cand, m);
        goto finally;
    }
    npy_intp dims[2] = {queries.n, (npy_intp)m};
    npy_intp rdims[1] = {queries.n};
    ids = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_INT64, 0);
    scores = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_FLOAT64, 0);
    if (query.target)
        ranks = (PyArrayObject *)PyArray_ZEROS(1, rdims, NPY_FLOAT64, 0);
    if (!ids || !scores || (query.target && !ranks))
        goto finally;
    lamp_error err;
    lamp_error_clear(&err);
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = lamp_kg_score(&cfg, &stream, &queries, task, PyArray_DATA(weights), (int64_t)m, PyArray_DATA(ids),
                       PyArray_DATA(scores), foff ? PyArray_DATA(foff) : NULL, fids ? PyArray_DATA(fids) : NULL,
                       ranks ? PyArray_DATA(ranks) : NULL, &err);
    Py_END_ALLOW_THREADS
    if (rc != LAMP_OK) {
        lamp_raise_kernel_error(&err);
        goto finally;
    }
    result = Py_BuildValue("OOO", ids, scores, ranks ? (PyObject *)ranks : Py_None);
finally:
    kg_arrays_release(&hist);
    kg_arrays_release(&query);
    Py_XDECREF(weights);
    Py_XDECREF(foff);
    Py_XDECREF(fids);
    Py_XDECREF(ids);
    Py_XDECREF(scores);
    Py_XDECREF(ranks);
    return result;
}

PyDoc_STRVAR(kg_nll_doc,
"kg_nll(phi_true, phi_total, weights)\n--\n\n"
"Negative mean log-likelihood -1/Q sum_i [log(w.phi_true_i) - log(w.phi_total_i)]\n"
"and its gradient with respect to the weights: (nll, grad).");

static PyObject *kg_nll(PyObject *self, PyObject *args, PyObject *kwargs)
{
    (void)self;
    static char *kw[] = {"phi_true", "phi_total", "weights", NULL};
    PyObject *a_obj, *b_obj, *w_obj, *result = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO", kw, &a_obj, &b_obj, &w_obj))
        return NULL;
    PyArrayObject *a = NULL, *b = NULL, *w = NULL, *grad = NULL;
    if (!(a = lamp_array_from(a_obj, NPY_FLOAT64, 2, "phi_true")) ||
        !(b = lamp_array_from(b_obj, NPY_FLOAT64, 2, "phi_total")) ||
        !(w = lamp_array_from(w_obj, NPY_FLOAT64, 1, "weights")))
        goto finally;
    npy_intp n = PyArray_DIM(a, 0), f = PyArray_DIM(a, 1);
    if (lamp_require_dim(b, 0, n, "phi_total") < 0 || lamp_require_dim(b, 1, f, "phi_total") < 0 ||
        lamp_require_dim(w, 0, f, "weights") < 0 || lamp_require_finite(w, "weights") < 0)
        goto finally;
    npy_intp gdims[1] = {f};
    if (!(grad = (PyArrayObject *)PyArray_ZEROS(1, gdims, NPY_FLOAT64, 0)))
        goto finally;
    lamp_error err;
    lamp_error_clear(&err);
    double nll = 0.0;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = lamp_kg_nll(PyArray_DATA(a), PyArray_DATA(b), n, f, PyArray_DATA(w), &nll, PyArray_DATA(grad), &err);
    Py_END_ALLOW_THREADS
    if (rc != LAMP_OK) {
        lamp_raise_kernel_error(&err);
        goto finally;
    }
    result = Py_BuildValue("dO", nll, grad);
finally:
    Py_XDECREF(a);
    Py_XDECREF(b);
    Py_XDECREF(w);
    Py_XDECREF(grad);
    return result;
}

static PyObject *kg_score_pairs(PyObject *self, PyObject *args, PyObject *kwargs)
{
    (void)self;
    static char *kw[] = {"stream_subjects", "stream_relations", "stream_objects", "stream_times", "query_subjects",
                         "query_relations", "query_objects", "query_times", "query_targets", "num_entities",
                         "num_relations", "rates", "weights", "m", "filter_offsets", "filter_ids", NULL};
    PyObject *ss, *sr, *so, *st, *qs, *qr, *qo, *qt, *qtarget, *rates, *weights_obj;
    PyObject *foff_obj = Py_None, *fids_obj = Py_None;
    long long ne, nr, m;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOOOOOLLOOL|OO", kw, &ss, &sr, &so, &st, &qs, &qr, &qo, &qt,
                                     &qtarget, &ne, &nr, &rates, &weights_obj, &m, &foff_obj, &fids_obj))
        return NULL;
    kg_arrays hist, query;
    memset(&hist, 0, sizeof hist);
    memset(&query, 0, sizeof query);
    PyArrayObject *weights = NULL, *foff = NULL, *fids = NULL, *ids = NULL, *scores = NULL, *ranks = NULL;
    PyObject *result = NULL;
    lamp_kg_config cfg;
    if (take_config(ne, nr, rates, &cfg) < 0 || take_events(ss, sr, so, st, NULL, "stream", &hist) < 0 ||
        take_events(qs, qr, qo, qt, qtarget, "query", &query) < 0)
        goto finally;
    if (!(weights = lamp_array_from(weights_obj, NPY_FLOAT64, 1, "weights")) ||
        lamp_require_dim(weights, 0, LAMP_KG_NUM_FEATURES(cfg.num_scales), "weights") < 0)
        goto finally;
    lamp_kg_stream stream;
    lamp_kg_queries queries;
    fill_stream(&hist, &stream);
    fill_queries(&query, &queries);
    if (foff_obj != Py_None) {
        if (!(foff = lamp_array_from(foff_obj, NPY_INT64, 1, "filter_offsets")) ||
            lamp_require_dim(foff, 0, queries.n + 1, "filter_offsets") < 0 ||
            !(fids = lamp_array_from(fids_obj, NPY_INT64, 1, "filter_ids")))
            goto finally;
        const int64_t *o = PyArray_DATA(foff);
        if (o[0] != 0 || o[queries.n] != PyArray_DIM(fids, 0)) {
            PyErr_SetString(PyExc_ValueError, "argument 'filter_offsets' must start at 0 and end at len(filter_ids)");
            goto finally;
        }
    }
    if (m < 1 || m > ne * nr) {
        PyErr_Format(PyExc_ValueError, "argument 'm' must be in 1..%lld, got %lld", ne * nr, m);
        goto finally;
    }
    npy_intp dims[2] = {queries.n, (npy_intp)m}, rdims[1] = {queries.n};
    ids = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_INT64, 0);
    scores = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_FLOAT64, 0);
    if (query.target)
        ranks = (PyArrayObject *)PyArray_ZEROS(1, rdims, NPY_FLOAT64, 0);
    if (!ids || !scores || (query.target && !ranks))
        goto finally;
    lamp_error err;
    lamp_error_clear(&err);
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = lamp_kg_score_pairs(&cfg, &stream, &queries, PyArray_DATA(weights), (int64_t)m, PyArray_DATA(ids),
                             PyArray_DATA(scores), foff ? PyArray_DATA(foff) : NULL, fids ? PyArray_DATA(fids) : NULL,
                             ranks ? PyArray_DATA(ranks) : NULL, &err);
    Py_END_ALLOW_THREADS
    if (rc != LAMP_OK) {
        lamp_raise_kernel_error(&err);
        goto finally;
    }
    result = Py_BuildValue("OOO", ids, scores, ranks ? (PyObject *)ranks : Py_None);
finally:
    kg_arrays_release(&hist);
    kg_arrays_release(&query);
    Py_XDECREF(weights);
    Py_XDECREF(foff);
    Py_XDECREF(fids);
    Py_XDECREF(ids);
    Py_XDECREF(scores);
    Py_XDECREF(ranks);
    return result;
}

static PyMethodDef kg_methods[] = {
    {"kg_score_pairs", (PyCFunction)(void (*)(void))kg_score_pairs, METH_VARARGS | METH_KEYWORDS,
     "kg_score_pairs(..., weights, m, filter_offsets=None, filter_ids=None) -> (pair ids r*E+o (Q, m), scores, "
     "ranks or None); query_targets are the true relations and query_objects the true objects"},
    {"kg_features", (PyCFunction)(void (*)(void))kg_features, METH_VARARGS | METH_KEYWORDS, kg_features_doc},
    {"kg_score", (PyCFunction)(void (*)(void))kg_score, METH_VARARGS | METH_KEYWORDS, kg_score_doc},
    {"kg_nll", (PyCFunction)(void (*)(void))kg_nll, METH_VARARGS | METH_KEYWORDS, kg_nll_doc},
    {NULL, NULL, 0, NULL},
};

int lamp_kg_hawkes_exec(PyObject *module)
{
    return PyModule_AddFunctions(module, kg_methods);
}
