/* Losses, each with every argument it takes: values against torch's
 * definitions computed here in double, gradients of nn_loss_batch against
 * central finite differences of its returned loss, per-sample numerators
 * and denominators that add up to the batch's loss, the same loss whatever
 * the batch split, the edges (huge logits, probabilities of 0 and 1, every
 * sample ignored, kinks), the checks' messages and the table. */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "losses/loss.h"
#include "testutil.h"

/* (batch, outputs) */
static const int sizes[][2] = {{1, 2}, {3, 5}, {8, 10}, {4, 7}, {16, 3}, {2, 1}};
#define SIZE_COUNT ((int)(sizeof sizes / sizeof sizes[0]))

typedef enum vector_mode { VECTOR_NONE, VECTOR_PER_OUTPUT, VECTOR_SINGLE } vector_mode;
typedef enum label_mode { LABELS_PLAIN, LABELS_SOME_IGNORED, LABELS_ALL_IGNORED } label_mode;

/* A loss with some of its arguments: the cases every generic test runs. */
typedef struct setting {
    const char *kind;
    const char *arg_names[2];
    double arg_values[2];
    vector_mode vector;
    label_mode labels;
} setting;

static const setting settings[] = {
    {"cross_entropy", {NULL}, {0}, VECTOR_NONE, LABELS_PLAIN},
    {"cross_entropy", {NULL}, {0}, VECTOR_PER_OUTPUT, LABELS_PLAIN},
    {"cross_entropy", {NULL}, {0}, VECTOR_NONE, LABELS_SOME_IGNORED},       /* labels of -100 */
    {"cross_entropy", {"ignore_index"}, {1}, VECTOR_PER_OUTPUT, LABELS_SOME_IGNORED},
    {"cross_entropy", {"ignore_index"}, {0}, VECTOR_NONE, LABELS_ALL_IGNORED},
    {"cross_entropy", {"label_smoothing"}, {0.1}, VECTOR_NONE, LABELS_PLAIN},
    {"cross_entropy", {"label_smoothing"}, {0.3}, VECTOR_PER_OUTPUT, LABELS_PLAIN},
    {"cross_entropy", {"label_smoothing", "ignore_index"}, {0.2, 1}, VECTOR_PER_OUTPUT, LABELS_SOME_IGNORED},
    {"cross_entropy", {"label_smoothing"}, {1}, VECTOR_NONE, LABELS_PLAIN},
    {"nll", {NULL}, {0}, VECTOR_NONE, LABELS_PLAIN},
    {"nll", {NULL}, {0}, VECTOR_PER_OUTPUT, LABELS_PLAIN},
    {"nll", {NULL}, {0}, VECTOR_NONE, LABELS_SOME_IGNORED},
    {"nll", {"ignore_index"}, {2}, VECTOR_PER_OUTPUT, LABELS_SOME_IGNORED},
    {"nll", {NULL}, {0}, VECTOR_PER_OUTPUT, LABELS_ALL_IGNORED},
    {"bce", {NULL}, {0}, VECTOR_NONE, LABELS_PLAIN},
    {"bce", {NULL}, {0}, VECTOR_PER_OUTPUT, LABELS_PLAIN},
    {"bce_with_logits", {NULL}, {0}, VECTOR_NONE, LABELS_PLAIN},
    {"bce_with_logits", {NULL}, {0}, VECTOR_PER_OUTPUT, LABELS_PLAIN},
    {"bce_with_logits", {NULL}, {0}, VECTOR_SINGLE, LABELS_PLAIN},
    {"mse", {NULL}, {0}, VECTOR_NONE, LABELS_PLAIN},
    {"l1", {NULL}, {0}, VECTOR_NONE, LABELS_PLAIN},
    {"smooth_l1", {NULL}, {0}, VECTOR_NONE, LABELS_PLAIN},
    {"smooth_l1", {"beta"}, {0.5}, VECTOR_NONE, LABELS_PLAIN},
    {"smooth_l1", {"beta"}, {0}, VECTOR_NONE, LABELS_PLAIN},
    {"smooth_l1", {"beta"}, {2.5}, VECTOR_NONE, LABELS_PLAIN},
    {"huber", {NULL}, {0}, VECTOR_NONE, LABELS_PLAIN},
    {"huber", {"delta"}, {0.3}, VECTOR_NONE, LABELS_PLAIN},
    {"huber", {"delta"}, {2}, VECTOR_NONE, LABELS_PLAIN},
};
#define SETTING_COUNT ((int)(sizeof settings / sizeof settings[0]))

static const nn_loss_kind *find_kind(const char *name) {
    const nn_loss_kind *kind = nn_loss_kind_find(name);
    ck_assert_msg(kind != NULL, "no loss %s", name);
    return kind;
}

static bool is_class_loss(const char *name) { return strcmp(name, "cross_entropy") == 0 || strcmp(name, "nll") == 0; }

/* A loss with torch's defaults, then set_arg for the rest. */
static nn_loss loss_of(const char *name) {
    nn_loss loss = {.kind = find_kind(name)};
    nn_arg_defaults(loss.args, loss.kind->args, loss.kind->arg_count);
    return loss;
}

static void set_arg(nn_loss *loss, const char *name, double value) {
    int i = nn_arg_find(loss->kind->args, loss->kind->arg_count, name);
    ck_assert_msg(i >= 0, "%s has no argument %s", loss->kind->name, name);
    loss->args[i].given = true;
    loss->args[i].value[0] = value;
}

/* One batch of a setting: outputs, targets, the loss and its vector. */
typedef struct problem {
    const setting *setting;
    int batch, outputs;
    nn_loss loss;   /* loss.vector is allocated (the problem is passed by value) */
    float *output, *values;
    int32_t *labels;
    nn_targets targets;
} problem;

/* The kinks (|difference| = 0, beta, delta) a value loss's difference keeps
 * 0.05 away from, so that a finite-difference step of 1e-3 never crosses one. */
