#include "io/checkpoint.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/container.h"

#define MODEL_PREFIX "model."
#define OPTIMIZER_PREFIX "optimizer."

static nn_array text_array(const char *name, const char *text) {
    nn_array array = {.dtype = NN_U8, .rank = 1, .dims = {(int64_t)strlen(text)}, .data = (void *)text};
    snprintf(array.name, sizeof array.name, "%s", name);
    return array;
}

static nn_array i64_array(const char *name, int64_t *values, int count) {
    nn_array array = {.dtype = NN_I64, .rank = count == 1 ? 0 : 1, .dims = {count}, .data = values};
    snprintf(array.name, sizeof array.name, "%s", name);
    return array;
}

/* Doubles are stored as their bits (int64), as train.best_val_loss_bits
 * is: the container's types are what the checkpoint format promises. */
static nn_array double_bits_array(const char *name, double *values, int count) {
    nn_array array = {.dtype = NN_I64, .rank = 1, .dims = {count}, .data = values};
    snprintf(array.name, sizeof array.name, "%s", name);
    return array;
}

static void fingerprint_values(const nn_data_fingerprint *f, int64_t values[4]) {
    values[0] = f->count, values[1] = f->input_size, values[2] = f->inputs_crc, values[3] = f->targets_crc;
}


/* train.history_bits: one row of HISTORY_FIELDS doubles (as bits) per
 * epoch finished, in this order (docs/checkpoint.md): epoch, lr, has_val,
 * task, then the training metrics' HISTORY_METRICS values, then the
 * validation's (NaN without validation). The epoch's wall time is left
 * out, so that the same run saves the same bytes. */
#define HISTORY_METRICS 14
#define HISTORY_FIELDS (4 + 2 * HISTORY_METRICS)

static void metrics_values(const nn_metrics *m, double *v) {
    const double values[HISTORY_METRICS] = {(double)m->count, m->loss, m->accuracy, m->label_accuracy, m->precision,
                                            m->recall, m->f1, m->roc_auc, m->micro_f1, m->macro_f1, m->mse, m->rmse,
                                            m->mae, m->r2};
    memcpy(v, values, sizeof values);
}

static void metrics_from_values(nn_metrics *m, nn_task task, const double *v) {
    *m = (nn_metrics){task, (int64_t)v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11],
                      v[12], v[13]};
}

/* The trainer's history as train.history_bits rows; malloc'ed (NULL with
 * err set, or for an empty history). */
static double *history_rows(const nn_trainer *t, nn_error *err) {
    if (t->history_count == 0) return NULL;
    double *rows = malloc((size_t)t->history_count * HISTORY_FIELDS * sizeof *rows);
    if (!rows) {
        nn_error_oom(err, "the run's history");
        return NULL;
    }
    for (int e = 0; e < t->history_count; e++) {
        const nn_epoch_record *r = &t->history[e];
        double *row = rows + (size_t)e * HISTORY_FIELDS;
        row[0] = r->epoch, row[1] = r->lr, row[2] = r->has_val, row[3] = r->train.task;
        metrics_values(&r->train, row + 4);
        if (r->has_val) metrics_values(&r->val, row + 4 + HISTORY_METRICS);
        else for (int i = 0; i < HISTORY_METRICS; i++) row[4 + HISTORY_METRICS + i] = NAN;
    }
    return rows;
}

