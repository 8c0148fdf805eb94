/* Conv2d and Conv1d, as torch.nn's: stride, padding (numbers, 'same',
 * 'valid'), dilation, groups, bias and the four padding modes. Conv1d runs
 * as a Conv2d over a (channels, 1, length) view of its (channels, length)
 * sample, so both share everything but the arguments, shapes and repr.
 *
 * Lowered to matrix products by im2col: the input patches of a group of
 * samples become the columns of a (in_channels*kh*kw) x (samples*oh*ow)
 * matrix, so that one cblas_sgemm per group of channels with the
 * (out_channels/groups x in_channels/groups*kh*kw) weight block computes the
 * whole group of samples (a group's rows of the column matrix are
 * consecutive). Samples are grouped into chunks of about CHUNK_COLUMNS
 * columns rather than one sgemm for the whole batch or one per sample:
 * measured on a fashion_cnn-like shape (batch 64, 1x28x28 -> 32 3x3 and
 * 32x13x13 -> 64 3x3), per-sample products are fastest for the first layer
 * but lose to larger products on two threads for the second, while
 * whole-batch products lose for the first layer (a product with 9 rows and
 * 43264 columns runs poorly) and spend time reordering out-of-cache results;
 * chunks of ~2048 columns are within a few percent of the best of both on
 * one and two threads.
 *
 * Zero padding is implicit in im2col (asymmetric for 'same' with an even
 * window: torch puts the odd one after). The other modes build the padded
 * chunk once (each padded position copies the input position its mode maps
 * it to), then run the valid convolution; backward folds the padded
 * gradient back, adding each position into its source.
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

#include "core/model.h"
#include "core/target_clones.h"
#include "layers/conv_util.h"
#include "layers/layers.h"

enum { ARG_IN, ARG_OUT, ARG_KERNEL, ARG_STRIDE, ARG_PADDING, ARG_DILATION, ARG_GROUPS, ARG_BIAS, ARG_PADDING_MODE };

enum { CHUNK_COLUMNS = 2048 };

enum { PAD_ZEROS, PAD_REFLECT, PAD_REPLICATE, PAD_CIRCULAR };

static const char *const padding_strings[] = {"valid", "same", NULL};
enum { PADDING_VALID = 1, PADDING_SAME = 2 }; /* nn_arg_value.choice */
static const char *const padding_modes[] = {"zeros", "reflect", "replicate", "circular", NULL};

static const nn_arg_spec conv2d_args[] = {
    {"in_channels", NN_ARG_INT, NN_ARG_OPTIONAL, {0, 0}, NULL},
    {"out_channels", NN_ARG_INT, NN_ARG_REQUIRED, {0, 0}, NULL},
    {"kernel_size", NN_ARG_INT_PAIR, NN_ARG_REQUIRED, {0, 0}, NULL},
    {"stride", NN_ARG_INT_PAIR, 0, {1, 1}, NULL},
    {"padding", NN_ARG_INT_PAIR, 0, {0, 0}, padding_strings},
    {"dilation", NN_ARG_INT_PAIR, 0, {1, 1}, NULL},
    {"groups", NN_ARG_INT, 0, {1, 0}, NULL},
    {"bias", NN_ARG_BOOL, 0, {1, 0}, NULL},
    {"padding_mode", NN_ARG_CHOICE, 0, {PAD_ZEROS, 0}, padding_modes},
};

/* Conv1d's window arguments are an int or a list of one int, as torch's
 * _single takes them. */
