/* BatchNorm1d and BatchNorm2d: gradients by finite differences in training
 * and eval, running statistics against sums computed here, eval with them,
 * num_batches_tracked, state layout, every error and PyTorch's repr. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layers.h"
#include "gradcheck.h"
#include "testutil.h"

typedef struct norm_case {
    const nn_layer_kind *kind;
    nn_shape in_shape;
    int batch;
    double eps; /* 0: default */
} norm_case;

static const norm_case gradient_cases[] = {
    {&nn_batch_norm1d_kind, {1, {5, 0, 0}}, 4, 0},
    {&nn_batch_norm1d_kind, {1, {3, 0, 0}}, 2, 0.1},
    {&nn_batch_norm1d_kind, {2, {3, 7, 0}}, 3, 0},
    {&nn_batch_norm1d_kind, {2, {2, 5, 0}}, 1, 0},
    {&nn_batch_norm2d_kind, {3, {3, 4, 5}}, 2, 0},
    {&nn_batch_norm2d_kind, {3, {2, 3, 3}}, 1, 0.5},
    {&nn_batch_norm2d_kind, {3, {4, 1, 1}}, 5, 0},
};

START_TEST(norm_gradients) {
    const norm_case *c = &gradient_cases[_i];
    nn_arg_value args[NN_MAX_ARGS];
    gradcheck_args_default(c->kind, args);
    if (c->eps) gradcheck_args_set(c->kind, args, "eps", c->eps, 0);
    for (int training = 0; training <= 1; training++) {
        gradcheck_result r = gradcheck_layer(c->kind, args, c->in_shape,
                                             (gradcheck_options){.batch = c->batch, .training = training,
                                                                 .seed = 30 + (uint64_t)_i});
        ck_assert_msg(r.ok, "%s case %d training %d: %s", c->kind->name, _i, training, r.message);
    }
}
END_TEST

/* A layer with its trainable entries bound to buffers owned here. */
typedef struct bound_layer {
    nn_layer *layer;
    float *params, *grads;
} bound_layer;

static bound_layer make_layer(const nn_layer_kind *kind, nn_shape shape, double eps, double momentum) {
    nn_arg_value args[NN_MAX_ARGS];
    gradcheck_args_default(kind, args);
    if (eps) gradcheck_args_set(kind, args, "eps", eps, 0);
    if (momentum) gradcheck_args_set(kind, args, "momentum", momentum, 0);
    nn_error err = {0};
    bound_layer b = {kind->create(args, shape, &err), NULL, NULL};
    ck_assert_msg(b.layer != NULL, "%s", err.message);
    b.layer->kind = kind;
    size_t count = nn_layer_param_count(b.layer);
    b.params = malloc(count * sizeof *b.params);
    b.grads = malloc(count * sizeof *b.grads);
    nn_layer_bind(b.layer, b.params, b.grads);
    kind->init(b.layer, NULL);
    return b;
}

static void free_layer(bound_layer *b) {
    b->layer->kind->destroy(b->layer);
    free(b->params);
    free(b->grads);
}

static float *state_data(const nn_layer *layer, const char *name) {
    for (int i = 0; i < layer->state_count; i++)
        if (strcmp(layer->state[i].array.name, name) == 0) return layer->state[i].array.data;
    ck_abort_msg("no state %s", name);
    return NULL;
}

START_TEST(norm_state_layout) {
    const nn_layer_kind *kinds[] = {&nn_batch_norm1d_kind, &nn_batch_norm2d_kind};
    nn_shape shapes[] = {{2, {6, 4, 0}}, {3, {6, 3, 3}}};
    const char *names[] = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"};
    for (int k = 0; k < 2; k++) {
        bound_layer b = make_layer(kinds[k], shapes[k], 0, 0);
        ck_assert(nn_shape_equal(b.layer->out_shape, shapes[k]));
        ck_assert_int_eq(b.layer->state_count, 5);
        for (int i = 0; i < 5; i++) {
            const nn_state *state = &b.layer->state[i];
            ck_assert_str_eq(state->array.name, names[i]);
            ck_assert_int_eq(state->trainable, i < 2);
            ck_assert_ptr_nonnull(state->array.data);
            ck_assert_int_eq(state->array.dtype, i == 4 ? NN_I64 : NN_F32);
            ck_assert_int_eq(state->array.rank, i == 4 ? 0 : 1);
            if (i < 4) ck_assert_int_eq(state->array.dims[0], 6);
        }
        ck_assert_int_eq(nn_layer_param_count(b.layer), 12);
        float *weight = state_data(b.layer, "weight"), *bias = state_data(b.layer, "bias");
        float *mean = state_data(b.layer, "running_mean"), *var = state_data(b.layer, "running_var");
        for (int c = 0; c < 6; c++) {
            ck_assert_float_eq(weight[c], 1);
            ck_assert_float_eq(bias[c], 0);
            ck_assert_float_eq(mean[c], 0);
            ck_assert_float_eq(var[c], 1);
        }
        ck_assert_int_eq(*(int64_t *)b.layer->state[4].array.data, 0);
        free_layer(&b);
    }
}
END_TEST

