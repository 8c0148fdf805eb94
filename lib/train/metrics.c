/* Task metrics. Each sample is folded into counts and sums as it is added,
 * in the order added, so the batch boundaries never change a result; only
 * binary ROC AUC needs the samples themselves (a rank statistic), and sorts
 * them once, when finishing. */
#include "train/metrics.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A binary sample as ROC AUC needs it: the float score as the model gave it
 * (not a probability computed from a logit, which can round distinct logits
 * to one probability) and whether the target is positive. */
typedef struct scored_sample {
    float score;
    uint8_t positive;
} scored_sample;

/* One label's confusion; its true negatives are the samples not counted
 * here, so they need no counter of their own. */
typedef struct label_counts {
    int64_t true_positive, false_positive, false_negative;
} label_counts;

/* One regression output: the targets' running mean and sum of squared
 * deviations from it (Welford's update, which never subtracts two large
 * sums, so a first target far from the rest or a mean far from zero costs
 * no digits), and the sum of squared errors. */
typedef struct output_sums {
    double mean, squares, squared_errors;
} output_sums;

struct nn_metrics_acc {
    nn_task task;
    int outputs;
    bool logits;
    int64_t capacity;
    int64_t count;
    double loss_numerator, loss_denominator;
    /* classification */
    int64_t labelled, correct;
    int64_t *confusion;       /* outputs x outputs; NULL above NN_METRICS_CONFUSION_MAX */
    /* binary and multi-label (binary is one label, plus the scores) */
    label_counts *labels;     /* outputs */
    int64_t all_right;        /* samples with every label right */
    scored_sample *samples;   /* binary: capacity */
    int64_t nan_scores;
    /* regression */
    output_sums *sums;        /* outputs */
    double absolute_errors;
};

nn_task nn_task_for(const nn_loss_kind *loss, int outputs, bool target_is_input) {
    if (target_is_input || !loss) return NN_TASK_REGRESSION;
    if (loss->target == NN_LOSS_CLASSES) return NN_TASK_CLASSIFICATION;
    /* The bce losses are the ones whose targets are probabilities of
     * independent labels; every other value loss measures a distance. */
    if (strcmp(loss->name, "bce") == 0 || strcmp(loss->name, "bce_with_logits") == 0)
        return outputs > 1 ? NN_TASK_MULTILABEL : NN_TASK_BINARY;
    return NN_TASK_REGRESSION;
}

const char *nn_task_name(nn_task task) {
    switch (task) {
    case NN_TASK_CLASSIFICATION: return "classification";
    case NN_TASK_BINARY: return "binary";
    case NN_TASK_MULTILABEL: return "multi-label";
    case NN_TASK_REGRESSION: return "regression";
    }
    return "unknown";
}

nn_metrics_acc *nn_metrics_acc_create(nn_task task, int outputs, bool logits, int64_t capacity, nn_error *err) {
    if (task != NN_TASK_CLASSIFICATION && task != NN_TASK_BINARY && task != NN_TASK_MULTILABEL &&
        task != NN_TASK_REGRESSION) {
        nn_error_set(err, NN_ERR_RUNTIME, "metrics: no task %d", (int)task);
        return NULL;
    }
    if (outputs < 1 || (task == NN_TASK_BINARY && outputs != 1)) {
        nn_error_set(err, NN_ERR_RUNTIME, "metrics: %s metrics need %s output, not %d", nn_task_name(task),
                     task == NN_TASK_BINARY ? "exactly one" : "at least one", outputs);
        return NULL;
    }
    if (capacity < 0) {
        nn_error_set(err, NN_ERR_RUNTIME, "metrics: capacity %lld is negative", (long long)capacity);
        return NULL;
    }
    nn_metrics_acc *acc = calloc(1, sizeof *acc);
    if (!acc) {
        nn_error_oom(err, "metrics");
        return NULL;
    }
    acc->task = task;
    acc->outputs = outputs;
    acc->logits = logits;
    acc->capacity = capacity;
    bool failed = false;
    if (task == NN_TASK_CLASSIFICATION && outputs <= NN_METRICS_CONFUSION_MAX) {
        acc->confusion = calloc((size_t)outputs * outputs, sizeof *acc->confusion);
        failed = !acc->confusion;
    } else if (task == NN_TASK_BINARY || task == NN_TASK_MULTILABEL) {
        acc->labels = calloc((size_t)outputs, sizeof *acc->labels);
        failed = !acc->labels;
        if (task == NN_TASK_BINARY) {
            /* One more than asked, so that capacity 0 is not malloc(0). */
            if ((uint64_t)capacity >= SIZE_MAX / sizeof *acc->samples) {
                failed = true;
            } else {
                acc->samples = malloc(((size_t)capacity + 1) * sizeof *acc->samples);
                failed = failed || !acc->samples;
            }
        }
    } else if (task == NN_TASK_REGRESSION) {
        acc->sums = calloc((size_t)outputs, sizeof *acc->sums);
        failed = !acc->sums;
    }
    if (failed) {
        nn_metrics_acc_free(acc);
        nn_error_oom(err, "metrics");
        return NULL;
    }
    return acc;
}

