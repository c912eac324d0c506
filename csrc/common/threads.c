#include "common/threads.h"

#include <pthread.h>

int64_t lamp_part_start(int64_t n, int64_t parts, int64_t p)
{
    if (parts == n)
        return p;
    /* n = a parts + r: floor(n p / parts) = a p + floor(r p / parts), and r p < parts^2 */
    int64_t a = n / parts, r = n % parts;
#if defined(__SIZEOF_INT128__)
    return a * p + (int64_t)(((__int128)r * p) / parts);
#else
    return a * p + (int64_t)(((long double)r * (long double)p) / (long double)parts);
#endif
}

typedef struct {
    lamp_range_fn fn;
    void *ctx;
    int64_t n, parts, first, step;
} parts_job;

/* pieces first, first + step, ... */
static void run_job(const parts_job *j)
{
    for (int64_t p = j->first; p < j->parts; p += j->step)
        j->fn(j->ctx, lamp_part_start(j->n, j->parts, p), lamp_part_start(j->n, j->parts, p + 1), p);
}

static void *thread_main(void *arg)
{
    run_job(arg);
    return NULL;
}

void lamp_run_parts(lamp_range_fn fn, void *ctx, int64_t n, int64_t parts, int threads)
{
    parts = parts < 1 ? 1 : parts;
    threads = threads < 1 ? 1 : threads > LAMP_THREADS_MAX ? LAMP_THREADS_MAX : threads;
    int used = (int64_t)threads > parts ? (int)parts : threads;
    parts_job jobs[LAMP_THREADS_MAX];
    pthread_t handles[LAMP_THREADS_MAX];
    int started[LAMP_THREADS_MAX];
    for (int t = 0; t < used; t++) {
        jobs[t] = (parts_job){fn, ctx, n, parts, t, threads};
        started[t] = t > 0 && pthread_create(&handles[t], NULL, thread_main, &jobs[t]) == 0;
    }
    run_job(&jobs[0]);
    for (int t = 1; t < used; t++) {
        if (started[t])
            pthread_join(handles[t], NULL);
        else
            run_job(&jobs[t]);
    }
}