static const nn_arg_spec conv1d_args[] = {
    {"in_channels", NN_ARG_INT, NN_ARG_OPTIONAL, {0, 0}, NULL},
    {"out_channels", NN_ARG_INT, NN_ARG_REQUIRED, {0, 0}, NULL},
    {"kernel_size", NN_ARG_INT_LIST, NN_ARG_REQUIRED | NN_ARG_SCALAR, {0, 0}, NULL},
    {"stride", NN_ARG_INT_LIST, NN_ARG_SCALAR, {1, 0}, NULL},
    {"padding", NN_ARG_INT_LIST, NN_ARG_SCALAR, {0, 0}, padding_strings},
    {"dilation", NN_ARG_INT_LIST, NN_ARG_SCALAR, {1, 0}, NULL},
    {"groups", NN_ARG_INT, 0, {1, 0}, NULL},
    {"bias", NN_ARG_BOOL, 0, {1, 0}, NULL},
    {"padding_mode", NN_ARG_CHOICE, 0, {PAD_ZEROS, 0}, padding_modes},
};

typedef struct conv2d_layer {
    nn_layer base;
    /* The convolution proper: over the padded input, with padding 0, when
     * padding_mode is not zeros. */
    conv_geometry geometry;
    int in_height, in_width;   /* the input before explicit padding */
    int padding_mode;
    /* Explicit padding: padded row r and column c copy input row
     * row_source[r] and column column_source[c]; NULL for zeros. */
    int *row_source, *column_source;
    int out_channels, groups;
    bool has_bias;
    int patch_size;        /* in_channels * kh * kw: rows of the column matrix */
    int group_rows;        /* patch_size / groups: one group's rows and weight row length */
    int out_pixels;        /* oh * ow: columns per sample */
    int chunk;             /* samples per product */
    char repr[320];
} conv2d_layer;

/* A replica's buffers, for up to max_batch samples. */
typedef struct conv2d_context {
    float *columns;        /* max_batch * patch_size * out_pixels, chunk after chunk */
    float *product;        /* out_channels x (chunk * out_pixels) */
    float *padded;         /* chunk padded samples (explicit padding only), or their gradient */
} conv2d_context;

/* The window arguments as [height, width] pairs, and what torch's repr
 * shows of padding. */
typedef struct conv_window_args {
    int kernel[2], stride[2], dilation[2];
    int padding[2];        /* the numbers given; 0 for 'same' and 'valid' */
    int padding_choice;    /* 0, PADDING_VALID or PADDING_SAME */
} conv_window_args;

/* Conv1d's int or list of one int (the default when not given). */
static int conv1d_single(const nn_arg_value *value, const nn_arg_spec *spec, int *single, nn_error *err) {
    *single = value->given ? (int)value->value[0] : (int)spec->default_value[0];
    if (value->given && value->count != 1)
        return nn_error_set(err, NN_ERR_INPUT, "%s must be an int or a list of one int, got %d values", spec->name,
                            value->count);
    return 0;
}

static int conv_read_window(conv_window_args *w, const nn_arg_value *args, bool one_d, nn_error *err) {
    w->padding_choice = args[ARG_PADDING].choice;
    if (!one_d) {
        conv_pair(&args[ARG_KERNEL], w->kernel);
        conv_pair(&args[ARG_STRIDE], w->stride);
        conv_pair(&args[ARG_DILATION], w->dilation);
        if (!w->padding_choice) conv_pair(&args[ARG_PADDING], w->padding);
        return 0;
    }
    /* the (channels, 1, length) view: a window of height 1 */
    w->kernel[0] = w->stride[0] = w->dilation[0] = 1;
    w->padding[0] = 0;
    const nn_arg_spec *specs = conv1d_args;
    if (conv1d_single(&args[ARG_KERNEL], &specs[ARG_KERNEL], &w->kernel[1], err) ||
        conv1d_single(&args[ARG_STRIDE], &specs[ARG_STRIDE], &w->stride[1], err) ||
        conv1d_single(&args[ARG_DILATION], &specs[ARG_DILATION], &w->dilation[1], err))
        return -1;
    if (!w->padding_choice && conv1d_single(&args[ARG_PADDING], &specs[ARG_PADDING], &w->padding[1], err)) return -1;
    return 0;
}

