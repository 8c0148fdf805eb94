/* Adamax as torch.optim.Adamax (1.13, single-tensor): Adam with the
 * infinity norm, u = max(beta2 u, |g| + eps), weight decay, maximize. */
#include <math.h>
#include <stdbool.h>

#include "core/target_clones.h"
#include "optim/optimizers.h"

enum { ADAMAX_LR, ADAMAX_BETAS, ADAMAX_EPS, ADAMAX_WEIGHT_DECAY, ADAMAX_MAXIMIZE };
enum { EXP_AVG, EXP_INF };

static const nn_arg_spec adamax_args[] = {
    {"lr", NN_ARG_FLOAT, 0, {0.002, 0}, NULL},
    {"betas", NN_ARG_FLOAT_PAIR, 0, {0.9, 0.999}, NULL},
    {"eps", NN_ARG_FLOAT, 0, {1e-8, 0}, NULL},
    {"weight_decay", NN_ARG_FLOAT, 0, {0, 0}, NULL},
    {"maximize", NN_ARG_BOOL, 0, {0, 0}, NULL},
};

static int adamax_check(const nn_arg_value *args, nn_error *err) {
    if (nn_check_not_negative("lr", args[ADAMAX_LR].value[0], err) ||
        nn_check_not_negative("eps", args[ADAMAX_EPS].value[0], err) || nn_check_betas(&args[ADAMAX_BETAS], err))
        return -1;
    return nn_check_not_negative("weight_decay", args[ADAMAX_WEIGHT_DECAY].value[0], err);
}

typedef struct adamax_coefficients {
    float beta1, one_minus_beta1, beta2, eps, sign, weight_decay;
    float step_size;  /* lr / (1 - beta1^t) */
} adamax_coefficients;

NN_VECTOR_CLONES static void adamax_loop(float *restrict param, float *restrict exp_avg, float *restrict exp_inf,
                                         const float *restrict grad, adamax_coefficients c, size_t count) {
    for (size_t i = 0; i < count; i++) {
        float g = c.sign * grad[i] + c.weight_decay * param[i];
        float m = c.beta1 * exp_avg[i] + c.one_minus_beta1 * g;
        float decayed = c.beta2 * exp_inf[i], size = fabsf(g) + c.eps;
        float u = decayed > size ? decayed : size;
        exp_avg[i] = m;
        exp_inf[i] = u;
        param[i] -= c.step_size * (m / u);
    }
}

/* With t = steps + 1, g = grad (-grad with maximize) + weight_decay p:
 *   m = beta1 m + (1 - beta1) g,  u = max(beta2 u, |g| + eps),
 *   p -= lr / (1 - beta1^t) m / u; beta1 is opt->momentum. */
static void adamax_step(const nn_optimizer *opt, float *params, const float *grads, size_t first, size_t count) {
    const nn_arg_value *args = opt->args;
    double beta1 = opt->momentum;
    adamax_coefficients c = {
        .beta1 = (float)beta1,
        .one_minus_beta1 = (float)(1 - beta1),
        .beta2 = (float)args[ADAMAX_BETAS].value[1],
        .eps = (float)args[ADAMAX_EPS].value[0],
        .sign = args[ADAMAX_MAXIMIZE].value[0] != 0 ? -1.0f : 1.0f,
        .step_size = (float)(opt->lr / (1 - pow(beta1, (double)opt->steps + 1))),
    };
    size_t end = first + count;
    for (size_t at = first, next; at < end; at = next) {
        bool decayed;
        next = nn_optimizer_decay_run(opt, at, end, &decayed);
        c.weight_decay = decayed ? (float)args[ADAMAX_WEIGHT_DECAY].value[0] : 0.0f;
        adamax_loop(params + at, opt->buffers[EXP_AVG] + at, opt->buffers[EXP_INF] + at, grads + at, c, next - at);
    }
}

const nn_optimizer_kind nn_adamax_kind = {
    .name = "adamax",
    .alias = "Adamax",
    .args = adamax_args,
    .arg_count = COUNT_OF(adamax_args),
    .buffer_count = 2,
    .buffer_names = {"exp_avg", "exp_inf"},
    .check = adamax_check,
    .update = adamax_step,
    .momentum_arg = "betas",
};
