/* The simple layers: the elementwise activations (ReLU, Sigmoid, Tanh,
 * LeakyReLU, GELU, Identity, ELU, SELU, CELU, SiLU, Mish, Softplus,
 * Softsign, Hardtanh, ReLU6, Hardsigmoid, Hardswish, Threshold), PReLU,
 * Softmax, LogSoftmax, Flatten and Dropout. Gradients by finite differences,
 * forward values against closed forms, naive references written here and
 * torch's own values and autograd gradients at kinks and saturations,
 * batch-split invariance, inplace, shapes and errors, PyTorch's repr of
 * each, and Dropout's per-sample masks: drawn by the documented streams, the
 * same whatever the split of a batch across replicas, and applied by
 * backward from the replica's own context. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "layers/layers.h"
#include "gradcheck.h"
#include "testutil.h"

static const nn_shape flat7 = {1, {7, 0, 0}};
static const nn_shape image234 = {3, {2, 3, 4}};
static const nn_mode eval_mode = {.training = false};
static const nn_mode training_mode = {.training = true};

static nn_layer *make_layer(const nn_layer_kind *kind, const nn_arg_value *args, nn_shape shape) {
    nn_arg_value defaults[NN_MAX_ARGS];
    if (!args) {
        gradcheck_args_default(kind, defaults);
        args = defaults;
    }
    nn_error err = {0};
    nn_layer *layer = kind->create(args, shape, &err);
    ck_assert_msg(layer != NULL, "%s create failed: %s", kind->name, err.message);
    layer->kind = kind;
    return layer;
}

static void check_gradients(const nn_layer_kind *kind, const nn_arg_value *args, nn_shape shape,
                            gradcheck_options options) {
    gradcheck_result r = gradcheck_layer(kind, args, shape, options);
    ck_assert_msg(r.ok, "%s on rank %d: %s", kind->name, shape.rank, r.message);
}

/* Gradients */

static const nn_layer_kind *const smooth_kinds[] = {&nn_sigmoid_kind, &nn_tanh_kind, &nn_gelu_kind};
static const nn_layer_kind *const kinked_kinds[] = {&nn_relu_kind, &nn_leaky_relu_kind};

START_TEST(smooth_activation_gradients) {
    const nn_layer_kind *kind = smooth_kinds[_i];
    check_gradients(kind, NULL, flat7, (gradcheck_options){.batch = 3, .seed = 11});
    check_gradients(kind, NULL, image234, (gradcheck_options){.batch = 2, .seed = 12});
}
END_TEST

/* The gap keeps inputs a hundred steps away from the kink at 0. */
START_TEST(kinked_activation_gradients) {
    const nn_layer_kind *kind = kinked_kinds[_i];
    check_gradients(kind, NULL, flat7, (gradcheck_options){.batch = 3, .seed = 21, .input_gap = 0.1});
    check_gradients(kind, NULL, image234, (gradcheck_options){.batch = 2, .seed = 22, .input_gap = 0.1});
}
END_TEST

START_TEST(leaky_relu_gradients_with_steep_slope) {
    nn_arg_value args[NN_MAX_ARGS];
    gradcheck_args_default(&nn_leaky_relu_kind, args);
    gradcheck_args_set(&nn_leaky_relu_kind, args, "negative_slope", 0.3, 0);
    check_gradients(&nn_leaky_relu_kind, args, flat7,
                    (gradcheck_options){.batch = 4, .seed = 31, .input_gap = 0.1});
    gradcheck_args_set(&nn_leaky_relu_kind, args, "negative_slope", -0.7, 0);
    check_gradients(&nn_leaky_relu_kind, args, image234,
                    (gradcheck_options){.batch = 2, .seed = 32, .input_gap = 0.1});
}
END_TEST

START_TEST(softmax_gradients_along_every_axis) {
    const nn_layer_kind *kinds[] = {&nn_softmax_kind, &nn_log_softmax_kind};
    for (int k = 0; k < 2; k++) {
        nn_arg_value args[NN_MAX_ARGS];
        gradcheck_args_default(kinds[k], args);
        check_gradients(kinds[k], args, flat7, (gradcheck_options){.batch = 3, .seed = 41});
        gradcheck_args_set(kinds[k], args, "dim", -1, 0);
        check_gradients(kinds[k], args, flat7, (gradcheck_options){.batch = 2, .seed = 42});
        int dims[] = {1, 2, 3, -1, -3};
        for (int d = 0; d < 5; d++) {
            gradcheck_args_set(kinds[k], args, "dim", dims[d], 0);
            check_gradients(kinds[k], args, image234, (gradcheck_options){.batch = 2, .seed = 43 + d});
        }
        gradcheck_args_set(kinds[k], args, "dim", 2, 0);
        check_gradients(kinds[k], args, (nn_shape){2, {3, 5, 0}},
                        (gradcheck_options){.batch = 2, .seed = 49});
    }
}
END_TEST

START_TEST(flatten_gradients) {
    nn_arg_value args[NN_MAX_ARGS];
    gradcheck_args_default(&nn_flatten_kind, args);
    check_gradients(&nn_flatten_kind, args, image234, (gradcheck_options){.batch = 2, .seed = 51});
    check_gradients(&nn_flatten_kind, args, flat7, (gradcheck_options){.batch = 2, .seed = 52});
    gradcheck_args_set(&nn_flatten_kind, args, "start_dim", 2, 0);
    check_gradients(&nn_flatten_kind, args, image234, (gradcheck_options){.batch = 2, .seed = 53});
}
END_TEST

START_TEST(dropout_gradients_in_training_and_eval) {
    nn_arg_value args[NN_MAX_ARGS];
    gradcheck_args_default(&nn_dropout_kind, args);
    gradcheck_args_set(&nn_dropout_kind, args, "p", 0.3, 0);
    gradcheck_options training = {.batch = 4, .seed = 61, .training = true};
    check_gradients(&nn_dropout_kind, args, flat7, training);
    training.seed = 62;
    check_gradients(&nn_dropout_kind, args, image234, training);
    check_gradients(&nn_dropout_kind, args, flat7, (gradcheck_options){.batch = 4, .seed = 63});
    check_gradients(&nn_dropout_kind, args, image234, (gradcheck_options){.batch = 2, .seed = 64});
}
END_TEST

/* Forward values */

static void forward_points(const nn_layer_kind *kind, const nn_arg_value *args, const float *in,
                           float *out, int count) {
    nn_layer *layer = make_layer(kind, args, (nn_shape){1, {count, 0, 0}});
    kind->forward(layer, NULL, out, in, 1, &eval_mode);
    kind->destroy(layer);
}

static void assert_close(double actual, double expected, double tolerance, const char *what, int index) {
    ck_assert_msg(isfinite(actual) && fabs(actual - expected) <= tolerance * (1 + fabs(expected)),
                  "%s[%d]: got %.9g, expected %.9g", what, index, actual, expected);
}

enum { POINTS = 9 };
static const float points[POINTS] = {-1000, -5, -1, -0.5f, 0, 0.25f, 1, 3, 1000};

START_TEST(elementwise_forward_matches_closed_forms) {
    float out[POINTS];
    forward_points(&nn_relu_kind, NULL, points, out, POINTS);
    for (int i = 0; i < POINTS; i++) assert_close(out[i], points[i] > 0 ? points[i] : 0, 0, "ReLU", i);
    forward_points(&nn_sigmoid_kind, NULL, points, out, POINTS);
    for (int i = 0; i < POINTS; i++)
        assert_close(out[i], 1 / (1 + exp(-(double)points[i])), 1e-6, "Sigmoid", i);
    forward_points(&nn_tanh_kind, NULL, points, out, POINTS);
    for (int i = 0; i < POINTS; i++) assert_close(out[i], tanh(points[i]), 1e-6, "Tanh", i);
    forward_points(&nn_leaky_relu_kind, NULL, points, out, POINTS);
    for (int i = 0; i < POINTS; i++)
        assert_close(out[i], points[i] > 0 ? points[i] : 0.01 * points[i], 1e-6, "LeakyReLU", i);
    forward_points(&nn_gelu_kind, NULL, points, out, POINTS);
    for (int i = 0; i < POINTS; i++) {
        double x = points[i];
        assert_close(out[i], 0.5 * x * (1 + erf(x / sqrt(2.0))), 1e-6, "GELU", i);
    }
    /* Phi(1) from a normal table, independent of erf. */
    assert_close(out[6], 0.8413447460685429, 1e-6, "GELU(1)", 6);
    assert_close(out[2], -(1 - 0.8413447460685429), 1e-6, "GELU(-1)", 2);
}
END_TEST

START_TEST(leaky_relu_uses_its_slope) {
    nn_arg_value args[NN_MAX_ARGS];
    gradcheck_args_default(&nn_leaky_relu_kind, args);
    gradcheck_args_set(&nn_leaky_relu_kind, args, "negative_slope", 0.2, 0);
    float out[POINTS], din[POINTS], ones[POINTS];
    for (int i = 0; i < POINTS; i++) ones[i] = 1;
    nn_layer *layer = make_layer(&nn_leaky_relu_kind, args, (nn_shape){1, {POINTS, 0, 0}});
    nn_leaky_relu_kind.forward(layer, NULL, out, points, 1, &eval_mode);
    nn_leaky_relu_kind.backward(layer, NULL, din, ones, points, out, 1, NULL, &eval_mode);
    for (int i = 0; i < POINTS; i++) {
        assert_close(out[i], points[i] > 0 ? points[i] : 0.2 * points[i], 1e-6, "LeakyReLU(0.2)", i);
        assert_close(din[i], points[i] > 0 ? 1 : 0.2, 1e-6, "dLeakyReLU(0.2)", i);
    }
    nn_leaky_relu_kind.destroy(layer);
}
END_TEST

/* Independent reference: softmax over axis of a (batch, rank-3) array, in double. */
static void naive_softmax(double *out, const float *in, int batch, nn_shape shape, int axis) {
    int dims[4] = {batch, shape.dims[0], shape.dims[1], shape.dims[2]};
    int strides[4] = {dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1};
    int a = axis + 1, total = batch * strides[0];
    for (int index = 0; index < total; index++) {
        int base = index - (index / strides[a] % dims[a]) * strides[a]; /* same slice, position 0 */
        double max = -INFINITY, sum = 0;
        for (int k = 0; k < dims[a]; k++) max = fmax(max, in[base + k * strides[a]]);
        for (int k = 0; k < dims[a]; k++) sum += exp(in[base + k * strides[a]] - max);
        out[index] = exp(in[index] - max) / sum;
    }
}

START_TEST(softmax_matches_naive_reference_on_images) {
    enum { BATCH = 2, COUNT = BATCH * 24 };
    float in[COUNT], out[COUNT], log_out[COUNT];
    double expected[COUNT];
    nn_rng rng;
    nn_rng_seed(&rng, 7);
    for (int i = 0; i < COUNT; i++) in[i] = nn_rng_uniform_range(&rng, -4, 4);
    for (int dim = 1; dim <= 3; dim++) {
        nn_arg_value args[NN_MAX_ARGS];
        gradcheck_args_default(&nn_softmax_kind, args);
        gradcheck_args_set(&nn_softmax_kind, args, "dim", dim, 0);
        nn_layer *softmax = make_layer(&nn_softmax_kind, args, image234);
        nn_layer *log_softmax = make_layer(&nn_log_softmax_kind, args, image234);
        nn_softmax_kind.forward(softmax, NULL, out, in, BATCH, &eval_mode);
        nn_log_softmax_kind.forward(log_softmax, NULL, log_out, in, BATCH, &eval_mode);
        naive_softmax(expected, in, BATCH, image234, dim - 1);
        for (int i = 0; i < COUNT; i++) {
            assert_close(out[i], expected[i], 1e-5, "Softmax", i);
            assert_close(log_out[i], log(expected[i]), 1e-5, "LogSoftmax", i);
        }
        nn_softmax_kind.destroy(softmax);
        nn_log_softmax_kind.destroy(log_softmax);
    }
}
END_TEST

