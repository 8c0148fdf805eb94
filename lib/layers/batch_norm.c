/* BatchNorm1d and BatchNorm2d, as torch.nn. Both see a sample as
 * (channels, positions): (C,) and (C, L) for BatchNorm1d, (C, H, W) for
 * BatchNorm2d.
 *
 * Training normalises each channel with the mean and biased variance over
 * the batch and positions, and moves the running statistics towards them by
 * momentum (momentum None: by 1 / num_batches_tracked, their cumulative
 * average), using the unbiased variance for running_var as torch does. Eval
 * normalises with the running statistics; with track_running_stats=False
 * there are none (nor their state entries) and eval uses the batch's, as
 * training does. affine=False: no weight and bias (nor their entries).
 *
 * The batch may be split across replicas, each running forward and backward
 * on its slice with its own context: the statistics are still the whole
 * batch's, as in torch. Each replica sums its slice per channel and
 * nn_mode_allreduce adds the replicas' sums (and their value counts), once
 * for the means, once for the centred squares (two passes, for accuracy),
 * and in backward once for the sums of dout and dout * xhat that din needs.
 * With one replica (no allreduce) the sums are the replica's own and the
 * arithmetic is that of an unsplit batch. The reductions are collective:
 * every replica of the batch, one with an empty slice too, calls forward
 * and backward, all with din or all without it (backward without din, and
 * anything normalised with the running statistics, reduces nothing). Only
 * the replica with mode->update_buffers moves the running statistics. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers/conv_util.h"
#include "layers/layers.h"
#include "layers/norm_rows.h"

enum { ARG_FEATURES, ARG_EPS, ARG_MOMENTUM, ARG_AFFINE, ARG_TRACK };

static const nn_arg_spec batch_norm_args[] = {
    {"num_features", NN_ARG_INT, NN_ARG_OPTIONAL, {0, 0}, NULL},
    {"eps", NN_ARG_FLOAT, 0, {1e-5, 0}, NULL},
    {"momentum", NN_ARG_FLOAT, NN_ARG_NULLABLE, {0.1, 0}, NULL},
    {"affine", NN_ARG_BOOL, 0, {1, 0}, NULL},
    {"track_running_stats", NN_ARG_BOOL, 0, {1, 0}, NULL},
};

typedef struct batch_norm_layer {
    nn_layer base;
    int channels;
    int positions;          /* values per channel in one sample: 1, L or H*W */
    double eps, momentum;
    bool cumulative;        /* momentum None */
    bool affine, track;
    float *running_mean, *running_var;
    int64_t *batches_tracked;
    char repr[160];
} batch_norm_layer;

/* A replica's: what its last forward used, for backward. */
typedef struct batch_norm_context {
    bool batch_statistics;  /* the last forward used the batch's (else the running ones) */
    double count;           /* values per channel in the whole batch (every replica's slice) */
    float *mean, *inv_std;  /* per channel */
    double *sums;           /* 2 * channels + 1 of scratch for the reductions */
} batch_norm_context;

static int batch_norm_check_input(bool two_d, nn_shape in_shape, nn_error *err) {
    if (two_d ? in_shape.rank == 3 : in_shape.rank == 1 || in_shape.rank == 2) return 0;
    char text[64];
    nn_shape_format(in_shape, text, sizeof text);
    if (two_d)
        return nn_error_set(err, NN_ERR_INPUT,
                            "BatchNorm2d needs an input of shape (channels, height, width), got %s: "
                            "use BatchNorm1d for flat features",
                            text);
    return nn_error_set(err, NN_ERR_INPUT,
                        "BatchNorm1d needs an input of shape (features,) or (channels, length), got %s: "
                        "use BatchNorm2d for images",
                        text);
}

static int batch_norm_read_args(batch_norm_layer *layer, const nn_arg_value *args, nn_shape in_shape,
                                nn_error *err) {
    layer->channels = in_shape.dims[0];
    layer->positions = (int)(nn_shape_size(in_shape) / (size_t)in_shape.dims[0]);
    if (args[ARG_FEATURES].given && (int)args[ARG_FEATURES].value[0] != layer->channels) {
        char text[64];
        nn_shape_format(in_shape, text, sizeof text);
        return nn_error_set(err, NN_ERR_INPUT, "num_features is %d but the input %s has %d",
                            (int)args[ARG_FEATURES].value[0], text, layer->channels);
    }
    layer->eps = args[ARG_EPS].value[0];
    layer->momentum = args[ARG_MOMENTUM].value[0];
    layer->cumulative = args[ARG_MOMENTUM].is_null;
    layer->affine = args[ARG_AFFINE].value[0] != 0;
    layer->track = args[ARG_TRACK].value[0] != 0;
    if (!(layer->eps >= 0))
        return nn_error_set(err, NN_ERR_INPUT, "eps must not be negative, got %g", layer->eps);
    if (!layer->cumulative && !(layer->momentum >= 0 && layer->momentum <= 1))
        return nn_error_set(err, NN_ERR_INPUT, "momentum must be between 0 and 1, got %g", layer->momentum);
    return 0;
}

