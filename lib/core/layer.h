/* The layer interface. One layer kind = one file in lib/layers/ exposing a
 * const nn_layer_kind (a table of functions) and one entry in
 * lib/layers/registry.c. The Sequential model and the trainer only call
 * through this table; they never switch on the kind.
 *
 * A layer is shared by every replica of the model (threads now, MPI ranks
 * later): its arguments, shapes, parameters and buffers. What one batch
 * needs between forward and backward (Dropout's mask, MaxPool's argmax,
 * BatchNorm's statistics, Conv2d's im2col buffer) lives in a context, one
 * per replica, so replicas run the same layer on different slices of a
 * batch at once. Gradients go to the replica's own buffer.
 *
 * Life of a layer:
 *   create   checks the arguments against the per-sample input shape, infers
 *            the sizes left out, sets out_shape and declares its state (the
 *            state_dict entries: trainable parameters and buffers);
 *   (model)  points every trainable entry's data into the model's flat
 *            parameter buffer;
 *   init     PyTorch's default initialisation of the trainable entries;
 *   context_create, per replica: caches for up to max_batch samples;
 *   forward / backward, any number of times, batch <= max_batch, each with
 *            a replica's context;
 *   context_free, destroy.
 */
#ifndef NNSEQ_LAYER_H
#define NNSEQ_LAYER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/args.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/shape.h"

#define NN_MAX_STATE 6

typedef struct nn_layer_kind nn_layer_kind;

/* One state_dict entry of a layer ("weight", "running_mean", ...). */
typedef struct nn_state {
    nn_array array;   /* array.name is the local name: "weight" */
    bool trainable;   /* in the model's flat parameter buffer, updated by the optimiser */
} nn_state;

typedef struct nn_layer {
    const nn_layer_kind *kind;
    nn_shape in_shape, out_shape;
    /* Fewest samples a training batch may hold (0 or 1: any), the whole
     * batch's, not a replica's slice. BatchNorm with one value per channel
     * per sample needs 2, as torch insists. */
    int min_train_batch;
    int state_count;
    /* Trainable entries come first and are laid out in the flat buffer in
     * this order. Buffers (running statistics) have data owned by the layer,
     * allocated in create. */
    nn_state state[NN_MAX_STATE];
} nn_layer;

/* What forward and backward need besides their data: the phase and, when
 * a batch is split across replicas, how this replica takes part in it. */
typedef struct nn_mode {
    bool training;   /* Dropout and BatchNorm behave differently in eval */
    /* Dropout: sample b of this slice draws from the stream keyed by
     * nn_key_mix(sample_keys[b], layer_index), so the masks are the same
     * whatever the split. NULL: the keys 0, 1, 2, ... of the slice (tests). */
    const uint64_t *sample_keys;
    int layer_index; /* the layer's place in the model (the model sets it) */
    /* BatchNorm: sums count doubles over every replica of the batch, in
     * replica order, in place, so every replica gets the same totals and the
     * statistics are the whole batch's. NULL: this replica has the whole
     * batch (then the sums are its own). group is allreduce's own and tells
     * it which replica calls (one per replica). A collective: every replica
     * of the batch runs every layer's forward and backward (none has an
     * empty slice) and makes the same calls, so a kind must not skip an
     * allreduce on one replica only (din is NULL on all or none). */
    void (*allreduce)(void *group, double *values, int count);
    void *group;
    /* Whether this replica writes the layer's buffers (BatchNorm's running
     * statistics): exactly one replica of a batch does. */
    bool update_buffers;
} nn_mode;

/* Sums values over the replicas of mode (a no-op for one replica). */
void nn_mode_allreduce(const nn_mode *mode, double *values, int count);

struct nn_layer_kind {
    const char *name;            /* torch.nn's class name: "Linear" */
    /* Its training forward or backward calls nn_mode_allreduce (BatchNorm's
     * batch statistics), so every replica of a batch must run it at the
     * same time; models without such layers let any thread run any
     * replica, which keeps a busy core from holding up the step. */
    bool collective;
    const char *alias;           /* another name accepted in configs; NULL (layers have torch's names) */
    const nn_arg_spec *args;     /* torch.nn's keyword arguments and defaults */
    int arg_count;

