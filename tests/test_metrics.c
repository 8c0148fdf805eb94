/* Task metrics: each metric against numbers worked out by hand for small
 * cases, and against sklearn's definitions computed here by brute force
 * (ROC AUC over every pair, F1s from counts, R^2 in two passes) on random
 * data; the same samples in batches of any size give identical metrics;
 * capacity, reset, the confusion matrix and the cases with nothing to
 * divide. */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "train/metrics.h"
#include "testutil.h"

/* nn_task_for reads only a kind's name and target, so these stand in for
 * the losses. */
static const nn_loss_kind bce_kind = {.name = "bce", .target = NN_LOSS_VALUES};
static const nn_loss_kind bce_with_logits_kind = {.name = "bce_with_logits", .target = NN_LOSS_VALUES};
static const nn_loss_kind cross_entropy_kind = {.name = "cross_entropy", .target = NN_LOSS_CLASSES};
static const nn_loss_kind nll_kind = {.name = "nll", .target = NN_LOSS_CLASSES};
static const nn_loss_kind mse_kind = {.name = "mse", .target = NN_LOSS_VALUES};
static const nn_loss_kind huber_kind = {.name = "huber", .target = NN_LOSS_VALUES};

static nn_metrics_acc *make_acc(nn_task task, int outputs, bool logits, int64_t capacity) {
    nn_error err = {0};
    nn_metrics_acc *acc = nn_metrics_acc_create(task, outputs, logits, capacity, &err);
    ck_assert_msg(acc != NULL, "create: %s", err.message);
    return acc;
}

static void add(nn_metrics_acc *acc, const float *output, const nn_targets *targets, int batch,
                const double *numerator, const double *denominator) {
    nn_error err = {0};
    ck_assert_msg(nn_metrics_acc_add(acc, output, targets, batch, numerator, denominator, &err) == 0, "add: %s",
                  err.message);
}

static nn_metrics finish(nn_metrics_acc *acc) {
    nn_metrics metrics;
    nn_metrics_acc_finish(acc, &metrics, NULL);
    return metrics;
}

/* expected NaN: actual must be NaN too. */
static void assert_near(double actual, double expected, double tolerance, const char *what) {
    if (isnan(expected)) {
        ck_assert_msg(isnan(actual), "%s: got %.17g, expected NaN", what, actual);
        return;
    }
    ck_assert_msg(fabs(actual - expected) <= tolerance, "%s: got %.17g, expected %.17g", what, actual, expected);
}

static bool same(double a, double b) { return a == b || (isnan(a) && isnan(b)); }

/* Bit for bit, NaN where the other has NaN. */
static void assert_same_metrics(const nn_metrics *a, const nn_metrics *b, const char *what) {
    ck_assert_msg(a->task == b->task && a->count == b->count, "%s: task or count differ", what);
    const char *const *names;
    int count = nn_metrics_names(a->task, &names);
    for (int i = 0; i < count; i++)
        ck_assert_msg(same(nn_metrics_value(a, names[i]), nn_metrics_value(b, names[i])), "%s: %s %.17g vs %.17g",
                      what, names[i], nn_metrics_value(a, names[i]), nn_metrics_value(b, names[i]));
}

/* ---- the task and the names ---- */

START_TEST(task_follows_the_target_and_the_loss) {
    ck_assert_int_eq(nn_task_for(&cross_entropy_kind, 10, false), NN_TASK_CLASSIFICATION);
    ck_assert_int_eq(nn_task_for(&nll_kind, 2, false), NN_TASK_CLASSIFICATION);
    ck_assert_int_eq(nn_task_for(&cross_entropy_kind, 1, false), NN_TASK_CLASSIFICATION);
    ck_assert_int_eq(nn_task_for(&bce_kind, 1, false), NN_TASK_BINARY);
    ck_assert_int_eq(nn_task_for(&bce_with_logits_kind, 1, false), NN_TASK_BINARY);
    ck_assert_int_eq(nn_task_for(&bce_kind, 5, false), NN_TASK_MULTILABEL);
    ck_assert_int_eq(nn_task_for(&bce_with_logits_kind, 2, false), NN_TASK_MULTILABEL);
    ck_assert_int_eq(nn_task_for(&mse_kind, 1, false), NN_TASK_REGRESSION);
    ck_assert_int_eq(nn_task_for(&mse_kind, 4, false), NN_TASK_REGRESSION);
    ck_assert_int_eq(nn_task_for(&huber_kind, 3, false), NN_TASK_REGRESSION);
    /* An autoencoder reconstructs its input, whatever the loss. */
    ck_assert_int_eq(nn_task_for(&bce_kind, 784, true), NN_TASK_REGRESSION);
    ck_assert_int_eq(nn_task_for(&bce_with_logits_kind, 1, true), NN_TASK_REGRESSION);
    ck_assert_int_eq(nn_task_for(&mse_kind, 784, true), NN_TASK_REGRESSION);
    ck_assert_int_eq(nn_task_for(&cross_entropy_kind, 10, true), NN_TASK_REGRESSION);
    ck_assert_int_eq(nn_task_for(NULL, 10, true), NN_TASK_REGRESSION);

    ck_assert_str_eq(nn_task_name(NN_TASK_CLASSIFICATION), "classification");
    ck_assert_str_eq(nn_task_name(NN_TASK_BINARY), "binary");
    ck_assert_str_eq(nn_task_name(NN_TASK_MULTILABEL), "multi-label");
    ck_assert_str_eq(nn_task_name(NN_TASK_REGRESSION), "regression");
}
END_TEST

START_TEST(names_come_loss_first_in_print_order) {
    static const char *const expected[4][7] = {
        [NN_TASK_CLASSIFICATION] = {"loss", "accuracy"},
        [NN_TASK_BINARY] = {"loss", "accuracy", "precision", "recall", "f1", "roc_auc"},
        [NN_TASK_MULTILABEL] = {"loss", "accuracy", "label_accuracy", "micro_f1", "macro_f1"},
        [NN_TASK_REGRESSION] = {"loss", "mse", "rmse", "mae", "r2"},
    };
    for (int task = 0; task < 4; task++) {
        const char *const *names = NULL;
        int count = nn_metrics_names((nn_task)task, &names);
        int expected_count = 0;
        while (expected[task][expected_count]) expected_count++;
        ck_assert_int_eq(count, expected_count);
        for (int i = 0; i < count; i++) ck_assert_str_eq(names[i], expected[task][i]);
    }
    static const char *const stale[] = {"stale"};
    const char *const *names = stale;
    ck_assert_int_eq(nn_metrics_names((nn_task)7, &names), 0);
    ck_assert_ptr_null(names);
}
END_TEST

/* x86 makes 0/0 a NaN with the sign bit set, which printf prints "-nan":
 * the values by name are the plain NaN, whatever NaN the field holds. */
START_TEST(a_nan_metric_comes_out_without_its_sign) {
    nn_metrics m = {.task = NN_TASK_BINARY, .roc_auc = -NAN, .f1 = 0.5};
    double value = nn_metrics_value(&m, "roc_auc");
    ck_assert(isnan(value));
    ck_assert_msg(!signbit(value), "roc_auc is a NaN with its sign bit set");
    char text[16];
    snprintf(text, sizeof text, "%.4f", value);
    ck_assert_str_eq(text, "nan");
    ck_assert(nn_metrics_value(&m, "f1") == 0.5);
}
END_TEST

START_TEST(values_by_name_are_the_fields) {
    nn_metrics m = {.loss = 1, .accuracy = 2, .label_accuracy = 3, .precision = 4, .recall = 5, .f1 = 6,
                    .roc_auc = 7, .micro_f1 = 8, .macro_f1 = 9, .mse = 10, .rmse = 11, .mae = 12, .r2 = 13};
    m.task = NN_TASK_BINARY;
    ck_assert(nn_metrics_value(&m, "loss") == 1);
    ck_assert(nn_metrics_value(&m, "accuracy") == 2);
    ck_assert(nn_metrics_value(&m, "precision") == 4);
    ck_assert(nn_metrics_value(&m, "recall") == 5);
    ck_assert(nn_metrics_value(&m, "f1") == 6);
    ck_assert(nn_metrics_value(&m, "roc_auc") == 7);
    ck_assert(isnan(nn_metrics_value(&m, "mse")));   /* not a binary metric */
    ck_assert(isnan(nn_metrics_value(&m, "auc")));
    ck_assert(isnan(nn_metrics_value(&m, "")));
    m.task = NN_TASK_MULTILABEL;
    ck_assert(nn_metrics_value(&m, "accuracy") == 2);
    ck_assert(nn_metrics_value(&m, "label_accuracy") == 3);
    ck_assert(nn_metrics_value(&m, "micro_f1") == 8);
    ck_assert(nn_metrics_value(&m, "macro_f1") == 9);
    ck_assert(isnan(nn_metrics_value(&m, "f1")));
    m.task = NN_TASK_REGRESSION;
    ck_assert(nn_metrics_value(&m, "loss") == 1);
    ck_assert(nn_metrics_value(&m, "mse") == 10);
    ck_assert(nn_metrics_value(&m, "rmse") == 11);
    ck_assert(nn_metrics_value(&m, "mae") == 12);
    ck_assert(nn_metrics_value(&m, "r2") == 13);
    ck_assert(isnan(nn_metrics_value(&m, "accuracy")));
    m.task = NN_TASK_CLASSIFICATION;
    ck_assert(nn_metrics_value(&m, "accuracy") == 2);
    ck_assert(isnan(nn_metrics_value(&m, "Accuracy")));
}
END_TEST

