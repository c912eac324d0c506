/* Okapi BM25 over event texts in time order, with a per-query time cutoff.
 *
 * Tokenizer: ASCII letters are lower-cased; a token is a maximal run of
 * ASCII letters/digits and bytes >= 0x80 (so UTF-8 words stay whole; invalid
 * UTF-8 is not an error, its bytes are token characters).  Everything else
 * separates tokens.  Stop words (optional) are dropped at build and query time.
 *
 * score(d, q) = sum over query tokens w (repeats count) of
 *     idf(w) * tf(w, d) * (k1 + 1) / (tf(w, d) + k1 * (1 - b + b * |d| / avgdl))
 * with idf(w) = ln(1 + (N - n(w) + 0.5) / (n(w) + 0.5)); N and avgdl over the
 * whole indexed corpus.
 *
 * Documents are indexed in the order given (time order), so postings are
 * sorted by document index and "documents before index c" is a binary
 * search.  Results are best first; equal scores go to the more recent
 * (larger) document index.  Fewer than k matches leave -1 / -inf padding.
 */
#ifndef LAMP_BM25_H
#define LAMP_BM25_H

#include <stdint.h>

#include "common/lamp_error.h"

typedef struct lamp_bm25 lamp_bm25;

/* Builds an index over n documents: document i is text[offsets[i] .. offsets[i+1]).
 * stop (may be NULL) holds n_stop stop words the same way. entities (may be
 * NULL) is n x 2 entity ids per document, used by scoped search. */
lamp_bm25 *lamp_bm25_build(const char *text, const int64_t *offsets, int64_t n, const char *stop_text,
                           const int64_t *stop_offsets, int64_t n_stop, const int64_t *entities, double k1, double b,
                           lamp_error *err);
void lamp_bm25_free(lamp_bm25 *index);

int64_t lamp_bm25_num_documents(const lamp_bm25 *index);
int64_t lamp_bm25_vocabulary_size(const lamp_bm25 *index);

/* Searches q queries (query i is text[offsets[i] .. offsets[i+1])), each over the
 * documents with index < before[i] (before may be NULL: all).  scope (may be
 * NULL) is q x 2 entity ids: a document matches only if one of its two
 * entities equals one of the query's (entries < 0 are ignored); the index
 * must have been built with entities.  Writes ids (q x k) and scores (q x k).
 * Uses up to `threads` threads. */
int lamp_bm25_search(const lamp_bm25 *index, const char *text, const int64_t *offsets, int64_t q,
                     const int64_t *before, const int64_t *scope, int64_t k, int threads, int64_t *ids,
                     double *scores, lamp_error *err);

/* Tokens of one text as term ids (-1 for tokens not in the vocabulary),
 * for tests and inspection; returns the count written (at most cap). */
int64_t lamp_bm25_tokenize(const lamp_bm25 *index, const char *text, int64_t len, int64_t *terms, int64_t cap);

#endif
