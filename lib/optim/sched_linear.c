/* LinearLR: the factor goes linearly from start_factor to end_factor over
 * total_iters epochs, then stays; torch's closed form
 *   lr = base * (start + (end - start) * min(total_iters, epoch) / total_iters). */
#include "optim/scheduler.h"

enum { LINEAR_START, LINEAR_END, LINEAR_TOTAL };

static const nn_arg_spec linear_args[] = {
    {"start_factor", NN_ARG_FLOAT, 0, {1.0 / 3, 0}, NULL},
    {"end_factor", NN_ARG_FLOAT, 0, {1.0, 0}, NULL},
    {"total_iters", NN_ARG_INT, 0, {5, 0}, NULL},
};

/* torch's range checks, and two it lacks: its chainable rule divides by
 * total_iters * start_factor at epoch 1 (ZeroDivisionError for a start of
 * 0), and with total_iters 0 it keeps start_factor for ever, which its
 * closed form cannot say; both are refused. */
static int linear_check(const nn_schedule *schedule, nn_error *err) {
    const char *names[] = {"start_factor", "end_factor"};
    for (int i = LINEAR_START; i <= LINEAR_END; i++) {
        double factor = schedule->args[i].value[0];
        if (!(factor >= 0 && factor <= 1))
            return nn_error_set(err, NN_ERR_INPUT, "%s must be between 0 and 1, got %g", names[i], factor);
    }
    if (!(schedule->args[LINEAR_START].value[0] > 0))
        return nn_error_set(err, NN_ERR_INPUT,
                            "start_factor must be > 0, got 0 (torch's LinearLR divides by it at epoch 1; "
                            "use a small factor such as 0.001)");
    double total = schedule->args[LINEAR_TOTAL].value[0];
    if (!(total >= 1)) return nn_error_set(err, NN_ERR_INPUT, "total_iters must be >= 1, got %g", total);
    return 0;
}

static double linear_lr(const nn_schedule *schedule, double base_lr, const nn_schedule_time *time) {
    double start = schedule->args[LINEAR_START].value[0], end = schedule->args[LINEAR_END].value[0];
    int total = (int)schedule->args[LINEAR_TOTAL].value[0];
    int epoch = time->epoch < total ? time->epoch : total;
    return base_lr * (start + (end - start) * epoch / total);
}

const nn_scheduler_kind nn_sched_linear = {
    .name = "linear", .alias = "LinearLR", .args = linear_args, .arg_count = 3,
    .check = linear_check, .lr_at = linear_lr,
};
