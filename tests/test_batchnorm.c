/* BatchNorm1d and BatchNorm2d: gradients by finite differences in training
 * and eval (affine or not, with running statistics or not), running
 * statistics against sums computed here (momentum or its cumulative average
 * None), eval with them, num_batches_tracked, state layout, every error and
 * PyTorch's repr; and a batch split across replicas in threads, whose
 * statistics are still the whole batch's (InstanceNorm2d's running
 * statistics too). */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layers.h"
#include "gradcheck.h"
#include "testutil.h"

/* The arguments besides eps and momentum that a case changes. */
typedef enum variant { PLAIN = 0, NO_AFFINE = 1, NO_TRACK = 2, CUMULATIVE = 4, AFFINE = 8, TRACK = 16 } variant;

static void set_variant(const nn_layer_kind *kind, nn_arg_value *args, unsigned v) {
    if (v & (NO_AFFINE | AFFINE)) gradcheck_args_set(kind, args, "affine", (v & AFFINE) != 0, 0);
    if (v & (NO_TRACK | TRACK)) gradcheck_args_set(kind, args, "track_running_stats", (v & TRACK) != 0, 0);
    if (v & CUMULATIVE) {
        int i = nn_arg_find(kind->args, kind->arg_count, "momentum");
        args[i].given = args[i].is_null = true;
    }
}

typedef struct norm_case {
    const nn_layer_kind *kind;
    nn_shape in_shape;
    int batch;
    double eps; /* 0: default */
    unsigned variant;
} norm_case;

static const norm_case gradient_cases[] = {
    {&nn_batch_norm1d_kind, {1, {5, 0, 0}}, 4, 0, PLAIN},
    {&nn_batch_norm1d_kind, {1, {3, 0, 0}}, 2, 0.1, PLAIN},
    {&nn_batch_norm1d_kind, {2, {3, 7, 0}}, 3, 0, PLAIN},
    {&nn_batch_norm1d_kind, {2, {2, 5, 0}}, 1, 0, PLAIN},
    {&nn_batch_norm2d_kind, {3, {3, 4, 5}}, 2, 0, PLAIN},
    {&nn_batch_norm2d_kind, {3, {2, 3, 3}}, 1, 0.5, PLAIN},
    {&nn_batch_norm2d_kind, {3, {4, 1, 1}}, 5, 0, PLAIN},
    {&nn_batch_norm1d_kind, {1, {5, 0, 0}}, 4, 0, NO_AFFINE},
    {&nn_batch_norm1d_kind, {2, {3, 7, 0}}, 3, 0, NO_TRACK},
    {&nn_batch_norm1d_kind, {1, {4, 0, 0}}, 3, 0, NO_TRACK | NO_AFFINE},
    {&nn_batch_norm2d_kind, {3, {3, 4, 5}}, 2, 0, NO_TRACK},
    {&nn_batch_norm2d_kind, {3, {2, 3, 3}}, 2, 0.1, NO_AFFINE | CUMULATIVE},
    {&nn_batch_norm2d_kind, {3, {2, 3, 3}}, 2, 0, CUMULATIVE},
};

/* Eval without running statistics is training's path (the batch's). */
START_TEST(norm_gradients) {
    const norm_case *c = &gradient_cases[_i];
    nn_arg_value args[NN_MAX_ARGS];
    gradcheck_args_default(c->kind, args);
    if (c->eps) gradcheck_args_set(c->kind, args, "eps", c->eps, 0);
    set_variant(c->kind, args, c->variant);
    for (int training = 0; training <= 1; training++) {
        gradcheck_result r = gradcheck_layer(c->kind, args, c->in_shape,
                                             (gradcheck_options){.batch = c->batch, .training = training,
                                                                 .seed = 30 + (uint64_t)_i});
        ck_assert_msg(r.ok, "%s case %d training %d: %s", c->kind->name, _i, training, r.message);
    }
}
END_TEST

/* Every batch below fits. */
enum { MAX_BATCH = 16 };

