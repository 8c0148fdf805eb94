#include "core/registry.h"
#include "layers/layers.h"

static const nn_layer_kind *const kinds[] = {
    &nn_linear_kind,  &nn_relu_kind,        &nn_sigmoid_kind, &nn_tanh_kind,
    &nn_leaky_relu_kind, &nn_gelu_kind,      &nn_softmax_kind, &nn_log_softmax_kind,
    &nn_flatten_kind, &nn_dropout_kind,    &nn_conv2d_kind,  &nn_max_pool2d_kind,
    &nn_avg_pool2d_kind, &nn_batch_norm1d_kind, &nn_batch_norm2d_kind,
};

NN_REGISTRY(nn_layer_kind, nn_layer_kind, kinds, false)
