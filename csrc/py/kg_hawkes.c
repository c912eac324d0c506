/* Binding of csrc/hawkes/kg_hawkes.c: the knowledge-graph Hawkes proposer. */
#include "py/binding.h"

#include "hawkes/kg_hawkes.h"

/* The twelve arguments kg_features, kg_score and kg_score_pairs start with: the history (stream_*), the
 * queries (query_*; query_targets may be None), num_entities, num_relations and rates.  KG_INPUT_KEYWORDS and
 * KG_INPUT_FORMAT open each function's keyword list and format, KG_INPUT_POINTERS its pointers. */
typedef struct {
    PyObject *stream[4], *query[4], *targets, *rates;
    long long num_entities, num_relations;
} kg_input_args;

#define KG_INPUT_KEYWORDS                                                                                      \
    "stream_subjects", "stream_relations", "stream_objects", "stream_times", "query_subjects",                   \
        "query_relations", "query_objects", "query_times", "query_targets", "num_entities", "num_relations", "rates"
#define KG_INPUT_FORMAT "OOOOOOOOOLLO"
#define KG_INPUT_POINTERS(a)                                                                                   \
    &(a).stream[0], &(a).stream[1], &(a).stream[2], &(a).stream[3], &(a).query[0], &(a).query[1], &(a).query[2], \
        &(a).query[3], &(a).targets, &(a).num_entities, &(a).num_relations, &(a).rates

/* Arrays taken from Python, released together. */
typedef struct {
    PyArrayObject *s, *r, *o, *t, *target;
} kg_arrays;

static void kg_arrays_release(kg_arrays *a)
{
    LAMP_XDECREF_ALL(a->s, a->r, a->o, a->t, a->target);
}

/* Reads parallel 1-D arrays cols = (subjects, relations, objects, times) (names prefixed by `what`); target
 * may be None. */
static int take_events(PyObject *const cols[4], PyObject *target, const char *what, kg_arrays *out)
{
    char name[64];
    memset(out, 0, sizeof *out);
    snprintf(name, sizeof name, "%s_subjects", what);
    if (!(out->s = lamp_array_from(cols[0], NPY_INT64, 1, name)))
        return -1;
    npy_intp n = PyArray_DIM(out->s, 0);
    snprintf(name, sizeof name, "%s_relations", what);
    if (!(out->r = lamp_array_len(cols[1], NPY_INT64, n, name)))
        return -1;
    snprintf(name, sizeof name, "%s_objects", what);
    if (!(out->o = lamp_array_len(cols[2], NPY_INT64, n, name)))
        return -1;
    snprintf(name, sizeof name, "%s_times", what);
    if (!(out->t = lamp_array_len(cols[3], NPY_FLOAT64, n, name)) || lamp_require_finite(out->t, name) < 0)
        return -1;
    if (target && target != Py_None) {
        snprintf(name, sizeof name, "%s_targets", what);
        if (!(out->target = lamp_array_len(target, NPY_INT64, n, name)))
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
    q->targets = lamp_data_or_null(a->target);
    q->n = PyArray_DIM(a->s, 0);
}

/* kg_input_args converted: the arrays and the views the kernels take. */
typedef struct {
    kg_arrays hist, query;
    lamp_kg_config cfg;
    lamp_kg_stream stream;
    lamp_kg_queries queries;
} kg_input;

static void kg_input_release(kg_input *in)
{
    kg_arrays_release(&in->hist);
    kg_arrays_release(&in->query);
}

/* Converts and checks the arguments (rates, then the history, then the queries); 0, or -1 with an exception
 * set and nothing left to release. */
static int take_input(const kg_input_args *a, kg_input *in)
{
    memset(&in->hist, 0, sizeof in->hist);
    memset(&in->query, 0, sizeof in->query);
    if (take_config(a->num_entities, a->num_relations, a->rates, &in->cfg) < 0 ||
        take_events(a->stream, NULL, "stream", &in->hist) < 0 ||
        take_events(a->query, a->targets, "query", &in->query) < 0) {
        kg_input_release(in);
        return -1;
    }
    fill_stream(&in->hist, &in->stream);
    fill_queries(&in->query, &in->queries);
    return 0;
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
    static char *kw[] = {KG_INPUT_KEYWORDS, "task", NULL};
    kg_input_args a;
    const char *task_name;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, KG_INPUT_FORMAT "s", kw, KG_INPUT_POINTERS(a), &task_name))
        return NULL;
    kg_input in;
    int task = parse_task(task_name);
    if (task < 0 || take_input(&a, &in) < 0)
        return NULL;
    PyArrayObject *truef = NULL, *totalf = NULL;
    PyObject *result = NULL;
    if (!in.query.target) {
        PyErr_SetString(PyExc_ValueError, "argument 'query_targets' is required for fitting");
        goto finally;
    }
    npy_intp dims[2] = {in.queries.n, LAMP_KG_NUM_FEATURES(in.cfg.num_scales)};
    truef = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_FLOAT64, 0);
    totalf = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_FLOAT64, 0);
    if (!truef || !totalf)
        goto finally;
    lamp_error err;
    if (LAMP_RUN_KERNEL(err, lamp_kg_features(&in.cfg, &in.stream, &in.queries, task, PyArray_DATA(truef),
                                              PyArray_DATA(totalf), &err)) < 0)
        goto finally;
    result = Py_BuildValue("OO", truef, totalf);