void nn_metrics_acc_free(nn_metrics_acc *acc) {
    if (!acc) return;
    free(acc->confusion);
    free(acc->labels);
    free(acc->samples);
    free(acc->sums);
    free(acc);
}

void nn_metrics_acc_reset(nn_metrics_acc *acc) {
    acc->count = 0;
    acc->loss_numerator = acc->loss_denominator = 0;
    acc->labelled = acc->correct = 0;
    acc->all_right = 0;
    acc->nan_scores = 0;
    acc->absolute_errors = 0;
    size_t outputs = (size_t)acc->outputs;
    if (acc->confusion) memset(acc->confusion, 0, outputs * outputs * sizeof *acc->confusion);
    if (acc->labels) memset(acc->labels, 0, outputs * sizeof *acc->labels);
    if (acc->sums) memset(acc->sums, 0, outputs * sizeof *acc->sums);
}

/* The layout of nn_metrics_acc_save's arrays for an accumulator holding
 * count samples. */
enum { SAVED_COUNTS = 5, SAVED_SUMS = 3 };

static size_t saved_count_size(const nn_metrics_acc *acc, int64_t count) {
    size_t outputs = (size_t)acc->outputs, size = SAVED_COUNTS;
    if (acc->confusion) size += outputs * outputs;
    if (acc->labels) size += 3 * outputs;
    if (acc->samples) size += (size_t)count;
    return size;
}

static size_t saved_sum_size(const nn_metrics_acc *acc, int64_t count) {
    return SAVED_SUMS + (acc->sums ? 3 * (size_t)acc->outputs : 0) + (acc->samples ? (size_t)count : 0);
}

int nn_metrics_acc_save(const nn_metrics_acc *acc, int64_t **counts, size_t *count_size, double **sums,
                        size_t *sum_size, nn_error *err) {
    size_t nc = saved_count_size(acc, acc->count), ns = saved_sum_size(acc, acc->count);
    int64_t *c = malloc(nc * sizeof *c);
    double *x = malloc(ns * sizeof *x);
    if (!c || !x) {
        free(c);
        free(x);
        return nn_error_oom(err, "the metrics' state");
    }
    size_t i = 0, j = 0, outputs = (size_t)acc->outputs;
    c[i++] = acc->count, c[i++] = acc->labelled, c[i++] = acc->correct, c[i++] = acc->all_right;
    c[i++] = acc->nan_scores;
    x[j++] = acc->loss_numerator, x[j++] = acc->loss_denominator, x[j++] = acc->absolute_errors;
    if (acc->confusion)
        for (size_t k = 0; k < outputs * outputs; k++) c[i++] = acc->confusion[k];
    if (acc->labels)
        for (size_t k = 0; k < outputs; k++) {
            c[i++] = acc->labels[k].true_positive;
            c[i++] = acc->labels[k].false_positive;
            c[i++] = acc->labels[k].false_negative;
        }
    if (acc->sums)
        for (size_t k = 0; k < outputs; k++) {
            x[j++] = acc->sums[k].mean;
            x[j++] = acc->sums[k].squares;
            x[j++] = acc->sums[k].squared_errors;
        }
    if (acc->samples)
        for (int64_t k = 0; k < acc->count; k++) {
            c[i++] = acc->samples[k].positive;
            x[j++] = acc->samples[k].score;
        }
    *counts = c, *count_size = nc, *sums = x, *sum_size = ns;
    return 0;
}

