/* What a checkpoint holds (docs/checkpoint.md): the config text it was
 * trained from, the model's state_dict, the optimiser state, the epoch, the
 * random streams and the early-stopping state, as named arrays in the
 * container of container.h; normalize: auto's statistics as data.mean and
 * data.std, one float per input value. */
#ifndef NNSEQ_CHECKPOINT_H
#define NNSEQ_CHECKPOINT_H

#include <stdbool.h>

#include "config/config.h"
#include "core/error.h"
#include "core/model.h"
#include "train/train.h"

/* Writes everything the trainer needs to go on, atomically. */
int nn_checkpoint_save(const char *path, const nn_trainer *trainer, nn_error *err);

/* One epoch of a run as the trainer reported it (nn_epoch_report): what
 * `nnseq plot CKPT` draws and `nnseq diff` compares. */
typedef struct nn_epoch_record {
    int epoch;              /* 1-based */
    double lr, seconds, samples_per_second;
    nn_metrics train;
    bool has_val;
    nn_metrics val;
} nn_epoch_record;

/* A checkpoint read back for eval, predict, print and export. */
typedef struct nn_checkpoint {
    nn_config config;   /* parsed from the stored text */
    nn_model *model;    /* built from it, weights loaded */
    nn_input_transform transform;   /* how inputs were normalised in training (stored for normalize: auto) */
    int epoch;          /* epochs completed */
    nn_array *arrays;   /* everything in the file */
    size_t array_count;
    /* Every epoch trained so far, oldest first (history_count 0 for a
     * checkpoint written before nnseq kept it); owned. */
    nn_epoch_record *history;
    int history_count;
} nn_checkpoint;

/* NaN or infinite weights, buffers or optimiser state are an error naming
 * the entry, unless allow_nonfinite. */
int nn_checkpoint_load(nn_checkpoint *checkpoint, const char *path, bool allow_nonfinite, nn_error *err);

/* Only the stored (effective) config, for `train --resume CKPT` without a
 * CONFIG and for comparing a new config against what trained. */
int nn_checkpoint_read_config(nn_config *cfg, const char *path, nn_error *err);
void nn_checkpoint_free(nn_checkpoint *checkpoint);

/* How a resume treats what does not match. */
typedef struct nn_resume_options {
    /* --resume-anyway: data that differs from what the checkpoint trained
     * on is let through (and recorded in the next checkpoint) instead of
     * refused. */
    bool anyway;
    const char *config_difference;   /* what the caller let through of the config, recorded too; may be NULL */
    bool allow_nonfinite;            /* NaN/Inf weights or state are not an error */
} nn_resume_options;

/* Puts the trainer where the checkpoint left off, in the middle of an
 * epoch too: weights, buffers, optimiser state, epoch and position in it,
 * the epoch's running sums, random streams. The trainer's config must
 * build the same model and use the same optimiser; the data must have the
 * fingerprint stored at training (sizes and CRCs), else NN_ERR_INPUT naming
 * old and new, unless options->anyway. Every stored count is range-checked. */
int nn_trainer_resume(nn_trainer *trainer, const char *path, const nn_resume_options *options, nn_error *err);

#endif
