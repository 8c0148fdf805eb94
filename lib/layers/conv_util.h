/* Private helpers shared by the image layers (conv2d.c, conv_transpose2d.c,
 * pool2d.c): reading the int-or-[h, w] arguments, the sliding-window
 * geometry, and the errors for a wrong input rank or a window that does not
 * fit; im2col and col2im, which lower the convolutions to matrix products;
 * and a vectorisable sum that batch_norm.c uses too. Header-only and static
 * so that each layer file keeps its own copy (the convolutions wrap
 * conv_im2col and conv_col2im in their NN_VECTOR_CLONES functions, which
 * inline them into each copy). */
#ifndef NNSEQ_CONV_UTIL_H
#define NNSEQ_CONV_UTIL_H

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/args.h"
#include "core/error.h"
#include "core/shape.h"

/* A window sliding over a (channels, height, width) input; [0] is height,
 * [1] is width. padding is the zero padding before the input (after it, the
 * output size decides how much is read). dilation is read by conv_im2col and
 * conv_col2im only, which need it >= 1; the pools leave it 0. */
typedef struct conv_geometry {
    int channels, height, width;
    int kernel[2], stride[2], padding[2];
    int out_height, out_width;
    int dilation[2];
} conv_geometry;

/* An NN_ARG_INT_PAIR value as [h, w]: a scalar stands for both. */
static inline void conv_pair(const nn_arg_value *value, int pair[2]) {
    pair[0] = (int)value->value[0];
    pair[1] = value->count == 1 ? pair[0] : (int)value->value[1];
}

/* Python's floor division, so that a window larger than the padded input
 * gives the negative size the error message reports; 64-bit because the
 * arguments can be any int a config holds. */
static inline long long conv_output_extent(long long padded_size, long long window, int stride) {
    long long span = padded_size - window;
    long long quotient = span / stride;
    if (span % stride != 0 && span < 0) quotient--;
    return quotient + 1;
}

