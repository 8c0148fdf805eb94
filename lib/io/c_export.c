/* nn_c_export: the model as one C99 source and its header (issue 17).
 *
 * Each layer becomes one static function of (const float *in, float *out)
 * with its sizes as constants and its weights as static const arrays
 * printed with %a (hex floats round-trip exactly); predict calls them in
 * order, ping-ponging between two static scratch buffers sized to the
 * largest activation, and the last one writes the caller's output. Layers
 * that do not change the values (Flatten, Unflatten, Dropout*, Identity)
 * emit nothing. The generated code reads its arguments only from what the
 * config gave (nn_layer_spec args) and the layers' shapes and state, so it
 * follows nnseq's forward in eval: sums in double (nnseq's sgemm sums in
 * float; double keeps the C side's own rounding far below 1e-5).
 *
 * int8: Linear and Conv weights per output channel (scale max|w| / 127),
 * the layer's input per tensor (scale max|x| / 127 over the calibration
 * inputs, run through the model in eval), int32 sums, the output
 * dequantised to float; every other layer stays float. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic_file.h"
#include "io/c_export.h"

typedef struct emitter {
    FILE *c;
    const char *prefix;
    int index;              /* the layer being written */
} emitter;

/* The argument name of kind's table for spec, or NULL when the kind has none. */
static const nn_arg_value *arg(const nn_layer_spec *spec, const char *name) {
    int i = nn_arg_find(spec->kind->args, spec->kind->arg_count, name);
    return i < 0 ? NULL : &spec->args[i];
}

static double arg_number(const nn_layer_spec *spec, const char *name, int which, double otherwise) {
    int i = nn_arg_find(spec->kind->args, spec->kind->arg_count, name);
    const nn_arg_value *v = i < 0 ? NULL : &spec->args[i];
    /* An optional argument left out (stride of a pool) follows from others. */
    if (!v || v->is_null || (!v->given && (spec->kind->args[i].flags & NN_ARG_OPTIONAL)) || v->count == 0) return otherwise;
    if (v->choice && v->count == 0) return otherwise;
    return v->count > which ? v->value[which] : v->value[0];
}

static const float *state_data(const nn_layer *layer, const char *name, size_t *count) {
    for (int i = 0; i < layer->state_count; i++)
        if (!strcmp(layer->state[i].array.name, name)) {
            if (count) *count = nn_array_count(&layer->state[i].array);
            return layer->state[i].array.data;
        }
    return NULL;
}

static void emit_floats(emitter *e, const char *name, const float *values, size_t count) {
    fprintf(e->c, "static const float %s_l%d_%s[%zu] = {", e->prefix, e->index, name, count);
    for (size_t i = 0; i < count; i++) fprintf(e->c, "%s%a", i % 8 ? ", " : (i ? ",\n    " : "\n    "), (double)values[i]);
    fputs("\n};\n", e->c);
}

/* Per output channel: scale max|w| / 127 and the rounded int8 weights. */
static void emit_int8_weights(emitter *e, const float *w, int channels, size_t per_channel) {
    fprintf(e->c, "static const signed char %s_l%d_qweight[%zu] = {", e->prefix, e->index, (size_t)channels * per_channel);
    float *scales = malloc((size_t)channels * sizeof *scales);
    for (int c = 0; c < channels; c++) {
        float top = 0;
        for (size_t j = 0; j < per_channel; j++) top = fmaxf(top, fabsf(w[c * per_channel + j]));
        float scale = top > 0 ? top / 127.0f : 1.0f;
        if (scales) scales[c] = scale;
        for (size_t j = 0; j < per_channel; j++) {
            size_t i = c * per_channel + j;
            long q = lrintf(w[i] / scale);
            fprintf(e->c, "%s%ld", i % 16 ? ", " : (i ? ",\n    " : "\n    "), q > 127 ? 127 : q < -127 ? -127 : q);
        }
    }
    fputs("\n};\n", e->c);
    fprintf(e->c, "static const float %s_l%d_wscale[%d] = {", e->prefix, e->index, channels);
    for (int c = 0; c < channels; c++) fprintf(e->c, "%s%a", c ? ", " : "", scales ? (double)scales[c] : 1.0);
    fputs("};\n", e->c);
    free(scales);
}

static void emit_quantize_input(emitter *e, size_t size, float input_scale) {
    fprintf(e->c, "    static signed char q[%zu];\n    int n;\n", size);
    fprintf(e->c, "    for (n = 0; n < %zu; n++) {\n        float v = floorf(in[n] * %af + 0.5f);\n"
                  "        q[n] = (signed char)(v > 127.0f ? 127 : v < -127.0f ? -127 : (int)v);\n    }\n",
            size, (double)(1.0f / input_scale));
}

static void begin_function(emitter *e, const char *what) {
    fprintf(e->c, "/* layer %d: %s */\nstatic void %s_l%d(const float *in, float *out) {\n", e->index, what, e->prefix,
            e->index);
}

