/* SGD, Adam and AdamW with torch.optim's (1.13, single-tensor) update
 * equations, over one flat parameter buffer.
 *
 * Scalars that depend only on the step (bias corrections, 1 - beta) are
 * computed once per step in double, as torch computes them in Python floats,
 * and rounded to float once. The per-parameter loops run over restrict
 * pointers with no branches or calls, in torch's order of operations, so
 * that the compiler can vectorise them (sqrtf needs -fno-math-errno for
 * that) and the results agree with torch's float32 ones to within an ulp. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "optimizer.h"
#include "vector.h"

double nn_optimizer_arg(const nn_optimizer *opt, const char *name, int index) {
    int i = nn_arg_find(opt->kind->args, opt->kind->arg_count, name);
    return i < 0 ? 0.0 : opt->args[i].value[index];
}

/* Written as !(value >= 0) so that NaN is rejected too. */
static int check_not_negative(const char *name, double value, nn_error *err) {
    if (!(value >= 0)) return nn_error_set(err, NN_ERR_INPUT, "%s must be >= 0, got %g", name, value);
    return 0;
}

/* --- SGD --------------------------------------------------------------- */

enum { SGD_LR, SGD_MOMENTUM, SGD_DAMPENING, SGD_NESTEROV, SGD_WEIGHT_DECAY };

/* torch 1.13 requires lr for SGD; 0.001 is torch 2's default. */
static const nn_arg_spec sgd_args[] = {
    {"lr", NN_ARG_FLOAT, 0, {0.001, 0}},
    {"momentum", NN_ARG_FLOAT, 0, {0, 0}},
    {"dampening", NN_ARG_FLOAT, 0, {0, 0}},
    {"nesterov", NN_ARG_BOOL, 0, {0, 0}},
    {"weight_decay", NN_ARG_FLOAT, 0, {0, 0}},
};

static int sgd_check(const nn_arg_value *args, nn_error *err) {
    double momentum = args[SGD_MOMENTUM].value[0], dampening = args[SGD_DAMPENING].value[0];
    if (check_not_negative("lr", args[SGD_LR].value[0], err) ||
        check_not_negative("momentum", momentum, err) ||
        check_not_negative("weight_decay", args[SGD_WEIGHT_DECAY].value[0], err))
        return -1;
    if (args[SGD_NESTEROV].value[0] != 0 && (!(momentum > 0) || dampening != 0))
        return nn_error_set(err, NN_ERR_INPUT,
                            "nesterov momentum requires a momentum > 0 and zero dampening, "
                            "got momentum %g and dampening %g",
                            momentum, dampening);
    return 0;
}

/* Per-step scalars of the momentum update, in float as torch casts them. */
typedef struct sgd_coefficients {
    float lr, weight_decay;
    float keep, scale;        /* buffer = keep buffer + scale d */
    float nesterov_momentum;  /* 0 without nesterov */
} sgd_coefficients;

NN_VECTOR_CLONES static void sgd_plain_update(float *restrict param, const float *restrict grad, float lr, float weight_decay,
                             size_t count) {
    for (size_t i = 0; i < count; i++) param[i] -= lr * (grad[i] + weight_decay * param[i]);
}

NN_VECTOR_CLONES static void sgd_momentum_update(float *restrict param, float *restrict buffer, const float *restrict grad,
                                sgd_coefficients c, size_t count) {
    if (c.nesterov_momentum != 0) {
        for (size_t i = 0; i < count; i++) {
            float decayed = grad[i] + c.weight_decay * param[i];
            buffer[i] = c.keep * buffer[i] + c.scale * decayed;
            param[i] -= c.lr * (decayed + c.nesterov_momentum * buffer[i]);
        }
    } else {
        for (size_t i = 0; i < count; i++) {
            buffer[i] = c.keep * buffer[i] + c.scale * (grad[i] + c.weight_decay * param[i]);
            param[i] -= c.lr * buffer[i];
        }
    }
}

/* d = g + weight_decay p; without momentum p -= lr d. With momentum the
 * buffer b = momentum b + (1 - dampening) d, except on the first step where
 * torch sets b = d; then p -= lr b, or lr (d + momentum b) for nesterov.
 * A weight_decay of 0 adds exactly 0, so one loop serves both cases. */
static void sgd_step(nn_optimizer *opt, float *params, const float *grads) {
    const nn_arg_value *args = opt->args;
    float lr = (float)opt->lr, weight_decay = (float)args[SGD_WEIGHT_DECAY].value[0];
    double momentum = args[SGD_MOMENTUM].value[0];
    if (momentum == 0) {
        sgd_plain_update(params, grads, lr, weight_decay, opt->param_count);
        return;
    }
    /* The buffer starts at zero, so keep = 0 and scale = 1 give torch's
     * first-step rule b = d without a branch in the loop. */
    bool first = opt->steps == 0;
    sgd_coefficients c = {
        .lr = lr,
        .weight_decay = weight_decay,
        .keep = first ? 0.0f : (float)momentum,
        .scale = first ? 1.0f : (float)(1 - args[SGD_DAMPENING].value[0]),
        .nesterov_momentum = args[SGD_NESTEROV].value[0] != 0 ? (float)momentum : 0.0f,
    };
    sgd_momentum_update(params, opt->buffers[0], grads, c, opt->param_count);
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
    if (check_not_negative("lr", args[ADAM_LR].value[0], err) ||
        check_not_negative("eps", args[ADAM_EPS].value[0], err))
        return -1;
    for (int i = 0; i < 2; i++)
        if (!(args[ADAM_BETAS].value[i] >= 0 && args[ADAM_BETAS].value[i] < 1))
            return nn_error_set(err, NN_ERR_INPUT, "betas[%d] must be in [0, 1), got %g", i,
                                args[ADAM_BETAS].value[i]);
    return check_not_negative("weight_decay", args[ADAM_WEIGHT_DECAY].value[0], err);
}