int nn_checkpoint_save(const char *path, const nn_trainer *t, nn_error *err) {
    size_t state_count;
    nn_array *state = nn_model_state(t->model, &state_count, err);
    if (!state) return -1;
    size_t capacity = state_count + 40, n = 0;
    nn_array *arrays = calloc(capacity, sizeof *arrays);
    if (!arrays) {
        free(state);
        return nn_error_oom(err, "the checkpoint list");
    }
    /* What trained, not the file as read: overrides applied, paths absolute. */
    char *effective = nn_config_render(t->config, false, err);
    if (!effective) {
        free(state);
        free(arrays);
        return -1;
    }
    arrays[n++] = text_array("config.yaml", effective);
    arrays[n++] = text_array("config.path", t->config->path);
    arrays[n++] = text_array("config.dir", t->config->dir);
    int64_t epoch = t->epoch, steps = t->optimizer.steps, bad_epochs = t->bad_epochs, best_bits, shuffle[4];
    /* The double's bits, so that a resumed run compares against exactly the same best loss. */
    memcpy(&best_bits, &t->best_val_loss, sizeof best_bits);
    memcpy(shuffle, t->shuffle_rng.state, sizeof shuffle);
    int64_t input_shape[3];
    for (int i = 0; i < t->model->input_shape.rank; i++) input_shape[i] = t->model->input_shape.dims[i];
    arrays[n++] = i64_array("train.input_shape", input_shape, t->model->input_shape.rank);
    arrays[n - 1].rank = 1;
    arrays[n++] = i64_array("train.epoch", &epoch, 1);
    arrays[n++] = i64_array("train.bad_epochs", &bad_epochs, 1);
    arrays[n++] = i64_array("train.best_val_loss_bits", &best_bits, 1);
    arrays[n++] = i64_array("rng.shuffle", shuffle, 4);
    arrays[n++] = i64_array("optimizer.steps", &steps, 1);
    /* Where the epoch stands: a checkpoint taken in the middle of one (a
     * signal) carries what finishing it the same way needs. */
    int64_t position = t->epoch_position, epoch_shuffle[4], *metric_counts = NULL;
    double epoch_loss[2] = {t->epoch_numerator, t->epoch_denominator}, *metric_sums = NULL;
    size_t metric_count_size = 0, metric_sum_size = 0;
    arrays[n++] = i64_array("train.epoch_position", &position, 1);
    if (position > 0) {
        if (nn_metrics_acc_save(t->train_metrics, &metric_counts, &metric_count_size, &metric_sums, &metric_sum_size,
                                err) != 0) {
            free(effective);
            free(arrays);
            free(state);
            return -1;
        }
        memcpy(epoch_shuffle, t->epoch_shuffle_rng.state, sizeof epoch_shuffle);
        arrays[n++] = i64_array("rng.epoch_shuffle", epoch_shuffle, 4);
        arrays[n++] = double_bits_array("train.epoch_loss_bits", epoch_loss, 2);
        arrays[n++] = i64_array("train.metrics_counts", metric_counts, (int)metric_count_size);
        arrays[n - 1].rank = 1;
        arrays[n++] = double_bits_array("train.metrics_sums_bits", metric_sums, (int)metric_sum_size);
    }
    int64_t train_print[4], test_print[4];
    fingerprint_values(&t->train_fingerprint, train_print);
    arrays[n++] = i64_array("data.train_fingerprint", train_print, 4);
    if (t->test.count > 0) {
        fingerprint_values(&t->test_fingerprint, test_print);
        arrays[n++] = i64_array("data.test_fingerprint", test_print, 4);
    }
    if (t->overrides) arrays[n++] = text_array("train.overrides", t->overrides);
    /* What `nnseq diff` tells runs apart by besides the config and data. */
    int64_t threads = nn_engine_threads(t->engine), ranks = t->collective ? t->collective->size : 1;
    arrays[n++] = i64_array("train.threads", &threads, 1);
    arrays[n++] = i64_array("train.ranks", &ranks, 1);
    if (t->version) arrays[n++] = text_array("train.version", t->version);
    double *history = NULL;
    if (t->history_count > 0) {
        if (!(history = history_rows(t, err))) {
            free(metric_counts);
            free(metric_sums);
            free(effective);
            free(arrays);
            free(state);
            return -1;
        }
        nn_array *a = &arrays[n++];
        *a = (nn_array){.dtype = NN_I64, .rank = 2, .dims = {t->history_count, HISTORY_FIELDS}, .data = history};
        snprintf(a->name, sizeof a->name, "train.history_bits");
    }
    const nn_scheduler_kind *schedule = t->config->scheduler.kind;
    double schedule_state[NN_SCHEDULE_MAX_STATE];
    if (schedule && schedule->state_count > 0) {
        /* A copy: the array is written from a non-const pointer. */
        memcpy(schedule_state, t->schedule_state, sizeof schedule_state);
        arrays[n++] = double_bits_array("train.schedule_state_bits", schedule_state, schedule->state_count);
    }
    if (t->transform.normalize) {
        /* What the inputs were normalised with, so that eval and predict
         * do the same without the training data (normalize: auto). */
        const char *names[2] = {"data.mean", "data.std"};
        float *values[2] = {t->transform.mean, t->transform.std};
        for (int i = 0; i < 2; i++) {
            nn_array *a = &arrays[n++];
            *a = (nn_array){.dtype = NN_F32, .rank = 1, .dims = {(int64_t)t->transform.size}, .data = values[i]};
            snprintf(a->name, sizeof a->name, "%s", names[i]);
        }
    }
    for (int b = 0; b < NN_OPTIMIZER_MAX_BUFFERS; b++) {
        if (!t->optimizer.buffers[b]) continue; /* not used with these arguments */
        nn_array *a = &arrays[n++];
        *a = (nn_array){.dtype = NN_F32, .rank = 1, .dims = {(int64_t)t->optimizer.param_count},
                        .data = t->optimizer.buffers[b]};
        snprintf(a->name, sizeof a->name, OPTIMIZER_PREFIX "%s", t->optimizer.kind->buffer_names[b]);
    }
    for (size_t s = 0; s < state_count; s++) {
        arrays[n] = state[s];
        snprintf(arrays[n].name, sizeof arrays[n].name, MODEL_PREFIX "%s", state[s].name);
        n++;
    }
    int status = nn_container_write(path, arrays, n, err);
    free(history);
    free(metric_counts);
    free(metric_sums);
    free(effective);
    free(arrays);
    free(state);
    return status;
}

