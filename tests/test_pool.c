/* Pooling: MaxPool1d/2d, AvgPool1d/2d, AdaptiveAvgPool2d, AdaptiveMaxPool2d.
 * Gradients by finite differences; forward and backward against direct
 * pooling written here from torch's definitions (taps of a dilated window
 * over an explicitly padded input, torch's divisors); batch splits and
 * replica contexts; every error; PyTorch's repr. */
#include <check.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layers.h"
#include "gradcheck.h"
#include "testutil.h"

typedef struct pool_case {
    nn_shape in_shape;                    /* rank 2: the 1d kinds, which read only [1] below */
    int kernel[2], stride[2], padding[2]; /* stride 0: left out */
    int dilation[2];                      /* 0: left out (max only) */
    bool ceil_mode, exclude_pad;          /* exclude_pad: count_include_pad false (average only) */
    int divisor;                          /* divisor_override, 0: none (AvgPool2d only) */
    int batch;
} pool_case;

static bool is_max_kind(const nn_layer_kind *kind) {
    return kind == &nn_max_pool2d_kind || kind == &nn_max_pool1d_kind;
}

/* gradcheck_args_set, plus what the config parser sets: a 1d kind's
 * argument is one int (v1) with count 1. */
static void set_arg(const nn_layer_kind *kind, nn_arg_value *args, const char *name, double v0, double v1) {
    gradcheck_args_set(kind, args, name, v0, v1);
    int i = nn_arg_find(kind->args, kind->arg_count, name);
    if (kind->args[i].type == NN_ARG_INT_LIST) {
        args[i].count = 1;
        args[i].value[0] = v1;
    }
}

static void pool_case_args(const nn_layer_kind *kind, nn_arg_value *args, const pool_case *c) {
    gradcheck_args_default(kind, args);
    set_arg(kind, args, "kernel_size", c->kernel[0], c->kernel[1]);
    if (c->stride[0] || c->stride[1]) set_arg(kind, args, "stride", c->stride[0], c->stride[1]);
    set_arg(kind, args, "padding", c->padding[0], c->padding[1]);
    if (c->ceil_mode) set_arg(kind, args, "ceil_mode", 1, 0);
    if (is_max_kind(kind)) {
        if (c->dilation[0] || c->dilation[1]) set_arg(kind, args, "dilation", c->dilation[0], c->dilation[1]);
        return;
    }
    if (c->exclude_pad) set_arg(kind, args, "count_include_pad", 0, 0);
    if (c->divisor && kind == &nn_avg_pool2d_kind) set_arg(kind, args, "divisor_override", c->divisor, 0);
}

/* 2d cases run MaxPool2d and AvgPool2d, 1d ones MaxPool1d and AvgPool1d. */
static const pool_case cases[] = {
    {{3, {2, 4, 4}}, {2, 2}, {0, 0}, {0, 0}, {0, 0}, false, false, 0, 2},
    {{3, {1, 5, 7}}, {3, 3}, {2, 2}, {1, 1}, {0, 0}, false, false, 0, 3},
    {{3, {3, 7, 6}}, {2, 3}, {0, 0}, {1, 1}, {0, 0}, false, false, 0, 1},
    {{3, {2, 6, 5}}, {3, 2}, {1, 2}, {1, 0}, {0, 0}, false, false, 0, 2}, /* overlapping windows in height */
    {{3, {1, 9, 8}}, {4, 5}, {3, 2}, {2, 2}, {0, 0}, false, false, 0, 2},
    {{3, {2, 3, 3}}, {3, 3}, {1, 1}, {1, 1}, {0, 0}, false, false, 0, 4},
    {{3, {1, 1, 1}}, {1, 1}, {0, 0}, {0, 0}, {0, 0}, false, false, 0, 1},
    {{3, {2, 7, 19}}, {2, 2}, {0, 0}, {0, 0}, {0, 0}, false, false, 0, 2}, /* MaxPool2d(2)'s fast path, odd edges */
    {{3, {2, 7, 9}}, {2, 2}, {0, 0}, {0, 0}, {0, 0}, true, false, 0, 2},   /* ceil: half windows at the edges */
    {{3, {1, 11, 10}}, {3, 3}, {2, 2}, {1, 1}, {2, 2}, true, false, 0, 2}, /* dilation, ceil */
    {{3, {2, 9, 8}}, {3, 5}, {2, 3}, {1, 2}, {2, 1}, false, true, 0, 2},
    {{3, {1, 6, 6}}, {3, 3}, {2, 2}, {1, 1}, {0, 0}, true, false, 0, 2}, /* ceil window past the padded input */
    {{3, {2, 5, 5}}, {2, 2}, {2, 2}, {1, 1}, {0, 0}, true, false, 0, 1}, /* ceil drops a window in the padding */
    {{3, {2, 7, 5}}, {3, 3}, {2, 2}, {1, 1}, {0, 0}, true, true, 0, 2},
    {{3, {2, 7, 5}}, {2, 3}, {0, 0}, {1, 1}, {1, 2}, false, false, 5, 2},
    {{3, {2, 7, 5}}, {3, 3}, {2, 2}, {0, 0}, {0, 0}, true, false, 2, 3},
    {{3, {2, 5, 5}}, {2, 6}, {0, 0}, {0, 0}, {0, 0}, true, false, 0, 2}, /* ceil: a window wider than the input */
    {{2, {3, 10}}, {1, 2}, {0, 0}, {0, 0}, {0, 0}, false, false, 0, 2},
    {{2, {2, 11}}, {1, 3}, {1, 2}, {0, 1}, {1, 2}, true, false, 0, 3},
    {{2, {2, 11}}, {1, 3}, {1, 2}, {0, 1}, {0, 0}, true, true, 0, 2},
    {{2, {2, 12}}, {1, 4}, {1, 3}, {0, 0}, {0, 0}, true, false, 0, 2},
};

