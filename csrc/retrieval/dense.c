#include "retrieval/dense.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/topk.h"

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

typedef struct {
    int64_t limit, row;
} dense_order;

static int dense_order_cmp(const void *a, const void *b)
{
    const dense_order *x = a, *y = b;
    if (x->limit != y->limit)
        return x->limit < y->limit ? -1 : 1;
    return x->row < y->row ? -1 : (x->row > y->row);
}

/* Queries are processed in order of their cutoff, QUERY_BLOCK at a time, so the queries of one block
 * reach about as far into the corpus and little of the block's sgemm is wasted past a cutoff.  A
 * score below the worst kept one is rejected by one comparison before the heap is touched. */
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
    float *qbuf = malloc(sizeof(float) * QUERY_BLOCK * (size_t)d);
    lamp_topk *heaps = malloc(sizeof(lamp_topk) * QUERY_BLOCK);
    dense_order *order = malloc(sizeof(dense_order) * (size_t)(q > 0 ? q : 1));
    if (!block || !heaps || !qbuf || !order) {
        free(block);
        free(heaps);
        free(qbuf);
        free(order);
        return lamp_error_set(err, LAMP_ENOMEM, "out of memory");
    }
    for (int64_t i = 0; i < q; i++)
        order[i] = (dense_order){before ? before[i] : n, i};
    if (before)
        qsort(order, (size_t)q, sizeof(dense_order), dense_order_cmp);
    for (int64_t q0 = 0; q0 < q; q0 += QUERY_BLOCK) {
        int64_t qb = q - q0 < QUERY_BLOCK ? q - q0 : QUERY_BLOCK;
        int64_t reach = order[q0 + qb - 1].limit;
        for (int64_t i = 0; i < qb; i++) {
            int64_t row = order[q0 + i].row;
            heaps[i] = (lamp_topk){scores + row * k, ids + row * k, 0, k, 1};
            memcpy(qbuf + i * d, queries + row * d, sizeof(float) * (size_t)d);
        }
        for (int64_t c0 = 0; c0 < reach; c0 += CORPUS_BLOCK) {
            int64_t cb = reach - c0 < CORPUS_BLOCK ? reach - c0 : CORPUS_BLOCK;
            /* queries whose cutoff is at or before c0 are done: start the block at the first live one */
            int64_t first = 0;
            while (first < qb && order[q0 + first].limit <= c0)
                first++;
            if (first == qb)
                break;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(qb - first), (int)cb, (int)d, 1.0f,
                        qbuf + first * d, (int)d, corpus + c0 * d, (int)d, 0.0f, block, (int)cb);
            for (int64_t i = first; i < qb; i++) {
                int64_t limit = order[q0 + i].limit;
                int64_t end = limit - c0 < cb ? limit - c0 : cb;
                const float *row = block + (i - first) * cb;
                lamp_topk *h = &heaps[i];
                int64_t j = 0;
                for (; j < end && h->size < h->k; j++)
                    lamp_topk_push(h, (double)row[j], c0 + j);
                float threshold = h->size == h->k ? (float)h->scores[0] : -INFINITY;
                for (; j < end; j++) {
                    /* ties go to the more recent (larger) id, which comes later: >= must reach the heap */
                    if (row[j] >= threshold) {
                        lamp_topk_push(h, (double)row[j], c0 + j);
                        threshold = (float)h->scores[0];
                    }
                }
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
    free(qbuf);
    free(order);
    return LAMP_OK;
}
