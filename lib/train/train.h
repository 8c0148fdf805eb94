/* Training and evaluation of a Sequential model on a data set of any
 * format (the readers behind lib/data/source.h; the trainer sees only the
 * nn_dataset interface).
 *
 * The trainer owns the model, the optimiser, the training data (kept as
 * the file stored it, bytes or floats; a batch is turned into the model's
 * input only when it is used, so memory grows with the batch, not the data
 * set) and every random stream besides the model's: the per-epoch shuffle.
 * Same config, same seed and same thread count give bit-identical results,
 * across a checkpoint and resume too. */
#ifndef NNSEQ_TRAIN_H
#define NNSEQ_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "core/error.h"
#include "core/model.h"
#include "data/dataset.h"
#include "losses/loss.h"
#include "optim/optimizer.h"
#include "train/collective.h"
#include "train/engine.h"
#include "train/metrics.h"

/* Samples per batch when evaluating a model that has no size of its own
 * (predict). */
#define NN_EVAL_BATCH 256

/* The batch size validation, test and eval use: as large as fits in about
 * 32 MB of activations (large batches keep the products large), 1 to 1024,
 * whatever the training batch. train and eval use the same, so they print
 * the same numbers. */
int nn_eval_batch(const nn_model *model);

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
    bool interrupted;          /* stopped in the middle (nn_stop_fn): only epoch and position are set */
    int position;              /* interrupted: samples of the epoch trained */
} nn_epoch_report;

/* Asked after every training step: true stops the epoch there (a signal
 * arrived), leaving the trainer resumable from that step. */
typedef bool (*nn_stop_fn)(void *user);

/* Called after every batch: samples done this epoch, of total, and the mean
 * training loss so far. */
typedef void (*nn_progress_fn)(void *user, int done, int total, double running_loss);

typedef struct nn_trainer {
    const nn_config *config;   /* borrowed; must outlive the trainer */
    nn_model *model;
    nn_optimizer optimizer;
    nn_dataset data;           /* the training file (less a test tail): first train_count samples train, the rest validate */
    nn_dataset test;           /* the test split, read and checked before training (count 0: none) */
    int train_count, val_count;
    int outputs;               /* values the model outputs per sample */
    nn_task task;
    nn_input_transform transform;
    nn_rng shuffle_rng;
    int epoch;                 /* epochs completed */
    double best_val_loss;      /* early stopping */
    /* A schedule that watches the validation loss (ReduceLROnPlateau):
     * its state, saved in the checkpoint. */
    double schedule_state[NN_SCHEDULE_MAX_STATE];
    double base_momentum;      /* the optimiser's configured momentum (NaN: none), for OneCycleLR */
    int bad_epochs;
    int batch_size;            /* the config's, at most train_count */
    int eval_batch;            /* nn_eval_batch */
    /* Where the current epoch stands, since a checkpoint may be taken in
     * the middle of one: samples trained (0: at an epoch boundary), the
     * loss's sums so far, and the shuffle stream before this epoch's
     * permutation, from which a resumed run draws the same order. */
    int epoch_position;
    double epoch_numerator, epoch_denominator;
    nn_rng epoch_shuffle_rng;
    bool order_ready;          /* order holds the current epoch's permutation */
    /* The data as trained on, for --resume to tell whether it changed. */
    nn_data_fingerprint train_fingerprint, test_fingerprint;
    /* What --resume-anyway let through, over every resume so far, one
     * line each (NULL: nothing); saved in the checkpoint. */
    char *overrides;
    uint32_t *order;           /* this epoch's sample order */
    nn_metrics_acc *train_metrics;
    nn_engine *engine;         /* the batch split across threads replicas */
    const nn_collective *collective;  /* data-parallel ranks, or NULL (nn_trainer_distribute) */
    /* Every epoch finished, oldest first, restored by nn_trainer_resume so
     * that the checkpoint's history is the whole run's (io/checkpoint.h
     * declares the record; owned). */
    struct nn_epoch_record *history;
    int history_count, history_capacity;
    /* The nnseq that trains, recorded in the checkpoint for `nnseq diff`
     * (borrowed; NULL: not recorded). */
    const char *version;
} nn_trainer;