static int emit_linear(emitter *e, const nn_layer *layer, bool int8, float input_scale) {
    size_t wcount = 0;
    const float *w = state_data(layer, "weight", &wcount), *b = state_data(layer, "bias", NULL);
    int outs = layer->out_shape.dims[layer->out_shape.rank - 1];
    int ins = layer->in_shape.dims[layer->in_shape.rank - 1];
    size_t rows = nn_shape_size(layer->in_shape) / (size_t)ins;
    if (int8) emit_int8_weights(e, w, outs, (size_t)ins);
    else emit_floats(e, "weight", w, wcount);
    if (b) emit_floats(e, "bias", b, (size_t)outs);
    begin_function(e, "Linear");
    if (int8) emit_quantize_input(e, nn_shape_size(layer->in_shape), input_scale);
    fprintf(e->c, "    int r, o, k;\n    for (r = 0; r < %zu; r++)\n        for (o = 0; o < %d; o++) {\n", rows, outs);
    if (int8) {
        fprintf(e->c, "            long s = 0;\n            const signed char *w = %s_l%d_qweight + o * %d, *x = q + r * %d;\n"
                      "            for (k = 0; k < %d; k++) s += (long)w[k] * x[k];\n"
                      "            out[r * %d + o] = (float)s * (%s_l%d_wscale[o] * %af)%s;\n",
                e->prefix, e->index, ins, ins, ins, outs, e->prefix, e->index, (double)input_scale, b ? " + BIAS[o]" : "");
    } else {
        fprintf(e->c, "            double s = %s;\n            const float *w = %s_l%d_weight + o * %d, *x = in + r * %d;\n"
                      "            for (k = 0; k < %d; k++) s += (double)w[k] * x[k];\n            out[r * %d + o] = (float)s;\n",
                b ? "BIAS[o]" : "0", e->prefix, e->index, ins, ins, ins, outs);
    }
    fputs("        }\n}\n", e->c);
    return 0;
}

/* Conv2d and Conv1d (as height 1): stride, padding (numbers, 'valid',
 * 'same'), dilation, groups, bias, and every padding_mode. */
static int emit_conv(emitter *e, const nn_layer_spec *spec, const nn_layer *layer, bool one_d, bool int8,
                     float input_scale, nn_error *err) {
    int ic = layer->in_shape.dims[0], oc = layer->out_shape.dims[0];
    int h = one_d ? 1 : layer->in_shape.dims[1], w = one_d ? layer->in_shape.dims[1] : layer->in_shape.dims[2];
    int oh = one_d ? 1 : layer->out_shape.dims[1], ow = one_d ? layer->out_shape.dims[1] : layer->out_shape.dims[2];
    int kh = one_d ? 1 : (int)arg_number(spec, "kernel_size", 0, 1), kw = (int)arg_number(spec, "kernel_size", one_d ? 0 : 1, 1);
    int sh = one_d ? 1 : (int)arg_number(spec, "stride", 0, 1), sw = (int)arg_number(spec, "stride", one_d ? 0 : 1, 1);
    int dh = one_d ? 1 : (int)arg_number(spec, "dilation", 0, 1), dw = (int)arg_number(spec, "dilation", one_d ? 0 : 1, 1);
    int groups = (int)arg_number(spec, "groups", 0, 1);
    const nn_arg_value *padding = arg(spec, "padding");
    const char *padding_text = nn_arg_choice(&spec->kind->args[nn_arg_find(spec->kind->args, spec->kind->arg_count, "padding")], padding);
    int ph, pw;
    if (padding_text && !strcmp(padding_text, "valid")) ph = pw = 0;
    else if (padding_text) {   /* 'same': torch puts the odd one of the total on the far side */
        ph = dh * (kh - 1) / 2;
        pw = dw * (kw - 1) / 2;
    } else {
        ph = one_d ? 0 : (int)arg_number(spec, "padding", 0, 0);
        pw = (int)arg_number(spec, "padding", one_d ? 0 : 1, 0);
    }
    const nn_arg_value *mode_value = arg(spec, "padding_mode");
    const char *mode = mode_value ? nn_arg_choice(&spec->kind->args[nn_arg_find(spec->kind->args, spec->kind->arg_count, "padding_mode")], mode_value) : "zeros";
    if (!mode) mode = "zeros";
    if (groups < 1 || ic % groups || oc % groups)
        return nn_error_set(err, NN_ERR_INPUT, "layer %d (%s): groups=%d does not divide the channels", e->index,
                            spec->kind->name, groups);
    int icg = ic / groups, ocg = oc / groups;
    size_t wcount = 0;
    const float *weight = state_data(layer, "weight", &wcount), *bias = state_data(layer, "bias", NULL);
    if (int8) emit_int8_weights(e, weight, oc, (size_t)icg * kh * kw);
    else emit_floats(e, "weight", weight, wcount);
    if (bias) emit_floats(e, "bias", bias, (size_t)oc);
    begin_function(e, spec->kind->name);
    if (int8) emit_quantize_input(e, nn_shape_size(layer->in_shape), input_scale);
    fprintf(e->c, "    int o, y, x, c, i, j;\n    for (o = 0; o < %d; o++) {\n        int g = o / %d;\n"
                  "        for (y = 0; y < %d; y++)\n            for (x = 0; x < %d; x++) {\n",
            oc, ocg, oh, ow);
    fprintf(e->c, int8 ? "                long s = 0;\n" : "                double s = %s;\n", bias ? "BIAS[o]" : "0");
    fprintf(e->c, "                for (c = 0; c < %d; c++)\n                    for (i = 0; i < %d; i++) {\n"
                  "                        int iy = y * %d - %d + i * %d;\n",
            icg, kh, sh, ph, dh);
    /* Where a tap falls outside, by padding_mode (zeros: skipped). */
    const char *fix_y, *fix_x;
    if (!strcmp(mode, "reflect")) {
        fix_y = "                        if (iy < 0) iy = -iy; else if (iy >= H) iy = 2 * H - 2 - iy;\n";
        fix_x = "                            if (ix < 0) ix = -ix; else if (ix >= W) ix = 2 * W - 2 - ix;\n";
    } else if (!strcmp(mode, "replicate")) {
        fix_y = "                        if (iy < 0) iy = 0; else if (iy >= H) iy = H - 1;\n";
        fix_x = "                            if (ix < 0) ix = 0; else if (ix >= W) ix = W - 1;\n";
    } else if (!strcmp(mode, "circular")) {
        fix_y = "                        iy = ((iy % H) + H) % H;\n";
        fix_x = "                            ix = ((ix % W) + W) % W;\n";
    } else {
        fix_y = "                        if (iy < 0 || iy >= H) continue;\n";
        fix_x = "                            if (ix < 0 || ix >= W) continue;\n";
    }
    fputs(fix_y, e->c);
    fprintf(e->c, "                        for (j = 0; j < %d; j++) {\n                            int ix = x * %d - %d + j * %d;\n", kw,
            sw, pw, dw);
    fputs(fix_x, e->c);
    if (int8)
        fprintf(e->c, "                            s += (long)%s_l%d_qweight[((o * %d + c) * %d + i) * %d + j] * q[((g * %d + c) * H + iy) * W + ix];\n",
                e->prefix, e->index, icg, kh, kw, icg);
    else
        fprintf(e->c, "                            s += (double)%s_l%d_weight[((o * %d + c) * %d + i) * %d + j] * in[((g * %d + c) * H + iy) * W + ix];\n",
                e->prefix, e->index, icg, kh, kw, icg);
    fputs("                        }\n                    }\n", e->c);
    if (int8)
        fprintf(e->c, "                out[(o * %d + y) * %d + x] = (float)s * (%s_l%d_wscale[o] * %af)%s;\n", oh, ow, e->prefix,
                e->index, (double)input_scale, bias ? " + BIAS[o]" : "");
    else
        fprintf(e->c, "                out[(o * %d + y) * %d + x] = (float)s;\n", oh, ow);
    fputs("            }\n    }\n}\n", e->c);
    (void)h;
    (void)w;
    return 0;
}

