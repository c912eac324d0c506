/* csrc/common/hashmap.h: insert / find / grow / collisions, both with unique keys and with hashed keys. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hashmap.h"
#include "tests/check.h"

static void test_unique_keys_and_growth(void)
{
    lamp_hashmap m;
    CHECK(lamp_hashmap_init(&m, 10) == 0);
    CHECK(m.capacity == 64 && m.size == 0);
    CHECK(lamp_hashmap_get(&m, 5) == -1);
    enum { N = 5000 };
    int added = -1;
    for (int64_t i = 0; i < N; i++) {
        uint64_t key = (uint64_t)i * 0x100000001ULL; /* sparse keys */
        CHECK(lamp_hashmap_get_or_put(&m, key, i, &added) == i && added == 1);
        CHECK(2 * m.size <= m.capacity); /* at most half full */
    }
    CHECK(m.size == N && m.capacity == 16384);
    for (int64_t i = 0; i < N; i++) {
        uint64_t key = (uint64_t)i * 0x100000001ULL;
        CHECK(lamp_hashmap_get(&m, key) == i);
        CHECK(lamp_hashmap_get_or_put(&m, key, 999999, &added) == i && added == 0);
        CHECK(lamp_hashmap_get(&m, key + 1) == -1);
    }
    CHECK(m.size == N);
    lamp_hashmap_free(&m);
    CHECK(m.slots == NULL && m.capacity == 0 && m.size == 0);
}

static void test_extreme_keys_and_zeroed_map(void)
{
    lamp_hashmap m;
    memset(&m, 0, sizeof m); /* a zeroed map is an empty one */
    CHECK(lamp_hashmap_get(&m, 0) == -1);
    int added = 0;
    CHECK(lamp_hashmap_get_or_put(&m, UINT64_MAX, 7, &added) == 7 && added);
    CHECK(lamp_hashmap_get_or_put(&m, 0, 0, &added) == 0 && added);
    CHECK(lamp_hashmap_get(&m, UINT64_MAX) == 7);
    CHECK(lamp_hashmap_get(&m, 0) == 0);
    CHECK(lamp_hashmap_get(&m, 1) == -1);
    lamp_hashmap_free(&m);
}

/* Hashed keys: strings whose "hash" collides on purpose (their length), told apart by eq. */
typedef struct {
    const char *const *words;
    const char *query;
} words_ref;

static int word_equals(const void *ctx, int64_t value)
{
    const words_ref *r = ctx;
    return strcmp(r->words[value], r->query) == 0;
}

static void test_hashed_keys_with_collisions(void)
{
    static const char *const words[] = {"ab", "cd", "ef", "xyz", "gh", "uvw", "a", "ij", "klm", "b"};
    const int n = (int)(sizeof words / sizeof *words);
    lamp_hashmap m = {0};
    for (int i = 0; i < n; i++)
        CHECK(lamp_hashmap_insert(&m, strlen(words[i]), i) == 0); /* same key for each length */
    CHECK(m.size == n);
    for (int i = 0; i < n; i++) {
        words_ref r = {words, words[i]};
        CHECK(lamp_hashmap_find(&m, strlen(words[i]), word_equals, &r) == i);
    }
    words_ref missing = {words, "zz"};
    CHECK(lamp_hashmap_find(&m, 2, word_equals, &missing) == -1);
    /* without eq: the first entry of the key */
    CHECK(lamp_hashmap_find(&m, 2, NULL, NULL) == 0);
    CHECK(lamp_hashmap_find(&m, 4, NULL, NULL) == -1);
    lamp_hashmap_free(&m);
}

/* Many entries with one key, and many keys landing in few slots: probing and growth keep them all. */
static void test_long_probe_chains_across_growth(void)
{
    lamp_hashmap m = {0};
    enum { N = 1000 };
    static char names[N][16];
    const char *ptrs[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "w%d", i);
        ptrs[i] = names[i];
        CHECK(lamp_hashmap_insert(&m, (uint64_t)(i % 3), i) == 0); /* three keys in all */
    }
    CHECK(m.size == N && m.capacity >= 2 * N);
    for (int i = 0; i < N; i++) {
        words_ref r = {ptrs, names[i]};
        CHECK(lamp_hashmap_find(&m, (uint64_t)(i % 3), word_equals, &r) == i);
        CHECK(lamp_hashmap_find(&m, (uint64_t)((i + 1) % 3), word_equals, &r) == -1);
    }
    lamp_hashmap_free(&m);
}

static void test_init_sizes(void)
{
    lamp_hashmap m;
    CHECK(lamp_hashmap_init(&m, 0) == 0 && m.capacity == 64);
    lamp_hashmap_free(&m);
    CHECK(lamp_hashmap_init(&m, 33) == 0 && m.capacity == 128);
    for (int64_t i = 0; i < 33; i++) {
        int added;
        lamp_hashmap_get_or_put(&m, (uint64_t)i, i, &added);
    }
    CHECK(m.capacity == 128); /* room for `expected` entries without growing */
    CHECK(lamp_hashmap_grow(&m) == 0 && m.capacity == 256);
    for (int64_t i = 0; i < 33; i++)
        CHECK(lamp_hashmap_get(&m, (uint64_t)i) == i);
    lamp_hashmap_free(&m);
}

int main(void)
{
    RUN(test_unique_keys_and_growth);
    RUN(test_extreme_keys_and_zeroed_map);
    RUN(test_hashed_keys_with_collisions);
    RUN(test_long_probe_chains_across_growth);
    RUN(test_init_sizes);
    return CHECK_SUMMARY("test_hashmap");
}
