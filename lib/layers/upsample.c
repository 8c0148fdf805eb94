/* Upsample(size=None, scale_factor=None, mode='nearest', align_corners=None,
 * recompute_scale_factor=None), as torch.nn (F.interpolate), and its two
 * fixed-mode forms UpsamplingNearest2d and UpsamplingBilinear2d
 * (align_corners=True).
 *
 * Samples (C, L) take the 1-d modes nearest, nearest-exact, linear and
 * area; samples (C, H, W) the 2-d ones nearest, nearest-exact, bilinear,
 * bicubic and area, as torch's 3-d and 4-d inputs do. Flat samples are
 * refused (torch has no 2-d interpolation input), and so is trilinear, which
 * needs (C, D, H, W) samples nnseq does not have.
 *
 * Exactly one of size and scale_factor. With scale_factor the output size is
 * floor(in * scale_factor) and, unless recompute_scale_factor is true (or the
 * mode is area), torch's kernels take 1/scale_factor as the step between
 * source positions rather than in/out; both are reproduced, with torch's
 * float arithmetic (nearest: floorf(dst * step), and for (1, H, W) samples
 * torch's shortcuts, a copy when out == in and dst / 2 when out == 2 in,
 * whatever the scale; nearest-exact: floorf((dst + 0.5) step); linear and
 * cubic: area_pixel_compute_source_index; area: adaptive average pooling's
 * [floor(j in/out), ceil((j+1) in/out))).
 *
 * Backward is the exact transpose of forward. torch 1.13's is not in one
 * corner: nearest with a scale_factor whose output size is in or 2 in (1.25
 * on 2, 2.2 on 3), on (C, L) or on (C, H, W) with C > 1, reads
 * floor(dst / scale_factor) forward but its backward always takes the
 * shortcuts; nnseq's outputs agree with torch there and its input gradients
 * follow the outputs (tests/layer_cases/shape.txt leaves that corner out).
 *
 * Every mode is separable: an axis maps each output index to a few taps
 * (input index, weight), built once in create. Forward interpolates along W
 * into a per-plane buffer, then along H (torch's bilinear order); backward
 * runs the transposed taps in reverse. The taps and the plane buffer, H_in
 * x W_out floats, are the replica's context. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/model.h"
#include "core/target_clones.h"
#include "layers/layers.h"

enum { ARG_SIZE, ARG_SCALE, ARG_MODE, ARG_ALIGN, ARG_RECOMPUTE };

enum { NEAREST, LINEAR, BILINEAR, BICUBIC, TRILINEAR, AREA, NEAREST_EXACT };
static const char *const upsample_modes[] = {"nearest", "linear", "bilinear", "bicubic",
                                             "trilinear", "area", "nearest-exact", NULL};

static const nn_arg_spec upsample_args[] = {
    {"size", NN_ARG_INT_LIST, NN_ARG_SCALAR | NN_ARG_NULLABLE | NN_ARG_OPTIONAL, {0, 0}, NULL},
    {"scale_factor", NN_ARG_FLOAT_PAIR, NN_ARG_SCALAR | NN_ARG_NULLABLE | NN_ARG_OPTIONAL, {0, 0}, NULL},
    {"mode", NN_ARG_CHOICE, 0, {NEAREST, 0}, upsample_modes},
    {"align_corners", NN_ARG_BOOL, NN_ARG_NULLABLE | NN_ARG_OPTIONAL, {0, 0}, NULL},
    {"recompute_scale_factor", NN_ARG_BOOL, NN_ARG_NULLABLE | NN_ARG_OPTIONAL, {0, 0}, NULL},
};

/* One axis: output j reads taps start[j] .. start[j+1]-1. */
typedef struct axis_taps {
    int in, out;
    int *start;
    int *index;
    float *weight;
} axis_taps;

/* How one axis maps: sizes, mode, the scale_factor its kernel sees (0: none). */
typedef struct axis_spec {
    int in, out, mode;
    double scale;
} axis_spec;

typedef struct upsample_layer {
    nn_layer base;
    int channels;
    axis_spec h, w;       /* h is the identity (1 -> 1) for (C, L) samples */
    bool align_corners, shortcuts;
    char repr[160];
} upsample_layer;

/* A replica's taps (built here rather than in create, so that a layer whose
 * output is never allocated, as in nnseq print, costs nothing) and the
 * plane between the two passes, h.in x w.out floats. */
