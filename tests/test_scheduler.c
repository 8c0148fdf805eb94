/* Learning-rate schedules: lr_at against closed forms and values worked out
 * by hand, and against torch.optim.lr_scheduler's chainable rules (what
 * torch computes when stepped once per epoch) re-implemented here; OneCycleLR
 * and CosineAnnealingWarmRestarts step by step, ReduceLROnPlateau's state,
 * SequentialLR's switching, copying and freeing schedules, the argument
 * checks and the argument tables. tests/sched_ref.py compares all of them
 * with torch itself. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optim/scheduler.h"
#include "testutil.h"

enum { LAST_EPOCH = 50 };

static const double pi = 3.14159265358979323846;

static const nn_scheduler_kind *find_kind(const char *name) {
    const nn_scheduler_kind *kind = nn_scheduler_kind_find(name);
    ck_assert_msg(kind != NULL, "no scheduler %s", name);
    return kind;
}

/* A schedule of the kind with its defaults, as the config parser leaves it. */
static nn_schedule make(const char *name) {
    nn_schedule schedule = {.kind = find_kind(name)};
    nn_arg_defaults(schedule.args, schedule.kind->args, schedule.kind->arg_count);
    return schedule;
}

static nn_arg_value *arg(nn_schedule *schedule, const char *name) {
    int i = nn_arg_find(schedule->kind->args, schedule->kind->arg_count, name);
    ck_assert_msg(i >= 0, "%s has no argument %s", schedule->kind->name, name);
    schedule->args[i].given = true;
    return &schedule->args[i];
}

static void set_arg(nn_schedule *schedule, const char *name, double value) {
    nn_arg_value *a = arg(schedule, name);
    a->count = 1;
    a->value[0] = value;
}

static void set_list(nn_schedule *schedule, const char *name, const int *values, int count) {
    nn_arg_value *a = arg(schedule, name);
    a->is_list = true;
    a->count = count;
    for (int j = 0; j < count; j++) a->value[j] = values[j];
}

static void set_choice(nn_schedule *schedule, const char *name, const char *choice) {
    int i = nn_arg_find(schedule->kind->args, schedule->kind->arg_count, name);
    nn_arg_value *a = arg(schedule, name);
    for (int c = 0; schedule->kind->args[i].choices[c]; c++)
        if (!strcmp(schedule->kind->args[i].choices[c], choice)) a->choice = c + 1;
    ck_assert_int_gt(a->choice, 0);
}

/* The rate of the first step of an epoch (per-epoch kinds: of the whole epoch). */
static double lr_at_epoch(const nn_schedule *schedule, double base, int epoch) {
    nn_schedule_time time = {epoch, (int64_t)epoch * 4, 4, LAST_EPOCH + 1};
    return schedule->kind->lr_at(schedule, base, &time);
}

static nn_schedule_time at_step(int64_t step, int64_t per_epoch, int epochs) {
    return (nn_schedule_time){(int)(step / per_epoch), step, per_epoch, epochs};
}

static void assert_lr(double actual, double expected, const char *label, int epoch) {
    ck_assert_msg(fabs(actual - expected) <= 1e-12 * fabs(expected) + 1e-15,
                  "%s at %d: %.17g, expected %.17g", label, epoch, actual, expected);
}

static void assert_check_ok(const nn_schedule *schedule) {
    nn_error err = {0};
    ck_assert_msg(schedule->kind->check(schedule, &err) == 0, "%s: %s", schedule->kind->name, err.message);
}

/* torch's chainable get_lr() of each per-epoch kind: the new rate from the previous one. */
static double step_chained(double previous, int step_size, double gamma, int epoch) {
    return epoch == 0 || epoch % step_size != 0 ? previous : previous * gamma;
}

static double cosine_chained(double previous, double base, int t_max, double eta_min, int epoch) {
    if (epoch == 0) return base;
    if ((epoch - 1 - t_max) % (2 * t_max) == 0) return previous + (base - eta_min) * (1 - cos(pi / t_max)) / 2;
    return (1 + cos(pi * epoch / t_max)) / (1 + cos(pi * (epoch - 1) / t_max)) * (previous - eta_min) + eta_min;
}

static double linear_chained(double previous, double start, double end, int total, int epoch) {
    if (epoch == 0) return previous * start;
    if (epoch > total) return previous;
    return previous * (1. + (end - start) / (total * start + (epoch - 1) * (end - start)));
}

static double constant_chained(double previous, double factor, int total, int epoch) {
    if (epoch == 0) return previous * factor;
    return epoch == total ? previous * (1.0 / factor) : previous;
}