static const nn_layer_kind *case_kind(const pool_case *c, bool is_max) {
    if (c->in_shape.rank == 2) return is_max ? &nn_max_pool1d_kind : &nn_avg_pool1d_kind;
    return is_max ? &nn_max_pool2d_kind : &nn_avg_pool2d_kind;
}

START_TEST(pool_gradients) {
    const pool_case *c = &cases[_i];
    for (int is_max = 0; is_max <= 1; is_max++) {
        const nn_layer_kind *kind = case_kind(c, is_max);
        nn_arg_value args[NN_MAX_ARGS];
        pool_case_args(kind, args, c);
        /* Max pooling is linear in each input away from ties, so a small step
         * is exact there and keeps near-ties of random inputs from swapping
         * the maximum; average pooling needs the default for float precision. */
        double step = is_max ? 1e-5 : 0;
        for (int training = 0; training <= 1; training++) {
            gradcheck_result r = gradcheck_layer(kind, args, c->in_shape,
                                                 (gradcheck_options){.batch = c->batch, .training = training,
                                                                     .step = step, .seed = 20 + (uint64_t)_i});
            ck_assert_msg(r.ok, "%s case %d training %d: %s", kind->name, _i, training, r.message);
        }
    }
}
END_TEST

/* The geometry of a case in 2d terms (height 1 for 1d). */
typedef struct window {
    int height, width, kernel[2], stride[2], padding[2], dilation[2];
} window;

static window case_window(const pool_case *c, bool is_max) {
    bool one = c->in_shape.rank == 2;
    window w = {one ? 1 : c->in_shape.dims[1], c->in_shape.dims[one ? 1 : 2], {0}, {0}, {0}, {1, 1}};
    for (int d = one ? 1 : 0; d < 2; d++) {
        w.kernel[d] = c->kernel[d];
        w.stride[d] = c->stride[0] || c->stride[1] ? c->stride[d] : c->kernel[d];
        w.padding[d] = c->padding[d];
        if (is_max && c->dilation[d]) w.dilation[d] = c->dilation[d];
    }
    if (one) w.kernel[0] = w.stride[0] = 1;
    return w;
}

/* Direct pooling of one plane, from the taps y s - p + i d of each window:
 * max over the taps inside the input (padding is -inf) with the gradient
 * to the first maximum; average over the taps inside divided by
 * divisor_override, or by the taps inside the padded input
 * (count_include_pad), or by the taps inside. */
static void direct_pool_plane(double *out, double *din, const float *in, const float *dout, const window *w,
                              const pool_case *c, int out_height, int out_width, bool is_max) {
    for (int y = 0; y < out_height; y++)
        for (int x = 0; x < out_width; x++) {
            double best = -INFINITY, sum = 0;
            int best_at = -1, rows_padded = 0, cols_padded = 0, rows_in = 0, cols_in = 0;
            for (int i = 0; i < w->kernel[0]; i++) {
                int row = y * w->stride[0] - w->padding[0] + i * w->dilation[0];
                rows_padded += row < w->height + w->padding[0];
                rows_in += row >= 0 && row < w->height;
            }
            for (int j = 0; j < w->kernel[1]; j++) {
                int col = x * w->stride[1] - w->padding[1] + j * w->dilation[1];
                cols_padded += col < w->width + w->padding[1];
                cols_in += col >= 0 && col < w->width;
            }
            double divisor = c->divisor && c->in_shape.rank == 3 ? c->divisor
                             : c->exclude_pad         ? rows_in * cols_in
                                                      : rows_padded * cols_padded;
            double g = dout[y * out_width + x];
            for (int pass = 0; pass < 2; pass++)
                for (int i = 0; i < w->kernel[0]; i++)
                    for (int j = 0; j < w->kernel[1]; j++) {
                        int row = y * w->stride[0] - w->padding[0] + i * w->dilation[0];
                        int col = x * w->stride[1] - w->padding[1] + j * w->dilation[1];
                        if (row < 0 || row >= w->height || col < 0 || col >= w->width) continue;
                        double v = in[row * w->width + col];
                        if (pass == 0) {
                            sum += v;
                            if (v > best) best = v, best_at = row * w->width + col;
                        } else if (!is_max) {
                            din[row * w->width + col] += g / divisor;
                        }
                    }
            out[y * out_width + x] = is_max ? best : sum / divisor;
            if (is_max) din[best_at] += g;
        }
}

/* ties: inputs drawn from {-1, 0} only (as after a ReLU, many equal values),
 * where torch routes the gradient to the first maximum of each window. */
