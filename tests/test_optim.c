/* Optimisers: several steps of each option combination against a reference
 * written here in double from torch.optim's documented algorithms (1.13),
 * with gradients and the learning rate changing from step to step, and the
 * argument checks. */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "optim/optimizer.h"
#include "testutil.h"

/* Not a multiple of any vector width, so a vectorised loop's tail runs too. */
enum { PARAMS = 37, STEPS = 6 };

/* Inputs are floats, as the optimiser sees them; the reference reads the
 * same floats and computes in double. Gradients change sign and size from
 * step to step; parameter 0 always gets a zero gradient. */
static float initial_param(int i) { return (float)sin(1.3 * i + 0.4) * 2; }

static float gradient(int step, int i) {
    return i == 0 ? 0.0f : (float)(cos(0.7 * i + 1.1 * step) * (1 + 0.5 * step) + 0.1 * sin(3.0 * i));
}

/* A scheduler may change the rate between steps. */
static double lr_at(double base_lr, int step) { return base_lr * (1 - 0.1 * step); }

typedef struct sgd_options {
    double lr, momentum, dampening, weight_decay;
    bool nesterov;
} sgd_options;

typedef struct adam_options {
    double lr, beta1, beta2, eps, weight_decay;
    bool decoupled; /* AdamW */
} adam_options;

/* torch.optim.SGD, as its documentation writes it. */
static void reference_sgd(double *param, sgd_options o, int steps) {
    double buffer[PARAMS];
    for (int t = 0; t < steps; t++) {
        double lr = lr_at(o.lr, t);
        for (int i = 0; i < PARAMS; i++) {
            double d = gradient(t, i) + o.weight_decay * param[i];
            if (o.momentum != 0) {
                buffer[i] = t == 0 ? d : o.momentum * buffer[i] + (1 - o.dampening) * d;
                d = o.nesterov ? d + o.momentum * buffer[i] : buffer[i];
            }
            param[i] -= lr * d;
        }
    }
}

/* torch.optim.Adam and AdamW, in the paper's form with bias-corrected
 * moments m_hat and v_hat (torch folds the corrections into the step size;
 * the two agree exactly in real arithmetic). */
static void reference_adam(double *param, adam_options o, int steps) {
    double m[PARAMS] = {0}, v[PARAMS] = {0};
    for (int t = 1; t <= steps; t++) {
        double lr = lr_at(o.lr, t - 1);
        for (int i = 0; i < PARAMS; i++) {
            double g = gradient(t - 1, i);
            if (o.decoupled)
                param[i] *= 1 - lr * o.weight_decay;
            else
                g += o.weight_decay * param[i];
            m[i] = o.beta1 * m[i] + (1 - o.beta1) * g;
            v[i] = o.beta2 * v[i] + (1 - o.beta2) * g * g;
            double m_hat = m[i] / (1 - pow(o.beta1, t));
            double v_hat = v[i] / (1 - pow(o.beta2, t));
            param[i] -= lr * m_hat / (sqrt(v_hat) + o.eps);
        }
    }
}

static void set_arg(const nn_optimizer_kind *kind, nn_arg_value *args, const char *name, double v0,
                    double v1) {
    int i = nn_arg_find(kind->args, kind->arg_count, name);
    ck_assert_msg(i >= 0, "%s has no argument %s", kind->name, name);
    args[i].given = true;
    args[i].value[0] = v0;
    args[i].value[1] = v1;
}

static const nn_optimizer_kind *find_kind(const char *name) {
    const nn_optimizer_kind *kind = nn_optimizer_kind_find(name);
    ck_assert_msg(kind != NULL, "no optimizer %s", name);
    return kind;
}

/* Runs the optimiser for STEPS steps, compares with expected[] after the
 * last one; label names the combination in the failure message. */
