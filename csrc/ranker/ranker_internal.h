/* What the ranker's own files share (ranker.c, and ranker_f64.c / ranker_f32.c through the
 * template ranker_template.h); not part of the ranker's interface (ranker.h). */
#ifndef LAMP_RANKER_INTERNAL_H
#define LAMP_RANKER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/lamp_error.h"
#include "ranker/ranker.h"

/* The ranker's own loops (embedding, attention, tanh, their backward passes) are compiled for
 * the SSE2 baseline, AVX2 + FMA and AVX-512, and the loader picks the widest the CPU has; the
 * matrix products are OpenBLAS's, which dispatches the same way.  Results may differ in the
 * last bits between CPUs (FMA contraction); on one machine they are deterministic. */
#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__) && !defined(LAMP_NO_DISPATCH)
#define RANKER_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define RANKER_CLONES
#endif

/* How a batch is cut into chunks of whole queries; it depends only on the batch's shape and padding.
 * Tokens are the valid evidence events (padding dropped), numbered over the batch in candidate order. */
typedef struct {
    int64_t n_chunks;     /* chunks */
    int64_t *first_query; /* n_chunks + 1: the first query of each chunk (the last entry: Q) */
    int64_t *first_token; /* n_chunks + 1: the first token of each chunk (the last entry: all tokens) */
    int64_t *tok_row;     /* every token: its evidence row in the batch (candidate * L + slot) */
    int64_t max_tokens;   /* tokens of the largest chunk (at least 1) */
    int64_t max_cands;    /* candidates of the largest chunk */
    int64_t max_att;      /* self-attention weights (sum of n_i^2 over its candidates) of the largest chunk (>= 1) */
} chunk_plan;

/* Loss of one query's M energies (loss_kind LAMP_RANKER_SOFTMAX or LAMP_RANKER_BINARY); g (M, or
 * NULL) gets d loss / d energy. */
double lamp_ranker_query_loss(int loss_kind, const double *en, int64_t m, int64_t label, double *g);

/* The work buffers of the ranker's calls, kept across calls (common/workspace.h). */
void *lamp_ranker_workspace_get(size_t bytes, size_t *got);
void lamp_ranker_workspace_put(void *p, size_t bytes);

/* The forward (and backward) pass of a checked batch in one precision (the template's instances):
 * off the parameter blocks' offsets, ntok the valid evidence tokens per candidate, pl the chunks,
 * nthreads the threads to split them over. */
int lamp_ranker_forward_backward_f64(const lamp_ranker_dims *dims, const double *params, const lamp_ranker_batch *b,
                                     int loss_kind, double dropout, uint64_t seed, double *energies, double *loss,
                                     double *grads, const int64_t *off, const int64_t *ntok, const chunk_plan *pl,
                                     int nthreads, lamp_error *err);
int lamp_ranker_forward_backward_f32(const lamp_ranker_dims *dims, const double *params, const lamp_ranker_batch *b,
                                     int loss_kind, double dropout, uint64_t seed, double *energies, double *loss,
                                     double *grads, const int64_t *off, const int64_t *ntok, const chunk_plan *pl,
                                     int nthreads, lamp_error *err);

#endif
