/* The small generated data set of the training tests: COUNT 6x6 images of 4
 * classes, class c lighting quadrant c over noise, written as
 * DIR/PREFIX-images.idx and DIR/PREFIX-labels.idx.gz. */
#ifndef NNSEQ_TEST_SYNTHETIC_H
#define NNSEQ_TEST_SYNTHETIC_H

#include <stdint.h>

#include "core/error.h"

int synthetic_write(const char *dir, const char *prefix, int count, uint64_t seed, nn_error *err);

#endif
