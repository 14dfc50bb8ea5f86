/* common/rng.h: a small, fast, seedable random stream (xoshiro256**, seeded by splitmix64).
 * The state is a value the caller owns and passes by pointer, so `--seed` reproduces a run and
 * several streams (one per generated sequence, one per data loader) never interfere. */
#ifndef RLHF_RNG_H
#define RLHF_RNG_H
#include <stdint.h>

typedef struct {
    uint64_t s[4]; /* never all zero (rng_seed guarantees it) */
} rng_t;

/* Seeds the stream from one 64-bit value; distinct seeds give independent-looking streams. */
void rng_seed(rng_t *rng, uint64_t seed);
/* Next 64 random bits. */
uint64_t rng_u64(rng_t *rng);
/* Uniform in [0, 1) with 24 bits (float) or 53 bits (double). */
float rng_float(rng_t *rng);
double rng_double(rng_t *rng);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t rng_below(rng_t *rng, uint64_t n);
/* Standard normal (Box-Muller). */
float rng_normal(rng_t *rng);
#endif /* RLHF_RNG_H */
