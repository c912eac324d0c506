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

/* One worker (of n_workers): the state and buffers for chunks w, w + n_workers, w + 2 n_workers, ... of the
 * plan (common/threads.h runs them). */
typedef struct {
    F(state) state;                    /* its view of the call and its buffers */
    const chunk_plan *plan;            /* the chunks of the batch */
    int n_workers;                     /* workers of the call (1 or 2) */
    int loss_kind;                     /* LAMP_RANKER_SOFTMAX or LAMP_RANKER_BINARY */
    double dropout;                    /* dropout rate of the MLP's hidden units */
    double loss_norm;                  /* the mean loss's divisor: Q (softmax) or Q M (binary) */
    uint64_t dropout_seed;             /* the dropout stream's state before candidate 0 (common/rng.h) */
    double *energies;                  /* Q x M energies (the output; each chunk writes its rows) */
    double *d_energy;                  /* Q x M: d loss / d energy (training), or NULL */
    double *chunk_loss;                /* the summed loss of each chunk, summed over chunks at the end */
    REAL *chunk_dense_grads;           /* each chunk's dense gradients, n_chunks x n_dense */
    REAL *tok_grads;                   /* d loss / d token input x_j (before any layer), T x d over the batch */
    REAL *cand_grads;                  /* d loss / d candidate embedding c, Q M x d */
    int64_t n_dense;                   /* dense parameters (from Wq on) */
    void *buffers;                     /* the REAL buffers of state (one block of the workspace) */
    size_t buffers_bytes;              /* its size */
    int64_t *index_buffers;            /* state.tok_start and state.att_start */
    int time_enc_allocated;            /* state.time_enc was allocated (d > 1024), else it is time_enc_local */
    double time_enc_local[3 * 512];    /* state.time_enc for d <= 1024 */
} F(worker);

/* Chunks [lo, hi) of the plan (one per piece), each forward (and backward) in turn, with the buffers
 * of worker part % n_workers. */
static void F(worker_range)(void *ctx, int64_t lo, int64_t hi, int64_t part)
{
    F(worker) *worker = (F(worker) *)ctx + part % ((F(worker) *)ctx)->n_workers;
    F(state) *s = &worker->state;
    const chunk_plan *pl = worker->plan;
    const lamp_ranker_batch *b = s->batch;
    const int64_t M = b->m, d = s->width;
    for (int64_t k = lo; k < hi; k++) {
        const int64_t q0 = pl->first_query[k], q1 = pl->first_query[k + 1];
        s->first_cand = q0 * M, s->n_cands = (q1 - q0) * M, s->n_tokens = pl->first_token[k + 1] - pl->first_token[k];
        s->tok_row = pl->tok_row + pl->first_token[k];
        s->tok_start[0] = 0, s->att_start[0] = 0;
        for (int64_t i = 0; i < s->n_cands; i++) {
            int64_t nt = s->cand_tokens[s->first_cand + i];
            s->tok_start[i + 1] = s->tok_start[i] + nt;
            s->att_start[i + 1] = s->att_start[i] + nt * nt;
        }
        F(chunk_forward)(s, worker->dropout, worker->dropout_seed, worker->energies);
        if (!b->labels)
            continue;
        double sum = 0.0;
        double *d_energy = worker->d_energy ? worker->d_energy + s->first_cand : NULL;
        for (int64_t qi = q0; qi < q1; qi++)
            sum += lamp_ranker_query_loss(worker->loss_kind, worker->energies + qi * M, M, b->labels[qi],
                                          d_energy ? d_energy + (qi - q0) * M : NULL);
        worker->chunk_loss[k] = sum;
        if (!s->train)
            continue;
        for (int64_t i = 0; i < s->n_cands; i++)
            d_energy[i] /= worker->loss_norm;
        s->dense_grad = worker->chunk_dense_grads + k * worker->n_dense;
        memset(s->dense_grad, 0, sizeof(REAL) * (size_t)worker->n_dense);
        F(chunk_backward)(s, d_energy, worker->tok_grads + pl->first_token[k] * d,
                          worker->cand_grads + s->first_cand * d);
    }
}

