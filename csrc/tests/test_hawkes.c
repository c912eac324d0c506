#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../hawkes.h"
#include "check.h"

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

int main(void)
{
    RUN(test_univariate_closed_form);
    RUN(test_bad_input);
    RUN(test_long_sequence_is_stable);
    return CHECK_SUMMARY("test_hawkes");
}
