/* Conv2d, Conv1d and ConvTranspose2d: gradients by finite differences,
 * forward and backward against direct convolutions written here (every
 * padding mode, 'same', dilation, groups), batch splits, shape inference,
 * every error, init and PyTorch's repr. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layers.h"
#include "gradcheck.h"
#include "testutil.h"

enum { ZEROS, REFLECT, REPLICATE, CIRCULAR };

/* A Conv2d, or with a rank-2 in_shape a Conv1d (then [0] of each pair is
 * height 1: kernel 1, stride 1, padding 0, dilation 1). Zero dilation and
 * groups mean 1. */
typedef struct conv_case {
    nn_shape in_shape;
    int out_channels;
    int kernel[2], stride[2], padding[2];
    bool bias;
    int batch;
    int dilation[2], groups;
    int mode;      /* padding_mode */
    bool same;     /* padding='same' */
} conv_case;

static const nn_layer_kind *case_kind(const conv_case *c) {
    return c->in_shape.rank == 2 ? &nn_conv1d_kind : &nn_conv2d_kind;
}

static void set_choice(const nn_layer_kind *kind, nn_arg_value *args, const char *name, int index) {
    int i = nn_arg_find(kind->args, kind->arg_count, name);
    ck_assert_int_ge(i, 0);
    args[i].given = true;
    args[i].choice = index + 1;
    args[i].value[0] = index;
}

/* A window argument: a pair for Conv2d, one int ([1] of the pair) for Conv1d. */
static void set_window(const nn_layer_kind *kind, nn_arg_value *args, const char *name, const int pair[2]) {
    gradcheck_args_set(kind, args, name, pair[0], pair[1]);
    if (kind != &nn_conv1d_kind) return;
    int i = nn_arg_find(kind->args, kind->arg_count, name);
    args[i].value[0] = pair[1];
    args[i].count = 1;
}

static void conv_case_args(nn_arg_value *args, const conv_case *c) {
    const nn_layer_kind *kind = case_kind(c);
    gradcheck_args_default(kind, args);
    gradcheck_args_set(kind, args, "out_channels", c->out_channels, 0);
    set_window(kind, args, "kernel_size", c->kernel);
    set_window(kind, args, "stride", c->stride);
    if (c->same)
        set_choice(kind, args, "padding", 1);
    else
        set_window(kind, args, "padding", c->padding);
    gradcheck_args_set(kind, args, "bias", c->bias, 0);
    if (c->dilation[0] || c->dilation[1]) set_window(kind, args, "dilation", c->dilation);
    if (c->groups) gradcheck_args_set(kind, args, "groups", c->groups, 0);
    if (c->mode) set_choice(kind, args, "padding_mode", c->mode);
}

/* The case's geometry as the definition reads it. */
typedef struct reference {
    int channels, size[2], out[2], before[2], kernel[2], stride[2], dilation[2];
    int groups, in_group, out_group, out_channels, mode;
} reference;

static reference case_reference(const conv_case *c, const nn_layer *layer) {
    bool one_d = c->in_shape.rank == 2;
    reference r = {.channels = c->in_shape.dims[0], .out_channels = c->out_channels, .mode = c->mode};
    r.size[0] = one_d ? 1 : c->in_shape.dims[1];
    r.size[1] = c->in_shape.dims[one_d ? 1 : 2];
    r.groups = c->groups ? c->groups : 1;
    r.in_group = r.channels / r.groups;
    r.out_group = c->out_channels / r.groups;
    for (int k = 0; k < 2; k++) {
        r.kernel[k] = c->kernel[k];
        r.stride[k] = c->stride[k];
        r.dilation[k] = c->dilation[k] ? c->dilation[k] : 1;
        int extent = r.dilation[k] * (r.kernel[k] - 1);
        r.before[k] = c->same ? extent / 2 : c->padding[k];
    }
    r.out[0] = one_d ? 1 : layer->out_shape.dims[1];
    r.out[1] = layer->out_shape.dims[one_d ? 1 : 2];
    return r;
}

/* The input position padded position p (relative to the input's start)
 * reads, or -1 for a zero. */
static int reference_source(int p, int size, int mode) {
    if (p >= 0 && p < size) return p;
    switch (mode) {
    case ZEROS: return -1;
    case REFLECT: return p < 0 ? -p : 2 * (size - 1) - p;
    case REPLICATE: return p < 0 ? 0 : size - 1;
    default: return p < 0 ? p + size : p - size;
    }
}

/* Calls visit for every (output, input, weight) index triple of the
 * definition, input -1 for the padding zeros left out. */
#define FOR_EACH_TERM(r, batch, BODY)                                                                         \
    for (int b = 0; b < (batch); b++)                                                                         \
        for (int o = 0; o < (r).out_channels; o++)                                                            \
            for (int y = 0; y < (r).out[0]; y++)                                                              \
                for (int x = 0; x < (r).out[1]; x++) {                                                        \
                    size_t out_index = (((size_t)b * (r).out_channels + o) * (r).out[0] + y) * (r).out[1] + x; \
                    for (int ch = 0; ch < (r).in_group; ch++)                                                 \
                        for (int i = 0; i < (r).kernel[0]; i++)                                               \
                            for (int j = 0; j < (r).kernel[1]; j++) {                                         \
                                int row = reference_source(y * (r).stride[0] + i * (r).dilation[0] -          \
                                                               (r).before[0], (r).size[0], (r).mode);         \
                                int col = reference_source(x * (r).stride[1] + j * (r).dilation[1] -          \
                                                               (r).before[1], (r).size[1], (r).mode);         \
                                if (row < 0 || col < 0) continue;                                             \
                                int channel = o / (r).out_group * (r).in_group + ch;                          \
                                size_t in_index =                                                             \
                                    (((size_t)b * (r).channels + channel) * (r).size[0] + row) * (r).size[1] + col; \
                                size_t w_index = (((size_t)o * (r).in_group + ch) * (r).kernel[0] + i) * (r).kernel[1] + j; \
                                BODY                                                                          \
                            }                                                                                 \
                }

/* The definition, one output at a time, in double. */
static void direct_forward(double *out, const float *in, const float *weight, const float *bias, const reference *r,
                           int batch) {
    for (int b = 0; b < batch; b++)
        for (int o = 0; o < r->out_channels; o++)
            for (int p = 0; p < r->out[0] * r->out[1]; p++)
                out[((size_t)b * r->out_channels + o) * r->out[0] * r->out[1] + p] = bias ? bias[o] : 0;
    FOR_EACH_TERM(*r, batch, { out[out_index] += (double)in[in_index] * weight[w_index]; })
}

/* The adjoint of direct_forward for a given dout. */
static void direct_backward(double *din, double *dweight, double *dbias, const float *dout, const float *in,
                            const float *weight, const reference *r, int batch) {
    for (int b = 0; b < batch; b++)
        for (int o = 0; o < r->out_channels; o++)
            for (int p = 0; p < r->out[0] * r->out[1]; p++)
                dbias[o] += dout[((size_t)b * r->out_channels + o) * r->out[0] * r->out[1] + p];
    FOR_EACH_TERM(*r, batch, {
        din[in_index] += (double)dout[out_index] * weight[w_index];
        dweight[w_index] += (double)dout[out_index] * in[in_index];
    })
}