/* ---- small cases worked out by hand ---- */

/* Scores       0.9  0.6  0.5  0.3  0.2  0.1
 * targets      1    0    1    0.5  0    0.49   (positive: >= 0.5)
 * predicted    1    1    0    0    0    0      (> 0.5; 0.5 itself is not)
 * TP 1, FP 1, FN 2, TN 2: accuracy 3/6, precision 1/2, recall 1/3,
 * F1 2/(2+1+2). AUC: positives 0.9, 0.5, 0.3 against negatives 0.6, 0.2,
 * 0.1 win 3 + 2 + 2 of 9 pairs. */
START_TEST(binary_by_hand) {
    const float scores[6] = {0.9f, 0.6f, 0.5f, 0.3f, 0.2f, 0.1f};
    const float targets[6] = {1, 0, 1, 0.5f, 0, 0.49f};
    const double numerator[6] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6}, denominator[6] = {1, 1, 1, 1, 1, 1};
    nn_targets t = {NULL, targets};
    nn_metrics_acc *acc = make_acc(NN_TASK_BINARY, 1, false, 6);
    add(acc, scores, &t, 6, numerator, denominator);
    nn_metrics m = finish(acc);
    ck_assert_int_eq(m.task, NN_TASK_BINARY);
    ck_assert_int_eq(m.count, 6);
    assert_near(m.loss, 2.1 / 6, 1e-15, "loss");
    assert_near(m.accuracy, 0.5, 1e-15, "accuracy");
    assert_near(m.precision, 0.5, 1e-15, "precision");
    assert_near(m.recall, 1.0 / 3, 1e-15, "recall");
    assert_near(m.f1, 0.4, 1e-15, "f1");
    assert_near(m.roc_auc, 7.0 / 9, 1e-15, "roc_auc");
    nn_metrics_acc_free(acc);

    /* The same numbers as logits: every score is > 0, so all predicted
     * positive (TP 3, FP 3); the ranking, so the AUC, is the same. */
    acc = make_acc(NN_TASK_BINARY, 1, true, 6);
    add(acc, scores, &t, 6, numerator, denominator);
    m = finish(acc);
    assert_near(m.accuracy, 0.5, 1e-15, "logits accuracy");
    assert_near(m.precision, 0.5, 1e-15, "logits precision");
    assert_near(m.recall, 1, 1e-15, "logits recall");
    assert_near(m.f1, 2.0 / 3, 1e-15, "logits f1");
    assert_near(m.roc_auc, 7.0 / 9, 1e-15, "logits roc_auc");
    nn_metrics_acc_free(acc);

    /* Logits ordered as the probabilities above, 0 on the threshold. */
    const float logits[6] = {2, 0.5f, 0, -1, -2, -3};
    acc = make_acc(NN_TASK_BINARY, 1, true, 6);
    add(acc, logits, &t, 6, numerator, denominator);
    m = finish(acc);
    assert_near(m.accuracy, 0.5, 1e-15, "accuracy of logits");
    assert_near(m.precision, 0.5, 1e-15, "precision of logits");
    assert_near(m.recall, 1.0 / 3, 1e-15, "recall of logits");
    assert_near(m.f1, 0.4, 1e-15, "f1 of logits");
    assert_near(m.roc_auc, 7.0 / 9, 1e-15, "roc_auc of logits");
    nn_metrics_acc_free(acc);
}
END_TEST

static double auc_of(const float *scores, const float *labels, int count) {
    nn_metrics_acc *acc = make_acc(NN_TASK_BINARY, 1, false, count);
    add(acc, scores, &(nn_targets){NULL, labels}, count, NULL, NULL);
    double auc = finish(acc).roc_auc;
    nn_metrics_acc_free(acc);
    return auc;
}

START_TEST(roc_auc_counts_ties_half) {
    assert_near(auc_of((float[]){0.1f, 0.4f, 0.35f, 0.8f}, (float[]){0, 0, 1, 1}, 4), 0.75, 1e-15, "sklearn's example");
    assert_near(auc_of((float[]){0.5f, 0.5f, 0.5f, 0.5f}, (float[]){0, 1, 0, 1}, 4), 0.5, 1e-15, "all tied");
    /* Positives 0.2, 0.5, 0.9 against negatives 0.2, 0.5: 0.5 + (1 + 0.5) + 2 of 6. */
    assert_near(auc_of((float[]){0.2f, 0.2f, 0.5f, 0.5f, 0.9f}, (float[]){0, 1, 0, 1, 1}, 5), 4.0 / 6, 1e-15,
                "tie groups");
    assert_near(auc_of((float[]){0.9f, 0.1f, 0.8f, 0.2f}, (float[]){1, 0, 1, 0}, 4), 1, 0, "perfect");
    assert_near(auc_of((float[]){0.9f, 0.1f, 0.8f, 0.2f}, (float[]){0, 1, 0, 1}, 4), 0, 0, "reversed");
    /* -0 and +0 are one score. */
    assert_near(auc_of((float[]){-0.0f, 0.0f}, (float[]){1, 0}, 2), 0.5, 0, "signed zeros");
    assert_near(auc_of((float[]){-INFINITY, INFINITY, 0}, (float[]){0, 1, 1}, 3), 1, 0, "infinities");
    assert_near(auc_of((float[]){0.1f, 0.4f, 0.9f}, (float[]){1, 1, 1}, 3), NAN, 0, "positives only");
    assert_near(auc_of((float[]){0.1f, 0.4f, 0.9f}, (float[]){0, 0, 0.25f}, 3), NAN, 0, "negatives only");
    assert_near(auc_of(NULL, NULL, 0), NAN, 0, "no samples");
    assert_near(auc_of((float[]){0.1f, NAN, 0.9f}, (float[]){0, 1, 1}, 3), NAN, 0, "a NaN score");

    /* A NaN is forgotten with the rest at a reset. */
    nn_metrics_acc *acc = make_acc(NN_TASK_BINARY, 1, false, 2);
    add(acc, (float[]){NAN, 0.2f}, &(nn_targets){NULL, (float[]){1, 0}}, 2, NULL, NULL);
    nn_metrics_acc_reset(acc);
    add(acc, (float[]){0.7f, 0.2f}, &(nn_targets){NULL, (float[]){1, 0}}, 2, NULL, NULL);
    assert_near(finish(acc).roc_auc, 1, 0, "after a reset");
    nn_metrics_acc_free(acc);
}
END_TEST

/* Three labels; the third is never positive nor predicted, so its F1 is 0.
 *   outputs          targets   predicted   wrong
 *   0.9 0.2 0.1      1 0 0     1 0 0       -
 *   0.8 0.7 0.3      1 0 0     1 1 0       label 1 (FP)
 *   0.1 0.6 0.4      0 1 0     0 1 0       -
 *   0.4 0.3 0.2      1 1 0     0 0 0       labels 0, 1 (FN)
 * label 0: TP 2, FN 1, F1 4/5; label 1: TP 1, FP 1, FN 1, F1 2/4. Subset
 * accuracy 2/4, label accuracy 9/12, micro F1 2*3/(2*3+1+2), macro F1
 * (0.8 + 0.5 + 0) / 3. */
START_TEST(multilabel_by_hand) {
    const float output[12] = {0.9f, 0.2f, 0.1f, 0.8f, 0.7f, 0.3f, 0.1f, 0.6f, 0.4f, 0.4f, 0.3f, 0.2f};
    const float targets[12] = {1, 0, 0, 1, 0, 0, 0, 1, 0, 1, 1, 0};
    const double numerator[4] = {3, 1, 2, 6}, denominator[4] = {3, 3, 3, 3};
    nn_metrics_acc *acc = make_acc(NN_TASK_MULTILABEL, 3, false, 4);
    add(acc, output, &(nn_targets){NULL, targets}, 4, numerator, denominator);
    nn_metrics m = finish(acc);
    ck_assert_int_eq(m.task, NN_TASK_MULTILABEL);
    ck_assert_int_eq(m.count, 4);
    assert_near(m.loss, 1, 1e-15, "loss");
    assert_near(m.accuracy, 0.5, 1e-15, "subset accuracy");
    assert_near(m.label_accuracy, 0.75, 1e-15, "label accuracy");
    assert_near(m.micro_f1, 2.0 / 3, 1e-15, "micro f1");
    assert_near(m.macro_f1, 1.3 / 3, 1e-15, "macro f1");
    nn_metrics_acc_free(acc);

    /* As logits (threshold 0) every output above is positive: label 2 now
     * has 4 FPs and F1 0, label 0 TP 3 FP 1 (F1 6/7), label 1 TP 2 FP 2 (4/6). */
    acc = make_acc(NN_TASK_MULTILABEL, 3, true, 4);
    add(acc, output, &(nn_targets){NULL, targets}, 4, NULL, NULL);
    m = finish(acc);
    assert_near(m.loss, 0, 0, "no loss given");
    assert_near(m.accuracy, 0, 0, "logits subset accuracy");
    assert_near(m.label_accuracy, 5.0 / 12, 1e-15, "logits label accuracy");
    assert_near(m.micro_f1, 10.0 / 17, 1e-15, "logits micro f1");
    assert_near(m.macro_f1, (6.0 / 7 + 4.0 / 6) / 3, 1e-15, "logits macro f1");
    nn_metrics_acc_free(acc);
}
END_TEST

