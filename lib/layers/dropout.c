/* The dropout family, as torch.nn: Dropout(p=0.5, inplace=False),
 * Dropout1d, Dropout2d, AlphaDropout and FeatureAlphaDropout. In training a
 * value (or a whole channel) is dropped with probability p; eval is the
 * identity. inplace is accepted and printed as torch does; the output is
 * always written out of place, since the model keeps every activation for
 * backward anyway.
 *
 *   Dropout      kept values are scaled by 1/(1-p), so eval needs no rescale;
 *   AlphaDropout keeps SELU's zero mean and unit variance: with
 *                alpha' = -1.7580993408473766, a = ((1-p)(1 + p alpha'^2))^-1/2
 *                and b = -a alpha' p, out = a (x mask + alpha' (1 - mask)) + b;
 *   the channel kinds (Dropout1d, Dropout2d, FeatureAlphaDropout) draw once
 *                per (sample, channel) and apply it to the whole channel.
 * p == 1 zeroes everything in every kind (torch multiplies by 0 then).
 *
 * Which values share a draw follows torch's reading of the batched input:
 *   Dropout, AlphaDropout: each value;
 *   Dropout2d, FeatureAlphaDropout: samples (C, L) and (C, H, W) one per
 *     channel; flat samples (F) each value (torch's feature noise on a 2-d
 *     input has the input's shape);
 *   Dropout1d: samples (C, L) one per channel; flat samples (F) one per
 *     sample (torch reads a 2-d input as one unbatched (C, L) input, so each
 *     row of the batch is a channel); (C, H, W) refused as torch does.
 *
 * The draws come from per-sample counter streams (core/rng.h), not from a
 * generator carried along: sample b of the slice a forward sees draws its
 * values (or channels) in order, j = 0 .. draws-1, from the stream started at
 * nn_key_mix(key_b, layer_index), where key_b is mode->sample_keys[b] (b when
 * sample_keys is NULL) and layer_index is mode->layer_index; j is dropped
 * when nn_stream_uniform < p. A sample's mask therefore depends only on its
 * key and the layer's place in the model, so
 *   - the masks are the same whatever the split of a batch across threads or
 *     ranks, and whatever order the replicas run in: a slice of 3 with the
 *     keys of rows 3..5 drops what rows 3..5 of the whole batch drop;
 *   - there is no stream state to save in a checkpoint or to hand from one
 *     batch to the next: whoever picks the keys fixes the masks.
 *
 * What backward needs lives in the replica's context: the multipliers of
 * the last forward (max_batch * draws floats: the kept scale, or 0 if
 * dropped) and whether that forward was training. Backward applies them
 * only then; after an eval forward it passes dout through. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/target_clones.h"
#include "layers/layers.h"

enum { ARG_P, ARG_INPLACE };

static const nn_arg_spec dropout_args[] = {
    {"p", NN_ARG_FLOAT, 0, {0.5, 0}, NULL},
    {"inplace", NN_ARG_BOOL, 0, {0, 0}, NULL},
};

/* How a kind groups values under one draw. */
typedef enum dropout_grouping { PER_VALUE, PER_CHANNEL_2D, PER_CHANNEL_1D } dropout_grouping;

typedef struct dropout_layer {
    nn_layer base;
    float p;
    float scale;        /* multiplier of a kept value; 0 when p == 1, where everything is dropped */
    float kept_shift, dropped_shift; /* added to kept and dropped values: AlphaDropout's fill, else 0 */
    size_t draws;       /* draws per sample */
    size_t inner;       /* values per draw */
    char repr[80];
} dropout_layer;

/* One replica's state between forward and backward. */
typedef struct dropout_context {
    bool masked;        /* the last forward was in training: backward applies the mask */
    float mask[];       /* max_batch * draws: scale if kept, 0 if dropped */
} dropout_context;

/* The draws per sample and values per draw of grouping on shape, or -1 with
 * err set when torch refuses the shape. */
