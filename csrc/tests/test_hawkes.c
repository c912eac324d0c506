#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hawkes/hawkes.h"
#include "tests/check.h"

/* One type, events at 0 and 1: closed forms of the intensity and log-likelihood. */
static void test_univariate_closed_form(void)
{
    double t[] = {0.0, 1.0}, mu[] = {0.5}, alpha[] = {0.4}, beta[] = {2.0};
    int64_t m[] = {0, 0};
    double q[] = {1.0, 2.0}, lam[2];
    lamp_error err;
    CHECK(lamp_hawkes_intensity(t, m, 2, 1, mu, alpha, beta, q, 2, lam, &err) == LAMP_OK);
    CHECK_CLOSE(lam[0], 0.5 + 0.8 * exp(-2.0), 1e-14);
    CHECK_CLOSE(lam[1], 0.5 + 0.8 * exp(-4.0) + 0.8 * exp(-2.0), 1e-14);
    double ll, dmu[1], da[1], db[1];
    CHECK(lamp_hawkes_loglik(t, m, 2, 1, mu, alpha, beta, 3.0, &ll, dmu, da, db, &err) == LAMP_OK);
    double expected = log(0.5) + log(0.5 + 0.8 * exp(-2.0)) - 1.5 - 0.4 * (1 - exp(-6.0)) - 0.4 * (1 - exp(-4.0));
    CHECK_CLOSE(ll, expected, 1e-13);
    CHECK_CLOSE(dmu[0], 1 / 0.5 + 1 / (0.5 + 0.8 * exp(-2.0)) - 3.0, 1e-12);
}

static void test_bad_input(void)
{
    double t[] = {1.0, 0.5}, mu[] = {0.5}, alpha[] = {0.4}, beta[] = {2.0}, ll;
    int64_t m[] = {0, 0};
    lamp_error err;
    CHECK(lamp_hawkes_loglik(t, m, 2, 1, mu, alpha, beta, 3.0, &ll, NULL, NULL, NULL, &err) == LAMP_EVALUE);
    CHECK(strstr(err.message, "sorted") != NULL);
    double t2[] = {0.5, 1.0}, bad_beta[] = {0.0};
    CHECK(lamp_hawkes_loglik(t2, m, 2, 1, mu, alpha, bad_beta, 3.0, &ll, NULL, NULL, NULL, &err) == LAMP_EVALUE);
    CHECK(lamp_hawkes_loglik(t2, m, 2, 1, mu, alpha, beta, 0.7, &ll, NULL, NULL, NULL, &err) == LAMP_EVALUE);
}

static void test_long_sequence_is_stable(void)
{
    enum { N = 100000, K = 3 };
    double *t = malloc(N * sizeof *t);
    int64_t *m = malloc(N * sizeof *m);
    for (int i = 0; i < N; i++) {
        t[i] = 0.01 * i;
        m[i] = i % K;
    }
    double mu[K] = {0.3, 0.3, 0.3}, alpha[K * K], beta[K * K], ll;
    for (int i = 0; i < K * K; i++) {
        alpha[i] = 0.1;
        beta[i] = 1.0 + i;
    }
    lamp_error err;
    CHECK(lamp_hawkes_loglik(t, m, N, K, mu, alpha, beta, t[N - 1], &ll, NULL, NULL, NULL, &err) == LAMP_OK);
    CHECK(isfinite(ll));
    free(t);
    free(m);
}

/* The one-type fast path (8 lanes of events, hawkes_one.c) against the general uniform-decay
 * path, reached through an equivalent two-type model (type 1 never occurs and excites nothing).
 * Lengths cover one partial block, lanes shorter than 8 steps, full blocks and a tail of < 8. */
static void check_one_type_against_two(const double *t, int64_t n, double mu, double alpha, double beta,
                                       double end, int expect_fast)
{
    int64_t *m = calloc((size_t)n, sizeof *m);
    double ll1, g1[3], ll2, dmu2[2], da2[4], db2[4];
    lamp_error err;
    double mu2[2] = {mu, 0.0}, a2[4] = {alpha, 0.0, 0.0, 0.0}, b2[4] = {beta, beta, beta, beta};
    CHECK(lamp_hawkes_loglik(t, m, n, 2, mu2, a2, b2, end, &ll2, dmu2, da2, db2, &err) == LAMP_OK);
    for (int width = 2; width <= 8; width *= 2) { /* every width this CPU runs */
        int fast = lamp_hawkes_loglik_one_width(width, t, m, n, mu, alpha, beta, end, &ll1, &g1[0], &g1[1], &g1[2]);
        if (fast < 0)
            continue;
        CHECK(fast == expect_fast);
        if (!fast)
            CHECK(lamp_hawkes_loglik(t, m, n, 1, &mu, &alpha, &beta, end, &ll1, &g1[0], &g1[1], &g1[2], &err) ==
                  LAMP_OK);
        CHECK_CLOSE(ll1, ll2, 1e-12);
        CHECK_CLOSE(g1[0], dmu2[0], 1e-11);
        CHECK_CLOSE(g1[1], da2[0], 1e-11);
        CHECK_CLOSE(g1[2], db2[0] + db2[1] + db2[2] + db2[3], 1e-10);
    }
    free(m);
}

static void test_one_type_fast_path(void)
{
    const int64_t lengths[] = {16, 17, 23, 100, 1031, 1032, 1033, 1039, 5000, 20000, 20003};
    uint64_t s = 99;
    for (size_t c = 0; c < sizeof lengths / sizeof *lengths; c++) {
        int64_t n = lengths[c];
        double *t = malloc((size_t)n * sizeof *t), now = 0.0;
        for (int64_t i = 0; i < n; i++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            now += 1e-6 + 2.0 * (double)(s >> 11) * 0x1.0p-53;
            t[i] = now;
        }
        check_one_type_against_two(t, n, 0.4, 0.7, 1.3, now + 0.5, 1);
        /* decays far below 1e-308 between events (exp argument < -708) */
        check_one_type_against_two(t, n, 0.4, 0.7, 900.0, now + 0.5, 1);
        /* ties need the grouped left limits of the general path */
        t[n / 2] = t[n / 2 - 1];
        check_one_type_against_two(t, n, 0.4, 0.7, 1.3, now + 0.5, 0);
        free(t);
    }
}

int main(void)
{
    RUN(test_one_type_fast_path);
    RUN(test_univariate_closed_form);
    RUN(test_bad_input);
    RUN(test_long_sequence_is_stable);
    return CHECK_SUMMARY("test_hawkes");
}