static void check_against_direct(const pool_case *c, int case_index, bool is_max, bool ties) {
    const nn_layer_kind *kind = case_kind(c, is_max);
    nn_arg_value args[NN_MAX_ARGS];
    pool_case_args(kind, args, c);
    nn_error err = {0};
    nn_layer *layer = kind->create(args, c->in_shape, &err);
    ck_assert_msg(layer != NULL, "%s", err.message);
    window w = case_window(c, is_max);
    int channels = c->in_shape.dims[0];
    int out_height = layer->out_shape.rank == 3 ? layer->out_shape.dims[1] : 1;
    int out_width = layer->out_shape.dims[layer->out_shape.rank - 1];
    ck_assert_int_eq(layer->out_shape.rank, c->in_shape.rank);
    ck_assert_int_eq(layer->out_shape.dims[0], channels);
    size_t in_plane = (size_t)w.height * w.width, out_plane = (size_t)out_height * out_width;
    size_t planes = (size_t)c->batch * channels;
    float *in = malloc(planes * in_plane * sizeof *in), *din = malloc(planes * in_plane * sizeof *din);
    float *out = malloc(planes * out_plane * sizeof *out), *dout = malloc(planes * out_plane * sizeof *dout);
    double *want_out = calloc(planes * out_plane, sizeof *want_out);
    double *want_din = calloc(planes * in_plane, sizeof *want_din);
    nn_rng rng;
    nn_rng_seed(&rng, 200 + (uint64_t)case_index);
    /* all negative, so padding with zeros instead of -inf would show in max */
    for (size_t i = 0; i < planes * in_plane; i++)
        in[i] = ties ? -(float)nn_rng_below(&rng, 2) : nn_rng_uniform_range(&rng, -2, -0.1f);
    for (size_t i = 0; i < planes * out_plane; i++) dout[i] = nn_rng_uniform_range(&rng, -1, 1);
    void *context = NULL;
    if (kind->context_create) {
        context = kind->context_create(layer, c->batch + 1, &err);
        ck_assert_msg(context != NULL, "%s", err.message);
    }
    nn_mode mode = {.training = true};
    kind->forward(layer, context, out, in, c->batch, &mode);
    kind->backward(layer, context, din, dout, in, out, c->batch, NULL, &mode);
    for (size_t p = 0; p < planes; p++)
        direct_pool_plane(want_out + p * out_plane, want_din + p * in_plane, in + p * in_plane,
                          dout + p * out_plane, &w, c, out_height, out_width, is_max);
    for (size_t i = 0; i < planes * out_plane; i++)
        ck_assert_msg(fabs(out[i] - want_out[i]) <= 1e-6, "%s case %d out[%zu]: got %g want %g", kind->name,
                      case_index, i, out[i], want_out[i]);
    for (size_t i = 0; i < planes * in_plane; i++)
        ck_assert_msg(fabs(din[i] - want_din[i]) <= 1e-6, "%s case %d din[%zu]: got %g want %g", kind->name,
                      case_index, i, din[i], want_din[i]);
    if (kind->context_free) kind->context_free(context);
    kind->destroy(layer);
    free(in), free(din), free(out), free(dout), free(want_out), free(want_din);
}

START_TEST(pool_matches_direct_pooling) {
    for (int ties = 0; ties <= 1; ties++)
        for (int is_max = 0; is_max <= 1; is_max++) check_against_direct(&cases[_i], _i, is_max, ties);
}
END_TEST

/* Output sizes torch 1.13 gives (its pooling_output_shape, checked with
 * torch): ceil_mode keeps a last half window unless it would start in the
 * right padding. */
START_TEST(pool_output_sizes_match_pytorch) {
    static const struct {
        int index, height, width;
    } want[] = {{8, 4, 5}, {9, 5, 5}, {10, 4, 3}, {11, 4, 4}, {12, 3, 3}, {13, 4, 3}, {15, 3, 2}};
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        const pool_case *c = &cases[want[k].index];
        const nn_layer_kind *kind = case_kind(c, true);
        nn_arg_value args[NN_MAX_ARGS];
        pool_case_args(kind, args, c);
        nn_error err = {0};
        nn_layer *layer = kind->create(args, c->in_shape, &err);
        ck_assert_msg(layer != NULL, "%s", err.message);
        ck_assert_msg(layer->out_shape.dims[1] == want[k].height && layer->out_shape.dims[2] == want[k].width,
                      "case %d: %d x %d, torch %d x %d", want[k].index, layer->out_shape.dims[1],
                      layer->out_shape.dims[2], want[k].height, want[k].width);
        kind->destroy(layer);
    }
}
END_TEST

/* Runs kind over batch samples at once (context for batch) and as slices
 * of 1 and batch - 1 with contexts of their own, used in turn (forward A,
 * forward B, backward A, backward B, as two replicas): the same bits. */
static void check_split(const nn_layer_kind *kind, const nn_arg_value *args, nn_shape shape, uint64_t seed) {
    nn_error err = {0};
    nn_layer *layer = kind->create(args, shape, &err);
    ck_assert_msg(layer != NULL, "%s", err.message);
    enum { BATCH = 5 };
    size_t in_size = nn_shape_size(layer->in_shape), out_size = nn_shape_size(layer->out_shape);
    float *in = malloc(BATCH * in_size * sizeof *in), *dout = malloc(BATCH * out_size * sizeof *dout);
    float *out[2], *din[2];
    for (int w = 0; w < 2; w++) {
        out[w] = malloc(BATCH * out_size * sizeof(float));
        din[w] = malloc(BATCH * in_size * sizeof(float));
    }
    nn_rng rng;
    nn_rng_seed(&rng, seed);
    for (size_t i = 0; i < BATCH * in_size; i++)
        in[i] = i % 3 ? nn_rng_uniform_range(&rng, -1, 1) : -(float)nn_rng_below(&rng, 2); /* some ties */
    for (size_t i = 0; i < BATCH * out_size; i++) dout[i] = nn_rng_uniform_range(&rng, -1, 1);
    nn_mode mode = {.training = true};
    void *whole = kind->context_create ? kind->context_create(layer, BATCH, &err) : NULL;
    kind->forward(layer, whole, out[0], in, BATCH, &mode);
    kind->backward(layer, whole, din[0], dout, in, out[0], BATCH, NULL, &mode);
    int first[2] = {0, 1}, count[2] = {1, BATCH - 1};
    void *context[2] = {NULL, NULL};
    for (int r = 0; r < 2; r++)
        if (kind->context_create) ck_assert_ptr_nonnull(context[r] = kind->context_create(layer, count[r], &err));
    for (int r = 0; r < 2; r++)
        kind->forward(layer, context[r], out[1] + first[r] * out_size, in + first[r] * in_size, count[r], &mode);
    for (int r = 0; r < 2; r++)
        kind->backward(layer, context[r], din[1] + first[r] * in_size, dout + first[r] * out_size,
                       in + first[r] * in_size, out[1] + first[r] * out_size, count[r], NULL, &mode);
    ck_assert_msg(memcmp(out[0], out[1], BATCH * out_size * sizeof(float)) == 0, "%s: out differs", kind->name);
    ck_assert_msg(memcmp(din[0], din[1], BATCH * in_size * sizeof(float)) == 0, "%s: din differs", kind->name);
    if (kind->context_free) {
        kind->context_free(whole);
        for (int r = 0; r < 2; r++) kind->context_free(context[r]);
    }
    for (int w = 0; w < 2; w++) free(out[w]), free(din[w]);
    free(in), free(dout);
    kind->destroy(layer);
}

