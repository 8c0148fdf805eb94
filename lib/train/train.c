#include "train/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io/npz.h"
#include "core/target_clones.h"

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

void nn_pixel_transform_init(nn_pixel_transform *pixels, const nn_config *config) {
    pixels->normalize = config->data.normalize;
    pixels->mean = config->data.normalize ? (float)config->data.mean : 0.0f;
    pixels->std = config->data.normalize ? (float)config->data.std : 1.0f;
}

nn_shape nn_dataset_shape(const nn_dataset *set) {
    return (nn_shape){3, {set->channels, set->height, set->width}};
}

/* Arithmetic rather than a 256-entry table: the conversion vectorises, a
 * table lookup per pixel does not; the divisions keep it bit-identical to
 * torch_ref.py's float32 numpy. */
NN_VECTOR_CLONES void nn_gather_batch(float *input, const nn_pixel_transform *pixels, const uint8_t *images,
                                      size_t item_size, const uint32_t *order, int first, int count) {
    float mean = pixels->mean, std = pixels->std;
    for (int b = 0; b < count; b++) {
        size_t index = order ? order[first + b] : (size_t)(first + b);
        const uint8_t *restrict src = images + index * item_size;
        float *restrict dst = input + (size_t)b * item_size;
        if (pixels->normalize)
            for (size_t j = 0; j < item_size; j++) dst[j] = ((float)src[j] / 255.0f - mean) / std;
        else
            for (size_t j = 0; j < item_size; j++) dst[j] = (float)src[j] / 255.0f;
    }
}

static int argmax(const float *row, int n) {
    int best = 0;
    for (int j = 1; j < n; j++)
        if (row[j] > row[best]) best = j;
    return best;
}

static int max_label(const nn_dataset *set) {
    int max = 0;
    for (int i = 0; i < set->count; i++)
        if (set->labels.data[i] > max) max = set->labels.data[i];
    return max;
}

/* The model's input shape: the config's, checked against the data's size. */
static int input_shape_for(const nn_config *config, const nn_dataset *set, nn_shape *shape, nn_error *err) {
    nn_shape data_shape = nn_dataset_shape(set);
    if (!config->model.has_input_shape) {
        *shape = data_shape;
        return 0;
    }
    *shape = config->model.input_shape;
    if (nn_shape_size(*shape) != nn_shape_size(data_shape)) {
        char want[64], got[64];
        nn_shape_format(*shape, want, sizeof want);
        nn_shape_format(data_shape, got, sizeof got);
        return nn_error_set(err, NN_ERR_INPUT, "%s: model.input_shape is %s but the images in %s are %s",
                            config->path, want, config->data.train.images, got);
    }
    return 0;
}

static int load_init_weights(nn_model *model, const char *path, nn_error *err) {
    nn_array *arrays = NULL;
    size_t count = 0;
    if (nn_npz_read(path, &arrays, &count, err) != 0) return -1;
    int status = nn_model_load_state(model, arrays, count, "", path, err);
    nn_arrays_free(arrays, count);
    return status;
}

/* Every training batch, the last one of an epoch included, must be large
 * enough for every layer (BatchNorm needs two samples when it sees one
 * value per channel). */
static int check_batch_sizes(const nn_trainer *t, nn_error *err) {
    int batch_size = t->config->train.batch_size;
    int last = t->train_count % batch_size ? t->train_count % batch_size : batch_size;
    int smallest = last < batch_size ? last : batch_size;
    for (int i = 0; i < t->model->layer_count; i++) {
        const nn_layer *layer = t->model->layers[i];
        if (smallest < layer->min_train_batch)
            return nn_error_set(err, NN_ERR_INPUT,
                                "%s:%d:%d: layer %d (%s) needs at least %d samples per training batch, but with "
                                "%d training samples and batch_size %d a batch has %d: change train.batch_size "
                                "or data.val_split",
                                t->config->path, t->config->model.layers[i].line, t->config->model.layers[i].column,
                                i, layer->kind->name, layer->min_train_batch, t->train_count, batch_size, smallest);
    }
    return 0;
}

