/* Binding of csrc/hawkes/hawkes.c: multivariate exponential Hawkes intensities and likelihood. */
#include "py/binding.h"

#include "hawkes/hawkes.h"

typedef struct {
    PyArrayObject *times, *marks, *mu, *alpha, *beta;
    npy_intp n, K;
} hawkes_args;

static void hawkes_args_release(hawkes_args *a)
{
    LAMP_XDECREF_ALL(a->times, a->marks, a->mu, a->alpha, a->beta);
}

/* alpha and beta must be K x K. */
static int require_square(PyArrayObject *alpha, PyArrayObject *beta, npy_intp K)
{
    return (lamp_require_shape(alpha, K, K, "alpha") < 0 || lamp_require_shape(beta, K, K, "beta") < 0) ? -1 : 0;
}

static int take(PyObject *t, PyObject *m, PyObject *mu, PyObject *alpha, PyObject *beta, hawkes_args *a)
{
    memset(a, 0, sizeof *a);
    if (!(a->times = lamp_array_from(t, NPY_FLOAT64, 1, "times")) ||
        !(a->marks = lamp_array_from(m, NPY_INT64, 1, "marks")) ||
        !(a->mu = lamp_array_from(mu, NPY_FLOAT64, 1, "mu")) ||
        !(a->alpha = lamp_array_from(alpha, NPY_FLOAT64, 2, "alpha")))
        return -1;
    a->n = PyArray_DIM(a->times, 0);
    a->K = PyArray_DIM(a->mu, 0);
    if (PyFloat_Check(beta)) { /* one decay for every pair: the K x K matrix is made here */
        npy_intp dims[2] = {a->K, a->K};
        double b = PyFloat_AS_DOUBLE(beta);
        if (!(a->beta = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_FLOAT64)))
            return -1;
        double *p = PyArray_DATA(a->beta);
        for (npy_intp i = 0; i < a->K * a->K; i++)
            p[i] = b;
    } else if (!(a->beta = lamp_array_from(beta, NPY_FLOAT64, 2, "beta")))
        return -1;
    if (lamp_require_dim(a->marks, 0, a->n, "marks") < 0 || require_square(a->alpha, a->beta, a->K) < 0)
        return -1;
    return 0;
}

/* The gradient of hawkes_loglik and hawkes_loglik_batch: zeroed arrays with want_grad, else all NULL. */
typedef struct {
    PyArrayObject *dmu, *dalpha, *dbeta;
} hawkes_grads;

/* The kernels' gradient pointers (NULL without want_grad). */
#define GRAD_POINTERS(g) lamp_data_or_null((g).dmu), lamp_data_or_null((g).dalpha), lamp_data_or_null((g).dbeta)

static int new_grads(int want_grad, npy_intp K, hawkes_grads *g)
{
    npy_intp d1[1] = {K}, d2[2] = {K, K};
    if (want_grad && (!(g->dmu = (PyArrayObject *)PyArray_ZEROS(1, d1, NPY_FLOAT64, 0)) ||
                      !(g->dalpha = (PyArrayObject *)PyArray_ZEROS(2, d2, NPY_FLOAT64, 0)) ||
                      !(g->dbeta = (PyArrayObject *)PyArray_ZEROS(2, d2, NPY_FLOAT64, 0))))
        return -1;
    return 0;
}

/* loglik, or (loglik, dmu, dalpha, dbeta) with want_grad. */
static PyObject *loglik_result(double ll, int want_grad, const hawkes_grads *g)
{
    return want_grad ? Py_BuildValue("dOOO", ll, g->dmu, g->dalpha, g->dbeta) : PyFloat_FromDouble(ll);
}

static void grads_release(hawkes_grads *g)
{
    LAMP_XDECREF_ALL(g->dmu, g->dalpha, g->dbeta);
}

/* Zeroed event arrays (times float64, marks int64) of length n, for the samplers. */
static int new_events(npy_intp n, PyArrayObject **times, PyArrayObject **marks)
{
    npy_intp dims[1] = {n};
    if (!(*times = (PyArrayObject *)PyArray_ZEROS(1, dims, NPY_FLOAT64, 0)) ||
        !(*marks = (PyArrayObject *)PyArray_ZEROS(1, dims, NPY_INT64, 0)))
        return -1;
    return 0;
}