START_TEST(pool_batch_splits_agree) {
    const pool_case *c = &cases[_i];
    for (int is_max = 0; is_max <= 1; is_max++) {
        nn_arg_value args[NN_MAX_ARGS];
        pool_case_args(case_kind(c, is_max), args, c);
        check_split(case_kind(c, is_max), args, c->in_shape, 400 + (uint64_t)_i);
    }
}
END_TEST

/* Adaptive pooling: output sizes and shapes, including overlapping
 * windows (7 -> 4) and outputs larger than the input (3 -> 5). */
typedef struct adaptive_case {
    nn_shape in_shape;
    int out[2];
    bool is_list;
    int batch;
} adaptive_case;

static const adaptive_case adaptive_cases[] = {
    {{3, {3, 7, 9}}, {3, 3}, false, 2}, {{3, {2, 7, 9}}, {4, 5}, true, 3}, {{3, {2, 3, 4}}, {5, 6}, true, 2},
    {{3, {2, 8, 8}}, {1, 1}, false, 2}, {{3, {2, 10, 7}}, {4, 3}, true, 1}, {{3, {1, 1, 1}}, {2, 3}, true, 2},
};

static void adaptive_args(const nn_layer_kind *kind, nn_arg_value *args, const adaptive_case *c) {
    gradcheck_args_default(kind, args);
    gradcheck_args_set(kind, args, "output_size", c->out[0], c->out[1]);
    args[0].is_list = c->is_list;
}

START_TEST(adaptive_gradients_and_splits) {
    const adaptive_case *c = &adaptive_cases[_i];
    const nn_layer_kind *kinds[] = {&nn_adaptive_avg_pool2d_kind, &nn_adaptive_max_pool2d_kind};
    for (int k = 0; k < 2; k++) {
        nn_arg_value args[NN_MAX_ARGS];
        adaptive_args(kinds[k], args, c);
        gradcheck_result r = gradcheck_layer(
            kinds[k], args, c->in_shape,
            (gradcheck_options){.batch = c->batch, .training = true, .step = k ? 1e-5 : 0, .seed = 60 + (uint64_t)_i});
        ck_assert_msg(r.ok, "%s case %d: %s", kinds[k]->name, _i, r.message);
        check_split(kinds[k], args, c->in_shape, 500 + (uint64_t)_i);
    }
}
END_TEST

/* Against the windows written out by hand: 7 rows into 4 are [0, 2), [1, 4),
 * [3, 6), [5, 7); 3 columns into 5 are [0, 1), [0, 2), [1, 2), [1, 3), [2, 3). */
START_TEST(adaptive_windows_match_pytorch) {
    static const int rows[4][2] = {{0, 2}, {1, 4}, {3, 6}, {5, 7}};
    static const int cols[5][2] = {{0, 1}, {0, 2}, {1, 2}, {1, 3}, {2, 3}};
    float in[21];
    for (int i = 0; i < 21; i++) in[i] = (float)((i * 7) % 11) - 5; /* distinct within every window */
    const nn_layer_kind *kinds[] = {&nn_adaptive_avg_pool2d_kind, &nn_adaptive_max_pool2d_kind};
    for (int k = 0; k < 2; k++) {
        adaptive_case c = {{3, {1, 7, 3}}, {4, 5}, true, 1};
        nn_arg_value args[NN_MAX_ARGS];
        adaptive_args(kinds[k], args, &c);
        nn_error err = {0};
        nn_layer *layer = kinds[k]->create(args, c.in_shape, &err);
        ck_assert_msg(layer != NULL, "%s", err.message);
        ck_assert_int_eq(layer->out_shape.dims[1], 4);
        ck_assert_int_eq(layer->out_shape.dims[2], 5);
        void *context = kinds[k]->context_create ? kinds[k]->context_create(layer, 1, &err) : NULL;
        float out[20], dout[20], din[21];
        double want_din[21] = {0};
        for (int i = 0; i < 20; i++) dout[i] = (float)(i + 1);
        nn_mode mode = {.training = true};
        kinds[k]->forward(layer, context, out, in, 1, &mode);
        kinds[k]->backward(layer, context, din, dout, in, out, 1, NULL, &mode);
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 5; x++) {
                double sum = 0, best = -INFINITY;
                int best_at = 0, n = (rows[y][1] - rows[y][0]) * (cols[x][1] - cols[x][0]);
                for (int h = rows[y][0]; h < rows[y][1]; h++)
                    for (int w = cols[x][0]; w < cols[x][1]; w++) {
                        sum += in[h * 3 + w];
                        if (in[h * 3 + w] > best) best = in[h * 3 + w], best_at = h * 3 + w;
                    }
                for (int h = rows[y][0]; h < rows[y][1]; h++)
                    for (int w = cols[x][0]; w < cols[x][1]; w++)
                        if (!k) want_din[h * 3 + w] += dout[y * 5 + x] / n;
                if (k) want_din[best_at] += dout[y * 5 + x];
                ck_assert_float_eq_tol(out[y * 5 + x], k ? best : sum / n, 1e-6);
            }
        for (int i = 0; i < 21; i++) ck_assert_float_eq_tol(din[i], want_din[i], 1e-5);
        if (kinds[k]->context_free) kinds[k]->context_free(context);
        kinds[k]->destroy(layer);
    }
}
END_TEST

START_TEST(adaptive_max_propagates_nan) {
    nn_arg_value args[NN_MAX_ARGS];
    adaptive_case c = {{3, {1, 2, 2}}, {1, 1}, false, 1};
    adaptive_args(&nn_adaptive_max_pool2d_kind, args, &c);
    nn_error err = {0};
    nn_layer *layer = nn_adaptive_max_pool2d_kind.create(args, c.in_shape, &err);
    void *context = nn_adaptive_max_pool2d_kind.context_create(layer, 1, &err);
    float in[4] = {1, NAN, 3, 2}, out[1], dout[1] = {1}, din[4];
    nn_mode mode = {.training = true};
    nn_adaptive_max_pool2d_kind.forward(layer, context, out, in, 1, &mode);
    ck_assert(isnan(out[0]));
    nn_adaptive_max_pool2d_kind.backward(layer, context, din, dout, in, out, 1, NULL, &mode);
    ck_assert_float_eq(din[1], 1);
    nn_adaptive_max_pool2d_kind.context_free(context);
    nn_adaptive_max_pool2d_kind.destroy(layer);
}
END_TEST

