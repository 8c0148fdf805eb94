/* MaxPool2d and AvgPool2d: gradients by finite differences, forward and
 * backward against direct pooling over an explicitly padded input written
 * here, padding semantics, every error and PyTorch's repr. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layers.h"
#include "gradcheck.h"
#include "testutil.h"

typedef struct pool_case {
    nn_shape in_shape;
    int kernel[2], stride[2], padding[2]; /* stride 0: left out */
    int batch;
} pool_case;

static void pool_case_args(const nn_layer_kind *kind, nn_arg_value *args, const pool_case *c) {
    gradcheck_args_default(kind, args);
    gradcheck_args_set(kind, args, "kernel_size", c->kernel[0], c->kernel[1]);
    if (c->stride[0]) gradcheck_args_set(kind, args, "stride", c->stride[0], c->stride[1]);
    gradcheck_args_set(kind, args, "padding", c->padding[0], c->padding[1]);
}

static const pool_case cases[] = {
    {{3, {2, 4, 4}}, {2, 2}, {0, 0}, {0, 0}, 2},
    {{3, {1, 5, 7}}, {3, 3}, {2, 2}, {1, 1}, 3},
    {{3, {3, 7, 6}}, {2, 3}, {0, 0}, {1, 1}, 1},
    {{3, {2, 6, 5}}, {3, 2}, {1, 2}, {1, 0}, 2},  /* overlapping windows in height */
    {{3, {1, 9, 8}}, {4, 5}, {3, 2}, {2, 2}, 2},
    {{3, {2, 3, 3}}, {3, 3}, {1, 1}, {1, 1}, 4},
    {{3, {1, 1, 1}}, {1, 1}, {0, 0}, {0, 0}, 1},
    {{3, {2, 7, 19}}, {2, 2}, {0, 0}, {0, 0}, 2}, /* MaxPool2d(2)'s fast path: 4 windows at a time, odd edges */
};

START_TEST(pool_gradients) {
    const nn_layer_kind *kinds[] = {&nn_max_pool2d_kind, &nn_avg_pool2d_kind};
    const pool_case *c = &cases[_i];
    for (int k = 0; k < 2; k++) {
        nn_arg_value args[NN_MAX_ARGS];
        pool_case_args(kinds[k], args, c);
        /* Max pooling is linear in each input away from ties, so a small step
         * is exact there and keeps near-ties of random inputs from swapping
         * the maximum; average pooling needs the default for float precision. */
        double step = kinds[k] == &nn_max_pool2d_kind ? 1e-5 : 0;
        for (int training = 0; training <= 1; training++) {
            gradcheck_result r = gradcheck_layer(kinds[k], args, c->in_shape,
                                                 (gradcheck_options){.batch = c->batch, .training = training,
                                                                     .step = step, .seed = 20 + (uint64_t)_i});
            ck_assert_msg(r.ok, "%s case %d training %d: %s", kinds[k]->name, _i, training, r.message);
        }
    }
}
END_TEST

typedef struct plane {
    int height, width;
    double *values;
} plane;

/* One input plane surrounded by `fill` (-inf for max, 0 for average). */
static plane pad_plane(const float *in, int height, int width, const int padding[2], double fill) {
    plane p = {height + 2 * padding[0], width + 2 * padding[1], NULL};
    p.values = malloc((size_t)p.height * p.width * sizeof *p.values);
    for (int y = 0; y < p.height; y++)
        for (int x = 0; x < p.width; x++) {
            int row = y - padding[0], col = x - padding[1];
            bool inside = row >= 0 && row < height && col >= 0 && col < width;
            p.values[y * p.width + x] = inside ? in[row * width + col] : fill;
        }
    return p;
}

/* Direct pooling of one plane; for max also the gradient of dout routed to
 * the first maximum of each window, for average spread evenly. */
