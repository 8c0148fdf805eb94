#include "core/model.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static nn_model *fail_build(nn_model *model, nn_error *err, const char *config_path,
                            const nn_layer_spec *spec, int index) {
    if (config_path)
        nn_error_prefix(err, "%s:%d:%d: layer %d (%s)", config_path, spec->line, spec->column, index,
                        spec->kind->name);
    else
        nn_error_prefix(err, "layer %d (%s)", index, spec->kind->name);
    nn_model_free(model);
    return NULL;
}

nn_model *nn_model_create(const nn_layer_spec *layers, int layer_count, nn_shape input_shape,
                          uint64_t seed, const char *config_path, nn_error *err) {
    return nn_model_create_bounded(layers, layer_count, input_shape, seed, config_path, SIZE_MAX, err);
}

nn_model *nn_model_create_bounded(const nn_layer_spec *layers, int layer_count, nn_shape input_shape, uint64_t seed,
                                  const char *config_path, size_t max_params, nn_error *err) {
    nn_model *model = calloc(1, sizeof *model);
    if (!model || !(model->layers = calloc((size_t)layer_count, sizeof *model->layers))) {
        free(model);
        nn_error_oom(err, "the model");
        return NULL;
    }
    model->input_shape = input_shape;
    nn_shape shape = input_shape;
    long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);
    size_t memory = pages > 0 && page_size > 0 ? (size_t)pages * (size_t)page_size : 0;
    for (int i = 0; i < layer_count; i++) {
        const nn_layer_spec *spec = &layers[i];
        nn_layer *layer = spec->kind->create(spec->args, shape, err);
        if (!layer) return fail_build(model, err, config_path, spec, i);
        layer->kind = spec->kind;
        model->layers[model->layer_count++] = layer;
        /* Sizes no machine of ours can hold are input errors at the layer
         * that asks for them, before anything that large is allocated. */
        size_t params = nn_layer_param_count(layer), outputs = nn_shape_size(layer->out_shape);
        if (outputs > NN_MAX_SAMPLE_VALUES) {
            nn_error_set(err, NN_ERR_INPUT, "its output has %zu values per sample (the most nnseq allows is 2^28)",
                         outputs);
            return fail_build(model, err, config_path, spec, i);
        }
        if (params > NN_MAX_PARAMS || model->param_count + params > NN_MAX_PARAMS) {
            nn_error_set(err, NN_ERR_INPUT, "%zu parameters, %zu with the layers before it (the most nnseq allows "
                         "is 2^30 in a model, 4 GiB of floats)", params, model->param_count + params);
            return fail_build(model, err, config_path, spec, i);
        }
        if (model->param_count + params > max_params) {
            nn_error_set(err, NN_ERR_INPUT, "%zu parameters with the layers before it, more than the %zu values the "
                         "file holds for them", model->param_count + params, max_params);
            return fail_build(model, err, config_path, spec, i);
        }
        if (memory > 0 && (model->param_count + params) * 2 * sizeof(float) > memory) {
            nn_error_set(err, NN_ERR_INPUT, "%zu parameters, %zu with the layers before it: their values and "
                         "gradients alone need %.1f GiB, more than this machine's %.1f GiB of memory", params,
                         model->param_count + params,
                         (double)(model->param_count + params) * 2 * sizeof(float) / (1 << 30),
                         (double)memory / (1 << 30));
            return fail_build(model, err, config_path, spec, i);
        }
        model->param_count += params;
        shape = layer->out_shape;
    }
    /* One extra float keeps malloc(0) out of the way for parameterless models. */
    model->params = calloc(model->param_count + 1, sizeof *model->params);
    model->grads = calloc(model->param_count + 1, sizeof *model->grads);
    if (!model->params || !model->grads) {
        nn_model_free(model);
        nn_error_oom(err, "the model's parameters");
        return NULL;
    }
    nn_rng init_rng;
    nn_rng_seed(&init_rng, seed);
    size_t offset = 0;
    for (int i = 0; i < model->layer_count; i++) {
        nn_layer *layer = model->layers[i];
        nn_layer_bind(layer, model->params + offset);
        offset += nn_layer_param_count(layer);
        if (layer->kind->init) layer->kind->init(layer, &init_rng);
    }
    model->main.model = model;
    model->main.grads = model->grads;
    return model;
}

static void free_buffers(nn_replica *r) {
    const nn_model *model = r->model;
    if (r->activations)
        for (int i = 0; i <= model->layer_count; i++) free(r->activations[i]);
    free(r->activations);
    r->activations = NULL;
    if (r->contexts)
        for (int i = 0; i < model->layer_count; i++)
            if (r->contexts[i]) model->layers[i]->kind->context_free(r->contexts[i]);
    free(r->contexts);
    r->contexts = NULL;
    free(r->deltas[0]);
    free(r->deltas[1]);
    r->deltas[0] = r->deltas[1] = NULL;
    r->max_batch = 0;
}