static nn_layer *create_pool(const nn_layer_kind *kind, nn_shape shape, int kernel, int padding, nn_error *err) {
    nn_arg_value args[NN_MAX_ARGS];
    gradcheck_args_default(kind, args);
    gradcheck_args_set(kind, args, "kernel_size", kernel, kernel);
    gradcheck_args_set(kind, args, "padding", padding, padding);
    return kind->create(args, shape, err);
}

START_TEST(pool_closed_forms) {
    /* 2x2 average with padding 1 over ones: corners see one input of four */
    nn_error err = {0};
    nn_layer *layer = create_pool(&nn_avg_pool2d_kind, (nn_shape){3, {1, 4, 4}}, 2, 1, &err);
    ck_assert_int_eq(layer->out_shape.dims[1], 3);
    float in[16], out[9];
    for (int i = 0; i < 16; i++) in[i] = 1;
    nn_mode eval = {.training = false}, train = {.training = true};
    ck_assert_ptr_null(nn_avg_pool2d_kind.context_create); /* average pooling keeps nothing */
    nn_avg_pool2d_kind.forward(layer, NULL, out, in, 1, &eval);
    float want[9] = {0.25f, 0.5f, 0.25f, 0.5f, 1, 0.5f, 0.25f, 0.5f, 0.25f};
    for (int i = 0; i < 9; i++) ck_assert_float_eq_tol(out[i], want[i], 1e-7);
    nn_avg_pool2d_kind.destroy(layer);
    /* max: the maximum of each 2x2 block of 0..15 is its bottom-right value */
    layer = create_pool(&nn_max_pool2d_kind, (nn_shape){3, {1, 4, 4}}, 2, 0, &err);
    for (int i = 0; i < 16; i++) in[i] = (float)i;
    void *context = nn_max_pool2d_kind.context_create(layer, 1, &err);
    ck_assert_ptr_nonnull(context);
    nn_max_pool2d_kind.forward(layer, context, out, in, 1, &train);
    ck_assert_float_eq(out[0], 5);
    ck_assert_float_eq(out[1], 7);
    ck_assert_float_eq(out[2], 13);
    ck_assert_float_eq(out[3], 15);
    float dout[4] = {1, 2, 3, 4}, din[16];
    nn_max_pool2d_kind.backward(layer, context, din, dout, in, out, 1, NULL, &train);
    for (int i = 0; i < 16; i++) {
        float expected = i == 5 ? 1 : i == 7 ? 2 : i == 13 ? 3 : i == 15 ? 4 : 0;
        ck_assert_float_eq(din[i], expected);
    }
    nn_max_pool2d_kind.context_free(context);
    nn_max_pool2d_kind.destroy(layer);
}
END_TEST

START_TEST(pool_max_propagates_nan) {
    nn_error err = {0};
    nn_layer *layer = create_pool(&nn_max_pool2d_kind, (nn_shape){3, {1, 2, 2}}, 2, 0, &err);
    void *context = nn_max_pool2d_kind.context_create(layer, 1, &err);
    ck_assert_ptr_nonnull(context);
    float in[4] = {1, NAN, 3, 2}, out[1];
    nn_mode eval = {.training = false};
    nn_max_pool2d_kind.forward(layer, context, out, in, 1, &eval);
    ck_assert(isnan(out[0]));
    nn_max_pool2d_kind.context_free(context);
    nn_max_pool2d_kind.destroy(layer);
}
END_TEST

/* A NaN anywhere in a wide plane reaches exactly its own window's output,
 * through the four-at-a-time path of MaxPool2d(2) too. */
START_TEST(pool_max_propagates_nan_in_wide_planes) {
    nn_error err = {0};
    nn_layer *layer = create_pool(&nn_max_pool2d_kind, (nn_shape){3, {1, 2, 18}}, 2, 0, &err);
    void *context = nn_max_pool2d_kind.context_create(layer, 1, &err);
    ck_assert_ptr_nonnull(context);
    nn_mode eval = {.training = false};
    for (int position = 0; position < 36; position++) {
        float in[36], out[9];
        for (int i = 0; i < 36; i++) in[i] = (float)(i % 7);
        in[position] = NAN;
        nn_max_pool2d_kind.forward(layer, context, out, in, 1, &eval);
        int window = (position % 18) / 2;
        for (int k = 0; k < 9; k++) {
            ck_assert_msg(isnan(out[k]) == (k == window), "NaN at %d: window %d", position, k);
            if (k != window) {
                float want = fmaxf(fmaxf(in[2 * k], in[2 * k + 1]), fmaxf(in[18 + 2 * k], in[19 + 2 * k]));
                ck_assert(out[k] == want);
            }
        }
    }
    nn_max_pool2d_kind.context_free(context);
    nn_max_pool2d_kind.destroy(layer);
}
END_TEST

START_TEST(pool_stride_defaults_to_kernel_size) {
    nn_arg_value args[NN_MAX_ARGS];
    gradcheck_args_default(&nn_max_pool2d_kind, args);
    gradcheck_args_set(&nn_max_pool2d_kind, args, "kernel_size", 2, 3);
    nn_error err = {0};
    nn_layer *layer = nn_max_pool2d_kind.create(args, (nn_shape){3, {32, 13, 13}}, &err);
    ck_assert_msg(layer != NULL, "%s", err.message);
    /* floor((13 - 2) / 2) + 1 = 6, floor((13 - 3) / 3) + 1 = 4 */
    ck_assert_int_eq(layer->out_shape.dims[0], 32);
    ck_assert_int_eq(layer->out_shape.dims[1], 6);
    ck_assert_int_eq(layer->out_shape.dims[2], 4);
    ck_assert_int_eq(layer->state_count, 0);
    nn_max_pool2d_kind.destroy(layer);
}
END_TEST

