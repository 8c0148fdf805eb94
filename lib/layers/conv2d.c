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
 * chunk-sized buffer), then overwritten by the column gradient. */
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
    int capacity;          /* samples the caches hold */
    float *columns;        /* capacity * patch_size * out_pixels, chunk after chunk */
    float *product;        /* out_channels x (chunk * out_pixels) */
    char repr[160];
} conv2d_layer;

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

static int conv2d_reserve(nn_layer *base, int max_batch, nn_error *err) {
    conv2d_layer *layer = (conv2d_layer *)base;
    if (max_batch <= layer->capacity) return 0;
    size_t per_sample = (size_t)layer->patch_size * layer->out_pixels;
    int chunk = layer->chunk < max_batch ? layer->chunk : max_batch;
    float *columns = malloc((size_t)max_batch * per_sample * sizeof *columns);
    float *product = malloc((size_t)layer->out_channels * chunk * layer->out_pixels * sizeof *product);
    if (!columns || !product) {
        free(columns);
        free(product);
        return nn_error_oom(err, "the Conv2d column buffer");
    }
    free(layer->columns);
    free(layer->product);
    layer->columns = columns;
    layer->product = product;
    layer->capacity = max_batch;
    return 0;
}

/* Output columns [lo, hi) of kernel offset `offset` read inside the input
 * row (0 <= ow*stride + offset - padding < size); the rest read padding. */
static void conv_valid_span(int *lo, int *hi, int offset, int padding, int stride, int size, int out) {
    *lo = padding > offset ? (padding - offset + stride - 1) / stride : 0;
    int end = size + padding - offset;
    *hi = end > 0 ? (end + stride - 1) / stride : 0;
    if (*hi > out) *hi = out;
    if (*lo > out) *lo = out;
    if (*hi < *lo) *hi = *lo;
}

/* Writes one sample's patches into columns: row (c, i, j), column (oh, ow),
 * rows row_stride floats apart. */
NN_VECTOR_CLONES static void im2col(float *columns, size_t row_stride, const float *in, const conv_geometry *g) {
    for (int c = 0; c < g->channels; c++)
        for (int i = 0; i < g->kernel[0]; i++)
            for (int j = 0; j < g->kernel[1]; j++) {
                float *row = columns + (size_t)((c * g->kernel[0] + i) * g->kernel[1] + j) * row_stride;
                int lo, hi;
                conv_valid_span(&lo, &hi, j, g->padding[1], g->stride[1], g->width, g->out_width);
                for (int oh = 0; oh < g->out_height; oh++) {
                    float *target = row + (size_t)oh * g->out_width;
                    int ih = oh * g->stride[0] + i - g->padding[0];
                    if (ih < 0 || ih >= g->height) {
                        memset(target, 0, (size_t)g->out_width * sizeof *target);
                        continue;
                    }
                    const float *source = in + ((size_t)c * g->height + ih) * g->width;
                    int shift = j - g->padding[1];
                    for (int ow = 0; ow < lo; ow++) target[ow] = 0;
                    if (g->stride[1] == 1) /* a plain loop: rows are too short for memcpy to pay */
                        for (int ow = lo; ow < hi; ow++) target[ow] = source[ow + shift];
                    else
                        for (int ow = lo; ow < hi; ow++) target[ow] = source[ow * g->stride[1] + shift];
                    for (int ow = hi; ow < g->out_width; ow++) target[ow] = 0;
                }
            }
}

/* The adjoint of im2col: adds each column entry back into the input position
 * it was read from (din must be zeroed first). */
NN_VECTOR_CLONES static void col2im(float *din, const float *columns, size_t row_stride, const conv_geometry *g) {
    for (int c = 0; c < g->channels; c++)
        for (int i = 0; i < g->kernel[0]; i++)
            for (int j = 0; j < g->kernel[1]; j++) {
                const float *row = columns + (size_t)((c * g->kernel[0] + i) * g->kernel[1] + j) * row_stride;
                int lo, hi;
                conv_valid_span(&lo, &hi, j, g->padding[1], g->stride[1], g->width, g->out_width);
                for (int oh = 0; oh < g->out_height; oh++) {
                    int ih = oh * g->stride[0] + i - g->padding[0];
                    if (ih < 0 || ih >= g->height) continue;
                    const float *source = row + (size_t)oh * g->out_width;
                    float *target = din + ((size_t)c * g->height + ih) * g->width;
                    int shift = j - g->padding[1];
                    for (int ow = lo; ow < hi; ow++) target[ow * g->stride[1] + shift] += source[ow];
                }
            }
}

