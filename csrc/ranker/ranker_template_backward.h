/* Part of the ranker's template (ranker_template.h): the backward pass of a chunk of queries, in the
 * reverse order of the forward pass. */

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
