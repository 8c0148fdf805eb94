/* SGD, Adam and AdamW with torch.optim's (1.13, single-tensor) update
 * equations, over one flat parameter buffer. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "optimizer.h"

double nn_optimizer_arg(const nn_optimizer *opt, const char *name, int index) {
    int i = nn_arg_find(opt->kind->args, opt->kind->arg_count, name);
    return i < 0 ? 0.0 : opt->args[i].value[index];
}

static int check_lr(const nn_arg_value *args, nn_error *err) {
    if (!(args[0].value[0] >= 0)) return nn_error_set(err, NN_ERR_INPUT, "lr must be >= 0, got %g", args[0].value[0]);
    return 0;
}

/* --- SGD --------------------------------------------------------------- */

enum { SGD_LR, SGD_MOMENTUM, SGD_DAMPENING, SGD_NESTEROV, SGD_WEIGHT_DECAY };

static const nn_arg_spec sgd_args[] = {
    {"lr", NN_ARG_FLOAT, 0, {0.001, 0}},
    {"momentum", NN_ARG_FLOAT, 0, {0, 0}},
    {"dampening", NN_ARG_FLOAT, 0, {0, 0}},
    {"nesterov", NN_ARG_BOOL, 0, {0, 0}},
    {"weight_decay", NN_ARG_FLOAT, 0, {0, 0}},
};

static int sgd_check(const nn_arg_value *args, nn_error *err) {
    if (check_lr(args, err)) return -1;
    if (args[SGD_MOMENTUM].value[0] < 0)
        return nn_error_set(err, NN_ERR_INPUT, "momentum must be >= 0, got %g", args[SGD_MOMENTUM].value[0]);
    if (args[SGD_WEIGHT_DECAY].value[0] < 0)
        return nn_error_set(err, NN_ERR_INPUT, "weight_decay must be >= 0, got %g",
                            args[SGD_WEIGHT_DECAY].value[0]);
    if (args[SGD_NESTEROV].value[0] != 0 &&
        (args[SGD_MOMENTUM].value[0] <= 0 || args[SGD_DAMPENING].value[0] != 0))
        return nn_error_set(err, NN_ERR_INPUT, "nesterov momentum requires a momentum > 0 and zero dampening");
    return 0;
}

static void sgd_step(nn_optimizer *opt, float *params, const float *grads) {
    const nn_arg_value *a = opt->args;
    float lr = (float)opt->lr, momentum = (float)a[SGD_MOMENTUM].value[0];
    float dampening = (float)a[SGD_DAMPENING].value[0], weight_decay = (float)a[SGD_WEIGHT_DECAY].value[0];
    bool nesterov = a[SGD_NESTEROV].value[0] != 0, first = opt->steps == 0;
    float *buffer = opt->buffers[0];
    for (size_t i = 0; i < opt->param_count; i++) {
        float g = grads[i];
        if (weight_decay != 0) g += weight_decay * params[i];
        if (momentum != 0) {
            /* torch starts the buffer at the first gradient, undampened. */
            buffer[i] = first ? g : momentum * buffer[i] + (1 - dampening) * g;
            g = nesterov ? g + momentum * buffer[i] : buffer[i];
        }
        params[i] -= lr * g;
    }
}

/* --- Adam and AdamW ------------------------------------------------------ */

enum { ADAM_LR, ADAM_BETAS, ADAM_EPS, ADAM_WEIGHT_DECAY };

static const nn_arg_spec adam_args[] = {
    {"lr", NN_ARG_FLOAT, 0, {0.001, 0}},
    {"betas", NN_ARG_FLOAT_PAIR, 0, {0.9, 0.999}},
    {"eps", NN_ARG_FLOAT, 0, {1e-8, 0}},
    {"weight_decay", NN_ARG_FLOAT, 0, {0, 0}},
};

static const nn_arg_spec adamw_args[] = {
    {"lr", NN_ARG_FLOAT, 0, {0.001, 0}},
    {"betas", NN_ARG_FLOAT_PAIR, 0, {0.9, 0.999}},
    {"eps", NN_ARG_FLOAT, 0, {1e-8, 0}},
    {"weight_decay", NN_ARG_FLOAT, 0, {0.01, 0}},
};

