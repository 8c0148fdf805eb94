/* MaxPool1d, MaxPool2d, AvgPool1d and AvgPool2d, as torch.nn 1.13: kernel
 * size, stride, padding, dilation (max), ceil_mode, count_include_pad and
 * divisor_override (average). A (channels, length) sample of the 1d kinds
 * is pooled as a (channels, 1, length) plane, so one engine serves all four.
 *
 * Max pooling treats padding as -inf and keeps, per output value, where its
 * maximum came from (an index into its input plane) for backward, in the
 * replica's context (an int32_t array of max_batch outputs). Average
 * pooling treats padding as zeros. torch requires padding <= kernel_size/2,
 * and its ceil_mode drops a last window that would start in the right
 * padding, so every window starts inside the input or the left padding. */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "layers/conv_util.h"
#include "layers/layers.h"

/* torch's positional order of each class's arguments. */
enum { MAX_KERNEL, MAX_STRIDE, MAX_PADDING, MAX_DILATION, MAX_RETURN_INDICES, MAX_CEIL_MODE };
enum { AVG_KERNEL, AVG_STRIDE, AVG_PADDING, AVG_CEIL_MODE, AVG_COUNT_INCLUDE_PAD, AVG_DIVISOR_OVERRIDE };

static const nn_arg_spec max_pool2d_args[] = {
    {"kernel_size", NN_ARG_INT_PAIR, NN_ARG_REQUIRED, {0, 0}, NULL},
    {"stride", NN_ARG_INT_PAIR, NN_ARG_OPTIONAL | NN_ARG_NULLABLE, {0, 0}, NULL},
    {"padding", NN_ARG_INT_PAIR, 0, {0, 0}, NULL},
    {"dilation", NN_ARG_INT_PAIR, 0, {1, 1}, NULL},
    {"return_indices", NN_ARG_BOOL, 0, {0, 0}, NULL},
    {"ceil_mode", NN_ARG_BOOL, 0, {0, 0}, NULL},
};

static const nn_arg_spec avg_pool2d_args[] = {
    {"kernel_size", NN_ARG_INT_PAIR, NN_ARG_REQUIRED, {0, 0}, NULL},
    {"stride", NN_ARG_INT_PAIR, NN_ARG_OPTIONAL | NN_ARG_NULLABLE, {0, 0}, NULL},
    {"padding", NN_ARG_INT_PAIR, 0, {0, 0}, NULL},
    {"ceil_mode", NN_ARG_BOOL, 0, {0, 0}, NULL},
    {"count_include_pad", NN_ARG_BOOL, 0, {1, 0}, NULL},
    {"divisor_override", NN_ARG_INT, NN_ARG_OPTIONAL | NN_ARG_NULLABLE, {0, 0}, NULL},
};

/* The 1d kinds take an int or a list of one int, as torch does. */
static const nn_arg_spec max_pool1d_args[] = {
    {"kernel_size", NN_ARG_INT_LIST, NN_ARG_REQUIRED | NN_ARG_SCALAR, {0, 0}, NULL},
    {"stride", NN_ARG_INT_LIST, NN_ARG_OPTIONAL | NN_ARG_NULLABLE | NN_ARG_SCALAR, {0, 0}, NULL},
    {"padding", NN_ARG_INT_LIST, NN_ARG_SCALAR, {0, 0}, NULL},
    {"dilation", NN_ARG_INT_LIST, NN_ARG_SCALAR, {1, 0}, NULL},
    {"return_indices", NN_ARG_BOOL, 0, {0, 0}, NULL},
    {"ceil_mode", NN_ARG_BOOL, 0, {0, 0}, NULL},
};

