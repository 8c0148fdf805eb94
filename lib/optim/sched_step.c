/* StepLR: lr = base * gamma^floor(epoch / step_size), torch's closed form,
 * which its chainable rule (one multiplication by gamma every step_size
 * epochs) reaches to within rounding. */
#include <math.h>

#include "optim/scheduler.h"

enum { STEP_SIZE, STEP_GAMMA };

static const nn_arg_spec step_args[] = {
    {"step_size", NN_ARG_INT, NN_ARG_REQUIRED, {0, 0}, NULL},
    {"gamma", NN_ARG_FLOAT, 0, {0.1, 0}, NULL},
};

static int step_check(const nn_schedule *schedule, nn_error *err) {
    double step_size = schedule->args[STEP_SIZE].value[0];
    if (!(step_size >= 1)) return nn_error_set(err, NN_ERR_INPUT, "step_size must be >= 1, got %g", step_size);
    return 0;
}

static double step_lr(const nn_schedule *schedule, double base_lr, const nn_schedule_time *time) {
    int step_size = (int)schedule->args[STEP_SIZE].value[0];
    return base_lr * pow(schedule->args[STEP_GAMMA].value[0], time->epoch / step_size);
}

const nn_scheduler_kind nn_sched_step = {
    .name = "step", .alias = "StepLR", .args = step_args, .arg_count = 2, .check = step_check, .lr_at = step_lr,
};
