/* Conv2d, as torch.nn.Conv2d with dilation=1, groups=1 and zero padding.
 *
 * Lowered to matrix products by im2col: the input patches of a group of
 * samples become the columns of a (in_channels*kh*kw) x (samples*oh*ow)
 * matrix, so that one cblas_sgemm with the (out_channels x
 * in_channels*kh*kw) weight computes the whole group. Samples are grouped
 * into chunks of about CHUNK_COLUMNS columns rather than one sgemm for the
 * whole batch or one per sample: measured on a fashion_cnn-like shape
 * (batch 64, 1x28x28 -> 32 3x3 and 32x13x13 -> 64 3x3), per-sample products
 * are fastest for the first layer but lose to larger products on two
 * threads for the second, while whole-batch products lose for the first
 * layer (a product with 9 rows and 43264 columns runs poorly) and spend time
 * reordering out-of-cache results; chunks of ~2048 columns are within a few
 * percent of the best of both on one and two threads.
 *
 * The columns of the whole batch are kept from forward for backward's
 * weight gradient (about 4% faster per step than recomputing them into a
 * chunk-sized buffer), then overwritten by the column gradient. They and
 * the product buffer are a replica's (the context): the layer itself is
 * only read by forward and backward. */
#include <cblas.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/target_clones.h"
#include "layers/conv_util.h"
#include "layers/layers.h"

enum { ARG_IN, ARG_OUT, ARG_KERNEL, ARG_STRIDE, ARG_PADDING, ARG_BIAS };

enum { CHUNK_COLUMNS = 2048 };

static const nn_arg_spec conv2d_args[] = {
    {"in_channels", NN_ARG_INT, NN_ARG_OPTIONAL, {0, 0}},
    {"out_channels", NN_ARG_INT, NN_ARG_REQUIRED, {0, 0}},
    {"kernel_size", NN_ARG_INT_PAIR, NN_ARG_REQUIRED, {0, 0}},
    {"stride", NN_ARG_INT_PAIR, 0, {1, 1}},
    {"padding", NN_ARG_INT_PAIR, 0, {0, 0}},
    {"bias", NN_ARG_BOOL, 0, {1, 0}},
};

typedef struct conv2d_layer {
    nn_layer base;
    conv_geometry geometry;
    int out_channels;
    bool has_bias;
    int patch_size;        /* in_channels * kh * kw: rows of the column matrix */
    int out_pixels;        /* oh * ow: columns per sample */
    int chunk;             /* samples per product */
    char repr[160];
} conv2d_layer;

/* A replica's buffers, for up to max_batch samples. */
typedef struct conv2d_context {
    float *columns;        /* max_batch * patch_size * out_pixels, chunk after chunk */
    float *product;        /* out_channels x (chunk * out_pixels) */
} conv2d_context;

static int conv2d_read_args(conv2d_layer *layer, const nn_arg_value *args, nn_shape in_shape,
                            nn_error *err) {
    conv_geometry *g = &layer->geometry;
    g->channels = in_shape.dims[0];
    g->height = in_shape.dims[1];
    g->width = in_shape.dims[2];
    if (args[ARG_IN].given && (int)args[ARG_IN].value[0] != g->channels) {
        char text[64];
        nn_shape_format(in_shape, text, sizeof text);
        return nn_error_set(err, NN_ERR_INPUT, "in_channels is %d but the input %s has %d channel%s",
                            (int)args[ARG_IN].value[0], text, g->channels, g->channels == 1 ? "" : "s");
    }
    layer->out_channels = (int)args[ARG_OUT].value[0];
    if (layer->out_channels < 1)
        return nn_error_set(err, NN_ERR_INPUT, "out_channels must be at least 1, got %d",
                            layer->out_channels);
    conv_pair(&args[ARG_KERNEL], g->kernel);
    conv_pair(&args[ARG_STRIDE], g->stride);
    conv_pair(&args[ARG_PADDING], g->padding);
    if (conv_check_window(g->kernel, g->stride, g->padding, err) != 0) return -1;
    if ((double)g->channels * g->kernel[0] * g->kernel[1] > INT_MAX)
        return nn_error_set(err, NN_ERR_INPUT, "kernel_size (%d, %d) is too large", g->kernel[0], g->kernel[1]);
    return conv_geometry_finish(g, layer->out_channels, err);
}

/* "Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1))": torch always shows the
 * window as tuples, padding only when not zero, bias only when off. */
