/* Part of the ranker's template (ranker_template.h): the forward pass of a chunk of queries --
 * embedding, causal self-attention, feed-forward, the readout attention, the MLP and the energies. */

/* Phase: the input tokens x_j = Ent + Rel + Obj + enc(gap) (tok_state), the candidates' embeddings c (cand_emb),
 * and with agree the tokens' features f_j (tok_feats) and the candidates' pooled summaries p (cand_pool). */
RANKER_CLONES __attribute__((noinline)) static void F(embed_range)(void *ctx, int64_t lo, int64_t hi, int tid)
{
    (void)tid;
    const F(state) *s = ctx;
    const lamp_ranker_batch *b = s->batch;
    const int64_t d = s->width;
    double *arg = s->time_enc, *sn = s->time_enc + d / 2, *cs = s->time_enc + d;
    const double *ent = s->params + s->block_offset[LAMP_RANKER_ENT],
                 *rel = s->params + s->block_offset[LAMP_RANKER_REL],
                 *obj = s->params + s->block_offset[LAMP_RANKER_OBJ];
    REAL *x0 = s->tok_state;
    for (int64_t i = lo; i < hi; i++) {
        int64_t gi = s->first_cand + i;
        const int64_t *cand = b->candidates + 3 * gi;
        REAL *ci = s->cand_emb + i * d;
        for (int64_t a = 0; a < d; a++)
            ci[a] = (REAL)(ent[cand[0] * d + a] + rel[cand[1] * d + a] + obj[cand[2] * d + a]);
        double ct = b->candidate_times[gi];
        for (int64_t t = s->tok_start[i]; t < s->tok_start[i + 1]; t++) {
            int64_t src = s->tok_row[t];
            const int64_t *ev = b->evidence + 3 * src;
            double gap = (ct - b->evidence_times[src]) / s->dims->time_scale;
            REAL *xt = x0 + t * d;
            const double *pe = ent + ev[0] * d, *pr = rel + ev[1] * d, *po = obj + ev[2] * d;
            if (t + 2 < s->tok_start[hi]) { /* the rows two tokens ahead: random rows of tables larger than L2 */
                const int64_t *nx = b->evidence + 3 * s->tok_row[t + 2];
                for (int64_t a = 0; a < d; a += 8) {
                    __builtin_prefetch(ent + nx[0] * d + a);
                    __builtin_prefetch(rel + nx[1] * d + a);
                    __builtin_prefetch(obj + nx[2] * d + a);
                }
            }
            for (int64_t a = 0; a < d / 2; a++)
                arg[a] = gap * s->time_freq[a];
#ifdef SINCOS_ARRAY
            SINCOS_ARRAY(arg, d / 2, sn, cs);
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
                REAL *f = s->tok_feats + t * s->n_feats;
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
                for (int64_t a = LAMP_RANKER_ID_FEATURES; a < s->n_feats; a++)
                    f[a] = (REAL)b->evidence_aux[src * (s->n_feats - LAMP_RANKER_ID_FEATURES) + a -
                                                 LAMP_RANKER_ID_FEATURES];
            }
        }
        if (s->agree) { /* p = [sum f / L, max f, f of the most recent event] */
            const int64_t nf = s->n_feats, t0 = s->tok_start[i], t1 = s->tok_start[i + 1];
            REAL *p = s->cand_pool + i * 3 * nf;
            int64_t recent = -1;
            double best = -INFINITY;
            for (int64_t a = 0; a < nf; a++) {
                double sum = 0.0;
                REAL mx = t1 > t0 ? s->tok_feats[t0 * nf + a] : 0;
                for (int64_t t = t0; t < t1; t++) {
                    sum += (double)s->tok_feats[t * nf + a];
                    mx = s->tok_feats[t * nf + a] > mx ? s->tok_feats[t * nf + a] : mx;
                }
                p[a] = (REAL)(sum / (double)b->l);
                p[nf + a] = mx;
            }
            for (int64_t t = t0; t < t1; t++) /* tokens in slot order: ties go to the later slot */
                if (b->evidence_times[s->tok_row[t]] >= best)
                    best = b->evidence_times[s->tok_row[t]], recent = t;
            for (int64_t a = 0; a < nf; a++)
                p[2 * nf + a] = recent >= 0 ? s->tok_feats[recent * nf + a] : 0;
        }
    }
}

