/* ConvTranspose2d, as torch.nn.ConvTranspose2d: stride, padding,
 * output_padding, groups, bias and dilation; zero padding only, as in
 * torch.
 *
 * A transposed convolution is the adjoint of the Conv2d that maps its
 * output shape back to its input shape with the same window (the
 * "adjoint" geometry below: input = this layer's output, output = this
 * layer's input). So forward is that Conv2d's input gradient and backward
 * its forward: per chunk of samples, one cblas_sgemm per group of channels
 * turns the inputs into the column matrix (out_channels*kh*kw rows), which
 * col2im adds into the output; backward reads dout's patches by im2col and
 * multiplies them by the weight for din and by the inputs for the weight
 * gradient. output_padding gives back rows and columns at the bottom and
 * right (padding crops all of its rows at the top but only padding -
 * output_padding at the bottom); positions that no window reaches get just
 * the bias. */
#include <cblas.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/model.h"
#include "core/target_clones.h"
#include "layers/conv_util.h"
#include "layers/layers.h"

enum {
    ARG_IN, ARG_OUT, ARG_KERNEL, ARG_STRIDE, ARG_PADDING, ARG_OUTPUT_PADDING, ARG_GROUPS, ARG_BIAS, ARG_DILATION,
    ARG_PADDING_MODE
};

enum { CHUNK_COLUMNS = 2048 };

/* All of Conv2d's modes parse, so that the refusal can say torch has only zeros. */
static const char *const padding_modes[] = {"zeros", "reflect", "replicate", "circular", NULL};

static const nn_arg_spec conv_transpose2d_args[] = {
    {"in_channels", NN_ARG_INT, NN_ARG_OPTIONAL, {0, 0}, NULL},
    {"out_channels", NN_ARG_INT, NN_ARG_REQUIRED, {0, 0}, NULL},
    {"kernel_size", NN_ARG_INT_PAIR, NN_ARG_REQUIRED, {0, 0}, NULL},
    {"stride", NN_ARG_INT_PAIR, 0, {1, 1}, NULL},
    {"padding", NN_ARG_INT_PAIR, 0, {0, 0}, NULL},
    {"output_padding", NN_ARG_INT_PAIR, 0, {0, 0}, NULL},
    {"groups", NN_ARG_INT, 0, {1, 0}, NULL},
    {"bias", NN_ARG_BOOL, 0, {1, 0}, NULL},
    {"dilation", NN_ARG_INT_PAIR, 0, {1, 1}, NULL},
    {"padding_mode", NN_ARG_CHOICE, 0, {0, 0}, padding_modes},
};

typedef struct conv_transpose2d_layer {
    nn_layer base;
    conv_geometry adjoint; /* the Conv2d from this layer's output to its input */
    int in_channels, out_channels, groups;
    bool has_bias;
    int patch_size;        /* out_channels * kh * kw: rows of the column matrix */
    int group_rows;        /* patch_size / groups: one group's rows, a weight row's length */
    int in_pixels;         /* h * w: columns per sample */
    int chunk;             /* samples per product */
    char repr[320];
} conv_transpose2d_layer;

/* A replica's buffers for one chunk: nothing is kept between forward and
 * backward (backward recomputes from in and dout). */
typedef struct conv_transpose2d_context {
    float *columns;        /* patch_size x (chunk * in_pixels) */
    float *gathered;       /* in_channels x (chunk * in_pixels): inputs or their gradient */
} conv_transpose2d_context;

static int check_pair_at_least(const char *name, const int pair[2], int least, nn_error *err) {
    if (pair[0] >= least && pair[1] >= least) return 0;
    return nn_error_set(err, NN_ERR_INPUT, "%s must be at least %d, got (%d, %d)", name, least, pair[0], pair[1]);
}

