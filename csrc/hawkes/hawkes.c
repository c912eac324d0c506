#include "hawkes/hawkes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "common/vmath.h"

int lamp_hawkes_check(const double *times, const int64_t *marks, int64_t n, int64_t K, const double *mu,
                      const double *alpha, const double *beta, double end_time, lamp_error *err)
{
    if (K < 1)
        return lamp_error_set(err, LAMP_EVALUE, "the number of types must be at least 1");
    double mu_sum = 0.0;
    for (int64_t k = 0; k < K; k++) {
        if (!(mu[k] >= 0.0) || !isfinite(mu[k]))
            return lamp_error_set(err, LAMP_EVALUE, "mu[%lld] = %g; mu must be finite and >= 0", (long long)k, mu[k]);
        mu_sum += mu[k];
    }
    for (int64_t i = 0; i < K * K; i++) {
        if (!(alpha[i] >= 0.0) || !isfinite(alpha[i]))
            return lamp_error_set(err, LAMP_EVALUE, "alpha[%lld, %lld] = %g; alpha must be finite and >= 0",
                                  (long long)(i / K), (long long)(i % K), alpha[i]);
        if (!(beta[i] > 0.0) || !isfinite(beta[i]))
            return lamp_error_set(err, LAMP_EVALUE, "beta[%lld, %lld] = %g; beta must be finite and > 0",
                                  (long long)(i / K), (long long)(i % K), beta[i]);
    }
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(times[i]))
            return lamp_error_set(err, LAMP_EVALUE, "times[%lld] = %g is not finite", (long long)i, times[i]);
        if (i > 0 && times[i] < times[i - 1])
            return lamp_error_set(err, LAMP_EVALUE, "times[%lld] = %.17g is before times[%lld] = %.17g (times must be "
                                  "sorted)", (long long)i, times[i], (long long)(i - 1), times[i - 1]);
        if (marks[i] < 0 || marks[i] >= K)
            return lamp_error_set(err, LAMP_EVALUE, "marks[%lld] = %lld is outside [0, %lld)", (long long)i,
                                  (long long)marks[i], (long long)K);
    }
    if (!isfinite(end_time) || (n > 0 && end_time < times[n - 1]))
        return lamp_error_set(err, LAMP_EVALUE, "end_time = %g must be finite and not before the last event (%g)",
                              end_time, n > 0 ? times[n - 1] : 0.0);
    (void)mu_sum;
    return LAMP_OK;
}

/* Brings column j of the pair states to time t: S (and D when given) decay by exp(-b_k dt), where
 * b_k = bcol[k * bstride] is beta[k][j] (bcol = beta + j, bstride = K; or a row of beta transposed,
 * stride 1).  With scratch (arg, decay: K entries each) the K exps are computed together by
 * lamp_vexp; without, one by one by libm (intensity and sampling keep libm's values). */
static void bring_column(int64_t K, int64_t j, double t, const double *bcol, int64_t bstride, double *S, double *D,
                         double *last, double *arg, double *decay)
{
    double dt = t - last[j];
    if (dt == 0.0)
        return;
    if (arg) {
        for (int64_t k = 0; k < K; k++)
            arg[k] = -bcol[k * bstride] * dt;
        lamp_vexp(arg, decay, K);
    }
    for (int64_t k = 0; k < K; k++) {
        double e = arg ? decay[k] : exp(-bcol[k * bstride] * dt);
        if (D)
            D[k * K + j] = e * (D[k * K + j] + dt * S[k * K + j]);
        S[k * K + j] *= e;
    }
    last[j] = t;
}

