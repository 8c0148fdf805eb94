/* CosineAnnealingLR: lr = eta_min + (base - eta_min) (1 + cos(pi epoch / T_max)) / 2,
 * torch's closed form. Past T_max torch's chainable rule rises again along
 * the same cosine, and so does this; the two agree to about 1e-13 relative
 * over 500 epochs (tests/sched_ref.py). */
#include <math.h>

#include "optim/scheduler.h"

enum { COSINE_T_MAX, COSINE_ETA_MIN };

static const nn_arg_spec cosine_args[] = {
    {"T_max", NN_ARG_INT, NN_ARG_REQUIRED, {0, 0}, NULL},
    {"eta_min", NN_ARG_FLOAT, 0, {0, 0}, NULL},
};

static int cosine_check(const nn_schedule *schedule, nn_error *err) {
    double t_max = schedule->args[COSINE_T_MAX].value[0];
    if (!(t_max >= 1)) return nn_error_set(err, NN_ERR_INPUT, "T_max must be >= 1, got %g", t_max);
    return 0;
}

static double cosine_lr(const nn_schedule *schedule, double base_lr, const nn_schedule_time *time) {
    const double pi = 3.14159265358979323846;
    double eta_min = schedule->args[COSINE_ETA_MIN].value[0];
    /* pi * epoch / T_max in Python's order, so that the cosines are torch's. */
    return eta_min + (base_lr - eta_min) * (1 + cos(pi * time->epoch / schedule->args[COSINE_T_MAX].value[0])) / 2;
}

const nn_scheduler_kind nn_sched_cosine = {
    .name = "cosine", .alias = "CosineAnnealingLR", .args = cosine_args, .arg_count = 2,
    .check = cosine_check, .lr_at = cosine_lr,
};
