/* InstanceNorm2d, as torch.nn.InstanceNorm2d: each channel of each
 * (C, H, W) sample normalised over its H * W positions with their mean and
 * biased variance (group_norm.c's row normalisation, a row per channel),
 * then, with affine, weight and bias per channel.
 *
 * With track_running_stats, training also moves running_mean and
 * running_var by momentum towards the batch's average of the samples' means
 * and unbiased variances, as torch does (it never counts
 * num_batches_tracked, which stays 0), and eval normalises with them. Those
 * averages span the batch: every replica sums its slice and
 * nn_mode_allreduce adds the slices, so the kind is collective; only the
 * replica with mode->update_buffers writes them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layers.h"
#include "layers/norm_rows.h"

enum { ARG_FEATURES, ARG_EPS, ARG_MOMENTUM, ARG_AFFINE, ARG_TRACK };

static const nn_arg_spec instance_norm_args[] = {
    {"num_features", NN_ARG_INT, NN_ARG_OPTIONAL, {0, 0}, NULL},
    {"eps", NN_ARG_FLOAT, 0, {1e-5, 0}, NULL},
    {"momentum", NN_ARG_FLOAT, NN_ARG_NULLABLE, {0.1, 0}, NULL}, /* null: refused with a reason */
    {"affine", NN_ARG_BOOL, 0, {0, 0}, NULL},
    {"track_running_stats", NN_ARG_BOOL, 0, {0, 0}, NULL},
};

typedef struct instance_norm_layer {
    nn_layer base;
    nn_norm_rows rows;  /* weight and bias bound at each call */
    int channels;
    double eps, momentum;
    bool affine, track;
    float *running_mean, *running_var;  /* with track */
    int64_t *batches_tracked;
    char repr[160];
} instance_norm_layer;

typedef struct instance_norm_context {
    bool fixed;             /* the last forward used the running statistics */
    float *mean, *inv_std;  /* per sample and channel */
    double *variance;       /* the same, biased */
    double *sums;           /* 2 * channels + 1 */
} instance_norm_context;

static int instance_norm_check(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    char text[64];
    nn_shape_format(in_shape, text, sizeof text);
    if (in_shape.rank != 3)
        return nn_error_set(err, NN_ERR_INPUT,
                            "InstanceNorm2d needs an input of shape (channels, height, width), got %s", text);
    if (args[ARG_FEATURES].given && (int)args[ARG_FEATURES].value[0] != in_shape.dims[0])
        return nn_error_set(err, NN_ERR_INPUT, "num_features is %d but the input %s has %d",
                            (int)args[ARG_FEATURES].value[0], text, in_shape.dims[0]);
    /* torch refuses to train on it: no variance in one value */
    if (in_shape.dims[1] * in_shape.dims[2] == 1)
        return nn_error_set(err, NN_ERR_INPUT,
                            "InstanceNorm2d needs more than 1 position per channel, got the input %s", text);
    double eps = args[ARG_EPS].value[0], momentum = args[ARG_MOMENTUM].value[0];
    if (!(eps >= 0)) return nn_error_set(err, NN_ERR_INPUT, "eps must not be negative, got %g", eps);
    /* torch takes it in the constructor only: every forward fails on it */
    if (args[ARG_MOMENTUM].is_null)
        return nn_error_set(err, NN_ERR_INPUT,
                            "momentum None is not supported by InstanceNorm2d: torch 1.13's instance_norm "
                            "fails on it; give a number between 0 and 1");
    if (!(momentum >= 0 && momentum <= 1))
        return nn_error_set(err, NN_ERR_INPUT, "momentum must be between 0 and 1, got %g", momentum);
    return 0;
}

static void instance_norm_destroy(nn_layer *base) {
    instance_norm_layer *layer = (instance_norm_layer *)base;
    free(layer->running_mean);
    free(layer->running_var);
    free(layer->batches_tracked);
    free(layer);
}

static nn_layer *instance_norm_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    if (instance_norm_check(args, in_shape, err) != 0) return NULL;
    instance_norm_layer *layer = calloc(1, sizeof *layer);
    if (!layer) {
        nn_error_oom(err, "an InstanceNorm2d layer");
        return NULL;
    }
    layer->base.in_shape = layer->base.out_shape = in_shape;
    layer->channels = in_shape.dims[0];
    layer->rows = (nn_norm_rows){layer->channels, 1, in_shape.dims[1] * in_shape.dims[2], layer->channels, NULL, NULL};
    layer->eps = args[ARG_EPS].value[0];
    layer->momentum = args[ARG_MOMENTUM].value[0];
    layer->affine = args[ARG_AFFINE].value[0] != 0;
    layer->track = args[ARG_TRACK].value[0] != 0;
    if (nn_norm_add_state(&layer->base, layer->channels, layer->affine, layer->track, &layer->running_mean,
                          &layer->running_var, &layer->batches_tracked, "InstanceNorm2d statistics", err) != 0) {
        instance_norm_destroy(&layer->base);
        return NULL;
    }
    char eps[40], momentum[40];
    nn_arg_format_python(eps, sizeof eps, &instance_norm_args[ARG_EPS], &args[ARG_EPS], false);
    nn_arg_format_python(momentum, sizeof momentum, &instance_norm_args[ARG_MOMENTUM], &args[ARG_MOMENTUM], false);
    snprintf(layer->repr, sizeof layer->repr,
             "InstanceNorm2d(%d, eps=%s, momentum=%s, affine=%s, track_running_stats=%s)", layer->channels, eps,
             momentum, layer->affine ? "True" : "False", layer->track ? "True" : "False");
    return &layer->base;
}

