/* MaxPool2d and AvgPool2d, as torch.nn with dilation=1 and ceil_mode=False.
 *
 * Max pooling treats padding as -inf and keeps, per output value, where its
 * maximum came from (an index into its input plane) for backward, in the
 * replica's context (an int32_t array of max_batch outputs). Average
 * pooling treats padding as zeros and divides by kh*kw (torch's
 * count_include_pad=True). torch requires padding <= kernel_size/2, which
 * also guarantees every window overlaps the input. */
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

enum { ARG_KERNEL, ARG_STRIDE, ARG_PADDING };

static const nn_arg_spec pool_args[] = {
    {"kernel_size", NN_ARG_INT_PAIR, NN_ARG_REQUIRED, {0, 0}},
    {"stride", NN_ARG_INT_PAIR, NN_ARG_OPTIONAL, {0, 0}},
    {"padding", NN_ARG_INT_PAIR, 0, {0, 0}},
};

typedef struct pool_layer {
    nn_layer base;
    conv_geometry geometry;
    bool is_max;
    char repr[160];
} pool_layer;

/* The window [start, end) of output position `index` clipped to the input. */
static void pool_window(int *start, int *end, int index, int kernel, int stride, int padding, int size) {
    int first = index * stride - padding;
    *end = first + kernel < size ? first + kernel : size;
    *start = first > 0 ? first : 0;
}

static int pool_read_args(conv_geometry *g, const nn_arg_value *args, nn_error *err) {
    conv_pair(&args[ARG_KERNEL], g->kernel);
    /* stride left out is kernel_size, as in torch */
    conv_pair(args[ARG_STRIDE].given ? &args[ARG_STRIDE] : &args[ARG_KERNEL], g->stride);
    conv_pair(&args[ARG_PADDING], g->padding);
    if (conv_check_window(g->kernel, g->stride, g->padding, err) != 0) return -1;
    for (int d = 0; d < 2; d++)
        if (g->padding[d] > g->kernel[d] / 2)
            return nn_error_set(err, NN_ERR_INPUT,
                                "pad should be at most half of kernel size, but got pad=%d and kernel_size=%d",
                                g->padding[d], g->kernel[d]);
    return conv_geometry_finish(g, g->channels, err);
}

/* torch prints the arguments as it was given them: "2" or "(2, 3)". */
static void pool_format_repr(pool_layer *layer, const nn_arg_value *args) {
    char kernel[32], stride[32], padding[32];
    conv_format_pair(kernel, sizeof kernel, &args[ARG_KERNEL]);
    conv_format_pair(stride, sizeof stride, args[ARG_STRIDE].given ? &args[ARG_STRIDE] : &args[ARG_KERNEL]);
    conv_format_pair(padding, sizeof padding, &args[ARG_PADDING]);
    if (layer->is_max)
        snprintf(layer->repr, sizeof layer->repr,
                 "MaxPool2d(kernel_size=%s, stride=%s, padding=%s, dilation=1, ceil_mode=False)", kernel, stride,
                 padding);
    else
        snprintf(layer->repr, sizeof layer->repr, "AvgPool2d(kernel_size=%s, stride=%s, padding=%s)", kernel,
                 stride, padding);
}

static nn_layer *pool_create(const nn_arg_value *args, nn_shape in_shape, bool is_max, nn_error *err) {
    const char *name = is_max ? "MaxPool2d" : "AvgPool2d";
    if (conv_check_image_input(name, in_shape, err) != 0) return NULL;
    pool_layer *layer = calloc(1, sizeof *layer);
    if (!layer) {
        nn_error_oom(err, name);
        return NULL;
    }
    conv_geometry *g = &layer->geometry;
    g->channels = in_shape.dims[0];
    g->height = in_shape.dims[1];
    g->width = in_shape.dims[2];
    if (pool_read_args(g, args, err) != 0) {
        free(layer);
        return NULL;
    }
    layer->is_max = is_max;
    layer->base.in_shape = in_shape;
    layer->base.out_shape = (nn_shape){3, {g->channels, g->out_height, g->out_width}};
    pool_format_repr(layer, args);
    return &layer->base;
}

static nn_layer *max_pool_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    return pool_create(args, in_shape, true, err);
}