START_TEST(norm_closed_form_batch) {
    /* one feature, batch 1, 2, 3, 4: mean 2.5, biased variance 1.25, unbiased 5/3 */
    bound_layer b = make_layer(&nn_batch_norm1d_kind, (nn_shape){1, {1, 0, 0}}, 0, 0);
    float in[4] = {1, 2, 3, 4}, out[4];
    nn_batch_norm1d_kind.forward(b.layer, out, in, 4, (nn_mode){true, NULL});
    for (int i = 0; i < 4; i++) ck_assert_double_eq_tol(out[i], (in[i] - 2.5) / sqrt(1.25 + 1e-5), 1e-6);
    ck_assert_double_eq_tol(state_data(b.layer, "running_mean")[0], 0.25, 1e-7);
    ck_assert_double_eq_tol(state_data(b.layer, "running_var")[0], 0.9 + 0.1 * 5.0 / 3.0, 1e-6);
    ck_assert_int_eq(*(int64_t *)b.layer->state[4].array.data, 1);
    free_layer(&b);
}
END_TEST

/* Statistics of channel c over a (batch, channels, positions) input. */
static void channel_statistics(const float *x, int batch, int channels, int positions, int c, double *mean,
                               double *biased, double *unbiased) {
    double sum = 0, squares = 0;
    int n = batch * positions;
    for (int b = 0; b < batch; b++)
        for (int p = 0; p < positions; p++) sum += x[(b * channels + c) * positions + p];
    *mean = sum / n;
    for (int b = 0; b < batch; b++)
        for (int p = 0; p < positions; p++) {
            double d = x[(b * channels + c) * positions + p] - *mean;
            squares += d * d;
        }
    *biased = squares / n;
    *unbiased = squares / (n - 1);
}

static void check_running_statistics(const nn_layer_kind *kind, nn_shape shape, int batch) {
    int channels = shape.dims[0], positions = (int)(nn_shape_size(shape) / (size_t)channels);
    double eps = 1e-3, momentum = 0.3;
    bound_layer b = make_layer(kind, shape, eps, momentum);
    size_t count = (size_t)batch * nn_shape_size(shape);
    float *in = malloc(count * sizeof *in), *out = malloc(count * sizeof *out);
    float *dout = malloc(count * sizeof *dout), *din = malloc(count * sizeof *din);
    nn_rng rng;
    nn_rng_seed(&rng, 5);
    for (int c = 0; c < channels; c++) b.params[c] = nn_rng_uniform_range(&rng, 0.5f, 2);
    for (int c = 0; c < channels; c++) b.params[channels + c] = nn_rng_uniform_range(&rng, -1, 1);
    double want_mean[16] = {0}, want_var[16];
    for (int c = 0; c < channels; c++) want_var[c] = 1;
    for (int step = 0; step < 2; step++) {
        /* channel c centred on c - 1 with spread growing with c */
        for (size_t i = 0; i < count; i++) {
            int c = (int)(i / (size_t)positions % (size_t)channels);
            in[i] = (float)(c - 1) + (1 + 0.5f * c) * nn_rng_uniform_range(&rng, -1, 1);
        }
        kind->forward(b.layer, out, in, batch, (nn_mode){true, NULL});
        for (int c = 0; c < channels; c++) {
            double mean, biased, unbiased;
            channel_statistics(in, batch, channels, positions, c, &mean, &biased, &unbiased);
            want_mean[c] = (1 - momentum) * want_mean[c] + momentum * mean;
            want_var[c] = (1 - momentum) * want_var[c] + momentum * unbiased;
            for (int bi = 0; bi < batch; bi++)
                for (int p = 0; p < positions; p++) {
                    size_t i = ((size_t)bi * channels + c) * positions + p;
                    double want = (in[i] - mean) / sqrt(biased + eps) * b.params[c] + b.params[channels + c];
                    ck_assert_msg(fabs(out[i] - want) < 1e-5, "train out[%zu] %g want %g", i, out[i], want);
                }
        }
    }
    float *running_mean = state_data(b.layer, "running_mean"), *running_var = state_data(b.layer, "running_var");
    for (int c = 0; c < channels; c++) {
        ck_assert_msg(fabs(running_mean[c] - want_mean[c]) < 1e-6, "mean[%d] %g want %g", c, running_mean[c], want_mean[c]);
        ck_assert_msg(fabs(running_var[c] - want_var[c]) < 1e-5, "var[%d] %g want %g", c, running_var[c], want_var[c]);
    }
    ck_assert_int_eq(*(int64_t *)b.layer->state[4].array.data, 2);
    /* eval uses the running statistics, changes nothing, and backward is the
     * derivative of that affine map */
    for (size_t i = 0; i < count; i++) dout[i] = nn_rng_uniform_range(&rng, -1, 1);
    float mean_before = running_mean[0], var_before = running_var[0];
    kind->forward(b.layer, out, in, batch, (nn_mode){false, NULL});
    kind->backward(b.layer, din, dout, in, out, batch);
    for (size_t i = 0; i < count; i++) {
        int c = (int)(i / (size_t)positions % (size_t)channels);
        double scale = b.params[c] / sqrt(want_var[c] + eps);
        double want = (in[i] - want_mean[c]) * scale + b.params[channels + c];
        ck_assert_msg(fabs(out[i] - want) < 1e-5, "eval out[%zu] %g want %g", i, out[i], want);
        ck_assert_msg(fabs(din[i] - dout[i] * scale) < 1e-5, "eval din[%zu] %g want %g", i, din[i], dout[i] * scale);
    }
    ck_assert_float_eq(running_mean[0], mean_before);
    ck_assert_float_eq(running_var[0], var_before);
    ck_assert_int_eq(*(int64_t *)b.layer->state[4].array.data, 2);
    free_layer(&b);
    free(in), free(out), free(dout), free(din);
}

