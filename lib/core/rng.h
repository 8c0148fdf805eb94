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

#endif