/* Odd sizes, padding, strides, non-square kernels, batch 1 and more. */
static const conv_case gradient_cases[] = {
    {{3, {1, 5, 5}}, 2, {3, 3}, {1, 1}, {0, 0}, true, 2, {0, 0}, 0, ZEROS, false},
    {{3, {2, 7, 6}}, 3, {3, 2}, {2, 1}, {1, 0}, true, 3, {0, 0}, 0, ZEROS, false},
    {{3, {3, 6, 7}}, 2, {2, 3}, {1, 2}, {1, 1}, false, 1, {0, 0}, 0, ZEROS, false},
    {{3, {2, 5, 5}}, 2, {1, 1}, {2, 2}, {2, 1}, true, 2, {0, 0}, 0, ZEROS, false},
    {{3, {1, 4, 9}}, 4, {4, 5}, {3, 2}, {2, 2}, true, 2, {0, 0}, 0, ZEROS, false},
    {{3, {2, 3, 3}}, 1, {3, 3}, {1, 1}, {1, 1}, true, 4, {0, 0}, 0, ZEROS, false},
    /* 30x30 -> 28x28: two samples per product, so batch 3 spans two chunks */
    {{3, {1, 30, 30}}, 2, {3, 3}, {1, 1}, {0, 0}, true, 3, {0, 0}, 0, ZEROS, false},
    /* dilation, in one dimension and both, with stride and padding */
    {{3, {2, 9, 8}}, 3, {3, 2}, {1, 1}, {1, 0}, true, 2, {2, 3}, 0, ZEROS, false},
    {{3, {2, 11, 9}}, 2, {3, 3}, {2, 3}, {2, 1}, false, 2, {3, 2}, 0, ZEROS, false},
    /* groups; depthwise with a channel multiplier */
    {{3, {4, 6, 5}}, 6, {3, 2}, {1, 1}, {1, 0}, true, 2, {0, 0}, 2, ZEROS, false},
    {{3, {3, 5, 6}}, 6, {3, 3}, {2, 1}, {1, 1}, true, 2, {2, 1}, 3, ZEROS, false},
    /* 'same', odd and even windows (the even one pads one more after) */
    {{3, {2, 5, 6}}, 2, {3, 3}, {1, 1}, {0, 0}, true, 2, {0, 0}, 0, ZEROS, true},
    {{3, {2, 5, 7}}, 3, {4, 2}, {1, 1}, {0, 0}, true, 2, {1, 2}, 0, ZEROS, true},
    /* each explicit padding mode, symmetric and asymmetric ('same', even window) */
    {{3, {2, 5, 6}}, 2, {3, 3}, {1, 2}, {2, 1}, true, 2, {0, 0}, 0, REFLECT, false},
    {{3, {2, 5, 6}}, 2, {3, 3}, {2, 1}, {3, 4}, true, 2, {0, 0}, 0, REPLICATE, false},
    {{3, {2, 5, 6}}, 2, {3, 2}, {1, 1}, {5, 2}, false, 2, {1, 2}, 0, CIRCULAR, false},
    {{3, {2, 5, 6}}, 2, {4, 2}, {1, 1}, {0, 0}, true, 2, {1, 1}, 2, REFLECT, true},
    {{3, {2, 5, 6}}, 4, {2, 4}, {1, 1}, {0, 0}, true, 2, {2, 1}, 2, CIRCULAR, true},
    {{3, {2, 4, 3}}, 2, {2, 2}, {1, 1}, {0, 0}, true, 3, {0, 0}, 0, REPLICATE, true},
    /* Conv1d: plain, every argument, 'same' and the padding modes */
    {{2, {3, 9}}, 2, {1, 3}, {1, 1}, {0, 0}, true, 2, {0, 0}, 0, ZEROS, false},
    {{2, {4, 13}}, 6, {1, 3}, {1, 2}, {0, 2}, false, 2, {1, 2}, 2, ZEROS, false},
    {{2, {3, 8}}, 3, {1, 4}, {1, 1}, {0, 0}, true, 2, {1, 1}, 3, REFLECT, true},
    {{2, {2, 7}}, 2, {1, 3}, {1, 2}, {0, 4}, true, 2, {1, 1}, 0, REPLICATE, false},
    {{2, {2, 7}}, 2, {1, 2}, {1, 1}, {0, 7}, true, 2, {1, 3}, 0, CIRCULAR, false},
};

START_TEST(conv_gradients) {
    const conv_case *c = &gradient_cases[_i];
    nn_arg_value args[NN_MAX_ARGS];
    conv_case_args(args, c);
    for (int training = 0; training <= 1; training++) {
        gradcheck_result r = gradcheck_layer(case_kind(c), args, c->in_shape,
                                             (gradcheck_options){.batch = c->batch, .training = training,
                                                                 .seed = 10 + (uint64_t)_i});
        ck_assert_msg(r.ok, "case %d training %d: %s", _i, training, r.message);
    }
}
END_TEST

static void fill_uniform(float *data, size_t count, nn_rng *rng) {
    for (size_t i = 0; i < count; i++) data[i] = nn_rng_uniform_range(rng, -1, 1);
}

static void assert_close(const float *got, const double *want, size_t count, double tolerance, const char *what,
                         int case_index) {
    for (size_t i = 0; i < count; i++)
        ck_assert_msg(fabs(got[i] - want[i]) <= tolerance * (1 + fabs(want[i])),
                      "case %d %s[%zu]: got %.7g want %.7g", case_index, what, i, got[i], want[i]);
}

/* Larger than the gradient cases; several span more than one product chunk
 * (the last one partial) and batch sizes below the context's capacity. */
static const conv_case direct_cases[] = {
    {{3, {1, 28, 28}}, 8, {3, 3}, {1, 1}, {0, 0}, true, 5, {0, 0}, 0, ZEROS, false},
    {{3, {3, 30, 30}}, 4, {3, 3}, {1, 1}, {0, 0}, true, 5, {0, 0}, 0, ZEROS, false},
    {{3, {4, 13, 11}}, 6, {3, 3}, {1, 1}, {1, 1}, true, 7, {0, 0}, 0, ZEROS, false},
    {{3, {2, 17, 16}}, 5, {5, 3}, {2, 3}, {2, 1}, false, 3, {0, 0}, 0, ZEROS, false},
    {{3, {3, 9, 10}}, 4, {2, 4}, {3, 1}, {1, 2}, true, 1, {0, 0}, 0, ZEROS, false},
    {{3, {2, 50, 47}}, 3, {4, 4}, {1, 1}, {1, 1}, true, 3, {0, 0}, 0, ZEROS, false},
    /* stride 1 with output rows as wide as the input's (the contiguous
     * im2col and col2im): whole rows of padding above and below, none in
     * height, a one-column input (kernel columns wholly in padding), 1x1 */
    {{3, {2, 9, 7}}, 3, {3, 3}, {1, 1}, {2, 1}, true, 3, {0, 0}, 0, ZEROS, false},
    {{3, {3, 10, 9}}, 3, {5, 5}, {1, 1}, {0, 2}, true, 3, {0, 0}, 0, ZEROS, false},
    {{3, {3, 6, 1}}, 2, {3, 3}, {1, 1}, {1, 1}, true, 2, {0, 0}, 0, ZEROS, false},
    {{3, {5, 8, 8}}, 4, {1, 1}, {1, 1}, {0, 0}, false, 4, {0, 0}, 0, ZEROS, false},
    /* the new arguments at sizes that span product chunks: dilation on the
     * contiguous path (stride 1, 'same'), groups, every padding mode */
    {{3, {3, 30, 29}}, 4, {3, 3}, {1, 1}, {2, 2}, true, 5, {2, 2}, 0, ZEROS, false},
    {{3, {4, 28, 28}}, 8, {3, 3}, {1, 1}, {0, 0}, true, 5, {1, 1}, 4, ZEROS, true},
    {{3, {6, 17, 16}}, 4, {5, 3}, {2, 3}, {2, 1}, false, 3, {1, 2}, 2, ZEROS, false},
    {{3, {3, 31, 30}}, 3, {4, 4}, {1, 1}, {0, 0}, true, 4, {1, 1}, 1, REFLECT, true},
    {{3, {2, 20, 19}}, 3, {3, 3}, {2, 1}, {7, 5}, true, 3, {2, 1}, 0, REPLICATE, false},
    {{3, {2, 9, 12}}, 4, {3, 5}, {1, 2}, {9, 12}, true, 3, {1, 1}, 2, CIRCULAR, false},
    {{2, {3, 300}}, 6, {1, 5}, {1, 1}, {0, 0}, true, 9, {1, 3}, 3, REFLECT, true},
};

START_TEST(conv_matches_direct_convolution) {
    conv_case c = direct_cases[_i];
    const nn_layer_kind *kind = case_kind(&c);
    nn_arg_value args[NN_MAX_ARGS];
    conv_case_args(args, &c);
    nn_error err = {0};
    nn_layer *layer = kind->create(args, c.in_shape, &err);
    ck_assert_msg(layer != NULL, "%s", err.message);
    layer->kind = kind;
    reference ref = case_reference(&c, layer);
    size_t params = nn_layer_param_count(layer), weight_count = nn_array_count(&layer->state[0].array);
    size_t in_count = (size_t)c.batch * nn_shape_size(c.in_shape);
    size_t out_count = (size_t)c.batch * nn_shape_size(layer->out_shape);
    float *param = malloc(params * sizeof *param), *grad = malloc(params * sizeof *grad);
    float *in = malloc(in_count * sizeof *in), *din = malloc(in_count * sizeof *din);
    float *out = malloc(out_count * sizeof *out), *dout = malloc(out_count * sizeof *dout);
    double *want_out = calloc(out_count, sizeof *want_out), *want_din = calloc(in_count, sizeof *want_din);
    /* room for the bias gradient even when the layer has none */
    double *want_grad = calloc(weight_count + (size_t)c.out_channels, sizeof *want_grad);
    nn_rng rng;
    nn_rng_seed(&rng, 100 + (uint64_t)_i);
    nn_layer_bind(layer, param);
    fill_uniform(param, params, &rng);
    fill_uniform(in, in_count, &rng);
    fill_uniform(dout, out_count, &rng);
    /* backward overwrites the gradients: start them at NaN */
    for (size_t i = 0; i < params; i++) grad[i] = NAN;
    /* a context for more samples than used */
    void *context = kind->context_create(layer, c.batch + 2, &err);
    ck_assert_msg(context != NULL, "%s", err.message);
    nn_mode train = {.training = true}, eval = {.training = false};
    kind->forward(layer, context, out, in, c.batch, &train);
    kind->backward(layer, context, din, dout, in, out, c.batch, grad, &train);
    const float *bias = c.bias ? param + weight_count : NULL;
    direct_forward(want_out, in, param, bias, &ref, c.batch);
    direct_backward(want_din, want_grad, want_grad + weight_count, dout, in, param, &ref, c.batch);
    assert_close(out, want_out, out_count, 1e-5, "out", _i);
    assert_close(din, want_din, in_count, 1e-5, "din", _i);
    assert_close(grad, want_grad, params, 1e-4, "grad", _i);
    /* without din (the first layer of a model) the parameter gradients are the same */
    for (size_t i = 0; i < params; i++) grad[i] = NAN;
    kind->forward(layer, context, out, in, c.batch, &eval);
    kind->backward(layer, context, NULL, dout, in, out, c.batch, grad, &eval);
    assert_close(grad, want_grad, params, 1e-4, "grad without din", _i);
    kind->context_free(context);
    kind->destroy(layer);
    free(param), free(grad), free(in), free(din), free(out), free(dout);
    free(want_out), free(want_din), free(want_grad);
}
END_TEST

