/* The simple layers: ReLU, Sigmoid, Tanh, LeakyReLU, GELU, Softmax,
 * LogSoftmax, Flatten and Dropout. Gradients by finite differences, forward
 * values against closed forms and naive references written here, shapes and
 * errors, PyTorch's repr of each, and Dropout's per-sample masks: drawn by
 * the documented streams, the same whatever the split of a batch across
 * replicas, and applied by backward from the replica's own context. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    &nn_relu_kind,    &nn_sigmoid_kind,     &nn_tanh_kind,    &nn_leaky_relu_kind, &nn_gelu_kind,
    &nn_softmax_kind, &nn_log_softmax_kind, &nn_flatten_kind, &nn_dropout_kind,
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
    assert_describes(&nn_softmax_kind, NULL, "Softmax(dim=1)");
    assert_describes(&nn_softmax_kind, with_arg(&nn_softmax_kind, args, "dim", -1, true), "Softmax(dim=-1)");
    assert_describes(&nn_log_softmax_kind, NULL, "LogSoftmax(dim=1)");
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

int main(void) {
    Suite *suite = suite_create("activations");
    TCase *gradients = tcase_create("gradients");
    tcase_add_loop_test(gradients, smooth_activation_gradients, 0, 3);
    tcase_add_loop_test(gradients, kinked_activation_gradients, 0, 2);
    tcase_add_test(gradients, leaky_relu_gradients_with_steep_slope);
    tcase_add_test(gradients, softmax_gradients_along_every_axis);
    tcase_add_test(gradients, flatten_gradients);
    tcase_add_test(gradients, dropout_gradients_in_training_and_eval);
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
    suite_add_tcase(suite, describe);
    return testutil_run(suite);
}