typedef struct upsample_context {
    axis_taps h, w;
    float *plane;
} upsample_context;

static bool given(const nn_arg_value *value) { return value->given && !value->is_null; }

static float cubic1(float x, float a) { return ((a + 2) * x - (a + 3)) * x * x + 1; }
static float cubic2(float x, float a) { return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a; }

/* torch's compute_scales_value: 1/scale when the kernel was given a scale, else in/out. */
static float step_of(double scale, int in, int out) {
    return scale > 0 ? (float)(1.0 / scale) : (float)in / (float)out;
}

/* torch's area_pixel_compute_scale. */
static float pixel_scale(int in, int out, bool align_corners, double scale) {
    if (align_corners) return out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f;
    return step_of(scale, in, out);
}

/* Fills the taps of one axis; scale > 0 is the scale_factor the kernel
 * sees, 0 none; shortcuts: torch's nearest_idx, which copies when out == in
 * and halves when out == 2 in whatever the scale (its 2-d nearest kernel).
 * Returns -1 if out of memory. */
static int axis_build(axis_taps *axis, int in, int out, int mode, bool align_corners, double scale,
                      bool shortcuts) {
    axis->in = in;
    axis->out = out;
    size_t taps = mode == NEAREST || mode == NEAREST_EXACT ? (size_t)out
                  : mode == BICUBIC                         ? 4 * (size_t)out
                  : mode == AREA                            ? (size_t)in + (size_t)out
                                                            : 2 * (size_t)out;
    axis->start = malloc(((size_t)out + 1) * sizeof *axis->start);
    axis->index = malloc(taps * sizeof *axis->index);
    axis->weight = malloc(taps * sizeof *axis->weight);
    if (!axis->start || !axis->index || !axis->weight) return -1;
    int n = 0;
    for (int j = 0; j < out; j++) {
        axis->start[j] = n;
        if (mode == NEAREST || mode == NEAREST_EXACT) {
            float step = step_of(scale, in, out);
            long src = mode == NEAREST ? (long)floorf((float)j * step) : (long)floorf((float)((j + 0.5) * step));
            if (shortcuts && out == in) src = j;
            else if (shortcuts && out == 2 * in) src = j >> 1;
            axis->index[n] = (int)(src < in - 1 ? src : in - 1);
            axis->weight[n++] = 1.0f;
        } else if (mode == AREA) {
            long long first = (long long)j * in / out, last = ((long long)(j + 1) * in + out - 1) / out;
            for (long long i = first; i < last; i++) {
                axis->index[n] = (int)i;
                axis->weight[n++] = 1.0f / (float)(last - first);
            }
        } else {
            float sc = pixel_scale(in, out, align_corners, scale);
            float real = align_corners ? sc * (float)j : (float)(sc * (j + 0.5) - 0.5);
            if (mode == BICUBIC) {
                int x = (int)floorf(real);
                float t = real - (float)x, a = -0.75f;
                float c[4] = {cubic2(t + 1.0f, a), cubic1(t, a), cubic1(1.0f - t, a), cubic2(2.0f - t, a)};
                for (int k = 0; k < 4; k++) {
                    int i = x - 1 + k;
                    axis->index[n] = i < 0 ? 0 : i > in - 1 ? in - 1 : i;
                    axis->weight[n++] = c[k];
                }
            } else {
                if (real < 0) real = 0;
                int i0 = (int)real, i1 = i0 + (i0 < in - 1 ? 1 : 0);
                float l1 = fminf(fmaxf(real - (float)i0, 0.0f), 1.0f);
                axis->index[n] = i0;
                axis->weight[n++] = 1.0f - l1;
                axis->index[n] = i1;
                axis->weight[n++] = l1;
            }
        }
    }
    axis->start[out] = n;
    return 0;
}

static void axis_free(axis_taps *axis) {
    free(axis->start);
    free(axis->index);
    free(axis->weight);
}

static void upsample_destroy(nn_layer *base) { free(base); }

