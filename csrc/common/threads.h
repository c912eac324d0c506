/* Running a range function on several threads: the one way the C core starts threads.
 *
 * [0, n) is cut into `parts` contiguous pieces; piece p is [lamp_part_start(n, parts, p),
 * lamp_part_start(n, parts, p + 1)) and is run as fn(ctx, lo, hi, p).  The cut depends only on n
 * and parts, never on how many threads run the pieces: a function whose result for a piece
 * depends only on (lo, hi, p), writing it where no other piece writes, gives results that do not
 * depend on the number of threads (nor on whether a thread could be started).
 *
 * Up to `threads` threads run the pieces, the calling thread one of them: thread t runs pieces t,
 * t + threads, t + 2 threads, ... in that order.  So pieces p and q with p % threads == q % threads
 * never run at the same time, and per-thread scratch can be indexed by p % threads.  When a thread
 * cannot be started, the calling thread runs that thread's pieces itself, after its own.
 */
#ifndef LAMP_THREADS_H
#define LAMP_THREADS_H

#include <stdint.h>

/* The most threads one call runs (larger requests are cut to it). */
#define LAMP_THREADS_MAX 64

typedef void (*lamp_range_fn)(void *ctx, int64_t lo, int64_t hi, int64_t part);

/* floor(n * p / parts) without overflow, for 0 <= p <= parts, parts >= 1, n >= 0. */
int64_t lamp_part_start(int64_t n, int64_t parts, int64_t p);

/* Runs fn over the `parts` pieces of [0, n) on up to `threads` threads (see above) and returns
 * when all are done.  parts < 1 counts as 1; threads is clamped to [1, LAMP_THREADS_MAX]. */
void lamp_run_parts(lamp_range_fn fn, void *ctx, int64_t n, int64_t parts, int threads);

#endif
