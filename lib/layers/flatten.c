/* Flatten(start_dim=1, end_dim=-1), as torch.nn: merges the dims from
 * start_dim to end_dim into one. Dims count the batch as dim 0, as torch
 * does; the batch itself cannot be merged, since activations are a batch of
 * samples. The data does not move: forward and backward are copies, and
 * nothing is kept between them (no context). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layers.h"

enum { ARG_START, ARG_END };

static const nn_arg_spec flatten_args[] = {
    {"start_dim", NN_ARG_INT, 0, {1, 0}, NULL},
    {"end_dim", NN_ARG_INT, 0, {-1, 0}, NULL},
};

typedef struct flatten_layer {
    nn_layer base;
    int start_dim, end_dim; /* as given, for describe */
} flatten_layer;

static int flatten_reject(int start_dim, int end_dim, nn_shape in_shape, const char *why,
                          nn_error *err) {
    char shape[64];
    nn_shape_format(in_shape, shape, sizeof shape);
    return nn_error_set(err, NN_ERR_INPUT,
                        "Flatten(start_dim=%d, end_dim=%d) %s: dims count the batch as dim 0, so for "
                        "samples of shape %s both must be 1 to %d or -%d to -1, with start_dim not "
                        "after end_dim",
                        start_dim, end_dim, why, shape, in_shape.rank, in_shape.rank);
}

/* Per-sample shape after merging per-sample axes first..last; -1 with err
 * set if the torch dims do not name such a range. */
static int flatten_shape(int start_dim, int end_dim, nn_shape in_shape, nn_shape *out_shape,
                         nn_error *err) {
    int batched_rank = in_shape.rank + 1;
    int start = start_dim < 0 ? start_dim + batched_rank : start_dim;
    int end = end_dim < 0 ? end_dim + batched_rank : end_dim;
    if (start < 0 || start >= batched_rank || end < 0 || end >= batched_rank)
        return flatten_reject(start_dim, end_dim, in_shape, "is out of range", err);
    if (start == 0)
        return flatten_reject(start_dim, end_dim, in_shape, "would merge the batch dimension", err);
    if (start > end)
        return flatten_reject(start_dim, end_dim, in_shape, "has start_dim after end_dim", err);
    int first = start - 1, last = end - 1;
    nn_shape shape = {0, {0, 0, 0}};
    for (int i = 0; i < first; i++) shape.dims[shape.rank++] = in_shape.dims[i];
    int merged = 1;
    for (int i = first; i <= last; i++) merged *= in_shape.dims[i];
    shape.dims[shape.rank++] = merged;
    for (int i = last + 1; i < in_shape.rank; i++) shape.dims[shape.rank++] = in_shape.dims[i];
    *out_shape = shape;
    return 0;
}

static nn_layer *flatten_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    int start_dim = (int)args[ARG_START].value[0], end_dim = (int)args[ARG_END].value[0];
    nn_shape out_shape;
    if (flatten_shape(start_dim, end_dim, in_shape, &out_shape, err) != 0) return NULL;
    flatten_layer *layer = calloc(1, sizeof *layer);
    if (!layer) {
        nn_error_oom(err, "a Flatten layer");
        return NULL;
    }
    layer->base.in_shape = in_shape;
    layer->base.out_shape = out_shape;
    layer->start_dim = start_dim;
    layer->end_dim = end_dim;
    return &layer->base;
}

static int flatten_describe(const nn_layer *base, char *buffer, size_t size) {
    const flatten_layer *layer = (const flatten_layer *)base;
    return snprintf(buffer, size, "Flatten(start_dim=%d, end_dim=%d)", layer->start_dim, layer->end_dim);
}

static void flatten_destroy(nn_layer *base) { free(base); }

const nn_layer_kind nn_flatten_kind = {
    .name = "Flatten",
    .args = flatten_args,
    .arg_count = sizeof flatten_args / sizeof flatten_args[0],
    .create = flatten_create,
    .forward = nn_layer_copy_forward,
    .backward = nn_layer_copy_backward,
    .describe = flatten_describe,
    .destroy = flatten_destroy,
};
