/* Evidence of each candidate from the events its causes retrieved (by BM25, retrieval/bm25.h, or by
 * dense search, retrieval/dense.h): the ranker's evidence rows. */
#ifndef LAMP_EVIDENCE_H
#define LAMP_EVIDENCE_H

#include <stdint.h>

#include "common/lamp_error.h"

/* Evidence assembly: for each of n candidates, the event indices in
 * hits[i * per .. (i + 1) * per) (-1 = none) are merged, de-duplicated on the
 * events' (subject, relation, object, time), sorted by time (then index), and
 * the last L kept: out[i * L .. (i + 1) * L) holds them in time order followed
 * by -1 padding.  Event columns have n_events entries. */
int lamp_assemble_evidence(const int64_t *hits, int64_t n, int64_t per, const int64_t *subjects,
                           const int64_t *relations, const int64_t *objects, const double *times, int64_t n_events,
                           int64_t L, int64_t *out, lamp_error *err);

#endif
