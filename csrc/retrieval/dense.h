/* Exact cosine top-k over the prefix of a corpus of float32 vectors (dense retrieval).
 *
 * Rows are L2-normalised once (lamp_dense_normalize); a search multiplies
 * blocks of queries by blocks of the corpus with OpenBLAS sgemm and keeps a
 * k-heap per query, so no N x Q score matrix is held at once.  Query i sees
 * corpus rows < before[i]; equal scores go to the larger (more recent) row.
 */
#ifndef LAMP_DENSE_H
#define LAMP_DENSE_H

#include <stdint.h>

#include "common/lamp_error.h"

/* Normalises the n rows of x (n x d) in place; a zero, NaN or infinite row is an error naming it. */
int lamp_dense_normalize(float *x, int64_t n, int64_t d, const char *what, lamp_error *err);

int lamp_dense_search(const float *corpus, int64_t n, int64_t d, const float *queries, int64_t q,
                      const int64_t *before, int64_t k, int64_t *ids, double *scores, lamp_error *err);

#endif
