/* Every layer kind nnseq knows. Each is defined in its own file in this
 * folder and listed in registry.c. */
#ifndef NNSEQ_LAYERS_H
#define NNSEQ_LAYERS_H

#include "core/layer.h"

extern const nn_layer_kind nn_linear_kind;
extern const nn_layer_kind nn_relu_kind;
extern const nn_layer_kind nn_sigmoid_kind;
extern const nn_layer_kind nn_tanh_kind;
extern const nn_layer_kind nn_leaky_relu_kind;
extern const nn_layer_kind nn_gelu_kind;
extern const nn_layer_kind nn_softmax_kind;
extern const nn_layer_kind nn_log_softmax_kind;
extern const nn_layer_kind nn_flatten_kind;
extern const nn_layer_kind nn_dropout_kind;
extern const nn_layer_kind nn_conv2d_kind;
extern const nn_layer_kind nn_max_pool2d_kind;
extern const nn_layer_kind nn_avg_pool2d_kind;
extern const nn_layer_kind nn_batch_norm1d_kind;
extern const nn_layer_kind nn_batch_norm2d_kind;

#endif
