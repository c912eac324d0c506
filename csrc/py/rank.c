/* Binding of the rank area of the C core. */
#include "binding.h"

static PyMethodDef rank_methods[] = {
    {NULL, NULL, 0, NULL},
};

int lamp_rank_exec(PyObject *module)
{
    return PyModule_AddFunctions(module, rank_methods);
}
