#include "core/layer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

nn_state *nn_layer_add_state(nn_layer *layer, const char *name, bool trainable, nn_dtype dtype,
                             int rank, const int64_t *dims, void *data) {
    nn_state *state = &layer->state[layer->state_count++];
    memset(state, 0, sizeof *state);
    snprintf(state->array.name, sizeof state->array.name, "%s", name);
    state->array.dtype = dtype;
    state->array.rank = rank;
    for (int i = 0; i < rank; i++) state->array.dims[i] = dims[i];
    state->array.data = data;
    state->trainable = trainable;
    return state;
}

void nn_init_uniform_fan_in(float *data, size_t count, int fan_in, nn_rng *rng) {
    float bound = fan_in > 0 ? 1.0f / sqrtf((float)fan_in) : 0.0f;
    for (size_t i = 0; i < count; i++) data[i] = nn_rng_uniform_range(rng, -bound, bound);
}

size_t nn_layer_param_count(const nn_layer *layer) {
    size_t count = 0;
    for (int i = 0; i < layer->state_count; i++)
        if (layer->state[i].trainable) count += nn_array_count(&layer->state[i].array);
    return count;
}

void nn_layer_bind(nn_layer *layer, float *params) {
    for (int i = 0; i < layer->state_count; i++) {
        nn_state *state = &layer->state[i];
        if (!state->trainable) continue;
        state->array.data = params;
        params += nn_array_count(&state->array);
    }
}

void nn_mode_allreduce(const nn_mode *mode, double *values, int count) {
    if (mode->allreduce) mode->allreduce(mode->group, values, count);
}

void nn_layer_copy_forward(nn_layer *layer, void *context, float *out, const float *in, int batch,
                           const nn_mode *mode) {
    (void)context;
    (void)mode;
    if (out != in) memcpy(out, in, (size_t)batch * nn_shape_size(layer->in_shape) * sizeof *out);
}

void nn_layer_copy_backward(const nn_layer *layer, void *context, float *din, const float *dout, const float *in,
                            const float *out, int batch, float *grad, const nn_mode *mode) {
    (void)context;
    (void)in;
    (void)out;
    (void)grad;
    (void)mode;
    if (din && din != dout) memcpy(din, dout, (size_t)batch * nn_shape_size(layer->in_shape) * sizeof *din);
}
