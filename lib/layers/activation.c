/* Elementwise activations, as torch.nn 1.13: Identity, ReLU, ReLU6, Sigmoid,
 * Tanh, LeakyReLU, GELU, ELU, SELU, CELU, SiLU, Mish, Softplus, Softsign,
 * Hardtanh, Hardsigmoid, Hardswish and Threshold (PReLU, which has a
 * parameter, is prelu.c). They keep the input's shape, hold no state, keep
 * nothing between forward and backward (no context: backward reads in or
 * out) and share create, describe and destroy; each kind brings its
 * arguments and two loops over batch * features values, with torch's
 * formulas and its gradients at the kinks (checked with torch's autograd).
 *
 * `inplace` is accepted wherever torch takes it and printed as torch prints
 * it, but nnseq always computes out of place: the model keeps every layer's
 * output for backward, so writing over the input would save nothing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/target_clones.h"
#include "layers/layers.h"

/* 1/sqrt(2), 1/sqrt(2 pi), sqrt(2/pi): M_SQRT1_2 is not in strict C11. */
#define INV_SQRT2 0.70710678118654752440f
#define INV_SQRT_2PI 0.39894228040143267794f
#define SQRT_2_OVER_PI 0.79788456080286535588f
#define GELU_KAPPA 0.044715f
/* SELU's constants, as torch's (Klambauer et al. 2017). */
#define SELU_ALPHA 1.6732632423543772848170429916717f
#define SELU_SCALE 1.0507009873554804934193349852946f

typedef struct elementwise_layer {
    nn_layer base;
    float negative_slope;   /* LeakyReLU */
    /* The ELU family, torch's elu(x, alpha, scale, input_scale):
     * x > 0 ? scale x : alpha (exp(input_scale x) - 1). ELU (alpha, 1, 1),
     * SELU (SELU_ALPHA * SELU_SCALE, SELU_SCALE, 1), CELU (alpha, 1, 1/alpha). */
    float alpha, scale, input_scale;
    float beta, threshold;  /* Softplus; threshold is also Threshold's */
    float value;            /* Threshold: what replaces x <= threshold */
    float min_val, max_val; /* Hardtanh, ReLU6 */
    bool tanh_approximation; /* GELU(approximate='tanh') */
    char repr[128];          /* PyTorch's repr, fixed at create */
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

/* torch's extra_repr adds ", inplace=True" when inplace is set and nothing
 * when it is False; first: no argument printed before it (no comma). */
static const char *inplace_repr(const nn_arg_value *inplace, bool first) {
    if (inplace->value[0] == 0) return "";
    return first ? "inplace=True" : ", inplace=True";
}

/* Python's repr of a float argument as torch keeps it: 2 when given as 2,
 * 2.0 when given as 2.0, and the default as torch's signature writes it
 * (integer_default: Softplus's beta: int = 1). */
static const char *float_repr(char *buffer, size_t size, const nn_arg_value *value, bool integer_default) {
    nn_format_python_float(buffer, size, value->value[0], value->given ? value->is_integer : integer_default);
    return buffer;
}

/* The kinds whose only argument is inplace; prints_inplace: torch's
 * extra_repr shows it (Hardsigmoid and Hardswish have none, so they print
 * "Hardswish()" even with inplace=True). */
static nn_layer *inplace_only_create(const nn_arg_value *args, nn_shape in_shape, const char *name,
                                     bool prints_inplace, nn_error *err) {
    elementwise_layer *layer = elementwise_create(in_shape, name, err);
    if (!layer) return NULL;
    if (prints_inplace) snprintf(layer->repr, sizeof layer->repr, "%s(%s)", name, inplace_repr(&args[0], true));
    return &layer->base;
}

static const nn_arg_spec inplace_args[] = {
    {"inplace", NN_ARG_BOOL, 0, {0, 0}, NULL},
};

/* Identity: torch's takes and ignores any argument; nnseq takes none, so
 * that a misspelt argument meant for another layer is not silently lost. */

static nn_layer *identity_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    (void)args;
    elementwise_layer *layer = elementwise_create(in_shape, "Identity", err);
    return layer ? &layer->base : NULL;
}

/* ReLU */

