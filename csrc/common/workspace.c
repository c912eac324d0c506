#include "common/workspace.h"

#include <stdlib.h>

void *lamp_workspace_get(lamp_workspace *ws, size_t bytes, size_t *got)
{
    void *p = NULL;
    pthread_mutex_lock(&ws->lock);
    int best = -1;
    for (int i = 0; i < LAMP_WORKSPACE_SLOTS; i++)
        if (ws->block[i] && ws->size[i] >= bytes && (best < 0 || ws->size[i] < ws->size[best]))
            best = i;
    if (best >= 0) {
        p = ws->block[best], *got = ws->size[best];
        ws->block[best] = NULL, ws->size[best] = 0;
    }
    pthread_mutex_unlock(&ws->lock);
    if (!p) {
        p = malloc(bytes > 0 ? bytes : 1);
        *got = bytes;
    }
    return p;
}

void lamp_workspace_put(lamp_workspace *ws, void *p, size_t bytes)
{
    if (!p)
        return;
    pthread_mutex_lock(&ws->lock);
    size_t total = 0;
    int free_slot = -1, smallest = -1;
    for (int i = 0; i < LAMP_WORKSPACE_SLOTS; i++) {
        total += ws->size[i];
        if (!ws->block[i])
            free_slot = i;
        else if (smallest < 0 || ws->size[i] < ws->size[smallest])
            smallest = i;
    }
    if (free_slot < 0 && smallest >= 0 && ws->size[smallest] < bytes) {
        free(ws->block[smallest]);
        total -= ws->size[smallest];
        ws->block[smallest] = NULL, ws->size[smallest] = 0;
        free_slot = smallest;
    }
    if (free_slot >= 0 && total + bytes <= ws->cap) {
        ws->block[free_slot] = p, ws->size[free_slot] = bytes;
        p = NULL;
    }
    pthread_mutex_unlock(&ws->lock);
    free(p);
}

void lamp_workspace_clear(lamp_workspace *ws)
{
    pthread_mutex_lock(&ws->lock);
    for (int i = 0; i < LAMP_WORKSPACE_SLOTS; i++) {
        free(ws->block[i]);
        ws->block[i] = NULL, ws->size[i] = 0;
    }
    pthread_mutex_unlock(&ws->lock);
}