int lamp_hawkes_intensity(const double *times, const int64_t *marks, int64_t n, int64_t K, const double *mu,
                          const double *alpha, const double *beta, const double *query_times, int64_t q,
                          double *intensity, lamp_error *err)
{
    double end = n > 0 ? times[n - 1] : 0.0;
    int rc = lamp_hawkes_check(times, marks, n, K, mu, alpha, beta, end, err);
    if (rc != LAMP_OK)
        return rc;
    for (int64_t i = 0; i < q; i++)
        if (!isfinite(query_times[i]))
            return lamp_error_set(err, LAMP_EVALUE, "query_times[%lld] is not finite", (long long)i);
    double *S = calloc((size_t)(K * K), sizeof(double));
    double *last = calloc((size_t)K, sizeof(double));
    int64_t *order = malloc((size_t)(q > 0 ? q : 1) * sizeof(int64_t));
    if (!S || !last || !order) {
        free(S);
        free(last);
        free(order);
        return lamp_error_set(err, LAMP_ENOMEM, "out of memory");
    }
    /* queries in time order (insertion sort on indices is enough for typical sizes; use a merge for big q) */
    for (int64_t i = 0; i < q; i++)
        order[i] = i;
    for (int64_t width = 1; width < q; width *= 2) {
        int64_t *tmp = malloc((size_t)q * sizeof(int64_t));
        if (!tmp) {
            free(S);
            free(last);
            free(order);
            return lamp_error_set(err, LAMP_ENOMEM, "out of memory");
        }
        for (int64_t lo = 0; lo < q; lo += 2 * width) {
            int64_t mid = lo + width < q ? lo + width : q, hi = lo + 2 * width < q ? lo + 2 * width : q;
            int64_t a = lo, b = mid, o = lo;
            while (a < mid && b < hi)
                tmp[o++] = query_times[order[a]] <= query_times[order[b]] ? order[a++] : order[b++];
            while (a < mid)
                tmp[o++] = order[a++];
            while (b < hi)
                tmp[o++] = order[b++];
        }
        memcpy(order, tmp, (size_t)q * sizeof(int64_t));
        free(tmp);
    }
    int64_t next = 0;
    for (int64_t qi = 0; qi < q; qi++) {
        int64_t which = order[qi];
        double t = query_times[which];
        while (next < n && times[next] < t) {
            int64_t c = marks[next];
            bring_column(K, c, times[next], beta + c, K, S, NULL, last, NULL, NULL);
            for (int64_t k = 0; k < K; k++)
                S[k * K + c] += 1.0;
            next++;
        }
        double *out = intensity + which * K;
        for (int64_t k = 0; k < K; k++) {
            double lam = mu[k];
            for (int64_t j = 0; j < K; j++) {
                double b = beta[k * K + j];
                lam += alpha[k * K + j] * b * S[k * K + j] * exp(-b * (t - last[j]));
            }
            out[k] = lam;
        }
    }
    free(S);
    free(last);
    free(order);
    return LAMP_OK;
}

static int zero_intensity(lamp_error *err, int64_t e, int64_t c)
{
    return lamp_error_set(err, LAMP_EVALUE,
                          "the intensity of event %lld (type %lld) is zero: the log-likelihood is -inf "
                          "(give mu[%lld] a positive value)", (long long)e, (long long)c, (long long)c);
}

/* One decay for every pair (a scalar beta, or a K x K beta with equal entries): every type's state
 * decays by the same factor, so the states are K-vectors kept at the current time with one exp per
 * distinct event time, instead of K x K lazily decayed pairs with K exps per event.  Per event:
 * one exp, one log and about 5K multiply-adds.  s[j] = sum over past type-j events of
 * exp(-b (t - t_l)); d[j] = sum of (t - t_l) exp(-b (t - t_l)), the derivative state for beta. */
