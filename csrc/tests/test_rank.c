#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ranker/ranker.h"
#include "tests/check.h"

static void test_zero_parameters_give_the_bias(void)
{
    lamp_ranker_dims dims = {3, 2, 4, 1.0, 1, 0, 0, 0};
    int64_t off[LAMP_RANKER_NUM_BLOCKS + 1];
    lamp_ranker_layout(&dims, off);
    double *params = calloc((size_t)off[LAMP_RANKER_NUM_BLOCKS], sizeof(double));
    params[off[LAMP_RANKER_B2]] = 0.25;
    int64_t ev[2 * 2 * 3] = {0, 1, 2, -1, -1, -1, 1, 0, 1, 2, 1, 0};
    double evt[4] = {0.0, 0.0, 1.0, 2.0};
    int64_t cand[2 * 3] = {0, 0, 1, 2, 1, 0};
    double ct[2] = {3.0, 3.0};
    int64_t labels[1] = {1};
    lamp_ranker_batch b = {ev, evt, cand, ct, NULL, labels, 1, 2, 2, NULL};
    double energies[2], loss, *grads = calloc((size_t)off[LAMP_RANKER_NUM_BLOCKS], sizeof(double));
    lamp_error err;
    CHECK(lamp_ranker_forward_backward(&dims, params, &b, LAMP_RANKER_SOFTMAX, 0.0, 1, energies, &loss, grads,
                                       &err) == LAMP_OK);
    CHECK_CLOSE(energies[0], 0.25, 1e-15);
    CHECK_CLOSE(energies[1], 0.25, 1e-15);
    CHECK_CLOSE(loss, log(2.0), 1e-12);
    /* d loss / d b2 = sum over candidates (delta - p) = 1 - 1 = 0 */
    CHECK_CLOSE(grads[off[LAMP_RANKER_B2]], 0.0, 1e-15);
    int64_t bad_labels[1] = {2};
    b.labels = bad_labels;
    CHECK(lamp_ranker_forward_backward(&dims, params, &b, LAMP_RANKER_SOFTMAX, 0.0, 1, energies, &loss, grads,
                                       &err) == LAMP_EVALUE);
    free(params);
    free(grads);
}

/* params[0 .. n): a fixed pseudo-random sequence in [-0.5, 0.5) from `state`. */
static void random_params(double *params, int64_t n, uint64_t state)
{
    for (int64_t i = 0; i < n; i++) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        params[i] = ((double)(state >> 11) * 0x1.0p-53 - 0.5);
    }
}

/* The largest distance between grads and the central differences (step 1e-6) of the loss of batch b over
 * every one of the n parameters; energies is scratch for the batch's energies. */
static double worst_gradient_error(const lamp_ranker_dims *dims, double *params, int64_t n, const lamp_ranker_batch *b,
                                   int loss_kind, const double *grads, double *energies)
{
    double worst = 0.0, lp, lm;
    lamp_error err;
    for (int64_t i = 0; i < n; i++) {
        double keep = params[i];
        params[i] = keep + 1e-6;
        lamp_ranker_forward_backward(dims, params, b, loss_kind, 0.0, 1, energies, &lp, NULL, &err);
        params[i] = keep - 1e-6;
        lamp_ranker_forward_backward(dims, params, b, loss_kind, 0.0, 1, energies, &lm, NULL, &err);
        params[i] = keep;
        double diff = fabs((lp - lm) / 2e-6 - grads[i]);
        if (diff > worst)
            worst = diff;
    }
    return worst;
}