START_TEST(pool_rejects_bad_input) {
    const nn_layer_kind *kinds[] = {&nn_max_pool2d_kind, &nn_avg_pool2d_kind};
    for (int k = 0; k < 2; k++) {
        const nn_layer_kind *kind = kinds[k];
        nn_error err = {0};
        ck_assert_ptr_null(create_pool(kind, (nn_shape){1, {100, 0, 0}}, 2, 0, &err));
        ck_assert_int_eq(err.status, NN_ERR_INPUT);
        ck_assert_msg(strstr(err.message, kind->name) && strstr(err.message, "(100,)"), "%s", err.message);
        err = (nn_error){0};
        ck_assert_ptr_null(create_pool(kind, (nn_shape){2, {12, 12, 0}}, 2, 0, &err));
        ck_assert_msg(strstr(err.message, "[1, 12, 12]"), "%s", err.message);
        /* torch's own words */
        err = (nn_error){0};
        ck_assert_ptr_null(create_pool(kind, (nn_shape){3, {1, 8, 8}}, 2, 2, &err));
        ck_assert_int_eq(err.status, NN_ERR_INPUT);
        ck_assert_str_eq(err.message, "pad should be at most half of kernel size, but got pad=2 and kernel_size=2");
        nn_arg_value args[NN_MAX_ARGS];
        gradcheck_args_default(kind, args);
        gradcheck_args_set(kind, args, "kernel_size", 3, 2);
        gradcheck_args_set(kind, args, "padding", 1, 2);
        err = (nn_error){0};
        ck_assert_ptr_null(kind->create(args, (nn_shape){3, {1, 8, 8}}, &err));
        ck_assert_str_eq(err.message, "pad should be at most half of kernel size, but got pad=2 and kernel_size=2");
        err = (nn_error){0};
        ck_assert_ptr_null(create_pool(kind, (nn_shape){3, {1, 2, 2}}, 3, 0, &err));
        ck_assert_int_eq(err.status, NN_ERR_INPUT);
        ck_assert_str_eq(err.message, "kernel_size (3, 3) is larger than the padded input 2 x 2");
        err = (nn_error){0};
        ck_assert_ptr_null(create_pool(kind, (nn_shape){3, {1, 4, 4}}, 0, 0, &err));
        ck_assert_msg(strstr(err.message, "kernel_size"), "%s", err.message);
        gradcheck_args_default(kind, args);
        gradcheck_args_set(kind, args, "kernel_size", 2, 2);
        gradcheck_args_set(kind, args, "stride", 0, 1);
        err = (nn_error){0};
        ck_assert_ptr_null(kind->create(args, (nn_shape){3, {1, 4, 4}}, &err));
        ck_assert_msg(strstr(err.message, "stride"), "%s", err.message);
        gradcheck_args_set(kind, args, "stride", 1, 1);
        gradcheck_args_set(kind, args, "padding", -1, 0);
        err = (nn_error){0};
        ck_assert_ptr_null(kind->create(args, (nn_shape){3, {1, 4, 4}}, &err));
        ck_assert_msg(strstr(err.message, "padding"), "%s", err.message);
    }
}
END_TEST

/* An int-pair argument as the config parser hands it over. */
static void set_pair(const nn_layer_kind *kind, nn_arg_value *args, const char *name, int h, int w, bool is_list) {
    int i = nn_arg_find(kind->args, kind->arg_count, name);
    args[i] = (nn_arg_value){.given = true, .is_list = is_list, .is_integer = true, .count = 2, .value = {h, w}};
}

static void assert_describes(const nn_layer_kind *kind, const nn_arg_value *args, const char *want) {
    nn_error err = {0};
    nn_layer *layer = kind->create(args, (nn_shape){3, {4, 12, 12}}, &err);
    ck_assert_msg(layer != NULL, "%s", err.message);
    char text[256];
    kind->describe(layer, text, sizeof text);
    ck_assert_str_eq(text, want);
    kind->destroy(layer);
}

/* Strings printed by torch 1.13 for the same arguments given as ints or tuples. */
START_TEST(pool_describe_matches_pytorch) {
    nn_arg_value args[NN_MAX_ARGS];
    const nn_layer_kind *max = &nn_max_pool2d_kind, *avg = &nn_avg_pool2d_kind;
    gradcheck_args_default(max, args);
    set_pair(max, args, "kernel_size", 2, 2, false);
    assert_describes(max, args, "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)");
    assert_describes(avg, args, "AvgPool2d(kernel_size=2, stride=2, padding=0)");
    set_pair(max, args, "kernel_size", 2, 3, true);
    assert_describes(max, args, "MaxPool2d(kernel_size=(2, 3), stride=(2, 3), padding=0, dilation=1, ceil_mode=False)");
    set_pair(max, args, "kernel_size", 2, 2, true);
    assert_describes(max, args, "MaxPool2d(kernel_size=(2, 2), stride=(2, 2), padding=0, dilation=1, ceil_mode=False)");
    set_pair(max, args, "kernel_size", 3, 3, false);
    set_pair(max, args, "stride", 1, 2, true);
    set_pair(max, args, "padding", 1, 1, false);
    assert_describes(max, args, "MaxPool2d(kernel_size=3, stride=(1, 2), padding=1, dilation=1, ceil_mode=False)");
    gradcheck_args_default(avg, args);
    set_pair(avg, args, "kernel_size", 2, 3, true);
    set_pair(avg, args, "padding", 1, 1, true);
    assert_describes(avg, args, "AvgPool2d(kernel_size=(2, 3), stride=(2, 3), padding=(1, 1))");
}
END_TEST


/* Creates kind on shape with args set by name (1d: v1), expecting refusal
 * with exactly want. */
