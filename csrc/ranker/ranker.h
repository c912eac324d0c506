/* The energy-based ranker: a continuous-time attention energy over evidence.
 *
 * For a candidate event (s, r, o, t) with evidence events (s_j, r_j, o_j, t_j), j < L:
 *   x_j = Ent[s_j] + Rel[r_j] + Obj[o_j] + enc(t - t_j)      (enc: fixed sinusoids of the time gap)
 *   c   = Ent[s] + Rel[r] + Obj[o]                            (the candidate's own marks)
 * The valid evidence tokens X (padding rows dropped, order kept) pass through
 * `layers` blocks, each with H = heads heads of width e = d / H:
 *   Q = X Aq^T, K = X Ak^T, V = X Av^T
 *   A_h[j, i] = softmax_{i <= j}(Q_h[j] . K_h[i] / sqrt(e)),  O_h = A_h V_h,  O = [O_1 ... O_H]
 *   Y = X + O Ao^T,   X' = Y + tanh(Y F1^T + f1) F2^T + f2
 * (token j attends to the valid tokens at or before its own position). The
 * readout is multi-head attention from the candidate over the final states x_j:
 *   q = Wq c,  k_j = Wk x_j,  v_j = Wv x_j
 *   alpha_h = softmax_j(q_h . k_hj / sqrt(e)) over valid evidence, h_h = sum_j alpha_hj v_hj  (h = 0 without evidence)
 *   u = dropout(tanh(W1 [h; c] + b1)),  energy = w2 . u + b2 + gamma * prior
 * With layers = 0 and heads = 1 this is the single attention readout of the
 * first version (same parameter layout, same energies).
 *
 * Agreement (dims.agree = 1; with agree = 0 the layout and energies are the ones above).  Each valid
 * evidence event j of a candidate (s, r, o, t) gets a fixed feature vector f_j of F = 9 + A values,
 * computed from the ids and times (no gradient flows into them):
 *   f0 [s_j = s], f1 [o_j = o], f2 [r_j = r], f3 [s_j = s and o_j = o], f4 [s_j = o and o_j = s],
 *   f5 [(s_j, r_j, o_j) = (s, r, o)], f6 [s_j = o or o_j = o], f7 [s_j = s or o_j = s],
 *   f8 log1p(max(t - t_j, 0) / time_scale),
 * then the A caller-supplied numbers evidence_aux[j] (A = dims.aux, 0 without them).  The readout becomes
 *   k_j = Wk x_j + WKF f_j
 *   logit_hj = q_h . k_hj / sqrt(e) + UB[h] . f_j,   logit_h0 = q_h . K0_h / sqrt(e)   (a null slot)
 *   alpha_h = softmax over {null} and the valid evidence,  h_h = alpha_h0 V0_h + sum_j alpha_hj v_hj
 * (so a candidate without evidence gets h = V0), and with the pooled summary
 *   p = [sum_j f_j / L, max_j f_j, f of the most recent valid event]   (3F values, 0 without evidence;
 *        L the number of evidence slots, most recent = largest t_j, ties: the later slot)
 *   u = dropout(tanh(W1 [h; c] + W1P p + b1)),  energy = w2 . u + b2 + WP . p + gamma * prior.
 * prior is an optional per-candidate input (the proposer's log-score, 0 when
 * absent) and gamma a learned weight, so the ranker starts from the
 * proposer's order and learns what the evidence adds.
 * The readout sees the candidate itself, so candidates with the same evidence
 * get different energies (the authors' causal mask hid it).
 *
 * Training loss (mean over queries):
 *   LAMP_RANKER_SOFTMAX: per query, softmax cross-entropy over negative
 *     energies of its M candidates, -log softmax(-E)[label];
 *   LAMP_RANKER_BINARY: per candidate, binary cross-entropy with logit -E and
 *     label 1 for the true candidate, 0 for the others, averaged over the
 *     candidates.
 * Parameters, energies, losses and gradients are float64 arrays; the
 * computation runs in float64 (LAMP_RANKER_FLOAT64, the finite-difference
 * checked path) or float32 (LAMP_RANKER_FLOAT32: sgemm, about twice as fast,
 * energies within ~1e-5 relative of float64).  Every dense product is one
 * BLAS-3 call over all tokens of a chunk of queries; gradients are
 * hand-derived; the optimiser is Adam with global-norm clipping and decoupled
 * weight decay.
 */
#ifndef LAMP_RANKER_H
#define LAMP_RANKER_H

#include <stdint.h>

#include "common/lamp_error.h"

typedef struct {
    int64_t num_entities, num_relations, width; /* width even */
    double time_scale;                          /* time gaps are divided by this before encoding */
    int64_t heads;                              /* >= 1, divides width */
    int64_t layers;                             /* >= 0 self-attention blocks over the evidence */
    int64_t agree;                              /* 0 or 1: the agreement features and blocks (see above) */
    int64_t aux;                                /* A >= 0 caller-supplied features per evidence event (agree = 1) */
} lamp_ranker_dims;

