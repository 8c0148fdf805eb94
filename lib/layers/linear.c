/* Linear: y = x W^T + b, W of shape (out_features, in_features), as torch.nn.Linear.
 * All three products go through cblas_sgemm on the whole batch. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layers.h"

enum { ARG_IN, ARG_OUT, ARG_BIAS };

static const nn_arg_spec linear_args[] = {
    {"in_features", NN_ARG_INT, NN_ARG_OPTIONAL, {0, 0}, NULL},
    {"out_features", NN_ARG_INT, NN_ARG_REQUIRED, {0, 0}, NULL},
    {"bias", NN_ARG_BOOL, 0, {1, 0}, NULL},
};

typedef struct linear_layer {
    nn_layer base;
    int in_features, out_features;
    bool has_bias;
} linear_layer;

static nn_layer *linear_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    if (in_shape.rank != 1) {
        char text[64];
        nn_shape_format(in_shape, text, sizeof text);
        nn_error_set(err, NN_ERR_INPUT,
                     "Linear needs a flat input of shape (features,), got %s: add a Flatten before it",
                     text);
        return NULL;
    }
    int in_features = in_shape.dims[0];
    if (args[ARG_IN].given && (int)args[ARG_IN].value[0] != in_features) {
        nn_error_set(err, NN_ERR_INPUT, "in_features is %d but the input has %d features",
                     (int)args[ARG_IN].value[0], in_features);
        return NULL;
    }
    int out_features = (int)args[ARG_OUT].value[0];
    if (out_features < 1) {
        nn_error_set(err, NN_ERR_INPUT, "out_features must be at least 1, got %d", out_features);
        return NULL;
    }
    linear_layer *layer = calloc(1, sizeof *layer);
    if (!layer) {
        nn_error_oom(err, "a Linear layer");
        return NULL;
    }
    layer->in_features = in_features;
    layer->out_features = out_features;
    layer->has_bias = args[ARG_BIAS].value[0] != 0;
    layer->base.in_shape = in_shape;
    layer->base.out_shape = (nn_shape){1, {out_features, 0, 0}};
    int64_t weight_dims[2] = {out_features, in_features}, bias_dims[1] = {out_features};
    nn_layer_add_state(&layer->base, "weight", true, NN_F32, 2, weight_dims, NULL);
    if (layer->has_bias) nn_layer_add_state(&layer->base, "bias", true, NN_F32, 1, bias_dims, NULL);
    return &layer->base;
}

static void linear_init(nn_layer *base, nn_rng *rng) {
    linear_layer *layer = (linear_layer *)base;
    size_t weight_count = (size_t)layer->out_features * layer->in_features;
    nn_init_uniform_fan_in(base->state[0].array.data, weight_count, layer->in_features, rng);
    if (layer->has_bias)
        nn_init_uniform_fan_in(base->state[1].array.data, (size_t)layer->out_features,
                               layer->in_features, rng);
}

static void linear_forward(nn_layer *base, void *context, float *out, const float *in, int batch,
                           const nn_mode *mode) {
    (void)context;
    (void)mode;
    const linear_layer *layer = (const linear_layer *)base;
    int n_in = layer->in_features, n_out = layer->out_features;
    const float *weight = base->state[0].array.data;
    float beta = 0.0f;
    if (layer->has_bias) {
        /* Start from the bias in every row and let sgemm add the product. */
        const float *bias = base->state[1].array.data;
        for (int b = 0; b < batch; b++) memcpy(out + (size_t)b * n_out, bias, (size_t)n_out * sizeof *out);
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, n_out, n_in, 1.0f, in, n_in, weight,
                n_in, beta, out, n_out);
}

/* grad holds dW (n_out x n_in) then, with a bias, db (n_out). */
static void linear_backward(const nn_layer *base, void *context, float *din, const float *dout,
                            const float *in, const float *out, int batch, float *grad,
                            const nn_mode *mode) {
    (void)context;
    (void)out;
    (void)mode;
    const linear_layer *layer = (const linear_layer *)base;
    int n_in = layer->in_features, n_out = layer->out_features;
    const float *weight = base->state[0].array.data;
    /* dW = dout^T in: (n_out x batch) (batch x n_in) */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n_out, n_in, batch, 1.0f, dout, n_out, in,
                n_in, 0.0f, grad, n_in);
    if (layer->has_bias) {
        float *dbias = grad + (size_t)n_out * n_in;
        memcpy(dbias, dout, (size_t)n_out * sizeof *dbias);
        for (int b = 1; b < batch; b++) {
            const float *row = dout + (size_t)b * n_out;
            for (int o = 0; o < n_out; o++) dbias[o] += row[o];
        }
    }
    if (din)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, n_in, n_out, 1.0f, dout, n_out,
                    weight, n_in, 0.0f, din, n_in);
}

static int linear_describe(const nn_layer *base, char *buffer, size_t size) {
    const linear_layer *layer = (const linear_layer *)base;
    return snprintf(buffer, size, "Linear(in_features=%d, out_features=%d, bias=%s)", layer->in_features,
                    layer->out_features, layer->has_bias ? "True" : "False");
}

static void linear_destroy(nn_layer *base) { free(base); }

const nn_layer_kind nn_linear_kind = {
    .name = "Linear",
    .args = linear_args,
    .arg_count = sizeof linear_args / sizeof linear_args[0],
    .create = linear_create,
    .init = linear_init,
    .forward = linear_forward,
    .backward = linear_backward,
    .describe = linear_describe,
    .destroy = linear_destroy,
    .mult_adds = nn_mult_adds_per_sample,
};