/* A required array of the given type and element count, or an error naming the path. */
static const nn_array *require(const nn_array *arrays, size_t count, const char *name, nn_dtype dtype,
                               size_t elements, const char *path, nn_error *err) {
    const nn_array *a = nn_container_find(arrays, count, name);
    if (!a) {
        nn_error_set(err, NN_ERR_INPUT, "%s: checkpoint has no '%s'", path, name);
        return NULL;
    }
    if (a->dtype != dtype || (elements && nn_array_count(a) != elements)) {
        nn_error_set(err, NN_ERR_INPUT, "%s: checkpoint entry '%s' has the wrong type or size", path, name);
        return NULL;
    }
    return a;
}

static char *text_of(const nn_array *a) {
    size_t length = nn_array_count(a);
    char *text = malloc(length + 1);
    if (!text) return NULL;
    memcpy(text, a->data, length);
    text[length] = '\0';
    return text;
}

/* Parses the stored config of arrays read from path. */
static int parse_stored_config(nn_config *cfg, const nn_array *arrays, size_t count, const char *path,
                               nn_error *err) {
    const nn_array *yaml = require(arrays, count, "config.yaml", NN_U8, 0, path, err);
    const nn_array *config_path = yaml ? require(arrays, count, "config.path", NN_U8, 0, path, err) : NULL;
    const nn_array *dir = config_path ? require(arrays, count, "config.dir", NN_U8, 0, path, err) : NULL;
    if (!dir) return -1;
    char *path_text = text_of(config_path), *dir_text = text_of(dir);
    int status = path_text && dir_text
                     ? nn_config_parse(cfg, yaml->data, nn_array_count(yaml), path_text, dir_text, err)
                     : nn_error_oom(err, "the stored config");
    free(path_text);
    free(dir_text);
    if (status != 0) nn_error_prefix(err, "%s: the stored config", path);
    return status;
}

/* Weights, buffers and optimiser state must be numbers: a NaN that got
 * into a checkpoint would poison every prediction and every resumed step. */
