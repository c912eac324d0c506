/* Vector helpers for the likelihood kernels (GCC/Clang vector extensions): exp, frexp, select
 * and an 8 x 8 transpose, at 2, 4 and 8 double lanes; and, at the end, the branch-free exp, tanh
 * and sin / cos of the ranker's float32 path.
 *
 * libm's exp and log are scalar calls (~5 ns each here) and the likelihood needs one exp and one
 * log per event, so the kernels work on a vector of events at a time with these instead.  exp
 * uses a classical argument reduction and a Taylor polynomial and is accurate to 1 ulp (checked
 * against libm in csrc/tests/test_vmath.c); no log is needed: a sum of logs is taken as ln 2
 * times a sum of binary exponents plus the log of a product of mantissas.
 *
 * A kernel is written once (a template header) and compiled per width: 8 lanes for AVX-512,
 * 4 for AVX2 + FMA, 2 for the SSE2 baseline and other CPUs, each width in its native registers
 * (GCC's lowering of a wider vector type splits it badly).  On x86-64 the widest the CPU has is
 * picked at run time (LAMP_X86_DISPATCH), so a wheel built on one machine runs everywhere.
 * Results may differ in the last bits between widths (FMA contraction, summation order); on one
 * machine they are deterministic. */
#ifndef LAMP_VMATH_H
#define LAMP_VMATH_H

#include <math.h>
#include <stdint.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(LAMP_NO_DISPATCH)
#define LAMP_X86_DISPATCH 1
#define LAMP_TARGET_AVX512 __attribute__((target("arch=x86-64-v4")))
#define LAMP_TARGET_AVX2 __attribute__((target("arch=x86-64-v3")))
#define LAMP_HAVE_AVX512() (__builtin_cpu_init(), __builtin_cpu_supports("x86-64-v4"))
#define LAMP_HAVE_AVX2() (__builtin_cpu_init(), __builtin_cpu_supports("x86-64-v3"))
#else
#define LAMP_X86_DISPATCH 0
#endif

typedef double lamp_v8d __attribute__((vector_size(64)));
typedef uint64_t lamp_v8u __attribute__((vector_size(64)));
typedef int64_t lamp_v8i __attribute__((vector_size(64)));
typedef double lamp_v4d __attribute__((vector_size(32)));
typedef uint64_t lamp_v4u __attribute__((vector_size(32)));
typedef int64_t lamp_v4i __attribute__((vector_size(32)));
typedef double lamp_v2d __attribute__((vector_size(16)));
typedef uint64_t lamp_v2u __attribute__((vector_size(16)));
typedef int64_t lamp_v2i __attribute__((vector_size(16)));

#define LAMP_INLINE static inline __attribute__((always_inline))