static bool near_kink(const nn_loss *loss, double difference) {
    double z = fabs(difference), kink = 0;
    if (strcmp(loss->kind->name, "smooth_l1") == 0) kink = nn_loss_arg(loss, "beta");
    if (strcmp(loss->kind->name, "huber") == 0) kink = nn_loss_arg(loss, "delta");
    return z < 0.05 || fabs(z - kink) < 0.05;
}

/* Inputs in the range each loss expects, away from kinks: logits in
 * [-3, 3]; log-softmax of such for nll; probabilities in [0.1, 0.9] for
 * bce (where the clamp and the steep ends are far); targets in [0, 1] with
 * some exact 0s and 1s for bce and bce_with_logits. */
static problem make_problem(const setting *s, int batch, int outputs, uint64_t seed) {
    nn_rng rng;
    nn_rng_seed(&rng, seed);
    problem p = {.setting = s, .batch = batch, .outputs = outputs, .loss = loss_of(s->kind)};
    for (int a = 0; a < 2 && s->arg_names[a]; a++) set_arg(&p.loss, s->arg_names[a], s->arg_values[a]);
    size_t count = (size_t)batch * outputs;
    p.output = malloc(count * sizeof *p.output);
    p.values = malloc(count * sizeof *p.values);
    p.labels = malloc((size_t)batch * sizeof *p.labels);
    ck_assert(p.output && p.values && p.labels);
    if (s->vector != VECTOR_NONE) {
        float *vector = malloc((size_t)outputs * sizeof *vector);
        ck_assert(vector);
        p.loss.vector = vector;
        p.loss.vector_count = s->vector == VECTOR_SINGLE ? 1 : outputs;
        for (int j = 0; j < p.loss.vector_count; j++) vector[j] = nn_rng_uniform_range(&rng, 0.2f, 3);
        /* A class that weighs nothing: its samples count for nothing in the
         * denominator but still in label smoothing's numerator, as torch's. */
        if (is_class_loss(s->kind) && outputs >= 3) vector[2] = 0;
    }
    const char *kind = s->kind;
    for (int b = 0; b < batch; b++) {
        float *row = p.output + (size_t)b * outputs, *target = p.values + (size_t)b * outputs;
        double sum = 0;
        for (int j = 0; j < outputs; j++) {
            row[j] = nn_rng_uniform_range(&rng, -3, 3);
            sum += exp(row[j]);
        }
        if (strcmp(kind, "nll") == 0)
            for (int j = 0; j < outputs; j++) row[j] = (float)(row[j] - log(sum));
        for (int j = 0; j < outputs; j++) {
            if (strcmp(kind, "bce") == 0) row[j] = nn_rng_uniform_range(&rng, 0.1f, 0.9f);
            if (strcmp(kind, "bce") == 0 || strcmp(kind, "bce_with_logits") == 0) {
                uint32_t pick = nn_rng_below(&rng, 4);
                target[j] = pick == 0 ? 0.0f : pick == 1 ? 1.0f : nn_rng_uniform(&rng);
            } else {
                double difference;
                do difference = nn_rng_uniform_range(&rng, -3, 3);
                while (near_kink(&p.loss, difference));
                target[j] = (float)(row[j] - difference);
                /* The float rounding of the target moves the difference by
                 * 1e-7 at most: still far from the kink. */
            }
        }
        p.labels[b] = (int32_t)nn_rng_below(&rng, (uint32_t)outputs);
        double ignore_index = nn_loss_arg(&p.loss, "ignore_index");
        if ((s->labels == LABELS_SOME_IGNORED && b % 3 == 1) || s->labels == LABELS_ALL_IGNORED)
            p.labels[b] = (int32_t)ignore_index;
    }
    p.targets = is_class_loss(kind) ? (nn_targets){.labels = p.labels} : (nn_targets){.values = p.values};
    return p;
}

static void free_problem(problem *p) {
    free(p->output);
    free(p->values);
    free(p->labels);
    free(p->loss.vector);
}

static double weight_of(const problem *p, int j) { return p->loss.vector ? p->loss.vector[j] : 1; }

static double clamped(double log_value) { return log_value < -100 ? -100 : log_value; }

/* torch's reduction='mean' of each loss, from its definition in double
 * (no max shift: the inputs are small; 0 when nothing counts). */
static double reference_loss(const problem *p) {
    const char *kind = p->setting->kind;
    const nn_loss *loss = &p->loss;
    int batch = p->batch, outputs = p->outputs;
    double total = 0, weight = 0;
    if (is_class_loss(kind)) {
        double smoothing = strcmp(kind, "cross_entropy") == 0 ? nn_loss_arg(loss, "label_smoothing") : 0;
        double nll = 0, smooth = 0;
        for (int b = 0; b < batch; b++) {
            const float *row = p->output + (size_t)b * outputs;
            int y = p->labels[b];
            if (y == nn_loss_arg(loss, "ignore_index")) continue;
            double sum = 0;
            for (int j = 0; j < outputs; j++) sum += exp((double)row[j]);
            for (int j = 0; j < outputs; j++) {
                double log_p = strcmp(kind, "nll") == 0 ? row[j] : log(exp((double)row[j]) / sum);
                if (j == y) nll -= weight_of(p, y) * log_p;
                smooth -= weight_of(p, j) * log_p;
            }
            weight += weight_of(p, y);
        }
        /* aten's cross_entropy_loss_label_smoothing: both means over sum w_y */
        if (weight == 0) return 0;
        return (1 - smoothing) * nll / weight + smoothing / outputs * smooth / weight;
    }
    for (int b = 0; b < batch; b++)
        for (int j = 0; j < outputs; j++) {
            size_t i = (size_t)b * outputs + j;
            double x = p->output[i], y = p->values[i], d = x - y, z = fabs(d), term;
            if (strcmp(kind, "bce") == 0) {
                term = -weight_of(p, j) * (y * clamped(log(x)) + (1 - y) * clamped(log(1 - x)));
            } else if (strcmp(kind, "bce_with_logits") == 0) {
                double s = 1 / (1 + exp(-x)), pw = loss->vector ? loss->vector[loss->vector_count == 1 ? 0 : j] : 1;
                term = -(pw * y * log(s) + (1 - y) * log(1 - s));
            } else if (strcmp(kind, "mse") == 0) {
                term = d * d;
            } else if (strcmp(kind, "l1") == 0) {
                term = z;
            } else if (strcmp(kind, "smooth_l1") == 0) {
                double beta = nn_loss_arg(loss, "beta");
                term = z < beta ? 0.5 * z * z / beta : z - 0.5 * beta;
            } else {
                double delta = nn_loss_arg(loss, "delta");
                term = z < delta ? 0.5 * z * z : delta * (z - 0.5 * delta);
            }
            total += term;
        }
    return total / ((double)batch * outputs);
}

