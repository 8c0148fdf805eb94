/* SGD with momentum, dampening, Nesterov, weight decay and maximize, as
 * torch.optim.SGD (1.13, single-tensor). Scalars are computed once per step
 * as torch computes them; the per-parameter loops have no branches, so they
 * vectorise. */
#include <stdbool.h>

#include "core/target_clones.h"
#include "optim/optimizers.h"

enum { SGD_LR, SGD_MOMENTUM, SGD_DAMPENING, SGD_NESTEROV, SGD_WEIGHT_DECAY, SGD_MAXIMIZE };

/* torch 1.13 requires lr for SGD; 0.001 is torch 2's default. */
static const nn_arg_spec sgd_args[] = {
    {"lr", NN_ARG_FLOAT, 0, {0.001, 0}, NULL},
    {"momentum", NN_ARG_FLOAT, 0, {0, 0}, NULL},
    {"dampening", NN_ARG_FLOAT, 0, {0, 0}, NULL},
    {"nesterov", NN_ARG_BOOL, 0, {0, 0}, NULL},
    {"weight_decay", NN_ARG_FLOAT, 0, {0, 0}, NULL},
    {"maximize", NN_ARG_BOOL, 0, {0, 0}, NULL},
};

static int sgd_check(const nn_arg_value *args, nn_error *err) {
    double momentum = args[SGD_MOMENTUM].value[0], dampening = args[SGD_DAMPENING].value[0];
    if (nn_check_not_negative("lr", args[SGD_LR].value[0], err) ||
        nn_check_not_negative("momentum", momentum, err) ||
        nn_check_not_negative("weight_decay", args[SGD_WEIGHT_DECAY].value[0], err))
        return -1;
    if (args[SGD_NESTEROV].value[0] != 0 && (!(momentum > 0) || dampening != 0))
        return nn_error_set(err, NN_ERR_INPUT,
                            "nesterov momentum requires a momentum > 0 and zero dampening, "
                            "got momentum %g and dampening %g",
                            momentum, dampening);
    return 0;
}

/* Per-step scalars of the update, in float as torch casts them. */
typedef struct sgd_coefficients {
    float lr, weight_decay;
    float sign;               /* -1 with maximize: exact, so the bits are torch's -grad */
    float keep, scale;        /* buffer = keep buffer + scale d */
    float nesterov_momentum;  /* 0 without nesterov */
} sgd_coefficients;

NN_VECTOR_CLONES static void sgd_plain_update(float *restrict param, const float *restrict grad, sgd_coefficients c,
                                              size_t count) {
    for (size_t i = 0; i < count; i++) param[i] -= c.lr * (c.sign * grad[i] + c.weight_decay * param[i]);
}

NN_VECTOR_CLONES static void sgd_momentum_update(float *restrict param, float *restrict buffer, const float *restrict grad,
                                sgd_coefficients c, size_t count) {
    if (c.nesterov_momentum != 0) {
        for (size_t i = 0; i < count; i++) {
            float decayed = c.sign * grad[i] + c.weight_decay * param[i];
            buffer[i] = c.keep * buffer[i] + c.scale * decayed;
            param[i] -= c.lr * (decayed + c.nesterov_momentum * buffer[i]);
        }
    } else {
        for (size_t i = 0; i < count; i++) {
            buffer[i] = c.keep * buffer[i] + c.scale * (c.sign * grad[i] + c.weight_decay * param[i]);
            param[i] -= c.lr * buffer[i];
        }
    }
}

/* d = g + weight_decay p (g = -grad with maximize); without momentum
 * p -= lr d. With momentum the buffer b = momentum b + (1 - dampening) d,
 * except on the first step where torch sets b = d; then p -= lr b, or
 * lr (d + momentum b) for nesterov. A weight_decay of 0 (no_decay's
 * parameters too) adds exactly 0, so one loop serves both cases. The
 * momentum is opt->momentum, which a schedule may change. */
static void sgd_step(const nn_optimizer *opt, float *params, const float *grads, size_t first, size_t count) {
    const nn_arg_value *args = opt->args;
    double momentum = opt->momentum, weight_decay = args[SGD_WEIGHT_DECAY].value[0];
    /* The buffer starts at zero, so keep = 0 and scale = 1 give torch's
     * first-step rule b = d without a branch in the loop. */
    bool first_step = opt->steps == 0;
    sgd_coefficients c = {
        .lr = (float)opt->lr,
        .sign = args[SGD_MAXIMIZE].value[0] != 0 ? -1.0f : 1.0f,
        .keep = first_step ? 0.0f : (float)momentum,
        .scale = first_step ? 1.0f : (float)(1 - args[SGD_DAMPENING].value[0]),
        .nesterov_momentum = args[SGD_NESTEROV].value[0] != 0 ? (float)momentum : 0.0f,
    };
    size_t end = first + count;
    for (size_t at = first, next; at < end; at = next) {
        bool decayed;
        next = nn_optimizer_decay_run(opt, at, end, &decayed);
        c.weight_decay = decayed ? (float)weight_decay : 0.0f;
        if (momentum == 0)
            sgd_plain_update(params + at, grads + at, c, next - at);
        else
            sgd_momentum_update(params + at, opt->buffers[0] + at, grads + at, c, next - at);
    }
}

/* The momentum buffer exists even with momentum 0: OneCycleLR's
 * cycle_momentum sets a momentum whatever the configured one, as torch's
 * does before the first step creates the state. */
const nn_optimizer_kind nn_sgd_kind = {
    .name = "sgd",
    .alias = "SGD",
    .args = sgd_args,
    .arg_count = COUNT_OF(sgd_args),
    .buffer_count = 1,
    .buffer_names = {"momentum_buffer"},
    .check = sgd_check,
    .update = sgd_step,
    .momentum_arg = "momentum",
};