static double polynomial_chained(double previous, int total, double power, int epoch) {
    if (epoch == 0 || epoch > total) return previous;
    return previous * pow((1.0 - (double)epoch / total) / (1.0 - (double)(epoch - 1) / total), power);
}

START_TEST(step_multistep_cosine_closed_and_chained) {
    nn_schedule step = make("step");
    set_arg(&step, "step_size", 3);
    set_arg(&step, "gamma", 0.5);
    const double by_hand[] = {1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125};
    for (int e = 0; e < 10; e++) assert_lr(lr_at_epoch(&step, 1.0, e), by_hand[e], "step", e);
    double chained = 0.1;
    for (int e = 0; e <= LAST_EPOCH; e++) {
        chained = step_chained(chained, 3, 0.5, e);
        assert_lr(lr_at_epoch(&step, 0.1, e), chained, "step chained", e);
    }

    nn_schedule multistep = make("multistep");
    const int milestones[] = {2, 4};
    set_list(&multistep, "milestones", milestones, 2);
    const double multistep_hand[] = {1, 1, 0.1, 0.1, 0.01, 0.01, 0.01};
    for (int e = 0; e < 7; e++) assert_lr(lr_at_epoch(&multistep, 1.0, e), multistep_hand[e], "multistep", e);
    set_list(&multistep, "milestones", milestones, 0);   /* torch's milestones=[]: constant */
    assert_lr(lr_at_epoch(&multistep, 0.3, 40), 0.3, "no milestones", 40);

    nn_schedule cosine = make("cosine");
    set_arg(&cosine, "T_max", 4);
    const double h = sqrt(2.0) / 2;
    const double cosine_hand[] = {1, (1 + h) / 2, 0.5, (1 - h) / 2, 0, (1 - h) / 2, 0.5};
    for (int e = 0; e < 7; e++) assert_lr(lr_at_epoch(&cosine, 1.0, e), cosine_hand[e], "cosine", e);
    set_arg(&cosine, "T_max", 7);
    set_arg(&cosine, "eta_min", 0.01);
    chained = 0.1;
    for (int e = 0; e <= LAST_EPOCH; e++) {   /* past T_max, where torch rises again */
        chained = cosine_chained(chained, 0.1, 7, 0.01, e);
        ck_assert_msg(fabs(lr_at_epoch(&cosine, 0.1, e) - chained) <= 1e-13, "cosine epoch %d", e);
    }
}
END_TEST

START_TEST(exponential_linear_constant_polynomial) {
    nn_schedule exponential = make("ExponentialLR");
    set_arg(&exponential, "gamma", 0.9);
    double chained = 0.2;
    for (int e = 0; e <= LAST_EPOCH; e++) {
        if (e) chained *= 0.9;
        assert_lr(lr_at_epoch(&exponential, 0.2, e), chained, "exponential", e);
    }
    assert_lr(lr_at_epoch(&exponential, 1, 2), 0.81, "exponential by hand", 2);

    /* Defaults 1/3 -> 1 over 5 epochs: 1/3, 7/15, 9/15, 11/15, 13/15, 1, 1. */
    nn_schedule linear = make("linear");
    assert_check_ok(&linear);
    for (int e = 0; e <= 6; e++)
        assert_lr(lr_at_epoch(&linear, 1.0, e), e >= 5 ? 1.0 : (5.0 + 2 * e) / 15, "linear default", e);
    set_arg(&linear, "start_factor", 0.1);
    set_arg(&linear, "end_factor", 0.6);
    set_arg(&linear, "total_iters", 20);
    chained = 0.5;
    for (int e = 0; e <= LAST_EPOCH; e++) {
        chained = linear_chained(chained, 0.1, 0.6, 20, e);
        assert_lr(lr_at_epoch(&linear, 0.5, e), chained, "linear chained", e);
    }

    nn_schedule constant = make("ConstantLR");
    for (int e = 0; e <= 6; e++)
        assert_lr(lr_at_epoch(&constant, 0.3, e), e < 5 ? 0.1 : 0.3, "constant default", e);
    set_arg(&constant, "factor", 0.25);
    set_arg(&constant, "total_iters", 3);
    chained = 0.3;
    for (int e = 0; e <= LAST_EPOCH; e++) {
        chained = constant_chained(chained, 0.25, 3, e);
        assert_lr(lr_at_epoch(&constant, 0.3, e), chained, "constant chained", e);
    }

    /* Default total_iters 5, power 1: 1, 0.8, 0.6, 0.4, 0.2, 0, 0. */
    nn_schedule polynomial = make("polynomial");
    for (int e = 0; e <= 6; e++)
        assert_lr(lr_at_epoch(&polynomial, 1.0, e), e >= 5 ? 0 : 1 - 0.2 * e, "polynomial default", e);
    set_arg(&polynomial, "total_iters", 30);
    set_arg(&polynomial, "power", 2.5);
    chained = 0.1;
    for (int e = 0; e <= LAST_EPOCH; e++) {
        chained = polynomial_chained(chained, 30, 2.5, e);
        assert_lr(lr_at_epoch(&polynomial, 0.1, e), chained, "polynomial chained", e);
    }
}
END_TEST

