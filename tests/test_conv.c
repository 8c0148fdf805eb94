/* Conv2d: gradients by finite differences, forward and backward against a
 * direct convolution written here, shape inference, every error, init and
 * PyTorch's repr. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layers.h"
#include "gradcheck.h"
#include "testutil.h"

typedef struct conv_case {
    nn_shape in_shape;
    int out_channels;
    int kernel[2], stride[2], padding[2];
    bool bias;
    int batch;
} conv_case;

static void conv_case_args(nn_arg_value *args, const conv_case *c) {
    gradcheck_args_default(&nn_conv2d_kind, args);
    gradcheck_args_set(&nn_conv2d_kind, args, "out_channels", c->out_channels, 0);
    gradcheck_args_set(&nn_conv2d_kind, args, "kernel_size", c->kernel[0], c->kernel[1]);
    gradcheck_args_set(&nn_conv2d_kind, args, "stride", c->stride[0], c->stride[1]);
    gradcheck_args_set(&nn_conv2d_kind, args, "padding", c->padding[0], c->padding[1]);
    gradcheck_args_set(&nn_conv2d_kind, args, "bias", c->bias, 0);
}

/* Odd sizes, padding, strides, non-square kernels, batch 1 and more. */
static const conv_case gradient_cases[] = {
    {{3, {1, 5, 5}}, 2, {3, 3}, {1, 1}, {0, 0}, true, 2},
    {{3, {2, 7, 6}}, 3, {3, 2}, {2, 1}, {1, 0}, true, 3},
    {{3, {3, 6, 7}}, 2, {2, 3}, {1, 2}, {1, 1}, false, 1},
    {{3, {2, 5, 5}}, 2, {1, 1}, {2, 2}, {2, 1}, true, 2},
    {{3, {1, 4, 9}}, 4, {4, 5}, {3, 2}, {2, 2}, true, 2},
    {{3, {2, 3, 3}}, 1, {3, 3}, {1, 1}, {1, 1}, true, 4},
    /* 30x30 -> 28x28: two samples per product, so batch 3 spans two chunks */
    {{3, {1, 30, 30}}, 2, {3, 3}, {1, 1}, {0, 0}, true, 3},
};

START_TEST(conv_gradients) {
    const conv_case *c = &gradient_cases[_i];
    nn_arg_value args[NN_MAX_ARGS];
    conv_case_args(args, c);
    for (int training = 0; training <= 1; training++) {
        gradcheck_result r = gradcheck_layer(&nn_conv2d_kind, args, c->in_shape,
                                             (gradcheck_options){.batch = c->batch, .training = training,
                                                                 .seed = 10 + (uint64_t)_i});
        ck_assert_msg(r.ok, "case %d training %d: %s", _i, training, r.message);
    }
}
END_TEST

/* The definition, one output at a time, in double. */
static void direct_forward(double *out, const float *in, const float *weight, const float *bias, const conv_case *c,
                           int out_height, int out_width) {
    int channels = c->in_shape.dims[0], height = c->in_shape.dims[1], width = c->in_shape.dims[2];
    for (int b = 0; b < c->batch; b++)
        for (int o = 0; o < c->out_channels; o++)
            for (int y = 0; y < out_height; y++)
                for (int x = 0; x < out_width; x++) {
                    double sum = bias ? bias[o] : 0;
                    for (int ch = 0; ch < channels; ch++)
                        for (int i = 0; i < c->kernel[0]; i++)
                            for (int j = 0; j < c->kernel[1]; j++) {
                                int row = y * c->stride[0] + i - c->padding[0];
                                int col = x * c->stride[1] + j - c->padding[1];
                                if (row < 0 || row >= height || col < 0 || col >= width) continue;
                                sum += (double)in[((b * channels + ch) * height + row) * width + col] *
                                       weight[((o * channels + ch) * c->kernel[0] + i) * c->kernel[1] + j];
                            }
                    out[((b * c->out_channels + o) * out_height + y) * out_width + x] = sum;
                }
}

