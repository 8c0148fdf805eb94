/* A trained model as ONNX (issue 17): opset 13 (IR version 7, the one
 * that goes with it), written with protobuf-c over the onnx.proto Debian
 * ships (libonnx-dev), compiled to C at build time (the Makefile's
 * $(BUILD)/gen). Without those packages nnseq is built without NN_ONNX and
 * export says which packages to install.
 *
 * The graph takes "input", [batch, per-sample shape...] float32 as the
 * first layer sees it (after the 1/255 scaling and normalize; the mean and
 * std travel in metadata_props), and gives "output". Each layer kind maps
 * to standard opset-13 operators through one small function in the table
 * below, keyed by torch's class name; a kind or an argument ONNX 13 cannot
 * express is refused with NN_ERR_INPUT naming the layer and why. The
 * weights are initializers whose raw_data points at the model's own
 * floats (little-endian, as ONNX stores them) rather than copies. */
#include "io/onnx_export.h"

#ifndef NN_ONNX

bool nn_onnx_available(void) { return false; }

int nn_onnx_export(const nn_checkpoint *checkpoint, const char *path, nn_error *err) {
    (void)checkpoint;
    return nn_error_set(err, NN_ERR_INPUT,
                        "%s: this nnseq was built without ONNX export: install Debian's libprotobuf-c-dev, "
                        "protobuf-c-compiler and libonnx-dev (make deps does) and rebuild",
                        path);
}

#else

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic_file.h"
#include "onnx.pb-c.h"

#ifndef NN_ONNX_PRODUCER_VERSION
#define NN_ONNX_PRODUCER_VERSION "unknown"
#endif

#define ONNX_OPSET 13
#define ONNX_IR_VERSION 7
/* protobuf's own limit on one message */
#define ONNX_MAX_BYTES ((size_t)INT32_MAX)

typedef struct onnx_builder {
    nn_error *err;
    const char *path;
    void **owned; /* everything allocated, freed at the end */
    size_t owned_count, owned_capacity;
    Onnx__NodeProto **nodes;
    size_t node_count, node_capacity;
    Onnx__TensorProto **inits;
    size_t init_count, init_capacity;
    const char *current; /* the tensor the next layer reads */
    int layer;           /* index of the layer being exported, for names and messages */
    const char *kind;
    int serial;          /* tensors named so far in this layer */
    bool failed;
} onnx_builder;

static bool grow(onnx_builder *b, void ***items, size_t *count, size_t *capacity) {
    if (*count < *capacity) return true;
    size_t next = *capacity ? 2 * *capacity : 64;
    void **grown = realloc(*items, next * sizeof *grown);
    if (!grown) {
        b->failed = true;
        nn_error_oom(b->err, "the ONNX graph");
        return false;
    }
    *items = grown;
    *capacity = next;
    return true;
}

/* Zeroed memory owned by the builder; NULL (and b->failed) when out of it. */
static void *own(onnx_builder *b, size_t size) {
    if (b->failed || !grow(b, &b->owned, &b->owned_count, &b->owned_capacity)) return NULL;
    void *p = calloc(1, size ? size : 1);
    if (!p) {
        b->failed = true;
        nn_error_oom(b->err, "the ONNX graph");
        return NULL;
    }
    b->owned[b->owned_count++] = p;
    return p;
}

__attribute__((format(printf, 2, 3))) static char *own_text(onnx_builder *b, const char *format, ...) {
    va_list args;
    va_start(args, format);
    int n = vsnprintf(NULL, 0, format, args);
    va_end(args);
    char *text = own(b, (size_t)n + 1);
    if (!text) return NULL;
    va_start(args, format);
    vsnprintf(text, (size_t)n + 1, format, args);
    va_end(args);
    return text;
}

/* A fresh tensor name of the current layer: "3_Conv2d_1". */
static char *fresh(onnx_builder *b) { return own_text(b, "%d_%s_%d", b->layer, b->kind, b->serial++); }

/* Refusing the layer: "layer 3 (Upsample): ONNX export: ..." (exit 2). */
__attribute__((format(printf, 2, 3))) static int refuse(onnx_builder *b, const char *format, ...) {
    char why[768];
    va_list args;
    va_start(args, format);
    vsnprintf(why, sizeof why, format, args);
    va_end(args);
    b->failed = true;
    return nn_error_set(b->err, NN_ERR_INPUT, "%s: layer %d (%s) cannot be exported to ONNX opset %d: %s", b->path,
                        b->layer, b->kind, ONNX_OPSET, why);
}

/* A node reading inputs (n of them; NULL entries are empty optional
 * inputs) and writing one new tensor, which it returns. */
static Onnx__NodeProto *node(onnx_builder *b, const char *op, int n, const char *const *inputs) {
    Onnx__NodeProto *nd = own(b, sizeof *nd);
    char **in = own(b, (size_t)n * sizeof *in);
    char **out = own(b, sizeof *out);
    if (!nd || !in || !out || !grow(b, (void ***)&b->nodes, &b->node_count, &b->node_capacity)) return NULL;
    onnx__node_proto__init(nd);
    for (int i = 0; i < n; i++) in[i] = inputs[i] ? (char *)inputs[i] : (char *)"";
    out[0] = fresh(b);
    nd->n_input = (size_t)n;
    nd->input = in;
    nd->n_output = 1;
    nd->output = out;
    nd->op_type = (char *)op;
    nd->name = out[0];
    if (!out[0]) return NULL;
    b->nodes[b->node_count++] = nd;
    return nd;
}

static const char *node_out(Onnx__NodeProto *nd) { return nd ? nd->output[0] : NULL; }

/* op(x) and op(x, y), returning the result's name (NULL on failure). */
static const char *op1(onnx_builder *b, const char *op, const char *x) { return node_out(node(b, op, 1, &x)); }
static const char *op2(onnx_builder *b, const char *op, const char *x, const char *y) {
    const char *in[2] = {x, y};
    return node_out(node(b, op, 2, in));
}

static Onnx__AttributeProto *attribute(onnx_builder *b, Onnx__NodeProto *nd, const char *name,
                                       Onnx__AttributeProto__AttributeType type) {
    if (!nd) return NULL;
    Onnx__AttributeProto *a = own(b, sizeof *a);
    Onnx__AttributeProto **list = own(b, (nd->n_attribute + 1) * sizeof *list);
    if (!a || !list) return NULL;
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    a->type = type;
    if (nd->n_attribute) memcpy(list, nd->attribute, nd->n_attribute * sizeof *list);
    list[nd->n_attribute++] = a;
    nd->attribute = list;
    return a;
}

