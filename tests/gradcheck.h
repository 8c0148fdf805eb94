/* One harness that checks every layer the same way: build it for an input
 * shape, take the scalar loss L = sum(out * r) for a fixed random r, and
 * compare backward's input and parameter gradients with central finite
 * differences of L. */
#ifndef NNSEQ_TEST_GRADCHECK_H
#define NNSEQ_TEST_GRADCHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "core/layer.h"

typedef struct gradcheck_options {
    int batch;
    bool training;      /* nn_mode.training; Dropout draws the same masks in every forward (fixed keys) */
    double step;        /* finite-difference step; 0: 1e-3 */
    double rtol, atol;  /* |analytic - numeric| <= atol + rtol * |numeric|; 0: 2e-2, 2e-3 */
    uint64_t seed;      /* inputs, parameters, r */
    double input_gap;   /* inputs drawn uniform in [-1, 1] but at least this far from 0
                           (keeps ReLU-like kinks away from the step); 0: none */
} gradcheck_options;

typedef struct gradcheck_result {
    int ok;                /* 1 if every compared gradient is within tolerance */
    double worst_excess;   /* max of |a - n| - (atol + rtol |n|) over all compared entries */
    char message[256];     /* the worst entry: "input[3]: analytic 0.1 numeric 0.2" or build error */
} gradcheck_result;

/* Builds kind with args (indexed like kind->args; pass NULL for all
 * defaults) on in_shape and checks its gradients. */
gradcheck_result gradcheck_layer(const nn_layer_kind *kind, const nn_arg_value *args, nn_shape in_shape,
                                 gradcheck_options options);

/* Convenience: args array with defaults, then set one by name. */
void gradcheck_args_default(const nn_layer_kind *kind, nn_arg_value *args);
void gradcheck_args_set(const nn_layer_kind *kind, nn_arg_value *args, const char *name, double v0,
                        double v1);

#endif
