/* The one pseudo-random generator of the C core: SplitMix64.
 *
 * The state is a plain uint64_t that the caller seeds and keeps; each draw adds LAMP_RNG_GAMMA to it
 * and returns a bijective mix of the new state.  Every stream of the core (the ranker's dropout
 * masks, Hawkes thinning, the HTTP backoff jitter) and the hash map's key mix use it, so a seed gives
 * the same numbers everywhere and on every platform.  All functions are static inline: integer
 * arithmetic only, cheap enough to sit in the innermost loops.
 */
#ifndef LAMP_RNG_H
#define LAMP_RNG_H

#include <stdint.h>

/* The increment of the state per draw (2^64 divided by the golden ratio, made odd). */
#define LAMP_RNG_GAMMA 0x9e3779b97f4a7c15ULL

/* The output function: a bijective mix of the 64 bits of a state. */
static inline uint64_t lamp_rng_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The next 64 random bits; advances *state by one draw. */
static inline uint64_t lamp_rng_next(uint64_t *state)
{
    return lamp_rng_mix(*state += LAMP_RNG_GAMMA);
}

/* The state `draws` draws after `state` (a jump ahead in O(1): streams of disjoint draws from one seed). */
static inline uint64_t lamp_rng_skip(uint64_t state, uint64_t draws)
{
    return state + draws * LAMP_RNG_GAMMA;
}

/* A uniform double in [0, 1): the top 53 bits of the next draw. */
static inline double lamp_rng_uniform(uint64_t *state)
{
    return (double)(lamp_rng_next(state) >> 11) * 0x1.0p-53;
}

/* A uniform double in (0, 1), never 0 (safe for log): the top 53 bits of the next draw plus one half. */
static inline double lamp_rng_uniform_open(uint64_t *state)
{
    return ((double)(lamp_rng_next(state) >> 11) + 0.5) * 0x1.0p-53;
}

#endif
