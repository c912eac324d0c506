/* Binding of csrc/ranker/ranker.c: the energy-based ranker's forward/backward pass and Adam step. */
#include "py/binding.h"

#include "ranker/ranker.h"

static int take_dims(long long ne, long long nr, long long width, double time_scale, long long heads,
                     long long layers, int agree, long long aux, lamp_ranker_dims *dims)
{
    *dims = (lamp_ranker_dims){ne, nr, width, time_scale, heads, layers, agree, aux};
    lamp_error err;
    lamp_error_clear(&err);
    if (lamp_ranker_check_dims(dims, &err) != LAMP_OK) {
        lamp_raise_kernel_error(&err);
        return -1;
    }
    return 0;
}

static int take_loss(const char *loss)
{
    if (!strcmp(loss, "softmax"))
        return LAMP_RANKER_SOFTMAX;
    if (!strcmp(loss, "binary"))
        return LAMP_RANKER_BINARY;
    PyErr_Format(PyExc_ValueError, "loss must be 'softmax' or 'binary', got '%s'", loss);
    return -1;
}

static PyObject *ranker_layout(PyObject *self, PyObject *args)
{
    (void)self;
    long long ne, nr, width, heads = 1, layers = 0, aux = 0;
    int agree = 0;
    double time_scale = 1.0;
    if (!PyArg_ParseTuple(args, "LLL|LLpL", &ne, &nr, &width, &heads, &layers, &agree, &aux))
        return NULL;
    lamp_ranker_dims dims;
    if (take_dims(ne, nr, width, time_scale, heads, layers, agree, aux, &dims) < 0)
        return NULL;
    npy_intp n = (npy_intp)lamp_ranker_num_blocks(&dims) + 1;
    PyArrayObject *out = (PyArrayObject *)PyArray_EMPTY(1, &n, NPY_INT64, 0);
    if (out)
        lamp_ranker_layout(&dims, PyArray_DATA(out));
    return (PyObject *)out;
}

