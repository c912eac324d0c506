/* Evidence assembly (retrieval/evidence.h): the hits of a candidate's causes, from BM25 or dense
 * retrieval alike, merged into its evidence rows. */
#include "retrieval/evidence.h"

#include <stdlib.h>

typedef struct {
    const int64_t *s, *r, *o;
    const double *t;
} event_columns;

/* time, then subject, relation, object, then index */
static int event_before(const event_columns *ev, int64_t a, int64_t b)
{
    if (ev->t[a] != ev->t[b])
        return ev->t[a] < ev->t[b];
    if (ev->s[a] != ev->s[b])
        return ev->s[a] < ev->s[b];
    if (ev->r[a] != ev->r[b])
        return ev->r[a] < ev->r[b];
    if (ev->o[a] != ev->o[b])
        return ev->o[a] < ev->o[b];
    return a < b;
}

static int same_event(const event_columns *ev, int64_t a, int64_t b)
{
    return ev->t[a] == ev->t[b] && ev->s[a] == ev->s[b] && ev->r[a] == ev->r[b] && ev->o[a] == ev->o[b];
}

int lamp_assemble_evidence(const int64_t *hits, int64_t n, int64_t per, const int64_t *subjects,
                           const int64_t *relations, const int64_t *objects, const double *times, int64_t n_events,
                           int64_t L, int64_t *out, lamp_error *err)
{
    if (L <= 0 || per < 0)
        return lamp_error_set(err, LAMP_EVALUE, "evidence length must be positive");
    for (int64_t i = 0; i < n * per; i++)
        if (hits[i] < -1 || hits[i] >= n_events)
            return lamp_error_set(err, LAMP_EVALUE, "hit %lld is outside [-1, %lld)", (long long)hits[i],
                                  (long long)n_events);
    int64_t *buf = malloc((size_t)(per > 0 ? per : 1) * sizeof(int64_t));
    if (!buf)
        return lamp_error_set(err, LAMP_ENOMEM, "out of memory");
    event_columns ev = {subjects, relations, objects, times};
    for (int64_t c = 0; c < n; c++) {
        int64_t m = 0;
        for (int64_t j = 0; j < per; j++) {
            int64_t h = hits[c * per + j];
            if (h < 0)
                continue;
            int64_t p = m++;
            while (p > 0 && event_before(&ev, h, buf[p - 1])) {
                buf[p] = buf[p - 1];
                p--;
            }
            buf[p] = h;
        }
        int64_t u = 0;
        for (int64_t j = 0; j < m; j++)
            if (u == 0 || !same_event(&ev, buf[j], buf[u - 1]))
                buf[u++] = buf[j];
        int64_t first = u > L ? u - L : 0, *row = out + c * L, w = 0;
        for (int64_t j = first; j < u; j++)
            row[w++] = buf[j];
        for (; w < L; w++)
            row[w] = -1;
    }
    free(buf);
    return LAMP_OK;
}