/* Where padded position p (p < padding before, then the input, then after)
 * takes its value from in an input of size positions: reflect mirrors
 * about the edge (without repeating it), replicate repeats the edge,
 * circular wraps around. The limits checked in create keep the result in
 * the input. */
static int conv_pad_source(int p, int before, int size, int mode) {
    int x = p - before;
    if (x >= 0 && x < size) return x;
    switch (mode) {
    case PAD_REFLECT: return x < 0 ? -x : 2 * (size - 1) - x;
    case PAD_REPLICATE: return x < 0 ? 0 : size - 1;
    default: return x < 0 ? x + size : x - size;
    }
}

static int conv_make_pad_sources(conv2d_layer *layer, const int before[2], nn_error *err) {
    conv_geometry *g = &layer->geometry;
    layer->row_source = malloc((size_t)g->height * sizeof *layer->row_source);
    layer->column_source = malloc((size_t)g->width * sizeof *layer->column_source);
    if (!layer->row_source || !layer->column_source) return nn_error_oom(err, "the Conv2d padding maps");
    for (int r = 0; r < g->height; r++)
        layer->row_source[r] = conv_pad_source(r, before[0], layer->in_height, layer->padding_mode);
    for (int c = 0; c < g->width; c++)
        layer->column_source[c] = conv_pad_source(c, before[1], layer->in_width, layer->padding_mode);
    return 0;
}

/* The window arguments for messages: "kernel_size=(3, 3), stride=(1, 1),
 * padding=(0, 0)" and the dilation when it is not 1. */
static void conv_window_text(char *text, size_t size, const conv_window_args *w, bool one_d) {
    int d = one_d ? 1 : 2, from = one_d ? 1 : 0;
    char kernel[32], stride[32], padding[32], dilation[48] = "";
    conv_format_tuple(kernel, sizeof kernel, w->kernel + from, d);
    conv_format_tuple(stride, sizeof stride, w->stride + from, d);
    if (w->padding_choice)
        snprintf(padding, sizeof padding, "%s", padding_strings[w->padding_choice - 1]);
    else
        conv_format_tuple(padding, sizeof padding, w->padding + from, d);
    if (w->dilation[0] != 1 || w->dilation[1] != 1) {
        int n = snprintf(dilation, sizeof dilation, ", dilation=");
        conv_format_tuple(dilation + n, sizeof dilation - (size_t)n, w->dilation + from, d);
    }
    snprintf(text, size, "kernel_size=%s, stride=%s, padding=%s%s", kernel, stride, padding, dilation);
}

/* "Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1))": torch shows the window
 * as tuples, then padding when not zero (or the string given), dilation
 * when not 1, groups when not 1, bias only when off, padding_mode when not
 * zeros. */
static void conv_format_repr(conv2d_layer *layer, const conv_window_args *w, bool one_d) {
    int d = one_d ? 1 : 2, from = one_d ? 1 : 0;
    char kernel[32], stride[32];
    conv_format_tuple(kernel, sizeof kernel, w->kernel + from, d);
    conv_format_tuple(stride, sizeof stride, w->stride + from, d);
    size_t size = sizeof layer->repr;
    int n = snprintf(layer->repr, size, "%s(%d, %d, kernel_size=%s, stride=%s", one_d ? "Conv1d" : "Conv2d",
                     layer->geometry.channels, layer->out_channels, kernel, stride);
    if (w->padding_choice)
        n += snprintf(layer->repr + n, size - (size_t)n, ", padding=%s", padding_strings[w->padding_choice - 1]);
    else if (w->padding[0] != 0 || w->padding[1] != 0) {
        n += snprintf(layer->repr + n, size - (size_t)n, ", padding=");
        n += conv_format_tuple(layer->repr + n, size - (size_t)n, w->padding + from, d);
    }
    if (w->dilation[0] != 1 || w->dilation[1] != 1) {
        n += snprintf(layer->repr + n, size - (size_t)n, ", dilation=");
        n += conv_format_tuple(layer->repr + n, size - (size_t)n, w->dilation + from, d);
    }
    if (layer->groups != 1) n += snprintf(layer->repr + n, size - (size_t)n, ", groups=%d", layer->groups);
    if (!layer->has_bias) n += snprintf(layer->repr + n, size - (size_t)n, ", bias=False");
    if (layer->padding_mode != PAD_ZEROS)
        n += snprintf(layer->repr + n, size - (size_t)n, ", padding_mode=%s", padding_modes[layer->padding_mode]);
    snprintf(layer->repr + n, size - (size_t)n, ")");
}