/* targets      outputs     errors
 *   1  5       1.5  5       0.5   0
 *   2  5       2    4       0    -1
 *   3  5       2    6      -1     1
 * SSE 1.25 + 2, SAE 3.5 over 6 values; SST 2 + 0. The second output's
 * targets are all equal: sklearn's variance_weighted gives it weight 0, so
 * R^2 = 1 - 1.25 / 2, not 1 - 3.25 / 2. */
START_TEST(regression_by_hand) {
    const float targets[6] = {1, 5, 2, 5, 3, 5};
    const float output[6] = {1.5f, 5, 2, 4, 2, 6};
    const double numerator[3] = {0.125, 0.5, 1}, denominator[3] = {2, 2, 2};
    nn_metrics_acc *acc = make_acc(NN_TASK_REGRESSION, 2, false, 3);
    add(acc, output, &(nn_targets){NULL, targets}, 3, numerator, denominator);
    nn_metrics m = finish(acc);
    ck_assert_int_eq(m.task, NN_TASK_REGRESSION);
    ck_assert_int_eq(m.count, 3);
    assert_near(m.loss, 1.625 / 6, 1e-15, "loss");
    assert_near(m.mse, 3.25 / 6, 1e-15, "mse");
    assert_near(m.rmse, sqrt(3.25 / 6), 1e-15, "rmse");
    assert_near(m.mae, 3.5 / 6, 1e-15, "mae");
    assert_near(m.r2, 0.375, 1e-15, "r2 with a constant output");
    nn_metrics_acc_free(acc);

    /* Both outputs vary: SSE 1.25 + 2 over SST 2 + 8. */
    const float varying[6] = {1, 0, 2, 2, 3, 4}, guess[6] = {1.5f, 1, 2, 2, 2, 3};
    acc = make_acc(NN_TASK_REGRESSION, 2, false, 3);
    add(acc, guess, &(nn_targets){NULL, varying}, 3, NULL, NULL);
    assert_near(finish(acc).r2, 1 - 3.25 / 10, 1e-15, "r2 variance weighted");
    nn_metrics_acc_free(acc);

    /* One output: the plain R^2. */
    const float column[3] = {1, 2, 3}, column_guess[3] = {1.5f, 2, 2};
    acc = make_acc(NN_TASK_REGRESSION, 1, false, 3);
    add(acc, column_guess, &(nn_targets){NULL, column}, 3, NULL, NULL);
    m = finish(acc);
    assert_near(m.r2, 1 - 1.25 / 2, 1e-15, "r2 of one output");
    assert_near(m.mse, 1.25 / 3, 1e-15, "mse of one output");
    assert_near(m.mae, 1.5 / 3, 1e-15, "mae of one output");
    nn_metrics_acc_free(acc);
}
END_TEST

/* Three classes; a tie goes to the first maximum; labels -100 and 3 are
 * outside 0..2 (an ignore_index) and count nowhere.
 *   scores     label  predicted
 *   2 1 0      0      0
 *   1 1 0      1      0  (tie)
 *   0 3 3      2      1  (tie)
 *   0 0 5      2      2
 *   9 0 0      -100   -
 *   0 4 1      1      1
 *   0 0 1      3      -
 * 3 right of 5 labelled. */
START_TEST(classification_by_hand) {
    const float output[21] = {2, 1, 0, 1, 1, 0, 0, 3, 3, 0, 0, 5, 9, 0, 0, 0, 4, 1, 0, 0, 1};
    const int32_t labels[7] = {0, 1, 2, 2, -100, 1, 3};
    const double numerator[7] = {1, 2, 3, 4, 0, 5, 0}, denominator[7] = {1, 1, 1, 1, 0, 1, 0};
    nn_metrics_acc *acc = make_acc(NN_TASK_CLASSIFICATION, 3, false, 7);
    add(acc, output, &(nn_targets){labels, NULL}, 7, numerator, denominator);
    nn_metrics m;
    int64_t confusion[9];
    ck_assert(nn_metrics_acc_finish(acc, &m, confusion));
    ck_assert_int_eq(m.task, NN_TASK_CLASSIFICATION);
    ck_assert_int_eq(m.count, 7);
    assert_near(m.loss, 3, 1e-15, "loss");
    assert_near(m.accuracy, 0.6, 1e-15, "accuracy");
    const int64_t expected[9] = {1, 0, 0, 1, 1, 0, 0, 1, 1};
    for (int i = 0; i < 9; i++)
        ck_assert_msg(confusion[i] == expected[i], "confusion[%d][%d] = %lld, expected %lld", i / 3, i % 3,
                      (long long)confusion[i], (long long)expected[i]);
    /* Without a matrix to fill, still the metrics. */
    nn_metrics again;
    ck_assert(!nn_metrics_acc_finish(acc, &again, NULL));
    assert_same_metrics(&m, &again, "finished twice");
    nn_metrics_acc_free(acc);
}
END_TEST

/* Above NN_METRICS_CONFUSION_MAX outputs there is no matrix: finish says so
 * and leaves the caller's buffer as it was; the accuracy is still there. */
START_TEST(confusion_only_up_to_the_limit) {
    for (int outputs = NN_METRICS_CONFUSION_MAX; outputs <= NN_METRICS_CONFUSION_MAX + 1; outputs++) {
        float *output = calloc((size_t)2 * outputs, sizeof *output);
        output[5] = 1;             /* sample 0 predicts 5 */
        output[outputs + 7] = 1;   /* sample 1 predicts 7 */
        const int32_t labels[2] = {5, (int32_t)outputs - 1};
        size_t cells = (size_t)outputs * outputs;
        int64_t *confusion = malloc(cells * sizeof *confusion);
        for (size_t i = 0; i < cells; i++) confusion[i] = -1;
        nn_metrics_acc *acc = make_acc(NN_TASK_CLASSIFICATION, outputs, false, 2);
        add(acc, output, &(nn_targets){labels, NULL}, 2, NULL, NULL);
        nn_metrics m;
        bool filled = nn_metrics_acc_finish(acc, &m, confusion);
        assert_near(m.accuracy, 0.5, 0, "accuracy");
        if (outputs <= NN_METRICS_CONFUSION_MAX) {
            ck_assert(filled);
            int64_t total = 0;
            for (size_t i = 0; i < cells; i++) total += confusion[i];
            ck_assert_int_eq(total, 2);
            ck_assert_int_eq(confusion[5 * (size_t)outputs + 5], 1);
            ck_assert_int_eq(confusion[(size_t)(outputs - 1) * outputs + 7], 1);
        } else {
            ck_assert(!filled);
            for (size_t i = 0; i < cells; i++) ck_assert_int_eq(confusion[i], -1);
        }
        nn_metrics_acc_free(acc);
        free(confusion);
        free(output);
    }
}
END_TEST

/* ---- nothing to divide ---- */

