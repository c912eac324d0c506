/* Binding of csrc/retrieval/evidence.c: evidence assembly from the retrieved events. */
#include "py/binding.h"

#include "retrieval/evidence.h"

PyDoc_STRVAR(assemble_evidence_doc,
"assemble_evidence(hits, subjects, relations, objects, times, length)\n--\n\n"
"Per candidate (row of hits, event indices, -1 = none): merge, de-duplicate on\n"
"(subject, relation, object, time), sort by time, keep the last `length`;\n"
"returns int64 (n, length): event indices in time order, then -1 padding.");

static PyObject *assemble_evidence(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *h_obj, *s_obj, *r_obj, *o_obj, *t_obj, *result = NULL;
    long long L;
    if (!PyArg_ParseTuple(args, "OOOOOL", &h_obj, &s_obj, &r_obj, &o_obj, &t_obj, &L))
        return NULL;
    PyArrayObject *h = NULL, *s = NULL, *r = NULL, *o = NULL, *t = NULL, *out = NULL;
    if (!(h = lamp_array_from(h_obj, NPY_INT64, 2, "hits")) || !(s = lamp_array_from(s_obj, NPY_INT64, 1, "subjects")))
        goto finally;
    npy_intp n_events = PyArray_DIM(s, 0);
    if (!(r = lamp_array_len(r_obj, NPY_INT64, n_events, "relations")) ||
        !(o = lamp_array_len(o_obj, NPY_INT64, n_events, "objects")) ||
        !(t = lamp_array_len(t_obj, NPY_FLOAT64, n_events, "times")))
        goto finally;
    if (L <= 0) {
        PyErr_Format(PyExc_ValueError, "argument 'length' must be positive, got %lld", L);
        goto finally;
    }
    npy_intp dims[2] = {PyArray_DIM(h, 0), (npy_intp)L};
    if (!(out = (PyArrayObject *)PyArray_EMPTY(2, dims, NPY_INT64, 0)))
        goto finally;
    lamp_error err;
    if (LAMP_RUN_KERNEL(err, lamp_assemble_evidence(PyArray_DATA(h), PyArray_DIM(h, 0), PyArray_DIM(h, 1),
                                                    PyArray_DATA(s), PyArray_DATA(r), PyArray_DATA(o), PyArray_DATA(t),
                                                    n_events, (int64_t)L, PyArray_DATA(out), &err)) < 0)
        goto finally;
    result = (PyObject *)out;
    out = NULL;
finally:
    LAMP_XDECREF_ALL(h, s, r, o, t, out);
    return result;
}

static PyMethodDef evidence_methods[] = {
    {"assemble_evidence", assemble_evidence, METH_VARARGS, assemble_evidence_doc},
    {NULL, NULL, 0, NULL},
};

int lamp_evidence_exec(PyObject *module)
{
    return lamp_add_kernel(module, evidence_methods, NULL);
}
