/* Binding of csrc/data/events.c: validation of the event store's columns. */
#include "py/binding.h"

#include "data/events.h"

PyDoc_STRVAR(check_sequences_doc,
"check_sequences(times, marks, offsets, num_types)\n--\n\n"
"Validate columnar event sequences.  Returns None, or raises ValueError naming\n"
"the first bad sequence and event (non-finite or decreasing time, type outside\n"
"[0, num_types); num_types must be >= 1).  The exception carries\n"
"attributes ``sequence`` and ``event`` with the offending indices.");

static PyObject *check_sequences(PyObject *self, PyObject *args, PyObject *kwargs)
{
    (void)self;
    static char *keywords[] = {"times", "marks", "offsets", "num_types", NULL};
    PyObject *times_obj, *marks_obj, *offsets_obj, *result = NULL;
    long long num_types;
    PyArrayObject *times = NULL, *marks = NULL, *offsets = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOL", keywords, &times_obj, &marks_obj, &offsets_obj,
                                     &num_types))
        return NULL;
    if (!(times = lamp_array_from(times_obj, NPY_FLOAT64, 1, "times")))
        goto finally;
    if (!(marks = lamp_array_from(marks_obj, NPY_INT64, 1, "marks")))
        goto finally;
    if (!(offsets = lamp_array_from(offsets_obj, NPY_INT64, 1, "offsets")))
        goto finally;
    npy_intp n = PyArray_DIM(times, 0);
    if (lamp_require_dim(marks, 0, n, "marks") < 0)
        goto finally;
    if (PyArray_DIM(offsets, 0) < 1) {
        PyErr_SetString(PyExc_ValueError, "argument 'offsets' must have at least one element");
        goto finally;
    }
    lamp_error err;
    lamp_error_clear(&err);
    int64_t bad_sequence, bad_event;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = lamp_check_sequences((const double *)PyArray_DATA(times), (const int64_t *)PyArray_DATA(marks),
                              (const int64_t *)PyArray_DATA(offsets), (int64_t)PyArray_DIM(offsets, 0) - 1,
                              (int64_t)n, (int64_t)num_types, &bad_sequence, &bad_event, &err);
    Py_END_ALLOW_THREADS
    if (rc != LAMP_OK) {
        PyObject *exc = PyObject_CallFunction(PyExc_ValueError, "s", err.message);
        if (exc) {
            PyObject *s = PyLong_FromLongLong(bad_sequence), *e = PyLong_FromLongLong(bad_event);
            if (s && e && PyObject_SetAttrString(exc, "sequence", s) == 0 &&
                PyObject_SetAttrString(exc, "event", e) == 0)
                PyErr_SetObject(PyExc_ValueError, exc);
            Py_XDECREF(s);
            Py_XDECREF(e);
            Py_DECREF(exc);
        }
        goto finally;
    }
    result = Py_NewRef(Py_None);
finally:
    LAMP_XDECREF_ALL(times, marks, offsets);
    return result;
}

static PyMethodDef events_methods[] = {
    {"check_sequences", (PyCFunction)(void (*)(void))check_sequences, METH_VARARGS | METH_KEYWORDS,
     check_sequences_doc},
    {NULL, NULL, 0, NULL},
};

int lamp_events_exec(PyObject *module)
{
    return lamp_add_kernel(module, events_methods, NULL);
}
