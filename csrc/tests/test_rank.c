#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../ranker.h"
#include "check.h"

static void test_zero_parameters_give_the_bias(void)
{
    lamp_ranker_dims dims = {3, 2, 4, 1.0};
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
    CHECK(lamp_ranker_forward_backward(&dims, params, &b, 0.0, 1, energies, &loss, grads, &err) == LAMP_OK);
    CHECK_CLOSE(energies[0], 0.25, 1e-15);
    CHECK_CLOSE(energies[1], 0.25, 1e-15);
    CHECK_CLOSE(loss, log(2.0), 1e-12);
    /* d loss / d b2 = sum over candidates (delta - p) = 1 - 1 = 0 */
    CHECK_CLOSE(grads[off[LAMP_RANKER_B2]], 0.0, 1e-15);
    int64_t bad_labels[1] = {2};
    b.labels = bad_labels;
    CHECK(lamp_ranker_forward_backward(&dims, params, &b, 0.0, 1, energies, &loss, grads, &err) == LAMP_EVALUE);
    free(params);
    free(grads);
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
    RUN(test_adam_moves_against_the_gradient);
    return CHECK_SUMMARY("test_rank");
}