START_TEST(norm_running_statistics) {
    check_running_statistics(&nn_batch_norm1d_kind, (nn_shape){1, {4, 0, 0}}, 6);
    check_running_statistics(&nn_batch_norm1d_kind, (nn_shape){2, {3, 5, 0}}, 2);
    check_running_statistics(&nn_batch_norm2d_kind, (nn_shape){3, {3, 4, 5}}, 3);
    check_running_statistics(&nn_batch_norm2d_kind, (nn_shape){3, {2, 6, 6}}, 1);
}
END_TEST

static nn_layer *create_norm(const nn_layer_kind *kind, nn_shape shape, const char *name, double value,
                             nn_error *err) {
    nn_arg_value args[NN_MAX_ARGS];
    gradcheck_args_default(kind, args);
    if (name) gradcheck_args_set(kind, args, name, value, 0);
    return kind->create(args, shape, err);
}

static void assert_fails(nn_layer *layer, const nn_error *err, const char *part1, const char *part2) {
    ck_assert_ptr_null(layer);
    ck_assert_int_eq(err->status, NN_ERR_INPUT);
    ck_assert_msg(strstr(err->message, part1) && strstr(err->message, part2), "%s", err->message);
}

START_TEST(norm_rejects_bad_input) {
    nn_error err = {0};
    assert_fails(create_norm(&nn_batch_norm1d_kind, (nn_shape){3, {32, 13, 13}}, NULL, 0, &err), &err,
                 "(32, 13, 13)", "BatchNorm2d");
    err = (nn_error){0};
    assert_fails(create_norm(&nn_batch_norm2d_kind, (nn_shape){1, {128, 0, 0}}, NULL, 0, &err), &err, "(128,)",
                 "BatchNorm1d");
    err = (nn_error){0};
    assert_fails(create_norm(&nn_batch_norm2d_kind, (nn_shape){2, {8, 9, 0}}, NULL, 0, &err), &err, "(8, 9)",
                 "BatchNorm1d");
    err = (nn_error){0};
    assert_fails(create_norm(&nn_batch_norm2d_kind, (nn_shape){3, {32, 13, 13}}, "num_features", 64, &err), &err,
                 "num_features is 64", "has 32");
    err = (nn_error){0};
    assert_fails(create_norm(&nn_batch_norm1d_kind, (nn_shape){2, {10, 4, 0}}, "num_features", 40, &err), &err,
                 "num_features is 40", "has 10");
    err = (nn_error){0};
    assert_fails(create_norm(&nn_batch_norm1d_kind, (nn_shape){1, {10, 0, 0}}, "eps", -1, &err), &err, "eps", "-1");
    err = (nn_error){0};
    assert_fails(create_norm(&nn_batch_norm1d_kind, (nn_shape){1, {10, 0, 0}}, "momentum", 1.5, &err), &err,
                 "momentum", "1.5");
    /* given and matching is fine */
    err = (nn_error){0};
    nn_layer *layer = create_norm(&nn_batch_norm1d_kind, (nn_shape){1, {10, 0, 0}}, "num_features", 10, &err);
    ck_assert_msg(layer != NULL, "%s", err.message);
    nn_batch_norm1d_kind.destroy(layer);
}
END_TEST

