/* Learning-rate schedules, stepped once per epoch, with
 * torch.optim.lr_scheduler's names and closed forms:
 *   step       lr = base * gamma^floor(epoch / step_size)
 *   multistep  lr = base * gamma^(number of milestones <= epoch)
 *   cosine     lr = eta_min + (base - eta_min) (1 + cos(pi epoch / T_max)) / 2
 * where epoch counts completed epochs (0 for the first). */
#ifndef NNSEQ_SCHEDULER_H
#define NNSEQ_SCHEDULER_H

#include "core/args.h"
#include "core/error.h"

typedef struct nn_scheduler_kind {
    const char *name;   /* "step", "multistep", "cosine" */
    const char *alias;  /* torch's class name, accepted in configs too: "StepLR"; may be NULL */
    const nn_arg_spec *args;
    int arg_count;
    int (*check)(const nn_arg_value *args, nn_error *err);
    double (*lr_at)(const nn_arg_value *args, double base_lr, int epoch);
} nn_scheduler_kind;

/* The registry (scheduler.c; core/registry.h says what each does). */
const nn_scheduler_kind *nn_scheduler_kind_find(const char *name);
const nn_scheduler_kind *const *nn_scheduler_kind_list(int *count);
int nn_scheduler_kind_names(const char **names, int max, int *shown);

#endif
