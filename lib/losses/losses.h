/* Every loss nnseq knows: one file each in this folder, listed in
 * lib/loss.c's table. All use torch's reduction='mean'. */
#ifndef NNSEQ_LOSSES_H
#define NNSEQ_LOSSES_H

#include "losses/loss.h"

extern const nn_loss_kind nn_cross_entropy_kind;
extern const nn_loss_kind nn_nll_kind;
extern const nn_loss_kind nn_mse_kind;

/* The check of losses over class labels: a flat output with at least one
 * score per class. */
int nn_loss_check_classes(nn_shape shape, int classes, nn_error *err);

#endif