/* A batch's data for one layer: inputs given, results written. */
typedef struct conv_run {
    int batch;
    const float *in, *dout;
    float *out, *din, *grad;
} conv_run;

static conv_run conv_run_new(const nn_layer *layer, const float *in, const float *dout, int batch) {
    return (conv_run){batch, in, dout, malloc((size_t)batch * nn_shape_size(layer->out_shape) * sizeof(float)),
                      malloc((size_t)batch * nn_shape_size(layer->in_shape) * sizeof(float)),
                      malloc(nn_layer_param_count(layer) * sizeof(float))};
}

static void conv_run_free(conv_run *r) { free(r->out), free(r->din), free(r->grad); }

static void conv_run_forward(nn_layer *layer, void *context, conv_run *r, const nn_mode *mode) {
    layer->kind->forward(layer, context, r->out, r->in, r->batch, mode);
}

static void conv_run_backward(nn_layer *layer, void *context, conv_run *r, const nn_mode *mode) {
    layer->kind->backward(layer, context, r->din, r->dout, r->in, r->out, r->batch, r->grad, mode);
}

static void assert_same_run(const nn_layer *layer, const conv_run *got, const conv_run *want, const char *what) {
    size_t in_count = (size_t)got->batch * nn_shape_size(layer->in_shape);
    size_t out_count = (size_t)got->batch * nn_shape_size(layer->out_shape);
    ck_assert_msg(memcmp(got->out, want->out, out_count * sizeof(float)) == 0, "%s: out differs", what);
    ck_assert_msg(memcmp(got->din, want->din, in_count * sizeof(float)) == 0, "%s: din differs", what);
    ck_assert_msg(memcmp(got->grad, want->grad, nn_layer_param_count(layer) * sizeof(float)) == 0,
                  "%s: grad differs", what);
}

/* The point of contexts: two replicas' contexts of one layer, used in turn
 * (forward A, forward B, backward A, backward B), give bit for bit what
 * each batch gives alone with a context of its own. The batches differ in
 * size and span several product chunks (28x28 outputs: two samples per
 * product). */
START_TEST(conv_contexts_are_independent) {
    const conv_case cases[] = {
        {{3, {2, 30, 30}}, 4, {3, 3}, {1, 1}, {0, 0}, true, 0, {0, 0}, 0, ZEROS, false},
        {{3, {3, 28, 28}}, 5, {3, 3}, {1, 1}, {1, 1}, true, 0, {0, 0}, 0, ZEROS, false},
        {{3, {2, 11, 13}}, 3, {3, 2}, {2, 1}, {1, 1}, false, 0, {0, 0}, 0, ZEROS, false},
    };
    for (int k = 0; k < 3; k++) {
        nn_arg_value args[NN_MAX_ARGS];
        conv_case_args(args, &cases[k]);
        nn_error err = {0};
        nn_layer *layer = nn_conv2d_kind.create(args, cases[k].in_shape, &err);
        ck_assert_msg(layer != NULL, "%s", err.message);
        layer->kind = &nn_conv2d_kind;
        size_t params = nn_layer_param_count(layer), in_size = nn_shape_size(layer->in_shape);
        size_t out_size = nn_shape_size(layer->out_shape);
        int batch[2] = {3, 5};
        float *param = malloc(params * sizeof *param), *in = malloc(8 * in_size * sizeof *in);
        float *dout = malloc(8 * out_size * sizeof *dout);
        nn_rng rng;
        nn_rng_seed(&rng, 300 + (uint64_t)k);
        fill_uniform(param, params, &rng);
        fill_uniform(in, 8 * in_size, &rng);
        fill_uniform(dout, 8 * out_size, &rng);
        nn_layer_bind(layer, param);
        nn_mode mode = {.training = true};
        conv_run alone[2], turn[2];
        for (int r = 0; r < 2; r++) {
            const float *run_in = in + (r ? 3 * in_size : 0), *run_dout = dout + (r ? 3 * out_size : 0);
            alone[r] = conv_run_new(layer, run_in, run_dout, batch[r]);
            turn[r] = conv_run_new(layer, run_in, run_dout, batch[r]);
            void *context = nn_conv2d_kind.context_create(layer, batch[r], &err);
            ck_assert_msg(context != NULL, "%s", err.message);
            conv_run_forward(layer, context, &alone[r], &mode);
            conv_run_backward(layer, context, &alone[r], &mode);
            nn_conv2d_kind.context_free(context);
        }
        void *a = nn_conv2d_kind.context_create(layer, 5, &err), *b = nn_conv2d_kind.context_create(layer, 5, &err);
        ck_assert_msg(a && b, "%s", err.message);
        conv_run_forward(layer, a, &turn[0], &mode);
        conv_run_forward(layer, b, &turn[1], &mode);
        conv_run_backward(layer, a, &turn[0], &mode);
        conv_run_backward(layer, b, &turn[1], &mode);
        assert_same_run(layer, &turn[0], &alone[0], "context A");
        assert_same_run(layer, &turn[1], &alone[1], "context B");
        nn_conv2d_kind.context_free(a);
        nn_conv2d_kind.context_free(b);
        for (int r = 0; r < 2; r++) conv_run_free(&alone[r]), conv_run_free(&turn[r]);
        nn_conv2d_kind.destroy(layer);
        free(param), free(in), free(dout);
    }
}
END_TEST

static nn_layer *create_conv(nn_shape in_shape, int out_channels, int kh, int kw, nn_error *err) {
    nn_arg_value args[NN_MAX_ARGS];
    gradcheck_args_default(&nn_conv2d_kind, args);
    gradcheck_args_set(&nn_conv2d_kind, args, "out_channels", out_channels, 0);
    gradcheck_args_set(&nn_conv2d_kind, args, "kernel_size", kh, kw);
    return nn_conv2d_kind.create(args, in_shape, err);
}

START_TEST(conv_state_and_shapes) {
    nn_error err = {0};
    nn_layer *layer = create_conv((nn_shape){3, {3, 13, 12}}, 64, 3, 2, &err);
    ck_assert_ptr_nonnull(layer);
    ck_assert_int_eq(layer->out_shape.rank, 3);
    ck_assert_int_eq(layer->out_shape.dims[0], 64);
    ck_assert_int_eq(layer->out_shape.dims[1], 11);
    ck_assert_int_eq(layer->out_shape.dims[2], 11);
    ck_assert_int_eq(layer->state_count, 2);
    ck_assert_str_eq(layer->state[0].array.name, "weight");
    ck_assert(layer->state[0].trainable);
    ck_assert_int_eq(layer->state[0].array.rank, 4);
    int64_t want[4] = {64, 3, 3, 2};
    for (int d = 0; d < 4; d++) ck_assert_int_eq(layer->state[0].array.dims[d], want[d]);
    ck_assert_str_eq(layer->state[1].array.name, "bias");
    ck_assert_int_eq(layer->state[1].array.rank, 1);
    ck_assert_int_eq(layer->state[1].array.dims[0], 64);
    ck_assert_int_eq(nn_layer_param_count(layer), 64 * 3 * 3 * 2 + 64);
    nn_conv2d_kind.destroy(layer);

    /* stride and padding: floor((13 + 2*2 - 5) / 3) + 1 = 5, floor((12 + 0 - 3) / 2) + 1 = 5 */
    nn_arg_value args[NN_MAX_ARGS];
    gradcheck_args_default(&nn_conv2d_kind, args);
    gradcheck_args_set(&nn_conv2d_kind, args, "out_channels", 4, 0);
    gradcheck_args_set(&nn_conv2d_kind, args, "kernel_size", 5, 3);
    gradcheck_args_set(&nn_conv2d_kind, args, "stride", 3, 2);
    gradcheck_args_set(&nn_conv2d_kind, args, "padding", 2, 0);
    gradcheck_args_set(&nn_conv2d_kind, args, "bias", 0, 0);
    gradcheck_args_set(&nn_conv2d_kind, args, "in_channels", 3, 0);
    layer = nn_conv2d_kind.create(args, (nn_shape){3, {3, 13, 12}}, &err);
    ck_assert_msg(layer != NULL, "%s", err.message);
    ck_assert_int_eq(layer->out_shape.dims[1], 5);
    ck_assert_int_eq(layer->out_shape.dims[2], 5);
    ck_assert_int_eq(layer->state_count, 1);
    nn_conv2d_kind.destroy(layer);
}
END_TEST

