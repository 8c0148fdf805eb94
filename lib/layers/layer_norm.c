/* LayerNorm, as torch.nn.LayerNorm: each sample normalised over its
 * trailing dimensions (normalized_shape) with their mean and biased
 * variance, then weight and bias of that shape, element by element. The
 * statistics are per sample; the arithmetic is group_norm.c's row
 * normalisation, a row being the normalized_shape values. */
#include <stdio.h>
#include <stdlib.h>

#include "layers/layers.h"
#include "layers/norm_rows.h"

enum { ARG_SHAPE, ARG_EPS, ARG_AFFINE };

static const nn_arg_spec layer_norm_args[] = {
    {"normalized_shape", NN_ARG_INT_LIST, NN_ARG_REQUIRED | NN_ARG_SCALAR, {0, 0}, NULL},
    {"eps", NN_ARG_FLOAT, 0, {1e-5, 0}, NULL},
    {"elementwise_affine", NN_ARG_BOOL, 0, {1, 0}, NULL},
};

typedef struct layer_norm_layer {
    nn_layer base;
    nn_norm_rows rows;  /* weight and bias bound at each call */
    double eps;
    bool affine;
    char repr[160];
} layer_norm_layer;

typedef struct layer_norm_context {
    float *mean, *inv_std;  /* per row of the last forward */
    double *sums;           /* the parameter gradients' */
} layer_norm_context;

/* normalized_shape must be the sample's last dimensions. */
static int layer_norm_check_shape(const nn_arg_value *shape, nn_shape in_shape, nn_error *err) {
    bool ok = shape->count >= 1 && shape->count <= in_shape.rank;
    for (int i = 0; ok && i < shape->count; i++)
        ok = shape->value[i] == in_shape.dims[in_shape.rank - shape->count + i];
    if (ok) return 0;
    char given[160], text[64];
    nn_arg_format_python(given, sizeof given, &layer_norm_args[ARG_SHAPE], shape, true);
    nn_shape_format(in_shape, text, sizeof text);
    return nn_error_set(err, NN_ERR_INPUT,
                        "normalized_shape %s is not the last dimensions of the input %s: give 1 to %d of them, "
                        "such as %d",
                        given, text, in_shape.rank, in_shape.dims[in_shape.rank - 1]);
}

static nn_layer *layer_norm_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    const nn_arg_value *shape = &args[ARG_SHAPE];
    if (layer_norm_check_shape(shape, in_shape, err) != 0) return NULL;
    double eps = args[ARG_EPS].value[0];
    if (!(eps >= 0)) {
        nn_error_set(err, NN_ERR_INPUT, "eps must not be negative, got %g", eps);
        return NULL;
    }
    layer_norm_layer *layer = calloc(1, sizeof *layer);
    if (!layer) {
        nn_error_oom(err, "a LayerNorm layer");
        return NULL;
    }
    layer->base.in_shape = layer->base.out_shape = in_shape;
    int64_t dims[3];
    int normalized = 1;
    for (int i = 0; i < shape->count; i++) normalized *= (int)(dims[i] = (int64_t)shape->value[i]);
    int rows_per_sample = (int)(nn_shape_size(in_shape) / (size_t)normalized);
    layer->rows = (nn_norm_rows){rows_per_sample, normalized, 1, 1, NULL, NULL};
    layer->eps = eps;
    layer->affine = args[ARG_AFFINE].value[0] != 0;
    if (layer->affine) {
        nn_layer_add_state(&layer->base, "weight", true, NN_F32, shape->count, dims, NULL);
        nn_layer_add_state(&layer->base, "bias", true, NN_F32, shape->count, dims, NULL);
    }
    char shape_text[80], eps_text[40];
    nn_arg_format_python(shape_text, sizeof shape_text, &layer_norm_args[ARG_SHAPE], shape, true);
    nn_arg_format_python(eps_text, sizeof eps_text, &layer_norm_args[ARG_EPS], &args[ARG_EPS], false);
    snprintf(layer->repr, sizeof layer->repr, "LayerNorm(%s, eps=%s, elementwise_affine=%s)", shape_text, eps_text,
             layer->affine ? "True" : "False");
    return &layer->base;
}