/* 10 steps, pct_start 0.3: up from 1/25 over steps 0..2 (end step 2), down
 * to 1/25/1e4 at step 9; momentum 0.95 -> 0.85 -> 0.95. */
START_TEST(onecycle_by_hand) {
    nn_schedule onecycle = make("OneCycleLR");
    set_arg(&onecycle, "max_lr", 1.0);
    set_arg(&onecycle, "total_steps", 10);
    assert_check_ok(&onecycle);
    ck_assert(onecycle.kind->per_step);
    nn_schedule_time t0 = at_step(0, 5, 2), t1 = at_step(1, 5, 2), t2 = at_step(2, 5, 2), t9 = at_step(9, 5, 2);
    /* The optimiser's rate is overridden, as in torch: any base gives the same. */
    assert_lr(onecycle.kind->lr_at(&onecycle, 123.0, &t0), 0.04, "onecycle", 0);
    assert_lr(onecycle.kind->lr_at(&onecycle, 0.1, &t1), 0.52, "onecycle", 1);
    assert_lr(onecycle.kind->lr_at(&onecycle, 0.1, &t2), 1.0, "onecycle", 2);
    assert_lr(onecycle.kind->lr_at(&onecycle, 0.1, &t9), 4e-6, "onecycle", 9);
    /* Step 5 is 3/7 of the way down from step 2 to step 9: cosine from 1 to 4e-6. */
    nn_schedule_time t5 = at_step(5, 5, 2);
    double pct = 3.0 / 7;
    assert_lr(onecycle.kind->lr_at(&onecycle, 0.1, &t5), 4e-6 + (1 - 4e-6) / 2 * (cos(pi * pct) + 1), "onecycle", 5);
    assert_lr(onecycle.kind->momentum_at(&onecycle, 0.9, &t0), 0.95, "momentum", 0);
    assert_lr(onecycle.kind->momentum_at(&onecycle, 0.9, &t1), 0.90, "momentum", 1);
    assert_lr(onecycle.kind->momentum_at(&onecycle, 0.9, &t2), 0.85, "momentum", 2);
    assert_lr(onecycle.kind->momentum_at(&onecycle, 0.9, &t9), 0.95, "momentum", 9);
    /* Past total_steps torch raises; nnseq holds the last scheduled rate and momentum. */
    for (int64_t step = 10; step < 1000; step += 7) {
        nn_schedule_time t = at_step(step, 5, 200);
        assert_lr(onecycle.kind->lr_at(&onecycle, 0.1, &t), 4e-6, "onecycle past the end", (int)step);
        assert_lr(onecycle.kind->momentum_at(&onecycle, 0.9, &t), 0.95, "momentum past the end", (int)step);
    }

    /* linear annealing, no momentum cycling: the optimiser's momentum stays. */
    set_choice(&onecycle, "anneal_strategy", "linear");
    set_arg(&onecycle, "cycle_momentum", 0);
    assert_lr(onecycle.kind->lr_at(&onecycle, 0.1, &t1), 0.52, "linear", 1);
    assert_lr(onecycle.kind->lr_at(&onecycle, 0.1, &t5), 1 + (4e-6 - 1) * pct, "linear", 5);
    assert_lr(onecycle.kind->momentum_at(&onecycle, 0.9, &t1), 0.9, "no cycling", 1);

    /* three_phase: up over 0..2, back down to 1/25 over 2..4, then to 4e-6 at 9. */
    set_arg(&onecycle, "three_phase", 1);
    nn_schedule_time t3 = at_step(3, 5, 2), t4 = at_step(4, 5, 2);
    assert_lr(onecycle.kind->lr_at(&onecycle, 0.1, &t3), 0.52, "three_phase", 3);
    assert_lr(onecycle.kind->lr_at(&onecycle, 0.1, &t4), 0.04, "three_phase", 4);
    assert_lr(onecycle.kind->lr_at(&onecycle, 0.1, &t9), 4e-6, "three_phase", 9);
}
END_TEST

