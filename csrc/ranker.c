#include "ranker.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int64_t lamp_ranker_num_blocks(const lamp_ranker_dims *dims)
{
    return LAMP_RANKER_NUM_BLOCKS + (dims->layers > 0 ? dims->layers : 0) * LAMP_RANKER_LAYER_BLOCKS;
}

void lamp_ranker_layout(const lamp_ranker_dims *dims, int64_t *off)
{
    int64_t d = dims->width, ne = dims->num_entities, nr = dims->num_relations;
    int64_t sizes[LAMP_RANKER_NUM_BLOCKS] = {ne * d, nr * d, ne * d, d * d, d * d, d * d, d * 2 * d, d, d, 1, 1};
    int64_t layer[LAMP_RANKER_LAYER_BLOCKS] = {d * d, d * d, d * d, d * d, d * d, d, d * d, d};
    off[0] = 0;
    for (int i = 0; i < LAMP_RANKER_NUM_BLOCKS; i++)
        off[i + 1] = off[i] + sizes[i];
    int64_t n = lamp_ranker_num_blocks(dims);
    for (int64_t i = LAMP_RANKER_NUM_BLOCKS; i < n; i++)
        off[i + 1] = off[i] + layer[(i - LAMP_RANKER_NUM_BLOCKS) % LAMP_RANKER_LAYER_BLOCKS];
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
    return LAMP_OK;
}

static void time_encoding(double gap, int64_t d, double *out)
{
    for (int64_t i = 0; i < d / 2; i++) {
        double freq = pow(1000.0, -(double)(2 * i) / (double)d);
        out[2 * i] = sin(gap * freq);
        out[2 * i + 1] = cos(gap * freq);
    }
}

static uint64_t splitmix(uint64_t *state)
{
    uint64_t x = (*state += 0x9e3779b97f4a7c15ULL);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* y = W x for a row-major d_out x d_in matrix. */
static void matvec(const double *w, const double *x, int64_t d_out, int64_t d_in, double *y)
{
    cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)d_out, (int)d_in, 1.0, w, (int)d_in, x, 1, 0.0, y, 1);
}

/* y += W^T x */
static void matvec_t_add(const double *w, const double *x, int64_t d_out, int64_t d_in, double *y)
{
    cblas_dgemv(CblasRowMajor, CblasTrans, (int)d_out, (int)d_in, 1.0, w, (int)d_in, x, 1, 1.0, y, 1);
}

/* G += a b^T */
static void outer_add(double *g, const double *a, const double *b, int64_t d_out, int64_t d_in)
{
    cblas_dger(CblasRowMajor, (int)d_out, (int)d_in, 1.0, a, 1, b, 1, g, (int)d_in);
}