static void direct_pool_plane(double *out, double *din, const float *in, const float *dout, int height, int width,
                              const pool_case *c, int out_height, int out_width, bool is_max) {
    plane p = pad_plane(in, height, width, c->padding, is_max ? -INFINITY : 0);
    int stride[2] = {c->stride[0] ? c->stride[0] : c->kernel[0], c->stride[0] ? c->stride[1] : c->kernel[1]};
    for (int y = 0; y < out_height; y++)
        for (int x = 0; x < out_width; x++) {
            double best = -INFINITY, sum = 0;
            int best_y = -1, best_x = -1;
            for (int i = 0; i < c->kernel[0]; i++)
                for (int j = 0; j < c->kernel[1]; j++) {
                    int py = y * stride[0] + i, px = x * stride[1] + j;
                    double v = p.values[py * p.width + px];
                    sum += v;
                    if (v > best) best = v, best_y = py - c->padding[0], best_x = px - c->padding[1];
                }
            double g = dout[y * out_width + x];
            if (is_max) {
                out[y * out_width + x] = best;
                din[best_y * width + best_x] += g;
                continue;
            }
            out[y * out_width + x] = sum / (c->kernel[0] * c->kernel[1]);
            for (int i = 0; i < c->kernel[0]; i++)
                for (int j = 0; j < c->kernel[1]; j++) {
                    int row = y * stride[0] + i - c->padding[0], col = x * stride[1] + j - c->padding[1];
                    if (row >= 0 && row < height && col >= 0 && col < width)
                        din[row * width + col] += g / (c->kernel[0] * c->kernel[1]);
                }
        }
    free(p.values);
}

/* ties: inputs drawn from {-1, 0} only (as after a ReLU, many equal values),
 * where torch routes the gradient to the first maximum of each window. */
static void check_against_direct(const nn_layer_kind *kind, const pool_case *c, int case_index, bool ties) {
    nn_arg_value args[NN_MAX_ARGS];
    pool_case_args(kind, args, c);
    nn_error err = {0};
    nn_layer *layer = kind->create(args, c->in_shape, &err);
    ck_assert_msg(layer != NULL, "%s", err.message);
    bool is_max = kind == &nn_max_pool2d_kind;
    int channels = c->in_shape.dims[0], height = c->in_shape.dims[1], width = c->in_shape.dims[2];
    int out_height = layer->out_shape.dims[1], out_width = layer->out_shape.dims[2];
    ck_assert_int_eq(layer->out_shape.dims[0], channels);
    size_t in_plane = (size_t)height * width, out_plane = (size_t)out_height * out_width;
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
                          dout + p * out_plane, height, width, c, out_height, out_width, is_max);
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
    for (int ties = 0; ties <= 1; ties++) {
        check_against_direct(&nn_max_pool2d_kind, &cases[_i], _i, ties);
        check_against_direct(&nn_avg_pool2d_kind, &cases[_i], _i, ties);
    }
}
END_TEST

/* The point of contexts: two replicas' argmax caches of one MaxPool2d,
 * used in turn (forward A on one batch, forward B on another, backward A,
 * backward B), give bit for bit what each batch gives alone with a context
 * of its own. Inputs with ties ({-1, 0}) and without; the 2x2 fast path
 * and the general one. */
