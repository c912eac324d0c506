/* The one-type likelihood kernel of hawkes_one.c, written once for any number of lanes: a template.
 * Included once by each of hawkes_one_v2.c, hawkes_one_v4.c and hawkes_one_v8.c, which define:
 *   ONE_NAME    the function's name (lamp_hawkes_loglik_one_v<lanes>, declared in hawkes_one_internal.h)
 *   ONE_ATTR    its target attribute (or nothing)
 *   ONE_VD      the vector of doubles, ONE_VU the unsigned vector of the same width
 *   ONE_LANES   its number of lanes
 *   ONE_EXP     exp of a vector for -708 <= x <= 0; ONE_FREXP the width's lamp_frexp
 *   ONE_RECIP   1 / x of a vector
 *   ONE_TILE    1 to load 8 x 8 tiles and transpose them (8 lanes only)
 * No include guard: it is meant to be included once per width. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/vmath.h"
#include "hawkes/hawkes_one_internal.h"

ONE_ATTR int ONE_NAME(const double *times, const int64_t *marks, int64_t n, double mu, double alpha, double b,
                      double end_time, double *loglik, double *dmu, double *dalpha, double *dbeta)
{
    if (n < 2 * ONE_LANES || !isfinite(times[0]) || !isfinite(end_time) || !(end_time >= times[n - 1]) ||
        !(b > 0.0) || !isfinite(b) || !(alpha >= 0.0) || !isfinite(alpha) || marks[0] != 0)
        return 0;
    /* ranges where the exp clamp cannot show and every lambda is a positive normal number:
     * decays below e^-708 are taken as e^-708 (3.3e-308), which moves a state by at most
     * 3.3e-308 (n + span n) -- below 1e-107 relative to lambda >= mu here -- and keeps
     * mu <= lambda <= mu (1 + 1e100) */
    double ab = alpha * b, span = times[n - 1] - times[0];
    if (!(mu >= 1e-300 && mu <= 1e200 && ab * (double)n <= mu * 1e100 && span <= 1e100))
        return 0;

    ONE_VD RT[LAMP_HAWKES_ONE_SPAN], HT[LAMP_HAWKES_ONE_SPAN], ET[LAMP_HAWKES_ONE_SPAN], TT[LAMP_HAWKES_ONE_SPAN];
    const ONE_VD zero = {0.0}, one = zero + 1.0;
    /* per-lane accumulators: the product of the mantissas of lambda and the sum of its binary
     * exponents; sum 1 / lambda, sum R / lambda, sum (R - b H) / lambda */
    ONE_VD P = one, X = zero, G0 = zero, G1 = zero, G2 = zero;
    /* event 0: lambda = mu */
    double s_in = 1.0, d_in = 0.0, t_in = times[0], ex0;
    P[0] = lamp_frexp1(mu, &ex0);
    X[0] = ex0;
    G0[0] = 1.0 / mu;

    int64_t i0 = 1;
    for (int64_t q; (q = (n - i0) / ONE_LANES) > 0; i0 += q * ONE_LANES) {
        if (q > LAMP_HAWKES_ONE_SPAN)
            q = LAMP_HAWKES_ONE_SPAN;
        const double *t0 = times + i0;
        const int64_t *m0 = marks + i0;
        ONE_VD s = zero, d = zero, E = one;
        ONE_VD tc = zero;
        for (int l = 0; l < ONE_LANES; l++)
            tc[l] = t0[l * q - 1];
        const ONE_VD tstart = tc;
        ONE_VU flags = {0}, markbits = {0};
        /* one step of all lanes: t_ = the lanes' next times, j_ = the step */
#define LANE_STEP(t_, j_)                                                                                      \
    do {                                                                                                       \
        ONE_VD t = (t_), dt = t - tc;                                                                          \
        tc = t;                                                                                                \
        /* the sign bit of u | (u - 1) | (u + 2^52) is set for dt <= 0 (either zero) and for an                \
         * infinite or NaN dt: a tie, unsorted or non-finite times */                                          \
        ONE_VU u = (ONE_VU)dt;                                                                                 \
        flags |= u | (u - 1u) | (u + 0x0010000000000000ULL);                                                   \
        ONE_VD x = -b * dt;                                                                                    \
        ONE_VD e = ONE_EXP(lamp_select(ONE_VD, ONE_VU, x < -708.0, zero - 708.0, x));                          \
        /* written so that each carried state takes one multiply-add per step */                               \
        ONE_VD w = e * dt;                                                                                     \
        RT[j_] = e * s;                                                                                        \
        d = e * d + w * s; /* = H */                                                                           \
        s = e * s + 1.0;                                                                                       \
        E *= e;                                                                                                \
        HT[j_] = d;                                                                                            \
        ET[j_] = E;                                                                                            \
        TT[j_] = t - tstart; /* time since the event before the lane */                                        \
    } while (0)
        int64_t j = 0;
#if ONE_TILE
        /* 8 steps at a time: 8 contiguous loads, one per lane, turned into 8 steps by an 8 x 8
         * transpose in registers (cheaper than assembling each step's vector from 8 scalars) */
        for (; j + 8 <= q; j += 8) {
            ONE_VD r[ONE_LANES], c[ONE_LANES];
            for (int l = 0; l < ONE_LANES; l++) {
                __builtin_memcpy(&r[l], t0 + l * q + j, sizeof r[l]);
                ONE_VU mk; /* every mark must be 0: OR them in, in any order */
                __builtin_memcpy(&mk, m0 + l * q + j, sizeof mk);
                markbits |= mk;
            }
            lamp_transpose8(r, c);
            for (int k = 0; k < 8; k++)
                LANE_STEP(c[k], j + k);
        }
#endif
        for (; j < q; j++) {
            ONE_VD tj = zero;
            for (int l = 0; l < ONE_LANES; l++) {
                tj[l] = t0[l * q + j];
                markbits[l] |= (uint64_t)m0[l * q + j];
            }
            LANE_STEP(tj, j);
        }
#undef LANE_STEP
        uint64_t any = 0, anymark = 0;
        for (int l = 0; l < ONE_LANES; l++) {
            any |= flags[l];
            anymark |= markbits[l];
        }
        if (any >> 63 || anymark)
            return 0;
        /* hand the true state from lane to lane */
        ONE_VD S0, D0;
        for (int l = 0; l < ONE_LANES; l++) {
            S0[l] = s_in;
            D0[l] = d_in;
            double last_t = tc[l];
            double s_true = s[l] + E[l] * s_in, d_true = d[l] + E[l] * (d_in + (last_t - t_in) * s_in);
            s_in = s_true;
            d_in = d_true;
            t_in = last_t;
        }
        ONE_VD Pb = one;
        for (int64_t j = 0; j < q; j++) {
            ONE_VD R = RT[j] + ET[j] * S0;
            ONE_VD H = HT[j] + ET[j] * (D0 + TT[j] * S0);
            ONE_VD lam = mu + ab * R, ex;
            Pb *= ONE_FREXP(lam, &ex);
            X += ex;
            ONE_VD inv = ONE_RECIP(lam);
            G0 += inv;
            G1 += R * inv;
            G2 += (R - b * H) * inv;
        }
        ONE_VD ex; /* Pb < 2^LAMP_HAWKES_ONE_SPAN: fold it into P without overflow */
        P *= ONE_FREXP(Pb, &ex);
        X += ex;
        P = ONE_FREXP(P, &ex);
        X += ex;
    }
    for (; i0 < n; i0++) { /* fewer than ONE_LANES left: one at a time */
        double dt = times[i0] - t_in;
        if (!(dt > 0.0 && dt < DBL_MAX) || marks[i0] != 0)
            return 0;
        double e = exp(-b * dt);
        double R = e * s_in, H = e * (d_in + dt * s_in);
        s_in = R + 1.0;
        d_in = H;
        t_in = times[i0];
        double lam = mu + ab * R, ex, inv = 1.0 / lam;
        P[0] *= lamp_frexp1(lam, &ex);
        X[0] += ex;
        P[0] = lamp_frexp1(P[0], &ex);
        X[0] += ex;
        G0[0] += inv;
        G1[0] += R * inv;
        G2[0] += (R - b * H) * inv;
    }
    double total = 0.0, x = 0.0, g0 = 0.0, g1 = 0.0, g2 = 0.0;
    for (int l = 0; l < ONE_LANES; l++) {
        total += log(P[l]);
        x += X[l];
        g0 += G0[l];
        g1 += G1[l];
        g2 += G2[l];
    }
    total += x * 0x1.62e42fefa39efp-1;
    /* compensator on [0, end_time]: mu T + alpha sum_i (1 - exp(-b (T - t_i))) */
    double dt = end_time - t_in, e = exp(-b * dt);
    double s_end = e * s_in, d_end = e * (d_in + dt * s_in);
    total -= mu * end_time + alpha * ((double)n - s_end);
    *loglik = total;
    if (dmu && dalpha && dbeta) {
        *dmu = g0 - end_time;
        *dalpha = b * g1 - ((double)n - s_end);
        *dbeta = alpha * g2 - alpha * d_end;
    }
    return 1;
}