START_TEST(zero_division_gives_zero_or_nan) {
    /* No samples at all. */
    for (int task = 0; task < 4; task++) {
        nn_metrics_acc *acc = make_acc((nn_task)task, task == NN_TASK_BINARY ? 1 : 3, false, 0);
        nn_metrics m = finish(acc);
        ck_assert_int_eq(m.count, 0);
        const char *const *names;
        int count = nn_metrics_names((nn_task)task, &names);
        for (int i = 0; i < count; i++) {
            bool nan_then = strcmp(names[i], "roc_auc") == 0 || strcmp(names[i], "r2") == 0;
            assert_near(nn_metrics_value(&m, names[i]), nan_then ? NAN : 0, 0, names[i]);
        }
        nn_metrics_acc_free(acc);
    }

    /* Binary: every target and prediction negative. Right every time, but
     * no positive to be precise about or to recall. */
    const float low[4] = {0.1f, 0.2f, 0.3f, 0.4f}, negatives[4] = {0, 0, 0, 0}, positives[4] = {1, 1, 1, 1};
    const double zero[4] = {0, 0, 0, 0}, some[4] = {1, 2, 3, 4};
    nn_metrics_acc *acc = make_acc(NN_TASK_BINARY, 1, false, 4);
    add(acc, low, &(nn_targets){NULL, negatives}, 4, some, zero);
    nn_metrics m = finish(acc);
    assert_near(m.loss, 0, 0, "loss over zero denominators");
    assert_near(m.accuracy, 1, 0, "accuracy");
    assert_near(m.precision, 0, 0, "precision");
    assert_near(m.recall, 0, 0, "recall");
    assert_near(m.f1, 0, 0, "f1");
    assert_near(m.roc_auc, NAN, 0, "roc_auc");
    /* Every target positive, none predicted: recall 0, precision 0/0. */
    nn_metrics_acc_reset(acc);
    add(acc, low, &(nn_targets){NULL, positives}, 4, NULL, NULL);
    m = finish(acc);
    assert_near(m.accuracy, 0, 0, "accuracy");
    assert_near(m.precision, 0, 0, "precision");
    assert_near(m.recall, 0, 0, "recall");
    assert_near(m.f1, 0, 0, "f1");
    nn_metrics_acc_free(acc);

    /* Multi-label with no positive anywhere. */
    acc = make_acc(NN_TASK_MULTILABEL, 2, false, 2);
    add(acc, low, &(nn_targets){NULL, negatives}, 2, NULL, NULL);
    m = finish(acc);
    assert_near(m.accuracy, 1, 0, "subset accuracy");
    assert_near(m.label_accuracy, 1, 0, "label accuracy");
    assert_near(m.micro_f1, 0, 0, "micro f1");
    assert_near(m.macro_f1, 0, 0, "macro f1");
    nn_metrics_acc_free(acc);

    /* Regression: equal targets (SST 0), and a single sample. */
    acc = make_acc(NN_TASK_REGRESSION, 2, false, 2);
    add(acc, low, &(nn_targets){NULL, positives}, 2, NULL, NULL);
    m = finish(acc);
    assert_near(m.r2, NAN, 0, "r2 of equal targets");
    assert_near(m.mse, (0.81 + 0.64 + 0.49 + 0.36) / 4, 1e-7, "mse of equal targets");
    nn_metrics_acc_reset(acc);
    add(acc, low, &(nn_targets){NULL, low + 1}, 1, NULL, NULL);
    assert_near(finish(acc).r2, NAN, 0, "r2 of one sample");
    nn_metrics_acc_free(acc);

    /* Classification where every label is ignored. */
    acc = make_acc(NN_TASK_CLASSIFICATION, 2, false, 2);
    add(acc, low, &(nn_targets){(const int32_t[]){-100, -100}, NULL}, 2, NULL, NULL);
    m = finish(acc);
    ck_assert_int_eq(m.count, 2);
    assert_near(m.accuracy, 0, 0, "accuracy with every label ignored");
    nn_metrics_acc_free(acc);
}
END_TEST

/* ---- random data against brute force ---- */

typedef struct sample_set {
    nn_task task;
    int count, outputs;
    bool logits;
    float *output;
    float *values;      /* count x outputs, or NULL */
    int32_t *labels;    /* count, or NULL */
    double *numerator, *denominator;
} sample_set;

/* Scores on a grid of a few values, so that ties are many and some land on
 * the threshold; targets mostly agree with the scores, a few are soft (0.5
 * counts as positive, 0.3 not). Regression targets are 1e4 +- 2, where
 * plain sums of squares would lose digits to cancellation; the second
 * output's are all equal (weight 0 in R^2) and the third output's first
 * target is 1e6, far from the rest. Classification labels include -100. */
static sample_set make_samples(nn_task task, int count, int outputs, bool logits, uint64_t seed) {
    nn_rng rng;
    nn_rng_seed(&rng, seed);
    size_t values = (size_t)count * outputs;
    sample_set s = {task, count, outputs, logits, malloc((values + 1) * sizeof(float)), NULL, NULL,
                    malloc(((size_t)count + 1) * sizeof(double)), malloc(((size_t)count + 1) * sizeof(double))};
    if (task == NN_TASK_CLASSIFICATION)
        s.labels = malloc(((size_t)count + 1) * sizeof *s.labels);
    else
        s.values = malloc((values + 1) * sizeof *s.values);
    for (int b = 0; b < count; b++) {
        s.numerator[b] = nn_rng_uniform(&rng) * 3;
        s.denominator[b] = nn_rng_below(&rng, 4) == 0 ? 0 : 1 + nn_rng_below(&rng, 3);
        float *row = s.output + (size_t)b * outputs;
        if (task == NN_TASK_CLASSIFICATION) {
            for (int j = 0; j < outputs; j++) row[j] = (float)nn_rng_below(&rng, 4);
            uint32_t pick = nn_rng_below(&rng, 20);
            s.labels[b] = pick == 0 ? -100 : (int32_t)nn_rng_below(&rng, (uint32_t)outputs);
            continue;
        }
        float *target = s.values + (size_t)b * outputs;
        for (int j = 0; j < outputs; j++) {
            if (task == NN_TASK_REGRESSION) {
                double offset = b == 0 && j == 2 ? 1e6 : 1e4;
                target[j] = j == 1 ? 3.25f : (float)(offset + nn_rng_uniform_range(&rng, -2, 2));
                row[j] = target[j] + nn_rng_uniform_range(&rng, -1, 1);
                continue;
            }
            /* Probabilities k/10 or logits (k - 5)/2: 0.5 and 0 are on the grid. */
            int k = (int)nn_rng_below(&rng, 11);
            row[j] = logits ? (float)(k - 5) / 2 : (float)k / 10;
            float chance = (float)k / 10 * 0.6f + 0.2f;
            uint32_t soft = nn_rng_below(&rng, 10);
            target[j] = soft == 0 ? 0.5f : soft == 1 ? 0.3f : nn_rng_uniform(&rng) < chance ? 1.0f : 0.0f;
        }
    }
    return s;
}

static void free_samples(sample_set *s) {
    free(s->output);
    free(s->values);
    free(s->labels);
    free(s->numerator);
    free(s->denominator);
}

/* Adds the samples in batches of batch_size (the last one shorter). */
static nn_metrics_acc *accumulate(const sample_set *s, int batch_size, int64_t capacity) {
    nn_metrics_acc *acc = make_acc(s->task, s->outputs, s->logits, capacity);
    for (int start = 0; start < s->count; start += batch_size) {
        int batch = s->count - start < batch_size ? s->count - start : batch_size;
        nn_targets targets = {s->labels ? s->labels + start : NULL,
                              s->values ? s->values + (size_t)start * s->outputs : NULL};
        add(acc, s->output + (size_t)start * s->outputs, &targets, batch, s->numerator + start,
            s->denominator + start);
    }
    return acc;
}

/* sklearn's F1: 2 P R / (P + R), P and R each 0 when undefined. */
static double f1_of(double tp, double fp, double fn) {
    double precision = tp + fp > 0 ? tp / (tp + fp) : 0, recall = tp + fn > 0 ? tp / (tp + fn) : 0;
    return precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0;
}

static nn_metrics brute_force(const sample_set *s, int64_t *confusion) {
    nn_metrics m = {.task = s->task, .count = s->count};
    int n = s->count, outputs = s->outputs;
    double numerator = 0, denominator = 0;
    for (int b = 0; b < n; b++) {
        numerator += s->numerator[b];
        denominator += s->denominator[b];
    }
    m.loss = denominator != 0 ? numerator / denominator : 0;
    if (s->task == NN_TASK_CLASSIFICATION) {
        int labelled = 0, correct = 0;
        memset(confusion, 0, (size_t)outputs * outputs * sizeof *confusion);
        for (int b = 0; b < n; b++) {
            if (s->labels[b] < 0) continue;
            const float *row = s->output + (size_t)b * outputs;
            int best = 0;
            for (int j = 0; j < outputs; j++)
                if (row[j] > row[best]) best = j;
            labelled++;
            correct += best == s->labels[b];
            confusion[(size_t)s->labels[b] * outputs + best]++;
        }
        m.accuracy = labelled ? (double)correct / labelled : 0;
        return m;
    }
    if (s->task == NN_TASK_REGRESSION) {
        double sse = 0, sae = 0, weighted = 0, total_sst = 0;
        for (int j = 0; j < outputs; j++) {
            double mean = 0, sst = 0, sse_j = 0;
            for (int b = 0; b < n; b++) mean += s->values[(size_t)b * outputs + j];
            mean /= n;
            for (int b = 0; b < n; b++) {
                size_t i = (size_t)b * outputs + j;
                double deviation = s->values[i] - mean, error = (double)s->output[i] - s->values[i];
                sst += deviation * deviation;
                sse_j += error * error;
                sae += fabs(error);
            }
            sse += sse_j;
            /* variance_weighted: score_j = 1 - SSE_j / SST_j with weight SST_j. */
            if (sst != 0) weighted += sst * (1 - sse_j / sst);
            total_sst += sst;
        }
        m.mse = sse / ((double)n * outputs);
        m.rmse = sqrt(m.mse);
        m.mae = sae / ((double)n * outputs);
        m.r2 = total_sst != 0 ? weighted / total_sst : NAN;
        return m;
    }
    float threshold = s->logits ? 0.0f : 0.5f;
    double tp_total = 0, fp_total = 0, fn_total = 0, f1_total = 0, right_labels = 0;
    int all_right = 0;
    for (int b = 0; b < n; b++) {
        bool right = true;
        for (int j = 0; j < outputs; j++) {
            size_t i = (size_t)b * outputs + j;
            bool ok = (s->output[i] > threshold) == (s->values[i] >= 0.5f);
            right_labels += ok;
            right = right && ok;
        }
        all_right += right;
    }
    for (int j = 0; j < outputs; j++) {
        double tp = 0, fp = 0, fn = 0;
        for (int b = 0; b < n; b++) {
            size_t i = (size_t)b * outputs + j;
            bool predicted = s->output[i] > threshold, positive = s->values[i] >= 0.5f;
            tp += predicted && positive;
            fp += predicted && !positive;
            fn += !predicted && positive;
        }
        tp_total += tp;
        fp_total += fp;
        fn_total += fn;
        f1_total += f1_of(tp, fp, fn);
    }
    if (s->task == NN_TASK_MULTILABEL) {
        m.accuracy = (double)all_right / n;
        m.label_accuracy = right_labels / ((double)n * outputs);
        m.micro_f1 = f1_of(tp_total, fp_total, fn_total);
        m.macro_f1 = f1_total / outputs;
        return m;
    }
    m.accuracy = right_labels / n;
    m.precision = tp_total + fp_total > 0 ? tp_total / (tp_total + fp_total) : 0;
    m.recall = tp_total + fn_total > 0 ? tp_total / (tp_total + fn_total) : 0;
    m.f1 = f1_of(tp_total, fp_total, fn_total);
    /* Every (positive, negative) pair: 1 when ranked right, 1/2 when tied. */
    double pairs = 0, wins = 0;
    for (int p = 0; p < n; p++) {
        if (!(s->values[p] >= 0.5f)) continue;
        for (int q = 0; q < n; q++) {
            if (s->values[q] >= 0.5f) continue;
            pairs++;
            wins += s->output[p] > s->output[q] ? 1 : s->output[p] == s->output[q] ? 0.5 : 0;
        }
    }
    m.roc_auc = pairs > 0 ? wins / pairs : NAN;
    return m;
}