START_TEST(softmax_is_stable_for_large_inputs) {
    enum { FEATURES = 4 };
    const float in[3 * FEATURES] = {1000,  0,     -1000, 999,   -1000, -1000,
                                    -1000, -1000, -1000, -1000, 1000,  1000};
    float out[3 * FEATURES], log_out[3 * FEATURES];
    nn_layer *softmax = make_layer(&nn_softmax_kind, NULL, (nn_shape){1, {FEATURES, 0, 0}});
    nn_layer *log_softmax = make_layer(&nn_log_softmax_kind, NULL, (nn_shape){1, {FEATURES, 0, 0}});
    nn_softmax_kind.forward(softmax, NULL, out, in, 3, &eval_mode);
    nn_log_softmax_kind.forward(log_softmax, NULL, log_out, in, 3, &eval_mode);
    for (int row = 0; row < 3; row++) {
        double sum = 0;
        for (int i = 0; i < FEATURES; i++) {
            ck_assert_msg(isfinite(out[row * FEATURES + i]) && isfinite(log_out[row * FEATURES + i]),
                          "row %d entry %d not finite", row, i);
            sum += out[row * FEATURES + i];
        }
        assert_close(sum, 1, 1e-6, "softmax row sum", row);
    }
    /* Row 0: e^1000 / (e^1000 + e^999) and its log, in closed form. */
    double share = 1 / (1 + exp(-1.0));
    assert_close(out[0], share, 1e-6, "softmax", 0);
    assert_close(out[3], 1 - share, 1e-6, "softmax", 3);
    assert_close(log_out[0], log(share), 1e-6, "log_softmax", 0);
    assert_close(log_out[1], -1000 + log(share), 1e-6, "log_softmax", 1);
    assert_close(log_out[2], -2000 + log(share), 1e-6, "log_softmax", 2);
    for (int i = 0; i < FEATURES; i++) assert_close(out[FEATURES + i], 0.25, 1e-6, "softmax", FEATURES + i);
    for (int i = 0; i < FEATURES; i++)
        assert_close(out[2 * FEATURES + i], i < 2 ? 0 : 0.5, 1e-6, "softmax", 2 * FEATURES + i);
    nn_softmax_kind.destroy(softmax);
    nn_log_softmax_kind.destroy(log_softmax);
}
END_TEST

START_TEST(log_softmax_is_log_of_softmax) {
    enum { BATCH = 5, FEATURES = 10, COUNT = BATCH * FEATURES };
    float in[COUNT], out[COUNT], log_out[COUNT];
    nn_rng rng;
    nn_rng_seed(&rng, 8);
    for (int i = 0; i < COUNT; i++) in[i] = nn_rng_uniform_range(&rng, -10, 10);
    nn_layer *softmax = make_layer(&nn_softmax_kind, NULL, (nn_shape){1, {FEATURES, 0, 0}});
    nn_layer *log_softmax = make_layer(&nn_log_softmax_kind, NULL, (nn_shape){1, {FEATURES, 0, 0}});
    nn_softmax_kind.forward(softmax, NULL, out, in, BATCH, &eval_mode);
    nn_log_softmax_kind.forward(log_softmax, NULL, log_out, in, BATCH, &eval_mode);
    for (int i = 0; i < COUNT; i++) assert_close(log_out[i], log(out[i]), 1e-5, "log_softmax", i);
    nn_softmax_kind.destroy(softmax);
    nn_log_softmax_kind.destroy(log_softmax);
}
END_TEST

START_TEST(softmax_rejects_bad_dims) {
    const nn_layer_kind *kinds[] = {&nn_softmax_kind, &nn_log_softmax_kind};
    struct { nn_shape shape; int dim; const char *why; } cases[] = {
        {{1, {10, 0, 0}}, 0, "batch"},  {{1, {10, 0, 0}}, -2, "batch"},
        {{1, {10, 0, 0}}, 2, "range"},  {{1, {10, 0, 0}}, -3, "range"},
        {{3, {1, 28, 28}}, 4, "range"}, {{3, {1, 28, 28}}, -4, "batch"},
    };
    for (int k = 0; k < 2; k++)
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            nn_arg_value args[NN_MAX_ARGS];
            gradcheck_args_default(kinds[k], args);
            gradcheck_args_set(kinds[k], args, "dim", cases[c].dim, 0);
            nn_error err = {0};
            ck_assert_ptr_null(kinds[k]->create(args, cases[c].shape, &err));
            ck_assert_int_eq(err.status, NN_ERR_INPUT);
            char dim_text[32], shape_text[64];
            snprintf(dim_text, sizeof dim_text, "dim=%d", cases[c].dim);
            nn_shape_format(cases[c].shape, shape_text, sizeof shape_text);
            ck_assert_msg(strstr(err.message, kinds[k]->name) && strstr(err.message, dim_text) &&
                              strstr(err.message, shape_text) && strstr(err.message, cases[c].why),
                          "%s", err.message);
        }
}
END_TEST

/* Flatten */

