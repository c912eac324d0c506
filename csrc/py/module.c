/* lamp._core: module definition (multi-phase init). Each kernel of the C core
 * registers its own functions and types from its binding csrc/py/<kernel>.c. */
#define LAMP_MODULE_MAIN
#include "py/binding.h"

/* The kernels' initialisers, run in this order. */
static int (*const kernel_exec[])(PyObject *module) = {
    lamp_events_exec, lamp_vmath_exec, lamp_hawkes_exec, lamp_quadrature_exec, lamp_kg_hawkes_exec,
    lamp_bm25_exec, lamp_evidence_exec, lamp_dense_exec, lamp_http_exec, lamp_ranker_exec,
};

static int core_exec(PyObject *module)
{
    if (PyArray_ImportNumPyAPI() < 0)
        return -1;
    for (size_t i = 0; i < sizeof kernel_exec / sizeof kernel_exec[0]; i++)
        if (kernel_exec[i](module) < 0)
            return -1;
    return 0;
}

static PyModuleDef_Slot core_slots[] = {
    {Py_mod_exec, (void *)core_exec},
    {0, NULL},
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "lamp._core",
    .m_doc = "Compiled kernels of lamp: Hawkes processes, text matching, ranking and HTTP transport.",
    .m_size = 0,
    .m_slots = core_slots,
};

PyMODINIT_FUNC PyInit__core(void)
{
    return PyModuleDef_Init(&core_module);
}
