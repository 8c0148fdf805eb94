/* LayerNorm, GroupNorm, InstanceNorm2d and LocalResponseNorm: gradients by
 * finite differences on every path (affine or not, InstanceNorm's running
 * statistics in training and eval), forward against direct formulas written
 * here in double, InstanceNorm's running statistics, a batch run in two
 * slices against the whole, the state entries, every error and torch's
 * repr. (InstanceNorm2d split across replicas with its allreduce: test_batchnorm.c.) */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layers.h"
#include "gradcheck.h"
#include "testutil.h"

/* args from "name=value ..." (value a number, true, false, null or a list
 * "3,4"), over the kind's defaults. */
static void set_args(const nn_layer_kind *kind, nn_arg_value *args, const char *text) {
    gradcheck_args_default(kind, args);
    char buffer[256];
    snprintf(buffer, sizeof buffer, "%s", text ? text : "");
    for (char *save = NULL, *item = strtok_r(buffer, " ", &save); item; item = strtok_r(NULL, " ", &save)) {
        char *equals = strchr(item, '=');
        ck_assert_ptr_nonnull(equals);
        *equals = '\0';
        const char *value = equals + 1;
        int i = nn_arg_find(kind->args, kind->arg_count, item);
        ck_assert_msg(i >= 0, "%s has no argument %s", kind->name, item);
        nn_arg_value *v = &args[i];
        v->given = true;
        if (strcmp(value, "null") == 0) {
            v->is_null = true;
            continue;
        }
        if (strcmp(value, "true") == 0 || strcmp(value, "false") == 0) {
            v->value[0] = value[0] == 't';
            continue;
        }
        v->is_list = strchr(value, ',') != NULL || value[0] == '[';
        v->is_integer = !strpbrk(value, ".e");
        v->count = 0;
        for (const char *p = value[0] == '[' ? value + 1 : value; *p && *p != ']';) {
            char *end;
            v->value[v->count++] = strtod(p, &end);
            p = *end == ',' ? end + 1 : end;
            if (end == p && *p != ']') break;
        }
    }
}

static nn_layer *create(const nn_layer_kind *kind, nn_shape shape, const char *text, nn_error *err) {
    nn_arg_value args[NN_MAX_ARGS];
    set_args(kind, args, text);
    nn_layer *layer = kind->create(args, shape, err);
    if (layer) layer->kind = kind;
    return layer;
}

typedef struct norm_case {
    const nn_layer_kind *kind;
    nn_shape shape;
    int batch;
    const char *args;
} norm_case;

#define LAYER_NORM &nn_layer_norm_kind
#define GROUP_NORM &nn_group_norm_kind
#define INSTANCE_NORM &nn_instance_norm2d_kind
#define LRN &nn_local_response_norm_kind

static const norm_case cases[] = {
    {LAYER_NORM, {1, {7, 0, 0}}, 3, "normalized_shape=7"},
    {LAYER_NORM, {1, {20, 0, 0}}, 2, "normalized_shape=[20] eps=0.1"},
    {LAYER_NORM, {2, {3, 5, 0}}, 2, "normalized_shape=5"},
    {LAYER_NORM, {2, {3, 5, 0}}, 2, "normalized_shape=3,5"},
    {LAYER_NORM, {3, {2, 3, 4}}, 2, "normalized_shape=3,4"},
    {LAYER_NORM, {3, {2, 3, 4}}, 1, "normalized_shape=2,3,4 elementwise_affine=false"},
    {LAYER_NORM, {3, {2, 3, 4}}, 2, "normalized_shape=4 elementwise_affine=false"},
    {GROUP_NORM, {1, {6, 0, 0}}, 3, "num_groups=3"},
    {GROUP_NORM, {1, {6, 0, 0}}, 2, "num_groups=1 affine=false"},
    {GROUP_NORM, {2, {6, 5, 0}}, 2, "num_groups=2 num_channels=6"},
    {GROUP_NORM, {3, {4, 3, 5}}, 2, "num_groups=2"},
    {GROUP_NORM, {3, {4, 3, 5}}, 2, "num_groups=4 affine=false eps=0.01"},
    {GROUP_NORM, {3, {3, 2, 3}}, 1, "num_groups=1"},
    {INSTANCE_NORM, {3, {3, 4, 5}}, 2, NULL},
    {INSTANCE_NORM, {3, {2, 3, 3}}, 3, "affine=true"},
    {INSTANCE_NORM, {3, {2, 5, 3}}, 2, "track_running_stats=true"},
    {INSTANCE_NORM, {3, {3, 2, 3}}, 2, "affine=true track_running_stats=true momentum=0.5 eps=0.01"},
    {INSTANCE_NORM, {3, {2, 1, 2}}, 2, "affine=true momentum=1"},
    {LRN, {1, {5, 0, 0}}, 3, "size=3 alpha=0.5"},
    {LRN, {2, {6, 7, 0}}, 2, "size=2 alpha=2 beta=0.5 k=1.5"},
    {LRN, {3, {5, 3, 4}}, 2, "size=4 alpha=1 beta=0.9 k=2"},
    {LRN, {3, {4, 2, 3}}, 2, "size=1 alpha=3"},
    {LRN, {3, {3, 2, 2}}, 2, "size=9 alpha=1.5 beta=2"},
    {LRN, {3, {6, 2, 2}}, 2, "size=5"},
};