static int read_args(conv_transpose2d_layer *layer, const nn_arg_value *args, nn_shape in_shape,
                     int output_padding[2], int padding[2], nn_error *err) {
    conv_geometry *g = &layer->adjoint;
    int channels = in_shape.dims[0], height = in_shape.dims[1], width = in_shape.dims[2];
    if (args[ARG_IN].given && (int)args[ARG_IN].value[0] != channels) {
        char text[64];
        nn_shape_format(in_shape, text, sizeof text);
        return nn_error_set(err, NN_ERR_INPUT, "in_channels is %d but the input %s has %d channel%s",
                            (int)args[ARG_IN].value[0], text, channels, channels == 1 ? "" : "s");
    }
    layer->in_channels = channels;
    layer->has_bias = args[ARG_BIAS].value[0] != 0;
    layer->out_channels = (int)args[ARG_OUT].value[0];
    if (layer->out_channels < 1)
        return nn_error_set(err, NN_ERR_INPUT, "out_channels must be at least 1, got %d", layer->out_channels);
    layer->groups = (int)args[ARG_GROUPS].value[0];
    if (layer->groups < 1) return nn_error_set(err, NN_ERR_INPUT, "groups must be at least 1, got %d", layer->groups);
    if (channels % layer->groups != 0)
        return nn_error_set(err, NN_ERR_INPUT, "in_channels %d is not divisible by groups %d", channels,
                            layer->groups);
    if (layer->out_channels % layer->groups != 0)
        return nn_error_set(err, NN_ERR_INPUT, "out_channels %d is not divisible by groups %d", layer->out_channels,
                            layer->groups);
    int mode = args[ARG_PADDING_MODE].choice > 0 ? args[ARG_PADDING_MODE].choice - 1 : 0;
    if (mode != 0)
        return nn_error_set(err, NN_ERR_INPUT,
                            "padding_mode '%s' is not supported for ConvTranspose2d: torch has only 'zeros'",
                            padding_modes[mode]);
    int kernel[2], stride[2], dilation[2];
    conv_pair(&args[ARG_KERNEL], kernel);
    conv_pair(&args[ARG_STRIDE], stride);
    conv_pair(&args[ARG_PADDING], padding);
    conv_pair(&args[ARG_OUTPUT_PADDING], output_padding);
    conv_pair(&args[ARG_DILATION], dilation);
    if (conv_check_window(kernel, stride, padding, err) != 0 || check_pair_at_least("dilation", dilation, 1, err) ||
        check_pair_at_least("output_padding", output_padding, 0, err))
        return -1;
    for (int k = 0; k < 2; k++)
        if (output_padding[k] >= stride[k] && output_padding[k] >= dilation[k])
            return nn_error_set(err, NN_ERR_INPUT,
                                "output_padding (%d, %d) must be smaller than either stride (%d, %d) or dilation "
                                "(%d, %d) in each dimension",
                                output_padding[0], output_padding[1], stride[0], stride[1], dilation[0],
                                dilation[1]);
    /* out = (in - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1;
     * im2col and col2im compute positions up to the reach in int */
    long long out[2], reach[2];
    int size[2] = {height, width};
    for (int k = 0; k < 2; k++) {
        reach[k] = (long long)(size[k] - 1) * stride[k] + (long long)dilation[k] * (kernel[k] - 1) + 1;
        out[k] = reach[k] - 2LL * padding[k] + output_padding[k];
    }
    char text[64], window[200];
    nn_shape_format(in_shape, text, sizeof text);
    snprintf(window, sizeof window,
             "kernel_size=(%d, %d), stride=(%d, %d), padding=(%d, %d), output_padding=(%d, %d), dilation=(%d, %d)",
             kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1], output_padding[0], output_padding[1],
             dilation[0], dilation[1]);
    if (out[0] < 1 || out[1] < 1 || (double)out[0] * out[1] * layer->out_channels > INT_MAX)
        return nn_error_set(err, NN_ERR_INPUT, "output %s (%d, %lld, %lld) for input %s with %s",
                            out[0] < 1 || out[1] < 1 ? "would be" : "is too large:", layer->out_channels, out[0],
                            out[1], text, window);
    if (reach[0] > INT_MAX || reach[1] > INT_MAX)
        return nn_error_set(err, NN_ERR_INPUT, "the windows span %lld x %lld positions before padding is cropped, "
                                               "more than %d, for input %s with %s",
                            reach[0], reach[1], INT_MAX, text, window);
    /* the column matrix of one sample, bounded as the model bounds a layer's output */
    double columns = (double)layer->out_channels * kernel[0] * kernel[1] * height * width;
    if (columns > NN_MAX_SAMPLE_VALUES)
        return nn_error_set(err, NN_ERR_INPUT, "its column matrix would hold %.0f values per sample (%d out_channels "
                                               "x %d x %d kernel positions x %d x %d inputs; the most nnseq allows "
                                               "is 2^28) for input %s with %s",
                            columns, layer->out_channels, kernel[0], kernel[1], height, width, text, window);
    *g = (conv_geometry){.channels = layer->out_channels,
                         .height = (int)out[0],
                         .width = (int)out[1],
                         .kernel = {kernel[0], kernel[1]},
                         .stride = {stride[0], stride[1]},
                         .padding = {padding[0], padding[1]},
                         .out_height = height,
                         .out_width = width,
                         .dilation = {dilation[0], dilation[1]}};
    return 0;
}