static int adam_check(const nn_arg_value *args, nn_error *err) {
    if (check_lr(args, err)) return -1;
    for (int i = 0; i < 2; i++)
        if (!(args[ADAM_BETAS].value[i] >= 0 && args[ADAM_BETAS].value[i] < 1))
            return nn_error_set(err, NN_ERR_INPUT, "betas[%d] must be in [0, 1), got %g", i,
                                args[ADAM_BETAS].value[i]);
    if (!(args[ADAM_EPS].value[0] >= 0))
        return nn_error_set(err, NN_ERR_INPUT, "eps must be >= 0, got %g", args[ADAM_EPS].value[0]);
    if (!(args[ADAM_WEIGHT_DECAY].value[0] >= 0))
        return nn_error_set(err, NN_ERR_INPUT, "weight_decay must be >= 0, got %g",
                            args[ADAM_WEIGHT_DECAY].value[0]);
    return 0;
}

static void adam_update(nn_optimizer *opt, float *params, const float *grads, bool decoupled) {
    const nn_arg_value *a = opt->args;
    double lr = opt->lr, beta1 = a[ADAM_BETAS].value[0], beta2 = a[ADAM_BETAS].value[1];
    float eps = (float)a[ADAM_EPS].value[0], weight_decay = (float)a[ADAM_WEIGHT_DECAY].value[0];
    double step = (double)opt->steps + 1;
    /* The scalars in double as torch computes them in Python floats. */
    float step_size = (float)(lr / (1 - pow(beta1, step)));
    float bias_correction2_sqrt = (float)sqrt(1 - pow(beta2, step));
    float decay = (float)(1 - lr * weight_decay);
    float b1 = (float)beta1, b2 = (float)beta2;
    float *exp_avg = opt->buffers[0], *exp_avg_sq = opt->buffers[1];
    for (size_t i = 0; i < opt->param_count; i++) {
        float g = grads[i];
        if (decoupled)
            params[i] *= decay;
        else if (weight_decay != 0)
            g += weight_decay * params[i];
        exp_avg[i] = exp_avg[i] * b1 + (1 - b1) * g;
        exp_avg_sq[i] = exp_avg_sq[i] * b2 + (1 - b2) * g * g;
        float denom = sqrtf(exp_avg_sq[i]) / bias_correction2_sqrt + eps;
        params[i] -= step_size * exp_avg[i] / denom;
    }
}

static void adam_step(nn_optimizer *opt, float *params, const float *grads) {
    adam_update(opt, params, grads, false);
}

static void adamw_step(nn_optimizer *opt, float *params, const float *grads) {
    adam_update(opt, params, grads, true);
}

static const nn_optimizer_kind sgd_kind = {
    "sgd", sgd_args, sizeof sgd_args / sizeof sgd_args[0], 1, {"momentum_buffer", NULL}, sgd_check, sgd_step,
};
static const nn_optimizer_kind adam_kind = {
    "adam", adam_args, sizeof adam_args / sizeof adam_args[0], 2, {"exp_avg", "exp_avg_sq"}, adam_check, adam_step,
};
static const nn_optimizer_kind adamw_kind = {
    "adamw", adamw_args, sizeof adamw_args / sizeof adamw_args[0], 2, {"exp_avg", "exp_avg_sq"}, adam_check,
    adamw_step,
};

static const nn_optimizer_kind *const kinds[] = {&sgd_kind, &adam_kind, &adamw_kind};

const nn_optimizer_kind *nn_optimizer_kind_find(const char *name) {
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i]->name, name) == 0) return kinds[i];
    return NULL;
}

const nn_optimizer_kind *const *nn_optimizer_kinds(int *count) {
    *count = (int)(sizeof kinds / sizeof kinds[0]);
    return kinds;
}

int nn_optimizer_init(nn_optimizer *opt, const nn_optimizer_kind *kind, const nn_arg_value *args,
                      size_t param_count, nn_error *err) {
    memset(opt, 0, sizeof *opt);
    opt->kind = kind;
    memcpy(opt->args, args, (size_t)kind->arg_count * sizeof *args);
    if (kind->check(opt->args, err)) return -1;
    opt->lr = nn_optimizer_arg(opt, "lr", 0);
    opt->param_count = param_count;
    for (int i = 0; i < kind->buffer_count; i++) {
        opt->buffers[i] = calloc(param_count ? param_count : 1, sizeof(float));
        if (!opt->buffers[i]) {
            nn_optimizer_free(opt);
            return nn_error_oom(err, "optimizer state");
        }
    }
    return 0;
}

void nn_optimizer_step(nn_optimizer *opt, float *params, const float *grads) {
    opt->kind->step(opt, params, grads);
    opt->steps++;
}

void nn_optimizer_free(nn_optimizer *opt) {
    for (int i = 0; i < NN_OPTIMIZER_MAX_BUFFERS; i++) {
        free(opt->buffers[i]);
        opt->buffers[i] = NULL;
    }
}