/* Eval of InstanceNorm2d(track_running_stats=True) is the path with fixed
 * statistics (the initial ones: the gradient does not depend on them). */
START_TEST(norm_gradients) {
    const norm_case *c = &cases[_i];
    nn_arg_value args[NN_MAX_ARGS];
    set_args(c->kind, args, c->args);
    for (int training = 0; training <= 1; training++) {
        gradcheck_options options = {.batch = c->batch, .training = training, .seed = 40 + (uint64_t)_i};
        gradcheck_result r = gradcheck_layer(c->kind, args, c->shape, options);
        ck_assert_msg(r.ok, "%s case %d (%s) training %d: %s", c->kind->name, _i, c->args, training, r.message);
    }
}
END_TEST

/* A layer with its trainable entries bound to parameters drawn here (not
 * the initial 1 and 0), and a context. */
typedef struct bound_layer {
    nn_layer *layer;
    void *context;
    float *params, *grads;
    size_t param_count;
} bound_layer;

enum { MAX_BATCH = 8 };

static bound_layer bind(const norm_case *c, uint64_t seed) {
    nn_error err = {0};
    bound_layer b = {create(c->kind, c->shape, c->args, &err), NULL, NULL, NULL, 0};
    ck_assert_msg(b.layer != NULL, "%s", err.message);
    b.param_count = nn_layer_param_count(b.layer);
    b.params = malloc((b.param_count + 1) * sizeof *b.params);
    b.grads = malloc((b.param_count + 1) * sizeof *b.grads);
    nn_layer_bind(b.layer, b.params);
    if (c->kind->init) c->kind->init(b.layer, NULL);
    for (size_t i = 0; i < b.param_count; i++) ck_assert_float_eq(b.params[i], i < b.param_count / 2 ? 1 : 0);
    nn_rng rng;
    nn_rng_seed(&rng, seed);
    for (size_t i = 0; i < b.param_count; i++) b.params[i] = nn_rng_uniform_range(&rng, -1.5f, 1.5f);
    b.context = c->kind->context_create(b.layer, MAX_BATCH, &err);
    ck_assert_msg(b.context != NULL, "%s", err.message);
    return b;
}

static void unbind(bound_layer *b) {
    b->layer->kind->context_free(b->context);
    b->layer->kind->destroy(b->layer);
    free(b->params);
    free(b->grads);
}

static float *random_floats(size_t count, nn_rng *rng, float center, float spread) {
    float *x = malloc(count * sizeof *x);
    for (size_t i = 0; i < count; i++) x[i] = center + spread * nn_rng_uniform_range(rng, -1, 1);
    return x;
}

/* out of a sample normalised in groups of group_size consecutive values,
 * then scaled by weight[i / per_weight % weight_count] (+ bias), in double. */
static void direct_groups(double *out, const float *x, size_t count, size_t group_size, const float *weight,
                          const float *bias, size_t weight_count, size_t per_weight, double eps) {
    for (size_t start = 0; start < count; start += group_size) {
        double mean = 0, var = 0;
        for (size_t i = 0; i < group_size; i++) mean += x[start + i];
        mean /= group_size;
        for (size_t i = 0; i < group_size; i++) var += (x[start + i] - mean) * (x[start + i] - mean);
        var /= group_size;
        for (size_t i = 0; i < group_size; i++) {
            size_t w = (start + i) / per_weight % weight_count;
            double y = (x[start + i] - mean) / sqrt(var + eps);
            out[start + i] = weight ? y * weight[w] + bias[w] : y;
        }
    }
}