static void attr_int(onnx_builder *b, Onnx__NodeProto *nd, const char *name, int64_t value) {
    Onnx__AttributeProto *a = attribute(b, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (a) a->has_i = 1, a->i = value;
}

static void attr_float(onnx_builder *b, Onnx__NodeProto *nd, const char *name, double value) {
    Onnx__AttributeProto *a = attribute(b, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (a) a->has_f = 1, a->f = (float)value;
}

static void attr_string(onnx_builder *b, Onnx__NodeProto *nd, const char *name, const char *value) {
    Onnx__AttributeProto *a = attribute(b, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    if (a) a->has_s = 1, a->s.data = (uint8_t *)value, a->s.len = strlen(value);
}

static void attr_ints(onnx_builder *b, Onnx__NodeProto *nd, const char *name, const int64_t *values, int n) {
    Onnx__AttributeProto *a = attribute(b, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *copy = own(b, (size_t)n * sizeof *copy);
    if (!a || !copy) return;
    memcpy(copy, values, (size_t)n * sizeof *copy);
    a->n_ints = (size_t)n;
    a->ints = copy;
}

/* An initializer of rank dims over bytes (borrowed: the model's own floats
 * or builder-owned memory); returns its name. */
static const char *initializer(onnx_builder *b, int32_t type, const int64_t *dims, int rank, const void *bytes,
                               size_t size) {
    Onnx__TensorProto *t = own(b, sizeof *t);
    int64_t *d = own(b, (size_t)rank * sizeof *d);
    char *name = fresh(b);
    if (!t || !d || !name || !grow(b, (void ***)&b->inits, &b->init_count, &b->init_capacity)) return NULL;
    onnx__tensor_proto__init(t);
    if (rank) memcpy(d, dims, (size_t)rank * sizeof *d);
    t->n_dims = (size_t)rank;
    t->dims = d;
    t->has_data_type = 1;
    t->data_type = type;
    t->name = name;
    t->has_raw_data = 1;
    t->raw_data.data = (uint8_t *)bytes;
    t->raw_data.len = size;
    b->inits[b->init_count++] = t;
    return name;
}

static const char *init_floats(onnx_builder *b, const int64_t *dims, int rank, const float *values) {
    size_t count = 1;
    for (int i = 0; i < rank; i++) count *= (size_t)dims[i];
    return initializer(b, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, dims, rank, values, count * sizeof(float));
}

/* A copy of n floats (or n times fill when values is NULL) as a 1-d tensor
 * of dims. */
static const char *init_copy(onnx_builder *b, const int64_t *dims, int rank, const float *values, size_t n,
                             float fill) {
    float *copy = own(b, n * sizeof *copy);
    if (!copy) return NULL;
    for (size_t i = 0; i < n; i++) copy[i] = values ? values[i] : fill;
    return init_floats(b, dims, rank, copy);
}

static const char *scalar(onnx_builder *b, double value) { return init_copy(b, NULL, 0, NULL, 1, (float)value); }

static const char *init_int64s(onnx_builder *b, const int64_t *values, int n) {
    int64_t *copy = own(b, (size_t)(n ? n : 1) * sizeof *copy);
    if (!copy) return NULL;
    if (n) memcpy(copy, values, (size_t)n * sizeof *copy);
    int64_t dims[1] = {n};
    return initializer(b, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, dims, 1, copy, (size_t)n * sizeof *copy);
}

/* The layer's state entry name ("weight"), or NULL. */
static const nn_state *state(const nn_layer *layer, const char *name) {
    for (int i = 0; i < layer->state_count; i++)
        if (!strcmp(layer->state[i].array.name, name)) return &layer->state[i];
    return NULL;
}

/* A state entry as an initializer, with the given dims (a reshaped view of
 * the same floats: PReLU's slope as (C, 1, 1)) or its own when rank < 0. */
static const char *state_init(onnx_builder *b, const nn_layer *layer, const char *name, const int64_t *dims,
                              int rank) {
    const nn_state *s = state(layer, name);
    if (!s || s->array.dtype != NN_F32) {
        refuse(b, "it has no float32 %s", name);
        return NULL;
    }
    if (rank < 0) dims = s->array.dims, rank = s->array.rank;
    const char *made = init_floats(b, dims, rank, s->array.data);
    /* named as in the state_dict (and nnseq export's .npz): "3.weight" */
    char *state_name = own_text(b, "%d.%s", b->layer, s->array.name);
    if (!made || !state_name) return NULL;
    b->inits[b->init_count - 1]->name = state_name;
    return state_name;
}

/* What each kind's function gets. */
typedef struct onnx_layer {
    const nn_layer *layer;
    const nn_layer_spec *spec;
} onnx_layer;

static const nn_arg_value *arg(const onnx_layer *l, const char *name) {
    int i = nn_arg_find(l->spec->kind->args, l->spec->kind->arg_count, name);
    return i < 0 ? NULL : &l->spec->args[i];
}

static double arg_number(const onnx_layer *l, const char *name, double otherwise) {
    const nn_arg_value *v = arg(l, name);
    return v && !v->is_null && !v->choice && v->count > 0 ? v->value[0] : otherwise;
}

static const char *arg_text(const onnx_layer *l, const char *name) {
    int i = nn_arg_find(l->spec->kind->args, l->spec->kind->arg_count, name);
    return i < 0 ? NULL : nn_arg_choice(&l->spec->kind->args[i], &l->spec->args[i]);
}

/* A window argument as its spatial values: a pair for the 2-d kinds, one
 * for the 1-d ones; the default when not given (or null). */
static int arg_window(const onnx_layer *l, const char *name, int spatial, int64_t *out, int64_t otherwise) {
    const nn_arg_value *v = arg(l, name);
    for (int i = 0; i < spatial; i++) out[i] = otherwise;
    if (!v || v->is_null || v->choice) return 0;
    if (!v->given && (l->spec->kind->args[v - l->spec->args].flags & NN_ARG_OPTIONAL)) return 0;
    for (int i = 0; i < spatial; i++) out[i] = (int64_t)v->value[v->count > i ? i : 0];
    return 1;
}

static int spatial_rank(const nn_layer *layer) { return layer->in_shape.rank - 1; }

/* The tensor's rank with the batch. */
static int batched_rank(nn_shape shape) { return shape.rank + 1; }

/* dims (C, 1, ...) that broadcast a per-channel vector over [N, C, ...]. */
static int channel_dims(nn_shape shape, int64_t channels, int64_t *dims) {
    dims[0] = channels;
    for (int i = 1; i < shape.rank; i++) dims[i] = 1;
    return shape.rank;
}

/* --- the kinds --- */

typedef int (*onnx_emit)(onnx_builder *b, const onnx_layer *l);

static int emit_identity(onnx_builder *b, const onnx_layer *l) {
    (void)b;
    (void)l;
    return 0; /* Dropout and Identity: nothing in eval */
}

static int set_current(onnx_builder *b, const char *name) {
    if (!name) return -1;
    b->current = name;
    return 0;
}

static int emit_linear(onnx_builder *b, const onnx_layer *l) {
    const char *w = state_init(b, l->layer, "weight", NULL, -1);
    const char *bias = state(l->layer, "bias") ? state_init(b, l->layer, "bias", NULL, -1) : NULL;
    const char *in[3] = {b->current, w, bias};
    Onnx__NodeProto *nd = node(b, "Gemm", bias ? 3 : 2, in);
    attr_int(b, nd, "transB", 1);
    return set_current(b, node_out(nd));
}

/* Conv2d and Conv1d: padding 'same' split as torch does (the odd one
 * after), padding_mode reflect / replicate as a Pad first. */
static int emit_conv(onnx_builder *b, const onnx_layer *l) {
    int s = spatial_rank(l->layer);
    int64_t kernel[2], stride[2], dilation[2], padding[2], pads[4] = {0};
    arg_window(l, "kernel_size", s, kernel, 1);
    arg_window(l, "stride", s, stride, 1);
    arg_window(l, "dilation", s, dilation, 1);
    const char *choice = arg_text(l, "padding");
    arg_window(l, "padding", s, padding, 0);
    for (int k = 0; k < s; k++) {
        pads[k] = pads[s + k] = choice ? 0 : padding[k];
        if (choice && !strcmp(choice, "same")) {
            int64_t window = dilation[k] * (kernel[k] - 1) + 1;
            pads[k] = (window - 1) / 2;
            pads[s + k] = window - 1 - pads[k];
        }
    }
    const char *mode = arg_text(l, "padding_mode");
    if (mode && strcmp(mode, "zeros")) {
        if (!strcmp(mode, "circular"))
            return refuse(b, "padding_mode 'circular' has no Pad mode in opset 13 (Pad's wrap mode came in opset 19)");
        int64_t all[2 * (2 + 2)] = {0}; /* [N, C, spatial...] begins, then ends */
        int rank = s + 2;
        for (int k = 0; k < s; k++) all[2 + k] = pads[k], all[rank + 2 + k] = pads[s + k];
        const char *in[2] = {b->current, init_int64s(b, all, 2 * rank)};
        Onnx__NodeProto *pad = node(b, "Pad", 2, in);
        attr_string(b, pad, "mode", !strcmp(mode, "reflect") ? "reflect" : "edge");
        if (set_current(b, node_out(pad))) return -1;
        memset(pads, 0, sizeof pads);
    }
    const char *w = state_init(b, l->layer, "weight", NULL, -1);
    const char *bias = state(l->layer, "bias") ? state_init(b, l->layer, "bias", NULL, -1) : NULL;
    const char *in[3] = {b->current, w, bias};
    Onnx__NodeProto *nd = node(b, "Conv", bias ? 3 : 2, in);
    attr_ints(b, nd, "kernel_shape", kernel, s);
    attr_ints(b, nd, "strides", stride, s);
    attr_ints(b, nd, "dilations", dilation, s);
    attr_ints(b, nd, "pads", pads, 2 * s);
    attr_int(b, nd, "group", (int64_t)arg_number(l, "groups", 1));
    return set_current(b, node_out(nd));
}

static int emit_conv_transpose(onnx_builder *b, const onnx_layer *l) {
    int64_t kernel[2], stride[2], dilation[2], padding[2], output_padding[2], pads[4];
    arg_window(l, "kernel_size", 2, kernel, 1);
    arg_window(l, "stride", 2, stride, 1);
    arg_window(l, "dilation", 2, dilation, 1);
    arg_window(l, "padding", 2, padding, 0);
    arg_window(l, "output_padding", 2, output_padding, 0);
    const char *mode = arg_text(l, "padding_mode");
    if (mode && strcmp(mode, "zeros")) return refuse(b, "padding_mode '%s' (torch takes only zeros here)", mode);
    for (int k = 0; k < 2; k++) pads[k] = pads[2 + k] = padding[k];
    const char *w = state_init(b, l->layer, "weight", NULL, -1);
    const char *bias = state(l->layer, "bias") ? state_init(b, l->layer, "bias", NULL, -1) : NULL;
    const char *in[3] = {b->current, w, bias};
    Onnx__NodeProto *nd = node(b, "ConvTranspose", bias ? 3 : 2, in);
    attr_ints(b, nd, "kernel_shape", kernel, 2);
    attr_ints(b, nd, "strides", stride, 2);
    attr_ints(b, nd, "dilations", dilation, 2);
    attr_ints(b, nd, "pads", pads, 4);
    attr_ints(b, nd, "output_padding", output_padding, 2);
    attr_int(b, nd, "group", (int64_t)arg_number(l, "groups", 1));
    return set_current(b, node_out(nd));
}

/* ONNX's pooled extent, to compare with nnseq's (torch drops a ceil_mode
 * window that would start in the right padding; ONNX 13 does not say). */
static int64_t onnx_pool_extent(int64_t in, int64_t pads, int64_t window, int64_t stride, bool ceil_mode) {
    int64_t span = in + pads - window;
    return (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
}

static int emit_pool(onnx_builder *b, const onnx_layer *l, bool max) {
    int s = spatial_rank(l->layer);
    int64_t kernel[2], stride[2], dilation[2] = {1, 1}, padding[2], pads[4];
    arg_window(l, "kernel_size", s, kernel, 1);
    if (!arg_window(l, "stride", s, stride, 1)) memcpy(stride, kernel, sizeof stride);
    arg_window(l, "padding", s, padding, 0);
    if (max) arg_window(l, "dilation", s, dilation, 1);
    bool ceil_mode = arg_number(l, "ceil_mode", 0) != 0;
    const nn_arg_value *divisor = arg(l, "divisor_override");
    if (divisor && divisor->given && !divisor->is_null)
        return refuse(b, "divisor_override has no AveragePool attribute in ONNX");
    for (int k = 0; k < s; k++) {
        pads[k] = pads[s + k] = padding[k];
        int64_t window = dilation[k] * (kernel[k] - 1) + 1;
        int64_t want = l->layer->out_shape.dims[1 + k];
        int64_t got = onnx_pool_extent(l->layer->in_shape.dims[1 + k], 2 * padding[k], window, stride[k], ceil_mode);
        if (got != want)
            return refuse(b, "with ceil_mode its last window starts in the padding, which torch drops (%lld "
                             "outputs) and ONNX keeps (%lld)",
                          (long long)want, (long long)got);
    }
    Onnx__NodeProto *nd = node(b, max ? "MaxPool" : "AveragePool", 1, &b->current);
    attr_ints(b, nd, "kernel_shape", kernel, s);
    attr_ints(b, nd, "strides", stride, s);
    attr_ints(b, nd, "pads", pads, 2 * s);
    attr_int(b, nd, "ceil_mode", ceil_mode);
    if (max) attr_ints(b, nd, "dilations", dilation, s);
    else attr_int(b, nd, "count_include_pad", arg_number(l, "count_include_pad", 1) != 0);
    return set_current(b, node_out(nd));
}

static int emit_max_pool(onnx_builder *b, const onnx_layer *l) { return emit_pool(b, l, true); }
static int emit_avg_pool(onnx_builder *b, const onnx_layer *l) { return emit_pool(b, l, false); }

/* Output 1 x 1 is the global pool; an output that divides the input evenly
 * is a plain pool of in / out; anything else has overlapping or uneven
 * windows that no ONNX 13 pool expresses. */
static int emit_adaptive_pool(onnx_builder *b, const onnx_layer *l, bool max) {
    nn_shape in = l->layer->in_shape, out = l->layer->out_shape;
    if (out.dims[1] == 1 && out.dims[2] == 1)
        return set_current(b, op1(b, max ? "GlobalMaxPool" : "GlobalAveragePool", b->current));
    int64_t kernel[2];
    for (int k = 0; k < 2; k++) {
        if (in.dims[1 + k] % out.dims[1 + k])
            return refuse(b, "output size (%d, %d) does not divide the input (%d, %d) evenly (ONNX has no adaptive "
                             "pool)",
                          out.dims[1], out.dims[2], in.dims[1], in.dims[2]);
        kernel[k] = in.dims[1 + k] / out.dims[1 + k];
    }
    int64_t pads[4] = {0};
    Onnx__NodeProto *nd = node(b, max ? "MaxPool" : "AveragePool", 1, &b->current);
    attr_ints(b, nd, "kernel_shape", kernel, 2);
    attr_ints(b, nd, "strides", kernel, 2);
    attr_ints(b, nd, "pads", pads, 4);
    return set_current(b, node_out(nd));
}

static int emit_adaptive_avg(onnx_builder *b, const onnx_layer *l) { return emit_adaptive_pool(b, l, false); }
static int emit_adaptive_max(onnx_builder *b, const onnx_layer *l) { return emit_adaptive_pool(b, l, true); }

/* BatchNormalization in its eval form from the running statistics; no
 * affine parameters are ones and zeros. */
static int emit_running_norm(onnx_builder *b, const onnx_layer *l, int64_t channels) {
    if (!state(l->layer, "running_mean"))
        return refuse(b, "track_running_stats=False normalises with each batch's own statistics in eval too, "
                         "which BatchNormalization's inference form does not");
    int64_t dims[1] = {channels};
    const char *scale = state(l->layer, "weight") ? state_init(b, l->layer, "weight", NULL, -1)
                                                  : init_copy(b, dims, 1, NULL, (size_t)channels, 1.0f);
    const char *bias = state(l->layer, "bias") ? state_init(b, l->layer, "bias", NULL, -1)
                                               : init_copy(b, dims, 1, NULL, (size_t)channels, 0.0f);
    const char *in[5] = {b->current, scale, bias, state_init(b, l->layer, "running_mean", NULL, -1),
                         state_init(b, l->layer, "running_var", NULL, -1)};
    Onnx__NodeProto *nd = node(b, "BatchNormalization", 5, in);
    attr_float(b, nd, "epsilon", arg_number(l, "eps", 1e-5));
    return set_current(b, node_out(nd));
}

static int emit_batch_norm(onnx_builder *b, const onnx_layer *l) {
    return emit_running_norm(b, l, l->layer->in_shape.dims[0]);
}

/* y * weight + bias over the trailing axes of shape (dims of the affine
 * parameters as stored), when the layer has them. */
static int affine_tail(onnx_builder *b, const onnx_layer *l, const int64_t *dims, int rank) {
    if (!state(l->layer, "weight")) return 0;
    if (set_current(b, op2(b, "Mul", b->current, state_init(b, l->layer, "weight", dims, rank)))) return -1;
    return set_current(b, op2(b, "Add", b->current, state_init(b, l->layer, "bias", dims, rank)));
}

/* InstanceNormalization over [N, C, ...] with unit scale and zero shift
 * for groups channels; the layer's own affine comes after. */
static const char *instance_norm(onnx_builder *b, const char *x, int64_t groups, double eps) {
    int64_t dims[1] = {groups};
    const char *in[3] = {x, init_copy(b, dims, 1, NULL, (size_t)groups, 1.0f),
                         init_copy(b, dims, 1, NULL, (size_t)groups, 0.0f)};
    Onnx__NodeProto *nd = node(b, "InstanceNormalization", 3, in);
    attr_float(b, nd, "epsilon", eps);
    return node_out(nd);
}

static int emit_instance_norm(onnx_builder *b, const onnx_layer *l) {
    nn_shape shape = l->layer->in_shape;
    if (state(l->layer, "running_mean")) return emit_running_norm(b, l, shape.dims[0]);
    if (set_current(b, instance_norm(b, b->current, shape.dims[0], arg_number(l, "eps", 1e-5)))) return -1;
    int64_t dims[NN_MAX_RANK];
    return affine_tail(b, l, dims, channel_dims(shape, shape.dims[0], dims));
}

/* GroupNorm: [N, G, rest] through InstanceNormalization, back to the
 * input's shape, then the per-channel affine. */
static int emit_group_norm(onnx_builder *b, const onnx_layer *l) {
    nn_shape shape = l->layer->in_shape;
    int64_t groups = (int64_t)arg_number(l, "num_groups", 1);
    int64_t grouped[3] = {0, groups, -1}, back[NN_MAX_RANK + 1] = {0};
    for (int i = 0; i < shape.rank; i++) back[1 + i] = shape.dims[i];
    if (set_current(b, op2(b, "Reshape", b->current, init_int64s(b, grouped, 3))) ||
        set_current(b, instance_norm(b, b->current, groups, arg_number(l, "eps", 1e-5))) ||
        set_current(b, op2(b, "Reshape", b->current, init_int64s(b, back, shape.rank + 1))))
        return -1;
    int64_t dims[NN_MAX_RANK];
    return affine_tail(b, l, dims, channel_dims(shape, shape.dims[0], dims));
}

/* LayerNorm has no operator before opset 17: (x - mean) / sqrt(var + eps)
 * over the last len(normalized_shape) axes, then the elementwise affine. */
static int emit_layer_norm(onnx_builder *b, const onnx_layer *l) {
    const nn_arg_value *shape = arg(l, "normalized_shape");
    int count = shape->count, rank = batched_rank(l->layer->in_shape);
    int64_t axes[NN_MAX_RANK];
    for (int i = 0; i < count; i++) axes[i] = rank - count + i;
    Onnx__NodeProto *mean = node(b, "ReduceMean", 1, &b->current);
    attr_ints(b, mean, "axes", axes, count);
    const char *centred = op2(b, "Sub", b->current, node_out(mean));
    const char *square = op2(b, "Mul", centred, centred);
    Onnx__NodeProto *var = node(b, "ReduceMean", 1, &square);
    attr_ints(b, var, "axes", axes, count);
    const char *spread = op1(b, "Sqrt", op2(b, "Add", node_out(var), scalar(b, arg_number(l, "eps", 1e-5))));
    if (set_current(b, op2(b, "Div", centred, spread))) return -1;
    /* the parameters broadcast over the normalised axes */
    int64_t dims[NN_ARG_MAX_VALUES];
    for (int i = 0; i < count; i++) dims[i] = (int64_t)shape->value[i];
    return affine_tail(b, l, dims, count);
}

/* torch pads the channel window (size / 2 before, (size - 1) / 2 after),
 * ONNX's LRN the other way round: the same only for odd sizes. */
static int emit_lrn(onnx_builder *b, const onnx_layer *l) {
    int64_t size = (int64_t)arg_number(l, "size", 1);
    if (size % 2 == 0)
        return refuse(b, "an even size (%lld) centres the channel window one channel apart from ONNX's LRN",
                      (long long)size);
    Onnx__NodeProto *nd = node(b, "LRN", 1, &b->current);
    attr_int(b, nd, "size", size);
    attr_float(b, nd, "alpha", arg_number(l, "alpha", 1e-4));
    attr_float(b, nd, "beta", arg_number(l, "beta", 0.75));
    attr_float(b, nd, "bias", arg_number(l, "k", 1.0));
    return set_current(b, node_out(nd));
}

/* Reshape to the layer's per-sample output, the batch kept (0 copies it). */
static int emit_reshape(onnx_builder *b, const onnx_layer *l) {
    nn_shape out = l->layer->out_shape;
    int64_t dims[NN_MAX_RANK + 1] = {0};
    for (int i = 0; i < out.rank; i++) dims[1 + i] = out.dims[i];
    return set_current(b, op2(b, "Reshape", b->current, init_int64s(b, dims, out.rank + 1)));
}

static int emit_flatten(onnx_builder *b, const onnx_layer *l) {
    int rank = batched_rank(l->layer->in_shape);
    int start = (int)arg_number(l, "start_dim", 1), end = (int)arg_number(l, "end_dim", -1);
    if (start < 0) start += rank;
    if (end < 0) end += rank;
    if (start != 1 || end != rank - 1) return emit_reshape(b, l);
    Onnx__NodeProto *nd = node(b, "Flatten", 1, &b->current);
    attr_int(b, nd, "axis", 1);
    return set_current(b, node_out(nd));
}

static int emit_softmax_kind(onnx_builder *b, const onnx_layer *l, const char *op) {
    const nn_arg_value *dim = arg(l, "dim");
    /* dim counts the batch, as ONNX 13's axis does; None is dim 1 here */
    int64_t axis = dim && dim->given && !dim->is_null ? (int64_t)dim->value[0] : 1;
    Onnx__NodeProto *nd = node(b, op, 1, &b->current);
    attr_int(b, nd, "axis", axis);
    return set_current(b, node_out(nd));
}

static int emit_softmax(onnx_builder *b, const onnx_layer *l) { return emit_softmax_kind(b, l, "Softmax"); }
static int emit_log_softmax(onnx_builder *b, const onnx_layer *l) { return emit_softmax_kind(b, l, "LogSoftmax"); }

/* Pad (opset 13: pads and the constant as inputs): torch's padding pairs
 * run from the last axis back. */
static int emit_pad(onnx_builder *b, const onnx_layer *l, const char *mode) {
    const nn_arg_value *padding = arg(l, "padding");
    int rank = batched_rank(l->layer->in_shape);
    int dims = strstr(l->spec->kind->name, "1d") ? 1 : 2;
    int count = padding->is_list ? padding->count : 2 * dims;
    int64_t pads[2 * (NN_MAX_RANK + 1)] = {0};
    for (int i = 0; i < count / 2; i++) {
        int axis = rank - 1 - i;
        pads[axis] = (int64_t)padding->value[padding->is_list ? 2 * i : 0];
        pads[rank + axis] = (int64_t)padding->value[padding->is_list ? 2 * i + 1 : 0];
    }
    const char *in[3] = {b->current, init_int64s(b, pads, 2 * rank), NULL};
    bool constant = !strcmp(mode, "constant");
    if (constant) in[2] = scalar(b, arg_number(l, "value", 0));
    Onnx__NodeProto *nd = node(b, "Pad", constant ? 3 : 2, in);
    attr_string(b, nd, "mode", mode);
    return set_current(b, node_out(nd));
}

static int emit_pad_constant(onnx_builder *b, const onnx_layer *l) { return emit_pad(b, l, "constant"); }
static int emit_pad_reflect(onnx_builder *b, const onnx_layer *l) { return emit_pad(b, l, "reflect"); }
static int emit_pad_edge(onnx_builder *b, const onnx_layer *l) { return emit_pad(b, l, "edge"); }

/* Resize with scales: torch's step between source positions is 1 /
 * scale_factor when given (else in / out), which is what Resize takes from
 * scales. */
static int emit_upsample(onnx_builder *b, const onnx_layer *l) {
    const char *kind = l->spec->kind->name;
    const char *mode = !strcmp(kind, "UpsamplingNearest2d")    ? "nearest"
                       : !strcmp(kind, "UpsamplingBilinear2d") ? "bilinear"
                                                               : arg_text(l, "mode");
    const nn_arg_value *align = arg(l, "align_corners"), *scale = arg(l, "scale_factor");
    const nn_arg_value *recompute = arg(l, "recompute_scale_factor");
    bool corners = !strcmp(kind, "UpsamplingBilinear2d") ||
                   (align && align->given && !align->is_null && align->value[0] != 0);
    bool given_scale = scale && scale->given && !scale->is_null &&
                       !(recompute && recompute->given && !recompute->is_null && recompute->value[0] != 0);
    nn_shape in = l->layer->in_shape, out = l->layer->out_shape;
    int rank = batched_rank(in);
    float *scales = own(b, (size_t)rank * sizeof *scales);
    if (!scales) return -1;
    scales[0] = scales[1] = 1.0f;
    for (int k = 1; k < in.rank; k++)
        scales[1 + k] = given_scale ? (float)scale->value[scale->count > k - 1 ? k - 1 : 0]
                                    : (float)out.dims[k] / (float)in.dims[k];
    const char *onnx_mode = NULL, *transform = "asymmetric", *nearest = NULL;
    if (!strcmp(mode, "nearest")) onnx_mode = "nearest", nearest = "floor";
    else if (!strcmp(mode, "nearest-exact")) onnx_mode = "nearest", transform = "half_pixel", nearest = "round_prefer_ceil";
    else if (!strcmp(mode, "linear") || !strcmp(mode, "bilinear"))
        onnx_mode = "linear", transform = corners ? "align_corners" : "pytorch_half_pixel";
    else if (!strcmp(mode, "bicubic"))
        onnx_mode = "cubic", transform = corners ? "align_corners" : "pytorch_half_pixel";
    else return refuse(b, "mode '%s' has no Resize mode", mode);
    int64_t dims[1] = {rank};
    const char *inputs[4] = {b->current, NULL, init_floats(b, dims, 1, scales), NULL};
    if (!given_scale) {
        /* a size: Resize's sizes (out / in as a float scale can land a hair
         * under the size), the batch and channels taken from the input */
        int64_t start[1] = {0}, end[1] = {2}, spatial[2];
        for (int k = 1; k < in.rank; k++) spatial[k - 1] = out.dims[k];
        const char *slice[3] = {op1(b, "Shape", b->current), init_int64s(b, start, 1), init_int64s(b, end, 1)};
        const char *parts[2] = {node_out(node(b, "Slice", 3, slice)), init_int64s(b, spatial, in.rank - 1)};
        Onnx__NodeProto *concat = node(b, "Concat", 2, parts);
        attr_int(b, concat, "axis", 0);
        inputs[2] = NULL;
        inputs[3] = node_out(concat);
    }
    Onnx__NodeProto *nd = node(b, "Resize", given_scale ? 3 : 4, inputs);
    attr_string(b, nd, "mode", onnx_mode);
    attr_string(b, nd, "coordinate_transformation_mode", transform);
    if (nearest) attr_string(b, nd, "nearest_mode", nearest);
    if (!strcmp(onnx_mode, "cubic")) attr_float(b, nd, "cubic_coeff_a", -0.75);
    return set_current(b, node_out(nd));
}

/* Activations. */

static int emit_unary(onnx_builder *b, const char *op) { return set_current(b, op1(b, op, b->current)); }

static int emit_relu(onnx_builder *b, const onnx_layer *l) { (void)l; return emit_unary(b, "Relu"); }
static int emit_sigmoid(onnx_builder *b, const onnx_layer *l) { (void)l; return emit_unary(b, "Sigmoid"); }
static int emit_tanh(onnx_builder *b, const onnx_layer *l) { (void)l; return emit_unary(b, "Tanh"); }
static int emit_softsign(onnx_builder *b, const onnx_layer *l) { (void)l; return emit_unary(b, "Softsign"); }
static int emit_selu(onnx_builder *b, const onnx_layer *l) { (void)l; return emit_unary(b, "Selu"); }

static int emit_alpha_unary(onnx_builder *b, const onnx_layer *l, const char *op, const char *name, double otherwise) {
    Onnx__NodeProto *nd = node(b, op, 1, &b->current);
    attr_float(b, nd, "alpha", arg_number(l, name, otherwise));
    return set_current(b, node_out(nd));
}

static int emit_leaky_relu(onnx_builder *b, const onnx_layer *l) {
    return emit_alpha_unary(b, l, "LeakyRelu", "negative_slope", 0.01);
}
static int emit_elu(onnx_builder *b, const onnx_layer *l) { return emit_alpha_unary(b, l, "Elu", "alpha", 1); }
static int emit_celu(onnx_builder *b, const onnx_layer *l) { return emit_alpha_unary(b, l, "Celu", "alpha", 1); }

/* torch's hardsigmoid is relu6(x + 3) / 6 */
static const char *hard_sigmoid(onnx_builder *b, const char *x) {
    Onnx__NodeProto *nd = node(b, "HardSigmoid", 1, &x);
    attr_float(b, nd, "alpha", 1.0 / 6.0);
    attr_float(b, nd, "beta", 0.5);
    return node_out(nd);
}

static int emit_hardsigmoid(onnx_builder *b, const onnx_layer *l) {
    (void)l;
    return set_current(b, hard_sigmoid(b, b->current));
}

/* HardSwish is opset 14: x * HardSigmoid(x). */
static int emit_hardswish(onnx_builder *b, const onnx_layer *l) {
    (void)l;
    return set_current(b, op2(b, "Mul", b->current, hard_sigmoid(b, b->current)));
}

static int emit_silu(onnx_builder *b, const onnx_layer *l) {
    (void)l;
    return set_current(b, op2(b, "Mul", b->current, op1(b, "Sigmoid", b->current)));
}

static int emit_mish(onnx_builder *b, const onnx_layer *l) {
    (void)l;
    return set_current(b, op2(b, "Mul", b->current, op1(b, "Tanh", op1(b, "Softplus", b->current))));
}

/* torch's Softplus(beta, threshold): log(1 + exp(beta x)) / beta, and x
 * itself where beta x > threshold. */
static int emit_softplus(onnx_builder *b, const onnx_layer *l) {
    const char *x = b->current, *beta = scalar(b, arg_number(l, "beta", 1));
    const char *scaled = op2(b, "Mul", x, beta);
    const char *soft = op2(b, "Div", op1(b, "Softplus", scaled), beta);
    const char *in[3] = {op2(b, "Greater", scaled, scalar(b, arg_number(l, "threshold", 20))), x, soft};
    return set_current(b, node_out(node(b, "Where", 3, in)));
}

static int emit_clip(onnx_builder *b, double low, double high) {
    const char *in[3] = {b->current, scalar(b, low), scalar(b, high)};
    return set_current(b, node_out(node(b, "Clip", 3, in)));
}

static int emit_hardtanh(onnx_builder *b, const onnx_layer *l) {
    double low = arg_number(l, "min_val", -1), high = arg_number(l, "max_val", 1);
    const nn_arg_value *min = arg(l, "min_value"), *max = arg(l, "max_value");
    if (min && min->given && !min->is_null) low = min->value[0];
    if (max && max->given && !max->is_null) high = max->value[0];
    return emit_clip(b, low, high);
}

static int emit_relu6(onnx_builder *b, const onnx_layer *l) {
    (void)l;
    return emit_clip(b, 0, 6);
}

/* x where x > threshold, else value */
static int emit_threshold(onnx_builder *b, const onnx_layer *l) {
    const char *x = b->current;
    const char *in[3] = {op2(b, "Greater", x, scalar(b, arg_number(l, "threshold", 0))), x,
                         scalar(b, arg_number(l, "value", 0))};
    return set_current(b, node_out(node(b, "Where", 3, in)));
}

/* The slope as (C, 1, ...) to broadcast over [N, C, ...] (one slope: [1]). */
static int emit_prelu(onnx_builder *b, const onnx_layer *l) {
    const nn_state *w = state(l->layer, "weight");
    if (!w) return refuse(b, "it has no weight");
    int64_t dims[NN_MAX_RANK] = {1};
    int rank = w->array.dims[0] == 1 ? 1 : channel_dims(l->layer->in_shape, w->array.dims[0], dims);
    return set_current(b, op2(b, "PRelu", b->current, state_init(b, l->layer, "weight", dims, rank)));
}

static int emit_gelu(onnx_builder *b, const onnx_layer *l) {
    const char *approximate = arg_text(l, "approximate"), *x = b->current, *inner;
    if (approximate && !strcmp(approximate, "tanh")) {
        /* tanh(sqrt(2 / pi) (x + 0.044715 x^3)) */
        const char *cube = op2(b, "Mul", op2(b, "Mul", x, x), x);
        const char *sum = op2(b, "Add", x, op2(b, "Mul", cube, scalar(b, 0.044715)));
        inner = op1(b, "Tanh", op2(b, "Mul", sum, scalar(b, 0.7978845608028654 /* sqrt(2 / pi) */)));
    } else {
        inner = op1(b, "Erf", op2(b, "Div", x, scalar(b, sqrt(2.0))));
    }
    const char *half = op2(b, "Mul", x, scalar(b, 0.5));
    return set_current(b, op2(b, "Mul", half, op2(b, "Add", inner, scalar(b, 1.0))));
}

typedef struct onnx_kind {
    const char *name;
    onnx_emit emit;
} onnx_kind;

static const onnx_kind onnx_kinds[] = {
    {"Linear", emit_linear},
    {"Conv2d", emit_conv},
    {"Conv1d", emit_conv},
    {"ConvTranspose2d", emit_conv_transpose},
    {"MaxPool2d", emit_max_pool},
    {"MaxPool1d", emit_max_pool},
    {"AvgPool2d", emit_avg_pool},
    {"AvgPool1d", emit_avg_pool},
    {"AdaptiveAvgPool2d", emit_adaptive_avg},
    {"AdaptiveMaxPool2d", emit_adaptive_max},
    {"BatchNorm1d", emit_batch_norm},
    {"BatchNorm2d", emit_batch_norm},
    {"InstanceNorm2d", emit_instance_norm},
    {"GroupNorm", emit_group_norm},
    {"LayerNorm", emit_layer_norm},
    {"LocalResponseNorm", emit_lrn},
    {"Flatten", emit_flatten},
    {"Unflatten", emit_reshape},
    {"Dropout", emit_identity},
    {"Dropout1d", emit_identity},
    {"Dropout2d", emit_identity},
    {"AlphaDropout", emit_identity},
    {"FeatureAlphaDropout", emit_identity},
    {"Identity", emit_identity},
    {"Softmax", emit_softmax},
    {"LogSoftmax", emit_log_softmax},
    {"ZeroPad2d", emit_pad_constant},
    {"ConstantPad2d", emit_pad_constant},
    {"ConstantPad1d", emit_pad_constant},
    {"ReflectionPad2d", emit_pad_reflect},
    {"ReflectionPad1d", emit_pad_reflect},
    {"ReplicationPad2d", emit_pad_edge},
    {"ReplicationPad1d", emit_pad_edge},
    {"Upsample", emit_upsample},
    {"UpsamplingNearest2d", emit_upsample},
    {"UpsamplingBilinear2d", emit_upsample},
    {"ReLU", emit_relu},
    {"Sigmoid", emit_sigmoid},
    {"Tanh", emit_tanh},
    {"LeakyReLU", emit_leaky_relu},
    {"ELU", emit_elu},
    {"SELU", emit_selu},
    {"CELU", emit_celu},
    {"Softplus", emit_softplus},
    {"Softsign", emit_softsign},
    {"Hardsigmoid", emit_hardsigmoid},
    {"Hardswish", emit_hardswish},
    {"SiLU", emit_silu},
    {"Mish", emit_mish},
    {"GELU", emit_gelu},
    {"Hardtanh", emit_hardtanh},
    {"ReLU6", emit_relu6},
    {"Threshold", emit_threshold},
    {"PReLU", emit_prelu},
};

static const onnx_kind *onnx_kind_find(const char *name) {
    for (size_t i = 0; i < sizeof onnx_kinds / sizeof onnx_kinds[0]; i++)
        if (!strcmp(onnx_kinds[i].name, name)) return &onnx_kinds[i];
    return NULL;
}

/* --- the model around the graph --- */

/* A float32 tensor type [batch, shape...] with the batch dimension named. */
static Onnx__ValueInfoProto *value_info(onnx_builder *b, const char *name, nn_shape shape) {
    Onnx__ValueInfoProto *v = own(b, sizeof *v);
    Onnx__TypeProto *type = own(b, sizeof *type);
    Onnx__TypeProto__Tensor *tensor = own(b, sizeof *tensor);
    Onnx__TensorShapeProto *tshape = own(b, sizeof *tshape);
    int rank = batched_rank(shape);
    Onnx__TensorShapeProto__Dimension **dims = own(b, (size_t)rank * sizeof *dims);
    if (!v || !type || !tensor || !tshape || !dims) return NULL;
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(type);
    onnx__type_proto__tensor__init(tensor);
    onnx__tensor_shape_proto__init(tshape);
    for (int i = 0; i < rank; i++) {
        Onnx__TensorShapeProto__Dimension *d = own(b, sizeof *d);
        if (!d) return NULL;
        onnx__tensor_shape_proto__dimension__init(d);
        if (i == 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = (char *)"batch";
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = shape.dims[i - 1];
        }
        dims[i] = d;
    }
    tshape->n_dim = (size_t)rank;
    tshape->dim = dims;
    tensor->has_elem_type = 1;
    tensor->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tensor->shape = tshape;
    type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    type->tensor_type = tensor;
    v->name = (char *)name;
    v->type = type;
    return v;
}

/* values as "[0.1307, 0.3081]" (%.9g: float32 round-trips). */
static char *float_list(onnx_builder *b, const float *values, size_t count) {
    char *text = own(b, count * 18 + 3);
    if (!text) return NULL;
    size_t n = 0;
    text[n++] = '[';
    for (size_t i = 0; i < count; i++) n += (size_t)sprintf(text + n, "%s%.9g", i ? ", " : "", (double)values[i]);
    text[n++] = ']';
    text[n] = '\0';
    return text;
}

/* The statistics as short as they are: one number when every value shares
 * it, one per channel of (C, H, W) samples when each channel does, else one
 * per input value. Returns the layout's name. */
static const char *normalize_layout(const nn_input_transform *t, nn_shape shape, size_t *count, size_t *stride) {
    bool uniform = true;
    for (size_t i = 1; i < t->size; i++)
        if (t->mean[i] != t->mean[0] || t->std[i] != t->std[0]) uniform = false;
    if (uniform) return *count = 1, *stride = 1, "scalar";
    if (shape.rank == 3) {
        size_t plane = (size_t)shape.dims[1] * (size_t)shape.dims[2];
        bool per_channel = true;
        for (size_t i = 0; i < t->size; i++)
            if (t->mean[i] != t->mean[i - i % plane] || t->std[i] != t->std[i - i % plane]) per_channel = false;
        if (per_channel) return *count = (size_t)shape.dims[0], *stride = plane, "per_channel";
    }
    return *count = t->size, *stride = 1, "per_value";
}

static int add_metadata(onnx_builder *b, Onnx__ModelProto *model, const nn_checkpoint *ck) {
    const nn_input_transform *t = &ck->transform;
    nn_shape shape = ck->model->input_shape;
    char shape_text[64] = "[";
    for (int i = 0; i < shape.rank; i++)
        snprintf(shape_text + strlen(shape_text), sizeof shape_text - strlen(shape_text), "%s%d", i ? ", " : "",
                 shape.dims[i]);
    strcat(shape_text, "]");
    const char *keys[6], *values[6];
    int n = 0;
    keys[n] = "input_shape", values[n++] = own_text(b, "%s", shape_text);
    keys[n] = "input_preprocessing", values[n++] = "float32 as the first layer sees it: (x - normalize_mean) / normalize_std, x "
                                    "as nnseq reads it (uint8 images scaled by 1/255)";
    if (t->normalize && t->mean && t->std && t->size == nn_shape_size(shape)) {
        size_t count, stride;
        const char *layout = normalize_layout(t, shape, &count, &stride);
        float *mean = own(b, count * sizeof *mean), *std = own(b, count * sizeof *std);
        if (!mean || !std) return -1;
        for (size_t i = 0; i < count; i++) mean[i] = t->mean[i * stride], std[i] = t->std[i * stride];
        keys[n] = "normalize_layout", values[n++] = layout;
        keys[n] = "normalize_mean", values[n++] = float_list(b, mean, count);
        keys[n] = "normalize_std", values[n++] = float_list(b, std, count);
    } else {
        keys[n] = "normalize_layout", values[n++] = "none";
    }
    Onnx__StringStringEntryProto **entries = own(b, (size_t)n * sizeof *entries);
    if (!entries) return -1;
    for (int i = 0; i < n; i++) {
        Onnx__StringStringEntryProto *e = own(b, sizeof *e);
        if (!e || !values[i]) return -1;
        onnx__string_string_entry_proto__init(e);
        e->key = (char *)keys[i];
        e->value = (char *)values[i];
        entries[i] = e;
    }
    model->n_metadata_props = (size_t)n;
    model->metadata_props = entries;
    return 0;
}

static int build_graph(onnx_builder *b, const nn_checkpoint *ck) {
    const nn_model *m = ck->model;
    if (ck->config.model.layer_count != m->layer_count)
        return nn_error_set(b->err, NN_ERR_INPUT, "%s: the checkpoint's config lists %d layers, its model %d",
                            b->path, ck->config.model.layer_count, m->layer_count);
    b->current = "input";
    for (int i = 0; i < m->layer_count; i++) {
        const nn_layer *layer = m->layers[i];
        b->layer = i;
        b->kind = layer->kind->name;
        b->serial = 0;
        const onnx_kind *kind = onnx_kind_find(layer->kind->name);
        if (!kind) return refuse(b, "nnseq's ONNX export has no mapping for it");
        onnx_layer l = {layer, &ck->config.model.layers[i]};
        if (kind->emit(b, &l) != 0 || b->failed) {
            if (!b->failed) nn_error_oom(b->err, "the ONNX graph");
            return -1;
        }
    }
    /* the last tensor becomes "output": renamed when a node wrote it, else
     * (a model of Identity and Dropout only) passed through */
    Onnx__NodeProto *last = b->node_count ? b->nodes[b->node_count - 1] : NULL;
    if (last && !strcmp(last->output[0], b->current)) last->output[0] = (char *)"output";
    else {
        b->kind = "output";
        Onnx__NodeProto *nd = node(b, "Identity", 1, &b->current);
        if (!nd) return -1;
        nd->output[0] = (char *)"output";
    }
    return 0;
}

static void builder_free(onnx_builder *b) {
    for (size_t i = 0; i < b->owned_count; i++) free(b->owned[i]);
    free(b->owned);
    free(b->nodes);
    free(b->inits);
}

/* Packs straight into the file: the weights are not copied a second time. */
typedef struct file_buffer {
    ProtobufCBuffer base;
    FILE *file;
    bool failed;
    int error;
} file_buffer;

static void file_append(ProtobufCBuffer *base, size_t size, const uint8_t *data) {
    file_buffer *buffer = (file_buffer *)base;
    if (buffer->failed || fwrite(data, 1, size, buffer->file) == size) return;
    buffer->failed = true;
    buffer->error = errno;
}

bool nn_onnx_available(void) { return true; }

int nn_onnx_export(const nn_checkpoint *checkpoint, const char *path, nn_error *err) {
    /* raw_data is little-endian: the weights are written as they lie */
    const uint16_t probe = 1;
    if (*(const uint8_t *)&probe != 1)
        return nn_error_set(err, NN_ERR_RUNTIME, "%s: ONNX export needs a little-endian machine", path);
    onnx_builder b = {.err = err, .path = path};
    int status = -1;
    Onnx__ModelProto model = ONNX__MODEL_PROTO__INIT;
    Onnx__GraphProto graph = ONNX__GRAPH_PROTO__INIT;
    Onnx__OperatorSetIdProto opset = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    Onnx__OperatorSetIdProto *opsets[1] = {&opset};
    Onnx__ValueInfoProto *inputs[1], *outputs[1];
    if (build_graph(&b, checkpoint) != 0) goto done;
    inputs[0] = value_info(&b, "input", checkpoint->model->input_shape);
    outputs[0] = value_info(&b, "output", nn_model_output_shape(checkpoint->model));
    if (!inputs[0] || !outputs[0] || add_metadata(&b, &model, checkpoint) != 0) {
        if (!b.failed) nn_error_oom(err, "the ONNX graph");
        goto done;
    }
    graph.name = (char *)"nnseq";
    graph.n_node = b.node_count;
    graph.node = b.nodes;
    graph.n_initializer = b.init_count;
    graph.initializer = b.inits;
    graph.n_input = 1;
    graph.input = inputs;
    graph.n_output = 1;
    graph.output = outputs;
    opset.domain = (char *)"";
    opset.has_version = 1;
    opset.version = ONNX_OPSET;
    model.has_ir_version = 1;
    model.ir_version = ONNX_IR_VERSION;
    model.n_opset_import = 1;
    model.opset_import = opsets;
    model.producer_name = (char *)"nnseq";
    model.producer_version = (char *)NN_ONNX_PRODUCER_VERSION;
    model.graph = &graph;
    /* the size first: protobuf refuses messages of 2 GiB and more */
    size_t size = onnx__model_proto__get_packed_size(&model);
    if (size > ONNX_MAX_BYTES) {
        nn_error_set(err, NN_ERR_INPUT,
                     "%s: the model would take %zu bytes of ONNX, beyond protobuf's limit of %zu bytes for one "
                     "message (nnseq does not write ONNX's external data files)",
                     path, size, ONNX_MAX_BYTES);
        goto done;
    }
    nn_atomic_file out;
    if (nn_atomic_open(&out, path, err) != 0) goto done;
    file_buffer buffer = {.base = {.append = file_append}, .file = out.file};
    onnx__model_proto__pack_to_buffer(&model, &buffer.base);
    if (buffer.failed) {
        nn_atomic_abort(&out);
        nn_error_set(err, NN_ERR_RUNTIME, "%s: cannot write the ONNX model: %s", path, strerror(buffer.error));
        goto done;
    }
    status = nn_atomic_commit(&out, err);
done:
    builder_free(&b);
    return status;
}

#endif
