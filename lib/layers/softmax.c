/* Softmax and LogSoftmax along one axis, as torch.nn. dim counts the batch
 * as dim 0, as torch does, so dim=1 is the first per-sample axis: the
 * features of a flat input, the channels at each pixel of an image.
 *
 * dim left out or null is torch's dim=None: torch then picks the axis from
 * the batched input's rank (_get_softmax_dim: 0 for 0-, 1- and 3-d inputs,
 * else 1). With the batch that is dim 1 for flat samples and for (C, H, W),
 * and dim 0, the batch, for (C, L) samples: refused, since one sample's
 * output would depend on the others in its batch.
 *
 * The batch seen as a 3-d array (groups, length, inner): length is the size
 * of the reduced axis, inner the product of the axes after it, groups the
 * batch times the axes before it. Both kinds subtract each slice's maximum
 * before exponentiating, so large inputs neither overflow nor give NaN.
 * Backward needs only the output, so nothing is kept between forward and
 * backward (no context). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "layers/layers.h"

static const nn_arg_spec softmax_args[] = {
    {"dim", NN_ARG_INT, NN_ARG_OPTIONAL | NN_ARG_NULLABLE, {0, 0}, NULL},
};

typedef struct softmax_layer {
    nn_layer base;
    bool log;
    bool implicit;            /* dim=None: torch's implicit dim */
    int dim;                  /* as given, for describe */
    size_t outer;             /* per sample: product of the axes before dim */
    size_t length;            /* the size of the axis reduced over */
    size_t inner;             /* product of the axes after dim */
} softmax_layer;

/* Maps a torch dim (batch = dim 0, negative from the end) to a per-sample
 * axis, or returns -1 with err naming the dim and the shape. */
static int resolve_axis(const char *name, int dim, nn_shape in_shape, nn_error *err) {
    int batched_rank = in_shape.rank + 1;
    int normalized = dim < 0 ? dim + batched_rank : dim;
    if (normalized >= 1 && normalized < batched_rank) return normalized - 1;
    char shape[64];
    nn_shape_format(in_shape, shape, sizeof shape);
    const char *why = normalized == 0 ? "is the batch dimension and would mix the samples of a batch"
                                      : "is out of range";
    nn_error_set(err, NN_ERR_INPUT,
                 "%s dim=%d %s: dims count the batch as dim 0, so for samples of shape %s "
                 "dim must be 1 to %d or -%d to -1",
                 name, dim, why, shape, in_shape.rank, in_shape.rank);
    return -1;
}

static nn_layer *softmax_create_common(const nn_arg_value *args, nn_shape in_shape, bool log,
                                       nn_error *err) {
    const char *name = log ? "LogSoftmax" : "Softmax";
    bool implicit = !args[0].given || args[0].is_null;
    int dim = (int)args[0].value[0];
    if (implicit && in_shape.rank == 2) {
        char shape[64];
        nn_shape_format(in_shape, shape, sizeof shape);
        nn_error_set(err, NN_ERR_INPUT,
                     "%s(dim=None) on samples of shape %s would normalise across the batch: torch's "
                     "implicit dim for a 3-d input (batch, C, L) is 0; give dim explicitly (1 to 2, or "
                     "-2 to -1)", name, shape);
        return NULL;
    }
    if (implicit) dim = 1;
    int axis = resolve_axis(name, dim, in_shape, err);
    if (axis < 0) return NULL;
    softmax_layer *layer = calloc(1, sizeof *layer);
    if (!layer) {
        nn_error_oom(err, log ? "a LogSoftmax layer" : "a Softmax layer");
        return NULL;
    }
    layer->base.in_shape = in_shape;
    layer->base.out_shape = in_shape;
    layer->log = log;
    layer->implicit = implicit;
    layer->dim = dim;
    layer->outer = 1;
    layer->inner = 1;
    for (int i = 0; i < axis; i++) layer->outer *= (size_t)in_shape.dims[i];
    layer->length = (size_t)in_shape.dims[axis];
    for (int i = axis + 1; i < in_shape.rank; i++) layer->inner *= (size_t)in_shape.dims[i];
    return &layer->base;
}