/* C = alpha op(A) op(B) + beta C, row-major, C is m x n with leading dimension ldc. */
static void gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha, const double *a, int64_t lda,
                 const double *b, int64_t ldb, double beta, double *c, int64_t ldc)
{
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n,
                (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

static int check_batch(const lamp_ranker_dims *dims, const lamp_ranker_batch *b, lamp_error *err)
{
    int rc = lamp_ranker_check_dims(dims, err);
    if (rc != LAMP_OK)
        return rc;
    if (b->q < 1 || b->m < 1 || b->l < 0)
        return lamp_error_set(err, LAMP_EVALUE, "empty batch");
    int64_t ne = dims->num_entities, nr = dims->num_relations;
    for (int64_t i = 0; i < b->q * b->m; i++) {
        const int64_t *c = b->candidates + 3 * i;
        if (c[0] < 0 || c[0] >= ne || c[2] < 0 || c[2] >= ne || c[1] < 0 || c[1] >= nr)
            return lamp_error_set(err, LAMP_EVALUE, "candidate %lld has an id out of the vocabulary",
                                  (long long)i);
        if (b->prior && !isfinite(b->prior[i]))
            return lamp_error_set(err, LAMP_EVALUE, "candidate %lld has a non-finite prior", (long long)i);
        if (!isfinite(b->candidate_times[i]))
            return lamp_error_set(err, LAMP_EVALUE, "candidate %lld has a non-finite time", (long long)i);
        for (int64_t j = 0; j < b->l; j++) {
            const int64_t *e = b->evidence + 3 * (i * b->l + j);
            if (e[0] < 0)
                continue;
            if (e[0] >= ne || e[2] < 0 || e[2] >= ne || e[1] < 0 || e[1] >= nr)
                return lamp_error_set(err, LAMP_EVALUE, "evidence %lld of candidate %lld has an id out of the "
                                      "vocabulary", (long long)j, (long long)i);
            if (!isfinite(b->evidence_times[i * b->l + j]))
                return lamp_error_set(err, LAMP_EVALUE, "evidence %lld of candidate %lld has a non-finite time",
                                      (long long)j, (long long)i);
        }
    }
    if (b->labels)
        for (int64_t i = 0; i < b->q; i++)
            if (b->labels[i] < 0 || b->labels[i] >= b->m)
                return lamp_error_set(err, LAMP_EVALUE, "label %lld of query %lld is not in [0, %lld)",
                                      (long long)b->labels[i], (long long)i, (long long)b->m);
    return LAMP_OK;
}

/* The model's shapes and parameter blocks. */
typedef struct {
    int64_t d, heads, e, layers, l; /* l: evidence slots per candidate, >= 1 for the buffers */
    double scale;                   /* 1 / sqrt(e) */
    const int64_t *off;
} model;

static double *block(const model *m, const double *base, int64_t blk)
{
    return (double *)(base + m->off[blk]);
}

static double *layer_block(const model *m, const double *base, int64_t layer, int blk)
{
    return block(m, base, LAMP_RANKER_NUM_BLOCKS + layer * LAMP_RANKER_LAYER_BLOCKS + blk);
}

/* Everything one candidate's forward pass keeps for its backward pass. */
typedef struct {
    int64_t n;                          /* valid evidence tokens */
    int64_t *pos;                       /* l: their positions in the evidence */
    double *xs;                         /* (layers + 1) x l x d: each layer's input, then the final states */
    double *lq, *lk, *lv, *lo, *ly, *lu; /* layers x l x d */
    double *att;                        /* layers x heads x l x l (n x n used) */
    double *kr, *vr;                    /* l x d: readout keys and values */
    double *alpha;                      /* heads x l */
    double *c, *qr, *z, *u, *keep;      /* d, d, 2d, d, d */
} cand_ws;

static size_t ws_doubles(const model *m)
{
    size_t l = (size_t)m->l, d = (size_t)m->d, nl = (size_t)m->layers, h = (size_t)m->heads;
    return (nl + 1) * l * d + 6 * nl * l * d + nl * h * l * l + 2 * l * d + h * l + 6 * d;
}

static void ws_bind(const model *m, double *p, int64_t *pos, cand_ws *w)
{
    size_t l = (size_t)m->l, d = (size_t)m->d, nl = (size_t)m->layers, h = (size_t)m->heads;
    w->n = 0;
    w->pos = pos;
    w->xs = p, p += (nl + 1) * l * d;
    w->lq = p, p += nl * l * d;
    w->lk = p, p += nl * l * d;
    w->lv = p, p += nl * l * d;
    w->lo = p, p += nl * l * d;
    w->ly = p, p += nl * l * d;
    w->lu = p, p += nl * l * d;
    w->att = p, p += nl * h * l * l;
    w->kr = p, p += l * d;
    w->vr = p, p += l * d;
    w->alpha = p, p += h * l;
    w->c = p, p += d;
    w->qr = p, p += d;
    w->z = p, p += 2 * d;
    w->u = p, p += d;
    w->keep = p;
}

/* One self-attention block over the n valid tokens: xs[layer] -> xs[layer + 1]. */
static void layer_forward(const model *m, const double *params, int64_t layer, cand_ws *w)
{
    const int64_t n = w->n, d = m->d, l = m->l, e = m->e;
    const double *x = w->xs + layer * l * d;
    double *out = w->xs + (layer + 1) * l * d;
    double *q = w->lq + layer * l * d, *k = w->lk + layer * l * d, *v = w->lv + layer * l * d,
           *o = w->lo + layer * l * d, *y = w->ly + layer * l * d, *u = w->lu + layer * l * d;
    double *att = w->att + layer * m->heads * l * l;
    gemm(0, 1, n, d, d, 1.0, x, d, layer_block(m, params, layer, LAMP_RANKER_AQ), d, 0.0, q, d);
    gemm(0, 1, n, d, d, 1.0, x, d, layer_block(m, params, layer, LAMP_RANKER_AK), d, 0.0, k, d);
    gemm(0, 1, n, d, d, 1.0, x, d, layer_block(m, params, layer, LAMP_RANKER_AV), d, 0.0, v, d);
    for (int64_t h = 0; h < m->heads; h++) {
        double *a = att + h * l * l;
        gemm(0, 1, n, n, e, m->scale, q + h * e, d, k + h * e, d, 0.0, a, n);
        for (int64_t j = 0; j < n; j++) {
            double *row = a + j * n, mx = -INFINITY, total = 0.0;
            for (int64_t i = 0; i <= j; i++)
                if (row[i] > mx)
                    mx = row[i];
            for (int64_t i = 0; i <= j; i++) {
                row[i] = exp(row[i] - mx);
                total += row[i];
            }
            for (int64_t i = 0; i <= j; i++)
                row[i] /= total;
            for (int64_t i = j + 1; i < n; i++)
                row[i] = 0.0; /* causal: token j sees the valid tokens at or before its position */
        }
        gemm(0, 0, n, e, n, 1.0, a, n, v + h * e, d, 0.0, o + h * e, d);
    }
    memcpy(y, x, sizeof(double) * (size_t)(n * d));
    gemm(0, 1, n, d, d, 1.0, o, d, layer_block(m, params, layer, LAMP_RANKER_AO), d, 1.0, y, d);
    const double *fb1 = layer_block(m, params, layer, LAMP_RANKER_FB1),
                 *fb2 = layer_block(m, params, layer, LAMP_RANKER_FB2);
    for (int64_t j = 0; j < n; j++)
        memcpy(u + j * d, fb1, sizeof(double) * (size_t)d);
    gemm(0, 1, n, d, d, 1.0, y, d, layer_block(m, params, layer, LAMP_RANKER_F1), d, 1.0, u, d);
    for (int64_t i = 0; i < n * d; i++)
        u[i] = tanh(u[i]);
    for (int64_t j = 0; j < n; j++)
        for (int64_t a = 0; a < d; a++)
            out[j * d + a] = y[j * d + a] + fb2[a];
    gemm(0, 1, n, d, d, 1.0, u, d, layer_block(m, params, layer, LAMP_RANKER_F2), d, 1.0, out, d);
}

/* Energy of candidate i; fills w for the backward pass. tmp holds d doubles. */
static double candidate_forward(const model *m, const lamp_ranker_dims *dims, const double *params,
                                const lamp_ranker_batch *b, int64_t i, double dropout, uint64_t *rng, cand_ws *w,
                                double *tmp)
{
    const int64_t d = m->d, L = b->l, e = m->e;
    const double *ent = block(m, params, LAMP_RANKER_ENT), *rel = block(m, params, LAMP_RANKER_REL),
                 *obj = block(m, params, LAMP_RANKER_OBJ), *wq = block(m, params, LAMP_RANKER_WQ),
                 *wk = block(m, params, LAMP_RANKER_WK), *wv = block(m, params, LAMP_RANKER_WV),
                 *w1 = block(m, params, LAMP_RANKER_W1), *b1 = block(m, params, LAMP_RANKER_B1),
                 *w2 = block(m, params, LAMP_RANKER_W2), *b2 = block(m, params, LAMP_RANKER_B2),
                 *gamma = block(m, params, LAMP_RANKER_GAMMA);
    const int64_t *cand = b->candidates + 3 * i;
    double *ci = w->c;
    for (int64_t a = 0; a < d; a++)
        ci[a] = ent[cand[0] * d + a] + rel[cand[1] * d + a] + obj[cand[2] * d + a];
    matvec(wq, ci, d, d, w->qr);
    double *hv = w->z;
    memset(hv, 0, sizeof(double) * (size_t)d);
    memcpy(hv + d, ci, sizeof(double) * (size_t)d);
    int64_t n = 0;
    for (int64_t j = 0; j < L; j++) {
        const int64_t *ev = b->evidence + 3 * (i * L + j);
        if (ev[0] < 0)
            continue;
        time_encoding((b->candidate_times[i] - b->evidence_times[i * L + j]) / dims->time_scale, d, tmp);
        double *xj = w->xs + n * d;
        for (int64_t a = 0; a < d; a++)
            xj[a] = ent[ev[0] * d + a] + rel[ev[1] * d + a] + obj[ev[2] * d + a] + tmp[a];
        w->pos[n++] = j;
    }
    w->n = n;
    if (n) {
        for (int64_t layer = 0; layer < m->layers; layer++)
            layer_forward(m, params, layer, w);
        const double *xf = w->xs + m->layers * m->l * d;
        for (int64_t t = 0; t < n; t++) {
            matvec(wk, xf + t * d, d, d, w->kr + t * d);
            matvec(wv, xf + t * d, d, d, w->vr + t * d);
        }
        for (int64_t h = 0; h < m->heads; h++) {
            double *al = w->alpha + h * m->l, mx = -INFINITY, total = 0.0;
            for (int64_t t = 0; t < n; t++) {
                al[t] = m->scale * cblas_ddot((int)e, w->qr + h * e, 1, w->kr + t * d + h * e, 1);
                if (al[t] > mx)
                    mx = al[t];
            }
            for (int64_t t = 0; t < n; t++) {
                al[t] = exp(al[t] - mx);
                total += al[t];
            }
            for (int64_t t = 0; t < n; t++) {
                al[t] /= total;
                cblas_daxpy((int)e, al[t], w->vr + t * d + h * e, 1, hv + h * e, 1);
            }
        }
    }
    double *ui = w->u;
    memcpy(ui, b1, sizeof(double) * (size_t)d);
    cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)d, (int)(2 * d), 1.0, w1, (int)(2 * d), hv, 1, 1.0, ui, 1);
    double energy = b2[0] + (b->prior ? gamma[0] * b->prior[i] : 0.0);
    for (int64_t a = 0; a < d; a++) {
        ui[a] = tanh(ui[a]);
        double kp = 1.0;
        if (dropout > 0.0)
            kp = ((double)(splitmix(rng) >> 11) * 0x1.0p-53 < dropout) ? 0.0 : 1.0 / (1.0 - dropout);
        w->keep[a] = kp;
        energy += w2[a] * ui[a] * kp;
    }
    return energy;
}