    /* Returns a new layer or NULL with err set (message without location:
     * the caller prefixes the config file, line and layer index). args is
     * indexed like the kind's arg table. The caller sets layer->kind. */
    nn_layer *(*create)(const nn_arg_value *args, nn_shape in_shape, nn_error *err);

    /* PyTorch's default initialisation of the trainable state. NULL: none. */
    void (*init)(nn_layer *layer, nn_rng *rng);

    /* A replica's caches for batches of up to max_batch (>= 1) samples, or
     * NULL with err set. NULL function: the kind keeps nothing between
     * forward and backward (context is NULL then). context_free accepts
     * NULL. The caller never passes a batch above max_batch. */
    void *(*context_create)(const nn_layer *layer, int max_batch, nn_error *err);
    void (*context_free)(void *context);

    /* out = layer(in) for batch samples. The layer is written only when
     * mode->update_buffers (BatchNorm's running statistics). */
    void (*forward)(nn_layer *layer, void *context, float *out, const float *in, int batch,
                    const nn_mode *mode);

    /* Given dout = dLoss/dout, writes (overwrites, does not add) grad, this
     * layer's trainable gradients in the replica's flat buffer (entries in
     * state order, nn_layer_param_count floats) and, unless din is NULL,
     * din = dLoss/din. in and out are what the last forward with this
     * context read and wrote; mode is that forward's (the training phase is
     * the context's record of it). At most one backward per forward. grad
     * may be NULL for a kind without parameters. */
    void (*backward)(const nn_layer *layer, void *context, float *din, const float *dout, const float *in,
                     const float *out, int batch, float *grad, const nn_mode *mode);

    /* PyTorch's repr of the module: "Linear(in_features=784, out_features=10, bias=True)". */
    int (*describe)(const nn_layer *layer, char *buffer, size_t size);

    /* Multiply-accumulates of the forward pass for one sample, counted as
     * torchinfo counts them (nnseq print's Mult-Adds): each weight and bias
     * element once per output position for a convolution, once per sample
     * for any other layer with parameters. NULL: 0, for kinds without
     * parameters (torchinfo counts none for them). */
    int64_t (*mult_adds)(const nn_layer *layer);

    void (*destroy)(nn_layer *layer);
};

/* The registry (lib/layers/registry.c; core/registry.h says what each does). */
const nn_layer_kind *nn_layer_kind_find(const char *name);
const nn_layer_kind *const *nn_layer_kind_list(int *count);
int nn_layer_kind_names(const char **names, int max, int *shown);

/* Helpers for layer files. */

/* Declares a state entry; returns it. data may be NULL for trainable entries
 * (the model binds them). */
nn_state *nn_layer_add_state(nn_layer *layer, const char *name, bool trainable, nn_dtype dtype,
                             int rank, const int64_t *dims, void *data);

/* PyTorch's kaiming_uniform_(a=sqrt(5)) for a weight and uniform(+-1/sqrt(fan_in))
 * for a bias: both are uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
void nn_init_uniform_fan_in(float *data, size_t count, int fan_in, nn_rng *rng);



/* forward and backward of the kinds that only give the same values another
 * shape (Flatten, Unflatten, Identity): a copy, nothing when in place. */
void nn_layer_copy_forward(nn_layer *layer, void *context, float *out, const float *in, int batch,
                           const nn_mode *mode);
void nn_layer_copy_backward(const nn_layer *layer, void *context, float *din, const float *dout, const float *in,
                            const float *out, int batch, float *grad, const nn_mode *mode);

/* Floats of trainable state the layer needs in the flat buffers. */
size_t nn_layer_param_count(const nn_layer *layer);
/* Points the trainable entries, in order, at consecutive slices of params
 * (nn_layer_param_count floats long). */
void nn_layer_bind(nn_layer *layer, float *params);

/* One item of a layer list: its kind and arguments (what the config parser
 * produces and the model is built from), and where the item stood in the
 * config for messages (0 when it came from elsewhere). */
typedef struct nn_layer_spec {
    const nn_layer_kind *kind;
    nn_arg_value args[NN_MAX_ARGS];  /* indexed like kind->args, defaults filled */
    int line, column;                /* where the item starts, 1-based */
} nn_layer_spec;

#endif