/* A window argument's numbers are at least least: "stride must be at least
 * 1, got (1, 0)" ("(0,)" for Conv1d). */
static int check_at_least(const char *name, const int pair[2], int least, bool one_d, nn_error *err) {
    if (pair[0] >= least && pair[1] >= least) return 0;
    char text[32];
    conv_format_tuple(text, sizeof text, pair + (one_d ? 1 : 0), one_d ? 1 : 2);
    return nn_error_set(err, NN_ERR_INPUT, "%s must be at least %d, got %s", name, least, text);
}

static int conv_check_input(nn_shape in_shape, bool one_d, nn_error *err) {
    if (!one_d) return conv_check_image_input("Conv2d", in_shape, err);
    if (in_shape.rank == 2) return 0;
    char text[64];
    nn_shape_format(in_shape, text, sizeof text);
    return nn_error_set(err, NN_ERR_INPUT,
                        "Conv1d needs an input of shape (channels, length), got %s: put it before any "
                        "Flatten, or set model.input_shape to [channels, length]",
                        text);
}

/* Checks the arguments in torch's order (the constructor's, then what its
 * forward refuses) and fills the geometry, the padding maps and the shapes. */
static int conv_read_args(conv2d_layer *layer, const nn_arg_value *args, nn_shape in_shape, bool one_d,
                          nn_error *err) {
    conv_geometry *g = &layer->geometry;
    int channels = in_shape.dims[0];
    layer->in_height = one_d ? 1 : in_shape.dims[1];
    layer->in_width = in_shape.dims[one_d ? 1 : 2];
    if (args[ARG_IN].given && (int)args[ARG_IN].value[0] != channels) {
        char text[64];
        nn_shape_format(in_shape, text, sizeof text);
        return nn_error_set(err, NN_ERR_INPUT, "in_channels is %d but the input %s has %d channel%s",
                            (int)args[ARG_IN].value[0], text, channels, channels == 1 ? "" : "s");
    }
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
    conv_window_args w = {0};
    if (conv_read_window(&w, args, one_d, err) != 0) return -1;
    layer->padding_mode = args[ARG_PADDING_MODE].choice > 0 ? args[ARG_PADDING_MODE].choice - 1 : PAD_ZEROS;
    if (check_at_least("kernel_size", w.kernel, 1, one_d, err) || check_at_least("stride", w.stride, 1, one_d, err) ||
        check_at_least("padding", w.padding, 0, one_d, err) || check_at_least("dilation", w.dilation, 1, one_d, err))
        return -1;
    if (w.padding_choice == PADDING_SAME && (w.stride[0] != 1 || w.stride[1] != 1)) {
        char text[32];
        conv_format_tuple(text, sizeof text, w.stride + (one_d ? 1 : 0), one_d ? 1 : 2);
        return nn_error_set(err, NN_ERR_INPUT,
                            "padding 'same' is not supported for strided convolutions (stride=%s): give the "
                            "padding as numbers",
                            text);
    }
    if ((double)channels * w.kernel[0] * w.kernel[1] > INT_MAX)
        return nn_error_set(err, NN_ERR_INPUT, "kernel_size (%d, %d) is too large", w.kernel[0], w.kernel[1]);
    /* padding before and after each side: 'same' splits the window's
     * extent beyond one position, the odd one after, as torch does */
    long long window[2], before[2], after[2], padded[2], out[2];
    int size[2] = {layer->in_height, layer->in_width};
    for (int k = 0; k < 2; k++) {
        window[k] = (long long)w.dilation[k] * (w.kernel[k] - 1) + 1;
        before[k] = after[k] = w.padding[k];
        if (w.padding_choice == PADDING_SAME) {
            before[k] = (window[k] - 1) / 2;
            after[k] = window[k] - 1 - before[k];
        }
        padded[k] = size[k] + before[k] + after[k];
        out[k] = conv_output_extent(padded[k], window[k], w.stride[k]);
    }
    char window_text[160], in_text[64];
    conv_window_text(window_text, sizeof window_text, &w, one_d);
    nn_shape_format(in_shape, in_text, sizeof in_text);
    if (out[0] < 1 || out[1] < 1) {
        if (one_d)
            return nn_error_set(err, NN_ERR_INPUT, "output would be (%d, %lld) for input %s with %s",
                                layer->out_channels, out[1], in_text, window_text);
        return nn_error_set(err, NN_ERR_INPUT, "output would be (%d, %lld, %lld) for input %s with %s",
                            layer->out_channels, out[0], out[1], in_text, window_text);
    }
    /* im2col computes offsets in int: the padded input and window must fit */
    if ((double)out[0] * out[1] * layer->out_channels > INT_MAX || padded[0] > INT_MAX || padded[1] > INT_MAX ||
        (layer->padding_mode != PAD_ZEROS && (double)padded[0] * padded[1] * channels > INT_MAX))
        return nn_error_set(err, NN_ERR_INPUT, "output is too large: (%d, %lld, %lld) from a padded input of "
                                               "%lld x %lld for input %s with %s",
                            layer->out_channels, out[0], out[1], padded[0], padded[1], in_text, window_text);
    /* the buffers a replica's context holds per sample, bounded as the
     * model bounds a layer's output */
    double columns = (double)channels * w.kernel[0] * w.kernel[1] * out[0] * out[1];
    if (columns > NN_MAX_SAMPLE_VALUES)
        return nn_error_set(err, NN_ERR_INPUT, "its im2col matrix would hold %.0f values per sample (%d channels x "
                                               "%d x %d kernel positions x %lld x %lld outputs; the most nnseq "
                                               "allows is 2^28) for input %s with %s",
                            columns, channels, w.kernel[0], w.kernel[1], out[0], out[1], in_text, window_text);
    if (layer->padding_mode != PAD_ZEROS && (double)padded[0] * padded[1] * channels > NN_MAX_SAMPLE_VALUES)
        return nn_error_set(err, NN_ERR_INPUT, "the padded input would hold %.0f values per sample (the most nnseq "
                                               "allows is 2^28) for input %s with %s",
                            (double)padded[0] * padded[1] * channels, in_text, window_text);
    if (layer->padding_mode != PAD_ZEROS)
        for (int k = one_d ? 1 : 0; k < 2; k++) {
            const char *side = one_d ? "length" : k == 0 ? "height" : "width";
            long long most = before[k] > after[k] ? before[k] : after[k];
            if (layer->padding_mode == PAD_REFLECT && most >= size[k])
                return nn_error_set(err, NN_ERR_INPUT, "padding_mode 'reflect' needs padding smaller than the "
                                                       "input: padding %lld in %s for input %s",
                                    most, side, in_text);
            if (layer->padding_mode == PAD_CIRCULAR && most > size[k])
                return nn_error_set(err, NN_ERR_INPUT, "padding_mode 'circular' needs padding at most the input "
                                                       "size: padding %lld in %s for input %s",
                                    most, side, in_text);
        }
    g->channels = channels;
    for (int k = 0; k < 2; k++) {
        g->kernel[k] = w.kernel[k];
        g->stride[k] = w.stride[k];
        g->dilation[k] = w.dilation[k];
    }
    g->out_height = (int)out[0];
    g->out_width = (int)out[1];
    if (layer->padding_mode == PAD_ZEROS) {
        g->height = layer->in_height;
        g->width = layer->in_width;
        g->padding[0] = (int)before[0];
        g->padding[1] = (int)before[1];
    } else {
        g->height = (int)padded[0];
        g->width = (int)padded[1];
        int pad_before[2] = {(int)before[0], (int)before[1]};
        if (conv_make_pad_sources(layer, pad_before, err) != 0) return -1;
    }
    conv_format_repr(layer, &w, one_d);
    return 0;
}

