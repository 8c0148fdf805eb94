/* The layer interface. One layer kind = one file in lib/layers/ exposing a
 * const nn_layer_kind (a table of functions) and one entry in
 * lib/layers/registry.c. The Sequential model and the trainer only call
 * through this table; they never switch on the kind.
 *
 * Life of a layer:
 *   create   checks the arguments against the per-sample input shape, infers
 *            the sizes left out, sets out_shape and declares its state (the
 *            state_dict entries: trainable parameters and buffers);
 *   (model)  points every trainable entry's data and grad into the model's
 *            flat parameter and gradient buffers;
 *   init     PyTorch's default initialisation of the trainable entries;
 *   reserve  allocates per-batch caches for up to max_batch samples, once;
 *   forward / backward, any number of times, batch <= max_batch;
 *   destroy  frees the layer and everything it allocated.
 */
#ifndef NNSEQ_LAYER_H
#define NNSEQ_LAYER_H

#include <stdbool.h>
#include <stddef.h>

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
    float *grad;      /* trainable only: the entry's gradient, same count as array */
} nn_state;

typedef struct nn_layer {
    const nn_layer_kind *kind;
    nn_shape in_shape, out_shape;
    /* Fewest samples a training batch may hold (0 or 1: any). BatchNorm
     * with one value per channel per sample needs 2, as torch insists. */
    int min_train_batch;
    int state_count;
    /* Trainable entries come first and are laid out in the flat buffer in
     * this order. Buffers (running statistics) have data owned by the layer,
     * allocated in create. */
    nn_state state[NN_MAX_STATE];
} nn_layer;

/* What forward needs besides its input. */
typedef struct nn_mode {
    bool training;  /* Dropout and BatchNorm behave differently in eval */
    nn_rng *rng;    /* for Dropout masks; owned by the model */
} nn_mode;

struct nn_layer_kind {
    const char *name;            /* torch.nn's class name: "Linear" */
    const char *alias;           /* another name accepted in configs; NULL (layers have torch's names) */
    const nn_arg_spec *args;     /* torch.nn's keyword arguments and defaults */
    int arg_count;

    /* Returns a new layer or NULL with err set (message without location:
     * the caller prefixes the config file, line and layer index). args is
     * indexed like the kind's arg table. The caller sets layer->kind. */
    nn_layer *(*create)(const nn_arg_value *args, nn_shape in_shape, nn_error *err);

    /* PyTorch's default initialisation of the trainable state. NULL: none. */
    void (*init)(nn_layer *layer, nn_rng *rng);

    /* Allocate caches for batches of up to max_batch samples. NULL: none. */
    int (*reserve)(nn_layer *layer, int max_batch, nn_error *err);

    /* out = layer(in) for batch samples. */
    void (*forward)(nn_layer *layer, float *out, const float *in, int batch, nn_mode mode);

    /* Given dout = dLoss/dout, writes (overwrites, does not add) each
     * trainable entry's grad and, unless din is NULL, din = dLoss/din.
     * in and out are what the last forward read and wrote. */
    void (*backward)(nn_layer *layer, float *din, const float *dout, const float *in,
                     const float *out, int batch);

    /* PyTorch's repr of the module: "Linear(in_features=784, out_features=10, bias=True)". */
    int (*describe)(const nn_layer *layer, char *buffer, size_t size);

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



/* Floats of trainable state the layer needs in the flat buffers. */
size_t nn_layer_param_count(const nn_layer *layer);
/* Points the trainable entries, in order, at consecutive slices of params and
 * grads (each nn_layer_param_count floats long). */
void nn_layer_bind(nn_layer *layer, float *params, float *grads);

/* One item of a layer list: its kind and arguments (what the config parser
 * produces and the model is built from), and where the item stood in the
 * config for messages (0 when it came from elsewhere). */
typedef struct nn_layer_spec {
    const nn_layer_kind *kind;
    nn_arg_value args[NN_MAX_ARGS];  /* indexed like kind->args, defaults filled */
    int line, column;                /* where the item starts, 1-based */
} nn_layer_spec;

#endif