static void run_and_compare(const nn_optimizer_kind *kind, const nn_arg_value *args, double base_lr,
                            const double *expected, const char *label) {
    nn_optimizer opt;
    nn_error err = {0};
    ck_assert_msg(nn_optimizer_init(&opt, kind, args, PARAMS, &err) == 0, "%s: %s", label, err.message);
    ck_assert_msg(opt.lr == base_lr, "%s: lr %g", label, opt.lr);
    float param[PARAMS], grad[PARAMS];
    for (int i = 0; i < PARAMS; i++) param[i] = initial_param(i);
    for (int t = 0; t < STEPS; t++) {
        for (int i = 0; i < PARAMS; i++) grad[i] = gradient(t, i);
        opt.lr = lr_at(base_lr, t);
        nn_optimizer_step(&opt, param, grad);
    }
    ck_assert_int_eq(opt.steps, STEPS);
    /* The engine splits each update over its threads by parameter range:
     * any split must give the whole update's bits, state included. */
    nn_optimizer split;
    ck_assert_msg(nn_optimizer_init(&split, kind, args, PARAMS, &err) == 0, "%s: %s", label, err.message);
    float split_param[PARAMS];
    for (int i = 0; i < PARAMS; i++) split_param[i] = initial_param(i);
    const size_t bounds[] = {0, 5, 6, 18, 33, PARAMS};
    for (int t = 0; t < STEPS; t++) {
        for (int i = 0; i < PARAMS; i++) grad[i] = gradient(t, i);
        split.lr = lr_at(base_lr, t);
        for (int b = 4; b >= 0; b--) nn_optimizer_update(&split, split_param, grad, bounds[b], bounds[b + 1] - bounds[b]);
        nn_optimizer_finish_step(&split);
    }
    ck_assert_int_eq(split.steps, STEPS);
    ck_assert_msg(memcmp(split_param, param, sizeof param) == 0, "%s: a split update differs from the whole", label);
    for (int k = 0; k < kind->buffer_count; k++)
        ck_assert_msg(memcmp(split.buffers[k], opt.buffers[k], PARAMS * sizeof(float)) == 0,
                      "%s: a split update leaves other %s", label, kind->buffer_names[k]);
    nn_optimizer_free(&split);
    for (int i = 0; i < PARAMS; i++) {
        /* Every parameter moves by O(lr) per step, so a relative error on
         * the parameter is also a small relative error on the updates. */
        double tolerance = 1e-6 * fabs(expected[i]) + 1e-7;
        ck_assert_msg(fabs(param[i] - expected[i]) <= tolerance,
                      "%s: param[%d] = %.9g after %d steps, reference %.9g (moved %.9g from %.9g)", label, i,
                      param[i], STEPS, expected[i], expected[i] - initial_param(i), (double)initial_param(i));
    }
    nn_optimizer_free(&opt);
}

START_TEST(sgd_matches_reference_for_every_option_combination) {
    const nn_optimizer_kind *kind = find_kind("sgd");
    const double momenta[] = {0, 0.9}, dampenings[] = {0, 0.3}, decays[] = {0, 0.05};
    int combinations = 0;
    for (int m = 0; m < 2; m++)
        for (int d = 0; d < 2; d++)
            for (int n = 0; n < 2; n++)
                for (int w = 0; w < 2; w++) {
                    sgd_options o = {0.1, momenta[m], dampenings[d], decays[w], n == 1};
                    if (o.nesterov && (o.momentum == 0 || o.dampening != 0)) continue;
                    nn_arg_value args[NN_MAX_ARGS];
                    nn_arg_defaults(args, kind->args, kind->arg_count);
                    set_arg(kind, args, "lr", o.lr, 0);
                    set_arg(kind, args, "momentum", o.momentum, 0);
                    set_arg(kind, args, "dampening", o.dampening, 0);
                    set_arg(kind, args, "nesterov", o.nesterov, 0);
                    set_arg(kind, args, "weight_decay", o.weight_decay, 0);
                    double expected[PARAMS];
                    for (int i = 0; i < PARAMS; i++) expected[i] = initial_param(i);
                    reference_sgd(expected, o, STEPS);
                    char label[128];
                    snprintf(label, sizeof label, "sgd momentum=%g dampening=%g nesterov=%d weight_decay=%g",
                             o.momentum, o.dampening, o.nesterov, o.weight_decay);
                    run_and_compare(kind, args, o.lr, expected, label);
                    combinations++;
                }
    ck_assert_int_eq(combinations, 10);
}
END_TEST

static void check_adam(const char *name, adam_options o) {
    const nn_optimizer_kind *kind = find_kind(name);
    nn_arg_value args[NN_MAX_ARGS];
    nn_arg_defaults(args, kind->args, kind->arg_count);
    set_arg(kind, args, "lr", o.lr, 0);
    set_arg(kind, args, "betas", o.beta1, o.beta2);
    set_arg(kind, args, "eps", o.eps, 0);
    set_arg(kind, args, "weight_decay", o.weight_decay, 0);
    double expected[PARAMS];
    for (int i = 0; i < PARAMS; i++) expected[i] = initial_param(i);
    reference_adam(expected, o, STEPS);
    char label[128];
    snprintf(label, sizeof label, "%s betas=(%g, %g) eps=%g weight_decay=%g", name, o.beta1, o.beta2, o.eps,
             o.weight_decay);
    run_and_compare(kind, args, o.lr, expected, label);
}

