/* The energy ranker (ranker.h) around its forward/backward pass: the parameter layout, the checks
 * of a batch, the losses, how a batch is cut into chunks, the choice of precision (the pass itself
 * is the template ranker_template.h, compiled as ranker_f64.c and ranker_f32.c) and the Adam step. */
#include "ranker/ranker.h"
#include "ranker/ranker_internal.h"

#include "common/blas.h"
#include "common/threads.h"
#include "common/workspace.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int64_t lamp_ranker_agree_block(const lamp_ranker_dims *dims, int k)
{
    return LAMP_RANKER_NUM_BLOCKS + (dims->layers > 0 ? dims->layers : 0) * LAMP_RANKER_LAYER_BLOCKS + k;
}

int64_t lamp_ranker_num_blocks(const lamp_ranker_dims *dims)
{
    return lamp_ranker_agree_block(dims, 0) + (dims->agree ? LAMP_RANKER_AGREE_BLOCKS : 0);
}

void lamp_ranker_layout(const lamp_ranker_dims *dims, int64_t *off)
{
    int64_t d = dims->width, ne = dims->num_entities, nr = dims->num_relations;
    int64_t sizes[LAMP_RANKER_NUM_BLOCKS] = {ne * d, nr * d, ne * d, d * d, d * d, d * d, d * 2 * d, d, d, 1, 1};
    int64_t layer[LAMP_RANKER_LAYER_BLOCKS] = {d * d, d * d, d * d, d * d, d * d, d, d * d, d};
    off[0] = 0;
    for (int i = 0; i < LAMP_RANKER_NUM_BLOCKS; i++)
        off[i + 1] = off[i] + sizes[i];
    int64_t a0 = lamp_ranker_agree_block(dims, 0);
    for (int64_t i = LAMP_RANKER_NUM_BLOCKS; i < a0; i++)
        off[i + 1] = off[i] + layer[(i - LAMP_RANKER_NUM_BLOCKS) % LAMP_RANKER_LAYER_BLOCKS];
    if (dims->agree) {
        int64_t f = LAMP_RANKER_ID_FEATURES + (dims->aux > 0 ? dims->aux : 0), h = dims->heads;
        int64_t agree[LAMP_RANKER_AGREE_BLOCKS] = {d * f, h * f, d, d, d * 3 * f, 3 * f};
        for (int k = 0; k < LAMP_RANKER_AGREE_BLOCKS; k++)
            off[a0 + k + 1] = off[a0 + k] + agree[k];
    }
}

int lamp_ranker_check_dims(const lamp_ranker_dims *dims, lamp_error *err)
{
    if (dims->num_entities < 1 || dims->num_relations < 1)
        return lamp_error_set(err, LAMP_EVALUE, "num_entities and num_relations must be >= 1");
    if (dims->width < 2 || dims->width % 2)
        return lamp_error_set(err, LAMP_EVALUE, "width must be even and >= 2, got %lld", (long long)dims->width);
    if (dims->heads < 1 || dims->width % dims->heads)
        return lamp_error_set(err, LAMP_EVALUE, "heads must be >= 1 and divide width %lld, got %lld",
                              (long long)dims->width, (long long)dims->heads);
    if (dims->layers < 0)
        return lamp_error_set(err, LAMP_EVALUE, "layers must be >= 0, got %lld", (long long)dims->layers);
    if (!(dims->time_scale > 0.0))
        return lamp_error_set(err, LAMP_EVALUE, "time_scale must be positive");
    if (dims->agree != 0 && dims->agree != 1)
        return lamp_error_set(err, LAMP_EVALUE, "agree must be 0 or 1, got %lld", (long long)dims->agree);
    if (dims->aux < 0 || (dims->aux > 0 && !dims->agree))
        return lamp_error_set(err, LAMP_EVALUE, "aux (evidence features per event) must be >= 0 and needs agree = 1, "
                              "got aux = %lld with agree = %lld", (long long)dims->aux, (long long)dims->agree);
    return LAMP_OK;
}