/* b_c = a_c (k + alpha / size * sum over c' in [c - size/2, c + (size-1)/2] of a_c'^2)^-beta */
static void direct_lrn(double *out, const float *x, int batch, int channels, int positions, int size, double alpha,
                       double beta, double k) {
    for (int b = 0; b < batch; b++)
        for (int c = 0; c < channels; c++)
            for (int p = 0; p < positions; p++) {
                double sum = 0;
                for (int d = c - size / 2; d <= c + (size - 1) / 2; d++)
                    if (d >= 0 && d < channels) {
                        double a = x[((size_t)b * channels + d) * positions + p];
                        sum += a * a;
                    }
                size_t i = ((size_t)b * channels + c) * positions + p;
                out[i] = x[i] * pow(k + alpha / size * sum, -beta);
            }
}

static void assert_near(const float *got, const double *want, size_t count, double tol, const char *what) {
    for (size_t i = 0; i < count; i++)
        ck_assert_msg(fabs(got[i] - want[i]) <= tol * (1 + fabs(want[i])), "%s[%zu]: %.9g want %.9g", what, i,
                      got[i], want[i]);
}

static const norm_case direct_cases[] = {
    {LAYER_NORM, {3, {2, 3, 4}}, 3, "normalized_shape=3,4"},
    {LAYER_NORM, {2, {3, 37, 0}}, 2, "normalized_shape=37"},
    {LAYER_NORM, {3, {2, 3, 4}}, 2, "normalized_shape=2,3,4 elementwise_affine=false eps=0.5"},
    {GROUP_NORM, {3, {6, 5, 7}}, 3, "num_groups=3"},
    {GROUP_NORM, {1, {6, 0, 0}}, 4, "num_groups=2 eps=0.1"},
    {GROUP_NORM, {2, {4, 9, 0}}, 2, "num_groups=4 affine=false"},
    {INSTANCE_NORM, {3, {3, 5, 7}}, 3, "affine=true"},
    {INSTANCE_NORM, {3, {2, 4, 3}}, 2, NULL},
    {LRN, {3, {7, 3, 5}}, 3, "size=5 alpha=0.3 beta=0.75 k=1"},
    {LRN, {2, {4, 9, 0}}, 2, "size=2 alpha=1 beta=1.5 k=2"},
    {LRN, {1, {6, 0, 0}}, 4, "size=3 alpha=1e-4"},
    {LRN, {3, {3, 2, 2}}, 2, "size=8 alpha=2 beta=0.5 k=0.5"},
};

/* Forward in training and eval (the same without running statistics)
 * against the formulas above, on inputs off centre. */
START_TEST(norm_forward_matches_direct) {
    const norm_case *c = &direct_cases[_i];
    bound_layer b = bind(c, 60 + (uint64_t)_i);
    size_t sample = nn_shape_size(c->shape), count = (size_t)c->batch * sample;
    nn_rng rng;
    nn_rng_seed(&rng, 90 + (uint64_t)_i);
    float *x = random_floats(count, &rng, 3, 2), *out = malloc(count * sizeof *out);
    double *want = malloc(count * sizeof *want);
    nn_arg_value args[NN_MAX_ARGS];
    set_args(c->kind, args, c->args);
    double eps = c->kind == LRN ? 0 : args[nn_arg_find(c->kind->args, c->kind->arg_count, "eps")].value[0];
    const float *weight = b.param_count ? b.params : NULL, *bias = weight ? b.params + b.param_count / 2 : NULL;
    int channels = c->shape.dims[0], positions = (int)(sample / (size_t)channels);
    if (c->kind == LAYER_NORM) {
        size_t normalized = b.param_count ? b.param_count / 2 : 1;
        if (!b.param_count)
            for (int i = 0; i < args[0].count; i++) normalized *= (size_t)args[0].value[i];
        direct_groups(want, x, count, normalized, weight, bias, normalized, 1, eps);
    } else if (c->kind == GROUP_NORM) {
        int groups = (int)args[0].value[0];
        direct_groups(want, x, count, sample / (size_t)groups, weight, bias, (size_t)channels, (size_t)positions, eps);
    } else if (c->kind == INSTANCE_NORM) {
        direct_groups(want, x, count, (size_t)positions, weight, bias, (size_t)channels, (size_t)positions, eps);
    } else {
        direct_lrn(want, x, c->batch, channels, positions, (int)args[0].value[0], args[1].value[0], args[2].value[0],
                   args[3].value[0]);
    }
    for (int training = 0; training <= 1; training++) {
        nn_mode mode = {.training = training, .update_buffers = true};
        c->kind->forward(b.layer, b.context, out, x, c->batch, &mode);
        assert_near(out, want, count, 2e-5, c->kind->name);
    }
    unbind(&b);
    free(x), free(out), free(want);
}
END_TEST