static void conv2d_destroy(nn_layer *base) {
    conv2d_layer *layer = (conv2d_layer *)base;
    free(layer->row_source);
    free(layer->column_source);
    free(layer);
}

static nn_layer *conv_create(const nn_arg_value *args, nn_shape in_shape, bool one_d, nn_error *err) {
    if (conv_check_input(in_shape, one_d, err) != 0) return NULL;
    conv2d_layer *layer = calloc(1, sizeof *layer);
    if (!layer) {
        nn_error_oom(err, one_d ? "a Conv1d layer" : "a Conv2d layer");
        return NULL;
    }
    if (conv_read_args(layer, args, in_shape, one_d, err) != 0) {
        conv2d_destroy(&layer->base);
        return NULL;
    }
    const conv_geometry *g = &layer->geometry;
    layer->patch_size = g->channels * g->kernel[0] * g->kernel[1];
    layer->group_rows = layer->patch_size / layer->groups;
    layer->out_pixels = g->out_height * g->out_width;
    layer->chunk = layer->out_pixels < CHUNK_COLUMNS ? CHUNK_COLUMNS / layer->out_pixels : 1;
    layer->base.in_shape = in_shape;
    int in_group = g->channels / layer->groups;
    int64_t weight_dims[4] = {layer->out_channels, in_group, g->kernel[0], g->kernel[1]};
    if (one_d) {
        layer->base.out_shape = (nn_shape){2, {layer->out_channels, g->out_width, 0}};
        weight_dims[2] = g->kernel[1];
    } else {
        layer->base.out_shape = (nn_shape){3, {layer->out_channels, g->out_height, g->out_width}};
    }
    int64_t bias_dims[1] = {layer->out_channels};
    nn_layer_add_state(&layer->base, "weight", true, NN_F32, one_d ? 3 : 4, weight_dims, NULL);
    if (layer->has_bias) nn_layer_add_state(&layer->base, "bias", true, NN_F32, 1, bias_dims, NULL);
    return &layer->base;
}