static nn_layer *avg_pool_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    return pool_create(args, in_shape, false, err);
}

/* The context: per output value of up to max_batch samples, the index of
 * its maximum in its input plane. */
static void *max_pool_context_create(const nn_layer *base, int max_batch, nn_error *err) {
    if (max_batch < 1) max_batch = 1;
    int32_t *argmax = malloc((size_t)max_batch * nn_shape_size(base->out_shape) * sizeof *argmax);
    if (!argmax) nn_error_oom(err, "the MaxPool2d argmax cache");
    return argmax;
}

static void max_pool_context_free(void *context) { free(context); }

/* The maximum of in over rows [h0, h1) and columns [w0, w1) and its index,
 * as torch: the first maximum, or the last NaN so that NaN propagates. */
static float max_pool_window_exact(int32_t *index, const float *in, int width, int h0, int h1, int w0, int w1) {
    float best = -INFINITY;
    *index = h0 * width + w0;
    for (int h = h0; h < h1; h++)
        for (int w = w0; w < w1; w++)
            if (in[h * width + w] > best || isnan(in[h * width + w])) {
                best = in[h * width + w];
                *index = h * width + w;
            }
    return best;
}

/* The same, with selects instead of branches: on random data a branch on
 * "greater" mispredicts half the time, which made max pooling three times
 * slower. A window holding a NaN (rare) goes the exact way. */
static float max_pool_window(int32_t *index, const float *in, int width, int h0, int h1, int w0, int w1) {
    float best = -INFINITY;
    int32_t best_index = h0 * width + w0;
    int nan_seen = 0;
    for (int h = h0; h < h1; h++)
        for (int w = w0; w < w1; w++) {
            float value = in[h * width + w];
            int greater = value > best;
            best_index = greater ? h * width + w : best_index;
            best = greater ? value : best;
            nan_seen |= value != value;
        }
    if (nan_seen) return max_pool_window_exact(index, in, width, h0, h1, w0, w1);
    *index = best_index;
    return best;
}

/* One 2x2 window at (2 oh, w) with the first-maximum rule; NaN goes the exact way. */
static void max_pool_window_2x2(float *out, int32_t *argmax, const float *in, int width, int oh, int w) {
    const float *top = in + (size_t)2 * oh * width + w, *bottom = top + width;
    float a = top[0], b = top[1], c = bottom[0], d = bottom[1];
    if ((a != a) | (b != b) | (c != c) | (d != d)) {
        *out = max_pool_window_exact(argmax, in, width, 2 * oh, 2 * oh + 2, w, w + 2);
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

/* MaxPool2d(2) without padding, the common case. */
static void max_pool_plane_2x2(float *out, int32_t *argmax, const float *in, const conv_geometry *g) {
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
                for (int k = ow; k < ow + 4; k++) max_pool_window_2x2(out_row + k, argmax_row + k, in, width, oh, 2 * k);
        }
#endif
        for (; ow < g->out_width; ow++) max_pool_window_2x2(out_row + ow, argmax_row + ow, in, width, oh, 2 * ow);
    }
}

/* One input plane to one output plane; argmax gets each maximum's index. */
static void max_pool_plane(float *out, int32_t *argmax, const float *in, const conv_geometry *g) {
    if (g->kernel[0] == 2 && g->kernel[1] == 2 && g->stride[0] == 2 && g->stride[1] == 2 && g->padding[0] == 0 &&
        g->padding[1] == 0) {
        max_pool_plane_2x2(out, argmax, in, g);
        return;
    }
    for (int oh = 0; oh < g->out_height; oh++) {
        int h0, h1;
        pool_window(&h0, &h1, oh, g->kernel[0], g->stride[0], g->padding[0], g->height);
        for (int ow = 0; ow < g->out_width; ow++) {
            int w0, w1;
            pool_window(&w0, &w1, ow, g->kernel[1], g->stride[1], g->padding[1], g->width);
            int k = oh * g->out_width + ow;
            out[k] = max_pool_window(&argmax[k], in, g->width, h0, h1, w0, w1);
        }
    }
}

