/* Binding of the http area of the C core. */
#include "binding.h"

static PyMethodDef http_methods[] = {
    {NULL, NULL, 0, NULL},
};

int lamp_http_exec(PyObject *module)
{
    return PyModule_AddFunctions(module, http_methods);
}