int nn_metrics_acc_load(nn_metrics_acc *acc, const int64_t *counts, size_t count_size, const double *sums,
                        size_t sum_size, nn_error *err) {
    int64_t count = count_size >= SAVED_COUNTS ? counts[0] : -1;
    if (count < 0 || count > acc->capacity || count_size != saved_count_size(acc, count) ||
        sum_size != saved_sum_size(acc, count))
        return nn_error_set(err, NN_ERR_INPUT, "the saved metrics do not fit this run's (%zu counts and %zu sums)",
                            count_size, sum_size);
    /* Every count before binary's positives counts some of the samples:
     * bounded so, no later add or merge can overflow it. */
    size_t bounded = count_size - (acc->samples ? (size_t)count : 0);
    for (size_t k = 1; k < bounded; k++)
        if (counts[k] < 0 || counts[k] > count)
            return nn_error_set(err, NN_ERR_INPUT, "the saved metrics' count %zu is %lld, outside 0..%lld", k,
                                (long long)counts[k], (long long)count);
    /* ROC AUC trusts nan_scores to keep NaNs out of its sort and its tie
     * groups (a NaN, equal to nothing, would never end its group). */
    int64_t nan_scores = 0;
    for (int64_t k = 0; acc->samples && k < count; k++) nan_scores += isnan(sums[sum_size - count + k]) != 0;
    if (acc->samples && nan_scores != counts[4])
        return nn_error_set(err, NN_ERR_INPUT, "the saved metrics count %lld NaN scores, but their scores hold %lld",
                            (long long)counts[4], (long long)nan_scores);
    size_t i = 0, j = 0, outputs = (size_t)acc->outputs;
    acc->count = counts[i++], acc->labelled = counts[i++], acc->correct = counts[i++];
    acc->all_right = counts[i++], acc->nan_scores = counts[i++];
    acc->loss_numerator = sums[j++], acc->loss_denominator = sums[j++], acc->absolute_errors = sums[j++];
    if (acc->confusion)
        for (size_t k = 0; k < outputs * outputs; k++) acc->confusion[k] = counts[i++];
    if (acc->labels)
        for (size_t k = 0; k < outputs; k++) {
            acc->labels[k].true_positive = counts[i++];
            acc->labels[k].false_positive = counts[i++];
            acc->labels[k].false_negative = counts[i++];
        }
    if (acc->sums)
        for (size_t k = 0; k < outputs; k++) {
            acc->sums[k].mean = sums[j++];
            acc->sums[k].squares = sums[j++];
            acc->sums[k].squared_errors = sums[j++];
        }
    if (acc->samples)
        for (int64_t k = 0; k < count; k++) {
            acc->samples[k].positive = counts[i++] != 0;
            acc->samples[k].score = (float)sums[j++];
        }
    return 0;
}

/* Chan, Golub and LeVeque's pairwise update of Welford's sums: b's
 * samples after a's. An empty side is taken as it is: the formula alone
 * keeps finite sums' bits, but 0 times an infinite delta (a target of inf)
 * would turn the other side's mean into NaN. */
static output_sums merge_output_sums(output_sums a, int64_t count_a, output_sums b, int64_t count_b) {
    if (count_b == 0) return a;
    if (count_a == 0) return b;
    double delta = b.mean - a.mean, share_b = (double)count_b / (double)(count_a + count_b);
    return (output_sums){a.mean + delta * share_b, a.squares + b.squares + delta * delta * (double)count_a * share_b,
                         a.squared_errors + b.squared_errors};
}

