/* Private helpers shared by the image layers (conv2d.c, pool2d.c): reading
 * the int-or-[h, w] arguments, the sliding-window geometry, and the errors
 * for a wrong input rank or a window that does not fit; and a vectorisable
 * sum that batch_norm.c uses too. Header-only and static so that each layer
 * file keeps its own copy. */
#ifndef NNSEQ_CONV_UTIL_H
#define NNSEQ_CONV_UTIL_H

#include <limits.h>
#include <stdio.h>

#include "core/args.h"
#include "core/error.h"
#include "core/shape.h"

/* A window sliding over a (channels, height, width) input; [0] is height,
 * [1] is width. */
typedef struct conv_geometry {
    int channels, height, width;
    int kernel[2], stride[2], padding[2];
    int out_height, out_width;
} conv_geometry;

/* An NN_ARG_INT_PAIR value as [h, w]: a scalar stands for both. */
static inline void conv_pair(const nn_arg_value *value, int pair[2]) {
    pair[0] = (int)value->value[0];
    pair[1] = value->count == 1 ? pair[0] : (int)value->value[1];
}

/* Python's floor division, so that a window larger than the padded input
 * gives the negative size the error message reports; 64-bit because the
 * arguments can be any int a config holds. */
static inline long long conv_output_size(int size, int kernel, int stride, int padding) {
    long long span = (long long)size + 2LL * padding - kernel;
    long long quotient = span / stride;
    if (span % stride != 0 && span < 0) quotient--;
    return quotient + 1;
}

/* Checks kernel_size >= 1, stride >= 1 and padding >= 0. */
static inline int conv_check_window(const int kernel[2], const int stride[2], const int padding[2],
                                    nn_error *err) {
    if (kernel[0] < 1 || kernel[1] < 1)
        return nn_error_set(err, NN_ERR_INPUT, "kernel_size must be at least 1, got (%d, %d)", kernel[0],
                            kernel[1]);
    if (stride[0] < 1 || stride[1] < 1)
        return nn_error_set(err, NN_ERR_INPUT, "stride must be at least 1, got (%d, %d)", stride[0],
                            stride[1]);
    if (padding[0] < 0 || padding[1] < 0)
        return nn_error_set(err, NN_ERR_INPUT, "padding must not be negative, got (%d, %d)", padding[0],
                            padding[1]);
    return 0;
}

/* The layer needs a (channels, height, width) input: say how to get one. */
static inline int conv_check_image_input(const char *kind_name, nn_shape in_shape, nn_error *err) {
    if (in_shape.rank == 3) return 0;
    char text[64];
    nn_shape_format(in_shape, text, sizeof text);
    if (in_shape.rank == 2)
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s needs an input of shape (channels, height, width), got %s: for "
                            "one-channel images set model.input_shape to [1, %d, %d]",
                            kind_name, text, in_shape.dims[0], in_shape.dims[1]);
    return nn_error_set(err, NN_ERR_INPUT,
                        "%s needs an input of shape (channels, height, width), got %s: put it before "
                        "any Flatten, or set model.input_shape to [channels, height, width]",
                        kind_name, text);
}

/* Fills the output size from the input and window; an empty output is an
 * error naming the input shape and the window. */
static inline int conv_geometry_finish(conv_geometry *g, int out_channels, nn_error *err) {
    long long height = conv_output_size(g->height, g->kernel[0], g->stride[0], g->padding[0]);
    long long width = conv_output_size(g->width, g->kernel[1], g->stride[1], g->padding[1]);
    const char *problem = height < 1 || width < 1 ? "output would be"
                          : (double)height * width * out_channels > INT_MAX ? "output is too large:" : NULL;
    if (!problem) {
        g->out_height = (int)height;
        g->out_width = (int)width;
        return 0;
    }
    return nn_error_set(err, NN_ERR_INPUT,
                        "%s (%d, %lld, %lld) for input (%d, %d, %d) with kernel_size=(%d, %d), "
                        "stride=(%d, %d), padding=(%d, %d)",
                        problem, out_channels, height, width, g->channels, g->height, g->width, g->kernel[0],
                        g->kernel[1], g->stride[0], g->stride[1], g->padding[0], g->padding[1]);
}

enum { LANES = 8 };

/* The sum of count floats, in double. Eight float lanes, added up in double
 * at the end, let the compiler vectorise what a single double accumulator
 * would serialise (strict IEEE order forbids reassociating it). */
static inline double sum_floats(const float *x, size_t count) {
    float lanes[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= count; i += LANES)
        for (int k = 0; k < LANES; k++) lanes[k] += x[i + k];
    double total = 0;
    for (; i < count; i++) total += x[i];
    for (int k = 0; k < LANES; k++) total += lanes[k];
    return total;
}

/* An int-pair argument as torch's repr shows it: "2" if given as an int,
 * "(2, 3)" if given as a list (torch keeps what it was given). */
static inline int conv_format_pair(char *buffer, size_t size, const nn_arg_value *value) {
    int pair[2];
    conv_pair(value, pair);
    if (!value->is_list && pair[0] == pair[1]) return snprintf(buffer, size, "%d", pair[0]);
    return snprintf(buffer, size, "(%d, %d)", pair[0], pair[1]);
}

#endif