static int loglik_uniform_decay(const double *times, const int64_t *marks, int64_t n, int64_t K, const double *mu,
                                const double *alpha, double b, double end_time, double *loglik, double *dmu,
                                double *dalpha, double *dbeta, lamp_error *err)
{
    int grads = dmu && dalpha && dbeta, rc = LAMP_OK;
    double *s = calloc((size_t)K, sizeof(double));
    double *d = calloc((size_t)K, sizeof(double));
    double *count = calloc((size_t)K, sizeof(double));
    if (!s || !d || !count) {
        rc = lamp_error_set(err, LAMP_ENOMEM, "out of memory");
        goto finally;
    }
    if (grads) {
        memset(dmu, 0, (size_t)K * sizeof(double));
        memset(dalpha, 0, (size_t)(K * K) * sizeof(double));
        memset(dbeta, 0, (size_t)(K * K) * sizeof(double));
    }
    double total = 0.0, now = 0.0;
    /* the decay factors of CHUNK events at a time by lamp_vexp (the one of a group's first event
     * is the group's); the sum of log lambda as ln 2 x the binary exponents + log of the product
     * of the mantissas (renormalised every 512 events) */
    enum { CHUNK = 512 };
    double arg[CHUNK], decay[CHUNK], mprod = 1.0, expo = 0.0;
    int64_t chunk0 = 0, chunk1 = 0, since = 0;
    for (int64_t i = 0; i < n;) {
        double t = times[i];
        int64_t g = i;
        while (g < n && times[g] == t)
            g++;
        double dt = t - now;
        if (dt != 0.0) {
            if (i >= chunk1) {
                chunk0 = i;
                chunk1 = i + CHUNK < n ? i + CHUNK : n;
                for (int64_t k = chunk0; k < chunk1; k++)
                    arg[k - chunk0] = -b * (times[k] - (k > 0 ? times[k - 1] : 0.0));
                lamp_vexp(arg, decay, chunk1 - chunk0);
            }
            double e = decay[i - chunk0]; /* exp(-b (t - now)): now is the previous event's time */
            for (int64_t j = 0; j < K; j++) {
                d[j] = e * (d[j] + dt * s[j]);
                s[j] *= e;
            }
            now = t;
        }
        /* intensities of the whole group before any of it enters the history */
        for (int64_t e = i; e < g; e++) {
            int64_t c = marks[e];
            const double *arow = alpha + c * K;
            double excite = 0.0;
            for (int64_t j = 0; j < K; j++)
                excite += arow[j] * s[j];
            double lam = mu[c] + b * excite;
            if (!(lam > 0.0)) {
                rc = zero_intensity(err, e, c);
                goto finally;
            }
            if (lam >= 0x1p-1022 && lam <= 0x1.fffffffffffffp1023) {
                double ex;
                mprod *= lamp_frexp1(lam, &ex);
                expo += ex;
                if (++since == 512) {
                    mprod = lamp_frexp1(mprod, &ex);
                    expo += ex;
                    since = 0;
                }
            } else {
                total += log(lam); /* subnormal or infinite: libm */
            }
            if (grads) {
                double inv = 1.0 / lam;
                dmu[c] += inv;
                double *da = dalpha + c * K, *db = dbeta + c * K;
                for (int64_t j = 0; j < K; j++) {
                    da[j] += b * s[j] * inv;
                    db[j] += arow[j] * (s[j] - b * d[j]) * inv;
                }
            }
        }
        for (int64_t e = i; e < g; e++) {
            s[marks[e]] += 1.0;
            count[marks[e]] += 1.0;
        }
        i = g;
    }
    total += expo * 0x1.62e42fefa39efp-1 + log(mprod);
    double dt = end_time - now, e = exp(-b * dt);
    for (int64_t j = 0; j < K; j++) {
        d[j] = e * (d[j] + dt * s[j]);
        s[j] *= e;
    }
    for (int64_t k = 0; k < K; k++) {
        double compensator = mu[k] * end_time;
        for (int64_t j = 0; j < K; j++) {
            compensator += alpha[k * K + j] * (count[j] - s[j]);
            if (grads) {
                dalpha[k * K + j] -= count[j] - s[j];
                dbeta[k * K + j] -= alpha[k * K + j] * d[j];
            }
        }
        total -= compensator;
        if (grads)
            dmu[k] -= end_time;
    }
    *loglik = total;
finally:
    free(s);
    free(d);
    free(count);
    return rc;
}

