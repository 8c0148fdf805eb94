/* Metrics that fit the task, accumulated batch by batch over a split.
 *
 * The task follows from the loss and the targets (nn_task_for):
 * - classification (cross_entropy, nll): accuracy of the argmax (the first
 *   of equal maxima wins) and the confusion matrix;
 * - binary (bce, bce_with_logits, one output): accuracy, precision, recall
 *   and F1 of the positive class at probability > 0.5 (logit > 0), and ROC
 *   AUC over the scores (ties counted half, as sklearn's roc_auc_score);
 * - multi-label (the same losses, several outputs): subset accuracy (every
 *   label right), per-label accuracy (right labels / all labels), micro F1
 *   (over all labels' counts) and macro F1 (mean of per-label F1s);
 * - regression and reconstruction (mse, l1, smooth_l1, huber, or any loss
 *   with target: input): MSE, RMSE, MAE over every value, and R^2 as
 *   sklearn's r2_score(multioutput='variance_weighted'): 1 - SSE / SST,
 *   both summed over outputs, except that an output whose targets are all
 *   equal (SST 0 there, as the border pixels of an autoencoder's images)
 *   has weight 0, so its SSE does not count either; the plain R^2 for one
 *   output.
 * A target counts as positive when it is >= 0.5. A ratio with nothing to
 * divide (precision with no positive prediction, any metric of no samples)
 * is 0, as sklearn's zero_division=0, except roc_auc (fewer than two
 * classes present, or a NaN score) and r2 (every target of every output
 * equal, or fewer than two samples), which are NaN then and printed as
 * such; sklearn's r2 would say 1 or 0 there (force_finite), which measures
 * nothing. The loss is sum(numerators) / sum(denominators) of nn_loss_batch
 * (0 when the denominators sum to 0), so it is the same whatever the batch
 * size; so is every metric: the same samples added in batches of any size
 * give bit-identical metrics. */
#ifndef NNSEQ_METRICS_H
#define NNSEQ_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "losses/loss.h"

/* Classification keeps the confusion matrix (outputs x outputs counts, 8 MB
 * at this size) only up to this many outputs. */
#define NN_METRICS_CONFUSION_MAX 1024

typedef enum nn_task {
    NN_TASK_CLASSIFICATION,
    NN_TASK_BINARY,
    NN_TASK_MULTILABEL,
    NN_TASK_REGRESSION
} nn_task;

typedef struct nn_metrics {
    nn_task task;
    int64_t count;          /* samples */
    double loss;
    double accuracy;        /* classification, binary; multi-label: subset accuracy */
    double label_accuracy;  /* multi-label */
    double precision, recall, f1, roc_auc;   /* binary */
    double micro_f1, macro_f1;               /* multi-label */
    double mse, rmse, mae, r2;               /* regression */
} nn_metrics;

/* The task of a model trained with loss on outputs values per sample:
 * classification for class targets, binary (one output) or multi-label
 * (more) for bce and bce_with_logits, regression for the other value
 * losses; target_is_input: an autoencoder, always regression (loss may then
 * be NULL). */
nn_task nn_task_for(const nn_loss_kind *loss, int outputs, bool target_is_input);
/* "classification", "binary", "multi-label", "regression". */
const char *nn_task_name(nn_task task);

typedef struct nn_metrics_acc nn_metrics_acc;

/* An accumulator for up to capacity samples, any task (binary ROC AUC keeps
 * every score, 8 bytes a sample, allocated here; the others keep sums and
 * counts: per output, and the confusion matrix). outputs >= 1, and exactly
 * 1 for binary. logits: the outputs are logits (bce_with_logits), so the
 * decision threshold of binary and multi-label is 0, not 0.5; the other
 * tasks ignore it. */
nn_metrics_acc *nn_metrics_acc_create(nn_task task, int outputs, bool logits, int64_t capacity, nn_error *err);
void nn_metrics_acc_free(nn_metrics_acc *acc);
/* Starts over (same task and capacity). */
void nn_metrics_acc_reset(nn_metrics_acc *acc);
/* Adds a batch: output (batch x outputs), its targets (labels for
 * classification, values, batch x outputs, otherwise; for an autoencoder
 * the input), and nn_loss_batch's per-sample numerator and denominator
 * (both NULL: no loss, which stays 0). A label outside 0..outputs-1 (an
 * ignore_index) counts in neither the accuracy nor the confusion matrix.
 * Returns -1 with err set, having added nothing, when more than capacity
 * samples would have been added or a needed pointer is NULL. */
int nn_metrics_acc_add(nn_metrics_acc *acc, const float *output, const nn_targets *targets, int batch,
                       const double *numerator, const double *denominator, nn_error *err);
/* The metrics of everything added so far; more may be added afterwards.
 * Classification also fills confusion (outputs x outputs, row = label,
 * column = prediction) unless it is NULL, when it has at most
 * NN_METRICS_CONFUSION_MAX outputs: returns whether it did (otherwise
 * confusion is left untouched). Not const: binary sorts the kept scores in
 * place (their order is not part of the result), so two threads must not
 * finish one accumulator at once. */
bool nn_metrics_acc_finish(nn_metrics_acc *acc, nn_metrics *metrics, int64_t *confusion);

/* The accumulator's running state as two flat arrays, so that a checkpoint
 * taken in the middle of an epoch goes on with the same sums: counts
 * (int64: samples, labelled, correct, all_right, nan_scores, the confusion
 * matrix, the labels' counts, binary's positives) and sums (float64: the
 * loss's numerator and denominator, absolute errors, the outputs' sums,
 * binary's scores). Both malloc'ed, the caller frees them. */
int nn_metrics_acc_save(const nn_metrics_acc *acc, int64_t **counts, size_t *count_size, double **sums,
                        size_t *sum_size, nn_error *err);
/* Puts a saved state back into an accumulator of the same task, outputs
 * and enough capacity; NN_ERR_INPUT (nothing changed) when the sizes do
 * not fit it, a count is outside 0..samples, or binary's NaN count is not
 * that of its scores. */
int nn_metrics_acc_load(nn_metrics_acc *acc, const int64_t *counts, size_t count_size, const double *sums,
                        size_t sum_size, nn_error *err);

/* Adds everything other has accumulated to acc, as if other's samples had
 * been added after acc's own: how the ranks of a data-parallel run combine
 * their shards' metrics, in rank order (to another process, send the state
 * of nn_metrics_acc_save and nn_metrics_acc_load it into a fresh
 * accumulator of this task and outputs, of any capacity big enough, then
 * merge that). Counts and sums add, binary's scores are appended, the
 * regression targets' Welford sums combine by Chan et al.'s pairwise
 * formula (so within rounding of adding the samples one by one); an empty
 * side changes no bit. NN_ERR_RUNTIME, nothing changed, when the task,
 * outputs or logits differ or acc's capacity cannot hold the samples of
 * both. other may be acc itself. */
int nn_metrics_acc_merge(nn_metrics_acc *acc, const nn_metrics_acc *other, nn_error *err);

/* The names of the metrics of a task, loss first, in the order the outputs
 * print them ("loss", "accuracy", "precision", ...): the JSON keys. Returns
 * how many (0 and NULL for a task that is not one). */
int nn_metrics_names(nn_task task, const char *const **names);
/* The value of a metric by one of those names; NaN for a name that is not
 * one of metrics->task's. A NaN is always the positive one (printed "nan"). */
double nn_metrics_value(const nn_metrics *metrics, const char *name);

#endif
