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
    bool nesterov, maximize;
} sgd_options;

typedef struct adam_options {
    double lr, beta1, beta2, eps, weight_decay;
    bool decoupled; /* AdamW */
    bool amsgrad, maximize;
} adam_options;

/* torch.optim.SGD, as its documentation writes it. */
static void reference_sgd(double *param, sgd_options o, int steps) {
    double buffer[PARAMS];
    for (int t = 0; t < steps; t++) {
        double lr = lr_at(o.lr, t);
        for (int i = 0; i < PARAMS; i++) {
            double d = (o.maximize ? -gradient(t, i) : gradient(t, i)) + o.weight_decay * param[i];
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
    double m[PARAMS] = {0}, v[PARAMS] = {0}, v_max[PARAMS] = {0};
    for (int t = 1; t <= steps; t++) {
        double lr = lr_at(o.lr, t - 1);
        for (int i = 0; i < PARAMS; i++) {
            double g = o.maximize ? -gradient(t - 1, i) : gradient(t - 1, i);
            if (o.decoupled)
                param[i] *= 1 - lr * o.weight_decay;
            else
                g += o.weight_decay * param[i];
            m[i] = o.beta1 * m[i] + (1 - o.beta1) * g;
            v[i] = o.beta2 * v[i] + (1 - o.beta2) * g * g;
            if (v[i] > v_max[i]) v_max[i] = v[i];
            double m_hat = m[i] / (1 - pow(o.beta1, t));
            double v_hat = (o.amsgrad ? v_max[i] : v[i]) / (1 - pow(o.beta2, t));
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
    for (int k = 0; k < NN_OPTIMIZER_MAX_BUFFERS; k++)
        if (opt.buffers[k])
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
                for (int w = 0; w < 4; w++) {
                    sgd_options o = {0.1, momenta[m], dampenings[d], decays[w % 2], n == 1, w >= 2};
                    if (o.nesterov && (o.momentum == 0 || o.dampening != 0)) continue;
                    nn_arg_value args[NN_MAX_ARGS];
                    nn_arg_defaults(args, kind->args, kind->arg_count);
                    set_arg(kind, args, "lr", o.lr, 0);
                    set_arg(kind, args, "momentum", o.momentum, 0);
                    set_arg(kind, args, "dampening", o.dampening, 0);
                    set_arg(kind, args, "nesterov", o.nesterov, 0);
                    set_arg(kind, args, "weight_decay", o.weight_decay, 0);
                    set_arg(kind, args, "maximize", o.maximize, 0);
                    double expected[PARAMS];
                    for (int i = 0; i < PARAMS; i++) expected[i] = initial_param(i);
                    reference_sgd(expected, o, STEPS);
                    char label[128];
                    snprintf(label, sizeof label, "sgd momentum=%g dampening=%g nesterov=%d weight_decay=%g maximize=%d",
                             o.momentum, o.dampening, o.nesterov, o.weight_decay, o.maximize);
                    run_and_compare(kind, args, o.lr, expected, label);
                    combinations++;
                }
    ck_assert_int_eq(combinations, 20);
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
    set_arg(kind, args, "amsgrad", o.amsgrad, 0);
    set_arg(kind, args, "maximize", o.maximize, 0);
    double expected[PARAMS];
    for (int i = 0; i < PARAMS; i++) expected[i] = initial_param(i);
    reference_adam(expected, o, STEPS);
    char label[160];
    snprintf(label, sizeof label, "%s betas=(%g, %g) eps=%g weight_decay=%g amsgrad=%d maximize=%d", name, o.beta1,
             o.beta2, o.eps, o.weight_decay, o.amsgrad, o.maximize);
    run_and_compare(kind, args, o.lr, expected, label);
}

START_TEST(adam_and_adamw_match_reference_for_every_option_combination) {
    const double betas[][2] = {{0.9, 0.999}, {0.5, 0.8}, {0, 0.99}};
    const double epsilons[] = {1e-8, 0.1};
    const double decays[] = {0, 0.01, 0.2};
    for (int b = 0; b < 3; b++)
        for (int e = 0; e < 2; e++)
            for (int w = 0; w < 3; w++)
                for (int flags = 0; flags < 4; flags++) {
                    adam_options o = {0.05, betas[b][0], betas[b][1], epsilons[e], decays[w], false, flags & 1,
                                      flags & 2};
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
        adam_options o = {0.001, 0.9, 0.999, 1e-8, k == 1 ? 0.01 : 0, k == 1, false, false};
        double expected[PARAMS];
        for (int i = 0; i < PARAMS; i++) expected[i] = initial_param(i);
        reference_adam(expected, o, STEPS);
        run_and_compare(kind, args, 0.001, expected, names[k]);
    }
}
END_TEST

/* The state the checkpoint saves: buffers named as torch names them, at
 * torch's starting values, and only those the arguments use. */
START_TEST(optimizer_state_is_named_and_starts_as_torch_starts) {
    static const struct {
        const char *kind, *option;  /* option: a boolean argument set to true, or NULL */
        const char *names[NN_OPTIMIZER_MAX_BUFFERS]; /* the buffers that exist, by slot */
    } cases[] = {
        {"sgd", NULL, {"momentum_buffer", NULL, NULL}},
        {"adam", NULL, {"exp_avg", "exp_avg_sq", NULL}},
        {"adam", "amsgrad", {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}},
        {"adamw", NULL, {"exp_avg", "exp_avg_sq", NULL}},
        {"AdamW", "amsgrad", {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}},
        {"adadelta", NULL, {"square_avg", "acc_delta", NULL}},
        {"adagrad", NULL, {"sum", NULL, NULL}},
        {"rmsprop", NULL, {"square_avg", "momentum_buffer", NULL}},
        {"RMSprop", "centered", {"square_avg", "momentum_buffer", "grad_avg"}},
        {"adamax", NULL, {"exp_avg", "exp_inf", NULL}},
        {"nadam", NULL, {"exp_avg", "exp_avg_sq", "mu_product"}},
        {"radam", NULL, {"exp_avg", "exp_avg_sq", NULL}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const nn_optimizer_kind *kind = find_kind(cases[c].kind);
        nn_arg_value args[NN_MAX_ARGS];
        nn_arg_defaults(args, kind->args, kind->arg_count);
        if (cases[c].option) set_arg(kind, args, cases[c].option, 1, 0);
        nn_optimizer opt;
        nn_error err = {0};
        ck_assert_int_eq(nn_optimizer_init(&opt, kind, args, PARAMS, &err), 0);
        ck_assert_int_eq(opt.steps, 0);
        ck_assert_ptr_null(opt.no_decay);
        for (int b = 0; b < NN_OPTIMIZER_MAX_BUFFERS; b++) {
            const char *name = cases[c].names[b];
            if (!name) {
                ck_assert_msg(opt.buffers[b] == NULL, "%s: buffer %d exists", cases[c].kind, b);
                continue;
            }
            ck_assert_msg(opt.buffers[b] != NULL, "%s: no %s", cases[c].kind, name);
            ck_assert_str_eq(kind->buffer_names[b], name);
            float start = strcmp(name, "mu_product") == 0 ? 1.0f : 0.0f;
            for (int i = 0; i < PARAMS; i++) ck_assert_float_eq(opt.buffers[b][i], start);
        }
        nn_optimizer_free(&opt);
        for (int b = 0; b < NN_OPTIMIZER_MAX_BUFFERS; b++) ck_assert_ptr_null(opt.buffers[b]);
    }
    /* Adagrad's sum starts at initial_accumulator_value. */
    const nn_optimizer_kind *adagrad = find_kind("adagrad");
    nn_arg_value args[NN_MAX_ARGS];
    nn_arg_defaults(args, adagrad->args, adagrad->arg_count);
    set_arg(adagrad, args, "initial_accumulator_value", 0.25, 0);
    nn_optimizer opt;
    nn_error err = {0};
    ck_assert_int_eq(nn_optimizer_init(&opt, adagrad, args, PARAMS, &err), 0);
    for (int i = 0; i < PARAMS; i++) ck_assert_float_eq(opt.buffers[0][i], 0.25f);
    nn_optimizer_free(&opt);

    int count = 0;
    const nn_optimizer_kind *const *kinds = nn_optimizer_kind_list(&count);
    ck_assert_int_eq(count, 9);
    for (int i = 0; i < count; i++) {
        ck_assert_ptr_eq(nn_optimizer_kind_find(kinds[i]->name), kinds[i]);
        ck_assert_ptr_eq(nn_optimizer_kind_find(kinds[i]->alias), kinds[i]);
    }
    ck_assert_ptr_eq(nn_optimizer_kind_find("NAdam"), find_kind("nadam"));
    ck_assert_ptr_null(nn_optimizer_kind_find("lbfgs"));
}
END_TEST

/* Builds args for kind from "name=v" or "name=v0,v1" words (NULL-ended). */
static void parse_args(const nn_optimizer_kind *kind, nn_arg_value *args, const char *const *words) {
    nn_arg_defaults(args, kind->args, kind->arg_count);
    for (int w = 0; words[w]; w++) {
        char name[64];
        double v0 = 0, v1 = 0;
        int n = sscanf(words[w], "%63[a-z_1]=%lf,%lf", name, &v0, &v1);
        ck_assert_msg(n >= 2, "bad word %s", words[w]);
        set_arg(kind, args, name, v0, v1);
    }
}

/* One step from p = 1, g = 0.5 (lr 0.1 where given), against the
 * equations written out by hand. */
START_TEST(first_step_matches_hand_computation) {
    const double mu1 = 0.9 * (1 - 0.5 * pow(0.96, 0.004)), mu2 = 0.9 * (1 - 0.5 * pow(0.96, 0.008));
    const struct {
        const char *kind;
        const char *words[4];
        double expected;
    } cases[] = {
        {"sgd", {"lr=0.1", NULL}, 1 - 0.1 * 0.5},
        {"sgd", {"lr=0.1", "momentum=0.9", "weight_decay=0.2", NULL}, 1 - 0.1 * (0.5 + 0.2)},
        {"sgd", {"lr=0.1", "maximize=1", NULL}, 1 + 0.1 * 0.5},
        /* m = 0.05, v = 0.00025: m_hat 0.5, v_hat 0.25. */
        {"adam", {"lr=0.1", NULL}, 1 - 0.1 * 0.5 / (0.5 + 1e-8)},
        {"adam", {"lr=0.1", "amsgrad=1", NULL}, 1 - 0.1 * 0.5 / (0.5 + 1e-8)},
        {"adamw", {"lr=0.1", NULL}, 1 * (1 - 0.1 * 0.01) - 0.1 * 0.5 / (0.5 + 1e-8)},
        /* v = 0.1 0.25; delta = sqrt(eps) / sqrt(v + eps) g. */
        {"adadelta", {NULL}, 1 - sqrt(1e-6) / sqrt(0.025 + 1e-6) * 0.5},
        {"adagrad", {NULL}, 1 - 0.01 * 0.5 / (0.5 + 1e-10)},
        {"adagrad", {"initial_accumulator_value=0.75", NULL}, 1 - 0.01 * 0.5 / (1 + 1e-10)},
        /* v = 0.01 0.25 = 0.0025. */
        {"rmsprop", {NULL}, 1 - 0.01 * 0.5 / (0.05 + 1e-8)},
        {"rmsprop", {"centered=1", NULL}, 1 - 0.01 * 0.5 / (sqrt(0.0025 - 0.005 * 0.005) + 1e-8)},
        /* u = |g| + eps; lr / (1 - beta1) = 0.02. */
        {"adamax", {NULL}, 1 - 0.02 * 0.05 / (0.5 + 1e-8)},
        /* torch 1.13's mu_product_next = mu1 mu1 mu2. */
        {"nadam", {NULL},
         1 - 0.002 * (1 - mu1) / (1 - mu1) * 0.5 / (0.5 + 1e-8) -
             0.002 * mu2 / (1 - mu1 * mu1 * mu2) * 0.05 / (0.5 + 1e-8)},
        /* rho_1 = 1 <= 5: the unrectified step m / (1 - beta1) lr. */
        {"radam", {NULL}, 1 - 0.5 * 0.001},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const nn_optimizer_kind *kind = find_kind(cases[c].kind);
        nn_arg_value args[NN_MAX_ARGS];
        parse_args(kind, args, cases[c].words);
        nn_optimizer opt;
        nn_error err = {0};
        ck_assert_msg(nn_optimizer_init(&opt, kind, args, 1, &err) == 0, "%s: %s", cases[c].kind, err.message);
        float param = 1, grad = 0.5f;
        nn_optimizer_step(&opt, &param, &grad);
        ck_assert_msg(fabs(param - cases[c].expected) <= 1e-6 * fabs(cases[c].expected),
                      "%s %s: %.9g, by hand %.9g", cases[c].kind, cases[c].words[0] ? cases[c].words[0] : "",
                      (double)param, cases[c].expected);
        nn_optimizer_free(&opt);
    }
}
END_TEST

/* Every kind with each buffer option and a no_decay mask: the engine splits
 * updates by range, so any split must give the whole update's bits, state
 * included, with lr and momentum changing between steps as a schedule
 * does. */
START_TEST(split_updates_equal_whole_updates_for_every_kind) {
    const struct {
        const char *kind;
        const char *words[5];
    } cases[] = {
        {"sgd", {"lr=0.1", "momentum=0.9", "weight_decay=0.1", "nesterov=1", NULL}},
        {"sgd", {"lr=0.1", "weight_decay=0.1", "maximize=1", NULL}},
        {"adam", {"lr=0.05", "weight_decay=0.1", "amsgrad=1", "maximize=1", NULL}},
        {"adamw", {"lr=0.05", "weight_decay=0.1", NULL}},
        {"adamw", {"lr=0.05", "amsgrad=1", NULL}},
        {"adadelta", {"weight_decay=0.1", "maximize=1", NULL}},
        {"adagrad", {"lr_decay=0.1", "weight_decay=0.1", "initial_accumulator_value=0.1", NULL}},
        {"rmsprop", {"weight_decay=0.1", "momentum=0.5", NULL}},
        {"rmsprop", {"weight_decay=0.1", "centered=1", "maximize=1", NULL}},
        {"adamax", {"weight_decay=0.1", "maximize=1", NULL}},
        {"nadam", {"weight_decay=0.1", "momentum_decay=0.1", NULL}},
        {"radam", {"weight_decay=0.1", "betas=0.9,0.5", NULL}},
        {"radam", {"weight_decay=0.1", NULL}},
    };
    unsigned char mask[PARAMS];
    for (int i = 0; i < PARAMS; i++) mask[i] = i % 4 == 1 || (i >= 10 && i < 16);
    const size_t bounds[] = {0, 5, 6, 18, 33, PARAMS};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const nn_optimizer_kind *kind = find_kind(cases[c].kind);
        nn_arg_value args[NN_MAX_ARGS];
        parse_args(kind, args, cases[c].words);
        nn_optimizer whole, split;
        nn_error err = {0};
        ck_assert_int_eq(nn_optimizer_init(&whole, kind, args, PARAMS, &err), 0);
        ck_assert_int_eq(nn_optimizer_init(&split, kind, args, PARAMS, &err), 0);
        ck_assert_int_eq(nn_optimizer_set_no_decay(&whole, mask, &err), 0);
        ck_assert_int_eq(nn_optimizer_set_no_decay(&split, mask, &err), 0);
        float a[PARAMS], b[PARAMS], grad[PARAMS];
        for (int i = 0; i < PARAMS; i++) a[i] = b[i] = initial_param(i);
        double momentum = whole.momentum;
        for (int t = 0; t < 30; t++) {
            for (int i = 0; i < PARAMS; i++) grad[i] = gradient(t % STEPS, i);
            whole.lr = split.lr = lr_at(whole.args[0].value[0], t % STEPS);
            if (nn_optimizer_has_momentum(kind)) whole.momentum = split.momentum = momentum * (1 - 0.01 * (t % 5));
            nn_optimizer_step(&whole, a, grad);
            for (int r = 4; r >= 0; r--) nn_optimizer_update(&split, b, grad, bounds[r], bounds[r + 1] - bounds[r]);
            nn_optimizer_finish_step(&split);
        }
        ck_assert_msg(memcmp(a, b, sizeof a) == 0, "%s %s: a split update differs", cases[c].kind, cases[c].words[0]);
        for (int k = 0; k < NN_OPTIMIZER_MAX_BUFFERS; k++) {
            ck_assert((whole.buffers[k] == NULL) == (split.buffers[k] == NULL));
            if (whole.buffers[k])
                ck_assert_msg(memcmp(whole.buffers[k], split.buffers[k], sizeof a) == 0, "%s: split %s differs",
                              cases[c].kind, kind->buffer_names[k]);
        }
        nn_optimizer_free(&whole);
        nn_optimizer_free(&split);
        ck_assert_ptr_null(whole.no_decay);
    }
}
END_TEST

/* no_decay: a flagged parameter gets no weight decay (here, with a zero
 * gradient, it does not move at all) and the others get it as before; the
 * mask is copied, and NULL goes back to decaying every parameter. */
START_TEST(no_decay_mask_keeps_decay_off_flagged_parameters) {
    const char *const kinds[] = {"sgd", "adam", "adamw", "adadelta", "adagrad", "rmsprop", "adamax", "nadam", "radam"};
    for (int k = 0; k < 9; k++) {
        const nn_optimizer_kind *kind = find_kind(kinds[k]);
        nn_arg_value args[NN_MAX_ARGS];
        nn_arg_defaults(args, kind->args, kind->arg_count);
        set_arg(kind, args, "weight_decay", 0.1, 0);
        nn_optimizer opt, plain;
        nn_error err = {0};
        ck_assert_int_eq(nn_optimizer_init(&opt, kind, args, 4, &err), 0);
        ck_assert_int_eq(nn_optimizer_init(&plain, kind, args, 4, &err), 0);
        unsigned char mask[4] = {0, 1, 2, 0}; /* any non-zero flag */
        ck_assert_int_eq(nn_optimizer_set_no_decay(&opt, mask, &err), 0);
        mask[2] = 0; /* copied: this does not reach opt */
        float p[4] = {1, 1, -2, -2}, q[4] = {1, 1, -2, -2};
        const float grad[4] = {0, 0, 0, 0};
        nn_optimizer_step(&opt, p, grad);
        nn_optimizer_step(&plain, q, grad);
        ck_assert_msg(p[1] == 1 && p[2] == -2, "%s: a no_decay parameter moved to %g, %g", kinds[k], p[1], p[2]);
        ck_assert_msg(p[0] < 1 && p[3] > -2, "%s: weight decay did not apply (%g, %g)", kinds[k], p[0], p[3]);
        ck_assert(p[0] == q[0] && p[3] == q[3]);
        ck_assert_int_eq(nn_optimizer_set_no_decay(&opt, NULL, &err), 0);
        ck_assert_ptr_null(opt.no_decay);
        nn_optimizer_free(&opt);
        nn_optimizer_free(&plain);
    }
}
END_TEST

/* opt->momentum is the arguments' momentum (beta1), NaN without one, and
 * the update reads it rather than the arguments: changing it is the same
 * as configuring that momentum. */
START_TEST(momentum_comes_from_the_arguments_and_drives_the_update) {
    const struct {
        const char *kind, *arg;
        double configured;
    } cases[] = {
        {"sgd", "momentum", 0.9},  {"rmsprop", "momentum", 0.9}, {"adam", "betas", 0.9}, {"adamw", "betas", 0.9},
        {"adamax", "betas", 0.9},  {"nadam", "betas", 0.9},      {"radam", "betas", 0.9},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const nn_optimizer_kind *kind = find_kind(cases[c].kind);
        ck_assert(nn_optimizer_has_momentum(kind));
        nn_arg_value args[NN_MAX_ARGS], other[NN_MAX_ARGS];
        nn_arg_defaults(args, kind->args, kind->arg_count);
        nn_arg_defaults(other, kind->args, kind->arg_count);
        set_arg(kind, args, cases[c].arg, cases[c].configured, 0.999);
        set_arg(kind, other, cases[c].arg, 0.5, 0.999);
        set_arg(kind, args, "lr", 0.01, 0);
        set_arg(kind, other, "lr", 0.01, 0);
        nn_optimizer changed, configured;
        nn_error err = {0};
        ck_assert_int_eq(nn_optimizer_init(&changed, kind, args, PARAMS, &err), 0);
        ck_assert_int_eq(nn_optimizer_init(&configured, kind, other, PARAMS, &err), 0);
        ck_assert_double_eq(changed.momentum, cases[c].configured);
        ck_assert_double_eq(configured.momentum, 0.5);
        changed.momentum = 0.5;
        float a[PARAMS], b[PARAMS], grad[PARAMS];
        for (int i = 0; i < PARAMS; i++) a[i] = b[i] = initial_param(i);
        for (int t = 0; t < STEPS; t++) {
            for (int i = 0; i < PARAMS; i++) grad[i] = gradient(t, i);
            nn_optimizer_step(&changed, a, grad);
            nn_optimizer_step(&configured, b, grad);
        }
        ck_assert_msg(memcmp(a, b, sizeof a) == 0, "%s: the update does not follow opt->momentum", cases[c].kind);
        nn_optimizer_free(&changed);
        nn_optimizer_free(&configured);
    }
    const char *const without[] = {"adadelta", "adagrad"};
    for (int k = 0; k < 2; k++) {
        const nn_optimizer_kind *kind = find_kind(without[k]);
        ck_assert(!nn_optimizer_has_momentum(kind));
        nn_arg_value args[NN_MAX_ARGS];
        nn_arg_defaults(args, kind->args, kind->arg_count);
        nn_optimizer opt;
        nn_error err = {0};
        ck_assert_int_eq(nn_optimizer_init(&opt, kind, args, PARAMS, &err), 0);
        ck_assert(isnan(opt.momentum));
        nn_optimizer_free(&opt);
    }
}
END_TEST

/* torch's defaults, for the kinds added with issue 15. */
START_TEST(defaults_are_torch_defaults) {
    const struct {
        const char *kind, *arg;
        int index;
        double value;
    } cases[] = {
        {"adadelta", "lr", 0, 1.0},       {"adadelta", "rho", 0, 0.9},     {"adadelta", "eps", 0, 1e-6},
        {"adagrad", "lr", 0, 0.01},       {"adagrad", "lr_decay", 0, 0},   {"adagrad", "eps", 0, 1e-10},
        {"adagrad", "initial_accumulator_value", 0, 0},
        {"rmsprop", "lr", 0, 0.01},       {"rmsprop", "alpha", 0, 0.99},   {"rmsprop", "eps", 0, 1e-8},
        {"rmsprop", "momentum", 0, 0},    {"rmsprop", "centered", 0, 0},
        {"adamax", "lr", 0, 0.002},       {"adamax", "betas", 1, 0.999},   {"adamax", "eps", 0, 1e-8},
        {"nadam", "lr", 0, 0.002},        {"nadam", "betas", 0, 0.9},      {"nadam", "momentum_decay", 0, 0.004},
        {"radam", "lr", 0, 0.001},        {"radam", "betas", 1, 0.999},    {"radam", "weight_decay", 0, 0},
        {"adam", "amsgrad", 0, 0},        {"adamw", "maximize", 0, 0},     {"sgd", "maximize", 0, 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const nn_optimizer_kind *kind = find_kind(cases[c].kind);
        nn_arg_value args[NN_MAX_ARGS];
        nn_arg_defaults(args, kind->args, kind->arg_count);
        nn_optimizer opt;
        nn_error err = {0};
        ck_assert_int_eq(nn_optimizer_init(&opt, kind, args, 1, &err), 0);
        ck_assert_int_ge(nn_arg_find(kind->args, kind->arg_count, cases[c].arg), 0);
        ck_assert_msg(nn_optimizer_arg(&opt, cases[c].arg, cases[c].index) == cases[c].value, "%s %s", cases[c].kind,
                      cases[c].arg);
        nn_optimizer_free(&opt);
    }
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
    {"adadelta", "rho", 1.5, 0, NULL, 0, "rho must be in [0, 1], got 1.5"},
    {"adadelta", "rho", -0.1, 0, NULL, 0, "rho must be in [0, 1], got -0.1"},
    {"adadelta", "lr", -1, 0, NULL, 0, "lr must be >= 0, got -1"},
    {"adadelta", "eps", NAN, 0, NULL, 0, "eps must be >= 0, got nan"},
    {"adagrad", "lr_decay", -0.5, 0, NULL, 0, "lr_decay must be >= 0, got -0.5"},
    {"adagrad", "initial_accumulator_value", -1, 0, NULL, 0, "initial_accumulator_value must be >= 0, got -1"},
    {"adagrad", "weight_decay", -1, 0, NULL, 0, "weight_decay must be >= 0, got -1"},
    {"adagrad", "eps", -1e-10, 0, NULL, 0, "eps must be >= 0, got -1e-10"},
    {"rmsprop", "alpha", -0.1, 0, NULL, 0, "alpha must be >= 0, got -0.1"},
    {"rmsprop", "momentum", -0.9, 0, NULL, 0, "momentum must be >= 0, got -0.9"},
    {"rmsprop", "eps", -1, 0, NULL, 0, "eps must be >= 0, got -1"},
    {"adamax", "betas", 0.9, 1.0, NULL, 0, "betas[1] must be in [0, 1), got 1"},
    {"adamax", "weight_decay", -1, 0, NULL, 0, "weight_decay must be >= 0, got -1"},
    {"nadam", "momentum_decay", -0.004, 0, NULL, 0, "momentum_decay must be >= 0, got -0.004"},
    {"nadam", "betas", -0.5, 0.999, NULL, 0, "betas[0] must be in [0, 1), got -0.5"},
    {"radam", "lr", -0.001, 0, NULL, 0, "lr must be >= 0, got -0.001"},
    {"radam", "betas", 0.9, 1.0, NULL, 0, "betas[1] must be in [0, 1), got 1"},
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
    tcase_add_test(tc, optimizer_state_is_named_and_starts_as_torch_starts);
    tcase_add_test(tc, first_step_matches_hand_computation);
    tcase_add_test(tc, split_updates_equal_whole_updates_for_every_kind);
    tcase_add_test(tc, no_decay_mask_keeps_decay_off_flagged_parameters);
    tcase_add_test(tc, momentum_comes_from_the_arguments_and_drives_the_update);
    tcase_add_test(tc, defaults_are_torch_defaults);
    tcase_add_loop_test(tc, check_rejects_bad_arguments, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
    tcase_add_test(tc, check_rejects_nesterov_with_dampening);
    tcase_add_test(tc, check_accepts_boundary_values);
    suite_add_tcase(suite, tc);
    return testutil_run(suite);
}
