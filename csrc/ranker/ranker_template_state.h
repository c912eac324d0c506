/* Part of the ranker's template (ranker_template.h): the state of one call (shapes, weights, the
 * current chunk and its buffers), its accessors, and BY_HEAD_WIDTH, which makes a phase out of a
 * loop body with the head width as a constant. */

/* The state of one call: shapes, weights, the current chunk and its buffers. */
typedef struct {
    const lamp_ranker_dims *dims;
    const lamp_ranker_batch *b;
    const double *params;    /* float64 parameters (the embedding tables are read here) */
    const int64_t *off;      /* block offsets */
    const REAL *w;           /* dense blocks (from Wq on) as REAL; w[k] = params[off[WQ] + k] */
    REAL *gw;                /* their gradients, or NULL */
    const REAL *wt;          /* own = 1: the forward pass's weight matrices transposed (F(tblock)) */
    int own;                 /* the forward products by F(own_gemm) (AVX-512, float32, d % 32 == 0) */
    const double *freq;      /* d / 2 time-encoding frequencies */
    double *enc;             /* 3 d / 2 scratch of the time encoding */
    int64_t d, heads, e, nl, L, dense0;
    REAL scale;
    int train;               /* keep every layer's activations for the backward pass */
    /* the current chunk: candidates [c0, c0 + n) */
    int64_t c0, n, t;        /* t tokens */
    const int64_t *ntok;     /* valid tokens per candidate (whole batch) */
    int64_t *tok_start;      /* n + 1: first token of each candidate in the chunk */
    int64_t *att_start;      /* n + 1: offset of each candidate's n_i^2 attention entries */
    const int64_t *tok_src;  /* t: global evidence row (candidate * L + slot) of each token */
    int64_t tmax, nmax, amax;
    REAL *xs;                /* (nl + 1 or 2) x tmax x d */
    REAL *qkv;               /* nlk x tmax x 3d */
    REAL *o, *y, *u;         /* nlk x tmax x d (y only while training: scoring sums into x) */
    REAL *att;               /* nlk x heads x amax */
    REAL *c, *qr, *uo, *keep; /* nmax x d */
    REAL *z;                 /* nmax x 2d: [h; c] */
    REAL *kv;                /* tmax x 2d: readout keys and values */
    REAL *alpha;             /* tmax x heads */
    REAL *ones;              /* max(tmax, nmax) ones */
    /* backward */
    REAL *duo, *dqr;         /* nmax x d */
    REAL *dz;                /* nmax x 2d */
    REAL *dkv;               /* tmax x 2d */
    REAL *dp, *dO;           /* tmax x d */
    REAL *dqkv;              /* tmax x 3d */
    REAL *scratch;           /* L */
    REAL *kt;                /* (d + 4) x lp: one head's transposed keys and a tile's scores (attention) */
    int64_t lp;              /* L rounded up to a multiple of 8 */
    /* agreement (agree = 1): nf = F features per token, ablk = the index of the first agreement block */
    int agree;
    int64_t nf, ablk;
    REAL *feats;             /* tmax x F: the tokens' features f_j */
    REAL *pool;              /* nmax x 3F: the candidates' pooled summaries p */
    REAL *alpha0;            /* nmax x heads: the null slot's attention weights */
    REAL *dsl;               /* tmax x heads: d loss / d readout logit (backward) */
    /* per-phase arguments */
    int64_t layer;
} F(state);

static REAL *F(wblock)(const F(state) *s, int64_t blk)
{
    return (REAL *)(s->w + (s->off[blk] - s->dense0));
}

#if OWN_GEMM
/* The transposed weight matrix (K x N) of the product whose weights start at block blk (own = 1). */
static const REAL *F(tblock)(const F(state) *s, int64_t blk)
{
    return s->wt + (s->off[blk] - s->dense0);
}
#endif

static REAL *F(gblock)(const F(state) *s, int64_t blk)
{
    return s->gw + (s->off[blk] - s->dense0);
}

static int64_t F(lblk)(int64_t layer, int blk)
{
    return LAMP_RANKER_NUM_BLOCKS + layer * LAMP_RANKER_LAYER_BLOCKS + blk;
}

/* Layer buffers: every layer's own while training (the backward pass reads them); when only scoring,
 * one token buffer updated in place through every layer (x -> y -> x'). */
static REAL *F(xbuf)(const F(state) *s, int64_t layer)
{
    return s->train ? s->xs + layer * s->tmax * s->d : s->xs;
}

static int64_t F(lk)(const F(state) *s, int64_t layer)
{
    return s->train ? layer : 0;
}

/* Defines phase `name` from `name`_body with the head width e a constant for the common widths
 * (short fixed-length loops vectorise), compiled for each target of RANKER_CLONES. */
#define BY_HEAD_WIDTH(name)                                                                              \
    RANKER_CLONES __attribute__((noinline)) static void F(name)(void *ctx, int64_t lo, int64_t hi, int tid) \
    {                                                                                                    \
        const int64_t e = ((const F(state) *)ctx)->e;                                                    \
        if (e == 32)                                                                                     \
            F(name##_body)(ctx, lo, hi, tid, 32);                                                        \
        else if (e == 16)                                                                                \
            F(name##_body)(ctx, lo, hi, tid, 16);                                                        \
        else if (e == 64)                                                                                \
            F(name##_body)(ctx, lo, hi, tid, 64);                                                        \
        else                                                                                             \
            F(name##_body)(ctx, lo, hi, tid, e);                                                         \
    }
