/* The dropout variants (Dropout1d, Dropout2d, AlphaDropout,
 * FeatureAlphaDropout, inplace), Softmax without dim, Unflatten, the padding
 * layers and Upsample: finite-difference gradients on every argument path,
 * forward values against small references written here (the torch
 * agreement itself is tests/layer_cases/shape.txt), the dropouts' channel
 * masks and statistics, batch-split invariance, PyTorch 1.13's repr of each
 * and the messages for what nnseq refuses. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layers.h"
#include "gradcheck.h"
#include "testutil.h"

static const nn_mode eval_mode = {.training = false};
static const nn_mode training_mode = {.training = true};

static nn_shape shape1(int a) { return (nn_shape){1, {a, 0, 0}}; }
static nn_shape shape2(int a, int b) { return (nn_shape){2, {a, b, 0}}; }
static nn_shape shape3(int a, int b, int c) { return (nn_shape){3, {a, b, c}}; }

/* Argument helpers: defaults, then set by name. */
static int arg_index(const nn_layer_kind *kind, const char *name) {
    int i = nn_arg_find(kind->args, kind->arg_count, name);
    ck_assert_msg(i >= 0, "%s has no argument %s", kind->name, name);
    return i;
}

static void set_number(const nn_layer_kind *kind, nn_arg_value *args, const char *name, double v, bool integer) {
    nn_arg_value *a = &args[arg_index(kind, name)];
    a->given = true;
    a->is_null = false;
    a->is_list = false;
    a->is_integer = integer;
    a->count = 1;
    a->value[0] = a->value[1] = v;
}

static void set_list(const nn_layer_kind *kind, nn_arg_value *args, const char *name, int n, const double *v,
                     bool integer) {
    nn_arg_value *a = &args[arg_index(kind, name)];
    a->given = true;
    a->is_null = false;
    a->is_list = true;
    a->is_integer = integer;
    a->count = n;
    for (int i = 0; i < n; i++) a->value[i] = v[i];
}

static void set_null(const nn_layer_kind *kind, nn_arg_value *args, const char *name) {
    nn_arg_value *a = &args[arg_index(kind, name)];
    a->given = true;
    a->is_null = true;
}

static void set_choice(const nn_layer_kind *kind, nn_arg_value *args, const char *name, const char *choice) {
    int i = arg_index(kind, name);
    const char *const *choices = kind->args[i].choices;
    for (int c = 0; choices[c]; c++)
        if (!strcmp(choices[c], choice)) {
            args[i].given = true;
            args[i].choice = c + 1;
            args[i].value[0] = c;
            return;
        }
    ck_abort_msg("%s has no %s '%s'", kind->name, name, choice);
}

static nn_layer *make_layer(const nn_layer_kind *kind, const nn_arg_value *args, nn_shape shape) {
    nn_error err = {0};
    nn_layer *layer = kind->create(args, shape, &err);
    ck_assert_msg(layer != NULL, "%s create failed: %s", kind->name, err.message);
    layer->kind = kind;
    return layer;
}

static void *make_context(const nn_layer *layer, int max_batch) {
    if (!layer->kind->context_create) return NULL;
    nn_error err = {0};
    void *context = layer->kind->context_create(layer, max_batch, &err);
    ck_assert_msg(context != NULL, "%s context: %s", layer->kind->name, err.message);
    return context;
}

static void free_layer(nn_layer *layer, void *context) {
    if (layer->kind->context_free) layer->kind->context_free(context);
    layer->kind->destroy(layer);
}

/* Refusal: create fails with an input error whose message holds every
 * non-NULL needle. */
static void assert_refused(const nn_layer_kind *kind, const nn_arg_value *args, nn_shape shape, const char *a,
                           const char *b) {
    nn_error err = {0};
    nn_layer *layer = kind->create(args, shape, &err);
    ck_assert_msg(layer == NULL, "%s accepted what it should refuse", kind->name);
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    ck_assert_msg(strstr(err.message, a) && (!b || strstr(err.message, b)), "%s: message \"%s\" lacks '%s'/'%s'",
                  kind->name, err.message, a, b ? b : "");
}

static void assert_describes(const nn_layer_kind *kind, const nn_arg_value *args, nn_shape shape,
                             const char *expected) {
    nn_layer *layer = make_layer(kind, args, shape);
    char text[256];
    int length = kind->describe(layer, text, sizeof text);
    ck_assert_str_eq(text, expected);
    ck_assert_int_eq(length, (int)strlen(expected));
    kind->destroy(layer);
}

static void check_gradients(const nn_layer_kind *kind, const nn_arg_value *args, nn_shape shape, bool training,
                            const char *what) {
    gradcheck_result r = gradcheck_layer(kind, args, shape,
                                         (gradcheck_options){.batch = 3, .training = training, .seed = 5});
    ck_assert_msg(r.ok, "%s %s: %s", kind->name, what, r.message);
}

/* ------------------------------------------------------------------ dropout */

static const nn_layer_kind *const dropout_kinds[] = {&nn_dropout_kind, &nn_dropout1d_kind, &nn_dropout2d_kind,
                                                     &nn_alpha_dropout_kind, &nn_feature_alpha_dropout_kind};
enum { DROPOUT_KINDS = sizeof dropout_kinds / sizeof dropout_kinds[0] };

/* The shapes each kind takes: flat, (C, L), (C, H, W) but Dropout1d's. */
static int dropout_shapes(const nn_layer_kind *kind, nn_shape *shapes) {
    shapes[0] = shape1(7);
    shapes[1] = shape2(3, 5);
    shapes[2] = shape3(2, 3, 4);
    return kind == &nn_dropout1d_kind ? 2 : 3;
}

START_TEST(dropout_gradients) {
    const nn_layer_kind *kind = dropout_kinds[_i];
    nn_shape shapes[3];
    int n = dropout_shapes(kind, shapes);
    const double ps[] = {0.3, 0, 1};
    for (int s = 0; s < n; s++)
        for (int p = 0; p < 3; p++) {
            nn_arg_value args[NN_MAX_ARGS];
            nn_arg_defaults(args, kind->args, kind->arg_count);
            set_number(kind, args, "p", ps[p], false);
            check_gradients(kind, args, shapes[s], true, "training");
            check_gradients(kind, args, shapes[s], false, "eval");
        }
}
END_TEST

/* Values sharing one draw per kind and shape: the number of distinct draws
 * per sample and values per draw. */