/* "BatchNorm2d(32, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)" */
static void batch_norm_format_repr(batch_norm_layer *layer, const char *name, const nn_arg_value *args) {
    char eps[40], momentum[40];
    nn_arg_format_python(eps, sizeof eps, &batch_norm_args[ARG_EPS], &args[ARG_EPS], false);
    nn_arg_format_python(momentum, sizeof momentum, &batch_norm_args[ARG_MOMENTUM], &args[ARG_MOMENTUM], false);
    snprintf(layer->repr, sizeof layer->repr, "%s(%d, eps=%s, momentum=%s, affine=%s, track_running_stats=%s)",
             name, layer->channels, eps, momentum, layer->affine ? "True" : "False", layer->track ? "True" : "False");
}

static void batch_norm_destroy(nn_layer *base) {
    batch_norm_layer *layer = (batch_norm_layer *)base;
    free(layer->running_mean);
    free(layer->running_var);
    free(layer->batches_tracked);
    free(layer);
}

static nn_layer *batch_norm_create(const nn_arg_value *args, nn_shape in_shape, bool two_d, nn_error *err) {
    const char *name = two_d ? "BatchNorm2d" : "BatchNorm1d";
    if (batch_norm_check_input(two_d, in_shape, err) != 0) return NULL;
    batch_norm_layer *layer = calloc(1, sizeof *layer);
    if (!layer) {
        nn_error_oom(err, name);
        return NULL;
    }
    layer->base.in_shape = in_shape;
    layer->base.out_shape = in_shape;
    /* The state entries in torch's state_dict order. */
    if (batch_norm_read_args(layer, args, in_shape, err) != 0 ||
        nn_norm_add_state(&layer->base, layer->channels, layer->affine, layer->track, &layer->running_mean,
                          &layer->running_var, &layer->batches_tracked, "BatchNorm statistics", err) != 0) {
        batch_norm_destroy(&layer->base);
        return NULL;
    }
    /* One value per channel per sample: a batch of one has no variance to
     * normalise by; torch refuses it in training, and so does the trainer. */
    layer->base.min_train_batch = layer->positions == 1 ? 2 : 1;
    batch_norm_format_repr(layer, name, args);
    return &layer->base;
}

static nn_layer *batch_norm1d_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    return batch_norm_create(args, in_shape, false, err);
}

static nn_layer *batch_norm2d_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    return batch_norm_create(args, in_shape, true, err);
}

/* Trainable entries come first: weight and bias are states 0 and 1 when affine. */
static float *batch_norm_weight(const batch_norm_layer *layer) {
    return layer->affine ? layer->base.state[0].array.data : NULL;
}

static float *batch_norm_bias(const batch_norm_layer *layer) {
    return layer->affine ? layer->base.state[1].array.data : NULL;
}

static void batch_norm_init(nn_layer *base, nn_rng *rng) {
    (void)rng;
    batch_norm_layer *layer = (batch_norm_layer *)base;
    if (!layer->affine) return;
    float *weight = batch_norm_weight(layer), *bias = batch_norm_bias(layer);
    for (int c = 0; c < layer->channels; c++) {
        weight[c] = 1.0f;
        bias[c] = 0.0f;
    }
}

static void batch_norm_context_free(void *context) {
    batch_norm_context *ctx = context;
    if (!ctx) return;
    free(ctx->mean);
    free(ctx->inv_std);
    free(ctx->sums);
    free(ctx);
}

/* The statistics are per channel: the context does not grow with the batch. */
static void *batch_norm_context_create(const nn_layer *base, int max_batch, nn_error *err) {
    (void)max_batch;
    size_t channels = (size_t)((const batch_norm_layer *)base)->channels;
    batch_norm_context *ctx = calloc(1, sizeof *ctx);
    if (ctx) {
        ctx->mean = calloc(channels, sizeof *ctx->mean);
        ctx->inv_std = calloc(channels, sizeof *ctx->inv_std);
        ctx->sums = calloc(2 * channels + 1, sizeof *ctx->sums);
    }
    if (!ctx || !ctx->mean || !ctx->inv_std || !ctx->sums) {
        batch_norm_context_free(ctx);
        nn_error_oom(err, "BatchNorm statistics");
        return NULL;
    }
    return ctx;
}

