/* RAdam as torch.optim.RAdam (1.13, single-tensor): Adam whose adaptive
 * step is rectified once the variance estimate is tractable (rho_t > 5) and
 * plain momentum SGD before, weight decay (torch 1.13 has no maximize for
 * RAdam). */
#include <math.h>
#include <stdbool.h>

#include "core/target_clones.h"
#include "optim/optimizers.h"

enum { RADAM_LR, RADAM_BETAS, RADAM_EPS, RADAM_WEIGHT_DECAY };
enum { EXP_AVG, EXP_AVG_SQ };

static const nn_arg_spec radam_args[] = {
    {"lr", NN_ARG_FLOAT, 0, {0.001, 0}, NULL},
    {"betas", NN_ARG_FLOAT_PAIR, 0, {0.9, 0.999}, NULL},
    {"eps", NN_ARG_FLOAT, 0, {1e-8, 0}, NULL},
    {"weight_decay", NN_ARG_FLOAT, 0, {0, 0}, NULL},
};

static int radam_check(const nn_arg_value *args, nn_error *err) {
    if (nn_check_not_negative("lr", args[RADAM_LR].value[0], err) ||
        nn_check_not_negative("eps", args[RADAM_EPS].value[0], err) || nn_check_betas(&args[RADAM_BETAS], err))
        return -1;
    return nn_check_not_negative("weight_decay", args[RADAM_WEIGHT_DECAY].value[0], err);
}

typedef struct radam_coefficients {
    float beta1, one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay;
    float bias_correction1;        /* 1 - beta1^t */
    float lr;
    float sqrt_bias_correction2;   /* sqrt(1 - beta2^t) */
    float rect;                    /* the rectification; 0: not yet (rho_t <= 5) */
} radam_coefficients;

NN_VECTOR_CLONES static void radam_loop(float *restrict param, float *restrict exp_avg, float *restrict exp_avg_sq,
                                        const float *restrict grad, radam_coefficients c, size_t count) {
    for (size_t i = 0; i < count; i++) {
        float g = grad[i] + c.weight_decay * param[i];
        float m = c.beta1 * exp_avg[i] + c.one_minus_beta1 * g;
        float v = c.beta2 * exp_avg_sq[i] + c.one_minus_beta2 * g * g;
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        float adaptive = c.sqrt_bias_correction2 / (sqrtf(v) + c.eps);
        param[i] -= m / c.bias_correction1 * c.lr * adaptive * c.rect;
    }
}

NN_VECTOR_CLONES static void radam_plain_loop(float *restrict param, float *restrict exp_avg,
                                              float *restrict exp_avg_sq, const float *restrict grad,
                                              radam_coefficients c, size_t count) {
    for (size_t i = 0; i < count; i++) {
        float g = grad[i] + c.weight_decay * param[i];
        float m = c.beta1 * exp_avg[i] + c.one_minus_beta1 * g;
        exp_avg[i] = m;
        exp_avg_sq[i] = c.beta2 * exp_avg_sq[i] + c.one_minus_beta2 * g * g;
        param[i] -= m / c.bias_correction1 * c.lr;
    }
}

/* With t = steps + 1, g = grad + weight_decay p, beta1 = opt->momentum, m and
 * v as Adam's, rho_inf = 2 / (1 - beta2) - 1 and
 * rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t):
 *   rho_t > 5:  p -= m / (1 - beta1^t) lr sqrt(1 - beta2^t) / (sqrt(v) + eps) rect,
 *               rect = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t));
 *   else        p -= m / (1 - beta1^t) lr. */
static void radam_step(const nn_optimizer *opt, float *params, const float *grads, size_t first, size_t count) {
    const nn_arg_value *args = opt->args;
    double beta1 = opt->momentum, beta2 = args[RADAM_BETAS].value[1], step = (double)opt->steps + 1;
    double correction2 = 1 - pow(beta2, step);
    double rho_inf = 2 / (1 - beta2) - 1;
    double rho_t = rho_inf - 2 * step * pow(beta2, step) / correction2;
    radam_coefficients c = {
        .beta1 = (float)beta1,
        .one_minus_beta1 = (float)(1 - beta1),
        .beta2 = (float)beta2,
        .one_minus_beta2 = (float)(1 - beta2),
        .eps = (float)args[RADAM_EPS].value[0],
        .bias_correction1 = (float)(1 - pow(beta1, step)),
        .lr = (float)opt->lr,
        .sqrt_bias_correction2 = (float)sqrt(correction2),
        .rect = rho_t > 5 ? (float)sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
                          : 0.0f,
    };
    float *const *b = opt->buffers;
    size_t end = first + count;
    for (size_t at = first, next; at < end; at = next) {
        bool decayed;
        next = nn_optimizer_decay_run(opt, at, end, &decayed);
        c.weight_decay = decayed ? (float)args[RADAM_WEIGHT_DECAY].value[0] : 0.0f;
        if (rho_t > 5)
            radam_loop(params + at, b[EXP_AVG] + at, b[EXP_AVG_SQ] + at, grads + at, c, next - at);
        else
            radam_plain_loop(params + at, b[EXP_AVG] + at, b[EXP_AVG_SQ] + at, grads + at, c, next - at);
    }
}

const nn_optimizer_kind nn_radam_kind = {
    .name = "radam",
    .alias = "RAdam",
    .args = radam_args,
    .arg_count = COUNT_OF(radam_args),
    .buffer_count = 2,
    .buffer_names = {"exp_avg", "exp_avg_sq"},
    .check = radam_check,
    .update = radam_step,
    .momentum_arg = "betas",
};
