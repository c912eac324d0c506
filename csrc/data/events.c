#include "data/events.h"

#include <math.h>

int lamp_check_sequences(const double *times, const int64_t *marks,
                         const int64_t *offsets, int64_t num_sequences,
                         int64_t num_events, int64_t num_types,
                         int64_t *bad_sequence, int64_t *bad_event,
                         lamp_error *err)
{
    *bad_sequence = -1;
    *bad_event = -1;
    if (num_sequences < 0 || num_events < 0)
        return lamp_error_set(err, LAMP_EVALUE, "negative sizes");
    if (num_types < 1)
        return lamp_error_set(err, LAMP_EVALUE, "num_types must be >= 1 (every event has a type in [0, num_types)), "
                              "got %lld", (long long)num_types);
    if (offsets[0] != 0)
        return lamp_error_set(err, LAMP_EVALUE, "offsets[0] is %lld, expected 0",
                              (long long)offsets[0]);
    if (offsets[num_sequences] != num_events)
        return lamp_error_set(err, LAMP_EVALUE,
                              "offsets[-1] is %lld but there are %lld events",
                              (long long)offsets[num_sequences], (long long)num_events);
    for (int64_t s = 0; s < num_sequences; s++) {
        int64_t begin = offsets[s], end = offsets[s + 1];
        if (end < begin || end > num_events) {
            *bad_sequence = s;
            return lamp_error_set(err, LAMP_EVALUE,
                                  "sequence %lld: offsets %lld..%lld are not increasing within [0, %lld]",
                                  (long long)s, (long long)begin, (long long)end,
                                  (long long)num_events);
        }
        for (int64_t i = begin; i < end; i++) {
            double t = times[i];
            if (!isfinite(t)) {
                *bad_sequence = s;
                *bad_event = i - begin;
                return lamp_error_set(err, LAMP_EVALUE, "sequence %lld, event %lld: time is %g (not finite)",
                                      (long long)s, (long long)(i - begin), t);
            }
            if (i > begin && t < times[i - 1]) {
                *bad_sequence = s;
                *bad_event = i - begin;
                return lamp_error_set(err, LAMP_EVALUE,
                                      "sequence %lld, event %lld: time %.17g is before the previous time %.17g "
                                      "(times must be non-decreasing)",
                                      (long long)s, (long long)(i - begin), t, times[i - 1]);
            }
            if (marks[i] < 0 || marks[i] >= num_types) {
                *bad_sequence = s;
                *bad_event = i - begin;
                return lamp_error_set(err, LAMP_EVALUE,
                                      "sequence %lld, event %lld: type %lld is outside [0, %lld)",
                                      (long long)s, (long long)(i - begin), (long long)marks[i],
                                      (long long)num_types);
            }
        }
    }
    return LAMP_OK;
}