/* Buffers of one worker, sized for the plan's largest chunk. */
static int F(worker_init)(F(worker) *worker, const chunk_plan *pl, int64_t L)
{
    F(state) *s = &worker->state;
    const int64_t d = s->width, H = s->heads, nl = s->n_layers;
    const int64_t tmax = pl->max_tokens, nmax = pl->max_cands, amax = pl->max_att;
    s->max_tokens = tmax, s->max_cands = nmax, s->max_att = amax;
    const int64_t nlk = s->train ? nl : (nl > 0 ? 1 : 0), nx = s->train ? nl + 1 : 1;
    const int64_t one = tmax > nmax ? tmax : nmax;
    int64_t total = nx * tmax * d + nlk * tmax * (s->train ? 6 : 5) * d + nlk * H * amax + 4 * nmax * d + 2 * nmax * d +
                    2 * tmax * d + tmax * H + one + L + (d + 4) * ((L + 7) / 8 * 8);
    if (s->train)
        total += 2 * nmax * d + 2 * nmax * d + 2 * tmax * d + 2 * tmax * d + 3 * tmax * d;
    if (s->agree)
        total += tmax * s->n_feats + nmax * 3 * s->n_feats + nmax * H + (s->train ? tmax * H : 0);
    REAL *mem = lamp_ranker_workspace_get(sizeof(REAL) * (size_t)total, &worker->buffers_bytes);
    int64_t *imem = malloc(sizeof(int64_t) * (size_t)(2 * (nmax + 1)));
    worker->buffers = mem, worker->index_buffers = imem;
    s->time_enc = d <= 1024 ? worker->time_enc_local : malloc(sizeof(double) * (size_t)(3 * d / 2));
    worker->time_enc_allocated = d > 1024;
    if (!mem || !imem || !s->time_enc)
        return -1;
    REAL *p = mem;
    s->tok_state = F(carve)(&p, nx * tmax * d);
    s->tok_qkv = F(carve)(&p, nlk * tmax * 3 * d);
    s->tok_att_out = F(carve)(&p, nlk * tmax * d);
    s->tok_resid = s->train ? F(carve)(&p, nlk * tmax * d) : NULL;
    s->tok_ff = F(carve)(&p, nlk * tmax * d);
    s->att_weights = F(carve)(&p, nlk * H * amax);
    s->cand_emb = F(carve)(&p, nmax * d);
    s->cand_query = F(carve)(&p, nmax * d);
    s->cand_hidden = F(carve)(&p, nmax * d);
    s->cand_keep = F(carve)(&p, nmax * d);
    s->cand_mlp_in = F(carve)(&p, 2 * nmax * d);
    s->tok_readout_kv = F(carve)(&p, 2 * tmax * d);
    s->tok_readout_alpha = F(carve)(&p, tmax * H);
    s->ones = F(carve)(&p, one);
    s->slot_scratch = F(carve)(&p, L);
    s->slots_padded = (L + 7) / 8 * 8;
    s->keys_t = F(carve)(&p, (d + 4) * s->slots_padded);
    for (int64_t k = 0; k < one; k++)
        s->ones[k] = 1;
    if (s->train) {
        s->d_cand_hidden = F(carve)(&p, nmax * d);
        s->d_cand_query = F(carve)(&p, nmax * d);
        s->d_cand_mlp_in = F(carve)(&p, 2 * nmax * d);
        s->d_tok_readout_kv = F(carve)(&p, 2 * tmax * d);
        s->d_tok_ff = F(carve)(&p, tmax * d);
        s->d_tok_att_out = F(carve)(&p, tmax * d);
        s->d_tok_qkv = F(carve)(&p, 3 * tmax * d);
    }
    if (s->agree) {
        s->tok_feats = F(carve)(&p, tmax * s->n_feats);
        s->cand_pool = F(carve)(&p, nmax * 3 * s->n_feats);
        s->cand_null_alpha = F(carve)(&p, nmax * H);
        s->d_tok_readout_logit = s->train ? F(carve)(&p, tmax * H) : NULL;
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
                  H = dims->heads, N = Q * M, T = pl->first_token[pl->n_chunks];
    const int64_t nblocks = lamp_ranker_num_blocks(dims), dense_offset = off[LAMP_RANKER_WQ],
                  n_dense = off[nblocks] - dense_offset;
    const int train = grads != NULL;
    int rc = LAMP_OK;
    F(worker) workers[2];
    memset(workers, 0, sizeof(workers));
    double *time_freq = malloc(sizeof(double) * (size_t)(d / 2));
    double *chunk_loss = malloc(sizeof(double) * (size_t)pl->n_chunks);
    double *d_energy = train ? malloc(sizeof(double) * (size_t)N) : NULL;
    REAL *dense_w_copy = sizeof(REAL) != sizeof(double) ? malloc(sizeof(REAL) * (size_t)n_dense) : NULL;
    REAL *dense_w_t = NULL;
    /* the gradients per chunk in one cached block: chunk_dense_grads (n_chunks x n_dense), tok_grads (T x d),
     * cand_grads (N x d) */
    size_t grads_block_bytes = 0;
    const int64_t grads_len = n_dense * pl->n_chunks + (T > 0 ? T : 1) * d + N * d;
    REAL *grads_block = train ? lamp_ranker_workspace_get(sizeof(REAL) * (size_t)grads_len, &grads_block_bytes) : NULL;
    REAL *chunk_dense_grads = grads_block, *tok_grads = grads_block ? grads_block + n_dense * pl->n_chunks : NULL,
         *cand_grads = grads_block ? tok_grads + (T > 0 ? T : 1) * d : NULL;
    if (!time_freq || !chunk_loss || (train && (!d_energy || !chunk_dense_grads || !tok_grads || !cand_grads)) ||
        (sizeof(REAL) != sizeof(double) && !dense_w_copy)) {
        rc = lamp_error_set(err, LAMP_ENOMEM, "out of memory in the ranker");
        goto finally;
    }
    for (int64_t a = 0; a < d / 2; a++)
        time_freq[a] = pow(1000.0, -(double)(2 * a) / (double)d);
    if (dense_w_copy)
        for (int64_t k = 0; k < n_dense; k++)
            dense_w_copy[k] = (REAL)params[dense_offset + k];
    const REAL *dense_w = dense_w_copy ? dense_w_copy : (const REAL *)(const void *)(params + dense_offset);
    int use_own_gemm = 0;
#if OWN_GEMM
    use_own_gemm = d % 32 == 0 && LAMP_HAVE_AVX512();
    if (use_own_gemm) { /* the forward products' weights transposed, each group in its own place */
        dense_w_t = malloc(sizeof(REAL) * (size_t)n_dense);
        if (!dense_w_t) {
            rc = lamp_error_set(err, LAMP_ENOMEM, "out of memory in the ranker");
            goto finally;
        }
        const int64_t groups[][3] = {{LAMP_RANKER_WQ, 1, 1}, {LAMP_RANKER_WK, 2, 1}, {LAMP_RANKER_W1, 1, 2}};
        for (int g = 0; g < 3; g++)
            F(pack_t)(dense_w + off[groups[g][0]] - dense_offset, groups[g][1] * d, groups[g][2] * d,
                      dense_w_t + off[groups[g][0]] - dense_offset);
        const int64_t lgroups[][2] = {{LAMP_RANKER_AQ, 3}, {LAMP_RANKER_AO, 1}, {LAMP_RANKER_F1, 1},
                                      {LAMP_RANKER_F2, 1}};
        for (int64_t l = 0; l < nl; l++)
            for (int g = 0; g < 4; g++) {
                const int64_t o0 = off[F(layer_block)(l, (int)lgroups[g][0])] - dense_offset;
                F(pack_t)(dense_w + o0, lgroups[g][1] * d, d, dense_w_t + o0);
            }
    }
#endif
    int n_workers = nthreads > 1 && pl->n_chunks > 1 ? 2 : 1;
    for (int t = 0; t < n_workers; t++) {
        F(worker) *worker = &workers[t];
        F(state) *s = &worker->state;
        s->dims = dims, s->batch = b, s->params = params, s->block_offset = off;
        s->width = d, s->heads = H, s->head_width = d / H, s->n_layers = nl, s->slots = L;
        s->dense_offset = dense_offset, s->att_scale = (REAL)(1.0 / sqrt((double)(d / H)));
        s->train = train, s->cand_tokens = ntok, s->time_freq = time_freq;
        s->agree = dims->agree != 0, s->n_feats = LAMP_RANKER_ID_FEATURES + dims->aux;
        s->agree_block = lamp_ranker_agree_block(dims, 0);
        s->dense_w = dense_w, s->dense_w_t = dense_w_t, s->use_own_gemm = use_own_gemm;
        worker->plan = pl, worker->n_workers = n_workers, worker->loss_kind = loss_kind, worker->dropout = dropout;
        worker->loss_norm = loss_kind == LAMP_RANKER_BINARY ? (double)(Q * M) : (double)Q;
        worker->dropout_seed = seed ^ 0xa5a5a5a5ULL, worker->energies = energies, worker->d_energy = d_energy;
        worker->chunk_loss = chunk_loss, worker->chunk_dense_grads = chunk_dense_grads;
        worker->tok_grads = tok_grads, worker->cand_grads = cand_grads, worker->n_dense = n_dense;
        if (F(worker_init)(worker, pl, L) < 0) {
            rc = lamp_error_set(err, LAMP_ENOMEM, "out of memory in the ranker");
            goto finally;
        }
    }
    /* chunk k on thread k % n_workers */
    lamp_run_parts(F(worker_range), workers, pl->n_chunks, pl->n_chunks, n_workers);
    if (b->labels) {
        double sum = 0.0;
        for (int64_t k = 0; k < pl->n_chunks; k++)
            sum += chunk_loss[k];
        *loss = sum / workers[0].loss_norm;
    }
    if (train) {
        for (int64_t j = 0; j < n_dense; j++) {
            double g = 0.0;
            for (int64_t k = 0; k < pl->n_chunks; k++)
                g += (double)chunk_dense_grads[k * n_dense + j];
            grads[dense_offset + j] = g;
        }
        memset(grads, 0, sizeof(double) * (size_t)dense_offset);
        double *g_ent = grads + off[LAMP_RANKER_ENT], *g_rel = grads + off[LAMP_RANKER_REL],
               *g_obj = grads + off[LAMP_RANKER_OBJ];
        for (int64_t t = 0; t < T; t++)
            F(add_embedding_grads)(g_ent, g_rel, g_obj, b->evidence + 3 * pl->tok_row[t], tok_grads + t * d, d);
        for (int64_t i = 0; i < N; i++)
            F(add_embedding_grads)(g_ent, g_rel, g_obj, b->candidates + 3 * i, cand_grads + i * d, d);
    }
finally:
    for (int t = 0; t < 2; t++) {
        lamp_ranker_workspace_put(workers[t].buffers, workers[t].buffers_bytes);
        free(workers[t].index_buffers);
        if (workers[t].time_enc_allocated)
            free(workers[t].state.time_enc);
    }
    free(time_freq);
    free(chunk_loss);
    free(d_energy);
    free(dense_w_copy);
    free(dense_w_t);
    lamp_ranker_workspace_put(grads_block, grads_block_bytes);
    return rc;
}
