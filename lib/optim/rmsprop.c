/* RMSprop as torch.optim.RMSprop (1.13, single-tensor): the running average
 * of squared gradients, centered (minus the squared running average of the
 * gradients), momentum, weight decay, maximize. */
#include <math.h>
#include <stdbool.h>

#include "core/target_clones.h"
#include "optim/optimizers.h"

enum { RMSPROP_LR, RMSPROP_ALPHA, RMSPROP_EPS, RMSPROP_WEIGHT_DECAY, RMSPROP_MOMENTUM, RMSPROP_CENTERED,
       RMSPROP_MAXIMIZE };
enum { SQUARE_AVG, MOMENTUM_BUFFER, GRAD_AVG };

static const nn_arg_spec rmsprop_args[] = {
    {"lr", NN_ARG_FLOAT, 0, {0.01, 0}, NULL},
    {"alpha", NN_ARG_FLOAT, 0, {0.99, 0}, NULL},
    {"eps", NN_ARG_FLOAT, 0, {1e-8, 0}, NULL},
    {"weight_decay", NN_ARG_FLOAT, 0, {0, 0}, NULL},
    {"momentum", NN_ARG_FLOAT, 0, {0, 0}, NULL},
    {"centered", NN_ARG_BOOL, 0, {0, 0}, NULL},
    {"maximize", NN_ARG_BOOL, 0, {0, 0}, NULL},
};

/* torch checks alpha >= 0 only. */
static int rmsprop_check(const nn_arg_value *args, nn_error *err) {
    if (nn_check_not_negative("lr", args[RMSPROP_LR].value[0], err) ||
        nn_check_not_negative("eps", args[RMSPROP_EPS].value[0], err) ||
        nn_check_not_negative("momentum", args[RMSPROP_MOMENTUM].value[0], err) ||
        nn_check_not_negative("weight_decay", args[RMSPROP_WEIGHT_DECAY].value[0], err))
        return -1;
    return nn_check_not_negative("alpha", args[RMSPROP_ALPHA].value[0], err);
}

static bool rmsprop_uses_buffer(const nn_arg_value *args, int index) {
    return index == GRAD_AVG && args[RMSPROP_CENTERED].value[0] != 0;
}

typedef struct rmsprop_coefficients {
    float lr, alpha, one_minus_alpha, eps, sign, weight_decay;
    float momentum;  /* 0: b = g / avg, which is torch's update without momentum */
} rmsprop_coefficients;

NN_VECTOR_CLONES static void rmsprop_loop(float *restrict param, float *restrict square_avg, float *restrict buffer,
                                          const float *restrict grad, rmsprop_coefficients c, size_t count) {
    for (size_t i = 0; i < count; i++) {
        float g = c.sign * grad[i] + c.weight_decay * param[i];
        float v = c.alpha * square_avg[i] + c.one_minus_alpha * g * g;
        float b = c.momentum * buffer[i] + g / (sqrtf(v) + c.eps);
        square_avg[i] = v;
        buffer[i] = b;
        param[i] -= c.lr * b;
    }
}

NN_VECTOR_CLONES static void rmsprop_centered_loop(float *restrict param, float *restrict square_avg,
                                                   float *restrict buffer, float *restrict grad_avg,
                                                   const float *restrict grad, rmsprop_coefficients c,
                                                   size_t count) {
    for (size_t i = 0; i < count; i++) {
        float g = c.sign * grad[i] + c.weight_decay * param[i];
        float v = c.alpha * square_avg[i] + c.one_minus_alpha * g * g;
        float mean = c.alpha * grad_avg[i] + c.one_minus_alpha * g;
        float b = c.momentum * buffer[i] + g / (sqrtf(v - mean * mean) + c.eps);
        square_avg[i] = v;
        grad_avg[i] = mean;
        buffer[i] = b;
        param[i] -= c.lr * b;
    }
}

/* g = grad (-grad with maximize) + weight_decay p;
 *   v = alpha v + (1 - alpha) g^2, and centered: a = alpha a + (1 - alpha) g;
 *   avg = sqrt(v) + eps, or sqrt(v - a^2) + eps centered;
 *   b = momentum b + g / avg,  p -= lr b.
 * With momentum 0, b is g / avg exactly: torch's p -= lr g / avg. momentum
 * is opt->momentum (OneCycleLR may set it, as torch's does even when the
 * configured momentum is 0: so the buffer always exists). */
static void rmsprop_step(const nn_optimizer *opt, float *params, const float *grads, size_t first, size_t count) {
    const nn_arg_value *args = opt->args;
    double alpha = args[RMSPROP_ALPHA].value[0];
    rmsprop_coefficients c = {
        .lr = (float)opt->lr,
        .alpha = (float)alpha,
        .one_minus_alpha = (float)(1 - alpha),
        .eps = (float)args[RMSPROP_EPS].value[0],
        .sign = args[RMSPROP_MAXIMIZE].value[0] != 0 ? -1.0f : 1.0f,
        .momentum = opt->momentum > 0 ? (float)opt->momentum : 0.0f,
    };
    float *const *b = opt->buffers;
    size_t end = first + count;
    for (size_t at = first, next; at < end; at = next) {
        bool decayed;
        next = nn_optimizer_decay_run(opt, at, end, &decayed);
        c.weight_decay = decayed ? (float)args[RMSPROP_WEIGHT_DECAY].value[0] : 0.0f;
        if (b[GRAD_AVG])
            rmsprop_centered_loop(params + at, b[SQUARE_AVG] + at, b[MOMENTUM_BUFFER] + at, b[GRAD_AVG] + at,
                                  grads + at, c, next - at);
        else
            rmsprop_loop(params + at, b[SQUARE_AVG] + at, b[MOMENTUM_BUFFER] + at, grads + at, c, next - at);
    }
}

const nn_optimizer_kind nn_rmsprop_kind = {
    .name = "rmsprop",
    .alias = "RMSprop",
    .args = rmsprop_args,
    .arg_count = COUNT_OF(rmsprop_args),
    .buffer_count = 2,
    .buffer_names = {"square_avg", "momentum_buffer", "grad_avg"},
    .check = rmsprop_check,
    .update = rmsprop_step,
    .uses_buffer = rmsprop_uses_buffer,
    .momentum_arg = "momentum",
};