/* v = m 2^e for a positive normal v: returns m in [1, 2) and sets *e (exact, as a double) */
LAMP_INLINE double lamp_frexp1(double v, double *e)
{
    uint64_t u, mb, eb;
    __builtin_memcpy(&u, &v, sizeof u);
    mb = (u & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;
    eb = 0x4330000000000000ULL | (u >> 52); /* the biased exponent, as a double */
    double m, eb_d;
    __builtin_memcpy(&m, &mb, sizeof m);
    __builtin_memcpy(&eb_d, &eb, sizeof eb_d);
    *e = eb_d - (0x1p52 + 1023.0);
    return m;
}

/* GCC warns (-Wpsabi) that passing 32- and 64-byte vectors by value has an ABI that depends on
 * AVX / AVX-512.  lamp never passes them across a call: these helpers are always inlined and no
 * function with external linkage takes or returns a vector; the builds pass -Wno-psabi. */

/* lane-wise select: lanes of mask all ones pick a, all zeros pick b; VU is the unsigned vector
 * type of the width */
#define lamp_select(VD, VU, mask, a, b) ((VD)(((VU)(mask) & (VU)(a)) | (~(VU)(mask) & (VU)(b))))

/* Per width W (v2, v4, v8):
 *   lamp_exp_poly_W(x): exp(x) for -708 <= x <= 0.  x = K ln 2 + r, |r| <= ln 2 / 2, and
 *     exp(r) - 1 = r + r^2 q(r) with q the Taylor polynomial to r^11 / 13! (truncation < 5e-18
 *     relative) by Estrin's scheme (a short dependency chain, so consecutive calls overlap).
 *   lamp_frexp_W(v, &e): v = m 2^e for positive normal v, m in [1, 2), e exact (as doubles). */
#define LAMP_VEC_HELPERS(W, VD, VU)                                                                      \
    LAMP_INLINE VD lamp_exp_poly_##W(VD x)                                                               \
    {                                                                                                    \
        const double ln2hi = 0x1.62e42fee00000p-1, ln2lo = 0x1.a39ef35793c76p-33;                        \
        VD kd = x * 0x1.71547652b82fep0 + 0x1.8p52; /* round(x / ln 2) in the low mantissa bits */      \
        VU ki = (VU)kd;                                                                                  \
        kd -= 0x1.8p52;                                                                                  \
        VD r = (x - kd * ln2hi) - kd * ln2lo; /* kd * ln2hi is exact */                                 \
        VD r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;                                                       \
        VD b0 = r * (1.0 / 6.0) + 0.5, b1 = r * (1.0 / 120.0) + 1.0 / 24.0;                             \
        VD b2 = r * (1.0 / 5040.0) + 1.0 / 720.0, b3 = r * (1.0 / 362880.0) + 1.0 / 40320.0;            \
        VD b4 = r * (1.0 / 39916800.0) + 1.0 / 3628800.0;                                                \
        VD b5 = r * (1.0 / 6227020800.0) + 1.0 / 479001600.0;                                            \
        VD c0 = b1 * r2 + b0, c1 = b3 * r2 + b2, c2 = b5 * r2 + b4;                                      \
        VD p = r2 * ((c1 * r4 + c0) + c2 * r8) + r;                                                      \
        VD scale = (VD)((ki + 1023u) << 52); /* 2^K: K in [-1022, 0] */                                 \
        return scale + scale * p;                                                                        \
    }                                                                                                    \
    LAMP_INLINE VD lamp_frexp_##W(VD v, VD *e)                                                           \
    {                                                                                                    \
        VU u = (VU)v;                                                                                    \
        *e = (VD)((u >> 52) | 0x4330000000000000ULL) - (0x1p52 + 1023.0);                                \
        return (VD)((u & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL);                                \
    }

LAMP_VEC_HELPERS(v2, lamp_v2d, lamp_v2u)
LAMP_VEC_HELPERS(v4, lamp_v4d, lamp_v4u)
LAMP_VEC_HELPERS(v8, lamp_v8d, lamp_v8u)

/* The vector width the kernels use: 8 (AVX-512), 4 (AVX2 + FMA) or 2, the widest the CPU has,
 * or narrower when the environment variable LAMP_SIMD_WIDTH is 2 or 4 (for tests and
 * comparisons; it cannot select a width the CPU lacks).  Read once, at the first call. */
int lamp_simd_width(void);

/* y[i] = exp(x[i]), meant for x[i] <= 0 (others are right too, via libm), at the kernels' vector
 * width (lamp_simd_width); 1 ulp.  x and y must not overlap. */
void lamp_vexp(const double *x, double *y, int64_t n);

/* AVX-512 only (its two-register shuffles make them cheap): */

/* exp(x) lane by lane for -708 <= x <= 0.  x = (K / 16) ln 2 + r with |r| <= ln 2 / 32, so
 * exp(x) = 2^(K >> 4) 2^((K & 15) / 16) exp(r): the 16 values 2^(j / 16) (correctly rounded) are
 * looked up by a register shuffle, and exp(r) - 1 = r + r^2 q(r) with q the Taylor polynomial to
 * r^5 / 7! (truncation < 2e-18 relative), by Estrin's scheme.  1 ulp, in fewer operations than
 * lamp_exp_poly_v8. */
LAMP_INLINE lamp_v8d lamp_exp_table_v8(lamp_v8d x)
{
    const lamp_v8d tlo = {0x1.0000000000000p+0, 0x1.0b5586cf9890fp+0, 0x1.172b83c7d517bp+0, 0x1.2387a6e756238p+0,
                          0x1.306fe0a31b715p+0, 0x1.3dea64c123422p+0, 0x1.4bfdad5362a27p+0, 0x1.5ab07dd485429p+0};
    const lamp_v8d thi = {0x1.6a09e667f3bcdp+0, 0x1.7a11473eb0187p+0, 0x1.8ace5422aa0dbp+0, 0x1.9c49182a3f090p+0,
                          0x1.ae89f995ad3adp+0, 0x1.c199bdd85529cp+0, 0x1.d5818dcfba487p+0, 0x1.ea4afa2a490dap+0};
    const double ln2hi = 0x1.62e42fee00000p-5, ln2lo = 0x1.a39ef35793c76p-37; /* ln 2 / 16 */
    lamp_v8d kd = x * 0x1.71547652b82fep+4 + 0x1.8p52; /* K = round(16 x / ln 2) in the low bits */
    lamp_v8u ki = (lamp_v8u)kd;
    kd -= 0x1.8p52;
    lamp_v8d r = (x - kd * ln2hi) - kd * ln2lo;
    lamp_v8d r2 = r * r, r4 = r2 * r2;
    lamp_v8d b0 = r * (1.0 / 6.0) + 0.5, b1 = r * (1.0 / 120.0) + 1.0 / 24.0;
    lamp_v8d b2 = r * (1.0 / 5040.0) + 1.0 / 720.0;
    lamp_v8d q = (b1 * r2 + b0) + b2 * r4;
    lamp_v8d p = r2 * q + r;
    /* the table entry (index: the low 4 bits of K) with 2^(K >> 4) added to its exponent */
    lamp_v8d t = __builtin_shuffle(tlo, thi, (lamp_v8i)ki);
    lamp_v8d scale = (lamp_v8d)((lamp_v8u)t + ((ki >> 4) << 52));
    return scale + scale * p;
}

/* NAME(r, c): c[k][l] = r[l][k], an 8 x 8 transpose in three rounds of two-register shuffles, for
 * 8-lane vectors VT whose lane indices are the 8-lane integer vectors IT (one function per type). */
#define LAMP_TRANSPOSE8(NAME, VT, IT)                                                                    \
    LAMP_INLINE void NAME(const VT r[8], VT c[8])                                                       \
    {                                                                                                    \
        const IT even = {0, 8, 2, 10, 4, 12, 6, 14}, odd = {1, 9, 3, 11, 5, 13, 7, 15};                 \
        const IT lo2 = {0, 1, 8, 9, 4, 5, 12, 13}, hi2 = {2, 3, 10, 11, 6, 7, 14, 15};                  \
        const IT lo4 = {0, 1, 2, 3, 8, 9, 10, 11}, hi4 = {4, 5, 6, 7, 12, 13, 14, 15};                  \
        VT t[8], u[8];                                                                                   \
        for (int i = 0; i < 8; i += 2) {                                                                 \
            t[i] = __builtin_shuffle(r[i], r[i + 1], even);                                              \
            t[i + 1] = __builtin_shuffle(r[i], r[i + 1], odd);                                           \
        }                                                                                                \
        for (int i = 0; i < 8; i += 4)                                                                   \
            for (int k = 0; k < 2; k++) {                                                                \
                u[i + k] = __builtin_shuffle(t[i + k], t[i + k + 2], lo2);                               \
                u[i + k + 2] = __builtin_shuffle(t[i + k], t[i + k + 2], hi2);                           \
            }                                                                                            \
        for (int k = 0; k < 4; k++) {                                                                    \
            c[k] = __builtin_shuffle(u[k], u[k + 4], lo4);                                               \
            c[k + 4] = __builtin_shuffle(u[k], u[k + 4], hi4);                                           \
        }                                                                                                \
    }
LAMP_TRANSPOSE8(lamp_transpose8, lamp_v8d, lamp_v8i)

/* Scalar float maths of the ranker's float32 path (csrc/ranker/ranker.c), branch-free so that the loops
 * calling them vectorise at each target the caller is compiled for. */

/* exp(x) for x <= 0 (softmax weights after subtracting the maximum): exp(x) = 2^k exp(r),
 * x = k ln2 + r, |r| <= ln2 / 2; relative error below 2e-7. */
static inline float lamp_fast_expf_neg(float x)
{
    x = x > -87.0f ? x : -87.0f;
    float t = x * 1.44269504f + 12582912.0f; /* round to nearest via the 1.5 * 2^23 shift */
    float kf = t - 12582912.0f;
    float r = x - kf * 0.693145752f - kf * 1.42860677e-6f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (0.166666667f + r * (0.0416666667f + r * (0.00833333333f +
              r * 0.00138888889f)))));
    int32_t ti, si;
    float sc;
    __builtin_memcpy(&ti, &t, sizeof(ti));
    si = (ti - 0x4B400000 + 127) * (1 << 23);
    __builtin_memcpy(&sc, &si, sizeof(sc));
    return p * sc;
}