finally:
    kg_input_release(&in);
    LAMP_XDECREF_ALL(truef, totalf);
    return result;
}

/* kg_score with task LAMP_KG_TASK_OBJECT or LAMP_KG_TASK_RELATION, kg_score_pairs with KG_PAIRS, once their
 * arguments are parsed.  They differ in the bound on m and its message, in kg_score's demand for both filter
 * arrays or neither, and in the kernel. */
enum { KG_PAIRS = -1 };

static PyObject *score(const kg_input_args *a, int task, PyObject *weights_obj, long long m, PyObject *foff_obj,
                       PyObject *fids_obj)
{
    kg_input in;
    if (take_input(a, &in) < 0)
        return NULL;
    PyArrayObject *weights = NULL, *foff = NULL, *fids = NULL, *ids = NULL, *scores = NULL, *ranks = NULL;
    PyObject *result = NULL;
    if (!(weights = lamp_array_len(weights_obj, NPY_FLOAT64, LAMP_KG_NUM_FEATURES(in.cfg.num_scales), "weights")))
        goto finally;
    if (task != KG_PAIRS && (foff_obj == Py_None) != (fids_obj == Py_None)) {
        PyErr_SetString(PyExc_ValueError, "give both 'filter_offsets' and 'filter_ids', or neither");
        goto finally;
    }
    if (foff_obj != Py_None) {
        if (!(foff = lamp_array_len(foff_obj, NPY_INT64, in.queries.n + 1, "filter_offsets")) ||
            !(fids = lamp_array_from(fids_obj, NPY_INT64, 1, "filter_ids")))
            goto finally;
        const int64_t *o = PyArray_DATA(foff);
        if (o[0] != 0 || o[in.queries.n] != PyArray_DIM(fids, 0)) {
            PyErr_SetString(PyExc_ValueError, "argument 'filter_offsets' must start at 0 and end at len(filter_ids)");
            goto finally;
        }
    }
    long long ne = a->num_entities, nr = a->num_relations;
    if (task == KG_PAIRS && (m < 1 || m > ne * nr)) {
        PyErr_Format(PyExc_ValueError, "argument 'm' must be in 1..%lld, got %lld", ne * nr, m);
        goto finally;
    }
    npy_intp n_cand = task == LAMP_KG_TASK_OBJECT ? ne : nr;
    if (task != KG_PAIRS && (m < 1 || m > n_cand)) {
        PyErr_Format(PyExc_ValueError, "argument 'm' must be in 1..%zd (the number of candidates), got %lld",
                     (Py_ssize_t)n_cand, m);
        goto finally;
    }
    npy_intp dims[2] = {in.queries.n, (npy_intp)m}, rdims[1] = {in.queries.n};
    ids = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_INT64, 0);
    scores = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_FLOAT64, 0);
    if (in.query.target)
        ranks = (PyArrayObject *)PyArray_ZEROS(1, rdims, NPY_FLOAT64, 0);
    if (!ids || !scores || (in.query.target && !ranks))
        goto finally;
    lamp_error err;
    if (LAMP_RUN_KERNEL(err, task == KG_PAIRS
                                 ? lamp_kg_score_pairs(&in.cfg, &in.stream, &in.queries, PyArray_DATA(weights),
                                                       (int64_t)m, PyArray_DATA(ids), PyArray_DATA(scores),
                                                       lamp_data_or_null(foff), lamp_data_or_null(fids),
                                                       lamp_data_or_null(ranks), &err)
                                 : lamp_kg_score(&in.cfg, &in.stream, &in.queries, task, PyArray_DATA(weights),
                                                 (int64_t)m, PyArray_DATA(ids), PyArray_DATA(scores),
                                                 lamp_data_or_null(foff), lamp_data_or_null(fids),
                                                 lamp_data_or_null(ranks), &err)) < 0)
        goto finally;
    result = Py_BuildValue("OOO", ids, scores, ranks ? (PyObject *)ranks : Py_None);
