#include "ranker.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void lamp_ranker_layout(const lamp_ranker_dims *dims, int64_t *off)
{
    int64_t d = dims->width, ne = dims->num_entities, nr = dims->num_relations;
    int64_t sizes[LAMP_RANKER_NUM_BLOCKS] = {ne * d, nr * d, ne * d, d * d, d * d, d * d, d * 2 * d, d, d, 1, 1};
    off[0] = 0;
    for (int i = 0; i < LAMP_RANKER_NUM_BLOCKS; i++)
        off[i + 1] = off[i] + sizes[i];
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

static int check_batch(const lamp_ranker_dims *dims, const lamp_ranker_batch *b, lamp_error *err)
{
    if (dims->width < 2 || dims->width % 2)
        return lamp_error_set(err, LAMP_EVALUE, "width must be even and >= 2, got %lld", (long long)dims->width);
    if (!(dims->time_scale > 0.0))
        return lamp_error_set(err, LAMP_EVALUE, "time_scale must be positive");
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

int lamp_ranker_forward_backward(const lamp_ranker_dims *dims, const double *params, const lamp_ranker_batch *b,
                                 double dropout, uint64_t seed, double *energies, double *loss, double *grads,
                                 lamp_error *err)
{
    int rc = check_batch(dims, b, err);
    if (rc != LAMP_OK)
        return rc;
    if (!(dropout >= 0.0 && dropout < 1.0))
        return lamp_error_set(err, LAMP_EVALUE, "dropout must be in [0, 1)");
    if (grads && !b->labels)
        return lamp_error_set(err, LAMP_EVALUE, "gradients need labels");
    const int64_t d = dims->width, L = b->l, C = b->q * b->m;
    int64_t off[LAMP_RANKER_NUM_BLOCKS + 1];
    lamp_ranker_layout(dims, off);
    const double *ent = params + off[LAMP_RANKER_ENT], *rel = params + off[LAMP_RANKER_REL],
                 *obj = params + off[LAMP_RANKER_OBJ], *wq = params + off[LAMP_RANKER_WQ],
                 *wk = params + off[LAMP_RANKER_WK], *wv = params + off[LAMP_RANKER_WV],
                 *w1 = params + off[LAMP_RANKER_W1], *b1 = params + off[LAMP_RANKER_B1],
                 *w2 = params + off[LAMP_RANKER_W2], *b2 = params + off[LAMP_RANKER_B2],
                 *gamma = params + off[LAMP_RANKER_GAMMA];
    const double scale = 1.0 / sqrt((double)d);
    /* per-candidate scratch, kept for the backward pass */
    size_t per = (size_t)(L > 0 ? L : 1);
    double *x = malloc(sizeof(double) * (size_t)C * per * (size_t)d);
    double *k = malloc(sizeof(double) * (size_t)C * per * (size_t)d);
    double *v = malloc(sizeof(double) * (size_t)C * per * (size_t)d);
    double *alpha = malloc(sizeof(double) * (size_t)C * per);
    double *c0 = malloc(sizeof(double) * (size_t)C * (size_t)d);
    double *qv = malloc(sizeof(double) * (size_t)C * (size_t)d);
    double *z = malloc(sizeof(double) * (size_t)C * 2 * (size_t)d);
    double *u = malloc(sizeof(double) * (size_t)C * (size_t)d);     /* tanh output */
    double *keep = malloc(sizeof(double) * (size_t)C * (size_t)d);  /* dropout scale per unit */
    double *tmp = malloc(sizeof(double) * (size_t)(4 * d + 2));
    if (!x || !k || !v || !alpha || !c0 || !qv || !z || !u || !keep || !tmp) {
        rc = lamp_error_set(err, LAMP_ENOMEM, "out of memory in the ranker");
        goto finally;
    }
    uint64_t rng = seed ^ 0xa5a5a5a5ULL;
    for (int64_t i = 0; i < C; i++) {
        const int64_t *cand = b->candidates + 3 * i;
        double *ci = c0 + i * d;
        for (int64_t a = 0; a < d; a++)
            ci[a] = ent[cand[0] * d + a] + rel[cand[1] * d + a] + obj[cand[2] * d + a];
        matvec(wq, ci, d, d, qv + i * d);
        double *h = z + i * 2 * d;
        memset(h, 0, sizeof(double) * (size_t)d);
        memcpy(h + d, ci, sizeof(double) * (size_t)d);
        int64_t valid = 0;
        double mx = -INFINITY;
        for (int64_t j = 0; j < L; j++) {
            const int64_t *e = b->evidence + 3 * (i * L + j);
            double *xj = x + (i * L + j) * d;
            if (e[0] < 0) {
                alpha[i * L + j] = 0.0;
                continue;
            }
            time_encoding((b->candidate_times[i] - b->evidence_times[i * L + j]) / dims->time_scale, d, tmp);
            for (int64_t a = 0; a < d; a++)
                xj[a] = ent[e[0] * d + a] + rel[e[1] * d + a] + obj[e[2] * d + a] + tmp[a];
            matvec(wk, xj, d, d, k + (i * L + j) * d);
            matvec(wv, xj, d, d, v + (i * L + j) * d);
            double s = scale * cblas_ddot((int)d, qv + i * d, 1, k + (i * L + j) * d, 1);
            alpha[i * L + j] = s;
            if (s > mx)
                mx = s;
            valid++;
        }
        if (valid) {
            double total = 0.0;
            for (int64_t j = 0; j < L; j++) {
                if (b->evidence[3 * (i * L + j)] < 0)
                    continue;
                alpha[i * L + j] = exp(alpha[i * L + j] - mx);
                total += alpha[i * L + j];
            }
            for (int64_t j = 0; j < L; j++) {
                if (b->evidence[3 * (i * L + j)] < 0)
                    continue;
                alpha[i * L + j] /= total;
                cblas_daxpy((int)d, alpha[i * L + j], v + (i * L + j) * d, 1, h, 1);
            }
        }
        double *ui = u + i * d;
        memcpy(ui, b1, sizeof(double) * (size_t)d);
        cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)d, (int)(2 * d), 1.0, w1, (int)(2 * d), h, 1, 1.0, ui, 1);
        double energy = b2[0] + (b->prior ? gamma[0] * b->prior[i] : 0.0);
        for (int64_t a = 0; a < d; a++) {
            ui[a] = tanh(ui[a]);
            double kp = 1.0;
            if (dropout > 0.0)
                kp = ((double)(splitmix(&rng) >> 11) * 0x1.0p-53 < dropout) ? 0.0 : 1.0 / (1.0 - dropout);
            keep[i * d + a] = kp;
            energy += w2[a] * ui[a] * kp;
        }
        energies[i] = energy;
    }
    if (b->labels) {
        double total = 0.0;
        for (int64_t qi = 0; qi < b->q; qi++) {
            const double *e = energies + qi * b->m;
            double mn = INFINITY;
            for (int64_t j = 0; j < b->m; j++)
                if (e[j] < mn)
                    mn = e[j];
            double z_sum = 0.0;
            for (int64_t j = 0; j < b->m; j++)
                z_sum += exp(-(e[j] - mn));
            total += (e[b->labels[qi]] - mn) + log(z_sum);
        }
        *loss = total / (double)b->q;
    }
    if (!grads)
        goto finally;
    memset(grads, 0, sizeof(double) * (size_t)off[LAMP_RANKER_NUM_BLOCKS]);
    double *g_ent = grads + off[LAMP_RANKER_ENT], *g_rel = grads + off[LAMP_RANKER_REL],
           *g_obj = grads + off[LAMP_RANKER_OBJ], *g_wq = grads + off[LAMP_RANKER_WQ],
           *g_wk = grads + off[LAMP_RANKER_WK], *g_wv = grads + off[LAMP_RANKER_WV],
           *g_w1 = grads + off[LAMP_RANKER_W1], *g_b1 = grads + off[LAMP_RANKER_B1],
           *g_w2 = grads + off[LAMP_RANKER_W2], *g_b2 = grads + off[LAMP_RANKER_B2],
           *g_gamma = grads + off[LAMP_RANKER_GAMMA];
    double *du = tmp, *dz = tmp + d, *dq = tmp + 3 * d;
    double *dx = malloc(sizeof(double) * (size_t)d);
    double *dkv = malloc(sizeof(double) * (size_t)d);
    if (!dx || !dkv) {
        free(dx);
        free(dkv);
        rc = lamp_error_set(err, LAMP_ENOMEM, "out of memory in the ranker");
        goto finally;
    }
    for (int64_t qi = 0; qi < b->q; qi++) {
        const double *e = energies + qi * b->m;
        double mn = INFINITY, z_sum = 0.0;
        for (int64_t j = 0; j < b->m; j++)
            if (e[j] < mn)
                mn = e[j];
        for (int64_t j = 0; j < b->m; j++)
            z_sum += exp(-(e[j] - mn));
        for (int64_t j = 0; j < b->m; j++) {
            int64_t i = qi * b->m + j;
            double p = exp(-(e[j] - mn)) / z_sum;
            double g_e = ((j == b->labels[qi]) ? 1.0 : 0.0) - p;
            g_e /= (double)b->q;
            const double *ui = u + i * d, *kp = keep + i * d;
            g_b2[0] += g_e;
            if (b->prior)
                g_gamma[0] += g_e * b->prior[i];
            for (int64_t a = 0; a < d; a++) {
                g_w2[a] += g_e * ui[a] * kp[a];
                du[a] = g_e * w2[a] * kp[a] * (1.0 - ui[a] * ui[a]); /* through dropout and tanh */
                g_b1[a] += du[a];
            }
            const double *zi = z + i * 2 * d;
            outer_add(g_w1, du, zi, d, 2 * d);
            memset(dz, 0, sizeof(double) * (size_t)(2 * d));
            matvec_t_add(w1, du, d, 2 * d, dz);
            double *dh = dz, *dc = dz + d; /* dc accumulates the candidate embedding's gradient */
            const double *qi_vec = qv + i * d;
            memset(dq, 0, sizeof(double) * (size_t)d);
            double weighted = 0.0;
            for (int64_t j2 = 0; j2 < L; j2++) {
                if (b->evidence[3 * (i * L + j2)] < 0)
                    continue;
                double da = cblas_ddot((int)d, dh, 1, v + (i * L + j2) * d, 1);
                weighted += alpha[i * L + j2] * da;
            }
            for (int64_t j2 = 0; j2 < L; j2++) {
                const int64_t *ev = b->evidence + 3 * (i * L + j2);
                if (ev[0] < 0)
                    continue;
                double aj = alpha[i * L + j2];
                double da = cblas_ddot((int)d, dh, 1, v + (i * L + j2) * d, 1);
                double ds = aj * (da - weighted) * scale; /* d score / d (q . k) */
                const double *kj = k + (i * L + j2) * d, *xj = x + (i * L + j2) * d;
                cblas_daxpy((int)d, ds, kj, 1, dq, 1);
                memset(dx, 0, sizeof(double) * (size_t)d);
                /* key path: dk = ds q */
                for (int64_t a = 0; a < d; a++)
                    dkv[a] = ds * qi_vec[a];
                outer_add(g_wk, dkv, xj, d, d);
                matvec_t_add(wk, dkv, d, d, dx);
                /* value path: dv = alpha dh */
                for (int64_t a = 0; a < d; a++)
                    dkv[a] = aj * dh[a];
                outer_add(g_wv, dkv, xj, d, d);
                matvec_t_add(wv, dkv, d, d, dx);
                cblas_daxpy((int)d, 1.0, dx, 1, g_ent + ev[0] * d, 1);
                cblas_daxpy((int)d, 1.0, dx, 1, g_rel + ev[1] * d, 1);
                cblas_daxpy((int)d, 1.0, dx, 1, g_obj + ev[2] * d, 1);
            }
            outer_add(g_wq, dq, c0 + i * d, d, d);
            matvec_t_add(wq, dq, d, d, dc);
            const int64_t *cand = b->candidates + 3 * i;
            cblas_daxpy((int)d, 1.0, dc, 1, g_ent + cand[0] * d, 1);
            cblas_daxpy((int)d, 1.0, dc, 1, g_rel + cand[1] * d, 1);
            cblas_daxpy((int)d, 1.0, dc, 1, g_obj + cand[2] * d, 1);
        }
    }
    free(dx);
    free(dkv);
finally:
    free(x);
    free(k);
    free(v);
    free(alpha);
    free(c0);
    free(qv);
    free(z);
    free(u);
    free(keep);
    free(tmp);
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