static int check_batch(const lamp_ranker_dims *dims, const lamp_ranker_batch *b, lamp_error *err)
{
    int rc = lamp_ranker_check_dims(dims, err);
    if (rc != LAMP_OK)
        return rc;
    if (b->q < 1 || b->m < 1 || b->l < 0)
        return lamp_error_set(err, LAMP_EVALUE, "empty batch");
    if (dims->aux > 0 && !b->evidence_aux)
        return lamp_error_set(err, LAMP_EVALUE, "aux = %lld evidence features per event but no evidence_aux",
                              (long long)dims->aux);
    int64_t ne = dims->num_entities, nr = dims->num_relations, na = dims->aux;
    for (int64_t i = 0; i < b->q * b->m; i++) {
        const int64_t *c = b->candidates + 3 * i;
        long long qi = (long long)(i / b->m), mi = (long long)(i % b->m);
        for (int k = 0; k < 3; k++)
            if (c[k] < 0 || c[k] >= (k == 1 ? nr : ne))
                return lamp_error_set(err, LAMP_EVALUE, "candidates[%lld, %lld, %d] = %lld is out of the vocabulary "
                                      "[0, %lld)", qi, mi, k, (long long)c[k], (long long)(k == 1 ? nr : ne));
        if (b->prior && !isfinite(b->prior[i]))
            return lamp_error_set(err, LAMP_EVALUE, "prior[%lld, %lld] is not finite", qi, mi);
        if (!isfinite(b->candidate_times[i]))
            return lamp_error_set(err, LAMP_EVALUE, "candidate_times[%lld, %lld] is not finite", qi, mi);
        for (int64_t j = 0; j < b->l; j++) {
            const int64_t *e = b->evidence + 3 * (i * b->l + j);
            if (e[0] == -1)
                continue; /* padding (its other columns are not read) */
            for (int k = 0; k < 3; k++)
                if (e[k] < 0 || e[k] >= (k == 1 ? nr : ne))
                    return lamp_error_set(err, LAMP_EVALUE, "evidence[%lld, %lld, %lld, %d] = %lld is %s (ids are "
                                          "in [0, %lld); a row whose subject is -1 is padding)", qi, mi, (long long)j, k,
                                          (long long)e[k], e[k] >= 0 ? "out of the vocabulary"
                                          : k == 0  ? "negative and not the padding id -1"
                                                    : "negative in a row that is not padding",
                                          (long long)(k == 1 ? nr : ne));
            if (!isfinite(b->evidence_times[i * b->l + j]))
                return lamp_error_set(err, LAMP_EVALUE, "evidence_times[%lld, %lld, %lld] is not finite", qi, mi,
                                      (long long)j);
            for (int64_t a = 0; a < na; a++)
                if (!isfinite(b->evidence_aux[(i * b->l + j) * na + a]))
                    return lamp_error_set(err, LAMP_EVALUE, "evidence_aux[%lld, %lld, %lld, %lld] is not finite",
                                          qi, mi, (long long)j, (long long)a);
        }
    }
    if (b->labels)
        for (int64_t i = 0; i < b->q; i++)
            if (b->labels[i] < 0 || b->labels[i] >= b->m)
                return lamp_error_set(err, LAMP_EVALUE, "label %lld of query %lld is not in [0, %lld)",
                                      (long long)b->labels[i], (long long)i, (long long)b->m);
    return LAMP_OK;
}

static double softplus(double x)
{
    return (x > 0.0 ? x : 0.0) + log1p(exp(-fabs(x)));
}