static const nn_arg_spec avg_pool1d_args[] = {
    {"kernel_size", NN_ARG_INT_LIST, NN_ARG_REQUIRED | NN_ARG_SCALAR, {0, 0}, NULL},
    {"stride", NN_ARG_INT_LIST, NN_ARG_OPTIONAL | NN_ARG_NULLABLE | NN_ARG_SCALAR, {0, 0}, NULL},
    {"padding", NN_ARG_INT_LIST, NN_ARG_SCALAR, {0, 0}, NULL},
    {"ceil_mode", NN_ARG_BOOL, 0, {0, 0}, NULL},
    {"count_include_pad", NN_ARG_BOOL, 0, {1, 0}, NULL},
};

/* A window sliding over a (channels, height, width) input; [0] is height,
 * [1] is width (height 1 for the 1d kinds). */
typedef struct pool_geometry {
    int channels, height, width;
    int kernel[2], stride[2], padding[2], dilation[2];
    int out_height, out_width;
} pool_geometry;

typedef struct pool_layer {
    nn_layer base;
    pool_geometry geometry;
    bool is_max;
    bool count_include_pad;
    int divisor; /* divisor_override, 0: none */
    char repr[256];
} pool_layer;

/* What differs between the four kinds. */
typedef struct pool_class {
    const char *name;
    int rank; /* spatial dimensions: 1 or 2 */
    bool is_max;
} pool_class;

static const pool_class max_pool1d = {"MaxPool1d", 1, true}, max_pool2d = {"MaxPool2d", 2, true};
static const pool_class avg_pool1d = {"AvgPool1d", 1, false}, avg_pool2d = {"AvgPool2d", 2, false};

/* Python's floor division. */
static long long floor_div(long long a, long long b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

/* torch's pooling_output_shape: with ceil_mode a last window that would
 * start in the right padding is dropped. */
static long long pool_output_size(int size, int kernel, int stride, int padding, int dilation, bool ceil_mode) {
    long long span = (long long)size + 2LL * padding - (long long)dilation * (kernel - 1) - 1;
    long long out = floor_div(span + (ceil_mode ? stride - 1 : 0), stride) + 1;
    if (ceil_mode && (out - 1) * stride >= (long long)size + padding) out--;
    return out;
}

/* "3" in 1d, "(3, 5)" in 2d: values as the messages show them. */
static const char *pool_dims_text(char *buffer, size_t size, const int pair[2], int rank, const char *joint) {
    if (rank == 1) snprintf(buffer, size, "%d", pair[1]);
    else if (joint) snprintf(buffer, size, "%d%s%d", pair[0], joint, pair[1]);
    else snprintf(buffer, size, "(%d, %d)", pair[0], pair[1]);
    return buffer;
}

/* One int-or-pair argument as [h, w]; a 1d argument fills w (h gets
 * fill_height). Returns -1 with err set for a 1d list of more than one. */
static int pool_read_pair(const nn_arg_value *value, const char *name, int rank, int fill_height, int pair[2],
                          nn_error *err) {
    if (rank == 2) {
        conv_pair(value, pair);
        return 0;
    }
    if (value->given && !value->is_null && value->count != 1)
        return nn_error_set(err, NN_ERR_INPUT, "%s must be one integer or a list of one integer, got %d values",
                            name, value->count);
    pair[0] = fill_height;
    pair[1] = (int)value->value[0];
    return 0;
}

static int pool_check_at_least(const int pair[2], int rank, int least, const char *name, nn_error *err) {
    if (pair[0] >= least && pair[1] >= least) return 0;
    char text[40];
    return nn_error_set(err, NN_ERR_INPUT, "%s must be at least %d, got %s", name, least,
                        pool_dims_text(text, sizeof text, pair, rank, NULL));
}

/* The input rank the class needs, with a hint where it applies. */
static int pool_check_input(const pool_class *class, nn_shape in_shape, nn_error *err) {
    if (class->rank == 2) return conv_check_image_input(class->name, in_shape, err);
    if (in_shape.rank == 2) return 0;
    char text[64];
    nn_shape_format(in_shape, text, sizeof text);
    if (in_shape.rank == 1)
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s needs an input of shape (channels, length), got %s: model.input_shape "
                            "[1, 1, %d] and Flatten: {start_dim: 2} before it give (1, %d)",
                            class->name, text, in_shape.dims[0], in_shape.dims[0]);
    return nn_error_set(err, NN_ERR_INPUT,
                        "%s needs an input of shape (channels, length), got %s: use %.*s2d, or Flatten: "
                        "{start_dim: 2} before it",
                        class->name, text, (int)strlen(class->name) - 2, class->name);
}