static PyObject *hawkes_intensity(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *t, *m, *mu, *alpha, *beta, *q_obj;
    if (!PyArg_ParseTuple(args, "OOOOOO", &t, &m, &mu, &alpha, &beta, &q_obj))
        return NULL;
    hawkes_args a;
    PyArrayObject *q = NULL, *out = NULL;
    PyObject *result = NULL;
    if (take(t, m, mu, alpha, beta, &a) < 0 || !(q = lamp_array_from(q_obj, NPY_FLOAT64, 1, "query_times")))
        goto finally;
    npy_intp dims[2] = {PyArray_DIM(q, 0), a.K};
    if (!(out = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_FLOAT64, 0)))
        goto finally;
    lamp_error err;
    if (LAMP_RUN_KERNEL(err, lamp_hawkes_intensity(PyArray_DATA(a.times), PyArray_DATA(a.marks), a.n, a.K,
                                                   PyArray_DATA(a.mu), PyArray_DATA(a.alpha), PyArray_DATA(a.beta),
                                                   PyArray_DATA(q), PyArray_DIM(q, 0), PyArray_DATA(out), &err)) < 0)
        goto finally;
    result = (PyObject *)out;
    out = NULL;
finally:
    hawkes_args_release(&a);
    LAMP_XDECREF_ALL(q, out);
    return result;
}

static PyObject *hawkes_loglik(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *t, *m, *mu, *alpha, *beta, *result = NULL;
    double end_time;
    int want_grad;
    if (!PyArg_ParseTuple(args, "OOOOOdp", &t, &m, &mu, &alpha, &beta, &end_time, &want_grad))
        return NULL;
    hawkes_args a;
    hawkes_grads g = {0};
    if (take(t, m, mu, alpha, beta, &a) < 0 || new_grads(want_grad, a.K, &g) < 0)
        goto finally;
    lamp_error err;
    double ll = 0.0;
    if (LAMP_RUN_KERNEL(err, lamp_hawkes_loglik(PyArray_DATA(a.times), PyArray_DATA(a.marks), a.n, a.K,
                                                PyArray_DATA(a.mu), PyArray_DATA(a.alpha), PyArray_DATA(a.beta),
                                                end_time, &ll, GRAD_POINTERS(g), &err)) < 0)
        goto finally;
    result = loglik_result(ll, want_grad, &g);
finally:
    hawkes_args_release(&a);
    grads_release(&g);
    return result;
}

static PyObject *hawkes_sample_next(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *t, *m, *mu, *alpha, *beta, *result = NULL;
    double t_start;
    long long n_samples;
    unsigned long long seed;
    if (!PyArg_ParseTuple(args, "OOOOOdLK", &t, &m, &mu, &alpha, &beta, &t_start, &n_samples, &seed))
        return NULL;
    hawkes_args a;
    PyArrayObject *ot = NULL, *om = NULL;
    if (take(t, m, mu, alpha, beta, &a) < 0)
        goto finally;
    if (n_samples < 1) {
        PyErr_Format(PyExc_ValueError, "argument 'n' must be positive, got %lld", n_samples);
        goto finally;
    }
    if (new_events((npy_intp)n_samples, &ot, &om) < 0)
        goto finally;
    lamp_error err;
    if (LAMP_RUN_KERNEL(err, lamp_hawkes_sample_next(PyArray_DATA(a.times), PyArray_DATA(a.marks), a.n, a.K,
                                                     PyArray_DATA(a.mu), PyArray_DATA(a.alpha), PyArray_DATA(a.beta),
                                                     t_start, n_samples, seed, PyArray_DATA(ot), PyArray_DATA(om),
                                                     &err)) < 0)
        goto finally;
    result = Py_BuildValue("OO", ot, om);
finally:
    hawkes_args_release(&a);
    LAMP_XDECREF_ALL(ot, om);
    return result;
}

static PyObject *hawkes_simulate(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *mu_obj, *alpha_obj, *beta_obj, *result = NULL;
    double end_time;
    long long max_events;
    unsigned long long seed;
    if (!PyArg_ParseTuple(args, "OOOdLK", &mu_obj, &alpha_obj, &beta_obj, &end_time, &max_events, &seed))
        return NULL;
    PyArrayObject *mu = NULL, *alpha = NULL, *beta = NULL, *ot = NULL, *om = NULL;
    if (!(mu = lamp_array_from(mu_obj, NPY_FLOAT64, 1, "mu")) ||
        !(alpha = lamp_array_from(alpha_obj, NPY_FLOAT64, 2, "alpha")) ||
        !(beta = lamp_array_from(beta_obj, NPY_FLOAT64, 2, "beta")))
        goto finally;
    npy_intp K = PyArray_DIM(mu, 0);
    if (require_square(alpha, beta, K) < 0)
        goto finally;
    if (max_events < 1) {
        PyErr_SetString(PyExc_ValueError, "argument 'max_events' must be positive");
        goto finally;
    }
    if (new_events((npy_intp)max_events, &ot, &om) < 0)
        goto finally;
    lamp_error err;
    int64_t count = 0;
    if (LAMP_RUN_KERNEL(err, lamp_hawkes_simulate(K, PyArray_DATA(mu), PyArray_DATA(alpha), PyArray_DATA(beta),
                                                  end_time, max_events, seed, PyArray_DATA(ot), PyArray_DATA(om),
                                                  &count, &err)) < 0)
        goto finally;
    PyObject *times = PySequence_GetSlice((PyObject *)ot, 0, count), *marks = PySequence_GetSlice((PyObject *)om, 0, count);
    if (times && marks)
        result = Py_BuildValue("NN", times, marks);
    else
        LAMP_XDECREF_ALL(times, marks);
finally:
    LAMP_XDECREF_ALL(mu, alpha, beta, ot, om);
    return result;
}

