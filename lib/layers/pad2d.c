/* Padding layers, as torch.nn: ZeroPad2d(padding), ConstantPad2d(padding,
 * value), ReflectionPad2d(padding), ReplicationPad2d(padding) and the 1-d
 * ConstantPad1d, ReflectionPad1d, ReplicationPad1d.
 *
 * padding is an int (every side) or torch's list (left, right, top, bottom)
 * that pads the last dims of the batched input from the last one back, two
 * numbers a dim; the constant kinds take any even count up to two per
 * per-sample dim (torch's F.pad: (1, 2) pads only the width, six numbers pad
 * the channels too), the reflection and replication kinds exactly two per
 * padded dim. Since torch pads the last dims of whatever it is given,
 * padding that would reach the batch dim is refused: ZeroPad2d on flat
 * samples would pad the batch. Negative padding crops, as in torch.
 *
 * An output index maps to an input index (or the constant) by torch's
 * formulas, per axis; forward gathers through them a row at a time (the
 * columns read straight across in one memcpy), backward zeroes din and adds
 * dout back (reflection and replication read some inputs more than once).
 * The maps are computed, not stored: an absurd padding costs nothing until
 * its activations are allocated, which the model bounds. Axes the padding
 * leaves alone map to themselves. Nothing is kept between forward and
 * backward (no context). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/model.h"
#include "layers/layers.h"

typedef enum pad_mode { PAD_CONSTANT, PAD_REFLECT, PAD_REPLICATE } pad_mode;

enum { ARG_PADDING, ARG_VALUE };

static const nn_arg_spec pad_args[] = {
    {"padding", NN_ARG_INT_LIST, NN_ARG_REQUIRED | NN_ARG_SCALAR, {0, 0}, NULL},
    {"value", NN_ARG_FLOAT, NN_ARG_REQUIRED, {0, 0}, NULL},
};

typedef struct pad_layer {
    nn_layer base;
    float value;
    int in_dims[3], out_dims[3];  /* per-sample shape as 3 axes, leading 1s for lower ranks */
    pad_mode mode;
    int before[3];                /* padding before each axis (negative: cropped) */
    int run_start, run_end;       /* output columns read straight across (memcpy) */
    char repr[256];
} pad_layer;

/* torch's source index of output j on an axis of size n padded by
 * (before, after); -1: the constant. */
static int source_index(pad_mode mode, int j, int n, int before) {
    int o_start = before > 0 ? before : 0, i_start = before < 0 ? -before : 0, ip;
    if (mode == PAD_CONSTANT) {
        ip = j - before;
        return ip >= 0 && ip < n ? ip : -1;
    }
    if (mode == PAD_REFLECT) {
        if (j < before) ip = before * 2 - j;
        else if (j < n + before) ip = j;
        else ip = (n + before - 1) * 2 - j;
    } else {
        if (j < before) ip = before;
        else if (j < n + before) ip = j;
        else ip = n + before - 1;
    }
    return ip - o_start + i_start;
}

static void pad_destroy(nn_layer *base) { free(base); }