void nn_model_free(nn_model *model) {
    if (!model) return;
    if (model->main.model) free_buffers(&model->main);
    for (int i = 0; i < model->layer_count; i++) model->layers[i]->kind->destroy(model->layers[i]);
    free(model->layers);
    free(model->params);
    free(model->grads);
    free(model);
}

nn_replica *nn_replica_create(nn_model *model, float *grads, nn_error *err) {
    nn_replica *r = calloc(1, sizeof *r);
    if (!r) {
        nn_error_oom(err, "a model replica");
        return NULL;
    }
    r->model = model;
    r->grads = grads;
    if (!grads) {
        r->owns_grads = true;
        if (!(r->grads = calloc(model->param_count + 1, sizeof *r->grads))) {
            free(r);
            nn_error_oom(err, "a replica's gradients");
            return NULL;
        }
    }
    return r;
}

void nn_replica_free(nn_replica *r) {
    if (!r) return;
    free_buffers(r);
    if (r->owns_grads) free(r->grads);
    free(r);
}

int nn_replica_reserve(nn_replica *r, int max_batch, nn_error *err) {
    if (max_batch <= r->max_batch) return 0;
    const nn_model *model = r->model;
    free_buffers(r);
    r->activations = calloc((size_t)model->layer_count + 1, sizeof *r->activations);
    r->contexts = calloc((size_t)model->layer_count + 1, sizeof *r->contexts);
    if (!r->activations || !r->contexts) goto oom;
    size_t largest = nn_shape_size(model->input_shape);
    r->activations[0] = malloc((size_t)max_batch * largest * sizeof(float));
    if (!r->activations[0]) goto oom;
    for (int i = 0; i < model->layer_count; i++) {
        const nn_layer *layer = model->layers[i];
        size_t size = nn_shape_size(layer->out_shape);
        if (size > largest) largest = size;
        r->activations[i + 1] = malloc((size_t)max_batch * size * sizeof(float));
        if (!r->activations[i + 1]) goto oom;
        if (layer->kind->context_create && !(r->contexts[i] = layer->kind->context_create(layer, max_batch, err))) {
            free_buffers(r);
            return nn_error_prefix(err, "layer %d (%s)", i, layer->kind->name);
        }
    }
    for (int i = 0; i < 2; i++)
        if (!(r->deltas[i] = malloc((size_t)max_batch * largest * sizeof(float)))) goto oom;
    r->max_batch = max_batch;
    return 0;
oom:
    free_buffers(r);
    return nn_error_oom(err, "activations");
}

float *nn_replica_input(nn_replica *r) { return r->activations[0]; }

const float *nn_replica_forward(nn_replica *r, int batch, const nn_mode *mode) {
    nn_model *model = r->model;
    nn_mode layer_mode = *mode;
    for (int i = 0; i < model->layer_count; i++) {
        nn_layer *layer = model->layers[i];
        layer_mode.layer_index = i;
        layer->kind->forward(layer, r->contexts[i], r->activations[i + 1], r->activations[i], batch, &layer_mode);
    }
    return r->activations[model->layer_count];
}

/* The output gradient goes in the delta buffer that the last layer's
 * backward reads from; layers then alternate between the two buffers. */
static int output_delta_index(const nn_model *model) { return model->layer_count % 2; }

float *nn_replica_output_grad(nn_replica *r) { return r->deltas[output_delta_index(r->model)]; }

void nn_replica_backward(nn_replica *r, int batch, const nn_mode *mode) {
    const nn_model *model = r->model;
    nn_mode layer_mode = *mode;
    int current = output_delta_index(model);
    size_t offset = model->param_count;
    for (int i = model->layer_count - 1; i >= 0; i--) {
        const nn_layer *layer = model->layers[i];
        offset -= nn_layer_param_count(layer);
        layer_mode.layer_index = i;
        /* The first layer's input gradient is never used: skip its product. */
        float *din = i > 0 ? r->deltas[1 - current] : NULL;
        layer->kind->backward(layer, r->contexts[i], din, r->deltas[current], r->activations[i],
                              r->activations[i + 1], batch, r->grads + offset, &layer_mode);
        current = 1 - current;
    }
}

int nn_model_reserve(nn_model *model, int max_batch, nn_error *err) {
    int status = nn_replica_reserve(&model->main, max_batch, err);
    model->max_batch = model->main.max_batch;
    return status;
}

float *nn_model_input(nn_model *model) { return nn_replica_input(&model->main); }