static int dropout_groups(const char *name, dropout_grouping grouping, nn_shape shape, size_t *draws,
                          size_t *inner, nn_error *err) {
    size_t size = nn_shape_size(shape);
    if (grouping == PER_VALUE || (grouping == PER_CHANNEL_2D && shape.rank == 1)) {
        *draws = size;
        *inner = 1;
        return 0;
    }
    if (grouping == PER_CHANNEL_1D && shape.rank == 1) {
        *draws = 1;
        *inner = size;
        return 0;
    }
    if (grouping == PER_CHANNEL_1D && shape.rank == 3) {
        char text[64];
        nn_shape_format(shape, text, sizeof text);
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s drops channels of 1-d signals: it takes samples (C, L) (or flat ones), "
                            "not %s, which torch refuses as a 4-d input; use Dropout2d for (C, H, W)",
                            name, text);
    }
    *draws = (size_t)shape.dims[0];
    *inner = size / *draws;
    return 0;
}

static nn_layer *dropout_create_common(const nn_arg_value *args, nn_shape in_shape, const char *name,
                                       dropout_grouping grouping, bool alpha, nn_error *err) {
    double p = args[ARG_P].value[0];
    if (!(p >= 0 && p <= 1)) {
        nn_error_set(err, NN_ERR_INPUT, "%s p is the probability of dropping a value, so it must "
                     "be between 0 and 1, got %g", name, p);
        return NULL;
    }
    size_t draws = 0, inner = 0;
    if (dropout_groups(name, grouping, in_shape, &draws, &inner, err) != 0) return NULL;
    dropout_layer *layer = calloc(1, sizeof *layer);
    if (!layer) {
        nn_error_oom(err, "a dropout layer");
        return NULL;
    }
    layer->base.in_shape = in_shape;
    layer->base.out_shape = in_shape;
    layer->p = (float)p;
    layer->draws = draws;
    layer->inner = inner;
    if (alpha && p < 1) {
        /* torch's _dropout_impl, in its float order: b = (noise - 1) (alpha a) + alpha a p. */
        const double selu_alpha = 1.7580993408473766;
        double a = 1.0 / sqrt((selu_alpha * selu_alpha * p + 1) * (1 - p));
        float alpha_a = (float)(selu_alpha * a), alpha_a_p = (float)(selu_alpha * a * p);
        layer->scale = (float)a;
        layer->kept_shift = alpha_a_p;
        layer->dropped_shift = -alpha_a + alpha_a_p;
    } else {
        layer->scale = p < 1 ? (float)(1.0 / (1.0 - p)) : 0.0f;
    }
    char text[40];
    nn_format_python_float(text, sizeof text, p, args[ARG_P].is_integer);
    snprintf(layer->repr, sizeof layer->repr, "%s(p=%s, inplace=%s)", name, text,
             args[ARG_INPLACE].value[0] != 0 ? "True" : "False");
    return &layer->base;
}

static nn_layer *dropout_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    return dropout_create_common(args, in_shape, "Dropout", PER_VALUE, false, err);
}
static nn_layer *dropout1d_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    return dropout_create_common(args, in_shape, "Dropout1d", PER_CHANNEL_1D, false, err);
}
static nn_layer *dropout2d_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    return dropout_create_common(args, in_shape, "Dropout2d", PER_CHANNEL_2D, false, err);
}
static nn_layer *alpha_dropout_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    return dropout_create_common(args, in_shape, "AlphaDropout", PER_VALUE, true, err);
}
static nn_layer *feature_alpha_dropout_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    return dropout_create_common(args, in_shape, "FeatureAlphaDropout", PER_CHANNEL_2D, true, err);
}

static void *dropout_context_create(const nn_layer *base, int max_batch, nn_error *err) {
    const dropout_layer *layer = (const dropout_layer *)base;
    size_t samples = max_batch > 0 ? (size_t)max_batch : 0, draws = layer->draws;
    if (draws && samples > (SIZE_MAX - sizeof(dropout_context)) / sizeof(float) / draws) {
        nn_error_oom(err, "the dropout mask");
        return NULL;
    }
    dropout_context *context = malloc(sizeof *context + samples * draws * sizeof(float));
    if (!context) {
        nn_error_oom(err, "the dropout mask");
        return NULL;
    }
    context->masked = false;
    return context;
}

static void dropout_context_free(void *context) { free(context); }

/* y = x m + shift, shift kept or dropped by m, over n values sharing m. */
NN_VECTOR_CLONES
static void apply_multiplier(float *y, const float *x, size_t n, float m, float shift) {
    for (size_t i = 0; i < n; i++) y[i] = x[i] * m + shift;
}