/* The size and setting a message is about. */
#define WHERE_FORMAT "%s [%s%s%s%s] (batch %d, outputs %d)"
#define WHERE(p)                                                                                      \
    (p)->setting->kind, (p)->setting->arg_names[0] ? (p)->setting->arg_names[0] : "",                 \
        (p)->setting->vector != VECTOR_NONE ? " vector" : "",                                         \
        (p)->setting->labels == LABELS_SOME_IGNORED ? " some ignored"                                 \
        : (p)->setting->labels == LABELS_ALL_IGNORED ? " all ignored"                                 \
                                                     : "",                                            \
        (p)->setting->arg_names[1] ? " +" : "", (p)->batch, (p)->outputs

static bool close_to(double actual, double expected, double rtol, double atol) {
    return isfinite(actual) && fabs(actual - expected) <= atol + rtol * fabs(expected);
}

/* Setting s on size z, seeded from both. */
static problem problem_of(int s, int z, uint64_t salt) {
    return make_problem(&settings[s], sizes[z][0], sizes[z][1], salt + 1000 * (uint64_t)s + (uint64_t)z);
}

/* Sizes a setting can run on: class losses need two outputs. */
static bool size_fits(int s, int z) { return !is_class_loss(settings[s].kind) || sizes[z][1] >= 2; }

START_TEST(values_match_the_definitions) {
    for (int z = 0; z < SIZE_COUNT; z++) {
        if (!size_fits(_i, z)) continue;
        problem p = problem_of(_i, z, 100);
        int batch = p.batch;
        size_t count = (size_t)batch * p.outputs;
        float *grad = malloc(count * sizeof *grad);
        double *numerator = malloc(batch * sizeof *numerator), *denominator = malloc(batch * sizeof *denominator);
        double *numerator_alone = malloc(batch * sizeof *numerator);
        double *denominator_alone = malloc(batch * sizeof *denominator);
        double loss = nn_loss_batch(&p.loss, p.output, &p.targets, batch, p.outputs, grad, numerator, denominator);
        double expected = reference_loss(&p);
        ck_assert_msg(close_to(loss, expected, 1e-12, 1e-12), WHERE_FORMAT ": loss %.17g, expected %.17g", WHERE(&p),
                      loss, expected);
        /* The numerators and denominators are what the loss is made of, and
         * each denominator is torch's: the label's weight or the outputs. */
        double total = 0, weight = 0;
        for (int b = 0; b < batch; b++) {
            total += numerator[b];
            weight += denominator[b];
            double want = p.outputs;
            if (is_class_loss(p.setting->kind))
                want = p.labels[b] == nn_loss_arg(&p.loss, "ignore_index") ? 0 : weight_of(&p, p.labels[b]);
            ck_assert_msg(denominator[b] == want, WHERE_FORMAT ": denominator[%d] = %g, expected %g", WHERE(&p), b,
                          denominator[b], want);
            if (is_class_loss(p.setting->kind) && p.labels[b] == nn_loss_arg(&p.loss, "ignore_index"))
                ck_assert_msg(numerator[b] == 0, WHERE_FORMAT ": ignored sample %d has numerator %g", WHERE(&p), b,
                              numerator[b]);
        }
        ck_assert_msg(weight == 0 ? loss == 0 : loss == total / weight, WHERE_FORMAT ": %.17g is not %.17g / %.17g",
                      WHERE(&p), loss, total, weight);
        /* Without the gradient: the same numbers, bit for bit. */
        double alone = nn_loss_batch(&p.loss, p.output, &p.targets, batch, p.outputs, NULL, numerator_alone,
                                     denominator_alone);
        ck_assert_msg(alone == loss, WHERE_FORMAT ": %.17g without the gradient, %.17g with it", WHERE(&p), alone,
                      loss);
        for (int b = 0; b < batch; b++)
            ck_assert(numerator_alone[b] == numerator[b] && denominator_alone[b] == denominator[b]);
        free(numerator_alone);
        free(denominator_alone);
        free(numerator);
        free(denominator);
        free(grad);
        free_problem(&p);
    }
}
END_TEST

/* Central differences of nn_loss_batch's loss by each output, with the
 * step actually taken after rounding to float. */
