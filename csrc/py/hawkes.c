/* Binding of the hawkes area of the C core. */
#include "binding.h"

static PyMethodDef hawkes_methods[] = {
    {NULL, NULL, 0, NULL},
};

int lamp_hawkes_exec(PyObject *module)
{
    return PyModule_AddFunctions(module, hawkes_methods);
}
