/* The one-type Hawkes kernel (hawkes_one.c) at 8 lanes of AVX-512 (x86-64 only), with a table exp,
 * 8 x 8 tiles loaded and transposed, and a reciprocal refined from the hardware estimate. */
#include "common/vmath.h"

#if LAMP_X86_DISPATCH
#include <immintrin.h>

/* 1 / x: the 14-bit hardware estimate refined by two Newton steps (relative error ~2^-56 before
 * the last rounding).  A vector division's throughput bounds the second pass otherwise. */
LAMP_TARGET_AVX512 LAMP_INLINE lamp_v8d recip_v8(lamp_v8d x)
{
    lamp_v8d y = (lamp_v8d)_mm512_rcp14_pd((__m512d)x);
    y = y + y * (1.0 - x * y);
    return y + y * (1.0 - x * y);
}

#define ONE_NAME lamp_hawkes_loglik_one_v8
#define ONE_ATTR LAMP_TARGET_AVX512
#define ONE_VD lamp_v8d
#define ONE_VU lamp_v8u
#define ONE_LANES 8
#define ONE_RECIP recip_v8
#define ONE_EXP lamp_exp_table_v8
#define ONE_FREXP lamp_frexp_v8
#define ONE_TILE 1
#include "hawkes/hawkes_one_template.h"
#endif
