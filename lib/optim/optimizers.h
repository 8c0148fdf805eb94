/* Every optimiser nnseq knows: one file each in this folder (Adam and AdamW
 * share one), listed in lib/optimizer.c's table. */
#ifndef NNSEQ_OPTIMIZERS_H
#define NNSEQ_OPTIMIZERS_H

#include "optim/optimizer.h"

extern const nn_optimizer_kind nn_sgd_kind;
extern const nn_optimizer_kind nn_adam_kind;
extern const nn_optimizer_kind nn_adamw_kind;

#define COUNT_OF(array) ((int)(sizeof(array) / sizeof((array)[0])))

/* For check functions: "NAME must be >= 0" unless value >= 0 (NaN fails). */
int nn_check_not_negative(const char *name, double value, nn_error *err);

#endif
