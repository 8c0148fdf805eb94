/* Learning-rate schedules with torch.optim.lr_scheduler's names, arguments
 * and numbers. One file per schedule in this folder (sched_*.c), one entry
 * in scheduler.c's table.
 *
 * A schedule is a pure function of where training stands (nn_schedule_time)
 * for every kind but ReduceLROnPlateau, so a resumed run computes the same
 * rate from the step alone, and closed forms equal what torch reaches by
 * stepping (torch's _get_closed_form_lr, or its chainable rule where it has
 * none). torch steps most schedules once per epoch; per_step kinds
 * (OneCycleLR, CosineAnnealingWarmRestarts with its fractional epochs) are
 * stepped per batch in torch's examples, and nnseq changes their rate before
 * every optimiser step. ReduceLROnPlateau keeps state (best metric, bad
 * epochs, cooldown, the current rate), updated after each epoch's
 * validation and saved in checkpoints.
 *
 * SequentialLR holds child schedules (nn_schedule.children) and switches
 * from one to the next at its milestones, restarting each child's epoch
 * count at 0, as torch does. */
#ifndef NNSEQ_SCHEDULER_H
#define NNSEQ_SCHEDULER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/args.h"
#include "core/error.h"

#define NN_SCHEDULE_MAX_CHILDREN 8
#define NN_SCHEDULE_MAX_STATE 8

/* Where training stands when the rate for the next optimiser step is asked. */
typedef struct nn_schedule_time {
    int epoch;               /* epochs completed (0 during the first) */
    int64_t step;            /* optimiser steps completed, in all epochs */
    int64_t steps_per_epoch; /* optimiser steps in one epoch (>= 1) */
    int epochs;              /* epochs the run is for (train.epochs) */
} nn_schedule_time;

typedef struct nn_scheduler_kind nn_scheduler_kind;
typedef struct nn_schedule nn_schedule;

/* A schedule as configured: its kind, its arguments (indexed like
 * kind->args, defaults filled) and, for SequentialLR, its schedules. */
struct nn_schedule {
    const nn_scheduler_kind *kind;   /* NULL: constant learning rate */
    nn_arg_value args[NN_MAX_ARGS];
    int child_count;
    nn_schedule *children;           /* child_count entries (malloc'ed), owned with the parent */
};

struct nn_scheduler_kind {
    const char *name;   /* nnseq's name: "step", "multistep", "cosine", "onecycle", ... */
    const char *alias;  /* torch's class name, accepted in configs too: "StepLR"; may be NULL */
    const nn_arg_spec *args;
    int arg_count;
    /* The config lists its schedules under `schedulers:` (SequentialLR). */
    bool takes_children;
    /* Changes the rate every optimiser step rather than every epoch. */
    bool per_step;
    /* Checks the arguments (and children), message without location (the
     * parser adds it): "milestones must be increasing, got 3 after 5". */
    int (*check)(const nn_schedule *schedule, nn_error *err);
    /* The rate for the next step, from the optimiser's configured rate.
     * NULL for stateful kinds. */
    double (*lr_at)(const nn_schedule *schedule, double base_lr, const nn_schedule_time *time);
    /* The momentum for the next step (SGD's momentum, RMSprop's momentum,
     * beta1 of the Adam family) from the configured one (OneCycleLR's
     * cycle_momentum); NULL: the kind leaves it alone. */
    double (*momentum_at)(const nn_schedule *schedule, double base_momentum, const nn_schedule_time *time);

    /* Stateful kinds (ReduceLROnPlateau): state_count doubles, saved in the
     * checkpoint. state_init at the start of training; observe after each
     * epoch with the watched metric (the validation loss); lr_from_state is
     * the rate for the next epoch. */
    int state_count;
    void (*state_init)(const nn_schedule *schedule, double base_lr, double *state);
    void (*observe)(const nn_schedule *schedule, double *state, double metric);
    double (*lr_from_state)(const nn_schedule *schedule, const double *state);
};

/* The registry (scheduler.c; core/registry.h says what each does). */
const nn_scheduler_kind *nn_scheduler_kind_find(const char *name);
const nn_scheduler_kind *const *nn_scheduler_kind_list(int *count);
int nn_scheduler_kind_names(const char **names, int max, int *shown);

/* Whether the schedule changes the rate within an epoch (its kind or a child is per_step). */
bool nn_schedule_per_step(const nn_schedule *schedule);
/* Frees the children (recursively) of a schedule, not the schedule itself. */
void nn_schedule_clear(nn_schedule *schedule);
/* Deep copy of src into dst (children allocated); NN_ERR_RUNTIME on OOM. */
int nn_schedule_copy(nn_schedule *dst, const nn_schedule *src, nn_error *err);

#endif
