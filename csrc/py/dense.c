/* Binding of csrc/retrieval/dense.c: cosine top-k over dense vectors with a per-query prefix. */
#include "py/binding.h"

#include "retrieval/dense.h"

static PyObject *dense_normalize(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *x_obj;
    const char *what;
    if (!PyArg_ParseTuple(args, "Os", &x_obj, &what))
        return NULL;
    PyArrayObject *x = (PyArrayObject *)PyArray_FROM_OTF(x_obj, NPY_FLOAT32, NPY_ARRAY_IN_ARRAY | NPY_ARRAY_ENSURECOPY | NPY_ARRAY_FORCECAST);
    if (!x) {
        PyErr_Format(PyExc_TypeError, "'%s' must be a 2-D array of numbers", what);
        return NULL;
    }
    if (PyArray_NDIM(x) != 2 || PyArray_DIM(x, 0) < 1 || PyArray_DIM(x, 1) < 1) {
        PyErr_Format(PyExc_ValueError, "'%s' must be a non-empty 2-D array (rows x dimension)", what);
        Py_DECREF(x);
        return NULL;
    }
    lamp_error err;
    lamp_error_clear(&err);
    if (lamp_dense_normalize(PyArray_DATA(x), PyArray_DIM(x, 0), PyArray_DIM(x, 1), what, &err) != LAMP_OK) {
        Py_DECREF(x);
        return lamp_raise_kernel_error(&err);
    }
    return (PyObject *)x;
}

static PyObject *dense_search(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *c_obj, *q_obj, *b_obj, *result = NULL;
    long long k;
    if (!PyArg_ParseTuple(args, "OOOL", &c_obj, &q_obj, &b_obj, &k))
        return NULL;
    PyArrayObject *corpus = NULL, *queries = NULL, *before = NULL, *ids = NULL, *scores = NULL;
    if (!(corpus = lamp_array_from(c_obj, NPY_FLOAT32, 2, "corpus")) ||
        !(queries = lamp_array_from(q_obj, NPY_FLOAT32, 2, "queries")))
        goto finally;
    npy_intp n = PyArray_DIM(corpus, 0), d = PyArray_DIM(corpus, 1), q = PyArray_DIM(queries, 0);
    if (lamp_require_dim(queries, 1, d, "queries") < 0)
        goto finally;
    if (b_obj != Py_None && !(before = lamp_array_len(b_obj, NPY_INT64, q, "before")))
        goto finally;
    if (k < 1 || k > n) {
        PyErr_Format(PyExc_ValueError, "argument 'k' must be in 1..%zd, got %lld", (Py_ssize_t)n, k);
        goto finally;
    }
    npy_intp dims[2] = {q, (npy_intp)k};
    if (!(ids = (PyArrayObject *)PyArray_EMPTY(2, dims, NPY_INT64, 0)) ||
        !(scores = (PyArrayObject *)PyArray_EMPTY(2, dims, NPY_FLOAT64, 0)))
        goto finally;
    lamp_error err;
    if (LAMP_RUN_KERNEL(err, lamp_dense_search(PyArray_DATA(corpus), n, d, PyArray_DATA(queries), q,
                                               lamp_data_or_null(before), (int64_t)k, PyArray_DATA(ids),
                                               PyArray_DATA(scores), &err)) < 0)
        goto finally;
    result = Py_BuildValue("OO", ids, scores);
finally:
    LAMP_XDECREF_ALL(corpus, queries, before, ids, scores);
    return result;
}

static PyMethodDef dense_methods[] = {
    {"dense_normalize", dense_normalize, METH_VARARGS,
     "dense_normalize(x, what) -> an L2-normalised float32 copy; zero/NaN rows raise ValueError naming `what`"},
    {"dense_search", dense_search, METH_VARARGS,
     "dense_search(corpus, queries, before, k) -> (ids, scores): cosine top-k over each query's prefix"},
    {NULL, NULL, 0, NULL},
};

int lamp_dense_exec(PyObject *module)
{
    return lamp_add_kernel(module, dense_methods, NULL);
}