/* Layers and heads: every parameter's gradient against central differences, both losses, with padding. */
static void test_layers_heads_gradient(void)
{
    for (int loss_kind = 0; loss_kind < 2; loss_kind++) {
        lamp_ranker_dims dims = {3, 2, 4, 2.0, 2, 2, 0, 0};
        int64_t nb = lamp_ranker_num_blocks(&dims);
        CHECK(nb == LAMP_RANKER_NUM_BLOCKS + 2 * LAMP_RANKER_LAYER_BLOCKS);
        int64_t *off = malloc(sizeof(int64_t) * (size_t)(nb + 1));
        lamp_ranker_layout(&dims, off);
        int64_t n = off[nb];
        double *params = malloc(sizeof(double) * (size_t)n), *grads = malloc(sizeof(double) * (size_t)n);
        random_params(params, n, 7);
        /* 1 query, 2 candidates, 3 evidence slots: the first candidate has a gap, the second none */
        int64_t ev[2 * 3 * 3] = {0, 1, 2, -1, -1, -1, 2, 0, 1, -1, -1, -1, -1, -1, -1, -1, -1, -1};
        double evt[6] = {0.5, 0.0, 1.5, 0.0, 0.0, 0.0};
        int64_t cand[2 * 3] = {0, 0, 1, 2, 1, 0};
        double ct[2] = {3.0, 3.0}, prior[2] = {0.0, -0.7};
        int64_t labels[1] = {1};
        lamp_ranker_batch b = {ev, evt, cand, ct, prior, labels, 1, 2, 3, NULL};
        double energies[2], loss;
        lamp_error err;
        CHECK(lamp_ranker_forward_backward(&dims, params, &b, loss_kind, 0.0, 1, energies, &loss, grads, &err) ==
              LAMP_OK);
        CHECK(worst_gradient_error(&dims, params, n, &b, loss_kind, grads, energies) < 1e-7);
        dims.heads = 3; /* does not divide the width */
        CHECK(lamp_ranker_forward_backward(&dims, params, &b, loss_kind, 0.0, 1, energies, &loss, grads, &err) ==
              LAMP_EVALUE);
        dims.heads = 2;
        dims.layers = -1;
        CHECK(lamp_ranker_check_dims(&dims, &err) == LAMP_EVALUE);
        free(off);
        free(params);
        free(grads);
    }
}

/* A batch of several chunks on two threads (with dropout): the same bits as on one thread, float32 close
 * to float64, and nothing out of bounds (this runs under AddressSanitizer too).  Width 64 with 2 heads takes
 * the float32 path's own kernels on CPUs with AVX-512 (32-wide heads, up to 24 keys: three blocks of 8). */
static void chunks_threads_and_float32(int agree, int64_t width, int64_t heads)
{
    const int64_t Q = 12, M = 9, L = 24, A = agree ? 3 : 0;
    lamp_ranker_dims dims = {20, 5, width, 3.0, heads, 2, agree, A};
    int64_t nb = lamp_ranker_num_blocks(&dims);
    int64_t *off = malloc(sizeof(int64_t) * (size_t)(nb + 1));
    lamp_ranker_layout(&dims, off);
    int64_t n = off[nb];
    double *params = malloc(sizeof(double) * (size_t)n);
    int64_t *ev = malloc(sizeof(int64_t) * (size_t)(Q * M * L * 3)), *cand = malloc(sizeof(int64_t) * (size_t)(Q * M * 3));
    double *evt = malloc(sizeof(double) * (size_t)(Q * M * L)), *ct = malloc(sizeof(double) * (size_t)(Q * M));
    double *prior = malloc(sizeof(double) * (size_t)(Q * M));
    double *aux = agree ? malloc(sizeof(double) * (size_t)(Q * M * L * A)) : NULL;
    int64_t labels[12];
    uint64_t state = 11;
#define NEXT() (state = state * 6364136223846793005ULL + 1442695040888963407ULL, (double)(state >> 11) * 0x1.0p-53)
    for (int64_t i = 0; i < n; i++)
        params[i] = 0.6 * sqrt(8.0 / (double)width) * (NEXT() - 0.5);
    for (int64_t i = 0; i < Q * M; i++) {
        int64_t len = (int64_t)(NEXT() * (double)(L + 1)); /* 0 .. L valid events */
        for (int64_t j = 0; j < L; j++) {
            int64_t *e = ev + 3 * (i * L + j);
            e[0] = j < len ? (int64_t)(NEXT() * 20) : -1;
            e[1] = (int64_t)(NEXT() * 5), e[2] = (int64_t)(NEXT() * 20);
            evt[i * L + j] = 50.0 * NEXT();
        }
        cand[3 * i] = (int64_t)(NEXT() * 20), cand[3 * i + 1] = (int64_t)(NEXT() * 5), cand[3 * i + 2] = (int64_t)(NEXT() * 20);
        ct[i] = 60.0, prior[i] = -NEXT();
        for (int64_t j = 0; j < len; j++) /* some evidence agrees with its candidate */
            if (NEXT() < 0.2)
                memcpy(ev + 3 * (i * L + j), cand + 3 * i, 3 * sizeof(int64_t));
        for (int64_t k = 0; k < L * A; k++)
            aux[i * L * A + k] = NEXT() - 0.5;
    }
    for (int64_t q = 0; q < Q; q++)
        labels[q] = q % M;
    lamp_ranker_batch b = {ev, evt, cand, ct, prior, labels, Q, M, L, aux};
    double *e1 = malloc(sizeof(double) * (size_t)(Q * M)), *e2 = malloc(sizeof(double) * (size_t)(Q * M)),
           *e3 = malloc(sizeof(double) * (size_t)(Q * M));
    double *g1 = malloc(sizeof(double) * (size_t)n), *g2 = malloc(sizeof(double) * (size_t)n),
           *g3 = malloc(sizeof(double) * (size_t)n);
    double l1, l2, l3;
    lamp_error err;
    CHECK(lamp_ranker_forward_backward_prec(&dims, params, &b, LAMP_RANKER_SOFTMAX, 0.2, 5, LAMP_RANKER_FLOAT64, e1,
                                            &l1, g1, &err) == LAMP_OK);
    setenv("LAMP_RANKER_THREADS", "1", 1);
    CHECK(lamp_ranker_forward_backward_prec(&dims, params, &b, LAMP_RANKER_SOFTMAX, 0.2, 5, LAMP_RANKER_FLOAT64, e2,
                                            &l2, g2, &err) == LAMP_OK);
    unsetenv("LAMP_RANKER_THREADS");
    CHECK(l1 == l2);
    CHECK(memcmp(e1, e2, sizeof(double) * (size_t)(Q * M)) == 0);
    CHECK(memcmp(g1, g2, sizeof(double) * (size_t)n) == 0);
    CHECK(lamp_ranker_forward_backward_prec(&dims, params, &b, LAMP_RANKER_SOFTMAX, 0.2, 5, LAMP_RANKER_FLOAT32, e3,
                                            &l3, g3, &err) == LAMP_OK);
    double emax = 0.0, gmax = 0.0, ediff = 0.0, gdiff = 0.0;
    for (int64_t i = 0; i < Q * M; i++) {
        emax = fmax(emax, fabs(e1[i]));
        ediff = fmax(ediff, fabs(e1[i] - e3[i]));
    }
    for (int64_t i = 0; i < n; i++) {
        gmax = fmax(gmax, fabs(g1[i]));
        gdiff = fmax(gdiff, fabs(g1[i] - g3[i]));
    }
    CHECK(ediff <= 2e-5 * emax);
    CHECK(gdiff <= 2e-5 * gmax);
    CHECK_CLOSE(l3, l1, 2e-5);
    CHECK(lamp_ranker_forward_backward_prec(&dims, params, &b, LAMP_RANKER_SOFTMAX, 0.0, 5, 7, e3, &l3, g3, &err) ==
          LAMP_EVALUE);
#undef NEXT
    free(off), free(params), free(ev), free(cand), free(evt), free(ct), free(prior), free(aux);
    free(e1), free(e2), free(e3), free(g1), free(g2), free(g3);
}

