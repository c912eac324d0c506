/* Validation of columnar event sequences (the event store's layout). */
#ifndef LAMP_EVENTS_H
#define LAMP_EVENTS_H

#include <stdint.h>
#include "common/lamp_error.h"

/* Checks `num_sequences` sequences laid out back to back: sequence s holds
 * events offsets[s] .. offsets[s+1]-1 of `times` and `marks`.
 *
 * Requires offsets[0] == 0, non-decreasing offsets, finite non-decreasing
 * times within each sequence, num_types >= 1 and 0 <= marks < num_types.
 * On the first violation returns LAMP_EVALUE,
 * stores the sequence index in *bad_sequence and the event index (within the
 * sequence) in *bad_event, and writes a message naming both.
 */
int lamp_check_sequences(const double *times, const int64_t *marks,
                         const int64_t *offsets, int64_t num_sequences,
                         int64_t num_events, int64_t num_types,
                         int64_t *bad_sequence, int64_t *bad_event,
                         lamp_error *err);

#endif
