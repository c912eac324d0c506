#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../ranker.h"
#include "check.h"

static void test_zero_parameters_give_the_bias(void)
{
    lamp_ranker_dims dims = {3, 2, 4, 1.0, 1, 0};
    int64_t off[LAMP_RANKER_NUM_BLOCKS + 1];
    lamp_ranker_layout(&dims, off);
    double *params = calloc((size_t)off[LAMP_RANKER_NUM_BLOCKS], sizeof(double));
    params[off[LAMP_RANKER_B2]] = 0.25;
    int64_t ev[2 * 2 * 3] = {0, 1, 2, -1, -1, -1, 1, 0, 1, 2, 1, 0};
    double evt[4] = {0.0, 0.0, 1.0, 2.0};
    int64_t cand[2 * 3] = {0, 0, 1, 2, 1, 0};
    double ct[2] = {3.0, 3.0};
    int64_t labels[1] = {1};
    lamp_ranker_batch b = {ev, evt, cand, ct, NULL, labels, 1, 2, 2};
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

/* Layers and heads: every parameter's gradient against central differences, both losses, with padding. */
static void test_layers_heads_gradient(void)
{
    for (int loss_kind = 0; loss_kind < 2; loss_kind++) {
        lamp_ranker_dims dims = {3, 2, 4, 2.0, 2, 2};
        int64_t nb = lamp_ranker_num_blocks(&dims);
        CHECK(nb == LAMP_RANKER_NUM_BLOCKS + 2 * LAMP_RANKER_LAYER_BLOCKS);
        int64_t *off = malloc(sizeof(int64_t) * (size_t)(nb + 1));
        lamp_ranker_layout(&dims, off);
        int64_t n = off[nb];
        double *params = malloc(sizeof(double) * (size_t)n), *grads = malloc(sizeof(double) * (size_t)n);
        uint64_t state = 7;
        for (int64_t i = 0; i < n; i++) {
            state = state * 6364136223846793005ULL + 1442695040888963407ULL;
            params[i] = ((double)(state >> 11) * 0x1.0p-53 - 0.5);
        }
        /* 1 query, 2 candidates, 3 evidence slots: the first candidate has a gap, the second none */
        int64_t ev[2 * 3 * 3] = {0, 1, 2, -1, -1, -1, 2, 0, 1, -1, -1, -1, -1, -1, -1, -1, -1, -1};
        double evt[6] = {0.5, 0.0, 1.5, 0.0, 0.0, 0.0};
        int64_t cand[2 * 3] = {0, 0, 1, 2, 1, 0};
        double ct[2] = {3.0, 3.0}, prior[2] = {0.0, -0.7};
        int64_t labels[1] = {1};
        lamp_ranker_batch b = {ev, evt, cand, ct, prior, labels, 1, 2, 3};
        double energies[2], loss, lp, lm;
        lamp_error err;
        CHECK(lamp_ranker_forward_backward(&dims, params, &b, loss_kind, 0.0, 1, energies, &loss, grads, &err) ==
              LAMP_OK);
        double worst = 0.0;
        for (int64_t i = 0; i < n; i++) {
            double keep = params[i];
            params[i] = keep + 1e-6;
            lamp_ranker_forward_backward(&dims, params, &b, loss_kind, 0.0, 1, energies, &lp, NULL, &err);
            params[i] = keep - 1e-6;
            lamp_ranker_forward_backward(&dims, params, &b, loss_kind, 0.0, 1, energies, &lm, NULL, &err);
            params[i] = keep;
            double diff = fabs((lp - lm) / 2e-6 - grads[i]);
            if (diff > worst)
                worst = diff;
        }
        CHECK(worst < 1e-7);
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
    RUN(test_adam_moves_against_the_gradient);
    return CHECK_SUMMARY("test_rank");
}