/* Scratch of the backward pass. */
typedef struct {
    double *du, *dz, *dq, *dk, *dv;              /* d, 2d, d, d, d */
    double *dxa, *dxb, *dy, *dp, *dO, *dQ, *dK, *dV; /* l x d */
    double *da, *ds;                             /* l x l */
    double *wt;                                  /* heads */
} bwd_ws;

static size_t bwd_doubles(const model *m)
{
    size_t l = (size_t)m->l, d = (size_t)m->d;
    return 6 * d + 8 * l * d + 2 * l * l + (size_t)m->heads;
}

static void bwd_bind(const model *m, double *p, bwd_ws *s)
{
    size_t l = (size_t)m->l, d = (size_t)m->d;
    s->du = p, p += d;
    s->dz = p, p += 2 * d;
    s->dq = p, p += d;
    s->dk = p, p += d;
    s->dv = p, p += d;
    s->dxa = p, p += l * d;
    s->dxb = p, p += l * d;
    s->dy = p, p += l * d;
    s->dp = p, p += l * d;
    s->dO = p, p += l * d;
    s->dQ = p, p += l * d;
    s->dK = p, p += l * d;
    s->dV = p, p += l * d;
    s->da = p, p += l * l;
    s->ds = p, p += l * l;
    s->wt = p;
}

