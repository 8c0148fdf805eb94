#include <string.h>

#include "layers/layers.h"

static const nn_layer_kind *const kinds[] = {
    &nn_linear_kind,  &nn_relu_kind,        &nn_sigmoid_kind, &nn_tanh_kind,
    &nn_leaky_relu_kind, &nn_gelu_kind,      &nn_softmax_kind, &nn_log_softmax_kind,
    &nn_flatten_kind, &nn_dropout_kind,    &nn_conv2d_kind,  &nn_max_pool2d_kind,
    &nn_avg_pool2d_kind, &nn_batch_norm1d_kind, &nn_batch_norm2d_kind,
};

const nn_layer_kind *nn_layer_kind_find(const char *name) {
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i]->name, name) == 0) return kinds[i];
    return NULL;
}

const nn_layer_kind *const *nn_layer_kinds(int *count) {
    *count = (int)(sizeof kinds / sizeof kinds[0]);
    return kinds;
}