/* Phase: causal multi-head self-attention of layer s->layer, per candidate: tok_qkv -> tok_att_out (and, while
 * training, the attention weights att_weights for the backward pass).  Per candidate and head the keys are transposed
 * into s->keys_t (e x np, the n keys padded with zeros to np, a multiple of 8), so that a row's scores are whole
 * vectors of 8 keys: a tile of 4 query rows at a time accumulates q_j[c] K^T[c, 8 keys] over c (8 independent sums: 4
 * rows, two halves of c); each row's softmax works on those vectors, later keys masked (weight 0); then the tile's
 * outputs O_j = sum_k A[j, k] V_k are summed over k together (16 independent sums of 8 lanes for e <= 32). */
static inline __attribute__((always_inline)) void F(attn_fwd_range_body)(void *ctx, int64_t lo, int64_t hi, int tid,
                                                                const int64_t e)
{
    (void)tid;
    const F(state) *s = ctx;
    const int64_t d = s->width, H = s->heads, lk = F(layer_slot)(s, s->layer), lp = s->slots_padded, e2 = e / 2;
    const REAL *qkv = s->tok_qkv + lk * s->max_tokens * 3 * d;
    REAL *o = s->tok_att_out + lk * s->max_tokens * d, *attl = s->att_weights + lk * H * s->max_att;
    REAL *kt = s->keys_t, *sc = s->keys_t + d * lp; /* sc: the 4 x lp weights of a tile of rows */
    const REAL scale = s->att_scale;
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
    REAL *u = s->tok_ff + F(layer_slot)(s, s->layer) * s->max_tokens * s->width;
    const int64_t k0 = s->tok_start[lo] * s->width, k1 = s->tok_start[hi] * s->width;
    for (int64_t k = k0; k < k1; k++)
        u[k] = TANH(u[k]);
}

/* Phase: readout attention from each candidate over its final states: tok_readout_kv, cand_query ->
 * tok_readout_alpha (and cand_null_alpha), cand_mlp_in = [h; c]. */
static inline __attribute__((always_inline)) void F(readout_fwd_range_body)(void *ctx, int64_t lo, int64_t hi, int tid,
                                                                const int64_t e)
{
    (void)tid;
    const F(state) *s = ctx;
    const int64_t d = s->width, H = s->heads;
    const REAL *k0 = s->agree ? F(agree_w)(s, LAMP_RANKER_K0) : NULL,
               *v0 = s->agree ? F(agree_w)(s, LAMP_RANKER_V0) : NULL;
    for (int64_t i = lo; i < hi; i++) {
        const int64_t t0 = s->tok_start[i], n = s->tok_start[i + 1] - t0;
        REAL *z = s->cand_mlp_in + i * 2 * d;
        for (int64_t a = 0; a < d; a++) {
            z[a] = 0;
            z[d + a] = s->cand_emb[i * d + a];
        }
        for (int64_t h = 0; h < H; h++) {
            const REAL *q = s->cand_query + i * d + h * e;
            REAL mx = -INFINITY, total = 0, l0 = 0;
            if (s->agree) /* the null slot's logit; the tokens' alpha holds their feature bias UB[h] . f_j */
                mx = l0 = s->att_scale * F(dot)(q, k0 + h * e, e);
            for (int64_t t = t0; t < t0 + n; t++) {
                REAL v = s->att_scale * F(dot)(q, s->tok_readout_kv + t * 2 * d + h * e, e);
                if (s->agree)
                    v += s->tok_readout_alpha[t * H + h];
                s->tok_readout_alpha[t * H + h] = v;
                if (v > mx)
                    mx = v;
            }
            for (int64_t t = t0; t < t0 + n; t++) {
                REAL v = EXP(s->tok_readout_alpha[t * H + h] - mx);
                s->tok_readout_alpha[t * H + h] = v;
                total += v;
            }
            REAL e0 = 0;
            if (s->agree) {
                e0 = EXP(l0 - mx);
                total += e0;
            }
            REAL inv = (REAL)1 / total;
            if (s->agree) {
                s->cand_null_alpha[i * H + h] = e0 * inv;
                F(axpy)(e0 * inv, v0 + h * e, z + h * e, e);
            }
            for (int64_t t = t0; t < t0 + n; t++) {
                s->tok_readout_alpha[t * H + h] *= inv;
                F(axpy)(s->tok_readout_alpha[t * H + h], s->tok_readout_kv + t * 2 * d + d + h * e, z + h * e, e);
            }
        }
    }
}