START_TEST(conv_scalar_pair_argument) {
    /* an int given for a pair, as the config parser may hand it over: count 1 */
    nn_arg_value args[NN_MAX_ARGS];
    gradcheck_args_default(&nn_conv2d_kind, args);
    gradcheck_args_set(&nn_conv2d_kind, args, "out_channels", 2, 0);
    int k = nn_arg_find(nn_conv2d_kind.args, nn_conv2d_kind.arg_count, "kernel_size");
    args[k] = (nn_arg_value){.given = true, .is_integer = true, .count = 1, .value = {3}};
    nn_error err = {0};
    nn_layer *layer = nn_conv2d_kind.create(args, (nn_shape){3, {1, 8, 9}}, &err);
    ck_assert_msg(layer != NULL, "%s", err.message);
    ck_assert_int_eq(layer->out_shape.dims[1], 6);
    ck_assert_int_eq(layer->out_shape.dims[2], 7);
    nn_conv2d_kind.destroy(layer);
}
END_TEST

START_TEST(conv_init_is_uniform_fan_in) {
    nn_error err = {0};
    nn_layer *layer = create_conv((nn_shape){3, {4, 10, 10}}, 50, 3, 3, &err);
    size_t count = nn_layer_param_count(layer);
    float *params = malloc(count * sizeof *params);
    nn_layer_bind(layer, params);
    nn_rng rng;
    nn_rng_seed(&rng, 7);
    nn_conv2d_kind.init(layer, &rng);
    double bound = 1 / sqrt(4.0 * 3 * 3), largest = 0, sum = 0;
    for (size_t i = 0; i < count; i++) {
        ck_assert(fabs(params[i]) <= bound);
        if (fabs(params[i]) > largest) largest = fabs(params[i]);
        sum += params[i];
    }
    ck_assert(largest > 0.95 * bound);
    ck_assert(fabs(sum / (double)count) < 0.05 * bound);
    /* the bias uses the same bound */
    float *bias = layer->state[1].array.data, bias_largest = 0;
    for (int o = 0; o < 50; o++)
        if (fabsf(bias[o]) > bias_largest) bias_largest = fabsf(bias[o]);
    ck_assert(bias_largest > 0.5 * bound && bias_largest <= bound);
    nn_conv2d_kind.destroy(layer);
    free(params);
}
END_TEST

static void assert_create_fails(nn_layer *layer, const nn_error *err, const char *part1, const char *part2) {
    ck_assert_ptr_null(layer);
    ck_assert_int_eq(err->status, NN_ERR_INPUT);
    ck_assert_msg(strstr(err->message, part1) && (!part2 || strstr(err->message, part2)), "%s", err->message);
}

START_TEST(conv_rejects_wrong_input_rank) {
    nn_error err = {0};
    assert_create_fails(create_conv((nn_shape){1, {784, 0, 0}}, 32, 3, 3, &err), &err, "(784,)", "Flatten");
    err = (nn_error){0};
    assert_create_fails(create_conv((nn_shape){2, {28, 28, 0}}, 32, 3, 3, &err), &err, "(28, 28)", "[1, 28, 28]");
}
END_TEST

START_TEST(conv_rejects_mismatched_in_channels) {
    nn_arg_value args[NN_MAX_ARGS];
    gradcheck_args_default(&nn_conv2d_kind, args);
    gradcheck_args_set(&nn_conv2d_kind, args, "out_channels", 8, 0);
    gradcheck_args_set(&nn_conv2d_kind, args, "kernel_size", 3, 3);
    gradcheck_args_set(&nn_conv2d_kind, args, "in_channels", 3, 0);
    nn_error err = {0};
    nn_layer *layer = nn_conv2d_kind.create(args, (nn_shape){3, {1, 28, 28}}, &err);
    assert_create_fails(layer, &err, "in_channels is 3", "has 1 channel");
}
END_TEST

START_TEST(conv_rejects_empty_output) {
    nn_error err = {0};
    nn_layer *layer = create_conv((nn_shape){3, {1, 2, 2}}, 32, 3, 3, &err);
    ck_assert_ptr_null(layer);
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    ck_assert_str_eq(err.message, "output would be (32, 0, 0) for input (1, 2, 2) with kernel_size=(3, 3), "
                                  "stride=(1, 1), padding=(0, 0)");
    /* floor((1 - 3) / 1) + 1 = -1 in height only */
    err = (nn_error){0};
    layer = create_conv((nn_shape){3, {1, 1, 5}}, 32, 3, 3, &err);
    ck_assert_ptr_null(layer);
    ck_assert_str_eq(err.message, "output would be (32, -1, 3) for input (1, 1, 5) with kernel_size=(3, 3), "
                                  "stride=(1, 1), padding=(0, 0)");
    /* with stride and padding: floor((2 + 0 - 5) / 2) + 1 = -1 */
    nn_arg_value args[NN_MAX_ARGS];
    gradcheck_args_default(&nn_conv2d_kind, args);
    gradcheck_args_set(&nn_conv2d_kind, args, "out_channels", 4, 0);
    gradcheck_args_set(&nn_conv2d_kind, args, "kernel_size", 5, 2);
    gradcheck_args_set(&nn_conv2d_kind, args, "stride", 2, 2);
    gradcheck_args_set(&nn_conv2d_kind, args, "padding", 0, 1);
    err = (nn_error){0};
    ck_assert_ptr_null(nn_conv2d_kind.create(args, (nn_shape){3, {2, 2, 6}}, &err));
    ck_assert_str_eq(err.message, "output would be (4, -1, 4) for input (2, 2, 6) with kernel_size=(5, 2), "
                                  "stride=(2, 2), padding=(0, 1)");
}
END_TEST

START_TEST(conv_rejects_bad_arguments) {
    nn_shape shape = {3, {1, 8, 8}};
    nn_error err = {0};
    assert_create_fails(create_conv(shape, 0, 3, 3, &err), &err, "out_channels", "0");
    err = (nn_error){0};
    assert_create_fails(create_conv(shape, 4, 0, 3, &err), &err, "kernel_size", "(0, 3)");
    const char *names[] = {"stride", "padding"};
    double values[] = {0, -1};
    for (int n = 0; n < 2; n++) {
        nn_arg_value args[NN_MAX_ARGS];
        gradcheck_args_default(&nn_conv2d_kind, args);
        gradcheck_args_set(&nn_conv2d_kind, args, "out_channels", 4, 0);
        gradcheck_args_set(&nn_conv2d_kind, args, "kernel_size", 3, 3);
        gradcheck_args_set(&nn_conv2d_kind, args, names[n], 1, values[n]);
        err = (nn_error){0};
        assert_create_fails(nn_conv2d_kind.create(args, shape, &err), &err, names[n], NULL);
    }
    /* sizes that overflow an int are errors, not wrapped-around shapes */
    nn_arg_value args[NN_MAX_ARGS];
    gradcheck_args_default(&nn_conv2d_kind, args);
    gradcheck_args_set(&nn_conv2d_kind, args, "out_channels", 4, 0);
    gradcheck_args_set(&nn_conv2d_kind, args, "kernel_size", 3, 3);
    gradcheck_args_set(&nn_conv2d_kind, args, "padding", 2000000000, 0);
    err = (nn_error){0};
    assert_create_fails(nn_conv2d_kind.create(args, shape, &err), &err, "too large", "(4, 4000000006, 6)");
    gradcheck_args_set(&nn_conv2d_kind, args, "kernel_size", 100000, 100000);
    err = (nn_error){0};
    assert_create_fails(nn_conv2d_kind.create(args, shape, &err), &err, "too large", "100000");
}
END_TEST

static void assert_describes(const nn_arg_value *args, nn_shape in_shape, const char *want) {
    nn_error err = {0};
    nn_layer *layer = nn_conv2d_kind.create(args, in_shape, &err);
    ck_assert_msg(layer != NULL, "%s", err.message);
    char text[256];
    nn_conv2d_kind.describe(layer, text, sizeof text);
    ck_assert_str_eq(text, want);
    nn_conv2d_kind.destroy(layer);
}