typedef struct random_case {
    nn_task task;
    int count, outputs;
    bool logits;
} random_case;

static const random_case random_cases[] = {
    {NN_TASK_BINARY, 1, 1, false},          {NN_TASK_BINARY, 50, 1, false},
    {NN_TASK_BINARY, 777, 1, false},        {NN_TASK_BINARY, 500, 1, true},
    {NN_TASK_MULTILABEL, 300, 2, false},    {NN_TASK_MULTILABEL, 257, 7, true},
    {NN_TASK_REGRESSION, 2, 1, false},      {NN_TASK_REGRESSION, 400, 1, false},
    {NN_TASK_REGRESSION, 300, 2, false},    {NN_TASK_REGRESSION, 400, 3, false},
    {NN_TASK_REGRESSION, 1000, 4, false},   {NN_TASK_CLASSIFICATION, 300, 3, false},
    {NN_TASK_CLASSIFICATION, 555, 10, false},
};
#define RANDOM_CASE_COUNT ((int)(sizeof random_cases / sizeof random_cases[0]))

START_TEST(metrics_match_brute_force_on_random_data) {
    const random_case *c = &random_cases[_i];
    for (uint64_t seed = 1; seed <= 5; seed++) {
        sample_set s = make_samples(c->task, c->count, c->outputs, c->logits, 1000 * (uint64_t)_i + seed);
        size_t cells = (size_t)c->outputs * c->outputs;
        int64_t *confusion = malloc(cells * sizeof *confusion), *expected_confusion = malloc(cells * sizeof *confusion);
        nn_metrics_acc *acc = accumulate(&s, 32, c->count);
        nn_metrics m;
        bool filled = nn_metrics_acc_finish(acc, &m, confusion);
        nn_metrics expected = brute_force(&s, expected_confusion);
        ck_assert_int_eq(m.task, c->task);
        ck_assert_int_eq(m.count, c->count);
        const char *const *names;
        int count = nn_metrics_names(c->task, &names);
        for (int i = 0; i < count; i++) {
            char what[96];
            snprintf(what, sizeof what, "%s case %d seed %d: %s", nn_task_name(c->task), _i, (int)seed, names[i]);
            /* Counts make exact ratios; the regression sums differ from the
             * two-pass ones by rounding only (SST is about 1e6 here, the
             * first target 1e6 away from the others). */
            assert_near(nn_metrics_value(&m, names[i]), nn_metrics_value(&expected, names[i]),
                        1e-12 * fmax(1, fabs(nn_metrics_value(&expected, names[i]))), what);
        }
        ck_assert(filled == (c->task == NN_TASK_CLASSIFICATION));
        if (filled)
            for (size_t i = 0; i < cells; i++) ck_assert_int_eq(confusion[i], expected_confusion[i]);
        nn_metrics_acc_free(acc);
        free(confusion);
        free(expected_confusion);
        free_samples(&s);
    }
}
END_TEST

/* The same samples in batches of 1, of 7 and all at once: bit for bit the
 * same metrics (and confusion), whatever the task. */
START_TEST(batch_size_does_not_matter) {
    const random_case *c = &random_cases[_i];
    sample_set s = make_samples(c->task, c->count, c->outputs, c->logits, 77 + (uint64_t)_i);
    size_t cells = (size_t)c->outputs * c->outputs;
    int64_t *first = malloc(cells * sizeof *first), *other = malloc(cells * sizeof *other);
    nn_metrics_acc *acc = accumulate(&s, c->count, c->count);
    nn_metrics reference;
    nn_metrics_acc_finish(acc, &reference, first);
    nn_metrics_acc_free(acc);
    const int batch_sizes[] = {1, 7, c->count};
    for (int k = 0; k < 3; k++) {
        acc = accumulate(&s, batch_sizes[k], c->count + 5);
        nn_metrics m;
        nn_metrics_acc_finish(acc, &m, other);
        char what[64];
        snprintf(what, sizeof what, "%s in batches of %d", nn_task_name(c->task), batch_sizes[k]);
        assert_same_metrics(&m, &reference, what);
        if (c->task == NN_TASK_CLASSIFICATION) ck_assert(memcmp(first, other, cells * sizeof *first) == 0);
        nn_metrics_acc_free(acc);
    }
    free(first);
    free(other);
    free_samples(&s);
}
END_TEST

/* ---- capacity, reset, misuse ---- */

START_TEST(adding_beyond_capacity_fails_and_adds_nothing) {
    for (int task = 0; task < 4; task++) {
        int outputs = task == NN_TASK_BINARY ? 1 : 3;
        sample_set s = make_samples((nn_task)task, 11, outputs, false, 5 + (uint64_t)task);
        nn_targets first = {s.labels, s.values};
        nn_targets rest = {s.labels ? s.labels + 7 : NULL, s.values ? s.values + (size_t)7 * outputs : NULL};
        nn_metrics_acc *acc = make_acc((nn_task)task, outputs, false, 10);
        add(acc, s.output, &first, 7, s.numerator, s.denominator);
        nn_metrics before = finish(acc);

        nn_error err = {0};
        ck_assert_int_eq(nn_metrics_acc_add(acc, s.output + (size_t)7 * outputs, &rest, 4, s.numerator + 7,
                                            s.denominator + 7, &err),
                         -1);
        ck_assert_int_eq(err.status, NN_ERR_RUNTIME);
        ck_assert_msg(strstr(err.message, "11") && strstr(err.message, "10"), "%s", err.message);
        nn_metrics after = finish(acc);
        assert_same_metrics(&after, &before, "after a refused batch");

        /* Exactly to capacity is fine, and the refused batch left no trace:
         * the result is that of the first ten samples added at once. */
        add(acc, s.output + (size_t)7 * outputs, &rest, 3, s.numerator + 7, s.denominator + 7);
        nn_metrics full = finish(acc);
        ck_assert_int_eq(full.count, 10);
        sample_set ten = s;
        ten.count = 10;
        nn_metrics_acc *at_once = accumulate(&ten, 10, 10);
        nn_metrics expected = finish(at_once);
        assert_same_metrics(&full, &expected, "ten samples");
        err = (nn_error){0};
        ck_assert_int_eq(nn_metrics_acc_add(acc, s.output + (size_t)10 * outputs, &rest, 1, NULL, NULL, &err), -1);
        ck_assert_int_eq(err.status, NN_ERR_RUNTIME);
        nn_metrics_acc_free(at_once);
        nn_metrics_acc_free(acc);
        free_samples(&s);
    }
    /* Capacity 0 takes empty batches only. */
    nn_metrics_acc *acc = make_acc(NN_TASK_BINARY, 1, false, 0);
    nn_error err = {0};
    float score = 0.5f;
    ck_assert_int_eq(nn_metrics_acc_add(acc, &score, &(nn_targets){NULL, &score}, 0, NULL, NULL, &err), 0);
    ck_assert_int_eq(nn_metrics_acc_add(acc, &score, &(nn_targets){NULL, &score}, 1, NULL, NULL, &err), -1);
    nn_metrics_acc_free(acc);
}
END_TEST