int nn_metrics_acc_merge(nn_metrics_acc *acc, const nn_metrics_acc *other, nn_error *err) {
    if (acc->task != other->task || acc->outputs != other->outputs || acc->logits != other->logits)
        return nn_error_set(err, NN_ERR_RUNTIME,
                            "metrics: cannot merge %s metrics of %d outputs (%s) into %s metrics of %d outputs (%s)",
                            nn_task_name(other->task), other->outputs, other->logits ? "logits" : "not logits",
                            nn_task_name(acc->task), acc->outputs, acc->logits ? "logits" : "not logits");
    if (other->count > acc->capacity - acc->count)
        return nn_error_set(err, NN_ERR_RUNTIME,
                            "metrics: merging %lld more samples would make %lld, but the accumulator was made for %lld",
                            (long long)other->count, (long long)(acc->count + other->count),
                            (long long)acc->capacity);
    size_t outputs = (size_t)acc->outputs;
    acc->loss_numerator += other->loss_numerator;
    acc->loss_denominator += other->loss_denominator;
    acc->labelled += other->labelled;
    acc->correct += other->correct;
    acc->all_right += other->all_right;
    acc->nan_scores += other->nan_scores;
    acc->absolute_errors += other->absolute_errors;
    if (acc->confusion)
        for (size_t k = 0; k < outputs * outputs; k++) acc->confusion[k] += other->confusion[k];
    if (acc->labels)
        for (size_t k = 0; k < outputs; k++) {
            acc->labels[k].true_positive += other->labels[k].true_positive;
            acc->labels[k].false_positive += other->labels[k].false_positive;
            acc->labels[k].false_negative += other->labels[k].false_negative;
        }
    if (acc->samples && other->count > 0)
        memcpy(acc->samples + acc->count, other->samples, (size_t)other->count * sizeof *acc->samples);
    if (acc->sums)
        for (size_t k = 0; k < outputs; k++)
            acc->sums[k] = merge_output_sums(acc->sums[k], acc->count, other->sums[k], other->count);
    acc->count += other->count;
    return 0;
}

static void add_classes(nn_metrics_acc *acc, const float *output, const int32_t *labels, int batch) {
    int outputs = acc->outputs;
    for (int b = 0; b < batch; b++) {
        int32_t label = labels[b];
        if (label < 0 || label >= outputs) continue;
        const float *row = output + (size_t)b * outputs;
        int predicted = 0;
        for (int j = 1; j < outputs; j++)
            if (row[j] > row[predicted]) predicted = j;
        acc->labelled++;
        acc->correct += predicted == label;
        if (acc->confusion) acc->confusion[(size_t)label * outputs + predicted]++;
    }
}

/* Binary and multi-label: each output is a label of its own. */
static void add_labels(nn_metrics_acc *acc, const float *output, const float *targets, int batch) {
    int outputs = acc->outputs;
    float threshold = acc->logits ? 0.0f : 0.5f;
    for (int b = 0; b < batch; b++) {
        const float *row = output + (size_t)b * outputs;
        const float *target = targets + (size_t)b * outputs;
        bool all_right = true;
        for (int j = 0; j < outputs; j++) {
            bool predicted = row[j] > threshold, positive = target[j] >= 0.5f;
            label_counts *counts = &acc->labels[j];
            counts->true_positive += predicted && positive;
            counts->false_positive += predicted && !positive;
            counts->false_negative += !predicted && positive;
            all_right = all_right && predicted == positive;
        }
        acc->all_right += all_right;
        if (acc->samples) {
            acc->samples[acc->count + b] = (scored_sample){row[0], target[0] >= 0.5f};
            acc->nan_scores += isnan(row[0]) != 0;
        }
    }
}

static void add_values(nn_metrics_acc *acc, const float *output, const float *targets, int batch) {
    int outputs = acc->outputs;
    for (int b = 0; b < batch; b++) {
        const float *row = output + (size_t)b * outputs;
        const float *target = targets + (size_t)b * outputs;
        double samples = (double)(acc->count + b + 1);
        for (int j = 0; j < outputs; j++) {
            output_sums *sums = &acc->sums[j];
            double value = target[j];
            double deviation = value - sums->mean;
            sums->mean += deviation / samples;
            sums->squares += deviation * (value - sums->mean);
            double error = (double)row[j] - value;
            sums->squared_errors += error * error;
            acc->absolute_errors += fabs(error);
        }
    }
}

int nn_metrics_acc_add(nn_metrics_acc *acc, const float *output, const nn_targets *targets, int batch,
                       const double *numerator, const double *denominator, nn_error *err) {
    if (batch < 0) return nn_error_set(err, NN_ERR_RUNTIME, "metrics: a batch of %d samples", batch);
    if (batch > acc->capacity - acc->count)
        return nn_error_set(err, NN_ERR_RUNTIME,
                            "metrics: %d more samples would make %lld, but the accumulator was made for %lld",
                            batch, (long long)(acc->count + batch), (long long)acc->capacity);
    if (batch == 0) return 0;
    bool classes = acc->task == NN_TASK_CLASSIFICATION;
    if (!output || !targets || (classes ? !targets->labels : !targets->values))
        return nn_error_set(err, NN_ERR_RUNTIME, "metrics: a batch without its output or its %s",
                            classes ? "labels" : "target values");
    if (!numerator != !denominator)
        return nn_error_set(err, NN_ERR_RUNTIME, "metrics: the loss's numerators without its denominators");
    if (numerator)
        for (int b = 0; b < batch; b++) {
            acc->loss_numerator += numerator[b];
            acc->loss_denominator += denominator[b];
        }
    switch (acc->task) {
    case NN_TASK_CLASSIFICATION: add_classes(acc, output, targets->labels, batch); break;
    case NN_TASK_BINARY:
    case NN_TASK_MULTILABEL: add_labels(acc, output, targets->values, batch); break;
    case NN_TASK_REGRESSION: add_values(acc, output, targets->values, batch); break;
    }
    acc->count += batch;
    return 0;
}

