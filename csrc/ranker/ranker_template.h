/* The ranker's batched forward/backward pass, compiled twice by ranker.c:
 * REAL = double (SFX f64) and REAL = float (SFX f32).
 *
 * Every dense product runs as one BLAS-3 call over all tokens (or all
 * candidates) of a chunk of queries: the projections Q/K/V (one call with the
 * stacked [Aq; Ak; Av]), the attention output, the feed-forward layers, the
 * readout's keys/values ([Wk; Wv]), query and MLP, and all their gradients.
 * Only the attention itself (L x L per head and candidate) is a small loop,
 * split over two threads.  The embedding tables stay float64 in params and
 * are read (and their gradients written) directly; the dense weights are
 * converted to REAL once per call.
 */
#define CAT2_(a, b) a##_##b
#define CAT2(a, b) CAT2_(a, b)
#define F(name) CAT2(name, SFX)

/* C = alpha op(A) op(B) + beta C, row-major. */
static void F(gemm)(int ta, int tb, int64_t m, int64_t n, int64_t k, REAL alpha, const REAL *a, int64_t lda,
                    const REAL *b, int64_t ldb, REAL beta, REAL *c, int64_t ldc)
{
    if (m == 0 || n == 0)
        return;
    GEMM(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
         alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

/* out[a] += sum_t x[t, a] for an n x d row-major matrix. */
static void F(colsum_add)(const REAL *x, int64_t n, int64_t d, const REAL *ones, REAL *out)
{
    if (n == 0)
        return;
    GEMV(CblasRowMajor, CblasTrans, (int)n, (int)d, (REAL)1, x, (int)d, ones, 1, (REAL)1, out, 1);
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

/* Dot product with 8 independent partial sums in a fixed order, kept in one vector of 8 lanes (left
 * to itself the compiler turns the 8 sums into scalar code once e is a constant). */
typedef REAL F(v8) __attribute__((vector_size(8 * sizeof(REAL))));
typedef IREAL F(iv8) __attribute__((vector_size(8 * sizeof(REAL)))); /* its lane masks */
LAMP_TRANSPOSE8(F(transpose8), F(v8), F(iv8)) /* csrc/common/vmath.h */
static inline REAL F(dot)(const REAL *restrict a, const REAL *restrict b, int64_t n)
{
    F(v8) acc = {0};
    const int64_t blocks = n / 8;
    for (int64_t bi = 0; bi < blocks; bi++) {
        F(v8) x, y;
        memcpy(&x, a + 8 * bi, sizeof x);
        memcpy(&y, b + 8 * bi, sizeof y);
        acc += x * y;
    }
    REAL s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (int64_t k = 8 * blocks; k < n; k++)
        s += a[k] * b[k];
    return s;
}

static inline void F(axpy)(REAL alpha, const REAL *restrict x, REAL *restrict y, int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        y[k] += alpha * x[k];
}

/* out[c] += sum_k w[k] rows[k * stride + c] for c < e: the sums stay in registers across k (an
 * axpy per k would store and reload out each time); e a multiple of 8 up to 64, else axpys. */
static inline __attribute__((always_inline)) void F(wsum_add)(const REAL *restrict w, const REAL *restrict rows,
                                                               int64_t stride, int64_t count, REAL *restrict out,
                                                               const int64_t e)
{
    if (e % 8 != 0 || e > 64) {
        for (int64_t k = 0; k < count; k++)
            F(axpy)(w[k], rows + k * stride, out, e);
        return;
    }
    F(v8) acc[8];
    for (int64_t v = 0; v < e / 8; v++)
        memcpy(&acc[v], out + 8 * v, sizeof acc[v]);
    for (int64_t k = 0; k < count; k++) {
        const REAL wk = w[k], *r = rows + k * stride;
        for (int64_t v = 0; v < e / 8; v++) {
            F(v8) x;
            memcpy(&x, r + 8 * v, sizeof x);
            acc[v] += wk * x;
        }
    }
    for (int64_t v = 0; v < e / 8; v++)
        memcpy(out + 8 * v, &acc[v], sizeof acc[v]);
}

#if OWN_GEMM
/* The forward pass's dense products on AVX-512 (float32, widths d a multiple of 32), in place of sgemm:
 * out[t, n] = [res[t, n] +] [bias[n] +] sum_k x[t, k] wt[k, n], then tanh with act, for t < T, n < N
 * (N a multiple of 32); wt is the weight matrix transposed (K x N, packed once per call).  A tile of 8 rows
 * x 32 columns lives in 16 registers over k; the bias, residual and tanh are applied to the tile before it
 * is stored, so there is no zeroing, packing of x, or separate pass over out. */
static inline __attribute__((always_inline)) void F(own_rows)(const int R, int64_t t, int64_t N, int64_t K,
                                                              const float *x, int64_t ldx, const float *wt,
                                                              float *out, int64_t ldo, const float *res,
                                                              int64_t ldr, const float *bias, int act)
{
    for (int64_t n0 = 0; n0 < N; n0 += 32) {
        lamp_v16f acc[8][2];
        for (int r = 0; r < R; r++)
            acc[r][0] = acc[r][1] = (lamp_v16f){0};
        const float *xr = x + t * ldx;
        for (int64_t k = 0; k < K; k++) {
            lamp_v16f w0, w1;
            memcpy(&w0, wt + k * N + n0, sizeof w0);
            memcpy(&w1, wt + k * N + n0 + 16, sizeof w1);
            for (int r = 0; r < R; r++) {
                const float xv = xr[r * ldx + k];
                acc[r][0] += xv * w0;
                acc[r][1] += xv * w1;
            }
        }
        for (int r = 0; r < R; r++)
            for (int h = 0; h < 2; h++) {
                lamp_v16f v = acc[r][h], base, bv;
                if (res || bias) {
                    if (res) {
                        memcpy(&base, res + (t + r) * ldr + n0 + 16 * h, sizeof base);
                        if (bias) {
                            memcpy(&bv, bias + n0 + 16 * h, sizeof bv);
                            base = base + bv;
                        }
                    } else {
                        memcpy(&base, bias + n0 + 16 * h, sizeof base);
                    }
                    v = base + v;
                }
                if (act)
                    v = lamp_fast_tanhf_v16(v);
                memcpy(out + (t + r) * ldo + n0 + 16 * h, &v, sizeof v);
            }
    }
}

LAMP_TARGET_AVX512 __attribute__((noinline)) static void F(own_gemm)(int64_t T, int64_t N, int64_t K,
                                                                     const float *x, int64_t ldx,
                                                                     const float *wt, float *out, int64_t ldo,
                                                                     const float *res, int64_t ldr,
                                                                     const float *bias, int act)
{
    int64_t t = 0;
    for (; t + 8 <= T; t += 8)
        F(own_rows)(8, t, N, K, x, ldx, wt, out, ldo, res, ldr, bias, act);
    for (; t < T; t++)
        F(own_rows)(1, t, N, K, x, ldx, wt, out, ldo, res, ldr, bias, act);
}
#endif

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

/* Phase: the input tokens x_j = Ent + Rel + Obj + enc(gap) and the candidates' embeddings c. */
RANKER_CLONES __attribute__((noinline)) static void F(embed_range)(void *ctx, int64_t lo, int64_t hi, int tid)
{
    (void)tid;
    const F(state) *s = ctx;
    const lamp_ranker_batch *b = s->b;
    const int64_t d = s->d;
    double *arg = s->enc, *sn = s->enc + d / 2, *cs = s->enc + d;
    const double *ent = s->params + s->off[LAMP_RANKER_ENT], *rel = s->params + s->off[LAMP_RANKER_REL],
                 *obj = s->params + s->off[LAMP_RANKER_OBJ];
    REAL *x0 = s->xs;
    for (int64_t i = lo; i < hi; i++) {
        int64_t gi = s->c0 + i;
        const int64_t *cand = b->candidates + 3 * gi;
        REAL *ci = s->c + i * d;
        for (int64_t a = 0; a < d; a++)
            ci[a] = (REAL)(ent[cand[0] * d + a] + rel[cand[1] * d + a] + obj[cand[2] * d + a]);
        double ct = b->candidate_times[gi];
        for (int64_t t = s->tok_start[i]; t < s->tok_start[i + 1]; t++) {
            int64_t src = s->tok_src[t];
            const int64_t *ev = b->evidence + 3 * src;
            double gap = (ct - b->evidence_times[src]) / s->dims->time_scale;
            REAL *xt = x0 + t * d;
            const double *pe = ent + ev[0] * d, *pr = rel + ev[1] * d, *po = obj + ev[2] * d;
            if (t + 2 < s->tok_start[hi]) { /* the rows two tokens ahead: random rows of tables larger than L2 */
                const int64_t *nx = b->evidence + 3 * s->tok_src[t + 2];
                for (int64_t a = 0; a < d; a += 8) {
                    __builtin_prefetch(ent + nx[0] * d + a);
                    __builtin_prefetch(rel + nx[1] * d + a);
                    __builtin_prefetch(obj + nx[2] * d + a);
                }
            }
            for (int64_t a = 0; a < d / 2; a++)
                arg[a] = gap * s->freq[a];
#if FAST_SINCOS
            fast_sincos(arg, d / 2, sn, cs);
#else
            for (int64_t a = 0; a < d / 2; a++) {
                sn[a] = sin(arg[a]);
                cs[a] = cos(arg[a]);
            }
#endif
            for (int64_t a = 0; a < d / 2; a++) {
                xt[2 * a] = (REAL)(pe[2 * a] + pr[2 * a] + po[2 * a] + sn[a]);
                xt[2 * a + 1] = (REAL)(pe[2 * a + 1] + pr[2 * a + 1] + po[2 * a + 1] + cs[a]);
            }
            if (s->agree) {
                REAL *f = s->feats + t * s->nf;
                const int64_t es = ev[0], er = ev[1], eo = ev[2];
                f[0] = (REAL)(es == cand[0]);
                f[1] = (REAL)(eo == cand[2]);
                f[2] = (REAL)(er == cand[1]);
                f[3] = (REAL)(es == cand[0] && eo == cand[2]);
                f[4] = (REAL)(es == cand[2] && eo == cand[0]);
                f[5] = (REAL)(es == cand[0] && er == cand[1] && eo == cand[2]);
                f[6] = (REAL)(es == cand[2] || eo == cand[2]);
                f[7] = (REAL)(es == cand[0] || eo == cand[0]);
                f[8] = (REAL)log1p((gap > 0.0 ? gap : 0.0));
                for (int64_t a = LAMP_RANKER_ID_FEATURES; a < s->nf; a++)
                    f[a] = (REAL)b->evidence_aux[src * (s->nf - LAMP_RANKER_ID_FEATURES) + a - LAMP_RANKER_ID_FEATURES];
            }
        }
        if (s->agree) { /* p = [sum f / L, max f, f of the most recent event] */
            const int64_t nf = s->nf, t0 = s->tok_start[i], t1 = s->tok_start[i + 1];
            REAL *p = s->pool + i * 3 * nf;
            int64_t recent = -1;
            double best = -INFINITY;
            for (int64_t a = 0; a < nf; a++) {
                double sum = 0.0;
                REAL mx = t1 > t0 ? s->feats[t0 * nf + a] : 0;
                for (int64_t t = t0; t < t1; t++) {
                    sum += (double)s->feats[t * nf + a];
                    mx = s->feats[t * nf + a] > mx ? s->feats[t * nf + a] : mx;
                }
                p[a] = (REAL)(sum / (double)b->l);
                p[nf + a] = mx;
            }
            for (int64_t t = t0; t < t1; t++) /* tokens in slot order: ties go to the later slot */
                if (b->evidence_times[s->tok_src[t]] >= best)
                    best = b->evidence_times[s->tok_src[t]], recent = t;
            for (int64_t a = 0; a < nf; a++)
                p[2 * nf + a] = recent >= 0 ? s->feats[recent * nf + a] : 0;
        }
    }
}

/* 8 lanes of exp (the scores minus their maximum). */
static inline __attribute__((always_inline)) F(v8) F(vexp8)(F(v8) x)
{
#if VEXP_V8F
    return lamp_fast_expf_neg_v8(x);
#else
    for (int l = 0; l < 8; l++)
        x[l] = EXP(x[l]);
    return x;
#endif
}

/* Lanes of mask (all ones) from a, the others from b. */
static inline __attribute__((always_inline)) F(v8) F(vsel)(F(iv8) mask, F(v8) a, F(v8) b)
{
    return (F(v8))(((F(iv8))a & mask) | ((F(iv8))b & ~mask));
}

/* kt[c * np + k] = rows[k * stride + c] for c < e, k < np (rows k >= n read as zeros): 8 x 8 blocks
 * transposed in registers. */
static inline __attribute__((always_inline)) void F(transpose_keys)(const REAL *restrict rows, int64_t stride,
                                                                    int64_t n, int64_t np, REAL *restrict kt,
                                                                    const int64_t e)
{
    if (e % 8 != 0) {
        for (int64_t k = 0; k < np; k++)
            for (int64_t c = 0; c < e; c++)
                kt[c * np + k] = k < n ? rows[k * stride + c] : 0;
        return;
    }
    for (int64_t k8 = 0; k8 < np; k8 += 8)
        for (int64_t c8 = 0; c8 < e; c8 += 8) {
            F(v8) r[8], c[8];
            for (int l = 0; l < 8; l++) {
                if (k8 + l < n)
                    memcpy(&r[l], rows + (k8 + l) * stride + c8, sizeof r[l]);
                else
                    r[l] = (F(v8)){0};
            }
            F(transpose8)(r, c);
            for (int l = 0; l < 8; l++)
                memcpy(kt + (c8 + l) * np + k8, &c[l], sizeof c[l]);
        }
}

/* Phase: causal multi-head self-attention of layer s->layer, per candidate: qkv -> o (and, while training,
 * the attention weights att for the backward pass).  Per candidate and head the keys are transposed into
 * s->kt (e x np, the n keys padded with zeros to np, a multiple of 8), so that a row's scores are whole
 * vectors of 8 keys: a tile of 4 query rows at a time accumulates q_j[c] K^T[c, 8 keys] over c (8
 * independent sums: 4 rows, two halves of c); each row's softmax works on those vectors, later keys masked
 * (weight 0); then the tile's outputs O_j = sum_k A[j, k] V_k are summed over k together (16 independent
 * sums of 8 lanes for e <= 32). */
static inline __attribute__((always_inline)) void F(attn_fwd_range_body)(void *ctx, int64_t lo, int64_t hi, int tid,
                                                                const int64_t e)
{
    (void)tid;
    const F(state) *s = ctx;
    const int64_t d = s->d, H = s->heads, lk = F(lk)(s, s->layer), lp = s->lp, e2 = e / 2;
    const REAL *qkv = s->qkv + lk * s->tmax * 3 * d;
    REAL *o = s->o + lk * s->tmax * d, *attl = s->att + lk * H * s->amax;
    REAL *kt = s->kt, *sc = s->kt + d * lp; /* sc: the 4 x lp weights of a tile of rows */
    const REAL scale = s->scale;
    const F(iv8) lane = {0, 1, 2, 3, 4, 5, 6, 7};
    const F(v8) ninf = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    for (int64_t i = lo; i < hi; i++) {
        const int64_t t0 = s->tok_start[i], n = s->tok_start[i + 1] - t0, np = (n + 7) / 8 * 8;
        for (int64_t h = 0; h < H; h++) {
            const REAL *qb = qkv + t0 * 3 * d + h * e, *vb = qb + 2 * d;
            F(transpose_keys)(qb + d, 3 * d, n, np, kt, e);
            REAL *a = s->train ? attl + H * s->att_start[i] + h * n * n : NULL;
            for (int64_t j0 = 0; j0 < n; j0 += 4) {
                const int64_t rows = n - j0 < 4 ? n - j0 : 4, nb = (j0 + rows - 1) / 8 + 1;
                const REAL *q[4];
                for (int r = 0; r < 4; r++) /* rows past the last one repeat it (their results are not used) */
                    q[r] = qb + (j0 + (r < rows ? r : rows - 1)) * 3 * d;
                for (int64_t b8 = 0; b8 < nb; b8++) {
                    F(v8) acc[4] = {{0}}, acc2[4] = {{0}};
                    for (int64_t c = 0; c < e2; c++) {
                        F(v8) k1, k2;
                        memcpy(&k1, kt + c * np + 8 * b8, sizeof k1);
                        memcpy(&k2, kt + (c + e2) * np + 8 * b8, sizeof k2);
                        for (int r = 0; r < 4; r++) {
                            acc[r] += q[r][c] * k1;
                            acc2[r] += q[r][c + e2] * k2;
                        }
                    }
                    if (2 * e2 < e) { /* odd e: the last dimension */
                        F(v8) k1;
                        memcpy(&k1, kt + (e - 1) * np + 8 * b8, sizeof k1);
                        for (int r = 0; r < 4; r++)
                            acc[r] += q[r][e - 1] * k1;
                    }
                    for (int r = 0; r < 4; r++) {
                        F(v8) v = (acc[r] + acc2[r]) * scale;
                        memcpy(sc + r * lp + 8 * b8, &v, sizeof v);
                    }
                }
                for (int64_t r = 0; r < rows; r++) { /* softmax of row j over keys k <= j; weights 0 up to 8 nb */
                    const int64_t j = j0 + r, nbj = j / 8 + 1;
                    REAL *row = sc + r * lp;
                    F(v8) mxv = ninf, tot = {0};
                    for (int64_t b8 = 0; b8 < nbj; b8++) {
                        F(v8) v;
                        memcpy(&v, row + 8 * b8, sizeof v);
                        v = F(vsel)(lane + (IREAL)(8 * b8) <= (IREAL)j, v, ninf);
                        mxv = F(vsel)(v > mxv, v, mxv);
                    }
                    REAL mx = mxv[0];
                    for (int l = 1; l < 8; l++)
                        mx = mxv[l] > mx ? mxv[l] : mx;
                    for (int64_t b8 = 0; b8 < nbj; b8++) {
                        F(v8) v;
                        memcpy(&v, row + 8 * b8, sizeof v);
                        const F(iv8) m = lane + (IREAL)(8 * b8) <= (IREAL)j;
                        v = F(vsel)(m, F(vexp8)(F(vsel)(m, v - mx, ninf)), (F(v8)){0}); /* exp only of x <= 0 */
                        memcpy(row + 8 * b8, &v, sizeof v);
                        tot += v;
                    }
                    const REAL inv = (REAL)1 / (((tot[0] + tot[4]) + (tot[1] + tot[5])) +
                                                ((tot[2] + tot[6]) + (tot[3] + tot[7])));
                    for (int64_t b8 = 0; b8 < nbj; b8++) {
                        F(v8) v;
                        memcpy(&v, row + 8 * b8, sizeof v);
                        v *= inv;
                        memcpy(row + 8 * b8, &v, sizeof v);
                    }
                    for (int64_t k = 8 * nbj; k < 8 * nb; k++)
                        row[k] = 0;
                    if (a) {
                        memcpy(a + j * n, row, sizeof(REAL) * (size_t)(j + 1));
                        for (int64_t k = j + 1; k < n; k++)
                            a[j * n + k] = 0;
                    }
                }
                if (e % 8 == 0 && e <= 32) { /* O_j for the tile's rows at once (zero weights add nothing) */
                    F(v8) acc[4][4];
                    for (int r = 0; r < 4; r++)
                        for (int64_t v = 0; v < e / 8; v++)
                            acc[r][v] = (F(v8)){0};
                    const int64_t kn = j0 + rows;
                    for (int64_t k = 0; k < kn; k++) {
                        const REAL *vk = vb + k * 3 * d;
                        for (int64_t v = 0; v < e / 8; v++) {
                            F(v8) x;
                            memcpy(&x, vk + 8 * v, sizeof x);
                            for (int r = 0; r < 4; r++)
                                acc[r][v] += sc[r * lp + k] * x;
                        }
                    }
                    for (int64_t r = 0; r < rows; r++)
                        for (int64_t v = 0; v < e / 8; v++)
                            memcpy(o + (t0 + j0 + r) * d + h * e + 8 * v, &acc[r][v], sizeof acc[r][v]);
                } else {
                    for (int64_t r = 0; r < rows; r++) {
                        REAL *oj = o + (t0 + j0 + r) * d + h * e;
                        for (int64_t c = 0; c < e; c++)
                            oj[c] = 0;
                        F(wsum_add)(sc + r * lp, vb, 3 * d, j0 + r + 1, oj, e);
                    }
                }
            }
        }
    }
}

BY_HEAD_WIDTH(attn_fwd_range)

/* Phase: tanh of the feed-forward pre-activations of layer s->layer (tokens of candidates lo..hi). */
RANKER_CLONES __attribute__((noinline)) static void F(tanh_range)(void *ctx, int64_t lo, int64_t hi, int tid)
{
    (void)tid;
    const F(state) *s = ctx;
    REAL *u = s->u + F(lk)(s, s->layer) * s->tmax * s->d;
    const int64_t k0 = s->tok_start[lo] * s->d, k1 = s->tok_start[hi] * s->d;
    for (int64_t k = k0; k < k1; k++)
        u[k] = TANH(u[k]);
}

/* Phase: readout attention from each candidate over its final states: kv, qr -> alpha, z = [h; c]. */
static inline __attribute__((always_inline)) void F(readout_fwd_range_body)(void *ctx, int64_t lo, int64_t hi, int tid,
                                                                const int64_t e)
{
    (void)tid;
    const F(state) *s = ctx;
    const int64_t d = s->d, H = s->heads;
    const REAL *k0 = s->agree ? F(wblock)(s, s->ablk + LAMP_RANKER_K0) : NULL,
               *v0 = s->agree ? F(wblock)(s, s->ablk + LAMP_RANKER_V0) : NULL;
    for (int64_t i = lo; i < hi; i++) {
        const int64_t t0 = s->tok_start[i], n = s->tok_start[i + 1] - t0;
        REAL *z = s->z + i * 2 * d;
        for (int64_t a = 0; a < d; a++) {
            z[a] = 0;
            z[d + a] = s->c[i * d + a];
        }
        for (int64_t h = 0; h < H; h++) {
            const REAL *q = s->qr + i * d + h * e;
            REAL mx = -INFINITY, total = 0, l0 = 0;
            if (s->agree) /* the null slot's logit; the tokens' alpha holds their feature bias UB[h] . f_j */
                mx = l0 = s->scale * F(dot)(q, k0 + h * e, e);
            for (int64_t t = t0; t < t0 + n; t++) {
                REAL v = s->scale * F(dot)(q, s->kv + t * 2 * d + h * e, e);
                if (s->agree)
                    v += s->alpha[t * H + h];
                s->alpha[t * H + h] = v;
                if (v > mx)
                    mx = v;
            }
            for (int64_t t = t0; t < t0 + n; t++) {
                REAL v = EXP(s->alpha[t * H + h] - mx);
                s->alpha[t * H + h] = v;
                total += v;
            }
            REAL e0 = 0;
            if (s->agree) {
                e0 = EXP(l0 - mx);
                total += e0;
            }
            REAL inv = (REAL)1 / total;
            if (s->agree) {
                s->alpha0[i * H + h] = e0 * inv;
                F(axpy)(e0 * inv, v0 + h * e, z + h * e, e);
            }
            for (int64_t t = t0; t < t0 + n; t++) {
                s->alpha[t * H + h] *= inv;
                F(axpy)(s->alpha[t * H + h], s->kv + t * 2 * d + d + h * e, z + h * e, e);
            }
        }
    }
}

BY_HEAD_WIDTH(readout_fwd_range)

/* Forward pass of the chunk: energies of its candidates. rng: the dropout stream (candidate order). */
RANKER_CLONES __attribute__((noinline)) static void F(chunk_forward)(F(state) *s, double dropout, uint64_t rng0,
                                                                   double *energies)
{
    const int64_t d = s->d, T = s->t, N = s->n;
    const lamp_ranker_batch *b = s->b;
    F(embed_range)(s, 0, N, 0);
    for (int64_t l = 0; l < s->nl; l++) {
        const int64_t lk = F(lk)(s, l);
        REAL *x = F(xbuf)(s, l), *xn = F(xbuf)(s, l + 1);
        /* scoring: y and xn are x itself, the residual sums go into it in place */
        REAL *qkv = s->qkv + lk * s->tmax * 3 * d, *o = s->o + lk * s->tmax * d,
             *y = s->train ? s->y + lk * s->tmax * d : x, *u = s->u + lk * s->tmax * d;
        s->layer = l;
#if OWN_GEMM
        if (s->own) { /* the same steps, each product with its bias, residual and tanh in one pass */
            const REAL *fb1 = F(wblock)(s, F(lblk)(l, LAMP_RANKER_FB1)), *fb2 = F(wblock)(s, F(lblk)(l, LAMP_RANKER_FB2));
            F(own_gemm)(T, 3 * d, d, x, d, F(tblock)(s, F(lblk)(l, LAMP_RANKER_AQ)), qkv, 3 * d, NULL, 0, NULL, 0);
            F(attn_fwd_range)(s, 0, N, 0);
            F(own_gemm)(T, d, d, o, d, F(tblock)(s, F(lblk)(l, LAMP_RANKER_AO)), y, d, x, d, NULL, 0);
            F(own_gemm)(T, d, d, y, d, F(tblock)(s, F(lblk)(l, LAMP_RANKER_F1)), u, d, NULL, 0, fb1, 1);
            F(own_gemm)(T, d, d, u, d, F(tblock)(s, F(lblk)(l, LAMP_RANKER_F2)), xn, d, y, d, fb2, 0);
            continue;
        }
#endif
        F(gemm)(0, 1, T, 3 * d, d, 1, x, d, F(wblock)(s, F(lblk)(l, LAMP_RANKER_AQ)), d, 0, qkv, 3 * d);
        F(attn_fwd_range)(s, 0, N, 0);
        if (y != x)
            memcpy(y, x, sizeof(REAL) * (size_t)(T * d));
        F(gemm)(0, 1, T, d, d, 1, o, d, F(wblock)(s, F(lblk)(l, LAMP_RANKER_AO)), d, 1, y, d);
        const REAL *fb1 = F(wblock)(s, F(lblk)(l, LAMP_RANKER_FB1)), *fb2 = F(wblock)(s, F(lblk)(l, LAMP_RANKER_FB2));
        for (int64_t t = 0; t < T; t++)
            memcpy(u + t * d, fb1, sizeof(REAL) * (size_t)d);
        F(gemm)(0, 1, T, d, d, 1, y, d, F(wblock)(s, F(lblk)(l, LAMP_RANKER_F1)), d, 1, u, d);
        F(tanh_range)(s, 0, N, 0);
        for (int64_t t = 0; t < T; t++)
            for (int64_t a = 0; a < d; a++)
                xn[t * d + a] = y[t * d + a] + fb2[a];
        F(gemm)(0, 1, T, d, d, 1, u, d, F(wblock)(s, F(lblk)(l, LAMP_RANKER_F2)), d, 1, xn, d);
    }
    const REAL *xf = F(xbuf)(s, s->nl);
#if OWN_GEMM
    if (s->own) {
        F(own_gemm)(N, d, d, s->c, d, F(tblock)(s, LAMP_RANKER_WQ), s->qr, d, NULL, 0, NULL, 0);
        F(own_gemm)(T, 2 * d, d, xf, d, F(tblock)(s, LAMP_RANKER_WK), s->kv, 2 * d, NULL, 0, NULL, 0);
    } else
#endif
    {
        F(gemm)(0, 1, N, d, d, 1, s->c, d, F(wblock)(s, LAMP_RANKER_WQ), d, 0, s->qr, d);
        F(gemm)(0, 1, T, 2 * d, d, 1, xf, d, F(wblock)(s, LAMP_RANKER_WK), d, 0, s->kv, 2 * d);
    }
    const int64_t nf = s->nf;
    if (s->agree) { /* keys += f WKF^T; the readout logits start from their feature bias f UB^T */
        F(gemm)(0, 1, T, d, nf, 1, s->feats, nf, F(wblock)(s, s->ablk + LAMP_RANKER_WKF), nf, 1, s->kv, 2 * d);
        F(gemm)(0, 1, T, s->heads, nf, 1, s->feats, nf, F(wblock)(s, s->ablk + LAMP_RANKER_UB), nf, 0, s->alpha,
                s->heads);
    }
    F(readout_fwd_range)(s, 0, N, 0);
    const REAL *b1 = F(wblock)(s, LAMP_RANKER_B1), *w2 = F(wblock)(s, LAMP_RANKER_W2);
#if OWN_GEMM
    if (s->own)
        F(own_gemm)(N, d, 2 * d, s->z, 2 * d, F(tblock)(s, LAMP_RANKER_W1), s->uo, d, NULL, 0, b1, 0);
    else
#endif
    {
        for (int64_t i = 0; i < N; i++)
            memcpy(s->uo + i * d, b1, sizeof(REAL) * (size_t)d);
        F(gemm)(0, 1, N, d, 2 * d, 1, s->z, 2 * d, F(wblock)(s, LAMP_RANKER_W1), 2 * d, 1, s->uo, d);
    }
    const REAL *wp = NULL;
    if (s->agree) {
        F(gemm)(0, 1, N, d, 3 * nf, 1, s->pool, 3 * nf, F(wblock)(s, s->ablk + LAMP_RANKER_W1P), 3 * nf, 1, s->uo, d);
        wp = F(wblock)(s, s->ablk + LAMP_RANKER_WP);
    }
    const double b2 = s->params[s->off[LAMP_RANKER_B2]], gamma = s->params[s->off[LAMP_RANKER_GAMMA]];
    for (int64_t i = 0; i < N; i++) {
        int64_t gi = s->c0 + i;
        REAL *ui = s->uo + i * d, *kp = s->keep + i * d;
        /* candidate gi takes draws gi * d ... gi * d + d - 1 of the dropout stream */
        uint64_t st = lamp_rng_skip(rng0, (uint64_t)gi * (uint64_t)d), *rng = &st;
        double energy = b2 + (b->prior ? gamma * b->prior[gi] : 0.0);
        if (wp)
            for (int64_t a = 0; a < 3 * nf; a++)
                energy += (double)wp[a] * (double)s->pool[i * 3 * nf + a];
        for (int64_t a = 0; a < d; a++) {
            ui[a] = TANH(ui[a]);
            REAL k = 1;
            if (dropout > 0.0)
                k = lamp_rng_uniform(rng) < dropout ? 0 : (REAL)(1.0 / (1.0 - dropout));
            kp[a] = k;
            energy += (double)w2[a] * (double)(ui[a] * k);
        }
        energies[gi] = energy;
    }
}

/* Phase: backward of the readout attention: dz (dh part) -> dqr, dkv. */
static inline __attribute__((always_inline)) void F(readout_bwd_range_body)(void *ctx, int64_t lo, int64_t hi, int tid,
                                                                const int64_t e)
{
    const F(state) *s = ctx;
    const int64_t d = s->d, H = s->heads;
    (void)tid;
    REAL *da = s->scratch;
    const int agree = s->agree;
    const REAL *k0 = agree ? F(wblock)(s, s->ablk + LAMP_RANKER_K0) : NULL,
               *v0 = agree ? F(wblock)(s, s->ablk + LAMP_RANKER_V0) : NULL;
    REAL *gk0 = agree ? F(gblock)(s, s->ablk + LAMP_RANKER_K0) : NULL,
         *gv0 = agree ? F(gblock)(s, s->ablk + LAMP_RANKER_V0) : NULL;
    for (int64_t i = lo; i < hi; i++) {
        const int64_t t0 = s->tok_start[i], n = s->tok_start[i + 1] - t0;
        const REAL *dh = s->dz + i * 2 * d, *q = s->qr + i * d;
        REAL *dq = s->dqr + i * d;
        for (int64_t a = 0; a < d; a++)
            dq[a] = 0;
        for (int64_t h = 0; h < H; h++) {
            REAL wt = 0, a0 = 0, da0 = 0;
            if (agree) { /* the null slot: value V0_h, weight alpha0 */
                a0 = s->alpha0[i * H + h];
                da0 = F(dot)(dh + h * e, v0 + h * e, e);
                wt = a0 * da0;
            }
            for (int64_t t = 0; t < n; t++) {
                da[t] = F(dot)(dh + h * e, s->kv + (t0 + t) * 2 * d + d + h * e, e);
                wt += s->alpha[(t0 + t) * H + h] * da[t];
            }
            for (int64_t t = 0; t < n; t++) {
                REAL al = s->alpha[(t0 + t) * H + h], ds = al * (da[t] - wt) * s->scale;
                REAL *dk = s->dkv + (t0 + t) * 2 * d + h * e, *dv = dk + d;
                if (agree)
                    s->dsl[(t0 + t) * H + h] = al * (da[t] - wt); /* d loss / d logit: UB's gradient */
                F(axpy)(ds, s->kv + (t0 + t) * 2 * d + h * e, dq + h * e, e);
                for (int64_t c = 0; c < e; c++) {
                    dk[c] = ds * q[h * e + c];
                    dv[c] = al * dh[h * e + c];
                }
            }
            if (agree) {
                REAL ds0 = a0 * (da0 - wt) * s->scale;
                for (int64_t c = 0; c < e; c++) {
                    dq[h * e + c] += ds0 * k0[h * e + c];
                    gk0[h * e + c] += ds0 * q[h * e + c];
                    gv0[h * e + c] += a0 * dh[h * e + c];
                }
            }
        }
    }
}

BY_HEAD_WIDTH(readout_bwd_range)

/* Phase: dp *= 1 - u^2 for layer s->layer. */
RANKER_CLONES __attribute__((noinline)) static void F(dtanh_range)(void *ctx, int64_t lo, int64_t hi, int tid)
{
    (void)tid;
    const F(state) *s = ctx;
    const REAL *u = s->u + F(lk)(s, s->layer) * s->tmax * s->d;
    for (int64_t k = s->tok_start[lo] * s->d; k < s->tok_start[hi] * s->d; k++)
        s->dp[k] *= 1 - u[k] * u[k];
}

/* Phase: backward of the causal self-attention of layer s->layer: dO -> dqkv. */
static inline __attribute__((always_inline)) void F(attn_bwd_range_body)(void *ctx, int64_t lo, int64_t hi, int tid,
                                                                const int64_t e)
{
    const F(state) *s = ctx;
    const int64_t d = s->d, H = s->heads, lk = F(lk)(s, s->layer);
    const REAL *qkv = s->qkv + lk * s->tmax * 3 * d, *attl = s->att + lk * H * s->amax;
    (void)tid;
    REAL *da = s->scratch;
    for (int64_t i = lo; i < hi; i++) {
        const int64_t t0 = s->tok_start[i], n = s->tok_start[i + 1] - t0;
        memset(s->dqkv + t0 * 3 * d, 0, sizeof(REAL) * (size_t)(n * 3 * d));
        for (int64_t h = 0; h < H; h++) {
            const REAL *a = attl + H * s->att_start[i] + h * n * n;
            for (int64_t j = 0; j < n; j++) {
                const REAL *row = a + j * n, *doj = s->dO + (t0 + j) * d + h * e,
                           *qj = qkv + (t0 + j) * 3 * d + h * e;
                REAL r = 0, *dqj = s->dqkv + (t0 + j) * 3 * d + h * e;
                for (int64_t k = 0; k <= j; k++) {
                    da[k] = F(dot)(doj, qkv + (t0 + k) * 3 * d + 2 * d + h * e, e);
                    r += row[k] * da[k];
                }
                for (int64_t k = 0; k <= j; k++) {
                    REAL ds = row[k] * (da[k] - r) * s->scale;
                    REAL *dk = s->dqkv + (t0 + k) * 3 * d + d + h * e;
                    da[k] = ds;
                    F(axpy)(ds, qj, dk, e);
                    F(axpy)(row[k], doj, dk + d, e);
                }
                F(wsum_add)(da, qkv + t0 * 3 * d + d + h * e, 3 * d, j + 1, dqj, e); /* dq_j += sum ds K */
            }
        }
    }
}

BY_HEAD_WIDTH(attn_bwd_range)

/* Backward pass of the chunk: ge[i] = d loss / d energy of candidate c0 + i; the dense blocks' gradients
 * into s->gw, the gradients of the token inputs (t x d) and of the candidate embeddings (n x d) into
 * dx_out and dc_out (scattered into the embedding tables later, in a fixed order). */
RANKER_CLONES __attribute__((noinline)) static void F(chunk_backward)(F(state) *s, const double *ge, REAL *dx_out,
                                                                    REAL *dc_out)
{
    const int64_t d = s->d, T = s->t, N = s->n;
    const lamp_ranker_batch *b = s->b;
    const REAL *w2 = F(wblock)(s, LAMP_RANKER_W2);
    REAL *g_w2 = F(gblock)(s, LAMP_RANKER_W2);
    double gb2 = 0.0, ggamma = 0.0;
    const int64_t nf = s->nf;
    REAL *g_wp = s->agree ? F(gblock)(s, s->ablk + LAMP_RANKER_WP) : NULL;
    for (int64_t i = 0; i < N; i++) {
        REAL g = (REAL)ge[i];
        const REAL *ui = s->uo + i * d, *kp = s->keep + i * d;
        REAL *du = s->duo + i * d;
        gb2 += ge[i];
        if (g_wp)
            F(axpy)(g, s->pool + i * 3 * nf, g_wp, 3 * nf);
        if (b->prior)
            ggamma += ge[i] * b->prior[s->c0 + i];
        for (int64_t a = 0; a < d; a++) {
            g_w2[a] += g * ui[a] * kp[a];
            du[a] = g * w2[a] * kp[a] * (1 - ui[a] * ui[a]); /* through dropout and tanh */
        }
    }
    F(gblock)(s, LAMP_RANKER_B2)[0] += (REAL)gb2;
    F(gblock)(s, LAMP_RANKER_GAMMA)[0] += (REAL)ggamma;
    F(colsum_add)(s->duo, N, d, s->ones, F(gblock)(s, LAMP_RANKER_B1));
    F(gemm)(1, 0, d, 2 * d, N, 1, s->duo, d, s->z, 2 * d, 1, F(gblock)(s, LAMP_RANKER_W1), 2 * d);
    if (s->agree)
        F(gemm)(1, 0, d, 3 * nf, N, 1, s->duo, d, s->pool, 3 * nf, 1, F(gblock)(s, s->ablk + LAMP_RANKER_W1P), 3 * nf);
    F(gemm)(0, 0, N, 2 * d, d, 1, s->duo, d, F(wblock)(s, LAMP_RANKER_W1), 2 * d, 0, s->dz, 2 * d);
    F(readout_bwd_range)(s, 0, N, 0);
    F(gemm)(1, 0, d, d, N, 1, s->dqr, d, s->c, d, 1, F(gblock)(s, LAMP_RANKER_WQ), d);
    /* d c = the second half of d z + dqr Wq, straight into the chunk's slice of the output */
    for (int64_t i = 0; i < N; i++)
        memcpy(dc_out + i * d, s->dz + i * 2 * d + d, sizeof(REAL) * (size_t)d);
    F(gemm)(0, 0, N, d, d, 1, s->dqr, d, F(wblock)(s, LAMP_RANKER_WQ), d, 1, dc_out, d);
    if (T > 0) {
        /* the token gradient lives in dx_out throughout, updated in place layer by layer: d x_final from
         * the readout, then per layer dy = dx + dp F1 (feed-forward residual) and dx = dy + dqkv [Aq; Ak; Av] */
        REAL *dx = dx_out;
        const REAL *xf = F(xbuf)(s, s->nl);
        F(gemm)(1, 0, 2 * d, d, T, 1, s->dkv, 2 * d, xf, d, 1, F(gblock)(s, LAMP_RANKER_WK), d);
        if (s->agree) { /* WKF += dk^T f, UB += dlogit^T f */
            F(gemm)(1, 0, d, nf, T, 1, s->dkv, 2 * d, s->feats, nf, 1, F(gblock)(s, s->ablk + LAMP_RANKER_WKF), nf);
            F(gemm)(1, 0, s->heads, nf, T, 1, s->dsl, s->heads, s->feats, nf, 1,
                    F(gblock)(s, s->ablk + LAMP_RANKER_UB), nf);
        }
        F(gemm)(0, 0, T, d, 2 * d, 1, s->dkv, 2 * d, F(wblock)(s, LAMP_RANKER_WK), d, 0, dx, d);
        for (int64_t l = s->nl - 1; l >= 0; l--) {
            const REAL *x = F(xbuf)(s, l), *o = s->o + l * s->tmax * d, *y = s->y + l * s->tmax * d,
                       *u = s->u + l * s->tmax * d;
            s->layer = l;
            F(colsum_add)(dx, T, d, s->ones, F(gblock)(s, F(lblk)(l, LAMP_RANKER_FB2)));
            F(gemm)(1, 0, d, d, T, 1, dx, d, u, d, 1, F(gblock)(s, F(lblk)(l, LAMP_RANKER_F2)), d);
            F(gemm)(0, 0, T, d, d, 1, dx, d, F(wblock)(s, F(lblk)(l, LAMP_RANKER_F2)), d, 0, s->dp, d);
            F(dtanh_range)(s, 0, N, 0);
            F(colsum_add)(s->dp, T, d, s->ones, F(gblock)(s, F(lblk)(l, LAMP_RANKER_FB1)));
            F(gemm)(1, 0, d, d, T, 1, s->dp, d, y, d, 1, F(gblock)(s, F(lblk)(l, LAMP_RANKER_F1)), d);
            F(gemm)(0, 0, T, d, d, 1, s->dp, d, F(wblock)(s, F(lblk)(l, LAMP_RANKER_F1)), d, 1, dx, d); /* dy */
            F(gemm)(1, 0, d, d, T, 1, dx, d, o, d, 1, F(gblock)(s, F(lblk)(l, LAMP_RANKER_AO)), d);
            F(gemm)(0, 0, T, d, d, 1, dx, d, F(wblock)(s, F(lblk)(l, LAMP_RANKER_AO)), d, 0, s->dO, d);
            F(attn_bwd_range)(s, 0, N, 0);
            F(gemm)(1, 0, 3 * d, d, T, 1, s->dqkv, 3 * d, x, d, 1, F(gblock)(s, F(lblk)(l, LAMP_RANKER_AQ)), d);
            F(gemm)(0, 0, T, d, 3 * d, 1, s->dqkv, 3 * d, F(wblock)(s, F(lblk)(l, LAMP_RANKER_AQ)), d, 1, dx, d);
        }
    }
}

#if OWN_GEMM
/* dst[c * rows + r] = src[r * cols + c]: a rows x cols matrix transposed. */
static void F(pack_t)(const REAL *src, int64_t rows, int64_t cols, REAL *dst)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            dst[c * rows + r] = src[r * cols + c];
}
#endif

static REAL *F(carve)(REAL **p, int64_t n)
{
    REAL *r = *p;
    *p += n;
    return r;
}

/* One worker (of nw): the buffers for chunks w, w + nw, w + 2 nw, ... of the plan (csrc/common/threads.h). */
typedef struct {
    F(state) s;
    const chunk_plan *plan;
    int nw, loss_kind;
    double dropout, norm;
    uint64_t rng0;
    double *energies, *ge, *chunk_loss; /* ge: N (whole batch); chunk_loss: per chunk */
    REAL *gw_all, *dx_all, *dc_all;     /* per chunk ndense; T x d; N x d */
    int64_t ndense;
    void *mem;
    int64_t *imem;
    int enc_own;
    size_t mem_bytes, all_bytes;
    double enc_mem[3 * 512];
} F(worker);

/* Chunks [lo, hi) of the plan (one per piece), each forward (and backward) in turn, with the buffers
 * of worker part % nw. */
static void F(worker_range)(void *ctx, int64_t lo, int64_t hi, int64_t part)
{
    F(worker) *wk = (F(worker) *)ctx + part % ((F(worker) *)ctx)->nw;
    F(state) *s = &wk->s;
    const chunk_plan *pl = wk->plan;
    const lamp_ranker_batch *b = s->b;
    const int64_t M = b->m, d = s->d;
    for (int64_t k = lo; k < hi; k++) {
        const int64_t q0 = pl->q0[k], q1 = pl->q0[k + 1];
        s->c0 = q0 * M, s->n = (q1 - q0) * M, s->t = pl->t0[k + 1] - pl->t0[k];
        s->tok_src = pl->tok_src + pl->t0[k];
        s->tok_start[0] = 0, s->att_start[0] = 0;
        for (int64_t i = 0; i < s->n; i++) {
            int64_t nt = s->ntok[s->c0 + i];
            s->tok_start[i + 1] = s->tok_start[i] + nt;
            s->att_start[i + 1] = s->att_start[i] + nt * nt;
        }
        F(chunk_forward)(s, wk->dropout, wk->rng0, wk->energies);
        if (!b->labels)
            continue;
        double sum = 0.0;
        double *ge = wk->ge ? wk->ge + s->c0 : NULL;
        for (int64_t qi = q0; qi < q1; qi++)
            sum += query_loss(wk->loss_kind, wk->energies + qi * M, M, b->labels[qi], ge ? ge + (qi - q0) * M : NULL);
        wk->chunk_loss[k] = sum;
        if (!s->train)
            continue;
        for (int64_t i = 0; i < s->n; i++)
            ge[i] /= wk->norm;
        s->gw = wk->gw_all + k * wk->ndense;
        memset(s->gw, 0, sizeof(REAL) * (size_t)wk->ndense);
        F(chunk_backward)(s, ge, wk->dx_all + pl->t0[k] * d, wk->dc_all + s->c0 * d);
    }
}

/* Buffers of one worker, sized for the plan's largest chunk. */
static int F(worker_init)(F(worker) *wk, const chunk_plan *pl, int64_t L)
{
    F(state) *s = &wk->s;
    const int64_t d = s->d, H = s->heads, nl = s->nl, tmax = pl->tmax, nmax = pl->nmax, amax = pl->amax;
    s->tmax = tmax, s->nmax = nmax, s->amax = amax;
    const int64_t nlk = s->train ? nl : (nl > 0 ? 1 : 0), nx = s->train ? nl + 1 : 1;
    const int64_t one = tmax > nmax ? tmax : nmax;
    int64_t total = nx * tmax * d + nlk * tmax * (s->train ? 6 : 5) * d + nlk * H * amax + 4 * nmax * d + 2 * nmax * d +
                    2 * tmax * d + tmax * H + one + L + (d + 4) * ((L + 7) / 8 * 8);
    if (s->train)
        total += 2 * nmax * d + 2 * nmax * d + 2 * tmax * d + 2 * tmax * d + 3 * tmax * d;
    if (s->agree)
        total += tmax * s->nf + nmax * 3 * s->nf + nmax * H + (s->train ? tmax * H : 0);
    REAL *mem = ws_get(sizeof(REAL) * (size_t)total, &wk->mem_bytes);
    int64_t *imem = malloc(sizeof(int64_t) * (size_t)(2 * (nmax + 1)));
    wk->mem = mem, wk->imem = imem;
    s->enc = d <= 1024 ? wk->enc_mem : malloc(sizeof(double) * (size_t)(3 * d / 2));
    wk->enc_own = d > 1024;
    if (!mem || !imem || !s->enc)
        return -1;
    REAL *p = mem;
    s->xs = F(carve)(&p, nx * tmax * d);
    s->qkv = F(carve)(&p, nlk * tmax * 3 * d);
    s->o = F(carve)(&p, nlk * tmax * d);
    s->y = s->train ? F(carve)(&p, nlk * tmax * d) : NULL;
    s->u = F(carve)(&p, nlk * tmax * d);
    s->att = F(carve)(&p, nlk * H * amax);
    s->c = F(carve)(&p, nmax * d);
    s->qr = F(carve)(&p, nmax * d);
    s->uo = F(carve)(&p, nmax * d);
    s->keep = F(carve)(&p, nmax * d);
    s->z = F(carve)(&p, 2 * nmax * d);
    s->kv = F(carve)(&p, 2 * tmax * d);
    s->alpha = F(carve)(&p, tmax * H);
    s->ones = F(carve)(&p, one);
    s->scratch = F(carve)(&p, L);
    s->lp = (L + 7) / 8 * 8;
    s->kt = F(carve)(&p, (d + 4) * s->lp);
    for (int64_t k = 0; k < one; k++)
        s->ones[k] = 1;
    if (s->train) {
        s->duo = F(carve)(&p, nmax * d);
        s->dqr = F(carve)(&p, nmax * d);
        s->dz = F(carve)(&p, 2 * nmax * d);
        s->dkv = F(carve)(&p, 2 * tmax * d);
        s->dp = F(carve)(&p, tmax * d);
        s->dO = F(carve)(&p, tmax * d);
        s->dqkv = F(carve)(&p, 3 * tmax * d);
    }
    if (s->agree) {
        s->feats = F(carve)(&p, tmax * s->nf);
        s->pool = F(carve)(&p, nmax * 3 * s->nf);
        s->alpha0 = F(carve)(&p, nmax * H);
        s->dsl = s->train ? F(carve)(&p, tmax * H) : NULL;
    }
    s->tok_start = imem;
    s->att_start = imem + nmax + 1;
    return 0;
}

/* The whole call: the plan's chunks split over (up to) two workers; everything that sums over chunks
 * (loss, dense gradients, embedding gradients) is summed afterwards in chunk order, so the result does
 * not depend on the number of threads. */
/* Adds g (d entries), the gradient of one token's or candidate's input, to the embedding gradients of the
 * entity, relation and object of its triple ids = (e, r, o). */
static void F(add_embedding_grads)(double *g_ent, double *g_rel, double *g_obj, const int64_t *ids, const REAL *g,
                                   int64_t d)
{
    double *pe = g_ent + ids[0] * d, *pr = g_rel + ids[1] * d, *po = g_obj + ids[2] * d;
    for (int64_t a = 0; a < d; a++) {
        pe[a] += (double)g[a];
        pr[a] += (double)g[a];
        po[a] += (double)g[a];
    }
}

static int F(forward_backward)(const lamp_ranker_dims *dims, const double *params, const lamp_ranker_batch *b,
                               int loss_kind, double dropout, uint64_t seed, double *energies, double *loss,
                               double *grads, const int64_t *off, const int64_t *ntok, const chunk_plan *pl,
                               int nthreads, lamp_error *err)
{
    const int64_t d = dims->width, M = b->m, Q = b->q, L = b->l > 0 ? b->l : 1, nl = dims->layers,
                  H = dims->heads, N = Q * M, T = pl->t0[pl->k];
    const int64_t nblocks = lamp_ranker_num_blocks(dims), dense0 = off[LAMP_RANKER_WQ],
                  ndense = off[nblocks] - dense0;
    const int train = grads != NULL;
    int rc = LAMP_OK;
    F(worker) wk[2];
    memset(wk, 0, sizeof(wk));
    double *freq = malloc(sizeof(double) * (size_t)(d / 2));
    double *chunk_loss = malloc(sizeof(double) * (size_t)pl->k);
    double *ge = train ? malloc(sizeof(double) * (size_t)N) : NULL;
    REAL *w = sizeof(REAL) != sizeof(double) ? malloc(sizeof(REAL) * (size_t)ndense) : NULL, *wt = NULL;
    /* the per-chunk gradients in one cached block: gw (k x ndense), dx (T x d), dc (N x d) */
    size_t all_bytes = 0;
    REAL *all = train ? ws_get(sizeof(REAL) * (size_t)(ndense * pl->k + (T > 0 ? T : 1) * d + N * d), &all_bytes)
                      : NULL;
    REAL *gw_all = all, *dx_all = all ? all + ndense * pl->k : NULL,
         *dc_all = all ? dx_all + (T > 0 ? T : 1) * d : NULL;
    if (!freq || !chunk_loss || (train && (!ge || !gw_all || !dx_all || !dc_all)) ||
        (sizeof(REAL) != sizeof(double) && !w)) {
        rc = lamp_error_set(err, LAMP_ENOMEM, "out of memory in the ranker");
        goto finally;
    }
    for (int64_t a = 0; a < d / 2; a++)
        freq[a] = pow(1000.0, -(double)(2 * a) / (double)d);
    if (w)
        for (int64_t k = 0; k < ndense; k++)
            w[k] = (REAL)params[dense0 + k];
    const REAL *wd = w ? w : (const REAL *)(const void *)(params + dense0);
    int own = 0;
#if OWN_GEMM
    own = d % 32 == 0 && LAMP_HAVE_AVX512();
    if (own) { /* the forward products' weights transposed, each group in its own place */
        wt = malloc(sizeof(REAL) * (size_t)ndense);
        if (!wt) {
            rc = lamp_error_set(err, LAMP_ENOMEM, "out of memory in the ranker");
            goto finally;
        }
        const int64_t groups[][3] = {{LAMP_RANKER_WQ, 1, 1}, {LAMP_RANKER_WK, 2, 1}, {LAMP_RANKER_W1, 1, 2}};
        for (int g = 0; g < 3; g++)
            F(pack_t)(wd + off[groups[g][0]] - dense0, groups[g][1] * d, groups[g][2] * d,
                      wt + off[groups[g][0]] - dense0);
        const int64_t lgroups[][2] = {{LAMP_RANKER_AQ, 3}, {LAMP_RANKER_AO, 1}, {LAMP_RANKER_F1, 1}, {LAMP_RANKER_F2, 1}};
        for (int64_t l = 0; l < nl; l++)
            for (int g = 0; g < 4; g++) {
                const int64_t o0 = off[F(lblk)(l, (int)lgroups[g][0])] - dense0;
                F(pack_t)(wd + o0, lgroups[g][1] * d, d, wt + o0);
            }
    }
#endif
    int nw = nthreads > 1 && pl->k > 1 ? 2 : 1;
    for (int t = 0; t < nw; t++) {
        F(worker) *x = &wk[t];
        F(state) *s = &x->s;
        s->dims = dims, s->b = b, s->params = params, s->off = off, s->d = d, s->heads = H, s->e = d / H;
        s->nl = nl, s->L = L, s->dense0 = dense0, s->scale = (REAL)(1.0 / sqrt((double)(d / H)));
        s->train = train, s->ntok = ntok, s->freq = freq;
        s->agree = dims->agree != 0, s->nf = LAMP_RANKER_ID_FEATURES + dims->aux;
        s->ablk = lamp_ranker_agree_block(dims, 0);
        s->w = wd, s->wt = wt, s->own = own;
        x->plan = pl, x->nw = nw, x->loss_kind = loss_kind, x->dropout = dropout;
        x->norm = loss_kind == LAMP_RANKER_BINARY ? (double)(Q * M) : (double)Q;
        x->rng0 = seed ^ 0xa5a5a5a5ULL, x->energies = energies, x->ge = ge, x->chunk_loss = chunk_loss;
        x->gw_all = gw_all, x->dx_all = dx_all, x->dc_all = dc_all, x->ndense = ndense;
        if (F(worker_init)(x, pl, L) < 0) {
            rc = lamp_error_set(err, LAMP_ENOMEM, "out of memory in the ranker");
            goto finally;
        }
    }
    lamp_run_parts(F(worker_range), wk, pl->k, pl->k, nw); /* chunk k on thread k % nw */
    if (b->labels) {
        double sum = 0.0;
        for (int64_t k = 0; k < pl->k; k++)
            sum += chunk_loss[k];
        *loss = sum / wk[0].norm;
    }
    if (train) {
        for (int64_t j = 0; j < ndense; j++) {
            double g = 0.0;
            for (int64_t k = 0; k < pl->k; k++)
                g += (double)gw_all[k * ndense + j];
            grads[dense0 + j] = g;
        }
        memset(grads, 0, sizeof(double) * (size_t)dense0);
        double *g_ent = grads + off[LAMP_RANKER_ENT], *g_rel = grads + off[LAMP_RANKER_REL],
               *g_obj = grads + off[LAMP_RANKER_OBJ];
        for (int64_t t = 0; t < T; t++)
            F(add_embedding_grads)(g_ent, g_rel, g_obj, b->evidence + 3 * pl->tok_src[t], dx_all + t * d, d);
        for (int64_t i = 0; i < N; i++)
            F(add_embedding_grads)(g_ent, g_rel, g_obj, b->candidates + 3 * i, dc_all + i * d, d);
    }
finally:
    for (int t = 0; t < 2; t++) {
        ws_put(wk[t].mem, wk[t].mem_bytes);
        free(wk[t].imem);
        if (wk[t].enc_own)
            free(wk[t].s.enc);
    }
    free(freq);
    free(chunk_loss);
    free(ge);
    free(w);
    free(wt);
    ws_put(all, all_bytes);
    return rc;
}

#undef F
#undef CAT2
#undef CAT2_
/* the instantiation's parameters, so the next #include can define them again */
#undef REAL
#undef SFX
#undef GEMM
#undef GEMV
#undef EXP
#undef TANH
#undef FAST_SINCOS
#undef BY_HEAD_WIDTH
#undef IREAL
#undef VEXP_V8F
#undef OWN_GEMM
