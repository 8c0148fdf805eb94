/* Adam and AdamW as torch.optim (1.13, single-tensor): the bias-corrected
 * moments, Adam's L2 decay added to the gradient, AdamW's decoupled decay,
 * amsgrad's running maximum of the second moment, maximize. Scalars that
 * depend only on the step are computed once in double, as torch does in
 * Python floats, and rounded to float once; the per-parameter loops have no
 * branches or calls, so they vectorise (sqrtf needs -fno-math-errno). */
#include <math.h>
#include <stdbool.h>

#include "core/target_clones.h"
#include "optim/optimizers.h"

enum { ADAM_LR, ADAM_BETAS, ADAM_EPS, ADAM_WEIGHT_DECAY, ADAM_AMSGRAD, ADAM_MAXIMIZE };
enum { EXP_AVG, EXP_AVG_SQ, MAX_EXP_AVG_SQ };

static const nn_arg_spec adam_args[] = {
    {"lr", NN_ARG_FLOAT, 0, {0.001, 0}, NULL},
    {"betas", NN_ARG_FLOAT_PAIR, 0, {0.9, 0.999}, NULL},
    {"eps", NN_ARG_FLOAT, 0, {1e-8, 0}, NULL},
    {"weight_decay", NN_ARG_FLOAT, 0, {0, 0}, NULL},
    {"amsgrad", NN_ARG_BOOL, 0, {0, 0}, NULL},
    {"maximize", NN_ARG_BOOL, 0, {0, 0}, NULL},
};

static const nn_arg_spec adamw_args[] = {
    {"lr", NN_ARG_FLOAT, 0, {0.001, 0}, NULL},
    {"betas", NN_ARG_FLOAT_PAIR, 0, {0.9, 0.999}, NULL},
    {"eps", NN_ARG_FLOAT, 0, {1e-8, 0}, NULL},
    {"weight_decay", NN_ARG_FLOAT, 0, {0.01, 0}, NULL},
    {"amsgrad", NN_ARG_BOOL, 0, {0, 0}, NULL},
    {"maximize", NN_ARG_BOOL, 0, {0, 0}, NULL},
};

static int adam_check(const nn_arg_value *args, nn_error *err) {
    if (nn_check_not_negative("lr", args[ADAM_LR].value[0], err) ||
        nn_check_not_negative("eps", args[ADAM_EPS].value[0], err) || nn_check_betas(&args[ADAM_BETAS], err))
        return -1;
    return nn_check_not_negative("weight_decay", args[ADAM_WEIGHT_DECAY].value[0], err);
}

static bool adam_uses_buffer(const nn_arg_value *args, int index) {
    return index == MAX_EXP_AVG_SQ && args[ADAM_AMSGRAD].value[0] != 0;
}

/* Per-step scalars of the Adam update, in float as torch casts them. */
typedef struct adam_coefficients {
    float beta1, beta2, one_minus_beta1, one_minus_beta2, eps;
    float sign;                 /* -1 with maximize (exact) */
    float step_size;            /* lr / (1 - beta1^t) */
    float inverse_correction2;  /* 1 / sqrt(1 - beta2^t) */
    float coupled_decay;        /* Adam: added to the gradient, times p */
    float shrink;               /* AdamW: multiplies p */
} adam_coefficients;

NN_VECTOR_CLONES static void adam_loop(float *restrict param, float *restrict exp_avg, float *restrict exp_avg_sq,
                      const float *restrict grad, adam_coefficients c, size_t count) {
    for (size_t i = 0; i < count; i++) {
        float g = c.sign * grad[i] + c.coupled_decay * param[i];
        float m = c.beta1 * exp_avg[i] + c.one_minus_beta1 * g;
        float v = c.beta2 * exp_avg_sq[i] + c.one_minus_beta2 * g * g;
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        param[i] = c.shrink * param[i] - c.step_size * m / (sqrtf(v) * c.inverse_correction2 + c.eps);
    }
}

