/* The one-type Hawkes kernel (hawkes_one.c) at 4 lanes of AVX2 (x86-64 only). */
#include "common/vmath.h"

#if LAMP_X86_DISPATCH
#define ONE_NAME lamp_hawkes_loglik_one_v4
#define ONE_ATTR LAMP_TARGET_AVX2
#define ONE_VD lamp_v4d
#define ONE_VU lamp_v4u
#define ONE_LANES 4
#define ONE_RECIP(x) (1.0 / (x))
#define ONE_EXP lamp_exp_poly_v4
#define ONE_FREXP lamp_frexp_v4
#define ONE_TILE 0
#include "hawkes/hawkes_one_template.h"
#endif
