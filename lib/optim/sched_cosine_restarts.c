/* CosineAnnealingWarmRestarts, changed before every optimiser step at the
 * fractional epoch epoch + step_in_epoch / steps_per_epoch, the position
 * torch's documentation steps it with (scheduler.step(epoch + i / iters));
 * nnseq gives batch i the rate of its own position, which torch's example
 * loop, stepping after batch i, gives to batch i + 1. The cosine restarts
 * every T_i epochs, T_0 first, each period T_mult times the one before:
 * torch's step(epoch) arithmetic, its float logarithm included, so that the
 * restarts fall on the same steps. */
#include <math.h>

#include "optim/scheduler.h"

enum { RESTARTS_T_0, RESTARTS_T_MULT, RESTARTS_ETA_MIN };

static const nn_arg_spec restarts_args[] = {
    {"T_0", NN_ARG_INT, NN_ARG_REQUIRED, {0, 0}, NULL},
    {"T_mult", NN_ARG_INT, 0, {1, 0}, NULL},
    {"eta_min", NN_ARG_FLOAT, 0, {0, 0}, NULL},
};

static int restarts_check(const nn_schedule *schedule, nn_error *err) {
    double t_0 = schedule->args[RESTARTS_T_0].value[0], t_mult = schedule->args[RESTARTS_T_MULT].value[0];
    if (!(t_0 >= 1)) return nn_error_set(err, NN_ERR_INPUT, "T_0 must be an integer >= 1, got %g", t_0);
    if (!(t_mult >= 1)) return nn_error_set(err, NN_ERR_INPUT, "T_mult must be an integer >= 1, got %g", t_mult);
    return 0;
}

static double restarts_lr(const nn_schedule *schedule, double base_lr, const nn_schedule_time *time) {
    const double pi = 3.14159265358979323846;
    double t_0 = schedule->args[RESTARTS_T_0].value[0], t_mult = schedule->args[RESTARTS_T_MULT].value[0];
    double eta_min = schedule->args[RESTARTS_ETA_MIN].value[0];
    int64_t per_epoch = time->steps_per_epoch >= 1 ? time->steps_per_epoch : 1;
    int64_t in_epoch = time->step - (int64_t)time->epoch * per_epoch;
    if (in_epoch < 0) in_epoch = 0;
    double epoch = time->epoch + (double)in_epoch / (double)per_epoch;
    double t_cur = epoch, t_i = t_0;
    if (epoch >= t_0) {
        if (t_mult == 1) {
            t_cur = fmod(epoch, t_0);
        } else {
            /* Python's int(math.log(x, T_mult)) is log(x) / log(T_mult) truncated. */
            double n = trunc(log(epoch / t_0 * (t_mult - 1) + 1) / log(t_mult));
            double power = pow(t_mult, n);
            t_cur = epoch - t_0 * (power - 1) / (t_mult - 1);
            t_i = t_0 * power;
        }
    }
    return eta_min + (base_lr - eta_min) * (1 + cos(pi * t_cur / t_i)) / 2;
}

const nn_scheduler_kind nn_sched_cosine_restarts = {
    .name = "cosine_restarts", .alias = "CosineAnnealingWarmRestarts", .args = restarts_args, .arg_count = 3,
    .per_step = true, .check = restarts_check, .lr_at = restarts_lr,
};
