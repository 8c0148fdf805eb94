/* ExponentialLR: lr = base * gamma^epoch, torch's closed form (its
 * chainable rule multiplies by gamma each epoch: the same to within
 * rounding, about 1e-13 relative after 500 epochs). */
#include <math.h>

#include "optim/scheduler.h"

enum { EXPONENTIAL_GAMMA };

static const nn_arg_spec exponential_args[] = {
    {"gamma", NN_ARG_FLOAT, NN_ARG_REQUIRED, {0, 0}, NULL},
};

/* torch takes any gamma; so do we. */
static int exponential_check(const nn_schedule *schedule, nn_error *err) {
    (void)schedule;
    (void)err;
    return 0;
}

static double exponential_lr(const nn_schedule *schedule, double base_lr, const nn_schedule_time *time) {
    return base_lr * pow(schedule->args[EXPONENTIAL_GAMMA].value[0], time->epoch);
}

const nn_scheduler_kind nn_sched_exponential = {
    .name = "exponential", .alias = "ExponentialLR", .args = exponential_args, .arg_count = 1,
    .check = exponential_check, .lr_at = exponential_lr,
};
