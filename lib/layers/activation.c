/* Elementwise activations: ReLU, Sigmoid, Tanh, LeakyReLU and GELU, as
 * torch.nn. They keep the input's shape, hold no state, keep nothing between
 * forward and backward (no context: backward reads in or out) and share
 * create, describe and destroy; each kind only brings its two loops over
 * batch * features values. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/target_clones.h"
#include "layers/layers.h"

/* 1/sqrt(2) and 1/sqrt(2 pi): M_SQRT1_2 is not in strict C11. */
#define INV_SQRT2 0.70710678118654752440f
#define INV_SQRT_2PI 0.39894228040143267794f

typedef struct elementwise_layer {
    nn_layer base;
    float negative_slope; /* LeakyReLU only */
    char repr[64];        /* PyTorch's repr, fixed at create */
} elementwise_layer;

static size_t value_count(const nn_layer *layer, int batch) {
    return (size_t)batch * nn_shape_size(layer->in_shape);
}

static elementwise_layer *elementwise_create(nn_shape in_shape, const char *name, nn_error *err) {
    elementwise_layer *layer = calloc(1, sizeof *layer);
    if (!layer) {
        char what[64];
        snprintf(what, sizeof what, "a %s layer", name);
        nn_error_oom(err, what);
        return NULL;
    }
    layer->base.in_shape = in_shape;
    layer->base.out_shape = in_shape;
    snprintf(layer->repr, sizeof layer->repr, "%s()", name);
    return layer;
}

static int elementwise_describe(const nn_layer *base, char *buffer, size_t size) {
    return snprintf(buffer, size, "%s", ((const elementwise_layer *)base)->repr);
}

static void elementwise_destroy(nn_layer *base) { free(base); }

/* ReLU */

static nn_layer *relu_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    (void)args;
    elementwise_layer *layer = elementwise_create(in_shape, "ReLU", err);
    return layer ? &layer->base : NULL;
}

NN_VECTOR_CLONES static void relu_forward(nn_layer *base, void *context, float *out, const float *in, int batch,
                                          const nn_mode *mode) {
    (void)context;
    (void)mode;
    size_t count = value_count(base, batch);
    for (size_t i = 0; i < count; i++) {
        float x = in[i];
        out[i] = x > 0 ? x : 0.0f;
    }
}

/* The gradient at exactly 0 is 0, as in torch. dout is loaded before the
 * select so that gcc -O2 makes it a compare and mask instead of a branch,
 * which mispredicts on signs that are close to random (twice as fast). */
NN_VECTOR_CLONES static void relu_backward(const nn_layer *base, void *context, float *din, const float *dout,
                                           const float *in, const float *out, int batch, float *grad,
                                           const nn_mode *mode) {
    (void)context;
    (void)grad;
    (void)mode;
    (void)out;
    if (!din) return;
    size_t count = value_count(base, batch);
    for (size_t i = 0; i < count; i++) {
        float gradient = dout[i];
        din[i] = in[i] > 0 ? gradient : 0.0f;
    }
}

/* Sigmoid */

static nn_layer *sigmoid_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    (void)args;
    elementwise_layer *layer = elementwise_create(in_shape, "Sigmoid", err);
    return layer ? &layer->base : NULL;
}

/* For very negative x, expf(-x) overflows to inf and the result is 0, not NaN. */
static void sigmoid_forward(nn_layer *base, void *context, float *out, const float *in, int batch,
                            const nn_mode *mode) {
    (void)context;
    (void)mode;
    size_t count = value_count(base, batch);
    for (size_t i = 0; i < count; i++) out[i] = 1.0f / (1.0f + expf(-in[i]));
}

static void sigmoid_backward(const nn_layer *base, void *context, float *din, const float *dout,
                             const float *in, const float *out, int batch, float *grad, const nn_mode *mode) {
    (void)context;
    (void)grad;
    (void)mode;
    (void)in;
    if (!din) return;
    size_t count = value_count(base, batch);
    for (size_t i = 0; i < count; i++) din[i] = dout[i] * out[i] * (1.0f - out[i]);
}

/* Tanh */

static nn_layer *tanh_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    (void)args;
    elementwise_layer *layer = elementwise_create(in_shape, "Tanh", err);
    return layer ? &layer->base : NULL;
}

static void tanh_forward(nn_layer *base, void *context, float *out, const float *in, int batch,
                         const nn_mode *mode) {
    (void)context;
    (void)mode;
    size_t count = value_count(base, batch);
    for (size_t i = 0; i < count; i++) out[i] = tanhf(in[i]);
}