START_TEST(dropout_channels_share_a_draw) {
    struct { const nn_layer_kind *kind; nn_shape shape; int draws, inner; } cases[] = {
        {&nn_dropout_kind, {3, {2, 3, 4}}, 24, 1},
        {&nn_alpha_dropout_kind, {2, {3, 5, 0}}, 15, 1},
        {&nn_dropout2d_kind, {3, {6, 3, 4}}, 6, 12},
        {&nn_dropout2d_kind, {2, {6, 5, 0}}, 6, 5},
        {&nn_dropout2d_kind, {1, {9, 0, 0}}, 9, 1},     /* torch: a 2-d input drops each value */
        {&nn_feature_alpha_dropout_kind, {3, {6, 2, 3}}, 6, 6},
        {&nn_dropout1d_kind, {2, {6, 5, 0}}, 6, 5},
        {&nn_dropout1d_kind, {1, {9, 0, 0}}, 1, 9},     /* torch: one unbatched (C, L), a row per channel */
    };
    enum { BATCH = 40 };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const nn_layer_kind *kind = cases[c].kind;
        nn_arg_value args[NN_MAX_ARGS];
        nn_arg_defaults(args, kind->args, kind->arg_count);
        nn_layer *layer = make_layer(kind, args, cases[c].shape);
        void *context = make_context(layer, BATCH);
        size_t size = nn_shape_size(cases[c].shape), count = BATCH * size;
        float *in = malloc(count * sizeof *in), *out = malloc(count * sizeof *out);
        for (size_t i = 0; i < count; i++) in[i] = 1.0f + (float)(i % 7) * 0.25f;
        kind->forward(layer, context, out, in, BATCH, &training_mode);
        bool alpha = kind == &nn_alpha_dropout_kind || kind == &nn_feature_alpha_dropout_kind;
        /* Dropped: 0, or AlphaDropout's fill a alpha' + b (negative); kept: a x + b > 0 here. */
        size_t dropped = 0, groups = 0;
        for (size_t g = 0; g < BATCH * (size_t)cases[c].draws; g++, groups++) {
            const float *y = out + g * (size_t)cases[c].inner;
            bool first_dropped = alpha ? y[0] < 0 : y[0] == 0;
            dropped += first_dropped;
            for (int k = 1; k < cases[c].inner; k++)
                ck_assert_msg((alpha ? y[k] < 0 : y[k] == 0) == first_dropped, "%s case %zu: group %zu split",
                              kind->name, c, g);
        }
        double rate = (double)dropped / (double)groups;
        ck_assert_msg(rate > 0.3 && rate < 0.7, "%s case %zu: dropped %.2f of %zu groups", kind->name, c, rate,
                      groups);
        free(in);
        free(out);
        free_layer(layer, context);
    }
}
END_TEST

/* The kept values are x / (1 - p) (the Dropout kinds), or a x + b with
 * AlphaDropout's a and b, and the dropped ones 0 or a alpha' + b. */
START_TEST(dropout_kept_and_dropped_values) {
    const double p = 0.2, alpha = -1.7580993408473766;
    const double a = 1.0 / sqrt((1 - p) * (1 + p * alpha * alpha)), b = -a * alpha * p;
    enum { BATCH = 4, SIZE = 60 };
    for (int k = 0; k < DROPOUT_KINDS; k++) {
        const nn_layer_kind *kind = dropout_kinds[k];
        bool is_alpha = kind == &nn_alpha_dropout_kind || kind == &nn_feature_alpha_dropout_kind;
        nn_arg_value args[NN_MAX_ARGS];
        nn_arg_defaults(args, kind->args, kind->arg_count);
        set_number(kind, args, "p", p, false);
        nn_layer *layer = make_layer(kind, args, shape2(6, 10));
        void *context = make_context(layer, BATCH);
        float in[BATCH * SIZE], out[BATCH * SIZE], din[BATCH * SIZE], ones[BATCH * SIZE];
        for (int i = 0; i < BATCH * SIZE; i++) {
            in[i] = (float)(i % 11) * 0.1f - 0.5f;
            ones[i] = 1;
        }
        kind->forward(layer, context, out, in, BATCH, &training_mode);
        kind->backward(layer, context, din, ones, in, out, BATCH, NULL, &training_mode);
        int kept = 0;
        for (int i = 0; i < BATCH * SIZE; i++) {
            bool dropped = din[i] == 0;
            kept += !dropped;
            double expected = is_alpha ? (dropped ? a * alpha + b : a * in[i] + b)
                                       : (dropped ? 0 : in[i] / (1 - p));
            ck_assert_msg(fabs(out[i] - expected) < 1e-5, "%s [%d]: %g, expected %g", kind->name, i, out[i],
                          expected);
            ck_assert_msg(dropped || fabs(din[i] - (is_alpha ? a : 1 / (1 - p))) < 1e-6, "%s din", kind->name);
        }
        ck_assert_msg(kept > 0 && kept < BATCH * SIZE, "%s kept %d", kind->name, kept);
        kind->forward(layer, context, out, in, BATCH, &eval_mode);
        ck_assert_mem_eq(out, in, sizeof in);
        kind->backward(layer, context, din, ones, in, out, BATCH, NULL, &eval_mode);
        ck_assert_mem_eq(din, ones, sizeof ones);
        free_layer(layer, context);
    }
}
END_TEST

/* AlphaDropout keeps a standard normal input at mean 0 and variance 1
 * (what it is for); plain Dropout does not keep the variance. */
START_TEST(alpha_dropout_keeps_mean_and_variance) {
    enum { BATCH = 200, SIZE = 500, COUNT = BATCH * SIZE };
    float *in = malloc(COUNT * sizeof *in), *out = malloc(COUNT * sizeof *out);
    nn_rng rng;
    nn_rng_seed(&rng, 3);
    for (int i = 0; i < COUNT; i += 2) {
        double u1 = 1.0 - nn_rng_uniform(&rng), u2 = nn_rng_uniform(&rng);
        double r = sqrt(-2 * log(u1));
        in[i] = (float)(r * cos(2 * 3.14159265358979323846 * u2));
        in[i + 1] = (float)(r * sin(2 * 3.14159265358979323846 * u2));
    }
    const nn_layer_kind *kind = &nn_alpha_dropout_kind;
    nn_arg_value args[NN_MAX_ARGS];
    nn_arg_defaults(args, kind->args, kind->arg_count);
    set_number(kind, args, "p", 0.3, false);
    nn_layer *layer = make_layer(kind, args, shape1(SIZE));
    void *context = make_context(layer, BATCH);
    kind->forward(layer, context, out, in, BATCH, &training_mode);
    double sum = 0, squares = 0;
    for (int i = 0; i < COUNT; i++) sum += out[i];
    double mean = sum / COUNT;
    for (int i = 0; i < COUNT; i++) squares += (out[i] - mean) * (out[i] - mean);
    double variance = squares / COUNT;
    ck_assert_msg(fabs(mean) < 0.02 && fabs(variance - 1) < 0.02, "mean %g variance %g", mean, variance);
    free(in);
    free(out);
    free_layer(layer, context);
}
END_TEST