static nn_layer *relu_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    return inplace_only_create(args, in_shape, "ReLU", true, err);
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
 * select so that gcc -O2 makes it a compare and mask instead of a branch
 * (the same goes for the other kinds' selects below),
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
    {"negative_slope", NN_ARG_FLOAT, 0, {0.01, 0}, NULL},
    {"inplace", NN_ARG_BOOL, 0, {0, 0}, NULL},
};

static nn_layer *leaky_relu_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    elementwise_layer *layer = elementwise_create(in_shape, "LeakyReLU", err);
    if (!layer) return NULL;
    layer->negative_slope = (float)args[0].value[0];
    char text[40];
    snprintf(layer->repr, sizeof layer->repr, "LeakyReLU(negative_slope=%s%s)",
             float_repr(text, sizeof text, &args[0], false), inplace_repr(&args[1], false));
    return &layer->base;
}

static void leaky_relu_forward(nn_layer *base, void *context, float *out, const float *in, int batch,
                               const nn_mode *mode) {
    (void)context;
    (void)mode;
    float slope = ((elementwise_layer *)base)->negative_slope;
    size_t count = value_count(base, batch);
    for (size_t i = 0; i < count; i++) {
        float x = in[i], scaled = x * slope;
        out[i] = x > 0 ? x : scaled;
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
    for (size_t i = 0; i < count; i++) {
        float gradient = dout[i], scaled = gradient * slope;
        din[i] = in[i] > 0 ? gradient : scaled;
    }
}

/* GELU: the exact form x Phi(x) with Phi the standard normal CDF
 * (approximate='none'), or torch's tanh approximation
 * 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */

static const char *const gelu_approximations[] = {"none", "tanh", NULL};

static const nn_arg_spec gelu_args[] = {
    {"approximate", NN_ARG_CHOICE, 0, {0, 0}, gelu_approximations},
};

static nn_layer *gelu_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    elementwise_layer *layer = elementwise_create(in_shape, "GELU", err);
    if (!layer) return NULL;
    const char *approximate = nn_arg_choice(&gelu_args[0], &args[0]);
    layer->tanh_approximation = approximate && !strcmp(approximate, "tanh");
    snprintf(layer->repr, sizeof layer->repr, "GELU(approximate='%s')",
             layer->tanh_approximation ? "tanh" : "none");
    return &layer->base;
}

NN_VECTOR_CLONES static void gelu_forward(nn_layer *base, void *context, float *out, const float *in, int batch,
                                          const nn_mode *mode) {
    (void)context;
    (void)mode;
    size_t count = value_count(base, batch);
    if (((const elementwise_layer *)base)->tanh_approximation) {
        for (size_t i = 0; i < count; i++) {
            float x = in[i];
            out[i] = 0.5f * x * (1.0f + tanhf(SQRT_2_OVER_PI * (x + GELU_KAPPA * x * x * x)));
        }
        return;
    }
    for (size_t i = 0; i < count; i++) out[i] = 0.5f * in[i] * (1.0f + erff(in[i] * INV_SQRT2));
}

/* Exact: d/dx x Phi(x) = Phi(x) + x phi(x). Tanh: torch's
 * 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 kappa x^2). */
NN_VECTOR_CLONES static void gelu_backward(const nn_layer *base, void *context, float *din, const float *dout,
                                           const float *in, const float *out, int batch, float *grad,
                                           const nn_mode *mode) {
    (void)context;
    (void)grad;
    (void)mode;
    (void)out;
    if (!din) return;
    size_t count = value_count(base, batch);
    if (((const elementwise_layer *)base)->tanh_approximation) {
        for (size_t i = 0; i < count; i++) {
            float x = in[i];
            float t = tanhf(SQRT_2_OVER_PI * (x + GELU_KAPPA * x * x * x));
            float slope = 0.5f * (1.0f + t) +
                          0.5f * x * (1.0f - t * t) * SQRT_2_OVER_PI * (1.0f + 3.0f * GELU_KAPPA * x * x);
            din[i] = dout[i] * slope;
        }
        return;
    }
    for (size_t i = 0; i < count; i++) {
        float x = in[i];
        float cdf = 0.5f * (1.0f + erff(x * INV_SQRT2));
        float pdf = INV_SQRT_2PI * expf(-0.5f * x * x);
        din[i] = dout[i] * (cdf + x * pdf);
    }
}

/* ELU, SELU and CELU share torch's elu kernel; at x = 0 the gradient is the
 * negative side's (alpha * input_scale), as in torch's elu_backward. */