/* InstanceNorm2d(track_running_stats=True): two training steps move the
 * running statistics by momentum towards the batch's average of the
 * samples' means and unbiased variances; num_batches_tracked stays 0 as in
 * torch; eval normalises with them, and its din is the affine map's. */
START_TEST(instance_norm_running_statistics) {
    const norm_case c = {INSTANCE_NORM, {3, {3, 4, 5}}, 4, "affine=true track_running_stats=true momentum=0.3"};
    bound_layer b = bind(&c, 7);
    int channels = 3, positions = 20, batch = 4;
    size_t count = (size_t)batch * channels * positions;
    nn_rng rng;
    nn_rng_seed(&rng, 8);
    const float *weight = b.params, *bias = b.params + channels;
    float *running_mean = b.layer->state[2].array.data, *running_var = b.layer->state[3].array.data;
    double want_mean[3] = {0, 0, 0}, want_var[3] = {1, 1, 1};
    float *x = NULL, *out = malloc(count * sizeof *out), *din = malloc(count * sizeof *din);
    for (int step = 0; step < 2; step++) {
        free(x);
        x = random_floats(count, &rng, 2 + step, 1.5f);
        nn_mode train = {.training = true, .update_buffers = true};
        nn_instance_norm2d_kind.forward(b.layer, b.context, out, x, batch, &train);
        for (int ch = 0; ch < channels; ch++) {
            double mean_sum = 0, var_sum = 0;
            for (int s = 0; s < batch; s++) {
                const float *row = x + ((size_t)s * channels + ch) * positions;
                double mean = 0, squares = 0;
                for (int p = 0; p < positions; p++) mean += row[p];
                mean /= positions;
                for (int p = 0; p < positions; p++) squares += (row[p] - mean) * (row[p] - mean);
                mean_sum += mean;
                var_sum += squares / (positions - 1);
            }
            want_mean[ch] = 0.7 * want_mean[ch] + 0.3 * mean_sum / batch;
            want_var[ch] = 0.7 * want_var[ch] + 0.3 * var_sum / batch;
        }
    }
    for (int ch = 0; ch < channels; ch++) {
        ck_assert_double_eq_tol(running_mean[ch], want_mean[ch], 1e-5);
        ck_assert_double_eq_tol(running_var[ch], want_var[ch], 1e-5);
    }
    ck_assert_int_eq(*(int64_t *)b.layer->state[4].array.data, 0);
    float *dout = random_floats(count, &rng, 0, 1);
    nn_mode eval = {.training = false, .update_buffers = true};
    nn_instance_norm2d_kind.forward(b.layer, b.context, out, x, batch, &eval);
    nn_instance_norm2d_kind.backward(b.layer, b.context, din, dout, x, out, batch, b.grads, &eval);
    for (size_t i = 0; i < count; i++) {
        int ch = (int)(i / positions % channels);
        double scale = weight[ch] / sqrt(want_var[ch] + 1e-5);
        ck_assert_double_eq_tol(out[i], (x[i] - want_mean[ch]) * scale + bias[ch], 1e-4);
        ck_assert_double_eq_tol(din[i], dout[i] * scale, 1e-5);
    }
    ck_assert_double_eq_tol(running_mean[0], want_mean[0], 1e-5); /* eval left them */
    /* without running statistics eval is training's: per-sample statistics */
    const norm_case plain = {INSTANCE_NORM, {3, {3, 4, 5}}, 4, "affine=true"};
    bound_layer p = bind(&plain, 7);
    float *train_out = malloc(count * sizeof *train_out);
    nn_instance_norm2d_kind.forward(p.layer, p.context, train_out, x, batch, &(nn_mode){.training = true});
    nn_instance_norm2d_kind.forward(p.layer, p.context, out, x, batch, &eval);
    ck_assert_mem_eq(out, train_out, count * sizeof *out);
    unbind(&b), unbind(&p);
    free(x), free(out), free(din), free(dout), free(train_out);
}
END_TEST

