/* Unflatten(dim, unflattened_size), as torch.nn: splits one dim into
 * several, the inverse of Flatten. dim counts the batch as dim 0, as torch
 * does (negative from the end); the batch itself cannot be split, since
 * activations are a batch of samples. One size may be -1, inferred from the
 * others, as torch allows. The data does not move: forward and backward are
 * copies, and nothing is kept between them (no context). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layers.h"

enum { ARG_DIM, ARG_SIZES };

static const nn_arg_spec unflatten_args[] = {
    {"dim", NN_ARG_INT, NN_ARG_REQUIRED, {0, 0}, NULL},
    {"unflattened_size", NN_ARG_INT_LIST, NN_ARG_REQUIRED, {0, 0}, NULL},
};

typedef struct unflatten_layer {
    nn_layer base;
    char repr[256];
} unflatten_layer;

/* The per-sample shape with axis split into sizes (-1 inferred), or -1
 * with err set. */
static int unflatten_shape(int dim, const nn_arg_value *sizes, nn_shape in_shape, nn_shape *out_shape,
                           nn_error *err) {
    char shape[64], text[128];
    nn_shape_format(in_shape, shape, sizeof shape);
    nn_arg_format_python(text, sizeof text, &unflatten_args[ARG_SIZES], sizes, true);
    int batched_rank = in_shape.rank + 1;
    int normalized = dim < 0 ? dim + batched_rank : dim;
    if (normalized < 1 || normalized >= batched_rank)
        return nn_error_set(err, NN_ERR_INPUT,
                            "Unflatten dim=%d %s: dims count the batch as dim 0, so for samples of shape %s "
                            "dim must be 1 to %d or -%d to -1", dim,
                            normalized == 0 ? "is the batch dimension, which cannot be split" : "is out of range",
                            shape, in_shape.rank, in_shape.rank);
    int axis = normalized - 1, n = sizes->count;
    if (n == 0) return nn_error_set(err, NN_ERR_INPUT, "Unflatten unflattened_size is empty: give at least one size");
    if (in_shape.rank - 1 + n > 3)
        return nn_error_set(err, NN_ERR_INPUT,
                            "Unflatten unflattened_size %s would make samples of rank %d from %s: nnseq's "
                            "samples have at most 3 dims (C, H, W)", text, in_shape.rank - 1 + n, shape);
    int inferred = -1;
    long long known = 1, length = in_shape.dims[axis];
    for (int i = 0; i < n; i++) {
        double v = sizes->value[i];
        if (v == -1 && inferred < 0) {
            inferred = i;
            continue;
        }
        if (v == -1)
            return nn_error_set(err, NN_ERR_INPUT, "Unflatten unflattened_size %s has -1 more than once: "
                                "only one size can be inferred", text);
        if (v < 1)
            return nn_error_set(err, NN_ERR_INPUT, "Unflatten unflattened_size[%d] is %g: each size must be "
                                "positive, or -1 (once) to be inferred", i, v);
        known *= (long long)v;
        if (known > length) break;  /* too many already; the check below says so */
    }
    if (inferred >= 0 ? length % known != 0 : known != length)
        return nn_error_set(err, NN_ERR_INPUT,
                            "Unflatten unflattened_size %s does not multiply up to %lld, the size of dim %d "
                            "of samples of shape %s", text, length, dim, shape);
    nn_shape out = {0, {0, 0, 0}};
    for (int i = 0; i < axis; i++) out.dims[out.rank++] = in_shape.dims[i];
    for (int i = 0; i < n; i++) out.dims[out.rank++] = i == inferred ? (int)(length / known) : (int)sizes->value[i];
    for (int i = axis + 1; i < in_shape.rank; i++) out.dims[out.rank++] = in_shape.dims[i];
    *out_shape = out;
    return 0;
}

static nn_layer *unflatten_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    int dim = (int)args[ARG_DIM].value[0];
    nn_shape out_shape;
    if (unflatten_shape(dim, &args[ARG_SIZES], in_shape, &out_shape, err) != 0) return NULL;
    unflatten_layer *layer = calloc(1, sizeof *layer);
    if (!layer) {
        nn_error_oom(err, "an Unflatten layer");
        return NULL;
    }
    layer->base.in_shape = in_shape;
    layer->base.out_shape = out_shape;
    char sizes[128];
    /* torch prints the tuple it was given (the config's list). */
    nn_arg_format_python(sizes, sizeof sizes, &unflatten_args[ARG_SIZES], &args[ARG_SIZES], true);
    snprintf(layer->repr, sizeof layer->repr, "Unflatten(dim=%d, unflattened_size=%s)", dim, sizes);
    return &layer->base;
}

static int unflatten_describe(const nn_layer *base, char *buffer, size_t size) {
    return snprintf(buffer, size, "%s", ((const unflatten_layer *)base)->repr);
}

static void unflatten_destroy(nn_layer *base) { free(base); }

const nn_layer_kind nn_unflatten_kind = {
    .name = "Unflatten",
    .args = unflatten_args,
    .arg_count = sizeof unflatten_args / sizeof unflatten_args[0],
    .create = unflatten_create,
    .forward = nn_layer_copy_forward,
    .backward = nn_layer_copy_backward,
    .describe = unflatten_describe,
    .destroy = unflatten_destroy,
};
