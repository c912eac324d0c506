/* The eight-lane helpers of vmath.h, run through LAMP_CLONES functions so the variant the loader
 * picks on this CPU (AVX-512, AVX2 or SSE2) is the one tested. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/vmath.h"
#include "tests/check.h"

static double uniform(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*s >> 11) * 0x1.0p-53;
}

static double ulps(double a, double b)
{
    if (a == b)
        return 0.0;
    return fabs(a - b) / (nextafter(fabs(b), INFINITY) - fabs(b));
}

/* exp over arrays at each width; `which` picks the width and, for 8 lanes, the table version */
static void exp_v2(const double *x, double *y, int64_t n)
{
    for (int64_t i = 0; i + 2 <= n; i += 2) {
        lamp_v2d v;
        memcpy(&v, x + i, sizeof v);
        v = lamp_exp_poly_v2(v);
        memcpy(y + i, &v, sizeof v);
    }
}

#if LAMP_X86_DISPATCH
LAMP_TARGET_AVX2 static void exp_v4(const double *x, double *y, int64_t n)
{
    for (int64_t i = 0; i + 4 <= n; i += 4) {
        lamp_v4d v;
        memcpy(&v, x + i, sizeof v);
        v = lamp_exp_poly_v4(v);
        memcpy(y + i, &v, sizeof v);
    }
}

LAMP_TARGET_AVX512 static void exp_v8(const double *x, double *y, int64_t n, int table)
{
    for (int64_t i = 0; i + 8 <= n; i += 8) {
        lamp_v8d v;
        memcpy(&v, x + i, sizeof v);
        v = table ? lamp_exp_table_v8(v) : lamp_exp_poly_v8(v);
        memcpy(y + i, &v, sizeof v);
    }
}

LAMP_TARGET_AVX512 static void frexp_v8(const double *x, double *m, double *e, int64_t n)
{
    for (int64_t i = 0; i + 8 <= n; i += 8) {
        lamp_v8d v, ex, mm;
        memcpy(&v, x + i, sizeof v);
        mm = lamp_frexp_v8(v, &ex);
        memcpy(m + i, &mm, sizeof mm);
        memcpy(e + i, &ex, sizeof ex);
    }
}

LAMP_TARGET_AVX512 static void transpose_select(const double *in, double *out, double *sel)
{
    lamp_v8d r[8], c[8];
    memcpy(r, in, sizeof r);
    lamp_transpose8(r, c);
    memcpy(out, c, sizeof c);
    lamp_v8d s = lamp_select(lamp_v8d, lamp_v8u, r[0] < 0.5, r[1], r[2]);
    memcpy(sel, &s, sizeof s);
}
#endif

static void frexp_v2(const double *x, double *m, double *e, int64_t n)
{
    for (int64_t i = 0; i + 2 <= n; i += 2) {
        lamp_v2d v, ex, mm;
        memcpy(&v, x + i, sizeof v);
        mm = lamp_frexp_v2(v, &ex);
        memcpy(m + i, &mm, sizeof mm);
        memcpy(e + i, &ex, sizeof ex);
    }
}

static double worst_exp_ulps(const double *x, const double *y, int n)
{
    double worst = 0.0;
    for (int i = 0; i < n; i++) {
        double u = ulps(y[i], exp(x[i]));
        worst = u > worst ? u : worst;
    }
    return worst;
}

/* exp over its whole fast range [-708, 0], at several scales, to 1 ulp of libm, at every width
 * this CPU runs */