/* torch's _ConvNd.extra_repr: padding when not zero, dilation when not 1,
 * output_padding when not zero, groups when not 1, bias when off. */
static void format_repr(conv_transpose2d_layer *layer, const int output_padding[2]) {
    const conv_geometry *g = &layer->adjoint;
    size_t size = sizeof layer->repr;
    int n = snprintf(layer->repr, size, "ConvTranspose2d(%d, %d, kernel_size=(%d, %d), stride=(%d, %d)",
                     layer->in_channels, layer->out_channels, g->kernel[0], g->kernel[1], g->stride[0], g->stride[1]);
    if (g->padding[0] != 0 || g->padding[1] != 0)
        n += snprintf(layer->repr + n, size - (size_t)n, ", padding=(%d, %d)", g->padding[0], g->padding[1]);
    if (g->dilation[0] != 1 || g->dilation[1] != 1)
        n += snprintf(layer->repr + n, size - (size_t)n, ", dilation=(%d, %d)", g->dilation[0], g->dilation[1]);
    if (output_padding[0] != 0 || output_padding[1] != 0)
        n += snprintf(layer->repr + n, size - (size_t)n, ", output_padding=(%d, %d)", output_padding[0],
                      output_padding[1]);
    if (layer->groups != 1) n += snprintf(layer->repr + n, size - (size_t)n, ", groups=%d", layer->groups);
    snprintf(layer->repr + n, size - (size_t)n, "%s)", layer->has_bias ? "" : ", bias=False");
}

static nn_layer *conv_transpose2d_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    if (conv_check_image_input("ConvTranspose2d", in_shape, err) != 0) return NULL;
    conv_transpose2d_layer *layer = calloc(1, sizeof *layer);
    if (!layer) {
        nn_error_oom(err, "a ConvTranspose2d layer");
        return NULL;
    }
    int output_padding[2], padding[2];
    if (read_args(layer, args, in_shape, output_padding, padding, err) != 0) {
        free(layer);
        return NULL;
    }
    const conv_geometry *g = &layer->adjoint;
    layer->patch_size = layer->out_channels * g->kernel[0] * g->kernel[1];
    layer->group_rows = layer->patch_size / layer->groups;
    layer->in_pixels = g->out_height * g->out_width;
    layer->chunk = layer->in_pixels < CHUNK_COLUMNS ? CHUNK_COLUMNS / layer->in_pixels : 1;
    layer->base.in_shape = in_shape;
    layer->base.out_shape = (nn_shape){3, {layer->out_channels, g->height, g->width}};
    int64_t weight_dims[4] = {layer->in_channels, layer->out_channels / layer->groups, g->kernel[0], g->kernel[1]};
    int64_t bias_dims[1] = {layer->out_channels};
    nn_layer_add_state(&layer->base, "weight", true, NN_F32, 4, weight_dims, NULL);
    if (layer->has_bias) nn_layer_add_state(&layer->base, "bias", true, NN_F32, 1, bias_dims, NULL);
    format_repr(layer, output_padding);
    return &layer->base;
}

/* torch computes fan_in from the weight's dimension 1, out_channels/groups,
 * times kh * kw: one group's rows. */