/* MaxPool and AvgPool, 1d (as height 1) and 2d, torch's windows:
 * padding, dilation (max), ceil_mode, count_include_pad, divisor_override. */
static void emit_pool(emitter *e, const nn_layer_spec *spec, const nn_layer *layer, bool one_d, bool max) {
    int c = layer->in_shape.dims[0];
    int h = one_d ? 1 : layer->in_shape.dims[1], w = one_d ? layer->in_shape.dims[1] : layer->in_shape.dims[2];
    int oh = one_d ? 1 : layer->out_shape.dims[1], ow = one_d ? layer->out_shape.dims[1] : layer->out_shape.dims[2];
    int kh = one_d ? 1 : (int)arg_number(spec, "kernel_size", 0, 1), kw = (int)arg_number(spec, "kernel_size", one_d ? 0 : 1, 1);
    int sh = one_d ? 1 : (int)arg_number(spec, "stride", 0, kh), sw = (int)arg_number(spec, "stride", one_d ? 0 : 1, kw);
    int ph = one_d ? 0 : (int)arg_number(spec, "padding", 0, 0), pw = (int)arg_number(spec, "padding", one_d ? 0 : 1, 0);
    int dh = one_d || !max ? 1 : (int)arg_number(spec, "dilation", 0, 1), dw = max ? (int)arg_number(spec, "dilation", one_d ? 0 : 1, 1) : 1;
    begin_function(e, spec->kind->name);
    fprintf(e->c, "    int c, y, x, i, j;\n    for (c = 0; c < %d; c++)\n        for (y = 0; y < %d; y++)\n"
                  "            for (x = 0; x < %d; x++) {\n                const float *p = in + c * %d;\n",
            c, oh, ow, h * w);
    if (max) {
        fprintf(e->c, "                float m = -HUGE_VALF;\n                for (i = 0; i < %d; i++) {\n"
                      "                    int iy = y * %d - %d + i * %d;\n                    if (iy < 0 || iy >= %d) continue;\n"
                      "                    for (j = 0; j < %d; j++) {\n                        int ix = x * %d - %d + j * %d;\n"
                      "                        float v;\n                        if (ix < 0 || ix >= %d) continue;\n"
                      "                        v = p[iy * %d + ix];\n                        if (v > m || v != v) m = v;\n"
                      "                    }\n                }\n                out[(c * %d + y) * %d + x] = m;\n",
                kh, sh, ph, dh, h, kw, sw, pw, dw, w, w, oh, ow);
    } else {
        bool include_pad = arg_number(spec, "count_include_pad", 0, 1) != 0;
        const nn_arg_value *divisor = arg(spec, "divisor_override");
        int override = divisor && divisor->given && !divisor->is_null ? (int)divisor->value[0] : 0;
        fprintf(e->c, "                int y0 = y * %d - %d, x0 = x * %d - %d, y1 = y0 + %d, x1 = x0 + %d, n;\n"
                      "                float s = 0;\n                if (y1 > %d) y1 = %d;\n                if (x1 > %d) x1 = %d;\n"
                      "                n = (y1 - y0) * (x1 - x0);\n                if (y0 < 0) y0 = 0;\n                if (x0 < 0) x0 = 0;\n"
                      "                if (y1 > %d) y1 = %d;\n                if (x1 > %d) x1 = %d;\n",
                sh, ph, sw, pw, kh, kw, h + ph, h + ph, w + pw, w + pw, h, h, w, w);
        if (override) fprintf(e->c, "                n = %d;\n", override);
        else if (!include_pad) fputs("                n = (y1 - y0) * (x1 - x0);\n", e->c);
        fprintf(e->c, "                for (i = y0; i < y1; i++)\n                    for (j = x0; j < x1; j++) s += p[i * %d + j];\n"
                      "                out[(c * %d + y) * %d + x] = s / (float)n;\n",
                w, oh, ow);
    }
    fputs("            }\n}\n", e->c);
}