finally:
    kg_input_release(&in);
    LAMP_XDECREF_ALL(weights, foff, fids, ids, scores, ranks);
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
    static char *kw[] = {KG_INPUT_KEYWORDS, "task", "weights", "m", "filter_offsets", "filter_ids", NULL};
    kg_input_args a;
    PyObject *weights, *foff = Py_None, *fids = Py_None;
    long long m;
    const char *task_name;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, KG_INPUT_FORMAT "sOL|OO", kw, KG_INPUT_POINTERS(a), &task_name,
                                     &weights, &m, &foff, &fids))
        return NULL;
    int task = parse_task(task_name);
    return task < 0 ? NULL : score(&a, task, weights, m, foff, fids);
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
    if (lamp_require_shape(b, n, f, "phi_total") < 0 || lamp_require_dim(w, 0, f, "weights") < 0 ||
        lamp_require_finite(w, "weights") < 0)
        goto finally;
    npy_intp gdims[1] = {f};
    if (!(grad = (PyArrayObject *)PyArray_ZEROS(1, gdims, NPY_FLOAT64, 0)))
        goto finally;
    lamp_error err;
    double nll = 0.0;
    if (LAMP_RUN_KERNEL(err, lamp_kg_nll(PyArray_DATA(a), PyArray_DATA(b), n, f, PyArray_DATA(w), &nll,
                                         PyArray_DATA(grad), &err)) < 0)
        goto finally;
    result = Py_BuildValue("dO", nll, grad);
finally:
    LAMP_XDECREF_ALL(a, b, w, grad);
    return result;
}

static PyObject *kg_score_pairs(PyObject *self, PyObject *args, PyObject *kwargs)
{
    (void)self;
    static char *kw[] = {KG_INPUT_KEYWORDS, "weights", "m", "filter_offsets", "filter_ids", NULL};
    kg_input_args a;
    PyObject *weights, *foff = Py_None, *fids = Py_None;
    long long m;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, KG_INPUT_FORMAT "OL|OO", kw, KG_INPUT_POINTERS(a), &weights, &m,
                                     &foff, &fids))
        return NULL;
    return score(&a, KG_PAIRS, weights, m, foff, fids);
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

/* The feature layout (hawkes/kg_hawkes.h): F = 2 + KG_FEATURES_PER_SCALE * S for S <= KG_MAX_SCALES decay
 * scales, for lamp/tpp/kg_hawkes.py to check its feature names against. */
static const lamp_int_constant kg_constants[] = {
    {"KG_MAX_SCALES", LAMP_KG_MAX_SCALES},
    {"KG_FEATURES_PER_SCALE", LAMP_KG_FEATURES_PER_SCALE},
    {NULL, 0},
};

int lamp_kg_hawkes_exec(PyObject *module)
{
    return lamp_add_kernel(module, kg_methods, kg_constants);
}