double lamp_ranker_query_loss(int loss_kind, const double *en, int64_t m, int64_t label, double *g)
{
    double total = 0.0;
    if (loss_kind == LAMP_RANKER_BINARY) {
        for (int64_t j = 0; j < m; j++) {
            int y = j == label;
            total += y ? softplus(en[j]) : softplus(-en[j]);
            if (g) {
                /* p = sigmoid(-E), d BCE / dE = y - p */
                double p = en[j] >= 0.0 ? exp(-en[j]) / (1.0 + exp(-en[j])) : 1.0 / (1.0 + exp(en[j]));
                g[j] = (double)y - p;
            }
        }
        return total;
    }
    double mn = INFINITY, z_sum = 0.0;
    for (int64_t j = 0; j < m; j++)
        if (en[j] < mn)
            mn = en[j];
    for (int64_t j = 0; j < m; j++)
        z_sum += exp(-(en[j] - mn));
    if (g)
        for (int64_t j = 0; j < m; j++)
            g[j] = ((j == label) ? 1.0 : 0.0) - exp(-(en[j] - mn)) / z_sum;
    return (en[label] - mn) + log(z_sum);
}

/* Work of a chunk is split over this many threads (the results do not depend on it: every
 * split phase writes disjoint rows, reductions are BLAS calls or serial loops). */
#define RANKER_THREADS 2
/* Chunks of whole queries with about this many evidence tokens (at least one query each). */
#define CHUNK_TOKENS 4096
/* From this many tokens on a batch is cut into at least two chunks (one per thread). */
#define PARALLEL_TOKENS 512

/* LAMP_RANKER_THREADS=1 turns the second thread off (the results are the same either way). */
static int ranker_threads(void)
{
    const char *v = getenv("LAMP_RANKER_THREADS");
    return v && v[0] == '1' && v[1] == '\0' ? 1 : RANKER_THREADS;
}

static int64_t query_tokens(const int64_t *ntok, int64_t q, int64_t m)
{
    int64_t t = 0;
    for (int64_t j = 0; j < m; j++)
        t += ntok[q * m + j];
    return t;
}

/* The work buffers of the ranker's calls (both precisions), kept across calls. */
static lamp_workspace ranker_ws = LAMP_WORKSPACE_INIT((size_t)256 << 20);

void *lamp_ranker_workspace_get(size_t bytes, size_t *got)
{
    return lamp_workspace_get(&ranker_ws, bytes, got);
}

void lamp_ranker_workspace_put(void *p, size_t bytes)
{
    lamp_workspace_put(&ranker_ws, p, bytes);
}

static void plan_free(chunk_plan *pl)
{
    free(pl->first_query);
    free(pl->first_token);
    free(pl->tok_row);
}

static int plan_chunks(const lamp_ranker_batch *b, const int64_t *ntok, chunk_plan *pl)
{
    const int64_t Q = b->q, M = b->m;
    int64_t T = 0;
    for (int64_t i = 0; i < Q * M; i++)
        T += ntok[i];
    int64_t nch = (T + CHUNK_TOKENS - 1) / CHUNK_TOKENS;
    if (T >= PARALLEL_TOKENS)
        nch += nch % 2; /* an even number, for two threads */
    nch = nch < 1 ? 1 : nch;
    nch = nch > Q ? Q : nch;
    double target = (double)T / (double)nch;
    pl->first_query = malloc(sizeof(int64_t) * (size_t)(Q + 1));
    pl->first_token = malloc(sizeof(int64_t) * (size_t)(Q + 1));
    pl->tok_row = malloc(sizeof(int64_t) * (size_t)(T > 0 ? T : 1));
    if (!pl->first_query || !pl->first_token || !pl->tok_row)
        return -1;
    /* query q goes to chunk floor((tokens before q + half of its own) / target): contiguous, balanced */
    int64_t k = 0, cum = 0, last = -1;
    pl->max_tokens = pl->max_cands = pl->max_att = 0;
    for (int64_t q = 0; q < Q; q++) {
        int64_t qt = query_tokens(ntok, q, M);
        int64_t c = target > 0.0 ? (int64_t)(((double)cum + 0.5 * (double)qt) / target) : 0;
        c = c >= nch ? nch - 1 : c;
        if (c != last) {
            pl->first_query[k] = q, pl->first_token[k] = cum, k++;
            last = c;
        }
        cum += qt;
    }
    pl->n_chunks = k;
    pl->first_query[k] = Q, pl->first_token[k] = cum;
    for (int64_t c = 0; c < k; c++) {
        int64_t a = 0;
        for (int64_t i = pl->first_query[c] * M; i < pl->first_query[c + 1] * M; i++)
            a += ntok[i] * ntok[i];
        int64_t t = pl->first_token[c + 1] - pl->first_token[c], n = (pl->first_query[c + 1] - pl->first_query[c]) * M;
        pl->max_tokens = t > pl->max_tokens ? t : pl->max_tokens;
        pl->max_cands = n > pl->max_cands ? n : pl->max_cands;
        pl->max_att = a > pl->max_att ? a : pl->max_att;
    }
    pl->max_tokens = pl->max_tokens > 0 ? pl->max_tokens : 1, pl->max_att = pl->max_att > 0 ? pl->max_att : 1;
    int64_t t = 0;
    for (int64_t i = 0; i < Q * M; i++)
        for (int64_t j = 0; j < b->l; j++)
            if (b->evidence[3 * (i * b->l + j)] >= 0)
                pl->tok_row[t++] = i * b->l + j;
    return 0;
}