static void emit_adaptive_pool(emitter *e, const nn_layer *layer, bool max) {
    int c = layer->in_shape.dims[0], h = layer->in_shape.dims[1], w = layer->in_shape.dims[2];
    int oh = layer->out_shape.dims[1], ow = layer->out_shape.dims[2];
    begin_function(e, max ? "AdaptiveMaxPool2d" : "AdaptiveAvgPool2d");
    fprintf(e->c, "    int c, y, x, i, j;\n    for (c = 0; c < %d; c++)\n        for (y = 0; y < %d; y++)\n"
                  "            for (x = 0; x < %d; x++) {\n"
                  "                int y0 = y * %d / %d, y1 = ((y + 1) * %d + %d - 1) / %d;\n"
                  "                int x0 = x * %d / %d, x1 = ((x + 1) * %d + %d - 1) / %d;\n"
                  "                const float *p = in + c * %d;\n                float s = %s;\n"
                  "                for (i = y0; i < y1; i++)\n                    for (j = x0; j < x1; j++) {\n",
            c, oh, ow, h, oh, h, oh, oh, w, ow, w, ow, ow, h * w, max ? "-HUGE_VALF" : "0");
    fprintf(e->c, max ? "                        if (p[i * %d + j] > s || p[i * %d + j] != p[i * %d + j]) s = p[i * %d + j];\n"
                      : "                        s += p[i * %d + j];\n",
            w, w, w, w);
    fprintf(e->c, "                    }\n                out[(c * %d + y) * %d + x] = %s;\n            }\n}\n", oh, ow,
            max ? "s" : "s / (float)((y1 - y0) * (x1 - x0))");
}

/* Eval BatchNorm as nnseq computes it: scale = weight / sqrt(var + eps)
 * and shift = bias - mean * scale in float, then x * scale + shift. */
static int emit_batch_norm(emitter *e, const nn_layer_spec *spec, const nn_layer *layer, nn_error *err) {
    if (arg_number(spec, "track_running_stats", 0, 1) == 0)
        return nn_error_set(err, NN_ERR_INPUT,
                            "layer %d (%s): track_running_stats=False normalises with each batch's statistics, "
                            "which one sample in C cannot do", e->index, spec->kind->name);
    int channels = layer->in_shape.dims[0];
    size_t positions = nn_shape_size(layer->in_shape) / (size_t)channels;
    const float *mean = state_data(layer, "running_mean", NULL), *var = state_data(layer, "running_var", NULL);
    const float *weight = state_data(layer, "weight", NULL), *bias = state_data(layer, "bias", NULL);
    double eps = arg_number(spec, "eps", 0, 1e-5);
    float *scale = malloc(2 * (size_t)channels * sizeof *scale);
    if (!scale) return nn_error_set(err, NN_ERR_RUNTIME, "out of memory");
    float *shift = scale + channels;
    for (int c = 0; c < channels; c++) {
        float inv_std = (float)(1.0 / sqrt((double)var[c] + eps));
        scale[c] = (weight ? weight[c] : 1.0f) * inv_std;
        shift[c] = (bias ? bias[c] : 0.0f) - mean[c] * scale[c];
    }
    emit_floats(e, "scale", scale, (size_t)channels);
    emit_floats(e, "shift", shift, (size_t)channels);
    free(scale);
    begin_function(e, spec->kind->name);
    fprintf(e->c, "    int c, p;\n    for (c = 0; c < %d; c++)\n        for (p = 0; p < %zu; p++)\n"
                  "            out[c * %zu + p] = in[c * %zu + p] * %s_l%d_scale[c] + %s_l%d_shift[c];\n}\n",
            channels, positions, positions, positions, e->prefix, e->index, e->prefix, e->index);
    return 0;
}

