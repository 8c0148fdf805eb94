/* A small seeded random number generator (xoshiro256**, seeded through
 * splitmix64). Its whole state is the struct, so it can be owned by a model
 * or trainer and saved in a checkpoint; there is no global generator. */
#ifndef NNSEQ_RNG_H
#define NNSEQ_RNG_H

#include <stdint.h>

typedef struct nn_rng {
    uint64_t state[4];
} nn_rng;

void nn_rng_seed(nn_rng *rng, uint64_t seed);
uint64_t nn_rng_next(nn_rng *rng);
/* Uniform integer in [0, bound), without modulo bias. bound > 0. */
uint32_t nn_rng_below(nn_rng *rng, uint32_t bound);
/* Uniform float in [0, 1) with 24 random bits. */
float nn_rng_uniform(nn_rng *rng);
/* Uniform float in [low, high). */
float nn_rng_uniform_range(nn_rng *rng, float low, float high);

/* Counter-based streams (splitmix64): value i of the stream keyed by key
 * is a hash of key and i alone, so any sample's draws can be made by any
 * thread in any order and come out the same. Dropout keys a stream per
 * sample and layer with nn_key_mix. */
typedef struct nn_stream {
    uint64_t counter;
} nn_stream;

/* A key from two: order matters, nn_key_mix(a, b) != nn_key_mix(b, a). */
uint64_t nn_key_mix(uint64_t a, uint64_t b);
void nn_stream_start(nn_stream *stream, uint64_t key);
uint64_t nn_stream_next(nn_stream *stream);
/* Uniform float in [0, 1) with 24 random bits, as nn_rng_uniform. */
float nn_stream_uniform(nn_stream *stream);

#endif
