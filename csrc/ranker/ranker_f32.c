/* The ranker in float32 (LAMP_RANKER_FLOAT32: about twice as fast, energies within ~1e-5 relative of
 * float64): the template ranker_template.h with REAL = float, the branch-free float maths of
 * common/vmath.h, sgemm, and the own AVX-512 product of the forward pass where the CPU has it. */
#define REAL float
#define IREAL int32_t
#define SFX f32
#define GEMM cblas_sgemm
#define GEMV cblas_sgemv
#define EXP lamp_fast_expf_neg
#define TANH lamp_fast_tanhf
#define VEXP_V8F 1
#define OWN_GEMM LAMP_X86_DISPATCH
#define SINCOS_ARRAY lamp_fast_sincos
#include "ranker/ranker_template.h"
