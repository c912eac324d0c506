/* Eight-lane double-precision helpers for the likelihood kernels: exp, frexp, select and an
 * 8 x 8 transpose, written with GCC/Clang vector extensions.
 *
 * libm's exp and log are scalar calls (~5 ns each here) and the likelihood needs one exp and one
 * log per event, so the kernels work on 8 events at a time with these instead.  exp uses a
 * classical argument reduction, a 16-entry table and a short Taylor polynomial and is accurate
 * to 1 ulp (checked against libm in csrc/tests/test_vmath.c); no log is needed: a sum of logs is
 * taken as ln 2 times a sum of binary exponents plus the log of a product of mantissas.
 *
 * On x86-64 Linux with GCC or Clang, a kernel marked LAMP_CLONES is compiled three times
 * (baseline SSE2, AVX2 + FMA, AVX-512) and the loader picks the widest the CPU has
 * (target_clones), so a wheel built on one machine runs everywhere.  Results may differ in the
 * last bits between these variants (FMA contraction); on one machine they are deterministic. */
#ifndef LAMP_VMATH_H
#define LAMP_VMATH_H

#include <stdint.h>

#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__) && !defined(LAMP_NO_CLONES)
#define LAMP_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define LAMP_CLONES
#endif

/* Eight lanes at once with GCC/Clang vector extensions: the compiler lowers them to one AVX-512
 * register, two AVX2 registers or four SSE2 registers, whichever the function is compiled for. */
typedef double lamp_v8d __attribute__((vector_size(64)));
typedef uint64_t lamp_v8u __attribute__((vector_size(64)));
typedef int64_t lamp_v8i __attribute__((vector_size(64)));

#define LAMP_INLINE static inline __attribute__((always_inline))

/* GCC warns (-Wpsabi) that passing 64-byte vectors by value has an ABI that depends on AVX-512.
 * lamp never passes them across a call: these helpers are always inlined and no function with
 * external linkage takes or returns a vector; the builds pass -Wno-psabi. */

/* exp(x) lane by lane for -708 <= x <= 0.  x = (K / 16) ln 2 + r with |r| <= ln 2 / 32, so
 * exp(x) = 2^(K >> 4) 2^((K & 15) / 16) exp(r): the 16 values 2^(j / 16) (correctly rounded) are
 * looked up by a register shuffle, and exp(r) - 1 = r + r^2 q(r) with q the Taylor polynomial to
 * r^5 / 7! (truncation < 2e-18 relative), by Estrin's scheme.  About 1.5 ulp. */
LAMP_INLINE lamp_v8d lamp_exp8(lamp_v8d x)
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

/* lane-wise select: lanes of mask all ones pick a, all zeros pick b (a macro: as a function GCC
 * prints a note about the 64-byte parameter ABI for every file that includes this header) */
#define lamp_select8(mask, a, b)                                                                      \
    ((lamp_v8d)(((lamp_v8u)(mask) & (lamp_v8u)(a)) | (~(lamp_v8u)(mask) & (lamp_v8u)(b))))

/* c[k][l] = r[l][k]: an 8 x 8 transpose in three rounds of two-register shuffles */
LAMP_INLINE void lamp_transpose8(const lamp_v8d r[8], lamp_v8d c[8])
{
    const lamp_v8i even = {0, 8, 2, 10, 4, 12, 6, 14}, odd = {1, 9, 3, 11, 5, 13, 7, 15};
    const lamp_v8i lo2 = {0, 1, 8, 9, 4, 5, 12, 13}, hi2 = {2, 3, 10, 11, 6, 7, 14, 15};
    const lamp_v8i lo4 = {0, 1, 2, 3, 8, 9, 10, 11}, hi4 = {4, 5, 6, 7, 12, 13, 14, 15};
    lamp_v8d t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = __builtin_shuffle(r[i], r[i + 1], even);
        t[i + 1] = __builtin_shuffle(r[i], r[i + 1], odd);
    }
    for (int i = 0; i < 8; i += 4)
        for (int k = 0; k < 2; k++) {
            u[i + k] = __builtin_shuffle(t[i + k], t[i + k + 2], lo2);
            u[i + k + 2] = __builtin_shuffle(t[i + k], t[i + k + 2], hi2);
        }
    for (int k = 0; k < 4; k++) {
        c[k] = __builtin_shuffle(u[k], u[k + 4], lo4);
        c[k + 4] = __builtin_shuffle(u[k], u[k + 4], hi4);
    }
}

/* v = m 2^e for positive normal v: returns m in [1, 2) and sets *e (exact, as doubles) */
LAMP_INLINE lamp_v8d lamp_frexp8(lamp_v8d v, lamp_v8d *e)
{
    lamp_v8u u = (lamp_v8u)v;
    *e = (lamp_v8d)((u >> 52) | 0x4330000000000000ULL) - (0x1p52 + 1023.0);
    return (lamp_v8d)((u & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL);
}

#endif