START_TEST(gradients_match_finite_differences) {
    for (int z = 0; z < SIZE_COUNT; z++) {
        if (!size_fits(_i, z)) continue;
        problem p = problem_of(_i, z, 200);
        int batch = p.batch;
        size_t count = (size_t)batch * p.outputs;
        float *grad = malloc(count * sizeof *grad);
        double *numerator = malloc(batch * sizeof *numerator), *denominator = malloc(batch * sizeof *denominator);
        nn_loss_batch(&p.loss, p.output, &p.targets, batch, p.outputs, grad, numerator, denominator);
        double scale = 0;
        for (size_t i = 0; i < count; i++) scale = fmax(scale, fabs(grad[i]));
        for (size_t i = 0; i < count; i++) {
            float saved = p.output[i];
            float plus = saved + 1e-3f, minus = saved - 1e-3f;
            p.output[i] = plus;
            double loss_plus =
                nn_loss_batch(&p.loss, p.output, &p.targets, batch, p.outputs, NULL, numerator, denominator);
            p.output[i] = minus;
            double loss_minus =
                nn_loss_batch(&p.loss, p.output, &p.targets, batch, p.outputs, NULL, numerator, denominator);
            p.output[i] = saved;
            double numeric = (loss_plus - loss_minus) / ((double)plus - minus);
            ck_assert_msg(close_to(grad[i], numeric, 1e-4, 1e-5 * scale + 1e-9),
                          WHERE_FORMAT ": grad[%zu] = %.9g, finite differences %.9g", WHERE(&p), i, (double)grad[i],
                          numeric);
        }
        free(numerator);
        free(denominator);
        free(grad);
        free_problem(&p);
    }
}
END_TEST

/* A split evaluated as two batches gives, summed, what the whole does at
 * once: the numerators are the same, sample by sample. */
START_TEST(split_batches_give_the_whole) {
    for (int z = 0; z < SIZE_COUNT; z++) {
        if (!size_fits(_i, z) || sizes[z][0] < 2) continue;
        problem p = problem_of(_i, z, 300);
        int batch = p.batch, outputs = p.outputs;
        double *numerator = malloc(batch * sizeof *numerator), *denominator = malloc(batch * sizeof *denominator);
        double *parts = malloc(batch * sizeof *parts), *part_weights = malloc(batch * sizeof *part_weights);
        double whole = nn_loss_batch(&p.loss, p.output, &p.targets, batch, outputs, NULL, numerator, denominator);
        for (int first = 1; first < batch; first += 2) {
            nn_targets head = p.targets, tail = p.targets;
            if (tail.labels) tail.labels += first;
            if (tail.values) tail.values += (size_t)first * outputs;
            nn_loss_batch(&p.loss, p.output, &head, first, outputs, NULL, parts, part_weights);
            nn_loss_batch(&p.loss, p.output + (size_t)first * outputs, &tail, batch - first, outputs, NULL,
                          parts + first, part_weights + first);
            double total = 0, weight = 0;
            for (int b = 0; b < batch; b++) {
                ck_assert_msg(parts[b] == numerator[b] && part_weights[b] == denominator[b],
                              WHERE_FORMAT ": sample %d differs when split at %d", WHERE(&p), b, first);
                total += parts[b];
                weight += part_weights[b];
            }
            double split = weight == 0 ? 0 : total / weight;
            ck_assert_msg(close_to(split, whole, 1e-14, 0), WHERE_FORMAT ": split at %d %.17g, whole %.17g", WHERE(&p),
                          first, split, whole);
        }
        free(parts);
        free(part_weights);
        free(numerator);
        free(denominator);
        free_problem(&p);
    }
}
END_TEST

/* One sample's loss, value and gradient, for the hand-worked cases. */
static double batch_of(const nn_loss *loss, const float *output, const nn_targets *targets, int batch, int outputs,
                       float *grad) {
    double numerator[16], denominator[16];
    ck_assert(batch <= 16);
    return nn_loss_batch(loss, output, targets, batch, outputs, grad, numerator, denominator);
}

/* Logits of +-1e4 overflow exp() unless the maximum is subtracted first;
 * -log p is then exact: 0, 1e4 or 2e4 here. */
START_TEST(cross_entropy_is_stable_for_huge_logits) {
    enum { BATCH = 4, OUTPUTS = 3 };
    const float output[BATCH * OUTPUTS] = {
        1e4f, -1e4f, 0,       /* -log p = 0, 2e4, 1e4 */
        1e4f, -1e4f, 0,
        -1e4f, -1e4f, -1e4f,  /* log 3 each */
        1e4f, 1e4f, -1e4f,    /* log 2, log 2, 2e4 + log 2 */
    };
    const double minus_log_p[BATCH * OUTPUTS] = {0, 2e4, 1e4, 0, 2e4, 1e4, log(3.0), log(3.0), log(3.0),
                                                 log(2.0), log(2.0), 2e4 + log(2.0)};
    const double softmax[BATCH * OUTPUTS] = {1, 0, 0, 1, 0, 0, 1 / 3.0, 1 / 3.0, 1 / 3.0, 0.5, 0.5, 0};
    const int32_t labels[BATCH] = {0, 1, 2, 1};
    float weights[OUTPUTS] = {0.5f, 2, 1.5f};
    const nn_targets targets = {.labels = labels};
    for (int variant = 0; variant < 4; variant++) {
        nn_loss loss = loss_of("cross_entropy");
        double eps = variant & 1 ? 0.25 : 0;
        set_arg(&loss, "label_smoothing", eps);
        if (variant & 2) loss.vector = weights, loss.vector_count = OUTPUTS;
        double w[OUTPUTS], weight_sum = 0, total = 0, denominator = 0;
        for (int j = 0; j < OUTPUTS; j++) weight_sum += w[j] = loss.vector ? weights[j] : 1;
        double expected_grad[BATCH * OUTPUTS];
        for (int b = 0; b < BATCH; b++) {
            int y = labels[b];
            double smooth = 0;
            for (int j = 0; j < OUTPUTS; j++) smooth += w[j] * minus_log_p[b * OUTPUTS + j];
            total += (1 - eps) * w[y] * minus_log_p[b * OUTPUTS + y] + eps / OUTPUTS * smooth;
            denominator += w[y];
            for (int j = 0; j < OUTPUTS; j++)
                expected_grad[b * OUTPUTS + j] =
                    softmax[b * OUTPUTS + j] * ((1 - eps) * w[y] + eps / OUTPUTS * weight_sum) -
                    (j == y) * (1 - eps) * w[y] - eps / OUTPUTS * w[j];
        }
        float grad[BATCH * OUTPUTS];
        double value = batch_of(&loss, output, &targets, BATCH, OUTPUTS, grad);
        ck_assert_msg(close_to(value, total / denominator, 1e-12, 0), "variant %d: %.17g, expected %.17g", variant,
                      value, total / denominator);
        for (int i = 0; i < BATCH * OUTPUTS; i++)
            ck_assert_msg(close_to(grad[i], expected_grad[i] / denominator, 1e-6, 1e-9),
                          "variant %d: grad[%d] = %.9g, expected %.9g", variant, i, (double)grad[i],
                          expected_grad[i] / denominator);
    }
}
END_TEST