START_TEST(adam_and_adamw_match_reference_for_every_option_combination) {
    const double betas[][2] = {{0.9, 0.999}, {0.5, 0.8}, {0, 0.99}};
    const double epsilons[] = {1e-8, 0.1};
    const double decays[] = {0, 0.01, 0.2};
    for (int b = 0; b < 3; b++)
        for (int e = 0; e < 2; e++)
            for (int w = 0; w < 3; w++) {
                adam_options o = {0.05, betas[b][0], betas[b][1], epsilons[e], decays[w], false};
                check_adam("adam", o);
                o.decoupled = true;
                check_adam("adamw", o);
            }
}
END_TEST

/* Defaults as torch: AdamW decays by 0.01 unless told otherwise, Adam not
 * at all; both lr 0.001, betas (0.9, 0.999), eps 1e-8. */
START_TEST(adam_defaults_are_torch_defaults) {
    const char *names[] = {"adam", "adamw"};
    for (int k = 0; k < 2; k++) {
        const nn_optimizer_kind *kind = find_kind(names[k]);
        nn_arg_value args[NN_MAX_ARGS];
        nn_arg_defaults(args, kind->args, kind->arg_count);
        nn_optimizer opt;
        nn_error err = {0};
        ck_assert_int_eq(nn_optimizer_init(&opt, kind, args, PARAMS, &err), 0);
        ck_assert_double_eq(opt.lr, 0.001);
        ck_assert_double_eq(nn_optimizer_arg(&opt, "betas", 0), 0.9);
        ck_assert_double_eq(nn_optimizer_arg(&opt, "betas", 1), 0.999);
        ck_assert_double_eq(nn_optimizer_arg(&opt, "eps", 0), 1e-8);
        ck_assert_double_eq(nn_optimizer_arg(&opt, "weight_decay", 0), k == 1 ? 0.01 : 0);
        nn_optimizer_free(&opt);
        adam_options o = {0.001, 0.9, 0.999, 1e-8, k == 1 ? 0.01 : 0, k == 1};
        double expected[PARAMS];
        for (int i = 0; i < PARAMS; i++) expected[i] = initial_param(i);
        reference_adam(expected, o, STEPS);
        run_and_compare(kind, args, 0.001, expected, names[k]);
    }
}
END_TEST

/* The state the checkpoint saves: buffers named as torch names them, zero
 * at the start, and for momentum SGD equal to the reference buffer. */
START_TEST(optimizer_state_is_named_and_starts_at_zero) {
    const char *names[] = {"sgd", "adam", "adamw"};
    const int buffer_counts[] = {1, 2, 2};
    for (int k = 0; k < 3; k++) {
        const nn_optimizer_kind *kind = find_kind(names[k]);
        ck_assert_int_eq(kind->buffer_count, buffer_counts[k]);
        nn_arg_value args[NN_MAX_ARGS];
        nn_arg_defaults(args, kind->args, kind->arg_count);
        nn_optimizer opt;
        nn_error err = {0};
        ck_assert_int_eq(nn_optimizer_init(&opt, kind, args, PARAMS, &err), 0);
        ck_assert_int_eq(opt.steps, 0);
        for (int b = 0; b < kind->buffer_count; b++)
            for (int i = 0; i < PARAMS; i++) ck_assert_float_eq(opt.buffers[b][i], 0.0f);
        nn_optimizer_free(&opt);
        ck_assert_ptr_null(opt.buffers[0]);
    }
    ck_assert_str_eq(find_kind("sgd")->buffer_names[0], "momentum_buffer");
    ck_assert_str_eq(find_kind("adam")->buffer_names[0], "exp_avg");
    ck_assert_str_eq(find_kind("adamw")->buffer_names[1], "exp_avg_sq");
    int count = 0;
    const nn_optimizer_kind *const *kinds = nn_optimizer_kind_list(&count);
    ck_assert_int_eq(count, 3);
    for (int i = 0; i < count; i++) ck_assert_ptr_eq(nn_optimizer_kind_find(kinds[i]->name), kinds[i]);
    ck_assert_ptr_null(nn_optimizer_kind_find("rmsprop"));
}
END_TEST

/* Each case: kind, argument, its two values, and a word the message must hold. */
typedef struct bad_args {
    const char *kind, *name;
    double v0, v1;
    const char *second_name; /* optional second argument to set */
    double second_value;
    const char *expected;
} bad_args;