static void conv_transpose2d_init(nn_layer *base, nn_rng *rng) {
    conv_transpose2d_layer *layer = (conv_transpose2d_layer *)base;
    size_t weight_count = (size_t)layer->in_channels * layer->group_rows;
    nn_init_uniform_fan_in(base->state[0].array.data, weight_count, layer->group_rows, rng);
    if (layer->has_bias)
        nn_init_uniform_fan_in(base->state[1].array.data, (size_t)layer->out_channels, layer->group_rows, rng);
}

static void conv_transpose2d_context_free(void *context) {
    conv_transpose2d_context *ctx = context;
    if (!ctx) return;
    free(ctx->columns);
    free(ctx->gathered);
    free(ctx);
}

static void *conv_transpose2d_context_create(const nn_layer *base, int max_batch, nn_error *err) {
    const conv_transpose2d_layer *layer = (const conv_transpose2d_layer *)base;
    if (max_batch < 1) max_batch = 1;
    size_t width = (size_t)(layer->chunk < max_batch ? layer->chunk : max_batch) * layer->in_pixels;
    conv_transpose2d_context *ctx = calloc(1, sizeof *ctx);
    if (ctx) {
        ctx->columns = malloc((size_t)layer->patch_size * width * sizeof *ctx->columns);
        ctx->gathered = malloc((size_t)layer->in_channels * width * sizeof *ctx->gathered);
    }
    if (!ctx || !ctx->columns || !ctx->gathered) {
        conv_transpose2d_context_free(ctx);
        nn_error_oom(err, "the ConvTranspose2d column buffer");
        return NULL;
    }
    return ctx;
}

NN_VECTOR_CLONES static void im2col(float *columns, size_t row_stride, const float *in, const conv_geometry *g) {
    conv_im2col(columns, row_stride, in, g);
}

NN_VECTOR_CLONES static void col2im(float *out, float *columns, size_t row_stride, const conv_geometry *g) {
    conv_col2im(out, columns, row_stride, g);
}

/* gathered (channel, sample, pixel) <-> batch-major (sample, channel, pixel). */
static void gather(float *gathered, const float *in, int channels, int pixels, int samples) {
    size_t width = (size_t)samples * pixels;
    for (int s = 0; s < samples; s++)
        for (int c = 0; c < channels; c++)
            memcpy(gathered + c * width + (size_t)s * pixels, in + ((size_t)s * channels + c) * pixels,
                   (size_t)pixels * sizeof *in);
}

static void scatter(float *out, const float *gathered, int channels, int pixels, int samples) {
    size_t width = (size_t)samples * pixels;
    for (int s = 0; s < samples; s++)
        for (int c = 0; c < channels; c++)
            memcpy(out + ((size_t)s * channels + c) * pixels, gathered + c * width + (size_t)s * pixels,
                   (size_t)pixels * sizeof *out);
}

NN_VECTOR_CLONES static void conv_transpose2d_forward(nn_layer *base, void *context, float *out, const float *in,
                                                      int batch, const nn_mode *mode) {
    (void)mode;
    const conv_transpose2d_layer *layer = (const conv_transpose2d_layer *)base;
    conv_transpose2d_context *ctx = context;
    const conv_geometry *g = &layer->adjoint;
    int pixels = layer->in_pixels, group_rows = layer->group_rows, group_in = layer->in_channels / layer->groups;
    size_t in_size = (size_t)layer->in_channels * pixels, out_pixels = (size_t)g->height * g->width;
    size_t out_size = (size_t)layer->out_channels * out_pixels;
    const float *weight = base->state[0].array.data;
    const float *bias = layer->has_bias ? base->state[1].array.data : NULL;
    for (int first = 0; first < batch; first += layer->chunk) {
        int samples = batch - first < layer->chunk ? batch - first : layer->chunk;
        size_t width = (size_t)samples * pixels;
        gather(ctx->gathered, in + first * in_size, layer->in_channels, pixels, samples);
        for (int k = 0; k < layer->groups; k++)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, group_rows, (int)width, group_in, 1.0f,
                        weight + (size_t)k * group_in * group_rows, group_rows, ctx->gathered + k * group_in * width,
                        (int)width, 0.0f, ctx->columns + k * group_rows * width, (int)width);
        float *target = out + first * out_size;
        memset(target, 0, (size_t)samples * out_size * sizeof *target);
        for (int s = 0; s < samples; s++) {
            col2im(target + s * out_size, ctx->columns + (size_t)s * pixels, width, g);
            if (!bias) continue;
            for (int o = 0; o < layer->out_channels; o++) {
                float *plane = target + s * out_size + o * out_pixels;
                for (size_t p = 0; p < out_pixels; p++) plane[p] += bias[o];
            }
        }
    }
}

