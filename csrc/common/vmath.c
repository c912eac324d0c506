/* The vector width to use, and exp over arrays at that width (see vmath.h). */
#include "common/vmath.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* y = exp(x) for x <= 0; any x outside [-708, 0] (or NaN) is redone by libm from x afterwards,
 * so every element gets a libm-quality answer (and x must not overlap y) */
#define VEXP_STEP(VD, VU, EXP, flags, src, dst)                                                         \
    {                                                                                                    \
        VD v, zero_ = {0};                                                                               \
        memcpy(&v, (src), sizeof v);                                                                     \
        VD c = lamp_select(VD, VU, (v >= -708.0) & (v <= zero_), v, zero_);                             \
        flags |= (VU)v ^ (VU)c; /* non-zero where v was replaced */                                     \
        v = EXP(c);                                                                                      \
        memcpy((dst), &v, sizeof v);                                                                     \
    }

/* W lanes at a time, then pairs, then libm for a last odd element (a zero-padded vector would
 * cost a store-forwarding stall) */
#define VEXP_BODY(VD, VU, W, EXP)                                                                        \
    {                                                                                                    \
        VU outside = {0};                                                                                \
        lamp_v2u outside2 = {0};                                                                         \
        int64_t i = 0;                                                                                   \
        for (; i + W <= n; i += W)                                                                       \
            VEXP_STEP(VD, VU, EXP, outside, x + i, y + i)                                                \
        for (; i + 2 <= n; i += 2)                                                                       \
            VEXP_STEP(lamp_v2d, lamp_v2u, lamp_exp_poly_v2, outside2, x + i, y + i)                      \
        uint64_t any = outside2[0] | outside2[1];                                                        \
        for (int l = 0; l < W; l++)                                                                      \
            any |= outside[l];                                                                           \
        for (int64_t k = any ? 0 : i; k < n; k++) /* the last odd one; outside [-708, 0] or NaN */      \
            if (k >= i || !(x[k] >= -708.0 && x[k] <= 0.0))                                              \
                y[k] = exp(x[k]);                                                                        \
    }

static void vexp_v2(const double *x, double *y, int64_t n) VEXP_BODY(lamp_v2d, lamp_v2u, 2, lamp_exp_poly_v2)

#if LAMP_X86_DISPATCH
LAMP_TARGET_AVX2 static void vexp_v4(const double *x, double *y, int64_t n)
    VEXP_BODY(lamp_v4d, lamp_v4u, 4, lamp_exp_poly_v4)

LAMP_TARGET_AVX512 static void vexp_v8(const double *x, double *y, int64_t n)
    VEXP_BODY(lamp_v8d, lamp_v8u, 8, lamp_exp_table_v8)
#endif

int lamp_simd_width(void)
{
    /* decided once per process (the kernels ask per call, some per event); a race between two
     * first calls only computes the same value twice */
    static int cached;
    int w = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (w)
        return w;
    w = 2;
#if LAMP_X86_DISPATCH
    if (LAMP_HAVE_AVX512())
        w = 8;
    else if (LAMP_HAVE_AVX2())
        w = 4;
#endif
    const char *force = getenv("LAMP_SIMD_WIDTH"); /* only ever narrower than the CPU allows */
    if (force && (atoi(force) == 2 || atoi(force) == 4) && atoi(force) < w)
        w = atoi(force);
    __atomic_store_n(&cached, w, __ATOMIC_RELAXED);
    return w;
}

void lamp_vexp(const double *x, double *y, int64_t n)
{
    if (n < 4) { /* a vector's latency costs more than a few libm calls */
        for (int64_t k = 0; k < n; k++)
            y[k] = exp(x[k]);
        return;
    }
#if LAMP_X86_DISPATCH
    int width = lamp_simd_width();
    if (width == 8) {
        vexp_v8(x, y, n);
        return;
    }
    if (width == 4) {
        vexp_v4(x, y, n);
        return;
    }
#endif
    vexp_v2(x, y, n);
}
