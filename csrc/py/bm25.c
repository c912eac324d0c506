/* Binding of csrc/retrieval/bm25.c: the BM25 index (a capsule), its search and its tokenizer. */
#include "py/binding.h"

#include "retrieval/bm25.h"

#define BM25_CAPSULE "lamp._core.bm25"

static void bm25_capsule_free(PyObject *capsule)
{
    lamp_bm25_free(PyCapsule_GetPointer(capsule, BM25_CAPSULE));
}

static lamp_bm25 *bm25_from(PyObject *obj)
{
    if (!PyCapsule_IsValid(obj, BM25_CAPSULE)) {
        PyErr_SetString(PyExc_TypeError, "argument 'index' must be an index made by bm25_build");
        return NULL;
    }
    return PyCapsule_GetPointer(obj, BM25_CAPSULE);
}

/* A bytes blob with int64 offsets (n + 1 entries, within the blob). */
static int take_blob(PyObject *blob, PyObject *offsets_obj, const char *name, Py_buffer *view,
                     PyArrayObject **offsets)
{
    if (PyObject_GetBuffer(blob, view, PyBUF_SIMPLE) < 0) {
        PyErr_Format(PyExc_TypeError, "argument '%s' must be bytes", name);
        return -1;
    }
    char oname[64];
    snprintf(oname, sizeof oname, "%s_offsets", name);
    if (!(*offsets = lamp_array_from(offsets_obj, NPY_INT64, 1, oname))) {
        PyBuffer_Release(view);
        view->obj = NULL;
        return -1;
    }
    const int64_t *o = PyArray_DATA(*offsets);
    npy_intp n = PyArray_DIM(*offsets, 0);
    if (n < 1 || o[0] != 0 || o[n - 1] > view->len) {
        PyErr_Format(PyExc_ValueError, "argument '%s' must start at 0 and stay within the %zd bytes of '%s'",
                     oname, (Py_ssize_t)view->len, name);
        return -1;
    }
    for (npy_intp i = 1; i < n; i++)
        if (o[i] < o[i - 1]) {
            PyErr_Format(PyExc_ValueError, "argument '%s' must be non-decreasing", oname);
            return -1;
        }
    return 0;
}

PyDoc_STRVAR(bm25_build_doc,
"bm25_build(text, text_offsets, stop, stop_offsets, entities, k1, b)\n--\n\n"
"Build a BM25 index over the UTF-8 documents text[text_offsets[i]:text_offsets[i+1]]\n"
"(in time order).  stop/stop_offsets: stop words the same way.  entities: None or\n"
"an int64 array (N, 2) of entity ids per document, for scoped search.");

static PyObject *bm25_build(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *text_obj, *toff_obj, *stop_obj, *soff_obj, *ent_obj, *result = NULL;
    double k1, b;
    if (!PyArg_ParseTuple(args, "OOOOOdd", &text_obj, &toff_obj, &stop_obj, &soff_obj, &ent_obj, &k1, &b))
        return NULL;
    Py_buffer text = {0}, stop = {0};
    PyArrayObject *toff = NULL, *soff = NULL, *ent = NULL;
    if (take_blob(text_obj, toff_obj, "text", &text, &toff) < 0 || take_blob(stop_obj, soff_obj, "stop", &stop, &soff) < 0)
        goto finally;
    npy_intp n = PyArray_DIM(toff, 0) - 1;
    if (ent_obj != Py_None && !(ent = lamp_array_2d(ent_obj, NPY_INT64, n, 2, "entities")))
        goto finally;
    lamp_error err;
    lamp_error_clear(&err);
    lamp_bm25 *ix;
    Py_BEGIN_ALLOW_THREADS
    ix = lamp_bm25_build(text.buf, PyArray_DATA(toff), n, stop.buf, PyArray_DATA(soff), PyArray_DIM(soff, 0) - 1,
                         lamp_data_or_null(ent), k1, b, &err);
    Py_END_ALLOW_THREADS
    if (!ix) {
        lamp_raise_kernel_error(&err);
        goto finally;
    }
    result = PyCapsule_New(ix, BM25_CAPSULE, bm25_capsule_free);
    if (!result)
        lamp_bm25_free(ix);
finally:
    if (text.obj)
        PyBuffer_Release(&text);
    if (stop.obj)
        PyBuffer_Release(&stop);
    LAMP_XDECREF_ALL(toff, soff, ent);
    return result;
}