/* Reads and checks the window arguments and fills the output size. */
static int pool_read_args(pool_layer *layer, const pool_class *class, const nn_arg_value *args, nn_error *err) {
    pool_geometry *g = &layer->geometry;
    int rank = class->rank;
    /* both tables start kernel_size, stride, padding */
    const nn_arg_value *stride = args[MAX_STRIDE].given && !args[MAX_STRIDE].is_null ? &args[MAX_STRIDE]
                                                                                      : &args[MAX_KERNEL];
    if (pool_read_pair(&args[MAX_KERNEL], "kernel_size", rank, 1, g->kernel, err) ||
        pool_read_pair(stride, "stride", rank, 1, g->stride, err) ||
        pool_read_pair(&args[MAX_PADDING], "padding", rank, 0, g->padding, err))
        return -1;
    g->dilation[0] = g->dilation[1] = 1;
    if (class->is_max && pool_read_pair(&args[MAX_DILATION], "dilation", rank, 1, g->dilation, err)) return -1;
    if (pool_check_at_least(g->kernel, rank, 1, "kernel_size", err) ||
        pool_check_at_least(g->stride, rank, 1, "stride", err) ||
        pool_check_at_least(g->padding, rank, 0, "padding", err) ||
        pool_check_at_least(g->dilation, rank, 1, "dilation", err))
        return -1;
    for (int d = 0; d < 2; d++)
        if (g->padding[d] > g->kernel[d] / 2)
            return nn_error_set(err, NN_ERR_INPUT,
                                "pad should be at most half of kernel size, but got pad=%d and kernel_size=%d",
                                g->padding[d], g->kernel[d]);
    bool ceil_mode = args[class->is_max ? MAX_CEIL_MODE : AVG_CEIL_MODE].value[0] != 0;
    long long out[2];
    int size[2] = {g->height, g->width};
    for (int d = 0; d < 2; d++)
        out[d] = pool_output_size(size[d], g->kernel[d], g->stride[d], g->padding[d], g->dilation[d], ceil_mode);
    if (out[0] < 1 || out[1] < 1) {
        /* an empty output means a window wider than the padded input */
        char kernel[40], dilation[40], span[40], padded[48];
        int spans[2], padded_size[2];
        for (int d = 0; d < 2; d++) {
            spans[d] = (int)((long long)g->dilation[d] * (g->kernel[d] - 1) + 1 > INT_MAX
                                 ? INT_MAX
                                 : (long long)g->dilation[d] * (g->kernel[d] - 1) + 1);
            padded_size[d] = (int)((long long)size[d] + 2LL * g->padding[d] > INT_MAX
                                       ? INT_MAX
                                       : (long long)size[d] + 2LL * g->padding[d]);
        }
        pool_dims_text(kernel, sizeof kernel, g->kernel, rank, NULL);
        pool_dims_text(padded, sizeof padded, padded_size, rank, " x ");
        if (g->dilation[0] == 1 && g->dilation[1] == 1)
            return nn_error_set(err, NN_ERR_INPUT, "kernel_size %s is larger than the padded input %s", kernel,
                                padded);
        return nn_error_set(err, NN_ERR_INPUT,
                            "kernel_size %s with dilation %s spans %s, larger than the padded input %s", kernel,
                            pool_dims_text(dilation, sizeof dilation, g->dilation, rank, NULL),
                            pool_dims_text(span, sizeof span, spans, rank, " x "), padded);
    }
    /* at most the padded input, so only a huge input can overflow */
    if ((double)out[0] * (double)out[1] * g->channels > INT_MAX)
        return nn_error_set(err, NN_ERR_INPUT, "output is too large: %d x %lld x %lld values", g->channels, out[0],
                            out[1]);
    g->out_height = (int)out[0];
    g->out_width = (int)out[1];
    return 0;
}