static nn_layer *pad_create_common(const nn_arg_value *args, nn_shape in_shape, const char *name, pad_mode mode,
                                   int dims, bool zero, nn_error *err) {
    const nn_arg_value *padding = &args[ARG_PADDING];
    char shape[64], text[128];
    nn_shape_format(in_shape, shape, sizeof shape);
    /* An int pads both sides of each of the kind's dims, as torch's _pair / _quadruple. */
    int count = padding->is_list ? padding->count : 2 * dims;
    int pads[6];
    for (int i = 0; i < count && i < 6; i++) pads[i] = (int)padding->value[padding->is_list ? i : 0];
    nn_arg_value shown = *padding;
    shown.count = count;
    for (int i = 0; i < count && i < 6; i++) shown.value[i] = pads[i];
    nn_arg_format_python(text, sizeof text, &pad_args[ARG_PADDING], &shown, true);
    if (mode == PAD_CONSTANT ? count % 2 != 0 || count == 0 || count > 6 : count != 2 * dims) {
        if (mode == PAD_CONSTANT)
            nn_error_set(err, NN_ERR_INPUT, "%s padding %s has %d numbers: it takes an int or (left, right"
                         "[, top, bottom[, front, back]]), two numbers per padded dim", name, text, count);
        else
            nn_error_set(err, NN_ERR_INPUT, "%s padding %s has %d numbers: it takes an int or %d numbers, "
                         "two per padded dim", name, text, count, 2 * dims);
        return NULL;
    }
    int padded = count / 2;
    if (padded > in_shape.rank) {
        nn_error_set(err, NN_ERR_INPUT,
                     "%s padding %s pads the last %d dims of the batched input, but samples of shape %s "
                     "have %d: torch would pad the batch dim; give samples of rank %d or more",
                     name, text, padded, shape, in_shape.rank, padded);
        return NULL;
    }
    if (mode != PAD_CONSTANT && in_shape.rank > dims + 1) {
        nn_error_set(err, NN_ERR_INPUT,
                     "%s takes samples of rank %d or %d, not %s (torch supports %d-d and %d-d inputs only)",
                     name, dims, dims + 1, shape, dims + 1, dims + 2);
        return NULL;
    }
    pad_layer *layer = calloc(1, sizeof *layer);
    if (!layer) {
        nn_error_oom(err, "a padding layer");
        return NULL;
    }
    layer->base.in_shape = in_shape;
    layer->base.out_shape = in_shape;
    layer->value = zero ? 0.0f : (float)args[ARG_VALUE].value[0];
    int lead = 3 - in_shape.rank;
    long long size = 1;
    for (int a = 0; a < 3; a++) {
        layer->in_dims[a] = a < lead ? 1 : in_shape.dims[a - lead];
        /* pads[2k], pads[2k+1] pad the k-th dim from the end. */
        int k = 2 - a, before = k < padded ? pads[2 * k] : 0, after = k < padded ? pads[2 * k + 1] : 0;
        int n = layer->in_dims[a];
        if (mode == PAD_REFLECT && (before >= n || after >= n)) {
            nn_error_set(err, NN_ERR_INPUT, "%s padding %s: reflection padding (%d, %d) must be less than the "
                         "size %d of that dim of samples of shape %s", name, text, before, after, n, shape);
            free(layer);
            return NULL;
        }
        long long out = (long long)n + before + after;
        size *= out > 0 ? out : 1;
        if (out < 1 || size > (long long)NN_MAX_SAMPLE_VALUES) {
            if (out < 1)
                nn_error_set(err, NN_ERR_INPUT, "%s padding %s shrinks a dim of size %d of samples of shape %s "
                             "to %lld: at least 1 must remain", name, text, n, shape, out);
            else
                nn_error_set(err, NN_ERR_INPUT, "%s padding %s makes samples of shape %s hold %lld values or "
                             "more, beyond the 2^28 a sample may have", name, text, shape, size);
            free(layer);
            return NULL;
        }
        layer->out_dims[a] = (int)out;
        layer->before[a] = before;
        if (a >= lead) layer->base.out_shape.dims[a - lead] = (int)out;
    }
    layer->mode = mode;
    /* The columns read straight across, for memcpy: output j from input j - before. */
    int before = layer->before[2], n = layer->in_dims[2];
    layer->run_start = before > 0 ? before : 0;
    layer->run_end = (before + n < layer->out_dims[2] ? before + n : layer->out_dims[2]);
    if (layer->run_end < layer->run_start) layer->run_end = layer->run_start;
    if (zero)
        snprintf(layer->repr, sizeof layer->repr, "%s(%s)", name, text);
    else if (mode == PAD_CONSTANT) {
        char value[40];
        nn_format_python_float(value, sizeof value, args[ARG_VALUE].value[0], args[ARG_VALUE].is_integer);
        snprintf(layer->repr, sizeof layer->repr, "%s(padding=%s, value=%s)", name, text, value);
    } else
        snprintf(layer->repr, sizeof layer->repr, "%s(%s)", name, text);
    return &layer->base;
}

static void pad_forward(nn_layer *base, void *context, float *out, const float *in, int batch,
                        const nn_mode *mode) {
    (void)context;
    (void)mode;
    const pad_layer *layer = (const pad_layer *)base;
    const int *d = layer->in_dims, *o = layer->out_dims;
    size_t in_size = (size_t)d[0] * d[1] * d[2], out_size = (size_t)o[0] * o[1] * o[2];
    for (int b = 0; b < batch; b++) {
        const float *x = in + (size_t)b * in_size;
        float *y = out + (size_t)b * out_size;
        for (int i = 0; i < o[0]; i++)
            for (int j = 0; j < o[1]; j++) {
                float *row = y + ((size_t)i * o[1] + j) * o[2];
                int si = source_index(layer->mode, i, d[0], layer->before[0]);
                int sj = source_index(layer->mode, j, d[1], layer->before[1]);
                if (si < 0 || sj < 0) {
                    for (int k = 0; k < o[2]; k++) row[k] = layer->value;
                    continue;
                }
                const float *source = x + ((size_t)si * d[1] + sj) * d[2];
                for (int k = 0; k < o[2]; k++) {
                    if (k == layer->run_start && layer->run_end > k) {
                        memcpy(row + k, source + k - layer->before[2], (size_t)(layer->run_end - k) * sizeof *row);
                        k = layer->run_end - 1;
                        continue;
                    }
                    int sk = source_index(layer->mode, k, d[2], layer->before[2]);
                    row[k] = sk < 0 ? layer->value : source[sk];
                }
            }
    }
}