static void assert_refused(const nn_layer_kind *kind, nn_shape shape, const char *want, int count, ...) {
    nn_arg_value args[NN_MAX_ARGS];
    gradcheck_args_default(kind, args);
    va_list list;
    va_start(list, count);
    for (int i = 0; i < count; i++) {
        const char *name = va_arg(list, const char *);
        double v0 = va_arg(list, double), v1 = va_arg(list, double);
        set_arg(kind, args, name, v0, v1);
    }
    va_end(list);
    nn_error err = {0};
    nn_layer *layer = kind->create(args, shape, &err);
    ck_assert_msg(layer == NULL, "%s accepted, want: %s", kind->name, want);
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    ck_assert_str_eq(err.message, want);
}

START_TEST(pool_rejects_new_arguments) {
    nn_shape image = {3, {1, 5, 5}}, line = {2, {1, 4}};
    assert_refused(&nn_max_pool2d_kind, image,
                   "return_indices=True is not supported: MaxPool2d would return (output, indices), and a layer of "
                   "the model passes on one tensor",
                   2, "kernel_size", 2.0, 2.0, "return_indices", 1.0, 0.0);
    assert_refused(&nn_max_pool2d_kind, image,
                   "kernel_size (3, 3) with dilation (3, 3) spans 7 x 7, larger than the padded input 5 x 5", 2,
                   "kernel_size", 3.0, 3.0, "dilation", 3.0, 3.0);
    assert_refused(&nn_max_pool2d_kind, image, "dilation must be at least 1, got (1, 0)", 2, "kernel_size", 2.0, 2.0,
                   "dilation", 1.0, 0.0);
    assert_refused(&nn_avg_pool2d_kind, image, "kernel_size (2, 6) is larger than the padded input 5 x 5", 1,
                   "kernel_size", 2.0, 6.0);
    assert_refused(&nn_avg_pool2d_kind, image, "divisor_override must be a positive integer or null, got 0", 2,
                   "kernel_size", 2.0, 2.0, "divisor_override", 0.0, 0.0);
    assert_refused(&nn_avg_pool2d_kind, image, "divisor_override must be a positive integer or null, got -3", 2,
                   "kernel_size", 2.0, 2.0, "divisor_override", -3.0, 0.0);
    assert_refused(&nn_max_pool1d_kind, line, "kernel_size 5 is larger than the padded input 4", 1, "kernel_size",
                   0.0, 5.0);
    assert_refused(&nn_max_pool1d_kind, line, "kernel_size 3 with dilation 2 spans 5, larger than the padded input 4",
                   2, "kernel_size", 0.0, 3.0, "dilation", 0.0, 2.0);
    assert_refused(&nn_avg_pool1d_kind, line,
                   "pad should be at most half of kernel size, but got pad=2 and kernel_size=3", 2, "kernel_size", 0.0,
                   3.0, "padding", 0.0, 2.0);
    assert_refused(&nn_avg_pool1d_kind, line, "stride must be at least 1, got 0", 2, "kernel_size", 0.0, 2.0, "stride",
                   0.0, 0.0);
    assert_refused(&nn_max_pool1d_kind, line, "padding must be at least 0, got -1", 2, "kernel_size", 0.0, 2.0,
                   "padding", 0.0, -1.0);
    assert_refused(&nn_max_pool1d_kind, line,
                   "return_indices=True is not supported: MaxPool1d would return (output, indices), and a layer of "
                   "the model passes on one tensor",
                   2, "kernel_size", 0.0, 2.0, "return_indices", 1.0, 0.0);
    assert_refused(&nn_max_pool1d_kind, image,
                   "MaxPool1d needs an input of shape (channels, length), got (1, 5, 5): use MaxPool2d, or Flatten: "
                   "{start_dim: 2} before it",
                   1, "kernel_size", 0.0, 2.0);
    assert_refused(&nn_avg_pool1d_kind, (nn_shape){1, {7}},
                   "AvgPool1d needs an input of shape (channels, length), got (7,): model.input_shape [1, 1, 7] "
                   "and Flatten: {start_dim: 2} before it give (1, 7)",
                   1, "kernel_size", 0.0, 2.0);
    /* a 1d argument given as a list of two */
    nn_arg_value args[NN_MAX_ARGS];
    gradcheck_args_default(&nn_max_pool1d_kind, args);
    args[0] = (nn_arg_value){.given = true, .is_list = true, .is_integer = true, .count = 2, .value = {2, 2}};
    nn_error err = {0};
    ck_assert_ptr_null(nn_max_pool1d_kind.create(args, line, &err));
    ck_assert_str_eq(err.message, "kernel_size must be one integer or a list of one integer, got 2 values");
    assert_refused(&nn_adaptive_avg_pool2d_kind, image, "output_size must be at least 1, got (0, 3)", 1, "output_size",
                   0.0, 3.0);
    assert_refused(&nn_adaptive_max_pool2d_kind, image,
                   "return_indices=True is not supported: AdaptiveMaxPool2d would return (output, indices), and a "
                   "layer of the model passes on one tensor",
                   2, "output_size", 2.0, 2.0, "return_indices", 1.0, 0.0);
    assert_refused(&nn_adaptive_max_pool2d_kind, image,
                   "output_size (100000, 100000) is too large: 1 x 100000 x 100000 values, more than 2147483647",
                   1, "output_size", 1e5, 1e5);
    assert_refused(&nn_adaptive_avg_pool2d_kind, (nn_shape){2, {5, 5}},
                   "AdaptiveAvgPool2d needs an input of shape (channels, height, width), got (5, 5): for one-channel "
                   "images set model.input_shape to [1, 5, 5]",
                   1, "output_size", 2.0, 2.0);
}
END_TEST

/* A huge kernel with padding to match costs no more than the input: the
 * windows are clipped before any loop. */
