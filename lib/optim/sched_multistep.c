/* MultiStepLR: lr = base * gamma^(milestones <= epoch), torch's closed form. */
#include <math.h>

#include "optim/scheduler.h"

enum { MULTISTEP_MILESTONES, MULTISTEP_GAMMA };

static const nn_arg_spec multistep_args[] = {
    {"milestones", NN_ARG_INT_LIST, NN_ARG_REQUIRED, {0, 0}, NULL},
    {"gamma", NN_ARG_FLOAT, 0, {0.1, 0}, NULL},
};

/* torch sorts the milestones and counts repeats twice; we ask for a strictly
 * increasing list instead, which is what a repeat or a misordering almost
 * always is: a typo. SequentialLR's milestones are checked here too. */
static int multistep_check(const nn_schedule *schedule, nn_error *err) {
    const nn_arg_value *milestones = &schedule->args[MULTISTEP_MILESTONES];
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

static double multistep_lr(const nn_schedule *schedule, double base_lr, const nn_schedule_time *time) {
    const nn_arg_value *milestones = &schedule->args[MULTISTEP_MILESTONES];
    int passed = 0;
    while (passed < milestones->count && milestones->value[passed] <= time->epoch) passed++;
    return base_lr * pow(schedule->args[MULTISTEP_GAMMA].value[0], passed);
}

const nn_scheduler_kind nn_sched_multistep = {
    .name = "multistep", .alias = "MultiStepLR", .args = multistep_args, .arg_count = 2,
    .check = multistep_check, .lr_at = multistep_lr,
};