/* sums[c] = this slice's sum over samples and positions of x or, when shift
 * is not NULL, of (x - shift[c])^2. */
static void batch_norm_reduce(const batch_norm_layer *layer, double *sums, const float *x, const float *shift,
                              int batch) {
    int channels = layer->channels, positions = layer->positions;
    memset(sums, 0, (size_t)channels * sizeof *sums);
    if (positions == 1) { /* flat features: vectorise across channels instead */
        for (int b = 0; b < batch; b++)
            for (int c = 0; c < channels; c++) {
                float value = x[(size_t)b * channels + c] - (shift ? shift[c] : 0.0f);
                sums[c] += shift ? (double)value * value : value;
            }
        return;
    }
    for (int b = 0; b < batch; b++)
        for (int c = 0; c < channels; c++) {
            const float *row = x + ((size_t)b * channels + c) * positions;
            sums[c] += shift ? nn_sum_centered_squares(row, shift[c], positions) : sum_floats(row, positions);
        }
}

/* The whole batch's statistics into the context's mean and inv_std (every
 * replica of the batch computes the same) and, if this replica updates the
 * buffers, the running ones moved towards them. */
static void batch_norm_batch_statistics(batch_norm_layer *layer, batch_norm_context *ctx, const float *in,
                                        int batch, const nn_mode *mode) {
    int channels = layer->channels;
    double *sums = ctx->sums;
    /* The channels' sums and, after them, the slice's count of values per
     * channel, reduced together: the count is the batch's too. */
    batch_norm_reduce(layer, sums, in, NULL, batch);
    sums[channels] = (double)batch * layer->positions;
    nn_mode_allreduce(mode, sums, channels + 1);
    double count = sums[channels];
    ctx->count = count;
    for (int c = 0; c < channels; c++) ctx->mean[c] = (float)(sums[c] / count);
    batch_norm_reduce(layer, sums, in, ctx->mean, batch);
    nn_mode_allreduce(mode, sums, channels);
    bool update = mode->update_buffers && layer->track;
    if (update) *layer->batches_tracked += 1;
    float momentum = layer->cumulative && update ? 1.0f / (float)*layer->batches_tracked : (float)layer->momentum;
    for (int c = 0; c < channels; c++) {
        double variance = sums[c] / count;
        ctx->inv_std[c] = (float)(1.0 / sqrt(variance + layer->eps));
        if (!update) continue;
        layer->running_mean[c] = (1 - momentum) * layer->running_mean[c] + momentum * ctx->mean[c];
        /* One value per channel has no unbiased variance (torch refuses to
         * train on it): leave running_var as it is. */
        if (count > 1)
            layer->running_var[c] =
                (1 - momentum) * layer->running_var[c] + momentum * (float)(variance * count / (count - 1));
    }
}

static void batch_norm_forward(nn_layer *base, void *context, float *out, const float *in, int batch,
                               const nn_mode *mode) {
    batch_norm_layer *layer = (batch_norm_layer *)base;
    batch_norm_context *ctx = context;
    int channels = layer->channels, positions = layer->positions;
    ctx->batch_statistics = mode->training || !layer->track;
    if (ctx->batch_statistics) {
        batch_norm_batch_statistics(layer, ctx, in, batch, mode);
    } else {
        ctx->count = (double)batch * positions;
        for (int c = 0; c < channels; c++) {
            ctx->mean[c] = layer->running_mean[c];
            ctx->inv_std[c] = (float)(1.0 / sqrt((double)layer->running_var[c] + layer->eps));
        }
    }
    const float *weight = batch_norm_weight(layer), *bias = batch_norm_bias(layer);
    for (int b = 0; b < batch; b++)
        for (int c = 0; c < channels; c++) {
            size_t offset = ((size_t)b * channels + c) * positions;
            float scale = (weight ? weight[c] : 1.0f) * ctx->inv_std[c];
            float shift = (bias ? bias[c] : 0.0f) - ctx->mean[c] * scale;
            for (int p = 0; p < positions; p++) out[offset + p] = in[offset + p] * scale + shift;
        }
}

