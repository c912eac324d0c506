#include <math.h>
#include <stdint.h>

#include "retrieval/dense.h"
#include "tests/check.h"

static void test_cosine_top_k_with_cutoff(void)
{
    float corpus[4 * 2] = {1, 0, 0, 1, 1, 1, 2, 0};
    float query[2] = {1, 0};
    lamp_error err;
    CHECK(lamp_dense_normalize(corpus, 4, 2, "corpus", &err) == LAMP_OK);
    CHECK_CLOSE(corpus[4], 1 / sqrt(2.0), 1e-6);
    int64_t ids[3], before[1] = {4};
    double scores[3];
    CHECK(lamp_dense_search(corpus, 4, 2, query, 1, before, 3, ids, scores, &err) == LAMP_OK);
    CHECK(ids[0] == 3 && ids[1] == 0 && ids[2] == 2); /* the tie (rows 0 and 3) goes to the later row */
    CHECK_CLOSE(scores[2], 1 / sqrt(2.0), 1e-6);
    before[0] = 1;
    CHECK(lamp_dense_search(corpus, 4, 2, query, 1, before, 3, ids, scores, &err) == LAMP_OK);
    CHECK(ids[0] == 0 && ids[1] == -1 && isinf(scores[1]));
}

static void test_bad_rows(void)
{
    float zero[2] = {0, 0}, nan_row[2] = {NAN, 1};
    lamp_error err;
    CHECK(lamp_dense_normalize(zero, 1, 2, "vectors", &err) == LAMP_EVALUE);
    CHECK(lamp_dense_normalize(nan_row, 1, 2, "vectors", &err) == LAMP_EVALUE);
}

int main(void)
{
    RUN(test_cosine_top_k_with_cutoff);
    RUN(test_bad_rows);
    return CHECK_SUMMARY("test_dense");
}