static const nn_arg_spec alpha_args[] = {
    {"alpha", NN_ARG_FLOAT, 0, {1, 0}, NULL},
    {"inplace", NN_ARG_BOOL, 0, {0, 0}, NULL},
};

static elementwise_layer *elu_family_create(const nn_arg_value *args, nn_shape in_shape, const char *name,
                                            nn_error *err) {
    elementwise_layer *layer = elementwise_create(in_shape, name, err);
    if (!layer) return NULL;
    layer->alpha = (float)args[0].value[0];
    layer->scale = layer->input_scale = 1;
    char text[40];
    snprintf(layer->repr, sizeof layer->repr, "%s(alpha=%s%s)", name,
             float_repr(text, sizeof text, &args[0], false), inplace_repr(&args[1], false));
    return layer;
}

static nn_layer *elu_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    elementwise_layer *layer = elu_family_create(args, in_shape, "ELU", err);
    return layer ? &layer->base : NULL;
}

static nn_layer *celu_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    if (args[0].value[0] == 0) {
        nn_error_set(err, NN_ERR_INPUT, "CELU alpha must not be 0 (CELU divides x by it), got 0");
        return NULL;
    }
    elementwise_layer *layer = elu_family_create(args, in_shape, "CELU", err);
    if (!layer) return NULL;
    layer->input_scale = (float)(1 / args[0].value[0]);
    return &layer->base;
}

static nn_layer *selu_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    elementwise_layer *layer = elementwise_create(in_shape, "SELU", err);
    if (!layer) return NULL;
    layer->alpha = SELU_ALPHA * SELU_SCALE;
    layer->scale = SELU_SCALE;
    layer->input_scale = 1;
    snprintf(layer->repr, sizeof layer->repr, "SELU(%s)", inplace_repr(&args[0], true));
    return &layer->base;
}

NN_VECTOR_CLONES static void elu_forward(nn_layer *base, void *context, float *out, const float *in, int batch,
                                         const nn_mode *mode) {
    (void)context;
    (void)mode;
    const elementwise_layer *layer = (const elementwise_layer *)base;
    float alpha = layer->alpha, scale = layer->scale, input_scale = layer->input_scale;
    size_t count = value_count(base, batch);
    for (size_t i = 0; i < count; i++) {
        float x = in[i];
        out[i] = x <= 0 ? alpha * (expf(x * input_scale) - 1.0f) : x * scale;
    }
}

NN_VECTOR_CLONES static void elu_backward(const nn_layer *base, void *context, float *din, const float *dout,
                                          const float *in, const float *out, int batch, float *grad,
                                          const nn_mode *mode) {
    (void)context;
    (void)grad;
    (void)mode;
    (void)out;
    if (!din) return;
    const elementwise_layer *layer = (const elementwise_layer *)base;
    float negative = layer->alpha * layer->input_scale, scale = layer->scale, input_scale = layer->input_scale;
    size_t count = value_count(base, batch);
    for (size_t i = 0; i < count; i++) {
        float x = in[i], gradient = dout[i];
        din[i] = x <= 0 ? gradient * negative * expf(x * input_scale) : gradient * scale;
    }
}

/* SiLU: x sigmoid(x). */

static nn_layer *silu_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    return inplace_only_create(args, in_shape, "SiLU", true, err);
}

NN_VECTOR_CLONES static void silu_forward(nn_layer *base, void *context, float *out, const float *in, int batch,
                                          const nn_mode *mode) {
    (void)context;
    (void)mode;
    size_t count = value_count(base, batch);
    for (size_t i = 0; i < count; i++) out[i] = in[i] / (1.0f + expf(-in[i]));
}

/* s (1 + x (1 - s)) with s = sigmoid(x). */
NN_VECTOR_CLONES static void silu_backward(const nn_layer *base, void *context, float *din, const float *dout,
                                           const float *in, const float *out, int batch, float *grad,
                                           const nn_mode *mode) {
    (void)context;
    (void)grad;
    (void)mode;
    (void)out;
    if (!din) return;
    size_t count = value_count(base, batch);
    for (size_t i = 0; i < count; i++) {
        float x = in[i];
        float s = 1.0f / (1.0f + expf(-x));
        din[i] = dout[i] * s * (1.0f + x * (1.0f - s));
    }
}

