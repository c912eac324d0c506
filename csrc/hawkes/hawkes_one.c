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
 * libm's exp and log cost ~5 ns each.  So a block of W x q events (W = 8 lanes with AVX-512, 4
 * with AVX2, 2 otherwise; see common/vmath.h) is cut into W lanes of q consecutive events that run the
 * recursion side by side from a zero state (one vector per step, with the exp of the step
 * computed in the same vector), each lane also carrying E = exp(-b (t - t_start)).  The
 * recursion is linear in its start state, so lane l's true values are its local ones plus E
 * times the true state where lane l starts, which the lanes hand to one another in W scalar
 * steps.  A second pass over the block, also W wide, forms the intensities: the sum of their
 * logs is taken as ln 2 times the sum of their binary exponents plus the log of the product of
 * their mantissas (renormalised once per block; W logs in all at the end); the gradient needs
 * 1 / lambda per event.
 *
 * Only for strictly increasing finite times (ties need the grouped left limits of the general
 * path), marks all 0 and parameters in ranges where the exp argument clamp at -708 (a decay
 * below 3e-308 is taken as 3e-308) cannot show (see the test at the top of the kernel, wide
 * beyond any real data); otherwise it returns 0 and the caller runs the general path, which also
 * produces the error messages. */
#include "hawkes/hawkes.h"

#include "common/vmath.h"
#include "hawkes/hawkes_one_internal.h"

int lamp_hawkes_loglik_one_width(int width, const double *times, const int64_t *marks, int64_t n, double mu,
                                 double alpha, double b, double end_time, double *loglik, double *dmu, double *dalpha,
                                 double *dbeta)
{
    switch (width) {
#if LAMP_X86_DISPATCH
    case 8:
        return LAMP_HAVE_AVX512() ? lamp_hawkes_loglik_one_v8(times, marks, n, mu, alpha, b, end_time, loglik, dmu,
                                                              dalpha, dbeta)
                                  : -1;
    case 4:
        return LAMP_HAVE_AVX2() ? lamp_hawkes_loglik_one_v4(times, marks, n, mu, alpha, b, end_time, loglik, dmu,
                                                            dalpha, dbeta)
                                : -1;
#endif
    case 2:
        return lamp_hawkes_loglik_one_v2(times, marks, n, mu, alpha, b, end_time, loglik, dmu, dalpha, dbeta);
    default:
        return -1;
    }
}

int lamp_hawkes_loglik_one(const double *times, const int64_t *marks, int64_t n, double mu, double alpha, double b,
                           double end_time, double *loglik, double *dmu, double *dalpha, double *dbeta)
{
    return lamp_hawkes_loglik_one_width(lamp_simd_width(), times, marks, n, mu, alpha, b, end_time, loglik, dmu,
                                        dalpha, dbeta);
}