/* Agreement (agree = 1, A = 2 caller-supplied features): every parameter's gradient against central differences
 * in float64, both losses, with agreeing, reversed and padding rows and a candidate without evidence; float32 close
 * to float64; the dims and id checks. */
static void test_agreement_gradient(void)
{
    for (int loss_kind = 0; loss_kind < 2; loss_kind++) {
        lamp_ranker_dims dims = {4, 3, 4, 2.0, 2, 1, 1, 2};
        int64_t nb = lamp_ranker_num_blocks(&dims);
        CHECK(nb == LAMP_RANKER_NUM_BLOCKS + LAMP_RANKER_LAYER_BLOCKS + LAMP_RANKER_AGREE_BLOCKS);
        CHECK(lamp_ranker_agree_block(&dims, LAMP_RANKER_WP) == nb - 1);
        int64_t *off = malloc(sizeof(int64_t) * (size_t)(nb + 1));
        lamp_ranker_layout(&dims, off);
        const int64_t nf = LAMP_RANKER_ID_FEATURES + 2, a0 = lamp_ranker_agree_block(&dims, 0);
        CHECK(off[a0 + 1] - off[a0] == 4 * nf && off[a0 + 2] - off[a0 + 1] == 2 * nf);
        CHECK(off[a0 + 5] - off[a0 + 4] == 4 * 3 * nf && off[nb] - off[nb - 1] == 3 * nf);
        int64_t n = off[nb];
        double *params = malloc(sizeof(double) * (size_t)n), *grads = malloc(sizeof(double) * (size_t)n);
        random_params(params, n, 5);
        /* 1 query, 3 candidates, 3 slots: the first holds itself, a gap and its reversed pair; the second an
         * unrelated event and itself; the third nothing (h = V0, p = 0) */
        int64_t ev[3 * 3 * 3] = {0, 1, 2, -1, -1, -1, 2, 0, 0, 3, 2, 1, 1, 0, 3, -1, -1, -1,
                                 -1, -1, -1, -1, -1, -1, -1, -1, -1};
        double evt[9] = {0.5, 0.0, 1.5, 2.0, 1.0, 0.0, 0.0, 0.0, 0.0};
        double aux[9 * 2] = {0.3, -1.0, NAN, NAN, 1.2, 0.4, -0.5, 2.0, 0.1, 0.9, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN};
        int64_t cand[3 * 3] = {0, 1, 2, 1, 0, 3, 2, 1, 0};
        double ct[3] = {3.0, 3.0, 3.0}, prior[3] = {0.0, -0.7, -0.2};
        int64_t labels[1] = {1};
        lamp_ranker_batch b = {ev, evt, cand, ct, prior, labels, 1, 3, 3, aux};
        double energies[3], e32[3], loss, lp;
        lamp_error err;
        CHECK(lamp_ranker_forward_backward(&dims, params, &b, loss_kind, 0.0, 1, energies, &loss, grads, &err) ==
              LAMP_OK);
        CHECK(worst_gradient_error(&dims, params, n, &b, loss_kind, grads, energies) < 1e-7);
        for (int k = 0; k < LAMP_RANKER_AGREE_BLOCKS; k++) { /* every agreement block is used */
            double g = 0.0;
            for (int64_t i = off[a0 + k]; i < off[a0 + k + 1]; i++)
                g += fabs(grads[i]);
            CHECK(g > 0.0);
        }
        CHECK(lamp_ranker_forward_backward(&dims, params, &b, loss_kind, 0.0, 1, energies, &loss, NULL, &err) ==
              LAMP_OK);
        CHECK(lamp_ranker_forward_backward_prec(&dims, params, &b, loss_kind, 0.0, 1, LAMP_RANKER_FLOAT32, e32, &lp,
                                                NULL, &err) == LAMP_OK);
        for (int i = 0; i < 3; i++)
            CHECK_CLOSE(e32[i], energies[i], 1e-5);
        b.evidence_aux = NULL; /* aux = 2 without the numbers */
        CHECK(lamp_ranker_forward_backward(&dims, params, &b, loss_kind, 0.0, 1, energies, &loss, NULL, &err) ==
              LAMP_EVALUE);
        b.evidence_aux = aux;
        aux[0] = INFINITY; /* at a valid row */
        CHECK(lamp_ranker_forward_backward(&dims, params, &b, loss_kind, 0.0, 1, energies, &loss, NULL, &err) ==
              LAMP_EVALUE);
        aux[0] = 0.3;
        ev[3] = -2; /* a negative id other than the padding -1 */
        CHECK(lamp_ranker_forward_backward(&dims, params, &b, loss_kind, 0.0, 1, energies, &loss, NULL, &err) ==
              LAMP_EVALUE);
        CHECK(strstr(err.message, "evidence[0, 0, 1, 0] = -2") != NULL);
        ev[3] = -1;
        dims.agree = 2;
        CHECK(lamp_ranker_check_dims(&dims, &err) == LAMP_EVALUE);
        dims.agree = 0; /* aux without agreement */
        CHECK(lamp_ranker_check_dims(&dims, &err) == LAMP_EVALUE);
        free(off);
        free(params);
        free(grads);
    }
}

