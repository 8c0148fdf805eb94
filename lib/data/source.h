/* Where a split's data comes from, as the config declares it: the format
 * and the files. nn_data_load (load.c) is the one place that turns a
 * source into an nn_dataset, so the trainer never sees a file format. */
#ifndef NNSEQ_SOURCE_H
#define NNSEQ_SOURCE_H

#include <stdbool.h>

#include "core/error.h"
#include "data/csv.h"
#include "data/dataset.h"

typedef enum nn_data_format { NN_FORMAT_IDX, NN_FORMAT_CSV, NN_FORMAT_NPY } nn_data_format;

const char *nn_data_format_name(nn_data_format format);   /* "idx", "csv", "npy" */

/* One split's files (resolved paths, owned by the config; NULL: absent):
 * idx: images and labels; csv: file (features and targets in columns) or
 * features and targets (two files); npy: features and targets (.npy, or
 * .npz holding one array). */
typedef struct nn_data_files {
    char *images, *labels;
    char *file;
    char *features, *targets;
} nn_data_files;

/* The file the inputs of a split come from, and the one its targets come
 * from (NULL: none), for messages. */
const char *nn_data_input_path(const nn_data_files *files);
const char *nn_data_target_path(const nn_data_files *files);

/* Reads a split: the inputs and, unless without_targets (target: input,
 * predict), the raw targets. Formats and messages as in the readers; for
 * idx the two headers are read and their counts compared before either
 * body is. */
int nn_data_load(nn_dataset *set, nn_data_format format, const nn_csv_options *csv, const nn_data_files *files,
                 bool without_targets, nn_error *err);

#endif
