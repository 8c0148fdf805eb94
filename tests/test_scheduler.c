/* Learning-rate schedules: lr_at against the closed forms written here, and
 * against torch.optim.lr_scheduler's chainable rules (what torch computes
 * when it is stepped once per epoch) re-implemented here, for epochs 0..20;
 * and the argument checks. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "optim/scheduler.h"
#include "testutil.h"

enum { LAST_EPOCH = 20 };

static const double pi = 3.14159265358979323846;

static const nn_scheduler_kind *find_kind(const char *name) {
    const nn_scheduler_kind *kind = nn_scheduler_kind_find(name);
    ck_assert_msg(kind != NULL, "no scheduler %s", name);
    return kind;
}

static void set_arg(const nn_scheduler_kind *kind, nn_arg_value *args, const char *name, double value) {
    int i = nn_arg_find(kind->args, kind->arg_count, name);
    ck_assert_msg(i >= 0, "%s has no argument %s", kind->name, name);
    args[i].given = true;
    args[i].count = 1;
    args[i].value[0] = value;
}

static void set_list(const nn_scheduler_kind *kind, nn_arg_value *args, const char *name, const int *values,
                     int count) {
    int i = nn_arg_find(kind->args, kind->arg_count, name);
    ck_assert_msg(i >= 0, "%s has no argument %s", kind->name, name);
    args[i].given = true;
    args[i].is_list = true;
    args[i].count = count;
    for (int j = 0; j < count; j++) args[i].value[j] = values[j];
}

static void assert_lr(double actual, double expected, const char *label, int epoch) {
    ck_assert_msg(fabs(actual - expected) <= 1e-12 * fabs(expected) + 1e-15,
                  "%s epoch %d: lr %.17g, expected %.17g", label, epoch, actual, expected);
}

/* Closed forms (scheduler.h, and torch's _get_closed_form_lr). */
static double step_closed(double base, int step_size, double gamma, int epoch) {
    return base * pow(gamma, epoch / step_size);
}

static double multistep_closed(double base, const int *milestones, int count, double gamma, int epoch) {
    int passed = 0;
    for (int i = 0; i < count; i++) passed += milestones[i] <= epoch;
    return base * pow(gamma, passed);
}

static double cosine_closed(double base, int t_max, double eta_min, int epoch) {
    return eta_min + (base - eta_min) * (1 + cos(pi * epoch / t_max)) / 2;
}

/* torch's chainable get_lr(): the new rate from the previous one. */
static double step_chained(double previous, int step_size, double gamma, int epoch) {
    return epoch == 0 || epoch % step_size != 0 ? previous : previous * gamma;
}

static double multistep_chained(double previous, const int *milestones, int count, double gamma, int epoch) {
    for (int i = 0; i < count; i++)
        if (milestones[i] == epoch) previous *= gamma;
    return previous;
}

static double cosine_chained(double previous, double base, int t_max, double eta_min, int epoch) {
    if (epoch == 0) return base;
    if ((epoch - 1 - t_max) % (2 * t_max) == 0)
        return previous + (base - eta_min) * (1 - cos(pi / t_max)) / 2;
    double ratio = (1 + cos(pi * epoch / t_max)) / (1 + cos(pi * (epoch - 1) / t_max));
    return ratio * (previous - eta_min) + eta_min;
}

START_TEST(step_matches_torch_step_lr) {
    const nn_scheduler_kind *kind = find_kind("step");
    const struct { int step_size; double gamma; } cases[] = {{3, 0.5}, {1, 0.9}, {7, 0.1}, {30, 0.1}};
    for (int c = 0; c < 4; c++) {
        nn_arg_value args[NN_MAX_ARGS];
        nn_arg_defaults(args, kind->args, kind->arg_count);
        set_arg(kind, args, "step_size", cases[c].step_size);
        set_arg(kind, args, "gamma", cases[c].gamma);
        char label[64];
        snprintf(label, sizeof label, "step(step_size=%d, gamma=%g)", cases[c].step_size, cases[c].gamma);
        double base = 0.1, chained = base;
        for (int epoch = 0; epoch <= LAST_EPOCH; epoch++) {
            double lr = kind->lr_at(args, base, epoch);
            chained = step_chained(chained, cases[c].step_size, cases[c].gamma, epoch);
            assert_lr(lr, step_closed(base, cases[c].step_size, cases[c].gamma, epoch), label, epoch);
            assert_lr(lr, chained, label, epoch);
        }
    }
}
END_TEST

START_TEST(step_values_by_hand) {
    const nn_scheduler_kind *kind = find_kind("step");
    nn_arg_value args[NN_MAX_ARGS];
    nn_arg_defaults(args, kind->args, kind->arg_count);
    set_arg(kind, args, "step_size", 3);
    set_arg(kind, args, "gamma", 0.5);
    const double expected[] = {1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125};
    for (int epoch = 0; epoch < 10; epoch++)
        assert_lr(kind->lr_at(args, 1.0, epoch), expected[epoch], "step", epoch);
    /* gamma defaults to 0.1 as in torch */
    nn_arg_defaults(args, kind->args, kind->arg_count);
    set_arg(kind, args, "step_size", 2);
    assert_lr(kind->lr_at(args, 1.0, 5), 0.01, "step default gamma", 5);
}
END_TEST

