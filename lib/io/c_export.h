/* A trained model as one dependency-free C99 source (issue 17): model.c
 * and model.h with the weights as const arrays and
 * `int PREFIX_predict(const float *input, float *output)` for one sample,
 * no allocation, nothing but libm. */
#ifndef NNSEQ_C_EXPORT_H
#define NNSEQ_C_EXPORT_H

#include <stdbool.h>

#include "core/error.h"
#include "io/checkpoint.h"

typedef struct nn_c_export_options {
    /* Quantise weights per output channel and activations to int8, the
     * activations' scales calibrated on these inputs (as the first layer
     * sees them: normalised floats, count x input values). */
    bool int8;
    const float *calibration;
    int calibration_count;
} nn_c_export_options;

/* Writes PATH (a .c) and the .h beside it; the prefix is the file's base
 * name (a C identifier, else NN_ERR_INPUT). Nothing half-written is left. */
int nn_c_export(const nn_checkpoint *checkpoint, const char *path, const nn_c_export_options *options, nn_error *err);

#endif