/* Without total_steps the total is epochs * steps_per_epoch, each from the
 * arguments or else the run's. */
START_TEST(onecycle_total_from_the_run) {
    nn_schedule run = make("onecycle");
    set_arg(&run, "max_lr", 1.0);
    nn_schedule given = run;
    set_arg(&given, "total_steps", 12);
    for (int64_t step = 0; step < 12; step++) {
        nn_schedule_time t = at_step(step, 4, 3);
        assert_lr(run.kind->lr_at(&run, 0.1, &t), given.kind->lr_at(&given, 0.1, &t), "run total", (int)step);
    }
    /* epochs: 2 of the run's 3, steps_per_epoch from the run: 8 steps, then held. */
    nn_schedule epochs = run, eight = run;
    set_arg(&epochs, "epochs", 2);
    set_arg(&eight, "total_steps", 8);
    for (int64_t step = 0; step < 12; step++) {
        nn_schedule_time t = at_step(step, 4, 3);
        assert_lr(epochs.kind->lr_at(&epochs, 0.1, &t), eight.kind->lr_at(&eight, 0.1, &t), "epochs 2", (int)step);
    }
    nn_schedule_time last = at_step(7, 4, 3), after = at_step(11, 4, 3);
    assert_lr(epochs.kind->lr_at(&epochs, 0.1, &after), epochs.kind->lr_at(&epochs, 0.1, &last), "held", 11);
}
END_TEST

START_TEST(cosine_restarts_by_hand) {
    nn_schedule restarts = make("CosineAnnealingWarmRestarts");
    set_arg(&restarts, "T_0", 2);
    ck_assert(restarts.kind->per_step);
    /* 2 steps per epoch: positions 0, 0.5, 1, 1.5, then a restart at 2. */
    const double h = sqrt(2.0) / 2;
    const double expected[] = {1, (1 + h) / 2, 0.5, (1 - h) / 2, 1, (1 + h) / 2};
    for (int64_t step = 0; step < 6; step++) {
        nn_schedule_time t = at_step(step, 2, 3);
        assert_lr(restarts.kind->lr_at(&restarts, 1.0, &t), expected[step], "T_0 2", (int)step);
    }
    /* T_mult 2 from T_0 1: periods of 1, 2, 4 epochs, restarts at 1, 3, 7. */
    set_arg(&restarts, "T_0", 1);
    set_arg(&restarts, "T_mult", 2);
    set_arg(&restarts, "eta_min", 0.1);
    const struct { int epoch; double lr; } points[] = {
        {0, 1}, {1, 1}, {2, 0.55}, {3, 1}, {5, 0.55}, {7, 1}, {11, 0.55}, {15, 1}};
    for (int i = 0; i < 8; i++) {
        nn_schedule_time t = at_step(points[i].epoch, 1, 20);
        assert_lr(restarts.kind->lr_at(&restarts, 1.0, &t), points[i].lr, "T_mult 2", points[i].epoch);
    }
}
END_TEST

static double observe_all(const nn_schedule *plateau, double base, const double *metrics, int count) {
    double state[NN_SCHEDULE_MAX_STATE];
    ck_assert_int_le(plateau->kind->state_count, NN_SCHEDULE_MAX_STATE);
    plateau->kind->state_init(plateau, base, state);
    for (int i = 0; i < count; i++) plateau->kind->observe(plateau, state, metrics[i]);
    return plateau->kind->lr_from_state(plateau, state);
}