/* Mish: x tanh(softplus(x)). With e = exp(x), tanh(log(1 + e)) is
 * n / (n + 2) with n = e (e + 2): one expf where torch calls expf, log1pf
 * and tanhf (three times faster; the same within float rounding). Past
 * x = 20 that is 1 in float, and n would overflow: 1 there. */

static nn_layer *mish_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    return inplace_only_create(args, in_shape, "Mish", true, err);
}

static void mish_forward(nn_layer *base, void *context, float *out, const float *in, int batch,
                         const nn_mode *mode) {
    (void)context;
    (void)mode;
    size_t count = value_count(base, batch);
    for (size_t i = 0; i < count; i++) {
        float x = in[i], e = expf(x), n = e * (e + 2.0f);
        out[i] = x > 20.0f ? x : x * (n / (n + 2.0f));
    }
}

/* torch's t + x sigmoid(x) (1 - t^2) with t = tanh(softplus(x)); sigmoid(x)
 * is e / (1 + e) and 1 - t^2 = (1 - t)(1 + t) = 2 / (n + 2) (1 + t), which
 * does not cancel as t nears 1. Past x = 20 the gradient is 1. */
static void mish_backward(const nn_layer *base, void *context, float *din, const float *dout, const float *in,
                          const float *out, int batch, float *grad, const nn_mode *mode) {
    (void)context;
    (void)grad;
    (void)mode;
    (void)out;
    if (!din) return;
    size_t count = value_count(base, batch);
    for (size_t i = 0; i < count; i++) {
        float x = in[i], gradient = dout[i];
        float e = expf(x), n = e * (e + 2.0f), t = n / (n + 2.0f);
        float slope = t + x * (e / (1.0f + e)) * (2.0f / (n + 2.0f)) * (1.0f + t);
        din[i] = x > 20.0f ? gradient : gradient * slope;
    }
}

/* Softplus: log(1 + exp(beta x)) / beta, and x itself where beta x >
 * threshold (torch's switch to the linear function for stability). */

static const nn_arg_spec softplus_args[] = {
    {"beta", NN_ARG_FLOAT, 0, {1, 0}, NULL},
    {"threshold", NN_ARG_FLOAT, 0, {20, 0}, NULL},
};

static nn_layer *softplus_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    if (args[0].value[0] == 0) {
        nn_error_set(err, NN_ERR_INPUT, "Softplus beta must not be 0 (Softplus divides by it), got 0");
        return NULL;
    }
    elementwise_layer *layer = elementwise_create(in_shape, "Softplus", err);
    if (!layer) return NULL;
    layer->beta = (float)args[0].value[0];
    layer->threshold = (float)args[1].value[0];
    /* torch's signature has beta: int = 1, threshold: int = 20. */
    char beta[40], threshold[40];
    snprintf(layer->repr, sizeof layer->repr, "Softplus(beta=%s, threshold=%s)",
             float_repr(beta, sizeof beta, &args[0], true),
             float_repr(threshold, sizeof threshold, &args[1], true));
    return &layer->base;
}

static void softplus_forward(nn_layer *base, void *context, float *out, const float *in, int batch,
                             const nn_mode *mode) {
    (void)context;
    (void)mode;
    const elementwise_layer *layer = (const elementwise_layer *)base;
    float beta = layer->beta, threshold = layer->threshold;
    size_t count = value_count(base, batch);
    for (size_t i = 0; i < count; i++) {
        float x = in[i];
        out[i] = x * beta > threshold ? x : log1pf(expf(x * beta)) / beta;
    }
}

/* sigmoid(beta x) = z / (z + 1) with z = exp(beta x), as torch computes it. */
static void softplus_backward(const nn_layer *base, void *context, float *din, const float *dout,
                              const float *in, const float *out, int batch, float *grad, const nn_mode *mode) {
    (void)context;
    (void)grad;
    (void)mode;
    (void)out;
    if (!din) return;
    const elementwise_layer *layer = (const elementwise_layer *)base;
    float beta = layer->beta, threshold = layer->threshold;
    size_t count = value_count(base, batch);
    for (size_t i = 0; i < count; i++) {
        float x = in[i];
        float z = expf(x * beta);
        din[i] = x * beta > threshold ? dout[i] : dout[i] * z / (z + 1.0f);
    }
}

/* Softsign: x / (1 + |x|). */

