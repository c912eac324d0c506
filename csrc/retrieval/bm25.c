#include "retrieval/bm25.h"

#include "common/grow.h"
#include "common/hashmap.h"
#include "common/threads.h"
#include "common/topk.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct lamp_bm25 {
    /* vocabulary: term t is arena[term_start[t] .. term_start[t] + term_len[t]) */
    char *arena;
    int64_t arena_size, arena_cap;
    int64_t *term_start, *term_len;
    unsigned char *term_stop;
    int64_t num_terms, terms_cap;
    lamp_hashmap terms; /* hash of a term's text -> term id (texts compared on lookup) */
    /* postings (CSR by term) */
    int64_t *post_offsets; /* num_terms + 1 */
    int64_t *post_doc;
    double *post_tf;
    double *idf;
    /* documents */
    int64_t num_docs;
    double *doc_norm; /* k1 * (1 - b + b * len / avgdl) */
    int64_t *entities; /* num_docs x 2 or NULL */
    double k1, b, avgdl;
};

static int is_token_byte(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

/* Finds the next token of s[0..len) at or after *p: sets *start and returns its
 * length, advancing *p past it; 0 when there is none. */
static int64_t next_token(const char *s, int64_t len, int64_t *p, int64_t *start)
{
    int64_t i = *p;
    while (i < len && !is_token_byte((unsigned char)s[i]))
        i++;
    int64_t j = i;
    while (j < len && is_token_byte((unsigned char)s[j]))
        j++;
    *start = i;
    *p = j;
    return j - i;
}

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

static uint64_t hash_token(const char *s, int64_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (int64_t i = 0; i < n; i++) {
        h ^= lower((unsigned char)s[i]);
        h *= 1099511628211ULL;
    }
    return h;
}

typedef struct {
    const lamp_bm25 *ix;
    const char *s;
    int64_t n;
} token_ref;

/* Is term `term` the token (compared lower-cased)? */
static int token_equals(const void *ctx, int64_t term)
{
    const token_ref *tok = ctx;
    const lamp_bm25 *ix = tok->ix;
    if (ix->term_len[term] != tok->n)
        return 0;
    const char *t = ix->arena + ix->term_start[term];
    for (int64_t i = 0; i < tok->n; i++)
        if (t[i] != (char)lower((unsigned char)tok->s[i]))
            return 0;
    return 1;
}

/* Term id of a token, or -1. */
static int64_t lookup(const lamp_bm25 *ix, const char *s, int64_t n)
{
    token_ref tok = {ix, s, n};
    return lamp_hashmap_find(&ix->terms, hash_token(s, n), token_equals, &tok);
}

/* Term id of a token, adding it when new; -2 on allocation failure. */
static int64_t intern(lamp_bm25 *ix, const char *s, int64_t n, int stop)
{
    uint64_t hash = hash_token(s, n);
    token_ref tok = {ix, s, n};
    int64_t found = lamp_hashmap_find(&ix->terms, hash, token_equals, &tok);
    if (found >= 0) {
        if (stop)
            ix->term_stop[found] = 1;
        return found;
    }
    if (ix->num_terms == ix->terms_cap) {
        int64_t cap = ix->terms_cap ? 2 * ix->terms_cap : 1024;
        if (LAMP_RESIZE(ix->term_start, cap) < 0 || LAMP_RESIZE(ix->term_len, cap) < 0 ||
            LAMP_RESIZE(ix->term_stop, cap) < 0)
            return -2;
        ix->terms_cap = cap;
    }
    if (ix->arena_size + n > ix->arena_cap) {
        int64_t cap = ix->arena_cap ? 2 * ix->arena_cap : 65536;
        while (cap < ix->arena_size + n)
            cap *= 2;
        if (LAMP_RESIZE(ix->arena, cap) < 0)
            return -2;
        ix->arena_cap = cap;
    }
    for (int64_t i = 0; i < n; i++)
        ix->arena[ix->arena_size + i] = (char)lower((unsigned char)s[i]);
    int64_t t = ix->num_terms++;
    ix->term_start[t] = ix->arena_size;
    ix->term_len[t] = n;
    ix->term_stop[t] = (unsigned char)(stop != 0);
    ix->arena_size += n;
    if (lamp_hashmap_insert(&ix->terms, hash, t) < 0)
        return -2;
    return t;
}

void lamp_bm25_free(lamp_bm25 *ix)
{
    if (!ix)
        return;
    free(ix->arena);
    free(ix->term_start);
    free(ix->term_len);
    free(ix->term_stop);
    lamp_hashmap_free(&ix->terms);
    free(ix->post_offsets);
    free(ix->post_doc);
    free(ix->post_tf);
    free(ix->idf);
    free(ix->doc_norm);
    free(ix->entities);
    free(ix);
}

int64_t lamp_bm25_num_documents(const lamp_bm25 *ix) { return ix->num_docs; }
int64_t lamp_bm25_vocabulary_size(const lamp_bm25 *ix) { return ix->num_terms; }

static int cmp_int64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

lamp_bm25 *lamp_bm25_build(const char *text, const int64_t *offsets, int64_t n, const char *stop_text,
                           const int64_t *stop_offsets, int64_t n_stop, const int64_t *entities, double k1, double b,
                           lamp_error *err)
{
    if (n <= 0) {
        lamp_error_set(err, LAMP_EVALUE, "the corpus is empty: BM25 needs at least one document");
        return NULL;
    }
    if (!(k1 >= 0.0) || !isfinite(k1) || !(b >= 0.0 && b <= 1.0)) {
        lamp_error_set(err, LAMP_EVALUE, "k1 must be >= 0 and b in [0, 1], got k1=%g b=%g", k1, b);
        return NULL;
    }
    for (int64_t i = 0; i < n; i++)
        if (offsets[i + 1] < offsets[i]) {
            lamp_error_set(err, LAMP_EVALUE, "document offsets must be non-decreasing");
            return NULL;
        }
    lamp_bm25 *ix = calloc(1, sizeof *ix);
    int64_t *doc_terms = NULL, *triples = NULL, *counts = NULL;
    int64_t n_triples = 0, triples_cap = 0, doc_terms_cap = 0;
    if (!ix)
        goto oom;
    ix->k1 = k1;
    ix->b = b;
    ix->num_docs = n;
    if (lamp_hashmap_init(&ix->terms, 512) < 0)
        goto oom;
    for (int64_t i = 0; i < n_stop; i++) {
        const char *s = stop_text + stop_offsets[i];
        int64_t len = stop_offsets[i + 1] - stop_offsets[i], p = 0, at, n_tok;
        while ((n_tok = next_token(s, len, &p, &at)) > 0)
            if (intern(ix, s + at, n_tok, 1) == -2)
                goto oom;
    }
    ix->doc_norm = malloc((size_t)n * sizeof(double));
    if (!ix->doc_norm)
        goto oom;
    double total_len = 0.0;
    /* triples: (term, doc, tf) appended doc by doc */
    for (int64_t d = 0; d < n; d++) {
        const char *s = text + offsets[d];
        int64_t len = offsets[d + 1] - offsets[d], p = 0, count = 0, at, n_tok;
        while ((n_tok = next_token(s, len, &p, &at)) > 0) {
            int64_t t = intern(ix, s + at, n_tok, 0);
            if (t == -2)
                goto oom;
            if (ix->term_stop[t])
                continue;
            if (count == doc_terms_cap) {
                doc_terms_cap = doc_terms_cap ? 2 * doc_terms_cap : 64;
                if (LAMP_RESIZE(doc_terms, doc_terms_cap) < 0)
                    goto oom;
            }
            doc_terms[count++] = t;
        }
        ix->doc_norm[d] = (double)count; /* length for now */
        total_len += (double)count;
        qsort(doc_terms, (size_t)count, sizeof(int64_t), cmp_int64);
        for (int64_t i = 0; i < count;) {
            int64_t j = i;
            while (j < count && doc_terms[j] == doc_terms[i])
                j++;
            if (n_triples == triples_cap) {
                triples_cap = triples_cap ? 2 * triples_cap : 4096;
                if (LAMP_RESIZE(triples, 3 * triples_cap) < 0)
                    goto oom;
            }
            triples[3 * n_triples] = doc_terms[i];
            triples[3 * n_triples + 1] = d;
            triples[3 * n_triples + 2] = j - i;
            n_triples++;
            i = j;
        }
    }
    ix->avgdl = total_len / (double)n;
    for (int64_t d = 0; d < n; d++)
        ix->doc_norm[d] = k1 * (1.0 - b + (ix->avgdl > 0 ? b * ix->doc_norm[d] / ix->avgdl : 0.0));
    /* counting sort by term (stable: documents stay in order within a term) */
    int64_t V = ix->num_terms;
    ix->post_offsets = calloc((size_t)(V + 1), sizeof(int64_t));
    ix->post_doc = malloc((size_t)(n_triples ? n_triples : 1) * sizeof(int64_t));
    ix->post_tf = malloc((size_t)(n_triples ? n_triples : 1) * sizeof(double));
    ix->idf = malloc((size_t)(V ? V : 1) * sizeof(double));
    counts = calloc((size_t)(V ? V : 1), sizeof(int64_t));
    if (!ix->post_offsets || !ix->post_doc || !ix->post_tf || !ix->idf || !counts)
        goto oom;
    for (int64_t i = 0; i < n_triples; i++)
        ix->post_offsets[triples[3 * i] + 1]++;
    for (int64_t t = 0; t < V; t++)
        ix->post_offsets[t + 1] += ix->post_offsets[t];
    for (int64_t i = 0; i < n_triples; i++) {
        int64_t t = triples[3 * i], at = ix->post_offsets[t] + counts[t]++;
        ix->post_doc[at] = triples[3 * i + 1];
        ix->post_tf[at] = (double)triples[3 * i + 2];
    }
    for (int64_t t = 0; t < V; t++) {
        double df = (double)(ix->post_offsets[t + 1] - ix->post_offsets[t]);
        ix->idf[t] = log(1.0 + ((double)n - df + 0.5) / (df + 0.5));
    }
    if (entities) {
        ix->entities = malloc((size_t)(2 * n) * sizeof(int64_t));
        if (!ix->entities)
            goto oom;
        memcpy(ix->entities, entities, (size_t)(2 * n) * sizeof(int64_t));
    }
    free(doc_terms);
    free(triples);
    free(counts);
    return ix;
oom:
    free(doc_terms);
    free(triples);
    free(counts);
    lamp_bm25_free(ix);
    lamp_error_set(err, LAMP_ENOMEM, "out of memory while building the BM25 index");
    return NULL;
}

int64_t lamp_bm25_tokenize(const lamp_bm25 *ix, const char *s, int64_t len, int64_t *terms, int64_t cap)
{
    int64_t p = 0, count = 0, at, n_tok;
    while (count < cap && (n_tok = next_token(s, len, &p, &at)) > 0) {
        int64_t t = lookup(ix, s + at, n_tok);
        if (t < 0 || !ix->term_stop[t])
            terms[count++] = t;
    }
    return count;
}

/* --------------------------------------------------------------------------- search */

/* Scratch of one search thread: score accumulators over the documents, the documents touched, the
 * query's terms. */
typedef struct {
    double *acc;
    int64_t *touched, *terms;
    int64_t terms_cap;
    int failed;
} search_scratch;

typedef struct {
    const lamp_bm25 *ix;
    const char *text;
    const int64_t *offsets, *before, *scope;
    int64_t k;
    int64_t *ids;
    double *scores;
    int threads;
    search_scratch scratch[LAMP_THREADS_MAX];
} search_job;

static int64_t lower_bound(const int64_t *a, int64_t lo, int64_t hi, int64_t value)
{
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (a[mid] < value)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Queries [lo, hi) (one query per piece: thread t takes queries t, t + threads, ...). */
static void search_range(void *arg, int64_t lo, int64_t hi, int64_t part)
{
    search_job *job = arg;
    const lamp_bm25 *ix = job->ix;
    search_scratch *w = &job->scratch[part % job->threads];
    if (w->failed)
        return;
    if (!w->acc) {
        w->acc = calloc((size_t)ix->num_docs, sizeof(double));
        w->touched = malloc((size_t)ix->num_docs * sizeof(int64_t));
        w->terms_cap = 256;
        w->terms = malloc((size_t)w->terms_cap * sizeof(int64_t));
        if (!w->acc || !w->touched || !w->terms) {
            w->failed = 1;
            return;
        }
    }
    double *acc = w->acc;
    int64_t *touched = w->touched;
    for (int64_t qi = lo; qi < hi; qi++) {
        const char *s = job->text + job->offsets[qi];
        int64_t len = job->offsets[qi + 1] - job->offsets[qi];
        if (len + 1 > w->terms_cap) {
            if (LAMP_RESIZE(w->terms, len + 1) < 0) {
                w->failed = 1;
                return;
            }
            w->terms_cap = len + 1;
        }
        int64_t *terms = w->terms;
        int64_t n_terms = lamp_bm25_tokenize(ix, s, len, terms, w->terms_cap);
        int64_t cutoff = job->before ? job->before[qi] : ix->num_docs;
        const int64_t *scope = job->scope ? job->scope + 2 * qi : NULL;
        int64_t n_touched = 0;
        for (int64_t j = 0; j < n_terms; j++) {
            int64_t t = terms[j];
            if (t < 0)
                continue;
            int64_t a = ix->post_offsets[t], end = ix->post_offsets[t + 1];
            end = lower_bound(ix->post_doc, a, end, cutoff);
            double idf = ix->idf[t];
            for (int64_t p = a; p < end; p++) {
                int64_t d = ix->post_doc[p];
                if (scope) {
                    const int64_t *e = ix->entities + 2 * d;
                    int ok = (scope[0] >= 0 && (e[0] == scope[0] || e[1] == scope[0])) ||
                             (scope[1] >= 0 && (e[0] == scope[1] || e[1] == scope[1]));
                    if (!ok)
                        continue;
                }
                double tf = ix->post_tf[p];
                if (acc[d] == 0.0)
                    touched[n_touched++] = d;
                acc[d] += idf * tf * (ix->k1 + 1.0) / (tf + ix->doc_norm[d]);
            }
        }
        int64_t *out_ids = job->ids + qi * job->k;
        double *out_scores = job->scores + qi * job->k;
        int64_t k = job->k;
        lamp_topk heap = {out_scores, out_ids, 0, k, 1};
        for (int64_t j = 0; j < n_touched; j++) {
            int64_t d = touched[j];
            lamp_topk_push(&heap, acc[d], d);
            acc[d] = 0.0;
        }
        int64_t size = lamp_topk_finish(&heap);
        for (int64_t i = size; i < k; i++) {
            out_ids[i] = -1;
            out_scores[i] = -INFINITY;
        }
    }
}

int lamp_bm25_search(const lamp_bm25 *ix, const char *text, const int64_t *offsets, int64_t q,
                     const int64_t *before, const int64_t *scope, int64_t k, int threads, int64_t *ids,
                     double *scores, lamp_error *err)
{
    if (k <= 0)
        return lamp_error_set(err, LAMP_EVALUE, "k must be positive, got %lld", (long long)k);
    if (scope && !ix->entities)
        return lamp_error_set(err, LAMP_EVALUE, "scoped search needs an index built with entities");
    for (int64_t i = 0; i < q; i++) {
        if (offsets[i + 1] < offsets[i])
            return lamp_error_set(err, LAMP_EVALUE, "query offsets must be non-decreasing");
        if (before && (before[i] < 0 || before[i] > ix->num_docs))
            return lamp_error_set(err, LAMP_EVALUE, "before[%lld] = %lld is outside [0, %lld]", (long long)i,
                                  (long long)before[i], (long long)ix->num_docs);
    }
    if (threads < 1)
        threads = 1;
    if (threads > 16)
        threads = 16;
    if (q < 64)
        threads = 1;
    search_job *job = calloc(1, sizeof *job);
    if (!job)
        return lamp_error_set(err, LAMP_ENOMEM, "out of memory during BM25 search");
    *job = (search_job){.ix = ix, .text = text, .offsets = offsets, .before = before, .scope = scope, .k = k,
                        .ids = ids, .scores = scores, .threads = threads};
    lamp_run_parts(search_range, job, q, q, threads);
    int failed = 0;
    for (int w = 0; w < threads; w++) {
        failed |= job->scratch[w].failed;
        free(job->scratch[w].acc);
        free(job->scratch[w].touched);
        free(job->scratch[w].terms);
    }
    free(job);
    if (failed)
        return lamp_error_set(err, LAMP_ENOMEM, "out of memory during BM25 search");
    return LAMP_OK;
}
