#include "io/checkpoint.h"

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

int nn_checkpoint_save(const char *path, const nn_trainer *t, nn_error *err) {
    size_t state_count;
    nn_array *state = nn_model_state(t->model, &state_count, err);
    if (!state) return -1;
    size_t capacity = state_count + 24, n = 0;
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
    for (int b = 0; b < t->optimizer.kind->buffer_count; b++) {
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

int nn_checkpoint_read_config(nn_config *cfg, const char *path, nn_error *err) {
    nn_array *arrays = NULL;
    size_t count = 0;
    memset(cfg, 0, sizeof *cfg);
    if (nn_container_read(path, &arrays, &count, err) != 0) return -1;
    int status = parse_stored_config(cfg, arrays, count, path, err);
    nn_arrays_free(arrays, count);
    return status;
}

int nn_checkpoint_load(nn_checkpoint *ck, const char *path, nn_error *err) {
    memset(ck, 0, sizeof *ck);
    if (nn_container_read(path, &ck->arrays, &ck->array_count, err) != 0) return -1;
    const nn_array *epoch = require(ck->arrays, ck->array_count, "train.epoch", NN_I64, 1, path, err);
    if (!epoch || parse_stored_config(&ck->config, ck->arrays, ck->array_count, path, err) != 0) goto fail;
    ck->epoch = (int)*(const int64_t *)epoch->data;
    /* The input shape may have come from the data rather than the config. */
    const nn_array *shape = require(ck->arrays, ck->array_count, "train.input_shape", NN_I64, 0, path, err);
    if (!shape) goto fail;
    nn_shape input_shape = {(int)nn_array_count(shape), {0, 0, 0}};
    if (input_shape.rank < 1 || input_shape.rank > 3) {
        nn_error_set(err, NN_ERR_INPUT, "%s: bad train.input_shape", path);
        goto fail;
    }
    for (int i = 0; i < input_shape.rank; i++) {
        int64_t d = ((const int64_t *)shape->data)[i];
        if (d < 1 || d > 1 << 20) {
            nn_error_set(err, NN_ERR_INPUT, "%s: bad train.input_shape", path);
            goto fail;
        }
        input_shape.dims[i] = (int)d;
    }
    ck->model = nn_model_create(ck->config.model.layers, ck->config.model.layer_count, input_shape,
                                ck->config.seed, ck->config.path, err);
    if (!ck->model ||
        nn_model_load_state(ck->model, ck->arrays, ck->array_count, MODEL_PREFIX, path, err) != 0)
        goto fail;
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
    memset(ck, 0, sizeof *ck);
}

int nn_trainer_resume(nn_trainer *t, const char *path, nn_error *err) {
    nn_array *arrays = NULL;
    size_t count = 0;
    if (nn_container_read(path, &arrays, &count, err) != 0) return -1;
    int status = -1;
    const nn_array *epoch = require(arrays, count, "train.epoch", NN_I64, 1, path, err);
    const nn_array *bad = epoch ? require(arrays, count, "train.bad_epochs", NN_I64, 1, path, err) : NULL;
    const nn_array *best = bad ? require(arrays, count, "train.best_val_loss_bits", NN_I64, 1, path, err) : NULL;
    const nn_array *shuffle = best ? require(arrays, count, "rng.shuffle", NN_I64, 4, path, err) : NULL;
    /* Dropout draws from per-sample streams keyed by the seed, the epoch and
     * the sample: no state to restore (an older checkpoint's rng.dropout is
     * ignored). */
    const nn_array *steps = shuffle ? require(arrays, count, "optimizer.steps", NN_I64, 1, path, err) : NULL;
    if (!steps) goto done;
    const nn_array *buffers[NN_OPTIMIZER_MAX_BUFFERS];
    for (int b = 0; b < t->optimizer.kind->buffer_count; b++) {
        char name[64];
        snprintf(name, sizeof name, OPTIMIZER_PREFIX "%s", t->optimizer.kind->buffer_names[b]);
        if (!nn_container_find(arrays, count, name)) {
            nn_error_set(err, NN_ERR_INPUT, "%s: was not trained with optimizer %s (no '%s'): resume with the same optimizer",
                         path, t->optimizer.kind->name, name);
            goto done;
        }
        if (!(buffers[b] = require(arrays, count, name, NN_F32, t->optimizer.param_count, path, err))) goto done;
    }
    if (nn_model_load_state(t->model, arrays, count, MODEL_PREFIX, path, err) != 0) goto done;
    for (int b = 0; b < t->optimizer.kind->buffer_count; b++)
        memcpy(t->optimizer.buffers[b], buffers[b]->data, t->optimizer.param_count * sizeof(float));
    t->optimizer.steps = *(const int64_t *)steps->data;
    t->epoch = (int)*(const int64_t *)epoch->data;
    t->bad_epochs = (int)*(const int64_t *)bad->data;
    memcpy(&t->best_val_loss, best->data, sizeof t->best_val_loss);
    memcpy(t->shuffle_rng.state, shuffle->data, sizeof t->shuffle_rng.state);
    status = 0;
done:
    nn_arrays_free(arrays, count);
    return status;
}