/* The statistics are per sample: a batch run as two slices, each with its
 * own context, gives the whole batch's outputs and input gradients bit for
 * bit and its parameter gradients as the slices' sum. */
START_TEST(norm_slices_match_whole_batch) {
    const norm_case *c = &direct_cases[_i];
    bound_layer b = bind(c, 3);
    nn_error err = {0};
    void *second = c->kind->context_create(b.layer, MAX_BATCH, &err);
    ck_assert_ptr_nonnull(second);
    size_t sample = nn_shape_size(c->shape);
    int batch = 5, first = 2;
    size_t count = (size_t)batch * sample, split = (size_t)first * sample;
    nn_rng rng;
    nn_rng_seed(&rng, 4);
    float *x = random_floats(count, &rng, -1, 2), *dout = random_floats(count, &rng, 0, 1);
    float *want_out = malloc(count * sizeof *want_out), *want_din = malloc(count * sizeof *want_din);
    float *out = malloc(count * sizeof *out), *din = malloc(count * sizeof *din);
    float *want_grads = malloc((b.param_count + 1) * sizeof *want_grads);
    nn_mode mode = {.training = true, .update_buffers = true};
    c->kind->forward(b.layer, b.context, want_out, x, batch, &mode);
    c->kind->backward(b.layer, b.context, want_din, dout, x, want_out, batch, want_grads, &mode);
    float *grads2 = malloc((b.param_count + 1) * sizeof *grads2);
    c->kind->forward(b.layer, b.context, out, x, first, &mode);
    c->kind->forward(b.layer, second, out + split, x + split, batch - first, &mode);
    c->kind->backward(b.layer, second, din + split, dout + split, x + split, out + split, batch - first, grads2, &mode);
    c->kind->backward(b.layer, b.context, din, dout, x, out, first, b.grads, &mode);
    ck_assert_mem_eq(out, want_out, count * sizeof *out);
    ck_assert_mem_eq(din, want_din, count * sizeof *din);
    for (size_t i = 0; i < b.param_count; i++)
        ck_assert_msg(fabsf(b.grads[i] + grads2[i] - want_grads[i]) <= 1e-5f * (1 + fabsf(want_grads[i])),
                      "grad[%zu] %g + %g want %g", i, b.grads[i], grads2[i], want_grads[i]);
    c->kind->context_free(second);
    unbind(&b);
    free(x), free(dout), free(want_out), free(want_din), free(out), free(din), free(want_grads), free(grads2);
}
END_TEST

/* torch's state_dict names, shapes and which are trainable. */
START_TEST(norm_state_entries) {
    struct {
        norm_case c;
        const char *names; /* "name:shape ..." with * for trainable */
    } want[] = {
        {{LAYER_NORM, {3, {2, 3, 4}}, 1, "normalized_shape=3,4"}, "weight*:3x4 bias*:3x4"},
        {{LAYER_NORM, {1, {5, 0, 0}}, 1, "normalized_shape=5"}, "weight*:5 bias*:5"},
        {{LAYER_NORM, {1, {5, 0, 0}}, 1, "normalized_shape=5 elementwise_affine=false"}, ""},
        {{GROUP_NORM, {3, {6, 2, 2}}, 1, "num_groups=3"}, "weight*:6 bias*:6"},
        {{GROUP_NORM, {3, {6, 2, 2}}, 1, "num_groups=3 affine=false"}, ""},
        {{INSTANCE_NORM, {3, {4, 2, 2}}, 1, NULL}, ""},
        {{INSTANCE_NORM, {3, {4, 2, 2}}, 1, "affine=true"}, "weight*:4 bias*:4"},
        {{INSTANCE_NORM, {3, {4, 2, 2}}, 1, "track_running_stats=true"},
         "running_mean:4 running_var:4 num_batches_tracked:"},
        {{INSTANCE_NORM, {3, {4, 2, 2}}, 1, "affine=true track_running_stats=true"},
         "weight*:4 bias*:4 running_mean:4 running_var:4 num_batches_tracked:"},
        {{LRN, {3, {4, 2, 2}}, 1, "size=2"}, ""},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        nn_error err = {0};
        nn_layer *layer = create(want[i].c.kind, want[i].c.shape, want[i].c.args, &err);
        ck_assert_msg(layer != NULL, "%s", err.message);
        ck_assert(nn_shape_equal(layer->out_shape, want[i].c.shape));
        char text[256] = "";
        for (int s = 0; s < layer->state_count; s++) {
            const nn_array *a = &layer->state[s].array;
            size_t used = strlen(text);
            snprintf(text + used, sizeof text - used, "%s%s%s:", s ? " " : "", a->name,
                     layer->state[s].trainable ? "*" : "");
            for (int d = 0; d < a->rank; d++) {
                used = strlen(text);
                snprintf(text + used, sizeof text - used, "%s%lld", d ? "x" : "", (long long)a->dims[d]);
            }
            ck_assert_int_eq(a->dtype, strcmp(a->name, "num_batches_tracked") == 0 ? NN_I64 : NN_F32);
            if (!layer->state[s].trainable) ck_assert_ptr_nonnull(a->data);
        }
        ck_assert_msg(strcmp(text, want[i].names) == 0, "case %zu: %s want %s", i, text, want[i].names);
        layer->kind->destroy(layer);
    }
}
END_TEST

