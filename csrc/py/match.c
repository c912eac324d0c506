/* Binding of the match area of the C core. */
#include "binding.h"

static PyMethodDef match_methods[] = {
    {NULL, NULL, 0, NULL},
};

int lamp_match_exec(PyObject *module)
{
    return PyModule_AddFunctions(module, match_methods);
}