static int emit_softmax(emitter *e, const nn_layer_spec *spec, const nn_layer *layer, bool log, nn_error *err) {
    nn_shape s = layer->in_shape;
    const nn_arg_value *dim = arg(spec, "dim");
    int axis = 0;
    if (dim && dim->given && !dim->is_null) axis = (int)dim->value[0] < 0 ? (int)dim->value[0] + s.rank : (int)dim->value[0] - 1;
    if (axis < 0 || axis >= s.rank) return nn_error_set(err, NN_ERR_INPUT, "layer %d (%s): dim out of range", e->index, spec->kind->name);
    size_t outer = 1, inner = 1, length = (size_t)s.dims[axis];
    for (int i = 0; i < axis; i++) outer *= (size_t)s.dims[i];
    for (int i = axis + 1; i < s.rank; i++) inner *= (size_t)s.dims[i];
    begin_function(e, spec->kind->name);
    fprintf(e->c, "    int g, j, k;\n    for (g = 0; g < %zu; g++)\n        for (j = 0; j < %zu; j++) {\n"
                  "            const float *x = in + g * %zu + j;\n            float *y = out + g * %zu + j;\n"
                  "            float m = x[0], sum = 0;\n            for (k = 1; k < %zu; k++) m = fmaxf(m, x[k * %zu]);\n"
                  "            for (k = 0; k < %zu; k++) {\n                float v = expf(x[k * %zu] - m);\n"
                  "                y[k * %zu] = v;\n                sum += v;\n            }\n",
            outer, inner, length * inner, length * inner, length, inner, length, inner, inner);
    if (log)
        fprintf(e->c, "            sum = logf(sum);\n            for (k = 0; k < %zu; k++) y[k * %zu] = (x[k * %zu] - m) - sum;\n", length,
                inner, inner);
    else
        fprintf(e->c, "            sum = 1.0f / sum;\n            for (k = 0; k < %zu; k++) y[k * %zu] *= sum;\n", length, inner);
    fputs("        }\n}\n", e->c);
    return 0;
}

/* The elementwise kinds as an expression of x, NULL when kind is not one. */
static const char *elementwise(const nn_layer_spec *spec, char *buffer, size_t size) {
    const char *k = spec->kind->name;
    if (!strcmp(k, "ReLU")) return "x > 0 ? x : 0.0f";
    if (!strcmp(k, "Sigmoid")) return "1.0f / (1.0f + expf(-x))";
    if (!strcmp(k, "Tanh")) return "tanhf(x)";
    if (!strcmp(k, "SiLU")) return "x / (1.0f + expf(-x))";
    if (!strcmp(k, "Softsign")) return "x / (1.0f + fabsf(x))";
    if (!strcmp(k, "Mish")) return "x > 20.0f ? x : x * ((expf(x) * (expf(x) + 2.0f)) / (expf(x) * (expf(x) + 2.0f) + 2.0f))";
    if (!strcmp(k, "Hardsigmoid")) return "(x + 3.0f < 0.0f ? 0.0f : x + 3.0f > 6.0f ? 6.0f : x + 3.0f) / 6.0f";
    if (!strcmp(k, "Hardswish")) return "x * (x + 3.0f < 0.0f ? 0.0f : x + 3.0f > 6.0f ? 6.0f : x + 3.0f) / 6.0f";
    if (!strcmp(k, "ReLU6")) return "x < 0.0f ? 0.0f : x > 6.0f ? 6.0f : x";
    if (!strcmp(k, "LeakyReLU"))
        snprintf(buffer, size, "x > 0 ? x : x * %af", (double)(float)arg_number(spec, "negative_slope", 0, 0.01));
    else if (!strcmp(k, "GELU")) {
        const nn_arg_value *a = arg(spec, "approximate");
        bool tanh_form = a && a->choice == 2;
        snprintf(buffer, size, "%s", tanh_form ? "0.5f * x * (1.0f + tanhf(0.79788456080286535588f * (x + 0.044715f * x * x * x)))"
                                               : "0.5f * x * (1.0f + erff(x * 0.70710678118654752440f))");
    } else if (!strcmp(k, "ELU") || !strcmp(k, "CELU") || !strcmp(k, "SELU")) {
        float alpha = (float)arg_number(spec, "alpha", 0, 1), scale = 1, input_scale = 1;
        if (!strcmp(k, "CELU")) input_scale = (float)(1 / arg_number(spec, "alpha", 0, 1));
        if (!strcmp(k, "SELU")) {
            scale = 1.0507009873554804934193349852946f;
            alpha = 1.6732632423543772848170429916717f * scale;
        }
        snprintf(buffer, size, "x <= 0 ? %af * (expf(x * %af) - 1.0f) : x * %af", (double)alpha, (double)input_scale, (double)scale);
    } else if (!strcmp(k, "Softplus")) {
        float beta = (float)arg_number(spec, "beta", 0, 1), threshold = (float)arg_number(spec, "threshold", 0, 20);
        snprintf(buffer, size, "x * %af > %af ? x : log1pf(expf(x * %af)) / %af", (double)beta, (double)threshold, (double)beta,
                 (double)beta);
    } else if (!strcmp(k, "Hardtanh")) {
        const nn_arg_value *lo = arg(spec, "min_val"), *hi = arg(spec, "max_val");
        const nn_arg_value *lo2 = arg(spec, "min_value"), *hi2 = arg(spec, "max_value");
        if (lo2 && lo2->given && !lo2->is_null) lo = lo2;
        if (hi2 && hi2->given && !hi2->is_null) hi = hi2;
        snprintf(buffer, size, "x < %af ? %af : x > %af ? %af : x", (double)(float)lo->value[0], (double)(float)lo->value[0],
                 (double)(float)hi->value[0], (double)(float)hi->value[0]);
    } else if (!strcmp(k, "Threshold")) {
        snprintf(buffer, size, "x <= %af ? %af : x", (double)(float)arg_number(spec, "threshold", 0, 0),
                 (double)(float)arg_number(spec, "value", 0, 0));
    } else
        return NULL;
    return buffer;
}