nn_shape nn_model_output_shape(const nn_model *model) {
    return model->layer_count ? model->layers[model->layer_count - 1]->out_shape : model->input_shape;
}

const float *nn_model_forward(nn_model *model, int batch, bool training) {
    nn_mode mode = {.training = training, .update_buffers = true};
    model->main_training = training;
    return nn_replica_forward(&model->main, batch, &mode);
}

float *nn_model_output_grad(nn_model *model) { return nn_replica_output_grad(&model->main); }

void nn_model_backward(nn_model *model, int batch) {
    nn_mode mode = {.training = model->main_training, .update_buffers = true};
    nn_replica_backward(&model->main, batch, &mode);
}

nn_array *nn_model_state(const nn_model *model, size_t *count, nn_error *err) {
    size_t total = 0;
    for (int i = 0; i < model->layer_count; i++) total += (size_t)model->layers[i]->state_count;
    nn_array *arrays = calloc(total + 1, sizeof *arrays);
    if (!arrays) {
        nn_error_oom(err, "the state list");
        return NULL;
    }
    size_t n = 0;
    for (int i = 0; i < model->layer_count; i++) {
        const nn_layer *layer = model->layers[i];
        for (int s = 0; s < layer->state_count; s++) {
            arrays[n] = layer->state[s].array;
            snprintf(arrays[n].name, sizeof arrays[n].name, "%d.%s", i, layer->state[s].array.name);
            n++;
        }
    }
    *count = n;
    return arrays;
}

static void format_dims(char *buffer, size_t size, const nn_array *array) {
    size_t used = (size_t)snprintf(buffer, size, "(");
    for (int i = 0; i < array->rank && used < size; i++)
        used += (size_t)snprintf(buffer + used, size - used, i ? ", %lld" : "%lld", (long long)array->dims[i]);
    if (used < size) snprintf(buffer + used, size - used, array->rank == 1 ? ",)" : ")");
}


int nn_model_load_state(nn_model *model, const nn_array *arrays, size_t count, const char *prefix,
                        const char *source, nn_error *err) {
    size_t state_count;
    nn_array *state = nn_model_state(model, &state_count, err);
    if (!state) return -1;
    size_t prefix_length = strlen(prefix);
    int status = 0;
    for (size_t s = 0; s < state_count && status == 0; s++) {
        const nn_array *found = NULL;
        for (size_t a = 0; a < count; a++)
            if (strncmp(arrays[a].name, prefix, prefix_length) == 0 &&
                strcmp(arrays[a].name + prefix_length, state[s].name) == 0)
                found = &arrays[a];
        char want[96], got[96];
        format_dims(want, sizeof want, &state[s]);
        if (!found) {
            status = nn_error_set(err, NN_ERR_INPUT, "%s: missing key '%s' (expected %s %s)", source,
                                  state[s].name, nn_dtype_name(state[s].dtype), want);
            break;
        }
        format_dims(got, sizeof got, found);
        int same_shape = found->rank == state[s].rank;
        for (int d = 0; same_shape && d < found->rank; d++) same_shape = found->dims[d] == state[s].dims[d];
        if (!same_shape)
            status = nn_error_set(err, NN_ERR_INPUT, "%s: key '%s' has shape %s, the model needs %s", source,
                                  state[s].name, got, want);
        else if (found->dtype != state[s].dtype)
            status = nn_error_set(err, NN_ERR_INPUT, "%s: key '%s' is %s, the model needs %s", source,
                                  state[s].name, nn_dtype_name(found->dtype), nn_dtype_name(state[s].dtype));
        else if (found->data) {
            memcpy(state[s].data, found->data, nn_array_bytes(found));
        }
    }
    for (size_t a = 0; a < count && status == 0; a++) {
        if (strncmp(arrays[a].name, prefix, prefix_length) != 0) continue;
        int known = 0;
        for (size_t s = 0; s < state_count && !known; s++)
            known = strcmp(arrays[a].name + prefix_length, state[s].name) == 0;
        if (!known)
            status = nn_error_set(err, NN_ERR_INPUT, "%s: unexpected key '%s' (the model has no such entry)",
                                  source, arrays[a].name + prefix_length);
    }
    free(state);
    return status;
}

char *nn_model_describe(const nn_model *model) {
    size_t capacity = 64 + (size_t)model->layer_count * 160, used = 0;
    char *text = malloc(capacity);
    if (!text) return NULL;
    used += (size_t)snprintf(text, capacity, "Sequential(\n");
    for (int i = 0; i < model->layer_count; i++) {
        char line[256];
        model->layers[i]->kind->describe(model->layers[i], line, sizeof line);
        used += (size_t)snprintf(text + used, capacity - used, "  (%d): %s\n", i, line);
    }
    snprintf(text + used, capacity - used, ")\n");
    return text;
}