static nn_layer *softsign_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    (void)args;
    elementwise_layer *layer = elementwise_create(in_shape, "Softsign", err);
    return layer ? &layer->base : NULL;
}

static void softsign_forward(nn_layer *base, void *context, float *out, const float *in, int batch,
                             const nn_mode *mode) {
    (void)context;
    (void)mode;
    size_t count = value_count(base, batch);
    for (size_t i = 0; i < count; i++) out[i] = in[i] / (1.0f + fabsf(in[i]));
}

static void softsign_backward(const nn_layer *base, void *context, float *din, const float *dout,
                              const float *in, const float *out, int batch, float *grad, const nn_mode *mode) {
    (void)context;
    (void)grad;
    (void)mode;
    (void)out;
    if (!din) return;
    size_t count = value_count(base, batch);
    for (size_t i = 0; i < count; i++) {
        float d = 1.0f + fabsf(in[i]);
        din[i] = dout[i] / (d * d);
    }
}

/* Hardtanh: x clamped to [min_val, max_val]; ReLU6 is Hardtanh(0, 6), as in
 * torch. The gradient is 0 at the bounds themselves (torch's
 * hardtanh_backward). min_value and max_value are torch's deprecated
 * spellings: when given they replace min_val and max_val. */

enum { HARDTANH_MIN, HARDTANH_MAX, HARDTANH_INPLACE, HARDTANH_MIN_VALUE, HARDTANH_MAX_VALUE };

static const nn_arg_spec hardtanh_args[] = {
    {"min_val", NN_ARG_FLOAT, 0, {-1, 0}, NULL},
    {"max_val", NN_ARG_FLOAT, 0, {1, 0}, NULL},
    {"inplace", NN_ARG_BOOL, 0, {0, 0}, NULL},
    {"min_value", NN_ARG_FLOAT, NN_ARG_OPTIONAL | NN_ARG_NULLABLE, {0, 0}, NULL},
    {"max_value", NN_ARG_FLOAT, NN_ARG_OPTIONAL | NN_ARG_NULLABLE, {0, 0}, NULL},
};

static nn_layer *hardtanh_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    const nn_arg_value *min = &args[HARDTANH_MIN], *max = &args[HARDTANH_MAX];
    if (args[HARDTANH_MIN_VALUE].given && !args[HARDTANH_MIN_VALUE].is_null) min = &args[HARDTANH_MIN_VALUE];
    if (args[HARDTANH_MAX_VALUE].given && !args[HARDTANH_MAX_VALUE].is_null) max = &args[HARDTANH_MAX_VALUE];
    char min_text[40], max_text[40];
    float_repr(min_text, sizeof min_text, min, false);
    float_repr(max_text, sizeof max_text, max, false);
    if (!(max->value[0] > min->value[0])) {
        nn_error_set(err, NN_ERR_INPUT,
                     "Hardtanh max_val must be greater than min_val, got min_val=%s, max_val=%s", min_text,
                     max_text);
        return NULL;
    }
    elementwise_layer *layer = elementwise_create(in_shape, "Hardtanh", err);
    if (!layer) return NULL;
    layer->min_val = (float)min->value[0];
    layer->max_val = (float)max->value[0];
    snprintf(layer->repr, sizeof layer->repr, "Hardtanh(min_val=%s, max_val=%s%s)", min_text, max_text,
             inplace_repr(&args[HARDTANH_INPLACE], false));
    return &layer->base;
}

static nn_layer *relu6_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    elementwise_layer *layer = (elementwise_layer *)inplace_only_create(args, in_shape, "ReLU6", true, err);
    if (!layer) return NULL;
    layer->min_val = 0;
    layer->max_val = 6;
    return &layer->base;
}

/* NaN passes through, as torch's clamp lets it. */
static void hardtanh_forward(nn_layer *base, void *context, float *out, const float *in, int batch,
                             const nn_mode *mode) {
    (void)context;
    (void)mode;
    const elementwise_layer *layer = (const elementwise_layer *)base;
    float low = layer->min_val, high = layer->max_val;
    size_t count = value_count(base, batch);
    for (size_t i = 0; i < count; i++) {
        float x = in[i];
        out[i] = x < low ? low : x > high ? high : x;
    }
}

