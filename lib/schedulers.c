/* Per-epoch learning-rate schedules in closed form (see scheduler.h), so a
 * resumed run computes the same rate from the epoch alone. */
#include <math.h>
#include <string.h>

#include "scheduler.h"

static const nn_arg_spec step_args[] = {
    {"step_size", NN_ARG_INT, NN_ARG_REQUIRED, {0, 0}},
    {"gamma", NN_ARG_FLOAT, 0, {0.1, 0}},
};

static int step_check(const nn_arg_value *args, nn_error *err) {
    if (args[0].value[0] < 1) return nn_error_set(err, NN_ERR_INPUT, "step_size must be >= 1, got %g", args[0].value[0]);
    return 0;
}

static double step_lr(const nn_arg_value *args, double base_lr, int epoch) {
    return base_lr * pow(args[1].value[0], floor(epoch / args[0].value[0]));
}

static const nn_arg_spec multistep_args[] = {
    {"milestones", NN_ARG_INT_LIST, NN_ARG_REQUIRED, {0, 0}},
    {"gamma", NN_ARG_FLOAT, 0, {0.1, 0}},
};

static int multistep_check(const nn_arg_value *args, nn_error *err) {
    for (int i = 0; i < args[0].count; i++)
        if (args[0].value[i] < 1 || (i > 0 && args[0].value[i] <= args[0].value[i - 1]))
            return nn_error_set(err, NN_ERR_INPUT, "milestones must be increasing epochs >= 1");
    return 0;
}

static double multistep_lr(const nn_arg_value *args, double base_lr, int epoch) {
    int passed = 0;
    for (int i = 0; i < args[0].count; i++)
        if (args[0].value[i] <= epoch) passed++;
    return base_lr * pow(args[1].value[0], passed);
}

static const nn_arg_spec cosine_args[] = {
    {"T_max", NN_ARG_INT, NN_ARG_REQUIRED, {0, 0}},
    {"eta_min", NN_ARG_FLOAT, 0, {0, 0}},
};

static int cosine_check(const nn_arg_value *args, nn_error *err) {
    if (args[0].value[0] < 1) return nn_error_set(err, NN_ERR_INPUT, "T_max must be >= 1, got %g", args[0].value[0]);
    return 0;
}

static double cosine_lr(const nn_arg_value *args, double base_lr, int epoch) {
    double eta_min = args[1].value[0];
    return eta_min + (base_lr - eta_min) * (1 + cos(3.14159265358979323846 * epoch / args[0].value[0])) / 2;
}

static const nn_scheduler_kind step_kind = {"step", step_args, 2, step_check, step_lr};
static const nn_scheduler_kind multistep_kind = {"multistep", multistep_args, 2, multistep_check, multistep_lr};
static const nn_scheduler_kind cosine_kind = {"cosine", cosine_args, 2, cosine_check, cosine_lr};

static const nn_scheduler_kind *const kinds[] = {&step_kind, &multistep_kind, &cosine_kind};

const nn_scheduler_kind *nn_scheduler_kind_find(const char *name) {
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i]->name, name) == 0) return kinds[i];
    return NULL;
}

const nn_scheduler_kind *const *nn_scheduler_kinds(int *count) {
    *count = (int)(sizeof kinds / sizeof kinds[0]);
    return kinds;
}