static void avg_pool_plane(float *out, const float *in, const conv_geometry *g) {
    float scale = 1.0f / (float)(g->kernel[0] * g->kernel[1]);
    for (int oh = 0; oh < g->out_height; oh++) {
        int h0, h1;
        pool_window(&h0, &h1, oh, g->kernel[0], g->stride[0], g->padding[0], g->height);
        for (int ow = 0; ow < g->out_width; ow++) {
            int w0, w1;
            pool_window(&w0, &w1, ow, g->kernel[1], g->stride[1], g->padding[1], g->width);
            float sum = 0;
            for (int h = h0; h < h1; h++)
                for (int w = w0; w < w1; w++) sum += in[h * g->width + w];
            out[oh * g->out_width + ow] = sum * scale;
        }
    }
}

static void pool_forward(nn_layer *base, void *context, float *out, const float *in, int batch,
                         const nn_mode *mode) {
    (void)mode;
    const pool_layer *layer = (const pool_layer *)base;
    int32_t *argmax = context; /* max only */
    const conv_geometry *g = &layer->geometry;
    size_t in_plane = (size_t)g->height * g->width, out_plane = (size_t)g->out_height * g->out_width;
    size_t planes = (size_t)batch * g->channels;
    for (size_t p = 0; p < planes; p++) {
        if (layer->is_max)
            max_pool_plane(out + p * out_plane, argmax + p * out_plane, in + p * in_plane, g);
        else
            avg_pool_plane(out + p * out_plane, in + p * in_plane, g);
    }
}

/* Routes one output plane's gradient back into one (zeroed) input plane. */
static void max_pool_backward_plane(float *din, const float *dout, const int32_t *argmax, const conv_geometry *g) {
    size_t out_plane = (size_t)g->out_height * g->out_width;
    for (size_t k = 0; k < out_plane; k++) din[argmax[k]] += dout[k];
}

static void avg_pool_backward_plane(float *din, const float *dout, const conv_geometry *g) {
    float scale = 1.0f / (float)(g->kernel[0] * g->kernel[1]);
    for (int oh = 0; oh < g->out_height; oh++) {
        int h0, h1;
        pool_window(&h0, &h1, oh, g->kernel[0], g->stride[0], g->padding[0], g->height);
        for (int ow = 0; ow < g->out_width; ow++) {
            int w0, w1;
            pool_window(&w0, &w1, ow, g->kernel[1], g->stride[1], g->padding[1], g->width);
            float share = dout[oh * g->out_width + ow] * scale;
            for (int h = h0; h < h1; h++)
                for (int w = w0; w < w1; w++) din[h * g->width + w] += share;
        }
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
    const conv_geometry *g = &layer->geometry;
    if (!din) return;
    size_t in_plane = (size_t)g->height * g->width, out_plane = (size_t)g->out_height * g->out_width;
    size_t planes = (size_t)batch * g->channels;
    memset(din, 0, planes * in_plane * sizeof *din);
    for (size_t p = 0; p < planes; p++) {
        if (layer->is_max)
            max_pool_backward_plane(din + p * in_plane, dout + p * out_plane, argmax + p * out_plane, g);
        else
            avg_pool_backward_plane(din + p * in_plane, dout + p * out_plane, g);
    }
}

static int pool_describe(const nn_layer *base, char *buffer, size_t size) {
    return snprintf(buffer, size, "%s", ((const pool_layer *)base)->repr);
}

static void pool_destroy(nn_layer *base) { free(base); }

const nn_layer_kind nn_max_pool2d_kind = {
    .name = "MaxPool2d",
    .args = pool_args,
    .arg_count = sizeof pool_args / sizeof pool_args[0],
    .create = max_pool_create,
    .context_create = max_pool_context_create,
    .context_free = max_pool_context_free,
    .forward = pool_forward,
    .backward = pool_backward,
    .describe = pool_describe,
    .destroy = pool_destroy,
};

const nn_layer_kind nn_avg_pool2d_kind = {
    .name = "AvgPool2d",
    .args = pool_args,
    .arg_count = sizeof pool_args / sizeof pool_args[0],
    .create = avg_pool_create,
    .forward = pool_forward,
    .backward = pool_backward,
    .describe = pool_describe,
    .destroy = pool_destroy,
};
