/* Part of the ranker's template (ranker_template.h): the state of one call (shapes, weights, the
 * current chunk and its buffers), its accessors, and BY_HEAD_WIDTH, which makes a phase out of a
 * loop body with the head width as a constant. */

/* The state of one call as one worker sees it: the inputs and shapes, the weights, the chunk of queries it
 * is working on and its buffers.  Sizes below use the maths of ranker.h: d the width, H heads of width e,
 * L evidence slots, F features per token (agree = 1); and a chunk's tokens T <= max_tokens and candidates
 * N <= max_cands.  The phases' locals use the same letters (d, H, e, L, T, N; M candidates per query). */
typedef struct {
    /* the call: inputs, shapes and weights (the same for every chunk) */
    const lamp_ranker_dims *dims;      /* the model's dimensions */
    const lamp_ranker_batch *batch;    /* the batch: evidence, candidates, priors, labels */
    const double *params;              /* float64 parameters (the embedding tables are read from here) */
    const int64_t *block_offset;       /* offsets of the parameter blocks in params (ranker.h's layout) */
    const REAL *dense_w;               /* the dense blocks (from Wq on) as REAL: params[dense_offset + k] */
    REAL *dense_grad;                  /* their gradients over the current chunk (training), or NULL */
    const REAL *dense_w_t;             /* use_own_gemm: the forward products' weight matrices transposed */
    int use_own_gemm;                  /* the forward products by F(own_gemm) (AVX-512, float32, d % 32 == 0) */
    const double *time_freq;           /* d / 2 frequencies of the time encoding */
    double *time_enc;                  /* 3 d / 2 scratch of the time encoding: arguments, sines, cosines */
    int64_t width;                     /* d: the width of embeddings and token states */
    int64_t heads;                     /* H: attention heads */
    int64_t head_width;                /* e = d / H */
    int64_t n_layers;                  /* self-attention blocks over the evidence */
    int64_t slots;                     /* L: evidence slots per candidate (at least 1) */
    int64_t dense_offset;              /* offset in params of the first dense block (Wq) */
    REAL att_scale;                    /* 1 / sqrt(e), the scale of every attention logit */
    int train;                         /* keep every layer's activations for the backward pass */
    const int64_t *cand_tokens;        /* valid evidence tokens of each candidate of the batch */
    /* the current chunk: candidates [first_cand, first_cand + n_cands) of whole queries, and their tokens */
    int64_t first_cand;                /* its first candidate in the batch */
    int64_t n_cands;                   /* N: its candidates */
    int64_t n_tokens;                  /* T: its valid evidence tokens (padding dropped), in candidate order */
    int64_t *tok_start;                /* N + 1: the first token of each candidate */
    int64_t *att_start;                /* N + 1: the offset of each candidate's n_i^2 self-attention weights */
    const int64_t *tok_row;            /* T: each token's evidence row in the batch (candidate * L + slot) */
    /* the buffers, sized for the plan's largest chunk */
    int64_t max_tokens;                /* tokens of the largest chunk (at least 1) */
    int64_t max_cands;                 /* candidates of the largest chunk */
    int64_t max_att;                   /* self-attention weights of the largest chunk: sum of n_i^2 (at least 1) */
    REAL *tok_state;                   /* X, max_tokens x d per layer: while training every layer's input and the
                                        * final states (n_layers + 1), when scoring one, updated in place */
    REAL *tok_qkv;                     /* [Q K V] = X [Aq; Ak; Av]^T, max_tokens x 3d per kept layer */
    REAL *tok_att_out;                 /* O = the heads' attention outputs, max_tokens x d per kept layer */
    REAL *tok_resid;                   /* Y = X + O Ao^T, max_tokens x d per layer (training only: scoring sums
                                        * into X) */
    REAL *tok_ff;                      /* U = tanh(Y F1^T + f1), max_tokens x d per kept layer */
    REAL *att_weights;                 /* the causal self-attention weights A_h, H x max_att per kept layer */
    REAL *cand_emb;                    /* c = Ent[s] + Rel[r] + Obj[o], max_cands x d */
    REAL *cand_query;                  /* q = Wq c, max_cands x d */
    REAL *cand_hidden;                 /* u = tanh(W1 [h; c] (+ W1P p) + b1) before dropout, max_cands x d */
    REAL *cand_keep;                   /* dropout's multipliers of u (0 or 1 / (1 - dropout)), max_cands x d */
    REAL *cand_mlp_in;                 /* [h; c], the readout's summary and the candidate, max_cands x 2d */
    REAL *tok_readout_kv;              /* [k_j v_j] = x_j [Wk; Wv]^T (+ [f_j WKF^T, 0]), max_tokens x 2d */
    REAL *tok_readout_alpha;           /* the readout's attention weights alpha_hj (first their logits),
                                        * max_tokens x H */
    REAL *ones;                        /* max(max_tokens, max_cands) ones (column sums as products) */
    /* backward: d loss / d of the forward buffer of the same name */
    REAL *d_cand_hidden;               /* through dropout and tanh: d loss / d (W1 [h; c] + b1), max_cands x d */
    REAL *d_cand_query;                /* max_cands x d */
    REAL *d_cand_mlp_in;               /* max_cands x 2d */
    REAL *d_tok_readout_kv;            /* max_tokens x 2d */
    REAL *d_tok_ff;                    /* through tanh: d loss / d (Y F1^T + f1), max_tokens x d */
    REAL *d_tok_att_out;               /* max_tokens x d */
    REAL *d_tok_qkv;                   /* max_tokens x 3d */
    REAL *slot_scratch;                /* L: one row of a candidate's attention in the backward passes */
    REAL *keys_t;                      /* (d + 4) x slots_padded: one head's keys transposed, then the scores of
                                        * a tile of 4 query rows (forward self-attention) */
    int64_t slots_padded;              /* L rounded up to a multiple of 8 */
    /* agreement (agree = 1) */
    int agree;                         /* the agreement features and blocks are on */
    int64_t n_feats;                   /* F = LAMP_RANKER_ID_FEATURES + aux features per token */
    int64_t agree_block;               /* the index of the first agreement block (WKF) */
    REAL *tok_feats;                   /* f_j, max_tokens x F */
    REAL *cand_pool;                   /* p = [mean f, max f, f of the most recent event], max_cands x 3F */
    REAL *cand_null_alpha;             /* the null slot's readout weight, max_cands x H */
    REAL *d_tok_readout_logit;         /* d loss / d readout logit (UB's gradient), max_tokens x H (training) */
    /* the argument of the per-layer phases */
    int64_t layer;                     /* the layer the phase works on */
} F(state);