/* softplus(-x) with x = -1e4 is 1e4, not log(1 + inf). */
START_TEST(bce_with_logits_is_stable_for_huge_logits) {
    enum { OUTPUTS = 6 };
    const float output[OUTPUTS] = {1e4f, -1e4f, 1e4f, -1e4f, 1e4f, -1e4f};
    const float target[OUTPUTS] = {0, 1, 1, 0, 0.5f, 0.5f};
    float pos_weight[OUTPUTS] = {2, 3, 0.5f, 1, 4, 0.25f};
    const nn_targets targets = {.values = target};
    for (int variant = 0; variant < 3; variant++) {
        nn_loss loss = loss_of("bce_with_logits");
        if (variant > 0) loss.vector = pos_weight, loss.vector_count = variant == 1 ? OUTPUTS : 1;
        double total = 0, expected_grad[OUTPUTS];
        for (int j = 0; j < OUTPUTS; j++) {
            double pw = variant == 0 ? 1 : pos_weight[variant == 1 ? j : 0], x = output[j], y = target[j];
            double sigmoid = x > 0 ? 1 : 0, softplus = x > 0 ? 0 : -x;   /* exact at |x| = 1e4 */
            total += (1 - y) * x + (1 + (pw - 1) * y) * softplus;
            expected_grad[j] = ((1 + (pw - 1) * y) * sigmoid - pw * y) / OUTPUTS;
        }
        float grad[OUTPUTS];
        double value = batch_of(&loss, output, &targets, 1, OUTPUTS, grad);
        ck_assert_msg(close_to(value, total / OUTPUTS, 1e-12, 0), "variant %d: %.17g, expected %.17g", variant, value,
                      total / OUTPUTS);
        for (int j = 0; j < OUTPUTS; j++)
            ck_assert_msg(close_to(grad[j], expected_grad[j], 1e-7, 0), "variant %d: grad[%d] = %.9g, expected %.9g",
                          variant, j, (double)grad[j], expected_grad[j]);
    }
}
END_TEST

/* log(0) is clamped at -100, as torch's, so certainty that is wrong costs
 * 100 and right costs 0; the gradient is torch's
 * w (p - y) / max(p (1 - p), 1e-12), huge but finite. */
START_TEST(bce_clamps_the_log_at_minus_100) {
    enum { OUTPUTS = 6 };
    const float output[OUTPUTS] = {0, 0, 1, 1, 0, 1};
    const float target[OUTPUTS] = {1, 0, 0, 1, 0.25f, 0.25f};
    const double element[OUTPUTS] = {100, 0, 100, 0, 25, 75};
    float weight[OUTPUTS] = {1, 2, 3, 0.5f, 1.5f, 0.25f};
    const nn_targets targets = {.values = target};
    for (int weighted = 0; weighted < 2; weighted++) {
        nn_loss loss = loss_of("bce");
        if (weighted) loss.vector = weight, loss.vector_count = OUTPUTS;
        double total = 0;
        for (int j = 0; j < OUTPUTS; j++) total += (weighted ? weight[j] : 1) * element[j];
        float grad[OUTPUTS];
        double value = batch_of(&loss, output, &targets, 1, OUTPUTS, grad);
        ck_assert_msg(close_to(value, total / OUTPUTS, 1e-12, 0), "weighted %d: %.17g, expected %.17g", weighted, value,
                      total / OUTPUTS);
        for (int j = 0; j < OUTPUTS; j++) {
            double expected = (weighted ? weight[j] : 1) * ((double)output[j] - target[j]) / 1e-12 / OUTPUTS;
            ck_assert_msg(close_to(grad[j], expected, 1e-6, 0), "weighted %d: grad[%d] = %.9g, expected %.9g", weighted,
                          j, (double)grad[j], expected);
        }
    }
}
END_TEST

/* torch's 0/0 is NaN; nnseq's is a loss of 0 and no step. */
START_TEST(nothing_counted_gives_zero) {
    enum { BATCH = 3, OUTPUTS = 4 };
    float output[BATCH * OUTPUTS];
    for (int i = 0; i < BATCH * OUTPUTS; i++) output[i] = (float)(i % 5) - 2;
    for (int variant = 0; variant < 4; variant++) {
        nn_loss loss = loss_of(variant < 2 ? "cross_entropy" : "nll");
        int32_t labels[BATCH] = {-100, -100, -100};
        float weight[OUTPUTS] = {1, 0, 2, 0};
        if (variant & 1) {
            /* every label a class that weighs nothing */
            loss.vector = weight, loss.vector_count = OUTPUTS;
            labels[0] = 1, labels[1] = 3, labels[2] = 1;
        }
        const nn_targets targets = {.labels = labels};
        float grad[BATCH * OUTPUTS];
        double numerator[BATCH], denominator[BATCH];
        for (int i = 0; i < BATCH * OUTPUTS; i++) grad[i] = 7;
        double value = nn_loss_batch(&loss, output, &targets, BATCH, OUTPUTS, grad, numerator, denominator);
        ck_assert_msg(value == 0, "variant %d: loss %g", variant, value);
        for (int b = 0; b < BATCH; b++) ck_assert(denominator[b] == 0);
        for (int i = 0; i < BATCH * OUTPUTS; i++)
            ck_assert_msg(grad[i] == 0, "variant %d: grad[%d] = %g", variant, i, grad[i]);
    }
}
END_TEST

