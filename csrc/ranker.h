/* The energy-based ranker: a continuous-time attention energy over evidence.
 *
 * For a candidate event (s, r, o, t) with evidence events (s_j, r_j, o_j, t_j), j < L:
 *   x_j = Ent[s_j] + Rel[r_j] + Obj[o_j] + enc(t - t_j)      (enc: fixed sinusoids of the time gap)
 *   c   = Ent[s] + Rel[r] + Obj[o]                            (the candidate's own marks)
 *   q = Wq c,  k_j = Wk x_j,  v_j = Wv x_j
 *   alpha = softmax_j(q . k_j / sqrt(d)) over valid evidence, h = sum_j alpha_j v_j  (h = 0 without evidence)
 *   u = dropout(tanh(W1 [h; c] + b1)),  energy = w2 . u + b2 + gamma * prior
 * where prior is an optional per-candidate input (the proposer's log-score,
 * 0 when absent) and gamma a learned weight, so the ranker starts from the
 * proposer's order and learns what the evidence adds.
 * The readout sees the candidate itself, so candidates with the same evidence
 * get different energies (the authors' causal mask hid it).
 *
 * Training loss per query: softmax cross-entropy over negative energies of its
 * M candidates, -log softmax(-E)[label].  Everything is float64; gradients
 * are hand-derived; the optimiser is Adam with global-norm clipping and
 * decoupled weight decay.
 */
#ifndef LAMP_RANKER_H
#define LAMP_RANKER_H

#include <stdint.h>

#include "lamp_error.h"

typedef struct {
    int64_t num_entities, num_relations, width; /* width even */
    double time_scale;                          /* time gaps are divided by this before encoding */
} lamp_ranker_dims;

enum { LAMP_RANKER_ENT, LAMP_RANKER_REL, LAMP_RANKER_OBJ, LAMP_RANKER_WQ, LAMP_RANKER_WK, LAMP_RANKER_WV,
       LAMP_RANKER_W1, LAMP_RANKER_B1, LAMP_RANKER_W2, LAMP_RANKER_B2, LAMP_RANKER_GAMMA, LAMP_RANKER_NUM_BLOCKS };

/* Offsets of the parameter blocks in the flat parameter vector (NUM_BLOCKS + 1 entries). */
void lamp_ranker_layout(const lamp_ranker_dims *dims, int64_t *offsets);

typedef struct {
    const int64_t *evidence;     /* Q x M x L x 3, -1 = padding */
    const double *evidence_times;/* Q x M x L */
    const int64_t *candidates;   /* Q x M x 3 */
    const double *candidate_times; /* Q x M */
    const double *prior;         /* Q x M, or NULL (0) */
    const int64_t *labels;       /* Q (may be NULL when no loss is wanted) */
    int64_t q, m, l;
} lamp_ranker_batch;

/* Energies of all candidates (Q x M) and, with labels, the mean loss; with
 * grads != NULL also the gradient of the mean loss (grads is overwritten).
 * dropout > 0 applies inverted dropout to u with masks drawn from seed. */
int lamp_ranker_forward_backward(const lamp_ranker_dims *dims, const double *params, const lamp_ranker_batch *b,
                                 double dropout, uint64_t seed, double *energies, double *loss, double *grads,
                                 lamp_error *err);

/* One Adam step (bias-corrected, step >= 1), after clipping the gradient's
 * global norm to clip (clip <= 0: no clipping); decoupled weight decay. */
int lamp_ranker_adam(double *params, const double *grads, double *m1, double *m2, int64_t n, double lr,
                     double beta1, double beta2, double eps, double weight_decay, double clip, int64_t step,
                     lamp_error *err);

#endif