/* torch's str() of the size or scale_factor it keeps. */
static void format_setting(char *buffer, size_t size, const nn_arg_value *value, bool floats) {
    if (!value->is_list) {
        nn_format_python_float(buffer, size, value->value[0], !floats);
        return;
    }
    size_t used = (size_t)snprintf(buffer, size, "(");
    for (int i = 0; i < value->count && used < size; i++) {
        char number[40];
        nn_format_python_float(number, sizeof number, value->value[i], !floats);
        used += (size_t)snprintf(buffer + used, size - used, "%s%s", i ? ", " : "", number);
    }
    if (used < size) snprintf(buffer + used, size - used, value->count == 1 ? ",)" : ")");
}

static nn_layer *upsample_create_named(const nn_arg_value *args, nn_shape in_shape, const char *name,
                                       nn_error *err) {
    const nn_arg_value *size = &args[ARG_SIZE], *scale = &args[ARG_SCALE];
    int mode = (int)args[ARG_MODE].value[0];
    const char *mode_name = upsample_modes[mode];
    char shape[64];
    nn_shape_format(in_shape, shape, sizeof shape);
    int spatial = in_shape.rank - 1;
    if (mode == TRILINEAR) {
        nn_error_set(err, NN_ERR_INPUT, "%s mode 'trilinear' interpolates (C, D, H, W) samples, which nnseq "
                     "does not have (samples have at most 3 dims); use 'bilinear' on (C, H, W)", name);
        return NULL;
    }
    if (spatial < 1) {
        nn_error_set(err, NN_ERR_INPUT, "%s takes samples (C, L) or (C, H, W), not %s: torch interpolates "
                     "only inputs of 3 or more dims, batch and channels first", name, shape);
        return NULL;
    }
    bool one_d_mode = mode == LINEAR, two_d_mode = mode == BILINEAR || mode == BICUBIC;
    if ((one_d_mode && spatial != 1) || (two_d_mode && spatial != 2)) {
        nn_error_set(err, NN_ERR_INPUT, "%s mode '%s' needs samples %s, not %s (torch: mode '%s' needs %s input)",
                     name, mode_name, one_d_mode ? "(C, L)" : "(C, H, W)", shape, mode_name,
                     one_d_mode ? "3-d" : "4-d");
        return NULL;
    }
    bool interpolating = mode == LINEAR || mode == BILINEAR || mode == BICUBIC;
    if (!interpolating && given(&args[ARG_ALIGN])) {
        nn_error_set(err, NN_ERR_INPUT, "%s align_corners can only be set with the interpolating modes "
                     "linear, bilinear and bicubic, not mode '%s' (torch refuses it too)", name, mode_name);
        return NULL;
    }
    bool align_corners = given(&args[ARG_ALIGN]) && args[ARG_ALIGN].value[0] != 0;
    bool recompute = given(&args[ARG_RECOMPUTE]) && args[ARG_RECOMPUTE].value[0] != 0;
    if (given(size) == given(scale)) {
        nn_error_set(err, NN_ERR_INPUT, "%s takes exactly one of size and scale_factor, got %s", name,
                     given(size) ? "both" : "neither");
        return NULL;
    }
    if (given(size) && recompute) {
        nn_error_set(err, NN_ERR_INPUT, "%s recompute_scale_factor=True is not meaningful with an explicit size",
                     name);
        return NULL;
    }
    const nn_arg_value *setting = given(size) ? size : scale;
    int count = setting->is_list ? setting->count : spatial;
    if (count != spatial) {
        nn_error_set(err, NN_ERR_INPUT, "%s %s has %d numbers, but samples of shape %s have %d spatial dim%s "
                     "(after the channels)", name, given(size) ? "size" : "scale_factor", setting->count, shape,
                     spatial, spatial == 1 ? "" : "s");
        return NULL;
    }
    int out_dims[2];
    double scales[2] = {0, 0};
    long long total = in_shape.dims[0];
    for (int a = 0; a < spatial; a++) {
        int in = in_shape.dims[1 + a];
        double v = setting->value[setting->is_list ? a : 0];
        double out = given(size) ? v : floor((double)in * v);
        if (given(scale) && !(v > 0 && isfinite(v))) {
            nn_error_set(err, NN_ERR_INPUT, "%s scale_factor %g must be a positive number", name, v);
            return NULL;
        }
        if (!(out >= 1) || out > (double)NN_MAX_SAMPLE_VALUES) {
            if (given(size))
                nn_error_set(err, NN_ERR_INPUT, "%s size %.0f must be 1 to 2^28", name, v);
            else
                nn_error_set(err, NN_ERR_INPUT, "%s scale_factor %g gives an output size of %.15g along a dim "
                             "of %d: it must be 1 to 2^28", name, v, out, in);
            return NULL;
        }
        out_dims[a] = (int)out;
        total *= (long long)out;
        if (total > (long long)NN_MAX_SAMPLE_VALUES) {
            nn_error_set(err, NN_ERR_INPUT, "%s output for samples of shape %s would have more than the 2^28 values "
                         "a sample may have", name, shape);
            return NULL;
        }
        if (given(scale) && !recompute && mode != AREA) scales[a] = v;
    }
    int in_h = spatial == 2 ? in_shape.dims[1] : 1, in_w = in_shape.dims[spatial];
    int out_h = spatial == 2 ? out_dims[0] : 1, out_w = out_dims[spatial - 1];
    if ((long long)in_h * out_w > (long long)NN_MAX_SAMPLE_VALUES) {
        nn_error_set(err, NN_ERR_INPUT, "%s from %s to width %d would need a plane of %lld values, more than 2^28",
                     name, shape, out_w, (long long)in_h * out_w);
        return NULL;
    }
    upsample_layer *layer = calloc(1, sizeof *layer);
    if (!layer) {
        nn_error_oom(err, "an Upsample layer");
        return NULL;
    }
    layer->base.in_shape = in_shape;
    layer->base.out_shape = in_shape;
    for (int a = 0; a < spatial; a++) layer->base.out_shape.dims[1 + a] = out_dims[a];
    layer->channels = in_shape.dims[0];
    layer->h = (axis_spec){in_h, out_h, spatial == 2 ? mode : NEAREST, spatial == 2 ? scales[0] : 0};
    layer->w = (axis_spec){in_w, out_w, mode, scales[spatial - 1]};
    layer->align_corners = align_corners;
    /* torch runs a one-channel image through its channels-last kernel, the only one that takes nearest_idx's
     * shortcuts forward (a (N, 1, H, W) tensor is channels-last contiguous too). */
    layer->shortcuts = mode == NEAREST && spatial == 2 && in_shape.dims[0] == 1;
    char text[96];
    format_setting(text, sizeof text, setting, given(scale));
    snprintf(layer->repr, sizeof layer->repr, "%s(%s=%s, mode=%s)", name, given(size) ? "size" : "scale_factor",
             text, mode_name);
    return &layer->base;
}