/* Backward of one block: dout (n x d) -> dx (n x d), accumulating the block's parameter gradients. */
static void layer_backward(const model *m, const double *params, double *grads, int64_t layer, const cand_ws *w,
                           const double *dout, double *dx, bwd_ws *s)
{
    const int64_t n = w->n, d = m->d, l = m->l, e = m->e;
    const double *x = w->xs + layer * l * d;
    const double *q = w->lq + layer * l * d, *k = w->lk + layer * l * d, *v = w->lv + layer * l * d,
                 *o = w->lo + layer * l * d, *y = w->ly + layer * l * d, *u = w->lu + layer * l * d;
    const double *att = w->att + layer * m->heads * l * l;
    double *g_fb1 = layer_block(m, grads, layer, LAMP_RANKER_FB1),
           *g_fb2 = layer_block(m, grads, layer, LAMP_RANKER_FB2);
    for (int64_t j = 0; j < n; j++)
        for (int64_t a = 0; a < d; a++)
            g_fb2[a] += dout[j * d + a];
    gemm(1, 0, d, d, n, 1.0, dout, d, u, d, 1.0, layer_block(m, grads, layer, LAMP_RANKER_F2), d);
    double *dp = s->dp;
    gemm(0, 0, n, d, d, 1.0, dout, d, layer_block(m, params, layer, LAMP_RANKER_F2), d, 0.0, dp, d);
    for (int64_t i = 0; i < n * d; i++)
        dp[i] *= 1.0 - u[i] * u[i];
    for (int64_t j = 0; j < n; j++)
        for (int64_t a = 0; a < d; a++)
            g_fb1[a] += dp[j * d + a];
    gemm(1, 0, d, d, n, 1.0, dp, d, y, d, 1.0, layer_block(m, grads, layer, LAMP_RANKER_F1), d);
    double *dy = s->dy;
    memcpy(dy, dout, sizeof(double) * (size_t)(n * d));
    gemm(0, 0, n, d, d, 1.0, dp, d, layer_block(m, params, layer, LAMP_RANKER_F1), d, 1.0, dy, d);
    gemm(1, 0, d, d, n, 1.0, dy, d, o, d, 1.0, layer_block(m, grads, layer, LAMP_RANKER_AO), d);
    gemm(0, 0, n, d, d, 1.0, dy, d, layer_block(m, params, layer, LAMP_RANKER_AO), d, 0.0, s->dO, d);
    for (int64_t h = 0; h < m->heads; h++) {
        const double *a = att + h * l * l;
        gemm(0, 1, n, n, e, 1.0, s->dO + h * e, d, v + h * e, d, 0.0, s->da, n);
        gemm(1, 0, n, e, n, 1.0, a, n, s->dO + h * e, d, 0.0, s->dV + h * e, d);
        for (int64_t j = 0; j < n; j++) {
            const double *ar = a + j * n, *dar = s->da + j * n;
            double *dsr = s->ds + j * n, r = 0.0;
            for (int64_t i = 0; i <= j; i++)
                r += ar[i] * dar[i];
            for (int64_t i = 0; i <= j; i++)
                dsr[i] = ar[i] * (dar[i] - r) * m->scale;
            for (int64_t i = j + 1; i < n; i++)
                dsr[i] = 0.0;
        }
        gemm(0, 0, n, e, n, 1.0, s->ds, n, k + h * e, d, 0.0, s->dQ + h * e, d);
        gemm(1, 0, n, e, n, 1.0, s->ds, n, q + h * e, d, 0.0, s->dK + h * e, d);
    }
    gemm(1, 0, d, d, n, 1.0, s->dQ, d, x, d, 1.0, layer_block(m, grads, layer, LAMP_RANKER_AQ), d);
    gemm(1, 0, d, d, n, 1.0, s->dK, d, x, d, 1.0, layer_block(m, grads, layer, LAMP_RANKER_AK), d);
    gemm(1, 0, d, d, n, 1.0, s->dV, d, x, d, 1.0, layer_block(m, grads, layer, LAMP_RANKER_AV), d);
    memcpy(dx, dy, sizeof(double) * (size_t)(n * d));
    gemm(0, 0, n, d, d, 1.0, s->dQ, d, layer_block(m, params, layer, LAMP_RANKER_AQ), d, 1.0, dx, d);
    gemm(0, 0, n, d, d, 1.0, s->dK, d, layer_block(m, params, layer, LAMP_RANKER_AK), d, 1.0, dx, d);
    gemm(0, 0, n, d, d, 1.0, s->dV, d, layer_block(m, params, layer, LAMP_RANKER_AV), d, 1.0, dx, d);
}

