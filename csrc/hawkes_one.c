/* Log-likelihood and gradient of a one-type exponential Hawkes process, at close to the speed of
 * reading the data.
 *
 * With one type the state after event i is s_i = sum_{j <= i} exp(-b (t_i - t_j)) and the
 * beta-derivative state d_i = sum_{j <= i} (t_i - t_j) exp(-b (t_i - t_j)); with
 * e_i = exp(-b (t_i - t_{i-1})) and dt_i = t_i - t_{i-1}:
 *
 *     R_i = e_i s_{i-1}  (the excitation at t_i, left limit)     s_i = R_i + 1
 *     H_i = e_i (d_{i-1} + dt_i s_{i-1})                          d_i = H_i
 *
 * A serial loop over that recursion is bound by the latency of one multiply-add per event, and
 * libm's exp and log cost ~5 ns each.  So a block of 8 x q events is cut into 8 lanes of q
 * consecutive events that run the recursion side by side from a zero state (one vector of 8 per
 * step, with the exp of the step computed in the same vector), each lane also carrying
 * E = exp(-b (t - t_start)).  The recursion is linear in its start state, so lane l's true values
 * are its local ones plus E times the true state where lane l starts, which the lanes hand to one
 * another in 8 scalar steps.  A second pass over the block, also 8 wide, forms the intensities:
 * the sum of their logs is taken as ln 2 times the sum of their binary exponents plus the log of
 * the product of their mantissas (renormalised once per block), i.e. 9 logs per block instead of
 * 8 q; the gradient needs 1 / lambda per event.
 *
 * Only for strictly increasing finite times (ties need the grouped left limits of the general
 * path), marks all 0 and mu large enough that the exp argument clamp at -708 (a decay below
 * 3e-308 is taken as 3e-308) cannot show; otherwise it returns 0 and the caller runs the general
 * path, which also produces the error messages. */
#include "hawkes.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "vmath.h"

#define LANES 8    /* = the width of lamp_v8d */
#define SPAN 128   /* events per lane per block */