/* torch prints the arguments as it was given them: 2, (2, 3); the 1d kinds
 * 3 or (3,), and AvgPool1d always (3,). */
static int pool_format_arg(char *buffer, size_t size, const nn_arg_spec *spec, const nn_arg_value *value,
                           int rank, bool tuple) {
    if (rank == 2) return nn_arg_format_python(buffer, size, spec, value, false);
    if (value->is_list || tuple) return snprintf(buffer, size, "(%d,)", (int)value->value[0]);
    return snprintf(buffer, size, "%d", (int)value->value[0]);
}

static void pool_format_repr(pool_layer *layer, const pool_class *class, const nn_layer_kind *kind,
                             const nn_arg_value *args) {
    const nn_arg_spec *specs = kind->args;
    bool tuple = !class->is_max && class->rank == 1; /* AvgPool1d stores _single(...) */
    int stride_index = args[MAX_STRIDE].given && !args[MAX_STRIDE].is_null ? MAX_STRIDE : MAX_KERNEL;
    char kernel[48], stride[48], padding[48], dilation[48];
    pool_format_arg(kernel, sizeof kernel, &specs[MAX_KERNEL], &args[MAX_KERNEL], class->rank, tuple);
    pool_format_arg(stride, sizeof stride, &specs[stride_index], &args[stride_index], class->rank, tuple);
    pool_format_arg(padding, sizeof padding, &specs[MAX_PADDING], &args[MAX_PADDING], class->rank, tuple);
    if (!class->is_max) {
        snprintf(layer->repr, sizeof layer->repr, "%s(kernel_size=%s, stride=%s, padding=%s)", class->name, kernel,
                 stride, padding);
        return;
    }
    pool_format_arg(dilation, sizeof dilation, &specs[MAX_DILATION], &args[MAX_DILATION], class->rank, false);
    snprintf(layer->repr, sizeof layer->repr, "%s(kernel_size=%s, stride=%s, padding=%s, dilation=%s, ceil_mode=%s)",
             class->name, kernel, stride, padding, dilation, args[MAX_CEIL_MODE].value[0] != 0 ? "True" : "False");
}

static nn_layer *pool_create(const nn_arg_value *args, nn_shape in_shape, const pool_class *class,
                             const nn_layer_kind *kind, nn_error *err) {
    if (pool_check_input(class, in_shape, err) != 0) return NULL;
    if (class->is_max && args[MAX_RETURN_INDICES].value[0] != 0) {
        nn_error_set(err, NN_ERR_INPUT,
                     "return_indices=True is not supported: %s would return (output, indices), and a layer of "
                     "the model passes on one tensor",
                     class->name);
        return NULL;
    }
    /* AvgPool1d's table ends before divisor_override */
    bool has_divisor = !class->is_max && class->rank == 2 && args[AVG_DIVISOR_OVERRIDE].given &&
                       !args[AVG_DIVISOR_OVERRIDE].is_null;
    if (has_divisor && args[AVG_DIVISOR_OVERRIDE].value[0] < 1) {
        nn_error_set(err, NN_ERR_INPUT, "divisor_override must be a positive integer or null, got %.0f",
                     args[AVG_DIVISOR_OVERRIDE].value[0]);
        return NULL;
    }
    pool_layer *layer = calloc(1, sizeof *layer);
    if (!layer) {
        nn_error_oom(err, class->name);
        return NULL;
    }
    pool_geometry *g = &layer->geometry;
    g->channels = in_shape.dims[0];
    g->height = class->rank == 2 ? in_shape.dims[1] : 1;
    g->width = in_shape.dims[class->rank];
    if (pool_read_args(layer, class, args, err) != 0) {
        free(layer);
        return NULL;
    }
    layer->is_max = class->is_max;
    if (!class->is_max) {
        layer->count_include_pad = args[AVG_COUNT_INCLUDE_PAD].value[0] != 0;
        if (has_divisor) layer->divisor = (int)args[AVG_DIVISOR_OVERRIDE].value[0];
    }
    layer->base.in_shape = in_shape;
    layer->base.out_shape = class->rank == 2 ? (nn_shape){3, {g->channels, g->out_height, g->out_width}}
                                             : (nn_shape){2, {g->channels, g->out_width}};
    pool_format_repr(layer, class, kind, args);
    return &layer->base;
}

