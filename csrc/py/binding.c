#include "py/binding.h"

#include <math.h>
#include <stdio.h>

PyArrayObject *lamp_array_from(PyObject *obj, int typenum, int ndim, const char *name)
{
    if (obj == NULL || obj == Py_None) {
        PyErr_Format(PyExc_TypeError, "argument '%s' is required (got None)", name);
        return NULL;
    }
    PyArray_Descr *want = PyArray_DescrFromType(typenum);
    if (want == NULL)
        return NULL;
    if (PyArray_Check(obj)) {
        PyArray_Descr *have = PyArray_DESCR((PyArrayObject *)obj);
        if (!PyArray_CanCastTo(have, want)) {
            PyErr_Format(PyExc_TypeError, "argument '%s' has dtype %S, which cannot be safely cast to %S",
                         name, (PyObject *)have, (PyObject *)want);
            Py_DECREF(want);
            return NULL;
        }
    }
    /* PyArray_FromAny steals the reference to `want`. */
    PyArrayObject *arr = (PyArrayObject *)PyArray_FromAny(obj, want, 0, 0, NPY_ARRAY_IN_ARRAY, NULL);
    if (arr == NULL) {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        if (type != NULL && PyErr_GivenExceptionMatches(type, PyExc_MemoryError)) {
            /* the copy into a contiguous array of the kernel's dtype did not fit in memory (a broadcast view
               of a huge shape, say): say how much was asked for */
            double bytes = -1.0;
            if (PyArray_Check(obj))
                bytes = (double)PyArray_SIZE((PyArrayObject *)obj) * (typenum == NPY_FLOAT32 ? 4.0 : 8.0);
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(tb);
            if (bytes >= 0) {
                char message[256];
                snprintf(message, sizeof message, "argument '%s': out of memory making a contiguous copy of "
                         "%.0f bytes (%.1f GiB)", name, bytes, bytes / 1073741824.0);
                PyErr_SetString(PyExc_MemoryError, message);
            } else
                PyErr_Format(PyExc_MemoryError, "argument '%s': out of memory reading it as an array", name);
            return NULL;
        }
        PyErr_Format(PyExc_TypeError, "argument '%s' cannot be read as an array of %s: %S", name,
                     typenum == NPY_FLOAT64 ? "float64" : typenum == NPY_INT64 ? "int64"
                     : typenum == NPY_FLOAT32 ? "float32" : "the required dtype",
                     value ? value : Py_None);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        return NULL;
    }
    if (ndim >= 0 && PyArray_NDIM(arr) != ndim) {
        PyErr_Format(PyExc_ValueError, "argument '%s' must have %d dimension%s, got %d", name, ndim,
                     ndim == 1 ? "" : "s", PyArray_NDIM(arr));
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

int lamp_require_finite(PyArrayObject *arr, const char *name)
{
    const double *x = (const double *)PyArray_DATA(arr);
    npy_intp n = PyArray_SIZE(arr);
    for (npy_intp i = 0; i < n; i++) {
        if (!isfinite(x[i])) {
            char value[32];
            snprintf(value, sizeof value, "%g", x[i]);
            PyErr_Format(PyExc_ValueError, "argument '%s' has a non-finite value (%s) at flat index %zd",
                         name, value, (Py_ssize_t)i);
            return -1;
        }
    }
    return 0;
}

int lamp_require_dim(PyArrayObject *arr, int axis, npy_intp expected, const char *name)
{
    if (PyArray_DIM(arr, axis) != expected) {
        PyErr_Format(PyExc_ValueError, "argument '%s' has length %zd along axis %d, expected %zd", name,
                     (Py_ssize_t)PyArray_DIM(arr, axis), axis, (Py_ssize_t)expected);
        return -1;
    }
    return 0;
}

int lamp_require_shape(PyArrayObject *arr, npy_intp rows, npy_intp cols, const char *name)
{
    if (rows >= 0 && lamp_require_dim(arr, 0, rows, name) < 0)
        return -1;
    if (cols >= 0 && lamp_require_dim(arr, 1, cols, name) < 0)
        return -1;
    return 0;
}

PyArrayObject *lamp_array_len(PyObject *obj, int typenum, npy_intp len, const char *name)
{
    PyArrayObject *arr = lamp_array_from(obj, typenum, 1, name);
    if (arr && lamp_require_dim(arr, 0, len, name) < 0)
        Py_CLEAR(arr);
    return arr;
}

PyArrayObject *lamp_array_2d(PyObject *obj, int typenum, npy_intp rows, npy_intp cols, const char *name)
{
    PyArrayObject *arr = lamp_array_from(obj, typenum, 2, name);
    if (arr && lamp_require_shape(arr, rows, cols, name) < 0)
        Py_CLEAR(arr);
    return arr;
}

int lamp_add_kernel(PyObject *module, PyMethodDef *methods, const lamp_int_constant *constants)
{
    for (const lamp_int_constant *c = constants; c && c->name; c++)
        if (PyModule_AddIntConstant(module, c->name, c->value) < 0)
            return -1;
    return PyModule_AddFunctions(module, methods);
}

void lamp_xdecref_all(void *const *objects, size_t n)
{
    for (size_t i = 0; i < n; i++)
        Py_XDECREF((PyObject *)objects[i]);
}

PyObject *lamp_raise_kernel_error(const lamp_error *err)
{
    PyObject *type;
    switch (err->code) {
    case LAMP_EVALUE:
        type = PyExc_ValueError;
        break;
    case LAMP_ENOMEM:
        type = PyExc_MemoryError;
        break;
    case LAMP_EINTR:
        type = PyExc_KeyboardInterrupt;
        break;
    default:
        type = PyExc_RuntimeError;
        break;
    }
    PyErr_SetString(type, err->message[0] ? err->message : "lamp kernel failed");
    return NULL;
}