/* The 9 agreement features computed from ids and times (before the A caller-supplied ones). */
#define LAMP_RANKER_ID_FEATURES 9

enum { LAMP_RANKER_SOFTMAX = 0, LAMP_RANKER_BINARY = 1 };

/* The readout's blocks come first (the layout of layers = 0), then each layer's blocks. */
enum { LAMP_RANKER_ENT, LAMP_RANKER_REL, LAMP_RANKER_OBJ, LAMP_RANKER_WQ, LAMP_RANKER_WK, LAMP_RANKER_WV,
       LAMP_RANKER_W1, LAMP_RANKER_B1, LAMP_RANKER_W2, LAMP_RANKER_B2, LAMP_RANKER_GAMMA, LAMP_RANKER_NUM_BLOCKS };

/* Blocks of layer l start at LAMP_RANKER_NUM_BLOCKS + l * LAMP_RANKER_LAYER_BLOCKS:
 * Aq, Ak, Av, Ao, F1 (d x d each), f1 (d), F2 (d x d), f2 (d). */
enum { LAMP_RANKER_AQ, LAMP_RANKER_AK, LAMP_RANKER_AV, LAMP_RANKER_AO, LAMP_RANKER_F1, LAMP_RANKER_FB1,
       LAMP_RANKER_F2, LAMP_RANKER_FB2, LAMP_RANKER_LAYER_BLOCKS };

/* With agree = 1 the agreement blocks follow the last layer's, starting at lamp_ranker_agree_block(dims, 0):
 * WKF (d x F), UB (heads x F), K0 (d), V0 (d), W1P (d x 3F), WP (3F); F = 9 + aux. */
enum { LAMP_RANKER_WKF, LAMP_RANKER_UB, LAMP_RANKER_K0, LAMP_RANKER_V0, LAMP_RANKER_W1P, LAMP_RANKER_WP,
       LAMP_RANKER_AGREE_BLOCKS };

/* Index of agreement block k (LAMP_RANKER_WKF ...) in the layout (meaningful with agree = 1). */
int64_t lamp_ranker_agree_block(const lamp_ranker_dims *dims, int k);

/* Number of parameter blocks: LAMP_RANKER_NUM_BLOCKS + layers * LAMP_RANKER_LAYER_BLOCKS
 * (+ LAMP_RANKER_AGREE_BLOCKS with agree = 1). */
int64_t lamp_ranker_num_blocks(const lamp_ranker_dims *dims);

/* Offsets of the parameter blocks in the flat parameter vector (num_blocks + 1 entries). */
void lamp_ranker_layout(const lamp_ranker_dims *dims, int64_t *offsets);

/* LAMP_OK when the dimensions are usable (width even >= 2, heads >= 1 dividing width, layers >= 0,
 * agree 0 or 1, aux >= 0 and 0 without agree, ...). */
int lamp_ranker_check_dims(const lamp_ranker_dims *dims, lamp_error *err);

typedef struct {
    const int64_t *evidence;     /* Q x M x L x 3; subject -1 = padding (no other negative id) */
    const double *evidence_times;/* Q x M x L */
    const int64_t *candidates;   /* Q x M x 3 */
    const double *candidate_times; /* Q x M */
    const double *prior;         /* Q x M, or NULL (0) */
    const int64_t *labels;       /* Q (may be NULL when no loss is wanted) */
    int64_t q, m, l;
    const double *evidence_aux;  /* Q x M x L x dims.aux (agree = 1; NULL when aux = 0), read at valid rows */
} lamp_ranker_batch;

/* Energies of all candidates (Q x M) and, with labels, the mean loss (loss_kind
 * LAMP_RANKER_SOFTMAX or LAMP_RANKER_BINARY); with grads != NULL also the
 * gradient of the mean loss (grads is overwritten).
 * dropout > 0 applies inverted dropout to u with masks drawn from seed. */
int lamp_ranker_forward_backward(const lamp_ranker_dims *dims, const double *params, const lamp_ranker_batch *b,
                                 int loss_kind, double dropout, uint64_t seed, double *energies, double *loss,
                                 double *grads, lamp_error *err);

enum { LAMP_RANKER_FLOAT64 = 0, LAMP_RANKER_FLOAT32 = 1 };

/* The same in the given precision (LAMP_RANKER_FLOAT64 or LAMP_RANKER_FLOAT32); inputs and outputs stay
 * float64.  Deterministic: the result does not depend on timing or on the number of threads. */
int lamp_ranker_forward_backward_prec(const lamp_ranker_dims *dims, const double *params, const lamp_ranker_batch *b,
                                      int loss_kind, double dropout, uint64_t seed, int precision, double *energies,
                                      double *loss, double *grads, lamp_error *err);

/* One Adam step (bias-corrected, step >= 1), after clipping the gradient's
 * global norm to clip (clip <= 0: no clipping); decoupled weight decay. */
int lamp_ranker_adam(double *params, const double *grads, double *m1, double *m2, int64_t n, double lr,
                     double beta1, double beta2, double eps, double weight_decay, double clip, int64_t step,
                     lamp_error *err);

#endif