static void test_exp_accuracy(void)
{
    enum { N = 1 << 20 };
    double *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    uint64_t s = 42;
    const double scale[] = {708.0, 30.0, 1.0, 1e-3, 1e-9};
    for (int i = 0; i < N; i++)
        x[i] = -scale[i % 5] * uniform(&s);
    x[0] = 0.0;
    x[1] = -0.0;
    x[2] = -708.0;
    x[3] = -1e-300;
    x[4] = -0x1.62e42fefa39efp-6; /* half a table step */
    x[5] = -0x1.62e42fefa39efp-2; /* half a step of the table-free reduction */
    exp_v2(x, y, N);
    CHECK(worst_exp_ulps(x, y, N) <= 1.0);
    CHECK(y[0] == 1.0 && y[1] == 1.0);
#if LAMP_X86_DISPATCH
    if (LAMP_HAVE_AVX2()) {
        exp_v4(x, y, N);
        CHECK(worst_exp_ulps(x, y, N) <= 1.0);
    }
    if (LAMP_HAVE_AVX512()) {
        exp_v8(x, y, N, 0);
        CHECK(worst_exp_ulps(x, y, N) <= 1.0);
        exp_v8(x, y, N, 1);
        CHECK(worst_exp_ulps(x, y, N) <= 1.0);
        CHECK(y[0] == 1.0 && y[1] == 1.0);
    }
#endif
    free(x);
    free(y);
}

/* v = m 2^e exactly, with m in [1, 2), over the positive normal range */
static void test_frexp(void)
{
    enum { N = 1 << 16 };
    double *x = malloc(N * sizeof *x), *m = malloc(N * sizeof *m), *e = malloc(N * sizeof *e);
    uint64_t s = 7;
    for (int i = 0; i < N; i++)
        x[i] = ldexp(1.0 + uniform(&s), (int)(uniform(&s) * 2040.0) - 1020);
    x[0] = 1.0;
    x[1] = 0x1.fffffffffffffp0;
    x[2] = 0x1p-1022;
    for (int pass = 0; pass < 2; pass++) {
        memset(m, 0, N * sizeof *m);
        if (pass == 0)
            frexp_v2(x, m, e, N);
#if LAMP_X86_DISPATCH
        else if (LAMP_HAVE_AVX512())
            frexp_v8(x, m, e, N);
#endif
        else
            break;
        int exact = 1;
        for (int i = 0; i < N; i++)
            exact &= m[i] >= 1.0 && m[i] < 2.0 && ldexp(m[i], (int)e[i]) == x[i];
        CHECK(exact);
    }
    free(x);
    free(m);
    free(e);
}

#if LAMP_X86_DISPATCH
static void test_transpose_and_select(void)
{
    if (!LAMP_HAVE_AVX512())
        return;
    double in[64], out[64], sel[8];
    for (int i = 0; i < 64; i++)
        in[i] = i / 64.0;
    transpose_select(in, out, sel);
    int ok = 1;
    for (int k = 0; k < 8; k++)
        for (int l = 0; l < 8; l++)
            ok &= out[k * 8 + l] == in[l * 8 + k];
    CHECK(ok);
    for (int l = 0; l < 8; l++) /* row 0 is below 0.5 everywhere: row 1 is picked */
        CHECK(sel[l] == in[8 + l]);
}
#endif

/* lamp_vexp over arrays of every length 0..40 (full vectors, pairs, an odd last element), with
 * arguments outside the fast range mixed in, equals libm to 1 ulp and is libm's below -708 */
static void test_vexp_arrays(void)
{
    double x[40], y[40];
    uint64_t s = 3;
    for (int n = 0; n <= 40; n++) {
        for (int i = 0; i < n; i++)
            x[i] = -30.0 * uniform(&s);
        if (n > 5) {
            x[n / 2] = -745.0;  /* subnormal result */
            x[n / 3] = -1000.0; /* 0 */
            x[n - 1] = 0.5;     /* positive: libm too */
        }
        lamp_vexp(x, y, n);
        double worst = 0.0;
        for (int i = 0; i < n; i++) {
            double u = ulps(y[i], exp(x[i]));
            worst = u > worst ? u : worst;
        }
        CHECK(worst <= 1.0);
        if (n > 5)
            CHECK(y[n / 2] == exp(-745.0) && y[n / 3] == 0.0 && y[n - 1] == exp(0.5));
    }
}

int main(void)
{
    RUN(test_vexp_arrays);
    RUN(test_exp_accuracy);
    RUN(test_frexp);
#if LAMP_X86_DISPATCH
    RUN(test_transpose_and_select);
#endif
    return CHECK_SUMMARY("test_vmath");
}