static nn_layer *upsample_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    return upsample_create_named(args, in_shape, "Upsample", err);
}

/* The fixed-mode forms take size and scale_factor only (their first two
 * arguments, the same table). */
static nn_layer *fixed_create(const nn_arg_value *args, nn_shape in_shape, const char *name, int mode,
                              nn_error *err) {
    nn_arg_value full[NN_MAX_ARGS];
    nn_arg_defaults(full, upsample_args, sizeof upsample_args / sizeof upsample_args[0]);
    full[ARG_SIZE] = args[ARG_SIZE];
    full[ARG_SCALE] = args[ARG_SCALE];
    full[ARG_MODE].value[0] = mode;
    full[ARG_MODE].choice = mode + 1;
    if (mode == BILINEAR) {
        full[ARG_ALIGN].given = true;
        full[ARG_ALIGN].value[0] = 1;
    }
    return upsample_create_named(full, in_shape, name, err);
}

static nn_layer *nearest2d_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    return fixed_create(args, in_shape, "UpsamplingNearest2d", NEAREST, err);
}

static nn_layer *bilinear2d_create(const nn_arg_value *args, nn_shape in_shape, nn_error *err) {
    return fixed_create(args, in_shape, "UpsamplingBilinear2d", BILINEAR, err);
}

static void upsample_context_free(void *context) {
    upsample_context *cache = context;
    if (!cache) return;
    axis_free(&cache->h);
    axis_free(&cache->w);
    free(cache->plane);
    free(cache);
}

static void *upsample_context_create(const nn_layer *base, int max_batch, nn_error *err) {
    (void)max_batch;
    const upsample_layer *layer = (const upsample_layer *)base;
    const axis_spec *h = &layer->h, *w = &layer->w;
    upsample_context *cache = calloc(1, sizeof *cache);
    if (!cache || !(cache->plane = malloc((size_t)h->in * (size_t)w->out * sizeof *cache->plane)) ||
        axis_build(&cache->h, h->in, h->out, h->mode, layer->align_corners, h->scale, layer->shortcuts) != 0 ||
        axis_build(&cache->w, w->in, w->out, w->mode, layer->align_corners, w->scale, layer->shortcuts) != 0) {
        upsample_context_free(cache);
        nn_error_oom(err, "an Upsample layer's taps and plane buffer");
        return NULL;
    }
    return cache;
}