BY_HEAD_WIDTH(readout_fwd_range)

/* Forward pass of the chunk: energies of its candidates.  dropout_seed: the dropout stream's state before
 * candidate 0 of the batch (each candidate takes d draws, in candidate order). */
RANKER_CLONES __attribute__((noinline)) static void F(chunk_forward)(F(state) *s, double dropout,
                                                                   uint64_t dropout_seed, double *energies)
{
    const int64_t d = s->width, T = s->n_tokens, N = s->n_cands;
    const lamp_ranker_batch *b = s->batch;
    F(embed_range)(s, 0, N, 0);
    for (int64_t l = 0; l < s->n_layers; l++) {
        const int64_t lk = F(layer_slot)(s, l);
        REAL *x = F(layer_input)(s, l), *xn = F(layer_input)(s, l + 1);
        /* scoring: y and xn are x itself, the residual sums go into it in place */
        REAL *qkv = s->tok_qkv + lk * s->max_tokens * 3 * d, *o = s->tok_att_out + lk * s->max_tokens * d,
             *y = s->train ? s->tok_resid + lk * s->max_tokens * d : x, *u = s->tok_ff + lk * s->max_tokens * d;
        s->layer = l;
#if OWN_GEMM
        if (s->use_own_gemm) { /* the same steps, each product with its bias, residual and tanh in one pass */
            const REAL *fb1 = F(layer_w)(s, l, LAMP_RANKER_FB1), *fb2 = F(layer_w)(s, l, LAMP_RANKER_FB2);
            F(own_gemm)(T, 3 * d, d, x, d, F(layer_w_t)(s, l, LAMP_RANKER_AQ), qkv, 3 * d, NULL, 0, NULL, 0);
            F(attn_fwd_range)(s, 0, N, 0);
            F(own_gemm)(T, d, d, o, d, F(layer_w_t)(s, l, LAMP_RANKER_AO), y, d, x, d, NULL, 0);
            F(own_gemm)(T, d, d, y, d, F(layer_w_t)(s, l, LAMP_RANKER_F1), u, d, NULL, 0, fb1, 1);
            F(own_gemm)(T, d, d, u, d, F(layer_w_t)(s, l, LAMP_RANKER_F2), xn, d, y, d, fb2, 0);
            continue;
        }
#endif
        F(gemm)(0, 1, T, 3 * d, d, 1, x, d, F(layer_w)(s, l, LAMP_RANKER_AQ), d, 0, qkv, 3 * d);
        F(attn_fwd_range)(s, 0, N, 0);
        if (y != x)
            memcpy(y, x, sizeof(REAL) * (size_t)(T * d));
        F(gemm)(0, 1, T, d, d, 1, o, d, F(layer_w)(s, l, LAMP_RANKER_AO), d, 1, y, d);
        const REAL *fb1 = F(layer_w)(s, l, LAMP_RANKER_FB1), *fb2 = F(layer_w)(s, l, LAMP_RANKER_FB2);
        for (int64_t t = 0; t < T; t++)
            memcpy(u + t * d, fb1, sizeof(REAL) * (size_t)d);
        F(gemm)(0, 1, T, d, d, 1, y, d, F(layer_w)(s, l, LAMP_RANKER_F1), d, 1, u, d);
        F(tanh_range)(s, 0, N, 0);
        for (int64_t t = 0; t < T; t++)
            for (int64_t a = 0; a < d; a++)
                xn[t * d + a] = y[t * d + a] + fb2[a];
        F(gemm)(0, 1, T, d, d, 1, u, d, F(layer_w)(s, l, LAMP_RANKER_F2), d, 1, xn, d);
    }
    const REAL *xf = F(layer_input)(s, s->n_layers);
#if OWN_GEMM
    if (s->use_own_gemm) {
        F(own_gemm)(N, d, d, s->cand_emb, d, F(block_w_t)(s, LAMP_RANKER_WQ), s->cand_query, d, NULL, 0, NULL, 0);
        F(own_gemm)(T, 2 * d, d, xf, d, F(block_w_t)(s, LAMP_RANKER_WK), s->tok_readout_kv, 2 * d, NULL, 0, NULL, 0);
    } else
#endif
    {
        F(gemm)(0, 1, N, d, d, 1, s->cand_emb, d, F(block_w)(s, LAMP_RANKER_WQ), d, 0, s->cand_query, d);
        F(gemm)(0, 1, T, 2 * d, d, 1, xf, d, F(block_w)(s, LAMP_RANKER_WK), d, 0, s->tok_readout_kv, 2 * d);
    }
    const int64_t nf = s->n_feats;
    if (s->agree) { /* keys += f WKF^T; the readout logits start from their feature bias f UB^T */
        F(gemm)(0, 1, T, d, nf, 1, s->tok_feats, nf, F(agree_w)(s, LAMP_RANKER_WKF), nf, 1, s->tok_readout_kv, 2 * d);
        F(gemm)(0, 1, T, s->heads, nf, 1, s->tok_feats, nf, F(agree_w)(s, LAMP_RANKER_UB), nf, 0, s->tok_readout_alpha,
                s->heads);
    }
    F(readout_fwd_range)(s, 0, N, 0);
    const REAL *b1 = F(block_w)(s, LAMP_RANKER_B1), *w2 = F(block_w)(s, LAMP_RANKER_W2);
#if OWN_GEMM
    if (s->use_own_gemm)
        F(own_gemm)(N, d, 2 * d, s->cand_mlp_in, 2 * d, F(block_w_t)(s, LAMP_RANKER_W1), s->cand_hidden, d, NULL, 0,
                    b1, 0);
    else
#endif
    {
        for (int64_t i = 0; i < N; i++)
            memcpy(s->cand_hidden + i * d, b1, sizeof(REAL) * (size_t)d);
        F(gemm)(0, 1, N, d, 2 * d, 1, s->cand_mlp_in, 2 * d, F(block_w)(s, LAMP_RANKER_W1), 2 * d, 1, s->cand_hidden,
                d);
    }
    const REAL *wp = NULL;
    if (s->agree) {
        F(gemm)(0, 1, N, d, 3 * nf, 1, s->cand_pool, 3 * nf, F(agree_w)(s, LAMP_RANKER_W1P), 3 * nf, 1, s->cand_hidden,
                d);
        wp = F(agree_w)(s, LAMP_RANKER_WP);
    }
    const double b2 = s->params[s->block_offset[LAMP_RANKER_B2]], gamma = s->params[s->block_offset[LAMP_RANKER_GAMMA]];
    for (int64_t i = 0; i < N; i++) {
        int64_t gi = s->first_cand + i;
        REAL *ui = s->cand_hidden + i * d, *kp = s->cand_keep + i * d;
        /* candidate gi takes draws gi * d ... gi * d + d - 1 of the dropout stream */
        uint64_t st = lamp_rng_skip(dropout_seed, (uint64_t)gi * (uint64_t)d), *rng = &st;
        double energy = b2 + (b->prior ? gamma * b->prior[gi] : 0.0);
        if (wp)
            for (int64_t a = 0; a < 3 * nf; a++)
                energy += (double)wp[a] * (double)s->cand_pool[i * 3 * nf + a];
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