static void instance_norm_init(nn_layer *base, nn_rng *rng) {
    (void)rng;
    const instance_norm_layer *layer = (const instance_norm_layer *)base;
    if (!layer->affine) return;
    float *weight = base->state[0].array.data, *bias = base->state[1].array.data;
    for (int c = 0; c < layer->channels; c++) weight[c] = 1.0f, bias[c] = 0.0f;
}

static void instance_norm_context_free(void *context) {
    instance_norm_context *ctx = context;
    if (!ctx) return;
    free(ctx->mean);
    free(ctx->inv_std);
    free(ctx->variance);
    free(ctx->sums);
    free(ctx);
}

static void *instance_norm_context_create(const nn_layer *base, int max_batch, nn_error *err) {
    size_t channels = (size_t)((const instance_norm_layer *)base)->channels, rows = (size_t)max_batch * channels;
    instance_norm_context *ctx = calloc(1, sizeof *ctx);
    if (ctx) {
        ctx->mean = malloc(rows * sizeof *ctx->mean);
        ctx->inv_std = malloc(rows * sizeof *ctx->inv_std);
        ctx->variance = malloc(rows * sizeof *ctx->variance);
        ctx->sums = malloc((2 * channels + 1) * sizeof *ctx->sums);
    }
    if (!ctx || !ctx->mean || !ctx->inv_std || !ctx->variance || !ctx->sums) {
        instance_norm_context_free(ctx);
        nn_error_oom(err, "InstanceNorm2d statistics");
        return NULL;
    }
    return ctx;
}

static nn_norm_rows bound_rows(const instance_norm_layer *layer) {
    nn_norm_rows rows = layer->rows;
    if (layer->affine) rows.weight = layer->base.state[0].array.data, rows.bias = layer->base.state[1].array.data;
    return rows;
}

/* Moves the running statistics towards the whole batch's averages of the
 * samples' means and unbiased variances. */
static void instance_norm_update_running(instance_norm_layer *layer, instance_norm_context *ctx, int batch,
                                         const nn_mode *mode) {
    int channels = layer->channels;
    double *sums = ctx->sums, positions = layer->rows.positions;
    memset(sums, 0, (2 * (size_t)channels + 1) * sizeof *sums);
    for (int b = 0; b < batch; b++)
        for (int c = 0; c < channels; c++) {
            sums[c] += ctx->mean[b * channels + c];
            sums[channels + c] += ctx->variance[b * channels + c] * positions / (positions - 1);
        }
    sums[2 * channels] = batch;
    nn_mode_allreduce(mode, sums, 2 * channels + 1);
    if (!mode->update_buffers) return;
    double count = sums[2 * channels], momentum = layer->momentum;
    for (int c = 0; c < channels; c++) {
        layer->running_mean[c] = (float)((1 - momentum) * layer->running_mean[c] + momentum * sums[c] / count);
        layer->running_var[c] =
            (float)((1 - momentum) * layer->running_var[c] + momentum * sums[channels + c] / count);
    }
}

static void instance_norm_forward(nn_layer *base, void *context, float *out, const float *in, int batch,
                                  const nn_mode *mode) {
    instance_norm_layer *layer = (instance_norm_layer *)base;
    instance_norm_context *ctx = context;
    nn_norm_rows rows = bound_rows(layer);
    int channels = layer->channels;
    ctx->fixed = layer->track && !mode->training;
    if (ctx->fixed) {
        for (int b = 0; b < batch; b++)
            for (int c = 0; c < channels; c++) {
                ctx->mean[b * channels + c] = layer->running_mean[c];
                ctx->inv_std[b * channels + c] = (float)(1.0 / sqrt((double)layer->running_var[c] + layer->eps));
            }
    } else {
        nn_norm_rows_statistics(&rows, in, batch, layer->eps, ctx->mean, ctx->inv_std, ctx->variance);
        if (layer->track) instance_norm_update_running(layer, ctx, batch, mode);
    }
    nn_norm_rows_apply(&rows, out, in, batch, ctx->mean, ctx->inv_std);
}

static void instance_norm_backward(const nn_layer *base, void *context, float *din, const float *dout,
                                   const float *in, const float *out, int batch, float *grad, const nn_mode *mode) {
    (void)out;
    (void)mode;
    const instance_norm_layer *layer = (const instance_norm_layer *)base;
    instance_norm_context *ctx = context;
    nn_norm_rows rows = bound_rows(layer);
    nn_norm_rows_backward(&rows, din, grad, ctx->sums, dout, in, batch, ctx->mean, ctx->inv_std, ctx->fixed);
}

static int instance_norm_describe(const nn_layer *base, char *buffer, size_t size) {
    return snprintf(buffer, size, "%s", ((const instance_norm_layer *)base)->repr);
}

const nn_layer_kind nn_instance_norm2d_kind = {
    .name = "InstanceNorm2d",
    .collective = true, /* the running statistics' allreduce */
    .args = instance_norm_args,
    .arg_count = sizeof instance_norm_args / sizeof instance_norm_args[0],
    .create = instance_norm_create,
    .init = instance_norm_init,
    .context_create = instance_norm_context_create,
    .context_free = instance_norm_context_free,
    .forward = instance_norm_forward,
    .backward = instance_norm_backward,
    .describe = instance_norm_describe,
    .destroy = instance_norm_destroy,
    .mult_adds = nn_mult_adds_per_sample,
};