START_TEST(flatten_shapes) {
    struct { nn_shape in; int start, end; nn_shape out; } cases[] = {
        {{3, {3, 4, 5}}, 1, -1, {1, {60, 0, 0}}},  {{3, {3, 4, 5}}, 2, -1, {2, {3, 20, 0}}},
        {{3, {3, 4, 5}}, 1, 2, {2, {12, 5, 0}}},   {{3, {3, 4, 5}}, 2, 2, {3, {3, 4, 5}}},
        {{3, {3, 4, 5}}, -2, -1, {2, {3, 20, 0}}}, {{3, {3, 4, 5}}, -3, 1, {3, {3, 4, 5}}},
        {{3, {3, 4, 5}}, 1, -2, {2, {12, 5, 0}}},  {{3, {3, 4, 5}}, 3, 3, {3, {3, 4, 5}}},
        {{2, {4, 5, 0}}, 1, -1, {1, {20, 0, 0}}},  {{1, {7, 0, 0}}, 1, -1, {1, {7, 0, 0}}},
        {{1, {7, 0, 0}}, -1, -1, {1, {7, 0, 0}}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        nn_arg_value args[NN_MAX_ARGS];
        gradcheck_args_default(&nn_flatten_kind, args);
        gradcheck_args_set(&nn_flatten_kind, args, "start_dim", cases[c].start, 0);
        gradcheck_args_set(&nn_flatten_kind, args, "end_dim", cases[c].end, 0);
        nn_layer *layer = make_layer(&nn_flatten_kind, args, cases[c].in);
        char got[64], want[64];
        nn_shape_format(layer->out_shape, got, sizeof got);
        nn_shape_format(cases[c].out, want, sizeof want);
        ck_assert_msg(nn_shape_equal(layer->out_shape, cases[c].out), "case %zu: got %s, want %s", c, got,
                      want);
        nn_flatten_kind.destroy(layer);
    }
}
END_TEST

START_TEST(flatten_copies_values_both_ways) {
    enum { COUNT = 2 * 24 };
    float in[COUNT], out[COUNT], din[COUNT];
    for (int i = 0; i < COUNT; i++) in[i] = (float)i - 20;
    nn_layer *layer = make_layer(&nn_flatten_kind, NULL, image234);
    nn_flatten_kind.forward(layer, NULL, out, in, 2, &eval_mode);
    ck_assert_mem_eq(out, in, sizeof in);
    nn_flatten_kind.backward(layer, NULL, din, in, in, out, 2, NULL, &eval_mode);
    ck_assert_mem_eq(din, in, sizeof in);
    nn_flatten_kind.destroy(layer);
}
END_TEST

START_TEST(flatten_rejects_bad_ranges) {
    struct { int start, end; const char *why; } cases[] = {
        {0, -1, "batch"}, {-4, -1, "batch"}, {4, -1, "range"}, {1, 4, "range"},
        {1, -5, "range"}, {3, 1, "after"},   {-1, -2, "after"},
    };
    nn_shape shape = {3, {1, 28, 28}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        nn_arg_value args[NN_MAX_ARGS];
        gradcheck_args_default(&nn_flatten_kind, args);
        gradcheck_args_set(&nn_flatten_kind, args, "start_dim", cases[c].start, 0);
        gradcheck_args_set(&nn_flatten_kind, args, "end_dim", cases[c].end, 0);
        nn_error err = {0};
        ck_assert_ptr_null(nn_flatten_kind.create(args, shape, &err));
        ck_assert_int_eq(err.status, NN_ERR_INPUT);
        char dims[64];
        snprintf(dims, sizeof dims, "start_dim=%d, end_dim=%d", cases[c].start, cases[c].end);
        ck_assert_msg(strstr(err.message, dims) && strstr(err.message, "(1, 28, 28)") &&
                          strstr(err.message, cases[c].why),
                      "%s", err.message);
    }
}
END_TEST

/* Dropout */

/* A Dropout layer and one replica's context for up to max_batch samples. */
typedef struct dropout_fixture {
    nn_layer *layer;
    void *context;
} dropout_fixture;

static void *dropout_context(nn_layer *layer, int max_batch) {
    nn_error err = {0};
    void *context = nn_dropout_kind.context_create(layer, max_batch, &err);
    ck_assert_msg(context != NULL, "context_create failed: %s", err.message);
    return context;
}

static dropout_fixture make_dropout(double p, int max_batch, nn_shape shape) {
    nn_arg_value args[NN_MAX_ARGS];
    gradcheck_args_default(&nn_dropout_kind, args);
    gradcheck_args_set(&nn_dropout_kind, args, "p", p, 0);
    dropout_fixture f;
    f.layer = make_layer(&nn_dropout_kind, args, shape);
    f.context = dropout_context(f.layer, max_batch);
    return f;
}

static void free_dropout(dropout_fixture f) {
    nn_dropout_kind.context_free(f.context);
    nn_dropout_kind.destroy(f.layer);
}

static void drop_forward(dropout_fixture f, float *out, const float *in, int batch, const nn_mode *mode) {
    nn_dropout_kind.forward(f.layer, f.context, out, in, batch, mode);
}

static void drop_backward(dropout_fixture f, float *din, const float *dout, const float *in, const float *out,
                          int batch, const nn_mode *mode) {
    nn_dropout_kind.backward(f.layer, f.context, din, dout, in, out, batch, NULL, mode);
}

/* The documented rule, replayed: value j of a sample keyed key is dropped at
 * layer_index when draw j of the stream nn_key_mix(key, layer_index) is < p. */
static void replay_mask(bool *dropped, uint64_t key, int layer_index, int features, double p) {
    nn_stream stream;
    nn_stream_start(&stream, nn_key_mix(key, (uint64_t)layer_index));
    for (int j = 0; j < features; j++) dropped[j] = nn_stream_uniform(&stream) < (float)p;
}

static float dropout_scale(double p) { return (float)(1.0 / (1.0 - p)); }

enum { DROP_BATCH = 1000, DROP_FEATURES = 100, DROP_COUNT = DROP_BATCH * DROP_FEATURES };
static const nn_shape flat100 = {1, {DROP_FEATURES, 0, 0}};

static float *filled(float first) {
    float *values = malloc(DROP_COUNT * sizeof *values);
    for (int i = 0; i < DROP_COUNT; i++) values[i] = first + (float)(i % 17) * 0.25f;
    return values;
}

/* Eval is the identity both ways, whatever the keys and layer index, and
 * also right after a training forward on the same context. */
START_TEST(dropout_eval_is_identity) {
    dropout_fixture f = make_dropout(0.5, DROP_BATCH, flat100);
    float *in = filled(-2), *out = filled(0), *din = filled(0);
    drop_forward(f, out, in, DROP_BATCH, &eval_mode);
    ck_assert_mem_eq(out, in, DROP_COUNT * sizeof *in);
    drop_backward(f, din, in, in, out, DROP_BATCH, &eval_mode);
    ck_assert_mem_eq(din, in, DROP_COUNT * sizeof *in);
    drop_forward(f, out, in, DROP_BATCH, &training_mode);
    ck_assert_msg(memcmp(out, in, DROP_COUNT * sizeof *in) != 0, "training dropped nothing");
    static uint64_t keys[DROP_BATCH];
    for (int b = 0; b < DROP_BATCH; b++) keys[b] = 7 * (uint64_t)b + 1;
    const nn_mode keyed = {.training = false, .sample_keys = keys, .layer_index = 5};
    drop_forward(f, out, in, DROP_BATCH, &keyed);
    ck_assert_mem_eq(out, in, DROP_COUNT * sizeof *in);
    drop_backward(f, din, in, in, out, DROP_BATCH, &keyed);
    ck_assert_mem_eq(din, in, DROP_COUNT * sizeof *in);
    free(in);
    free(out);
    free(din);
    free_dropout(f);
}
END_TEST

/* A count of n independent events of probability q is within 5 standard deviations of n q. */
static void assert_fraction(int count, int n, double q, const char *what, int index) {
    double fraction = (double)count / n, sigma = sqrt(q * (1 - q) / n);
    ck_assert_msg(fabs(fraction - q) < 5 * sigma, "%s %d: %.5f, expected %.5f +- %.5f", what, index, fraction,
                  q, 5 * sigma);
}

static const double drop_probabilities[] = {0.1, 0.3, 0.5, 0.9};

/* 1000 samples keyed 0..999 of 100 values: the dropped fraction is about p
 * overall and at each position, neighbours (disjoint pairs along a sample,
 * and across consecutive keys) are dropped together about p^2 of the time,
 * and the kept values, and their gradients, are scaled by 1/(1-p). */
START_TEST(dropout_training_drops_about_p_and_scales_the_rest) {
    const double p = drop_probabilities[_i];
    dropout_fixture f = make_dropout(p, DROP_BATCH, flat100);
    float *in = filled(1), *out = filled(0), *din = filled(0), *ones = filled(0);
    for (int i = 0; i < DROP_COUNT; i++) ones[i] = 1;
    const nn_mode mode = {.training = true, .layer_index = _i};
    drop_forward(f, out, in, DROP_BATCH, &mode);
    drop_backward(f, din, ones, in, out, DROP_BATCH, &mode);
    int dropped = 0, column[DROP_FEATURES] = {0};
    for (int i = 0; i < DROP_COUNT; i++) {
        if (out[i] == 0) {
            ck_assert_msg(din[i] == 0, "dropped value %d passes gradient %g", i, din[i]);
            dropped++;
            column[i % DROP_FEATURES]++;
            continue;
        }
        assert_close(out[i], in[i] / (1 - p), 1e-6, "kept value", i);
        assert_close(din[i], 1 / (1 - p), 1e-6, "kept gradient", i);
    }
    assert_fraction(dropped, DROP_COUNT, p, "dropped, layer", _i);
    for (int j = 0; j < DROP_FEATURES; j++) assert_fraction(column[j], DROP_BATCH, p, "dropped at position", j);
    int along = 0, across = 0;
    for (int b = 0; b < DROP_BATCH; b++)
        for (int j = 0; j + 1 < DROP_FEATURES; j += 2)
            along += out[b * DROP_FEATURES + j] == 0 && out[b * DROP_FEATURES + j + 1] == 0;
    for (int b = 0; b + 1 < DROP_BATCH; b += 2)
        for (int j = 0; j < DROP_FEATURES; j++)
            across += out[b * DROP_FEATURES + j] == 0 && out[(b + 1) * DROP_FEATURES + j] == 0;
    assert_fraction(along, DROP_COUNT / 2, p * p, "neighbours in a sample dropped together, layer", _i);
    assert_fraction(across, DROP_COUNT / 2, p * p, "neighbours across samples dropped together, layer", _i);
    free(in);
    free(out);
    free(din);
    free(ones);
    free_dropout(f);
}
END_TEST

/* The documented rule, value by value: sample b draws from the stream keyed
 * nn_key_mix(key_b, layer_index), one draw per value in order, < p drops.
 * No state carries over from one forward to the next, equal keys give equal
 * masks, and NULL sample_keys are the keys 0, 1, 2, ... */
START_TEST(dropout_mask_follows_the_streams) {
    const double p = 0.4;
    enum { BATCH = 6, FEATURES = 24, COUNT = BATCH * FEATURES, LAYER = 4 };
    const uint64_t keys[BATCH] = {901, 17, 5, 5, 123456789012345ULL, UINT64_MAX};
    dropout_fixture f = make_dropout(p, BATCH, image234);
    float in[COUNT], first[COUNT], second[COUNT];
    for (int i = 0; i < COUNT; i++) in[i] = 1 + (float)i;
    const nn_mode mode = {.training = true, .sample_keys = keys, .layer_index = LAYER};
    drop_forward(f, first, in, BATCH, &mode);
    drop_forward(f, second, in, BATCH, &mode);
    ck_assert_mem_eq(first, second, sizeof first);
    float scale = dropout_scale(p);
    for (int b = 0; b < BATCH; b++) {
        bool dropped[FEATURES];
        replay_mask(dropped, keys[b], LAYER, FEATURES, p);
        for (int j = 0; j < FEATURES; j++) {
            int i = b * FEATURES + j;
            float expected = dropped[j] ? 0.0f : in[i] * scale;
            ck_assert_msg(memcmp(&first[i], &expected, sizeof expected) == 0,
                          "sample %d value %d: got %g, the stream says %g", b, j, first[i], expected);
        }
    }
    for (int j = 0; j < FEATURES; j++)
        ck_assert_msg((first[2 * FEATURES + j] == 0) == (first[3 * FEATURES + j] == 0),
                      "samples 2 and 3 share a key but not value %d's fate", j);
    const uint64_t counting[BATCH] = {0, 1, 2, 3, 4, 5};
    const nn_mode implicit = {.training = true, .layer_index = LAYER};
    const nn_mode listed = {.training = true, .sample_keys = counting, .layer_index = LAYER};
    drop_forward(f, first, in, BATCH, &implicit);
    drop_forward(f, second, in, BATCH, &listed);
    ck_assert_mem_eq(first, second, sizeof first);
    free_dropout(f);
}
END_TEST

/* Replicas: a batch of 6 in one forward, or in slices run by separate
 * contexts (each slice with the keys of its rows, in any order, all the
 * forwards before any backward), gives the same outputs and gradients bit
 * for bit; with NULL keys for the whole batch, the slices take the rows'
 * indices as keys. */
START_TEST(dropout_masks_do_not_depend_on_the_split) {
    const double p = 0.5;
    enum { BATCH = 6, FEATURES = 24, COUNT = BATCH * FEATURES, LAYER = 2 };
    const uint64_t keys[BATCH] = {0x9e3779b9ULL, 41, 42, 7, 1ULL << 63, 3};
    const uint64_t counting[BATCH] = {0, 1, 2, 3, 4, 5};
    struct { int start, count; } splits[][3] = {
        {{0, 3}, {3, 3}, {0, 0}},   /* two slices of 3 */
        {{3, 3}, {0, 3}, {0, 0}},   /* the same, second slice first */
        {{5, 1}, {0, 2}, {2, 3}},   /* uneven, out of order */
    };
    float in[COUNT], dout[COUNT], whole[COUNT], whole_din[COUNT], parts[COUNT], parts_din[COUNT];
    nn_rng rng;
    nn_rng_seed(&rng, 77);
    for (int i = 0; i < COUNT; i++) {
        in[i] = 0.5f + nn_rng_uniform(&rng);
        dout[i] = nn_rng_uniform_range(&rng, -1, 1);
    }
    dropout_fixture f = make_dropout(p, BATCH, image234);
    void *replicas[3] = {dropout_context(f.layer, 3), dropout_context(f.layer, 3), dropout_context(f.layer, 3)};
    for (int with_keys = 0; with_keys < 2; with_keys++) {
        const nn_mode whole_mode = {.training = true, .sample_keys = with_keys ? keys : NULL,
                                    .layer_index = LAYER};
        drop_forward(f, whole, in, BATCH, &whole_mode);
        drop_backward(f, whole_din, dout, in, whole, BATCH, &whole_mode);
        const uint64_t *row_keys = with_keys ? keys : counting;
        for (size_t s = 0; s < sizeof splits / sizeof splits[0]; s++) {
            memset(parts, 0xff, sizeof parts);
            memset(parts_din, 0xff, sizeof parts_din);
            nn_mode modes[3];
            for (int r = 0; r < 3 && splits[s][r].count; r++) {
                size_t at = (size_t)splits[s][r].start * FEATURES;
                modes[r] = (nn_mode){.training = true, .sample_keys = row_keys + splits[s][r].start,
                                     .layer_index = LAYER};
                nn_dropout_kind.forward(f.layer, replicas[r], parts + at, in + at, splits[s][r].count, &modes[r]);
            }
            for (int r = 0; r < 3 && splits[s][r].count; r++) {
                size_t at = (size_t)splits[s][r].start * FEATURES;
                nn_dropout_kind.backward(f.layer, replicas[r], parts_din + at, dout + at, in + at, parts + at,
                                         splits[s][r].count, NULL, &modes[r]);
            }
            ck_assert_msg(memcmp(parts, whole, sizeof whole) == 0, "split %zu (keys %d): outputs differ", s,
                          with_keys);
            ck_assert_msg(memcmp(parts_din, whole_din, sizeof whole_din) == 0,
                          "split %zu (keys %d): gradients differ", s, with_keys);
        }
    }
    for (int r = 0; r < 3; r++) nn_dropout_kind.context_free(replicas[r]);
    free_dropout(f);
}
END_TEST

/* Every sample's mask changes with the layer index; changing one sample's
 * key changes its mask and no other's; key and layer index do not commute. */
START_TEST(dropout_mask_depends_on_key_and_layer_index) {
    enum { BATCH = 4, FEATURES = 24, COUNT = BATCH * FEATURES };
    uint64_t keys[BATCH] = {10, 11, 12, 13};
    float in[COUNT], base[COUNT], other[COUNT];
    for (int i = 0; i < COUNT; i++) in[i] = 1 + (float)i;
    dropout_fixture f = make_dropout(0.5, BATCH, image234);
    nn_mode mode = {.training = true, .sample_keys = keys, .layer_index = 2};
    drop_forward(f, base, in, BATCH, &mode);
    mode.layer_index = 3;
    drop_forward(f, other, in, BATCH, &mode);
    for (int b = 0; b < BATCH; b++)
        ck_assert_msg(memcmp(base + b * FEATURES, other + b * FEATURES, FEATURES * sizeof *base) != 0,
                      "sample %d has the same mask at layers 2 and 3", b);
    mode.layer_index = 2;
    keys[1] = 14;
    drop_forward(f, other, in, BATCH, &mode);
    for (int b = 0; b < BATCH; b++) {
        bool same = memcmp(base + b * FEATURES, other + b * FEATURES, FEATURES * sizeof *base) == 0;
        ck_assert_msg(same == (b != 1), "sample %d: mask %s after sample 1's key changed", b,
                      same ? "unchanged" : "changed");
    }
    const uint64_t two = 2, three = 3;
    const nn_mode key3_layer2 = {.training = true, .sample_keys = &three, .layer_index = 2};
    const nn_mode key2_layer3 = {.training = true, .sample_keys = &two, .layer_index = 3};
    drop_forward(f, base, in, 1, &key3_layer2);
    drop_forward(f, other, in, 1, &key2_layer3);
    ck_assert_msg(memcmp(base, other, FEATURES * sizeof *base) != 0, "key 3 at layer 2 drops as key 2 at layer 3");
    free_dropout(f);
}
END_TEST

/* Backward multiplies dout by exactly the mask of the last forward with its
 * context (0 or 1/(1-p), bit for bit), even when another replica's context
 * ran a forward with other keys in between; after an eval forward it passes
 * dout through. */
START_TEST(dropout_backward_applies_the_forward_mask) {
    const double p = 0.3;
    enum { BATCH = 5, FEATURES = 7, COUNT = BATCH * FEATURES, LAYER = 1 };
    const uint64_t keys[BATCH] = {2, 3, 5, 7, 11}, other_keys[BATCH] = {13, 17, 19, 23, 29};
    float in[COUNT], dout[COUNT], out[COUNT], din[COUNT], other_out[COUNT], other_din[COUNT];
    nn_rng rng;
    nn_rng_seed(&rng, 12);
    for (int i = 0; i < COUNT; i++) {
        in[i] = (float)i - 17.5f;
        dout[i] = nn_rng_uniform_range(&rng, -1, 1);
    }
    dropout_fixture f = make_dropout(p, BATCH, flat7);
    void *other = dropout_context(f.layer, BATCH);
    const nn_mode mode = {.training = true, .sample_keys = keys, .layer_index = LAYER};
    const nn_mode other_mode = {.training = true, .sample_keys = other_keys, .layer_index = LAYER};
    drop_forward(f, out, in, BATCH, &mode);
    nn_dropout_kind.forward(f.layer, other, other_out, in, BATCH, &other_mode);
    ck_assert_msg(memcmp(out, other_out, sizeof out) != 0, "other keys gave the same masks");
    drop_backward(f, din, dout, in, out, BATCH, &mode);
    nn_dropout_kind.backward(f.layer, other, other_din, dout, in, other_out, BATCH, NULL, &other_mode);
    float scale = dropout_scale(p);
    for (int b = 0; b < BATCH; b++) {
        bool dropped[FEATURES], other_dropped[FEATURES];
        replay_mask(dropped, keys[b], LAYER, FEATURES, p);
        replay_mask(other_dropped, other_keys[b], LAYER, FEATURES, p);
        for (int j = 0; j < FEATURES; j++) {
            int i = b * FEATURES + j;
            float expected = dout[i] * (dropped[j] ? 0.0f : scale);
            float other_expected = dout[i] * (other_dropped[j] ? 0.0f : scale);
            ck_assert_msg((out[i] == 0) == dropped[j], "value %d: forward and stream disagree", i);
            ck_assert_msg(memcmp(&din[i], &expected, sizeof expected) == 0, "din[%d] = %g, expected %g", i,
                          din[i], expected);
            ck_assert_msg(memcmp(&other_din[i], &other_expected, sizeof other_expected) == 0,
                          "other replica's din[%d] = %g, expected %g", i, other_din[i], other_expected);
        }
    }
    drop_forward(f, out, in, BATCH, &eval_mode);
    drop_backward(f, din, dout, in, out, BATCH, &eval_mode);
    ck_assert_mem_eq(din, dout, sizeof dout);
    nn_dropout_kind.context_free(other);
    free_dropout(f);
}
END_TEST

START_TEST(dropout_extreme_probabilities) {
    enum { BATCH = 4, COUNT = BATCH * 7 };
    float in[COUNT], out[COUNT], din[COUNT];
    for (int i = 0; i < COUNT; i++) in[i] = (float)i - 10.5f;
    dropout_fixture keep_all = make_dropout(0, BATCH, flat7);
    drop_forward(keep_all, out, in, BATCH, &training_mode);
    ck_assert_mem_eq(out, in, sizeof in);
    drop_backward(keep_all, din, in, in, out, BATCH, &training_mode);
    ck_assert_mem_eq(din, in, sizeof in);
    free_dropout(keep_all);
    dropout_fixture drop_all = make_dropout(1, BATCH, flat7);
    drop_forward(drop_all, out, in, BATCH, &training_mode);
    drop_backward(drop_all, din, in, in, out, BATCH, &training_mode);
    for (int i = 0; i < COUNT; i++) {
        ck_assert_msg(out[i] == 0 && !signbit(out[i]), "p=1 out[%d] = %g", i, out[i]);
        ck_assert_msg(din[i] == 0, "p=1 din[%d] = %g", i, din[i]);
    }
    free_dropout(drop_all);
}
END_TEST

START_TEST(dropout_rejects_bad_p) {
    const double bad[] = {-0.1, 1.5, NAN, INFINITY};
    for (int i = 0; i < 4; i++) {
        nn_arg_value args[NN_MAX_ARGS];
        gradcheck_args_default(&nn_dropout_kind, args);
        gradcheck_args_set(&nn_dropout_kind, args, "p", bad[i], 0);
        nn_error err = {0};
        ck_assert_ptr_null(nn_dropout_kind.create(args, flat7, &err));
        ck_assert_int_eq(err.status, NN_ERR_INPUT);
        ck_assert_msg(strstr(err.message, "between 0 and 1"), "%s", err.message);
    }
    nn_arg_value args[NN_MAX_ARGS];
    gradcheck_args_default(&nn_dropout_kind, args);
    gradcheck_args_set(&nn_dropout_kind, args, "p", 1.5, 0);
    nn_error err = {0};
    nn_dropout_kind.create(args, flat7, &err);
    ck_assert_msg(strstr(err.message, "1.5"), "%s", err.message);
}
END_TEST

/* Contexts of different sizes live side by side for one layer, each holds
 * exactly max_batch samples (ASan sees any overrun), they draw the same
 * masks for the same keys, and each is freed on its own (nothing leaks). */
START_TEST(dropout_contexts_of_any_size) {
    dropout_fixture f = make_dropout(0.5, 2, flat7);
    void *big = dropout_context(f.layer, 8), *one = dropout_context(f.layer, 1);
    float in[8 * 7], out[8 * 7], small[2 * 7];
    for (int i = 0; i < 8 * 7; i++) in[i] = 1;
    nn_dropout_kind.forward(f.layer, big, out, in, 8, &training_mode);
    for (int i = 0; i < 8 * 7; i++) ck_assert(out[i] == 0 || out[i] == 2);
    drop_forward(f, small, in, 2, &training_mode);
    ck_assert_mem_eq(small, out, sizeof small);
    nn_dropout_kind.forward(f.layer, one, small, in, 1, &training_mode);
    ck_assert_mem_eq(small, out, 7 * sizeof *small);
    nn_dropout_kind.context_free(big);
    nn_dropout_kind.context_free(one);
    nn_dropout_kind.context_free(NULL);
    free_dropout(f);
}
END_TEST

static const nn_layer_kind *const simple_kinds[] = {
    &nn_relu_kind,      &nn_sigmoid_kind,     &nn_tanh_kind,      &nn_leaky_relu_kind, &nn_gelu_kind,
    &nn_softmax_kind,   &nn_log_softmax_kind, &nn_flatten_kind,   &nn_dropout_kind,    &nn_identity_kind,
    &nn_elu_kind,       &nn_selu_kind,        &nn_celu_kind,      &nn_silu_kind,       &nn_mish_kind,
    &nn_softplus_kind,  &nn_softsign_kind,    &nn_hardtanh_kind,  &nn_relu6_kind,      &nn_hardsigmoid_kind,
    &nn_hardswish_kind, &nn_threshold_kind,
};
enum { SIMPLE_KINDS = sizeof simple_kinds / sizeof simple_kinds[0] };

/* Only Dropout keeps something between forward and backward (its mask);
 * the others read in and out, so they have no context. None has trainable
 * state, so none needs init. */
START_TEST(only_dropout_has_a_context) {
    for (int k = 0; k < SIMPLE_KINDS; k++) {
        bool dropout = simple_kinds[k] == &nn_dropout_kind;
        ck_assert_msg((simple_kinds[k]->context_create != NULL) == dropout &&
                          (simple_kinds[k]->context_free != NULL) == dropout,
                      "%s: context functions", simple_kinds[k]->name);
        ck_assert_msg(simple_kinds[k]->init == NULL, "%s has an init", simple_kinds[k]->name);
    }
}
END_TEST

/* Every kind ignores a NULL din, in eval and in training. */
START_TEST(backward_without_din_does_nothing) {
    float in[7] = {1, -2, 3, -4, 5, -6, 7}, out[7];
    const nn_mode *modes[] = {&eval_mode, &training_mode};
    for (int k = 0; k < SIMPLE_KINDS; k++) {
        const nn_layer_kind *kind = simple_kinds[k];
        nn_layer *layer = make_layer(kind, NULL, flat7);
        ck_assert_int_eq(layer->state_count, 0);
        ck_assert_int_eq(nn_layer_param_count(layer), 0);
        ck_assert_msg(nn_shape_equal(layer->out_shape, flat7), "%s changes the shape", kind->name);
        nn_error err = {0};
        void *context = kind->context_create ? kind->context_create(layer, 1, &err) : NULL;
        ck_assert_msg(context || !kind->context_create, "%s: %s", kind->name, err.message);
        for (int m = 0; m < 2; m++) {
            kind->forward(layer, context, out, in, 1, modes[m]);
            kind->backward(layer, context, NULL, in, in, out, 1, NULL, modes[m]);
        }
        if (kind->context_free) kind->context_free(context);
        kind->destroy(layer);
    }
}
END_TEST

/* describe: strings checked against PyTorch 1.13's print(nn.X(...)). */

static void assert_describes(const nn_layer_kind *kind, const nn_arg_value *args, const char *expected) {
    nn_layer *layer = make_layer(kind, args, flat7);
    char text[128];
    int length = kind->describe(layer, text, sizeof text);
    ck_assert_str_eq(text, expected);
    ck_assert_int_eq(length, (int)strlen(expected));
    kind->destroy(layer);
}

static nn_arg_value *with_arg(const nn_layer_kind *kind, nn_arg_value *args, const char *name, double value,
                              bool is_integer) {
    gradcheck_args_default(kind, args);
    gradcheck_args_set(kind, args, name, value, 0);
    args[nn_arg_find(kind->args, kind->arg_count, name)].is_integer = is_integer;
    return args;
}

START_TEST(describe_matches_pytorch) {
    nn_arg_value args[NN_MAX_ARGS];
    assert_describes(&nn_relu_kind, NULL, "ReLU()");
    assert_describes(&nn_sigmoid_kind, NULL, "Sigmoid()");
    assert_describes(&nn_tanh_kind, NULL, "Tanh()");
    assert_describes(&nn_gelu_kind, NULL, "GELU(approximate='none')");
    assert_describes(&nn_leaky_relu_kind, NULL, "LeakyReLU(negative_slope=0.01)");
    assert_describes(&nn_leaky_relu_kind, with_arg(&nn_leaky_relu_kind, args, "negative_slope", 1e-7, false),
                     "LeakyReLU(negative_slope=1e-07)");
    assert_describes(&nn_leaky_relu_kind, with_arg(&nn_leaky_relu_kind, args, "negative_slope", 0.2, false),
                     "LeakyReLU(negative_slope=0.2)");
    assert_describes(&nn_leaky_relu_kind, with_arg(&nn_leaky_relu_kind, args, "negative_slope", 1, true),
                     "LeakyReLU(negative_slope=1)");
    assert_describes(&nn_softmax_kind, NULL, "Softmax(dim=None)");
    assert_describes(&nn_softmax_kind, with_arg(&nn_softmax_kind, args, "dim", -1, true), "Softmax(dim=-1)");
    assert_describes(&nn_log_softmax_kind, NULL, "LogSoftmax(dim=None)");
    assert_describes(&nn_log_softmax_kind, with_arg(&nn_log_softmax_kind, args, "dim", -1, true),
                     "LogSoftmax(dim=-1)");
    assert_describes(&nn_flatten_kind, NULL, "Flatten(start_dim=1, end_dim=-1)");
    assert_describes(&nn_flatten_kind, with_arg(&nn_flatten_kind, args, "end_dim", 1, true),
                     "Flatten(start_dim=1, end_dim=1)");
    assert_describes(&nn_dropout_kind, NULL, "Dropout(p=0.5, inplace=False)");
    assert_describes(&nn_dropout_kind, with_arg(&nn_dropout_kind, args, "p", 0.2, false),
                     "Dropout(p=0.2, inplace=False)");
    assert_describes(&nn_dropout_kind, with_arg(&nn_dropout_kind, args, "p", 1, true),
                     "Dropout(p=1, inplace=False)");
    assert_describes(&nn_dropout_kind, with_arg(&nn_dropout_kind, args, "p", 1, false),
                     "Dropout(p=1.0, inplace=False)");
    assert_describes(&nn_dropout_kind, with_arg(&nn_dropout_kind, args, "p", 0, true),
                     "Dropout(p=0, inplace=False)");
}
END_TEST

START_TEST(describe_on_image_shapes) {
    nn_arg_value args[NN_MAX_ARGS];
    nn_layer *layer = make_layer(&nn_flatten_kind, with_arg(&nn_flatten_kind, args, "start_dim", -3, true),
                                 image234);
    char text[128];
    nn_flatten_kind.describe(layer, text, sizeof text);
    ck_assert_str_eq(text, "Flatten(start_dim=-3, end_dim=-1)");
    nn_flatten_kind.destroy(layer);
}
END_TEST

START_TEST(kind_names_are_torch_class_names) {
    ck_assert_str_eq(nn_relu_kind.name, "ReLU");
    ck_assert_str_eq(nn_sigmoid_kind.name, "Sigmoid");
    ck_assert_str_eq(nn_tanh_kind.name, "Tanh");
    ck_assert_str_eq(nn_leaky_relu_kind.name, "LeakyReLU");
    ck_assert_str_eq(nn_gelu_kind.name, "GELU");
    ck_assert_str_eq(nn_softmax_kind.name, "Softmax");
    ck_assert_str_eq(nn_log_softmax_kind.name, "LogSoftmax");
    ck_assert_str_eq(nn_flatten_kind.name, "Flatten");
    ck_assert_str_eq(nn_dropout_kind.name, "Dropout");
}
END_TEST

/* The kinds torch.nn users paste (issue 15): Identity, ELU, SELU, CELU,
 * SiLU, Mish, Softplus, Softsign, Hardtanh, ReLU6, Hardsigmoid, Hardswish,
 * Threshold, GELU(approximate='tanh'), PReLU, and inplace everywhere. */

/* One argument as the config parser hands it over: an integral value as if
 * written as an integer (torch prints 2, not 2.0) unless as_float; a
 * CHOICE's value is the index of its string. */
typedef struct arg_setting {
    const char *name;
    double value;
    bool as_float;
} arg_setting;

enum { MAX_SETTINGS = 3 };

static nn_arg_value *with_settings(const nn_layer_kind *kind, nn_arg_value *args, const arg_setting *settings) {
    gradcheck_args_default(kind, args);
    for (int s = 0; s < MAX_SETTINGS && settings[s].name; s++) {
        int i = nn_arg_find(kind->args, kind->arg_count, settings[s].name);
        ck_assert_msg(i >= 0, "%s has no argument %s", kind->name, settings[s].name);
        args[i].given = true;
        args[i].value[0] = settings[s].value;
        args[i].is_integer = !settings[s].as_float && settings[s].value == floor(settings[s].value);
        args[i].choice = kind->args[i].type == NN_ARG_CHOICE ? (int)settings[s].value + 1 : 0;
    }
    return args;
}

enum { TORCH_POINTS = 15 };
static const float torch_points[TORCH_POINTS] = {-1000, -6, -3, -2.5f, -1, -0.5f, 0, 0.3f,
                                                  1,     2.9f, 3, 6,     7,  30,    1000};

typedef struct point_case {
    const nn_layer_kind *kind;
    const char *repr; /* torch's print of the module */
    arg_setting settings[MAX_SETTINGS];
    float out[TORCH_POINTS], din[TORCH_POINTS];
} point_case;

/* Generated with torch 1.13 on CPU (its vectorised kernels): out and d(sum out)/dx at the points. */
static const point_case point_cases[] = {
    {&nn_identity_kind, "Identity()", {{NULL, 0, 0}},
     {-1000, -6, -3, -2.5, -1, -0.5, 0, 0.300000012, 1, 2.9000001, 3, 6, 7, 30, 1000},
     {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    {&nn_elu_kind, "ELU(alpha=1.0)", {{NULL, 0, 0}},
     {-1, -0.997521222, -0.950212955, -0.917914987, -0.63212055, -0.393469334, 0, 0.300000012, 1, 2.9000001,
      3, 6, 7, 30, 1000},
     {0, 0.00247875229, 0.0497870669, 0.0820849985, 0.36787945, 0.606530666, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    {&nn_elu_kind, "ELU(alpha=0.7)", {{"alpha", 0.7, 0}},
     {-0.699999988, -0.698264837, -0.665149033, -0.642540455, -0.442484379, -0.275428534, 0, 0.300000012, 1,
      2.9000001, 3, 6, 7, 30, 1000},
     {0, 0.0017351266, 0.0348509476, 0.0574594997, 0.257515609, 0.424571455, 0.699999988, 1, 1, 1, 1, 1, 1, 1,
      1}},
    {&nn_elu_kind, "ELU(alpha=-2)", {{"alpha", -2, 0}},
     {2, 1.99504244, 1.90042591, 1.83582997, 1.2642411, 0.786938667, -0, 0.300000012, 1, 2.9000001, 3, 6, 7,
      30, 1000},
     {-0, -0.00495750457, -0.0995741338, -0.164169997, -0.735758901, -1.21306133, -2, 1, 1, 1, 1, 1, 1, 1, 1}},
    {&nn_celu_kind, "CELU(alpha=0.5)", {{"alpha", 0.5, 0}},
     {-0.5, -0.49999693, -0.498760611, -0.496631026, -0.432332367, -0.316060275, 0, 0.300000012, 1, 2.9000001,
      3, 6, 7, 30, 1000},
     {0, 6.14421242e-06, 0.00247875229, 0.006737947, 0.135335281, 0.36787945, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    {&nn_celu_kind, "CELU(alpha=3)", {{"alpha", 3, 0}},
     {-3, -2.59399414, -1.89636159, -1.69620538, -0.85040617, -0.460554779, 0, 0.300000012, 1, 2.9000001, 3,
      6, 7, 30, 1000},
     {0, 0.135335281, 0.36787945, 0.434598207, 0.716531277, 0.84648174, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    {&nn_selu_kind, "SELU()", {{NULL, 0, 0}},
     {-1.75809932, -1.75374138, -1.6705687, -1.61378574, -1.11133075, -0.691758156, 0, 0.315210313,
      1.05070102, 3.04703307, 3.15210295, 6.30420589, 7.35490704, 31.5210304, 1050.70105},
     {0, 0.00435789255, 0.0875306055, 0.144313574, 0.64676863, 1.06634116, 1.75809932, 1.05070102, 1.05070102,
      1.05070102, 1.05070102, 1.05070102, 1.05070102, 1.05070102, 1.05070102}},
    {&nn_silu_kind, "SiLU()", {{NULL, 0, 0}},
     {-0, -0.0148357386, -0.142277613, -0.189645454, -0.268941432, -0.188770339, 0, 0.172332764, 0.731058598,
      2.74875474, 2.85772252, 5.98516464, 6.99362278, 30, 1000},
     {-0, -0.0123264315, -0.0881041065, -0.0994011089, 0.0723294839, 0.260038823, 0.5, 0.647780061,
      0.927670538, 1.09120369, 1.08810413, 1.01232624, 1.00546014, 1, 1}},
    {&nn_mish_kind, "Mish()", {{NULL, 0, 0}},
     {-0, -0.014854081, -0.145647466, -0.196816206, -0.30340147, -0.220743775, 0, 0.20800139, 0.865098357,
      2.88426685, 2.98653507, 5.99992657, 6.99998856, 30, 1000},
     {0, -0.0123599665, -0.0933931246, -0.109743558, 0.0592167601, 0.289510667, 0.600000024, 0.782827318,
      1.04903626, 1.02431905, 1.02110696, 1.00013399, 1.0000217, 1, 1}},
    {&nn_softplus_kind, "Softplus(beta=1, threshold=20)", {{NULL, 0, 0}},
     {0, 0.00247568521, 0.048587352, 0.078889735, 0.313261688, 0.474076986, 0.693147182, 0.854355216,
      1.31326163, 2.95356274, 3.04858732, 6.00247574, 7.00091171, 30, 1000},
     {0, 0.00247262325, 0.0474258736, 0.0758581758, 0.268941432, 0.377540678, 0.5, 0.574442506, 0.731058598,
      0.947846413, 0.952574134, 0.997527361, 0.999088943, 1, 1}},
    {&nn_softplus_kind, "Softplus(beta=2, threshold=3)", {{"beta", 2, 0}, {"threshold", 3, 0}},
     {0, 3.07209666e-06, 0.0012378426, 0.00335767423, 0.0634640083, 0.156630844, 0.346573591, 0.518743992,
      1.06346405, 2.9000001, 3, 6, 7, 30, 1000},
     {0, 6.14417422e-06, 0.00247262325, 0.00669285096, 0.119202919, 0.268941432, 0.5, 0.645656347,
      0.880797088, 1, 1, 1, 1, 1, 1}},
    {&nn_softplus_kind, "Softplus(beta=-0.5, threshold=20)", {{"beta", -0.5, 0}},
     {-1000, -6.09717464, -3.40282655, -3.00385833, -1.94815397, -1.65187883, -1.38629436, -1.24191415,
      -0.948153973, -0.421445906, -0.402826577, -0.0971747041, -0.0595008358, -6.11804523e-07, -0},
     {1, 0.952574134, 0.817574501, 0.777299881, 0.622459352, 0.562176526, 0.5, 0.462570161, 0.377540678,
      0.190001562, 0.182425514, 0.0474258736, 0.0293122306, 3.05902205e-07, 0}},
    {&nn_softsign_kind, "Softsign()", {{NULL, 0, 0}},
     {-0.999001026, -0.857142866, -0.75, -0.714285731, -0.5, -0.333333343, 0, 0.230769247, 0.5, 0.743589759,
      0.75, 0.857142866, 0.875, 0.967741907, 0.999001026},
     {9.97912139e-07, 0.0204081684, 0.0625, 0.0816326588, 0.25, 0.444444478, 1, 0.591715991, 0.25,
      0.0657462031, 0.0625, 0.0204081684, 0.015625, 0.00104058348, 9.97912139e-07}},
    {&nn_hardtanh_kind, "Hardtanh(min_val=-1.0, max_val=1.0)", {{NULL, 0, 0}},
     {-1, -1, -1, -1, -1, -0.5, 0, 0.300000012, 1, 1, 1, 1, 1, 1, 1},
     {0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0}},
    {&nn_hardtanh_kind, "Hardtanh(min_val=-2.5, max_val=3)", {{"min_val", -2.5, 0}, {"max_val", 3, 0}},
     {-2.5, -2.5, -2.5, -2.5, -1, -0.5, 0, 0.300000012, 1, 2.9000001, 3, 3, 3, 3, 3},
     {0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0}},
    {&nn_relu6_kind, "ReLU6()", {{NULL, 0, 0}},
     {0, 0, 0, 0, 0, 0, 0, 0.300000012, 1, 2.9000001, 3, 6, 6, 6, 6},
     {0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0}},
    {&nn_hardsigmoid_kind, "Hardsigmoid()", {{NULL, 0, 0}},
     {0, 0, 0, 0.0833333358, 0.333333343, 0.416666657, 0.5, 0.550000012, 0.666666687, 0.983333349, 1, 1, 1, 1,
      1},
     {0, 0, 0, 0.166666672, 0.166666672, 0.166666672, 0.166666672, 0.166666672, 0.166666672, 0.166666672, 0,
      0, 0, 0, 0}},
    {&nn_hardswish_kind, "Hardswish()", {{NULL, 0, 0}},
     {-0, -0, -0, -0.208333328, -0.333333343, -0.208333328, 0, 0.165000007, 0.666666687, 2.85166669, 3, 6, 7,
      30, 1000},
     {0, 0, -0.5, -0.333333313, 0.166666657, 0.333333313, 0.5, 0.600000024, 0.833333373, 1.4666667, 1, 1, 1,
      1, 1}},
    {&nn_threshold_kind, "Threshold(threshold=1, value=-2)", {{"threshold", 1, 0}, {"value", -2, 0}},
     {-2, -2, -2, -2, -2, -2, -2, -2, -2, 2.9000001, 3, 6, 7, 30, 1000},
     {0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1}},
    {&nn_threshold_kind, "Threshold(threshold=-2.5, value=7)", {{"threshold", -2.5, 0}, {"value", 7, 0}},
     {7, 7, 7, 7, -1, -0.5, 0, 0.300000012, 1, 2.9000001, 3, 6, 7, 30, 1000},
     {0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    {&nn_gelu_kind, "GELU(approximate='none')", {{NULL, 0, 0}},
     {0, 0, -0.00404986739, -0.0155241787, -0.158655286, -0.154268786, 0, 0.185373425, 0.841344714,
      2.89458895, 2.99595022, 6, 7, 30, 1000},
     {0, -2.98023224e-08, -0.0119456053, -0.0376110673, -0.0833154321, 0.13250491, 0.5, 0.732327759,
      1.08331537, 1.01539648, 1.01194561, 1, 1, 1, 1}},
    {&nn_gelu_kind, "GELU(approximate='tanh')", {{"approximate", 1, 0}},
     {-0, -0, -0.00363743305, -0.0150842965, -0.158807993, -0.154285997, 0, 0.185370937, 0.841192007,
      2.89503336, 2.99636269, 6, 7, 30, 1000},
     {0, 0, -0.0115842968, -0.037951652, -0.0829640925, 0.13263011, 0.5, 0.732295513, 1.08296406, 1.01512551,
      1.01158428, 1, 1, 1, 1}},
    {&nn_relu_kind, "ReLU()", {{NULL, 0, 0}},
     {0, 0, 0, 0, 0, 0, 0, 0.300000012, 1, 2.9000001, 3, 6, 7, 30, 1000},
     {0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1}},
    {&nn_leaky_relu_kind, "LeakyReLU(negative_slope=0.3)", {{"negative_slope", 0.3, 0}},
     {-300, -1.80000007, -0.900000036, -0.75, -0.300000012, -0.150000006, 0, 0.300000012, 1, 2.9000001, 3, 6,
      7, 30, 1000},
     {0.300000012, 0.300000012, 0.300000012, 0.300000012, 0.300000012, 0.300000012, 0.300000012, 1, 1, 1, 1,
      1, 1, 1, 1}},
};

/* Forward and backward at torch_points, kinks and saturations included
 * (0, the clamp bounds, Hardswish's +-3, Threshold's threshold, +-1000),
 * against torch's forward and autograd; backward scales by dout. */
START_TEST(activations_match_torch_at_points) {
    const point_case *c = &point_cases[_i];
    nn_arg_value args[NN_MAX_ARGS];
    nn_layer *layer =
        make_layer(c->kind, with_settings(c->kind, args, c->settings), (nn_shape){1, {TORCH_POINTS, 0, 0}});
    float out[TORCH_POINTS], din[TORCH_POINTS], dout[TORCH_POINTS], in[TORCH_POINTS];
    memcpy(in, torch_points, sizeof in);
    for (int i = 0; i < TORCH_POINTS; i++) dout[i] = 0.5f + 0.25f * (float)i;
    c->kind->forward(layer, NULL, out, in, 1, &training_mode);
    memset(din, 0xff, sizeof din);
    c->kind->backward(layer, NULL, din, dout, in, out, 1, NULL, &training_mode);
    ck_assert_mem_eq(in, torch_points, sizeof in);
    for (int i = 0; i < TORCH_POINTS; i++) {
        char what[160];
        snprintf(what, sizeof what, "%s at %g: out", c->repr, torch_points[i]);
        assert_close(out[i], c->out[i], 1e-6, what, i);
        snprintf(what, sizeof what, "%s at %g: din", c->repr, torch_points[i]);
        assert_close(din[i], (double)c->din[i] * dout[i], 1e-6, what, i);
    }
    char text[128];
    c->kind->describe(layer, text, sizeof text);
    ck_assert_str_eq(text, c->repr);
    c->kind->destroy(layer);
}
END_TEST

typedef struct kind_case {
    const nn_layer_kind *kind;
    arg_setting settings[MAX_SETTINGS];
} kind_case;

/* Every argument path; kinks at 0 only (the inputs keep 0.1 away from it),
 * or outside the inputs' [-1.1, 1.1]. Softplus with threshold 0 switches
 * to x at 0, so both of its branches are checked. */
static const kind_case gradient_cases[] = {
    {&nn_identity_kind, {{NULL, 0, 0}}},
    {&nn_elu_kind, {{NULL, 0, 0}}},
    {&nn_elu_kind, {{"alpha", 0.7, 0}, {"inplace", 1, 0}}},
    {&nn_elu_kind, {{"alpha", -1.5, 0}}},
    {&nn_selu_kind, {{NULL, 0, 0}}},
    {&nn_celu_kind, {{NULL, 0, 0}}},
    {&nn_celu_kind, {{"alpha", 0.4, 0}}},
    {&nn_celu_kind, {{"alpha", -2, 0}}},
    {&nn_silu_kind, {{NULL, 0, 0}}},
    {&nn_mish_kind, {{NULL, 0, 0}}},
    {&nn_softplus_kind, {{NULL, 0, 0}}},
    {&nn_softplus_kind, {{"beta", 2, 0}, {"threshold", 0, 0}}},
    {&nn_softplus_kind, {{"beta", -1.5, 0}}},
    {&nn_softsign_kind, {{NULL, 0, 0}}},
    {&nn_hardtanh_kind, {{"min_val", 0, 0}, {"max_val", 5, 0}}},
    {&nn_hardtanh_kind, {{"min_val", -5, 0}, {"max_val", 0, 0}}},
    {&nn_hardtanh_kind, {{"min_val", -3, 0}, {"max_val", 3, 0}}},
    {&nn_hardtanh_kind, {{"min_value", 0, 0}, {"max_value", 4, 0}}},
    {&nn_relu6_kind, {{NULL, 0, 0}}},
    {&nn_hardsigmoid_kind, {{NULL, 0, 0}}},
    {&nn_hardswish_kind, {{NULL, 0, 0}}},
    {&nn_threshold_kind, {{"threshold", 0, 0}, {"value", 0.3, 0}}},
    {&nn_threshold_kind, {{"threshold", 0, 0}, {"value", -2, 0}}},
    {&nn_gelu_kind, {{"approximate", 1, 0}}},
    {&nn_relu_kind, {{"inplace", 1, 0}}},
    {&nn_leaky_relu_kind, {{"negative_slope", 0.2, 0}, {"inplace", 1, 0}}},
    {&nn_prelu_kind, {{NULL, 0, 0}}},
    {&nn_prelu_kind, {{"init", -0.6, 0}}},
};

START_TEST(new_activation_gradients) {
    const kind_case *c = &gradient_cases[_i];
    nn_arg_value args[NN_MAX_ARGS];
    with_settings(c->kind, args, c->settings);
    check_gradients(c->kind, args, flat7, (gradcheck_options){.batch = 3, .seed = 70 + _i, .input_gap = 0.1});
    check_gradients(c->kind, args, image234, (gradcheck_options){.batch = 2, .seed = 170 + _i, .input_gap = 0.1});
    check_gradients(c->kind, args, (nn_shape){2, {3, 5, 0}},
                    (gradcheck_options){.batch = 2, .seed = 270 + _i, .input_gap = 0.1});
}
END_TEST

/* One weight per channel, the sample's first dim, on every rank. */
START_TEST(prelu_gradients_per_channel) {
    const nn_shape shapes[] = {flat7, image234, {2, {3, 5, 0}}, {3, {5, 1, 3}}};
    for (int s = 0; s < 4; s++) {
        nn_arg_value args[NN_MAX_ARGS];
        arg_setting settings[MAX_SETTINGS] = {{"num_parameters", shapes[s].dims[0], 0}};
        with_settings(&nn_prelu_kind, args, settings);
        check_gradients(&nn_prelu_kind, args, shapes[s],
                        (gradcheck_options){.batch = 3, .seed = 400 + s, .input_gap = 0.1});
    }
}
END_TEST

/* The kinds as a model would build them, one layer each, for the split and
 * inplace tests: PReLU with a weight per channel of image234. */
static const kind_case split_cases[] = {
    {&nn_identity_kind, {{NULL, 0, 0}}},
    {&nn_elu_kind, {{"alpha", 0.7, 0}}},
    {&nn_selu_kind, {{NULL, 0, 0}}},
    {&nn_celu_kind, {{"alpha", 0.4, 0}}},
    {&nn_silu_kind, {{NULL, 0, 0}}},
    {&nn_mish_kind, {{NULL, 0, 0}}},
    {&nn_softplus_kind, {{"beta", 2, 0}, {"threshold", 1, 0}}},
    {&nn_softsign_kind, {{NULL, 0, 0}}},
    {&nn_hardtanh_kind, {{"min_val", -0.5, 0}, {"max_val", 0.25, 0}}},
    {&nn_relu6_kind, {{NULL, 0, 0}}},
    {&nn_hardsigmoid_kind, {{NULL, 0, 0}}},
    {&nn_hardswish_kind, {{NULL, 0, 0}}},
    {&nn_threshold_kind, {{"threshold", 0.1, 0}, {"value", 5, 0}}},
    {&nn_gelu_kind, {{"approximate", 1, 0}}},
    {&nn_gelu_kind, {{NULL, 0, 0}}},
    {&nn_prelu_kind, {{NULL, 0, 0}}},
    {&nn_prelu_kind, {{"num_parameters", 2, 0}, {"init", 0.1, 0}}},
};

/* A layer with its parameters bound to params (at most 8) and initialised. */
static nn_layer *make_bound_layer(const kind_case *c, float *params) {
    nn_arg_value args[NN_MAX_ARGS];
    nn_layer *layer = make_layer(c->kind, with_settings(c->kind, args, c->settings), image234);
    ck_assert_uint_le(nn_layer_param_count(layer), 8);
    nn_layer_bind(layer, params);
    nn_rng rng;
    nn_rng_seed(&rng, 1);
    if (c->kind->init) c->kind->init(layer, &rng);
    return layer;
}

/* Replicas: a batch of 6 in one call, or in slices (2 + 4, 5 + 1), gives
 * the same outputs and input gradients bit for bit; PReLU's weight
 * gradients of the slices add up to the whole batch's. */
START_TEST(new_activations_do_not_depend_on_the_split) {
    const kind_case *c = &split_cases[_i];
    enum { BATCH = 6, FEATURES = 24, COUNT = BATCH * FEATURES };
    float params[8] = {0}, in[COUNT], dout[COUNT], out[COUNT], din[COUNT], parts[COUNT], parts_din[COUNT];
    float grad[8], part_grad[8], sum_grad[8];
    nn_layer *layer = make_bound_layer(c, params);
    size_t param_count = nn_layer_param_count(layer);
    nn_rng rng;
    nn_rng_seed(&rng, 90 + _i);
    for (int i = 0; i < COUNT; i++) {
        in[i] = nn_rng_uniform_range(&rng, -4, 4);
        dout[i] = nn_rng_uniform_range(&rng, -1, 1);
    }
    c->kind->forward(layer, NULL, out, in, BATCH, &training_mode);
    c->kind->backward(layer, NULL, din, dout, in, out, BATCH, grad, &training_mode);
    const int splits[2][2] = {{2, 4}, {5, 1}};
    for (int s = 0; s < 2; s++) {
        memset(parts, 0xff, sizeof parts);
        memset(parts_din, 0xff, sizeof parts_din);
        memset(sum_grad, 0, sizeof sum_grad);
        for (int r = 0, start = 0; r < 2; start += splits[s][r], r++) {
            size_t at = (size_t)start * FEATURES;
            c->kind->forward(layer, NULL, parts + at, in + at, splits[s][r], &training_mode);
            memset(part_grad, 0xff, sizeof part_grad);
            c->kind->backward(layer, NULL, parts_din + at, dout + at, in + at, parts + at, splits[s][r], part_grad,
                              &training_mode);
            for (size_t p = 0; p < param_count; p++) sum_grad[p] += part_grad[p];
        }
        ck_assert_msg(memcmp(parts, out, sizeof out) == 0, "%s split %d: outputs differ", c->kind->name, s);
        ck_assert_msg(memcmp(parts_din, din, sizeof din) == 0, "%s split %d: gradients differ", c->kind->name, s);
        for (size_t p = 0; p < param_count; p++)
            assert_close(sum_grad[p], grad[p], 1e-5, "weight gradient", (int)p);
    }
    c->kind->destroy(layer);
}
END_TEST

/* inplace=True is accepted and changes nothing but the repr: the same
 * outputs and gradients bit for bit, and the input is left as it was. */
START_TEST(inplace_computes_out_of_place) {
    const nn_layer_kind *const kinds[] = {
        &nn_relu_kind,     &nn_leaky_relu_kind, &nn_elu_kind,         &nn_selu_kind,
        &nn_celu_kind,     &nn_silu_kind,       &nn_mish_kind,        &nn_hardtanh_kind,
        &nn_relu6_kind,    &nn_hardsigmoid_kind, &nn_hardswish_kind,  &nn_threshold_kind,
    };
    enum { COUNT = 2 * 24 };
    float in[COUNT], copy[COUNT], dout[COUNT], out[2][COUNT], din[2][COUNT];
    for (int i = 0; i < COUNT; i++) {
        in[i] = (float)(i - 24) / 4;
        dout[i] = (float)(i % 5) - 2;
    }
    memcpy(copy, in, sizeof in);
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        for (int inplace = 0; inplace < 2; inplace++) {
            arg_setting settings[MAX_SETTINGS] = {{"inplace", inplace, 0}, {"threshold", 0.5, 0}, {"value", 3, 0}};
            if (kinds[k] != &nn_threshold_kind) settings[1].name = NULL;
            nn_arg_value args[NN_MAX_ARGS];
            nn_layer *layer = make_layer(kinds[k], with_settings(kinds[k], args, settings), image234);
            kinds[k]->forward(layer, NULL, out[inplace], in, 2, &training_mode);
            kinds[k]->backward(layer, NULL, din[inplace], dout, in, out[inplace], 2, NULL, &training_mode);
            ck_assert_msg(memcmp(in, copy, sizeof in) == 0, "%s inplace=%d wrote its input", kinds[k]->name,
                          inplace);
            kinds[k]->destroy(layer);
        }
        ck_assert_msg(memcmp(out[0], out[1], sizeof out[0]) == 0, "%s: inplace changes the output",
                      kinds[k]->name);
        ck_assert_msg(memcmp(din[0], din[1], sizeof din[0]) == 0, "%s: inplace changes the gradient",
                      kinds[k]->name);
    }
}
END_TEST

/* PReLU: one trainable "weight" of num_parameters values, all init (no
 * random draw); backward overwrites the weight gradient, also without din. */
START_TEST(prelu_state_and_init) {
    nn_arg_value args[NN_MAX_ARGS];
    const arg_setting settings[MAX_SETTINGS] = {{"num_parameters", 2, 0}, {"init", -0.75, 0}};
    nn_layer *layer = make_layer(&nn_prelu_kind, with_settings(&nn_prelu_kind, args, settings), image234);
    ck_assert_int_eq(layer->state_count, 1);
    ck_assert_str_eq(layer->state[0].array.name, "weight");
    ck_assert(layer->state[0].trainable);
    ck_assert_int_eq(layer->state[0].array.rank, 1);
    ck_assert_int_eq(layer->state[0].array.dims[0], 2);
    ck_assert_uint_eq(nn_layer_param_count(layer), 2);
    ck_assert(nn_shape_equal(layer->out_shape, image234));
    float params[2] = {9, 9}, grad[2] = {NAN, NAN};
    nn_layer_bind(layer, params);
    nn_prelu_kind.init(layer, NULL);
    ck_assert(params[0] == -0.75f && params[1] == -0.75f);
    params[1] = 0.5f;
    /* Sample 0: channel 0 all -1, channel 1 all -2; dout 1: dweight = sums of x. */
    float in[24], out[24], dout[24];
    for (int i = 0; i < 24; i++) {
        in[i] = i < 12 ? -1.0f : i < 18 ? -2.0f : 3.0f;
        dout[i] = 1;
    }
    nn_prelu_kind.forward(layer, NULL, out, in, 1, &training_mode);
    ck_assert(out[0] == 0.75f && out[12] == -1.0f && out[23] == 3.0f);
    nn_prelu_kind.backward(layer, NULL, NULL, dout, in, out, 1, grad, &training_mode);
    ck_assert_msg(grad[0] == -12 && grad[1] == -12, "dweight = %g, %g", grad[0], grad[1]);
    nn_prelu_kind.destroy(layer);
}
END_TEST

static void assert_refused(const nn_layer_kind *kind, const arg_setting *settings, nn_shape shape,
                           const char *const *parts) {
    nn_arg_value args[NN_MAX_ARGS];
    nn_error err = {0};
    ck_assert_ptr_null(kind->create(with_settings(kind, args, settings), shape, &err));
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    for (int i = 0; parts[i]; i++)
        ck_assert_msg(strstr(err.message, parts[i]), "%s: no '%s' in: %s", kind->name, parts[i], err.message);
}

START_TEST(new_activations_reject_bad_arguments) {
    struct {
        const nn_layer_kind *kind;
        arg_setting settings[MAX_SETTINGS];
        nn_shape shape;
        const char *parts[4];
    } cases[] = {
        {&nn_prelu_kind, {{"num_parameters", 0, 0}}, flat7,
         {"PReLU", "num_parameters", "at least 1, got 0", NULL}},
        {&nn_prelu_kind, {{"num_parameters", -3, 0}}, flat7, {"num_parameters", "got -3", NULL}},
        {&nn_prelu_kind, {{"num_parameters", 3, 0}}, flat7, {"num_parameters 3", "(7,)", "7 channels", NULL}},
        {&nn_prelu_kind, {{"num_parameters", 3, 0}}, image234,
         {"num_parameters 3", "(2, 3, 4)", "2 channels", NULL}},
        {&nn_prelu_kind, {{"num_parameters", 4, 0}}, image234, {"num_parameters 4", "2 channels", NULL}},
        {&nn_softplus_kind, {{"beta", 0, 0}}, flat7, {"Softplus", "beta", "got 0", NULL}},
        {&nn_celu_kind, {{"alpha", 0, 0}}, flat7, {"CELU", "alpha", "got 0", NULL}},
        {&nn_hardtanh_kind, {{"min_val", 1, 0}, {"max_val", 1, 0}}, flat7,
         {"Hardtanh", "min_val=1, max_val=1", NULL}},
        {&nn_hardtanh_kind, {{"min_val", 0.5, 0}, {"max_val", -1, 1}}, flat7,
         {"greater", "min_val=0.5, max_val=-1.0", NULL}},
        {&nn_hardtanh_kind, {{"min_value", 2, 0}}, flat7, {"min_val=2, max_val=1.0", NULL}},
        {&nn_hardtanh_kind, {{"max_value", -2, 0}}, flat7, {"min_val=-1.0, max_val=-2", NULL}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        assert_refused(cases[c].kind, cases[c].settings, cases[c].shape, cases[c].parts);
}
END_TEST

/* What the config parser refuses before any layer is built. */
START_TEST(new_activations_reject_bad_configs) {
    struct { const char *layer; const char *message; } cases[] = {
        {"Threshold: {threshold: 0.5}", "missing argument 'value' for Threshold"},
        {"Threshold: {value: 0.5}", "missing argument 'threshold' for Threshold"},
        {"Sigmoid: {inplace: true}", "unknown argument 'inplace'"},
        {"Softsign: {inplace: true}", "unknown argument 'inplace'"},
        {"GELU: {inplace: true}", "unknown argument 'inplace'"},
        {"Softplus: {inplace: true}", "unknown argument 'inplace'"},
        {"SELU: {alpha: 2}", "unknown argument 'alpha'"},
        {"Identity: {in_features: 3}", "unknown argument 'in_features'"},
        {"GELU: {approximate: erf}", "'none', 'tanh'"},
        {"ReLU: {inplace: 1}", "expected true or false for inplace"},
        {"PReLU: {num_parameters: 1.5}", "num_parameters"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char text[160];
        snprintf(text, sizeof text, "model:\n  layers: [%s]\n", cases[c].layer);
        nn_config cfg;
        nn_error err = {0};
        ck_assert_msg(nn_config_parse(&cfg, text, strlen(text), "act.yaml", ".", &err) == -1, "%s accepted",
                      cases[c].layer);
        ck_assert_int_eq(err.status, NN_ERR_INPUT);
        ck_assert_msg(strstr(err.message, "act.yaml:2:") && strstr(err.message, cases[c].message), "%s: %s",
                      cases[c].layer, err.message);
    }
    const char good[] =
        "model:\n  layers: [Identity, ELU: {alpha: 2, inplace: true}, SELU: {inplace: false}, CELU,\n"
        "    SiLU, Mish, Softplus: {beta: 2, threshold: 10}, Softsign, Hardtanh: {min_val: 0, max_val: 6},\n"
        "    ReLU6, Hardsigmoid: {inplace: true}, Hardswish, Threshold: {threshold: 0.1, value: 20},\n"
        "    PReLU: {num_parameters: 1, init: 0.1}, GELU: {approximate: tanh}, Hardtanh: {min_value: -3}]\n";
    nn_config cfg;
    nn_error err = {0};
    ck_assert_msg(nn_config_parse(&cfg, good, strlen(good), "act.yaml", ".", &err) == 0, "%s", err.message);
    nn_config_free(&cfg);
}
END_TEST

/* describe: strings checked against torch 1.13's print(nn.X(...)). */
START_TEST(new_activations_describe_as_torch) {
    struct { const nn_layer_kind *kind; arg_setting settings[MAX_SETTINGS]; const char *repr; } cases[] = {
        {&nn_relu_kind, {{"inplace", 1, 0}}, "ReLU(inplace=True)"},
        {&nn_relu_kind, {{"inplace", 0, 0}}, "ReLU()"},
        {&nn_leaky_relu_kind, {{"negative_slope", 0.2, 0}, {"inplace", 1, 0}},
         "LeakyReLU(negative_slope=0.2, inplace=True)"},
        {&nn_elu_kind, {{NULL, 0, 0}}, "ELU(alpha=1.0)"},
        {&nn_elu_kind, {{"alpha", 2, 0}}, "ELU(alpha=2)"},
        {&nn_elu_kind, {{"alpha", 2.5, 0}, {"inplace", 1, 0}}, "ELU(alpha=2.5, inplace=True)"},
        {&nn_celu_kind, {{NULL, 0, 0}}, "CELU(alpha=1.0)"},
        {&nn_celu_kind, {{"alpha", 0.5, 0}, {"inplace", 1, 0}}, "CELU(alpha=0.5, inplace=True)"},
        {&nn_selu_kind, {{NULL, 0, 0}}, "SELU()"},
        {&nn_selu_kind, {{"inplace", 1, 0}}, "SELU(inplace=True)"},
        {&nn_silu_kind, {{"inplace", 1, 0}}, "SiLU(inplace=True)"},
        {&nn_mish_kind, {{"inplace", 1, 0}}, "Mish(inplace=True)"},
        {&nn_mish_kind, {{NULL, 0, 0}}, "Mish()"},
        {&nn_relu6_kind, {{NULL, 0, 0}}, "ReLU6()"},
        {&nn_relu6_kind, {{"inplace", 1, 0}}, "ReLU6(inplace=True)"},
        {&nn_hardsigmoid_kind, {{"inplace", 1, 0}}, "Hardsigmoid()"},
        {&nn_hardswish_kind, {{"inplace", 1, 0}}, "Hardswish()"},
        {&nn_softplus_kind, {{NULL, 0, 0}}, "Softplus(beta=1, threshold=20)"},
        {&nn_softplus_kind, {{"beta", 2, 1}, {"threshold", 10.5, 0}}, "Softplus(beta=2.0, threshold=10.5)"},
        {&nn_softplus_kind, {{"beta", 1e-3, 0}}, "Softplus(beta=0.001, threshold=20)"},
        {&nn_softsign_kind, {{NULL, 0, 0}}, "Softsign()"},
        {&nn_hardtanh_kind, {{NULL, 0, 0}}, "Hardtanh(min_val=-1.0, max_val=1.0)"},
        {&nn_hardtanh_kind, {{"min_val", 0, 0}, {"max_val", 6, 0}}, "Hardtanh(min_val=0, max_val=6)"},
        {&nn_hardtanh_kind, {{"min_val", -2, 1}, {"max_val", 3, 0}, {"inplace", 1, 0}},
         "Hardtanh(min_val=-2.0, max_val=3, inplace=True)"},
        {&nn_hardtanh_kind, {{"min_value", -3, 0}, {"max_value", 2, 0}, {"min_val", -7, 0}},
         "Hardtanh(min_val=-3, max_val=2)"},
        {&nn_threshold_kind, {{"threshold", 0.1, 0}, {"value", 20, 0}}, "Threshold(threshold=0.1, value=20)"},
        {&nn_threshold_kind, {{"threshold", 1, 0}, {"value", 2, 1}, {"inplace", 1, 0}},
         "Threshold(threshold=1, value=2.0, inplace=True)"},
        {&nn_prelu_kind, {{NULL, 0, 0}}, "PReLU(num_parameters=1)"},
        {&nn_prelu_kind, {{"num_parameters", 7, 0}, {"init", 0.1, 0}}, "PReLU(num_parameters=7)"},
        {&nn_identity_kind, {{NULL, 0, 0}}, "Identity()"},
        {&nn_gelu_kind, {{"approximate", 1, 0}}, "GELU(approximate='tanh')"},
        {&nn_gelu_kind, {{"approximate", 0, 0}}, "GELU(approximate='none')"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        nn_arg_value args[NN_MAX_ARGS];
        assert_describes(cases[c].kind, with_settings(cases[c].kind, args, cases[c].settings), cases[c].repr);
    }
}
END_TEST

/* Each new kind is in the registry under torch's class name. */
START_TEST(new_kinds_are_registered) {
    const nn_layer_kind *const kinds[] = {
        &nn_identity_kind,  &nn_elu_kind,      &nn_selu_kind,        &nn_celu_kind,      &nn_silu_kind,
        &nn_mish_kind,      &nn_softplus_kind, &nn_softsign_kind,    &nn_hardtanh_kind,  &nn_relu6_kind,
        &nn_hardsigmoid_kind, &nn_hardswish_kind, &nn_threshold_kind, &nn_prelu_kind,
    };
    const char *names[] = {"Identity", "ELU",   "SELU",     "CELU",        "SiLU",      "Mish",      "Softplus",
                           "Softsign", "Hardtanh", "ReLU6", "Hardsigmoid", "Hardswish", "Threshold", "PReLU"};
    for (int k = 0; k < 14; k++) {
        ck_assert_str_eq(kinds[k]->name, names[k]);
        ck_assert_msg(nn_layer_kind_find(names[k]) == kinds[k], "%s is not registered", names[k]);
    }
}
END_TEST

int main(void) {
    Suite *suite = suite_create("activations");
    TCase *gradients = tcase_create("gradients");
    tcase_add_loop_test(gradients, smooth_activation_gradients, 0, 3);
    tcase_add_loop_test(gradients, kinked_activation_gradients, 0, 2);
    tcase_add_test(gradients, leaky_relu_gradients_with_steep_slope);
    tcase_add_test(gradients, softmax_gradients_along_every_axis);
    tcase_add_test(gradients, flatten_gradients);
    tcase_add_test(gradients, dropout_gradients_in_training_and_eval);
    tcase_add_loop_test(gradients, new_activation_gradients, 0, sizeof gradient_cases / sizeof gradient_cases[0]);
    tcase_add_test(gradients, prelu_gradients_per_channel);
    suite_add_tcase(suite, gradients);

    TCase *values = tcase_create("values");
    tcase_add_test(values, elementwise_forward_matches_closed_forms);
    tcase_add_test(values, leaky_relu_uses_its_slope);
    tcase_add_test(values, softmax_matches_naive_reference_on_images);
    tcase_add_test(values, softmax_is_stable_for_large_inputs);
    tcase_add_test(values, log_softmax_is_log_of_softmax);
    tcase_add_test(values, softmax_rejects_bad_dims);
    tcase_add_test(values, flatten_shapes);
    tcase_add_test(values, flatten_copies_values_both_ways);
    tcase_add_test(values, flatten_rejects_bad_ranges);
    tcase_add_test(values, only_dropout_has_a_context);
    tcase_add_test(values, backward_without_din_does_nothing);
    tcase_add_loop_test(values, activations_match_torch_at_points, 0, sizeof point_cases / sizeof point_cases[0]);
    tcase_add_loop_test(values, new_activations_do_not_depend_on_the_split, 0,
                        sizeof split_cases / sizeof split_cases[0]);
    tcase_add_test(values, inplace_computes_out_of_place);
    tcase_add_test(values, prelu_state_and_init);
    tcase_add_test(values, new_activations_reject_bad_arguments);
    tcase_add_test(values, new_activations_reject_bad_configs);
    suite_add_tcase(suite, values);

    TCase *dropout = tcase_create("dropout");
    tcase_add_test(dropout, dropout_eval_is_identity);
    tcase_add_loop_test(dropout, dropout_training_drops_about_p_and_scales_the_rest, 0,
                        sizeof drop_probabilities / sizeof drop_probabilities[0]);
    tcase_add_test(dropout, dropout_mask_follows_the_streams);
    tcase_add_test(dropout, dropout_masks_do_not_depend_on_the_split);
    tcase_add_test(dropout, dropout_mask_depends_on_key_and_layer_index);
    tcase_add_test(dropout, dropout_backward_applies_the_forward_mask);
    tcase_add_test(dropout, dropout_extreme_probabilities);
    tcase_add_test(dropout, dropout_rejects_bad_p);
    tcase_add_test(dropout, dropout_contexts_of_any_size);
    suite_add_tcase(suite, dropout);

    TCase *describe = tcase_create("describe");
    tcase_add_test(describe, describe_matches_pytorch);
    tcase_add_test(describe, describe_on_image_shapes);
    tcase_add_test(describe, kind_names_are_torch_class_names);
    tcase_add_test(describe, new_activations_describe_as_torch);
    tcase_add_test(describe, new_kinds_are_registered);
    suite_add_tcase(suite, describe);
    return testutil_run(suite);
}
