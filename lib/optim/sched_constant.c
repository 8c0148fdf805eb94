/* ConstantLR: lr = base * factor for the first total_iters epochs, then
 * base; torch's closed form. */
#include "optim/scheduler.h"

enum { CONSTANT_FACTOR, CONSTANT_TOTAL };

static const nn_arg_spec constant_args[] = {
    {"factor", NN_ARG_FLOAT, 0, {1.0 / 3, 0}, NULL},
    {"total_iters", NN_ARG_INT, 0, {5, 0}, NULL},
};

/* torch's range check, and two it lacks: its chainable rule divides by the
 * factor at epoch total_iters (ZeroDivisionError for 0), and with
 * total_iters 0 it keeps the factor for ever while its closed form says
 * base; both are refused. */
static int constant_check(const nn_schedule *schedule, nn_error *err) {
    double factor = schedule->args[CONSTANT_FACTOR].value[0];
    if (!(factor > 0 && factor <= 1))
        return nn_error_set(err, NN_ERR_INPUT,
                            "factor must be > 0 and <= 1, got %g (torch's ConstantLR divides by it at "
                            "epoch total_iters)", factor);
    double total = schedule->args[CONSTANT_TOTAL].value[0];
    if (!(total >= 1)) return nn_error_set(err, NN_ERR_INPUT, "total_iters must be >= 1, got %g", total);
    return 0;
}

static double constant_lr(const nn_schedule *schedule, double base_lr, const nn_schedule_time *time) {
    double factor = schedule->args[CONSTANT_FACTOR].value[0];
    return time->epoch >= schedule->args[CONSTANT_TOTAL].value[0] ? base_lr : base_lr * factor;
}

const nn_scheduler_kind nn_sched_constant = {
    .name = "constant", .alias = "ConstantLR", .args = constant_args, .arg_count = 2,
    .check = constant_check, .lr_at = constant_lr,
};
