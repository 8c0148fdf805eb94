/* PolynomialLR: lr = base * (1 - min(total_iters, epoch) / total_iters)^power,
 * torch's closed form (0 from epoch total_iters on). */
#include <math.h>

#include "optim/scheduler.h"

enum { POLYNOMIAL_TOTAL, POLYNOMIAL_POWER };

static const nn_arg_spec polynomial_args[] = {
    {"total_iters", NN_ARG_INT, 0, {5, 0}, NULL},
    {"power", NN_ARG_FLOAT, 0, {1.0, 0}, NULL},
};

/* torch checks neither: total_iters 0 divides by zero in its closed form
 * (its chainable rule then keeps base for ever), and a negative power
 * raises 0 to it at epoch total_iters (ZeroDivisionError). */
static int polynomial_check(const nn_schedule *schedule, nn_error *err) {
    double total = schedule->args[POLYNOMIAL_TOTAL].value[0], power = schedule->args[POLYNOMIAL_POWER].value[0];
    if (!(total >= 1)) return nn_error_set(err, NN_ERR_INPUT, "total_iters must be >= 1, got %g", total);
    if (!(power >= 0))
        return nn_error_set(err, NN_ERR_INPUT,
                            "power must be >= 0, got %g (torch's PolynomialLR raises 0 to it at epoch total_iters)",
                            power);
    return 0;
}

static double polynomial_lr(const nn_schedule *schedule, double base_lr, const nn_schedule_time *time) {
    int total = (int)schedule->args[POLYNOMIAL_TOTAL].value[0];
    int epoch = time->epoch < total ? time->epoch : total;
    return base_lr * pow(1.0 - (double)epoch / total, schedule->args[POLYNOMIAL_POWER].value[0]);
}

const nn_scheduler_kind nn_sched_polynomial = {
    .name = "polynomial", .alias = "PolynomialLR", .args = polynomial_args, .arg_count = 2,
    .check = polynomial_check, .lr_at = polynomial_lr,
};
