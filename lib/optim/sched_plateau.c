/* ReduceLROnPlateau: the one schedule with state, updated after each
 * epoch with the watched metric (the validation loss) by torch's step():
 * an epoch that does not beat the best by the threshold is a bad one;
 * after more than patience bad epochs in a row the rate is multiplied by
 * factor (not below min_lr, and only by more than eps), then cooldown
 * epochs are not counted. */
#include <math.h>

#include "optim/scheduler.h"

enum {
    PLATEAU_MODE, PLATEAU_FACTOR, PLATEAU_PATIENCE, PLATEAU_THRESHOLD, PLATEAU_THRESHOLD_MODE,
    PLATEAU_COOLDOWN, PLATEAU_MIN_LR, PLATEAU_EPS, PLATEAU_VERBOSE
};

static const char *const mode_choices[] = {"min", "max", NULL};
static const char *const threshold_mode_choices[] = {"rel", "abs", NULL};

static const nn_arg_spec plateau_args[] = {
    {"mode", NN_ARG_CHOICE, 0, {0, 0}, mode_choices},
    {"factor", NN_ARG_FLOAT, 0, {0.1, 0}, NULL},
    {"patience", NN_ARG_INT, 0, {10, 0}, NULL},
    {"threshold", NN_ARG_FLOAT, 0, {1e-4, 0}, NULL},
    {"threshold_mode", NN_ARG_CHOICE, 0, {0, 0}, threshold_mode_choices},
    {"cooldown", NN_ARG_INT, 0, {0, 0}, NULL},
    {"min_lr", NN_ARG_FLOAT, 0, {0, 0}, NULL},
    {"eps", NN_ARG_FLOAT, 0, {1e-8, 0}, NULL},
    /* Accepted for torch's sake; nnseq's log shows the rate of every epoch anyway. */
    {"verbose", NN_ARG_BOOL, 0, {0, 0}, NULL},
};

/* The state, in the checkpoint in this order. */
enum { STATE_LR, STATE_BEST, STATE_BAD_EPOCHS, STATE_COOLDOWN, STATE_COUNT };

static bool maximise(const nn_schedule *schedule) { return schedule->args[PLATEAU_MODE].choice == 2; }

static int plateau_check(const nn_schedule *schedule, nn_error *err) {
    double factor = schedule->args[PLATEAU_FACTOR].value[0];
    if (!(factor < 1)) return nn_error_set(err, NN_ERR_INPUT, "factor must be < 1, got %g", factor);
    return 0;
}

static void plateau_init(const nn_schedule *schedule, double base_lr, double *state) {
    state[STATE_LR] = base_lr;
    state[STATE_BEST] = maximise(schedule) ? -INFINITY : INFINITY;
    state[STATE_BAD_EPOCHS] = 0;
    state[STATE_COOLDOWN] = 0;
}

/* torch's is_better, comparisons as written there (a NaN metric is never better). */
static bool is_better(const nn_schedule *schedule, double metric, double best) {
    double threshold = schedule->args[PLATEAU_THRESHOLD].value[0];
    bool relative = schedule->args[PLATEAU_THRESHOLD_MODE].choice != 2;
    if (!maximise(schedule)) return relative ? metric < best * (1. - threshold) : metric < best - threshold;
    return relative ? metric > best * (threshold + 1.) : metric > best + threshold;
}

static void plateau_observe(const nn_schedule *schedule, double *state, double metric) {
    const nn_arg_value *args = schedule->args;
    if (is_better(schedule, metric, state[STATE_BEST])) {
        state[STATE_BEST] = metric;
        state[STATE_BAD_EPOCHS] = 0;
    } else {
        state[STATE_BAD_EPOCHS] += 1;
    }
    if (state[STATE_COOLDOWN] > 0) {
        state[STATE_COOLDOWN] -= 1;
        state[STATE_BAD_EPOCHS] = 0;
    }
    if (state[STATE_BAD_EPOCHS] > args[PLATEAU_PATIENCE].value[0]) {
        double old_lr = state[STATE_LR], reduced = old_lr * args[PLATEAU_FACTOR].value[0];
        double min_lr = args[PLATEAU_MIN_LR].value[0], new_lr = min_lr > reduced ? min_lr : reduced; /* Python's max */
        if (old_lr - new_lr > args[PLATEAU_EPS].value[0]) state[STATE_LR] = new_lr;
        state[STATE_COOLDOWN] = args[PLATEAU_COOLDOWN].value[0];
        state[STATE_BAD_EPOCHS] = 0;
    }
}

static double plateau_lr(const nn_schedule *schedule, const double *state) {
    (void)schedule;
    return state[STATE_LR];
}

const nn_scheduler_kind nn_sched_plateau = {
    .name = "plateau", .alias = "ReduceLROnPlateau", .args = plateau_args, .arg_count = 9,
    .check = plateau_check, .state_count = STATE_COUNT, .state_init = plateau_init,
    .observe = plateau_observe, .lr_from_state = plateau_lr,
};