static const bad_args bad_cases[] = {
    {"sgd", "lr", -0.1, 0, NULL, 0, "lr"},
    {"sgd", "lr", NAN, 0, NULL, 0, "lr"},
    {"sgd", "momentum", -0.5, 0, NULL, 0, "momentum"},
    {"sgd", "weight_decay", -1e-4, 0, NULL, 0, "weight_decay"},
    {"sgd", "nesterov", 1, 0, NULL, 0, "nesterov"},
    {"sgd", "nesterov", 1, 0, "momentum", 0, "nesterov"},
    {"adam", "lr", -0.001, 0, NULL, 0, "lr"},
    {"adam", "betas", 1.0, 0.999, NULL, 0, "betas[0]"},
    {"adam", "betas", -0.1, 0.999, NULL, 0, "betas[0]"},
    {"adam", "betas", 0.9, 1.0, NULL, 0, "betas[1]"},
    {"adam", "betas", 0.9, 1.5, NULL, 0, "betas[1]"},
    {"adam", "eps", -1e-8, 0, NULL, 0, "eps"},
    {"adam", "weight_decay", -0.1, 0, NULL, 0, "weight_decay"},
    {"adamw", "lr", -1, 0, NULL, 0, "lr"},
    {"adamw", "betas", 0.9, -0.2, NULL, 0, "betas[1]"},
    {"adamw", "weight_decay", -0.01, 0, NULL, 0, "weight_decay"},
};

START_TEST(check_rejects_bad_arguments) {
    const bad_args *c = &bad_cases[_i];
    const nn_optimizer_kind *kind = find_kind(c->kind);
    nn_arg_value args[NN_MAX_ARGS];
    nn_arg_defaults(args, kind->args, kind->arg_count);
    set_arg(kind, args, c->name, c->v0, c->v1);
    if (c->second_name) set_arg(kind, args, c->second_name, c->second_value, 0);
    nn_error err = {0};
    ck_assert_int_eq(kind->check(args, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    ck_assert_msg(strstr(err.message, c->expected), "%s %s: %s", c->kind, c->name, err.message);
    nn_optimizer opt;
    err = (nn_error){0};
    ck_assert_int_eq(nn_optimizer_init(&opt, kind, args, PARAMS, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    nn_optimizer_free(&opt);
}
END_TEST

/* Nesterov with dampening needs momentum set too, so it gets its own case. */
START_TEST(check_rejects_nesterov_with_dampening) {
    const nn_optimizer_kind *kind = find_kind("sgd");
    nn_arg_value args[NN_MAX_ARGS];
    nn_arg_defaults(args, kind->args, kind->arg_count);
    set_arg(kind, args, "nesterov", 1, 0);
    set_arg(kind, args, "momentum", 0.9, 0);
    nn_error err = {0};
    ck_assert_int_eq(kind->check(args, &err), 0);
    set_arg(kind, args, "dampening", 0.1, 0);
    ck_assert_int_eq(kind->check(args, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    ck_assert_msg(strstr(err.message, "dampening"), "%s", err.message);
}
END_TEST

START_TEST(check_accepts_boundary_values) {
    const char *names[] = {"sgd", "adam", "adamw"};
    for (int k = 0; k < 3; k++) {
        const nn_optimizer_kind *kind = find_kind(names[k]);
        nn_arg_value args[NN_MAX_ARGS];
        nn_arg_defaults(args, kind->args, kind->arg_count);
        set_arg(kind, args, "lr", 0, 0);
        set_arg(kind, args, "weight_decay", 0, 0);
        if (k > 0) {
            set_arg(kind, args, "betas", 0, 0);
            set_arg(kind, args, "eps", 0, 0);
        }
        nn_error err = {0};
        ck_assert_msg(kind->check(args, &err) == 0, "%s: %s", names[k], err.message);
    }
}
END_TEST

int main(void) {
    Suite *suite = suite_create("optim");
    TCase *tc = tcase_create("optim");
    tcase_add_test(tc, sgd_matches_reference_for_every_option_combination);
    tcase_add_test(tc, adam_and_adamw_match_reference_for_every_option_combination);
    tcase_add_test(tc, adam_defaults_are_torch_defaults);
    tcase_add_test(tc, optimizer_state_is_named_and_starts_at_zero);
    tcase_add_loop_test(tc, check_rejects_bad_arguments, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
    tcase_add_test(tc, check_rejects_nesterov_with_dampening);
    tcase_add_test(tc, check_accepts_boundary_values);
    suite_add_tcase(suite, tc);
    return testutil_run(suite);
}