static void conv2d_format_repr(conv2d_layer *layer) {
    const conv_geometry *g = &layer->geometry;
    int n = snprintf(layer->repr, sizeof layer->repr, "Conv2d(%d, %d, kernel_size=(%d, %d), stride=(%d, %d)",
                     g->channels, layer->out_channels, g->kernel[0], g->kernel[1], g->stride[0],
                     g->stride[1]);
    if (g->padding[0] != 0 || g->padding[1] != 0)
        n += snprintf(layer->repr + n, sizeof layer->repr - (size_t)n, ", padding=(%d, %d)", g->padding[0],
                      g->padding[1]);
    snprintf(layer->repr + n, sizeof layer->repr - (size_t)n, "%s)", layer->has_bias ? "" : ", bias=False");
}

static nn_layer *conv2d_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    if (conv_check_image_input("Conv2d", in_shape, err) != 0) return NULL;
    conv2d_layer *layer = calloc(1, sizeof *layer);
    if (!layer) {
        nn_error_oom(err, "a Conv2d layer");
        return NULL;
    }
    if (conv2d_read_args(layer, args, in_shape, err) != 0) {
        free(layer);
        return NULL;
    }
    const conv_geometry *g = &layer->geometry;
    layer->has_bias = args[ARG_BIAS].value[0] != 0;
    layer->patch_size = g->channels * g->kernel[0] * g->kernel[1];
    layer->out_pixels = g->out_height * g->out_width;
    layer->chunk = layer->out_pixels < CHUNK_COLUMNS ? CHUNK_COLUMNS / layer->out_pixels : 1;
    layer->base.in_shape = in_shape;
    layer->base.out_shape = (nn_shape){3, {layer->out_channels, g->out_height, g->out_width}};
    int64_t weight_dims[4] = {layer->out_channels, g->channels, g->kernel[0], g->kernel[1]};
    int64_t bias_dims[1] = {layer->out_channels};
    nn_layer_add_state(&layer->base, "weight", true, NN_F32, 4, weight_dims, NULL);
    if (layer->has_bias) nn_layer_add_state(&layer->base, "bias", true, NN_F32, 1, bias_dims, NULL);
    conv2d_format_repr(layer);
    return &layer->base;
}

static void conv2d_init(nn_layer *base, nn_rng *rng) {
    conv2d_layer *layer = (conv2d_layer *)base;
    size_t weight_count = (size_t)layer->out_channels * layer->patch_size;
    nn_init_uniform_fan_in(base->state[0].array.data, weight_count, layer->patch_size, rng);
    if (layer->has_bias)
        nn_init_uniform_fan_in(base->state[1].array.data, (size_t)layer->out_channels, layer->patch_size,
                               rng);
}

static void conv2d_context_free(void *context) {
    conv2d_context *ctx = context;
    if (!ctx) return;
    free(ctx->columns);
    free(ctx->product);
    free(ctx);
}

static void *conv2d_context_create(const nn_layer *base, int max_batch, nn_error *err) {
    const conv2d_layer *layer = (const conv2d_layer *)base;
    if (max_batch < 1) max_batch = 1;
    size_t per_sample = (size_t)layer->patch_size * layer->out_pixels;
    int chunk = layer->chunk < max_batch ? layer->chunk : max_batch;
    conv2d_context *ctx = calloc(1, sizeof *ctx);
    if (ctx) {
        ctx->columns = malloc((size_t)max_batch * per_sample * sizeof *ctx->columns);
        ctx->product = malloc((size_t)layer->out_channels * chunk * layer->out_pixels * sizeof *ctx->product);
    }
    if (!ctx || !ctx->columns || !ctx->product) {
        conv2d_context_free(ctx);
        nn_error_oom(err, "the Conv2d column buffer");
        return NULL;
    }
    return ctx;
}

/* Output columns [lo, hi) of kernel offset `offset` read inside the input
 * row (0 <= ow*stride + offset - padding < size); the rest read padding.
 * The same in height gives the output rows that read inside the input. */
