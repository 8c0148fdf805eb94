/* Losses: one file per loss in lib/losses/, one entry in lib/loss.c's table. A loss reads the
 * model's output for a batch and the integer labels, returns the mean loss
 * over the batch and writes dLoss/dOutput (already divided by the batch
 * size, as torch's reduction='mean'). */
#ifndef NNSEQ_LOSS_H
#define NNSEQ_LOSS_H

#include <stdint.h>

#include "core/error.h"
#include "core/shape.h"

typedef struct nn_loss_kind {
    const char *name;   /* "cross_entropy", "nll", "mse" */
    const char *alias;  /* torch.nn's class name, accepted in configs too: "CrossEntropyLoss"; may be NULL */
    /* Checks that the model's per-sample output shape suits this loss with
     * classes labels (0..classes-1); message without location. */
    int (*check)(nn_shape output_shape, int classes, nn_error *err);
    /* Returns the mean loss; writes grad (batch x outputs) unless it is NULL.
     * sample_losses, unless NULL, receives each sample's loss. */
    double (*compute)(float *grad, float *sample_losses, const float *output, const uint8_t *labels,
                      int batch, int outputs);
} nn_loss_kind;

const nn_loss_kind *nn_loss_kind_find(const char *name);
const nn_loss_kind *const *nn_loss_kinds(int *count);

#endif