START_TEST(plateau_state) {
    nn_schedule plateau = make("ReduceLROnPlateau");
    ck_assert_ptr_null(plateau.kind->lr_at);
    ck_assert_int_gt(plateau.kind->state_count, 0);
    set_arg(&plateau, "patience", 2);
    set_arg(&plateau, "factor", 0.5);
    const double flat[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    /* The first sets the best; bad epochs 1, 2, then 3 > patience halves the rate. */
    assert_lr(observe_all(&plateau, 1.0, flat, 3), 1.0, "patience 2", 3);
    assert_lr(observe_all(&plateau, 1.0, flat, 4), 0.5, "patience 2", 4);
    assert_lr(observe_all(&plateau, 1.0, flat, 7), 0.25, "patience 2", 7);
    /* Improving by less than the relative threshold (1e-4) is not improving. */
    const double creeping[] = {1, 0.99999, 0.99998, 0.99997};
    assert_lr(observe_all(&plateau, 1.0, creeping, 4), 0.5, "rel threshold", 4);
    const double falling[] = {1, 0.9, 0.8, 0.7, 0.6};
    assert_lr(observe_all(&plateau, 1.0, falling, 5), 1.0, "falling", 5);
    /* A NaN metric is never better: a bad epoch. */
    const double nans[] = {1, NAN, NAN, NAN};
    assert_lr(observe_all(&plateau, 1.0, nans, 4), 0.5, "nan", 4);
    /* cooldown 2: the two epochs after the cut at 4 do not count, so the next is at 9, not 7. */
    set_arg(&plateau, "cooldown", 2);
    assert_lr(observe_all(&plateau, 1.0, flat, 8), 0.5, "cooldown", 8);
    assert_lr(observe_all(&plateau, 1.0, flat, 9), 0.25, "cooldown", 9);
    /* min_lr floors it; a cut of eps or less is not made. */
    set_arg(&plateau, "cooldown", 0);
    set_arg(&plateau, "min_lr", 0.3);
    assert_lr(observe_all(&plateau, 1.0, flat, 7), 0.3, "min_lr", 7);
    set_arg(&plateau, "min_lr", 0);
    set_arg(&plateau, "eps", 0.3);
    assert_lr(observe_all(&plateau, 1.0, flat, 7), 0.5, "eps", 7);
    /* mode max with an absolute threshold: rising by 0.05 is not enough. */
    set_arg(&plateau, "eps", 1e-8);
    set_choice(&plateau, "mode", "max");
    set_choice(&plateau, "threshold_mode", "abs");
    set_arg(&plateau, "threshold", 0.1);
    const double rising[] = {1, 1.05, 1.08, 1.09};
    assert_lr(observe_all(&plateau, 1.0, rising, 4), 0.5, "max abs", 4);
    const double jumping[] = {1, 1.2, 1.4, 1.6};
    assert_lr(observe_all(&plateau, 1.0, jumping, 4), 1.0, "max abs", 4);
}
END_TEST

static nn_schedule warmup_cosine(void) {
    nn_schedule sequential = make("SequentialLR");
    const int milestones[] = {5};
    set_list(&sequential, "milestones", milestones, 1);
    sequential.child_count = 2;
    sequential.children = calloc(2, sizeof *sequential.children);
    ck_assert_ptr_nonnull(sequential.children);
    sequential.children[0] = make("linear");
    set_arg(&sequential.children[0], "start_factor", 0.1);
    sequential.children[1] = make("cosine");
    set_arg(&sequential.children[1], "T_max", 10);
    return sequential;
}

START_TEST(sequential_switches_and_restarts_the_epoch) {
    nn_schedule sequential = warmup_cosine();
    assert_check_ok(&sequential);
    ck_assert(!nn_schedule_per_step(&sequential));
    for (int e = 0; e <= LAST_EPOCH; e++) {
        double expected = e < 5 ? lr_at_epoch(&sequential.children[0], 0.2, e)
                                : lr_at_epoch(&sequential.children[1], 0.2, e - 5);
        assert_lr(lr_at_epoch(&sequential, 0.2, e), expected, "sequential", e);
    }
    assert_lr(lr_at_epoch(&sequential, 1.0, 0), 0.1, "warm-up start", 0);
    assert_lr(lr_at_epoch(&sequential, 1.0, 5), 1.0, "cosine start", 5);
    assert_lr(lr_at_epoch(&sequential, 1.0, 15), 0.0, "cosine bottom", 15);

    /* A deep copy: same rates, its own children; both freed. */
    nn_schedule copy;
    nn_error err = {0};
    ck_assert_int_eq(nn_schedule_copy(&copy, &sequential, &err), 0);
    ck_assert_ptr_ne(copy.children, sequential.children);
    ck_assert_int_eq(copy.child_count, 2);
    nn_schedule_clear(&sequential);
    ck_assert_ptr_null(sequential.children);
    ck_assert_int_eq(sequential.child_count, 0);
    for (int e = 0; e <= 20; e++) {
        double expected = e < 5 ? 0.2 * (0.1 + 0.9 * e / 5) : 0.1 * (1 + cos(pi * (e - 5) / 10));
        assert_lr(lr_at_epoch(&copy, 0.2, e), expected, "copy", e);
    }
    nn_schedule_clear(&copy);

    /* Copying and clearing a schedule without children. */
    nn_schedule step = make("step"), step_copy;
    set_arg(&step, "step_size", 2);
    ck_assert_int_eq(nn_schedule_copy(&step_copy, &step, &err), 0);
    ck_assert_ptr_null(step_copy.children);
    assert_lr(lr_at_epoch(&step_copy, 1.0, 2), 0.1, "step copy", 2);
    nn_schedule_clear(&step_copy);
}
END_TEST

START_TEST(per_step_kinds) {
    const char *per_step[] = {"onecycle", "cosine_restarts"};
    const char *per_epoch[] = {"step", "multistep", "cosine", "exponential", "linear", "constant",
                               "polynomial", "plateau", "sequential"};
    for (int i = 0; i < 2; i++) {
        nn_schedule s = make(per_step[i]);
        ck_assert_msg(nn_schedule_per_step(&s), "%s", per_step[i]);
    }
    for (int i = 0; i < 9; i++) {
        nn_schedule s = make(per_epoch[i]);
        ck_assert_msg(!nn_schedule_per_step(&s), "%s", per_epoch[i]);
    }
    nn_schedule none = {0};
    ck_assert(!nn_schedule_per_step(&none));
    /* A per-step child makes the whole per step (the check refuses it, but the answer holds). */
    nn_schedule sequential = warmup_cosine();
    sequential.children[1] = make("onecycle");
    ck_assert(nn_schedule_per_step(&sequential));
    nn_schedule_clear(&sequential);
}
END_TEST

typedef struct bad_case {
    const char *kind, *name;
    double value;
    const char *expected;
} bad_case;

/* Arguments torch raises on (at once or when stepped), and a few it takes
 * that nnseq refuses as typos; each message names the argument. */
static const bad_case bad_cases[] = {
    {"step", "step_size", 0, "step_size must be >= 1, got 0"},
    {"cosine", "T_max", -5, "T_max must be >= 1, got -5"},
    {"cosine_restarts", "T_0", 0, "T_0 must be an integer >= 1, got 0"},
    {"cosine_restarts", "T_mult", 0, "T_mult must be an integer >= 1, got 0"},
    {"onecycle", "total_steps", 0, "total_steps must be >= 1, got 0"},
    {"onecycle", "epochs", -1, "epochs must be >= 1, got -1"},
    {"onecycle", "steps_per_epoch", 0, "steps_per_epoch must be >= 1, got 0"},
    {"onecycle", "pct_start", 1.5, "pct_start must be between 0 and 1, got 1.5"},
    {"onecycle", "div_factor", 0, "div_factor must be > 0, got 0"},
    {"onecycle", "final_div_factor", -1, "final_div_factor must be > 0"},
    {"plateau", "factor", 1, "factor must be < 1, got 1"},
    {"linear", "start_factor", 1.5, "start_factor must be between 0 and 1, got 1.5"},
    {"linear", "end_factor", -0.5, "end_factor must be between 0 and 1, got -0.5"},
    {"linear", "start_factor", 0, "start_factor must be > 0, got 0 (torch's LinearLR divides by it"},
    {"linear", "total_iters", 0, "total_iters must be >= 1, got 0"},
    {"constant", "factor", 0, "factor must be > 0 and <= 1, got 0"},
    {"constant", "factor", 2, "factor must be > 0 and <= 1, got 2"},
    {"constant", "total_iters", -3, "total_iters must be >= 1, got -3"},
    {"polynomial", "power", -1, "power must be >= 0, got -1"},
    {"polynomial", "total_iters", 0, "total_iters must be >= 1, got 0"},
};

START_TEST(check_rejects_bad_arguments) {
    const bad_case *c = &bad_cases[_i];
    nn_schedule schedule = make(c->kind);
    /* The required arguments valid, so that the refusal is the one argument's. */
    const char *required[][2] = {{"step", "step_size"}, {"cosine", "T_max"}, {"onecycle", "max_lr"},
                                 {"cosine_restarts", "T_0"}};
    for (int i = 0; i < 4; i++)
        if (!strcmp(c->kind, required[i][0])) set_arg(&schedule, required[i][1], 3);
    assert_check_ok(&schedule);
    set_arg(&schedule, c->name, c->value);
    nn_error err = {0};
    ck_assert_int_eq(schedule.kind->check(&schedule, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    ck_assert_msg(strstr(err.message, c->expected), "%s %s=%g: %s", c->kind, c->name, c->value, err.message);
}
END_TEST

static void assert_refused(const nn_schedule *schedule, const char *expected) {
    nn_error err = {0};
    ck_assert_int_eq(schedule->kind->check(schedule, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    ck_assert_msg(strstr(err.message, expected), "expected \"%s\" in: %s", expected, err.message);
}

START_TEST(check_messages) {
    /* max_lr has no default (the parser says it is missing; the check too, for other callers). */
    nn_schedule onecycle = make("onecycle");
    assert_refused(&onecycle, "max_lr is required");
    set_arg(&onecycle, "max_lr", 0.1);
    assert_check_ok(&onecycle);
    /* A warm-up of exactly one step is 0/0 in torch; known here from total_steps or epochs x steps_per_epoch. */
    set_arg(&onecycle, "total_steps", 10);
    set_arg(&onecycle, "pct_start", 0.1);
    assert_refused(&onecycle, "pct_start 0.1 of 10 steps leaves a warm-up of 1 step");
    onecycle = make("onecycle");
    set_arg(&onecycle, "max_lr", 0.1);
    set_arg(&onecycle, "epochs", 5);
    set_arg(&onecycle, "steps_per_epoch", 2);
    set_arg(&onecycle, "pct_start", 0.1);
    assert_refused(&onecycle, "of 10 steps");
    set_arg(&onecycle, "pct_start", 0.3);
    assert_check_ok(&onecycle);

    nn_schedule multistep = make("multistep");
    const int repeated[] = {2, 4, 4}, zero[] = {0, 3};
    set_list(&multistep, "milestones", repeated, 3);
    assert_refused(&multistep, "milestones must be increasing, got 4 after 4 at index 2");
    set_list(&multistep, "milestones", zero, 2);
    assert_refused(&multistep, "milestones must be epochs >= 1, got 0 at index 0");

    nn_schedule sequential = warmup_cosine();
    const int two[] = {3, 6}, six[] = {6};
    set_list(&sequential, "milestones", two, 2);
    assert_refused(&sequential, "expected 1 milestones (one fewer than the 2 schedulers), got 2");
    set_list(&sequential, "milestones", six, 1);
    assert_check_ok(&sequential);
    set_arg(&sequential.children[1], "T_max", 0);
    assert_refused(&sequential, "schedulers[1] cosine: T_max must be >= 1, got 0");
    const char *refused_children[] = {"onecycle", "cosine_restarts", "plateau", "sequential"};
    for (int i = 0; i < 4; i++) {
        sequential.children[1] = make(refused_children[i]);
        char expected[128];
        snprintf(expected, sizeof expected, "schedulers[1] is %s, which SequentialLR cannot hold", refused_children[i]);
        assert_refused(&sequential, expected);
    }
    nn_schedule_clear(&sequential);
    nn_schedule empty = make("sequential");
    assert_refused(&empty, "schedulers must list 1 to 8 schedules, got 0");
    nn_schedule many = make("sequential");
    many.child_count = NN_SCHEDULE_MAX_CHILDREN + 1;
    many.children = calloc((size_t)many.child_count, sizeof *many.children);
    ck_assert_ptr_nonnull(many.children);
    assert_refused(&many, "got 9");
    nn_schedule_clear(&many);
}
END_TEST

/* Names, torch's class names and defaults (torch 1.13's signatures). */
START_TEST(argument_tables_follow_torch) {
    const struct { const char *kind, *alias, *arg; double default_value; unsigned flags; } table[] = {
        {"step", "StepLR", "gamma", 0.1, 0},
        {"step", "StepLR", "step_size", 0, NN_ARG_REQUIRED},
        {"multistep", "MultiStepLR", "milestones", 0, NN_ARG_REQUIRED},
        {"cosine", "CosineAnnealingLR", "eta_min", 0, 0},
        {"exponential", "ExponentialLR", "gamma", 0, NN_ARG_REQUIRED},
        {"linear", "LinearLR", "start_factor", 1.0 / 3, 0},
        {"linear", "LinearLR", "end_factor", 1.0, 0},
        {"linear", "LinearLR", "total_iters", 5, 0},
        {"constant", "ConstantLR", "factor", 1.0 / 3, 0},
        {"constant", "ConstantLR", "total_iters", 5, 0},
        {"polynomial", "PolynomialLR", "total_iters", 5, 0},
        {"polynomial", "PolynomialLR", "power", 1.0, 0},
        {"onecycle", "OneCycleLR", "max_lr", 0, NN_ARG_REQUIRED},
        {"onecycle", "OneCycleLR", "pct_start", 0.3, 0},
        {"onecycle", "OneCycleLR", "cycle_momentum", 1, 0},
        {"onecycle", "OneCycleLR", "base_momentum", 0.85, 0},
        {"onecycle", "OneCycleLR", "max_momentum", 0.95, 0},
        {"onecycle", "OneCycleLR", "div_factor", 25, 0},
        {"onecycle", "OneCycleLR", "final_div_factor", 1e4, 0},
        {"onecycle", "OneCycleLR", "three_phase", 0, 0},
        {"cosine_restarts", "CosineAnnealingWarmRestarts", "T_0", 0, NN_ARG_REQUIRED},
        {"cosine_restarts", "CosineAnnealingWarmRestarts", "T_mult", 1, 0},
        {"cosine_restarts", "CosineAnnealingWarmRestarts", "eta_min", 0, 0},
        {"plateau", "ReduceLROnPlateau", "factor", 0.1, 0},
        {"plateau", "ReduceLROnPlateau", "patience", 10, 0},
        {"plateau", "ReduceLROnPlateau", "threshold", 1e-4, 0},
        {"plateau", "ReduceLROnPlateau", "cooldown", 0, 0},
        {"plateau", "ReduceLROnPlateau", "min_lr", 0, 0},
        {"plateau", "ReduceLROnPlateau", "eps", 1e-8, 0},
        {"plateau", "ReduceLROnPlateau", "verbose", 0, 0},
        {"sequential", "SequentialLR", "milestones", 0, NN_ARG_REQUIRED},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        const nn_scheduler_kind *kind = find_kind(table[i].kind);
        ck_assert_ptr_eq(nn_scheduler_kind_find(table[i].alias), kind);
        ck_assert_str_eq(kind->alias, table[i].alias);
        int a = nn_arg_find(kind->args, kind->arg_count, table[i].arg);
        ck_assert_msg(a >= 0, "%s has no %s", table[i].kind, table[i].arg);
        ck_assert_uint_eq(kind->args[a].flags, table[i].flags);
        if (!table[i].flags) ck_assert_double_eq(kind->args[a].default_value[0], table[i].default_value);
    }
    /* The choices and their defaults: 'cos', 'min', 'rel'. */
    nn_schedule onecycle = make("onecycle"), plateau = make("plateau");
    const char *choices[][2] = {{"anneal_strategy", "cos"}, {"mode", "min"}, {"threshold_mode", "rel"}};
    for (int i = 0; i < 3; i++) {
        nn_schedule *s = i ? &plateau : &onecycle;
        int a = nn_arg_find(s->kind->args, s->kind->arg_count, choices[i][0]);
        ck_assert_int_ge(a, 0);
        ck_assert_str_eq(nn_arg_choice(&s->kind->args[a], &s->args[a]), choices[i][1]);
    }
    /* total_steps, epochs and steps_per_epoch may be left out or null (Python's None). */
    const char *optional[] = {"total_steps", "epochs", "steps_per_epoch"};
    for (int i = 0; i < 3; i++) {
        int a = nn_arg_find(onecycle.kind->args, onecycle.kind->arg_count, optional[i]);
        ck_assert_uint_eq(onecycle.kind->args[a].flags, NN_ARG_OPTIONAL | NN_ARG_NULLABLE);
    }
    ck_assert(find_kind("sequential")->takes_children);
    int count = 0;
    nn_scheduler_kind_list(&count);
    ck_assert_int_eq(count, 11);
    for (int i = 0; i < count; i++) ck_assert_int_le(nn_scheduler_kind_list(&count)[i]->arg_count, NN_MAX_ARGS);
    /* Exactly as torch spells them. */
    ck_assert_ptr_null(nn_scheduler_kind_find("steplr"));
    ck_assert_ptr_null(nn_scheduler_kind_find("OneCycle"));
}
END_TEST

int main(void) {
    Suite *suite = suite_create("scheduler");
    TCase *tc = tcase_create("scheduler");
    tcase_add_test(tc, step_multistep_cosine_closed_and_chained);
    tcase_add_test(tc, exponential_linear_constant_polynomial);
    tcase_add_test(tc, onecycle_by_hand);
    tcase_add_test(tc, onecycle_total_from_the_run);
    tcase_add_test(tc, cosine_restarts_by_hand);
    tcase_add_test(tc, plateau_state);
    tcase_add_test(tc, sequential_switches_and_restarts_the_epoch);
    tcase_add_test(tc, per_step_kinds);
    tcase_add_loop_test(tc, check_rejects_bad_arguments, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
    tcase_add_test(tc, check_messages);
    tcase_add_test(tc, argument_tables_follow_torch);
    suite_add_tcase(suite, tc);
    return testutil_run(suite);
}
