/* NAdam as torch.optim.NAdam (1.13, single-tensor): Adam with Nesterov
 * momentum and the momentum decay schedule mu_t, weight decay (torch 1.13
 * has no maximize for NAdam).
 *
 * mu_product, the product of the mu_t so far, is a float32 scalar in torch;
 * here it is a buffer whose every element holds it, so that a checkpoint
 * keeps it with the other state, and so that it follows a beta1 a schedule
 * changes (deriving it from the step count could not). Each range reads it
 * from its own first element, so any split gives the same bits. */
#include <math.h>
#include <stdbool.h>

#include "core/target_clones.h"
#include "optim/optimizers.h"

enum { NADAM_LR, NADAM_BETAS, NADAM_EPS, NADAM_WEIGHT_DECAY, NADAM_MOMENTUM_DECAY };
enum { EXP_AVG, EXP_AVG_SQ, MU_PRODUCT };

static const nn_arg_spec nadam_args[] = {
    {"lr", NN_ARG_FLOAT, 0, {0.002, 0}, NULL},
    {"betas", NN_ARG_FLOAT_PAIR, 0, {0.9, 0.999}, NULL},
    {"eps", NN_ARG_FLOAT, 0, {1e-8, 0}, NULL},
    {"weight_decay", NN_ARG_FLOAT, 0, {0, 0}, NULL},
    {"momentum_decay", NN_ARG_FLOAT, 0, {0.004, 0}, NULL},
};

static int nadam_check(const nn_arg_value *args, nn_error *err) {
    if (nn_check_not_negative("lr", args[NADAM_LR].value[0], err) ||
        nn_check_not_negative("eps", args[NADAM_EPS].value[0], err) || nn_check_betas(&args[NADAM_BETAS], err) ||
        nn_check_not_negative("weight_decay", args[NADAM_WEIGHT_DECAY].value[0], err))
        return -1;
    return nn_check_not_negative("momentum_decay", args[NADAM_MOMENTUM_DECAY].value[0], err);
}

/* mu_product starts at 1, the other buffers at 0. */
static float nadam_start(const nn_arg_value *args, int index) {
    (void)args;
    return index == MU_PRODUCT ? 1.0f : 0.0f;
}

typedef struct nadam_coefficients {
    float beta1, one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay;
    float bias_correction2;  /* 1 - beta2^t */
    float grad_step;         /* -lr (1 - mu_t) / (1 - mu_product) */
    float momentum_step;     /* -lr mu_{t+1} / (1 - mu_product_next) */
    float mu_product;        /* after this step */
} nadam_coefficients;

NN_VECTOR_CLONES static void nadam_loop(float *restrict param, float *restrict exp_avg, float *restrict exp_avg_sq,
                                        float *restrict mu_product, const float *restrict grad,
                                        nadam_coefficients c, size_t count) {
    for (size_t i = 0; i < count; i++) {
        float g = grad[i] + c.weight_decay * param[i];
        float m = c.beta1 * exp_avg[i] + c.one_minus_beta1 * g;
        float v = c.beta2 * exp_avg_sq[i] + c.one_minus_beta2 * g * g;
        float denom = sqrtf(v / c.bias_correction2) + c.eps;
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        mu_product[i] = c.mu_product;
        float p = param[i] + c.grad_step * (g / denom);
        param[i] = p + c.momentum_step * (m / denom);
    }
}

/* With t = steps + 1, g = grad + weight_decay p, beta1 = opt->momentum:
 *   mu_t = beta1 (1 - 0.5 0.96^(t momentum_decay)),  mu_product *= mu_t,
 *   m and v as Adam's,  denom = sqrt(v / (1 - beta2^t)) + eps,
 *   p -= lr (1 - mu_t) / (1 - mu_product) g / denom
 *      + lr mu_{t+1} / (1 - mu_product mu_t mu_{t+1}) m / denom.
 * The last mu_product has mu_t twice: torch 1.13 computes it so (torch 2.0
 * dropped the extra factor). mu_product is float32 as torch's. */
static void nadam_step(const nn_optimizer *opt, float *params, const float *grads, size_t first, size_t count) {
    const nn_arg_value *args = opt->args;
    double beta1 = opt->momentum, beta2 = args[NADAM_BETAS].value[1];
    double decay = args[NADAM_MOMENTUM_DECAY].value[0], lr = opt->lr, step = (double)opt->steps + 1;
    double mu = beta1 * (1 - 0.5 * pow(0.96, step * decay));
    double mu_next = beta1 * (1 - 0.5 * pow(0.96, (step + 1) * decay));
    float product = opt->buffers[MU_PRODUCT][first] * (float)mu;
    float product_next = product * (float)mu * (float)mu_next;
    nadam_coefficients c = {
        .beta1 = (float)beta1,
        .one_minus_beta1 = (float)(1 - beta1),
        .beta2 = (float)beta2,
        .one_minus_beta2 = (float)(1 - beta2),
        .eps = (float)args[NADAM_EPS].value[0],
        .bias_correction2 = (float)(1 - pow(beta2, step)),
        .grad_step = (float)(-lr * (1 - mu) / (1 - (double)product)),
        .momentum_step = (float)(-lr * mu_next / (1 - (double)product_next)),
        .mu_product = product,
    };
    float *const *b = opt->buffers;
    size_t end = first + count;
    for (size_t at = first, next; at < end; at = next) {
        bool decayed;
        next = nn_optimizer_decay_run(opt, at, end, &decayed);
        c.weight_decay = decayed ? (float)args[NADAM_WEIGHT_DECAY].value[0] : 0.0f;
        nadam_loop(params + at, b[EXP_AVG] + at, b[EXP_AVG_SQ] + at, b[MU_PRODUCT] + at, grads + at, c, next - at);
    }
}

const nn_optimizer_kind nn_nadam_kind = {
    .name = "nadam",
    .alias = "NAdam",
    .args = nadam_args,
    .arg_count = COUNT_OF(nadam_args),
    .buffer_count = 3,
    .buffer_names = {"exp_avg", "exp_avg_sq", "mu_product"},
    .check = nadam_check,
    .update = nadam_step,
    .buffer_start = nadam_start,
    .momentum_arg = "betas",
};