static inline double mantissa(double v, double *exponent)
{
    uint64_t u, mb, eb;
    __builtin_memcpy(&u, &v, sizeof u);
    eb = 0x4330000000000000ULL | (u >> 52); /* positive normal v: biased exponent, as a double */
    mb = (u & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;
    double m, e;
    __builtin_memcpy(&m, &mb, sizeof m);
    __builtin_memcpy(&e, &eb, sizeof e);
    *exponent = e - (0x1p52 + 1023.0);
    return m;
}

LAMP_CLONES int lamp_hawkes_loglik_one(const double *times, const int64_t *marks, int64_t n, double mu, double alpha,
                                       double b, double end_time, double *loglik, double *dmu, double *dalpha,
                                       double *dbeta)
{
    if (n < 2 * LANES || !(mu >= 1e-250) || !isfinite(times[0]) || !(end_time >= times[n - 1]) ||
        !isfinite(end_time) || !(b > 0.0) || !isfinite(b) || !(alpha >= 0.0) || !isfinite(alpha) || !isfinite(mu))
        return 0;
    if (marks[0] != 0)
        return 0;
    double ab = alpha * b;
    if (!(ab < 1e200))
        return 0;

    lamp_v8d RT[SPAN], HT[SPAN], ET[SPAN], TT[SPAN];
    const lamp_v8d zero = {0.0}, one = zero + 1.0;
    /* per-lane accumulators: the product of the mantissas of lambda and the sum of its binary
     * exponents; sum 1 / lambda, sum R / lambda, sum (R - b H) / lambda */
    lamp_v8d P = one, X = zero, G0 = zero, G1 = zero, G2 = zero;
    /* event 0: lambda = mu */
    double s_in = 1.0, d_in = 0.0, t_in = times[0], ex0;
    P[0] = mantissa(mu, &ex0);
    X[0] = ex0;
    G0[0] = 1.0 / mu;

    int64_t i0 = 1;
    for (int64_t q; (q = (n - i0) / LANES) > 0; i0 += q * LANES) {
        if (q > SPAN)
            q = SPAN;
        const double *t0 = times + i0;
        const int64_t *m0 = marks + i0;
        lamp_v8d s = zero, d = zero, E = one;
        lamp_v8d tc = {t0[-1], t0[q - 1], t0[2 * q - 1], t0[3 * q - 1],
                       t0[4 * q - 1], t0[5 * q - 1], t0[6 * q - 1], t0[7 * q - 1]};
        lamp_v8u flags = {0}, markbits = {0};
        /* one step of the 8 lanes, t = the lanes' next times */
#define LANE_STEP(t_, j_)                                                                                  \
    do {                                                                                                   \
        lamp_v8d t = (t_), dt = t - tc;                                                                   \
        tc = t;                                                                                            \
        /* the sign bit of u | (u - 1) | (u + 2^52) is set for dt <= 0 (either zero) and for an        \
         * infinite or NaN dt: a tie, unsorted or non-finite times */                                     \
        lamp_v8u u = (lamp_v8u)dt;                                                                         \
        flags |= u | (u - 1u) | (u + 0x0010000000000000ULL);                                               \
        lamp_v8d x = -b * dt;                                                                              \
        lamp_v8d e = lamp_exp8(lamp_select8(x < -708.0, zero - 708.0, x));                               \
        /* written so that each carried state takes one multiply-add per step */                         \
        lamp_v8d w = e * dt;                                                                               \
        RT[j_] = e * s;                                                                                    \
        d = e * d + w * s; /* = H */                                                                       \
        s = e * s + 1.0;                                                                                   \
        E *= e;                                                                                            \
        HT[j_] = d;                                                                                        \
        ET[j_] = E;                                                                                        \
        TT[j_] = t;                                                                                        \
    } while (0)
        int64_t j = 0;
        /* 8 steps at a time: 8 contiguous loads, one per lane, turned into 8 steps by an 8 x 8
         * transpose in registers (cheaper than assembling each step's vector from 8 scalars) */
        for (; j + 8 <= q; j += 8) {
            lamp_v8d r[LANES], c[LANES];
            for (int l = 0; l < LANES; l++) {
                __builtin_memcpy(&r[l], t0 + l * q + j, sizeof r[l]);
                lamp_v8u mk; /* every mark must be 0: OR them in, in any order */
                __builtin_memcpy(&mk, m0 + l * q + j, sizeof mk);
                markbits |= mk;
            }
            lamp_transpose8(r, c);
            for (int k = 0; k < 8; k++)
                LANE_STEP(c[k], j + k);
        }
        for (; j < q; j++) {
            const double *tj = t0 + j;
            for (int l = 0; l < LANES; l++)
                markbits[l] |= (uint64_t)m0[l * q + j];
            LANE_STEP(((lamp_v8d){tj[0], tj[q], tj[2 * q], tj[3 * q], tj[4 * q], tj[5 * q], tj[6 * q], tj[7 * q]}), j);
        }
#undef LANE_STEP
        uint64_t any = 0, anymark = 0;
        for (int l = 0; l < LANES; l++) {
            any |= flags[l];
            anymark |= markbits[l];
        }
        if (any >> 63 || anymark)
            return 0;
        /* hand the true state from lane to lane */
        lamp_v8d S0, D0, T0;
        for (int l = 0; l < LANES; l++) {
            S0[l] = s_in;
            D0[l] = d_in;
            T0[l] = t_in;
            double last_t = tc[l];
            double s_true = s[l] + E[l] * s_in, d_true = d[l] + E[l] * (d_in + (last_t - t_in) * s_in);
            s_in = s_true;
            d_in = d_true;
            t_in = last_t;
        }
        lamp_v8d Pb = one;
        for (int64_t j = 0; j < q; j++) {
            lamp_v8d R = RT[j] + ET[j] * S0;
            lamp_v8d H = HT[j] + ET[j] * (D0 + (TT[j] - T0) * S0);
            lamp_v8d lam = mu + ab * R, ex;
            Pb *= lamp_frexp8(lam, &ex);
            X += ex;
            lamp_v8d inv = 1.0 / lam;
            G0 += inv;
            G1 += R * inv;
            G2 += (R - b * H) * inv;
        }
        lamp_v8d ex; /* Pb < 2^SPAN: fold it into P without overflow */
        P *= lamp_frexp8(Pb, &ex);
        X += ex;
        P = lamp_frexp8(P, &ex);
        X += ex;
    }
    for (; i0 < n; i0++) { /* fewer than 8 left: one at a time */
        double dt = times[i0] - t_in;
        if (!(dt > 0.0 && dt < DBL_MAX) || marks[i0] != 0)
            return 0;
        double e = exp(-b * dt);
        double R = e * s_in, H = e * (d_in + dt * s_in);
        s_in = R + 1.0;
        d_in = H;
        t_in = times[i0];
        double lam = mu + ab * R, ex, inv = 1.0 / lam;
        P[0] *= mantissa(lam, &ex);
        X[0] += ex;
        P[0] = mantissa(P[0], &ex);
        X[0] += ex;
        G0[0] += inv;
        G1[0] += R * inv;
        G2[0] += (R - b * H) * inv;
    }
    double total = 0.0, x = 0.0, g0 = 0.0, g1 = 0.0, g2 = 0.0;
    for (int l = 0; l < LANES; l++) {
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
