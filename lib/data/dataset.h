/* The dataset interface: what the trainer, eval and predict see of the
 * data, whatever file format it came from (the readers in this folder:
 * idx.c, csv.c, npy.c; dataset.c puts their arrays together).
 *
 * A data set is count samples, each an input of `shape` and a target.
 * Inputs are kept as the file stored them when that is bytes (turned into
 * floats, divided by 255, only when a batch is gathered, so memory grows
 * with the batch) and as float32 otherwise. Targets are read as numbers
 * (double: exact for every int32 label) and then bound to what the loss
 * needs: class indices (int32) or float rows, checked against the model's
 * outputs with messages naming the file and row. */
#ifndef NNSEQ_DATASET_H
#define NNSEQ_DATASET_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "core/shape.h"
#include "losses/loss.h"

/* Where a row came from, for messages: "FILE:LINE" for text files
 * (first_line is the line of row 0, and rows are consecutive lines), else
 * "FILE: item N" (first_line 0). */
typedef struct nn_data_origin {
    char *path;          /* owned */
    int64_t first_line;
    int64_t first_row;   /* row 0 of this set is row first_row of the file (after a split) */
} nn_data_origin;

typedef struct nn_dataset {
    int64_t count;
    nn_shape shape;          /* per sample */
    size_t input_size;       /* values per sample */
    bool inputs_are_bytes;   /* bytes (scaled by 1/255) or float32 */
    uint8_t *bytes;          /* count x input_size, owned */
    float *floats;           /* count x input_size, owned */
    nn_data_origin input_origin;

    /* Targets as read (freed when bound). target_width 0: none read. */
    int target_width;
    bool targets_integer;    /* stored as an integer type (IDX labels, int npy) */
    double *raw_targets;     /* count x target_width */
    nn_data_origin target_origin;

    /* Targets as bound to the loss (nn_dataset_bind). */
    bool target_is_input;    /* target: input (an autoencoder) */
    int32_t *labels;         /* NN_LOSS_CLASSES: count */
    float *values;           /* NN_LOSS_VALUES: count x outputs (one-hot rows from labels when needed) */
    int value_width;
} nn_dataset;

void nn_dataset_free(nn_dataset *set);

/* What a checkpoint remembers of the data it trained on, to tell at
 * --resume whether the files changed: samples, values per sample, and
 * CRC-32s of the inputs and of the bound targets as the model sees them. */
typedef struct nn_data_fingerprint {
    int64_t count, input_size;
    uint32_t inputs_crc, targets_crc;
} nn_data_fingerprint;

nn_data_fingerprint nn_dataset_fingerprint(const nn_dataset *set);

/* Takes the inputs from an array of count = dims[0] samples (any dtype;
 * uint8 stays bytes, the rest become float32; NaN and Inf are an
 * error naming the item). The sample shape is dims[1..]: none is (1,), one
 * is (F,), two (1, H, W), three (C, H, W); more dims fold into the last.
 * Takes ownership of array->data (set to NULL) on success and on failure. */
int nn_dataset_set_inputs(nn_dataset *set, nn_array *array, const char *path, int64_t first_line, nn_error *err);

/* Takes the targets from an array of count samples (the same count as the
 * inputs: a mismatch names both files); width is the product of dims[1..]
 * (1 for rank 1). Ownership as above. */
int nn_dataset_set_targets(nn_dataset *set, nn_array *array, const char *path, int64_t first_line, nn_error *err);

/* Binds the raw targets to the loss for a model of `outputs` outputs:
 * NN_LOSS_CLASSES needs one integer in [0, outputs) per sample (or the
 * loss's ignore_index); NN_LOSS_VALUES needs outputs values per sample, or
 * one class index per sample when outputs > 1, which becomes a one-hot row.
 * With target_is_input the targets are the inputs (bytes / 255 or the
 * floats as stored) and must have outputs values; no raw targets are
 * needed. The loss's target_range bounds every float target ([0, 1] for
 * bce). split names the split in messages ("train", "test"). */
int nn_dataset_bind(nn_dataset *set, const nn_loss *loss, int outputs, bool target_is_input, const char *split,
                    nn_error *err);

/* Moves the samples [first, first + count) into a new set out (for
 * test_split: the tail of the training file), shrinking set. */
int nn_dataset_split_tail(nn_dataset *set, int64_t count, nn_dataset *out, nn_error *err);

/* Reorders the samples by a permutation drawn from seed (data.shuffle_split),
 * the same permutation as tests/torch_ref.py draws (nn_rng's below(), a
 * Fisher-Yates from the end). */
int nn_dataset_permute(nn_dataset *set, uint64_t seed, nn_error *err);

/* How an input value becomes the model's input: x (bytes / 255), then
 * (x - mean[j]) / std[j] for value j of the sample when normalize is set;
 * in float32 and in that order, as torch_ref.py's numpy does it. */
typedef struct nn_input_transform {
    bool normalize;
    size_t size;      /* values per sample */
    float *mean, *std;  /* size values each, owned; NULL when !normalize */
} nn_input_transform;

void nn_input_transform_free(nn_input_transform *transform);

/* A transform from per-channel or per-value lists: count 1 (every value),
 * shape.dims[0] for rank 3 (per channel, as torchvision's Normalize), or
 * the sample size (per value). */
int nn_input_transform_from_lists(nn_input_transform *transform, nn_shape shape, const double *mean,
                                  const double *std, int count, nn_error *err);

/* normalize: auto: the mean and std of each value (rank 1) or channel
 * (rank 3) over samples [first, first + count) of set, population std
 * (ddof 0) as sklearn's StandardScaler; a std of 0 becomes 1. */
int nn_input_transform_fit(nn_input_transform *transform, const nn_dataset *set, int64_t first, int64_t count,
                           nn_error *err);

/* Writes samples order[first .. first + count) (or first .. first + count
 * when order is NULL) of set into input, transformed. */
void nn_dataset_gather_inputs(const nn_dataset *set, const nn_input_transform *transform, const uint32_t *order,
                              int64_t first, int count, float *input);

/* The same samples' bound targets into labels (count) or values (count x
 * value_width), whichever the set has; returns the nn_targets to pass on. */
nn_targets nn_dataset_gather_targets(const nn_dataset *set, const uint32_t *order, int64_t first, int count,
                                     int32_t *labels, float *values);

/* "FILE:LINE" or "FILE: item N" of sample index of set's inputs (targets:
 * the target origin), into buffer. */
const char *nn_dataset_where(const nn_dataset *set, bool target, int64_t index, char *buffer, size_t size);

#endif
