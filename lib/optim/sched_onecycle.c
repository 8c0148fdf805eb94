/* OneCycleLR, changed before every optimiser step: from max_lr / div_factor
 * up to max_lr over pct_start of the steps, then down to
 * max_lr / div_factor / final_div_factor (three_phase: back to the start
 * first), momentum cycling the other way between max_momentum and
 * base_momentum. As in torch it sets the rate itself: the optimiser's
 * configured lr is not used. The phases, their fractional end steps and
 * the annealing are torch's get_lr, which has no state but the step.
 *
 * The total is total_steps, else epochs * steps_per_epoch, each defaulting
 * to the run's (train.epochs, and the optimiser steps of an epoch). Past
 * the total torch raises ("Tried to step N times"); nnseq holds the rate
 * and momentum of the last scheduled step (the final, lowest rate). */
#include <math.h>

#include "optim/scheduler.h"

enum {
    ONECYCLE_MAX_LR, ONECYCLE_TOTAL_STEPS, ONECYCLE_EPOCHS, ONECYCLE_STEPS_PER_EPOCH, ONECYCLE_PCT_START,
    ONECYCLE_ANNEAL, ONECYCLE_CYCLE_MOMENTUM, ONECYCLE_BASE_MOMENTUM, ONECYCLE_MAX_MOMENTUM,
    ONECYCLE_DIV_FACTOR, ONECYCLE_FINAL_DIV_FACTOR, ONECYCLE_THREE_PHASE
};

static const char *const anneal_choices[] = {"cos", "linear", NULL};

#define OPTIONAL_INT (NN_ARG_OPTIONAL | NN_ARG_NULLABLE)

static const nn_arg_spec onecycle_args[] = {
    {"max_lr", NN_ARG_FLOAT, NN_ARG_REQUIRED, {0, 0}, NULL},
    {"total_steps", NN_ARG_INT, OPTIONAL_INT, {0, 0}, NULL},
    {"epochs", NN_ARG_INT, OPTIONAL_INT, {0, 0}, NULL},
    {"steps_per_epoch", NN_ARG_INT, OPTIONAL_INT, {0, 0}, NULL},
    {"pct_start", NN_ARG_FLOAT, 0, {0.3, 0}, NULL},
    {"anneal_strategy", NN_ARG_CHOICE, 0, {0, 0}, anneal_choices},
    {"cycle_momentum", NN_ARG_BOOL, 0, {1, 0}, NULL},
    {"base_momentum", NN_ARG_FLOAT, 0, {0.85, 0}, NULL},
    {"max_momentum", NN_ARG_FLOAT, 0, {0.95, 0}, NULL},
    {"div_factor", NN_ARG_FLOAT, 0, {25, 0}, NULL},
    {"final_div_factor", NN_ARG_FLOAT, 0, {1e4, 0}, NULL},
    {"three_phase", NN_ARG_BOOL, 0, {0, 0}, NULL},
};

static bool has(const nn_schedule *schedule, int arg) {
    return schedule->args[arg].given && !schedule->args[arg].is_null;
}

/* total_steps, else epochs * steps_per_epoch, from the arguments given and
 * the run's figures for the others (time NULL: the arguments alone; -1 when
 * they do not say). */
static double total_steps(const nn_schedule *schedule, const nn_schedule_time *time) {
    if (has(schedule, ONECYCLE_TOTAL_STEPS)) return schedule->args[ONECYCLE_TOTAL_STEPS].value[0];
    bool epochs = has(schedule, ONECYCLE_EPOCHS), steps = has(schedule, ONECYCLE_STEPS_PER_EPOCH);
    if (!time && !(epochs && steps)) return -1;
    return (epochs ? schedule->args[ONECYCLE_EPOCHS].value[0] : time->epochs) *
           (steps ? schedule->args[ONECYCLE_STEPS_PER_EPOCH].value[0] : (double)time->steps_per_epoch);
}