START_TEST(reset_starts_over) {
    for (int task = 0; task < 4; task++) {
        int outputs = task == NN_TASK_BINARY ? 1 : 4;
        sample_set a = make_samples((nn_task)task, 40, outputs, false, 11 + (uint64_t)task);
        sample_set b = make_samples((nn_task)task, 30, outputs, false, 21 + (uint64_t)task);
        size_t cells = (size_t)outputs * outputs;
        int64_t *reused_confusion = malloc(cells * sizeof(int64_t)), *fresh_confusion = malloc(cells * sizeof(int64_t));
        nn_metrics_acc *acc = accumulate(&a, 9, 40);
        finish(acc);
        nn_metrics_acc_reset(acc);
        nn_metrics empty = finish(acc);
        ck_assert_int_eq(empty.count, 0);
        nn_metrics_acc *none = make_acc((nn_task)task, outputs, false, 40);
        nn_metrics expected_empty = finish(none);
        assert_same_metrics(&empty, &expected_empty, "after reset");
        nn_metrics_acc_free(none);

        /* Refilled to capacity after the reset: 30 of b, 10 of a. */
        add(acc, b.output, &(nn_targets){b.labels, b.values}, 30, b.numerator, b.denominator);
        add(acc, a.output, &(nn_targets){a.labels, a.values}, 10, a.numerator, a.denominator);
        nn_metrics reused;
        nn_metrics_acc_finish(acc, &reused, reused_confusion);
        nn_metrics_acc *fresh = make_acc((nn_task)task, outputs, false, 40);
        add(fresh, b.output, &(nn_targets){b.labels, b.values}, 30, b.numerator, b.denominator);
        add(fresh, a.output, &(nn_targets){a.labels, a.values}, 10, a.numerator, a.denominator);
        nn_metrics expected;
        nn_metrics_acc_finish(fresh, &expected, fresh_confusion);
        assert_same_metrics(&reused, &expected, "reused after reset");
        if (task == NN_TASK_CLASSIFICATION)
            ck_assert(memcmp(reused_confusion, fresh_confusion, cells * sizeof(int64_t)) == 0);
        nn_metrics_acc_free(fresh);
        nn_metrics_acc_free(acc);
        free(reused_confusion);
        free(fresh_confusion);
        free_samples(&a);
        free_samples(&b);
    }
}
END_TEST

START_TEST(create_and_add_refuse_misuse) {
    nn_error err = {0};
    ck_assert_ptr_null(nn_metrics_acc_create(NN_TASK_REGRESSION, 0, false, 10, &err));
    ck_assert_int_eq(err.status, NN_ERR_RUNTIME);
    ck_assert_msg(strstr(err.message, "0"), "%s", err.message);
    err = (nn_error){0};
    ck_assert_ptr_null(nn_metrics_acc_create(NN_TASK_BINARY, 2, false, 10, &err));
    ck_assert_msg(strstr(err.message, "binary") && strstr(err.message, "2"), "%s", err.message);
    err = (nn_error){0};
    ck_assert_ptr_null(nn_metrics_acc_create(NN_TASK_CLASSIFICATION, 10, false, -1, &err));
    ck_assert_msg(strstr(err.message, "-1"), "%s", err.message);
    err = (nn_error){0};
    ck_assert_ptr_null(nn_metrics_acc_create((nn_task)9, 10, false, 1, &err));
    ck_assert_int_eq(err.status, NN_ERR_RUNTIME);
    ck_assert_ptr_null(nn_metrics_acc_create((nn_task)9, 10, false, 1, NULL));
    nn_metrics_acc_free(NULL);

    float values[4] = {0.1f, 0.2f, 0.3f, 0.4f};
    double one[2] = {1, 1};
    nn_metrics_acc *acc = make_acc(NN_TASK_REGRESSION, 2, false, 4);
    err = (nn_error){0};
    ck_assert_int_eq(nn_metrics_acc_add(acc, values, &(nn_targets){NULL, values}, -1, NULL, NULL, &err), -1);
    ck_assert_int_eq(nn_metrics_acc_add(acc, values, &(nn_targets){(const int32_t[]){0, 1}, NULL}, 2, NULL, NULL,
                                        &err),
                     -1);
    ck_assert_msg(strstr(err.message, "target values"), "%s", err.message);
    ck_assert_int_eq(nn_metrics_acc_add(acc, NULL, &(nn_targets){NULL, values}, 2, NULL, NULL, &err), -1);
    ck_assert_int_eq(nn_metrics_acc_add(acc, values, NULL, 2, NULL, NULL, &err), -1);
    ck_assert_int_eq(nn_metrics_acc_add(acc, values, &(nn_targets){NULL, values}, 2, one, NULL, &err), -1);
    ck_assert_int_eq(finish(acc).count, 0);
    nn_metrics_acc_free(acc);

    acc = make_acc(NN_TASK_CLASSIFICATION, 2, false, 4);
    ck_assert_int_eq(nn_metrics_acc_add(acc, values, &(nn_targets){NULL, values}, 2, NULL, NULL, &err), -1);
    ck_assert_msg(strstr(err.message, "labels"), "%s", err.message);
    nn_metrics_acc_free(acc);
}
END_TEST

/* ---- merging accumulators (data-parallel ranks) ---- */

typedef struct saved_state {
    int64_t *counts;
    size_t count_size;
    double *sums;
    size_t sum_size;
} saved_state;

static saved_state save_state(const nn_metrics_acc *acc) {
    saved_state state;
    nn_error err = {0};
    ck_assert_msg(nn_metrics_acc_save(acc, &state.counts, &state.count_size, &state.sums, &state.sum_size, &err) == 0,
                  "save: %s", err.message);
    return state;
}

static void free_state(saved_state *state) {
    free(state->counts);
    free(state->sums);
}

static bool same_bits(const saved_state *a, const saved_state *b) {
    return a->count_size == b->count_size && a->sum_size == b->sum_size &&
           memcmp(a->counts, b->counts, a->count_size * sizeof *a->counts) == 0 &&
           memcmp(a->sums, b->sums, a->sum_size * sizeof *a->sums) == 0;
}

static double relative_difference(double actual, double expected) {
    if (same(actual, expected)) return 0;
    return expected != 0 ? fabs(actual - expected) / fabs(expected) : INFINITY;
}

/* The counts (binary's scores and positives in the order added among
 * them) exactly, the sums to 1e-12 relative; returns the worst relative
 * difference of the sums. */
static double assert_same_state(const saved_state *actual, const saved_state *expected, const char *what) {
    ck_assert_msg(actual->count_size == expected->count_size && actual->sum_size == expected->sum_size,
                  "%s: the states' sizes differ", what);
    for (size_t k = 0; k < actual->count_size; k++)
        ck_assert_msg(actual->counts[k] == expected->counts[k], "%s: count %zu is %lld, expected %lld", what, k,
                      (long long)actual->counts[k], (long long)expected->counts[k]);
    double worst = 0;
    for (size_t k = 0; k < actual->sum_size; k++) {
        double difference = relative_difference(actual->sums[k], expected->sums[k]);
        ck_assert_msg(difference <= 1e-12, "%s: sum %zu is %.17g, expected %.17g", what, k, actual->sums[k],
                      expected->sums[k]);
        worst = fmax(worst, difference);
    }
    return worst;
}

/* The ratios of counts (ROC AUC included) exactly; the loss and the
 * regression metrics, made of reassociated sums, to 1e-12 relative.
 * Returns the worst relative difference. */
static double assert_close_metrics(const nn_metrics *actual, const nn_metrics *expected, const char *what) {
    ck_assert_msg(actual->task == expected->task && actual->count == expected->count, "%s: task or count differ",
                  what);
    const char *const *names;
    int count = nn_metrics_names(actual->task, &names);
    double worst = 0;
    for (int i = 0; i < count; i++) {
        double a = nn_metrics_value(actual, names[i]), e = nn_metrics_value(expected, names[i]);
        bool of_sums = actual->task == NN_TASK_REGRESSION || strcmp(names[i], "loss") == 0;
        double difference = relative_difference(a, e);
        ck_assert_msg(of_sums ? difference <= 1e-12 : same(a, e), "%s: %s %.17g, expected %.17g", what, names[i], a,
                      e);
        worst = fmax(worst, difference);
    }
    return worst;
}

/* Adds samples first..last-1 in batches of 5. */
static nn_metrics_acc *accumulate_part(const sample_set *s, int first, int last, int64_t capacity) {
    nn_metrics_acc *acc = make_acc(s->task, s->outputs, s->logits, capacity);
    for (int start = first; start < last; start += 5) {
        int batch = last - start < 5 ? last - start : 5;
        nn_targets targets = {s->labels ? s->labels + start : NULL,
                              s->values ? s->values + (size_t)start * s->outputs : NULL};
        add(acc, s->output + (size_t)start * s->outputs, &targets, batch, s->numerator + start,
            s->denominator + start);
    }
    return acc;
}

