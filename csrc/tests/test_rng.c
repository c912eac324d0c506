/* csrc/common/rng.h: SplitMix64 against its published outputs, the jump ahead, the uniforms. */
#include <stdint.h>

#include "common/hashmap.h"
#include "common/rng.h"
#include "tests/check.h"

static void test_reference_outputs(void)
{
    /* the first outputs of SplitMix64 seeded with 1234567 (the reference implementation's) */
    const uint64_t expected[5] = {6457827717110365317ULL, 3203168211198807973ULL, 9817491932198370423ULL,
                                  4593380528125082431ULL, 16408922859458223821ULL};
    uint64_t state = 1234567;
    for (int i = 0; i < 5; i++)
        CHECK(lamp_rng_next(&state) == expected[i]);
    CHECK(state == 1234567 + 5 * LAMP_RNG_GAMMA);
}

static void test_skip_is_that_many_draws(void)
{
    uint64_t a = 42, b = lamp_rng_skip(42, 1000);
    for (int i = 0; i < 1000; i++)
        lamp_rng_next(&a);
    CHECK(a == b);
    CHECK(lamp_rng_next(&a) == lamp_rng_next(&b));
    CHECK(lamp_rng_skip(7, 0) == 7);
}

static void test_uniforms(void)
{
    uint64_t s1 = 3, s2 = 3, s3 = 3;
    double lo = 1.0, hi = 0.0, sum = 0.0;
    for (int i = 0; i < 100000; i++) {
        uint64_t bits = lamp_rng_next(&s1);
        double u = lamp_rng_uniform(&s2), v = lamp_rng_uniform_open(&s3);
        CHECK(u == (double)(bits >> 11) * 0x1.0p-53);
        CHECK(u >= 0.0 && u < 1.0);
        CHECK(v > 0.0 && v < 1.0 && v >= u && v - u <= 0x1.0p-53);
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
        sum += u;
    }
    CHECK(lo < 1e-3 && hi > 1.0 - 1e-3);
    CHECK_CLOSE(sum / 100000.0, 0.5, 5e-3);
}

static void test_hash_map_mixes_with_the_generator(void)
{
    /* a key's first slot is the generator's output for the key as its state */
    for (uint64_t key = 0; key < 100; key++) {
        uint64_t state = key;
        CHECK(lamp_hashmap_mix(key) == lamp_rng_next(&state));
    }
}

int main(void)
{
    RUN(test_reference_outputs);
    RUN(test_skip_is_that_many_draws);
    RUN(test_uniforms);
    RUN(test_hash_map_mixes_with_the_generator);
    return CHECK_SUMMARY("test_rng");
}