/* Strings printed by torch 1.13's print(nn.Conv2d(...)). */
START_TEST(conv_describe_matches_pytorch) {
    nn_arg_value args[NN_MAX_ARGS];
    gradcheck_args_default(&nn_conv2d_kind, args);
    gradcheck_args_set(&nn_conv2d_kind, args, "out_channels", 32, 0);
    gradcheck_args_set(&nn_conv2d_kind, args, "kernel_size", 3, 3);
    assert_describes(args, (nn_shape){3, {1, 28, 28}}, "Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1))");
    gradcheck_args_set(&nn_conv2d_kind, args, "padding", 1, 1);
    assert_describes(args, (nn_shape){3, {1, 28, 28}},
                     "Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))");
    gradcheck_args_set(&nn_conv2d_kind, args, "kernel_size", 3, 5);
    gradcheck_args_set(&nn_conv2d_kind, args, "stride", 2, 2);
    gradcheck_args_set(&nn_conv2d_kind, args, "padding", 1, 2);
    gradcheck_args_set(&nn_conv2d_kind, args, "bias", 0, 0);
    assert_describes(args, (nn_shape){3, {1, 28, 28}},
                     "Conv2d(1, 32, kernel_size=(3, 5), stride=(2, 2), padding=(1, 2), bias=False)");
    gradcheck_args_set(&nn_conv2d_kind, args, "padding", 0, 0);
    gradcheck_args_set(&nn_conv2d_kind, args, "out_channels", 64, 0);
    assert_describes(args, (nn_shape){3, {32, 13, 13}},
                     "Conv2d(32, 64, kernel_size=(3, 5), stride=(2, 2), bias=False)");
}
END_TEST

/* ConvTranspose2d's arguments. */
typedef struct transposed_case {
    nn_shape in_shape;
    int out_channels;
    int kernel[2], stride[2], padding[2], output_padding[2], dilation[2];
    int groups;
    bool bias;
    int batch;
} transposed_case;

static void transposed_args(nn_arg_value *args, const transposed_case *c) {
    const nn_layer_kind *kind = &nn_conv_transpose2d_kind;
    gradcheck_args_default(kind, args);
    gradcheck_args_set(kind, args, "out_channels", c->out_channels, 0);
    gradcheck_args_set(kind, args, "kernel_size", c->kernel[0], c->kernel[1]);
    gradcheck_args_set(kind, args, "stride", c->stride[0], c->stride[1]);
    gradcheck_args_set(kind, args, "padding", c->padding[0], c->padding[1]);
    gradcheck_args_set(kind, args, "output_padding", c->output_padding[0], c->output_padding[1]);
    gradcheck_args_set(kind, args, "dilation", c->dilation[0], c->dilation[1]);
    gradcheck_args_set(kind, args, "groups", c->groups, 0);
    gradcheck_args_set(kind, args, "bias", c->bias, 0);
}

/* output_padding below stride and (with stride 1) below dilation, groups,
 * padding that crops, odd and non-square sizes. */
static const transposed_case transposed_gradient_cases[] = {
    {{3, {2, 4, 3}}, 3, {3, 3}, {1, 1}, {0, 0}, {0, 0}, {1, 1}, 1, true, 2},
    {{3, {3, 3, 4}}, 6, {3, 2}, {2, 2}, {1, 1}, {1, 1}, {2, 2}, 3, false, 2},
    {{3, {4, 4, 3}}, 2, {3, 3}, {1, 1}, {0, 0}, {2, 1}, {3, 2}, 2, true, 3},
    {{3, {2, 3, 3}}, 2, {3, 3}, {3, 2}, {2, 1}, {2, 1}, {1, 1}, 1, true, 2},
    {{3, {1, 2, 5}}, 4, {2, 4}, {2, 1}, {0, 2}, {1, 0}, {1, 1}, 1, true, 1},
};

START_TEST(conv_transpose_gradients) {
    const transposed_case *c = &transposed_gradient_cases[_i];
    nn_arg_value args[NN_MAX_ARGS];
    transposed_args(args, c);
    gradcheck_result r = gradcheck_layer(&nn_conv_transpose2d_kind, args, c->in_shape,
                                         (gradcheck_options){.batch = c->batch, .training = true,
                                                             .seed = 50 + (uint64_t)_i});
    ck_assert_msg(r.ok, "case %d: %s", _i, r.message);
}
END_TEST

/* The definition: each input pixel adds its weighted window into the
 * output, in double; and its adjoint. */
static void transposed_direct(double *out, double *din, double *dweight, double *dbias, const float *in,
                              const float *dout, const float *weight, const float *bias, const transposed_case *c,
                              const nn_shape out_shape) {
    int channels = c->in_shape.dims[0], height = c->in_shape.dims[1], width = c->in_shape.dims[2];
    int oc = out_shape.dims[0], oh = out_shape.dims[1], ow = out_shape.dims[2];
    int in_group = channels / c->groups, out_group = oc / c->groups;
    for (int b = 0; b < c->batch; b++)
        for (int o = 0; o < oc; o++)
            for (int p = 0; p < oh * ow; p++) {
                size_t index = ((size_t)b * oc + o) * oh * ow + p;
                out[index] = bias ? bias[o] : 0;
                dbias[o] += dout[index];
            }
    for (int b = 0; b < c->batch; b++)
        for (int ch = 0; ch < channels; ch++)
            for (int h = 0; h < height; h++)
                for (int w = 0; w < width; w++)
                    for (int ol = 0; ol < out_group; ol++)
                        for (int i = 0; i < c->kernel[0]; i++)
                            for (int j = 0; j < c->kernel[1]; j++) {
                                int y = h * c->stride[0] + i * c->dilation[0] - c->padding[0];
                                int x = w * c->stride[1] + j * c->dilation[1] - c->padding[1];
                                if (y < 0 || y >= oh || x < 0 || x >= ow) continue;
                                int o = ch / in_group * out_group + ol;
                                size_t in_index = (((size_t)b * channels + ch) * height + h) * width + w;
                                size_t out_index = (((size_t)b * oc + o) * oh + y) * ow + x;
                                size_t w_index = (((size_t)ch * out_group + ol) * c->kernel[0] + i) * c->kernel[1] + j;
                                out[out_index] += (double)in[in_index] * weight[w_index];
                                din[in_index] += (double)dout[out_index] * weight[w_index];
                                dweight[w_index] += (double)dout[out_index] * in[in_index];
                            }
}

/* Larger: several chunks (the last partial), the contiguous col2im (stride
 * 1 with rows as wide as the output's). */
static const transposed_case transposed_direct_cases[] = {
    {{3, {4, 20, 19}}, 6, {3, 3}, {1, 1}, {1, 1}, {0, 0}, {1, 1}, 2, true, 7},
    {{3, {3, 13, 14}}, 5, {4, 3}, {2, 3}, {1, 2}, {1, 2}, {1, 1}, 1, true, 5},
    {{3, {6, 16, 9}}, 3, {3, 2}, {1, 2}, {2, 0}, {1, 1}, {2, 3}, 3, false, 4},
    {{3, {2, 50, 47}}, 2, {2, 2}, {2, 2}, {0, 0}, {0, 0}, {1, 1}, 1, true, 3},
};

START_TEST(conv_transpose_matches_definition) {
    const transposed_case *c = &transposed_direct_cases[_i];
    const nn_layer_kind *kind = &nn_conv_transpose2d_kind;
    nn_arg_value args[NN_MAX_ARGS];
    transposed_args(args, c);
    nn_error err = {0};
    nn_layer *layer = kind->create(args, c->in_shape, &err);
    ck_assert_msg(layer != NULL, "%s", err.message);
    layer->kind = kind;
    size_t params = nn_layer_param_count(layer), weight_count = nn_array_count(&layer->state[0].array);
    size_t in_count = (size_t)c->batch * nn_shape_size(c->in_shape);
    size_t out_count = (size_t)c->batch * nn_shape_size(layer->out_shape);
    float *param = malloc(params * sizeof *param), *grad = malloc(params * sizeof *grad);
    float *in = malloc(in_count * sizeof *in), *din = malloc(in_count * sizeof *din);
    float *out = malloc(out_count * sizeof *out), *dout = malloc(out_count * sizeof *dout);
    double *want_out = calloc(out_count, sizeof *want_out), *want_din = calloc(in_count, sizeof *want_din);
    double *want_grad = calloc(weight_count + (size_t)c->out_channels, sizeof *want_grad);
    nn_rng rng;
    nn_rng_seed(&rng, 500 + (uint64_t)_i);
    nn_layer_bind(layer, param);
    fill_uniform(param, params, &rng);
    fill_uniform(in, in_count, &rng);
    fill_uniform(dout, out_count, &rng);
    for (size_t i = 0; i < params; i++) grad[i] = NAN;
    for (size_t i = 0; i < in_count; i++) din[i] = NAN;
    void *context = kind->context_create(layer, c->batch + 1, &err);
    ck_assert_msg(context != NULL, "%s", err.message);
    nn_mode train = {.training = true};
    kind->forward(layer, context, out, in, c->batch, &train);
    kind->backward(layer, context, din, dout, in, out, c->batch, grad, &train);
    transposed_direct(want_out, want_din, want_grad, want_grad + weight_count, in, dout, param,
                      c->bias ? param + weight_count : NULL, c, layer->out_shape);
    assert_close(out, want_out, out_count, 1e-5, "out", _i);
    assert_close(din, want_din, in_count, 1e-5, "din", _i);
    assert_close(grad, want_grad, params, 1e-4, "grad", _i);
    for (size_t i = 0; i < params; i++) grad[i] = NAN;
    kind->backward(layer, context, NULL, dout, in, out, c->batch, grad, &train);
    assert_close(grad, want_grad, params, 1e-4, "grad without din", _i);
    kind->context_free(context);
    kind->destroy(layer);
    free(param), free(grad), free(in), free(din), free(out), free(dout);
    free(want_out), free(want_din), free(want_grad);
}
END_TEST