START_TEST(pool_max_contexts_are_independent) {
    const pool_case shapes[] = {
        {{3, {3, 8, 10}}, {2, 2}, {0, 0}, {0, 0}, 0},
        {{3, {2, 9, 8}}, {3, 3}, {2, 2}, {1, 1}, 0},
    };
    const nn_layer_kind *kind = &nn_max_pool2d_kind;
    for (int k = 0; k < 2; k++)
        for (int ties = 0; ties <= 1; ties++) {
            nn_arg_value args[NN_MAX_ARGS];
            pool_case_args(kind, args, &shapes[k]);
            nn_error err = {0};
            nn_layer *layer = kind->create(args, shapes[k].in_shape, &err);
            ck_assert_msg(layer != NULL, "%s", err.message);
            size_t in_size = nn_shape_size(layer->in_shape), out_size = nn_shape_size(layer->out_shape);
            int batch[2] = {2, 4};
            size_t first_in[2] = {0, 2 * in_size}, first_out[2] = {0, 2 * out_size};
            float *in = malloc(6 * in_size * sizeof *in), *dout = malloc(6 * out_size * sizeof *dout);
            float *out[2][2], *din[2][2]; /* [alone, in turn][batch] */
            nn_rng rng;
            nn_rng_seed(&rng, 400 + (uint64_t)(2 * k + ties));
            for (size_t i = 0; i < 6 * in_size; i++)
                in[i] = ties ? -(float)nn_rng_below(&rng, 2) : nn_rng_uniform_range(&rng, -1, 1);
            for (size_t i = 0; i < 6 * out_size; i++) dout[i] = nn_rng_uniform_range(&rng, -1, 1);
            nn_mode mode = {.training = true};
            for (int w = 0; w < 2; w++)
                for (int r = 0; r < 2; r++) {
                    out[w][r] = malloc((size_t)batch[r] * out_size * sizeof(float));
                    din[w][r] = malloc((size_t)batch[r] * in_size * sizeof(float));
                }
            for (int r = 0; r < 2; r++) {
                void *context = kind->context_create(layer, batch[r], &err);
                ck_assert_ptr_nonnull(context);
                kind->forward(layer, context, out[0][r], in + first_in[r], batch[r], &mode);
                kind->backward(layer, context, din[0][r], dout + first_out[r], in + first_in[r], out[0][r], batch[r],
                               NULL, &mode);
                kind->context_free(context);
            }
            void *context[2] = {kind->context_create(layer, 4, &err), kind->context_create(layer, 4, &err)};
            ck_assert(context[0] && context[1]);
            for (int r = 0; r < 2; r++)
                kind->forward(layer, context[r], out[1][r], in + first_in[r], batch[r], &mode);
            for (int r = 0; r < 2; r++)
                kind->backward(layer, context[r], din[1][r], dout + first_out[r], in + first_in[r], out[1][r],
                               batch[r], NULL, &mode);
            for (int r = 0; r < 2; r++) {
                ck_assert_msg(memcmp(out[1][r], out[0][r], (size_t)batch[r] * out_size * sizeof(float)) == 0,
                              "case %d ties %d context %d: out differs", k, ties, r);
                ck_assert_msg(memcmp(din[1][r], din[0][r], (size_t)batch[r] * in_size * sizeof(float)) == 0,
                              "case %d ties %d context %d: din differs", k, ties, r);
                kind->context_free(context[r]);
            }
            for (int w = 0; w < 2; w++)
                for (int r = 0; r < 2; r++) free(out[w][r]), free(din[w][r]);
            free(in), free(dout);
            kind->destroy(layer);
        }
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
        ck_assert_str_eq(err.message, "output would be (1, 0, 0) for input (1, 2, 2) with kernel_size=(3, 3), "
                                      "stride=(3, 3), padding=(0, 0)");
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

int main(void) {
    Suite *suite = suite_create("pool2d");
    TCase *tc = tcase_create("pool2d");
    tcase_add_loop_test(tc, pool_gradients, 0, sizeof cases / sizeof cases[0]);
    tcase_add_loop_test(tc, pool_matches_direct_pooling, 0, sizeof cases / sizeof cases[0]);
    tcase_add_test(tc, pool_max_contexts_are_independent);
    tcase_add_test(tc, pool_closed_forms);
    tcase_add_test(tc, pool_max_propagates_nan);
    tcase_add_test(tc, pool_max_propagates_nan_in_wide_planes);
    tcase_add_test(tc, pool_stride_defaults_to_kernel_size);
    tcase_add_test(tc, pool_rejects_bad_input);
    tcase_add_test(tc, pool_describe_matches_pytorch);
    suite_add_tcase(suite, tc);
    return testutil_run(suite);
}