NN_VECTOR_CLONES static void conv2d_forward(nn_layer *base, float *out, const float *in, int batch, nn_mode mode) {
    (void)mode;
    conv2d_layer *layer = (conv2d_layer *)base;
    const conv_geometry *g = &layer->geometry;
    int rows = layer->patch_size, pixels = layer->out_pixels, out_channels = layer->out_channels;
    size_t in_size = (size_t)g->channels * g->height * g->width, out_size = (size_t)out_channels * pixels;
    const float *weight = base->state[0].array.data;
    const float *bias = layer->has_bias ? base->state[1].array.data : NULL;
    for (int first = 0; first < batch; first += layer->chunk) {
        int samples = batch - first < layer->chunk ? batch - first : layer->chunk;
        size_t width = (size_t)samples * pixels;
        float *columns = layer->columns + (size_t)first * rows * pixels;
        for (int s = 0; s < samples; s++)
            im2col(columns + (size_t)s * pixels, width, in + (first + s) * in_size, g);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, out_channels, (int)width, rows, 1.0f, weight,
                    rows, columns, (int)width, 0.0f, layer->product, (int)width);
        /* product is (out_channel, sample, pixel); out is (sample, out_channel, pixel). */
        for (int s = 0; s < samples; s++)
            for (int o = 0; o < out_channels; o++) {
                float *target = out + (first + s) * out_size + (size_t)o * pixels;
                const float *source = layer->product + o * width + (size_t)s * pixels;
                float shift = bias ? bias[o] : 0.0f;
                for (int p = 0; p < pixels; p++) target[p] = source[p] + shift;
            }
    }
}

/* Gathers the chunk's dout into product as (out_channel, sample, pixel) and
 * adds its sums over samples and pixels to dbias (if not NULL). */
NN_VECTOR_CLONES static void conv2d_gather_dout(conv2d_layer *layer, float *dbias, const float *dout, int samples) {
    int pixels = layer->out_pixels, out_channels = layer->out_channels;
    size_t width = (size_t)samples * pixels, out_size = (size_t)out_channels * pixels;
    for (int s = 0; s < samples; s++)
        for (int o = 0; o < out_channels; o++)
            memcpy(layer->product + o * width + (size_t)s * pixels, dout + s * out_size + (size_t)o * pixels,
                   (size_t)pixels * sizeof *dout);
    if (!dbias) return;
    for (int o = 0; o < out_channels; o++) dbias[o] += (float)sum_floats(layer->product + o * width, width);
}

static void conv2d_backward(nn_layer *base, float *din, const float *dout, const float *in,
                            const float *out, int batch) {
    (void)in;
    (void)out;
    conv2d_layer *layer = (conv2d_layer *)base;
    const conv_geometry *g = &layer->geometry;
    int rows = layer->patch_size, pixels = layer->out_pixels, out_channels = layer->out_channels;
    size_t in_size = (size_t)g->channels * g->height * g->width, out_size = (size_t)out_channels * pixels;
    const float *weight = base->state[0].array.data;
    float *dweight = base->state[0].grad;
    float *dbias = layer->has_bias ? base->state[1].grad : NULL;
    if (dbias) memset(dbias, 0, (size_t)out_channels * sizeof *dbias);
    for (int first = 0; first < batch; first += layer->chunk) {
        int samples = batch - first < layer->chunk ? batch - first : layer->chunk;
        size_t width = (size_t)samples * pixels;
        float *columns = layer->columns + (size_t)first * rows * pixels;
        conv2d_gather_dout(layer, dbias, dout + first * out_size, samples);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, out_channels, rows, (int)width, 1.0f,
                    layer->product, (int)width, columns, (int)width, first == 0 ? 0.0f : 1.0f, dweight, rows);
        if (!din) continue;
        /* The forward columns are spent: reuse them for the column gradient. */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, rows, (int)width, out_channels, 1.0f, weight,
                    rows, layer->product, (int)width, 0.0f, columns, (int)width);
        float *target = din + first * in_size;
        memset(target, 0, (size_t)samples * in_size * sizeof *target);
        for (int s = 0; s < samples; s++) col2im(target + s * in_size, columns + (size_t)s * pixels, width, g);
    }
}

static int conv2d_describe(const nn_layer *base, char *buffer, size_t size) {
    return snprintf(buffer, size, "%s", ((const conv2d_layer *)base)->repr);
}

static void conv2d_destroy(nn_layer *base) {
    conv2d_layer *layer = (conv2d_layer *)base;
    free(layer->columns);
    free(layer->product);
    free(layer);
}

const nn_layer_kind nn_conv2d_kind = {
    .name = "Conv2d",
    .args = conv2d_args,
    .arg_count = sizeof conv2d_args / sizeof conv2d_args[0],
    .create = conv2d_create,
    .init = conv2d_init,
    .reserve = conv2d_reserve,
    .forward = conv2d_forward,
    .backward = conv2d_backward,
    .describe = conv2d_describe,
    .destroy = conv2d_destroy,
};
