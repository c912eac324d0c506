/* One open-addressing hash map for the C core: uint64 key -> int64 value >= 0.
 *
 * Linear probing from mix(key) in a power-of-two table kept at most half full (it doubles
 * before an insertion would pass that).  Any uint64 is a key; values must be >= 0 (a lookup of a
 * missing key returns -1).  A zeroed lamp_hashmap is a valid
 * empty map.
 *
 * Two ways to use it:
 *  - unique keys (e.g. ids packed into a uint64): lamp_hashmap_get, lamp_hashmap_get_or_put;
 *  - keys that are hashes of larger keys (e.g. a term's 64-bit hash; two terms may share one):
 *    lamp_hashmap_insert adds an entry even when the key is present, and lamp_hashmap_find takes
 *    an equality callback that tells the entries of one key apart by their values (e.g. term ids
 *    whose text the callback compares with the one looked up).
 */
#ifndef LAMP_HASHMAP_H
#define LAMP_HASHMAP_H

#include <stddef.h>
#include <stdint.h>

#include "common/rng.h"

typedef struct {
    uint64_t key;
    int64_t stored; /* value + 1; 0: empty (so that a zeroed table is empty) */
} lamp_hashmap_slot;

typedef struct {
    lamp_hashmap_slot *slots;
    int64_t capacity; /* 0 or a power of two */
    int64_t size;
} lamp_hashmap;

/* Does the entry with this value hold the key looked up? (ctx: the caller's, e.g. that key) */
typedef int (*lamp_hashmap_eq)(const void *ctx, int64_t value);

/* An empty map with room for `expected` entries before it grows; 0 or -1 (out of memory). */
int lamp_hashmap_init(lamp_hashmap *m, int64_t expected);
void lamp_hashmap_free(lamp_hashmap *m);
/* Doubles the table; 0 or -1 (out of memory: the map is unchanged). */
int lamp_hashmap_grow(lamp_hashmap *m);

/* The slot a key probes first: SplitMix64's output for the key as its state (common/rng.h). */
static inline uint64_t lamp_hashmap_mix(uint64_t x)
{
    return lamp_rng_mix(x + LAMP_RNG_GAMMA);
}

/* Value of the first entry with `key` for which eq(ctx, value) holds (eq NULL: of the first entry
 * with `key`), or -1. */
static inline int64_t lamp_hashmap_find(const lamp_hashmap *m, uint64_t key, lamp_hashmap_eq eq, const void *ctx)
{
    if (m->capacity == 0)
        return -1;
    const uint64_t mask = (uint64_t)m->capacity - 1;
    for (uint64_t i = lamp_hashmap_mix(key) & mask;; i = (i + 1) & mask) {
        const lamp_hashmap_slot *s = &m->slots[i];
        if (s->stored == 0)
            return -1;
        if (s->key == key && (!eq || eq(ctx, s->stored - 1)))
            return s->stored - 1;
    }
}

/* Value of `key` (unique keys), or -1. */
static inline int64_t lamp_hashmap_get(const lamp_hashmap *m, uint64_t key)
{
    return lamp_hashmap_find(m, key, NULL, NULL);
}

/* Adds the entry (key, value >= 0), also when `key` is present; 0 or -1 (out of memory). */
static inline int lamp_hashmap_insert(lamp_hashmap *m, uint64_t key, int64_t value)
{
    if (2 * (m->size + 1) > m->capacity && lamp_hashmap_grow(m) < 0)
        return -1;
    const uint64_t mask = (uint64_t)m->capacity - 1;
    uint64_t i = lamp_hashmap_mix(key) & mask;
    while (m->slots[i].stored != 0)
        i = (i + 1) & mask;
    m->slots[i].key = key, m->slots[i].stored = value + 1;
    m->size++;
    return 0;
}

/* Value of `key` (unique keys), inserting `fresh` (>= 0) when absent; *added tells which.  -2 on
 * allocation failure. */
static inline int64_t lamp_hashmap_get_or_put(lamp_hashmap *m, uint64_t key, int64_t fresh, int *added)
{
    if (2 * (m->size + 1) > m->capacity && lamp_hashmap_grow(m) < 0)
        return -2;
    const uint64_t mask = (uint64_t)m->capacity - 1;
    for (uint64_t i = lamp_hashmap_mix(key) & mask;; i = (i + 1) & mask) {
        lamp_hashmap_slot *s = &m->slots[i];
        if (s->stored == 0) {
            s->key = key, s->stored = fresh + 1;
            m->size++;
            *added = 1;
            return fresh;
        }
        if (s->key == key) {
            *added = 0;
            return s->stored - 1;
        }
    }
}

#endif