static nn_layer *softmax_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    return softmax_create_common(args, in_shape, false, err);
}

static nn_layer *log_softmax_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    return softmax_create_common(args, in_shape, true, err);
}

static void softmax_forward(nn_layer *base, void *context, float *out, const float *in, int batch,
                            const nn_mode *mode) {
    (void)context;
    (void)mode;
    const softmax_layer *layer = (const softmax_layer *)base;
    size_t groups = (size_t)batch * layer->outer, length = layer->length, inner = layer->inner;
    for (size_t g = 0; g < groups; g++) {
        const float *x = in + g * length * inner;
        float *y = out + g * length * inner;
        for (size_t j = 0; j < inner; j++) {
            float max = x[j];
            for (size_t k = 1; k < length; k++) max = fmaxf(max, x[k * inner + j]);
            float sum = 0;
            for (size_t k = 0; k < length; k++) {
                float e = expf(x[k * inner + j] - max);
                y[k * inner + j] = e;
                sum += e;
            }
            if (layer->log) {
                /* (x - max) - log(sum), not x - (max + log(sum)): the sum
                 * of a large max and a small log would round the log away. */
                float log_sum = logf(sum);
                for (size_t k = 0; k < length; k++) y[k * inner + j] = (x[k * inner + j] - max) - log_sum;
            } else {
                float scale = 1.0f / sum;
                for (size_t k = 0; k < length; k++) y[k * inner + j] *= scale;
            }
        }
    }
}

/* Softmax:    din_k = y_k (dout_k - sum_i dout_i y_i).
 * LogSoftmax: din_k = dout_k - exp(y_k) sum_i dout_i. */
static void softmax_backward(const nn_layer *base, void *context, float *din, const float *dout,
                             const float *in, const float *out, int batch, float *grad, const nn_mode *mode) {
    (void)context;
    (void)in;
    (void)grad;
    (void)mode;
    if (!din) return;
    const softmax_layer *layer = (const softmax_layer *)base;
    size_t groups = (size_t)batch * layer->outer, length = layer->length, inner = layer->inner;
    for (size_t g = 0; g < groups; g++) {
        size_t offset = g * length * inner;
        const float *y = out + offset, *dy = dout + offset;
        float *dx = din + offset;
        for (size_t j = 0; j < inner; j++) {
            float total = 0;
            if (layer->log) {
                for (size_t k = 0; k < length; k++) total += dy[k * inner + j];
                for (size_t k = 0; k < length; k++)
                    dx[k * inner + j] = dy[k * inner + j] - expf(y[k * inner + j]) * total;
            } else {
                for (size_t k = 0; k < length; k++) total += dy[k * inner + j] * y[k * inner + j];
                for (size_t k = 0; k < length; k++)
                    dx[k * inner + j] = y[k * inner + j] * (dy[k * inner + j] - total);
            }
        }
    }
}

static int softmax_describe(const nn_layer *base, char *buffer, size_t size) {
    const softmax_layer *layer = (const softmax_layer *)base;
    const char *name = layer->log ? "LogSoftmax" : "Softmax";
    if (layer->implicit) return snprintf(buffer, size, "%s(dim=None)", name);
    return snprintf(buffer, size, "%s(dim=%d)", name, layer->dim);
}

static void softmax_destroy(nn_layer *base) { free(base); }

const nn_layer_kind nn_softmax_kind = {
    .name = "Softmax",
    .args = softmax_args,
    .arg_count = sizeof softmax_args / sizeof softmax_args[0],
    .create = softmax_create,
    .forward = softmax_forward,
    .backward = softmax_backward,
    .describe = softmax_describe,
    .destroy = softmax_destroy,
};

const nn_layer_kind nn_log_softmax_kind = {
    .name = "LogSoftmax",
    .args = softmax_args,
    .arg_count = sizeof softmax_args / sizeof softmax_args[0],
    .create = log_softmax_create,
    .forward = softmax_forward,
    .backward = softmax_backward,
    .describe = softmax_describe,
    .destroy = softmax_destroy,
};