/* zero_division=0, as sklearn's. */
static double ratio(int64_t numerator, int64_t denominator) {
    return denominator ? (double)numerator / (double)denominator : 0.0;
}

/* 2 TP / (2 TP + FP + FN), which is 2 PR / (P + R) whenever that is
 * defined, and 0, as sklearn's zero_division=0, when no sample is positive
 * or predicted positive. */
static double f1_score(const label_counts *counts) {
    return ratio(2 * counts->true_positive,
                 2 * counts->true_positive + counts->false_positive + counts->false_negative);
}

static int compare_scores(const void *a, const void *b) {
    float x = ((const scored_sample *)a)->score, y = ((const scored_sample *)b)->score;
    return (x > y) - (x < y);
}

/* The Mann-Whitney U of the positives over the negatives, divided by the
 * number of pairs: the fraction of (positive, negative) pairs ranked right,
 * a tie counting half, as sklearn's roc_auc_score. After sorting, each run
 * of equal scores is a tie group: its positives beat every negative below
 * it and tie with the group's own negatives. The order within a group does
 * not matter, so neither does qsort's instability. */
static double roc_auc(scored_sample *samples, int64_t count, int64_t nan_scores) {
    if (nan_scores) return NAN;   /* unordered: no ranking to measure */
    qsort(samples, (size_t)count, sizeof *samples, compare_scores);
    int64_t positives = 0, negatives_below = 0;
    double twice_u = 0;
    for (int64_t i = 0; i < count;) {
        int64_t group_positives = 0, group_negatives = 0;
        float score = samples[i].score;
        for (; i < count && samples[i].score == score; i++) {
            group_positives += samples[i].positive;
            group_negatives += !samples[i].positive;
        }
        twice_u += (double)group_positives * (double)(2 * negatives_below + group_negatives);
        positives += group_positives;
        negatives_below += group_negatives;
    }
    if (positives == 0 || negatives_below == 0) return NAN;
    return twice_u / (2.0 * (double)positives * (double)negatives_below);
}

static void finish_binary(nn_metrics_acc *acc, nn_metrics *metrics) {
    const label_counts *counts = &acc->labels[0];
    int64_t wrong = counts->false_positive + counts->false_negative;
    metrics->accuracy = ratio(acc->count - wrong, acc->count);
    metrics->precision = ratio(counts->true_positive, counts->true_positive + counts->false_positive);
    metrics->recall = ratio(counts->true_positive, counts->true_positive + counts->false_negative);
    metrics->f1 = f1_score(counts);
    metrics->roc_auc = roc_auc(acc->samples, acc->count, acc->nan_scores);
}

static void finish_multilabel(const nn_metrics_acc *acc, nn_metrics *metrics) {
    label_counts total = {0, 0, 0};
    double f1_sum = 0;
    for (int j = 0; j < acc->outputs; j++) {
        const label_counts *counts = &acc->labels[j];
        total.true_positive += counts->true_positive;
        total.false_positive += counts->false_positive;
        total.false_negative += counts->false_negative;
        f1_sum += f1_score(counts);
    }
    int64_t values = acc->count * acc->outputs;
    metrics->accuracy = ratio(acc->all_right, acc->count);
    metrics->label_accuracy = ratio(values - total.false_positive - total.false_negative, values);
    metrics->micro_f1 = f1_score(&total);
    metrics->macro_f1 = f1_sum / acc->outputs;
}