/* torch's: weight 1, bias 0. */
static void layer_norm_init(nn_layer *base, nn_rng *rng) {
    (void)rng;
    if (base->state_count == 0) return;
    float *weight = base->state[0].array.data, *bias = base->state[1].array.data;
    size_t count = nn_array_count(&base->state[0].array);
    for (size_t i = 0; i < count; i++) weight[i] = 1.0f, bias[i] = 0.0f;
}

static void layer_norm_context_free(void *context) {
    layer_norm_context *ctx = context;
    if (!ctx) return;
    free(ctx->mean);
    free(ctx->inv_std);
    free(ctx->sums);
    free(ctx);
}

static void *layer_norm_context_create(const nn_layer *base, int max_batch, nn_error *err) {
    const nn_norm_rows *rows = &((const layer_norm_layer *)base)->rows;
    size_t row_count = (size_t)max_batch * rows->rows_per_sample;
    layer_norm_context *ctx = calloc(1, sizeof *ctx);
    if (ctx) {
        ctx->mean = malloc(row_count * sizeof *ctx->mean);
        ctx->inv_std = malloc(row_count * sizeof *ctx->inv_std);
        ctx->sums = malloc(2 * (size_t)rows->channels * sizeof *ctx->sums);
    }
    if (!ctx || !ctx->mean || !ctx->inv_std || !ctx->sums) {
        layer_norm_context_free(ctx);
        nn_error_oom(err, "LayerNorm statistics");
        return NULL;
    }
    return ctx;
}

static nn_norm_rows bound_rows(const layer_norm_layer *layer) {
    nn_norm_rows rows = layer->rows;
    if (layer->affine) rows.weight = layer->base.state[0].array.data, rows.bias = layer->base.state[1].array.data;
    return rows;
}

static void layer_norm_forward(nn_layer *base, void *context, float *out, const float *in, int batch,
                               const nn_mode *mode) {
    (void)mode;
    const layer_norm_layer *layer = (const layer_norm_layer *)base;
    layer_norm_context *ctx = context;
    nn_norm_rows rows = bound_rows(layer);
    nn_norm_rows_statistics(&rows, in, batch, layer->eps, ctx->mean, ctx->inv_std, NULL);
    nn_norm_rows_apply(&rows, out, in, batch, ctx->mean, ctx->inv_std);
}

static void layer_norm_backward(const nn_layer *base, void *context, float *din, const float *dout,
                                const float *in, const float *out, int batch, float *grad, const nn_mode *mode) {
    (void)out;
    (void)mode;
    const layer_norm_layer *layer = (const layer_norm_layer *)base;
    layer_norm_context *ctx = context;
    nn_norm_rows rows = bound_rows(layer);
    nn_norm_rows_backward(&rows, din, grad, ctx->sums, dout, in, batch, ctx->mean, ctx->inv_std, false);
}

static int layer_norm_describe(const nn_layer *base, char *buffer, size_t size) {
    return snprintf(buffer, size, "%s", ((const layer_norm_layer *)base)->repr);
}

static void layer_norm_destroy(nn_layer *base) { free(base); }

const nn_layer_kind nn_layer_norm_kind = {
    .name = "LayerNorm",
    .args = layer_norm_args,
    .arg_count = sizeof layer_norm_args / sizeof layer_norm_args[0],
    .create = layer_norm_create,
    .init = layer_norm_init,
    .context_create = layer_norm_context_create,
    .context_free = layer_norm_context_free,
    .forward = layer_norm_forward,
    .backward = layer_norm_backward,
    .describe = layer_norm_describe,
    .destroy = layer_norm_destroy,
    .mult_adds = nn_mult_adds_per_sample,
};