/* lamp_fast_expf_neg on 8 and 16 lanes (the same operations lane by lane). */
typedef float lamp_v8f __attribute__((vector_size(32)));
typedef int32_t lamp_v8fi __attribute__((vector_size(32)));
typedef float lamp_v16f __attribute__((vector_size(64)));
typedef int32_t lamp_v16fi __attribute__((vector_size(64)));
#define LAMP_FAST_EXPF_NEG_VEC(W, VF, VI)                                                                \
    LAMP_INLINE VF lamp_fast_expf_neg_##W(VF x)                                                          \
    {                                                                                                    \
        const VF lo = (VF){0} - 87.0f;                                                                   \
        VI m = x > lo; /* lanes of x > -87 (all ones) */                                                 \
        x = (VF)(((VI)x & m) | ((VI)lo & ~m));                                                           \
        VF t = x * 1.44269504f + 12582912.0f;                                                            \
        VF kf = t - 12582912.0f;                                                                         \
        VF r = x - kf * 0.693145752f - kf * 1.42860677e-6f;                                              \
        VF p = 1.0f + r * (1.0f + r * (0.5f + r * (0.166666667f + r * (0.0416666667f + r * (0.00833333333f + \
               r * 0.00138888889f)))));                                                                  \
        VI si = ((VI)t - 0x4B400000 + 127) * (1 << 23);                                                  \
        return p * (VF)si;                                                                               \
    }                                                                                                    \
    /* lamp_fast_tanhf lane by lane */                                                                   \
    LAMP_INLINE VF lamp_fast_tanhf_##W(VF x)                                                             \
    {                                                                                                    \
        VI sign = (VI)x & INT32_MIN;                                                          \
        VF e = lamp_fast_expf_neg_##W(-2.0f * (VF)((VI)x & 0x7fffffff));                                 \
        return (VF)((VI)((1.0f - e) / (1.0f + e)) | sign);                                               \
    }
