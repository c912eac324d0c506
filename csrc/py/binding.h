/* Private header of the CPython binding of lamp._core.
 *
 * Every csrc/py/<kernel>.c (the binding of csrc/<kernel>.c) includes this first.  It sets up the NumPy C API
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

#include "../lamp_error.h"

/* Converts `obj` into a new reference to an aligned, C-contiguous array of
 * `typenum` with `ndim` dimensions (ndim < 0: any).  Only safe casts are made
 * (int32 -> int64 and float32 -> float64 are fine; float -> int is a
 * TypeError).  Returns NULL with TypeError/ValueError naming `name`. */
PyArrayObject *lamp_array_from(PyObject *obj, int typenum, int ndim, const char *name);

/* ValueError naming `name` unless every element of a float64 array is finite. */
int lamp_require_finite(PyArrayObject *arr, const char *name);

/* ValueError naming `name` unless dimension `axis` of `arr` has length `expected`. */
int lamp_require_dim(PyArrayObject *arr, int axis, npy_intp expected, const char *name);

/* Raises the Python exception that matches a kernel error (ValueError,
 * MemoryError, KeyboardInterrupt or RuntimeError) and returns NULL. */
PyObject *lamp_raise_kernel_error(const lamp_error *err);

/* Per-kernel initialisers (lamp_<kernel>_exec in csrc/py/<kernel>.c), called from the module's exec slot (module.c).
 * Each adds its functions and types to the module and returns 0, or -1
 * with an exception set. */
int lamp_events_exec(PyObject *module);
int lamp_hawkes_exec(PyObject *module);
int lamp_kg_hawkes_exec(PyObject *module);
int lamp_bm25_exec(PyObject *module);
int lamp_dense_exec(PyObject *module);
int lamp_http_exec(PyObject *module);
int lamp_rank_exec(PyObject *module);

#endif
