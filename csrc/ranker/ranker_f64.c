/* The ranker in float64 (LAMP_RANKER_FLOAT64, the finite-difference checked path): the template
 * ranker_template.h with REAL = double, libm's exp, tanh, sin and cos, and dgemm. */
#define REAL double
#define IREAL int64_t
#define SFX f64
#define GEMM cblas_dgemm
#define GEMV cblas_dgemv
#define EXP exp
#define TANH tanh
#define VEXP_V8F 0
#define OWN_GEMM 0
#include "ranker/ranker_template.h"