nn_trainer *nn_trainer_create(const nn_config *config, nn_error *err) {
    if (!config->data.train.images) {
        nn_error_set(err, NN_ERR_INPUT, "%s: no training data: add data.train.images and data.train.labels",
                     config->path);
        return NULL;
    }
    nn_trainer *t = calloc(1, sizeof *t);
    if (!t) {
        nn_error_oom(err, "the trainer");
        return NULL;
    }
    t->config = config;
    t->best_val_loss = INFINITY;
    nn_shape input_shape;
    if (nn_dataset_load(&t->data, config->data.train.images, config->data.train.labels, 0, err) != 0 ||
        input_shape_for(config, &t->data, &input_shape, err) != 0)
        goto fail;
    t->val_count = (int)floor(config->data.val_split * t->data.count);
    t->train_count = t->data.count - t->val_count;
    if (t->train_count < 1) {
        nn_error_set(err, NN_ERR_INPUT, "%s: val_split %g leaves no training samples", config->path,
                     config->data.val_split);
        goto fail;
    }
    if (config->train.early_stop && t->val_count == 0) {
        nn_error_set(err, NN_ERR_INPUT, "%s: train.early_stop watches the validation loss: set data.val_split > 0",
                     config->path);
        goto fail;
    }
    t->model = nn_model_create(config->model.layers, config->model.layer_count, input_shape, config->seed,
                               config->path, err);
    if (!t->model) goto fail;
    nn_shape output_shape = nn_model_output_shape(t->model);
    if (config->loss->check(output_shape, max_label(&t->data) + 1, err) != 0) {
        nn_error_prefix(err, "%s: loss %s", config->path, config->loss->name);
        goto fail;
    }
    t->classes = output_shape.dims[0];
    if (check_batch_sizes(t, err) != 0) goto fail;
    /* The test split is read and checked now, not after the last epoch. */
    if (config->data.test.images &&
        (nn_dataset_load(&t->test, config->data.test.images, config->data.test.labels, t->classes, err) != 0 ||
         nn_dataset_check_input(&t->test, t->model, config->data.test.images, err) != 0))
        goto fail;
    /* Validation and test run in training-sized batches too, so a run's
     * memory is the data plus what one batch needs. */
    if (nn_model_reserve(t->model, config->train.batch_size, err) != 0) goto fail;
    if (config->init && load_init_weights(t->model, config->init, err) != 0) goto fail;
    if (nn_optimizer_init(&t->optimizer, config->optimizer.kind, config->optimizer.args, t->model->param_count,
                          err) != 0)
        goto fail;
    t->order = malloc((size_t)t->train_count * sizeof *t->order);
    t->labels = malloc((size_t)config->train.batch_size);
    if (!t->order || !t->labels) {
        nn_error_oom(err, "the sample order");
        goto fail;
    }
    nn_pixel_transform_init(&t->pixels, config);
    /* Its own stream, so changing the model does not change the data order. */
    nn_rng_seed(&t->shuffle_rng, config->seed ^ 0x9e3779b97f4a7c15ULL);
    return t;
fail:
    nn_trainer_free(t);
    return NULL;
}

void nn_trainer_free(nn_trainer *t) {
    if (!t) return;
    nn_model_free(t->model);
    nn_optimizer_free(&t->optimizer);
    nn_dataset_free(&t->data);
    nn_dataset_free(&t->test);
    free(t->order);
    free(t->labels);
    free(t);
}

static void shuffle(uint32_t *order, int count, nn_rng *rng) {
    for (int i = count - 1; i > 0; i--) {
        uint32_t j = nn_rng_below(rng, (uint32_t)i + 1);
        uint32_t swap = order[i];
        order[i] = order[j];
        order[j] = swap;
    }
}

static double learning_rate(const nn_trainer *t, int epoch_index) {
    const nn_config *c = t->config;
    double base = nn_optimizer_arg(&t->optimizer, "lr", 0);
    return c->scheduler.kind ? c->scheduler.kind->lr_at(c->scheduler.args, base, epoch_index) : base;
}