/* Training as the model's own replica runs it: the whole batch, updating
 * the running statistics; eval, allowed to update them (it must not). */
static const nn_mode train_mode = {.training = true, .update_buffers = true};
static const nn_mode eval_mode = {.training = false, .update_buffers = true};

/* A layer with its trainable entries bound to a buffer owned here, its
 * gradient buffer and one replica's context. */
typedef struct bound_layer {
    nn_layer *layer;
    void *context;
    float *params, *grads;
} bound_layer;

static bound_layer make_variant(const nn_layer_kind *kind, nn_shape shape, double eps, double momentum, unsigned v) {
    nn_arg_value args[NN_MAX_ARGS];
    gradcheck_args_default(kind, args);
    if (eps) gradcheck_args_set(kind, args, "eps", eps, 0);
    if (momentum) gradcheck_args_set(kind, args, "momentum", momentum, 0);
    set_variant(kind, args, v);
    nn_error err = {0};
    bound_layer b = {kind->create(args, shape, &err), NULL, NULL, NULL};
    ck_assert_msg(b.layer != NULL, "%s", err.message);
    b.layer->kind = kind;
    size_t count = nn_layer_param_count(b.layer);
    b.params = malloc((count + 1) * sizeof *b.params);
    b.grads = malloc((count + 1) * sizeof *b.grads);
    nn_layer_bind(b.layer, b.params);
    kind->init(b.layer, NULL);
    b.context = kind->context_create(b.layer, MAX_BATCH, &err);
    ck_assert_msg(b.context != NULL, "%s", err.message);
    return b;
}

static bound_layer make_layer(const nn_layer_kind *kind, nn_shape shape, double eps, double momentum) {
    return make_variant(kind, shape, eps, momentum, PLAIN);
}

static void free_layer(bound_layer *b) {
    b->layer->kind->context_free(b->context);
    b->layer->kind->destroy(b->layer);
    free(b->params);
    free(b->grads);
}

static void forward(bound_layer *b, float *out, const float *in, int batch, const nn_mode *mode) {
    b->layer->kind->forward(b->layer, b->context, out, in, batch, mode);
}

static void backward(bound_layer *b, float *din, const float *dout, const float *in, const float *out, int batch,
                     const nn_mode *mode) {
    b->layer->kind->backward(b->layer, b->context, din, dout, in, out, batch, b->grads, mode);
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
    /* torch's state_dict leaves out what affine=False and
     * track_running_stats=False leave out */
    struct {
        unsigned variant;
        int count;
        const char *first;
    } variants[] = {{NO_AFFINE, 3, "running_mean"}, {NO_TRACK, 2, "weight"}, {NO_AFFINE | NO_TRACK, 0, NULL}};
    for (int v = 0; v < 3; v++) {
        bound_layer b = make_variant(&nn_batch_norm2d_kind, shapes[1], 0, 0, variants[v].variant);
        ck_assert_int_eq(b.layer->state_count, variants[v].count);
        if (variants[v].first) ck_assert_str_eq(b.layer->state[0].array.name, variants[v].first);
        ck_assert_int_eq(nn_layer_param_count(b.layer), variants[v].variant & NO_AFFINE ? 0 : 12);
        free_layer(&b);
    }
}
END_TEST

/* Without running statistics eval normalises with the batch's, as training
 * does, and there is nothing to update; without affine, the output is xhat. */