int lamp_ranker_forward_backward_prec(const lamp_ranker_dims *dims, const double *params, const lamp_ranker_batch *b,
                                      int loss_kind, double dropout, uint64_t seed, int precision, double *energies,
                                      double *loss, double *grads, lamp_error *err)
{
    int rc = check_batch(dims, b, err);
    if (rc != LAMP_OK)
        return rc;
    if (loss_kind != LAMP_RANKER_SOFTMAX && loss_kind != LAMP_RANKER_BINARY)
        return lamp_error_set(err, LAMP_EVALUE, "unknown loss %d (softmax = 0, binary = 1)", loss_kind);
    if (precision != LAMP_RANKER_FLOAT64 && precision != LAMP_RANKER_FLOAT32)
        return lamp_error_set(err, LAMP_EVALUE, "unknown precision %d (float64 = 0, float32 = 1)", precision);
    if (!(dropout >= 0.0 && dropout < 1.0))
        return lamp_error_set(err, LAMP_EVALUE, "dropout must be in [0, 1)");
    if (grads && !b->labels)
        return lamp_error_set(err, LAMP_EVALUE, "gradients need labels");
    int64_t nblocks = lamp_ranker_num_blocks(dims), n = b->q * b->m;
    chunk_plan plan = {0, NULL, NULL, NULL, 0, 0, 0};
    int64_t *off = malloc(sizeof(int64_t) * (size_t)(nblocks + 1));
    int64_t *ntok = malloc(sizeof(int64_t) * (size_t)n);
    if (!off || !ntok) {
        rc = lamp_error_set(err, LAMP_ENOMEM, "out of memory in the ranker");
        goto finally;
    }
    lamp_ranker_layout(dims, off);
    for (int64_t i = 0; i < n; i++) {
        ntok[i] = 0;
        for (int64_t j = 0; j < b->l; j++)
            ntok[i] += b->evidence[3 * (i * b->l + j)] >= 0;
    }
    if (plan_chunks(b, ntok, &plan) < 0) {
        rc = lamp_error_set(err, LAMP_ENOMEM, "out of memory in the ranker");
        goto finally;
    }
    int nthreads = ranker_threads();
    lamp_blas_single_begin();
    if (precision == LAMP_RANKER_FLOAT32)
        rc = lamp_ranker_forward_backward_f32(dims, params, b, loss_kind, dropout, seed, energies, loss, grads, off,
                                              ntok, &plan, nthreads, err);
    else
        rc = lamp_ranker_forward_backward_f64(dims, params, b, loss_kind, dropout, seed, energies, loss, grads, off,
                                              ntok, &plan, nthreads, err);
    lamp_blas_single_end();
finally:
    free(off);
    free(ntok);
    plan_free(&plan);
    return rc;
}

