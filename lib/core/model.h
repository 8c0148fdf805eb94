/* The Sequential model: layers in order, each one's output feeding the next.
 *
 * All trainable parameters live in one flat buffer (and their gradients in
 * another of the same length), with each layer's entries pointing into it,
 * so the optimiser and the checkpoint see one array. Activations for up to
 * max_batch samples are allocated once by nn_model_reserve and reused. */
#ifndef NNSEQ_MODEL_H
#define NNSEQ_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/layer.h"
#include "core/rng.h"
#include "core/shape.h"

typedef struct nn_model {
    int layer_count;
    nn_layer **layers;
    nn_shape input_shape;
    size_t param_count;
    float *params, *grads;   /* param_count floats each */
    int max_batch;           /* what the buffers below hold; 0 before reserve */
    float **activations;     /* [0] the input, [i + 1] layer i's output */
    float *deltas[2];        /* gradients flowing back, sized to the largest activation */
    nn_rng dropout_rng;      /* the model's own randomness at training time */
} nn_model;

/* Builds the layers for input_shape and initialises them PyTorch's way from
 * seed. A layer that rejects its arguments or input gives an NN_ERR_INPUT
 * error "CONFIG:LINE:COLUMN: layer I (Kind): problem"; config_path may be
 * NULL (then "layer I (Kind): problem"). */
nn_model *nn_model_create(const nn_layer_spec *layers, int layer_count, nn_shape input_shape,
                          uint64_t seed, const char *config_path, nn_error *err);
void nn_model_free(nn_model *model);

/* Makes room for batches of up to max_batch samples (no-op if it already can). */
int nn_model_reserve(nn_model *model, int max_batch, nn_error *err);

/* The buffer to write a batch of inputs into (batch-major floats). */
float *nn_model_input(nn_model *model);
nn_shape nn_model_output_shape(const nn_model *model);

/* Runs the layers on the input buffer; returns the output (owned by the model). */
const float *nn_model_forward(nn_model *model, int batch, bool training);

/* The buffer to write dLoss/dOutput into before nn_model_backward. */
float *nn_model_output_grad(nn_model *model);
/* Back-propagates the output gradient into model->grads (overwritten). */
void nn_model_backward(nn_model *model, int batch);

/* The state_dict: every layer's entries named "I.NAME" ("0.weight",
 * "4.running_mean"), in order, as views into the model. count receives the
 * number of entries; the list is malloc'ed (free it), the data is not. */
nn_array *nn_model_state(const nn_model *model, size_t *count, nn_error *err);

/* Copies arrays into the model's state, matching by name: every entry must
 * be present once with the same dtype and shape (else NN_ERR_INPUT naming
 * the key, the expected and the found shape). source names the origin for
 * messages. Extra keys are errors too. */
int nn_model_load_state(nn_model *model, const nn_array *arrays, size_t count, const char *prefix,
                        const char *source, nn_error *err);

/* The PyTorch print(model) text, "Sequential(\n  (0): ...\n)\n", into a malloc'ed string. */
char *nn_model_describe(const nn_model *model);

#endif