static int check_finite(const nn_array *arrays, size_t count, const char *path, nn_error *err) {
    for (size_t a = 0; a < count; a++) {
        if (arrays[a].dtype != NN_F32 ||
            (strncmp(arrays[a].name, MODEL_PREFIX, strlen(MODEL_PREFIX)) != 0 &&
             strncmp(arrays[a].name, OPTIMIZER_PREFIX, strlen(OPTIMIZER_PREFIX)) != 0))
            continue;
        const float *values = arrays[a].data;
        size_t n = nn_array_count(&arrays[a]);
        for (size_t i = 0; i < n; i++)
            if (!isfinite(values[i]))
                return nn_error_set(err, NN_ERR_INPUT, "%s: checkpoint entry '%s' holds %s at index %zu (a run that "
                                    "diverged?); give --allow-nonfinite to load it anyway",
                                    path, arrays[a].name, isnan(values[i]) ? "NaN" : "an infinity", i);
    }
    return 0;
}

/* A stored count within [low, high], or an error naming it. */
static int stored_count(const nn_array *a, int64_t low, int64_t high, const char *path, int64_t *out, nn_error *err) {
    int64_t value = *(const int64_t *)a->data;
    if (value < low || value > high)
        return nn_error_set(err, NN_ERR_INPUT, "%s: checkpoint entry '%s' is %" PRId64 " (expected %" PRId64
                            " to %" PRId64 ")", path, a->name, value, low, high);
    *out = value;
    return 0;
}

/* What --train accepts as epochs, and so what a checkpoint may have done. */
#define MAX_EPOCHS 1000000


/* The stored history (none in a checkpoint older than it: count 0),
 * range-checked against the checkpoint's epochs completed. */
static int load_history(const nn_array *arrays, size_t count, int64_t epochs, const char *path,
                        nn_epoch_record **out, int *out_count, nn_error *err) {
    *out = NULL;
    *out_count = 0;
    const nn_array *a = nn_container_find(arrays, count, "train.history_bits");
    if (!a) return 0;
    if (a->dtype != NN_I64 || a->rank != 2 || a->dims[1] != HISTORY_FIELDS)
        return nn_error_set(err, NN_ERR_INPUT, "%s: checkpoint entry 'train.history_bits' has the wrong type or shape "
                            "(expected int64 rows of %d fields)", path, HISTORY_FIELDS);
    if (a->dims[0] > epochs)
        return nn_error_set(err, NN_ERR_INPUT, "%s: checkpoint entry 'train.history_bits' has %" PRId64 " epochs "
                            "(expected at most the %" PRId64 " trained)", path, a->dims[0], epochs);
    int rows = (int)a->dims[0];
    if (rows == 0) return 0;
    nn_epoch_record *history = calloc((size_t)rows, sizeof *history);
    if (!history) return nn_error_oom(err, "the run's history");
    for (int e = 0; e < rows; e++) {
        double row[HISTORY_FIELDS];
        memcpy(row, (const int64_t *)a->data + (size_t)e * HISTORY_FIELDS, sizeof row);
        double previous = e > 0 ? history[e - 1].epoch : 0;
        bool has_val = row[2] == 1;
        const char *bad = !(row[0] > previous && row[0] <= (double)epochs && row[0] == floor(row[0])) ? "its epoch"
                          : !(row[1] >= 0 && row[1] < INFINITY)                                    ? "its lr"
                          : !(row[2] == 0 || has_val)                                                ? "has_val"
                          : !(row[3] >= NN_TASK_CLASSIFICATION && row[3] <= NN_TASK_REGRESSION &&
                              row[3] == floor(row[3]))                                               ? "its task"
                          : !(row[4] >= 0 && row[4] <= 9007199254740992.0 && row[4] == floor(row[4])) ||
                                    (has_val && !(row[4 + HISTORY_METRICS] >= 0 &&
                                                  row[4 + HISTORY_METRICS] <= 9007199254740992.0 &&
                                                  row[4 + HISTORY_METRICS] == floor(row[4 + HISTORY_METRICS])))
                              ? "a sample count"
                              : NULL;
        if (bad) {
            free(history);
            return nn_error_set(err, NN_ERR_INPUT, "%s: checkpoint entry 'train.history_bits' row %d of %d: %s is out "
                                "of range (expected epochs increasing from 1 to %" PRId64 ", a finite lr >= 0, has_val 0 "
                                "or 1, a task 0 to 3, whole sample counts): the file is damaged", path, e + 1, rows, bad,
                                epochs);
        }
        nn_task task = (nn_task)row[3];
        history[e].epoch = (int)row[0];
        history[e].lr = row[1];
        history[e].seconds = history[e].samples_per_second = NAN;   /* not stored */
        history[e].has_val = has_val;
        metrics_from_values(&history[e].train, task, row + 4);
        if (has_val) metrics_from_values(&history[e].val, task, row + 4 + HISTORY_METRICS);
    }
    *out = history;
    *out_count = rows;
    return 0;
}