int lamp_ranker_forward_backward(const lamp_ranker_dims *dims, const double *params, const lamp_ranker_batch *b,
                                 int loss_kind, double dropout, uint64_t seed, double *energies, double *loss,
                                 double *grads, lamp_error *err)
{
    return lamp_ranker_forward_backward_prec(dims, params, b, loss_kind, dropout, seed, LAMP_RANKER_FLOAT64,
                                             energies, loss, grads, err);
}

typedef struct {
    double *params, *m1, *m2;
    const double *grads;
    double lr, beta1, beta2, eps, weight_decay, factor, c1, c2, norm2;
} adam_job;

/* Sum of squares in eight interleaved partial sums (lane k takes elements k, k + 8, ...), added up in a
 * fixed order at the end: vectorised at every width, and the same result at every width. */
RANKER_CLONES static void adam_norm_range(void *ctx, int64_t lo, int64_t hi, int64_t part)
{
    adam_job *j = (adam_job *)ctx + part;
    const double *g = j->grads;
    double acc[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    int64_t i = lo;
    for (; i + 8 <= hi; i += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += g[i + k] * g[i + k];
    double s = 0.0;
    for (; i < hi; i++)
        s += g[i] * g[i];
    for (int k = 0; k < 8; k++)
        s += acc[k];
    j->norm2 = s;
}

/* Elementwise (sqrt and divide correctly rounded at every width; -fno-math-errno lets them vectorise). */
RANKER_CLONES static void adam_update_range(void *ctx, int64_t lo, int64_t hi, int64_t part)
{
    const adam_job *j = (const adam_job *)ctx + part;
    const double b1 = j->beta1, b2 = j->beta2, f = j->factor, ic1 = 1.0 / j->c1, ic2 = 1.0 / j->c2;
    const double lr = j->lr, eps = j->eps, wd = j->weight_decay, a1 = 1.0 - b1, a2 = 1.0 - b2;
    double *p = j->params, *m1 = j->m1, *m2 = j->m2;
    const double *g = j->grads;
    for (int64_t i = lo; i < hi; i++) {
        double gi = g[i] * f;
        double u = b1 * m1[i] + a1 * gi, v = b2 * m2[i] + a2 * gi * gi;
        m1[i] = u;
        m2[i] = v;
        p[i] -= lr * ((u * ic1) / (sqrt(v * ic2) + eps) + wd * p[i]);
    }
}

int lamp_ranker_adam(double *params, const double *grads, double *m1, double *m2, int64_t n, double lr,
                     double beta1, double beta2, double eps, double weight_decay, double clip, int64_t step,
                     lamp_error *err)
{
    if (step < 1 || !(lr > 0.0) || !(beta1 >= 0.0 && beta1 < 1.0) || !(beta2 >= 0.0 && beta2 < 1.0))
        return lamp_error_set(err, LAMP_EVALUE, "Adam needs step >= 1, lr > 0 and betas in [0, 1)");
    /* two halves when large (on two threads when there are two); the norm is their sum in a fixed order */
    adam_job jobs[2] = {{params, m1, m2, grads, lr, beta1, beta2, eps, weight_decay, 1.0, 0.0, 0.0, 0.0}};
    jobs[1] = jobs[0];
    int64_t parts = n >= 65536 ? 2 : 1;
    lamp_run_parts(adam_norm_range, jobs, n, parts, ranker_threads());
    double norm = parts == 2 ? sqrt(jobs[0].norm2 + jobs[1].norm2) : sqrt(jobs[0].norm2);
    if (!isfinite(norm))
        return lamp_error_set(err, LAMP_EVALUE, "the gradient is not finite");
    double factor = (clip > 0.0 && norm > clip) ? clip / norm : 1.0;
    for (int k = 0; k < 2; k++) {
        jobs[k].factor = factor;
        jobs[k].c1 = 1.0 - pow(beta1, (double)step);
        jobs[k].c2 = 1.0 - pow(beta2, (double)step);
    }
    lamp_run_parts(adam_update_range, jobs, n, parts, ranker_threads());
    return LAMP_OK;
}