/* The adjoint of direct_forward for a given dout. */
static void direct_backward(double *din, double *dweight, double *dbias, const float *dout, const float *in,
                            const float *weight, const conv_case *c, int out_height, int out_width) {
    int channels = c->in_shape.dims[0], height = c->in_shape.dims[1], width = c->in_shape.dims[2];
    for (int b = 0; b < c->batch; b++)
        for (int o = 0; o < c->out_channels; o++)
            for (int y = 0; y < out_height; y++)
                for (int x = 0; x < out_width; x++) {
                    double g = dout[((b * c->out_channels + o) * out_height + y) * out_width + x];
                    dbias[o] += g;
                    for (int ch = 0; ch < channels; ch++)
                        for (int i = 0; i < c->kernel[0]; i++)
                            for (int j = 0; j < c->kernel[1]; j++) {
                                int row = y * c->stride[0] + i - c->padding[0];
                                int col = x * c->stride[1] + j - c->padding[1];
                                if (row < 0 || row >= height || col < 0 || col >= width) continue;
                                size_t in_index = ((size_t)(b * channels + ch) * height + row) * width + col;
                                size_t w_index = ((size_t)(o * channels + ch) * c->kernel[0] + i) * c->kernel[1] + j;
                                din[in_index] += g * weight[w_index];
                                dweight[w_index] += g * in[in_index];
                            }
                }
}

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
    {{3, {1, 28, 28}}, 8, {3, 3}, {1, 1}, {0, 0}, true, 5},
    {{3, {3, 30, 30}}, 4, {3, 3}, {1, 1}, {0, 0}, true, 5},
    {{3, {4, 13, 11}}, 6, {3, 3}, {1, 1}, {1, 1}, true, 7},
    {{3, {2, 17, 16}}, 5, {5, 3}, {2, 3}, {2, 1}, false, 3},
    {{3, {3, 9, 10}}, 4, {2, 4}, {3, 1}, {1, 2}, true, 1},
    {{3, {2, 50, 47}}, 3, {4, 4}, {1, 1}, {1, 1}, true, 3},
    /* stride 1 with output rows as wide as the input's (the contiguous
     * im2col and col2im): whole rows of padding above and below, none in
     * height, a one-column input (kernel columns wholly in padding), 1x1 */
    {{3, {2, 9, 7}}, 3, {3, 3}, {1, 1}, {2, 1}, true, 3},
    {{3, {3, 10, 9}}, 3, {5, 5}, {1, 1}, {0, 2}, true, 3},
    {{3, {3, 6, 1}}, 2, {3, 3}, {1, 1}, {1, 1}, true, 2},
    {{3, {5, 8, 8}}, 4, {1, 1}, {1, 1}, {0, 0}, false, 4},
};

START_TEST(conv_matches_direct_convolution) {
    conv_case c = direct_cases[_i];
    nn_arg_value args[NN_MAX_ARGS];
    conv_case_args(args, &c);
    nn_error err = {0};
    nn_layer *layer = nn_conv2d_kind.create(args, c.in_shape, &err);
    ck_assert_msg(layer != NULL, "%s", err.message);
    layer->kind = &nn_conv2d_kind;
    int out_height = layer->out_shape.dims[1], out_width = layer->out_shape.dims[2];
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
    void *context = nn_conv2d_kind.context_create(layer, c.batch + 2, &err);
    ck_assert_msg(context != NULL, "%s", err.message);
    nn_mode train = {.training = true}, eval = {.training = false};
    nn_conv2d_kind.forward(layer, context, out, in, c.batch, &train);
    nn_conv2d_kind.backward(layer, context, din, dout, in, out, c.batch, grad, &train);
    const float *bias = c.bias ? param + weight_count : NULL;
    direct_forward(want_out, in, param, bias, &c, out_height, out_width);
    direct_backward(want_din, want_grad, want_grad + weight_count, dout, in, param, &c, out_height, out_width);
    assert_close(out, want_out, out_count, 1e-5, "out", _i);
    assert_close(din, want_din, in_count, 1e-5, "din", _i);
    assert_close(grad, want_grad, params, 1e-4, "grad", _i);
    /* without din (the first layer of a model) the parameter gradients are the same */
    for (size_t i = 0; i < params; i++) grad[i] = NAN;
    nn_conv2d_kind.forward(layer, context, out, in, c.batch, &eval);
    nn_conv2d_kind.backward(layer, context, NULL, dout, in, out, c.batch, grad, &eval);
    assert_close(grad, want_grad, params, 1e-4, "grad without din", _i);
    nn_conv2d_kind.context_free(context);
    nn_conv2d_kind.destroy(layer);
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
        {{3, {2, 30, 30}}, 4, {3, 3}, {1, 1}, {0, 0}, true, 0},
        {{3, {3, 28, 28}}, 5, {3, 3}, {1, 1}, {1, 1}, true, 0},
        {{3, {2, 11, 13}}, 3, {3, 2}, {2, 1}, {1, 1}, false, 0},
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
    suite_add_tcase(suite, tc);
    return testutil_run(suite);
}