static bool is_identity(const char *k) {
    return !strcmp(k, "Flatten") || !strcmp(k, "Unflatten") || !strcmp(k, "Identity") || !strncmp(k, "Dropout", 7) ||
           !strcmp(k, "AlphaDropout") || !strcmp(k, "FeatureAlphaDropout");
}

static bool quantisable(const char *k) {
    return !strcmp(k, "Linear") || !strcmp(k, "Conv2d") || !strcmp(k, "Conv1d");
}

static int emit_layer(emitter *e, const nn_layer_spec *spec, const nn_layer *layer, bool int8, float input_scale,
                      nn_error *err) {
    const char *k = spec->kind->name;
    char expression[320];
    const char *x = elementwise(spec, expression, sizeof expression);
    size_t size = nn_shape_size(layer->in_shape);
    if (x) {
        begin_function(e, k);
        fprintf(e->c, "    int i;\n    for (i = 0; i < %zu; i++) {\n        float x = in[i];\n        out[i] = %s;\n    }\n}\n",
                size, x);
        return 0;
    }
    if (!strcmp(k, "PReLU")) {
        size_t n = 0;
        const float *w = state_data(layer, "weight", &n);
        emit_floats(e, "weight", w, n);
        size_t inner = n == 1 ? size : size / n;
        begin_function(e, k);
        fprintf(e->c, "    int i;\n    for (i = 0; i < %zu; i++) {\n        float x = in[i];\n"
                      "        out[i] = x > 0 ? x : x * %s_l%d_weight[%s];\n    }\n}\n",
                size, e->prefix, e->index, n == 1 ? "0" : "i / INNER");
        (void)inner;
        return 0;
    }
    if (!strcmp(k, "Linear")) return emit_linear(e, layer, int8, input_scale);
    if (!strcmp(k, "Conv2d") || !strcmp(k, "Conv1d"))
        return emit_conv(e, spec, layer, !strcmp(k, "Conv1d"), int8, input_scale, err);
    if (!strcmp(k, "MaxPool2d") || !strcmp(k, "AvgPool2d") || !strcmp(k, "MaxPool1d") || !strcmp(k, "AvgPool1d")) {
        emit_pool(e, spec, layer, k[strlen(k) - 2] == '1', k[1] == 'a');
        return 0;
    }
    if (!strcmp(k, "AdaptiveAvgPool2d") || !strcmp(k, "AdaptiveMaxPool2d")) {
        emit_adaptive_pool(e, layer, k[8] == 'M');
        return 0;
    }
    if (!strcmp(k, "BatchNorm1d") || !strcmp(k, "BatchNorm2d")) return emit_batch_norm(e, spec, layer, err);
    if (!strcmp(k, "Softmax") || !strcmp(k, "LogSoftmax")) return emit_softmax(e, spec, layer, k[0] == 'L', err);
    return nn_error_set(err, NN_ERR_INPUT,
                        "layer %d (%s): C export does not support this layer yet (it writes Linear, Conv1d/2d, "
                        "Max/AvgPool1d/2d, AdaptiveAvg/MaxPool2d, BatchNorm1d/2d, the activations, PReLU, "
                        "Softmax, LogSoftmax and the identity layers)",
                        e->index, k);
}

/* Per quantised layer, max|input| over the calibration samples / 127. */
static int calibrate(const nn_model *model, const nn_c_export_options *options, float *scales, nn_error *err) {
    nn_replica *replica = nn_replica_create((nn_model *)model, NULL, err);
    if (!replica) return -1;
    const int batch = 100;
    if (nn_replica_reserve(replica, batch, err) != 0) {
        nn_replica_free(replica);
        return -1;
    }
    size_t in_size = nn_shape_size(model->input_shape);
    nn_mode mode = {0};
    for (int i = 0; i < model->layer_count; i++) scales[i] = 0;
    for (int first = 0; first < options->calibration_count; first += batch) {
        int n = options->calibration_count - first < batch ? options->calibration_count - first : batch;
        memcpy(nn_replica_input(replica), options->calibration + (size_t)first * in_size, (size_t)n * in_size * sizeof(float));
        nn_replica_forward(replica, n, &mode);
        for (int i = 0; i < model->layer_count; i++) {
            if (!quantisable(model->layers[i]->kind->name)) continue;
            const float *a = replica->activations[i];
            size_t count = (size_t)n * nn_shape_size(model->layers[i]->in_shape);
            for (size_t j = 0; j < count; j++) scales[i] = fmaxf(scales[i], fabsf(a[j]));
        }
    }
    for (int i = 0; i < model->layer_count; i++) scales[i] = scales[i] > 0 ? scales[i] / 127.0f : 1.0f;
    nn_replica_free(replica);
    return 0;
}

