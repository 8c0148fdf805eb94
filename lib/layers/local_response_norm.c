/* LocalResponseNorm, as torch.nn.LocalResponseNorm: each value divided by
 * d = (k + alpha / size * sum of the squares in a window of size channels)^beta,
 * the window being torch's: the channels c - size / 2 to c + (size - 1) / 2,
 * those beyond the edges counting as zeros (torch pads the squares and
 * average-pools them with the padding included). On (C, H, W), (C, L) and
 * (C,) (one position per channel; torch itself wants 3 dimensions or more
 * with the batch). No state; the context keeps the base of d and d^-1 for
 * backward (powf is most of the time). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layers.h"

enum { ARG_SIZE, ARG_ALPHA, ARG_BETA, ARG_K };

static const nn_arg_spec lrn_args[] = {
    {"size", NN_ARG_INT, NN_ARG_REQUIRED, {0, 0}, NULL},
    {"alpha", NN_ARG_FLOAT, 0, {1e-4, 0}, NULL},
    {"beta", NN_ARG_FLOAT, 0, {0.75, 0}, NULL},
    {"k", NN_ARG_FLOAT, 0, {1.0, 0}, NULL},
};

typedef struct lrn_layer {
    nn_layer base;
    int size, channels, positions;
    float alpha, beta, k;
    char repr[160];
} lrn_layer;

typedef struct lrn_context {
    float *base;  /* k + alpha / size * the window's sum of squares, per value of the last forward */
    float *scale; /* base^-beta, the same */
    float *sum;   /* one sample's window sums, per channel and position (scratch) */
} lrn_context;

static nn_layer *lrn_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    int size = (int)args[ARG_SIZE].value[0];
    if (size < 1) {
        nn_error_set(err, NN_ERR_INPUT, "size must be at least 1, got %d", size);
        return NULL;
    }
    lrn_layer *layer = calloc(1, sizeof *layer);
    if (!layer) {
        nn_error_oom(err, "a LocalResponseNorm layer");
        return NULL;
    }
    layer->base.in_shape = layer->base.out_shape = in_shape;
    layer->size = size;
    layer->channels = in_shape.dims[0];
    layer->positions = (int)(nn_shape_size(in_shape) / (size_t)in_shape.dims[0]);
    layer->alpha = (float)args[ARG_ALPHA].value[0];
    layer->beta = (float)args[ARG_BETA].value[0];
    layer->k = (float)args[ARG_K].value[0];
    char alpha[40], beta[40], k[40];
    nn_arg_format_python(alpha, sizeof alpha, &lrn_args[ARG_ALPHA], &args[ARG_ALPHA], false);
    nn_arg_format_python(beta, sizeof beta, &lrn_args[ARG_BETA], &args[ARG_BETA], false);
    nn_arg_format_python(k, sizeof k, &lrn_args[ARG_K], &args[ARG_K], false);
    snprintf(layer->repr, sizeof layer->repr, "LocalResponseNorm(%d, alpha=%s, beta=%s, k=%s)", size, alpha, beta, k);
    return &layer->base;
}

static void lrn_context_free(void *context) {
    lrn_context *ctx = context;
    if (!ctx) return;
    free(ctx->base);
    free(ctx->scale);
    free(ctx->sum);
    free(ctx);
}

static void *lrn_context_create(const nn_layer *base, int max_batch, nn_error *err) {
    size_t sample = nn_shape_size(base->in_shape);
    lrn_context *ctx = calloc(1, sizeof *ctx);
    if (ctx) {
        ctx->base = malloc((size_t)max_batch * sample * sizeof *ctx->base);
        ctx->scale = malloc((size_t)max_batch * sample * sizeof *ctx->scale);
        ctx->sum = malloc(sample * sizeof *ctx->sum);
    }
    if (!ctx || !ctx->base || !ctx->scale || !ctx->sum) {
        lrn_context_free(ctx);
        nn_error_oom(err, "LocalResponseNorm's cache");
        return NULL;
    }
    return ctx;
}

/* sum[c] = the sum of x[c'] over the channels c' in [c - before, c + after]
 * that exist, each channel a row of positions values. */
static void window_sums(float *sum, const float *x, int channels, int positions, int before, int after) {
    memset(sum, 0, (size_t)channels * positions * sizeof *sum);
    for (int c = 0; c < channels; c++) {
        int first = c - before < 0 ? 0 : c - before, last = c + after >= channels ? channels - 1 : c + after;
        float *s = sum + (size_t)c * positions;
        for (int source = first; source <= last; source++) {
            const float *row = x + (size_t)source * positions;
            for (int p = 0; p < positions; p++) s[p] += row[p];
        }
    }
}

static void lrn_forward(nn_layer *base, void *context, float *out, const float *in, int batch, const nn_mode *mode) {
    (void)mode;
    const lrn_layer *layer = (const lrn_layer *)base;
    lrn_context *ctx = context;
    size_t sample = (size_t)layer->channels * layer->positions;
    float scale = layer->alpha / (float)layer->size;
    for (int b = 0; b < batch; b++) {
        const float *x = in + b * sample;
        float *d = ctx->base + b * sample, *power = ctx->scale + b * sample, *o = out + b * sample;
        /* the squares go to out, then their window sums to sum */
        for (size_t i = 0; i < sample; i++) o[i] = x[i] * x[i];
        window_sums(ctx->sum, o, layer->channels, layer->positions, layer->size / 2, (layer->size - 1) / 2);
        for (size_t i = 0; i < sample; i++) {
            d[i] = layer->k + scale * ctx->sum[i];
            power[i] = powf(d[i], -layer->beta);
            o[i] = x[i] * power[i];
        }
    }
}

/* din_j = dout_j d_j^-beta - 2 alpha beta / size * x_j * sum of t_c over the
 * windows holding j, t_c = dout_c out_c / d_c: channel j is in c's window
 * when c is in [j - (size - 1) / 2, j + size / 2]. */
static void lrn_backward(const nn_layer *base, void *context, float *din, const float *dout, const float *in,
                         const float *out, int batch, float *grad, const nn_mode *mode) {
    (void)grad;
    (void)mode;
    if (!din) return;
    const lrn_layer *layer = (const lrn_layer *)base;
    lrn_context *ctx = context;
    size_t sample = (size_t)layer->channels * layer->positions;
    float factor = 2 * layer->alpha * layer->beta / (float)layer->size;
    for (int b = 0; b < batch; b++) {
        const float *d = ctx->base + b * sample, *power = ctx->scale + b * sample;
        const float *x = in + b * sample, *o = out + b * sample, *y = dout + b * sample;
        float *g = din + b * sample;
        for (size_t i = 0; i < sample; i++) g[i] = y[i] * o[i] / d[i];
        window_sums(ctx->sum, g, layer->channels, layer->positions, (layer->size - 1) / 2, layer->size / 2);
        for (size_t i = 0; i < sample; i++) g[i] = y[i] * power[i] - factor * x[i] * ctx->sum[i];
    }
}

static int lrn_describe(const nn_layer *base, char *buffer, size_t size) {
    return snprintf(buffer, size, "%s", ((const lrn_layer *)base)->repr);
}

static void lrn_destroy(nn_layer *base) { free(base); }

const nn_layer_kind nn_local_response_norm_kind = {
    .name = "LocalResponseNorm",
    .args = lrn_args,
    .arg_count = sizeof lrn_args / sizeof lrn_args[0],
    .create = lrn_create,
    .context_create = lrn_context_create,
    .context_free = lrn_context_free,
    .forward = lrn_forward,
    .backward = lrn_backward,
    .describe = lrn_describe,
    .destroy = lrn_destroy,
};
