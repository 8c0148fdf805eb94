/* Losses: one file per loss in lib/losses/, one entry in loss.c's table.
 *
 * A loss reads the model's output for a batch and the batch's targets:
 * class indices (cross_entropy, nll) or rows of float values (bce,
 * bce_with_logits, mse, l1, smooth_l1, huber). It writes, per sample, the
 * numerator and the denominator of torch's reduction='mean': the loss of a
 * batch, or of a whole split, is sum(numerators) / sum(denominators), which
 * is what torch computes for that batch or split at once (class weights and
 * ignore_index included: cross_entropy's denominator is the weight of the
 * sample's class, 0 when ignored; mse's is the number of outputs). The
 * trainer divides the gradient by the batch's denominator; the loss writes
 * d(numerator)/d(output), undivided. Arguments are torch's, in an argument
 * table; a loss's one list argument (weight, pos_weight) may be as long as
 * the model has outputs and lives in nn_loss.vector.
 *
 * Where nnseq differs from torch 1.13, on purpose: a batch whose
 * denominators sum to 0 (every sample ignored, or only zero-weight
 * classes) has loss 0 and gradient 0, not NaN; smooth_l1 with beta 0 has
 * l1's gradient 0 where output == target (torch's smooth_l1 kernel gives
 * -1 there, its l1_loss 0); label_smoothing below 0 is refused (torch
 * 1.13 checks only <= 1), and so are negative weights. BCE's inputs must be
 * probabilities as torch requires, but a value outside [0, 1] gives NaN
 * rather than an error (compute cannot fail). bce_with_logits has
 * pos_weight but not torch's second list, weight. */
#ifndef NNSEQ_LOSS_H
#define NNSEQ_LOSS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/args.h"
#include "core/error.h"
#include "core/shape.h"

typedef enum nn_loss_target {
    NN_LOSS_CLASSES,   /* one class index per sample */
    NN_LOSS_VALUES     /* one float per output per sample */
} nn_loss_target;

/* A batch's targets: labels[batch] for NN_LOSS_CLASSES, values[batch x
 * outputs] for NN_LOSS_VALUES (the other is NULL). */
typedef struct nn_targets {
    const int32_t *labels;
    const float *values;
} nn_targets;

typedef struct nn_loss nn_loss;

typedef struct nn_loss_kind {
    const char *name;   /* "cross_entropy", "bce_with_logits", ... */
    const char *alias;  /* torch.nn's class name, accepted in configs too: "CrossEntropyLoss"; may be NULL */
    nn_loss_target target;
    const nn_arg_spec *args;  /* scalar arguments (label_smoothing, beta, ...) */
    int arg_count;
    const char *vector_arg;   /* the list argument ("weight", "pos_weight"), NULL if none */
    /* NN_LOSS_VALUES: the range every target value must lie in ([0, 1] for
     * bce, as torch checks), for the dataset's value_range; NULL: any. */
    const double *target_range;
    /* Whether the model's output suits the loss and its arguments:
     * output_shape is per sample (class losses: rank 1, at least 2
     * outputs); loss->vector (if given) must have one value per output
     * (pos_weight: or one for all), each finite and >= 0; scalar arguments
     * in torch's range. The message names the argument but has no location
     * (the caller adds it). */
    int (*check)(const nn_loss *loss, nn_shape output_shape, nn_error *err);
    /* Per sample b: numerator[b] and denominator[b] as above; grad, unless
     * NULL, receives d numerator / d output (batch x outputs). outputs is
     * the size of output_shape. Labels are in [0, outputs) or equal
     * ignore_index (the dataset checks); any other label gives that sample
     * a NaN numerator (and a zero gradient) rather than a read out of
     * bounds. Neither numerator nor denominator may be NULL. */
    void (*compute)(const nn_loss *loss, const float *output, const nn_targets *targets, int batch, int outputs,
                    float *grad, double *numerator, double *denominator);
} nn_loss_kind;

/* A loss as configured: its kind, its arguments (indexed like kind->args,
 * defaults filled in) and its list argument. */
struct nn_loss {
    const nn_loss_kind *kind;
    nn_arg_value args[NN_MAX_ARGS];
    float *vector;       /* owned by whoever filled it (the config); NULL: not given */
    int vector_count;
};

/* The registry (loss.c; core/registry.h says what each does). */
const nn_loss_kind *nn_loss_kind_find(const char *name);   /* by name or alias */
const nn_loss_kind *const *nn_loss_kind_list(int *count);
int nn_loss_kind_names(const char **names, int max, int *shown);

/* The loss of a batch, the gradient divided by the batch's denominator as
 * torch's mean does: returns sum(numerator) / sum(denominator), 0 (and a
 * zero gradient) when the denominator is 0 (every sample ignored, where
 * torch would give NaN). grad, numerator, denominator as for compute;
 * numerator and denominator must not be NULL. */
double nn_loss_batch(const nn_loss *loss, const float *output, const nn_targets *targets, int batch, int outputs,
                     float *grad, double *numerator, double *denominator);

/* The value of scalar argument name (its default when not given, so a
 * zero-initialised nn_loss with only kind set is the loss with torch's
 * defaults); NaN when the kind has no such argument. */
double nn_loss_arg(const nn_loss *loss, const char *name);

/* Whether label is the loss's ignore_index (false for losses without one):
 * such samples count for nothing, so the dataset must accept that label. */
bool nn_loss_ignores_label(const nn_loss *loss, int32_t label);

#endif
