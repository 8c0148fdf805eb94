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
extern const nn_layer_kind nn_identity_kind;
extern const nn_layer_kind nn_elu_kind;
extern const nn_layer_kind nn_selu_kind;
extern const nn_layer_kind nn_celu_kind;
extern const nn_layer_kind nn_silu_kind;
extern const nn_layer_kind nn_mish_kind;
extern const nn_layer_kind nn_softplus_kind;
extern const nn_layer_kind nn_softsign_kind;
extern const nn_layer_kind nn_hardtanh_kind;
extern const nn_layer_kind nn_relu6_kind;
extern const nn_layer_kind nn_hardsigmoid_kind;
extern const nn_layer_kind nn_hardswish_kind;
extern const nn_layer_kind nn_threshold_kind;
extern const nn_layer_kind nn_prelu_kind;
extern const nn_layer_kind nn_max_pool1d_kind;
extern const nn_layer_kind nn_avg_pool1d_kind;
extern const nn_layer_kind nn_adaptive_avg_pool2d_kind;
extern const nn_layer_kind nn_adaptive_max_pool2d_kind;
extern const nn_layer_kind nn_conv1d_kind;
extern const nn_layer_kind nn_conv_transpose2d_kind;
extern const nn_layer_kind nn_dropout1d_kind;
extern const nn_layer_kind nn_dropout2d_kind;
extern const nn_layer_kind nn_alpha_dropout_kind;
extern const nn_layer_kind nn_feature_alpha_dropout_kind;
extern const nn_layer_kind nn_unflatten_kind;
extern const nn_layer_kind nn_zero_pad2d_kind;
extern const nn_layer_kind nn_constant_pad2d_kind;
extern const nn_layer_kind nn_reflection_pad2d_kind;
extern const nn_layer_kind nn_replication_pad2d_kind;
extern const nn_layer_kind nn_constant_pad1d_kind;
extern const nn_layer_kind nn_reflection_pad1d_kind;
extern const nn_layer_kind nn_replication_pad1d_kind;
extern const nn_layer_kind nn_upsample_kind;
extern const nn_layer_kind nn_upsampling_nearest2d_kind;
extern const nn_layer_kind nn_upsampling_bilinear2d_kind;
extern const nn_layer_kind nn_layer_norm_kind;
extern const nn_layer_kind nn_group_norm_kind;
extern const nn_layer_kind nn_instance_norm2d_kind;
extern const nn_layer_kind nn_local_response_norm_kind;

/* The two ways torchinfo counts mult-adds (its LayerInfo.calculate_macs):
 * every parameter once per sample, or, for a class whose name has "Conv",
 * once per output position (the output's values per channel). */
static inline int64_t nn_mult_adds_per_sample(const nn_layer *layer) {
    return (int64_t)nn_layer_param_count(layer);
}
static inline int64_t nn_mult_adds_per_position(const nn_layer *layer) {
    return (int64_t)nn_layer_param_count(layer) * (int64_t)(nn_shape_size(layer->out_shape) / (size_t)layer->out_shape.dims[0]);
}

#endif