/* A replica with part of a batch computes what the whole batch computes for
 * its samples, and the slices' weight gradients add up to the batch's. */
static void assert_split_invariant(nn_layer *layer, int batch, int split, uint64_t seed) {
    const nn_layer_kind *kind = layer->kind;
    size_t params = nn_layer_param_count(layer), in_size = nn_shape_size(layer->in_shape);
    size_t out_size = nn_shape_size(layer->out_shape);
    float *param = malloc(params * sizeof *param), *in = malloc(batch * in_size * sizeof *in);
    float *dout = malloc(batch * out_size * sizeof *dout);
    nn_rng rng;
    nn_rng_seed(&rng, seed);
    fill_uniform(param, params, &rng);
    fill_uniform(in, batch * in_size, &rng);
    fill_uniform(dout, batch * out_size, &rng);
    nn_layer_bind(layer, param);
    nn_mode mode = {.training = true};
    nn_error err = {0};
    conv_run whole = conv_run_new(layer, in, dout, batch);
    void *context = kind->context_create(layer, batch, &err);
    ck_assert_msg(context != NULL, "%s", err.message);
    conv_run_forward(layer, context, &whole, &mode);
    conv_run_backward(layer, context, &whole, &mode);
    kind->context_free(context);
    conv_run part[2] = {conv_run_new(layer, in, dout, split),
                        conv_run_new(layer, in + split * in_size, dout + split * out_size, batch - split)};
    void *contexts[2] = {kind->context_create(layer, split, &err), kind->context_create(layer, batch - split, &err)};
    ck_assert_msg(contexts[0] && contexts[1], "%s", err.message);
    for (int r = 0; r < 2; r++) conv_run_forward(layer, contexts[r], &part[r], &mode);
    for (int r = 0; r < 2; r++) conv_run_backward(layer, contexts[r], &part[r], &mode);
    for (int r = 0; r < 2; r++) {
        size_t first = r ? (size_t)split : 0;
        for (size_t i = 0; i < part[r].batch * out_size; i++)
            ck_assert_msg(fabsf(part[r].out[i] - whole.out[first * out_size + i]) <= 1e-6f * (1 + fabsf(whole.out[i])),
                          "%s: out[%zu] of slice %d differs", kind->name, i, r);
        for (size_t i = 0; i < part[r].batch * in_size; i++)
            ck_assert_msg(fabsf(part[r].din[i] - whole.din[first * in_size + i]) <= 1e-6f * (1 + fabsf(whole.din[i])),
                          "%s: din[%zu] of slice %d differs", kind->name, i, r);
        kind->context_free(contexts[r]);
    }
    for (size_t i = 0; i < params; i++) {
        float sum = part[0].grad[i] + part[1].grad[i];
        ck_assert_msg(fabsf(sum - whole.grad[i]) <= 1e-4f * (1 + fabsf(whole.grad[i])), "%s: grad[%zu] %g vs %g",
                      kind->name, i, sum, whole.grad[i]);
    }
    conv_run_free(&whole), conv_run_free(&part[0]), conv_run_free(&part[1]);
    free(param), free(in), free(dout);
}

START_TEST(conv_batch_split_is_invariant) {
    const conv_case cases[] = {
        {{3, {4, 30, 29}}, 6, {3, 3}, {1, 1}, {2, 1}, true, 7, {2, 1}, 2, REFLECT, false},
        {{3, {3, 12, 11}}, 3, {4, 3}, {1, 1}, {0, 0}, true, 7, {1, 1}, 3, CIRCULAR, true},
        {{2, {4, 400}}, 4, {1, 3}, {1, 2}, {0, 5}, false, 7, {1, 2}, 2, REPLICATE, false},
    };
    for (int k = 0; k < 3; k++) {
        nn_arg_value args[NN_MAX_ARGS];
        conv_case_args(args, &cases[k]);
        nn_error err = {0};
        nn_layer *layer = case_kind(&cases[k])->create(args, cases[k].in_shape, &err);
        ck_assert_msg(layer != NULL, "%s", err.message);
        layer->kind = case_kind(&cases[k]);
        assert_split_invariant(layer, 7, 3, 700 + (uint64_t)k);
        layer->kind->destroy(layer);
    }
    const transposed_case t = {{3, {4, 21, 20}}, 6, {3, 3}, {2, 1}, {1, 1}, {1, 0}, {1, 1}, 2, true, 7};
    nn_arg_value args[NN_MAX_ARGS];
    transposed_args(args, &t);
    nn_error err = {0};
    nn_layer *layer = nn_conv_transpose2d_kind.create(args, t.in_shape, &err);
    ck_assert_msg(layer != NULL, "%s", err.message);
    layer->kind = &nn_conv_transpose2d_kind;
    assert_split_invariant(layer, 7, 4, 710);
    nn_conv_transpose2d_kind.destroy(layer);
}
END_TEST

static void assert_case_fails(const conv_case *c, const char *want) {
    nn_arg_value args[NN_MAX_ARGS];
    conv_case_args(args, c);
    nn_error err = {0};
    ck_assert_ptr_null(case_kind(c)->create(args, c->in_shape, &err));
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    ck_assert_str_eq(err.message, want);
}

