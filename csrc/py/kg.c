/* Binding of the kg area of the C core. */
#include "binding.h"

static PyMethodDef kg_methods[] = {
    {NULL, NULL, 0, NULL},
};

int lamp_kg_exec(PyObject *module)
{
    return PyModule_AddFunctions(module, kg_methods);
}