/* Adds g_e * d energy_i / d params to grads. */
static void candidate_backward(const model *m, const double *params, double *grads, const lamp_ranker_batch *b,
                               int64_t i, double g_e, const cand_ws *w, bwd_ws *s)
{
    const int64_t d = m->d, e = m->e, n = w->n, L = b->l;
    const double *wq = block(m, params, LAMP_RANKER_WQ), *wk = block(m, params, LAMP_RANKER_WK),
                 *wv = block(m, params, LAMP_RANKER_WV), *w1 = block(m, params, LAMP_RANKER_W1),
                 *w2 = block(m, params, LAMP_RANKER_W2);
    double *g_ent = block(m, grads, LAMP_RANKER_ENT), *g_rel = block(m, grads, LAMP_RANKER_REL),
           *g_obj = block(m, grads, LAMP_RANKER_OBJ), *g_wq = block(m, grads, LAMP_RANKER_WQ),
           *g_wk = block(m, grads, LAMP_RANKER_WK), *g_wv = block(m, grads, LAMP_RANKER_WV),
           *g_w1 = block(m, grads, LAMP_RANKER_W1), *g_b1 = block(m, grads, LAMP_RANKER_B1),
           *g_w2 = block(m, grads, LAMP_RANKER_W2), *g_b2 = block(m, grads, LAMP_RANKER_B2),
           *g_gamma = block(m, grads, LAMP_RANKER_GAMMA);
    const double *ui = w->u, *kp = w->keep;
    g_b2[0] += g_e;
    if (b->prior)
        g_gamma[0] += g_e * b->prior[i];
    for (int64_t a = 0; a < d; a++) {
        g_w2[a] += g_e * ui[a] * kp[a];
        s->du[a] = g_e * w2[a] * kp[a] * (1.0 - ui[a] * ui[a]); /* through dropout and tanh */
        g_b1[a] += s->du[a];
    }
    outer_add(g_w1, s->du, w->z, d, 2 * d);
    memset(s->dz, 0, sizeof(double) * (size_t)(2 * d));
    matvec_t_add(w1, s->du, d, 2 * d, s->dz);
    double *dh = s->dz, *dc = s->dz + d; /* dc accumulates the candidate embedding's gradient */
    memset(s->dq, 0, sizeof(double) * (size_t)d);
    if (n) {
        const double *xf = w->xs + m->layers * m->l * d;
        double *dx = s->dxa;
        memset(dx, 0, sizeof(double) * (size_t)(n * d));
        for (int64_t h = 0; h < m->heads; h++) {
            const double *al = w->alpha + h * m->l;
            s->wt[h] = 0.0;
            for (int64_t t = 0; t < n; t++)
                s->wt[h] += al[t] * cblas_ddot((int)e, dh + h * e, 1, w->vr + t * d + h * e, 1);
        }
        for (int64_t t = 0; t < n; t++) {
            for (int64_t h = 0; h < m->heads; h++) {
                const double *al = w->alpha + h * m->l;
                double da = cblas_ddot((int)e, dh + h * e, 1, w->vr + t * d + h * e, 1);
                double ds = al[t] * (da - s->wt[h]) * m->scale; /* d loss / d (q_h . k_hj) */
                cblas_daxpy((int)e, ds, w->kr + t * d + h * e, 1, s->dq + h * e, 1);
                for (int64_t a = h * e; a < (h + 1) * e; a++) {
                    s->dk[a] = ds * w->qr[a];
                    s->dv[a] = al[t] * dh[a];
                }
            }
            outer_add(g_wk, s->dk, xf + t * d, d, d);
            matvec_t_add(wk, s->dk, d, d, dx + t * d);
            outer_add(g_wv, s->dv, xf + t * d, d, d);
            matvec_t_add(wv, s->dv, d, d, dx + t * d);
        }
        for (int64_t layer = m->layers - 1; layer >= 0; layer--) {
            double *below = (dx == s->dxa) ? s->dxb : s->dxa;
            layer_backward(m, params, grads, layer, w, dx, below, s);
            dx = below;
        }
        for (int64_t t = 0; t < n; t++) {
            const int64_t *ev = b->evidence + 3 * (i * L + w->pos[t]);
            cblas_daxpy((int)d, 1.0, dx + t * d, 1, g_ent + ev[0] * d, 1);
            cblas_daxpy((int)d, 1.0, dx + t * d, 1, g_rel + ev[1] * d, 1);
            cblas_daxpy((int)d, 1.0, dx + t * d, 1, g_obj + ev[2] * d, 1);
        }
    }
    outer_add(g_wq, s->dq, w->c, d, d);
    matvec_t_add(wq, s->dq, d, d, dc);
    const int64_t *cand = b->candidates + 3 * i;
    cblas_daxpy((int)d, 1.0, dc, 1, g_ent + cand[0] * d, 1);
    cblas_daxpy((int)d, 1.0, dc, 1, g_rel + cand[1] * d, 1);
    cblas_daxpy((int)d, 1.0, dc, 1, g_obj + cand[2] * d, 1);
}