START_TEST(multistep_matches_torch_multistep_lr) {
    const nn_scheduler_kind *kind = find_kind("multistep");
    const int lists[][3] = {{2, 5, 11}, {1, 0, 0}, {20, 0, 0}, {3, 4, 19}};
    const int counts[] = {3, 1, 1, 3};
    const double gammas[] = {0.3, 0.1, 0.5, 0.7};
    for (int c = 0; c < 4; c++) {
        nn_arg_value args[NN_MAX_ARGS];
        nn_arg_defaults(args, kind->args, kind->arg_count);
        set_list(kind, args, "milestones", lists[c], counts[c]);
        set_arg(kind, args, "gamma", gammas[c]);
        char label[64];
        snprintf(label, sizeof label, "multistep case %d", c);
        double base = 0.05, chained = base;
        for (int epoch = 0; epoch <= LAST_EPOCH; epoch++) {
            double lr = kind->lr_at(args, base, epoch);
            chained = multistep_chained(chained, lists[c], counts[c], gammas[c], epoch);
            assert_lr(lr, multistep_closed(base, lists[c], counts[c], gammas[c], epoch), label, epoch);
            assert_lr(lr, chained, label, epoch);
        }
    }
}
END_TEST

START_TEST(multistep_values_by_hand) {
    const nn_scheduler_kind *kind = find_kind("multistep");
    nn_arg_value args[NN_MAX_ARGS];
    nn_arg_defaults(args, kind->args, kind->arg_count);
    const int milestones[] = {2, 4};
    set_list(kind, args, "milestones", milestones, 2);
    const double expected[] = {1, 1, 0.1, 0.1, 0.01, 0.01, 0.01};
    for (int epoch = 0; epoch < 7; epoch++)
        assert_lr(kind->lr_at(args, 1.0, epoch), expected[epoch], "multistep", epoch);
    /* No milestones: a constant rate, as torch with milestones=[]. */
    set_list(kind, args, "milestones", milestones, 0);
    for (int epoch = 0; epoch <= LAST_EPOCH; epoch++)
        assert_lr(kind->lr_at(args, 0.3, epoch), 0.3, "no milestones", epoch);
}
END_TEST

/* T_max below 20 so that the epochs past T_max, where torch's rate rises
 * again along the cosine, are covered. */
START_TEST(cosine_matches_torch_cosine_annealing_lr) {
    const nn_scheduler_kind *kind = find_kind("cosine");
    const struct {
        int t_max;
        double eta_min;
    } cases[] = {{7, 0}, {5, 0.01}, {20, 0.001}, {1, 0}, {10, 0.05}};
    for (int c = 0; c < 5; c++) {
        nn_arg_value args[NN_MAX_ARGS];
        nn_arg_defaults(args, kind->args, kind->arg_count);
        set_arg(kind, args, "T_max", cases[c].t_max);
        set_arg(kind, args, "eta_min", cases[c].eta_min);
        char label[64];
        snprintf(label, sizeof label, "cosine(T_max=%d, eta_min=%g)", cases[c].t_max, cases[c].eta_min);
        double base = 0.1, chained = base;
        for (int epoch = 0; epoch <= LAST_EPOCH; epoch++) {
            double lr = kind->lr_at(args, base, epoch);
            chained = cosine_chained(chained, base, cases[c].t_max, cases[c].eta_min, epoch);
            assert_lr(lr, cosine_closed(base, cases[c].t_max, cases[c].eta_min, epoch), label, epoch);
            /* The chained rule accumulates rounding over 20 steps. */
            ck_assert_msg(fabs(lr - chained) <= 1e-12 * base, "%s epoch %d: lr %.17g, torch's chained %.17g",
                          label, epoch, lr, chained);
        }
    }
}
END_TEST

START_TEST(cosine_values_by_hand) {
    const nn_scheduler_kind *kind = find_kind("cosine");
    nn_arg_value args[NN_MAX_ARGS];
    nn_arg_defaults(args, kind->args, kind->arg_count);
    set_arg(kind, args, "T_max", 4);
    /* eta_min defaults to 0: 1, (1 + cos(pi/4))/2, 1/2, (1 - cos(pi/4))/2, 0, then back up. */
    const double half_root2 = sqrt(2.0) / 2;
    const double expected[] = {1, (1 + half_root2) / 2, 0.5, (1 - half_root2) / 2,
                               0, (1 - half_root2) / 2, 0.5};
    for (int epoch = 0; epoch < 7; epoch++)
        assert_lr(kind->lr_at(args, 1.0, epoch), expected[epoch], "cosine", epoch);
    set_arg(kind, args, "eta_min", 0.2);
    assert_lr(kind->lr_at(args, 1.0, 2), 0.6, "cosine eta_min", 2);
    assert_lr(kind->lr_at(args, 1.0, 4), 0.2, "cosine eta_min", 4);
}
END_TEST

