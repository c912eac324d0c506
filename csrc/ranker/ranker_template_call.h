/* Part of the ranker's template (ranker_template.h): one whole call -- the workers that run the
 * plan's chunks forward (and backward), their buffers, and the sums over chunks in a fixed order.
 * Defines lamp_ranker_forward_backward_<SFX> (ranker_internal.h). */

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
            sum += lamp_ranker_query_loss(wk->loss_kind, wk->energies + qi * M, M, b->labels[qi], ge ? ge + (qi - q0) * M : NULL);
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
    REAL *mem = lamp_ranker_workspace_get(sizeof(REAL) * (size_t)total, &wk->mem_bytes);
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

/* The whole call: the plan's chunks split over (up to) two workers; everything that sums over chunks
 * (loss, dense gradients, embedding gradients) is summed afterwards in chunk order, so the result does
 * not depend on the number of threads. */
int F(lamp_ranker_forward_backward)(const lamp_ranker_dims *dims, const double *params, const lamp_ranker_batch *b,
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
    REAL *all = train ? lamp_ranker_workspace_get(sizeof(REAL) * (size_t)(ndense * pl->k + (T > 0 ? T : 1) * d + N * d), &all_bytes)
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
        lamp_ranker_workspace_put(wk[t].mem, wk[t].mem_bytes);
        free(wk[t].imem);
        if (wk[t].enc_own)
            free(wk[t].s.enc);
    }
    free(freq);
    free(chunk_loss);
    free(ge);
    free(w);
    free(wt);
    lamp_ranker_workspace_put(all, all_bytes);
    return rc;
}
