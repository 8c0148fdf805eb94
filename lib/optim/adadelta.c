/* Adadelta as torch.optim.Adadelta (1.13, single-tensor): running averages
 * of squared gradients and squared updates, weight decay, maximize. No
 * momentum to schedule. */
#include <math.h>
#include <stdbool.h>

#include "core/target_clones.h"
#include "optim/optimizers.h"

enum { ADADELTA_LR, ADADELTA_RHO, ADADELTA_EPS, ADADELTA_WEIGHT_DECAY, ADADELTA_MAXIMIZE };
enum { SQUARE_AVG, ACC_DELTA };

static const nn_arg_spec adadelta_args[] = {
    {"lr", NN_ARG_FLOAT, 0, {1.0, 0}, NULL},
    {"rho", NN_ARG_FLOAT, 0, {0.9, 0}, NULL},
    {"eps", NN_ARG_FLOAT, 0, {1e-6, 0}, NULL},
    {"weight_decay", NN_ARG_FLOAT, 0, {0, 0}, NULL},
    {"maximize", NN_ARG_BOOL, 0, {0, 0}, NULL},
};

static int adadelta_check(const nn_arg_value *args, nn_error *err) {
    if (nn_check_not_negative("lr", args[ADADELTA_LR].value[0], err) ||
        nn_check_unit_interval("rho", args[ADADELTA_RHO].value[0], err) ||
        nn_check_not_negative("eps", args[ADADELTA_EPS].value[0], err))
        return -1;
    return nn_check_not_negative("weight_decay", args[ADADELTA_WEIGHT_DECAY].value[0], err);
}

typedef struct adadelta_coefficients {
    float lr, rho, one_minus_rho, eps, sign, weight_decay;
} adadelta_coefficients;

NN_VECTOR_CLONES static void adadelta_loop(float *restrict param, float *restrict square_avg,
                                           float *restrict acc_delta, const float *restrict grad,
                                           adadelta_coefficients c, size_t count) {
    for (size_t i = 0; i < count; i++) {
        float g = c.sign * grad[i] + c.weight_decay * param[i];
        float v = c.rho * square_avg[i] + c.one_minus_rho * g * g;
        float delta = sqrtf(acc_delta[i] + c.eps) / sqrtf(v + c.eps) * g;
        square_avg[i] = v;
        acc_delta[i] = c.rho * acc_delta[i] + c.one_minus_rho * delta * delta;
        param[i] -= c.lr * delta;
    }
}

/* g = grad (-grad with maximize) + weight_decay p;
 *   v = rho v + (1 - rho) g^2,  delta = sqrt(u + eps) / sqrt(v + eps) g,
 *   u = rho u + (1 - rho) delta^2,  p -= lr delta. */
static void adadelta_step(const nn_optimizer *opt, float *params, const float *grads, size_t first, size_t count) {
    const nn_arg_value *args = opt->args;
    double rho = args[ADADELTA_RHO].value[0];
    adadelta_coefficients c = {
        .lr = (float)opt->lr,
        .rho = (float)rho,
        .one_minus_rho = (float)(1 - rho),
        .eps = (float)args[ADADELTA_EPS].value[0],
        .sign = args[ADADELTA_MAXIMIZE].value[0] != 0 ? -1.0f : 1.0f,
    };
    size_t end = first + count;
    for (size_t at = first, next; at < end; at = next) {
        bool decayed;
        next = nn_optimizer_decay_run(opt, at, end, &decayed);
        c.weight_decay = decayed ? (float)args[ADADELTA_WEIGHT_DECAY].value[0] : 0.0f;
        adadelta_loop(params + at, opt->buffers[SQUARE_AVG] + at, opt->buffers[ACC_DELTA] + at, grads + at, c,
                      next - at);
    }
}

const nn_optimizer_kind nn_adadelta_kind = {
    .name = "adadelta",
    .alias = "Adadelta",
    .args = adadelta_args,
    .arg_count = COUNT_OF(adadelta_args),
    .buffer_count = 2,
    .buffer_names = {"square_avg", "acc_delta"},
    .check = adadelta_check,
    .update = adadelta_step,
};
