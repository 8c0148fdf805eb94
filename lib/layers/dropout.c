/* Dropout(p=0.5), as torch.nn: in training, each value is zeroed with
 * probability p and the kept ones are scaled by 1/(1-p), so that eval, the
 * identity, needs no rescaling (p == 1 zeroes everything).
 *
 * The draws come from per-sample counter streams (core/rng.h), not from a
 * generator carried along: sample b of the slice a forward sees draws its
 * values in order, j = 0 .. features-1, from the stream started at
 * nn_key_mix(key_b, layer_index), where key_b is mode->sample_keys[b] (b when
 * sample_keys is NULL) and layer_index is mode->layer_index; a value is
 * dropped when nn_stream_uniform < p. A sample's mask therefore depends only
 * on its key and the layer's place in the model, so
 *   - the masks are the same whatever the split of a batch across threads or
 *     ranks, and whatever order the replicas run in: a slice of 3 with the
 *     keys of rows 3..5 drops what rows 3..5 of the whole batch drop;
 *   - there is no stream state to save in a checkpoint or to hand from one
 *     batch to the next: whoever picks the keys fixes the masks.
 *
 * What backward needs lives in the replica's context: the mask of the last
 * forward (max_batch * features floats, each 1/(1-p) if kept, 0 if dropped)
 * and whether that forward was training. Backward applies the mask only
 * then; after an eval forward it passes dout through. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layers.h"

static const nn_arg_spec dropout_args[] = {
    {"p", NN_ARG_FLOAT, 0, {0.5, 0}},
};

typedef struct dropout_layer {
    nn_layer base;
    float p;
    float scale;        /* 1/(1-p); 0 when p == 1, where everything is dropped */
    size_t features;    /* values per sample */
    char repr[64];
} dropout_layer;

/* One replica's state between forward and backward. */
typedef struct dropout_context {
    bool masked;        /* the last forward was in training: backward applies the mask */
    float mask[];       /* max_batch * features: scale if kept, 0 if dropped */
} dropout_context;

static nn_layer *dropout_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    double p = args[0].value[0];
    if (!(p >= 0 && p <= 1)) {
        nn_error_set(err, NN_ERR_INPUT, "Dropout p is the probability of dropping a value, so it must "
                     "be between 0 and 1, got %g", p);
        return NULL;
    }
    dropout_layer *layer = calloc(1, sizeof *layer);
    if (!layer) {
        nn_error_oom(err, "a Dropout layer");
        return NULL;
    }
    layer->base.in_shape = in_shape;
    layer->base.out_shape = in_shape;
    layer->p = (float)p;
    layer->scale = p < 1 ? (float)(1.0 / (1.0 - p)) : 0.0f;
    layer->features = nn_shape_size(in_shape);
    char text[40];
    nn_format_python_float(text, sizeof text, p, args[0].is_integer);
    snprintf(layer->repr, sizeof layer->repr, "Dropout(p=%s, inplace=False)", text);
    return &layer->base;
}

static void *dropout_context_create(const nn_layer *base, int max_batch, nn_error *err) {
    const dropout_layer *layer = (const dropout_layer *)base;
    size_t samples = max_batch > 0 ? (size_t)max_batch : 0, features = layer->features;
    if (features && samples > (SIZE_MAX - sizeof(dropout_context)) / sizeof(float) / features) {
        nn_error_oom(err, "the Dropout mask");
        return NULL;
    }
    dropout_context *context = malloc(sizeof *context + samples * features * sizeof(float));
    if (!context) {
        nn_error_oom(err, "the Dropout mask");
        return NULL;
    }
    context->masked = false;
    return context;
}

static void dropout_context_free(void *context) { free(context); }

static void dropout_forward(nn_layer *base, void *context, float *out, const float *in, int batch,
                            const nn_mode *mode) {
    const dropout_layer *layer = (const dropout_layer *)base;
    dropout_context *cache = context;
    size_t features = layer->features;
    cache->masked = mode->training;
    if (!mode->training) {
        if (out != in) memcpy(out, in, (size_t)batch * features * sizeof *out);
        return;
    }
    float p = layer->p, scale = layer->scale;
    for (int b = 0; b < batch; b++) {
        uint64_t key = mode->sample_keys ? mode->sample_keys[b] : (uint64_t)b;
        nn_stream stream;
        nn_stream_start(&stream, nn_key_mix(key, (uint64_t)mode->layer_index));
        size_t first = (size_t)b * features;
        float *mask = cache->mask + first;
        const float *x = in + first;
        float *y = out + first;
        for (size_t j = 0; j < features; j++) {
            bool dropped = nn_stream_uniform(&stream) < p;
            mask[j] = dropped ? 0.0f : scale;
            y[j] = dropped ? 0.0f : x[j] * scale;
        }
    }
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
    size_t count = (size_t)batch * layer->features;
    if (!cache->masked) {
        if (din != dout) memcpy(din, dout, count * sizeof *din);
        return;
    }
    for (size_t i = 0; i < count; i++) din[i] = dout[i] * cache->mask[i];
}

static int dropout_describe(const nn_layer *base, char *buffer, size_t size) {
    return snprintf(buffer, size, "%s", ((const dropout_layer *)base)->repr);
}

static void dropout_destroy(nn_layer *base) { free(base); }

const nn_layer_kind nn_dropout_kind = {
    .name = "Dropout",
    .args = dropout_args,
    .arg_count = sizeof dropout_args / sizeof dropout_args[0],
    .create = dropout_create,
    .context_create = dropout_context_create,
    .context_free = dropout_context_free,
    .forward = dropout_forward,
    .backward = dropout_backward,
    .describe = dropout_describe,
    .destroy = dropout_destroy,
};