START_TEST(norm_without_running_statistics) {
    nn_shape shape = {2, {3, 4, 0}};
    bound_layer plain = make_layer(&nn_batch_norm1d_kind, shape, 0, 0);
    bound_layer untracked = make_variant(&nn_batch_norm1d_kind, shape, 0, 0, NO_TRACK | NO_AFFINE);
    enum { BATCH = 3, COUNT = BATCH * 12 };
    float in[COUNT], dout[COUNT], want[COUNT], out[COUNT], want_din[COUNT], din[COUNT];
    nn_rng rng;
    nn_rng_seed(&rng, 12);
    for (int i = 0; i < COUNT; i++) {
        in[i] = 2 + nn_rng_uniform_range(&rng, -1, 1);
        dout[i] = nn_rng_uniform_range(&rng, -1, 1);
    }
    forward(&plain, want, in, BATCH, &train_mode);
    backward(&plain, want_din, dout, in, want, BATCH, &train_mode);
    forward(&untracked, out, in, BATCH, &eval_mode);
    backward(&untracked, din, dout, in, out, BATCH, &eval_mode);
    ck_assert_mem_eq(out, want, sizeof out);
    ck_assert_mem_eq(din, want_din, sizeof din);
    free_layer(&plain);
    free_layer(&untracked);
}
END_TEST