static nn_layer *max_pool2d_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    return pool_create(args, in_shape, &max_pool2d, &nn_max_pool2d_kind, err);
}

static nn_layer *avg_pool2d_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    return pool_create(args, in_shape, &avg_pool2d, &nn_avg_pool2d_kind, err);
}

static nn_layer *max_pool1d_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    return pool_create(args, in_shape, &max_pool1d, &nn_max_pool1d_kind, err);
}

static nn_layer *avg_pool1d_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    return pool_create(args, in_shape, &avg_pool1d, &nn_avg_pool1d_kind, err);
}

/* The context: per output value of up to max_batch samples, the index of
 * its maximum in its input plane (-1: a window with no input, which gets
 * no gradient). */
static void *max_pool_context_create(const nn_layer *base, int max_batch, nn_error *err) {
    if (max_batch < 1) max_batch = 1;
    int32_t *argmax = malloc((size_t)max_batch * nn_shape_size(base->out_shape) * sizeof *argmax);
    if (!argmax) nn_error_oom(err, "the max pooling argmax cache");
    return argmax;
}

static void max_pool_context_free(void *context) { free(context); }

/* The window of output position `index` in one dimension: the taps
 * first, first + dilation, ... clipped to [0, size), as [*start, *end)
 * with *start on a tap. Empty when start >= end. */
static void pool_window(int *start, int *end, int index, const pool_geometry *g, int d, int size) {
    long long first = (long long)index * g->stride[d] - g->padding[d];
    long long last = first + (long long)g->dilation[d] * (g->kernel[d] - 1) + 1;
    if (first < 0) first += (-first + g->dilation[d] - 1) / g->dilation[d] * g->dilation[d];
    *start = (int)(first < size ? first : size);
    *end = (int)(last < size ? last : size);
}

/* The maximum of in over the taps of rows [h0, h1) and columns [w0, w1)
 * and its index, as torch: the first maximum, or the last NaN so that NaN
 * propagates. */
static float max_pool_window_exact(int32_t *index, const float *in, const pool_geometry *g, int h0, int h1, int w0,
                                   int w1) {
    float best = -INFINITY;
    int width = g->width;
    *index = h0 < h1 && w0 < w1 ? h0 * width + w0 : -1;
    for (int h = h0; h < h1; h += g->dilation[0])
        for (int w = w0; w < w1; w += g->dilation[1])
            if (in[h * width + w] > best || isnan(in[h * width + w])) {
                best = in[h * width + w];
                *index = h * width + w;
            }
    return best;
}

/* The same, with selects instead of branches: on random data a branch on
 * "greater" mispredicts half the time, which made max pooling three times
 * slower. A window holding a NaN (rare) goes the exact way. */
static float max_pool_window(int32_t *index, const float *in, const pool_geometry *g, int h0, int h1, int w0,
                             int w1) {
    float best = -INFINITY;
    int width = g->width;
    int32_t best_index = h0 < h1 && w0 < w1 ? h0 * width + w0 : -1;
    int nan_seen = 0;
    for (int h = h0; h < h1; h += g->dilation[0])
        for (int w = w0; w < w1; w += g->dilation[1]) {
            float value = in[h * width + w];
            int greater = value > best;
            best_index = greater ? h * width + w : best_index;
            best = greater ? value : best;
            nan_seen |= value != value;
        }
    if (nan_seen) return max_pool_window_exact(index, in, g, h0, h1, w0, w1);
    *index = best_index;
    return best;
}

