/* Adagrad as torch.optim.Adagrad (1.13, single-tensor, dense gradients):
 * the running sum of squared gradients, lr_decay, weight decay,
 * initial_accumulator_value, maximize. No momentum to schedule. */
#include <math.h>
#include <stdbool.h>

#include "core/target_clones.h"
#include "optim/optimizers.h"

enum { ADAGRAD_LR, ADAGRAD_LR_DECAY, ADAGRAD_WEIGHT_DECAY, ADAGRAD_INITIAL, ADAGRAD_EPS, ADAGRAD_MAXIMIZE };

static const nn_arg_spec adagrad_args[] = {
    {"lr", NN_ARG_FLOAT, 0, {0.01, 0}, NULL},
    {"lr_decay", NN_ARG_FLOAT, 0, {0, 0}, NULL},
    {"weight_decay", NN_ARG_FLOAT, 0, {0, 0}, NULL},
    {"initial_accumulator_value", NN_ARG_FLOAT, 0, {0, 0}, NULL},
    {"eps", NN_ARG_FLOAT, 0, {1e-10, 0}, NULL},
    {"maximize", NN_ARG_BOOL, 0, {0, 0}, NULL},
};

static int adagrad_check(const nn_arg_value *args, nn_error *err) {
    if (nn_check_not_negative("lr", args[ADAGRAD_LR].value[0], err) ||
        nn_check_not_negative("lr_decay", args[ADAGRAD_LR_DECAY].value[0], err) ||
        nn_check_not_negative("weight_decay", args[ADAGRAD_WEIGHT_DECAY].value[0], err) ||
        nn_check_not_negative("initial_accumulator_value", args[ADAGRAD_INITIAL].value[0], err))
        return -1;
    return nn_check_not_negative("eps", args[ADAGRAD_EPS].value[0], err);
}

/* torch fills the sum with initial_accumulator_value. */
static float adagrad_start(const nn_arg_value *args, int index) {
    (void)index;
    return (float)args[ADAGRAD_INITIAL].value[0];
}

typedef struct adagrad_coefficients {
    float clr, eps, sign, weight_decay;
} adagrad_coefficients;

NN_VECTOR_CLONES static void adagrad_loop(float *restrict param, float *restrict sum, const float *restrict grad,
                                          adagrad_coefficients c, size_t count) {
    for (size_t i = 0; i < count; i++) {
        float g = c.sign * grad[i] + c.weight_decay * param[i];
        float s = sum[i] + g * g;
        sum[i] = s;
        param[i] -= c.clr * (g / (sqrtf(s) + c.eps));
    }
}

/* With t = steps + 1, g = grad (-grad with maximize) + weight_decay p:
 *   sum += g^2,  p -= lr / (1 + (t - 1) lr_decay) g / (sqrt(sum) + eps). */
static void adagrad_step(const nn_optimizer *opt, float *params, const float *grads, size_t first, size_t count) {
    const nn_arg_value *args = opt->args;
    adagrad_coefficients c = {
        .clr = (float)(opt->lr / (1 + (double)opt->steps * args[ADAGRAD_LR_DECAY].value[0])),
        .eps = (float)args[ADAGRAD_EPS].value[0],
        .sign = args[ADAGRAD_MAXIMIZE].value[0] != 0 ? -1.0f : 1.0f,
    };
    size_t end = first + count;
    for (size_t at = first, next; at < end; at = next) {
        bool decayed;
        next = nn_optimizer_decay_run(opt, at, end, &decayed);
        c.weight_decay = decayed ? (float)args[ADAGRAD_WEIGHT_DECAY].value[0] : 0.0f;
        adagrad_loop(params + at, opt->buffers[0] + at, grads + at, c, next - at);
    }
}

const nn_optimizer_kind nn_adagrad_kind = {
    .name = "adagrad",
    .alias = "Adagrad",
    .args = adagrad_args,
    .arg_count = COUNT_OF(adagrad_args),
    .buffer_count = 1,
    .buffer_names = {"sum"},
    .check = adagrad_check,
    .update = adagrad_step,
    .buffer_start = adagrad_start,
};
