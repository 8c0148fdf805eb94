#include "train/train.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/source.h"
#include "io/checkpoint.h"
#include "train/collective.h"
#include "io/npz.h"

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int nn_config_transform(const nn_config *config, nn_shape input_shape, nn_input_transform *transform,
                        nn_error *err) {
    memset(transform, 0, sizeof *transform);
    transform->size = nn_shape_size(input_shape);
    if (config->data.normalize != NN_NORMALIZE_GIVEN) return 0;
    if (nn_input_transform_from_lists(transform, input_shape, config->data.mean, config->data.std,
                                      config->data.normalize_count, err) != 0)
        return nn_error_prefix(err, "%s", config->path);
    return 0;
}

int nn_dataset_check_input(const nn_dataset *set, const nn_model *model, nn_error *err) {
    size_t want = nn_shape_size(model->input_shape);
    if (set->input_size == want) return 0;
    char model_shape[64], data_shape[64];
    nn_shape_format(model->input_shape, model_shape, sizeof model_shape);
    nn_shape_format(set->shape, data_shape, sizeof data_shape);
    return nn_error_set(err, NN_ERR_INPUT, "%s: samples are %s (%zu values) but the model takes %s (%zu values)",
                        set->input_origin.path, data_shape, set->input_size, model_shape, want);
}

/* The model's input shape: the config's, checked against the data's size. */
static int input_shape_for(const nn_config *config, const nn_dataset *set, nn_shape *shape, nn_error *err) {
    if (!config->model.has_input_shape) {
        *shape = set->shape;
        return 0;
    }
    *shape = config->model.input_shape;
    if (nn_shape_size(*shape) != set->input_size) {
        char want[64], got[64];
        nn_shape_format(*shape, want, sizeof want);
        nn_shape_format(set->shape, got, sizeof got);
        return nn_error_set(err, NN_ERR_INPUT, "%s: model.input_shape is %s (%zu values) but the samples in %s are "
                            "%s (%zu values)", config->path, want, nn_shape_size(*shape), set->input_origin.path,
                            got, set->input_size);
    }
    return 0;
}

static int bind(const nn_config *config, nn_dataset *set, int outputs, const char *split, nn_error *err) {
    return nn_dataset_bind(set, &config->loss, outputs, config->data.target_is_input, split, err);
}

static int model_outputs(const nn_model *model) { return (int)nn_shape_size(nn_model_output_shape(model)); }

/* The training file, bound, permuted under shuffle_split, its test tail
 * (test_split) moved into test when test is not NULL. */
static int load_training_file(const nn_config *config, const nn_model *model, int outputs, nn_dataset *set,
                              nn_dataset *test, nn_error *err) {
    if (nn_data_load(set, config->data.format, &config->data.csv, &config->data.train,
                     config->data.target_is_input, err) != 0)
        return -1;
    if ((model && nn_dataset_check_input(set, model, err) != 0) || bind(config, set, outputs, "train", err) != 0 ||
        (config->data.shuffle_split && nn_dataset_permute(set, config->seed, err) != 0))
        return -1;
    if (!test) return 0;
    int64_t test_count = (int64_t)floor(config->data.test_split * (double)set->count);
    if (test_count > 0 && nn_dataset_split_tail(set, test_count, test, err) != 0) return -1;
    return 0;
}

int nn_load_split(const nn_config *config, const nn_data_files *files, const nn_model *model, bool without_targets,
                  const char *split, nn_dataset *set, nn_error *err) {
    memset(set, 0, sizeof *set);
    int outputs = model_outputs(model);
    if (!files && !config->data.has_test) {
        if (!(config->data.test_split > 0))
            return nn_error_set(err, NN_ERR_INPUT, "%s: no test split: the config has neither data.test nor "
                                "data.test_split", config->path);
        nn_dataset all;
        int status = load_training_file(config, model, outputs, &all, set, err);
        nn_dataset_free(&all);
        if (status == 0 && set->count == 0)
            status = nn_error_set(err, NN_ERR_INPUT, "%s: data.test_split leaves no test samples", config->path);
        if (status != 0) nn_dataset_free(set);
        return status;
    }
    if (!files) files = &config->data.test;
    bool no_targets = without_targets || config->data.target_is_input;
    if (nn_data_load(set, config->data.format, &config->data.csv, files, no_targets, err) != 0) return -1;
    if (nn_dataset_check_input(set, model, err) != 0 || (!without_targets && bind(config, set, outputs, split, err) != 0)) {
        nn_dataset_free(set);
        return -1;
    }
    return 0;
}

