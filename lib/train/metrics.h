/* Metrics that fit the task, accumulated batch by batch over a split.
 *
 * The task follows from the loss and the targets (nn_task_for):
 * - classification (cross_entropy, nll): accuracy of the argmax;
 * - binary (bce, bce_with_logits, one output): accuracy, precision, recall
 *   and F1 of the positive class at probability > 0.5 (logit > 0), and ROC
 *   AUC over the scores (ties counted half, as sklearn's roc_auc_score);
 * - multi-label (the same losses, several outputs): subset accuracy (every
 *   label right), per-label accuracy (right labels / all labels), micro F1
 *   (over all labels' counts) and macro F1 (mean of per-label F1s);
 * - regression and reconstruction (mse, l1, smooth_l1, huber, or any loss
 *   with target: input): MSE, RMSE, MAE over every value, and R^2 =
 *   1 - SSE / SST summed over outputs (sklearn's multioutput=
 *   'variance_weighted'; the plain R^2 for one output).
 * A target counts as positive when it is >= 0.5. A ratio with nothing to
 * divide (precision with no positive prediction, AUC with one class) is 0,
 * as sklearn's zero_division=0, except roc_auc and r2, which are NaN then
 * and printed as such. The loss is sum(numerators) / sum(denominators) of
 * nn_loss_batch, so it is the same whatever the batch size. */
#ifndef NNSEQ_METRICS_H
#define NNSEQ_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "losses/loss.h"

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

/* The task of a model trained with loss on outputs values per sample;
 * target_is_input: an autoencoder (always regression). */
nn_task nn_task_for(const nn_loss_kind *loss, int outputs, bool target_is_input);
/* "classification", "binary", "multi-label", "regression". */
const char *nn_task_name(nn_task task);

typedef struct nn_metrics_acc nn_metrics_acc;

/* An accumulator for up to capacity samples (binary ROC AUC keeps every
 * score; the others keep sums). logits: the outputs are logits
 * (bce_with_logits), so the decision threshold is 0, not 0.5. */
nn_metrics_acc *nn_metrics_acc_create(nn_task task, int outputs, bool logits, int64_t capacity, nn_error *err);
void nn_metrics_acc_free(nn_metrics_acc *acc);
/* Starts over (same task and capacity). */
void nn_metrics_acc_reset(nn_metrics_acc *acc);
/* Adds a batch: output (batch x outputs), its targets (labels for
 * classification, values otherwise), and nn_loss_batch's per-sample
 * numerator and denominator. Returns -1 with err set when more than
 * capacity samples are added. */
int nn_metrics_acc_add(nn_metrics_acc *acc, const float *output, const nn_targets *targets, int batch,
                       const double *numerator, const double *denominator, nn_error *err);
/* The metrics of everything added so far. Classification also fills
 * confusion (outputs x outputs, row = label, column = prediction) unless
 * it is NULL. */
void nn_metrics_acc_finish(const nn_metrics_acc *acc, nn_metrics *metrics, int64_t *confusion);

/* The names of the metrics of a task, loss first, in the order the outputs
 * print them ("loss", "accuracy", "precision", ...), and each one's value. */
int nn_metrics_names(nn_task task, const char *const **names);
double nn_metrics_value(const nn_metrics *metrics, const char *name);

#endif