int lamp_hawkes_loglik(const double *times, const int64_t *marks, int64_t n, int64_t K, const double *mu,
                       const double *alpha, const double *beta, double end_time, double *loglik, double *dmu,
                       double *dalpha, double *dbeta, lamp_error *err)
{
    if (K == 1 && lamp_hawkes_loglik_one(times, marks, n, mu[0], alpha[0], beta[0], end_time, loglik, dmu, dalpha,
                                         dbeta))
        return LAMP_OK;
    {
        int uniform = K > 0;
        for (int64_t p = 1; p < K * K && uniform; p++)
            uniform = beta[p] == beta[0];
        if (uniform) {
            int rc0 = lamp_hawkes_check(times, marks, n, K, mu, alpha, beta, end_time, err);
            if (rc0 != LAMP_OK)
                return rc0;
            return loglik_uniform_decay(times, marks, n, K, mu, alpha, beta[0], end_time, loglik, dmu, dalpha,
                                        dbeta, err);
        }
    }
    int rc = lamp_hawkes_check(times, marks, n, K, mu, alpha, beta, end_time, err);
    if (rc != LAMP_OK)
        return rc;
    int grads = dmu && dalpha && dbeta;
    /* the K exps an event needs (its row of pairs; the column it updates) are computed together
     * by lamp_vexp into the scratch arrays gap, arg and decay; betaT is beta transposed, so that the
     * decays of a column are read as a row */
    double *S = calloc((size_t)(K * K), sizeof(double));
    double *D = grads ? calloc((size_t)(K * K), sizeof(double)) : NULL;
    double *last = calloc((size_t)K, sizeof(double));
    double *count = calloc((size_t)K, sizeof(double));
    double *betaT = malloc(sizeof(double) * (size_t)(K * K));
    double *gap = malloc(sizeof(double) * (size_t)K), *decay = malloc(sizeof(double) * (size_t)K);
    double *arg = malloc(sizeof(double) * (size_t)K);
    if (!S || !last || !count || (grads && !D) || !betaT || !gap || !decay || !arg) {
        rc = lamp_error_set(err, LAMP_ENOMEM, "out of memory");
        goto finally;
    }
    for (int64_t k = 0; k < K; k++)
        for (int64_t j = 0; j < K; j++)
            betaT[j * K + k] = beta[k * K + j];
    if (grads) {
        memset(dmu, 0, (size_t)K * sizeof(double));
        memset(dalpha, 0, (size_t)(K * K) * sizeof(double));
        memset(dbeta, 0, (size_t)(K * K) * sizeof(double));
    }
    double total = 0.0;
    for (int64_t i = 0; i < n;) {
        double t = times[i];
        int64_t g = i;
        while (g < n && times[g] == t)
            g++;
        /* intensities of the whole group before any of it enters the history */
        for (int64_t e = i; e < g; e++) {
            int64_t c = marks[e];
            const double *brow = beta + c * K, *arow = alpha + c * K, *Srow = S + c * K;
            for (int64_t j = 0; j < K; j++) {
                gap[j] = t - last[j];
                arg[j] = -brow[j] * gap[j];
            }
            lamp_vexp(arg, decay, K);
            double lam = mu[c];
            for (int64_t j = 0; j < K; j++)
                lam += arow[j] * brow[j] * Srow[j] * decay[j];
            if (!(lam > 0.0)) {
                rc = zero_intensity(err, e, c);
                goto finally;
            }
            total += log(lam);
            if (grads) {
                const double *Drow = D + c * K;
                double inv = 1.0 / lam;
                dmu[c] += inv;
                for (int64_t j = 0; j < K; j++) {
                    double b = brow[j], s = Srow[j] * decay[j];
                    double d = decay[j] * (Drow[j] + gap[j] * Srow[j]);
                    dalpha[c * K + j] += b * s * inv;
                    dbeta[c * K + j] += arow[j] * (s - b * d) * inv;
                }
            }
        }
        for (int64_t e = i; e < g; e++) {
            int64_t c = marks[e];
            bring_column(K, c, t, betaT + c * K, 1, S, D, last, arg, decay);
            for (int64_t k = 0; k < K; k++)
                S[k * K + c] += 1.0;
            count[c] += 1.0;
        }
        i = g;
    }
    for (int64_t k = 0; k < K; k++) {
        double compensator = mu[k] * end_time;
        const double *brow = beta + k * K;
        for (int64_t j = 0; j < K; j++) {
            gap[j] = end_time - last[j];
            arg[j] = -brow[j] * gap[j];
        }
        lamp_vexp(arg, decay, K);
        for (int64_t j = 0; j < K; j++) {
            double s = S[k * K + j] * decay[j];
            compensator += alpha[k * K + j] * (count[j] - s);
            if (grads) {
                double d = decay[j] * (D[k * K + j] + gap[j] * S[k * K + j]);
                dalpha[k * K + j] -= count[j] - s;
                dbeta[k * K + j] -= alpha[k * K + j] * d;
            }
        }
        total -= compensator;
        if (grads)
            dmu[k] -= end_time;
    }
    *loglik = total;
finally:
    free(S);
    free(D);
    free(last);
    free(count);
    free(betaT);
    free(gap);
    free(decay);
    free(arg);
    return rc;
}