static nn_layer *conv2d_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    return conv_create(args, in_shape, false, err);
}

static nn_layer *conv1d_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    return conv_create(args, in_shape, true, err);
}

/* torch's fan_in is weight.size(1) * receptive field: in_channels/groups * kh * kw. */
static void conv2d_init(nn_layer *base, nn_rng *rng) {
    conv2d_layer *layer = (conv2d_layer *)base;
    size_t weight_count = (size_t)layer->out_channels * layer->group_rows;
    nn_init_uniform_fan_in(base->state[0].array.data, weight_count, layer->group_rows, rng);
    if (layer->has_bias)
        nn_init_uniform_fan_in(base->state[1].array.data, (size_t)layer->out_channels, layer->group_rows, rng);
}

static void conv2d_context_free(void *context) {
    conv2d_context *ctx = context;
    if (!ctx) return;
    free(ctx->columns);
    free(ctx->product);
    free(ctx->padded);
    free(ctx);
}

static void *conv2d_context_create(const nn_layer *base, int max_batch, nn_error *err) {
    const conv2d_layer *layer = (const conv2d_layer *)base;
    const conv_geometry *g = &layer->geometry;
    if (max_batch < 1) max_batch = 1;
    size_t per_sample = (size_t)layer->patch_size * layer->out_pixels;
    int chunk = layer->chunk < max_batch ? layer->chunk : max_batch;
    conv2d_context *ctx = calloc(1, sizeof *ctx);
    bool padded_ok = true;
    if (ctx) {
        ctx->columns = malloc((size_t)max_batch * per_sample * sizeof *ctx->columns);
        ctx->product = malloc((size_t)layer->out_channels * chunk * layer->out_pixels * sizeof *ctx->product);
        if (layer->padding_mode != PAD_ZEROS) {
            ctx->padded = malloc((size_t)chunk * g->channels * g->height * g->width * sizeof *ctx->padded);
            padded_ok = ctx->padded != NULL;
        }
    }
    if (!ctx || !ctx->columns || !ctx->product || !padded_ok) {
        conv2d_context_free(ctx);
        nn_error_oom(err, "the Conv2d column buffer");
        return NULL;
    }
    return ctx;
}