START_TEST(pool_huge_window_is_cheap) {
    nn_arg_value args[NN_MAX_ARGS];
    gradcheck_args_default(&nn_avg_pool2d_kind, args);
    set_arg(&nn_avg_pool2d_kind, args, "kernel_size", 2000000000, 2000000000);
    set_arg(&nn_avg_pool2d_kind, args, "padding", 1000000000, 1000000000);
    nn_error err = {0};
    nn_layer *layer = nn_avg_pool2d_kind.create(args, (nn_shape){3, {1, 3, 3}}, &err);
    ck_assert_msg(layer != NULL, "%s", err.message);
    ck_assert_int_eq(layer->out_shape.dims[1], 1);
    float in[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, out[1];
    nn_mode mode = {.training = false};
    nn_avg_pool2d_kind.forward(layer, NULL, out, in, 1, &mode);
    /* torch's divisor: the window [-1e9, 1e9) clipped to the padded input's end 1e9 + 3, squared */
    ck_assert_float_eq_tol(out[0], 45.0 / (2e9 * 2e9), 1e-24);
    nn_avg_pool2d_kind.destroy(layer);
}
END_TEST

/* More strings printed by torch 1.13. */
START_TEST(pool_describe_new_arguments) {
    nn_arg_value args[NN_MAX_ARGS];
    const nn_layer_kind *max = &nn_max_pool2d_kind, *avg = &nn_avg_pool2d_kind;
    gradcheck_args_default(max, args);
    set_pair(max, args, "kernel_size", 3, 3, false);
    set_pair(max, args, "dilation", 2, 1, true);
    args[nn_arg_find(max->args, max->arg_count, "ceil_mode")].value[0] = 1;
    assert_describes(max, args, "MaxPool2d(kernel_size=3, stride=3, padding=0, dilation=(2, 1), ceil_mode=True)");
    args[nn_arg_find(max->args, max->arg_count, "stride")] = (nn_arg_value){.given = true, .is_null = true};
    assert_describes(max, args, "MaxPool2d(kernel_size=3, stride=3, padding=0, dilation=(2, 1), ceil_mode=True)");
    gradcheck_args_default(avg, args);
    set_pair(avg, args, "kernel_size", 3, 3, false);
    set_arg(avg, args, "ceil_mode", 1, 0);
    set_arg(avg, args, "count_include_pad", 0, 0);
    set_arg(avg, args, "divisor_override", 4, 0);
    assert_describes(avg, args, "AvgPool2d(kernel_size=3, stride=3, padding=0)"); /* torch prints no more */
    const struct {
        const nn_layer_kind *kind;
        bool is_list;
        const char *want;
    } lines[] = {
        {&nn_max_pool1d_kind, false, "MaxPool1d(kernel_size=3, stride=3, padding=0, dilation=1, ceil_mode=False)"},
        {&nn_max_pool1d_kind, true, "MaxPool1d(kernel_size=(3,), stride=(3,), padding=0, dilation=1, ceil_mode=False)"},
        {&nn_avg_pool1d_kind, false, "AvgPool1d(kernel_size=(3,), stride=(3,), padding=(0,))"},
        {&nn_avg_pool1d_kind, true, "AvgPool1d(kernel_size=(3,), stride=(3,), padding=(0,))"},
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        gradcheck_args_default(lines[i].kind, args);
        args[0] = (nn_arg_value){
            .given = true, .is_list = lines[i].is_list, .is_integer = true, .count = 1, .value = {3}};
        nn_error err = {0};
        nn_layer *layer = lines[i].kind->create(args, (nn_shape){2, {4, 12}}, &err);
        ck_assert_msg(layer != NULL, "%s", err.message);
        char text[256];
        lines[i].kind->describe(layer, text, sizeof text);
        ck_assert_str_eq(text, lines[i].want);
        lines[i].kind->destroy(layer);
    }
    gradcheck_args_default(&nn_adaptive_avg_pool2d_kind, args);
    set_pair(&nn_adaptive_avg_pool2d_kind, args, "output_size", 3, 3, false);
    assert_describes(&nn_adaptive_avg_pool2d_kind, args, "AdaptiveAvgPool2d(output_size=3)");
    set_pair(&nn_adaptive_avg_pool2d_kind, args, "output_size", 3, 3, true);
    assert_describes(&nn_adaptive_avg_pool2d_kind, args, "AdaptiveAvgPool2d(output_size=(3, 3))");
    gradcheck_args_default(&nn_adaptive_max_pool2d_kind, args);
    set_pair(&nn_adaptive_max_pool2d_kind, args, "output_size", 5, 2, true);
    assert_describes(&nn_adaptive_max_pool2d_kind, args, "AdaptiveMaxPool2d(output_size=(5, 2))");
}
END_TEST

int main(void) {
    Suite *suite = suite_create("pool");
    TCase *tc = tcase_create("pool");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, pool_gradients, 0, sizeof cases / sizeof cases[0]);
    tcase_add_loop_test(tc, pool_matches_direct_pooling, 0, sizeof cases / sizeof cases[0]);
    tcase_add_loop_test(tc, pool_batch_splits_agree, 0, sizeof cases / sizeof cases[0]);
    tcase_add_test(tc, pool_output_sizes_match_pytorch);
    tcase_add_loop_test(tc, adaptive_gradients_and_splits, 0, sizeof adaptive_cases / sizeof adaptive_cases[0]);
    tcase_add_test(tc, adaptive_windows_match_pytorch);
    tcase_add_test(tc, adaptive_max_propagates_nan);
    tcase_add_test(tc, pool_closed_forms);
    tcase_add_test(tc, pool_max_propagates_nan);
    tcase_add_test(tc, pool_max_propagates_nan_in_wide_planes);
    tcase_add_test(tc, pool_stride_defaults_to_kernel_size);
    tcase_add_test(tc, pool_rejects_bad_input);
    tcase_add_test(tc, pool_rejects_new_arguments);
    tcase_add_test(tc, pool_huge_window_is_cheap);
    tcase_add_test(tc, pool_describe_matches_pytorch);
    tcase_add_test(tc, pool_describe_new_arguments);
    suite_add_tcase(suite, tc);
    return testutil_run(suite);
}