/* Intensities at time t of a state S (K x K, all entries at time t0). */
static double intensities_at(int64_t K, const double *mu, const double *alpha, const double *beta, const double *S,
                             double dt, double *lam)
{
    double total = 0.0;
    for (int64_t k = 0; k < K; k++) {
        double v = mu[k];
        for (int64_t j = 0; j < K; j++) {
            double b = beta[k * K + j];
            v += alpha[k * K + j] * b * S[k * K + j] * exp(-b * dt);
        }
        lam[k] = v;
        total += v;
    }
    return total;
}

/* One thinning draw after time t0 from state S (entries at t0): the next time and mark. */
static int next_event(int64_t K, const double *mu, const double *alpha, const double *beta, const double *S, double t0,
                      double horizon, uint64_t *rng, double *lam, double *out_t, int64_t *out_k)
{
    double t = t0, bound = intensities_at(K, mu, alpha, beta, S, 0.0, lam);
    if (!(bound > 0.0))
        return 0; /* nothing ever happens */
    for (;;) {
        t += -log(lamp_rng_uniform_open(rng)) / bound;
        if (t > horizon)
            return 0;
        double total = intensities_at(K, mu, alpha, beta, S, t - t0, lam);
        if (lamp_rng_uniform_open(rng) * bound <= total) {
            double u = lamp_rng_uniform_open(rng) * total, acc = 0.0;
            int64_t k = 0;
            for (; k < K - 1; k++) {
                acc += lam[k];
                if (u <= acc)
                    break;
            }
            *out_t = t;
            *out_k = k;
            return 1;
        }
        bound = total; /* the intensity only decays until the next event */
    }
}

int lamp_hawkes_sample_next(const double *times, const int64_t *marks, int64_t n, int64_t K, const double *mu,
                            const double *alpha, const double *beta, double t_start, int64_t n_samples,
                            uint64_t seed, double *out_times, int64_t *out_marks, lamp_error *err)
{
    int rc = lamp_hawkes_check(times, marks, n, K, mu, alpha, beta, t_start, err);
    if (rc != LAMP_OK)
        return rc;
    double mu_total = 0.0;
    for (int64_t k = 0; k < K; k++)
        mu_total += mu[k];
    if (!(mu_total > 0.0))
        return lamp_error_set(err, LAMP_EVALUE, "sampling needs sum(mu) > 0 (else the process may never fire)");
    double *S = calloc((size_t)(K * K), sizeof(double)), *last = calloc((size_t)K, sizeof(double));
    double *lam = malloc((size_t)K * sizeof(double));
    if (!S || !last || !lam) {
        rc = lamp_error_set(err, LAMP_ENOMEM, "out of memory");
        goto finally;
    }
    for (int64_t i = 0; i < n; i++) {
        bring_column(K, marks[i], times[i], beta + marks[i], K, S, NULL, last, NULL, NULL);
        for (int64_t k = 0; k < K; k++)
            S[k * K + marks[i]] += 1.0;
    }
    for (int64_t j = 0; j < K; j++)
        bring_column(K, j, t_start, beta + j, K, S, NULL, last, NULL, NULL);
    uint64_t rng = seed;
    for (int64_t s = 0; s < n_samples; s++)
        if (!next_event(K, mu, alpha, beta, S, t_start, INFINITY, &rng, lam, &out_times[s], &out_marks[s])) {
            rc = lamp_error_set(err, LAMP_ERUNTIME, "thinning failed to produce an event");
            goto finally;
        }
finally:
    free(S);
    free(last);
    free(lam);
    return rc;
}

