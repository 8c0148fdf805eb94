#include "core/rng.h"

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void nn_rng_seed(nn_rng *rng, uint64_t seed) {
    for (int i = 0; i < 4; i++) rng->state[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t nn_rng_next(nn_rng *rng) {
    uint64_t *s = rng->state;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint32_t nn_rng_below(nn_rng *rng, uint32_t bound) {
    /* Lemire's multiply-shift with rejection of the biased low range. */
    uint64_t m = (nn_rng_next(rng) >> 32) * bound;
    uint32_t low = (uint32_t)m;
    if (low < bound) {
        uint32_t threshold = (uint32_t)-bound % bound;
        while (low < threshold) {
            m = (nn_rng_next(rng) >> 32) * bound;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

float nn_rng_uniform(nn_rng *rng) { return (float)(nn_rng_next(rng) >> 40) * 0x1.0p-24f; }

float nn_rng_uniform_range(nn_rng *rng, float low, float high) {
    return low + (high - low) * nn_rng_uniform(rng);
}

/* splitmix64's finaliser: a bijection of the 64-bit integers that mixes
 * every input bit into every output bit. */
static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t nn_key_mix(uint64_t a, uint64_t b) { return mix64(mix64(a) ^ (b + 0x9e3779b97f4a7c15ULL)); }

void nn_stream_start(nn_stream *stream, uint64_t key) { stream->counter = mix64(key); }

uint64_t nn_stream_next(nn_stream *stream) { return mix64(stream->counter += 0x9e3779b97f4a7c15ULL); }

float nn_stream_uniform(nn_stream *stream) { return (float)(nn_stream_next(stream) >> 40) * 0x1.0p-24f; }