/* One 2x2 window at (2 oh, w) with the first-maximum rule; NaN goes the exact way. */
static void max_pool_window_2x2(float *out, int32_t *argmax, const float *in, const pool_geometry *g, int oh, int w) {
    int width = g->width;
    const float *top = in + (size_t)2 * oh * width + w, *bottom = top + width;
    float a = top[0], b = top[1], c = bottom[0], d = bottom[1];
    if ((a != a) | (b != b) | (c != c) | (d != d)) {
        *out = max_pool_window_exact(argmax, in, g, 2 * oh, 2 * oh + 2, w, w + 2);
        return;
    }
    int32_t first = 2 * oh * width + w, index = first;
    float best = a;
    if (b > best) best = b, index = first + 1;
    if (c > best) best = c, index = first + width;
    if (d > best) best = d, index = first + width + 1;
    *out = best;
    *argmax = index;
}

#ifdef __SSE2__
/* Four windows of a row at once: max and argmax as compare masks and
 * blends, no branches (a branch on "greater" mispredicts half the time on
 * real activations, and stride-2 loads keep the compiler from vectorising). */
static inline __m128 blend_ps(__m128 mask, __m128 if_true, __m128 if_false) {
    return _mm_or_ps(_mm_and_ps(mask, if_true), _mm_andnot_ps(mask, if_false));
}

static inline __m128i blend_epi32(__m128 mask, __m128i if_true, __m128i if_false) {
    __m128i m = _mm_castps_si128(mask);
    return _mm_or_si128(_mm_and_si128(m, if_true), _mm_andnot_si128(m, if_false));
}

/* Returns 0 without writing when a window holds a NaN. */
static int max_pool_four_windows(float *out, int32_t *argmax, const float *top, const float *bottom,
                                 int32_t first, int width) {
    __m128 top_low = _mm_loadu_ps(top), top_high = _mm_loadu_ps(top + 4);
    __m128 bottom_low = _mm_loadu_ps(bottom), bottom_high = _mm_loadu_ps(bottom + 4);
    __m128 a = _mm_shuffle_ps(top_low, top_high, _MM_SHUFFLE(2, 0, 2, 0));
    __m128 b = _mm_shuffle_ps(top_low, top_high, _MM_SHUFFLE(3, 1, 3, 1));
    __m128 c = _mm_shuffle_ps(bottom_low, bottom_high, _MM_SHUFFLE(2, 0, 2, 0));
    __m128 d = _mm_shuffle_ps(bottom_low, bottom_high, _MM_SHUFFLE(3, 1, 3, 1));
    if (_mm_movemask_ps(_mm_or_ps(_mm_cmpunord_ps(a, b), _mm_cmpunord_ps(c, d)))) return 0;
    __m128i index = _mm_add_epi32(_mm_set1_epi32(first), _mm_setr_epi32(0, 2, 4, 6));
    __m128 take = _mm_cmpgt_ps(b, a);
    __m128 best = blend_ps(take, b, a);
    __m128i offset = blend_epi32(take, _mm_set1_epi32(1), _mm_setzero_si128());
    take = _mm_cmpgt_ps(c, best);
    best = blend_ps(take, c, best);
    offset = blend_epi32(take, _mm_set1_epi32(width), offset);
    take = _mm_cmpgt_ps(d, best);
    best = blend_ps(take, d, best);
    offset = blend_epi32(take, _mm_set1_epi32(width + 1), offset);
    _mm_storeu_ps(out, best);
    _mm_storeu_si128((__m128i *)argmax, _mm_add_epi32(index, offset));
    return 1;
}
#endif