int nn_trainer_epoch(nn_trainer *t, nn_epoch_report *report, nn_progress_fn progress, void *progress_user,
                     nn_error *err) {
    const nn_config *c = t->config;
    memset(report, 0, sizeof *report);
    for (int i = 0; i < t->train_count; i++) t->order[i] = (uint32_t)i;
    if (c->train.shuffle) shuffle(t->order, t->train_count, &t->shuffle_rng);
    t->optimizer.lr = learning_rate(t, t->epoch);
    nn_model *model = t->model;
    int outputs = t->classes, batch_size = c->train.batch_size;
    size_t item_size = t->data.images.item_size;
    double loss_sum = 0, start = now_seconds();
    long correct = 0;
    for (int first = 0; first < t->train_count; first += batch_size) {
        int batch = t->train_count - first < batch_size ? t->train_count - first : batch_size;
        nn_gather_batch(nn_model_input(model), &t->pixels, t->data.images.data, item_size, t->order, first, batch);
        for (int b = 0; b < batch; b++) t->labels[b] = t->data.labels.data[t->order[first + b]];
        const float *output = nn_model_forward(model, batch, true);
        double loss = c->loss->compute(nn_model_output_grad(model), NULL, output, t->labels, batch, outputs);
        for (int b = 0; b < batch; b++) correct += argmax(output + (size_t)b * outputs, outputs) == t->labels[b];
        nn_model_backward(model, batch);
        nn_optimizer_step(&t->optimizer, model->params, model->grads);
        loss_sum += loss * batch;
        if (!isfinite(loss))
            return nn_error_set(err, NN_ERR_RUNTIME,
                                "epoch %d: the training loss became %g (try a smaller learning rate)",
                                t->epoch + 1, loss);
        if (progress) progress(progress_user, first + batch, t->train_count, loss_sum / (first + batch));
    }
    report->seconds = now_seconds() - start;
    report->samples_per_second = t->train_count / (report->seconds > 0 ? report->seconds : 1e-9);
    report->train = (nn_metrics){loss_sum / t->train_count, (double)correct / t->train_count, t->train_count};
    report->lr = t->optimizer.lr;
    t->epoch++;
    report->epoch = t->epoch;
    report->epochs = c->train.epochs;
    if (t->val_count > 0) {
        report->has_val = true;
        if (nn_evaluate(model, c->loss, &t->pixels, &t->data, t->train_count, t->val_count, &report->val, NULL,
                        err) != 0)
            return -1;
        if (report->val.loss < t->best_val_loss - c->train.min_delta) {
            t->best_val_loss = report->val.loss;
            t->bad_epochs = 0;
            report->improved = true;
        } else {
            t->bad_epochs++;
        }
        report->stop = c->train.early_stop && t->bad_epochs >= c->train.patience;
    }
    return 0;
}

int nn_dataset_check_input(const nn_dataset *set, const nn_model *model, const char *images_path, nn_error *err) {
    size_t want = nn_shape_size(model->input_shape);
    if (set->images.item_size == want) return 0;
    char model_shape[64], data_shape[64];
    nn_shape_format(model->input_shape, model_shape, sizeof model_shape);
    nn_shape_format(nn_dataset_shape(set), data_shape, sizeof data_shape);
    return nn_error_set(err, NN_ERR_INPUT, "%s: images are %s (%zu values) but the model takes %s (%zu values)",
                        images_path, data_shape, set->images.item_size, model_shape, want);
}

int nn_evaluate(nn_model *model, const nn_loss_kind *loss, const nn_pixel_transform *pixels, const nn_dataset *set,
                int first, int count, nn_metrics *metrics, int64_t *confusion, nn_error *err) {
    /* As many samples at a time as the model has room for. */
    int batch_size = model->max_batch > 0 ? model->max_batch : NN_EVAL_BATCH;
    if (nn_model_reserve(model, batch_size, err) != 0) return -1;
    float *sample_losses = malloc((size_t)batch_size * sizeof *sample_losses);
    if (!sample_losses) return nn_error_oom(err, "the evaluation losses");
    int outputs = nn_model_output_shape(model).dims[0];
    if (confusion) memset(confusion, 0, (size_t)outputs * outputs * sizeof *confusion);
    double loss_sum = 0;
    long correct = 0;
    for (int done = 0; done < count; done += batch_size) {
        int batch = count - done < batch_size ? count - done : batch_size;
        nn_gather_batch(nn_model_input(model), pixels, set->images.data, set->images.item_size, NULL,
                        first + done, batch);
        const uint8_t *labels = set->labels.data + first + done;
        const float *output = nn_model_forward(model, batch, false);
        loss->compute(NULL, sample_losses, output, labels, batch, outputs);
        for (int b = 0; b < batch; b++) {
            /* Summed sample by sample, so the total does not depend on the batch size. */
            loss_sum += sample_losses[b];
            int predicted = argmax(output + (size_t)b * outputs, outputs);
            correct += predicted == labels[b];
            if (confusion) confusion[(size_t)labels[b] * outputs + predicted]++;
        }
    }
    free(sample_losses);
    *metrics = (nn_metrics){count ? loss_sum / count : 0, count ? (double)correct / count : 0, count};
    return 0;
}