static void finish_regression(const nn_metrics_acc *acc, nn_metrics *metrics) {
    double squared_errors = 0, weighted_errors = 0, squares = 0;
    for (int j = 0; j < acc->outputs; j++) {
        const output_sums *sums = &acc->sums[j];
        squared_errors += sums->squared_errors;
        squares += sums->squares;
        /* sklearn's variance_weighted gives an output with equal targets
         * weight SST_j = 0: its errors drop out with it. Welford's squares
         * are exactly 0 for equal targets, so the test is exact. */
        if (sums->squares != 0) weighted_errors += sums->squared_errors;
    }
    double values = (double)acc->count * acc->outputs;
    metrics->mse = values > 0 ? squared_errors / values : 0.0;
    metrics->rmse = sqrt(metrics->mse);
    metrics->mae = values > 0 ? acc->absolute_errors / values : 0.0;
    metrics->r2 = squares > 0 ? 1 - weighted_errors / squares : NAN;
}

bool nn_metrics_acc_finish(nn_metrics_acc *acc, nn_metrics *metrics, int64_t *confusion) {
    *metrics = (nn_metrics){.task = acc->task, .count = acc->count};
    metrics->loss = acc->loss_denominator != 0 ? acc->loss_numerator / acc->loss_denominator : 0.0;
    switch (acc->task) {
    case NN_TASK_CLASSIFICATION:
        metrics->accuracy = ratio(acc->correct, acc->labelled);
        break;
    case NN_TASK_BINARY: finish_binary(acc, metrics); break;
    case NN_TASK_MULTILABEL: finish_multilabel(acc, metrics); break;
    case NN_TASK_REGRESSION: finish_regression(acc, metrics); break;
    }
    if (!confusion || !acc->confusion) return false;
    memcpy(confusion, acc->confusion, (size_t)acc->outputs * acc->outputs * sizeof *confusion);
    return true;
}

static const char *const classification_names[] = {"loss", "accuracy"};
static const char *const binary_names[] = {"loss", "accuracy", "precision", "recall", "f1", "roc_auc"};
static const char *const multilabel_names[] = {"loss", "accuracy", "label_accuracy", "micro_f1", "macro_f1"};
static const char *const regression_names[] = {"loss", "mse", "rmse", "mae", "r2"};

#define COUNT(list) ((int)(sizeof(list) / sizeof(list)[0]))

/* Indexed by nn_task. */
static const struct {
    const char *const *names;
    int count;
} task_names[] = {
    {classification_names, COUNT(classification_names)},
    {binary_names, COUNT(binary_names)},
    {multilabel_names, COUNT(multilabel_names)},
    {regression_names, COUNT(regression_names)},
};

int nn_metrics_names(nn_task task, const char *const **names) {
    if ((unsigned)task >= sizeof task_names / sizeof task_names[0]) {
        *names = NULL;
        return 0;
    }
    *names = task_names[task].names;
    return task_names[task].count;
}

static const struct {
    const char *name;
    size_t offset;
} fields[] = {
    {"loss", offsetof(nn_metrics, loss)},
    {"accuracy", offsetof(nn_metrics, accuracy)},
    {"label_accuracy", offsetof(nn_metrics, label_accuracy)},
    {"precision", offsetof(nn_metrics, precision)},
    {"recall", offsetof(nn_metrics, recall)},
    {"f1", offsetof(nn_metrics, f1)},
    {"roc_auc", offsetof(nn_metrics, roc_auc)},
    {"micro_f1", offsetof(nn_metrics, micro_f1)},
    {"macro_f1", offsetof(nn_metrics, macro_f1)},
    {"mse", offsetof(nn_metrics, mse)},
    {"rmse", offsetof(nn_metrics, rmse)},
    {"mae", offsetof(nn_metrics, mae)},
    {"r2", offsetof(nn_metrics, r2)},
};

double nn_metrics_value(const nn_metrics *metrics, const char *name) {
    const char *const *names;
    int count = nn_metrics_names(metrics->task, &names);
    bool of_task = false;
    for (int i = 0; i < count && !of_task; i++) of_task = strcmp(names[i], name) == 0;
    if (!of_task) return NAN;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (strcmp(fields[i].name, name) == 0) {
            /* x86 makes 0/0 a NaN with the sign bit set, which printf shows
             * as "-nan": every NaN leaves here as the plain one. */
            double value = *(const double *)((const char *)metrics + fields[i].offset);
            return isnan(value) ? NAN : value;
        }
    return NAN;
}