/* Loads the training data, builds the model (input shape from the config or
 * the data, which must agree), binds the targets to the loss, splits off
 * the test and validation samples, reads and checks the test split, fits
 * normalize: auto, and sets up the optimiser. With config->init, starts
 * from those .npz weights. Every check of the data happens here, before
 * the first step. */
nn_trainer *nn_trainer_create(const nn_config *config, int threads, nn_error *err);
void nn_trainer_free(nn_trainer *trainer);

/* Evaluates samples [first, first + count) of set on the trainer's threads,
 * in its batch size. */
int nn_trainer_evaluate(nn_trainer *trainer, const nn_dataset *set, int64_t first, int64_t count,
                        nn_metrics *metrics, nn_error *err);

/* Data-parallel training over the ranks of c (NULL or one rank: no-op),
 * after nn_trainer_create and any resume, called by every rank: checks
 * that every rank runs the same config, data and nnseq (version, any
 * string the caller names its build by) and refuses, naming the first rank
 * that differs; then each rank trains and evaluates its share of every
 * batch and split, with gradients, BatchNorm statistics and metrics summed
 * over the ranks, so the numbers are one process's to float tolerance.
 * Every rank gets the same reports; the caller lets rank 0 alone print
 * and save. Collective: every rank calls every trainer function from then on. */
int nn_trainer_distribute(nn_trainer *trainer, const nn_collective *c, const char *version, nn_error *err);
/* Before a checkpoint in the middle of an epoch: the ranks' running sums
 * of the epoch merged into rank 0's and the optimiser's sharded state
 * made whole (what the checkpoint saves). */
int nn_trainer_gather_epoch(nn_trainer *trainer, nn_error *err);
/* Whether any rank wants to stop (a signal reaches each rank on its own);
 * stop itself without ranks. */
int nn_trainer_agree_stop(nn_trainer *trainer, bool stop, bool *agreed, nn_error *err);

/* Trains one epoch (the rest of it, after a resume in the middle) and
 * evaluates on the validation split. stop (may be NULL) is asked after
 * every step; when it says so before the epoch's end, the report says
 * interrupted and the trainer stays in the middle of the epoch, where a
 * checkpoint saves it and the next call goes on. */
int nn_trainer_epoch(nn_trainer *trainer, nn_epoch_report *report, nn_progress_fn progress, nn_stop_fn stop,
                     void *user, nn_error *err);

/* Reads a split for a model trained with config: files in config's format
 * (NULL: the config's test split, which may be the tail of the training
 * file under data.test_split), checked against the model's input and bound
 * to the loss. without_targets: inputs only (predict). split names it in
 * messages. */
int nn_load_split(const nn_config *config, const nn_data_files *files, const nn_model *model, bool without_targets,
                  const char *split, nn_dataset *set, nn_error *err);

/* Whether set's inputs fit the model's input (same number of values per
 * sample); NN_ERR_INPUT naming the file and both shapes if not. */
int nn_dataset_check_input(const nn_dataset *set, const nn_model *model, nn_error *err);

/* Evaluates samples [first, first + count) of set (bound targets) on
 * threads replicas, in batches of batch_size (0: the model's reserved size,
 * else NN_EVAL_BATCH), with the metrics of task. confusion, unless NULL,
 * receives outputs x outputs counts for classification (row = label,
 * column = prediction). */
int nn_evaluate(nn_model *model, int threads, int batch_size, const nn_loss *loss, nn_task task,
                const nn_input_transform *transform, const nn_dataset *set, int64_t first, int64_t count,
                nn_metrics *metrics, int64_t *confusion, nn_error *err);

/* The input transform of a config without data: normalize given as
 * numbers, or none (normalize: auto needs the training data or a
 * checkpoint's stored statistics). */
int nn_config_transform(const nn_config *config, nn_shape input_shape, nn_input_transform *transform,
                        nn_error *err);

#endif