/* ignore_index is compared as any integer: one no int32 equals ignores
 * nothing, a valid class ignores that class. */
START_TEST(ignore_index_may_be_any_integer) {
    nn_loss loss = loss_of("cross_entropy");
    ck_assert(nn_loss_ignores_label(&loss, -100));
    ck_assert(!nn_loss_ignores_label(&loss, 0));
    set_arg(&loss, "ignore_index", 3);
    ck_assert(nn_loss_ignores_label(&loss, 3));
    ck_assert(!nn_loss_ignores_label(&loss, -100));
    set_arg(&loss, "ignore_index", 4294967299.0);   /* 2^32 + 3: not 3 */
    ck_assert(!nn_loss_ignores_label(&loss, 3));
    nn_loss mse = loss_of("mse");
    ck_assert(!nn_loss_ignores_label(&mse, -100));
    nn_loss nll = loss_of("nll");
    set_arg(&nll, "ignore_index", -1);
    ck_assert(nn_loss_ignores_label(&nll, -1));
}
END_TEST

/* A label the dataset should have refused makes the loss NaN; it is never
 * used as an index (AddressSanitizer would see it). */
START_TEST(labels_out_of_range_give_nan) {
    enum { OUTPUTS = 3 };
    const float output[2 * OUTPUTS] = {1, 2, 3, 1, 2, 3};
    for (int k = 0; k < 2; k++) {
        nn_loss loss = loss_of(k ? "nll" : "cross_entropy");
        for (int bad = 0; bad < 2; bad++) {
            const int32_t labels[2] = {1, bad ? OUTPUTS : -1};
            const nn_targets targets = {.labels = labels};
            float grad[2 * OUTPUTS];
            double numerator[2], denominator[2];
            double value = nn_loss_batch(&loss, output, &targets, 2, OUTPUTS, grad, numerator, denominator);
            ck_assert_msg(isnan(value) && isnan(numerator[1]) && !isnan(numerator[0]), "%s: %g", loss.kind->name,
                          value);
            for (int j = 0; j < OUTPUTS; j++) ck_assert(grad[OUTPUTS + j] == 0);
        }
    }
}
END_TEST

/* At output == target l1's gradient is 0 (torch's sign), and so is
 * smooth_l1's with beta 0, which is l1 in value too. */
START_TEST(l1_and_beta_0_have_no_gradient_at_zero_difference) {
    enum { OUTPUTS = 5 };
    const float output[OUTPUTS] = {0, 1.5f, -2, 0.25f, 3};
    const float target[OUTPUTS] = {0, 1.5f, -1, 0.75f, 3};
    const nn_targets targets = {.values = target};
    nn_loss l1 = loss_of("l1"), beta_0 = loss_of("smooth_l1");
    set_arg(&beta_0, "beta", 0);
    float grad_l1[OUTPUTS], grad_beta[OUTPUTS];
    double value_l1 = batch_of(&l1, output, &targets, 1, OUTPUTS, grad_l1);
    double value_beta = batch_of(&beta_0, output, &targets, 1, OUTPUTS, grad_beta);
    ck_assert_msg(value_l1 == 0.3 && value_beta == value_l1, "l1 %.17g, smooth_l1 beta 0 %.17g", value_l1, value_beta);
    const float expected[OUTPUTS] = {0, 0, -0.2f, -0.2f, 0};
    for (int j = 0; j < OUTPUTS; j++)
        ck_assert_msg(grad_l1[j] == expected[j] && grad_beta[j] == expected[j], "grad[%d]: l1 %g, beta 0 %g", j,
                      grad_l1[j], grad_beta[j]);
}
END_TEST

/* At |difference| = beta (delta) both pieces agree, in value and slope;
 * and huber with delta is smooth_l1 with beta = delta, times delta. */
START_TEST(smooth_l1_and_huber_meet_at_the_kink) {
    enum { OUTPUTS = 4 };
    const float output[OUTPUTS] = {0.5f, -0.5f, 2, 0.125f};
    const float target[OUTPUTS] = {0, 0, -1, 0.625f};   /* differences 0.5, -0.5, 3, -0.5 */
    const nn_targets targets = {.values = target};
    nn_loss smooth = loss_of("smooth_l1"), huber = loss_of("huber");
    set_arg(&smooth, "beta", 0.5);
    set_arg(&huber, "delta", 0.5);
    float grad_smooth[OUTPUTS], grad_huber[OUTPUTS];
    double value_smooth = batch_of(&smooth, output, &targets, 1, OUTPUTS, grad_smooth);
    double value_huber = batch_of(&huber, output, &targets, 1, OUTPUTS, grad_huber);
    /* 0.25 for each |d| = 0.5 (0.5 * 0.25 / 0.5 = 0.5 - 0.25), 3 - 0.25 for d = 3 */
    ck_assert_msg(close_to(value_smooth, (3 * 0.25 + 2.75) / OUTPUTS, 1e-15, 0), "smooth_l1 %.17g", value_smooth);
    ck_assert_msg(close_to(value_huber, 0.5 * value_smooth, 1e-15, 0), "huber %.17g", value_huber);
    const float expected[OUTPUTS] = {0.25f, -0.25f, 0.25f, -0.25f};
    for (int j = 0; j < OUTPUTS; j++) {
        ck_assert_msg(grad_smooth[j] == expected[j], "smooth_l1 grad[%d] = %g", j, grad_smooth[j]);
        ck_assert_msg(grad_huber[j] == 0.5f * expected[j], "huber grad[%d] = %g", j, grad_huber[j]);
    }
    /* The same relation on random data, any delta. */
    for (int z = 0; z < SIZE_COUNT; z++) {
        problem p = make_problem(&settings[SETTING_COUNT - 1], sizes[z][0], sizes[z][1], 400 + (uint64_t)z);
        for (int d = 1; d <= 3; d++) {
            double delta = 0.7 * d;
            nn_loss h = loss_of("huber"), s = loss_of("smooth_l1");
            set_arg(&h, "delta", delta);
            set_arg(&s, "beta", delta);
            double numerator[16], denominator[16];
            double value_h = nn_loss_batch(&h, p.output, &p.targets, p.batch, p.outputs, NULL, numerator, denominator);
            double value_s = nn_loss_batch(&s, p.output, &p.targets, p.batch, p.outputs, NULL, numerator, denominator);
            ck_assert_msg(close_to(value_h, delta * value_s, 1e-14, 0), "delta %g: huber %.17g, smooth_l1 %.17g", delta,
                          value_h, value_s);
        }
        free_problem(&p);
    }
}
END_TEST

