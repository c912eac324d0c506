/* Binding of csrc/common/vmath.c: the vector width the kernels run at on this CPU. */
#include "py/binding.h"

#include "common/vmath.h"

static PyObject *simd_width(PyObject *self, PyObject *args)
{
    (void)self;
    (void)args;
    return PyLong_FromLong(lamp_simd_width());
}

static PyMethodDef vmath_methods[] = {
    {"simd_width", simd_width, METH_NOARGS,
     "simd_width() -> int: lanes of the vector kernels on this CPU (8 AVX-512, 4 AVX2, 2 otherwise; "
     "LAMP_SIMD_WIDTH=2 or 4 narrows it)"},
    {NULL, NULL, 0, NULL},
};

int lamp_vmath_exec(PyObject *module)
{
    return lamp_add_kernel(module, vmath_methods, NULL);
}