START_TEST(conv_rejects_bad_new_arguments) {
    const struct {
        conv_case c;
        const char *want;
    } cases[] = {
        {{{3, {3, 8, 8}}, 4, {3, 3}, {1, 1}, {0, 0}, true, 2, {0, 0}, 2, ZEROS, false},
         "in_channels 3 is not divisible by groups 2"},
        {{{3, {4, 8, 8}}, 6, {3, 3}, {1, 1}, {0, 0}, true, 2, {0, 0}, 4, ZEROS, false},
         "out_channels 6 is not divisible by groups 4"},
        {{{3, {4, 8, 8}}, 4, {3, 3}, {1, 1}, {0, 0}, true, 2, {0, 0}, -1, ZEROS, false},
         "groups must be at least 1, got -1"},
        {{{3, {4, 8, 8}}, 4, {3, 3}, {1, 2}, {0, 0}, true, 2, {0, 0}, 0, ZEROS, true},
         "padding 'same' is not supported for strided convolutions (stride=(1, 2)): give the padding as "
         "numbers"},
        {{{3, {4, 8, 8}}, 4, {3, 3}, {1, 1}, {0, 0}, true, 2, {0, 1}, 0, ZEROS, false},
         "dilation must be at least 1, got (0, 1)"},
        {{{3, {2, 5, 4}}, 3, {3, 3}, {1, 1}, {0, 0}, true, 2, {3, 3}, 0, ZEROS, false},
         "output would be (3, -1, -2) for input (2, 5, 4) with kernel_size=(3, 3), stride=(1, 1), padding=(0, 0), "
         "dilation=(3, 3)"},
        {{{3, {1, 3, 5}}, 2, {3, 3}, {1, 1}, {3, 1}, true, 2, {0, 0}, 0, REFLECT, false},
         "padding_mode 'reflect' needs padding smaller than the input: padding 3 in height for input (1, 3, 5)"},
        /* 'same' with an even window pads 2 after: too much for a reflected 2 x 2 */
        {{{3, {1, 2, 2}}, 2, {4, 4}, {1, 1}, {0, 0}, true, 2, {0, 0}, 0, REFLECT, true},
         "padding_mode 'reflect' needs padding smaller than the input: padding 2 in height for input (1, 2, 2)"},
        {{{3, {1, 3, 5}}, 2, {3, 3}, {1, 1}, {3, 6}, true, 2, {0, 0}, 0, CIRCULAR, false},
         "padding_mode 'circular' needs padding at most the input size: padding 6 in width for input (1, 3, 5)"},
        {{{2, {3, 5}}, 2, {1, 7}, {1, 1}, {0, 0}, true, 2, {0, 0}, 0, ZEROS, false},
         "output would be (2, -1) for input (3, 5) with kernel_size=(7,), stride=(1,), padding=(0,)"},
        {{{2, {3, 5}}, 2, {1, 3}, {1, 0}, {0, 0}, true, 2, {0, 0}, 0, ZEROS, false},
         "stride must be at least 1, got (0,)"},
        {{{2, {3, 5}}, 2, {1, 3}, {1, 2}, {0, 0}, true, 2, {0, 0}, 0, ZEROS, true},
         "padding 'same' is not supported for strided convolutions (stride=(2,)): give the padding as numbers"},
        {{{2, {3, 5}}, 2, {1, 3}, {1, 1}, {0, 5}, true, 2, {0, 0}, 0, REFLECT, false},
         "padding_mode 'reflect' needs padding smaller than the input: padding 5 in length for input (3, 5)"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) assert_case_fails(&cases[k].c, cases[k].want);
    /* replicate takes any padding, but not one that overflows the padded input */
    conv_case huge = {{3, {1, 8, 8}}, 2, {3, 3}, {1, 1}, {2000000000, 1}, true, 2, {0, 0}, 0, REPLICATE, false};
    nn_arg_value args[NN_MAX_ARGS];
    conv_case_args(args, &huge);
    nn_error err = {0};
    assert_create_fails(nn_conv2d_kind.create(args, huge.in_shape, &err), &err, "too large", "4000000008");
    /* a replica's buffers per sample are bounded as the model bounds an output */
    conv_case wide = {{3, {64, 100, 100}}, 2, {31, 31}, {1, 1}, {0, 0}, true, 2, {0, 0}, 0, ZEROS, false};
    conv_case_args(args, &wide);
    err = (nn_error){0};
    assert_create_fails(nn_conv2d_kind.create(args, wide.in_shape, &err), &err,
                        "its im2col matrix would hold 301369600 values per sample (64 channels x 31 x 31 kernel "
                        "positions x 70 x 70 outputs; the most nnseq allows is 2^28)", NULL);
    conv_case padded = {{3, {1, 10, 10}}, 2, {3, 3}, {1000, 1000}, {10000, 10000}, true, 2, {0, 0}, 0, REPLICATE, false};
    conv_case_args(args, &padded);
    err = (nn_error){0};
    assert_create_fails(nn_conv2d_kind.create(args, padded.in_shape, &err), &err,
                        "the padded input would hold 400400100 values per sample", NULL);
    /* Conv1d's window arguments are one int */
    conv_case one = {{2, {3, 9}}, 2, {1, 3}, {1, 1}, {0, 0}, true, 2, {0, 0}, 0, ZEROS, false};
    conv_case_args(args, &one);
    int k = nn_arg_find(nn_conv1d_kind.args, nn_conv1d_kind.arg_count, "kernel_size");
    args[k].count = 2;
    args[k].is_list = true;
    err = (nn_error){0};
    assert_create_fails(nn_conv1d_kind.create(args, one.in_shape, &err), &err,
                        "kernel_size must be an int or a list of one int, got 2 values", NULL);
    conv_case_args(args, &one);
    err = (nn_error){0};
    assert_create_fails(nn_conv1d_kind.create(args, (nn_shape){3, {1, 28, 28}}, &err), &err,
                        "Conv1d needs an input of shape (channels, length), got (1, 28, 28)", NULL);
}
END_TEST

START_TEST(conv_transpose_rejects_bad_arguments) {
    const struct {
        transposed_case c;
        const char *want;
    } cases[] = {
        {{{3, {3, 4, 4}}, 4, {3, 3}, {1, 1}, {0, 0}, {0, 0}, {1, 1}, 2, true, 2},
         "in_channels 3 is not divisible by groups 2"},
        {{{3, {4, 4, 4}}, 3, {3, 3}, {1, 1}, {0, 0}, {0, 0}, {1, 1}, 2, true, 2},
         "out_channels 3 is not divisible by groups 2"},
        {{{3, {2, 4, 4}}, 3, {3, 3}, {2, 2}, {0, 0}, {2, 2}, {1, 1}, 1, true, 2},
         "output_padding (2, 2) must be smaller than either stride (2, 2) or dilation (1, 1) in each dimension"},
        {{{3, {2, 4, 4}}, 3, {3, 3}, {2, 1}, {0, 0}, {1, 1}, {1, 1}, 1, true, 2},
         "output_padding (1, 1) must be smaller than either stride (2, 1) or dilation (1, 1) in each dimension"},
        {{{3, {2, 2, 2}}, 3, {1, 1}, {1, 1}, {1, 1}, {0, 0}, {1, 1}, 1, true, 2},
         "output would be (3, 0, 0) for input (2, 2, 2) with kernel_size=(1, 1), stride=(1, 1), padding=(1, 1), "
         "output_padding=(0, 0), dilation=(1, 1)"},
        {{{3, {2, 4, 4}}, 3, {3, 3}, {1, 1}, {0, 0}, {0, 0}, {0, 1}, 1, true, 2},
         "dilation must be at least 1, got (0, 1)"},
        {{{3, {2, 4, 4}}, 3, {3, 3}, {1, 1}, {0, 0}, {-1, 0}, {1, 1}, 1, true, 2},
         "output_padding must be at least 0, got (-1, 0)"},
    };
    const nn_layer_kind *kind = &nn_conv_transpose2d_kind;
    nn_arg_value args[NN_MAX_ARGS];
    nn_error err;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        transposed_args(args, &cases[k].c);
        err = (nn_error){0};
        ck_assert_ptr_null(kind->create(args, cases[k].c.in_shape, &err));
        ck_assert_int_eq(err.status, NN_ERR_INPUT);
        ck_assert_str_eq(err.message, cases[k].want);
    }
    transposed_args(args, &cases[0].c);
    gradcheck_args_set(kind, args, "groups", 1, 0);
    set_choice(kind, args, "padding_mode", REFLECT);
    err = (nn_error){0};
    assert_create_fails(kind->create(args, (nn_shape){3, {3, 4, 4}}, &err), &err,
                        "padding_mode 'reflect' is not supported for ConvTranspose2d: torch has only 'zeros'", NULL);
    set_choice(kind, args, "padding_mode", ZEROS);
    err = (nn_error){0};
    assert_create_fails(kind->create(args, (nn_shape){1, {48, 0, 0}}, &err), &err,
                        "ConvTranspose2d needs an input of shape (channels, height, width), got (48,)", NULL);
    const transposed_case wide = {{3, {1, 100, 100}}, 1000, {30, 30}, {1, 1}, {0, 0}, {0, 0}, {1, 1}, 1, true, 1};
    transposed_args(args, &wide);
    err = (nn_error){0};
    assert_create_fails(kind->create(args, wide.in_shape, &err), &err,
                        "its column matrix would hold 9000000000 values per sample", "2^28");
    /* sizes that overflow an int */
    transposed_args(args, &cases[0].c);
    gradcheck_args_set(kind, args, "groups", 1, 0);
    gradcheck_args_set(kind, args, "dilation", 2147483647, 1);
    gradcheck_args_set(kind, args, "padding", 2147483647, 0);
    err = (nn_error){0};
    assert_create_fails(kind->create(args, (nn_shape){3, {3, 4, 4}}, &err), &err, "the windows span 4294967298 x 6",
                        NULL);
    transposed_args(args, &cases[0].c);
    gradcheck_args_set(kind, args, "groups", 1, 0);
    gradcheck_args_set(kind, args, "stride", 1000000000, 1);
    err = (nn_error){0};
    assert_create_fails(kind->create(args, (nn_shape){3, {3, 4, 4}}, &err), &err, "too large", "3000000003");
}
END_TEST

static void assert_case_describes(const conv_case *c, int padding_choice, const char *want) {
    nn_arg_value args[NN_MAX_ARGS];
    conv_case_args(args, c);
    if (padding_choice >= 0) set_choice(case_kind(c), args, "padding", padding_choice);
    nn_error err = {0};
    nn_layer *layer = case_kind(c)->create(args, c->in_shape, &err);
    ck_assert_msg(layer != NULL, "%s", err.message);
    char text[320];
    layer->kind = case_kind(c);
    layer->kind->describe(layer, text, sizeof text);
    ck_assert_str_eq(text, want);
    layer->kind->destroy(layer);
}