static double softplus(double x)
{
    return (x > 0.0 ? x : 0.0) + log1p(exp(-fabs(x)));
}

/* Loss of one query's M energies; g (M, or NULL) gets d loss / d energy. */
static double query_loss(int loss_kind, const double *en, int64_t m, int64_t label, double *g)
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

int lamp_ranker_forward_backward(const lamp_ranker_dims *dims, const double *params, const lamp_ranker_batch *b,
                                 int loss_kind, double dropout, uint64_t seed, double *energies, double *loss,
                                 double *grads, lamp_error *err)
{
    int rc = check_batch(dims, b, err);
    if (rc != LAMP_OK)
        return rc;
    if (loss_kind != LAMP_RANKER_SOFTMAX && loss_kind != LAMP_RANKER_BINARY)
        return lamp_error_set(err, LAMP_EVALUE, "unknown loss %d (softmax = 0, binary = 1)", loss_kind);
    if (!(dropout >= 0.0 && dropout < 1.0))
        return lamp_error_set(err, LAMP_EVALUE, "dropout must be in [0, 1)");
    if (grads && !b->labels)
        return lamp_error_set(err, LAMP_EVALUE, "gradients need labels");
    const int64_t d = dims->width, M = b->m;
    int64_t nblocks = lamp_ranker_num_blocks(dims);
    int64_t *off = malloc(sizeof(int64_t) * (size_t)(nblocks + 1));
    model m = {d, dims->heads, d / dims->heads, dims->layers, b->l > 0 ? b->l : 1,
               1.0 / sqrt((double)(d / dims->heads)), off};
    /* with gradients, the M candidates of a query keep their activations until the query's loss is known */
    int64_t nws = grads ? M : 1;
    size_t per = ws_doubles(&m);
    double *ws_mem = malloc(sizeof(double) * per * (size_t)nws);
    int64_t *pos_mem = malloc(sizeof(int64_t) * (size_t)(m.l * nws));
    cand_ws *wss = malloc(sizeof(cand_ws) * (size_t)nws);
    double *tmp = malloc(sizeof(double) * (size_t)d);
    double *ge = malloc(sizeof(double) * (size_t)M);
    double *bwd_mem = grads ? malloc(sizeof(double) * bwd_doubles(&m)) : NULL;
    if (!off || !ws_mem || !pos_mem || !wss || !tmp || !ge || (grads && !bwd_mem)) {
        rc = lamp_error_set(err, LAMP_ENOMEM, "out of memory in the ranker");
        goto finally;
    }
    lamp_ranker_layout(dims, off);
    for (int64_t j = 0; j < nws; j++)
        ws_bind(&m, ws_mem + (size_t)j * per, pos_mem + j * m.l, &wss[j]);
    bwd_ws s = {0};
    if (grads) {
        bwd_bind(&m, bwd_mem, &s);
        memset(grads, 0, sizeof(double) * (size_t)off[nblocks]);
    }
    uint64_t rng = seed ^ 0xa5a5a5a5ULL;
    double total = 0.0;
    for (int64_t qi = 0; qi < b->q; qi++) {
        for (int64_t j = 0; j < M; j++)
            energies[qi * M + j] = candidate_forward(&m, dims, params, b, qi * M + j, dropout, &rng,
                                                     &wss[grads ? j : 0], tmp);
        if (!b->labels)
            continue;
        total += query_loss(loss_kind, energies + qi * M, M, b->labels[qi], grads ? ge : NULL);
        if (!grads)
            continue;
        double norm = loss_kind == LAMP_RANKER_BINARY ? (double)(b->q * M) : (double)b->q;
        for (int64_t j = 0; j < M; j++)
            candidate_backward(&m, params, grads, b, qi * M + j, ge[j] / norm, &wss[j], &s);
    }
    if (b->labels)
        *loss = total / (loss_kind == LAMP_RANKER_BINARY ? (double)(b->q * M) : (double)b->q);
finally:
    free(off);
    free(ws_mem);
    free(pos_mem);
    free(wss);
    free(tmp);
    free(ge);
    free(bwd_mem);
    return rc;
}
int lamp_ranker_adam(double *params, const double *grads, double *m1, double *m2, int64_t n, double lr,
                     double beta1, double beta2, double eps, double weight_decay, double clip, int64_t step,
                     lamp_error *err)
{
    if (step < 1 || !(lr > 0.0) || !(beta1 >= 0.0 && beta1 < 1.0) || !(beta2 >= 0.0 && beta2 < 1.0))
        return lamp_error_set(err, LAMP_EVALUE, "Adam needs step >= 1, lr > 0 and betas in [0, 1)");
    double norm = 0.0;
    for (int64_t i = 0; i < n; i++)
        norm += grads[i] * grads[i];
    norm = sqrt(norm);
    if (!isfinite(norm))
        return lamp_error_set(err, LAMP_EVALUE, "the gradient is not finite");
    double factor = (clip > 0.0 && norm > clip) ? clip / norm : 1.0;
    double c1 = 1.0 - pow(beta1, (double)step), c2 = 1.0 - pow(beta2, (double)step);
    for (int64_t i = 0; i < n; i++) {
        double g = grads[i] * factor;
        m1[i] = beta1 * m1[i] + (1.0 - beta1) * g;
        m2[i] = beta2 * m2[i] + (1.0 - beta2) * g * g;
        params[i] -= lr * ((m1[i] / c1) / (sqrt(m2[i] / c2) + eps) + weight_decay * params[i]);
    }
    return LAMP_OK;
}
