/* A minimal unit-test harness for the pure-C kernels.
 *
 * Each test_<area>.c defines test functions and a main() that runs them with
 * RUN(test_name).  CHECK* record a failure and continue; the process exits
 * non-zero if anything failed.  The last line printed has the form
 * "<binary>: N passed, N failed".
 */
#ifndef LAMP_CHECK_H
#define LAMP_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int check_failures_in_test;
static int check_tests_passed;
static int check_tests_failed;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            check_failures_in_test++;                                                \
        }                                                                            \
    } while (0)

#define CHECK_CLOSE(a, b, tol)                                                              \
    do {                                                                                    \
        double check_a_ = (a), check_b_ = (b);                                              \
        if (!(fabs(check_a_ - check_b_) <= (tol) * (1.0 + fabs(check_b_)))) {               \
            fprintf(stderr, "  %s:%d: CHECK_CLOSE failed: %s = %.17g, %s = %.17g\n", __FILE__, \
                    __LINE__, #a, check_a_, #b, check_b_);                                  \
            check_failures_in_test++;                                                       \
        }                                                                                   \
    } while (0)

#define RUN(test)                                                  \
    do {                                                           \
        check_failures_in_test = 0;                                \
        test();                                                    \
        if (check_failures_in_test) {                              \
            fprintf(stderr, "FAIL %s\n", #test);                   \
            check_tests_failed++;                                  \
        } else {                                                   \
            check_tests_passed++;                                  \
        }                                                          \
    } while (0)

#define CHECK_SUMMARY(name)                                                                       \
    (printf("%s: %d passed, %d failed\n", (name), check_tests_passed, check_tests_failed),         \
     check_tests_failed ? EXIT_FAILURE : EXIT_SUCCESS)

#endif