/* Strings printed by torch 1.13. */
START_TEST(conv_new_arguments_describe_as_pytorch) {
    const conv_case full = {{3, {3, 7, 6}}, 6, {3, 2}, {2, 2}, {1, 1}, false, 1, {2, 2}, 3, REFLECT, false};
    assert_case_describes(&full, -1,
                          "Conv2d(3, 6, kernel_size=(3, 2), stride=(2, 2), padding=(1, 1), dilation=(2, 2), "
                          "groups=3, bias=False, padding_mode=reflect)");
    const conv_case plain = {{3, {3, 9, 8}}, 6, {4, 4}, {1, 1}, {0, 0}, true, 1, {0, 0}, 0, ZEROS, false};
    assert_case_describes(&plain, 1, "Conv2d(3, 6, kernel_size=(4, 4), stride=(1, 1), padding=same)");
    assert_case_describes(&plain, 0, "Conv2d(3, 6, kernel_size=(4, 4), stride=(1, 1), padding=valid)");
    const conv_case modes = {{3, {3, 9, 8}}, 3, {3, 3}, {1, 1}, {1, 2}, true, 1, {1, 3}, 0, CIRCULAR, false};
    assert_case_describes(&modes, -1, "Conv2d(3, 3, kernel_size=(3, 3), stride=(1, 1), padding=(1, 2), "
                                      "dilation=(1, 3), padding_mode=circular)");
    const conv_case one = {{2, {3, 11}}, 6, {1, 3}, {1, 1}, {0, 1}, true, 1, {1, 2}, 0, CIRCULAR, false};
    assert_case_describes(&one, -1, "Conv1d(3, 6, kernel_size=(3,), stride=(1,), padding=(1,), dilation=(2,), "
                                    "padding_mode=circular)");
    const conv_case one_same = {{2, {4, 11}}, 6, {1, 3}, {1, 1}, {0, 0}, false, 1, {1, 1}, 2, REPLICATE, true};
    assert_case_describes(&one_same, -1, "Conv1d(4, 6, kernel_size=(3,), stride=(1,), padding=same, groups=2, "
                                         "bias=False, padding_mode=replicate)");
    const struct {
        transposed_case c;
        const char *want;
    } transposed[] = {
        {{{3, {3, 5, 4}}, 6, {3, 3}, {1, 1}, {0, 0}, {0, 0}, {1, 1}, 1, true, 1},
         "ConvTranspose2d(3, 6, kernel_size=(3, 3), stride=(1, 1))"},
        {{{3, {3, 5, 4}}, 6, {3, 2}, {2, 2}, {1, 1}, {1, 1}, {2, 2}, 3, false, 1},
         "ConvTranspose2d(3, 6, kernel_size=(3, 2), stride=(2, 2), padding=(1, 1), dilation=(2, 2), "
         "output_padding=(1, 1), groups=3, bias=False)"},
    };
    for (int k = 0; k < 2; k++) {
        nn_arg_value args[NN_MAX_ARGS];
        transposed_args(args, &transposed[k].c);
        nn_error err = {0};
        nn_layer *layer = nn_conv_transpose2d_kind.create(args, transposed[k].c.in_shape, &err);
        ck_assert_msg(layer != NULL, "%s", err.message);
        char text[320];
        nn_conv_transpose2d_kind.describe(layer, text, sizeof text);
        ck_assert_str_eq(text, transposed[k].want);
        nn_conv_transpose2d_kind.destroy(layer);
    }
}
END_TEST

/* Uniform within +-1/sqrt(fan_in), close to the bound somewhere. */
static void assert_init_bound(nn_layer *layer, int fan_in) {
    size_t count = nn_layer_param_count(layer);
    float *params = malloc(count * sizeof *params);
    nn_layer_bind(layer, params);
    nn_rng rng;
    nn_rng_seed(&rng, 9);
    layer->kind->init(layer, &rng);
    double bound = 1 / sqrt((double)fan_in), largest = 0;
    for (size_t i = 0; i < count; i++) {
        ck_assert_msg(fabs(params[i]) <= bound, "%s: %g beyond %g", layer->kind->name, params[i], bound);
        if (fabs(params[i]) > largest) largest = fabs(params[i]);
    }
    ck_assert_msg(largest > 0.95 * bound, "%s: largest %g of bound %g", layer->kind->name, largest, bound);
    layer->kind->destroy(layer);
    free(params);
}

/* torch's fan_in is the weight's dimension 1 times the window: in/groups
 * for Conv2d and Conv1d, out/groups for ConvTranspose2d (weight (in,
 * out/groups, kh, kw)). */
START_TEST(conv_grouped_and_transposed_shapes_and_init) {
    const conv_case grouped = {{3, {8, 9, 9}}, 40, {3, 3}, {1, 1}, {0, 0}, true, 1, {0, 0}, 4, ZEROS, false};
    nn_arg_value args[NN_MAX_ARGS];
    conv_case_args(args, &grouped);
    nn_error err = {0};
    nn_layer *layer = nn_conv2d_kind.create(args, grouped.in_shape, &err);
    ck_assert_msg(layer != NULL, "%s", err.message);
    layer->kind = &nn_conv2d_kind;
    int64_t want[4] = {40, 2, 3, 3};
    for (int d = 0; d < 4; d++) ck_assert_int_eq(layer->state[0].array.dims[d], want[d]);
    assert_init_bound(layer, 2 * 9);
    const conv_case one = {{2, {6, 20}}, 30, {1, 5}, {1, 1}, {0, 0}, true, 1, {0, 0}, 3, ZEROS, false};
    conv_case_args(args, &one);
    layer = nn_conv1d_kind.create(args, one.in_shape, &err);
    ck_assert_msg(layer != NULL, "%s", err.message);
    layer->kind = &nn_conv1d_kind;
    ck_assert_int_eq(layer->state[0].array.rank, 3);
    int64_t want1[3] = {30, 2, 5};
    for (int d = 0; d < 3; d++) ck_assert_int_eq(layer->state[0].array.dims[d], want1[d]);
    ck_assert_int_eq(layer->out_shape.rank, 2);
    ck_assert_int_eq(layer->out_shape.dims[0], 30);
    ck_assert_int_eq(layer->out_shape.dims[1], 16);
    assert_init_bound(layer, 2 * 5);
    const transposed_case t = {{3, {4, 5, 6}}, 60, {3, 2}, {2, 3}, {1, 0}, {1, 2}, {1, 1}, 2, true, 1};
    transposed_args(args, &t);
    layer = nn_conv_transpose2d_kind.create(args, t.in_shape, &err);
    ck_assert_msg(layer != NULL, "%s", err.message);
    layer->kind = &nn_conv_transpose2d_kind;
    int64_t want_t[4] = {4, 30, 3, 2};
    for (int d = 0; d < 4; d++) ck_assert_int_eq(layer->state[0].array.dims[d], want_t[d]);
    /* (5 - 1) * 2 - 2 + 2 + 1 + 1 = 10, (6 - 1) * 3 - 0 + 1 + 2 + 1 = 19 */
    ck_assert_int_eq(layer->out_shape.dims[0], 60);
    ck_assert_int_eq(layer->out_shape.dims[1], 10);
    ck_assert_int_eq(layer->out_shape.dims[2], 19);
    assert_init_bound(layer, 30 * 6);
}
END_TEST

int main(void) {
    Suite *suite = suite_create("conv2d");
    TCase *tc = tcase_create("conv2d");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, conv_gradients, 0, sizeof gradient_cases / sizeof gradient_cases[0]);
    tcase_add_loop_test(tc, conv_matches_direct_convolution, 0, sizeof direct_cases / sizeof direct_cases[0]);
    tcase_add_test(tc, conv_contexts_are_independent);
    tcase_add_test(tc, conv_state_and_shapes);
    tcase_add_test(tc, conv_scalar_pair_argument);
    tcase_add_test(tc, conv_init_is_uniform_fan_in);
    tcase_add_test(tc, conv_rejects_wrong_input_rank);
    tcase_add_test(tc, conv_rejects_mismatched_in_channels);
    tcase_add_test(tc, conv_rejects_empty_output);
    tcase_add_test(tc, conv_rejects_bad_arguments);
    tcase_add_test(tc, conv_describe_matches_pytorch);
    tcase_add_loop_test(tc, conv_transpose_gradients, 0,
                        sizeof transposed_gradient_cases / sizeof transposed_gradient_cases[0]);
    tcase_add_loop_test(tc, conv_transpose_matches_definition, 0,
                        sizeof transposed_direct_cases / sizeof transposed_direct_cases[0]);
    tcase_add_test(tc, conv_batch_split_is_invariant);
    tcase_add_test(tc, conv_rejects_bad_new_arguments);
    tcase_add_test(tc, conv_transpose_rejects_bad_arguments);
    tcase_add_test(tc, conv_new_arguments_describe_as_pytorch);
    tcase_add_test(tc, conv_grouped_and_transposed_shapes_and_init);
    suite_add_tcase(suite, tc);
    return testutil_run(suite);
}
