/* Binding of csrc/hawkes.c: multivariate exponential Hawkes intensities and likelihood. */
#include "binding.h"

#include "../hawkes.h"

typedef struct {
    PyArrayObject *times, *marks, *mu, *alpha, *beta;
    npy_intp n, K;
} hawkes_args;

static void hawkes_args_release(hawkes_args *a)
{
    Py_XDECREF(a->times);
    Py_XDECREF(a->marks);
    Py_XDECREF(a->mu);
    Py_XDECREF(a->alpha);
    Py_XDECREF(a->beta);
}

static int take(PyObject *t, PyObject *m, PyObject *mu, PyObject *alpha, PyObject *beta, hawkes_args *a)
{
    memset(a, 0, sizeof *a);
    if (!(a->times = lamp_array_from(t, NPY_FLOAT64, 1, "times")) ||
        !(a->marks = lamp_array_from(m, NPY_INT64, 1, "marks")) ||
        !(a->mu = lamp_array_from(mu, NPY_FLOAT64, 1, "mu")) ||
        !(a->alpha = lamp_array_from(alpha, NPY_FLOAT64, 2, "alpha")) ||
        !(a->beta = lamp_array_from(beta, NPY_FLOAT64, 2, "beta")))
        return -1;
    a->n = PyArray_DIM(a->times, 0);
    a->K = PyArray_DIM(a->mu, 0);
    if (lamp_require_dim(a->marks, 0, a->n, "marks") < 0 || lamp_require_dim(a->alpha, 0, a->K, "alpha") < 0 ||
        lamp_require_dim(a->alpha, 1, a->K, "alpha") < 0 || lamp_require_dim(a->beta, 0, a->K, "beta") < 0 ||
        lamp_require_dim(a->beta, 1, a->K, "beta") < 0)
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
    lamp_error_clear(&err);
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = lamp_hawkes_intensity(PyArray_DATA(a.times), PyArray_DATA(a.marks), a.n, a.K, PyArray_DATA(a.mu),
                               PyArray_DATA(a.alpha), PyArray_DATA(a.beta), PyArray_DATA(q), PyArray_DIM(q, 0),
                               PyArray_DATA(out), &err);
    Py_END_ALLOW_THREADS
    if (rc != LAMP_OK) {
        lamp_raise_kernel_error(&err);
        goto finally;
    }
    result = (PyObject *)out;
    out = NULL;
finally:
    hawkes_args_release(&a);
    Py_XDECREF(q);
    Py_XDECREF(out);
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
    PyArrayObject *dmu = NULL, *dalpha = NULL, *dbeta = NULL;
    if (take(t, m, mu, alpha, beta, &a) < 0)
        goto finally;
    if (want_grad) {
        npy_intp d1[1] = {a.K}, d2[2] = {a.K, a.K};
        if (!(dmu = (PyArrayObject *)PyArray_ZEROS(1, d1, NPY_FLOAT64, 0)) ||
            !(dalpha = (PyArrayObject *)PyArray_ZEROS(2, d2, NPY_FLOAT64, 0)) ||
            !(dbeta = (PyArrayObject *)PyArray_ZEROS(2, d2, NPY_FLOAT64, 0)))
            goto finally;
    }
    lamp_error err;
    lamp_error_clear(&err);
    double ll = 0.0;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = lamp_hawkes_loglik(PyArray_DATA(a.times), PyArray_DATA(a.marks), a.n, a.K, PyArray_DATA(a.mu),
                            PyArray_DATA(a.alpha), PyArray_DATA(a.beta), end_time, &ll,
                            dmu ? PyArray_DATA(dmu) : NULL, dalpha ? PyArray_DATA(dalpha) : NULL,
                            dbeta ? PyArray_DATA(dbeta) : NULL, &err);
    Py_END_ALLOW_THREADS
    if (rc != LAMP_OK) {
        lamp_raise_kernel_error(&err);
        goto finally;
    }
    result = want_grad ? Py_BuildValue("dOOO", ll, dmu, dalpha, dbeta) : PyFloat_FromDouble(ll);
finally:
    hawkes_args_release(&a);
    Py_XDECREF(dmu);
    Py_XDECREF(dalpha);
    Py_XDECREF(dbeta);
    return result;
}

static PyMethodDef hawkes_methods[] = {
    {"hawkes_intensity", hawkes_intensity, METH_VARARGS,
     "hawkes_intensity(times, marks, mu, alpha, beta, query_times) -> (Q, K) left-limit intensities"},
    {"hawkes_loglik", hawkes_loglik, METH_VARARGS,
     "hawkes_loglik(times, marks, mu, alpha, beta, end_time, want_grad) -> loglik or (loglik, dmu, dalpha, dbeta)"},
    {NULL, NULL, 0, NULL},
};

int lamp_hawkes_exec(PyObject *module)
{
    return PyModule_AddFunctions(module, hawkes_methods);
}
