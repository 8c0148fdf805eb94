/* The simple layers: ReLU, Sigmoid, Tanh, LeakyReLU, GELU, Softmax,
 * LogSoftmax, Flatten and Dropout. Gradients by finite differences, forward
 * values against closed forms and naive references written here, shapes and
 * errors, and PyTorch's repr of each. */
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
static const nn_mode eval_mode = {false, NULL};

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
    kind->forward(layer, out, in, 1, eval_mode);
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
    nn_leaky_relu_kind.forward(layer, out, points, 1, eval_mode);
    nn_leaky_relu_kind.backward(layer, din, ones, points, out, 1);
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
        nn_softmax_kind.forward(softmax, out, in, BATCH, eval_mode);
        nn_log_softmax_kind.forward(log_softmax, log_out, in, BATCH, eval_mode);
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
    nn_softmax_kind.forward(softmax, out, in, 3, eval_mode);
    nn_log_softmax_kind.forward(log_softmax, log_out, in, 3, eval_mode);
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
    nn_softmax_kind.forward(softmax, out, in, BATCH, eval_mode);
    nn_log_softmax_kind.forward(log_softmax, log_out, in, BATCH, eval_mode);
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
    nn_flatten_kind.forward(layer, out, in, 2, eval_mode);
    ck_assert_mem_eq(out, in, sizeof in);
    nn_flatten_kind.backward(layer, din, in, in, out, 2);
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

static nn_layer *make_dropout(double p, int max_batch, nn_shape shape) {
    nn_arg_value args[NN_MAX_ARGS];
    gradcheck_args_default(&nn_dropout_kind, args);
    gradcheck_args_set(&nn_dropout_kind, args, "p", p, 0);
    nn_layer *layer = make_layer(&nn_dropout_kind, args, shape);
    nn_error err = {0};
    ck_assert_msg(nn_dropout_kind.reserve(layer, max_batch, &err) == 0, "%s", err.message);
    return layer;
}

enum { DROP_BATCH = 1000, DROP_FEATURES = 100, DROP_COUNT = DROP_BATCH * DROP_FEATURES };

static float *filled(float first) {
    float *values = malloc(DROP_COUNT * sizeof *values);
    for (int i = 0; i < DROP_COUNT; i++) values[i] = first + (float)(i % 17) * 0.25f;
    return values;
}

START_TEST(dropout_eval_is_identity) {
    nn_layer *layer = make_dropout(0.5, DROP_BATCH, (nn_shape){1, {DROP_FEATURES, 0, 0}});
    float *in = filled(-2), *out = filled(0), *din = filled(0);
    nn_dropout_kind.forward(layer, out, in, DROP_BATCH, eval_mode);
    ck_assert_mem_eq(out, in, DROP_COUNT * sizeof *in);
    nn_dropout_kind.backward(layer, din, in, in, out, DROP_BATCH);
    ck_assert_mem_eq(din, in, DROP_COUNT * sizeof *in);
    free(in);
    free(out);
    free(din);
    nn_dropout_kind.destroy(layer);
}
END_TEST

/* The kept fraction of n values is binomial: within 5 standard deviations of 1-p. */
START_TEST(dropout_training_keeps_about_one_minus_p_scaled) {
    const double p = 0.3;
    nn_layer *layer = make_dropout(p, DROP_BATCH, (nn_shape){1, {DROP_FEATURES, 0, 0}});
    float *in = filled(1), *out = filled(0), *din = filled(0), *ones = filled(0);
    for (int i = 0; i < DROP_COUNT; i++) ones[i] = 1;
    nn_rng rng;
    nn_rng_seed(&rng, 99);
    nn_dropout_kind.forward(layer, out, in, DROP_BATCH, (nn_mode){true, &rng});
    nn_dropout_kind.backward(layer, din, ones, in, out, DROP_BATCH);
    int kept = 0;
    for (int i = 0; i < DROP_COUNT; i++) {
        if (out[i] == 0) {
            ck_assert_msg(din[i] == 0, "dropped value %d passes gradient %g", i, din[i]);
            continue;
        }
        kept++;
        assert_close(out[i], in[i] / (1 - p), 1e-6, "kept value", i);
        assert_close(din[i], 1 / (1 - p), 1e-6, "kept gradient", i);
    }
    double fraction = (double)kept / DROP_COUNT, sigma = sqrt(p * (1 - p) / DROP_COUNT);
    ck_assert_msg(fabs(fraction - (1 - p)) < 5 * sigma, "kept %.5f, expected %.5f +- %.5f", fraction,
                  1 - p, 5 * sigma);
    free(in);
    free(out);
    free(din);
    free(ones);
    nn_dropout_kind.destroy(layer);
}
END_TEST