/* This slice's sums per channel: sums[c] = sum dout * xhat (dweight) and
 * sums[channels + c] = sum dout (dbias), with xhat = (x - mean) * inv_std;
 * the order of the gradients in the flat buffer. */
static void batch_norm_parameter_sums(const batch_norm_layer *layer, const batch_norm_context *ctx,
                                      double *sums, const float *dout, const float *in, int batch) {
    int channels = layer->channels, positions = layer->positions;
    double *dot = sums, *total = sums + channels;
    memset(sums, 0, 2 * (size_t)channels * sizeof *sums);
    for (int b = 0; b < batch; b++)
        for (int c = 0; c < channels; c++) {
            size_t offset = ((size_t)b * channels + c) * positions;
            if (positions == 1) { /* flat features: skip the lanes' overhead */
                total[c] += dout[offset];
                dot[c] += (double)dout[offset] * (in[offset] - ctx->mean[c]) * ctx->inv_std[c];
                continue;
            }
            total[c] += sum_floats(dout + offset, positions);
            dot[c] += nn_sum_centered_dot(dout + offset, in + offset, ctx->mean[c], positions) * ctx->inv_std[c];
        }
}

static void batch_norm_backward(const nn_layer *base, void *context, float *din, const float *dout,
                                const float *in, const float *out, int batch, float *grad, const nn_mode *mode) {
    (void)out;
    const batch_norm_layer *layer = (const batch_norm_layer *)base;
    batch_norm_context *ctx = context;
    int channels = layer->channels, positions = layer->positions;
    double *sums = ctx->sums;
    batch_norm_parameter_sums(layer, ctx, sums, dout, in, batch);
    /* This replica's share of dweight and dbias: the replicas' are summed
     * after backward. */
    if (layer->affine)
        for (int c = 0; c < 2 * channels; c++) grad[c] = (float)sums[c];
    if (!din) return;
    /* With the batch's statistics the mean and variance depend on every
     * input of the channel, in every replica's slice:
     * din = weight * inv_std * (dout - mean(dout) - xhat * mean(dout * xhat)),
     * the means over the whole batch. The running ones are constants:
     * din = weight * inv_std * dout. */
    bool batch_statistics = ctx->batch_statistics;
    if (batch_statistics) nn_mode_allreduce(mode, sums, 2 * channels);
    const float *weight = batch_norm_weight(layer);
    float count = (float)ctx->count;
    for (int b = 0; b < batch; b++)
        for (int c = 0; c < channels; c++) {
            size_t offset = ((size_t)b * channels + c) * positions;
            float scale = (weight ? weight[c] : 1.0f) * ctx->inv_std[c], mean = ctx->mean[c], inv_std = ctx->inv_std[c];
            float dout_mean = batch_statistics ? (float)sums[channels + c] / count : 0.0f;
            float dot_mean = batch_statistics ? (float)sums[c] / count : 0.0f;
            for (int p = 0; p < positions; p++) {
                float xhat = (in[offset + p] - mean) * inv_std;
                din[offset + p] = scale * (dout[offset + p] - dout_mean - xhat * dot_mean);
            }
        }
}

static int batch_norm_describe(const nn_layer *base, char *buffer, size_t size) {
    return snprintf(buffer, size, "%s", ((const batch_norm_layer *)base)->repr);
}

const nn_layer_kind nn_batch_norm1d_kind = {
    .name = "BatchNorm1d",
    .collective = true,
    .args = batch_norm_args,
    .arg_count = sizeof batch_norm_args / sizeof batch_norm_args[0],
    .create = batch_norm1d_create,
    .init = batch_norm_init,
    .context_create = batch_norm_context_create,
    .context_free = batch_norm_context_free,
    .forward = batch_norm_forward,
    .backward = batch_norm_backward,
    .describe = batch_norm_describe,
    .destroy = batch_norm_destroy,
    .mult_adds = nn_mult_adds_per_sample,
};

const nn_layer_kind nn_batch_norm2d_kind = {
    .name = "BatchNorm2d",
    .collective = true,
    .args = batch_norm_args,
    .arg_count = sizeof batch_norm_args / sizeof batch_norm_args[0],
    .create = batch_norm2d_create,
    .init = batch_norm_init,
    .context_create = batch_norm_context_create,
    .context_free = batch_norm_context_free,
    .forward = batch_norm_forward,
    .backward = batch_norm_backward,
    .describe = batch_norm_describe,
    .destroy = batch_norm_destroy,
    .mult_adds = nn_mult_adds_per_sample,
};
