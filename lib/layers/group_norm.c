/* GroupNorm, as torch.nn.GroupNorm: each sample's channels split into
 * num_groups groups, each normalised over its channels and positions with
 * its own mean and biased variance, then weight and bias per channel. On
 * (C,), (C, L) and (C, H, W).
 * The statistics are per sample (norm_rows.h), so a batch split across
 * replicas needs no reduction. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers/conv_util.h"
#include "layers/layers.h"
#include "layers/norm_rows.h"

/* --- GroupNorm ----------------------------------------------------------------- */

enum { ARG_GROUPS, ARG_CHANNELS, ARG_EPS, ARG_AFFINE };

static const nn_arg_spec group_norm_args[] = {
    {"num_groups", NN_ARG_INT, NN_ARG_REQUIRED, {0, 0}, NULL},
    {"num_channels", NN_ARG_INT, NN_ARG_OPTIONAL, {0, 0}, NULL},
    {"eps", NN_ARG_FLOAT, 0, {1e-5, 0}, NULL},
    {"affine", NN_ARG_BOOL, 0, {1, 0}, NULL},
};

typedef struct group_norm_layer {
    nn_layer base;
    nn_norm_rows rows;  /* weight and bias bound at each call */
    double eps;
    bool affine;
    char repr[128];
} group_norm_layer;

/* A replica's: the statistics of its last forward, per row. */
typedef struct group_norm_context {
    float *mean, *inv_std;
    double *sums;       /* the parameter gradients' */
} group_norm_context;

static nn_layer *group_norm_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    int channels = in_shape.dims[0], groups = (int)args[ARG_GROUPS].value[0];
    char text[64];
    nn_shape_format(in_shape, text, sizeof text);
    if (args[ARG_CHANNELS].given && (int)args[ARG_CHANNELS].value[0] != channels) {
        nn_error_set(err, NN_ERR_INPUT, "num_channels is %d but the input %s has %d",
                     (int)args[ARG_CHANNELS].value[0], text, channels);
        return NULL;
    }
    if (groups < 1 || channels % groups != 0) {
        nn_error_set(err, NN_ERR_INPUT, "num_groups %d does not divide the %d channels of the input %s", groups,
                     channels, text);
        return NULL;
    }
    double eps = args[ARG_EPS].value[0];
    if (!(eps >= 0)) {
        nn_error_set(err, NN_ERR_INPUT, "eps must not be negative, got %g", eps);
        return NULL;
    }
    group_norm_layer *layer = calloc(1, sizeof *layer);
    if (!layer) {
        nn_error_oom(err, "a GroupNorm layer");
        return NULL;
    }
    layer->base.in_shape = layer->base.out_shape = in_shape;
    int positions = (int)(nn_shape_size(in_shape) / (size_t)channels);
    layer->rows = (nn_norm_rows){groups, channels / groups, positions, groups, NULL, NULL};
    layer->eps = eps;
    layer->affine = args[ARG_AFFINE].value[0] != 0;
    if (layer->affine) {
        int64_t dims[1] = {channels};
        nn_layer_add_state(&layer->base, "weight", true, NN_F32, 1, dims, NULL);
        nn_layer_add_state(&layer->base, "bias", true, NN_F32, 1, dims, NULL);
    }
    char eps_text[40];
    nn_arg_format_python(eps_text, sizeof eps_text, &group_norm_args[ARG_EPS], &args[ARG_EPS], false);
    snprintf(layer->repr, sizeof layer->repr, "GroupNorm(%d, %d, eps=%s, affine=%s)", groups, channels, eps_text,
             layer->affine ? "True" : "False");
    return &layer->base;
}

/* torch's: weight 1, bias 0. */
static void group_norm_init(nn_layer *base, nn_rng *rng) {
    (void)rng;
    if (base->state_count == 0) return;
    float *weight = base->state[0].array.data, *bias = base->state[1].array.data;
    size_t count = nn_array_count(&base->state[0].array);
    for (size_t i = 0; i < count; i++) weight[i] = 1.0f, bias[i] = 0.0f;
}

static void group_norm_context_free(void *context) {
    group_norm_context *ctx = context;
    if (!ctx) return;
    free(ctx->mean);
    free(ctx->inv_std);
    free(ctx->sums);
    free(ctx);
}

static void *group_norm_context_create(const nn_layer *base, int max_batch, nn_error *err) {
    const nn_norm_rows *rows = &((const group_norm_layer *)base)->rows;
    size_t row_count = (size_t)max_batch * rows->rows_per_sample;
    group_norm_context *ctx = calloc(1, sizeof *ctx);
    if (ctx) {
        ctx->mean = malloc(row_count * sizeof *ctx->mean);
        ctx->inv_std = malloc(row_count * sizeof *ctx->inv_std);
        ctx->sums = malloc(2 * (size_t)base->in_shape.dims[0] * sizeof *ctx->sums);
    }
    if (!ctx || !ctx->mean || !ctx->inv_std || !ctx->sums) {
        group_norm_context_free(ctx);
        nn_error_oom(err, "GroupNorm statistics");
        return NULL;
    }
    return ctx;
}

/* The rows with the weights bound now (the model binds them after create). */
static nn_norm_rows bound_rows(const group_norm_layer *layer) {
    nn_norm_rows rows = layer->rows;
    if (layer->affine) rows.weight = layer->base.state[0].array.data, rows.bias = layer->base.state[1].array.data;
    return rows;
}

static void group_norm_forward(nn_layer *base, void *context, float *out, const float *in, int batch,
                               const nn_mode *mode) {
    (void)mode;
    const group_norm_layer *layer = (const group_norm_layer *)base;
    group_norm_context *ctx = context;
    nn_norm_rows rows = bound_rows(layer);
    nn_norm_rows_statistics(&rows, in, batch, layer->eps, ctx->mean, ctx->inv_std, NULL);
    nn_norm_rows_apply(&rows, out, in, batch, ctx->mean, ctx->inv_std);
}

static void group_norm_backward(const nn_layer *base, void *context, float *din, const float *dout,
                                const float *in, const float *out, int batch, float *grad, const nn_mode *mode) {
    (void)out;
    (void)mode;
    const group_norm_layer *layer = (const group_norm_layer *)base;
    group_norm_context *ctx = context;
    nn_norm_rows rows = bound_rows(layer);
    nn_norm_rows_backward(&rows, din, grad, ctx->sums, dout, in, batch, ctx->mean, ctx->inv_std, false);
}

static int group_norm_describe(const nn_layer *base, char *buffer, size_t size) {
    return snprintf(buffer, size, "%s", ((const group_norm_layer *)base)->repr);
}

static void group_norm_destroy(nn_layer *base) { free(base); }

const nn_layer_kind nn_group_norm_kind = {
    .name = "GroupNorm",
    .args = group_norm_args,
    .arg_count = sizeof group_norm_args / sizeof group_norm_args[0],
    .create = group_norm_create,
    .init = group_norm_init,
    .context_create = group_norm_context_create,
    .context_free = group_norm_context_free,
    .forward = group_norm_forward,
    .backward = group_norm_backward,
    .describe = group_norm_describe,
    .destroy = group_norm_destroy,
    .mult_adds = nn_mult_adds_per_sample,
};