/* amsgrad: the denominator uses the largest second moment so far. */
NN_VECTOR_CLONES static void amsgrad_loop(float *restrict param, float *restrict exp_avg, float *restrict exp_avg_sq,
                                          float *restrict max_exp_avg_sq, const float *restrict grad,
                                          adam_coefficients c, size_t count) {
    for (size_t i = 0; i < count; i++) {
        float g = c.sign * grad[i] + c.coupled_decay * param[i];
        float m = c.beta1 * exp_avg[i] + c.one_minus_beta1 * g;
        float v = c.beta2 * exp_avg_sq[i] + c.one_minus_beta2 * g * g;
        float top = max_exp_avg_sq[i] > v ? max_exp_avg_sq[i] : v;
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        max_exp_avg_sq[i] = top;
        param[i] = c.shrink * param[i] - c.step_size * m / (sqrtf(top) * c.inverse_correction2 + c.eps);
    }
}

/* With t = steps + 1 and g = grad (-grad with maximize):
 *   Adam adds the decay to the gradient: g += weight_decay p;
 *   AdamW shrinks the parameter instead: p *= 1 - lr weight_decay;
 *   m = beta1 m + (1 - beta1) g,  v = beta2 v + (1 - beta2) g^2,
 *   p -= lr / (1 - beta1^t) m / (sqrt(v) / sqrt(1 - beta2^t) + eps),
 *   amsgrad with max(v so far) for v in the last line.
 * beta1 is opt->momentum (OneCycleLR may cycle it). The decay a variant,
 * or a no_decay parameter, does not use is applied as + 0 p or * 1, which
 * is exact. 1 - beta is rounded from double: in float, 1 - 0.999f is off by
 * 1.3e-5, which would move every update by 6e-6 relative to torch. */
static void adam_update(const nn_optimizer *opt, float *params, const float *grads, size_t first, size_t count,
                        bool decoupled) {
    const nn_arg_value *args = opt->args;
    double lr = opt->lr, weight_decay = args[ADAM_WEIGHT_DECAY].value[0];
    double beta1 = opt->momentum, beta2 = args[ADAM_BETAS].value[1];
    double step = (double)opt->steps + 1;
    adam_coefficients c = {
        .beta1 = (float)beta1,
        .beta2 = (float)beta2,
        .one_minus_beta1 = (float)(1 - beta1),
        .one_minus_beta2 = (float)(1 - beta2),
        .eps = (float)args[ADAM_EPS].value[0],
        .sign = args[ADAM_MAXIMIZE].value[0] != 0 ? -1.0f : 1.0f,
        .step_size = (float)(lr / (1 - pow(beta1, step))),
        .inverse_correction2 = (float)(1 / sqrt(1 - pow(beta2, step))),
    };
    float *const *b = opt->buffers;
    size_t end = first + count;
    for (size_t at = first, next; at < end; at = next) {
        bool decayed;
        next = nn_optimizer_decay_run(opt, at, end, &decayed);
        double decay = decayed ? weight_decay : 0;
        c.coupled_decay = decoupled ? 0.0f : (float)decay;
        c.shrink = decoupled ? (float)(1 - lr * decay) : 1.0f;
        if (b[MAX_EXP_AVG_SQ])
            amsgrad_loop(params + at, b[EXP_AVG] + at, b[EXP_AVG_SQ] + at, b[MAX_EXP_AVG_SQ] + at, grads + at, c,
                         next - at);
        else
            adam_loop(params + at, b[EXP_AVG] + at, b[EXP_AVG_SQ] + at, grads + at, c, next - at);
    }
}

static void adam_step(const nn_optimizer *opt, float *params, const float *grads, size_t first, size_t count) {
    adam_update(opt, params, grads, first, count, false);
}

static void adamw_step(const nn_optimizer *opt, float *params, const float *grads, size_t first, size_t count) {
    adam_update(opt, params, grads, first, count, true);
}

const nn_optimizer_kind nn_adam_kind = {
    .name = "adam",
    .alias = "Adam",
    .args = adam_args,
    .arg_count = COUNT_OF(adam_args),
    .buffer_count = 2,
    .buffer_names = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
    .check = adam_check,
    .update = adam_step,
    .uses_buffer = adam_uses_buffer,
    .momentum_arg = "betas",
};
const nn_optimizer_kind nn_adamw_kind = {
    .name = "adamw",
    .alias = "AdamW",
    .args = adamw_args,
    .arg_count = COUNT_OF(adamw_args),
    .buffer_count = 2,
    .buffer_names = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
    .check = adam_check,
    .update = adamw_step,
    .uses_buffer = adam_uses_buffer,
    .momentum_arg = "betas",
};
