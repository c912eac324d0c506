#include <math.h>
#include <stdint.h>
#include <string.h>

#include "retrieval/bm25.h"
#include "retrieval/evidence.h"
#include "tests/check.h"

static void test_closed_form_scores(void)
{
    const char *text = "china iran talksweather";
    /* three documents: "china iran", "talks", "weather" */
    int64_t offsets[] = {0, 10, 16, 23};
    lamp_error err;
    lamp_bm25 *ix = lamp_bm25_build(text, offsets, 3, "", (int64_t[]){0}, 0, NULL, 1.2, 0.75, &err);
    CHECK(ix != NULL);
    if (!ix)
        return;
    CHECK(lamp_bm25_vocabulary_size(ix) == 4);
    int64_t qoff[] = {0, 5};
    int64_t ids[2];
    double scores[2];
    CHECK(lamp_bm25_search(ix, "CHINA", qoff, 1, NULL, NULL, 2, 1, ids, scores, &err) == LAMP_OK);
    double avgdl = 4.0 / 3.0, idf = log(1.0 + (3.0 - 1.0 + 0.5) / 1.5);
    double expected = idf * 2.2 / (1.0 + 1.2 * (0.25 + 0.75 * 2.0 / avgdl));
    CHECK(ids[0] == 0 && ids[1] == -1);
    CHECK_CLOSE(scores[0], expected, 1e-12);
    CHECK(isinf(scores[1]) && scores[1] < 0);
    int64_t before[] = {0};
    CHECK(lamp_bm25_search(ix, "china", qoff, 1, before, NULL, 1, 1, ids, scores, &err) == LAMP_OK);
    CHECK(ids[0] == -1);
    int64_t bad_before[] = {4};
    CHECK(lamp_bm25_search(ix, "china", qoff, 1, bad_before, NULL, 1, 1, ids, scores, &err) == LAMP_EVALUE);
    lamp_bm25_free(ix);
}

static void test_threads_agree(void)
{
    enum { N = 300, Q = 200 };
    static char text[N * 8], queries[Q * 8];
    int64_t offsets[N + 1], qoff[Q + 1];
    const char *words[] = {"aa ", "bb ", "cc ", "dd "};
    int64_t p = 0;
    for (int i = 0; i < N; i++) {
        offsets[i] = p;
        memcpy(text + p, words[i % 4], 3);
        memcpy(text + p + 3, words[(i / 4) % 4], 3);
        p += 6;
    }
    offsets[N] = p;
    p = 0;
    for (int i = 0; i < Q; i++) {
        qoff[i] = p;
        memcpy(queries + p, words[i % 4], 3);
        p += 3;
    }
    qoff[Q] = p;
    lamp_error err;
    lamp_bm25 *ix = lamp_bm25_build(text, offsets, N, "", (int64_t[]){0}, 0, NULL, 1.2, 0.75, &err);
    CHECK(ix != NULL);
    if (!ix)
        return;
    static int64_t ids1[Q * 5], ids2[Q * 5];
    static double s1[Q * 5], s2[Q * 5];
    CHECK(lamp_bm25_search(ix, queries, qoff, Q, NULL, NULL, 5, 1, ids1, s1, &err) == LAMP_OK);
    CHECK(lamp_bm25_search(ix, queries, qoff, Q, NULL, NULL, 5, 2, ids2, s2, &err) == LAMP_OK);
    CHECK(memcmp(ids1, ids2, sizeof ids1) == 0);
    lamp_bm25_free(ix);
}

static void test_evidence_dedup_and_order(void)
{
    int64_t s[] = {0, 1, 0, 2}, r[] = {0, 0, 0, 1}, o[] = {1, 2, 1, 3};
    double t[] = {5.0, 1.0, 5.0, 3.0};
    int64_t hits[] = {0, 2, 1, 3, -1};
    int64_t out[3];
    lamp_error err;
    CHECK(lamp_assemble_evidence(hits, 1, 5, s, r, o, t, 4, 3, out, &err) == LAMP_OK);
    /* events 0 and 2 are the same quadruple; time order: 1 (t=1), 3 (t=3), 0 (t=5) */
    CHECK(out[0] == 1 && out[1] == 3 && out[2] == 0);
    CHECK(lamp_assemble_evidence(hits, 1, 5, s, r, o, t, 4, 2, out, &err) == LAMP_OK);
    CHECK(out[0] == 3 && out[1] == 0);
}

int main(void)
{
    RUN(test_closed_form_scores);
    RUN(test_threads_agree);
    RUN(test_evidence_dedup_and_order);
    return CHECK_SUMMARY("test_match");
}
