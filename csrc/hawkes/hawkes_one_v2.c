/* The one-type Hawkes kernel (hawkes_one.c) at 2 lanes of SSE2: the baseline of every x86-64 CPU,
 * and the only width elsewhere. */
#include "common/vmath.h"

#define ONE_NAME lamp_hawkes_loglik_one_v2
#define ONE_ATTR
#define ONE_VD lamp_v2d
#define ONE_VU lamp_v2u
#define ONE_LANES 2
#define ONE_RECIP(x) (1.0 / (x))
#define ONE_EXP lamp_exp_poly_v2
#define ONE_FREXP lamp_frexp_v2
#define ONE_TILE 0
#include "hawkes/hawkes_one_template.h"