/* check() of every loss: what passes, and what fails with which words. */
static void expect_check(const nn_loss *loss, nn_shape shape, const char *first, const char *second) {
    nn_error err = {0};
    int status = loss->kind->check(loss, shape, &err);
    if (!first) {
        ck_assert_msg(status == 0, "%s: %s", loss->kind->name, err.message);
        return;
    }
    ck_assert_msg(status == -1 && err.status == NN_ERR_INPUT, "%s: accepted (expected \"%s\")", loss->kind->name,
                  first);
    ck_assert_msg(strstr(err.message, first) && (!second || strstr(err.message, second)),
                  "%s: \"%s\" lacks \"%s\" or \"%s\"", loss->kind->name, err.message, first, second ? second : "");
}

static const nn_shape flat_1 = {1, {1, 0, 0}}, flat_2 = {1, {2, 0, 0}}, flat_10 = {1, {10, 0, 0}},
                      image = {3, {1, 28, 28}}, matrix = {2, {10, 1, 0}};

START_TEST(checks_of_the_class_losses) {
    const char *names[] = {"cross_entropy", "nll"};
    for (int k = 0; k < 2; k++) {
        nn_loss loss = loss_of(names[k]);
        expect_check(&loss, flat_10, NULL, NULL);
        expect_check(&loss, flat_2, NULL, NULL);
        expect_check(&loss, image, "(1, 28, 28)", "Flatten");
        expect_check(&loss, matrix, "(10, 1)", "one score per class");
        expect_check(&loss, flat_1, "(1,)", k == 0 ? "bce_with_logits" : "bce");
        float weight[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 0};
        loss.vector = weight, loss.vector_count = 10;
        expect_check(&loss, flat_10, NULL, NULL);
        loss.vector_count = 9;
        expect_check(&loss, flat_10, "weight has 9 values", "10 outputs");
        loss.vector_count = 1;
        expect_check(&loss, flat_10, "weight has 1 value ", "one per class");
        loss.vector_count = 10;
        weight[3] = -1;
        expect_check(&loss, flat_10, "weight[3] is -1", ">= 0");
        weight[3] = NAN;
        expect_check(&loss, flat_10, "weight[3] is nan", "finite");
        weight[3] = INFINITY;
        expect_check(&loss, flat_10, "weight[3] is inf", "finite");
    }
    nn_loss loss = loss_of("cross_entropy");
    const double bad[] = {-0.1, 1.5, NAN};
    for (int i = 0; i < 3; i++) {
        set_arg(&loss, "label_smoothing", bad[i]);
        expect_check(&loss, flat_10, "label_smoothing is", "between 0 and 1");
    }
    set_arg(&loss, "label_smoothing", 1);
    expect_check(&loss, flat_10, NULL, NULL);
    set_arg(&loss, "label_smoothing", 0);
    expect_check(&loss, flat_10, NULL, NULL);
}
END_TEST

START_TEST(checks_of_the_value_losses) {
    const char *names[] = {"bce", "bce_with_logits", "mse", "l1", "smooth_l1", "huber"};
    for (int k = 0; k < 6; k++) {
        nn_loss loss = loss_of(names[k]);
        /* any shape: outputs is its size */
        expect_check(&loss, flat_1, NULL, NULL);
        expect_check(&loss, flat_10, NULL, NULL);
        expect_check(&loss, image, NULL, NULL);
        expect_check(&loss, matrix, NULL, NULL);
    }
    float vector[784] = {0};
    nn_loss bce = loss_of("bce");
    bce.vector = vector, bce.vector_count = 784;
    expect_check(&bce, image, NULL, NULL);
    bce.vector_count = 1;
    expect_check(&bce, image, "weight has 1 value but the model has 784 outputs", "one per output");
    vector[5] = -2;
    bce.vector_count = 10;
    expect_check(&bce, flat_10, "weight[5] is -2", NULL);
    vector[5] = 0;

    nn_loss logits = loss_of("bce_with_logits");
    logits.vector = vector, logits.vector_count = 1;
    expect_check(&logits, flat_10, NULL, NULL);
    logits.vector_count = 10;
    expect_check(&logits, flat_10, NULL, NULL);
    logits.vector_count = 3;
    expect_check(&logits, flat_10, "pos_weight has 3 values", "1 (for every output) or 10");
    vector[0] = NAN;
    logits.vector_count = 1;
    expect_check(&logits, flat_10, "pos_weight[0] is nan", NULL);
    vector[0] = 0;

    nn_loss mse = loss_of("mse");
    mse.vector = vector, mse.vector_count = 10;
    expect_check(&mse, flat_10, "mse takes no list argument", NULL);

    nn_loss smooth = loss_of("smooth_l1");
    set_arg(&smooth, "beta", 0);
    expect_check(&smooth, flat_10, NULL, NULL);
    set_arg(&smooth, "beta", -0.5);
    expect_check(&smooth, flat_10, "beta is -0.5", ">= 0");
    set_arg(&smooth, "beta", INFINITY);
    expect_check(&smooth, flat_10, "beta is inf", NULL);

    nn_loss huber = loss_of("huber");
    set_arg(&huber, "delta", 1e-3);
    expect_check(&huber, flat_10, NULL, NULL);
    set_arg(&huber, "delta", 0);
    expect_check(&huber, flat_10, "delta is 0", "> 0");
    set_arg(&huber, "delta", -1);
    expect_check(&huber, flat_10, "delta is -1", "> 0");
}
END_TEST

