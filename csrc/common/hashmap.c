#include "common/hashmap.h"

#include <stdlib.h>

int lamp_hashmap_init(lamp_hashmap *m, int64_t expected)
{
    int64_t cap = 64;
    while (cap < 2 * expected)
        cap <<= 1;
    m->slots = calloc((size_t)cap, sizeof *m->slots);
    m->capacity = m->slots ? cap : 0;
    m->size = 0;
    return m->slots ? 0 : -1;
}

void lamp_hashmap_free(lamp_hashmap *m)
{
    free(m->slots);
    m->slots = NULL;
    m->capacity = m->size = 0;
}

int lamp_hashmap_grow(lamp_hashmap *m)
{
    int64_t cap = m->capacity ? 2 * m->capacity : 64;
    lamp_hashmap_slot *slots = calloc((size_t)cap, sizeof *slots);
    if (!slots)
        return -1;
    const uint64_t mask = (uint64_t)cap - 1;
    for (int64_t j = 0; j < m->capacity; j++) {
        const lamp_hashmap_slot *s = &m->slots[j];
        if (s->stored == 0)
            continue;
        uint64_t i = lamp_hashmap_mix(s->key) & mask;
        while (slots[i].stored != 0)
            i = (i + 1) & mask;
        slots[i] = *s;
    }
    free(m->slots);
    m->slots = slots;
    m->capacity = cap;
    return 0;
}