START_TEST(norm_closed_form_batch) {
    /* one feature, batch 1, 2, 3, 4: mean 2.5, biased variance 1.25, unbiased 5/3 */
    bound_layer b = make_layer(&nn_batch_norm1d_kind, (nn_shape){1, {1, 0, 0}}, 0, 0);
    float in[4] = {1, 2, 3, 4}, out[4];
    /* a replica that does not update the buffers normalises the same and
     * leaves them as they were */
    forward(&b, out, in, 4, &(nn_mode){.training = true});
    for (int i = 0; i < 4; i++) ck_assert_double_eq_tol(out[i], (in[i] - 2.5) / sqrt(1.25 + 1e-5), 1e-6);
    ck_assert_float_eq(state_data(b.layer, "running_mean")[0], 0);
    ck_assert_float_eq(state_data(b.layer, "running_var")[0], 1);
    ck_assert_int_eq(*(int64_t *)b.layer->state[4].array.data, 0);
    forward(&b, out, in, 4, &train_mode);
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

/* Three training steps by momentum 0.3 or, cumulative (momentum None), by
 * 1 / num_batches_tracked: then the running statistics are the average of
 * the steps' (the initial ones weigh nothing). */
static void check_running_statistics(const nn_layer_kind *kind, nn_shape shape, int batch, bool cumulative) {
    int channels = shape.dims[0], positions = (int)(nn_shape_size(shape) / (size_t)channels);
    double eps = 1e-3, momentum = 0.3;
    bound_layer b = make_variant(kind, shape, eps, momentum, cumulative ? CUMULATIVE : PLAIN);
    size_t count = (size_t)batch * nn_shape_size(shape);
    float *in = malloc(count * sizeof *in), *out = malloc(count * sizeof *out);
    float *dout = malloc(count * sizeof *dout), *din = malloc(count * sizeof *din);
    nn_rng rng;
    nn_rng_seed(&rng, 5);
    for (int c = 0; c < channels; c++) b.params[c] = nn_rng_uniform_range(&rng, 0.5f, 2);
    for (int c = 0; c < channels; c++) b.params[channels + c] = nn_rng_uniform_range(&rng, -1, 1);
    double want_mean[16] = {0}, want_var[16];
    for (int c = 0; c < channels; c++) want_var[c] = 1;
    double sum_mean[16] = {0}, sum_var[16] = {0};
    for (int step = 0; step < 3; step++) {
        if (cumulative) momentum = 1.0 / (step + 1);
        /* channel c centred on c - 1 with spread growing with c */
        for (size_t i = 0; i < count; i++) {
            int c = (int)(i / (size_t)positions % (size_t)channels);
            in[i] = (float)(c - 1) + (1 + 0.5f * c) * nn_rng_uniform_range(&rng, -1, 1);
        }
        forward(&b, out, in, batch, &train_mode);
        for (int c = 0; c < channels; c++) {
            double mean, biased, unbiased;
            channel_statistics(in, batch, channels, positions, c, &mean, &biased, &unbiased);
            want_mean[c] = (1 - momentum) * want_mean[c] + momentum * mean;
            want_var[c] = (1 - momentum) * want_var[c] + momentum * unbiased;
            sum_mean[c] += mean, sum_var[c] += unbiased;
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
        if (cumulative) {
            ck_assert_double_eq_tol(running_mean[c], sum_mean[c] / 3, 1e-6);
            ck_assert_double_eq_tol(running_var[c], sum_var[c] / 3, 1e-5);
        }
    }
    ck_assert_int_eq(*(int64_t *)b.layer->state[4].array.data, 3);
    /* eval uses the running statistics, changes nothing, and backward is the
     * derivative of that affine map */
    for (size_t i = 0; i < count; i++) dout[i] = nn_rng_uniform_range(&rng, -1, 1);
    float mean_before = running_mean[0], var_before = running_var[0];
    forward(&b, out, in, batch, &eval_mode);
    backward(&b, din, dout, in, out, batch, &eval_mode);
    for (size_t i = 0; i < count; i++) {
        int c = (int)(i / (size_t)positions % (size_t)channels);
        double scale = b.params[c] / sqrt(want_var[c] + eps);
        double want = (in[i] - want_mean[c]) * scale + b.params[channels + c];
        ck_assert_msg(fabs(out[i] - want) < 1e-5, "eval out[%zu] %g want %g", i, out[i], want);
        ck_assert_msg(fabs(din[i] - dout[i] * scale) < 1e-5, "eval din[%zu] %g want %g", i, din[i], dout[i] * scale);
    }
    ck_assert_float_eq(running_mean[0], mean_before);
    ck_assert_float_eq(running_var[0], var_before);
    ck_assert_int_eq(*(int64_t *)b.layer->state[4].array.data, 3);
    free_layer(&b);
    free(in), free(out), free(dout), free(din);
}

START_TEST(norm_running_statistics) {
    for (int cumulative = 0; cumulative <= 1; cumulative++) {
        check_running_statistics(&nn_batch_norm1d_kind, (nn_shape){1, {4, 0, 0}}, 6, cumulative);
        check_running_statistics(&nn_batch_norm1d_kind, (nn_shape){2, {3, 5, 0}}, 2, cumulative);
        check_running_statistics(&nn_batch_norm2d_kind, (nn_shape){3, {3, 4, 5}}, 3, cumulative);
        check_running_statistics(&nn_batch_norm2d_kind, (nn_shape){3, {2, 6, 6}}, 1, cumulative);
    }
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
    /* BatchNorm2d(4, momentum=None, affine=False), BatchNorm1d(4, track_running_stats=False) */
    gradcheck_args_default(&nn_batch_norm2d_kind, args);
    set_variant(&nn_batch_norm2d_kind, args, CUMULATIVE | NO_AFFINE);
    assert_describes(&nn_batch_norm2d_kind, (nn_shape){3, {4, 2, 3}}, args,
                     "BatchNorm2d(4, eps=1e-05, momentum=None, affine=False, track_running_stats=True)");
    gradcheck_args_default(&nn_batch_norm1d_kind, args);
    set_variant(&nn_batch_norm1d_kind, args, NO_TRACK);
    assert_describes(&nn_batch_norm1d_kind, (nn_shape){1, {4, 0, 0}}, args,
                     "BatchNorm1d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=False)");
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

/* Two replicas' contexts on one layer: a training forward on other data
 * with one does not disturb what the other's backward needs. */
START_TEST(norm_contexts_are_independent) {
    nn_shape shape = {2, {3, 5, 0}};
    bound_layer b = make_layer(&nn_batch_norm1d_kind, shape, 0, 0);
    nn_error err = {0};
    void *other = nn_batch_norm1d_kind.context_create(b.layer, MAX_BATCH, &err);
    ck_assert_msg(other != NULL, "%s", err.message);
    enum { BATCH = 4, COUNT = BATCH * 15 };
    float in[COUNT], other_in[COUNT], dout[COUNT], out[COUNT], other_out[COUNT];
    float want_out[COUNT], want_din[COUNT], din[COUNT], want_grads[6];
    nn_rng rng;
    nn_rng_seed(&rng, 11);
    for (int i = 0; i < COUNT; i++) {
        in[i] = nn_rng_uniform_range(&rng, -1, 1);
        other_in[i] = 3 + 2 * nn_rng_uniform_range(&rng, -1, 1);
        dout[i] = nn_rng_uniform_range(&rng, -1, 1);
    }
    const nn_mode mode = {.training = true};
    forward(&b, want_out, in, BATCH, &mode);
    backward(&b, want_din, dout, in, want_out, BATCH, &mode);
    memcpy(want_grads, b.grads, sizeof want_grads);
    forward(&b, out, in, BATCH, &mode);
    nn_batch_norm1d_kind.forward(b.layer, other, other_out, other_in, BATCH, &mode);
    backward(&b, din, dout, in, out, BATCH, &mode);
    ck_assert_mem_eq(out, want_out, sizeof out);
    ck_assert_mem_eq(din, want_din, sizeof din);
    ck_assert_mem_eq(b.grads, want_grads, sizeof want_grads);
    nn_batch_norm1d_kind.context_free(other);
    free_layer(&b);
}
END_TEST

/* A batch split across replicas, one thread each, as the engine splits it:
 * replica r of R takes the samples [r * n / R, (r + 1) * n / R). */

enum { MAX_REPLICAS = 3, REDUCE_CAPACITY = 64 };

/* The replicas of a batch meet here. Each posts its values and waits for
 * the others; each adds every replica's values up in replica order into its
 * own scratch (so every replica gets the same bits) and waits again, so that
 * no replica overwrites values another is still reading; each copies its
 * totals back. */
typedef struct reduce_group {
    pthread_barrier_t barrier;
    const double *slots[MAX_REPLICAS];
    int counts[MAX_REPLICAS];
    int replicas;
} reduce_group;

typedef struct replica {
    reduce_group *group;
    int rank;
    int calls;          /* allreduce calls in this phase */
    bool bad_count;     /* a call whose count differed from another replica's, or too long */
    double scratch[REDUCE_CAPACITY];
    /* the job: forward then backward on samples [first, first + batch) */
    nn_layer *layer;
    void *context;
    nn_mode mode;
    int first, batch;
    size_t sample;      /* floats per sample */
    const float *in, *dout;
    float *out, *din;   /* the whole batch's buffers */
    float *grads;       /* this replica's */
} replica;

static void test_allreduce(void *group, double *values, int count) {
    replica *self = group;
    reduce_group *g = self->group;
    self->calls++;
    g->slots[self->rank] = values;
    g->counts[self->rank] = count;
    pthread_barrier_wait(&g->barrier);
    int n = count < REDUCE_CAPACITY ? count : REDUCE_CAPACITY;
    if (n != count) self->bad_count = true;
    for (int r = 0; r < g->replicas; r++)
        if (g->counts[r] != count) {
            self->bad_count = true;
            if (g->counts[r] < n) n = g->counts[r];
        }
    for (int i = 0; i < n; i++) {
        double total = g->slots[0][i];
        for (int r = 1; r < g->replicas; r++) total += g->slots[r][i];
        self->scratch[i] = total;
    }
    pthread_barrier_wait(&g->barrier);
    memcpy(values, self->scratch, (size_t)n * sizeof *values);
}

static void *replica_run(void *arg) {
    replica *r = arg;
    const nn_layer_kind *kind = r->layer->kind;
    size_t offset = (size_t)r->first * r->sample;
    kind->forward(r->layer, r->context, r->out + offset, r->in + offset, r->batch, &r->mode);
    kind->backward(r->layer, r->context, r->din + offset, r->dout + offset, r->in + offset, r->out + offset,
                   r->batch, r->grads, &r->mode);
    return NULL;
}

/* |got - want| <= 1e-6 * max(|want|, the largest |want| of the array).
 * Relative to the array's size rather than to each entry: each replica's
 * parameter gradients are rounded to float before they are summed, so a
 * gradient that is a sum of terms cancelling far below their own size (a
 * dweight near 0) is only as good as float is on the terms. */
static void assert_close(const float *got, const float *want, size_t count, const char *what, int step) {
    double largest = 0;
    for (size_t i = 0; i < count; i++) largest = fmax(largest, fabs(want[i]));
    for (size_t i = 0; i < count; i++) {
        double bound = 1e-6 * largest;
        ck_assert_msg(fabs((double)got[i] - want[i]) <= bound, "step %d %s[%zu]: split %.9g whole %.9g", step,
                      what, i, got[i], want[i]);
    }
}

typedef struct split_case {
    const nn_layer_kind *kind;
    nn_shape shape;
    int batch, replicas;
    unsigned variant;
} split_case;

static const split_case split_cases[] = {
    {&nn_batch_norm1d_kind, {1, {4, 0, 0}}, 8, 2, PLAIN},
    {&nn_batch_norm1d_kind, {1, {4, 0, 0}}, 8, 3, PLAIN},
    {&nn_batch_norm1d_kind, {1, {4, 0, 0}}, 5, 2, PLAIN},
    {&nn_batch_norm1d_kind, {1, {4, 0, 0}}, 5, 3, PLAIN}, /* slices 1, 2, 2: one sample alone has no variance */
    {&nn_batch_norm1d_kind, {2, {3, 5, 0}}, 8, 2, PLAIN},
    {&nn_batch_norm1d_kind, {2, {3, 5, 0}}, 8, 3, PLAIN},
    {&nn_batch_norm1d_kind, {2, {3, 5, 0}}, 5, 2, PLAIN},
    {&nn_batch_norm1d_kind, {2, {3, 5, 0}}, 5, 3, PLAIN},
    {&nn_batch_norm2d_kind, {3, {3, 4, 5}}, 8, 2, PLAIN},
    {&nn_batch_norm2d_kind, {3, {3, 4, 5}}, 8, 3, PLAIN},
    {&nn_batch_norm2d_kind, {3, {3, 4, 5}}, 5, 2, PLAIN},
    {&nn_batch_norm2d_kind, {3, {3, 4, 5}}, 5, 3, PLAIN},
    {&nn_batch_norm1d_kind, {1, {4, 0, 0}}, 2, 3, PLAIN}, /* replica 0's slice is empty */
    {&nn_batch_norm2d_kind, {3, {2, 3, 3}}, 2, 3, PLAIN},
    {&nn_batch_norm2d_kind, {3, {3, 4, 5}}, 8, 1, PLAIN}, /* one replica through the allreduce: the same bits */
    {&nn_batch_norm1d_kind, {1, {4, 0, 0}}, 7, 3, NO_AFFINE},
    {&nn_batch_norm1d_kind, {2, {3, 5, 0}}, 8, 3, NO_TRACK}, /* eval reduces too */
    {&nn_batch_norm2d_kind, {3, {3, 4, 5}}, 5, 2, NO_TRACK | NO_AFFINE},
    {&nn_batch_norm2d_kind, {3, {3, 4, 5}}, 5, 3, CUMULATIVE},
    {&nn_batch_norm1d_kind, {1, {4, 0, 0}}, 2, 3, CUMULATIVE | NO_AFFINE},
    /* InstanceNorm2d's running statistics: the batch's average of the samples' */
    {&nn_instance_norm2d_kind, {3, {3, 4, 5}}, 5, 2, TRACK},
    {&nn_instance_norm2d_kind, {3, {3, 4, 5}}, 8, 3, TRACK | AFFINE},
    {&nn_instance_norm2d_kind, {3, {2, 3, 3}}, 2, 3, TRACK | AFFINE},
    {&nn_instance_norm2d_kind, {3, {2, 3, 3}}, 5, 3, AFFINE}, /* no allreduce at all */
};

static float *find_state(const nn_layer *layer, const char *name) {
    for (int i = 0; i < layer->state_count; i++)
        if (strcmp(layer->state[i].array.name, name) == 0) return layer->state[i].array.data;
    return NULL;
}

/* Two training steps and an eval step, forward and backward, on the whole
 * batch in one replica (no allreduce) and split across replicas: the same
 * outputs, input gradients, parameter gradients (the replicas' summed) and
 * running statistics, which one replica (another each step) updates. Eval
 * with running statistics makes no allreduce call. */
START_TEST(norm_split_matches_whole_batch) {
    const split_case *sc = &split_cases[_i];
    const nn_layer_kind *kind = sc->kind;
    int batch = sc->batch, replicas = sc->replicas, channels = sc->shape.dims[0];
    size_t sample = nn_shape_size(sc->shape), count = (size_t)batch * sample;
    int positions = (int)(sample / (size_t)channels);
    bound_layer whole = make_variant(kind, sc->shape, 1e-3, 0.3, sc->variant);
    bound_layer split = make_variant(kind, sc->shape, 1e-3, 0.3, sc->variant);
    bool tracked = find_state(whole.layer, "running_mean") != NULL;
    bool instance = kind == &nn_instance_norm2d_kind;
    size_t param_count = nn_layer_param_count(whole.layer);
    ck_assert_uint_le(2 * (size_t)channels + 1, REDUCE_CAPACITY);
    nn_rng rng;
    nn_rng_seed(&rng, 70 + (uint64_t)_i);
    for (size_t i = 0; i < param_count; i++)
        whole.params[i] = split.params[i] = nn_rng_uniform_range(&rng, 0.5f, 1.5f) * (i % 3 ? 1 : -1);
    float *in = malloc(count * sizeof *in), *dout = malloc(count * sizeof *dout);
    float *want_out = malloc(count * sizeof *want_out), *want_din = malloc(count * sizeof *want_din);
    float *out = malloc(count * sizeof *out), *din = malloc(count * sizeof *din);
    float *grads = malloc(((size_t)replicas * param_count + 1) * sizeof *grads);
    float *summed = malloc((param_count + 1) * sizeof *summed);
    reduce_group group = {.replicas = replicas};
    ck_assert_int_eq(pthread_barrier_init(&group.barrier, NULL, (unsigned)replicas), 0);
    replica reps[MAX_REPLICAS];
    memset(reps, 0, sizeof reps);
    nn_error err = {0};
    for (int r = 0; r < replicas; r++) {
        replica *rep = &reps[r];
        rep->group = &group;
        rep->rank = r;
        rep->layer = split.layer;
        rep->first = r * batch / replicas;
        rep->batch = (r + 1) * batch / replicas - rep->first;
        rep->context = kind->context_create(split.layer, rep->batch, &err);
        ck_assert_msg(rep->context != NULL, "%s", err.message);
        rep->sample = sample;
        rep->in = in, rep->dout = dout, rep->out = out, rep->din = din;
        rep->grads = grads + (size_t)r * param_count;
    }
    float *running[2][2] = {{find_state(whole.layer, "running_mean"), find_state(whole.layer, "running_var")},
                            {find_state(split.layer, "running_mean"), find_state(split.layer, "running_var")}};
    int64_t *batches[2] = {(int64_t *)find_state(whole.layer, "num_batches_tracked"),
                           (int64_t *)find_state(split.layer, "num_batches_tracked")};
    for (int step = 0; step < 3; step++) {
        bool training = step < 2;
        /* channel c centred on 4 * c - 3, so that the centring matters */
        for (size_t i = 0; i < count; i++) {
            int c = (int)(i / (size_t)positions % (size_t)channels);
            in[i] = (float)(4 * c - 3) + (1 + 0.5f * c) * nn_rng_uniform_range(&rng, -1, 1);
            dout[i] = nn_rng_uniform_range(&rng, -1, 1);
        }
        const nn_mode *mode = training ? &train_mode : &eval_mode;
        forward(&whole, want_out, in, batch, mode);
        backward(&whole, want_din, dout, in, want_out, batch, mode);
        pthread_t threads[MAX_REPLICAS];
        for (int r = 0; r < replicas; r++) {
            reps[r].calls = 0;
            reps[r].mode = (nn_mode){.training = training, .allreduce = test_allreduce, .group = &reps[r],
                                     .update_buffers = r == step % replicas};
            ck_assert_int_eq(pthread_create(&threads[r], NULL, replica_run, &reps[r]), 0);
        }
        for (int r = 0; r < replicas; r++) ck_assert_int_eq(pthread_join(threads[r], NULL), 0);
        for (int r = 0; r < replicas; r++) {
            ck_assert_msg(!reps[r].bad_count, "step %d replica %d: allreduce counts differ", step, r);
            ck_assert_int_eq(reps[r].calls, reps[0].calls);
        }
        if (!training && tracked) ck_assert_int_eq(reps[0].calls, 0);
        if (!tracked && !instance) ck_assert_int_gt(reps[0].calls, 0);
        for (size_t i = 0; i < param_count; i++) {
            summed[i] = grads[i];
            for (int r = 1; r < replicas; r++) summed[i] += grads[(size_t)r * param_count + i];
        }
        if (replicas == 1) {
            ck_assert_mem_eq(out, want_out, count * sizeof *out);
            ck_assert_mem_eq(din, want_din, count * sizeof *din);
            ck_assert_mem_eq(summed, whole.grads, param_count * sizeof *summed);
        }
        if (replicas == 1 && tracked) {
            ck_assert_mem_eq(running[1][0], running[0][0], (size_t)channels * sizeof(float));
            ck_assert_mem_eq(running[1][1], running[0][1], (size_t)channels * sizeof(float));
        }
        assert_close(out, want_out, count, "out", step);
        assert_close(din, want_din, count, "din", step);
        assert_close(summed, whole.grads, param_count, "grad", step);
        if (!tracked) continue;
        assert_close(running[1][0], running[0][0], (size_t)channels, "running_mean", step);
        assert_close(running[1][1], running[0][1], (size_t)channels, "running_var", step);
        /* one update per training step: exactly one replica made it (torch's
         * InstanceNorm never counts) */
        int64_t want_batches = instance ? 0 : training ? step + 1 : 2;
        ck_assert_int_eq(*batches[1], want_batches);
        ck_assert_int_eq(*batches[0], want_batches);
    }
    /* the running statistics moved: the comparison above was not of the initial values */
    if (tracked) {
        ck_assert_float_ne(running[1][0][0], 0);
        ck_assert_float_ne(running[1][1][0], 1);
    }
    for (int r = 0; r < replicas; r++) kind->context_free(reps[r].context);
    pthread_barrier_destroy(&group.barrier);
    free_layer(&whole);
    free_layer(&split);
    free(in), free(dout), free(want_out), free(want_din), free(out), free(din), free(grads), free(summed);
}
END_TEST

int main(void) {
    Suite *suite = suite_create("batch_norm");
    TCase *tc = tcase_create("batch_norm");
    tcase_add_loop_test(tc, norm_gradients, 0, sizeof gradient_cases / sizeof gradient_cases[0]);
    tcase_add_test(tc, norm_state_layout);
    tcase_add_test(tc, norm_without_running_statistics);
    tcase_add_test(tc, norm_closed_form_batch);
    tcase_add_test(tc, norm_running_statistics);
    tcase_add_test(tc, norm_rejects_bad_input);
    tcase_add_test(tc, norm_describe_matches_pytorch);
    tcase_add_test(tc, norm_minimum_training_batch);
    tcase_add_test(tc, norm_contexts_are_independent);
    tcase_add_loop_test(tc, norm_split_matches_whole_batch, 0, sizeof split_cases / sizeof split_cases[0]);
    suite_add_tcase(suite, tc);
    return testutil_run(suite);
}
