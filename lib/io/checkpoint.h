/* What a checkpoint holds (docs/checkpoint.md): the config text it was
 * trained from, the model's state_dict, the optimiser state, the epoch, the
 * random streams and the early-stopping state, as named arrays in the
 * container of container.h; normalize: auto's statistics as data.mean and
 * data.std, one float per input value. */
#ifndef NNSEQ_CHECKPOINT_H
#define NNSEQ_CHECKPOINT_H

#include "config/config.h"
#include "core/error.h"
#include "core/model.h"
#include "train/train.h"

/* Writes everything the trainer needs to go on, atomically. */
int nn_checkpoint_save(const char *path, const nn_trainer *trainer, nn_error *err);

/* A checkpoint read back for eval, predict, print and export. */
typedef struct nn_checkpoint {
    nn_config config;   /* parsed from the stored text */
    nn_model *model;    /* built from it, weights loaded */
    nn_input_transform transform;   /* how inputs were normalised in training (stored for normalize: auto) */
    int epoch;          /* epochs completed */
    nn_array *arrays;   /* everything in the file */
    size_t array_count;
} nn_checkpoint;

int nn_checkpoint_load(nn_checkpoint *checkpoint, const char *path, nn_error *err);

/* Only the stored (effective) config, for `train --resume CKPT` without a
 * CONFIG and for comparing a new config against what trained. */
int nn_checkpoint_read_config(nn_config *cfg, const char *path, nn_error *err);
void nn_checkpoint_free(nn_checkpoint *checkpoint);

/* Puts the trainer where the checkpoint left off: weights, buffers,
 * optimiser state, epoch, random streams. The trainer's config must build
 * the same model and use the same optimiser. */
int nn_trainer_resume(nn_trainer *trainer, const char *path, nn_error *err);

#endif