/* The documented rule: one draw per value in order, nn_rng_uniform(rng) < p drops. */
START_TEST(dropout_mask_follows_the_rng) {
    const double p = 0.4;
    enum { BATCH = 6, COUNT = BATCH * 24 };
    nn_layer *layer = make_dropout(p, BATCH, image234);
    float in[COUNT], first[COUNT], second[COUNT], third[COUNT];
    for (int i = 0; i < COUNT; i++) in[i] = 1 + (float)i;
    nn_rng start, rng, replay;
    nn_rng_seed(&start, 5);
    rng = start;
    nn_dropout_kind.forward(layer, first, in, BATCH, (nn_mode){true, &rng});
    rng = start;
    nn_dropout_kind.forward(layer, second, in, BATCH, (nn_mode){true, &rng});
    ck_assert_mem_eq(first, second, sizeof first);
    replay = start;
    for (int i = 0; i < COUNT; i++) {
        bool dropped = nn_rng_uniform(&replay) < p;
        ck_assert_msg((first[i] == 0) == dropped, "value %d: dropped %d, rng says %d", i, first[i] == 0,
                      dropped);
    }
    ck_assert_mem_eq(&rng, &replay, sizeof rng);
    /* The generator has moved on, so the next mask differs. */
    nn_dropout_kind.forward(layer, third, in, BATCH, (nn_mode){true, &rng});
    ck_assert_msg(memcmp(first, third, sizeof first) != 0, "two draws gave the same mask");
    nn_dropout_kind.destroy(layer);
}
END_TEST

START_TEST(dropout_extreme_probabilities) {
    enum { BATCH = 4, COUNT = BATCH * 7 };
    float in[COUNT], out[COUNT], din[COUNT];
    for (int i = 0; i < COUNT; i++) in[i] = (float)i - 10.5f;
    nn_rng rng;
    nn_rng_seed(&rng, 3);
    nn_layer *keep_all = make_dropout(0, BATCH, flat7);
    nn_dropout_kind.forward(keep_all, out, in, BATCH, (nn_mode){true, &rng});
    ck_assert_mem_eq(out, in, sizeof in);
    nn_dropout_kind.backward(keep_all, din, in, in, out, BATCH);
    ck_assert_mem_eq(din, in, sizeof in);
    nn_dropout_kind.destroy(keep_all);
    nn_layer *drop_all = make_dropout(1, BATCH, flat7);
    nn_dropout_kind.forward(drop_all, out, in, BATCH, (nn_mode){true, &rng});
    nn_dropout_kind.backward(drop_all, din, in, in, out, BATCH);
    for (int i = 0; i < COUNT; i++) {
        ck_assert_msg(out[i] == 0 && !signbit(out[i]), "p=1 out[%d] = %g", i, out[i]);
        ck_assert_msg(din[i] == 0, "p=1 din[%d] = %g", i, din[i]);
    }
    nn_dropout_kind.destroy(drop_all);
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

/* Reserving again, larger or smaller, keeps working (and leaks nothing under ASan). */
START_TEST(dropout_reserve_can_grow) {
    nn_layer *layer = make_dropout(0.5, 2, flat7);
    nn_error err = {0};
    ck_assert_int_eq(nn_dropout_kind.reserve(layer, 8, &err), 0);
    ck_assert_int_eq(nn_dropout_kind.reserve(layer, 4, &err), 0);
    float in[8 * 7], out[8 * 7];
    for (int i = 0; i < 8 * 7; i++) in[i] = 1;
    nn_rng rng;
    nn_rng_seed(&rng, 1);
    nn_dropout_kind.forward(layer, out, in, 8, (nn_mode){true, &rng});
    for (int i = 0; i < 8 * 7; i++) ck_assert(out[i] == 0 || out[i] == 2);
    nn_dropout_kind.destroy(layer);
}
END_TEST

/* Every kind ignores a NULL din. */
START_TEST(backward_without_din_does_nothing) {
    const nn_layer_kind *kinds[] = {&nn_relu_kind,    &nn_sigmoid_kind,     &nn_tanh_kind,
                                    &nn_leaky_relu_kind, &nn_gelu_kind,     &nn_softmax_kind,
                                    &nn_log_softmax_kind, &nn_flatten_kind, &nn_dropout_kind};
    float in[7] = {1, -2, 3, -4, 5, -6, 7}, out[7];
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        nn_layer *layer = make_layer(kinds[k], NULL, flat7);
        ck_assert_int_eq(layer->state_count, 0);
        ck_assert_msg(nn_shape_equal(layer->out_shape, flat7), "%s changes the shape", kinds[k]->name);
        nn_error err = {0};
        if (kinds[k]->reserve) ck_assert_int_eq(kinds[k]->reserve(layer, 1, &err), 0);
        kinds[k]->forward(layer, out, in, 1, eval_mode);
        kinds[k]->backward(layer, NULL, in, in, out, 1);
        kinds[k]->destroy(layer);
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
    tcase_add_test(values, backward_without_din_does_nothing);
    suite_add_tcase(suite, values);

    TCase *dropout = tcase_create("dropout");
    tcase_add_test(dropout, dropout_eval_is_identity);
    tcase_add_test(dropout, dropout_training_keeps_about_one_minus_p_scaled);
    tcase_add_test(dropout, dropout_mask_follows_the_rng);
    tcase_add_test(dropout, dropout_extreme_probabilities);
    tcase_add_test(dropout, dropout_rejects_bad_p);
    tcase_add_test(dropout, dropout_reserve_can_grow);
    suite_add_tcase(suite, dropout);

    TCase *describe = tcase_create("describe");
    tcase_add_test(describe, describe_matches_pytorch);
    tcase_add_test(describe, describe_on_image_shapes);
    tcase_add_test(describe, kind_names_are_torch_class_names);
    suite_add_tcase(suite, describe);
    return testutil_run(suite);
}