static void merge(nn_metrics_acc *acc, const nn_metrics_acc *other) {
    nn_error err = {0};
    ck_assert_msg(nn_metrics_acc_merge(acc, other, &err) == 0, "merge: %s", err.message);
}

typedef enum merge_kind { PLAIN, NAN_SCORES, AUTOENCODER } merge_kind;

typedef struct merge_case {
    nn_task task;
    int outputs;
    bool logits;
    merge_kind kind;
} merge_case;

static const merge_case merge_cases[] = {
    {NN_TASK_CLASSIFICATION, 5, false, PLAIN}, {NN_TASK_BINARY, 1, false, PLAIN},
    {NN_TASK_BINARY, 1, true, PLAIN},          {NN_TASK_BINARY, 1, false, NAN_SCORES},
    {NN_TASK_MULTILABEL, 4, false, PLAIN},     {NN_TASK_MULTILABEL, 3, true, PLAIN},
    {NN_TASK_REGRESSION, 3, false, PLAIN},     {NN_TASK_REGRESSION, 16, false, AUTOENCODER},
};
#define MERGE_CASE_COUNT ((int)(sizeof merge_cases / sizeof merge_cases[0]))
#define MERGED_SAMPLES 37

/* 37 samples of the case: make_samples' (regression targets 1e4 +- 2, one
 * output constant, one with a first target 1e6 away), labels -100 at 5 and
 * 20 for sure, NaN scores at 3 and 30; the autoencoder's 4 x 4 images
 * have a border of zeros (weight 0 in R^2) around pixels in [0, 1). */
static sample_set make_merge_samples(const merge_case *c, uint64_t seed) {
    sample_set s = make_samples(c->task, MERGED_SAMPLES, c->outputs, c->logits, seed);
    if (c->task == NN_TASK_CLASSIFICATION) s.labels[5] = s.labels[20] = -100;
    if (c->kind == NAN_SCORES) s.output[3] = s.output[30] = NAN;
    if (c->kind == AUTOENCODER) {
        nn_rng rng;
        nn_rng_seed(&rng, seed + 1);
        for (int b = 0; b < s.count; b++)
            for (int j = 0; j < 16; j++) {
                size_t i = (size_t)b * 16 + j;
                bool border = j / 4 == 0 || j / 4 == 3 || j % 4 == 0 || j % 4 == 3;
                s.values[i] = border ? 0.0f : nn_rng_uniform(&rng);
                s.output[i] = s.values[i] + nn_rng_uniform_range(&rng, -0.1f, 0.1f);
            }
    }
    return s;
}

/* The three ranks' shares of the 37 samples: each pattern has an empty
 * rank, first, in the middle or last. */
static const int splits[][3] = {{0, 30, 7}, {12, 0, 25}, {20, 17, 0}, {3, 34, 0}};
#define SPLIT_COUNT ((int)(sizeof splits / sizeof splits[0]))

/* Each rank accumulates its share; rank 0 (room for all the samples) merges
 * ranks 1 and 2 in order: the state is that of one accumulator given the
 * samples in order (counts exactly, sums to 1e-12), and so are the metrics
 * and the confusion matrix. */
START_TEST(merged_ranks_match_one_accumulator) {
    const merge_case *c = &merge_cases[_i];
    sample_set s = make_merge_samples(c, 300 + (uint64_t)_i);
    size_t cells = (size_t)c->outputs * c->outputs;
    int64_t *confusion = malloc(cells * sizeof *confusion), *expected_confusion = malloc(cells * sizeof *confusion);
    nn_metrics_acc *whole = accumulate_part(&s, 0, s.count, s.count);
    saved_state expected_state = save_state(whole);
    nn_metrics expected;
    nn_metrics_acc_finish(whole, &expected, expected_confusion);
    if (c->kind == NAN_SCORES) ck_assert(isnan(expected.roc_auc));
    if (c->task == NN_TASK_BINARY && c->kind == PLAIN) ck_assert(!isnan(expected.roc_auc));
    double worst_state = 0, worst_metric = 0;
    for (int p = 0; p < SPLIT_COUNT; p++) {
        int first = splits[p][0], second = first + splits[p][1];
        nn_metrics_acc *rank0 = accumulate_part(&s, 0, first, s.count);
        nn_metrics_acc *rank1 = accumulate_part(&s, first, second, second - first);
        nn_metrics_acc *rank2 = accumulate_part(&s, second, s.count, s.count - second);
        merge(rank0, rank1);
        merge(rank0, rank2);
        char what[96];
        snprintf(what, sizeof what, "%s case %d split %d+%d+%d", nn_task_name(c->task), _i, splits[p][0],
                 splits[p][1], splits[p][2]);
        saved_state state = save_state(rank0);
        worst_state = fmax(worst_state, assert_same_state(&state, &expected_state, what));
        nn_metrics m;
        ck_assert(nn_metrics_acc_finish(rank0, &m, confusion) == (c->task == NN_TASK_CLASSIFICATION));
        worst_metric = fmax(worst_metric, assert_close_metrics(&m, &expected, what));
        if (c->task == NN_TASK_CLASSIFICATION)
            ck_assert(memcmp(confusion, expected_confusion, cells * sizeof *confusion) == 0);
        free_state(&state);
        nn_metrics_acc_free(rank0);
        nn_metrics_acc_free(rank1);
        nn_metrics_acc_free(rank2);
    }
    if (getenv("NNSEQ_TEST_MERGE_FIGURES"))
        fprintf(stderr, "%s case %d: worst relative difference state %.3g, metrics %.3g\n", nn_task_name(c->task),
                _i, worst_state, worst_metric);
    free_state(&expected_state);
    nn_metrics_acc_free(whole);
    free(confusion);
    free(expected_confusion);
    free_samples(&s);
}
END_TEST

/* An empty accumulator on either side changes no bit of the other's state:
 * merged into a full one, or a full one merged into it. */
START_TEST(merging_an_empty_accumulator_is_exact) {
    const merge_case *c = &merge_cases[_i];
    sample_set s = make_merge_samples(c, 400 + (uint64_t)_i);
    /* An infinite last target makes an infinite mean, which an empty side
     * must leave as it is (0 times an infinite difference is NaN). */
    if (c->task == NN_TASK_REGRESSION) s.values[(size_t)(s.count - 1) * c->outputs] = INFINITY;
    nn_metrics_acc *full = accumulate_part(&s, 0, s.count, s.count);
    saved_state before = save_state(full);
    nn_metrics_acc *empty = make_acc(c->task, c->outputs, c->logits, 0);
    merge(full, empty);
    saved_state after = save_state(full);
    ck_assert_msg(same_bits(&after, &before), "%s: merging an empty accumulator changed the state",
                  nn_task_name(c->task));
    nn_metrics_acc *into_empty = make_acc(c->task, c->outputs, c->logits, s.count);
    merge(into_empty, full);
    saved_state copied = save_state(into_empty);
    ck_assert_msg(same_bits(&copied, &before), "%s: merged into an empty accumulator, the state changed",
                  nn_task_name(c->task));
    free_state(&before);
    free_state(&after);
    free_state(&copied);
    nn_metrics_acc_free(full);
    nn_metrics_acc_free(empty);
    nn_metrics_acc_free(into_empty);
    free_samples(&s);
}
END_TEST

/* What travels between processes: each rank's saved state, loaded on rank
 * 0 into a fresh accumulator with more room than the rank's, then merged,
 * gives the bits of merging the ranks' accumulators themselves. */
START_TEST(saved_loaded_and_merged_is_merged) {
    const merge_case *c = &merge_cases[_i];
    sample_set s = make_merge_samples(c, 500 + (uint64_t)_i);
    const int *split = splits[1];
    int bounds[4] = {0, split[0], split[0] + split[1], s.count};
    nn_metrics_acc *direct = make_acc(c->task, c->outputs, c->logits, s.count);
    nn_metrics_acc *sent = make_acc(c->task, c->outputs, c->logits, s.count);
    for (int r = 0; r < 3; r++) {
        nn_metrics_acc *rank = accumulate_part(&s, bounds[r], bounds[r + 1], bounds[r + 1] - bounds[r]);
        saved_state state = save_state(rank);
        nn_metrics_acc *received = make_acc(c->task, c->outputs, c->logits, s.count + 13);
        nn_error err = {0};
        ck_assert_msg(nn_metrics_acc_load(received, state.counts, state.count_size, state.sums, state.sum_size,
                                          &err) == 0,
                      "load: %s", err.message);
        saved_state reloaded = save_state(received);
        ck_assert_msg(same_bits(&reloaded, &state), "rank %d's state changed on the way", r);
        merge(direct, rank);
        merge(sent, received);
        free_state(&state);
        free_state(&reloaded);
        nn_metrics_acc_free(rank);
        nn_metrics_acc_free(received);
    }
    saved_state a = save_state(direct), b = save_state(sent);
    ck_assert_msg(same_bits(&b, &a), "%s: sent and merged differs from merged", nn_task_name(c->task));
    nn_metrics from_direct = finish(direct), from_sent = finish(sent);
    assert_same_metrics(&from_sent, &from_direct, "sent and merged");
    free_state(&a);
    free_state(&b);
    nn_metrics_acc_free(direct);
    nn_metrics_acc_free(sent);
    free_samples(&s);
}
END_TEST