static int onecycle_check(const nn_schedule *schedule, nn_error *err) {
    const nn_arg_value *args = schedule->args;
    if (!args[ONECYCLE_MAX_LR].given)
        return nn_error_set(err, NN_ERR_INPUT, "max_lr is required (OneCycleLR has no default peak rate)");
    const struct { int arg; const char *name; } counts[] = {
        {ONECYCLE_TOTAL_STEPS, "total_steps"},
        {ONECYCLE_EPOCHS, "epochs"},
        {ONECYCLE_STEPS_PER_EPOCH, "steps_per_epoch"},
    };
    for (int i = 0; i < 3; i++)
        if (has(schedule, counts[i].arg) && !(args[counts[i].arg].value[0] >= 1))
            return nn_error_set(err, NN_ERR_INPUT, "%s must be >= 1, got %g", counts[i].name,
                                args[counts[i].arg].value[0]);
    double pct = args[ONECYCLE_PCT_START].value[0];
    if (!(pct >= 0 && pct <= 1))
        return nn_error_set(err, NN_ERR_INPUT, "pct_start must be between 0 and 1, got %g", pct);
    if (!(args[ONECYCLE_DIV_FACTOR].value[0] > 0))
        return nn_error_set(err, NN_ERR_INPUT, "div_factor must be > 0, got %g", args[ONECYCLE_DIV_FACTOR].value[0]);
    if (!(args[ONECYCLE_FINAL_DIV_FACTOR].value[0] > 0))
        return nn_error_set(err, NN_ERR_INPUT, "final_div_factor must be > 0, got %g",
                            args[ONECYCLE_FINAL_DIV_FACTOR].value[0]);
    /* A first phase that ends where it starts is 0/0 in torch's get_lr
     * (ZeroDivisionError at step 0); refused when the total is known here. */
    double total = total_steps(schedule, NULL);
    if (total > 0 && (double)(pct * total) == 1)
        return nn_error_set(err, NN_ERR_INPUT,
                            "pct_start %g of %g steps leaves a warm-up of 1 step, which torch's OneCycleLR "
                            "divides by zero on; choose another pct_start", pct, total);
    return 0;
}

/* The phases' end steps and the values they go between (torch's
 * _schedule_phases); which values is an index into from[]. */
enum { INITIAL, MAX, MIN };

typedef struct phase {
    double end_step;
    int start_lr, end_lr;
    bool momentum_up; /* momentum from base to max (else max to base; the third phase stays at max) */
    bool momentum_flat;
} phase;

static int phases(const nn_schedule *schedule, double total, phase *out) {
    double pct = schedule->args[ONECYCLE_PCT_START].value[0];
    if (schedule->args[ONECYCLE_THREE_PHASE].value[0] != 0) {
        out[0] = (phase){(double)(pct * total) - 1, INITIAL, MAX, false, false};
        out[1] = (phase){(double)(2 * pct * total) - 2, MAX, INITIAL, true, false};
        out[2] = (phase){total - 1, INITIAL, MIN, false, true};
        return 3;
    }
    out[0] = (phase){(double)(pct * total) - 1, INITIAL, MAX, false, false};
    out[1] = (phase){total - 1, MAX, MIN, true, false};
    return 2;
}

static double anneal(const nn_schedule *schedule, double start, double end, double pct) {
    if (schedule->args[ONECYCLE_ANNEAL].choice == 2) return (end - start) * pct + start;
    const double pi = 3.14159265358979323846;
    return end + (start - end) / 2.0 * (cos(pi * pct) + 1);
}

/* torch's get_lr at the step about to be taken, for the rate (momentum
 * false) or the momentum. */
static double onecycle_value(const nn_schedule *schedule, const nn_schedule_time *time, bool momentum) {
    const nn_arg_value *args = schedule->args;
    double total = total_steps(schedule, time);
    double step = (double)time->step < total - 1 ? (double)time->step : total - 1;
    if (step < 0) step = 0;
    double initial = args[ONECYCLE_MAX_LR].value[0] / args[ONECYCLE_DIV_FACTOR].value[0];
    double lrs[] = {[INITIAL] = initial, [MAX] = args[ONECYCLE_MAX_LR].value[0],
                    [MIN] = initial / args[ONECYCLE_FINAL_DIV_FACTOR].value[0]};
    phase list[3];
    int count = phases(schedule, total, list);
    double start_step = 0;
    for (int i = 0; i < count; i++) {
        if (step <= list[i].end_step || i == count - 1) {
            double length = list[i].end_step - start_step;
            /* A phase of no length (a total the check could not see) is over at once. */
            double pct = length != 0 ? (step - start_step) / length : 1;
            if (!momentum) return anneal(schedule, lrs[list[i].start_lr], lrs[list[i].end_lr], pct);
            double low = args[ONECYCLE_BASE_MOMENTUM].value[0], high = args[ONECYCLE_MAX_MOMENTUM].value[0];
            if (list[i].momentum_flat) return anneal(schedule, high, high, pct);
            return list[i].momentum_up ? anneal(schedule, low, high, pct) : anneal(schedule, high, low, pct);
        }
        start_step = list[i].end_step;
    }
    return 0; /* not reached: the last phase always answers */
}

static double onecycle_lr(const nn_schedule *schedule, double base_lr, const nn_schedule_time *time) {
    (void)base_lr;
    return onecycle_value(schedule, time, false);
}

static double onecycle_momentum(const nn_schedule *schedule, double base_momentum, const nn_schedule_time *time) {
    if (schedule->args[ONECYCLE_CYCLE_MOMENTUM].value[0] == 0) return base_momentum;
    return onecycle_value(schedule, time, true);
}

const nn_scheduler_kind nn_sched_onecycle = {
    .name = "onecycle", .alias = "OneCycleLR", .args = onecycle_args, .arg_count = 12, .per_step = true,
    .check = onecycle_check, .lr_at = onecycle_lr, .momentum_at = onecycle_momentum,
};