START_TEST(arguments_have_torch_defaults) {
    nn_loss zeroed = {.kind = find_kind("cross_entropy")};   /* not filled by nn_arg_defaults */
    ck_assert(nn_loss_arg(&zeroed, "ignore_index") == -100);
    ck_assert(nn_loss_arg(&zeroed, "label_smoothing") == 0);
    ck_assert(isnan(nn_loss_arg(&zeroed, "beta")));
    set_arg(&zeroed, "label_smoothing", 0.25);
    ck_assert(nn_loss_arg(&zeroed, "label_smoothing") == 0.25);
    nn_loss nll = {.kind = find_kind("nll")};
    ck_assert(nn_loss_arg(&nll, "ignore_index") == -100);
    ck_assert(isnan(nn_loss_arg(&nll, "label_smoothing")));
    nn_loss smooth = {.kind = find_kind("smooth_l1")}, huber = {.kind = find_kind("huber")};
    ck_assert(nn_loss_arg(&smooth, "beta") == 1.0);
    ck_assert(nn_loss_arg(&huber, "delta") == 1.0);
    const char *without[] = {"bce", "bce_with_logits", "mse", "l1"};
    for (int i = 0; i < 4; i++) ck_assert_int_eq(find_kind(without[i])->arg_count, 0);
}
END_TEST

START_TEST(the_table_has_every_loss_by_name_and_alias) {
    static const struct {
        const char *name, *alias, *vector_arg;
        nn_loss_target target;
    } want[] = {
        {"cross_entropy", "CrossEntropyLoss", "weight", NN_LOSS_CLASSES},
        {"nll", "NLLLoss", "weight", NN_LOSS_CLASSES},
        {"bce", "BCELoss", "weight", NN_LOSS_VALUES},
        {"bce_with_logits", "BCEWithLogitsLoss", "pos_weight", NN_LOSS_VALUES},
        {"mse", "MSELoss", NULL, NN_LOSS_VALUES},
        {"l1", "L1Loss", NULL, NN_LOSS_VALUES},
        {"smooth_l1", "SmoothL1Loss", NULL, NN_LOSS_VALUES},
        {"huber", "HuberLoss", NULL, NN_LOSS_VALUES},
    };
    int count = 0;
    const nn_loss_kind *const *kinds = nn_loss_kind_list(&count);
    ck_assert_int_eq(count, 8);
    for (int i = 0; i < count; i++) {
        ck_assert_str_eq(kinds[i]->name, want[i].name);
        ck_assert_str_eq(kinds[i]->alias, want[i].alias);
        ck_assert_ptr_eq(nn_loss_kind_find(want[i].name), kinds[i]);
        ck_assert_ptr_eq(nn_loss_kind_find(want[i].alias), kinds[i]);
        ck_assert_int_eq(kinds[i]->target, want[i].target);
        ck_assert(want[i].vector_arg ? kinds[i]->vector_arg && strcmp(kinds[i]->vector_arg, want[i].vector_arg) == 0
                                     : kinds[i]->vector_arg == NULL);
        ck_assert(kinds[i]->check && kinds[i]->compute && kinds[i]->arg_count <= NN_MAX_ARGS);
        /* Both BCE losses take probabilities as targets. */
        bool bce = strcmp(kinds[i]->name, "bce") == 0 || strcmp(kinds[i]->name, "bce_with_logits") == 0;
        ck_assert(bce ? kinds[i]->target_range && kinds[i]->target_range[0] == 0 && kinds[i]->target_range[1] == 1
                      : kinds[i]->target_range == NULL);
    }
    ck_assert_ptr_null(nn_loss_kind_find("CrossEntropy"));
    ck_assert_ptr_null(nn_loss_kind_find("crossentropyloss"));
    ck_assert_ptr_null(nn_loss_kind_find(""));
}
END_TEST

int main(void) {
    Suite *suite = suite_create("loss");
    TCase *tc = tcase_create("loss");
    tcase_add_loop_test(tc, values_match_the_definitions, 0, SETTING_COUNT);
    tcase_add_loop_test(tc, gradients_match_finite_differences, 0, SETTING_COUNT);
    tcase_add_loop_test(tc, split_batches_give_the_whole, 0, SETTING_COUNT);
    tcase_add_test(tc, cross_entropy_is_stable_for_huge_logits);
    tcase_add_test(tc, bce_with_logits_is_stable_for_huge_logits);
    tcase_add_test(tc, bce_clamps_the_log_at_minus_100);
    tcase_add_test(tc, nothing_counted_gives_zero);
    tcase_add_test(tc, ignore_index_may_be_any_integer);
    tcase_add_test(tc, labels_out_of_range_give_nan);
    tcase_add_test(tc, l1_and_beta_0_have_no_gradient_at_zero_difference);
    tcase_add_test(tc, smooth_l1_and_huber_meet_at_the_kink);
    tcase_add_test(tc, checks_of_the_class_losses);
    tcase_add_test(tc, checks_of_the_value_losses);
    tcase_add_test(tc, arguments_have_torch_defaults);
    tcase_add_test(tc, the_table_has_every_loss_by_name_and_alias);
    suite_add_tcase(suite, tc);
    return testutil_run(suite);
}