typedef struct bad_args {
    const char *kind, *name;
    int values[3];
    int count; /* 0: a scalar values[0]; otherwise the list's length */
    const char *expected;
} bad_args;

static const bad_args bad_cases[] = {
    {"step", "step_size", {0}, 0, "step_size"},
    {"step", "step_size", {-2}, 0, "step_size"},
    {"cosine", "T_max", {0}, 0, "T_max"},
    {"cosine", "T_max", {-5}, 0, "T_max"},
    {"multistep", "milestones", {0, 3}, 2, "milestones"},
    {"multistep", "milestones", {-1}, 1, "milestones"},
    {"multistep", "milestones", {5, 3}, 2, "increasing"},
    {"multistep", "milestones", {2, 4, 4}, 3, "increasing"},
};

START_TEST(check_rejects_bad_arguments) {
    const bad_args *c = &bad_cases[_i];
    const nn_scheduler_kind *kind = find_kind(c->kind);
    nn_arg_value args[NN_MAX_ARGS];
    nn_arg_defaults(args, kind->args, kind->arg_count);
    if (c->count == 0)
        set_arg(kind, args, c->name, c->values[0]);
    else
        set_list(kind, args, c->name, c->values, c->count);
    nn_error err = {0};
    ck_assert_int_eq(kind->check(args, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    ck_assert_msg(strstr(err.message, c->expected), "%s: %s", c->kind, err.message);
}
END_TEST

START_TEST(check_accepts_good_arguments) {
    nn_error err = {0};
    nn_arg_value args[NN_MAX_ARGS];
    const nn_scheduler_kind *step = find_kind("step");
    nn_arg_defaults(args, step->args, step->arg_count);
    set_arg(step, args, "step_size", 1);
    ck_assert_msg(step->check(args, &err) == 0, "%s", err.message);

    const nn_scheduler_kind *multistep = find_kind("multistep");
    nn_arg_defaults(args, multistep->args, multistep->arg_count);
    const int milestones[] = {1, 2, 50};
    set_list(multistep, args, "milestones", milestones, 3);
    ck_assert_msg(multistep->check(args, &err) == 0, "%s", err.message);
    set_list(multistep, args, "milestones", milestones, 0);
    ck_assert_msg(multistep->check(args, &err) == 0, "%s", err.message);

    const nn_scheduler_kind *cosine = find_kind("cosine");
    nn_arg_defaults(args, cosine->args, cosine->arg_count);
    set_arg(cosine, args, "T_max", 1);
    ck_assert_msg(cosine->check(args, &err) == 0, "%s", err.message);
}
END_TEST

/* The arguments torch requires are required here too, the others have
 * torch's defaults. */
START_TEST(argument_tables_follow_torch) {
    const struct { const char *kind, *required, *optional; double default_value; } tables[] = {
        {"step", "step_size", "gamma", 0.1},
        {"multistep", "milestones", "gamma", 0.1},
        {"cosine", "T_max", "eta_min", 0},
    };
    int count = 0;
    const nn_scheduler_kind *const *kinds = nn_scheduler_kind_list(&count);
    ck_assert_int_eq(count, 3);
    for (int k = 0; k < 3; k++) {
        const nn_scheduler_kind *kind = find_kind(tables[k].kind);
        ck_assert_ptr_eq(kinds[k], kind);
        ck_assert_int_eq(kind->arg_count, 2);
        int required = nn_arg_find(kind->args, kind->arg_count, tables[k].required);
        int optional = nn_arg_find(kind->args, kind->arg_count, tables[k].optional);
        ck_assert_int_ge(required, 0);
        ck_assert_int_ge(optional, 0);
        ck_assert(kind->args[required].flags & NN_ARG_REQUIRED);
        ck_assert_uint_eq(kind->args[optional].flags, 0);
        ck_assert_double_eq(kind->args[optional].default_value[0], tables[k].default_value);
    }
    /* The registry finds torch's class names too, exactly as torch spells them. */
    ck_assert_ptr_eq(nn_scheduler_kind_find("StepLR"), nn_scheduler_kind_find("step"));
    ck_assert_ptr_null(nn_scheduler_kind_find("steplr"));
}
END_TEST

int main(void) {
    Suite *suite = suite_create("scheduler");
    TCase *tc = tcase_create("scheduler");
    tcase_add_test(tc, step_matches_torch_step_lr);
    tcase_add_test(tc, step_values_by_hand);
    tcase_add_test(tc, multistep_matches_torch_multistep_lr);
    tcase_add_test(tc, multistep_values_by_hand);
    tcase_add_test(tc, cosine_matches_torch_cosine_annealing_lr);
    tcase_add_test(tc, cosine_values_by_hand);
    tcase_add_loop_test(tc, check_rejects_bad_arguments, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
    tcase_add_test(tc, check_accepts_good_arguments);
    tcase_add_test(tc, argument_tables_follow_torch);
    suite_add_tcase(suite, tc);
    return testutil_run(suite);
}