static int writable_f64(PyObject *obj, const char *name, npy_intp n)
{
    if (!PyArray_Check(obj) || PyArray_TYPE((PyArrayObject *)obj) != NPY_FLOAT64 ||
        !PyArray_IS_C_CONTIGUOUS((PyArrayObject *)obj) || !PyArray_ISWRITEABLE((PyArrayObject *)obj) ||
        PyArray_NDIM((PyArrayObject *)obj) != 1 || PyArray_DIM((PyArrayObject *)obj, 0) != n) {
        PyErr_Format(PyExc_TypeError, "argument '%s' must be a writable C-contiguous float64 array of length %zd",
                     name, (Py_ssize_t)n);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(ranker_forward_doc,
"ranker_forward(params, num_entities, num_relations, width, time_scale, heads, layers, evidence,\n"
"               evidence_times, candidates, candidate_times, prior, labels, loss, dropout, seed, want_grad,\n"
"               precision='float64', grads_out=None, agree=False, evidence_aux=None)\n--\n\n"
"Energies (Q, M), the mean loss ('softmax' or 'binary'; None without labels) and, with want_grad,\n"
"its gradient (same layout as params; None otherwise).  precision: 'float64' or 'float32' (the\n"
"computation; inputs and outputs are float64 either way).  grads_out: a writable C-contiguous float64\n"
"array like params to write the gradient into (returned as the gradient; saves an allocation per step).\n"
"agree: the agreement features and blocks (csrc/ranker/ranker.h); evidence_aux: float64 (Q, M, L, A) extra\n"
"features per evidence event (agree only; A = 0 without).  Evidence rows of -1 are padding; any other\n"
"negative id, or an id outside the vocabulary, is a ValueError naming the array and the position.");

static PyObject *ranker_forward(PyObject *self, PyObject *args, PyObject *kwargs)
{
    (void)self;
    PyObject *p_obj, *ev_obj, *evt_obj, *c_obj, *ct_obj, *prior_obj, *lab_obj, *result = NULL, *out_obj = Py_None,
             *aux_obj = Py_None;
    long long ne, nr, width, heads, layers;
    double time_scale, dropout;
    const char *loss_name;
    unsigned long long seed;
    int want_grad, agree = 0;
    const char *precision_name = "float64";
    static char *kwlist[] = {"params", "num_entities", "num_relations", "width", "time_scale", "heads", "layers",
                             "evidence", "evidence_times", "candidates", "candidate_times", "prior", "labels",
                             "loss", "dropout", "seed", "want_grad", "precision", "grads_out", "agree",
                             "evidence_aux", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OLLLdLLOOOOOOsdKp|sOpO", kwlist, &p_obj, &ne, &nr, &width,
                                     &time_scale, &heads, &layers, &ev_obj, &evt_obj, &c_obj, &ct_obj, &prior_obj,
                                     &lab_obj, &loss_name, &dropout, &seed, &want_grad, &precision_name, &out_obj,
                                     &agree, &aux_obj))
        return NULL;
    if (!agree && aux_obj != Py_None) {
        PyErr_SetString(PyExc_ValueError, "argument 'evidence_aux' needs agree=True");
        return NULL;
    }
    int precision;
    if (!strcmp(precision_name, "float64"))
        precision = LAMP_RANKER_FLOAT64;
    else if (!strcmp(precision_name, "float32"))
        precision = LAMP_RANKER_FLOAT32;
    else {
        PyErr_Format(PyExc_ValueError, "precision must be 'float64' or 'float32', got '%s'", precision_name);
        return NULL;
    }
    int loss_kind = take_loss(loss_name);
    if (loss_kind < 0)
        return NULL;
    PyArrayObject *aux = NULL;
    long long naux = 0;
    if (aux_obj != Py_None) {
        if (!(aux = lamp_array_from(aux_obj, NPY_FLOAT64, 4, "evidence_aux")))
            return NULL;
        naux = (long long)PyArray_DIM(aux, 3);
    }
    lamp_ranker_dims dims;
    if (take_dims(ne, nr, width, time_scale, heads, layers, agree, naux, &dims) < 0) {
        Py_XDECREF(aux);
        return NULL;
    }
    PyArrayObject *params = NULL, *ev = NULL, *evt = NULL, *cand = NULL, *ct = NULL, *prior = NULL, *lab = NULL,
                  *energies = NULL, *grads = NULL;
    int64_t nblocks = lamp_ranker_num_blocks(&dims);
    int64_t *off = PyMem_Malloc(sizeof(int64_t) * (size_t)(nblocks + 1));
    if (!off) {
        Py_XDECREF(aux);
        return PyErr_NoMemory();
    }
    lamp_ranker_layout(&dims, off);
    int64_t nparams = off[nblocks];
    PyMem_Free(off);
    if (!(params = lamp_array_len(p_obj, NPY_FLOAT64, nparams, "params")) ||
        !(ev = lamp_array_from(ev_obj, NPY_INT64, 4, "evidence")) ||
        !(evt = lamp_array_from(evt_obj, NPY_FLOAT64, 3, "evidence_times")) ||
        !(cand = lamp_array_from(c_obj, NPY_INT64, 3, "candidates")) ||
        !(ct = lamp_array_from(ct_obj, NPY_FLOAT64, 2, "candidate_times")))
        goto finally;
    npy_intp q = PyArray_DIM(cand, 0), m = PyArray_DIM(cand, 1), l = PyArray_DIM(ev, 2);
    if (lamp_require_dim(cand, 2, 3, "candidates") < 0 || lamp_require_dim(ev, 0, q, "evidence") < 0 ||
        lamp_require_dim(ev, 1, m, "evidence") < 0 || lamp_require_dim(ev, 3, 3, "evidence") < 0 ||
        lamp_require_dim(evt, 0, q, "evidence_times") < 0 || lamp_require_dim(evt, 1, m, "evidence_times") < 0 ||
        lamp_require_dim(evt, 2, l, "evidence_times") < 0 || lamp_require_shape(ct, q, m, "candidate_times") < 0)
        goto finally;
    if (aux && (lamp_require_dim(aux, 0, q, "evidence_aux") < 0 || lamp_require_dim(aux, 1, m, "evidence_aux") < 0 ||
                lamp_require_dim(aux, 2, l, "evidence_aux") < 0))
        goto finally;
    if ((prior_obj != Py_None && !(prior = lamp_array_2d(prior_obj, NPY_FLOAT64, q, m, "prior"))) ||
        (lab_obj != Py_None && !(lab = lamp_array_len(lab_obj, NPY_INT64, q, "labels"))))
        goto finally;
    if (want_grad && !lab) {
        PyErr_SetString(PyExc_ValueError, "gradients need 'labels'");
        goto finally;
    }
    npy_intp edims[2] = {q, m};
    if (!(energies = (PyArrayObject *)PyArray_ZEROS(2, edims, NPY_FLOAT64, 0)))
        goto finally;
    /* the kernel overwrites every entry of the gradient */
    if (want_grad && out_obj != Py_None) {
        if (writable_f64(out_obj, "grads_out", (npy_intp)nparams) < 0)
            goto finally;
        grads = (PyArrayObject *)Py_NewRef(out_obj);
    } else if (want_grad && !(grads = (PyArrayObject *)PyArray_EMPTY(1, PyArray_DIMS(params), NPY_FLOAT64, 0)))
        goto finally;
    lamp_ranker_batch batch = {PyArray_DATA(ev), PyArray_DATA(evt), PyArray_DATA(cand), PyArray_DATA(ct),
                               lamp_data_or_null(prior), lamp_data_or_null(lab), q, m, l,
                               naux > 0 ? PyArray_DATA(aux) : NULL};
    lamp_error err;
    double loss = 0.0;
    if (LAMP_RUN_KERNEL(err, lamp_ranker_forward_backward_prec(&dims, PyArray_DATA(params), &batch, loss_kind,
                                                               dropout, seed, precision, PyArray_DATA(energies),
                                                               &loss, lamp_data_or_null(grads), &err)) < 0)
        goto finally;
    PyObject *loss_obj = lab ? PyFloat_FromDouble(loss) : Py_NewRef(Py_None);
    if (!loss_obj)
        goto finally;
    result = Py_BuildValue("ONO", energies, loss_obj, grads ? (PyObject *)grads : Py_None);
finally:
    LAMP_XDECREF_ALL(params, ev, evt, cand, ct, prior, lab, energies, grads, aux);
    return result;
}


static PyObject *ranker_adam(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *p, *g_obj, *m1, *m2;
    double lr, beta1, beta2, eps, wd, clip;
    long long step;
    if (!PyArg_ParseTuple(args, "OOOOddddddL", &p, &g_obj, &m1, &m2, &lr, &beta1, &beta2, &eps, &wd, &clip, &step))
        return NULL;
    if (!PyArray_Check(p)) {
        PyErr_SetString(PyExc_TypeError, "argument 'params' must be a float64 array");
        return NULL;
    }
    npy_intp n = PyArray_SIZE((PyArrayObject *)p);
    if (writable_f64(p, "params", n) < 0 || writable_f64(m1, "m1", n) < 0 || writable_f64(m2, "m2", n) < 0)
        return NULL;
    PyArrayObject *g = lamp_array_len(g_obj, NPY_FLOAT64, n, "grads");
    if (!g)
        return NULL;
    lamp_error err;
    int failed = LAMP_RUN_KERNEL(err, lamp_ranker_adam(PyArray_DATA((PyArrayObject *)p), PyArray_DATA(g),
                                                       PyArray_DATA((PyArrayObject *)m1),
                                                       PyArray_DATA((PyArrayObject *)m2), n, lr, beta1, beta2, eps,
                                                       wd, clip, step, &err));
    Py_DECREF(g);
    if (failed)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef rank_methods[] = {
    {"ranker_layout", ranker_layout, METH_VARARGS,
     "ranker_layout(num_entities, num_relations, width, heads=1, layers=0, agree=False, aux=0) -> offsets of the "
     "parameter blocks"},
    {"ranker_forward", (PyCFunction)(void (*)(void))ranker_forward, METH_VARARGS | METH_KEYWORDS, ranker_forward_doc},
    {"ranker_adam", ranker_adam, METH_VARARGS,
     "ranker_adam(params, grads, m1, m2, lr, beta1, beta2, eps, weight_decay, clip, step): one Adam step in place"},
    {NULL, NULL, 0, NULL},
};

/* The parameter layout (ranker/ranker.h): the index of every block, for lamp/rank.py to read instead of
 * repeating the numbers.  The readout's blocks come first; layer l's block k is at
 * RANKER_READOUT_BLOCKS + l * RANKER_LAYER_BLOCKS + k; with agreement, block k of the agreement blocks is
 * at RANKER_READOUT_BLOCKS + layers * RANKER_LAYER_BLOCKS + k. */
static const lamp_int_constant ranker_constants[] = {
    {"RANKER_BLOCK_ENT", LAMP_RANKER_ENT},
    {"RANKER_BLOCK_REL", LAMP_RANKER_REL},
    {"RANKER_BLOCK_OBJ", LAMP_RANKER_OBJ},
    {"RANKER_BLOCK_WQ", LAMP_RANKER_WQ},
    {"RANKER_BLOCK_WK", LAMP_RANKER_WK},
    {"RANKER_BLOCK_WV", LAMP_RANKER_WV},
    {"RANKER_BLOCK_W1", LAMP_RANKER_W1},
    {"RANKER_BLOCK_B1", LAMP_RANKER_B1},
    {"RANKER_BLOCK_W2", LAMP_RANKER_W2},
    {"RANKER_BLOCK_B2", LAMP_RANKER_B2},
    {"RANKER_BLOCK_GAMMA", LAMP_RANKER_GAMMA},
    {"RANKER_READOUT_BLOCKS", LAMP_RANKER_NUM_BLOCKS},
    {"RANKER_LAYER_BLOCK_AQ", LAMP_RANKER_AQ},
    {"RANKER_LAYER_BLOCK_AK", LAMP_RANKER_AK},
    {"RANKER_LAYER_BLOCK_AV", LAMP_RANKER_AV},
    {"RANKER_LAYER_BLOCK_AO", LAMP_RANKER_AO},
    {"RANKER_LAYER_BLOCK_F1", LAMP_RANKER_F1},
    {"RANKER_LAYER_BLOCK_FB1", LAMP_RANKER_FB1},
    {"RANKER_LAYER_BLOCK_F2", LAMP_RANKER_F2},
    {"RANKER_LAYER_BLOCK_FB2", LAMP_RANKER_FB2},
    {"RANKER_LAYER_BLOCKS", LAMP_RANKER_LAYER_BLOCKS},
    {"RANKER_AGREE_BLOCK_WKF", LAMP_RANKER_WKF},
    {"RANKER_AGREE_BLOCK_UB", LAMP_RANKER_UB},
    {"RANKER_AGREE_BLOCK_K0", LAMP_RANKER_K0},
    {"RANKER_AGREE_BLOCK_V0", LAMP_RANKER_V0},
    {"RANKER_AGREE_BLOCK_W1P", LAMP_RANKER_W1P},
    {"RANKER_AGREE_BLOCK_WP", LAMP_RANKER_WP},
    {"RANKER_AGREE_BLOCKS", LAMP_RANKER_AGREE_BLOCKS},
    {"RANKER_ID_FEATURES", LAMP_RANKER_ID_FEATURES},
    {NULL, 0},
};

int lamp_ranker_exec(PyObject *module)
{
    return lamp_add_kernel(module, rank_methods, ranker_constants);
}
