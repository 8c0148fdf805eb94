/* Per-epoch learning-rate schedules in closed form (see scheduler.h), so a
 * resumed run computes the same rate from the epoch alone. These closed forms
 * equal what torch's StepLR, MultiStepLR and CosineAnnealingLR reach by
 * stepping once per epoch (for cosine also past T_max, where both rise
 * again). */
#include <math.h>
#include <string.h>

#include "core/registry.h"
#include "optim/scheduler.h"

#define COUNT_OF(array) ((int)(sizeof(array) / sizeof((array)[0])))

enum { STEP_SIZE, STEP_GAMMA };

static const nn_arg_spec step_args[] = {
    {"step_size", NN_ARG_INT, NN_ARG_REQUIRED, {0, 0}},
    {"gamma", NN_ARG_FLOAT, 0, {0.1, 0}},
};

static int step_check(const nn_arg_value *args, nn_error *err) {
    if (!(args[STEP_SIZE].value[0] >= 1))
        return nn_error_set(err, NN_ERR_INPUT, "step_size must be >= 1, got %g", args[STEP_SIZE].value[0]);
    return 0;
}

static double step_lr(const nn_arg_value *args, double base_lr, int epoch) {
    int step_size = (int)args[STEP_SIZE].value[0];
    return base_lr * pow(args[STEP_GAMMA].value[0], epoch / step_size);
}

enum { MULTISTEP_MILESTONES, MULTISTEP_GAMMA };

static const nn_arg_spec multistep_args[] = {
    {"milestones", NN_ARG_INT_LIST, NN_ARG_REQUIRED, {0, 0}},
    {"gamma", NN_ARG_FLOAT, 0, {0.1, 0}},
};

/* torch sorts the milestones and counts repeats twice; we ask for a strictly
 * increasing list instead, which is what a repeat or a misordering almost
 * always is: a typo. */
static int multistep_check(const nn_arg_value *args, nn_error *err) {
    const nn_arg_value *milestones = &args[MULTISTEP_MILESTONES];
    for (int i = 0; i < milestones->count; i++) {
        double milestone = milestones->value[i];
        if (!(milestone >= 1))
            return nn_error_set(err, NN_ERR_INPUT, "milestones must be epochs >= 1, got %g at index %d",
                                milestone, i);
        if (i > 0 && milestone <= milestones->value[i - 1])
            return nn_error_set(err, NN_ERR_INPUT,
                                "milestones must be increasing, got %g after %g at index %d", milestone,
                                milestones->value[i - 1], i);
    }
    return 0;
}

static double multistep_lr(const nn_arg_value *args, double base_lr, int epoch) {
    const nn_arg_value *milestones = &args[MULTISTEP_MILESTONES];
    int passed = 0;
    while (passed < milestones->count && milestones->value[passed] <= epoch) passed++;
    return base_lr * pow(args[MULTISTEP_GAMMA].value[0], passed);
}

enum { COSINE_T_MAX, COSINE_ETA_MIN };

static const nn_arg_spec cosine_args[] = {
    {"T_max", NN_ARG_INT, NN_ARG_REQUIRED, {0, 0}},
    {"eta_min", NN_ARG_FLOAT, 0, {0, 0}},
};

static int cosine_check(const nn_arg_value *args, nn_error *err) {
    if (!(args[COSINE_T_MAX].value[0] >= 1))
        return nn_error_set(err, NN_ERR_INPUT, "T_max must be >= 1, got %g", args[COSINE_T_MAX].value[0]);
    return 0;
}

static double cosine_lr(const nn_arg_value *args, double base_lr, int epoch) {
    const double pi = 3.14159265358979323846;
    double eta_min = args[COSINE_ETA_MIN].value[0];
    return eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / args[COSINE_T_MAX].value[0])) / 2;
}

static const nn_scheduler_kind step_kind = {"step", "StepLR", step_args, COUNT_OF(step_args), step_check,
                                           step_lr};
static const nn_scheduler_kind multistep_kind = {"multistep", "MultiStepLR", multistep_args,
                                                 COUNT_OF(multistep_args), multistep_check, multistep_lr};
static const nn_scheduler_kind cosine_kind = {"cosine", "CosineAnnealingLR", cosine_args, COUNT_OF(cosine_args),
                                              cosine_check, cosine_lr};

static const nn_scheduler_kind *const kinds[] = {&step_kind, &multistep_kind, &cosine_kind};

NN_REGISTRY(nn_scheduler_kind, nn_scheduler_kind, kinds, false)
