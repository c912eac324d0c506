/* Private header of the CPython binding of lamp._core.
 *
 * Every csrc/py/<kernel>.c (the binding of csrc/<folder>/<kernel>.c) includes this first.  It sets up the NumPy C API
 * for a module made of several translation units and declares the shared
 * argument-intake helpers: each converts or rejects an argument and raises
 * an exception that names it, so a kernel never sees a misread array.
 */
#ifndef LAMP_BINDING_H
#define LAMP_BINDING_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define NPY_NO_DEPRECATED_API NPY_1_22_API_VERSION
#define PY_ARRAY_UNIQUE_SYMBOL LAMP_ARRAY_API
#ifndef LAMP_MODULE_MAIN
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include "common/lamp_error.h"

/* Converts `obj` into a new reference to an aligned, C-contiguous array of
 * `typenum` with `ndim` dimensions (ndim < 0: any).  Only safe casts are made
 * (int32 -> int64 and float32 -> float64 are fine; float -> int is a
 * TypeError).  Returns NULL with TypeError/ValueError naming `name`. */
PyArrayObject *lamp_array_from(PyObject *obj, int typenum, int ndim, const char *name);

/* ValueError naming `name` unless every element of a float64 array is finite. */
int lamp_require_finite(PyArrayObject *arr, const char *name);

/* ValueError naming `name` unless dimension `axis` of `arr` has length `expected`. */
int lamp_require_dim(PyArrayObject *arr, int axis, npy_intp expected, const char *name);

/* lamp_array_from for a 1-D array of length `len` (lamp_require_dim on axis 0). */
PyArrayObject *lamp_array_len(PyObject *obj, int typenum, npy_intp len, const char *name);

/* lamp_array_from for a 2-D array of shape (rows, cols) (lamp_require_shape). */
PyArrayObject *lamp_array_2d(PyObject *obj, int typenum, npy_intp rows, npy_intp cols, const char *name);

/* lamp_require_dim on axis 0, then on axis 1; a negative rows or cols is not checked. */
int lamp_require_shape(PyArrayObject *arr, npy_intp rows, npy_intp cols, const char *name);

/* The data of an optional array: NULL for none. */
static inline void *lamp_data_or_null(PyArrayObject *arr)
{
    return arr ? PyArray_DATA(arr) : NULL;
}

/* Raises the Python exception that matches a kernel error (ValueError,
 * MemoryError, KeyboardInterrupt or RuntimeError) and returns NULL. */
PyObject *lamp_raise_kernel_error(const lamp_error *err);

/* Runs `call`, a kernel call that returns a lamp status and reports into
 * `err` (a lamp_error, cleared first), with the GIL released.  Evaluates to
 * 0, or to -1 with the kernel's error raised (lamp_raise_kernel_error).  A GNU
 * statement expression: the extension is built with -std=gnu11. */
#define LAMP_RUN_KERNEL(err, call)                                          \
    __extension__({                                                         \
        int lamp_rc_;                                                       \
        lamp_error_clear(&(err));                                           \
        Py_BEGIN_ALLOW_THREADS                                              \
        lamp_rc_ = (call);                                                  \
        Py_END_ALLOW_THREADS                                                \
        lamp_rc_ == LAMP_OK ? 0 : (lamp_raise_kernel_error(&(err)), -1);    \
    })

/* Py_XDECREF of every argument (arrays or other objects; NULL is skipped),
 * in the order given: the cleanup block of a binding. */
#define LAMP_XDECREF_ALL(...) \
    lamp_xdecref_all((void *const[]){__VA_ARGS__}, sizeof((void *const[]){__VA_ARGS__}) / sizeof(void *))
void lamp_xdecref_all(void *const *objects, size_t n);

/* An integer constant of the module: a C enum or define that the Python side reads instead of repeating
 * its number. */
typedef struct {
    const char *name;
    long value;
} lamp_int_constant;

/* Adds a kernel's functions (a table that ends with {NULL}) and integer constants (a table that ends with
 * {NULL, 0}, or NULL for none) to the module; 0, or -1 with an exception set. */
int lamp_add_kernel(PyObject *module, PyMethodDef *methods, const lamp_int_constant *constants);

/* Per-kernel initialisers (lamp_<kernel>_exec in csrc/py/<kernel>.c), called from the module's exec slot (module.c).
 * Each adds its functions and types to the module and returns 0, or -1
 * with an exception set. */
int lamp_events_exec(PyObject *module);
int lamp_vmath_exec(PyObject *module);
int lamp_hawkes_exec(PyObject *module);
int lamp_quadrature_exec(PyObject *module);
int lamp_kg_hawkes_exec(PyObject *module);
int lamp_bm25_exec(PyObject *module);
int lamp_evidence_exec(PyObject *module);
int lamp_dense_exec(PyObject *module);
int lamp_http_exec(PyObject *module);
int lamp_ranker_exec(PyObject *module);

#endif
