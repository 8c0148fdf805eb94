/* PReLU(num_parameters=1, init=0.25), as torch.nn: y = x for x > 0, else
 * a x, with a trainable "weight" a of num_parameters values, all set to init
 * (torch's initialisation: a constant, no random draw). One value is shared
 * by every input value; with more than one, value c applies to channel c,
 * dim 1 of the batched input, i.e. the sample's first dim, which must then
 * hold exactly num_parameters channels. The gradient at x = 0 is a's side,
 * as in torch's prelu backward. */
#include <stdio.h>
#include <stdlib.h>

#include "layers/layers.h"

enum { ARG_NUM_PARAMETERS, ARG_INIT };

static const nn_arg_spec prelu_args[] = {
    {"num_parameters", NN_ARG_INT, 0, {1, 0}, NULL},
    {"init", NN_ARG_FLOAT, 0, {0.25, 0}, NULL},
};

typedef struct prelu_layer {
    nn_layer base;
    int num_parameters;
    float init;
    /* The input as (channels, inner) per sample: num_parameters == 1 treats
     * the whole sample as one channel. */
    int channels;
    size_t inner;
} prelu_layer;

static nn_layer *prelu_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    int num_parameters = (int)args[ARG_NUM_PARAMETERS].value[0];
    if (num_parameters < 1) {
        nn_error_set(err, NN_ERR_INPUT, "PReLU num_parameters must be at least 1, got %d", num_parameters);
        return NULL;
    }
    if (num_parameters > 1 && num_parameters != in_shape.dims[0]) {
        char text[64];
        nn_shape_format(in_shape, text, sizeof text);
        nn_error_set(err, NN_ERR_INPUT,
                     "PReLU num_parameters %d must be 1 or the number of channels, the input's first dim: "
                     "the input %s has %d channels",
                     num_parameters, text, in_shape.dims[0]);
        return NULL;
    }
    prelu_layer *layer = calloc(1, sizeof *layer);
    if (!layer) {
        nn_error_oom(err, "a PReLU layer");
        return NULL;
    }
    layer->num_parameters = num_parameters;
    layer->init = (float)args[ARG_INIT].value[0];
    layer->channels = num_parameters;
    layer->inner = nn_shape_size(in_shape) / (size_t)num_parameters;
    layer->base.in_shape = in_shape;
    layer->base.out_shape = in_shape;
    int64_t dims[1] = {num_parameters};
    nn_layer_add_state(&layer->base, "weight", true, NN_F32, 1, dims, NULL);
    return &layer->base;
}

static void prelu_init(nn_layer *base, nn_rng *rng) {
    (void)rng;
    const prelu_layer *layer = (const prelu_layer *)base;
    float *weight = base->state[0].array.data;
    for (int c = 0; c < layer->num_parameters; c++) weight[c] = layer->init;
}

static void prelu_forward(nn_layer *base, void *context, float *out, const float *in, int batch,
                          const nn_mode *mode) {
    (void)context;
    (void)mode;
    const prelu_layer *layer = (const prelu_layer *)base;
    const float *weight = base->state[0].array.data;
    size_t inner = layer->inner;
    for (int b = 0; b < batch; b++)
        for (int c = 0; c < layer->channels; c++) {
            size_t at = ((size_t)b * layer->channels + c) * inner;
            const float *x = in + at;
            float *y = out + at;
            float a = weight[c];
            for (size_t i = 0; i < inner; i++) y[i] = x[i] > 0 ? x[i] : a * x[i];
        }
}

/* dweight[c] = sum of x dout over the values x <= 0 of channel c, summed in
 * double per channel of a sample so that a long channel loses no precision. */
static void prelu_backward(const nn_layer *base, void *context, float *din, const float *dout, const float *in,
                           const float *out, int batch, float *grad, const nn_mode *mode) {
    (void)context;
    (void)out;
    (void)mode;
    const prelu_layer *layer = (const prelu_layer *)base;
    const float *weight = base->state[0].array.data;
    size_t inner = layer->inner;
    for (int c = 0; c < layer->channels; c++) grad[c] = 0;
    for (int b = 0; b < batch; b++)
        for (int c = 0; c < layer->channels; c++) {
            size_t at = ((size_t)b * layer->channels + c) * inner;
            const float *x = in + at, *g = dout + at;
            double sum = 0;
            for (size_t i = 0; i < inner; i++) sum += x[i] > 0 ? 0.0 : (double)x[i] * g[i];
            grad[c] += (float)sum;
            if (!din) continue;
            float a = weight[c];
            float *dx = din + at;
            for (size_t i = 0; i < inner; i++) dx[i] = x[i] > 0 ? g[i] : a * g[i];
        }
}

static int prelu_describe(const nn_layer *base, char *buffer, size_t size) {
    return snprintf(buffer, size, "PReLU(num_parameters=%d)", ((const prelu_layer *)base)->num_parameters);
}

static void prelu_destroy(nn_layer *base) { free(base); }

const nn_layer_kind nn_prelu_kind = {
    .name = "PReLU",
    .args = prelu_args,
    .arg_count = sizeof prelu_args / sizeof prelu_args[0],
    .create = prelu_create,
    .init = prelu_init,
    .forward = prelu_forward,
    .backward = prelu_backward,
    .describe = prelu_describe,
    .destroy = prelu_destroy,
    .mult_adds = nn_mult_adds_per_sample,
};
