/* csrc/common/threads.c (range functions on threads) and csrc/common/workspace.c (the work-buffer cache). */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "common/threads.h"
#include "common/workspace.h"
#include "tests/check.h"

static void test_part_start(void)
{
    for (int64_t n = 0; n < 40; n++)
        for (int64_t parts = 1; parts < 12; parts++)
            for (int64_t p = 0; p <= parts; p++)
                CHECK(lamp_part_start(n, parts, p) == n * p / parts);
    /* no overflow for large n */
    const int64_t big = INT64_MAX / 2;
    CHECK(lamp_part_start(big, 3, 3) == big);
    CHECK(lamp_part_start(big, 2, 1) == big / 2);
    CHECK(lamp_part_start(big, 1000003, 1000002) <= big);
}

enum { N = 1000, MAX_PARTS = 50 };

typedef struct {
    int hits[N];
    int64_t lo[MAX_PARTS], hi[MAX_PARTS];
    pthread_t who[MAX_PARTS];
    int calls[MAX_PARTS];
} record;

static void record_range(void *ctx, int64_t lo, int64_t hi, int64_t part)
{
    record *r = ctx;
    for (int64_t i = lo; i < hi; i++)
        r->hits[i]++; /* the pieces are disjoint: no two threads touch one element */
    r->lo[part] = lo, r->hi[part] = hi, r->who[part] = pthread_self();
    r->calls[part]++;
}

static void test_every_piece_once(void)
{
    static record r;
    const int64_t parts_list[] = {1, 2, 5, 17, MAX_PARTS};
    const int threads_list[] = {0, 1, 2, 3, 7, 100};
    for (size_t a = 0; a < sizeof parts_list / sizeof *parts_list; a++)
        for (size_t b = 0; b < sizeof threads_list / sizeof *threads_list; b++) {
            const int64_t parts = parts_list[a];
            const int threads = threads_list[b];
            memset(&r, 0, sizeof r);
            lamp_run_parts(record_range, &r, N, parts, threads);
            for (int64_t i = 0; i < N; i++)
                CHECK(r.hits[i] == 1);
            int eff = threads < 1 ? 1 : threads;
            for (int64_t p = 0; p < parts; p++) {
                CHECK(r.calls[p] == 1);
                CHECK(r.lo[p] == N * p / parts && r.hi[p] == N * (p + 1) / parts);
                /* piece p runs on thread p % threads; piece 0 on the caller */
                CHECK(pthread_equal(r.who[p], r.who[p % eff]));
            }
            CHECK(pthread_equal(r.who[0], pthread_self()));
        }
}

static void test_empty_range(void)
{
    static record r;
    memset(&r, 0, sizeof r);
    lamp_run_parts(record_range, &r, 0, 4, 2);
    for (int p = 0; p < 4; p++)
        CHECK(r.calls[p] == 1 && r.lo[p] == 0 && r.hi[p] == 0);
    memset(&r, 0, sizeof r);
    lamp_run_parts(record_range, &r, 10, 0, 2); /* parts < 1 counts as one */
    CHECK(r.calls[0] == 1 && r.lo[0] == 0 && r.hi[0] == 10);
}

static void test_workspace(void)
{
    lamp_workspace ws = LAMP_WORKSPACE_INIT(1000);
    size_t got = 0;
    char *a = lamp_workspace_get(&ws, 100, &got);
    CHECK(a != NULL && got == 100);
    memset(a, 1, got);
    lamp_workspace_put(&ws, a, got);
    size_t got2 = 0;
    char *b = lamp_workspace_get(&ws, 50, &got2); /* the cached block is large enough */
    CHECK(b == a && got2 == 100);
    char *c = lamp_workspace_get(&ws, 400, &got); /* none cached: a fresh one */
    CHECK(c != NULL && c != b && got == 400);
    lamp_workspace_put(&ws, b, got2);
    lamp_workspace_put(&ws, c, got);
    size_t got3 = 0;
    char *d = lamp_workspace_get(&ws, 90, &got3); /* the smallest that fits */
    CHECK(d == b && got3 == 100);
    lamp_workspace_put(&ws, d, got3);
    char *e = lamp_workspace_get(&ws, 2000, &got); /* larger than the cache keeps: freed on return */
    CHECK(e != NULL && got == 2000);
    lamp_workspace_put(&ws, e, got);
    size_t total = 0;
    for (int i = 0; i < LAMP_WORKSPACE_SLOTS; i++)
        total += ws.size[i];
    CHECK(total == 500);
    lamp_workspace_put(&ws, NULL, 10); /* no-op */
    /* a full cache gives way to larger blocks */
    lamp_workspace_clear(&ws);
    for (int i = 0; i < LAMP_WORKSPACE_SLOTS; i++)
        lamp_workspace_put(&ws, lamp_workspace_get(&ws, 10, &got), 10);
    char *blocks[LAMP_WORKSPACE_SLOTS + 1];
    for (int i = 0; i <= LAMP_WORKSPACE_SLOTS; i++)
        blocks[i] = lamp_workspace_get(&ws, 10, &got);
    for (int i = 0; i <= LAMP_WORKSPACE_SLOTS; i++)
        lamp_workspace_put(&ws, blocks[i], 10 + (size_t)i);
    total = 0;
    for (int i = 0; i < LAMP_WORKSPACE_SLOTS; i++)
        total += ws.size[i] * (ws.block[i] != NULL);
    CHECK(total <= 1000);
    lamp_workspace_clear(&ws);
    for (int i = 0; i < LAMP_WORKSPACE_SLOTS; i++)
        CHECK(ws.block[i] == NULL && ws.size[i] == 0);
}

int main(void)
{
    RUN(test_part_start);
    RUN(test_every_piece_once);
    RUN(test_empty_range);
    RUN(test_workspace);
    return CHECK_SUMMARY("test_threads");
}