/* The .npy headers first (data NULL): every key, shape and dtype is
 * checked before any data is inflated, so that what is inflated is what
 * the model holds. */
static int load_init_weights(nn_model *model, const char *path, nn_error *err) {
    nn_npz *npz = NULL;
    if (nn_npz_open(&npz, path, err) != 0) return -1;
    size_t count = nn_npz_count(npz);
    nn_array *arrays = calloc(count ? count : 1, sizeof *arrays);
    int status = arrays ? 0 : nn_error_oom(err, "the init weights");
    for (size_t i = 0; status == 0 && i < count; i++) status = nn_npz_read_header(npz, i, &arrays[i], err);
    if (status == 0) status = nn_model_load_state(model, arrays, count, "", path, err);
    for (size_t i = 0; status == 0 && i < count; i++) status = nn_npz_read_entry(npz, i, &arrays[i], err);
    if (status == 0) status = nn_model_load_state(model, arrays, count, "", path, err);
    nn_npz_close(npz);
    nn_arrays_free(arrays, count);
    return status;
}

/* Every training batch, the last one of an epoch included, must be large
 * enough for every layer (BatchNorm needs two samples when it sees one
 * value per channel). */
static int check_batch_sizes(const nn_trainer *t, nn_error *err) {
    int batch_size = t->batch_size;
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

static int check_loss(const nn_config *config, const nn_model *model, nn_error *err) {
    if (config->loss.kind->check(&config->loss, nn_model_output_shape(model), err) == 0) return 0;
    if (config->loss_line > 0)
        return nn_error_prefix(err, "%s:%d:%d: loss %s", config->path, config->loss_line, config->loss_column,
                               config->loss.kind->name);
    return nn_error_prefix(err, "%s: loss %s", config->path, config->loss.kind->name);
}

int nn_eval_batch(const nn_model *model) {
    /* Per sample: every activation, and the two gradient buffers as large
     * as the largest (what a replica holds), in floats. */
    size_t largest = nn_shape_size(model->input_shape), floats = largest;
    for (int i = 0; i < model->layer_count; i++) {
        size_t size = nn_shape_size(model->layers[i]->out_shape);
        floats += size;
        largest = size > largest ? size : largest;
    }
    floats += 2 * largest;
    size_t fits = ((size_t)32 << 20) / (floats * sizeof(float) + 1);
    return fits > 1024 ? 1024 : fits < 1 ? 1 : (int)fits;
}

static bool logits_of(const nn_loss_kind *kind) { return !strcmp(kind->name, "bce_with_logits"); }

static int set_no_decay(nn_trainer *t, nn_error *err);

nn_trainer *nn_trainer_create(const nn_config *config, int threads, nn_error *err) {
    const char *input_path = nn_data_input_path(&config->data.train);
    if (!input_path) {
        nn_error_set(err, NN_ERR_INPUT, "%s: no training data: add data.train (%s)", config->path,
                     config->data.format == NN_FORMAT_IDX ? "{images: PATH, labels: PATH}"
                     : config->data.format == NN_FORMAT_CSV ? "{file: PATH}" : "{features: PATH, targets: PATH}");
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
    /* The inputs first: the model's input shape may come from them. */
    if (nn_data_load(&t->data, config->data.format, &config->data.csv, &config->data.train,
                     config->data.target_is_input, err) != 0 ||
        input_shape_for(config, &t->data, &input_shape, err) != 0)
        goto fail;
    t->model = nn_model_create(config->model.layers, config->model.layer_count, input_shape, config->seed,
                               config->path, err);
    if (!t->model || check_loss(config, t->model, err) != 0) goto fail;
    t->outputs = model_outputs(t->model);
    t->task = nn_task_for(config->loss.kind, t->outputs, config->data.target_is_input);
    if (t->data.count > INT_MAX) {
        nn_error_set(err, NN_ERR_INPUT, "%s: %" PRId64 " samples (expected at most %d)", input_path, t->data.count,
                     INT_MAX);
        goto fail;
    }
    if (bind(config, &t->data, t->outputs, "train", err) != 0 ||
        (config->data.shuffle_split && nn_dataset_permute(&t->data, config->seed, err) != 0))
        goto fail;
    /* The test split is read and checked now, not after the last epoch. */
    if (config->data.has_test) {
        if (nn_load_split(config, NULL, t->model, false, "test", &t->test, err) != 0) goto fail;
    } else if (config->data.test_split > 0) {
        int64_t test_count = (int64_t)floor(config->data.test_split * (double)t->data.count);
        if (test_count < 1) {
            nn_error_set(err, NN_ERR_INPUT, "%s: data.test_split %g of %" PRId64 " samples leaves no test samples",
                         config->path, config->data.test_split, t->data.count);
            goto fail;
        }
        if (nn_dataset_split_tail(&t->data, test_count, &t->test, err) != 0) goto fail;
    }
    t->val_count = (int)floor(config->data.val_split * (double)t->data.count);
    t->train_count = (int)t->data.count - t->val_count;
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
    if (config->scheduler.kind && config->scheduler.kind->observe && t->val_count == 0) {
        nn_error_set(err, NN_ERR_INPUT, "%s:%d:%d: scheduler %s watches the validation loss: set data.val_split > 0",
                     config->path, config->scheduler_line, config->scheduler_column, config->scheduler.kind->name);
        goto fail;
    }
    if (config->data.normalize == NN_NORMALIZE_AUTO) {
        if (nn_input_transform_fit(&t->transform, &t->data, 0, t->train_count, err) != 0) goto fail;
    } else if (nn_config_transform(config, input_shape, &t->transform, err) != 0) {
        goto fail;
    }
    /* A batch larger than the data is the whole data (torch's DataLoader
     * does the same): memory is reserved for what a batch can hold. */
    t->batch_size = config->train.batch_size < t->train_count ? config->train.batch_size : t->train_count;
    if (check_batch_sizes(t, err) != 0) goto fail;

    /* Room for a training batch and for an evaluation batch, so a run's
     * memory is the data plus what one batch needs. */
    t->eval_batch = nn_eval_batch(t->model);
    if (!(t->engine = nn_engine_create(t->model, threads, t->batch_size > t->eval_batch ? t->batch_size : t->eval_batch,
                                       err)))
        goto fail;
    if (config->init && load_init_weights(t->model, config->init, err) != 0) goto fail;
    if (nn_optimizer_init(&t->optimizer, config->optimizer.kind, config->optimizer.args, t->model->param_count,
                          err) != 0)
        goto fail;
    t->base_momentum = t->optimizer.momentum;
    if (set_no_decay(t, err) != 0) goto fail;
    if (config->scheduler.kind && config->scheduler.kind->state_init)
        config->scheduler.kind->state_init(&config->scheduler, nn_optimizer_arg(&t->optimizer, "lr", 0),
                                           t->schedule_state);
    t->order = malloc((size_t)t->train_count * sizeof *t->order);
    if (!t->order) {
        nn_error_oom(err, "the sample order");
        goto fail;
    }
    if (!(t->train_metrics = nn_metrics_acc_create(t->task, t->outputs, logits_of(config->loss.kind), t->train_count,
                                                   err)))
        goto fail;
    t->train_fingerprint = nn_dataset_fingerprint(&t->data);
    if (t->test.count > 0) t->test_fingerprint = nn_dataset_fingerprint(&t->test);
    /* Its own stream, so changing the model does not change the data order. */
    nn_rng_seed(&t->shuffle_rng, config->seed ^ 0x9e3779b97f4a7c15ULL);
    return t;
fail:
    nn_trainer_free(t);
    return NULL;
}

void nn_trainer_free(nn_trainer *t) {
    if (!t) return;
    nn_engine_free(t->engine);   /* its replicas use the model */
    nn_model_free(t->model);
    nn_optimizer_free(&t->optimizer);
    nn_dataset_free(&t->data);
    nn_dataset_free(&t->test);
    nn_input_transform_free(&t->transform);
    nn_metrics_acc_free(t->train_metrics);
    free(t->overrides);
    free(t->order);
    free(t->history);
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

/* The optimiser's rate (and momentum, for OneCycleLR) for its next step:
 * from where training stands, or from the state of a schedule that
 * watches the validation loss. */
static void schedule_step(nn_trainer *t) {
    const nn_schedule *schedule = &t->config->scheduler;
    double base = nn_optimizer_arg(&t->optimizer, "lr", 0);
    if (!schedule->kind) {
        t->optimizer.lr = base;
        return;
    }
    if (schedule->kind->lr_from_state) {
        t->optimizer.lr = schedule->kind->lr_from_state(schedule, t->schedule_state);
        return;
    }
    int batch_size = t->batch_size;
    nn_schedule_time time = {t->epoch, t->optimizer.steps, (t->train_count + batch_size - 1) / batch_size,
                             t->config->train.epochs};
    t->optimizer.lr = schedule->kind->lr_at(schedule, base, &time);
    if (schedule->kind->momentum_at && !isnan(t->base_momentum))
        t->optimizer.momentum = schedule->kind->momentum_at(schedule, t->base_momentum, &time);
}

/* Flags the parameters that no_decay keeps weight decay off: entries
 * named bias, and every entry of a normalisation layer. */
static int set_no_decay(nn_trainer *t, nn_error *err) {
    const nn_config *c = t->config;
    if (!c->optimizer.no_decay_bias && !c->optimizer.no_decay_norm) return 0;
    unsigned char *mask = calloc(t->model->param_count ? t->model->param_count : 1, 1);
    if (!mask) return nn_error_oom(err, "the no_decay mask");
    size_t offset = 0;
    for (int i = 0; i < t->model->layer_count; i++) {
        const nn_layer *layer = t->model->layers[i];
        bool norm = strstr(layer->kind->name, "Norm") != NULL;
        for (int j = 0; j < layer->state_count; j++) {
            const nn_state *state = &layer->state[j];
            if (!state->trainable) continue;
            size_t count = nn_array_count(&state->array);
            bool off = (c->optimizer.no_decay_norm && norm) ||
                       (c->optimizer.no_decay_bias && !strcmp(state->array.name, "bias"));
            if (off) memset(mask + offset, 1, count);
            offset += count;
        }
    }
    int status = nn_optimizer_set_no_decay(&t->optimizer, mask, err);
    free(mask);
    return status;
}

/* The Dropout key of an epoch: each sample's draws are keyed by it and the
 * sample's row, so they are the same whatever the split and need no state
 * in a checkpoint. */
static uint64_t epoch_key(const nn_trainer *t) {
    return nn_key_mix(t->config->seed ^ 0x5deece66dULL, (uint64_t)t->epoch);
}

/* This epoch's order: a fresh permutation at an epoch's start, or after a
 * resume in the middle of one the same permutation drawn again from the
 * stream as it stood before it (checked against where the stream ended). */
static int epoch_order(nn_trainer *t, nn_error *err) {
    if (t->order_ready) return 0;
    for (int i = 0; i < t->train_count; i++) t->order[i] = (uint32_t)i;
    if (t->epoch_position == 0) {
        t->epoch_shuffle_rng = t->shuffle_rng;
        if (t->config->train.shuffle) shuffle(t->order, t->train_count, &t->shuffle_rng);
    } else if (t->config->train.shuffle) {
        nn_rng replay = t->epoch_shuffle_rng;
        shuffle(t->order, t->train_count, &replay);
        if (memcmp(replay.state, t->shuffle_rng.state, sizeof replay.state) != 0)
            return nn_error_set(err, NN_ERR_INPUT, "the checkpoint's shuffle streams disagree: it was not written by "
                                "this version of nnseq, or it is damaged");
    }
    t->order_ready = true;
    return 0;
}

/* A step that went NaN or infinite: stop with where it happened (the run
 * goes no further, so nothing poisoned is saved; the last checkpoint stays
 * the last good one). */
static int numerical_fault(const nn_trainer *t, int step, nn_error *err) {
    nn_nonfinite_place place = nn_engine_find_nonfinite(t->engine);
    char where[160];
    if (place.layer >= 0)
        snprintf(where, sizeof where, "the %s of layer %d (%s) became NaN or infinite in %s",
                 place.in_forward ? "output" : "gradient", place.layer, t->model->layers[place.layer]->kind->name,
                 place.in_forward ? "forward" : "backward");
    else
        snprintf(where, sizeof where, "the loss (%s) became NaN or infinite from finite outputs",
                 t->config->loss.kind->name);
    return nn_error_set(err, NN_ERR_RUNTIME, "epoch %d, step %d: %s; stopped without saving, so the last "
                        "checkpoint is the last good one (try a smaller learning rate, or check the data)",
                        t->epoch + 1, step, where);
}

/* --- Data-parallel ranks ------------------------------------------------------ */

static bool distributed(const nn_trainer *t) { return t->collective && t->collective->size > 1; }

static uint64_t hash_bytes(uint64_t hash, const void *data, size_t size) {
    const unsigned char *p = data;
    for (size_t i = 0; i < size; i++) hash = (hash ^ p[i]) * 0x100000001b3ULL;   /* FNV-1a */
    return hash;
}

/* Whether any rank's flag is set (every rank gets the same answer). */
static int any_rank(const nn_trainer *t, bool flag, bool *any, nn_error *err) {
    double value = flag;
    if (t->collective->sum_doubles(t->collective, &value, 1, err) != 0) return -1;
    *any = value > 0;
    return 0;
}

/* An accumulator's state as bytes: [counts, sums] with their sizes first. */
static int acc_bytes(const nn_metrics_acc *acc, unsigned char **bytes, size_t *size, nn_error *err) {
    int64_t *counts;
    double *sums;
    size_t nc, ns;
    if (nn_metrics_acc_save(acc, &counts, &nc, &sums, &ns, err) != 0) return -1;
    uint64_t header[2] = {nc, ns};
    *size = sizeof header + nc * sizeof *counts + ns * sizeof *sums;
    *bytes = malloc(*size);
    if (*bytes) {
        memcpy(*bytes, header, sizeof header);
        memcpy(*bytes + sizeof header, counts, nc * sizeof *counts);
        memcpy(*bytes + sizeof header + nc * sizeof *counts, sums, ns * sizeof *sums);
    }
    free(counts);
    free(sums);
    return *bytes ? 0 : nn_error_oom(err, "the metrics to send");
}

/* Every rank's accumulator merged, in rank order, into rank 0's; the
 * others' emptied (so that their states still add up to the whole). */
static int merge_metrics(const nn_trainer *t, nn_metrics_acc *acc, nn_error *err) {
    const nn_collective *c = t->collective;
    unsigned char *mine = NULL, *all = NULL;
    size_t size = 0, *sizes = calloc((size_t)c->size, sizeof *sizes);
    if (!sizes) return nn_error_oom(err, "the ranks' metric sizes");
    int status = acc_bytes(acc, &mine, &size, err);
    /* A rank that failed still takes part with nothing, then the job ends. */
    if (c->gather(c, mine, status == 0 ? size : 0, (void **)&all, sizes, err) != 0) status = -1;
    free(mine);
    if (status == 0 && c->rank == 0) {
        nn_metrics_acc_reset(acc);
        size_t offset = 0;
        for (int r = 0; r < c->size && status == 0; r++) {
            uint64_t header[2];
            if (sizes[r] < sizeof header) {
                status = nn_error_set(err, NN_ERR_RUNTIME, "rank %d sent no metrics", r);
                break;
            }
            memcpy(header, all + offset, sizeof header);
            /* A rank's bytes are what its own save wrote; checked anyway,
             * before anything is allocated or read from them. */
            if (header[0] > sizes[r] / sizeof(int64_t) || header[1] > sizes[r] / sizeof(double) ||
                sizeof header + header[0] * sizeof(int64_t) + header[1] * sizeof(double) != sizes[r]) {
                status = nn_error_set(err, NN_ERR_RUNTIME, "rank %d sent %zu bytes of metrics that do not parse", r,
                                      sizes[r]);
                break;
            }
            int64_t *counts = malloc(header[0] * sizeof *counts + 1);
            double *sums = malloc(header[1] * sizeof *sums + 1);
            nn_metrics_acc *part = NULL;
            if (counts && sums) {
                memcpy(counts, all + offset + sizeof header, header[0] * sizeof *counts);
                memcpy(sums, all + offset + sizeof header + header[0] * sizeof *counts, header[1] * sizeof *sums);
                /* counts[0] is the samples the rank accumulated. */
                part = nn_metrics_acc_create(t->task, t->outputs, logits_of(t->config->loss.kind),
                                             header[0] > 0 && counts[0] > 0 ? counts[0] : 1, err);
            }
            if (!part) {
                if (counts && sums) status = -1;
                else status = nn_error_oom(err, "a rank's metrics");
            } else {
                if (nn_metrics_acc_load(part, counts, header[0], sums, header[1], err) != 0 ||
                    nn_metrics_acc_merge(acc, part, err) != 0)
                    status = -1;
            }
            nn_metrics_acc_free(part);
            free(counts);
            free(sums);
            offset += sizes[r];
        }
    } else if (status == 0) {
        nn_metrics_acc_reset(acc);
    }
    free(all);
    free(sizes);
    return status;
}

/* The metrics of everything the ranks accumulated: merged and finished on
 * rank 0, the same numbers sent to every rank. */
static int finish_metrics(const nn_trainer *t, nn_metrics_acc *acc, nn_metrics *metrics, nn_error *err) {
    if (!distributed(t)) {
        nn_metrics_acc_finish(acc, metrics, NULL);
        return 0;
    }
    if (merge_metrics(t, acc, err) != 0) return -1;
    memset(metrics, 0, sizeof *metrics);
    if (t->collective->rank == 0) nn_metrics_acc_finish(acc, metrics, NULL);
    return t->collective->broadcast(t->collective, metrics, sizeof *metrics, err);
}

int nn_trainer_distribute(nn_trainer *t, const nn_collective *c, const char *version, nn_error *err) {
    if (!c || c->size <= 1) return 0;
    /* The same run everywhere: config (with the options applied), data and
     * nnseq itself, compared with rank 0's; every rank learns who differs. */
    char *rendered = nn_config_render(t->config, false, err);
    if (!rendered) return -1;
    uint64_t mine[3] = {hash_bytes(0xcbf29ce484222325ULL, rendered, strlen(rendered)),
                        hash_bytes(0xcbf29ce484222325ULL, &t->train_fingerprint, sizeof t->train_fingerprint),
                        hash_bytes(0xcbf29ce484222325ULL, version, strlen(version))};
    free(rendered);
    uint64_t root[3];
    memcpy(root, mine, sizeof root);
    double *differ = calloc(3 * (size_t)c->size, sizeof *differ);
    if (!differ) return nn_error_oom(err, "the ranks' comparison");
    int status = c->broadcast(c, root, sizeof root, err);
    for (int k = 0; k < 3 && status == 0; k++) differ[k * c->size + c->rank] = mine[k] != root[k];
    if (status == 0) status = c->sum_doubles(c, differ, 3 * c->size, err);
    static const char *const what[3] = {"config (with the command line's options)", "training data",
                                        "nnseq version"};
    for (int k = 2; k >= 0 && status == 0; k--)
        for (int r = 1; r < c->size; r++)
            if (differ[k * c->size + r] > 0) {
                status = nn_error_set(err, NN_ERR_INPUT, "rank %d has another %s than rank 0 (of %d ranks): every rank must "
                                      "run the same nnseq on the same config and data", r, what[k], c->size);
                break;
            }
    free(differ);
    if (status != 0) return status;
    /* BatchNorm's statistics are summed inside forward and backward, so
     * every rank needs rows of every batch. */
    int last = t->train_count % t->batch_size;
    if (nn_engine_collective_layers(t->engine) && (t->batch_size < c->size || (last > 0 && last < c->size)))
        return nn_error_set(err, NN_ERR_INPUT, "%s: with %d ranks every batch needs at least %d samples (BatchNorm's "
                            "statistics span the ranks), but batch_size %d over %d training samples leaves a batch of "
                            "%d: choose another batch_size or number of ranks", t->config->path, c->size, c->size,
                            t->batch_size, t->train_count, t->batch_size < c->size ? t->batch_size : last);
    t->collective = c;
    nn_engine_set_collective(t->engine, c);
    /* A checkpoint in the middle of an epoch holds the merged sums: they
     * count once, on rank 0. */
    if (c->rank != 0) {
        nn_metrics_acc_reset(t->train_metrics);
        t->epoch_numerator = t->epoch_denominator = 0;
    }
    return 0;
}

int nn_trainer_gather_epoch(nn_trainer *t, nn_error *err) {
    if (!distributed(t)) return 0;
    if (nn_engine_share_optimizer(t->engine, &t->optimizer, err) != 0) return -1;
    double sums[2] = {t->epoch_numerator, t->epoch_denominator};
    if (t->collective->sum_doubles(t->collective, sums, 2, err) != 0) return -1;
    bool root = t->collective->rank == 0;
    t->epoch_numerator = root ? sums[0] : 0;
    t->epoch_denominator = root ? sums[1] : 0;
    return merge_metrics(t, t->train_metrics, err);
}

int nn_trainer_agree_stop(nn_trainer *t, bool stop, bool *agreed, nn_error *err) {
    *agreed = stop;
    return distributed(t) ? any_rank(t, stop, agreed, err) : 0;
}

/* The finished epoch of report, at the end of the trainer's history. */
static int record_epoch(nn_trainer *t, const nn_epoch_report *report, nn_error *err) {
    if (t->history_count == t->history_capacity) {
        int capacity = t->history_capacity ? 2 * t->history_capacity : 16;
        nn_epoch_record *grown = realloc(t->history, (size_t)capacity * sizeof *grown);
        if (!grown) return nn_error_oom(err, "the run's history");
        t->history = grown;
        t->history_capacity = capacity;
    }
    t->history[t->history_count++] = (nn_epoch_record){report->epoch, report->lr, report->seconds,
                                                        report->samples_per_second, report->train, report->has_val,
                                                        report->val};
    return 0;
}

int nn_trainer_epoch(nn_trainer *t, nn_epoch_report *report, nn_progress_fn progress, nn_stop_fn stop, void *user,
                     nn_error *err) {
    const nn_config *c = t->config;
    memset(report, 0, sizeof *report);
    if (t->epoch_position == 0) {
        nn_metrics_acc_reset(t->train_metrics);
        t->epoch_numerator = t->epoch_denominator = 0;
    }
    if (epoch_order(t, err) != 0) return -1;
    schedule_step(t);
    report->lr = t->optimizer.lr;
    bool per_step = nn_schedule_per_step(&c->scheduler);
    int batch_size = t->batch_size, trained_here = 0;
    double start = now_seconds();
    uint64_t key = epoch_key(t);
    while (t->epoch_position < t->train_count) {
        int first = t->epoch_position;
        int count = t->train_count - first < batch_size ? t->train_count - first : batch_size;
        int64_t share_first, share_count;
        nn_collective_share(t->collective, first, count, &share_first, &share_count);
        nn_batch batch = {&t->data, &t->transform, t->order, share_first, (int)share_count, key};
        nn_step_result step;
        if (per_step) schedule_step(t);
        if (nn_engine_train_step(t->engine, &batch, &c->loss, &t->optimizer, NULL, NULL, t->train_metrics, &step,
                                 err) != 0)
            return -1;
        if (!isfinite(step.loss) || !step.gradients_finite) return numerical_fault(t, first / batch_size + 1, err);
        t->epoch_numerator += step.numerator;
        t->epoch_denominator += step.denominator;
        t->epoch_position = first + count;
        trained_here += count;
        if (progress)
            progress(user, t->epoch_position, t->train_count,
                     t->epoch_denominator > 0 ? t->epoch_numerator / t->epoch_denominator : 0);
        bool stopping = false;
        if (stop && t->epoch_position < t->train_count &&
            nn_trainer_agree_stop(t, stop(user), &stopping, err) != 0)
            return -1;
        if (stopping) {
            report->interrupted = true;
            report->epoch = t->epoch + 1;
            report->epochs = c->train.epochs;
            report->position = t->epoch_position;
            return 0;
        }
    }
    t->epoch_position = 0;
    t->order_ready = false;
    /* The checkpoint after the epoch saves the optimiser's whole state. */
    if (nn_engine_share_optimizer(t->engine, &t->optimizer, err) != 0) return -1;
    report->seconds = now_seconds() - start;
    report->samples_per_second = trained_here / (report->seconds > 0 ? report->seconds : 1e-9);
    if (finish_metrics(t, t->train_metrics, &report->train, err) != 0) return -1;
    t->epoch++;
    report->epoch = t->epoch;
    report->epochs = c->train.epochs;
    if (t->val_count > 0) {
        report->has_val = true;
        if (nn_trainer_evaluate(t, &t->data, t->train_count, t->val_count, &report->val, err) != 0) return -1;
        if (report->val.loss < t->best_val_loss - c->train.min_delta) {
            t->best_val_loss = report->val.loss;
            t->bad_epochs = 0;
            report->improved = true;
        } else {
            t->bad_epochs++;
        }
        report->stop = c->train.early_stop && t->bad_epochs >= c->train.patience;
        if (c->scheduler.kind && c->scheduler.kind->observe)
            c->scheduler.kind->observe(&c->scheduler, t->schedule_state, report->val.loss);
    }
    return record_epoch(t, report, err);
}

static int evaluate_on(nn_engine *engine, int batch_size, const nn_model *model, const nn_loss *loss, nn_task task,
                       const nn_input_transform *transform, const nn_dataset *set, int64_t first, int64_t count,
                       nn_metrics *metrics, int64_t *confusion, nn_error *err);

int nn_trainer_evaluate(nn_trainer *t, const nn_dataset *set, int64_t first, int64_t count, nn_metrics *metrics,
                        nn_error *err) {
    if (!distributed(t))
        return evaluate_on(t->engine, t->eval_batch, t->model, &t->config->loss, t->task, &t->transform, set, first,
                           count, metrics, NULL, err);
    /* Each rank its share; the accumulator holds the whole split, for rank 0's merge. */
    int64_t share_first, share_count;
    nn_collective_share(t->collective, first, count, &share_first, &share_count);
    nn_metrics_acc *acc = nn_metrics_acc_create(t->task, t->outputs, logits_of(t->config->loss.kind),
                                                count > 0 ? count : 1, err);
    int status = acc ? nn_engine_evaluate(t->engine, t->eval_batch, &t->config->loss, &t->transform, set, share_first,
                                          share_count, acc, err)
                     : -1;
    /* Every rank meets at the merge, a failed one too, or the others would wait. */
    nn_metrics_acc *empty = acc ? NULL : nn_metrics_acc_create(t->task, t->outputs, logits_of(t->config->loss.kind), 1, err);
    if (finish_metrics(t, acc ? acc : empty, metrics, err) != 0) status = -1;
    nn_metrics_acc_free(acc);
    nn_metrics_acc_free(empty);
    return status;
}

static int evaluate_on(nn_engine *engine, int batch_size, const nn_model *model, const nn_loss *loss, nn_task task,
                       const nn_input_transform *transform, const nn_dataset *set, int64_t first, int64_t count,
                       nn_metrics *metrics, int64_t *confusion, nn_error *err) {
    int outputs = model_outputs(model);
    nn_metrics_acc *acc = nn_metrics_acc_create(task, outputs, logits_of(loss->kind), count, err);
    if (!acc) return -1;
    int status = nn_engine_evaluate(engine, batch_size, loss, transform, set, first, count, acc, err);
    if (status == 0) nn_metrics_acc_finish(acc, metrics, confusion);
    nn_metrics_acc_free(acc);
    return status;
}

int nn_evaluate(nn_model *model, int threads, int batch_size, const nn_loss *loss, nn_task task,
                const nn_input_transform *transform, const nn_dataset *set, int64_t first, int64_t count,
                nn_metrics *metrics, int64_t *confusion, nn_error *err) {
    if (batch_size < 1) batch_size = model->max_batch > 0 ? model->max_batch : NN_EVAL_BATCH;
    nn_engine *engine = nn_engine_create(model, threads, batch_size, err);
    if (!engine) return -1;
    int status = evaluate_on(engine, batch_size, model, loss, task, transform, set, first, count, metrics, confusion, err);
    nn_engine_free(engine);
    return status;
}
