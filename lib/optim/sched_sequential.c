/* SequentialLR: schedulers[0] until the first milestone, then
 * schedulers[1] with its epoch count restarted at 0, and so on. torch
 * starts each later schedule with step(0), its closed form at epoch 0, and
 * steps it by its chainable rule after that, from the rate it left; for the
 * per-epoch schedules allowed here that is the child's closed form at
 * epoch - milestone. (torch 1.13 also resets the rate to the initial one
 * before the first schedule's initial step, so the children constructed
 * before it leave no trace.) Children that keep state or change the rate
 * within an epoch are refused: torch steps them once per epoch here, which
 * is not what they are for (ReduceLROnPlateau cannot be stepped at all). */
#include <string.h>

#include "optim/scheduler.h"

enum { SEQUENTIAL_MILESTONES };

static const nn_arg_spec sequential_args[] = {
    {"milestones", NN_ARG_INT_LIST, NN_ARG_REQUIRED, {0, 0}, NULL},
};

static int sequential_check(const nn_schedule *schedule, nn_error *err) {
    int children = schedule->child_count;
    if (children < 1 || children > NN_SCHEDULE_MAX_CHILDREN || !schedule->children)
        return nn_error_set(err, NN_ERR_INPUT, "schedulers must list 1 to %d schedules, got %d",
                            NN_SCHEDULE_MAX_CHILDREN, children);
    int milestones = schedule->args[SEQUENTIAL_MILESTONES].count;
    if (milestones != children - 1)
        return nn_error_set(err, NN_ERR_INPUT,
                            "expected %d milestones (one fewer than the %d schedulers), got %d", children - 1,
                            children, milestones);
    /* The same rule as MultiStepLR's milestones: epochs >= 1, increasing. */
    nn_schedule as_multistep = {.kind = nn_scheduler_kind_find("multistep")};
    as_multistep.args[0] = schedule->args[SEQUENTIAL_MILESTONES];
    if (as_multistep.kind->check(&as_multistep, err)) return -1;
    for (int i = 0; i < children; i++) {
        const nn_schedule *child = &schedule->children[i];
        const nn_scheduler_kind *kind = child->kind;
        if (!kind || !kind->lr_at || kind->per_step || kind->takes_children || kind->state_count)
            return nn_error_set(err, NN_ERR_INPUT,
                                "schedulers[%d] is %s, which SequentialLR cannot hold (expected a per-epoch "
                                "schedule without state: step, multistep, cosine, exponential, linear, "
                                "constant or polynomial)", i, kind ? kind->name : "empty");
        if (kind->check && kind->check(child, err)) return nn_error_prefix(err, "schedulers[%d] %s", i, kind->name);
    }
    return 0;
}

static double sequential_lr(const nn_schedule *schedule, double base_lr, const nn_schedule_time *time) {
    const nn_arg_value *milestones = &schedule->args[SEQUENTIAL_MILESTONES];
    int passed = 0;
    while (passed < milestones->count && passed + 1 < schedule->child_count &&
           milestones->value[passed] <= time->epoch)
        passed++;
    nn_schedule_time child_time = *time;
    if (passed > 0) child_time.epoch -= (int)milestones->value[passed - 1];
    const nn_schedule *child = &schedule->children[passed];
    return child->kind->lr_at(child, base_lr, &child_time);
}

const nn_scheduler_kind nn_sched_sequential = {
    .name = "sequential", .alias = "SequentialLR", .args = sequential_args, .arg_count = 1,
    .takes_children = true, .check = sequential_check, .lr_at = sequential_lr,
};