static void dropout_forward(nn_layer *base, void *context, float *out, const float *in, int batch,
                            const nn_mode *mode) {
    const dropout_layer *layer = (const dropout_layer *)base;
    dropout_context *cache = context;
    size_t draws = layer->draws, inner = layer->inner, features = draws * inner;
    cache->masked = mode->training;
    if (!mode->training) {
        if (out != in) memcpy(out, in, (size_t)batch * features * sizeof *out);
        return;
    }
    float p = layer->p, scale = layer->scale, kept_shift = layer->kept_shift, dropped_shift = layer->dropped_shift;
    for (int b = 0; b < batch; b++) {
        uint64_t key = mode->sample_keys ? mode->sample_keys[b] : (uint64_t)b;
        nn_stream stream;
        nn_stream_start(&stream, nn_key_mix(key, (uint64_t)mode->layer_index));
        float *mask = cache->mask + (size_t)b * draws;
        const float *x = in + (size_t)b * features;
        float *y = out + (size_t)b * features;
        if (inner == 1) {
            /* One value per draw: draw and apply in one pass. */
            for (size_t j = 0; j < draws; j++) {
                bool dropped = nn_stream_uniform(&stream) < p;
                mask[j] = dropped ? 0.0f : scale;
                y[j] = dropped ? dropped_shift : x[j] * scale + kept_shift;
            }
            continue;
        }
        for (size_t j = 0; j < draws; j++) {
            bool dropped = nn_stream_uniform(&stream) < p;
            mask[j] = dropped ? 0.0f : scale;
            apply_multiplier(y + j * inner, x + j * inner, inner, mask[j], dropped ? dropped_shift : kept_shift);
        }
    }
}

NN_VECTOR_CLONES
static void multiply(float *din, const float *dout, const float *mask, size_t n) {
    for (size_t i = 0; i < n; i++) din[i] = dout[i] * mask[i];
}

static void dropout_backward(const nn_layer *base, void *context, float *din, const float *dout,
                             const float *in, const float *out, int batch, float *grad, const nn_mode *mode) {
    (void)in;
    (void)out;
    (void)grad;
    (void)mode;
    if (!din) return;
    const dropout_layer *layer = (const dropout_layer *)base;
    const dropout_context *cache = context;
    size_t inner = layer->inner, groups = (size_t)batch * layer->draws;
    if (!cache->masked) {
        if (din != dout) memcpy(din, dout, groups * inner * sizeof *din);
        return;
    }
    if (inner == 1) {
        multiply(din, dout, cache->mask, groups);
        return;
    }
    for (size_t g = 0; g < groups; g++)
        apply_multiplier(din + g * inner, dout + g * inner, inner, cache->mask[g], 0.0f);
}

static int dropout_describe(const nn_layer *base, char *buffer, size_t size) {
    return snprintf(buffer, size, "%s", ((const dropout_layer *)base)->repr);
}

static void dropout_destroy(nn_layer *base) { free(base); }

#define DROPOUT_KIND(NAME, CREATE)                                         \
    {                                                                      \
        .name = NAME,                                                      \
        .args = dropout_args,                                              \
        .arg_count = sizeof dropout_args / sizeof dropout_args[0],         \
        .create = CREATE,                                                  \
        .context_create = dropout_context_create,                          \
        .context_free = dropout_context_free,                              \
        .forward = dropout_forward,                                        \
        .backward = dropout_backward,                                      \
        .describe = dropout_describe,                                      \
        .destroy = dropout_destroy,                                        \
    }

const nn_layer_kind nn_dropout_kind = DROPOUT_KIND("Dropout", dropout_create);
const nn_layer_kind nn_dropout1d_kind = DROPOUT_KIND("Dropout1d", dropout1d_create);
const nn_layer_kind nn_dropout2d_kind = DROPOUT_KIND("Dropout2d", dropout2d_create);
const nn_layer_kind nn_alpha_dropout_kind = DROPOUT_KIND("AlphaDropout", alpha_dropout_create);
const nn_layer_kind nn_feature_alpha_dropout_kind = DROPOUT_KIND("FeatureAlphaDropout", feature_alpha_dropout_create);
