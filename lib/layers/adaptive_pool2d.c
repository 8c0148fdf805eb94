/* AdaptiveAvgPool2d and AdaptiveMaxPool2d, as torch.nn 1.13: the output
 * size is given and the windows follow from it, row i covering input rows
 * [floor(i H / out), ceil((i + 1) H / out)) (neighbouring windows may
 * overlap; an output larger than the input repeats rows).
 *
 * Max keeps, per output value, the index of its maximum in its input plane
 * in the replica's context (int32_t per output of max_batch samples). */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers/conv_util.h"
#include "layers/layers.h"

enum { ARG_OUTPUT_SIZE, ARG_RETURN_INDICES };

static const nn_arg_spec adaptive_avg_args[] = {
    {"output_size", NN_ARG_INT_PAIR, NN_ARG_REQUIRED, {0, 0}, NULL},
};

static const nn_arg_spec adaptive_max_args[] = {
    {"output_size", NN_ARG_INT_PAIR, NN_ARG_REQUIRED, {0, 0}, NULL},
    {"return_indices", NN_ARG_BOOL, 0, {0, 0}, NULL},
};

typedef struct adaptive_layer {
    nn_layer base;
    int channels, height, width, out_height, out_width;
    bool is_max;
    char repr[96];
} adaptive_layer;

/* Output position i's window [*start, *end) over size inputs, torch's rule. */
static void adaptive_window(int *start, int *end, int i, int out, int size) {
    *start = (int)((long long)i * size / out);
    *end = (int)(((long long)(i + 1) * size + out - 1) / out);
}

static nn_layer *adaptive_create(const nn_arg_value *args, nn_shape in_shape, bool is_max, nn_error *err) {
    const char *name = is_max ? "AdaptiveMaxPool2d" : "AdaptiveAvgPool2d";
    if (conv_check_image_input(name, in_shape, err) != 0) return NULL;
    if (is_max && args[ARG_RETURN_INDICES].value[0] != 0) {
        nn_error_set(err, NN_ERR_INPUT,
                     "return_indices=True is not supported: %s would return (output, indices), and a layer of "
                     "the model passes on one tensor",
                     name);
        return NULL;
    }
    int size[2];
    conv_pair(&args[ARG_OUTPUT_SIZE], size);
    if (size[0] < 1 || size[1] < 1) {
        nn_error_set(err, NN_ERR_INPUT, "output_size must be at least 1, got (%d, %d)", size[0], size[1]);
        return NULL;
    }
    /* torch allows an output larger than the input; only its size is bounded */
    if ((double)size[0] * size[1] * in_shape.dims[0] > INT_MAX) {
        nn_error_set(err, NN_ERR_INPUT, "output_size (%d, %d) is too large: %d x %d x %d values, more than %d",
                     size[0], size[1], in_shape.dims[0], size[0], size[1], INT_MAX);
        return NULL;
    }
    adaptive_layer *layer = calloc(1, sizeof *layer);
    if (!layer) {
        nn_error_oom(err, name);
        return NULL;
    }
    layer->channels = in_shape.dims[0];
    layer->height = in_shape.dims[1];
    layer->width = in_shape.dims[2];
    layer->out_height = size[0];
    layer->out_width = size[1];
    layer->is_max = is_max;
    layer->base.in_shape = in_shape;
    layer->base.out_shape = (nn_shape){3, {layer->channels, size[0], size[1]}};
    char text[48];
    nn_arg_format_python(text, sizeof text, &adaptive_avg_args[ARG_OUTPUT_SIZE], &args[ARG_OUTPUT_SIZE], false);
    snprintf(layer->repr, sizeof layer->repr, "%s(output_size=%s)", name, text);
    return &layer->base;
}

static nn_layer *adaptive_avg_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    return adaptive_create(args, in_shape, false, err);
}

static nn_layer *adaptive_max_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    return adaptive_create(args, in_shape, true, err);
}

static void *adaptive_max_context_create(const nn_layer *base, int max_batch, nn_error *err) {
    if (max_batch < 1) max_batch = 1;
    int32_t *argmax = malloc((size_t)max_batch * nn_shape_size(base->out_shape) * sizeof *argmax);
    if (!argmax) nn_error_oom(err, "the AdaptiveMaxPool2d argmax cache");
    return argmax;
}

static void adaptive_max_context_free(void *context) { free(context); }

/* Forward of one plane: out and, for max, argmax. Max takes the first
 * maximum, or the last NaN so that NaN propagates, as torch. */