NN_VECTOR_CLONES static void im2col(float *columns, size_t row_stride, const float *in, const conv_geometry *g) {
    conv_im2col(columns, row_stride, in, g);
}

NN_VECTOR_CLONES static void col2im(float *din, float *columns, size_t row_stride, const conv_geometry *g) {
    conv_col2im(din, columns, row_stride, g);
}

/* padded = the samples' planes with explicit padding, by the source maps. */
static void conv_pad(const conv2d_layer *layer, float *padded, const float *in, int samples) {
    const conv_geometry *g = &layer->geometry;
    size_t in_plane = (size_t)layer->in_height * layer->in_width;
    for (int p = 0; p < samples * g->channels; p++) {
        const float *source = in + p * in_plane;
        float *target = padded + (size_t)p * g->height * g->width;
        for (int r = 0; r < g->height; r++) {
            const float *row = source + (size_t)layer->row_source[r] * layer->in_width;
            for (int c = 0; c < g->width; c++) target[c] = row[layer->column_source[c]];
            target += g->width;
        }
    }
}

/* The adjoint of conv_pad: din = the padded gradient added into the
 * positions each padded position copied. */
static void conv_unpad(const conv2d_layer *layer, float *din, const float *padded, int samples) {
    const conv_geometry *g = &layer->geometry;
    size_t in_plane = (size_t)layer->in_height * layer->in_width;
    memset(din, 0, (size_t)samples * g->channels * in_plane * sizeof *din);
    for (int p = 0; p < samples * g->channels; p++) {
        float *target = din + p * in_plane;
        const float *source = padded + (size_t)p * g->height * g->width;
        for (int r = 0; r < g->height; r++) {
            float *row = target + (size_t)layer->row_source[r] * layer->in_width;
            for (int c = 0; c < g->width; c++) row[layer->column_source[c]] += source[c];
            source += g->width;
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
    int group_rows = layer->group_rows, group_out = out_channels / layer->groups;
    size_t in_size = (size_t)g->channels * layer->in_height * layer->in_width, out_size = (size_t)out_channels * pixels;
    size_t padded_size = (size_t)g->channels * g->height * g->width;
    const float *weight = base->state[0].array.data;
    const float *bias = layer->has_bias ? base->state[1].array.data : NULL;
    for (int first = 0; first < batch; first += layer->chunk) {
        int samples = batch - first < layer->chunk ? batch - first : layer->chunk;
        size_t width = (size_t)samples * pixels;
        float *columns = ctx->columns + (size_t)first * rows * pixels;
        const float *source = in + first * in_size;
        size_t source_size = in_size;
        if (ctx->padded) {
            conv_pad(layer, ctx->padded, source, samples);
            source = ctx->padded;
            source_size = padded_size;
        }
        for (int s = 0; s < samples; s++) im2col(columns + (size_t)s * pixels, width, source + s * source_size, g);
        for (int k = 0; k < layer->groups; k++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, group_out, (int)width, group_rows, 1.0f,
                        weight + (size_t)k * group_out * group_rows, group_rows, columns + k * group_rows * width,
                        (int)width, 0.0f, ctx->product + k * group_out * width, (int)width);
        /* product is (out_channel, sample, pixel); out is (sample, out_channel, pixel). */
        for (int s = 0; s < samples; s++)
            for (int o = 0; o < out_channels; o++) {
                float *target = out + (first + s) * out_size + (size_t)o * pixels;
                const float *result = ctx->product + o * width + (size_t)s * pixels;
                float shift = bias ? bias[o] : 0.0f;
                for (int p = 0; p < pixels; p++) target[p] = result[p] + shift;
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

/* grad holds dweight (out_channels x patch_size/groups) then, with a bias, dbias. */
static void conv2d_backward(const nn_layer *base, void *context, float *din, const float *dout, const float *in,
                            const float *out, int batch, float *grad, const nn_mode *mode) {
    (void)in;
    (void)out;
    (void)mode;
    const conv2d_layer *layer = (const conv2d_layer *)base;
    conv2d_context *ctx = context;
    const conv_geometry *g = &layer->geometry;
    int rows = layer->patch_size, pixels = layer->out_pixels, out_channels = layer->out_channels;
    int group_rows = layer->group_rows, group_out = out_channels / layer->groups;
    size_t in_size = (size_t)g->channels * layer->in_height * layer->in_width, out_size = (size_t)out_channels * pixels;
    size_t padded_size = (size_t)g->channels * g->height * g->width;
    const float *weight = base->state[0].array.data;
    float *dweight = grad;
    float *dbias = layer->has_bias ? grad + (size_t)out_channels * group_rows : NULL;
    if (dbias) memset(dbias, 0, (size_t)out_channels * sizeof *dbias);
    for (int first = 0; first < batch; first += layer->chunk) {
        int samples = batch - first < layer->chunk ? batch - first : layer->chunk;
        size_t width = (size_t)samples * pixels;
        float *columns = ctx->columns + (size_t)first * rows * pixels;
        conv2d_gather_dout(layer, ctx->product, dbias, dout + first * out_size, samples);
        for (int k = 0; k < layer->groups; k++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, group_out, group_rows, (int)width, 1.0f,
                        ctx->product + k * group_out * width, (int)width, columns + k * group_rows * width,
                        (int)width, first == 0 ? 0.0f : 1.0f, dweight + (size_t)k * group_out * group_rows,
                        group_rows);
        if (!din) continue;
        /* The forward columns are spent: reuse them for the column gradient. */
        for (int k = 0; k < layer->groups; k++)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, group_rows, (int)width, group_out, 1.0f,
                        weight + (size_t)k * group_out * group_rows, group_rows,
                        ctx->product + k * group_out * width, (int)width, 0.0f, columns + k * group_rows * width,
                        (int)width);
        float *target = ctx->padded ? ctx->padded : din + first * in_size;
        size_t target_size = ctx->padded ? padded_size : in_size;
        memset(target, 0, (size_t)samples * target_size * sizeof *target);
        for (int s = 0; s < samples; s++) col2im(target + s * target_size, columns + (size_t)s * pixels, width, g);
        if (ctx->padded) conv_unpad(layer, din + first * in_size, ctx->padded, samples);
    }
}

static int conv2d_describe(const nn_layer *base, char *buffer, size_t size) {
    return snprintf(buffer, size, "%s", ((const conv2d_layer *)base)->repr);
}

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
    .mult_adds = nn_mult_adds_per_position,
};

const nn_layer_kind nn_conv1d_kind = {
    .name = "Conv1d",
    .args = conv1d_args,
    .arg_count = sizeof conv1d_args / sizeof conv1d_args[0],
    .create = conv1d_create,
    .init = conv2d_init,
    .context_create = conv2d_context_create,
    .context_free = conv2d_context_free,
    .forward = conv2d_forward,
    .backward = conv2d_backward,
    .describe = conv2d_describe,
    .destroy = conv2d_destroy,
    .mult_adds = nn_mult_adds_per_position,
};
