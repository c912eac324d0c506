/* Part of the ranker's template (ranker_template.h): the backward pass of a chunk of queries, in the
 * reverse order of the forward pass. */

/* Phase: backward of the readout attention: d_cand_mlp_in (its dh half) -> d_cand_query, d_tok_readout_kv (and
 * with agree d_tok_readout_logit and the gradients of K0, V0). */
static inline __attribute__((always_inline)) void F(readout_bwd_range_body)(void *ctx, int64_t lo, int64_t hi, int tid,
                                                                const int64_t e)
{
    const F(state) *s = ctx;
    const int64_t d = s->width, H = s->heads;
    (void)tid;
    REAL *da = s->slot_scratch;
    const int agree = s->agree;
    const REAL *k0 = agree ? F(agree_w)(s, LAMP_RANKER_K0) : NULL,
               *v0 = agree ? F(agree_w)(s, LAMP_RANKER_V0) : NULL;
    REAL *gk0 = agree ? F(agree_grad)(s, LAMP_RANKER_K0) : NULL,
         *gv0 = agree ? F(agree_grad)(s, LAMP_RANKER_V0) : NULL;
    for (int64_t i = lo; i < hi; i++) {
        const int64_t t0 = s->tok_start[i], n = s->tok_start[i + 1] - t0;
        const REAL *dh = s->d_cand_mlp_in + i * 2 * d, *q = s->cand_query + i * d;
        REAL *dq = s->d_cand_query + i * d;
        for (int64_t a = 0; a < d; a++)
            dq[a] = 0;
        for (int64_t h = 0; h < H; h++) {
            REAL wt = 0, a0 = 0, da0 = 0;
            if (agree) { /* the null slot: value V0_h, weight alpha0 */
                a0 = s->cand_null_alpha[i * H + h];
                da0 = F(dot)(dh + h * e, v0 + h * e, e);
                wt = a0 * da0;
            }
            for (int64_t t = 0; t < n; t++) {
                da[t] = F(dot)(dh + h * e, s->tok_readout_kv + (t0 + t) * 2 * d + d + h * e, e);
                wt += s->tok_readout_alpha[(t0 + t) * H + h] * da[t];
            }
            for (int64_t t = 0; t < n; t++) {
                REAL al = s->tok_readout_alpha[(t0 + t) * H + h], ds = al * (da[t] - wt) * s->att_scale;
                REAL *dk = s->d_tok_readout_kv + (t0 + t) * 2 * d + h * e, *dv = dk + d;
                if (agree)
                    s->d_tok_readout_logit[(t0 + t) * H + h] = al * (da[t] - wt); /* d loss / d logit: UB's gradient */
                F(axpy)(ds, s->tok_readout_kv + (t0 + t) * 2 * d + h * e, dq + h * e, e);
                for (int64_t c = 0; c < e; c++) {
                    dk[c] = ds * q[h * e + c];
                    dv[c] = al * dh[h * e + c];
                }
            }
            if (agree) {
                REAL ds0 = a0 * (da0 - wt) * s->att_scale;
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

/* Phase: d_tok_ff *= 1 - U^2 (through the feed-forward tanh) for layer s->layer. */
RANKER_CLONES __attribute__((noinline)) static void F(dtanh_range)(void *ctx, int64_t lo, int64_t hi, int tid)
{
    (void)tid;
    const F(state) *s = ctx;
    const REAL *u = s->tok_ff + F(layer_slot)(s, s->layer) * s->max_tokens * s->width;
    for (int64_t k = s->tok_start[lo] * s->width; k < s->tok_start[hi] * s->width; k++)
        s->d_tok_ff[k] *= 1 - u[k] * u[k];
}

/* Phase: backward of the causal self-attention of layer s->layer: d_tok_att_out -> d_tok_qkv. */
static inline __attribute__((always_inline)) void F(attn_bwd_range_body)(void *ctx, int64_t lo, int64_t hi, int tid,
                                                                const int64_t e)
{
    const F(state) *s = ctx;
    const int64_t d = s->width, H = s->heads, lk = F(layer_slot)(s, s->layer);
    const REAL *qkv = s->tok_qkv + lk * s->max_tokens * 3 * d, *attl = s->att_weights + lk * H * s->max_att;
    (void)tid;
    REAL *da = s->slot_scratch;
    for (int64_t i = lo; i < hi; i++) {
        const int64_t t0 = s->tok_start[i], n = s->tok_start[i + 1] - t0;
        memset(s->d_tok_qkv + t0 * 3 * d, 0, sizeof(REAL) * (size_t)(n * 3 * d));
        for (int64_t h = 0; h < H; h++) {
            const REAL *a = attl + H * s->att_start[i] + h * n * n;
            for (int64_t j = 0; j < n; j++) {
                const REAL *row = a + j * n, *doj = s->d_tok_att_out + (t0 + j) * d + h * e,
                           *qj = qkv + (t0 + j) * 3 * d + h * e;
                REAL r = 0, *dqj = s->d_tok_qkv + (t0 + j) * 3 * d + h * e;
                for (int64_t k = 0; k <= j; k++) {
                    da[k] = F(dot)(doj, qkv + (t0 + k) * 3 * d + 2 * d + h * e, e);
                    r += row[k] * da[k];
                }
                for (int64_t k = 0; k <= j; k++) {
                    REAL ds = row[k] * (da[k] - r) * s->att_scale;
                    REAL *dk = s->d_tok_qkv + (t0 + k) * 3 * d + d + h * e;
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

/* Backward pass of the chunk: ge[i] = d loss / d energy of candidate first_cand + i; the dense blocks'
 * gradients into s->dense_grad, the gradients of the token inputs (T x d) and of the candidate embeddings
 * (N x d) into dx_out and dc_out (scattered into the embedding tables later, in a fixed order). */
RANKER_CLONES __attribute__((noinline)) static void F(chunk_backward)(F(state) *s, const double *ge, REAL *dx_out,
                                                                    REAL *dc_out)
{
    const int64_t d = s->width, T = s->n_tokens, N = s->n_cands;
    const lamp_ranker_batch *b = s->batch;
    const REAL *w2 = F(block_w)(s, LAMP_RANKER_W2);
    REAL *g_w2 = F(block_grad)(s, LAMP_RANKER_W2);
    double gb2 = 0.0, ggamma = 0.0;
    const int64_t nf = s->n_feats;
    REAL *g_wp = s->agree ? F(agree_grad)(s, LAMP_RANKER_WP) : NULL;
    for (int64_t i = 0; i < N; i++) {
        REAL g = (REAL)ge[i];
        const REAL *ui = s->cand_hidden + i * d, *kp = s->cand_keep + i * d;
        REAL *du = s->d_cand_hidden + i * d;
        gb2 += ge[i];
        if (g_wp)
            F(axpy)(g, s->cand_pool + i * 3 * nf, g_wp, 3 * nf);
        if (b->prior)
            ggamma += ge[i] * b->prior[s->first_cand + i];
        for (int64_t a = 0; a < d; a++) {
            g_w2[a] += g * ui[a] * kp[a];
            du[a] = g * w2[a] * kp[a] * (1 - ui[a] * ui[a]); /* through dropout and tanh */
        }
    }
    F(block_grad)(s, LAMP_RANKER_B2)[0] += (REAL)gb2;
    F(block_grad)(s, LAMP_RANKER_GAMMA)[0] += (REAL)ggamma;
    F(colsum_add)(s->d_cand_hidden, N, d, s->ones, F(block_grad)(s, LAMP_RANKER_B1));
    F(gemm)(1, 0, d, 2 * d, N, 1, s->d_cand_hidden, d, s->cand_mlp_in, 2 * d, 1, F(block_grad)(s, LAMP_RANKER_W1),
            2 * d);
    if (s->agree)
        F(gemm)(1, 0, d, 3 * nf, N, 1, s->d_cand_hidden, d, s->cand_pool, 3 * nf, 1, F(agree_grad)(s, LAMP_RANKER_W1P),
                3 * nf);
    F(gemm)(0, 0, N, 2 * d, d, 1, s->d_cand_hidden, d, F(block_w)(s, LAMP_RANKER_W1), 2 * d, 0, s->d_cand_mlp_in,
            2 * d);
    F(readout_bwd_range)(s, 0, N, 0);
    F(gemm)(1, 0, d, d, N, 1, s->d_cand_query, d, s->cand_emb, d, 1, F(block_grad)(s, LAMP_RANKER_WQ), d);
    /* d c = the second half of d z + dqr Wq, straight into the chunk's slice of the output */
    for (int64_t i = 0; i < N; i++)
        memcpy(dc_out + i * d, s->d_cand_mlp_in + i * 2 * d + d, sizeof(REAL) * (size_t)d);
    F(gemm)(0, 0, N, d, d, 1, s->d_cand_query, d, F(block_w)(s, LAMP_RANKER_WQ), d, 1, dc_out, d);
    if (T > 0) {
        /* the token gradient lives in dx_out throughout, updated in place layer by layer: d x_final from
         * the readout, then per layer dy = dx + dp F1 (feed-forward residual) and dx = dy + dqkv [Aq; Ak; Av] */
        REAL *dx = dx_out;
        const REAL *xf = F(layer_input)(s, s->n_layers);
        F(gemm)(1, 0, 2 * d, d, T, 1, s->d_tok_readout_kv, 2 * d, xf, d, 1, F(block_grad)(s, LAMP_RANKER_WK), d);
        if (s->agree) { /* WKF += dk^T f, UB += dlogit^T f */
            F(gemm)(1, 0, d, nf, T, 1, s->d_tok_readout_kv, 2 * d, s->tok_feats, nf, 1,
                    F(agree_grad)(s, LAMP_RANKER_WKF), nf);
            F(gemm)(1, 0, s->heads, nf, T, 1, s->d_tok_readout_logit, s->heads, s->tok_feats, nf, 1,
                    F(agree_grad)(s, LAMP_RANKER_UB), nf);
        }
        F(gemm)(0, 0, T, d, 2 * d, 1, s->d_tok_readout_kv, 2 * d, F(block_w)(s, LAMP_RANKER_WK), d, 0, dx, d);
        for (int64_t l = s->n_layers - 1; l >= 0; l--) {
            const REAL *x = F(layer_input)(s, l), *o = s->tok_att_out + l * s->max_tokens * d,
                       *y = s->tok_resid + l * s->max_tokens * d, *u = s->tok_ff + l * s->max_tokens * d;
            s->layer = l;
            F(colsum_add)(dx, T, d, s->ones, F(layer_grad)(s, l, LAMP_RANKER_FB2));
            F(gemm)(1, 0, d, d, T, 1, dx, d, u, d, 1, F(layer_grad)(s, l, LAMP_RANKER_F2), d);
            F(gemm)(0, 0, T, d, d, 1, dx, d, F(layer_w)(s, l, LAMP_RANKER_F2), d, 0, s->d_tok_ff, d);
            F(dtanh_range)(s, 0, N, 0);
            F(colsum_add)(s->d_tok_ff, T, d, s->ones, F(layer_grad)(s, l, LAMP_RANKER_FB1));
            F(gemm)(1, 0, d, d, T, 1, s->d_tok_ff, d, y, d, 1, F(layer_grad)(s, l, LAMP_RANKER_F1), d);
            F(gemm)(0, 0, T, d, d, 1, s->d_tok_ff, d, F(layer_w)(s, l, LAMP_RANKER_F1), d, 1, dx, d); /* dy */
            F(gemm)(1, 0, d, d, T, 1, dx, d, o, d, 1, F(layer_grad)(s, l, LAMP_RANKER_AO), d);
            F(gemm)(0, 0, T, d, d, 1, dx, d, F(layer_w)(s, l, LAMP_RANKER_AO), d, 0, s->d_tok_att_out, d);
            F(attn_bwd_range)(s, 0, N, 0);
            F(gemm)(1, 0, 3 * d, d, T, 1, s->d_tok_qkv, 3 * d, x, d, 1, F(layer_grad)(s, l, LAMP_RANKER_AQ), d);
            F(gemm)(0, 0, T, d, 3 * d, 1, s->d_tok_qkv, 3 * d, F(layer_w)(s, l, LAMP_RANKER_AQ), d, 1, dx, d);
        }
    }
}