static void adaptive_plane_forward(const adaptive_layer *layer, float *out, int32_t *argmax, const float *in) {
    int width = layer->width;
    for (int oh = 0; oh < layer->out_height; oh++) {
        int h0, h1;
        adaptive_window(&h0, &h1, oh, layer->out_height, layer->height);
        for (int ow = 0; ow < layer->out_width; ow++) {
            int w0, w1;
            adaptive_window(&w0, &w1, ow, layer->out_width, width);
            int k = oh * layer->out_width + ow;
            if (layer->is_max) {
                float best = -INFINITY;
                int32_t best_index = h0 * width + w0;
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++) {
                        float value = in[h * width + w];
                        /* a select, not a branch: "greater" is a coin toss on real data */
                        int take = value > best || value != value;
                        best_index = take ? h * width + w : best_index;
                        best = take ? value : best;
                    }
                out[k] = best;
                argmax[k] = best_index;
                continue;
            }
            float sum = 0;
            for (int h = h0; h < h1; h++)
                for (int w = w0; w < w1; w++) sum += in[h * width + w];
            out[k] = sum / ((float)(h1 - h0) * (float)(w1 - w0));
        }
    }
}

static void adaptive_avg_plane_backward(const adaptive_layer *layer, float *din, const float *dout) {
    for (int oh = 0; oh < layer->out_height; oh++) {
        int h0, h1;
        adaptive_window(&h0, &h1, oh, layer->out_height, layer->height);
        for (int ow = 0; ow < layer->out_width; ow++) {
            int w0, w1;
            adaptive_window(&w0, &w1, ow, layer->out_width, layer->width);
            float share = dout[oh * layer->out_width + ow] / ((float)(h1 - h0) * (float)(w1 - w0));
            for (int h = h0; h < h1; h++)
                for (int w = w0; w < w1; w++) din[h * layer->width + w] += share;
        }
    }
}

static void adaptive_forward(nn_layer *base, void *context, float *out, const float *in, int batch,
                             const nn_mode *mode) {
    (void)mode;
    const adaptive_layer *layer = (const adaptive_layer *)base;
    int32_t *argmax = context; /* max only */
    size_t in_plane = (size_t)layer->height * layer->width, out_plane = (size_t)layer->out_height * layer->out_width;
    size_t planes = (size_t)batch * layer->channels;
    for (size_t p = 0; p < planes; p++)
        adaptive_plane_forward(layer, out + p * out_plane, argmax ? argmax + p * out_plane : NULL, in + p * in_plane);
}

static void adaptive_backward(const nn_layer *base, void *context, float *din, const float *dout, const float *in,
                              const float *out, int batch, float *grad, const nn_mode *mode) {
    (void)in;
    (void)out;
    (void)grad;
    (void)mode;
    const adaptive_layer *layer = (const adaptive_layer *)base;
    const int32_t *argmax = context; /* max only */
    if (!din) return;
    size_t in_plane = (size_t)layer->height * layer->width, out_plane = (size_t)layer->out_height * layer->out_width;
    size_t planes = (size_t)batch * layer->channels;
    memset(din, 0, planes * in_plane * sizeof *din);
    for (size_t p = 0; p < planes; p++) {
        if (!layer->is_max) {
            adaptive_avg_plane_backward(layer, din + p * in_plane, dout + p * out_plane);
            continue;
        }
        for (size_t k = 0; k < out_plane; k++) din[p * in_plane + argmax[p * out_plane + k]] += dout[p * out_plane + k];
    }
}

static int adaptive_describe(const nn_layer *base, char *buffer, size_t size) {
    return snprintf(buffer, size, "%s", ((const adaptive_layer *)base)->repr);
}

static void adaptive_destroy(nn_layer *base) { free(base); }

const nn_layer_kind nn_adaptive_avg_pool2d_kind = {
    .name = "AdaptiveAvgPool2d",
    .args = adaptive_avg_args,
    .arg_count = sizeof adaptive_avg_args / sizeof adaptive_avg_args[0],
    .create = adaptive_avg_create,
    .forward = adaptive_forward,
    .backward = adaptive_backward,
    .describe = adaptive_describe,
    .destroy = adaptive_destroy,
};

const nn_layer_kind nn_adaptive_max_pool2d_kind = {
    .name = "AdaptiveMaxPool2d",
    .args = adaptive_max_args,
    .arg_count = sizeof adaptive_max_args / sizeof adaptive_max_args[0],
    .create = adaptive_max_create,
    .context_create = adaptive_max_context_create,
    .context_free = adaptive_max_context_free,
    .forward = adaptive_forward,
    .backward = adaptive_backward,
    .describe = adaptive_describe,
    .destroy = adaptive_destroy,
};