static void tanh_backward(const nn_layer *base, void *context, float *din, const float *dout,
                          const float *in, const float *out, int batch, float *grad, const nn_mode *mode) {
    (void)context;
    (void)grad;
    (void)mode;
    (void)in;
    if (!din) return;
    size_t count = value_count(base, batch);
    for (size_t i = 0; i < count; i++) din[i] = dout[i] * (1.0f - out[i] * out[i]);
}

/* LeakyReLU */

static const nn_arg_spec leaky_relu_args[] = {
    {"negative_slope", NN_ARG_FLOAT, 0, {0.01, 0}},
};

static nn_layer *leaky_relu_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    elementwise_layer *layer = elementwise_create(in_shape, "LeakyReLU", err);
    if (!layer) return NULL;
    double slope = args[0].value[0];
    layer->negative_slope = (float)slope;
    char text[40];
    nn_format_python_float(text, sizeof text, slope, args[0].is_integer);
    snprintf(layer->repr, sizeof layer->repr, "LeakyReLU(negative_slope=%s)", text);
    return &layer->base;
}

static void leaky_relu_forward(nn_layer *base, void *context, float *out, const float *in, int batch,
                               const nn_mode *mode) {
    (void)context;
    (void)mode;
    float slope = ((elementwise_layer *)base)->negative_slope;
    size_t count = value_count(base, batch);
    for (size_t i = 0; i < count; i++) {
        float x = in[i];
        out[i] = x * (x > 0 ? 1.0f : slope);
    }
}

static void leaky_relu_backward(const nn_layer *base, void *context, float *din, const float *dout,
                                const float *in, const float *out, int batch, float *grad,
                                const nn_mode *mode) {
    (void)context;
    (void)grad;
    (void)mode;
    (void)out;
    if (!din) return;
    float slope = ((const elementwise_layer *)base)->negative_slope;
    size_t count = value_count(base, batch);
    for (size_t i = 0; i < count; i++) din[i] = dout[i] * (in[i] > 0 ? 1.0f : slope);
}

/* GELU, the exact form x * Phi(x) with Phi the standard normal CDF
 * (torch's approximate='none'). */

static nn_layer *gelu_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    (void)args;
    elementwise_layer *layer = elementwise_create(in_shape, "GELU", err);
    if (!layer) return NULL;
    snprintf(layer->repr, sizeof layer->repr, "GELU(approximate='none')");
    return &layer->base;
}

static void gelu_forward(nn_layer *base, void *context, float *out, const float *in, int batch,
                         const nn_mode *mode) {
    (void)context;
    (void)mode;
    size_t count = value_count(base, batch);
    for (size_t i = 0; i < count; i++) out[i] = 0.5f * in[i] * (1.0f + erff(in[i] * INV_SQRT2));
}

/* d/dx x Phi(x) = Phi(x) + x phi(x). */
static void gelu_backward(const nn_layer *base, void *context, float *din, const float *dout,
                          const float *in, const float *out, int batch, float *grad, const nn_mode *mode) {
    (void)context;
    (void)grad;
    (void)mode;
    (void)out;
    if (!din) return;
    size_t count = value_count(base, batch);
    for (size_t i = 0; i < count; i++) {
        float x = in[i];
        float cdf = 0.5f * (1.0f + erff(x * INV_SQRT2));
        float pdf = INV_SQRT_2PI * expf(-0.5f * x * x);
        din[i] = dout[i] * (cdf + x * pdf);
    }
}

#define ELEMENTWISE_KIND(symbol, torch_name, prefix, arg_table, table_count)                       \
    const nn_layer_kind symbol = {                                                                 \
        .name = torch_name,                                                                        \
        .args = arg_table,                                                                         \
        .arg_count = table_count,                                                                  \
        .create = prefix##_create,                                                                 \
        .forward = prefix##_forward,                                                               \
        .backward = prefix##_backward,                                                             \
        .describe = elementwise_describe,                                                          \
        .destroy = elementwise_destroy,                                                            \
    }

ELEMENTWISE_KIND(nn_relu_kind, "ReLU", relu, NULL, 0);
ELEMENTWISE_KIND(nn_sigmoid_kind, "Sigmoid", sigmoid, NULL, 0);
ELEMENTWISE_KIND(nn_tanh_kind, "Tanh", tanh, NULL, 0);
ELEMENTWISE_KIND(nn_leaky_relu_kind, "LeakyReLU", leaky_relu, leaky_relu_args,
                 sizeof leaky_relu_args / sizeof leaky_relu_args[0]);
ELEMENTWISE_KIND(nn_gelu_kind, "GELU", gelu, NULL, 0);