int lamp_hawkes_simulate(int64_t K, const double *mu, const double *alpha, const double *beta, double end_time,
                         int64_t max_events, uint64_t seed, double *out_times, int64_t *out_marks, int64_t *n_out,
                         lamp_error *err)
{
    *n_out = 0;
    int rc = lamp_hawkes_check(NULL, NULL, 0, K, mu, alpha, beta, end_time, err);
    if (rc != LAMP_OK)
        return rc;
    if (!(end_time >= 0.0))
        return lamp_error_set(err, LAMP_EVALUE, "end_time must be >= 0");
    double *S = calloc((size_t)(K * K), sizeof(double)), *lam = malloc((size_t)K * sizeof(double));
    if (!S || !lam) {
        free(S);
        free(lam);
        return lamp_error_set(err, LAMP_ENOMEM, "out of memory");
    }
    uint64_t rng = seed;
    double t = 0.0;
    int64_t count = 0;
    for (;;) {
        double tn;
        int64_t kn;
        if (!next_event(K, mu, alpha, beta, S, t, end_time, &rng, lam, &tn, &kn))
            break;
        if (count == max_events) {
            rc = lamp_error_set(err, LAMP_EVALUE, "more than max_events=%lld events before end_time (explosive "
                                "parameters? the spectral radius of alpha must be < 1)", (long long)max_events);
            break;
        }
        for (int64_t i = 0; i < K * K; i++)
            S[i] *= exp(-beta[i] * (tn - t));
        for (int64_t k = 0; k < K; k++)
            S[k * K + kn] += 1.0;
        t = tn;
        out_times[count] = tn;
        out_marks[count] = kn;
        count++;
    }
    *n_out = count;
    free(S);
    free(lam);
    return rc;
}

int lamp_hawkes_loglik_batch(const double *times, const int64_t *marks, const int64_t *offsets, int64_t n_seq,
                             int64_t K, const double *mu, const double *alpha, const double *beta,
                             const double *end_times, double *loglik, double *dmu, double *dalpha, double *dbeta,
                             lamp_error *err)
{
    int grads = dmu && dalpha && dbeta;
    double *g = grads ? malloc(sizeof(double) * (size_t)(K + 2 * K * K)) : NULL;
    if (grads && !g)
        return lamp_error_set(err, LAMP_ENOMEM, "out of memory");
    if (grads) {
        memset(dmu, 0, sizeof(double) * (size_t)K);
        memset(dalpha, 0, sizeof(double) * (size_t)(K * K));
        memset(dbeta, 0, sizeof(double) * (size_t)(K * K));
    }
    double total = 0.0;
    int rc = LAMP_OK;
    for (int64_t s = 0; s < n_seq; s++) {
        int64_t b = offsets[s], e = offsets[s + 1];
        if (e < b) {
            rc = lamp_error_set(err, LAMP_EVALUE, "offsets must be non-decreasing (sequence %lld)", (long long)s);
            break;
        }
        double ll;
        rc = lamp_hawkes_loglik(times + b, marks + b, e - b, K, mu, alpha, beta, end_times[s], &ll,
                                grads ? g : NULL, grads ? g + K : NULL, grads ? g + K + K * K : NULL, err);
        if (rc != LAMP_OK) {
            char context[sizeof err->message];
            memcpy(context, err->message, sizeof context);
            context[sizeof context - 40] = '\0'; /* leave room for the prefix */
            lamp_error_set(err, rc, "sequence %lld: %s", (long long)s, context);
            break;
        }
        total += ll;
        for (int64_t i = 0; grads && i < K; i++)
            dmu[i] += g[i];
        for (int64_t i = 0; grads && i < K * K; i++) {
            dalpha[i] += g[K + i];
            dbeta[i] += g[K + K * K + i];
        }
    }
    free(g);
    if (rc == LAMP_OK)
        *loglik = total;
    return rc;
}

double lamp_hawkes_stream_floor(const double *times, const int64_t *marks, int64_t n)
{
    double acc = 0.0;
    for (int64_t i = 0; i < n; i++)
        acc += times[i] * (double)(marks[i] + 1);
    return acc;
}