PyDoc_STRVAR(bm25_search_doc,
"bm25_search(index, text, text_offsets, before, scope, k, threads)\n--\n\n"
"Top-k documents per query: (ids int64 (Q, k), scores float64 (Q, k)), best first,\n"
"ties to the more recent document, -1 / -inf padding.  before: None or int64 (Q,)\n"
"(query i sees documents < before[i]); scope: None or int64 (Q, 2) entity ids.");

static PyObject *bm25_search(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *index_obj, *text_obj, *toff_obj, *before_obj, *scope_obj, *result = NULL;
    long long k;
    int threads;
    if (!PyArg_ParseTuple(args, "OOOOOLi", &index_obj, &text_obj, &toff_obj, &before_obj, &scope_obj, &k, &threads))
        return NULL;
    lamp_bm25 *ix = bm25_from(index_obj);
    if (!ix)
        return NULL;
    Py_buffer text = {0};
    PyArrayObject *toff = NULL, *before = NULL, *scope = NULL, *ids = NULL, *scores = NULL;
    if (take_blob(text_obj, toff_obj, "queries", &text, &toff) < 0)
        goto finally;
    npy_intp q = PyArray_DIM(toff, 0) - 1;
    if (k <= 0) {
        PyErr_Format(PyExc_ValueError, "argument 'k' must be positive, got %lld", k);
        goto finally;
    }
    if ((before_obj != Py_None && !(before = lamp_array_len(before_obj, NPY_INT64, q, "before"))) ||
        (scope_obj != Py_None && !(scope = lamp_array_2d(scope_obj, NPY_INT64, q, 2, "scope"))))
        goto finally;
    npy_intp dims[2] = {q, (npy_intp)k};
    ids = (PyArrayObject *)PyArray_EMPTY(2, dims, NPY_INT64, 0);
    scores = (PyArrayObject *)PyArray_EMPTY(2, dims, NPY_FLOAT64, 0);
    if (!ids || !scores)
        goto finally;
    lamp_error err;
    if (LAMP_RUN_KERNEL(err, lamp_bm25_search(ix, text.buf, PyArray_DATA(toff), q, lamp_data_or_null(before),
                                              lamp_data_or_null(scope), (int64_t)k, threads, PyArray_DATA(ids),
                                              PyArray_DATA(scores), &err)) < 0)
        goto finally;
    result = Py_BuildValue("OO", ids, scores);
finally:
    if (text.obj)
        PyBuffer_Release(&text);
    LAMP_XDECREF_ALL(toff, before, scope, ids, scores);
    return result;
}

static PyObject *bm25_info(PyObject *self, PyObject *index_obj)
{
    (void)self;
    lamp_bm25 *ix = bm25_from(index_obj);
    if (!ix)
        return NULL;
    return Py_BuildValue("LL", (long long)lamp_bm25_num_documents(ix), (long long)lamp_bm25_vocabulary_size(ix));
}

static PyObject *bm25_tokenize(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *index_obj;
    Py_buffer text;
    if (!PyArg_ParseTuple(args, "Oy*", &index_obj, &text))
        return NULL;
    lamp_bm25 *ix = bm25_from(index_obj);
    PyArrayObject *out = NULL;
    if (ix) {
        npy_intp dims[1] = {text.len + 1};
        out = (PyArrayObject *)PyArray_EMPTY(1, dims, NPY_INT64, 0);
        if (out) {
            int64_t n = lamp_bm25_tokenize(ix, text.buf, text.len, PyArray_DATA(out), text.len + 1);
            PyArray_Dims shape = {(npy_intp[]){n}, 1};
            PyObject *resized = PyArray_Resize(out, &shape, 0, NPY_CORDER);
            if (!resized)
                Py_CLEAR(out);
            else
                Py_DECREF(resized);
        }
    }
    PyBuffer_Release(&text);
    return (PyObject *)out;
}

static PyMethodDef bm25_methods[] = {
    {"bm25_build", bm25_build, METH_VARARGS, bm25_build_doc},
    {"bm25_search", bm25_search, METH_VARARGS, bm25_search_doc},
    {"bm25_info", bm25_info, METH_O, "bm25_info(index) -> (num_documents, vocabulary_size)"},
    {"bm25_tokenize", bm25_tokenize, METH_VARARGS, "bm25_tokenize(index, text: bytes) -> term ids (-1 unknown)"},
    {NULL, NULL, 0, NULL},
};

int lamp_bm25_exec(PyObject *module)
{
    return lamp_add_kernel(module, bm25_methods, NULL);
}
