/* Every optimiser nnseq knows: one file each in this folder (Adam and AdamW
 * share one), listed in lib/optim/optimizer.c's table, and what their check
 * functions share. */
#ifndef NNSEQ_OPTIMIZERS_H
#define NNSEQ_OPTIMIZERS_H

#include "optim/optimizer.h"

extern const nn_optimizer_kind nn_sgd_kind;
extern const nn_optimizer_kind nn_adam_kind;
extern const nn_optimizer_kind nn_adamw_kind;
extern const nn_optimizer_kind nn_adadelta_kind;
extern const nn_optimizer_kind nn_adagrad_kind;
extern const nn_optimizer_kind nn_rmsprop_kind;
extern const nn_optimizer_kind nn_adamax_kind;
extern const nn_optimizer_kind nn_nadam_kind;
extern const nn_optimizer_kind nn_radam_kind;

#define COUNT_OF(array) ((int)(sizeof(array) / sizeof((array)[0])))

/* For check functions, with torch's conditions (NaN fails each):
 * "NAME must be >= 0, got V"; "NAME must be in [0, 1], got V";
 * "betas[i] must be in [0, 1), got V" for both betas. */
int nn_check_not_negative(const char *name, double value, nn_error *err);
int nn_check_unit_interval(const char *name, double value, nn_error *err);
int nn_check_betas(const nn_arg_value *betas, nn_error *err);

#endif
