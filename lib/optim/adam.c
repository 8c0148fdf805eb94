/* Adam and AdamW as torch.optim (1.13, single-tensor): the bias-corrected
 * moments, Adam's L2 decay added to the gradient, AdamW's decoupled decay.
 * Scalars that depend only on the step are computed once in double, as torch
 * does in Python floats, and rounded to float once; the per-parameter loop
 * has no branches or calls, so it vectorises (sqrtf needs -fno-math-errno). */
#include <math.h>
#include <stdbool.h>

#include "core/target_clones.h"
#include "optim/optimizers.h"

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
    if (nn_check_not_negative("lr", args[ADAM_LR].value[0], err) ||
        nn_check_not_negative("eps", args[ADAM_EPS].value[0], err))
        return -1;
    for (int i = 0; i < 2; i++)
        if (!(args[ADAM_BETAS].value[i] >= 0 && args[ADAM_BETAS].value[i] < 1))
            return nn_error_set(err, NN_ERR_INPUT, "betas[%d] must be in [0, 1), got %g", i,
                                args[ADAM_BETAS].value[i]);
    return nn_check_not_negative("weight_decay", args[ADAM_WEIGHT_DECAY].value[0], err);
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
static void adam_update(const nn_optimizer *opt, float *params, const float *grads, size_t first, size_t count,
                        bool decoupled) {
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
    adam_loop(params + first, opt->buffers[0] + first, opt->buffers[1] + first, grads + first, c, count);
}

static void adam_step(const nn_optimizer *opt, float *params, const float *grads, size_t first, size_t count) {
    adam_update(opt, params, grads, first, count, false);
}

static void adamw_step(const nn_optimizer *opt, float *params, const float *grads, size_t first, size_t count) {
    adam_update(opt, params, grads, first, count, true);
}


const nn_optimizer_kind nn_adam_kind = {
    "adam", "Adam", adam_args, COUNT_OF(adam_args), 2, {"exp_avg", "exp_avg_sq"}, adam_check, adam_step,
};
const nn_optimizer_kind nn_adamw_kind = {
    "adamw", "AdamW", adamw_args, COUNT_OF(adamw_args), 2, {"exp_avg", "exp_avg_sq"}, adam_check, adamw_step,
};

