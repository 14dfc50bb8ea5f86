#include "rng.h"
#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void rng_seed(rng_t *rng, uint64_t seed) {
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&seed);
    if (!(rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3])) rng->s[0] = 1;
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

uint64_t rng_u64(rng_t *rng) {
    uint64_t *s = rng->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float rng_float(rng_t *rng) {
    return (float)(rng_u64(rng) >> 40) * (1.0f / 16777216.0f);
}

double rng_double(rng_t *rng) {
    return (double)(rng_u64(rng) >> 11) * (1.0 / 9007199254740992.0);
}

uint64_t rng_below(rng_t *rng, uint64_t n) {
    /* Rejection: drop the top partial copy of [0, n) so every value is equally likely. */
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = rng_u64(rng);
    while (x >= limit);
    return x % n;
}

float rng_normal(rng_t *rng) {
    double u1 = rng_double(rng), u2 = rng_double(rng);
    if (u1 < 1e-300) u1 = 1e-300; /* log(0) guard */
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}