/* MaxPool2d(2) without padding (windows that fit), the common case. */
static void max_pool_plane_2x2(float *out, int32_t *argmax, const float *in, const pool_geometry *g) {
    int width = g->width;
    for (int oh = 0; oh < g->out_height; oh++) {
        float *out_row = out + (size_t)oh * g->out_width;
        int32_t *argmax_row = argmax + (size_t)oh * g->out_width;
        int ow = 0;
#ifdef __SSE2__
        const float *top = in + (size_t)2 * oh * width, *bottom = top + width;
        for (; ow + 4 <= g->out_width; ow += 4) {
            int w = 2 * ow;
            if (!max_pool_four_windows(out_row + ow, argmax_row + ow, top + w, bottom + w, 2 * oh * width + w, width))
                for (int k = ow; k < ow + 4; k++) max_pool_window_2x2(out_row + k, argmax_row + k, in, g, oh, 2 * k);
        }
#endif
        for (; ow < g->out_width; ow++) max_pool_window_2x2(out_row + ow, argmax_row + ow, in, g, oh, 2 * ow);
    }
}

/* One input plane to one output plane; argmax gets each maximum's index. */
static void max_pool_plane(float *out, int32_t *argmax, const float *in, const pool_geometry *g) {
    /* the fast path reads whole 2x2 windows: not the ceil_mode ones past the edge */
    if (g->kernel[0] == 2 && g->kernel[1] == 2 && g->stride[0] == 2 && g->stride[1] == 2 && g->padding[0] == 0 &&
        g->padding[1] == 0 && g->dilation[0] == 1 && g->dilation[1] == 1 && 2 * g->out_height <= g->height &&
        2 * g->out_width <= g->width) {
        max_pool_plane_2x2(out, argmax, in, g);
        return;
    }
    for (int oh = 0; oh < g->out_height; oh++) {
        int h0, h1;
        pool_window(&h0, &h1, oh, g, 0, g->height);
        for (int ow = 0; ow < g->out_width; ow++) {
            int w0, w1;
            pool_window(&w0, &w1, ow, g, 1, g->width);
            int k = oh * g->out_width + ow;
            out[k] = max_pool_window(&argmax[k], in, g, h0, h1, w0, w1);
        }
    }
}

/* The average window of output position `index` in one dimension,
 * clipped to the input as [*start, *end); *padded is its length clipped
 * only to the padded input, torch's count_include_pad divisor (a ceil_mode
 * window past the right padding counts only what it covers). */
static void avg_window(int *start, int *end, int *padded, int index, const pool_geometry *g, int d, int size) {
    long long first = (long long)index * g->stride[d] - g->padding[d];
    long long last = first + g->kernel[d];
    if (last > (long long)size + g->padding[d]) last = (long long)size + g->padding[d];
    *padded = (int)(last - first);
    *start = (int)(first > 0 ? first : 0);
    *end = (int)(last < size ? last : size);
}

/* What each output value of avg pooling is divided by: torch's rule. */
static float avg_divisor(const pool_layer *layer, int h0, int h1, int hpad, int w0, int w1, int wpad) {
    if (layer->divisor) return (float)layer->divisor;
    if (layer->count_include_pad) return (float)hpad * (float)wpad;
    return (float)(h1 - h0) * (float)(w1 - w0);
}

/* Forward (dout NULL: out = averages of in) or backward (din += dout
 * spread over each window) of one plane: the same windows both ways. */
static void avg_pool_plane(const pool_layer *layer, float *out, const float *in, float *din, const float *dout) {
    const pool_geometry *g = &layer->geometry;
    for (int oh = 0; oh < g->out_height; oh++) {
        int h0, h1, hpad;
        avg_window(&h0, &h1, &hpad, oh, g, 0, g->height);
        for (int ow = 0; ow < g->out_width; ow++) {
            int w0, w1, wpad;
            avg_window(&w0, &w1, &wpad, ow, g, 1, g->width);
            int k = oh * g->out_width + ow;
            float divisor = avg_divisor(layer, h0, h1, hpad, w0, w1, wpad);
            if (!dout) {
                float sum = 0;
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++) sum += in[h * g->width + w];
                out[k] = h0 < h1 && w0 < w1 ? sum / divisor : 0;
                continue;
            }
            float share = dout[k] / divisor;
            for (int h = h0; h < h1; h++)
                for (int w = w0; w < w1; w++) din[h * g->width + w] += share;
        }
    }
}

