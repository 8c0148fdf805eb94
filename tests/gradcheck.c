#include "gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gradcheck_args_default(const nn_layer_kind *kind, nn_arg_value *args) {
    nn_arg_defaults(args, kind->args, kind->arg_count);
}

void gradcheck_args_set(const nn_layer_kind *kind, nn_arg_value *args, const char *name, double v0,
                        double v1) {
    int i = nn_arg_find(kind->args, kind->arg_count, name);
    if (i < 0) {
        fprintf(stderr, "gradcheck: %s has no argument %s\n", kind->name, name);
        abort();
    }
    args[i].given = true;
    args[i].value[0] = v0;
    args[i].value[1] = v1;
}

typedef struct harness {
    nn_layer *layer;
    void *context;
    nn_mode mode;   /* fixed Dropout keys: every forward draws the same masks */
    int batch;
    size_t in_count, out_count;
    float *out, *r;
} harness;

static double loss_at(harness *h, const float *in) {
    h->layer->kind->forward(h->layer, h->context, h->out, in, h->batch, &h->mode);
    double loss = 0;
    for (size_t i = 0; i < h->out_count; i++) loss += (double)h->out[i] * h->r[i];
    return loss;
}

static void compare(gradcheck_result *result, const char *what, size_t index, double analytic,
                    double numeric, const gradcheck_options *o) {
    double excess = fabs(analytic - numeric) - (o->atol + o->rtol * fabs(numeric));
    if (excess > result->worst_excess || isnan(analytic)) {
        result->worst_excess = isnan(analytic) ? INFINITY : excess;
        snprintf(result->message, sizeof result->message, "%s[%zu]: analytic %.6g numeric %.6g", what,
                 index, analytic, numeric);
    }
}

/* Central difference of the loss with respect to value[index]. */
static double numeric_gradient(harness *h, const float *in, float *value, size_t index, double step) {
    float saved = value[index];
    value[index] = saved + (float)step;
    double plus = loss_at(h, in);
    value[index] = saved - (float)step;
    double minus = loss_at(h, in);
    value[index] = saved;
    return (plus - minus) / (2 * step);
}

gradcheck_result gradcheck_layer(const nn_layer_kind *kind, const nn_arg_value *args, nn_shape in_shape,
                                 gradcheck_options o) {
    gradcheck_result result = {0, -INFINITY, ""};
    if (o.batch < 1) o.batch = 3;
    if (o.step == 0) o.step = 1e-3;
    if (o.rtol == 0) o.rtol = 2e-2;
    if (o.atol == 0) o.atol = 2e-3;
    nn_arg_value defaults[NN_MAX_ARGS];
    if (!args) {
        nn_arg_defaults(defaults, kind->args, kind->arg_count);
        args = defaults;
    }
    nn_error err = {0};
    harness h = {0};
    h.layer = kind->create(args, in_shape, &err);
    if (!h.layer) {
        snprintf(result.message, sizeof result.message, "create failed: %s", err.message);
        return result;
    }
    h.layer->kind = kind;
    nn_rng data_rng;
    nn_rng_seed(&data_rng, o.seed);
    h.mode = (nn_mode){.training = o.training};
    h.batch = o.batch;
    h.in_count = (size_t)o.batch * nn_shape_size(in_shape);
    h.out_count = (size_t)o.batch * nn_shape_size(h.layer->out_shape);
    size_t param_count = nn_layer_param_count(h.layer);
    float *params = calloc(param_count + 1, sizeof *params);
    float *grads = calloc(param_count + 1, sizeof *grads);
    float *in = malloc(h.in_count * sizeof *in), *din = malloc(h.in_count * sizeof *din);
    h.out = malloc(h.out_count * sizeof *h.out);
    h.r = malloc(h.out_count * sizeof *h.r);
    float *out_saved = malloc(h.out_count * sizeof *out_saved);
    nn_layer_bind(h.layer, params);
    if (kind->init) kind->init(h.layer, &data_rng);
    /* Perturb parameters off their init so e.g. BatchNorm's weight=1, bias=0 are not special. */
    for (size_t i = 0; i < param_count; i++) params[i] += nn_rng_uniform_range(&data_rng, -0.5f, 0.5f);
    for (size_t i = 0; i < h.in_count; i++) {
        float x = nn_rng_uniform_range(&data_rng, -1, 1);
        if (fabsf(x) < o.input_gap) x = x < 0 ? x - (float)o.input_gap : x + (float)o.input_gap;
        in[i] = x;
    }
    for (size_t i = 0; i < h.out_count; i++) h.r[i] = nn_rng_uniform_range(&data_rng, -1, 1);
    if (kind->context_create && !(h.context = kind->context_create(h.layer, o.batch, &err))) {
        snprintf(result.message, sizeof result.message, "context_create failed: %s", err.message);
        goto done;
    }
    loss_at(&h, in);
    memcpy(out_saved, h.out, h.out_count * sizeof *out_saved);
    kind->backward(h.layer, h.context, din, h.r, in, out_saved, o.batch, grads, &h.mode);
    /* Copy the analytic gradients before finite differences run more forwards. */
    float *analytic_params = malloc((param_count + 1) * sizeof *analytic_params);
    memcpy(analytic_params, grads, param_count * sizeof *grads);
    for (size_t i = 0; i < h.in_count; i++)
        compare(&result, "input", i, din[i], numeric_gradient(&h, in, in, i, o.step), &o);
    size_t offset = 0;
    for (int s = 0; s < h.layer->state_count; s++) {
        nn_state *state = &h.layer->state[s];
        if (!state->trainable) continue;
        size_t count = nn_array_count(&state->array);
        for (size_t i = 0; i < count; i++)
            compare(&result, state->array.name, i, analytic_params[offset + i],
                    numeric_gradient(&h, in, state->array.data, i, o.step), &o);
        offset += count;
    }
    free(analytic_params);
    result.ok = result.worst_excess <= 0;
done:
    if (kind->context_free) kind->context_free(h.context);
    kind->destroy(h.layer);
    free(params);
    free(grads);
    free(in);
    free(din);
    free(h.out);
    free(h.r);
    free(out_saved);
    return result;
}