/* The dense weights (as REAL) of parameter block blk, from Wq on (LAMP_RANKER_WQ ...). */
static REAL *F(block_w)(const F(state) *s, int64_t blk)
{
    return (REAL *)(s->dense_w + (s->block_offset[blk] - s->dense_offset));
}

#if OWN_GEMM
/* The transposed weight matrix (K x N) of the product whose weights start at block blk (use_own_gemm). */
static const REAL *F(block_w_t)(const F(state) *s, int64_t blk)
{
    return s->dense_w_t + (s->block_offset[blk] - s->dense_offset);
}
#endif

/* The gradient of block blk over the current chunk (training). */
static REAL *F(block_grad)(const F(state) *s, int64_t blk)
{
    return s->dense_grad + (s->block_offset[blk] - s->dense_offset);
}

/* The index of block blk (LAMP_RANKER_AQ ...) of layer `layer` in the layout. */
static int64_t F(layer_block)(int64_t layer, int blk)
{
    return LAMP_RANKER_NUM_BLOCKS + layer * LAMP_RANKER_LAYER_BLOCKS + blk;
}

/* The same three for block blk (LAMP_RANKER_AQ ...) of layer `layer`. */
static REAL *F(layer_w)(const F(state) *s, int64_t layer, int blk)
{
    return F(block_w)(s, F(layer_block)(layer, blk));
}

#if OWN_GEMM
static const REAL *F(layer_w_t)(const F(state) *s, int64_t layer, int blk)
{
    return F(block_w_t)(s, F(layer_block)(layer, blk));
}
#endif

static REAL *F(layer_grad)(const F(state) *s, int64_t layer, int blk)
{
    return F(block_grad)(s, F(layer_block)(layer, blk));
}

/* And for agreement block blk (LAMP_RANKER_WKF ...; agree = 1). */
static REAL *F(agree_w)(const F(state) *s, int blk)
{
    return F(block_w)(s, s->agree_block + blk);
}

static REAL *F(agree_grad)(const F(state) *s, int blk)
{
    return F(block_grad)(s, s->agree_block + blk);
}

/* Layer buffers: every layer's own while training (the backward pass reads them); when only scoring,
 * one token buffer updated in place through every layer (x -> y -> x').  layer_input: the token states X
 * entering layer `layer` (layer = n_layers: the final states); layer_slot: which copy of the per-layer
 * buffers (tok_qkv, tok_att_out, tok_resid, tok_ff, att_weights) layer `layer` uses. */
static REAL *F(layer_input)(const F(state) *s, int64_t layer)
{
    return s->train ? s->tok_state + layer * s->max_tokens * s->width : s->tok_state;
}

static int64_t F(layer_slot)(const F(state) *s, int64_t layer)
{
    return s->train ? layer : 0;
}

/* Defines phase `name` from `name`_body with the head width e a constant for the common widths
 * (short fixed-length loops vectorise), compiled for each target of RANKER_CLONES. */
#define BY_HEAD_WIDTH(name)                                                                                 \
    RANKER_CLONES __attribute__((noinline)) static void F(name)(void *ctx, int64_t lo, int64_t hi, int tid) \
    {                                                                                                       \
        const int64_t e = ((const F(state) *)ctx)->head_width;                                              \
        if (e == 32)                                                                                        \
            F(name##_body)(ctx, lo, hi, tid, 32);                                                           \
        else if (e == 16)                                                                                   \
            F(name##_body)(ctx, lo, hi, tid, 16);                                                           \
        else if (e == 64)                                                                                   \
            F(name##_body)(ctx, lo, hi, tid, 64);                                                           \
        else                                                                                                \
            F(name##_body)(ctx, lo, hi, tid, e);                                                            \
    }