static void emit_values_macro(FILE *h, const char *prefix, const char *name, const float *values, size_t count) {
    fprintf(h, "#define %s_%s_COUNT %zu\n#define %s_%s_VALUES {", prefix, name, count, prefix, name);
    for (size_t i = 0; i < count; i++) fprintf(h, "%s%af", i ? (i % 6 ? ", " : ", \\\n    ") : "", (double)values[i]);
    fputs("}\n", h);
    if (count == 1) fprintf(h, "#define %s_%s %af\n", prefix, name, (double)values[0]);
}

/* The normalisation's values at their coarsest: one, per channel, or per value. */
static size_t distinct_count(const float *values, size_t size, nn_shape shape, size_t *stride) {
    bool same = true;
    for (size_t i = 1; i < size; i++) same = same && values[i] == values[0];
    *stride = size;
    if (same) return 1;
    if (shape.rank == 3) {
        size_t per = size / (size_t)shape.dims[0];
        bool channel = true;
        for (size_t i = 0; i < size; i++) channel = channel && values[i] == values[i / per * per];
        if (channel) {
            *stride = per;
            return (size_t)shape.dims[0];
        }
    }
    *stride = 1;
    return size;
}

static void emit_header(FILE *h, const nn_checkpoint *ck, const char *prefix, bool int8) {
    const nn_model *model = ck->model;
    nn_shape in = model->input_shape, out = nn_model_output_shape(model);
    fprintf(h, "/* %s: the model of %s (nnseq export%s), one sample at a time.\n"
               " * %s_predict reads %s_INPUT_SIZE floats as the first layer sees them\n"
               " * (pixels / 255, then (x - %s_MEAN) / %s_STD when %s_NORMALIZED) and writes\n"
               " * %s_OUTPUT_SIZE floats (the raw outputs, as nnseq predict --logits);\n"
               " * returns 0. It keeps its scratch space in static arrays (no allocation):\n"
               " * not reentrant, one call at a time. */\n",
            prefix, ck->config.name ? ck->config.name : "a checkpoint", int8 ? " --int8" : "", prefix, prefix, prefix, prefix, prefix, prefix);
    fprintf(h, "#ifndef %s_H\n#define %s_H\n\n", prefix, prefix);
    fprintf(h, "#define %s_INPUT_SIZE %zu\n#define %s_OUTPUT_SIZE %zu\n", prefix, nn_shape_size(in), prefix, nn_shape_size(out));
    fprintf(h, "#define %s_INPUT_RANK %d\n#define %s_INPUT_SHAPE {", prefix, in.rank, prefix);
    for (int i = 0; i < in.rank; i++) fprintf(h, "%s%d", i ? ", " : "", in.dims[i]);
    fputs("}\n", h);
    const nn_input_transform *t = &ck->transform;
    fprintf(h, "#define %s_NORMALIZED %d\n", prefix, t->normalize ? 1 : 0);
    if (t->normalize) {
        size_t stride, n = distinct_count(t->mean, t->size, in, &stride), stride2, n2 = distinct_count(t->std, t->size, in, &stride2);
        if (n2 > n) {
            n = n2;
            stride = stride2;
        }
        float *values = malloc(2 * n * sizeof *values);
        if (values) {
            for (size_t i = 0; i < n; i++) {
                values[i] = t->mean[i * stride];
                values[n + i] = t->std[i * stride];
            }
            fprintf(h, "/* %s_MEAN_VALUES and _STD_VALUES: %s */\n", prefix,
                    n == 1 ? "one value for every input" : n == t->size ? "one per input value" : "one per channel");
            emit_values_macro(h, prefix, "MEAN", values, n);
            emit_values_macro(h, prefix, "STD", values + n, n);
            free(values);
        }
    }
    fprintf(h, "\nint %s_predict(const float *input, float *output);\n\n#endif\n", prefix);
}

