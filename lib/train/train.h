/* Training and evaluation of a Sequential model on an IDX data set.
 *
 * The trainer owns the model, the optimiser, the training data (kept as
 * bytes; a batch is turned into floats only when it is used, so memory grows
 * with the batch, not the data set) and every random stream besides the
 * model's: the per-epoch shuffle. Same config, same seed and same thread
 * count give bit-identical results, across a checkpoint and resume too. */
#ifndef NNSEQ_TRAIN_H
#define NNSEQ_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "core/error.h"
#include "data/idx.h"
#include "losses/loss.h"
#include "core/model.h"
#include "optim/optimizer.h"

/* Samples per batch when evaluating a model that has no room reserved yet
 * (eval, predict); training evaluates in its own batch size. */
#define NN_EVAL_BATCH 256

typedef struct nn_metrics {
    double loss;       /* mean over samples */
    double accuracy;   /* fraction whose argmax is the label */
    int count;         /* samples */
} nn_metrics;

typedef struct nn_epoch_report {
    int epoch;                 /* 1-based number of the epoch just finished */
    int epochs;                /* the run's total */
    double lr;                 /* learning rate used this epoch */
    nn_metrics train;
    bool has_val;
    nn_metrics val;
    double seconds;            /* wall time of the training pass */
    double samples_per_second;
    bool improved;             /* early stopping: best validation loss so far */
    bool stop;                 /* early stopping: patience exhausted */
} nn_epoch_report;

/* Called after every batch: samples done this epoch, of total, and the mean
 * training loss so far. */
typedef void (*nn_progress_fn)(void *user, int done, int total, double running_loss);

/* How a pixel byte becomes the model's input: byte / 255, then
 * (x - mean) / std when the config normalises; in float32 and in that
 * order, as torch_ref.py's numpy does it. */
typedef struct nn_pixel_transform {
    bool normalize;
    float mean, std;
} nn_pixel_transform;

void nn_pixel_transform_init(nn_pixel_transform *table, const nn_config *config);

typedef struct nn_trainer {
    const nn_config *config;   /* borrowed; must outlive the trainer */
    nn_model *model;
    nn_optimizer optimizer;
    nn_dataset data;           /* the training file: first train_count samples train, the rest validate */
    nn_dataset test;           /* the test split, read and checked before training (count 0: none) */
    int train_count, val_count;
    int classes;               /* the model's outputs */
    nn_pixel_transform pixels;
    nn_rng shuffle_rng;
    int epoch;                 /* epochs completed */
    double best_val_loss;      /* early stopping */
    int bad_epochs;
    uint32_t *order;           /* this epoch's sample order */
    uint8_t *labels;           /* the current batch's labels */
} nn_trainer;

/* Loads the training data, builds the model (input shape from the config or
 * the data, which must agree), checks the loss against the labels, reads
 * and checks the test split against the model, and sets up the optimiser. With config->init, starts from those .npz weights. */
nn_trainer *nn_trainer_create(const nn_config *config, nn_error *err);
void nn_trainer_free(nn_trainer *trainer);

/* Trains one epoch and evaluates on the validation split. */
int nn_trainer_epoch(nn_trainer *trainer, nn_epoch_report *report, nn_progress_fn progress,
                     void *progress_user, nn_error *err);

/* The model's input shape for a data set: (C, H, W) from the images. */
nn_shape nn_dataset_shape(const nn_dataset *set);

/* Whether set's images fit the model's input (same number of values per
 * sample); NN_ERR_INPUT naming images_path and both shapes if not. */
int nn_dataset_check_input(const nn_dataset *set, const nn_model *model, const char *images_path, nn_error *err);

/* Evaluates samples [first, first + count) of set, in batches of the
 * model's reserved size (NN_EVAL_BATCH if none). confusion, unless NULL,
 * receives classes x classes counts (row = label, column = prediction). */
int nn_evaluate(nn_model *model, const nn_loss_kind *loss, const nn_pixel_transform *pixels,
                const nn_dataset *set, int first, int count, nn_metrics *metrics, int64_t *confusion,
                nn_error *err);

/* Converts items [first, first + count) of images (or the indexes in order,
 * when order is not NULL) into the model's input buffer. */
void nn_gather_batch(float *input, const nn_pixel_transform *pixels, const uint8_t *images, size_t item_size,
                     const uint32_t *order, int first, int count);

#endif
