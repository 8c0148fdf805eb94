/* The fit loop: epochs until the config's count or early stopping, the
 * learning-rate schedule (inside nn_trainer_epoch), validation, the
 * checkpoint policy (after every epoch; with early stopping also the best
 * epoch's) and the test split at the end. What is printed and how a
 * checkpoint is written are the caller's (callbacks), so lib/train knows
 * neither the terminal nor a file format. */
#ifndef NNSEQ_FIT_H
#define NNSEQ_FIT_H

#include <stdbool.h>

#include "train/train.h"

typedef struct nn_fit_callbacks {
    void *user;
    /* Before each epoch (1-based number): a progress bar restarts. May be NULL. */
    void (*epoch_start)(void *user, int epoch);
    nn_progress_fn progress;   /* per batch; may be NULL */
    /* Asked after every step and after every epoch's checkpoint: true ends
     * the run there with a checkpoint (save) that --resume continues from
     * exactly, mid-epoch too. May be NULL. */
    nn_stop_fn should_stop;
    /* After each epoch, with its report; before that epoch's checkpoint.
     * -1 with err set (a write failed) ends the run. May be NULL. */
    int (*epoch_end)(void *user, const nn_epoch_report *report, nn_error *err);
    /* Writes the trainer's state: best is false for the run's checkpoint
     * (after every epoch), true for the best epoch's under early stopping.
     * NULL: nothing is saved. */
    int (*save)(void *user, const nn_trainer *trainer, bool best, nn_error *err);
} nn_fit_callbacks;

typedef struct nn_fit_result {
    int epochs_run;            /* in this call (0 when the run had already finished) */
    bool stopped_early;        /* early stopping ended it */
    int stop_epoch;            /* the epoch it stopped after */
    bool interrupted;          /* should_stop ended it (saved unless save is NULL) */
    int interrupted_epoch;     /* the epoch it stopped in (1-based) */
    int interrupted_position;  /* samples of that epoch trained (0: at its start, the epoch before finished) */
    bool has_test;
    nn_metrics test;           /* the test split after the last epoch */
} nn_fit_result;

/* Trains from the trainer's epoch to the config's epochs. A run that has
 * nothing left to train still saves once (so a --resume with a new path
 * writes it) and still evaluates the test split. */
int nn_fit(nn_trainer *trainer, const nn_fit_callbacks *callbacks, nn_fit_result *result, nn_error *err);

#endif