/* p = 1 zeroes everything in every kind (AlphaDropout too: torch multiplies
 * by zero), with zero gradients; p = 0 is the identity. */
START_TEST(dropout_extreme_p) {
    for (int k = 0; k < DROPOUT_KINDS; k++) {
        const nn_layer_kind *kind = dropout_kinds[k];
        for (int p = 0; p <= 1; p++) {
            nn_arg_value args[NN_MAX_ARGS];
            nn_arg_defaults(args, kind->args, kind->arg_count);
            set_number(kind, args, "p", p, true);
            nn_layer *layer = make_layer(kind, args, shape2(3, 4));
            void *context = make_context(layer, 2);
            float in[24], out[24], din[24], dout[24];
            for (int i = 0; i < 24; i++) {
                in[i] = (float)i - 11.5f;
                dout[i] = 1;
            }
            kind->forward(layer, context, out, in, 2, &training_mode);
            kind->backward(layer, context, din, dout, in, out, 2, NULL, &training_mode);
            for (int i = 0; i < 24; i++) {
                ck_assert_msg(out[i] == (p ? 0 : in[i]) && din[i] == (p ? 0 : 1), "%s p=%d [%d]: %g %g",
                              kind->name, p, i, out[i], din[i]);
            }
            free_layer(layer, context);
        }
    }
}
END_TEST

START_TEST(dropout_refusals) {
    for (int k = 0; k < DROPOUT_KINDS; k++) {
        const nn_layer_kind *kind = dropout_kinds[k];
        const double bad[] = {-0.1, 1.5, NAN};
        for (int i = 0; i < 3; i++) {
            nn_arg_value args[NN_MAX_ARGS];
            nn_arg_defaults(args, kind->args, kind->arg_count);
            set_number(kind, args, "p", bad[i], false);
            assert_refused(kind, args, shape1(4), kind->name, "between 0 and 1");
        }
    }
    nn_arg_value args[NN_MAX_ARGS];
    nn_arg_defaults(args, nn_dropout1d_kind.args, nn_dropout1d_kind.arg_count);
    assert_refused(&nn_dropout1d_kind, args, shape3(2, 3, 4), "(2, 3, 4)", "Dropout2d");
}
END_TEST

/* -------------------------------------------------------------- the rest */

START_TEST(softmax_without_dim) {
    const nn_layer_kind *kinds[] = {&nn_softmax_kind, &nn_log_softmax_kind};
    for (int k = 0; k < 2; k++) {
        const nn_layer_kind *kind = kinds[k];
        nn_shape shapes[] = {shape1(6), shape3(4, 2, 3)};
        for (int s = 0; s < 2; s++) {
            for (int null = 0; null < 2; null++) {
                nn_arg_value none[NN_MAX_ARGS], one[NN_MAX_ARGS];
                nn_arg_defaults(none, kind->args, kind->arg_count);
                if (null) set_null(kind, none, "dim");
                nn_arg_defaults(one, kind->args, kind->arg_count);
                set_number(kind, one, "dim", 1, true);
                /* torch's implicit dim is 1 for these: the same output as dim=1. */
                nn_layer *a = make_layer(kind, none, shapes[s]), *b = make_layer(kind, one, shapes[s]);
                float in[2 * 24], out_a[2 * 24], out_b[2 * 24];
                size_t count = 2 * nn_shape_size(shapes[s]);
                for (size_t i = 0; i < count; i++) in[i] = sinf((float)i);
                kind->forward(a, NULL, out_a, in, 2, &eval_mode);
                kind->forward(b, NULL, out_b, in, 2, &eval_mode);
                ck_assert_mem_eq(out_a, out_b, count * sizeof *out_a);
                kind->destroy(a);
                kind->destroy(b);
                check_gradients(kind, none, shapes[s], false, "dim=None");
                char expected[64];
                snprintf(expected, sizeof expected, "%s(dim=None)", kind->name);
                assert_describes(kind, none, shapes[s], expected);
            }
        }
        nn_arg_value none[NN_MAX_ARGS];
        nn_arg_defaults(none, kind->args, kind->arg_count);
        assert_refused(kind, none, shape2(4, 5), "across the batch", "dim explicitly");
        set_null(kind, none, "dim");
        assert_refused(kind, none, shape2(4, 5), "(4, 5)", "dim=None");
        /* Explicit dims keep working on (C, L), on every axis, negative too. */
        const int dims[] = {1, 2, -1, -2};
        for (int d = 0; d < 4; d++) {
            nn_arg_value args[NN_MAX_ARGS];
            nn_arg_defaults(args, kind->args, kind->arg_count);
            set_number(kind, args, "dim", dims[d], true);
            check_gradients(kind, args, shape2(4, 5), false, "explicit dim");
        }
        nn_arg_value batch_dim[NN_MAX_ARGS];
        nn_arg_defaults(batch_dim, kind->args, kind->arg_count);
        set_number(kind, batch_dim, "dim", 0, true);
        assert_refused(kind, batch_dim, shape2(4, 5), "batch", "dim=0");
    }
}
END_TEST