/* Strings printed by torch 1.13 for the same modules. */
START_TEST(norm_describe_matches_pytorch) {
    struct {
        norm_case c;
        const char *repr;
    } want[] = {
        {{LAYER_NORM, {1, {5, 0, 0}}, 1, "normalized_shape=5"}, "LayerNorm((5,), eps=1e-05, elementwise_affine=True)"},
        {{LAYER_NORM, {1, {5, 0, 0}}, 1, "normalized_shape=[5]"}, "LayerNorm((5,), eps=1e-05, elementwise_affine=True)"},
        {{LAYER_NORM, {3, {2, 3, 5}}, 1, "normalized_shape=3,5 eps=0.001 elementwise_affine=false"},
         "LayerNorm((3, 5), eps=0.001, elementwise_affine=False)"},
        {{LAYER_NORM, {1, {5, 0, 0}}, 1, "normalized_shape=5 eps=1"}, "LayerNorm((5,), eps=1, elementwise_affine=True)"},
        {{GROUP_NORM, {3, {4, 2, 2}}, 1, "num_groups=2"}, "GroupNorm(2, 4, eps=1e-05, affine=True)"},
        {{GROUP_NORM, {1, {4, 0, 0}}, 1, "num_groups=2 num_channels=4 eps=0.001 affine=false"},
         "GroupNorm(2, 4, eps=0.001, affine=False)"},
        {{INSTANCE_NORM, {3, {3, 2, 2}}, 1, NULL},
         "InstanceNorm2d(3, eps=1e-05, momentum=0.1, affine=False, track_running_stats=False)"},
        {{INSTANCE_NORM, {3, {3, 2, 2}}, 1, "affine=true momentum=0.5"},
         "InstanceNorm2d(3, eps=1e-05, momentum=0.5, affine=True, track_running_stats=False)"},
        {{INSTANCE_NORM, {3, {3, 2, 2}}, 1, "num_features=3 track_running_stats=true momentum=1 eps=0.5"},
         "InstanceNorm2d(3, eps=0.5, momentum=1, affine=False, track_running_stats=True)"},
        {{LRN, {3, {3, 2, 2}}, 1, "size=3"}, "LocalResponseNorm(3, alpha=0.0001, beta=0.75, k=1.0)"},
        {{LRN, {3, {3, 2, 2}}, 1, "size=2 alpha=1 beta=2 k=2"}, "LocalResponseNorm(2, alpha=1, beta=2, k=2)"},
        {{LRN, {3, {3, 2, 2}}, 1, "size=2 alpha=0.0001 beta=0.5 k=1e-3"}, "LocalResponseNorm(2, alpha=0.0001, beta=0.5, k=0.001)"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        nn_error err = {0};
        nn_layer *layer = create(want[i].c.kind, want[i].c.shape, want[i].c.args, &err);
        ck_assert_msg(layer != NULL, "%s", err.message);
        char text[256];
        layer->kind->describe(layer, text, sizeof text);
        ck_assert_str_eq(text, want[i].repr);
        layer->kind->destroy(layer);
    }
}
END_TEST

START_TEST(norm_rejects_bad_arguments) {
    struct {
        norm_case c;
        const char *message;
    } want[] = {
        {{LAYER_NORM, {3, {3, 4, 6}}, 1, "normalized_shape=4,5"},
         "normalized_shape (4, 5) is not the last dimensions of the input (3, 4, 6): give 1 to 3 of them, such as 6"},
        {{LAYER_NORM, {1, {6, 0, 0}}, 1, "normalized_shape=5"}, "normalized_shape (5,) is not the last dimensions of the input (6,)"},
        {{LAYER_NORM, {2, {3, 6, 0}}, 1, "normalized_shape=3"}, "normalized_shape (3,) is not the last"},
        {{LAYER_NORM, {1, {6, 0, 0}}, 1, "normalized_shape=2,6"}, "normalized_shape (2, 6) is not the last"},
        {{LAYER_NORM, {1, {6, 0, 0}}, 1, "normalized_shape=[]"}, "normalized_shape () is not the last"},
        {{LAYER_NORM, {1, {6, 0, 0}}, 1, "normalized_shape=6 eps=-1"}, "eps must not be negative, got -1"},
        {{GROUP_NORM, {3, {6, 2, 2}}, 1, "num_groups=4"}, "num_groups 4 does not divide the 6 channels of the input (6, 2, 2)"},
        {{GROUP_NORM, {1, {6, 0, 0}}, 1, "num_groups=0"}, "num_groups 0 does not divide the 6 channels"},
        {{GROUP_NORM, {1, {6, 0, 0}}, 1, "num_groups=-3"}, "num_groups -3 does not divide"},
        {{GROUP_NORM, {1, {6, 0, 0}}, 1, "num_groups=12"}, "num_groups 12 does not divide"},
        {{GROUP_NORM, {2, {6, 3, 0}}, 1, "num_groups=2 num_channels=3"}, "num_channels is 3 but the input (6, 3) has 6"},
        {{GROUP_NORM, {1, {6, 0, 0}}, 1, "num_groups=2 eps=-0.5"}, "eps must not be negative"},
        {{INSTANCE_NORM, {2, {3, 4, 0}}, 1, NULL}, "InstanceNorm2d needs an input of shape (channels, height, width), got (3, 4)"},
        {{INSTANCE_NORM, {1, {3, 0, 0}}, 1, NULL}, "got (3,)"},
        {{INSTANCE_NORM, {3, {3, 4, 4}}, 1, "num_features=4"}, "num_features is 4 but the input (3, 4, 4) has 3"},
        {{INSTANCE_NORM, {3, {3, 1, 1}}, 1, NULL}, "InstanceNorm2d needs more than 1 position per channel, got the input (3, 1, 1)"},
        {{INSTANCE_NORM, {3, {3, 2, 2}}, 1, "track_running_stats=true momentum=null"},
         "momentum None is not supported by InstanceNorm2d: torch 1.13's instance_norm fails on it"},
        {{INSTANCE_NORM, {3, {3, 2, 2}}, 1, "momentum=null"}, "momentum None is not supported"},
        {{INSTANCE_NORM, {3, {3, 2, 2}}, 1, "momentum=1.5"}, "momentum must be between 0 and 1, got 1.5"},
        {{INSTANCE_NORM, {3, {3, 2, 2}}, 1, "eps=-1"}, "eps must not be negative"},
        {{LRN, {3, {3, 2, 2}}, 1, "size=0"}, "size must be at least 1, got 0"},
        {{LRN, {1, {3, 0, 0}}, 1, "size=-2"}, "size must be at least 1, got -2"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        nn_error err = {0};
        nn_layer *layer = create(want[i].c.kind, want[i].c.shape, want[i].c.args, &err);
        ck_assert_msg(layer == NULL, "case %zu was accepted", i);
        ck_assert_int_eq(err.status, NN_ERR_INPUT);
        ck_assert_msg(strstr(err.message, want[i].message), "case %zu: %s", i, err.message);
    }
}
END_TEST

int main(void) {
    Suite *suite = suite_create("norm");
    TCase *tc = tcase_create("norm");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, norm_gradients, 0, sizeof cases / sizeof cases[0]);
    tcase_add_loop_test(tc, norm_forward_matches_direct, 0, sizeof direct_cases / sizeof direct_cases[0]);
    tcase_add_loop_test(tc, norm_slices_match_whole_batch, 0, sizeof direct_cases / sizeof direct_cases[0]);
    tcase_add_test(tc, instance_norm_running_statistics);
    tcase_add_test(tc, norm_state_entries);
    tcase_add_test(tc, norm_describe_matches_pytorch);
    tcase_add_test(tc, norm_rejects_bad_arguments);
    suite_add_tcase(suite, tc);
    return testutil_run(suite);
}