/* A rank merged with itself counts its samples twice, as adding them
 * twice would. */
START_TEST(merging_an_accumulator_into_itself_doubles_it) {
    const merge_case *c = &merge_cases[_i];
    sample_set s = make_merge_samples(c, 600 + (uint64_t)_i);
    nn_metrics_acc *acc = accumulate_part(&s, 0, s.count, 2 * s.count);
    nn_metrics_acc *twice = accumulate_part(&s, 0, s.count, 2 * s.count);
    merge(acc, acc);
    for (int start = 0; start < s.count; start += 5) {
        int batch = s.count - start < 5 ? s.count - start : 5;
        nn_targets targets = {s.labels ? s.labels + start : NULL,
                              s.values ? s.values + (size_t)start * s.outputs : NULL};
        add(twice, s.output + (size_t)start * s.outputs, &targets, batch, s.numerator + start,
            s.denominator + start);
    }
    saved_state a = save_state(acc), b = save_state(twice);
    assert_same_state(&a, &b, nn_task_name(c->task));
    nn_metrics m = finish(acc), expected = finish(twice);
    assert_close_metrics(&m, &expected, "merged into itself");
    free_state(&a);
    free_state(&b);
    nn_metrics_acc_free(acc);
    nn_metrics_acc_free(twice);
    free_samples(&s);
}
END_TEST

/* A merge that does not fit is refused with both sides named, and changes
 * nothing: another task, other outputs, logits against probabilities, or
 * more samples than acc was made for (exactly to capacity is fine). */
START_TEST(merge_refuses_what_does_not_fit) {
    for (int i = 0; i < MERGE_CASE_COUNT; i++) {
        const merge_case *c = &merge_cases[i];
        sample_set s = make_merge_samples(c, 700 + (uint64_t)i);
        nn_metrics_acc *acc = accumulate_part(&s, 0, 7, 10);
        saved_state before = save_state(acc);
        const struct {
            nn_task task;
            int outputs;
            bool logits;
        } misfits[] = {
            {c->task == NN_TASK_REGRESSION ? NN_TASK_MULTILABEL : NN_TASK_REGRESSION, c->outputs + 1, c->logits},
            {c->task == NN_TASK_BINARY ? NN_TASK_MULTILABEL : c->task, c->outputs + 1, c->logits},
            {c->task, c->outputs, !c->logits},
        };
        for (int k = 0; k < 3; k++) {
            nn_metrics_acc *misfit = make_acc(misfits[k].task, misfits[k].outputs, misfits[k].logits, 10);
            nn_error err = {0};
            ck_assert_int_eq(nn_metrics_acc_merge(acc, misfit, &err), -1);
            ck_assert_int_eq(err.status, NN_ERR_RUNTIME);
            char mine[96], theirs[96];
            snprintf(mine, sizeof mine, "into %s metrics of %d outputs (%s)", nn_task_name(c->task), c->outputs,
                     c->logits ? "logits" : "not logits");
            snprintf(theirs, sizeof theirs, "merge %s metrics of %d outputs (%s)", nn_task_name(misfits[k].task),
                     misfits[k].outputs, misfits[k].logits ? "logits" : "not logits");
            ck_assert_msg(strstr(err.message, mine) && strstr(err.message, theirs), "%s", err.message);
            nn_metrics_acc_free(misfit);
        }
        nn_metrics_acc *four = accumulate_part(&s, 7, 11, 4), *three = accumulate_part(&s, 7, 10, 3);
        nn_error err = {0};
        ck_assert_int_eq(nn_metrics_acc_merge(acc, four, &err), -1);
        ck_assert_int_eq(err.status, NN_ERR_RUNTIME);
        ck_assert_msg(strstr(err.message, "4 more") && strstr(err.message, "11") && strstr(err.message, "10"), "%s",
                      err.message);
        saved_state after = save_state(acc);
        ck_assert_msg(same_bits(&after, &before), "%s: a refused merge changed the state", nn_task_name(c->task));
        merge(acc, three);
        ck_assert_int_eq(finish(acc).count, 10);
        free_state(&before);
        free_state(&after);
        nn_metrics_acc_free(four);
        nn_metrics_acc_free(three);
        nn_metrics_acc_free(acc);
        free_samples(&s);
    }
}
END_TEST

/* A saved count beyond the saved samples (a damaged checkpoint) is
 * refused, nothing loaded, before any add or merge could overflow it. */
START_TEST(load_refuses_counts_beyond_the_samples) {
    for (int i = 0; i < MERGE_CASE_COUNT; i++) {
        const merge_case *c = &merge_cases[i];
        sample_set s = make_merge_samples(c, 800 + (uint64_t)i);
        nn_metrics_acc *source = accumulate_part(&s, 0, 9, 9);
        saved_state state = save_state(source);
        nn_metrics_acc *acc = accumulate_part(&s, 9, 12, 20);
        saved_state before = save_state(acc);
        const int64_t bad[] = {-1, 10, INT64_MAX};
        size_t bounded = state.count_size - (c->task == NN_TASK_BINARY ? 9 : 0);
        for (size_t k = 1; k < bounded; k++)
            for (int v = 0; v < 3; v++) {
                int64_t kept = state.counts[k];
                state.counts[k] = bad[v];
                nn_error err = {0};
                ck_assert_int_eq(nn_metrics_acc_load(acc, state.counts, state.count_size, state.sums,
                                                     state.sum_size, &err),
                                 -1);
                ck_assert_int_eq(err.status, NN_ERR_INPUT);
                char expected[96];
                snprintf(expected, sizeof expected, "count %zu is %lld, outside 0..9", k, (long long)bad[v]);
                ck_assert_msg(strstr(err.message, expected), "%s", err.message);
                state.counts[k] = kept;
            }
        saved_state after = save_state(acc);
        ck_assert_msg(same_bits(&after, &before), "%s: a refused load changed the state", nn_task_name(c->task));
        nn_error err = {0};
        if (c->task == NN_TASK_BINARY) {
            /* A count of NaN scores that is not the scores'. */
            int64_t kept = state.counts[4];
            state.counts[4] = kept ? 0 : 1;
            ck_assert_int_eq(nn_metrics_acc_load(acc, state.counts, state.count_size, state.sums, state.sum_size,
                                                 &err),
                             -1);
            ck_assert_int_eq(err.status, NN_ERR_INPUT);
            ck_assert_msg(strstr(err.message, "NaN scores"), "%s", err.message);
            state.counts[4] = kept;
            err = (nn_error){0};
        }
        /* Binary's positives are flags, any value; the intact state loads. */
        ck_assert_int_eq(nn_metrics_acc_load(acc, state.counts, state.count_size, state.sums, state.sum_size, &err),
                         0);
        free_state(&state);
        free_state(&before);
        free_state(&after);
        nn_metrics_acc_free(source);
        nn_metrics_acc_free(acc);
        free_samples(&s);
    }
}
END_TEST

int main(void) {
    Suite *suite = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_add_test(tc, task_follows_the_target_and_the_loss);
    tcase_add_test(tc, names_come_loss_first_in_print_order);
    tcase_add_test(tc, values_by_name_are_the_fields);
    tcase_add_test(tc, binary_by_hand);
    tcase_add_test(tc, roc_auc_counts_ties_half);
    tcase_add_test(tc, multilabel_by_hand);
    tcase_add_test(tc, regression_by_hand);
    tcase_add_test(tc, classification_by_hand);
    tcase_add_test(tc, confusion_only_up_to_the_limit);
    tcase_add_test(tc, zero_division_gives_zero_or_nan);
    tcase_add_loop_test(tc, metrics_match_brute_force_on_random_data, 0, RANDOM_CASE_COUNT);
    tcase_add_loop_test(tc, batch_size_does_not_matter, 0, RANDOM_CASE_COUNT);
    tcase_add_test(tc, adding_beyond_capacity_fails_and_adds_nothing);
    tcase_add_test(tc, reset_starts_over);
    tcase_add_test(tc, create_and_add_refuse_misuse);
    tcase_add_test(tc, a_nan_metric_comes_out_without_its_sign);
    tcase_add_loop_test(tc, merged_ranks_match_one_accumulator, 0, MERGE_CASE_COUNT);
    tcase_add_loop_test(tc, merging_an_empty_accumulator_is_exact, 0, MERGE_CASE_COUNT);
    tcase_add_loop_test(tc, saved_loaded_and_merged_is_merged, 0, MERGE_CASE_COUNT);
    tcase_add_loop_test(tc, merging_an_accumulator_into_itself_doubles_it, 0, MERGE_CASE_COUNT);
    tcase_add_test(tc, merge_refuses_what_does_not_fit);
    tcase_add_test(tc, load_refuses_counts_beyond_the_samples);
    suite_add_tcase(suite, tc);
    return testutil_run(suite);
}