START_TEST(flatten_every_rank) {
    struct { nn_shape in; int start, end; nn_shape out; } cases[] = {
        {{1, {7, 0, 0}}, 1, -1, {1, {7, 0, 0}}},
        {{2, {3, 5, 0}}, 1, -1, {1, {15, 0, 0}}},
        {{2, {3, 5, 0}}, 2, 2, {2, {3, 5, 0}}},
        {{3, {2, 3, 5}}, 2, 3, {2, {2, 15, 0}}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        nn_arg_value args[NN_MAX_ARGS];
        nn_arg_defaults(args, nn_flatten_kind.args, nn_flatten_kind.arg_count);
        set_number(&nn_flatten_kind, args, "start_dim", cases[c].start, true);
        set_number(&nn_flatten_kind, args, "end_dim", cases[c].end, true);
        nn_layer *layer = make_layer(&nn_flatten_kind, args, cases[c].in);
        ck_assert_msg(nn_shape_equal(layer->out_shape, cases[c].out), "case %zu", c);
        nn_flatten_kind.destroy(layer);
        check_gradients(&nn_flatten_kind, args, cases[c].in, false, "");
    }
}
END_TEST

START_TEST(unflatten_shapes_and_refusals) {
    const nn_layer_kind *kind = &nn_unflatten_kind;
    struct { nn_shape in; int dim, n; double sizes[3]; nn_shape out; const char *repr; } cases[] = {
        {{1, {12, 0, 0}}, 1, 2, {3, 4}, {2, {3, 4, 0}}, "Unflatten(dim=1, unflattened_size=(3, 4))"},
        {{1, {12, 0, 0}}, -1, 3, {2, -1, 3}, {3, {2, 2, 3}}, "Unflatten(dim=-1, unflattened_size=(2, -1, 3))"},
        {{2, {3, 10, 0}}, 2, 2, {5, 2}, {3, {3, 5, 2}}, "Unflatten(dim=2, unflattened_size=(5, 2))"},
        {{2, {6, 5, 0}}, -2, 2, {-1, 3}, {3, {2, 3, 5}}, "Unflatten(dim=-2, unflattened_size=(-1, 3))"},
        {{1, {5, 0, 0}}, 1, 1, {5}, {1, {5, 0, 0}}, "Unflatten(dim=1, unflattened_size=(5,))"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        nn_arg_value args[NN_MAX_ARGS];
        nn_arg_defaults(args, kind->args, kind->arg_count);
        set_number(kind, args, "dim", cases[c].dim, true);
        set_list(kind, args, "unflattened_size", cases[c].n, cases[c].sizes, true);
        nn_layer *layer = make_layer(kind, args, cases[c].in);
        ck_assert_msg(nn_shape_equal(layer->out_shape, cases[c].out), "case %zu", c);
        kind->destroy(layer);
        assert_describes(kind, args, cases[c].in, cases[c].repr);
        check_gradients(kind, args, cases[c].in, false, "");
    }
    struct { nn_shape in; int dim, n; double sizes[4]; const char *a, *b; } bad[] = {
        {{1, {12, 0, 0}}, 0, 2, {3, 4}, "batch", "dim=0"},
        {{1, {12, 0, 0}}, 2, 2, {3, 4}, "out of range", "(12,)"},
        {{1, {12, 0, 0}}, 1, 2, {5, 2}, "(5, 2)", "12"},
        {{1, {12, 0, 0}}, 1, 2, {5, -1}, "(5, -1)", "multiply"},
        {{1, {12, 0, 0}}, 1, 2, {-1, -1}, "more than once", NULL},
        {{1, {12, 0, 0}}, 1, 2, {0, 12}, "positive", "unflattened_size[0]"},
        {{1, {12, 0, 0}}, 1, 2, {-3, -4}, "positive", NULL},
        {{1, {12, 0, 0}}, 1, 0, {0}, "empty", NULL},
        {{2, {3, 12, 0}}, 2, 3, {2, 2, 3}, "rank 4", "at most 3"},
        {{1, {24, 0, 0}}, 1, 4, {2, 2, 2, 3}, "rank 4", NULL},
        {{1, {12, 0, 0}}, 1, 2, {2147483647, 2147483647}, "multiply", NULL},
    };
    for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
        nn_arg_value args[NN_MAX_ARGS];
        nn_arg_defaults(args, kind->args, kind->arg_count);
        set_number(kind, args, "dim", bad[c].dim, true);
        set_list(kind, args, "unflattened_size", bad[c].n, bad[c].sizes, true);
        assert_refused(kind, args, bad[c].in, bad[c].a, bad[c].b);
    }
}
END_TEST

/* Runs one layer on a single sample in eval mode. */
static void run_one(nn_layer *layer, const float *in, float *out) {
    void *context = make_context(layer, 1);
    layer->kind->forward(layer, context, out, in, 1, &eval_mode);
    if (layer->kind->context_free) layer->kind->context_free(context);
}

static nn_layer *pad_layer(const nn_layer_kind *kind, int n, const double *pads, double value, nn_shape shape) {
    nn_arg_value args[NN_MAX_ARGS];
    nn_arg_defaults(args, kind->args, kind->arg_count);
    if (n == 1) set_number(kind, args, "padding", pads[0], true);
    else set_list(kind, args, "padding", n, pads, true);
    if (kind->arg_count > 1) set_number(kind, args, "value", value, false);
    return make_layer(kind, args, shape);
}

START_TEST(pad_values) {
    /* x = [[1, 2, 3], [4, 5, 6]] as one channel. */
    const float x[6] = {1, 2, 3, 4, 5, 6};
    float y[64];
    struct { const nn_layer_kind *kind; int n; double pads[6]; nn_shape in, out; float expected[40]; } cases[] = {
        {&nn_zero_pad2d_kind, 4, {1, 0, 0, 1}, {3, {1, 2, 3}}, {3, {1, 3, 4}}, {0, 1, 2, 3, 0, 4, 5, 6, 0, 0, 0, 0}},
        {&nn_constant_pad2d_kind, 2, {0, 1}, {3, {1, 2, 3}}, {3, {1, 2, 4}}, {1, 2, 3, 9, 4, 5, 6, 9}},
        {&nn_zero_pad2d_kind, 4, {-1, 1, 0, -1}, {2, {2, 3, 0}}, {2, {1, 3, 0}}, {2, 3, 0}},
        {&nn_reflection_pad2d_kind, 4, {2, 1, 1, 0}, {3, {1, 2, 3}}, {3, {1, 3, 6}},
         {6, 5, 4, 5, 6, 5, 3, 2, 1, 2, 3, 2, 6, 5, 4, 5, 6, 5}},
        {&nn_replication_pad2d_kind, 4, {1, 2, 0, 1}, {2, {2, 3, 0}}, {2, {3, 6, 0}},
         {1, 1, 2, 3, 3, 3, 4, 4, 5, 6, 6, 6, 4, 4, 5, 6, 6, 6}},
        {&nn_reflection_pad2d_kind, 4, {-1, 1, 0, 0}, {2, {2, 3, 0}}, {2, {2, 3, 0}}, {2, 3, 2, 5, 6, 5}},
        {&nn_constant_pad1d_kind, 2, {2, -1}, {2, {2, 3, 0}}, {2, {2, 4, 0}}, {9, 9, 1, 2, 9, 9, 4, 5}},
        {&nn_reflection_pad1d_kind, 2, {2, 1}, {1, {3, 0, 0}}, {1, {6, 0, 0}}, {3, 2, 1, 2, 3, 2}},
        {&nn_replication_pad1d_kind, 1, {2}, {2, {2, 3, 0}}, {2, {2, 7, 0}},
         {1, 1, 1, 2, 3, 3, 3, 4, 4, 4, 5, 6, 6, 6}},
        /* Six numbers pad the channels too. */
        {&nn_constant_pad2d_kind, 6, {0, 0, 0, 0, 1, 0}, {3, {1, 2, 3}}, {3, {2, 2, 3}}, {9, 9, 9, 9, 9, 9, 1, 2, 3, 4, 5, 6}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        nn_layer *layer = pad_layer(cases[c].kind, cases[c].n, cases[c].pads, 9, cases[c].in);
        ck_assert_msg(nn_shape_equal(layer->out_shape, cases[c].out), "case %zu shape", c);
        run_one(layer, x, y);
        size_t n = nn_shape_size(cases[c].out);
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(y[i] == cases[c].expected[i], "case %zu (%s) [%zu]: %g, expected %g", c,
                          cases[c].kind->name, i, y[i], cases[c].expected[i]);
        layer->kind->destroy(layer);
    }
}
END_TEST

START_TEST(pad_gradients) {
    struct { const nn_layer_kind *kind; int n; double pads[6]; nn_shape in; } cases[] = {
        {&nn_zero_pad2d_kind, 1, {2}, {3, {2, 3, 4}}},
        {&nn_zero_pad2d_kind, 4, {1, 0, 2, 3}, {2, {3, 5, 0}}},
        {&nn_constant_pad2d_kind, 4, {-1, 2, 1, -2}, {3, {2, 4, 5}}},
        {&nn_constant_pad2d_kind, 6, {1, 1, 0, 1, 1, 2}, {3, {2, 3, 3}}},
        {&nn_reflection_pad2d_kind, 4, {2, 1, 3, 0}, {3, {2, 4, 3}}},
        {&nn_reflection_pad2d_kind, 4, {-1, 2, 1, -1}, {2, {4, 5, 0}}},
        {&nn_replication_pad2d_kind, 4, {3, 1, 0, 4}, {3, {2, 2, 3}}},
        {&nn_replication_pad2d_kind, 1, {-1}, {3, {1, 4, 4}}},
        {&nn_constant_pad1d_kind, 2, {3, -1}, {1, {5, 0, 0}}},
        {&nn_reflection_pad1d_kind, 2, {2, 3}, {2, {2, 4, 0}}},
        {&nn_replication_pad1d_kind, 1, {4}, {1, {3, 0, 0}}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const nn_layer_kind *kind = cases[c].kind;
        nn_arg_value args[NN_MAX_ARGS];
        nn_arg_defaults(args, kind->args, kind->arg_count);
        if (cases[c].n == 1) set_number(kind, args, "padding", cases[c].pads[0], true);
        else set_list(kind, args, "padding", cases[c].n, cases[c].pads, true);
        if (kind->arg_count > 1) set_number(kind, args, "value", 0.5, false);
        check_gradients(kind, args, cases[c].in, false, "");
    }
}
END_TEST

START_TEST(pad_refusals_and_repr) {
    struct { const nn_layer_kind *kind; int n; double pads[6]; nn_shape in; const char *a, *b; } bad[] = {
        {&nn_zero_pad2d_kind, 1, {1}, {1, {5, 0, 0}}, "batch", "(5,)"},
        {&nn_zero_pad2d_kind, 3, {1, 1, 1}, {3, {1, 3, 3}}, "3 numbers", NULL},
        {&nn_zero_pad2d_kind, 6, {1, 1, 1, 1, 1, 1}, {2, {3, 3, 0}}, "batch", NULL},
        {&nn_zero_pad2d_kind, 4, {-2, -1, 0, 0}, {3, {1, 3, 3}}, "to 0", "at least 1"},
        {&nn_zero_pad2d_kind, 4, {0, 0, 1 << 30, 0}, {3, {1, 3, 3}}, "2^28", NULL},
        {&nn_reflection_pad2d_kind, 1, {3}, {3, {1, 3, 4}}, "less than", "size 3"},
        {&nn_reflection_pad2d_kind, 2, {1, 1}, {3, {1, 3, 4}}, "2 numbers", "4 numbers"},
        {&nn_replication_pad1d_kind, 1, {1}, {3, {1, 3, 4}}, "rank 1 or 2", NULL},
    };
    for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
        const nn_layer_kind *kind = bad[c].kind;
        nn_arg_value args[NN_MAX_ARGS];
        nn_arg_defaults(args, kind->args, kind->arg_count);
        if (bad[c].n == 1) set_number(kind, args, "padding", bad[c].pads[0], true);
        else set_list(kind, args, "padding", bad[c].n, bad[c].pads, true);
        assert_refused(kind, args, bad[c].in, bad[c].a, bad[c].b);
    }
    /* Strings from torch 1.13's print(nn.X(...)). */
    double p4[] = {1, 1, 2, 0}, p2[] = {1, 2};
    nn_layer *layer = pad_layer(&nn_zero_pad2d_kind, 4, p4, 0, shape3(1, 3, 3));
    char text[128];
    layer->kind->describe(layer, text, sizeof text);
    ck_assert_str_eq(text, "ZeroPad2d((1, 1, 2, 0))");
    layer->kind->destroy(layer);
    struct { const nn_layer_kind *kind; int n; const double *pads; double value; bool integer; const char *repr; } reprs[] = {
        {&nn_zero_pad2d_kind, 1, p4, 0, true, "ZeroPad2d((1, 1, 1, 1))"},
        {&nn_zero_pad2d_kind, 2, p2, 0, true, "ZeroPad2d((1, 2))"},
        {&nn_constant_pad2d_kind, 1, p4, 3.5, false, "ConstantPad2d(padding=(1, 1, 1, 1), value=3.5)"},
        {&nn_constant_pad2d_kind, 4, p4, 2, true, "ConstantPad2d(padding=(1, 1, 2, 0), value=2)"},
        {&nn_constant_pad2d_kind, 4, p4, 0, false, "ConstantPad2d(padding=(1, 1, 2, 0), value=0.0)"},
        {&nn_reflection_pad2d_kind, 1, p4, 0, true, "ReflectionPad2d((1, 1, 1, 1))"},
        {&nn_replication_pad2d_kind, 4, p4, 0, true, "ReplicationPad2d((1, 1, 2, 0))"},
        {&nn_constant_pad1d_kind, 1, p4, 0.5, false, "ConstantPad1d(padding=(1, 1), value=0.5)"},
        {&nn_reflection_pad1d_kind, 2, p2, 0, true, "ReflectionPad1d((1, 2))"},
        {&nn_replication_pad1d_kind, 1, p4, 0, true, "ReplicationPad1d((1, 1))"},
    };
    for (size_t c = 0; c < sizeof reprs / sizeof reprs[0]; c++) {
        const nn_layer_kind *kind = reprs[c].kind;
        nn_arg_value args[NN_MAX_ARGS];
        nn_arg_defaults(args, kind->args, kind->arg_count);
        if (reprs[c].n == 1) set_number(kind, args, "padding", reprs[c].pads[0], true);
        else set_list(kind, args, "padding", reprs[c].n, reprs[c].pads, true);
        if (kind->arg_count > 1) set_number(kind, args, "value", reprs[c].value, reprs[c].integer);
        bool one_d = strstr(kind->name, "1d") != NULL;
        assert_describes(kind, args, one_d ? shape2(4, 4) : shape3(1, 4, 4), reprs[c].repr);
    }
}
END_TEST

/* Upsample arguments: size or scale (one number, or two when count is 2),
 * mode, align_corners (-1: not given). */
static void upsample_args(nn_arg_value *args, bool by_size, int count, double a, double b, const char *mode,
                          int align) {
    const nn_layer_kind *kind = &nn_upsample_kind;
    nn_arg_defaults(args, kind->args, kind->arg_count);
    const char *name = by_size ? "size" : "scale_factor";
    double v[2] = {a, b};
    if (count == 1) set_number(kind, args, name, a, by_size);
    else set_list(kind, args, name, 2, v, by_size);
    if (mode) set_choice(kind, args, "mode", mode);
    if (align >= 0) set_number(kind, args, "align_corners", align, true);
}

START_TEST(upsample_values) {
    nn_arg_value args[NN_MAX_ARGS];
    const float x[4] = {1, 2, 3, 4};
    float y[64];
    /* nearest 2x on [[1, 2], [3, 4]]. */
    upsample_args(args, false, 1, 2, 0, NULL, -1);
    nn_layer *layer = make_layer(&nn_upsample_kind, args, shape3(1, 2, 2));
    run_one(layer, x, y);
    const float nearest[16] = {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4};
    ck_assert_mem_eq(y, nearest, sizeof nearest);
    nn_upsample_kind.destroy(layer);
    /* bilinear, align_corners: 2 -> 3 puts the mean between corners. */
    upsample_args(args, true, 1, 3, 0, "bilinear", 1);
    layer = make_layer(&nn_upsample_kind, args, shape3(1, 2, 2));
    run_one(layer, x, y);
    const float aligned[9] = {1, 1.5f, 2, 2, 2.5f, 3, 3, 3.5f, 4};
    for (int i = 0; i < 9; i++) ck_assert_msg(fabsf(y[i] - aligned[i]) < 1e-6f, "aligned [%d] %g", i, y[i]);
    nn_upsample_kind.destroy(layer);
    /* bilinear without align_corners, 2 -> 4 along a line: torch gives 1, 1.25, 1.75, 2. */
    upsample_args(args, false, 1, 2, 0, "linear", -1);
    layer = make_layer(&nn_upsample_kind, args, shape2(1, 2));
    run_one(layer, x, y);
    const float linear[4] = {1, 1.25f, 1.75f, 2};
    for (int i = 0; i < 4; i++) ck_assert_msg(fabsf(y[i] - linear[i]) < 1e-6f, "linear [%d] %g", i, y[i]);
    nn_upsample_kind.destroy(layer);
    /* area 4 -> 2 averages pairs. */
    upsample_args(args, true, 1, 2, 0, "area", -1);
    layer = make_layer(&nn_upsample_kind, args, shape2(1, 4));
    run_one(layer, x, y);
    ck_assert(fabsf(y[0] - 1.5f) < 1e-6f && fabsf(y[1] - 3.5f) < 1e-6f);
    nn_upsample_kind.destroy(layer);
    /* nearest with scale 1.5 on 4: torch's step is 1/1.5, output floor(6): 0 0 1 2 2 3. */
    upsample_args(args, false, 1, 1.5, 0, "nearest", -1);
    layer = make_layer(&nn_upsample_kind, args, shape2(1, 4));
    ck_assert_int_eq(layer->out_shape.dims[1], 6);
    run_one(layer, x, y);
    const float stepped[6] = {1, 1, 2, 3, 3, 4};
    ck_assert_mem_eq(y, stepped, sizeof stepped);
    nn_upsample_kind.destroy(layer);
    /* nearest-exact on 2 -> 3: floor((j + 0.5) 2/3): 0 1 1. */
    upsample_args(args, true, 1, 3, 0, "nearest-exact", -1);
    layer = make_layer(&nn_upsample_kind, args, shape2(1, 2));
    run_one(layer, x, y);
    const float exact[3] = {1, 2, 2};
    ck_assert_mem_eq(y, exact, sizeof exact);
    nn_upsample_kind.destroy(layer);
    /* bicubic keeps a constant image constant (the weights sum to 1). */
    const float ones[6] = {1, 1, 1, 1, 1, 1};
    upsample_args(args, true, 2, 5, 4, "bicubic", 0);
    layer = make_layer(&nn_upsample_kind, args, shape3(1, 2, 3));
    run_one(layer, ones, y);
    for (int i = 0; i < 20; i++) ck_assert_msg(fabsf(y[i] - 1) < 1e-6f, "bicubic [%d] %g", i, y[i]);
    nn_upsample_kind.destroy(layer);
}
END_TEST

START_TEST(upsample_gradients) {
    struct { bool by_size; int count; double a, b; const char *mode; int align; nn_shape in; } cases[] = {
        {false, 1, 2, 0, "nearest", -1, {3, {2, 3, 4}}},
        {false, 2, 1.5, 2.5, "nearest", -1, {3, {2, 3, 2}}},
        {true, 2, 5, 3, "nearest", -1, {3, {1, 3, 4}}},
        {true, 1, 7, 0, "nearest-exact", -1, {2, {2, 3, 0}}},
        {false, 1, 1.7, 0, "linear", -1, {2, {2, 5, 0}}},
        {true, 1, 4, 0, "linear", 1, {2, {2, 5, 0}}},
        {false, 2, 2, 3, "bilinear", -1, {3, {2, 3, 2}}},
        {true, 2, 5, 4, "bilinear", 1, {3, {1, 3, 4}}},
        {true, 2, 2, 3, "bilinear", 0, {3, {1, 4, 5}}},
        {false, 1, 2.5, 0, "bicubic", -1, {3, {2, 3, 3}}},
        {true, 2, 4, 7, "bicubic", 1, {3, {1, 3, 4}}},
        {true, 2, 3, 2, "area", -1, {3, {2, 5, 7}}},
        {false, 1, 0.6, 0, "area", -1, {2, {2, 7, 0}}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        nn_arg_value args[NN_MAX_ARGS];
        upsample_args(args, cases[c].by_size, cases[c].count, cases[c].a, cases[c].b, cases[c].mode,
                      cases[c].align);
        char what[64];
        snprintf(what, sizeof what, "case %zu (%s)", c, cases[c].mode);
        check_gradients(&nn_upsample_kind, args, cases[c].in, false, what);
    }
    nn_arg_value args[NN_MAX_ARGS];
    nn_arg_defaults(args, nn_upsampling_bilinear2d_kind.args, nn_upsampling_bilinear2d_kind.arg_count);
    set_number(&nn_upsampling_bilinear2d_kind, args, "scale_factor", 2, true);
    check_gradients(&nn_upsampling_bilinear2d_kind, args, shape3(2, 3, 2), false, "");
    check_gradients(&nn_upsampling_nearest2d_kind, args, shape3(2, 3, 2), false, "");
}
END_TEST

START_TEST(upsample_refusals_and_repr) {
    struct { bool by_size; int count; double a, b; const char *mode; int align; nn_shape in; const char *x, *y; } bad[] = {
        {false, 1, 2, 0, NULL, -1, {1, {5, 0, 0}}, "(5,)", "(C, L)"},
        {false, 1, 2, 0, "bilinear", -1, {2, {2, 5, 0}}, "'bilinear'", "(C, H, W)"},
        {false, 1, 2, 0, "linear", -1, {3, {2, 5, 5}}, "'linear'", "(C, L)"},
        {false, 1, 2, 0, "trilinear", -1, {3, {2, 5, 5}}, "'trilinear'", "(C, D, H, W)"},
        {false, 1, 2, 0, "nearest", 1, {3, {2, 5, 5}}, "align_corners", "'nearest'"},
        {false, 1, 0, 0, NULL, -1, {3, {2, 5, 5}}, "scale_factor 0", "positive"},
        {false, 1, -2, 0, NULL, -1, {3, {2, 5, 5}}, "positive", NULL},
        {false, 1, 0.1, 0, NULL, -1, {3, {2, 5, 5}}, "output size of 0", NULL},
        {false, 1, 1e30, 0, NULL, -1, {3, {2, 5, 5}}, "2^28", NULL},
        {true, 1, 0, 0, NULL, -1, {3, {2, 5, 5}}, "size 0", NULL},
        {true, 2, 20000, 20000, NULL, -1, {3, {2, 5, 5}}, "2^28", NULL},
        {true, 2, 3, 3, NULL, -1, {2, {2, 5, 0}}, "2 numbers", "1 spatial dim"},
    };
    for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
        nn_arg_value args[NN_MAX_ARGS];
        upsample_args(args, bad[c].by_size, bad[c].count, bad[c].a, bad[c].b, bad[c].mode, bad[c].align);
        assert_refused(&nn_upsample_kind, args, bad[c].in, bad[c].x, bad[c].y);
    }
    nn_arg_value args[NN_MAX_ARGS];
    nn_arg_defaults(args, nn_upsample_kind.args, nn_upsample_kind.arg_count);
    assert_refused(&nn_upsample_kind, args, shape3(1, 2, 2), "exactly one", "neither");
    set_number(&nn_upsample_kind, args, "size", 4, true);
    set_number(&nn_upsample_kind, args, "scale_factor", 2, true);
    assert_refused(&nn_upsample_kind, args, shape3(1, 2, 2), "exactly one", "both");
    set_null(&nn_upsample_kind, args, "scale_factor");
    set_number(&nn_upsample_kind, args, "recompute_scale_factor", 1, true);
    assert_refused(&nn_upsample_kind, args, shape3(1, 2, 2), "recompute_scale_factor", "size");
    /* Strings from torch 1.13. */
    struct { bool by_size; int count; double a, b; const char *mode; int align; const char *repr; } reprs[] = {
        {false, 1, 2, 0, NULL, -1, "Upsample(scale_factor=2.0, mode=nearest)"},
        {false, 1, 2.5, 0, "bilinear", 1, "Upsample(scale_factor=2.5, mode=bilinear)"},
        {false, 2, 2, 3, "bicubic", -1, "Upsample(scale_factor=(2.0, 3.0), mode=bicubic)"},
        {true, 1, 4, 0, "area", -1, "Upsample(size=4, mode=area)"},
        {true, 2, 4, 5, "nearest-exact", -1, "Upsample(size=(4, 5), mode=nearest-exact)"},
    };
    for (size_t c = 0; c < sizeof reprs / sizeof reprs[0]; c++) {
        upsample_args(args, reprs[c].by_size, reprs[c].count, reprs[c].a, reprs[c].b, reprs[c].mode,
                      reprs[c].align);
        assert_describes(&nn_upsample_kind, args, shape3(1, 3, 3), reprs[c].repr);
    }
    nn_arg_defaults(args, nn_upsampling_nearest2d_kind.args, nn_upsampling_nearest2d_kind.arg_count);
    set_number(&nn_upsampling_nearest2d_kind, args, "scale_factor", 2, true);
    assert_describes(&nn_upsampling_nearest2d_kind, args, shape3(1, 3, 3),
                     "UpsamplingNearest2d(scale_factor=2.0, mode=nearest)");
    double size[2] = {3, 4};
    nn_arg_defaults(args, nn_upsampling_bilinear2d_kind.args, nn_upsampling_bilinear2d_kind.arg_count);
    set_list(&nn_upsampling_bilinear2d_kind, args, "size", 2, size, true);
    assert_describes(&nn_upsampling_bilinear2d_kind, args, shape3(1, 3, 3),
                     "UpsamplingBilinear2d(size=(3, 4), mode=bilinear)");
}
END_TEST

START_TEST(dropout_repr) {
    for (int k = 0; k < DROPOUT_KINDS; k++) {
        const nn_layer_kind *kind = dropout_kinds[k];
        nn_arg_value args[NN_MAX_ARGS];
        nn_arg_defaults(args, kind->args, kind->arg_count);
        char expected[96];
        snprintf(expected, sizeof expected, "%s(p=0.5, inplace=False)", kind->name);
        assert_describes(kind, args, shape2(2, 3), expected);
        set_number(kind, args, "p", 0.25, false);
        set_number(kind, args, "inplace", 1, true);
        snprintf(expected, sizeof expected, "%s(p=0.25, inplace=True)", kind->name);
        assert_describes(kind, args, shape2(2, 3), expected);
        set_number(kind, args, "p", 1, true);
        snprintf(expected, sizeof expected, "%s(p=1, inplace=True)", kind->name);
        assert_describes(kind, args, shape2(2, 3), expected);
    }
}
END_TEST

/* ------------------------------------------------------ batch-split replicas */

/* A batch of 6 in one forward, or in slices run by separate contexts (each
 * slice with the keys of its rows, out of order, all forwards before any
 * backward), gives the same outputs and input gradients bit for bit. */
static void assert_split_invariant(const nn_layer_kind *kind, const nn_arg_value *args, nn_shape shape) {
    enum { BATCH = 6 };
    const uint64_t keys[BATCH] = {0x9e3779b9ULL, 41, 42, 7, 1ULL << 63, 3};
    const int starts[3] = {5, 0, 2}, counts[3] = {1, 2, 3};
    nn_layer *layer = make_layer(kind, args, shape);
    size_t in_size = nn_shape_size(shape), out_size = nn_shape_size(layer->out_shape);
    float *in = malloc(BATCH * in_size * sizeof *in), *dout = malloc(BATCH * out_size * sizeof *dout);
    float *whole = malloc(BATCH * out_size * sizeof *whole), *parts = malloc(BATCH * out_size * sizeof *parts);
    float *whole_din = malloc(BATCH * in_size * sizeof *whole_din);
    float *parts_din = malloc(BATCH * in_size * sizeof *parts_din);
    nn_rng rng;
    nn_rng_seed(&rng, 9);
    for (size_t i = 0; i < BATCH * in_size; i++) in[i] = nn_rng_uniform_range(&rng, -1, 1);
    for (size_t i = 0; i < BATCH * out_size; i++) dout[i] = nn_rng_uniform_range(&rng, -1, 1);
    const nn_mode whole_mode = {.training = true, .sample_keys = keys, .layer_index = 3};
    void *context = make_context(layer, BATCH);
    kind->forward(layer, context, whole, in, BATCH, &whole_mode);
    kind->backward(layer, context, whole_din, dout, in, whole, BATCH, NULL, &whole_mode);
    void *replicas[3];
    nn_mode modes[3];
    for (int r = 0; r < 3; r++) {
        replicas[r] = make_context(layer, counts[r]);
        modes[r] = (nn_mode){.training = true, .sample_keys = keys + starts[r], .layer_index = 3};
        kind->forward(layer, replicas[r], parts + starts[r] * out_size, in + starts[r] * in_size, counts[r],
                      &modes[r]);
    }
    for (int r = 0; r < 3; r++)
        kind->backward(layer, replicas[r], parts_din + starts[r] * in_size, dout + starts[r] * out_size,
                       in + starts[r] * in_size, parts + starts[r] * out_size, counts[r], NULL, &modes[r]);
    ck_assert_msg(!memcmp(whole, parts, BATCH * out_size * sizeof *whole), "%s: outputs differ", kind->name);
    ck_assert_msg(!memcmp(whole_din, parts_din, BATCH * in_size * sizeof *whole_din), "%s: gradients differ",
                  kind->name);
    for (int r = 0; r < 3; r++)
        if (kind->context_free) kind->context_free(replicas[r]);
    free(in);
    free(dout);
    free(whole);
    free(parts);
    free(whole_din);
    free(parts_din);
    free_layer(layer, context);
}

START_TEST(splits_give_the_same_batch) {
    for (int k = 0; k < DROPOUT_KINDS; k++) {
        nn_arg_value args[NN_MAX_ARGS];
        nn_arg_defaults(args, dropout_kinds[k]->args, dropout_kinds[k]->arg_count);
        assert_split_invariant(dropout_kinds[k], args, shape2(4, 6));
        assert_split_invariant(dropout_kinds[k], args, shape1(11));
    }
    nn_arg_value args[NN_MAX_ARGS];
    double pads[4] = {1, -1, 2, 3};
    nn_arg_defaults(args, nn_reflection_pad2d_kind.args, nn_reflection_pad2d_kind.arg_count);
    set_list(&nn_reflection_pad2d_kind, args, "padding", 4, pads, true);
    assert_split_invariant(&nn_reflection_pad2d_kind, args, shape3(2, 4, 5));
    upsample_args(args, false, 2, 1.5, 2, "bicubic", -1);
    assert_split_invariant(&nn_upsample_kind, args, shape3(3, 4, 5));
    upsample_args(args, true, 1, 9, 0, "linear", 1);
    assert_split_invariant(&nn_upsample_kind, args, shape2(3, 4));
    double sizes[2] = {2, -1};
    nn_arg_defaults(args, nn_unflatten_kind.args, nn_unflatten_kind.arg_count);
    set_number(&nn_unflatten_kind, args, "dim", 1, true);
    set_list(&nn_unflatten_kind, args, "unflattened_size", 2, sizes, true);
    assert_split_invariant(&nn_unflatten_kind, args, shape1(8));
}
END_TEST

START_TEST(kinds_are_registered) {
    const char *names[] = {"Dropout", "Dropout1d", "Dropout2d", "AlphaDropout", "FeatureAlphaDropout", "Unflatten",
                           "ZeroPad2d", "ConstantPad2d", "ReflectionPad2d", "ReplicationPad2d", "ConstantPad1d",
                           "ReflectionPad1d", "ReplicationPad1d", "Upsample", "UpsamplingNearest2d",
                           "UpsamplingBilinear2d"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const nn_layer_kind *kind = nn_layer_kind_find(names[i]);
        ck_assert_msg(kind && !strcmp(kind->name, names[i]), "%s is not registered", names[i]);
    }
}
END_TEST

int main(void) {
    Suite *suite = suite_create("shape_layers");
    TCase *dropout = tcase_create("dropout");
    tcase_add_loop_test(dropout, dropout_gradients, 0, DROPOUT_KINDS);
    tcase_add_test(dropout, dropout_channels_share_a_draw);
    tcase_add_test(dropout, dropout_kept_and_dropped_values);
    tcase_add_test(dropout, alpha_dropout_keeps_mean_and_variance);
    tcase_add_test(dropout, dropout_extreme_p);
    tcase_add_test(dropout, dropout_refusals);
    tcase_add_test(dropout, dropout_repr);
    suite_add_tcase(suite, dropout);
    TCase *shape = tcase_create("shape");
    tcase_add_test(shape, softmax_without_dim);
    tcase_add_test(shape, flatten_every_rank);
    tcase_add_test(shape, unflatten_shapes_and_refusals);
    tcase_add_test(shape, pad_values);
    tcase_add_test(shape, pad_gradients);
    tcase_add_test(shape, pad_refusals_and_repr);
    tcase_add_test(shape, upsample_values);
    tcase_add_test(shape, upsample_gradients);
    tcase_add_test(shape, upsample_refusals_and_repr);
    tcase_add_test(shape, splits_give_the_same_batch);
    tcase_add_test(shape, kinds_are_registered);
    suite_add_tcase(suite, shape);
    return testutil_run(suite);
}