/* Per-step scalars of the Adam update, in float as torch casts them. */
typedef struct adam_coefficients {
    float beta1, beta2, one_minus_beta1, one_minus_beta2, eps;
    float step_size;            /* lr / (1 - beta1^t) */
    float inverse_correction2;  /* 1 / sqrt(1 - beta2^t) */
    float coupled_decay;        /* Adam: added to the gradient, times p */
    float shrink;               /* AdamW: multiplies p */
} adam_coefficients;

NN_VECTOR_CLONES static void adam_loop(float *restrict param, float *restrict exp_avg, float *restrict exp_avg_sq,
                      const float *restrict grad, adam_coefficients c, size_t count) {
    for (size_t i = 0; i < count; i++) {
        float g = grad[i] + c.coupled_decay * param[i];
        float m = c.beta1 * exp_avg[i] + c.one_minus_beta1 * g;
        float v = c.beta2 * exp_avg_sq[i] + c.one_minus_beta2 * g * g;
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        param[i] = c.shrink * param[i] - c.step_size * m / (sqrtf(v) * c.inverse_correction2 + c.eps);
    }
}

/* With t = steps + 1:
 *   Adam adds the decay to the gradient: g = grad + weight_decay p;
 *   AdamW shrinks the parameter instead: p *= 1 - lr weight_decay;
 *   m = beta1 m + (1 - beta1) g,  v = beta2 v + (1 - beta2) g^2,
 *   p -= lr / (1 - beta1^t) m / (sqrt(v) / sqrt(1 - beta2^t) + eps).
 * The decay a variant does not use is applied as + 0 p or * 1, which is
 * exact. 1 - beta is rounded from double: in float, 1 - 0.999f is off by
 * 1.3e-5, which would move every update by 6e-6 relative to torch. */
static void adam_update(nn_optimizer *opt, float *params, const float *grads, bool decoupled) {
    const nn_arg_value *args = opt->args;
    double lr = opt->lr, weight_decay = args[ADAM_WEIGHT_DECAY].value[0];
    double beta1 = args[ADAM_BETAS].value[0], beta2 = args[ADAM_BETAS].value[1];
    double step = (double)opt->steps + 1;
    adam_coefficients c = {
        .beta1 = (float)beta1,
        .beta2 = (float)beta2,
        .one_minus_beta1 = (float)(1 - beta1),
        .one_minus_beta2 = (float)(1 - beta2),
        .eps = (float)args[ADAM_EPS].value[0],
        .step_size = (float)(lr / (1 - pow(beta1, step))),
        .inverse_correction2 = (float)(1 / sqrt(1 - pow(beta2, step))),
        .coupled_decay = decoupled ? 0.0f : (float)weight_decay,
        .shrink = decoupled ? (float)(1 - lr * weight_decay) : 1.0f,
    };
    adam_loop(params, opt->buffers[0], opt->buffers[1], grads, c, opt->param_count);
}

static void adam_step(nn_optimizer *opt, float *params, const float *grads) {
    adam_update(opt, params, grads, false);
}

static void adamw_step(nn_optimizer *opt, float *params, const float *grads) {
    adam_update(opt, params, grads, true);
}

#define COUNT_OF(array) ((int)(sizeof(array) / sizeof((array)[0])))

static const nn_optimizer_kind sgd_kind = {
    "sgd", sgd_args, COUNT_OF(sgd_args), 1, {"momentum_buffer", NULL}, sgd_check, sgd_step,
};
static const nn_optimizer_kind adam_kind = {
    "adam", adam_args, COUNT_OF(adam_args), 2, {"exp_avg", "exp_avg_sq"}, adam_check, adam_step,
};
static const nn_optimizer_kind adamw_kind = {
    "adamw", adamw_args, COUNT_OF(adamw_args), 2, {"exp_avg", "exp_avg_sq"}, adam_check, adamw_step,
};

static const nn_optimizer_kind *const kinds[] = {&sgd_kind, &adam_kind, &adamw_kind};

const nn_optimizer_kind *nn_optimizer_kind_find(const char *name) {
    for (int i = 0; i < COUNT_OF(kinds); i++)
        if (strcmp(kinds[i]->name, name) == 0) return kinds[i];
    return NULL;
}

const nn_optimizer_kind *const *nn_optimizer_kinds(int *count) {
    *count = COUNT_OF(kinds);
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
        /* calloc: the rules above rely on zero buffers at step 0. */
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
