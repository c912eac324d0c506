/* Binding of csrc/hawkes/quadrature.c: quadrature nodes and integrals over inter-event intervals. */
#include "py/binding.h"

#include "hawkes/quadrature.h"

static PyObject *quadrature_nodes(PyObject *self, PyObject *args)
{
    (void)self;
    int scheme;
    long long order;
    if (!PyArg_ParseTuple(args, "iL", &scheme, &order))
        return NULL;
    if (order < 1 || order > 1000) {
        PyErr_Format(PyExc_ValueError, "argument 'order' must be in 1..1000, got %lld", order);
        return NULL;
    }
    npy_intp dims[1] = {(npy_intp)order};
    PyArrayObject *nodes = (PyArrayObject *)PyArray_ZEROS(1, dims, NPY_FLOAT64, 0);
    PyArrayObject *weights = (PyArrayObject *)PyArray_ZEROS(1, dims, NPY_FLOAT64, 0);
    if (!nodes || !weights) {
        LAMP_XDECREF_ALL(nodes, weights);
        return NULL;
    }
    lamp_error err;
    lamp_error_clear(&err);
    if (lamp_quadrature_nodes(scheme, order, PyArray_DATA(nodes), PyArray_DATA(weights), &err) != LAMP_OK) {
        LAMP_XDECREF_ALL(nodes, weights);
        return lamp_raise_kernel_error(&err);
    }
    return Py_BuildValue("NN", nodes, weights);
}

static PyObject *integrate_intervals(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *s_obj, *e_obj, *v_obj, *w_obj, *result = NULL;
    if (!PyArg_ParseTuple(args, "OOOO", &s_obj, &e_obj, &v_obj, &w_obj))
        return NULL;
    PyArrayObject *s = NULL, *e = NULL, *v = NULL, *w = NULL, *out = NULL;
    if (!(s = lamp_array_from(s_obj, NPY_FLOAT64, 1, "starts")) || !(e = lamp_array_from(e_obj, NPY_FLOAT64, 1, "ends")) ||
        !(v = lamp_array_from(v_obj, NPY_FLOAT64, 2, "values")) || !(w = lamp_array_from(w_obj, NPY_FLOAT64, 1, "weights")))
        goto finally;
    npy_intp n = PyArray_DIM(s, 0), g = PyArray_DIM(w, 0);
    if (lamp_require_dim(e, 0, n, "ends") < 0 || lamp_require_shape(v, n, g, "values") < 0 ||
        lamp_require_finite(v, "values") < 0)
        goto finally;
    npy_intp dims[1] = {n};
    if (!(out = (PyArrayObject *)PyArray_ZEROS(1, dims, NPY_FLOAT64, 0)))
        goto finally;
    lamp_error err;
    lamp_error_clear(&err);
    if (lamp_integrate_intervals(PyArray_DATA(s), PyArray_DATA(e), n, PyArray_DATA(v), PyArray_DATA(w), g,
                                 PyArray_DATA(out), &err) != LAMP_OK) {
        lamp_raise_kernel_error(&err);
        goto finally;
    }
    result = (PyObject *)out;
    out = NULL;
finally:
    LAMP_XDECREF_ALL(s, e, v, w, out);
    return result;
}

static PyMethodDef quadrature_methods[] = {
    {"quadrature_nodes", quadrature_nodes, METH_VARARGS,
     "quadrature_nodes(scheme, order) -> (nodes in [0, 1], weights summing to 1); scheme QUADRATURE_GAUSS_LEGENDRE, "
     "QUADRATURE_EASYTPP_MEAN (EasyTPP's mean grid) or QUADRATURE_EASYTPP_TRAPEZOID (its trapezoid grid)"},
    {"integrate_intervals", integrate_intervals, METH_VARARGS,
     "integrate_intervals(starts, ends, values (n, G), weights (G,)) -> (n,) integrals"},
    {NULL, NULL, 0, NULL},
};

/* The schemes of quadrature_nodes (hawkes/quadrature.h), for lamp/tpp/quadrature.py to read. */
static const lamp_int_constant quadrature_constants[] = {
    {"QUADRATURE_GAUSS_LEGENDRE", LAMP_QUAD_GAUSS_LEGENDRE},
    {"QUADRATURE_EASYTPP_MEAN", LAMP_QUAD_EASYTPP_MEAN},
    {"QUADRATURE_EASYTPP_TRAPEZOID", LAMP_QUAD_EASYTPP_TRAPEZOID},
    {NULL, 0},
};

int lamp_quadrature_exec(PyObject *module)
{
    return lamp_add_kernel(module, quadrature_methods, quadrature_constants);
}