static void assert_describes(const nn_layer_kind *kind, nn_shape shape, const nn_arg_value *args, const char *want) {
    nn_error err = {0};
    nn_layer *layer = kind->create(args, shape, &err);
    ck_assert_msg(layer != NULL, "%s", err.message);
    char text[256];
    kind->describe(layer, text, sizeof text);
    ck_assert_str_eq(text, want);
    kind->destroy(layer);
}

/* Strings printed by torch 1.13 for BatchNorm2d(32), BatchNorm1d(10, eps=1e-3, momentum=1)
 * and BatchNorm1d(10, eps=0.001, momentum=0.01). */
START_TEST(norm_describe_matches_pytorch) {
    nn_arg_value args[NN_MAX_ARGS];
    gradcheck_args_default(&nn_batch_norm2d_kind, args);
    assert_describes(&nn_batch_norm2d_kind, (nn_shape){3, {32, 13, 13}}, args,
                     "BatchNorm2d(32, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)");
    int momentum = nn_arg_find(nn_batch_norm1d_kind.args, nn_batch_norm1d_kind.arg_count, "momentum");
    gradcheck_args_set(&nn_batch_norm1d_kind, args, "eps", 1e-3, 0);
    gradcheck_args_set(&nn_batch_norm1d_kind, args, "momentum", 1, 0);
    args[momentum].is_integer = true;
    assert_describes(&nn_batch_norm1d_kind, (nn_shape){1, {10, 0, 0}}, args,
                     "BatchNorm1d(10, eps=0.001, momentum=1, affine=True, track_running_stats=True)");
    gradcheck_args_set(&nn_batch_norm1d_kind, args, "momentum", 0.01, 0);
    args[momentum].is_integer = false;
    assert_describes(&nn_batch_norm1d_kind, (nn_shape){2, {10, 3, 0}}, args,
                     "BatchNorm1d(10, eps=0.001, momentum=0.01, affine=True, track_running_stats=True)");
}
END_TEST

/* One value per channel per sample leaves a batch of one with no variance:
 * such a layer asks the trainer for batches of at least two, as torch does. */
START_TEST(norm_minimum_training_batch) {
    nn_error err = {0};
    struct {
        const nn_layer_kind *kind;
        nn_shape shape;
        int want;
    } cases[] = {
        {&nn_batch_norm1d_kind, {1, {16, 0, 0}}, 2},
        {&nn_batch_norm1d_kind, {2, {4, 1, 0}}, 2},
        {&nn_batch_norm1d_kind, {2, {4, 3, 0}}, 1},
        {&nn_batch_norm2d_kind, {3, {8, 1, 1}}, 2},
        {&nn_batch_norm2d_kind, {3, {8, 2, 1}}, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nn_layer *layer = create_norm(cases[i].kind, cases[i].shape, NULL, 0, &err);
        ck_assert_msg(layer != NULL, "%s", err.message);
        ck_assert_int_eq(layer->min_train_batch, cases[i].want);
        cases[i].kind->destroy(layer);
    }
}
END_TEST

int main(void) {
    Suite *suite = suite_create("batch_norm");
    TCase *tc = tcase_create("batch_norm");
    tcase_add_loop_test(tc, norm_gradients, 0, sizeof gradient_cases / sizeof gradient_cases[0]);
    tcase_add_test(tc, norm_state_layout);
    tcase_add_test(tc, norm_closed_form_batch);
    tcase_add_test(tc, norm_running_statistics);
    tcase_add_test(tc, norm_rejects_bad_input);
    tcase_add_test(tc, norm_describe_matches_pytorch);
    tcase_add_test(tc, norm_minimum_training_batch);
    suite_add_tcase(suite, tc);
    return testutil_run(suite);
}
