/* Best-k selection shared by the kernels: a min-heap of the k best (score, id)
 * pairs, worst at the root, then sorted best first.  On equal scores the
 * smaller id wins, or the larger one when prefer_larger_id is set (BM25
 * prefers the more recent event). */
#ifndef LAMP_TOPK_H
#define LAMP_TOPK_H

#include <stdint.h>

typedef struct {
    double *scores;
    int64_t *ids;
    int64_t size, k;
    int prefer_larger_id;
} lamp_topk;

static inline int lamp_topk_better(const lamp_topk *h, double sa, int64_t ia, double sb, int64_t ib)
{
    if (sa != sb)
        return sa > sb;
    return h->prefer_larger_id ? ia > ib : ia < ib;
}

static inline void lamp_topk_sift(lamp_topk *h, int64_t n, int64_t i)
{
    for (;;) {
        int64_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && lamp_topk_better(h, h->scores[w], h->ids[w], h->scores[l], h->ids[l]))
            w = l;
        if (r < n && lamp_topk_better(h, h->scores[w], h->ids[w], h->scores[r], h->ids[r]))
            w = r;
        if (w == i)
            return;
        double ts = h->scores[i];
        h->scores[i] = h->scores[w];
        h->scores[w] = ts;
        int64_t ti = h->ids[i];
        h->ids[i] = h->ids[w];
        h->ids[w] = ti;
        i = w;
    }
}

/* Offers one candidate. */
static inline void lamp_topk_push(lamp_topk *h, double score, int64_t id)
{
    if (h->size < h->k) {
        h->scores[h->size] = score;
        h->ids[h->size] = id;
        h->size++;
        if (h->size == h->k)
            for (int64_t i = h->k / 2; i >= 0; i--)
                lamp_topk_sift(h, h->k, i);
    } else if (lamp_topk_better(h, score, id, h->scores[0], h->ids[0])) {
        h->scores[0] = score;
        h->ids[0] = id;
        lamp_topk_sift(h, h->k, 0);
    }
}

/* Sorts the kept candidates best first; returns how many there are. */
static inline int64_t lamp_topk_finish(lamp_topk *h)
{
    if (h->size < h->k)
        for (int64_t i = h->size / 2; i >= 0 && h->size > 0; i--)
            lamp_topk_sift(h, h->size, i);
    for (int64_t end = h->size - 1; end > 0; end--) {
        double ts = h->scores[0];
        h->scores[0] = h->scores[end];
        h->scores[end] = ts;
        int64_t ti = h->ids[0];
        h->ids[0] = h->ids[end];
        h->ids[end] = ti;
        lamp_topk_sift(h, end, 0);
    }
    return h->size;
}

#endif
