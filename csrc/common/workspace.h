/* A cache of large work buffers kept across calls.
 *
 * Fresh multi-megabyte allocations cost page faults on every call (and two threads' faults contend
 * for the process's memory map), so a kernel that needs big scratch buffers on every call can take
 * them from a cache instead: lamp_workspace_get hands out the smallest cached block that is large
 * enough (or a fresh one), lamp_workspace_put gives it back.  A cache keeps at most
 * LAMP_WORKSPACE_SLOTS blocks and at most `cap` bytes in all; the contents of a block are never
 * relied on.  Safe to use from several threads at once (one lock per cache).
 */
#ifndef LAMP_WORKSPACE_H
#define LAMP_WORKSPACE_H

#include <pthread.h>
#include <stddef.h>

#define LAMP_WORKSPACE_SLOTS 8

typedef struct {
    pthread_mutex_t lock;
    size_t cap; /* bytes kept at most */
    void *block[LAMP_WORKSPACE_SLOTS];
    size_t size[LAMP_WORKSPACE_SLOTS];
} lamp_workspace;

/* A cache keeping up to cap bytes, for a static or automatic lamp_workspace. */
#define LAMP_WORKSPACE_INIT(cap) {PTHREAD_MUTEX_INITIALIZER, (cap), {0}, {0}}

/* A buffer of at least `bytes` (a cached one when one is large enough), or NULL; *got is set to
 * its real size, to be passed back to lamp_workspace_put. */
void *lamp_workspace_get(lamp_workspace *ws, size_t bytes, size_t *got);

/* Gives back a buffer from lamp_workspace_get (p may be NULL): kept when the cache has room (a
 * smaller cached block may be freed to make it), else freed. */
void lamp_workspace_put(lamp_workspace *ws, void *p, size_t bytes);

/* Frees every cached block. */
void lamp_workspace_clear(lamp_workspace *ws);

#endif