static void pool_forward(nn_layer *base, void *context, float *out, const float *in, int batch,
                         const nn_mode *mode) {
    (void)mode;
    const pool_layer *layer = (const pool_layer *)base;
    int32_t *argmax = context; /* max only */
    const pool_geometry *g = &layer->geometry;
    size_t in_plane = (size_t)g->height * g->width, out_plane = (size_t)g->out_height * g->out_width;
    size_t planes = (size_t)batch * g->channels;
    for (size_t p = 0; p < planes; p++) {
        if (layer->is_max)
            max_pool_plane(out + p * out_plane, argmax + p * out_plane, in + p * in_plane, g);
        else
            avg_pool_plane(layer, out + p * out_plane, in + p * in_plane, NULL, NULL);
    }
}

static void pool_backward(const nn_layer *base, void *context, float *din, const float *dout, const float *in,
                          const float *out, int batch, float *grad, const nn_mode *mode) {
    (void)in;
    (void)out;
    (void)grad;
    (void)mode;
    const pool_layer *layer = (const pool_layer *)base;
    const int32_t *argmax = context; /* max only */
    const pool_geometry *g = &layer->geometry;
    if (!din) return;
    size_t in_plane = (size_t)g->height * g->width, out_plane = (size_t)g->out_height * g->out_width;
    size_t planes = (size_t)batch * g->channels;
    memset(din, 0, planes * in_plane * sizeof *din);
    for (size_t p = 0; p < planes; p++) {
        if (layer->is_max) {
            float *plane_din = din + p * in_plane;
            const float *plane_dout = dout + p * out_plane;
            const int32_t *plane_argmax = argmax + p * out_plane;
            /* only a dilated window can miss the input; the common loop stays unchecked */
            if (g->dilation[0] == 1 && g->dilation[1] == 1)
                for (size_t k = 0; k < out_plane; k++) plane_din[plane_argmax[k]] += plane_dout[k];
            else
                for (size_t k = 0; k < out_plane; k++)
                    if (plane_argmax[k] >= 0) plane_din[plane_argmax[k]] += plane_dout[k];
        } else {
            avg_pool_plane(layer, NULL, NULL, din + p * in_plane, dout + p * out_plane);
        }
    }
}

static int pool_describe(const nn_layer *base, char *buffer, size_t size) {
    return snprintf(buffer, size, "%s", ((const pool_layer *)base)->repr);
}

static void pool_destroy(nn_layer *base) { free(base); }

#define POOL_ARGS(table) .args = table, .arg_count = sizeof table / sizeof table[0]

const nn_layer_kind nn_max_pool2d_kind = {
    .name = "MaxPool2d",
    POOL_ARGS(max_pool2d_args),
    .create = max_pool2d_create,
    .context_create = max_pool_context_create,
    .context_free = max_pool_context_free,
    .forward = pool_forward,
    .backward = pool_backward,
    .describe = pool_describe,
    .destroy = pool_destroy,
};

const nn_layer_kind nn_max_pool1d_kind = {
    .name = "MaxPool1d",
    POOL_ARGS(max_pool1d_args),
    .create = max_pool1d_create,
    .context_create = max_pool_context_create,
    .context_free = max_pool_context_free,
    .forward = pool_forward,
    .backward = pool_backward,
    .describe = pool_describe,
    .destroy = pool_destroy,
};

const nn_layer_kind nn_avg_pool2d_kind = {
    .name = "AvgPool2d",
    POOL_ARGS(avg_pool2d_args),
    .create = avg_pool2d_create,
    .forward = pool_forward,
    .backward = pool_backward,
    .describe = pool_describe,
    .destroy = pool_destroy,
};

const nn_layer_kind nn_avg_pool1d_kind = {
    .name = "AvgPool1d",
    POOL_ARGS(avg_pool1d_args),
    .create = avg_pool1d_create,
    .forward = pool_forward,
    .backward = pool_backward,
    .describe = pool_describe,
    .destroy = pool_destroy,
};