int nn_checkpoint_read_config(nn_config *cfg, const char *path, nn_error *err) {
    nn_array *arrays = NULL;
    size_t count = 0;
    memset(cfg, 0, sizeof *cfg);
    if (nn_container_read(path, &arrays, &count, err) != 0) return -1;
    int status = parse_stored_config(cfg, arrays, count, path, err);
    nn_arrays_free(arrays, count);
    return status;
}

int nn_checkpoint_load(nn_checkpoint *ck, const char *path, bool allow_nonfinite, nn_error *err) {
    memset(ck, 0, sizeof *ck);
    if (nn_container_read(path, &ck->arrays, &ck->array_count, err) != 0) return -1;
    const nn_array *epoch = require(ck->arrays, ck->array_count, "train.epoch", NN_I64, 1, path, err);
    int64_t epochs = 0;
    if (!epoch || stored_count(epoch, 0, MAX_EPOCHS, path, &epochs, err) != 0 ||
        (!allow_nonfinite && check_finite(ck->arrays, ck->array_count, path, err) != 0) ||
        parse_stored_config(&ck->config, ck->arrays, ck->array_count, path, err) != 0)
        goto fail;
    ck->epoch = (int)epochs;
    if (load_history(ck->arrays, ck->array_count, epochs, path, &ck->history, &ck->history_count, err) != 0) goto fail;
    /* The input shape may have come from the data rather than the config. */
    const nn_array *shape = require(ck->arrays, ck->array_count, "train.input_shape", NN_I64, 0, path, err);
    if (!shape) goto fail;
    nn_shape input_shape = {(int)nn_array_count(shape), {0, 0, 0}};
    if (input_shape.rank < 1 || input_shape.rank > 3) {
        nn_error_set(err, NN_ERR_INPUT, "%s: bad train.input_shape", path);
        goto fail;
    }
    int64_t product = 1;
    for (int i = 0; i < input_shape.rank; i++) {
        int64_t d = ((const int64_t *)shape->data)[i];
        /* Each dimension and the values per sample within what any data
         * file nnseq reads can give (2^28 floats: a 1 GB sample). */
        if (d < 1 || d > 1 << 28 || (product *= d) > 1 << 28) {
            nn_error_set(err, NN_ERR_INPUT, "%s: train.input_shape has a dimension %" PRId64 " or a product beyond "
                         "2^28 values per sample: the checkpoint is damaged", path, d);
            goto fail;
        }
        input_shape.dims[i] = (int)d;
    }
    /* The stored config may describe any model: it is built no larger than
     * the weights the file holds, and its errors name the checkpoint. */
    size_t stored_values = 0;
    for (size_t a = 0; a < ck->array_count; a++)
        if (strncmp(ck->arrays[a].name, MODEL_PREFIX, strlen(MODEL_PREFIX)) == 0)
            stored_values += nn_array_count(&ck->arrays[a]);
    ck->model = nn_model_create_bounded(ck->config.model.layers, ck->config.model.layer_count, input_shape,
                                        ck->config.seed, ck->config.path, stored_values, err);
    if (!ck->model) {
        nn_error_prefix(err, "%s: the stored config", path);
        goto fail;
    }
    if (nn_model_load_state(ck->model, ck->arrays, ck->array_count, MODEL_PREFIX, path, err) != 0) goto fail;
    size_t values = nn_shape_size(input_shape);
    const nn_array *mean = nn_container_find(ck->arrays, ck->array_count, "data.mean");
    if (mean || ck->config.data.normalize == NN_NORMALIZE_AUTO) {
        const nn_array *std = NULL;
        if (!(mean = require(ck->arrays, ck->array_count, "data.mean", NN_F32, values, path, err)) ||
            !(std = require(ck->arrays, ck->array_count, "data.std", NN_F32, values, path, err)))
            goto fail;
        ck->transform.size = values;
        ck->transform.normalize = true;
        ck->transform.mean = malloc(values * sizeof(float));
        ck->transform.std = malloc(values * sizeof(float));
        if (!ck->transform.mean || !ck->transform.std) {
            nn_error_oom(err, "the normalisation");
            goto fail;
        }
        memcpy(ck->transform.mean, mean->data, values * sizeof(float));
        memcpy(ck->transform.std, std->data, values * sizeof(float));
        for (size_t i = 0; i < values; i++)
            if (!isfinite(ck->transform.mean[i]) || !(ck->transform.std[i] > 0) || !isfinite(ck->transform.std[i])) {
                nn_error_set(err, NN_ERR_INPUT, "%s: data.std or data.mean value %zu is not finite and positive", path, i);
                goto fail;
            }
    } else if (nn_config_transform(&ck->config, input_shape, &ck->transform, err) != 0) {
        goto fail;
    }
    return 0;
fail:
    nn_checkpoint_free(ck);
    return -1;
}

