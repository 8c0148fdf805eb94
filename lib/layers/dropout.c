/* Dropout(p=0.5), as torch.nn: in training, each value is zeroed with
 * probability p (drawn from mode.rng: nn_rng_uniform(rng) < p drops) and the
 * kept ones are scaled by 1/(1-p), so that eval, the identity, needs no
 * rescaling. The mask of the last training forward is kept for backward in a
 * cache allocated once by reserve. */
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
    float *mask;        /* per value: scale if kept, 0 if dropped */
    int capacity;       /* samples the mask holds */
    bool masked;        /* the last forward was in training: backward applies the mask */
    char repr[64];
} dropout_layer;

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

static int dropout_reserve(nn_layer *base, int max_batch, nn_error *err) {
    dropout_layer *layer = (dropout_layer *)base;
    if (max_batch <= layer->capacity) return 0;
    float *mask = malloc((size_t)max_batch * layer->features * sizeof *mask);
    if (!mask) return nn_error_oom(err, "the Dropout mask");
    free(layer->mask);
    layer->mask = mask;
    layer->capacity = max_batch;
    layer->masked = false;
    return 0;
}

static void dropout_forward(nn_layer *base, float *out, const float *in, int batch, nn_mode mode) {
    dropout_layer *layer = (dropout_layer *)base;
    size_t count = (size_t)batch * layer->features;
    layer->masked = mode.training;
    if (!mode.training) {
        if (out != in) memcpy(out, in, count * sizeof *out);
        return;
    }
    float p = layer->p, scale = layer->scale;
    float *mask = layer->mask;
    for (size_t i = 0; i < count; i++) {
        bool dropped = nn_rng_uniform(mode.rng) < p;
        mask[i] = dropped ? 0.0f : scale;
        out[i] = dropped ? 0.0f : in[i] * scale;
    }
}

static void dropout_backward(nn_layer *base, float *din, const float *dout, const float *in,
                             const float *out, int batch) {
    (void)in;
    (void)out;
    if (!din) return;
    const dropout_layer *layer = (const dropout_layer *)base;
    size_t count = (size_t)batch * layer->features;
    if (!layer->masked) {
        if (din != dout) memcpy(din, dout, count * sizeof *din);
        return;
    }
    for (size_t i = 0; i < count; i++) din[i] = dout[i] * layer->mask[i];
}

static int dropout_describe(const nn_layer *base, char *buffer, size_t size) {
    return snprintf(buffer, size, "%s", ((const dropout_layer *)base)->repr);
}

static void dropout_destroy(nn_layer *base) {
    if (!base) return;
    free(((dropout_layer *)base)->mask);
    free(base);
}

const nn_layer_kind nn_dropout_kind = {
    .name = "Dropout",
    .args = dropout_args,
    .arg_count = sizeof dropout_args / sizeof dropout_args[0],
    .create = dropout_create,
    .reserve = dropout_reserve,
    .forward = dropout_forward,
    .backward = dropout_backward,
    .describe = dropout_describe,
    .destroy = dropout_destroy,
};