static void hardtanh_backward(const nn_layer *base, void *context, float *din, const float *dout,
                              const float *in, const float *out, int batch, float *grad, const nn_mode *mode) {
    (void)context;
    (void)grad;
    (void)mode;
    (void)out;
    if (!din) return;
    const elementwise_layer *layer = (const elementwise_layer *)base;
    float low = layer->min_val, high = layer->max_val;
    size_t count = value_count(base, batch);
    for (size_t i = 0; i < count; i++) {
        float x = in[i], gradient = dout[i];
        din[i] = x <= low || x >= high ? 0.0f : gradient;
    }
}

/* min(max(x, 0), 6) as torch's std::min and std::max take it (NaN passes
 * through); compares, unlike fminf and fmaxf, which gcc does not vectorise. */
static inline float relu6_of(float x) {
    x = x < 0.0f ? 0.0f : x;
    return x > 6.0f ? 6.0f : x;
}

/* Hardsigmoid: clamp(x + 3, 0, 6) / 6; gradient 1/6 strictly inside (-3, 3). */

static nn_layer *hardsigmoid_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    return inplace_only_create(args, in_shape, "Hardsigmoid", false, err);
}

static void hardsigmoid_forward(nn_layer *base, void *context, float *out, const float *in, int batch,
                                const nn_mode *mode) {
    (void)context;
    (void)mode;
    size_t count = value_count(base, batch);
    for (size_t i = 0; i < count; i++) out[i] = relu6_of(in[i] + 3.0f) / 6.0f;
}

static void hardsigmoid_backward(const nn_layer *base, void *context, float *din, const float *dout,
                                 const float *in, const float *out, int batch, float *grad, const nn_mode *mode) {
    (void)context;
    (void)grad;
    (void)mode;
    (void)out;
    if (!din) return;
    size_t count = value_count(base, batch);
    for (size_t i = 0; i < count; i++) {
        float x = in[i], inside = dout[i] / 6.0f;
        din[i] = ((x > -3.0f) & (x < 3.0f)) ? inside : 0.0f;
    }
}

/* Hardswish: x clamp(x + 3, 0, 6) / 6. torch's gradient: 0 below -3,
 * x/3 + 1/2 on [-3, 3) (so -1/2 at -3), 1 from 3 on. That is its
 * vectorised kernel, which every value of a tensor goes through but the
 * last few (n mod 16); its scalar tail gives 3/2 at exactly 3. */

static nn_layer *hardswish_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    return inplace_only_create(args, in_shape, "Hardswish", false, err);
}

static void hardswish_forward(nn_layer *base, void *context, float *out, const float *in, int batch,
                              const nn_mode *mode) {
    (void)context;
    (void)mode;
    size_t count = value_count(base, batch);
    for (size_t i = 0; i < count; i++) out[i] = in[i] * relu6_of(in[i] + 3.0f) / 6.0f;
}

static void hardswish_backward(const nn_layer *base, void *context, float *din, const float *dout,
                               const float *in, const float *out, int batch, float *grad, const nn_mode *mode) {
    (void)context;
    (void)grad;
    (void)mode;
    (void)out;
    if (!din) return;
    size_t count = value_count(base, batch);
    for (size_t i = 0; i < count; i++) {
        float x = in[i], gradient = dout[i], inside = gradient * (x / 3.0f + 0.5f);
        float upper = x < 3.0f ? inside : gradient;
        din[i] = x < -3.0f ? 0.0f : upper;
    }
}

/* Threshold: x where x > threshold, else value; gradient 0 at x <= threshold. */

static const nn_arg_spec threshold_args[] = {
    {"threshold", NN_ARG_FLOAT, NN_ARG_REQUIRED, {0, 0}, NULL},
    {"value", NN_ARG_FLOAT, NN_ARG_REQUIRED, {0, 0}, NULL},
    {"inplace", NN_ARG_BOOL, 0, {0, 0}, NULL},
};

static nn_layer *threshold_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    elementwise_layer *layer = elementwise_create(in_shape, "Threshold", err);
    if (!layer) return NULL;
    layer->threshold = (float)args[0].value[0];
    layer->value = (float)args[1].value[0];
    char threshold[40], value[40];
    snprintf(layer->repr, sizeof layer->repr, "Threshold(threshold=%s, value=%s%s)",
             float_repr(threshold, sizeof threshold, &args[0], false),
             float_repr(value, sizeof value, &args[1], false), inplace_repr(&args[2], false));
    return &layer->base;
}

