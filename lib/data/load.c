/* From a config's data source to an nn_dataset: the one place that picks
 * the reader for a format. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "data/csv.h"
#include "data/idx.h"
#include "data/npy.h"
#include "data/source.h"

const char *nn_data_format_name(nn_data_format format) {
    switch (format) {
    case NN_FORMAT_IDX: return "idx";
    case NN_FORMAT_CSV: return "csv";
    case NN_FORMAT_NPY: return "npy";
    }
    return "?";
}

const char *nn_data_input_path(const nn_data_files *files) {
    return files->images ? files->images : files->file ? files->file : files->features;
}

const char *nn_data_target_path(const nn_data_files *files) {
    return files->labels ? files->labels : files->file ? files->file : files->targets;
}

static int load_csv(nn_dataset *set, const nn_csv_options *csv, const nn_data_files *files, bool without_targets,
                    nn_error *err) {
    nn_array features = {0}, targets = {0};
    int64_t first_line = 0;
    if (files->file) {
        /* One file with columns: the target columns are read too unless
         * the targets are not wanted. */
        if (nn_csv_read(files->file, csv, !without_targets, &features, &targets, &first_line, err) != 0) return -1;
        if (nn_dataset_set_inputs(set, &features, files->file, first_line, err) != 0) {
            free(targets.data);
            return -1;
        }
        if (without_targets || !targets.data) {
            free(targets.data);
            return 0;
        }
        return nn_dataset_set_targets(set, &targets, files->file, first_line, err);
    }
    /* Two files: the features file's columns are data.csv.features (every
     * column when not given), the targets file's are every column. */
    nn_csv_options features_only = *csv;
    memset(&features_only.target, 0, sizeof features_only.target);
    if (nn_csv_read(files->features, &features_only, false, &features, NULL, &first_line, err) != 0 ||
        nn_dataset_set_inputs(set, &features, files->features, first_line, err) != 0)
        return -1;
    if (without_targets || !files->targets) return 0;
    nn_csv_options targets_only = *csv;
    memset(&targets_only.features, 0, sizeof targets_only.features);
    memset(&targets_only.target, 0, sizeof targets_only.target);
    if (nn_csv_read(files->targets, &targets_only, false, &targets, NULL, &first_line, err) != 0) return -1;
    return nn_dataset_set_targets(set, &targets, files->targets, first_line, err);
}

/* Both headers before either body: a count mismatch is reported at once,
 * not after reading (perhaps gigabytes of) images. The message is the
 * dataset's, which would find the same mismatch later. */
static int load_idx(nn_dataset *set, const nn_data_files *files, bool without_targets, nn_error *err) {
    nn_idx_stream *images = nn_idx_open(files->images, err), *labels = NULL;
    nn_array inputs = {0}, targets = {0};
    int status = -1;
    if (!images || (!without_targets && files->labels && !(labels = nn_idx_open(files->labels, err)))) goto done;
    int64_t image_count = nn_idx_stream_dims(images)[0];
    if (labels && nn_idx_stream_dims(labels)[0] != image_count) {
        nn_error_set(err, NN_ERR_INPUT, "%s has %" PRId64 " samples but %s has %" PRId64 " targets", files->images,
                     image_count, files->labels, nn_idx_stream_dims(labels)[0]);
        goto done;
    }
    if (nn_idx_read_all(images, &inputs, err) != 0 ||
        nn_dataset_set_inputs(set, &inputs, files->images, 0, err) != 0)
        goto done;
    if (labels && (nn_idx_read_all(labels, &targets, err) != 0 ||
                   nn_dataset_set_targets(set, &targets, files->labels, 0, err) != 0))
        goto done;
    status = 0;
done:
    nn_idx_stream_close(images);
    nn_idx_stream_close(labels);
    free(inputs.data);
    free(targets.data);
    return status;
}

int nn_data_load(nn_dataset *set, nn_data_format format, const nn_csv_options *csv, const nn_data_files *files,
                 bool without_targets, nn_error *err) {
    memset(set, 0, sizeof *set);
    nn_array inputs = {0}, targets = {0};
    int status = -1;
    switch (format) {
    case NN_FORMAT_CSV:
        status = load_csv(set, csv, files, without_targets, err);
        break;
    case NN_FORMAT_IDX:
        status = load_idx(set, files, without_targets, err);
        break;
    case NN_FORMAT_NPY:
        status = nn_npy_read(files->features, NULL, &inputs, err) != 0 ||
                 nn_dataset_set_inputs(set, &inputs, files->features, 0, err) != 0 ||
                 (!without_targets && files->targets &&
                  (nn_npy_read(files->targets, NULL, &targets, err) != 0 ||
                   nn_dataset_set_targets(set, &targets, files->targets, 0, err) != 0))
                     ? -1 : 0;
        break;
    }
    free(inputs.data);
    free(targets.data);
    if (status != 0) nn_dataset_free(set);
    return status;
}