static inline long long conv_output_size(int size, int kernel, int stride, int padding) {
    return conv_output_extent((long long)size + 2LL * padding, kernel, stride);
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

/* Output columns [lo, hi) of kernel offset `offset` (j * dilation) read
 * inside the input row (0 <= ow*stride + offset - padding < size); the rest
 * read padding. The same in height gives the output rows that read inside
 * the input. */
static inline void conv_valid_span(int *lo, int *hi, long long offset, int padding, int stride, int size,
                                   int out) {
    long long first = padding > offset ? (padding - offset + stride - 1) / stride : 0;
    long long end = size + (long long)padding - offset;
    long long last = end > 0 ? (end + stride - 1) / stride : 0;
    if (last > out) last = out;
    if (first > out) first = out;
    if (last < first) last = first;
    *lo = (int)first;
    *hi = (int)last;
}

/* Stride 1 and output rows as wide as the input's ("same" padding, as
 * 3x3 with padding 1): the output positions (oh, ow) of one kernel offset
 * that read inside the input, taken row after row, read consecutive input
 * positions, except the ow < lo and ow >= hi of each row, which read the
 * neighbouring input row's ends instead of padding. So one kernel offset's
 * columns are one contiguous copy (or, in col2im, add) whose stray entries
 * are then zeroed. */
static inline bool conv_rows_contiguous(const conv_geometry *g) {
    return g->stride[0] == 1 && g->stride[1] == 1 && g->out_width == g->width;
}

/* Zeroes, in rows [oh_lo, oh_hi) of one kernel offset's columns, the
 * entries ow < lo and ow >= hi. */
static inline void conv_zero_row_ends(float *row, int width, int oh_lo, int oh_hi, int lo, int hi) {
    for (int oh = oh_lo; oh < oh_hi; oh++) {
        float *target = row + (size_t)oh * width;
        for (int ow = 0; ow < lo; ow++) target[ow] = 0;
        for (int ow = hi; ow < width; ow++) target[ow] = 0;
    }
}

/* Writes one sample's patches into columns: row (c, i, j), column (oh, ow),
 * rows row_stride floats apart. Output (oh, ow) of kernel offset (i, j)
 * reads input (oh*stride + i*dilation - padding, ow*stride + j*dilation -
 * padding), zero outside. */
static inline void conv_im2col(float *columns, size_t row_stride, const float *in, const conv_geometry *g) {
    bool contiguous = conv_rows_contiguous(g);
    size_t plane = (size_t)g->height * g->width;
    for (int c = 0; c < g->channels; c++)
        for (int i = 0; i < g->kernel[0]; i++) {
            int oh_lo, oh_hi, row_shift = i * g->dilation[0] - g->padding[0];
            conv_valid_span(&oh_lo, &oh_hi, (long long)i * g->dilation[0], g->padding[0], g->stride[0], g->height,
                            g->out_height);
            for (int j = 0; j < g->kernel[1]; j++) {
                float *row = columns + (size_t)((c * g->kernel[0] + i) * g->kernel[1] + j) * row_stride;
                int lo, hi;
                conv_valid_span(&lo, &hi, (long long)j * g->dilation[1], g->padding[1], g->stride[1], g->width,
                                g->out_width);
                int shift = j * g->dilation[1] - g->padding[1];
                if (contiguous && lo < hi && oh_lo < oh_hi) {
                    int width = g->width;
                    memset(row, 0, (size_t)oh_lo * width * sizeof *row);
                    memset(row + (size_t)oh_hi * width, 0, (size_t)(g->out_height - oh_hi) * width * sizeof *row);
                    size_t start = (size_t)oh_lo * width + lo, end = (size_t)(oh_hi - 1) * width + hi;
                    /* output (oh, ow) reads input (oh + row_shift, ow + shift) */
                    const float *source = in + c * plane + ((size_t)(oh_lo + row_shift) * width + lo + shift);
                    memcpy(row + start, source, (end - start) * sizeof *row);
                    conv_zero_row_ends(row, width, oh_lo, oh_hi, lo, hi);
                    continue;
                }
                for (int oh = 0; oh < g->out_height; oh++) {
                    float *target = row + (size_t)oh * g->out_width;
                    if (oh < oh_lo || oh >= oh_hi) {
                        memset(target, 0, (size_t)g->out_width * sizeof *target);
                        continue;
                    }
                    int ih = oh * g->stride[0] + row_shift;
                    const float *source = in + ((size_t)c * g->height + ih) * g->width;
                    for (int ow = 0; ow < lo; ow++) target[ow] = 0;
                    if (g->stride[1] == 1) /* a plain loop: rows are too short for memcpy to pay */
                        for (int ow = lo; ow < hi; ow++) target[ow] = source[ow + shift];
                    else
                        for (int ow = lo; ow < hi; ow++) target[ow] = source[ow * g->stride[1] + shift];
                    for (int ow = hi; ow < g->out_width; ow++) target[ow] = 0;
                }
            }
        }
}

/* The adjoint of conv_im2col: adds each column entry back into the input
 * position it was read from (din must be zeroed first). Each input position
 * receives its terms in the same order, kernel offset after kernel offset,
 * either way. The contiguous way also adds zeros (the zeroed stray entries,
 * which columns is scratch enough to take): din starts at +0 and a sum from
 * +0 is never -0, so adding +0 changes no bit. */
static inline void conv_col2im(float *din, float *columns, size_t row_stride, const conv_geometry *g) {
    bool contiguous = conv_rows_contiguous(g);
    size_t plane = (size_t)g->height * g->width;
    for (int c = 0; c < g->channels; c++)
        for (int i = 0; i < g->kernel[0]; i++) {
            int oh_lo, oh_hi, row_shift = i * g->dilation[0] - g->padding[0];
            conv_valid_span(&oh_lo, &oh_hi, (long long)i * g->dilation[0], g->padding[0], g->stride[0], g->height,
                            g->out_height);
            for (int j = 0; j < g->kernel[1]; j++) {
                float *row = columns + (size_t)((c * g->kernel[0] + i) * g->kernel[1] + j) * row_stride;
                int lo, hi;
                conv_valid_span(&lo, &hi, (long long)j * g->dilation[1], g->padding[1], g->stride[1], g->width,
                                g->out_width);
                int shift = j * g->dilation[1] - g->padding[1];
                if (contiguous) {
                    if (lo >= hi || oh_lo >= oh_hi) continue;
                    int width = g->width;
                    conv_zero_row_ends(row, width, oh_lo, oh_hi, lo, hi);
                    size_t start = (size_t)oh_lo * width + lo, count = (size_t)(oh_hi - 1) * width + hi - start;
                    const float *source = row + start;
                    float *target = din + c * plane + ((size_t)(oh_lo + row_shift) * width + lo + shift);
                    for (size_t k = 0; k < count; k++) target[k] += source[k];
                    continue;
                }
                for (int oh = oh_lo; oh < oh_hi; oh++) {
                    int ih = oh * g->stride[0] + row_shift;
                    const float *source = row + (size_t)oh * g->out_width;
                    float *target = din + ((size_t)c * g->height + ih) * g->width;
                    if (g->stride[1] == 1)
                        for (int ow = lo; ow < hi; ow++) target[ow + shift] += source[ow];
                    else
                        for (int ow = lo; ow < hi; ow++) target[ow * g->stride[1] + shift] += source[ow];
                }
            }
        }
}

/* "(3, 3)" or, for one number, Python's one-tuple "(3,)". */
static inline int conv_format_tuple(char *buffer, size_t size, const int *values, int count) {
    if (count == 1) return snprintf(buffer, size, "(%d,)", values[0]);
    return snprintf(buffer, size, "(%d, %d)", values[0], values[1]);
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