static void test_chunks_threads_and_float32(void)
{
    chunks_threads_and_float32(0, 8, 2);
    chunks_threads_and_float32(1, 8, 2);
    chunks_threads_and_float32(0, 64, 2);
    chunks_threads_and_float32(1, 64, 2);
}

static void test_adam_moves_against_the_gradient(void)
{
    double p[2] = {1.0, -1.0}, g[2] = {0.5, -2.0}, m1[2] = {0}, m2[2] = {0};
    lamp_error err;
    CHECK(lamp_ranker_adam(p, g, m1, m2, 2, 0.1, 0.9, 0.999, 1e-8, 0.0, 0.0, 1, &err) == LAMP_OK);
    CHECK_CLOSE(p[0], 0.9, 1e-6); /* the first Adam step is lr * sign(g) */
    CHECK_CLOSE(p[1], -0.9, 1e-6);
    double bad[2] = {NAN, 0.0};
    CHECK(lamp_ranker_adam(p, bad, m1, m2, 2, 0.1, 0.9, 0.999, 1e-8, 0.0, 1.0, 2, &err) == LAMP_EVALUE);
}

int main(void)
{
    RUN(test_zero_parameters_give_the_bias);
    RUN(test_layers_heads_gradient);
    RUN(test_chunks_threads_and_float32);
    RUN(test_agreement_gradient);
    RUN(test_adam_moves_against_the_gradient);
    return CHECK_SUMMARY("test_rank");
}