static void pad_backward(const nn_layer *base, void *context, float *din, const float *dout, const float *in,
                         const float *out, int batch, float *grad, const nn_mode *mode) {
    (void)context;
    (void)in;
    (void)out;
    (void)grad;
    (void)mode;
    if (!din) return;
    const pad_layer *layer = (const pad_layer *)base;
    const int *d = layer->in_dims, *o = layer->out_dims;
    size_t in_size = (size_t)d[0] * d[1] * d[2], out_size = (size_t)o[0] * o[1] * o[2];
    memset(din, 0, (size_t)batch * in_size * sizeof *din);
    for (int b = 0; b < batch; b++) {
        float *dx = din + (size_t)b * in_size;
        const float *dy = dout + (size_t)b * out_size;
        for (int i = 0; i < o[0]; i++)
            for (int j = 0; j < o[1]; j++) {
                int si = source_index(layer->mode, i, d[0], layer->before[0]);
                int sj = source_index(layer->mode, j, d[1], layer->before[1]);
                if (si < 0 || sj < 0) continue;
                const float *row = dy + ((size_t)i * o[1] + j) * o[2];
                float *target = dx + ((size_t)si * d[1] + sj) * d[2];
                for (int k = 0; k < o[2]; k++) {
                    if (k == layer->run_start && layer->run_end > k) {
                        float *t = target + k - layer->before[2];
                        for (int m = k; m < layer->run_end; m++) t[m - k] += row[m];
                        k = layer->run_end - 1;
                        continue;
                    }
                    int sk = source_index(layer->mode, k, d[2], layer->before[2]);
                    if (sk >= 0) target[sk] += row[k];
                }
            }
    }
}

static int pad_describe(const nn_layer *base, char *buffer, size_t size) {
    return snprintf(buffer, size, "%s", ((const pad_layer *)base)->repr);
}

#define PAD_CREATE(FUNCTION, NAME, MODE, DIMS, ZERO)                                         \
    static nn_layer *FUNCTION(const nn_arg_value *args, nn_shape in_shape, nn_error *err) { \
        return pad_create_common(args, in_shape, NAME, MODE, DIMS, ZERO, err);              \
    }
PAD_CREATE(zero_pad2d_create, "ZeroPad2d", PAD_CONSTANT, 2, true)
PAD_CREATE(constant_pad2d_create, "ConstantPad2d", PAD_CONSTANT, 2, false)
PAD_CREATE(reflection_pad2d_create, "ReflectionPad2d", PAD_REFLECT, 2, false)
PAD_CREATE(replication_pad2d_create, "ReplicationPad2d", PAD_REPLICATE, 2, false)
PAD_CREATE(constant_pad1d_create, "ConstantPad1d", PAD_CONSTANT, 1, false)
PAD_CREATE(reflection_pad1d_create, "ReflectionPad1d", PAD_REFLECT, 1, false)
PAD_CREATE(replication_pad1d_create, "ReplicationPad1d", PAD_REPLICATE, 1, false)

/* Only the constant kinds take value. */
#define PAD_KIND(NAME, CREATE, ARGS)                                                                 \
    {                                                                                                \
        .name = NAME, .args = pad_args, .arg_count = ARGS, .create = CREATE, .forward = pad_forward, \
        .backward = pad_backward, .describe = pad_describe, .destroy = pad_destroy,                  \
    }

const nn_layer_kind nn_zero_pad2d_kind = PAD_KIND("ZeroPad2d", zero_pad2d_create, 1);
const nn_layer_kind nn_constant_pad2d_kind = PAD_KIND("ConstantPad2d", constant_pad2d_create, 2);
const nn_layer_kind nn_reflection_pad2d_kind = PAD_KIND("ReflectionPad2d", reflection_pad2d_create, 1);
const nn_layer_kind nn_replication_pad2d_kind = PAD_KIND("ReplicationPad2d", replication_pad2d_create, 1);
const nn_layer_kind nn_constant_pad1d_kind = PAD_KIND("ConstantPad1d", constant_pad1d_create, 2);
const nn_layer_kind nn_reflection_pad1d_kind = PAD_KIND("ReflectionPad1d", reflection_pad1d_create, 1);
const nn_layer_kind nn_replication_pad1d_kind = PAD_KIND("ReplicationPad1d", replication_pad1d_create, 1);