/* grad holds dweight (in_channels x out_channels/groups*kh*kw) then, with a bias, dbias. */
static void conv_transpose2d_backward(const nn_layer *base, void *context, float *din, const float *dout,
                                      const float *in, const float *out, int batch, float *grad,
                                      const nn_mode *mode) {
    (void)out;
    (void)mode;
    const conv_transpose2d_layer *layer = (const conv_transpose2d_layer *)base;
    conv_transpose2d_context *ctx = context;
    const conv_geometry *g = &layer->adjoint;
    int pixels = layer->in_pixels, group_rows = layer->group_rows, group_in = layer->in_channels / layer->groups;
    size_t in_size = (size_t)layer->in_channels * pixels, out_pixels = (size_t)g->height * g->width;
    size_t out_size = (size_t)layer->out_channels * out_pixels;
    const float *weight = base->state[0].array.data;
    float *dweight = grad;
    if (layer->has_bias) {
        float *dbias = grad + (size_t)layer->in_channels * group_rows;
        for (int o = 0; o < layer->out_channels; o++) {
            double total = 0;
            for (int s = 0; s < batch; s++) total += sum_floats(dout + s * out_size + o * out_pixels, out_pixels);
            dbias[o] = (float)total;
        }
    }
    for (int first = 0; first < batch; first += layer->chunk) {
        int samples = batch - first < layer->chunk ? batch - first : layer->chunk;
        size_t width = (size_t)samples * pixels;
        for (int s = 0; s < samples; s++)
            im2col(ctx->columns + (size_t)s * pixels, width, dout + (first + s) * out_size, g);
        gather(ctx->gathered, in + first * in_size, layer->in_channels, pixels, samples);
        for (int k = 0; k < layer->groups; k++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, group_in, group_rows, (int)width, 1.0f,
                        ctx->gathered + k * group_in * width, (int)width, ctx->columns + k * group_rows * width,
                        (int)width, first == 0 ? 0.0f : 1.0f, dweight + (size_t)k * group_in * group_rows,
                        group_rows);
        if (!din) continue;
        /* The gathered inputs are spent: reuse them for their gradient. */
        for (int k = 0; k < layer->groups; k++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, group_in, (int)width, group_rows, 1.0f,
                        weight + (size_t)k * group_in * group_rows, group_rows,
                        ctx->columns + k * group_rows * width, (int)width, 0.0f,
                        ctx->gathered + k * group_in * width, (int)width);
        scatter(din + first * in_size, ctx->gathered, layer->in_channels, pixels, samples);
    }
}

static int conv_transpose2d_describe(const nn_layer *base, char *buffer, size_t size) {
    return snprintf(buffer, size, "%s", ((const conv_transpose2d_layer *)base)->repr);
}

static void conv_transpose2d_destroy(nn_layer *base) { free(base); }

const nn_layer_kind nn_conv_transpose2d_kind = {
    .name = "ConvTranspose2d",
    .args = conv_transpose2d_args,
    .arg_count = sizeof conv_transpose2d_args / sizeof conv_transpose2d_args[0],
    .create = conv_transpose2d_create,
    .init = conv_transpose2d_init,
    .context_create = conv_transpose2d_context_create,
    .context_free = conv_transpose2d_context_free,
    .forward = conv_transpose2d_forward,
    .backward = conv_transpose2d_backward,
    .describe = conv_transpose2d_describe,
    .destroy = conv_transpose2d_destroy,
    .mult_adds = nn_mult_adds_per_position,
};