void nn_checkpoint_free(nn_checkpoint *ck) {
    nn_model_free(ck->model);
    nn_input_transform_free(&ck->transform);
    nn_config_free(&ck->config);
    nn_arrays_free(ck->arrays, ck->array_count);
    free(ck->history);
    memset(ck, 0, sizeof *ck);
}

/* Appends a line to the trainer's record of what --resume-anyway let through. */
static int record_override(nn_trainer *t, const char *path, const char *what, nn_error *err) {
    size_t old = t->overrides ? strlen(t->overrides) : 0, size = old + strlen(path) + strlen(what) + 32;
    char *grown = realloc(t->overrides, size);
    if (!grown) return nn_error_oom(err, "the resume record");
    snprintf(grown + old, size - old, "resumed from %s anyway: %s\n", path, what);
    t->overrides = grown;
    return 0;
}

/* The stored fingerprint of a split against the data now; absent in
 * checkpoints older than fingerprints, which then cannot tell. */
static int compare_fingerprint(nn_trainer *t, const nn_array *arrays, size_t count, const char *name,
                               const nn_data_fingerprint *now, const char *split, const char *path,
                               const nn_resume_options *options, nn_error *err) {
    const nn_array *stored = nn_container_find(arrays, count, name);
    if (!stored) return 0;
    if (!(stored = require(arrays, count, name, NN_I64, 4, path, err))) return -1;
    const int64_t *v = stored->data;
    int64_t n[4];
    fingerprint_values(now, n);
    if (memcmp(v, n, sizeof n) == 0) return 0;
    char what[320];
    if (v[0] != n[0] || v[1] != n[1])
        snprintf(what, sizeof what, "the %s data: %" PRId64 " samples of %" PRId64 " values in the checkpoint, %"
                 PRId64 " of %" PRId64 " now", split, v[0], v[1], n[0], n[1]);
    else
        snprintf(what, sizeof what, "the %s data: the same %" PRId64 " samples of %" PRId64 " values, but other "
                 "%s (CRC-32 %08" PRIx64 " in the checkpoint, %08" PRIx64 " now)", split, n[0], n[1],
                 v[2] != n[2] ? "inputs" : "targets", v[2] != n[2] ? v[2] : v[3], v[2] != n[2] ? n[2] : n[3]);
    if (options && options->anyway) return record_override(t, path, what, err);
    return nn_error_set(err, NN_ERR_INPUT, "cannot resume from %s: %s (it trained on other data; give "
                        "--resume-anyway to go on with this data)", path, what);
}