LAMP_FAST_EXPF_NEG_VEC(v8, lamp_v8f, lamp_v8fi)
LAMP_FAST_EXPF_NEG_VEC(v16, lamp_v16f, lamp_v16fi)

/* tanh (libm's tanhf is a scalar call and took a sixth of a training step).  Absolute error below
 * 2e-7. */
static inline float lamp_fast_tanhf(float x)
{
    float e = lamp_fast_expf_neg(-2.0f * fabsf(x));
    return copysignf((1.0f - e) / (1.0f + e), x);
}

/* sin and cos of n arguments: reduction by pi / 2 in float64, then Taylor polynomials on
 * [-pi/4, pi/4] (absolute error below 4e-7, under float32's rounding of the result).  Always
 * inlined, so it is compiled for each target of the function using it. */
LAMP_INLINE void lamp_fast_sincos(const double *arg, int64_t n, double *s_out, double *c_out)
{
    for (int64_t i = 0; i < n; i++) {
        double x = arg[i];
        double t = x * 0.63661977236758134 + 6755399441055744.0; /* round(x * 2 / pi) via the 1.5 * 2^52 shift */
        double k = t - 6755399441055744.0;
        double r = (x - k * 1.5707963267341256) - k * 6.0771005065061922e-11;
        /* the quadrant k mod 4 as q = k - 4 round(k / 4) in {-2, ..., 2}, without integer vector ops */
        double q = k - 4.0 * ((k * 0.25 + 6755399441055744.0) - 6755399441055744.0);
        double aq = fabs(q);
        double r2 = r * r;
        double sn = r * (1.0 + r2 * (-1.0 / 6 + r2 * (1.0 / 120 + r2 * (-1.0 / 5040 + r2 * (1.0 / 362880)))));
        double cs = 1.0 + r2 * (-0.5 + r2 * (1.0 / 24 + r2 * (-1.0 / 720 + r2 * (1.0 / 40320))));
        double s1 = aq == 1.0 ? cs : sn, c1 = aq == 1.0 ? sn : cs;
        s_out[i] = (q == -1.0 || aq == 2.0) ? -s1 : s1; /* quadrants 2 and 3 */
        c_out[i] = (q == 1.0 || aq == 2.0) ? -c1 : c1;  /* quadrants 1 and 2 */
    }
}

#endif
