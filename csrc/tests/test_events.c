#include <stdint.h>
#include <string.h>

#include "data/events.h"
#include "tests/check.h"

static void test_valid_sequences_pass(void)
{
    double times[] = {0.0, 1.0, 1.0, 0.5, 2.0};
    int64_t marks[] = {0, 1, 1, 2, 0};
    int64_t offsets[] = {0, 3, 5};
    int64_t s, e;
    lamp_error err;
    lamp_error_clear(&err);
    CHECK(lamp_check_sequences(times, marks, offsets, 2, 5, 3, &s, &e, &err) == LAMP_OK);
    CHECK(s == -1 && e == -1);
}

static void test_decreasing_time_names_position(void)
{
    double times[] = {0.0, 1.0, 3.0, 2.0};
    int64_t marks[] = {0, 0, 0, 0};
    int64_t offsets[] = {0, 2, 4};
    int64_t s, e;
    lamp_error err;
    CHECK(lamp_check_sequences(times, marks, offsets, 2, 4, 1, &s, &e, &err) == LAMP_EVALUE);
    CHECK(s == 1 && e == 1);
    CHECK(strstr(err.message, "sequence 1, event 1") != NULL);
}

static void test_nan_and_range(void)
{
    double times[] = {0.0, NAN};
    int64_t marks[] = {0, 0};
    int64_t offsets[] = {0, 2};
    int64_t s, e;
    lamp_error err;
    CHECK(lamp_check_sequences(times, marks, offsets, 1, 2, 1, &s, &e, &err) == LAMP_EVALUE);
    CHECK(e == 1 && strstr(err.message, "not finite") != NULL);

    double ok_times[] = {0.0, 1.0};
    int64_t bad_marks[] = {0, 5};
    CHECK(lamp_check_sequences(ok_times, bad_marks, offsets, 1, 2, 5, &s, &e, &err) == LAMP_EVALUE);
    CHECK(e == 1 && strstr(err.message, "outside [0, 5)") != NULL);
    int64_t negative[] = {-1, 0};
    CHECK(lamp_check_sequences(ok_times, negative, offsets, 1, 2, 5, &s, &e, &err) == LAMP_EVALUE);
    CHECK(e == 0);
    /* num_types <= 0 no longer skips the range check: it is an error itself */
    CHECK(lamp_check_sequences(ok_times, bad_marks, offsets, 1, 2, 0, &s, &e, &err) == LAMP_EVALUE);
}

static void test_bad_offsets(void)
{
    double times[] = {0.0, 1.0};
    int64_t marks[] = {0, 0};
    int64_t wrong_total[] = {0, 1};
    int64_t not_zero[] = {1, 2};
    int64_t decreasing[] = {0, 2, 1, 2};
    int64_t s, e;
    lamp_error err;
    CHECK(lamp_check_sequences(times, marks, wrong_total, 1, 2, 1, &s, &e, &err) == LAMP_EVALUE);
    CHECK(lamp_check_sequences(times, marks, not_zero, 1, 2, 1, &s, &e, &err) == LAMP_EVALUE);
    CHECK(lamp_check_sequences(times, marks, decreasing, 3, 2, 1, &s, &e, &err) == LAMP_EVALUE);
    CHECK(s == 1);
}

static void test_empty_store(void)
{
    int64_t offsets[] = {0};
    int64_t s, e;
    lamp_error err;
    CHECK(lamp_check_sequences(NULL, NULL, offsets, 0, 0, 3, &s, &e, &err) == LAMP_OK);
}

static void test_num_types_must_be_positive(void)
{
    double times[] = {0.0, 1.0};
    int64_t marks[] = {0, 5};
    int64_t offsets[] = {0, 2};
    int64_t s, e;
    lamp_error err;
    const int64_t bad[] = {0, -1, -100};
    for (int k = 0; k < 3; k++) {
        lamp_error_clear(&err);
        CHECK(lamp_check_sequences(times, marks, offsets, 1, 2, bad[k], &s, &e, &err) == LAMP_EVALUE);
        CHECK(strstr(err.message, "num_types") != NULL);
    }
    /* also with no events */
    int64_t empty_offsets[] = {0, 0};
    CHECK(lamp_check_sequences(times, marks, empty_offsets, 1, 0, 0, &s, &e, &err) == LAMP_EVALUE);
    /* the marks are checked against num_types >= 1 */
    CHECK(lamp_check_sequences(times, marks, offsets, 1, 2, 5, &s, &e, &err) == LAMP_EVALUE);
    CHECK(s == 0 && e == 1 && strstr(err.message, "type 5 is outside [0, 5)") != NULL);
    CHECK(lamp_check_sequences(times, marks, offsets, 1, 2, 6, &s, &e, &err) == LAMP_OK);
}

int main(void)
{
    RUN(test_valid_sequences_pass);
    RUN(test_decreasing_time_names_position);
    RUN(test_nan_and_range);
    RUN(test_bad_offsets);
    RUN(test_empty_store);
    RUN(test_num_types_must_be_positive);
    return CHECK_SUMMARY("test_events");
}