static bool is_identifier(const char *s, size_t n) {
    if (n == 0 || n > 60 || !(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z'))) return false;
    for (size_t i = 1; i < n; i++)
        if (!(s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')))
            return false;
    return true;
}

int nn_c_export(const nn_checkpoint *checkpoint, const char *path, const nn_c_export_options *options, nn_error *err) {
    const nn_model *model = checkpoint->model;
    bool int8 = options && options->int8;
    size_t length = strlen(path);
    if (length < 3 || strcmp(path + length - 2, ".c"))
        return nn_error_set(err, NN_ERR_INPUT, "%s: expected a file name ending in .c", path);
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    size_t base_length = strlen(base) - 2;
    if (!is_identifier(base, base_length))
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s: the base name '%.*s' is the prefix of the C names (%.*s_predict) and must be a C "
                            "identifier: a letter or _, then letters, digits or _, at most 60",
                            path, (int)base_length, base, (int)base_length, base);
    if (int8 && (!options->calibration || options->calibration_count < 1))
        return nn_error_set(err, NN_ERR_INPUT, "%s: --int8 needs calibration inputs", path);
    if (model->layer_count != checkpoint->config.model.layer_count)
        return nn_error_set(err, NN_ERR_RUNTIME, "%s: the model and its config disagree on the layers", path);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%.*s", (int)base_length, base);
    char *header_path = malloc(length + 1);
    float *scales = calloc((size_t)model->layer_count + 1, sizeof *scales);
    if (!header_path || !scales) {
        free(header_path);
        free(scales);
        return nn_error_set(err, NN_ERR_RUNTIME, "out of memory");
    }
    memcpy(header_path, path, length + 1);
    header_path[length - 1] = 'h';
    nn_atomic_file c = {0}, h = {0};
    int status = -1;
    if (int8 && calibrate(model, options, scales, err) != 0) goto done;
    if (nn_atomic_open(&c, path, err) != 0) goto done;
    if (nn_atomic_open(&h, header_path, err) != 0) {
        nn_atomic_abort(&c);
        goto done;
    }
    emitter e = {c.file, prefix, 0};
    fprintf(c.file, "/* %s.c: generated by nnseq export%s from %s. C99, needs only <math.h>\n"
                    " * (link with -lm). */\n#include <math.h>\n\n#include \"%s.h\"\n\n",
            prefix, int8 ? " --int8" : "", checkpoint->config.name ? checkpoint->config.name : "a checkpoint", prefix);
    size_t largest = 1;
    for (int i = 0; i < model->layer_count; i++) {
        size_t s = nn_shape_size(model->layers[i]->out_shape);
        if (s > largest) largest = s;
    }
    for (int i = 0; i < model->layer_count; i++) {
        const nn_layer *layer = model->layers[i];
        const nn_layer_spec *spec = &checkpoint->config.model.layers[i];
        if (spec->kind != layer->kind) {
            nn_error_set(err, NN_ERR_RUNTIME, "%s: layer %d's kind and config disagree", path, i);
            goto abort;
        }
        for (int s = 0; s < layer->state_count; s++) {
            const nn_array *a = &layer->state[s].array;
            if (a->dtype != NN_F32) continue;
            const float *v = a->data;
            for (size_t j = 0, n = nn_array_count(a); j < n; j++)
                if (!isfinite(v[j])) {
                    nn_error_set(err, NN_ERR_INPUT, "%s: %d.%s[%zu] is %g: C export needs finite weights", path, i,
                                 a->name, j, (double)v[j]);
                    goto abort;
                }
        }
        if (is_identity(spec->kind->name)) continue;
        e.index = i;
        fprintf(c.file, "#define BIAS %s_l%d_bias\n#define H %d\n#define W %d\n#define INNER %s_l%d_inner\n", prefix, i,
                layer->in_shape.rank == 3 ? layer->in_shape.dims[1] : 1,
                layer->in_shape.rank == 3 ? layer->in_shape.dims[2] : layer->in_shape.dims[layer->in_shape.rank - 1], prefix, i);
        if (!strcmp(spec->kind->name, "PReLU")) {
            size_t n = 0;
            state_data(layer, "weight", &n);
            if (n > 1) fprintf(c.file, "enum { %s_l%d_inner = %zu };\n", prefix, i, nn_shape_size(layer->in_shape) / n);
        }
        if (emit_layer(&e, spec, layer, int8 && quantisable(spec->kind->name), scales[i], err) != 0) {
            nn_error_prefix(err, "%s", path);
            goto abort;
        }
        fputs("#undef BIAS\n#undef H\n#undef W\n#undef INNER\n\n", c.file);
    }
    fprintf(c.file, "static float %s_scratch[2][%zu];\n\nint %s_predict(const float *input, float *output) {\n", prefix, largest,
            prefix);
    int last = -1, current = -1;   /* current: -1 the input, 0 or 1 a scratch buffer, 2 the output */
    for (int i = 0; i < model->layer_count; i++)
        if (!is_identity(model->layers[i]->kind->name)) last = i;
    for (int i = 0; i <= last; i++) {
        if (is_identity(model->layers[i]->kind->name)) continue;
        int next = i == last ? 2 : current == 0 ? 1 : 0;
        char from[64], to[64];
        if (current < 0) snprintf(from, sizeof from, "input");
        else snprintf(from, sizeof from, "%s_scratch[%d]", prefix, current);
        if (next == 2) snprintf(to, sizeof to, "output");
        else snprintf(to, sizeof to, "%s_scratch[%d]", prefix, next);
        fprintf(c.file, "    %s_l%d(%s, %s);\n", prefix, i, from, to);
        current = next;
    }
    if (last < 0)
        fprintf(c.file, "    int i;\n    for (i = 0; i < %zu; i++) output[i] = input[i];\n", nn_shape_size(model->input_shape));
    fputs("    return 0;\n}\n", c.file);
    emit_header(h.file, checkpoint, prefix, int8);
    if (ferror(c.file) || ferror(h.file)) {
        nn_error_set(err, NN_ERR_RUNTIME, "%s: write failed", path);
        goto abort;
    }
    if (nn_atomic_commit(&h, err) != 0) {
        nn_atomic_abort(&c);
        goto done;
    }
    status = nn_atomic_commit(&c, err);
    goto done;
abort:
    nn_atomic_abort(&c);
    nn_atomic_abort(&h);
done:
    free(scales);
    free(header_path);
    return status;
}