int nn_trainer_resume(nn_trainer *t, const char *path, const nn_resume_options *options, nn_error *err) {
    nn_array *arrays = NULL;
    size_t count = 0;
    if (nn_container_read(path, &arrays, &count, err) != 0) return -1;
    int status = -1;
    int64_t epoch = 0, steps = 0, bad_epochs = 0, position = 0;
    nn_epoch_record *history = NULL;
    int history_count = 0;
    const nn_array *a;
    /* Every count within what a run can reach: a damaged or forged file is
     * refused here, not half-way through an epoch. */
    if (!(a = require(arrays, count, "train.epoch", NN_I64, 1, path, err)) ||
        stored_count(a, 0, MAX_EPOCHS, path, &epoch, err) != 0 ||
        !(a = require(arrays, count, "train.bad_epochs", NN_I64, 1, path, err)) ||
        stored_count(a, 0, epoch, path, &bad_epochs, err) != 0 ||
        !(a = require(arrays, count, "optimizer.steps", NN_I64, 1, path, err)))
        goto done;
    int64_t batches = (t->train_count + t->batch_size - 1) / t->batch_size;
    if (stored_count(a, 0, (epoch + 1) * batches, path, &steps, err) != 0) goto done;
    if ((a = nn_container_find(arrays, count, "train.epoch_position")) &&
        (!(a = require(arrays, count, "train.epoch_position", NN_I64, 1, path, err)) ||
         stored_count(a, 0, t->train_count - 1, path, &position, err) != 0))
        goto done;
    if (position % t->batch_size != 0 || (position > 0 && epoch >= MAX_EPOCHS)) {
        nn_error_set(err, NN_ERR_INPUT, "%s: checkpoint entry 'train.epoch_position' is %" PRId64 ", not a whole number "
                     "of batches of %d", path, position, t->batch_size);
        goto done;
    }
    const nn_array *best = require(arrays, count, "train.best_val_loss_bits", NN_I64, 1, path, err);
    const nn_array *shuffle = best ? require(arrays, count, "rng.shuffle", NN_I64, 4, path, err) : NULL;
    if (!shuffle) goto done;
    /* Dropout draws from per-sample streams keyed by the seed, the epoch and
     * the sample: no state to restore (an older checkpoint's rng.dropout is
     * ignored). */
    const nn_array *buffers[NN_OPTIMIZER_MAX_BUFFERS] = {NULL};
    for (int b = 0; b < NN_OPTIMIZER_MAX_BUFFERS; b++) {
        if (!t->optimizer.buffers[b]) continue;
        char name[64];
        snprintf(name, sizeof name, OPTIMIZER_PREFIX "%s", t->optimizer.kind->buffer_names[b]);
        if (!nn_container_find(arrays, count, name)) {
            nn_error_set(err, NN_ERR_INPUT, "%s: was not trained with optimizer %s (no '%s'): resume with the same optimizer",
                         path, t->optimizer.kind->name, name);
            goto done;
        }
        if (!(buffers[b] = require(arrays, count, name, NN_F32, t->optimizer.param_count, path, err))) goto done;
    }
    const nn_array *epoch_shuffle = NULL, *epoch_loss = NULL, *metric_counts = NULL, *metric_sums = NULL;
    if (position > 0 &&
        (!(epoch_shuffle = require(arrays, count, "rng.epoch_shuffle", NN_I64, 4, path, err)) ||
         !(epoch_loss = require(arrays, count, "train.epoch_loss_bits", NN_I64, 2, path, err)) ||
         !(metric_counts = require(arrays, count, "train.metrics_counts", NN_I64, 0, path, err)) ||
         !(metric_sums = require(arrays, count, "train.metrics_sums_bits", NN_I64, 0, path, err))))
        goto done;
    const nn_scheduler_kind *schedule = t->config->scheduler.kind;
    const nn_array *schedule_state = NULL;
    if (schedule && schedule->state_count > 0 &&
        !(schedule_state = require(arrays, count, "train.schedule_state_bits", NN_I64, schedule->state_count, path,
                                   err)))
        goto done;
    if ((!options || !options->allow_nonfinite) && check_finite(arrays, count, path, err) != 0) goto done;
    if (load_history(arrays, count, epoch, path, &history, &history_count, err) != 0) goto done;
    if (compare_fingerprint(t, arrays, count, "data.train_fingerprint", &t->train_fingerprint, "training", path,
                            options, err) != 0 ||
        (t->test.count > 0 && compare_fingerprint(t, arrays, count, "data.test_fingerprint", &t->test_fingerprint,
                                                  "test", path, options, err) != 0))
        goto done;
    const nn_array *overrides = nn_container_find(arrays, count, "train.overrides");
    if (overrides) {
        char *before = text_of(overrides);
        if (!before) {
            nn_error_oom(err, "the resume record");
            goto done;
        }
        /* The earlier resumes' lines first, then this one's. */
        char *now = t->overrides;
        t->overrides = before;
        if (now) {
            size_t size = strlen(before) + strlen(now) + 1;
            char *joined = realloc(t->overrides, size);
            if (!joined) {
                free(now);
                nn_error_oom(err, "the resume record");
                goto done;
            }
            strcat(joined, now);
            t->overrides = joined;
            free(now);
        }
    }
    if (options && options->anyway && options->config_difference &&
        record_override(t, path, options->config_difference, err) != 0)
        goto done;
    if (nn_model_load_state(t->model, arrays, count, MODEL_PREFIX, path, err) != 0) goto done;
    if (position > 0) {
        nn_metrics_acc_reset(t->train_metrics);
        size_t sum_count = nn_array_count(metric_sums);
        double *sums_of_metrics = malloc((sum_count ? sum_count : 1) * sizeof *sums_of_metrics);
        if (!sums_of_metrics) {
            nn_error_oom(err, "the metrics' state");
            goto done;
        }
        memcpy(sums_of_metrics, metric_sums->data, sum_count * sizeof *sums_of_metrics);
        int loaded = nn_metrics_acc_load(t->train_metrics, metric_counts->data, nn_array_count(metric_counts),
                                         sums_of_metrics, sum_count, err);
        free(sums_of_metrics);
        if (loaded != 0) {
            nn_error_prefix(err, "%s", path);
            goto done;
        }
        memcpy(t->epoch_shuffle_rng.state, epoch_shuffle->data, sizeof t->epoch_shuffle_rng.state);
        double sums[2];
        memcpy(sums, epoch_loss->data, sizeof sums);
        t->epoch_numerator = sums[0];
        t->epoch_denominator = sums[1];
    }
    for (int b = 0; b < NN_OPTIMIZER_MAX_BUFFERS; b++)
        if (buffers[b]) memcpy(t->optimizer.buffers[b], buffers[b]->data, t->optimizer.param_count * sizeof(float));
    if (schedule_state) {
        double restored[NN_SCHEDULE_MAX_STATE] = {0};
        memcpy(restored, schedule_state->data, (size_t)schedule->state_count * sizeof(double));
        double lr = schedule->lr_from_state ? schedule->lr_from_state(&t->config->scheduler, restored) : 0;
        if (!(lr >= 0 && lr < INFINITY)) {
            nn_error_set(err, NN_ERR_INPUT, "%s: checkpoint entry 'train.schedule_state_bits' gives the learning rate "
                         "%g (expected a finite rate >= 0): the file is damaged", path, lr);
            goto done;
        }
        memcpy(t->schedule_state, restored, sizeof restored);
    }
    t->optimizer.steps = steps;
    t->epoch = (int)epoch;
    t->bad_epochs = (int)bad_epochs;
    t->epoch_position = (int)position;
    t->order_ready = false;
    memcpy(&t->best_val_loss, best->data, sizeof t->best_val_loss);
    memcpy(t->shuffle_rng.state, shuffle->data, sizeof t->shuffle_rng.state);
    free(t->history);
    t->history = history;
    t->history_count = t->history_capacity = history_count;
    history = NULL;
    status = 0;
done:
    free(history);
    nn_arrays_free(arrays, count);
    return status;
}
