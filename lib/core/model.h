/* The Sequential model: layers in order, each one's output feeding the next.
 *
 * All trainable parameters live in one flat buffer, with each layer's
 * entries pointing into it, so the optimiser and the checkpoint see one
 * array. A replica runs a slice of a batch through the model: it owns the
 * layers' contexts, the activations and the gradients flowing back for up
 * to max_batch samples (allocated once, reused), and a flat gradient
 * buffer; several replicas share the model's layers and parameters and run
 * at once on different threads. The model has one replica of its own,
 * whose gradients are model->grads, behind nn_model_reserve, _forward and
 * _backward. */
#ifndef NNSEQ_MODEL_H
#define NNSEQ_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/layer.h"
#include "core/rng.h"
#include "core/shape.h"

/* The largest model nnseq builds: parameters (2^30 floats, 4 GiB, before
 * gradients and optimiser state) and values per sample of any layer's
 * output (2^28). A layer beyond them, or a model whose parameters and
 * gradients alone exceed the machine's memory, is an input error at that
 * layer, before the allocation. */
#define NN_MAX_PARAMS ((size_t)1 << 30)
#define NN_MAX_SAMPLE_VALUES ((size_t)1 << 28)

typedef struct nn_model nn_model;

typedef struct nn_replica {
    nn_model *model;
    int max_batch;           /* what the buffers below hold; 0 before reserve */
    void **contexts;         /* per layer, NULL for kinds that keep nothing */
    float **activations;     /* [0] the input, [i + 1] layer i's output */
    float *deltas[2];        /* gradients flowing back, sized to the largest activation */
    float *grads;            /* param_count floats, this replica's */
    bool owns_grads;
} nn_replica;

struct nn_model {
    int layer_count;
    nn_layer **layers;
    nn_shape input_shape;
    size_t param_count;
    float *params, *grads;   /* param_count floats each; grads are the main replica's */
    int max_batch;           /* the main replica's */
    nn_replica main;
    bool main_training;      /* the main replica's last forward was in training */
};

/* A replica of model writing its gradients to grads (param_count floats;
 * NULL: its own buffer). Free with nn_replica_free. */
nn_replica *nn_replica_create(nn_model *model, float *grads, nn_error *err);
void nn_replica_free(nn_replica *replica);
/* Room for batches of up to max_batch samples (no-op if it already has). */
int nn_replica_reserve(nn_replica *replica, int max_batch, nn_error *err);
/* The buffer to write the slice's inputs into (batch-major floats). */
float *nn_replica_input(nn_replica *replica);
/* Runs the layers on the input buffer with mode (the layer index is set
 * per layer); returns the output, owned by the replica. */
const float *nn_replica_forward(nn_replica *replica, int batch, const nn_mode *mode);
/* The buffer to write dLoss/dOutput into before nn_replica_backward. */
float *nn_replica_output_grad(nn_replica *replica);
/* Back-propagates into replica->grads (overwritten), with the mode of the
 * forward. */
void nn_replica_backward(nn_replica *replica, int batch, const nn_mode *mode);

/* Builds the layers for input_shape and initialises them PyTorch's way from
 * seed. A layer that rejects its arguments or input gives an NN_ERR_INPUT
 * error "CONFIG:LINE:COLUMN: layer I (Kind): problem"; config_path may be
 * NULL (then "layer I (Kind): problem"). */
nn_model *nn_model_create(const nn_layer_spec *layers, int layer_count, nn_shape input_shape,
                          uint64_t seed, const char *config_path, nn_error *err);
/* The same, refusing (NN_ERR_INPUT, before allocating them) more than
 * max_params parameters: a checkpoint's stored config must not build a
 * model larger than the weights the file holds. */
nn_model *nn_model_create_bounded(const nn_layer_spec *layers, int layer_count, nn_shape input_shape, uint64_t seed,
                                  const char *config_path, size_t max_params, nn_error *err);
void nn_model_free(nn_model *model);

/* Makes room for batches of up to max_batch samples (no-op if it already can). */
int nn_model_reserve(nn_model *model, int max_batch, nn_error *err);

/* The buffer to write a batch of inputs into (batch-major floats). */
float *nn_model_input(nn_model *model);
nn_shape nn_model_output_shape(const nn_model *model);

/* Runs the layers on the main replica's input buffer; returns the output
 * (owned by the model). In training, Dropout keys its masks by the row
 * (keys 0, 1, ...): for tests and single-batch uses; the trainer runs
 * replicas with per-sample keys. */
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