static inline void conv_valid_span(int *lo, int *hi, int offset, int padding, int stride, int size, int out) {
    *lo = padding > offset ? (padding - offset + stride - 1) / stride : 0;
    int end = size + padding - offset;
    *hi = end > 0 ? (end + stride - 1) / stride : 0;
    if (*hi > out) *hi = out;
    if (*lo > out) *lo = out;
    if (*hi < *lo) *hi = *lo;
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
static inline void zero_row_ends(float *row, int width, int oh_lo, int oh_hi, int lo, int hi) {
    for (int oh = oh_lo; oh < oh_hi; oh++) {
        float *target = row + (size_t)oh * width;
        for (int ow = 0; ow < lo; ow++) target[ow] = 0;
        for (int ow = hi; ow < width; ow++) target[ow] = 0;
    }
}

/* Writes one sample's patches into columns: row (c, i, j), column (oh, ow),
 * rows row_stride floats apart. */
NN_VECTOR_CLONES static void im2col(float *columns, size_t row_stride, const float *in, const conv_geometry *g) {
    bool contiguous = conv_rows_contiguous(g);
    size_t plane = (size_t)g->height * g->width;
    for (int c = 0; c < g->channels; c++)
        for (int i = 0; i < g->kernel[0]; i++) {
            int oh_lo, oh_hi;
            conv_valid_span(&oh_lo, &oh_hi, i, g->padding[0], g->stride[0], g->height, g->out_height);
            for (int j = 0; j < g->kernel[1]; j++) {
                float *row = columns + (size_t)((c * g->kernel[0] + i) * g->kernel[1] + j) * row_stride;
                int lo, hi;
                conv_valid_span(&lo, &hi, j, g->padding[1], g->stride[1], g->width, g->out_width);
                int shift = j - g->padding[1];
                if (contiguous && lo < hi && oh_lo < oh_hi) {
                    int width = g->width;
                    memset(row, 0, (size_t)oh_lo * width * sizeof *row);
                    memset(row + (size_t)oh_hi * width, 0, (size_t)(g->out_height - oh_hi) * width * sizeof *row);
                    size_t start = (size_t)oh_lo * width + lo, end = (size_t)(oh_hi - 1) * width + hi;
                    /* output (oh, ow) reads input (oh + i - padding, ow + shift) */
                    const float *source = in + c * plane + ((size_t)(oh_lo + i - g->padding[0]) * width + lo + shift);
                    memcpy(row + start, source, (end - start) * sizeof *row);
                    zero_row_ends(row, width, oh_lo, oh_hi, lo, hi);
                    continue;
                }
                for (int oh = 0; oh < g->out_height; oh++) {
                    float *target = row + (size_t)oh * g->out_width;
                    int ih = oh * g->stride[0] + i - g->padding[0];
                    if (ih < 0 || ih >= g->height) {
                        memset(target, 0, (size_t)g->out_width * sizeof *target);
                        continue;
                    }
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

/* The adjoint of im2col: adds each column entry back into the input position
 * it was read from (din must be zeroed first). Each input position receives
 * its terms in the same order, kernel offset after kernel offset, either
 * way. The contiguous way also adds zeros (the zeroed stray entries, which
 * columns is scratch enough to take): din starts at +0 and a sum from +0
 * is never -0, so adding +0 changes no bit. */
NN_VECTOR_CLONES static void col2im(float *din, float *columns, size_t row_stride, const conv_geometry *g) {
    bool contiguous = conv_rows_contiguous(g);
    size_t plane = (size_t)g->height * g->width;
    for (int c = 0; c < g->channels; c++)
        for (int i = 0; i < g->kernel[0]; i++) {
            int oh_lo, oh_hi;
            conv_valid_span(&oh_lo, &oh_hi, i, g->padding[0], g->stride[0], g->height, g->out_height);
            for (int j = 0; j < g->kernel[1]; j++) {
                float *row = columns + (size_t)((c * g->kernel[0] + i) * g->kernel[1] + j) * row_stride;
                int lo, hi;
                conv_valid_span(&lo, &hi, j, g->padding[1], g->stride[1], g->width, g->out_width);
                int shift = j - g->padding[1];
                if (contiguous) {
                    if (lo >= hi || oh_lo >= oh_hi) continue;
                    int width = g->width;
                    zero_row_ends(row, width, oh_lo, oh_hi, lo, hi);
                    size_t start = (size_t)oh_lo * width + lo, count = (size_t)(oh_hi - 1) * width + hi - start;
                    const float *source = row + start;
                    float *target = din + c * plane + ((size_t)(oh_lo + i - g->padding[0]) * width + lo + shift);
                    for (size_t k = 0; k < count; k++) target[k] += source[k];
                    continue;
                }
                for (int oh = oh_lo; oh < oh_hi; oh++) {
                    int ih = oh * g->stride[0] + i - g->padding[0];
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

NN_VECTOR_CLONES static void conv2d_forward(nn_layer *base, void *context, float *out, const float *in, int batch,
                                            const nn_mode *mode) {
    (void)mode;
    const conv2d_layer *layer = (const conv2d_layer *)base;
    conv2d_context *ctx = context;
    const conv_geometry *g = &layer->geometry;
    int rows = layer->patch_size, pixels = layer->out_pixels, out_channels = layer->out_channels;
    size_t in_size = (size_t)g->channels * g->height * g->width, out_size = (size_t)out_channels * pixels;
    const float *weight = base->state[0].array.data;
    const float *bias = layer->has_bias ? base->state[1].array.data : NULL;
    for (int first = 0; first < batch; first += layer->chunk) {
        int samples = batch - first < layer->chunk ? batch - first : layer->chunk;
        size_t width = (size_t)samples * pixels;
        float *columns = ctx->columns + (size_t)first * rows * pixels;
        for (int s = 0; s < samples; s++)
            im2col(columns + (size_t)s * pixels, width, in + (first + s) * in_size, g);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, out_channels, (int)width, rows, 1.0f, weight,
                    rows, columns, (int)width, 0.0f, ctx->product, (int)width);
        /* product is (out_channel, sample, pixel); out is (sample, out_channel, pixel). */
        for (int s = 0; s < samples; s++)
            for (int o = 0; o < out_channels; o++) {
                float *target = out + (first + s) * out_size + (size_t)o * pixels;
                const float *source = ctx->product + o * width + (size_t)s * pixels;
                float shift = bias ? bias[o] : 0.0f;
                for (int p = 0; p < pixels; p++) target[p] = source[p] + shift;
            }
    }
}

/* Gathers the chunk's dout into product as (out_channel, sample, pixel) and
 * adds its sums over samples and pixels to dbias (if not NULL). */
NN_VECTOR_CLONES static void conv2d_gather_dout(const conv2d_layer *layer, float *product, float *dbias,
                                                const float *dout, int samples) {
    int pixels = layer->out_pixels, out_channels = layer->out_channels;
    size_t width = (size_t)samples * pixels, out_size = (size_t)out_channels * pixels;
    for (int s = 0; s < samples; s++)
        for (int o = 0; o < out_channels; o++)
            memcpy(product + o * width + (size_t)s * pixels, dout + s * out_size + (size_t)o * pixels,
                   (size_t)pixels * sizeof *dout);
    if (!dbias) return;
    for (int o = 0; o < out_channels; o++) dbias[o] += (float)sum_floats(product + o * width, width);
}

/* grad holds dweight (out_channels x patch_size) then, with a bias, dbias. */
static void conv2d_backward(const nn_layer *base, void *context, float *din, const float *dout, const float *in,
                            const float *out, int batch, float *grad, const nn_mode *mode) {
    (void)in;
    (void)out;
    (void)mode;
    const conv2d_layer *layer = (const conv2d_layer *)base;
    conv2d_context *ctx = context;
    const conv_geometry *g = &layer->geometry;
    int rows = layer->patch_size, pixels = layer->out_pixels, out_channels = layer->out_channels;
    size_t in_size = (size_t)g->channels * g->height * g->width, out_size = (size_t)out_channels * pixels;
    const float *weight = base->state[0].array.data;
    float *dweight = grad;
    float *dbias = layer->has_bias ? grad + (size_t)out_channels * rows : NULL;
    if (dbias) memset(dbias, 0, (size_t)out_channels * sizeof *dbias);
    for (int first = 0; first < batch; first += layer->chunk) {
        int samples = batch - first < layer->chunk ? batch - first : layer->chunk;
        size_t width = (size_t)samples * pixels;
        float *columns = ctx->columns + (size_t)first * rows * pixels;
        conv2d_gather_dout(layer, ctx->product, dbias, dout + first * out_size, samples);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, out_channels, rows, (int)width, 1.0f,
                    ctx->product, (int)width, columns, (int)width, first == 0 ? 0.0f : 1.0f, dweight, rows);
        if (!din) continue;
        /* The forward columns are spent: reuse them for the column gradient. */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, rows, (int)width, out_channels, 1.0f, weight,
                    rows, ctx->product, (int)width, 0.0f, columns, (int)width);
        float *target = din + first * in_size;
        memset(target, 0, (size_t)samples * in_size * sizeof *target);
        for (int s = 0; s < samples; s++) col2im(target + s * in_size, columns + (size_t)s * pixels, width, g);
    }
}

static int conv2d_describe(const nn_layer *base, char *buffer, size_t size) {
    return snprintf(buffer, size, "%s", ((const conv2d_layer *)base)->repr);
}

static void conv2d_destroy(nn_layer *base) { free(base); }

const nn_layer_kind nn_conv2d_kind = {
    .name = "Conv2d",
    .args = conv2d_args,
    .arg_count = sizeof conv2d_args / sizeof conv2d_args[0],
    .create = conv2d_create,
    .init = conv2d_init,
    .context_create = conv2d_context_create,
    .context_free = conv2d_context_free,
    .forward = conv2d_forward,
    .backward = conv2d_backward,
    .describe = conv2d_describe,
    .destroy = conv2d_destroy,
};
