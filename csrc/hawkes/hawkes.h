/* Multivariate exponential Hawkes process: intensities, exact log-likelihood and its gradient.
 *
 *   lambda_k(t) = mu[k] + sum_{t_i < t} alpha[k, c_i] * beta[k, c_i] * exp(-beta[k, c_i] (t - t_i))
 *
 * alpha[k, j] is the total excitation of type k by one event of type j (tick's
 * convention).  beta is K x K (a scalar beta is passed as a constant matrix).
 * Intensities are left limits: events at exactly t do not count at t, and
 * events at the same time do not excite each other.
 *
 * Cost O(N K) per sequence with O(K^2) memory: per (k, j) the state
 * S[k][j] = sum_{c_i = j} exp(-beta[k][j] (t - t_i)) is stored at the time of
 * the last type-j event and decayed lazily; the log-likelihood needs row c_i
 * at event i (O(K)) and an update of column c_i (O(K)).  The beta gradient
 * carries D[k][j] = sum_{c_i = j} (t - t_i) exp(-beta (t - t_i)) the same way.
 */
#ifndef LAMP_HAWKES_H
#define LAMP_HAWKES_H

#include <stdint.h>

#include "common/lamp_error.h"

/* Validates a sequence and parameters: sorted finite times, marks in [0, K),
 * mu >= 0 (and sum > 0), alpha >= 0, beta > 0, all finite, end_time >= last time. */
int lamp_hawkes_check(const double *times, const int64_t *marks, int64_t n, int64_t K, const double *mu,
                      const double *alpha, const double *beta, double end_time, lamp_error *err);

/* intensity[q * K + k] = lambda_k(query_times[q]) (left limits); query times in any order. */
int lamp_hawkes_intensity(const double *times, const int64_t *marks, int64_t n, int64_t K, const double *mu,
                          const double *alpha, const double *beta, const double *query_times, int64_t q,
                          double *intensity, lamp_error *err);

/* Log-likelihood on [0, end_time]; with dmu/dalpha/dbeta non-NULL also the exact gradient
 * (dbeta per (k, j); sum it for a scalar beta). */
int lamp_hawkes_loglik(const double *times, const int64_t *marks, int64_t n, int64_t K, const double *mu,
                       const double *alpha, const double *beta, double end_time, double *loglik, double *dmu,
                       double *dalpha, double *dbeta, lamp_error *err);

/* Internal: the one-type fast path (hawkes_one.c and its instances hawkes_one_v<lanes>.c).  Returns 1 with
 * the results when it applies (strictly increasing finite times, all marks 0, valid parameters, n >= 2 x
 * the vector width), 0 otherwise, at the width lamp_simd_width() gives (common/vmath.h).  _width runs it
 * at a given vector width (2, 4 or 8 lanes; -1 when this CPU cannot). */
int lamp_hawkes_loglik_one(const double *times, const int64_t *marks, int64_t n, double mu, double alpha, double b,
                           double end_time, double *loglik, double *dmu, double *dalpha, double *dbeta);
int lamp_hawkes_loglik_one_width(int width, const double *times, const int64_t *marks, int64_t n, double mu,
                                 double alpha, double b, double end_time, double *loglik, double *dmu, double *dalpha,
                                 double *dbeta);

/* Ogata thinning with the exact bound, for the process after a history.
 *
 * The intensity of an exponential Hawkes process only decays between events,
 * so the total intensity just after the current point bounds it until the
 * next acceptance.  lamp_hawkes_sample_next draws n_samples independent next
 * events after time t_start (>= the last history time) given the history;
 * lamp_hawkes_simulate draws a whole sequence on [0, end_time] (at most
 * max_events; *n_out is the count, and LAMP_EVALUE is returned when the cap is
 * hit).  Both are reproducible from `seed`. */
int lamp_hawkes_sample_next(const double *times, const int64_t *marks, int64_t n, int64_t K, const double *mu,
                            const double *alpha, const double *beta, double t_start, int64_t n_samples,
                            uint64_t seed, double *out_times, int64_t *out_marks, lamp_error *err);

int lamp_hawkes_simulate(int64_t K, const double *mu, const double *alpha, const double *beta, double end_time,
                         int64_t max_events, uint64_t seed, double *out_times, int64_t *out_marks, int64_t *n_out,
                         lamp_error *err);

/* The log-likelihood summed over S sequences laid out back to back (sequence s = events
 * offsets[s] .. offsets[s+1]-1, observed on [0, end_times[s]]); gradients summed likewise
 * when non-NULL.  Empty sequences contribute only their compensator. */
int lamp_hawkes_loglik_batch(const double *times, const int64_t *marks, const int64_t *offsets, int64_t n_seq,
                             int64_t K, const double *mu, const double *alpha, const double *beta,
                             const double *end_times, double *loglik, double *dmu, double *dalpha, double *dbeta,
                             lamp_error *err);

/* The streaming floor of the benchmarks: one pass that reads every time and mark once. */
double lamp_hawkes_stream_floor(const double *times, const int64_t *marks, int64_t n);

#endif