static PyObject *hawkes_loglik_batch(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *t, *m, *off_obj, *mu, *alpha, *beta, *end_obj, *result = NULL;
    int want_grad;
    if (!PyArg_ParseTuple(args, "OOOOOOOp", &t, &m, &off_obj, &mu, &alpha, &beta, &end_obj, &want_grad))
        return NULL;
    hawkes_args a;
    hawkes_grads g = {0};
    PyArrayObject *off = NULL, *ends = NULL;
    if (take(t, m, mu, alpha, beta, &a) < 0 || !(off = lamp_array_from(off_obj, NPY_INT64, 1, "offsets")) ||
        !(ends = lamp_array_from(end_obj, NPY_FLOAT64, 1, "end_times")))
        goto finally;
    npy_intp n_seq = PyArray_DIM(off, 0) - 1;
    const int64_t *o = PyArray_DATA(off);
    if (n_seq < 0 || o[0] != 0 || o[n_seq] != a.n) {
        PyErr_SetString(PyExc_ValueError, "argument 'offsets' must start at 0 and end at len(times)");
        goto finally;
    }
    if (lamp_require_dim(ends, 0, n_seq, "end_times") < 0 || new_grads(want_grad, a.K, &g) < 0)
        goto finally;
    lamp_error err;
    double ll = 0.0;
    if (LAMP_RUN_KERNEL(err, lamp_hawkes_loglik_batch(PyArray_DATA(a.times), PyArray_DATA(a.marks), o, n_seq, a.K,
                                                      PyArray_DATA(a.mu), PyArray_DATA(a.alpha), PyArray_DATA(a.beta),
                                                      PyArray_DATA(ends), &ll, GRAD_POINTERS(g), &err)) < 0)
        goto finally;
    result = loglik_result(ll, want_grad, &g);
finally:
    hawkes_args_release(&a);
    grads_release(&g);
    LAMP_XDECREF_ALL(off, ends);
    return result;
}

static PyObject *hawkes_stream_floor(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *t_obj, *m_obj;
    if (!PyArg_ParseTuple(args, "OO", &t_obj, &m_obj))
        return NULL;
    PyArrayObject *t = lamp_array_from(t_obj, NPY_FLOAT64, 1, "times"), *m = NULL;
    if (!t || !(m = lamp_array_len(m_obj, NPY_INT64, PyArray_DIM(t, 0), "marks"))) {
        Py_XDECREF(t);
        return NULL;
    }
    double v;
    Py_BEGIN_ALLOW_THREADS
    v = lamp_hawkes_stream_floor(PyArray_DATA(t), PyArray_DATA(m), PyArray_DIM(t, 0));
    Py_END_ALLOW_THREADS
    Py_DECREF(t);
    Py_DECREF(m);
    return PyFloat_FromDouble(v);
}

static PyMethodDef hawkes_methods[] = {
    {"hawkes_loglik_batch", hawkes_loglik_batch, METH_VARARGS,
     "hawkes_loglik_batch(times, marks, offsets, mu, alpha, beta, end_times, want_grad) -> summed over sequences"},
    {"_hawkes_stream_floor", hawkes_stream_floor, METH_VARARGS,
     "_hawkes_stream_floor(times, marks) -> float: one pass reading every time and mark (benchmark floor)"},
    {"hawkes_sample_next", hawkes_sample_next, METH_VARARGS,
     "hawkes_sample_next(times, marks, mu, alpha, beta, t_start, n, seed) -> (times (n,), marks (n,))"},
    {"hawkes_simulate", hawkes_simulate, METH_VARARGS,
     "hawkes_simulate(mu, alpha, beta, end_time, max_events, seed) -> (times, marks) on [0, end_time]"},
    {"hawkes_intensity", hawkes_intensity, METH_VARARGS,
     "hawkes_intensity(times, marks, mu, alpha, beta, query_times) -> (Q, K) left-limit intensities"},
    {"hawkes_loglik", hawkes_loglik, METH_VARARGS,
     "hawkes_loglik(times, marks, mu, alpha, beta, end_time, want_grad) -> loglik or (loglik, dmu, dalpha, dbeta)"},
    {NULL, NULL, 0, NULL},
};

int lamp_hawkes_exec(PyObject *module)
{
    return lamp_add_kernel(module, hawkes_methods, NULL);
}