/* x <= threshold, not x > threshold: NaN passes through, as in torch. */
static void threshold_forward(nn_layer *base, void *context, float *out, const float *in, int batch,
                              const nn_mode *mode) {
    (void)context;
    (void)mode;
    const elementwise_layer *layer = (const elementwise_layer *)base;
    float threshold = layer->threshold, value = layer->value;
    size_t count = value_count(base, batch);
    for (size_t i = 0; i < count; i++) {
        float x = in[i];
        out[i] = x <= threshold ? value : x;
    }
}

static void threshold_backward(const nn_layer *base, void *context, float *din, const float *dout,
                               const float *in, const float *out, int batch, float *grad, const nn_mode *mode) {
    (void)context;
    (void)grad;
    (void)mode;
    (void)out;
    if (!din) return;
    float threshold = ((const elementwise_layer *)base)->threshold;
    size_t count = value_count(base, batch);
    for (size_t i = 0; i < count; i++) {
        float gradient = dout[i];
        din[i] = in[i] <= threshold ? 0.0f : gradient;
    }
}

#define ELEMENTWISE_KIND(symbol, torch_name, create_prefix, loops, arg_table)                      \
    const nn_layer_kind symbol = {                                                                 \
        .name = torch_name,                                                                        \
        .args = arg_table,                                                                         \
        .arg_count = sizeof arg_table / sizeof arg_table[0],                                       \
        .create = create_prefix##_create,                                                          \
        .forward = loops##_forward,                                                                \
        .backward = loops##_backward,                                                              \
        .describe = elementwise_describe,                                                          \
        .destroy = elementwise_destroy,                                                            \
    }

#define PLAIN_KIND(symbol, torch_name, prefix)                                                     \
    const nn_layer_kind symbol = {                                                                 \
        .name = torch_name,                                                                        \
        .create = prefix##_create,                                                                 \
        .forward = prefix##_forward,                                                               \
        .backward = prefix##_backward,                                                             \
        .describe = elementwise_describe,                                                          \
        .destroy = elementwise_destroy,                                                            \
    }

/* Identity passes its input on: the copy the reshaping kinds share. */
const nn_layer_kind nn_identity_kind = {
    .name = "Identity",
    .create = identity_create,
    .forward = nn_layer_copy_forward,
    .backward = nn_layer_copy_backward,
    .describe = elementwise_describe,
    .destroy = elementwise_destroy,
};
PLAIN_KIND(nn_sigmoid_kind, "Sigmoid", sigmoid);
PLAIN_KIND(nn_tanh_kind, "Tanh", tanh);
PLAIN_KIND(nn_softsign_kind, "Softsign", softsign);
ELEMENTWISE_KIND(nn_relu_kind, "ReLU", relu, relu, inplace_args);
ELEMENTWISE_KIND(nn_leaky_relu_kind, "LeakyReLU", leaky_relu, leaky_relu, leaky_relu_args);
ELEMENTWISE_KIND(nn_gelu_kind, "GELU", gelu, gelu, gelu_args);
ELEMENTWISE_KIND(nn_elu_kind, "ELU", elu, elu, alpha_args);
ELEMENTWISE_KIND(nn_celu_kind, "CELU", celu, elu, alpha_args);
ELEMENTWISE_KIND(nn_selu_kind, "SELU", selu, elu, inplace_args);
ELEMENTWISE_KIND(nn_silu_kind, "SiLU", silu, silu, inplace_args);
ELEMENTWISE_KIND(nn_mish_kind, "Mish", mish, mish, inplace_args);
ELEMENTWISE_KIND(nn_softplus_kind, "Softplus", softplus, softplus, softplus_args);
ELEMENTWISE_KIND(nn_hardtanh_kind, "Hardtanh", hardtanh, hardtanh, hardtanh_args);
ELEMENTWISE_KIND(nn_relu6_kind, "ReLU6", relu6, hardtanh, inplace_args);
ELEMENTWISE_KIND(nn_hardsigmoid_kind, "Hardsigmoid", hardsigmoid, hardsigmoid, inplace_args);
ELEMENTWISE_KIND(nn_hardswish_kind, "Hardswish", hardswish, hardswish, inplace_args);
ELEMENTWISE_KIND(nn_threshold_kind, "Threshold", threshold, threshold, threshold_args);
