#include "dense.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>

#include "topk.h"

enum { QUERY_BLOCK = 256, CORPUS_BLOCK = 4096 };

int lamp_dense_normalize(float *x, int64_t n, int64_t d, const char *what, lamp_error *err)
{
    for (int64_t i = 0; i < n; i++) {
        double s = 0.0;
        for (int64_t j = 0; j < d; j++)
            s += (double)x[i * d + j] * (double)x[i * d + j];
        if (!isfinite(s))
            return lamp_error_set(err, LAMP_EVALUE, "%s row %lld has a NaN or infinite value", what, (long long)i);
        if (s == 0.0)
            return lamp_error_set(err, LAMP_EVALUE, "%s row %lld is a zero vector (no direction to compare)", what,
                                  (long long)i);
        float inv = (float)(1.0 / sqrt(s));
        for (int64_t j = 0; j < d; j++)
            x[i * d + j] *= inv;
    }
    return LAMP_OK;
}

int lamp_dense_search(const float *corpus, int64_t n, int64_t d, const float *queries, int64_t q,
                      const int64_t *before, int64_t k, int64_t *ids, double *scores, lamp_error *err)
{
    if (k <= 0 || d <= 0)
        return lamp_error_set(err, LAMP_EVALUE, "k and the dimension must be positive");
    for (int64_t i = 0; before && i < q; i++)
        if (before[i] < 0 || before[i] > n)
            return lamp_error_set(err, LAMP_EVALUE, "before[%lld] = %lld is outside [0, %lld]", (long long)i,
                                  (long long)before[i], (long long)n);
    float *block = malloc(sizeof(float) * QUERY_BLOCK * CORPUS_BLOCK);
    lamp_topk *heaps = malloc(sizeof(lamp_topk) * QUERY_BLOCK);
    if (!block || !heaps) {
        free(block);
        free(heaps);
        return lamp_error_set(err, LAMP_ENOMEM, "out of memory");
    }
    for (int64_t q0 = 0; q0 < q; q0 += QUERY_BLOCK) {
        int64_t qb = q - q0 < QUERY_BLOCK ? q - q0 : QUERY_BLOCK, reach = 0;
        for (int64_t i = 0; i < qb; i++) {
            heaps[i] = (lamp_topk){scores + (q0 + i) * k, ids + (q0 + i) * k, 0, k, 1};
            int64_t limit = before ? before[q0 + i] : n;
            if (limit > reach)
                reach = limit;
        }
        for (int64_t c0 = 0; c0 < reach; c0 += CORPUS_BLOCK) {
            int64_t cb = reach - c0 < CORPUS_BLOCK ? reach - c0 : CORPUS_BLOCK;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)qb, (int)cb, (int)d, 1.0f, queries + q0 * d,
                        (int)d, corpus + c0 * d, (int)d, 0.0f, block, (int)cb);
            for (int64_t i = 0; i < qb; i++) {
                int64_t limit = before ? before[q0 + i] : n;
                const float *row = block + i * cb;
                for (int64_t j = 0; j < cb && c0 + j < limit; j++)
                    lamp_topk_push(&heaps[i], (double)row[j], c0 + j);
            }
        }
        for (int64_t i = 0; i < qb; i++) {
            int64_t size = lamp_topk_finish(&heaps[i]);
            for (int64_t j = size; j < k; j++) {
                heaps[i].ids[j] = -1;
                heaps[i].scores[j] = -INFINITY;
            }
        }
    }
    free(block);
    free(heaps);
    return LAMP_OK;
}