/* y += w x over n values. */
NN_VECTOR_CLONES
static void add_scaled(float *y, const float *x, float w, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += w * x[i];
}

static void upsample_forward(nn_layer *base, void *context, float *out, const float *in, int batch,
                             const nn_mode *mode) {
    (void)mode;
    const upsample_layer *layer = (const upsample_layer *)base;
    upsample_context *cache = context;
    const axis_taps *h = &cache->h, *w = &cache->w;
    float *plane = cache->plane;
    size_t planes = (size_t)batch * layer->channels;
    for (size_t p = 0; p < planes; p++) {
        const float *x = in + p * h->in * w->in;
        float *y = out + p * h->out * w->out;
        for (int r = 0; r < h->in; r++) {
            const float *row = x + (size_t)r * w->in;
            float *target = plane + (size_t)r * w->out;
            for (int j = 0; j < w->out; j++) {
                float sum = 0;
                for (int t = w->start[j]; t < w->start[j + 1]; t++) sum += w->weight[t] * row[w->index[t]];
                target[j] = sum;
            }
        }
        for (int i = 0; i < h->out; i++) {
            float *target = y + (size_t)i * w->out;
            memset(target, 0, (size_t)w->out * sizeof *target);
            for (int t = h->start[i]; t < h->start[i + 1]; t++)
                add_scaled(target, plane + (size_t)h->index[t] * w->out, h->weight[t], (size_t)w->out);
        }
    }
}

static void upsample_backward(const nn_layer *base, void *context, float *din, const float *dout, const float *in,
                              const float *out, int batch, float *grad, const nn_mode *mode) {
    (void)in;
    (void)out;
    (void)grad;
    (void)mode;
    if (!din) return;
    const upsample_layer *layer = (const upsample_layer *)base;
    upsample_context *cache = context;
    const axis_taps *h = &cache->h, *w = &cache->w;
    float *plane = cache->plane;
    size_t planes = (size_t)batch * layer->channels;
    for (size_t p = 0; p < planes; p++) {
        const float *dy = dout + p * h->out * w->out;
        float *dx = din + p * h->in * w->in;
        memset(plane, 0, (size_t)h->in * w->out * sizeof *plane);
        for (int i = 0; i < h->out; i++)
            for (int t = h->start[i]; t < h->start[i + 1]; t++)
                add_scaled(plane + (size_t)h->index[t] * w->out, dy + (size_t)i * w->out, h->weight[t],
                           (size_t)w->out);
        memset(dx, 0, (size_t)h->in * w->in * sizeof *dx);
        for (int r = 0; r < h->in; r++) {
            const float *row = plane + (size_t)r * w->out;
            float *target = dx + (size_t)r * w->in;
            for (int j = 0; j < w->out; j++)
                for (int t = w->start[j]; t < w->start[j + 1]; t++) target[w->index[t]] += w->weight[t] * row[j];
        }
    }
}

static int upsample_describe(const nn_layer *base, char *buffer, size_t size) {
    return snprintf(buffer, size, "%s", ((const upsample_layer *)base)->repr);
}

#define UPSAMPLE_KIND(NAME, CREATE, ARGS)                                                              \
    {                                                                                                  \
        .name = NAME, .args = upsample_args, .arg_count = ARGS, .create = CREATE,                      \
        .context_create = upsample_context_create, .context_free = upsample_context_free,              \
        .forward = upsample_forward, .backward = upsample_backward, .describe = upsample_describe,     \
        .destroy = upsample_destroy,                                                                   \
    }

const nn_layer_kind nn_upsample_kind =
    UPSAMPLE_KIND("Upsample", upsample_create, sizeof upsample_args / sizeof upsample_args[0]);
const nn_layer_kind nn_upsampling_nearest2d_kind = UPSAMPLE_KIND("UpsamplingNearest2d", nearest2d_create, 2);
const nn_layer_kind nn_upsampling_bilinear2d_kind = UPSAMPLE_KIND("UpsamplingBilinear2d", bilinear2d_create, 2);
