#include "data/dataset.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/rng.h"
#include "core/target_clones.h"

/* The permutation stream of data.shuffle_split: its own constant, so that
 * it is independent of the training shuffle (seed ^ 0x9e37...). */
#define SPLIT_SEED_MIX 0x5851f42d4c957f2dULL

void nn_dataset_free(nn_dataset *set) {
    if (!set) return;
    free(set->bytes);
    free(set->floats);
    free(set->raw_targets);
    free(set->labels);
    free(set->values);
    free(set->input_origin.path);
    free(set->target_origin.path);
    memset(set, 0, sizeof *set);
}

const char *nn_dataset_where(const nn_dataset *set, bool target, int64_t index, char *buffer, size_t size) {
    const nn_data_origin *o = target ? &set->target_origin : &set->input_origin;
    int64_t row = o->first_row + index;
    if (o->first_line > 0)
        snprintf(buffer, size, "%s:%" PRId64, o->path ? o->path : "?", o->first_line + row);
    else
        snprintf(buffer, size, "%s: item %" PRId64, o->path ? o->path : "?", row);
    return buffer;
}

static int set_origin(nn_data_origin *origin, const char *path, int64_t first_line, nn_error *err) {
    free(origin->path);
    origin->path = strdup(path ? path : "?");
    origin->first_line = first_line;
    origin->first_row = 0;
    return origin->path ? 0 : nn_error_oom(err, "a file name");
}

/* Value i of an array of any dtype, as a double. */
static double value_at(const nn_array *a, size_t i) {
    const void *d = a->data;
    switch (a->dtype) {
    case NN_F32: return ((const float *)d)[i];
    case NN_F64: return ((const double *)d)[i];
    case NN_U8: return ((const uint8_t *)d)[i];
    case NN_BOOL: return ((const uint8_t *)d)[i] != 0;
    case NN_I8: return ((const int8_t *)d)[i];
    case NN_I16: return ((const int16_t *)d)[i];
    case NN_U16: return ((const uint16_t *)d)[i];
    case NN_I32: return ((const int32_t *)d)[i];
    case NN_U32: return ((const uint32_t *)d)[i];
    case NN_I64: return (double)((const int64_t *)d)[i];
    case NN_U64: return (double)((const uint64_t *)d)[i];
    }
    return 0;
}

static bool dtype_is_integer(nn_dtype dtype) { return dtype != NN_F32 && dtype != NN_F64; }

static void release(nn_array *array) {
    free(array->data);
    array->data = NULL;
}

int nn_dataset_set_inputs(nn_dataset *set, nn_array *array, const char *path, int64_t first_line, nn_error *err) {
    if (array->rank < 1 || array->dims[0] < 1) {
        release(array);
        return nn_error_set(err, NN_ERR_INPUT, "%s: holds no samples", path);
    }
    /* The sample shape: dims[1..] (the readers fold more than NN_MAX_RANK
     * dims into the last), (H, W) read as one channel. */
    int64_t dims[3] = {1, 1, 1};
    int rank = array->rank - 1;
    if (rank == 0) {
        rank = 1;
    } else if (rank == 2) {
        dims[1] = array->dims[1];
        dims[2] = array->dims[2];
        rank = 3;
    } else {
        for (int i = 0; i < rank && i < 3; i++) dims[i] = array->dims[i + 1];
    }
    double size = 1;
    for (int i = 0; i < rank; i++) size *= (double)dims[i];
    if (size > INT_MAX || size * (double)array->dims[0] > (double)SIZE_MAX / 4) {
        release(array);
        return nn_error_set(err, NN_ERR_INPUT, "%s: %.0f values per sample (expected at most %d)", path, size,
                            INT_MAX);
    }
    free(set->bytes);
    free(set->floats);
    set->bytes = NULL;
    set->floats = NULL;
    set->count = array->dims[0];
    set->shape.rank = rank;
    for (int i = 0; i < 3; i++) set->shape.dims[i] = i < rank ? (int)dims[i] : 0;
    set->input_size = (size_t)size;
    if (set_origin(&set->input_origin, path, first_line, err) != 0) {
        release(array);
        return -1;
    }
    size_t total = (size_t)set->count * set->input_size;
    if (array->dtype == NN_U8) {
        set->inputs_are_bytes = true;
        set->bytes = array->data;
        array->data = NULL;
        return 0;
    }
    float *floats = malloc(total * sizeof *floats);
    if (!floats) {
        release(array);
        return nn_error_oom(err, "the inputs");
    }
    bool integer = dtype_is_integer(array->dtype);
    for (size_t i = 0; i < total; i++) {
        double v = value_at(array, i);
        float f = (float)v;
        if (!integer && !isfinite(f)) {
            char where[4200];
            nn_dataset_where(set, false, (int64_t)(i / set->input_size), where, sizeof where);
            free(floats);
            release(array);
            if (isfinite(v))
                return nn_error_set(err, NN_ERR_INPUT, "%s: value %zu of the sample is %.9g, too large for float32",
                                    where, i % set->input_size + 1, v);
            return nn_error_set(err, NN_ERR_INPUT, "%s: value %zu of the sample is %s (expected finite numbers)",
                                where, i % set->input_size + 1, isnan(v) ? "NaN" : v > 0 ? "Inf" : "-Inf");
        }
        floats[i] = f;
    }
    release(array);
    set->inputs_are_bytes = false;
    set->floats = floats;
    return 0;
}

int nn_dataset_set_targets(nn_dataset *set, nn_array *array, const char *path, int64_t first_line, nn_error *err) {
    if (array->rank < 1 || array->dims[0] != set->count) {
        int64_t got = array->rank < 1 ? 0 : array->dims[0];
        release(array);
        return nn_error_set(err, NN_ERR_INPUT, "%s has %" PRId64 " samples but %s has %" PRId64 " targets",
                            set->input_origin.path ? set->input_origin.path : "the inputs", set->count, path, got);
    }
    double width = 1;
    for (int i = 1; i < array->rank; i++) width *= (double)array->dims[i];
    if (width < 1 || width > INT_MAX || width * (double)set->count > (double)SIZE_MAX / 8) {
        release(array);
        return nn_error_set(err, NN_ERR_INPUT, "%s: %.0f targets per sample (expected 1 to %d)", path, width, INT_MAX);
    }
    if (set_origin(&set->target_origin, path, first_line, err) != 0) {
        release(array);
        return -1;
    }
    size_t total = (size_t)set->count * (size_t)width;
    double *targets = malloc(total * sizeof *targets);
    if (!targets) {
        release(array);
        return nn_error_oom(err, "the targets");
    }
    for (size_t i = 0; i < total; i++) {
        targets[i] = value_at(array, i);
        if (!isfinite(targets[i])) {
            char where[4200];
            nn_dataset_where(set, true, (int64_t)(i / (size_t)width), where, sizeof where);
            double v = targets[i];
            free(targets);
            release(array);
            return nn_error_set(err, NN_ERR_INPUT, "%s: target %zu is %s (expected finite numbers)", where,
                                i % (size_t)width + 1, isnan(v) ? "NaN" : v > 0 ? "Inf" : "-Inf");
        }
    }
    set->targets_integer = dtype_is_integer(array->dtype);
    release(array);
    free(set->raw_targets);
    set->raw_targets = targets;
    set->target_width = (int)width;
    return 0;
}

static int check_label(const nn_dataset *set, const nn_loss *loss, int64_t i, double v, int outputs,
                       const char *split, nn_error *err) {
    char where[4200];
    if (v == floor(v) && v >= 0 && v < outputs) return 0;
    if (loss && v == floor(v) && v >= INT32_MIN && v <= INT32_MAX && nn_loss_ignores_label(loss, (int32_t)v)) return 0;
    nn_dataset_where(set, true, i, where, sizeof where);
    if (v != floor(v) || v < 0)
        return nn_error_set(err, NN_ERR_INPUT, "%s: %s target %.9g is not a class index (expected an integer 0 to %d)",
                            where, split, v, outputs - 1);
    return nn_error_set(err, NN_ERR_INPUT, "%s: %s label %.0f is beyond the model's %d outputs (expected 0 to %d)",
                        where, split, v, outputs, outputs - 1);
}

static int bind_targets(nn_dataset *set, const nn_loss *loss, int outputs, bool target_is_input, const char *split,
                        nn_error *err);

/* On failure nothing half-bound is left: no labels or values, the raw
 * targets as they were. */
int nn_dataset_bind(nn_dataset *set, const nn_loss *loss, int outputs, bool target_is_input, const char *split,
                    nn_error *err) {
    if (bind_targets(set, loss, outputs, target_is_input, split, err) == 0) return 0;
    free(set->labels);
    free(set->values);
    set->labels = NULL;
    set->values = NULL;
    set->value_width = 0;
    set->target_is_input = false;
    return -1;
}

static int bind_targets(nn_dataset *set, const nn_loss *loss, int outputs, bool target_is_input, const char *split,
                        nn_error *err) {
    nn_loss_target target = loss->kind->target;
    const double *value_range = loss->kind->target_range;
    free(set->labels);
    free(set->values);
    set->labels = NULL;
    set->values = NULL;
    set->target_is_input = target_is_input;
    const char *input_path = set->input_origin.path;
    if (target_is_input) {
        if (target == NN_LOSS_CLASSES)
            return nn_error_set(err, NN_ERR_INPUT,
                                "data.target is input, which needs a loss on values (bce, mse, l1, ...), not class "
                                "indices");
        if (set->input_size != (size_t)outputs)
            return nn_error_set(err, NN_ERR_INPUT,
                                "%s: data.target is input, so the model's %d outputs must be the %zu input values "
                                "of a sample",
                                input_path, outputs, set->input_size);
        if (value_range && !set->inputs_are_bytes) {
            size_t total = (size_t)set->count * set->input_size;
            for (size_t i = 0; i < total; i++)
                if (set->floats[i] < value_range[0] || set->floats[i] > value_range[1]) {
                    char where[4200];
                    nn_dataset_where(set, false, (int64_t)(i / set->input_size), where, sizeof where);
                    return nn_error_set(err, NN_ERR_INPUT,
                                        "%s: %s input value %zu is %.9g, outside [%g, %g], which the loss needs of "
                                        "its targets (data.target is input)",
                                        where, split, i % set->input_size + 1, set->floats[i], value_range[0],
                                        value_range[1]);
                }
        }
        set->value_width = outputs;
        free(set->raw_targets);
        set->raw_targets = NULL;
        return 0;
    }
    if (!set->raw_targets)
        return nn_error_set(err, NN_ERR_INPUT, "%s: the %s split has no targets", input_path, split);
    int width = set->target_width;
    if (target == NN_LOSS_CLASSES) {
        if (width != 1)
            return nn_error_set(err, NN_ERR_INPUT,
                                "%s: %d targets per sample, but the loss takes one class index per sample",
                                set->target_origin.path, width);
        set->labels = malloc((size_t)set->count * sizeof *set->labels);
        if (!set->labels) return nn_error_oom(err, "the labels");
        for (int64_t i = 0; i < set->count; i++) {
            if (check_label(set, loss, i, set->raw_targets[i], outputs, split, err) != 0) return -1;
            set->labels[i] = (int32_t)set->raw_targets[i];
        }
    } else {
        bool one_hot = width == 1 && outputs > 1;
        if (!one_hot && width != outputs)
            return nn_error_set(err, NN_ERR_INPUT,
                                "%s: %d targets per sample, but the model has %d outputs (expected one target per "
                                "output, or one class index)",
                                set->target_origin.path, width, outputs);
        set->values = malloc((size_t)set->count * (size_t)outputs * sizeof *set->values);
        if (!set->values) return nn_error_oom(err, "the targets");
        for (int64_t i = 0; i < set->count; i++) {
            float *row = set->values + (size_t)i * outputs;
            if (one_hot) {
                double v = set->raw_targets[i];
                if (check_label(set, NULL, i, v, outputs, split, err) != 0) return -1;
                for (int j = 0; j < outputs; j++) row[j] = j == (int)v ? 1.0f : 0.0f;
                continue;
            }
            for (int j = 0; j < outputs; j++) {
                double v = set->raw_targets[(size_t)i * outputs + j];
                if (value_range && (v < value_range[0] || v > value_range[1])) {
                    char where[4200];
                    nn_dataset_where(set, true, i, where, sizeof where);
                    char which[32] = "";
                    if (outputs > 1) snprintf(which, sizeof which, " %d of %d", j + 1, outputs);
                    return nn_error_set(err, NN_ERR_INPUT, "%s: %s target%s is %.9g, outside [%g, %g], which loss %s "
                                        "takes", where, split, which, v, value_range[0], value_range[1],
                                        loss->kind->name);
                }
                row[j] = (float)v;
                if (!isfinite(row[j])) {
                    char where[4200];
                    nn_dataset_where(set, true, i, where, sizeof where);
                    return nn_error_set(err, NN_ERR_INPUT, "%s: %s target %d is %.9g, too large for float32", where,
                                        split, j + 1, v);
                }
            }
        }
        set->value_width = outputs;
    }
    free(set->raw_targets);
    set->raw_targets = NULL;
    return 0;
}

/* Copies rows [first, first + count) of a count x width table of size-byte
 * elements into a new allocation; NULL table gives NULL. */
static int copy_rows(void **out, const void *table, size_t width, size_t size, int64_t first, int64_t count) {
    *out = NULL;
    if (!table) return 0;
    size_t bytes = (size_t)count * width * size;
    *out = malloc(bytes ? bytes : 1);
    if (!*out) return -1;
    memcpy(*out, (const char *)table + (size_t)first * width * size, bytes);
    return 0;
}

int nn_dataset_split_tail(nn_dataset *set, int64_t count, nn_dataset *out, nn_error *err) {
    memset(out, 0, sizeof *out);
    if (count < 0 || count > set->count) return nn_error_set(err, NN_ERR_RUNTIME, "split of %" PRId64 " samples", count);
    int64_t first = set->count - count;
    *out = *set;
    out->bytes = NULL;
    out->floats = NULL;
    out->raw_targets = NULL;
    out->labels = NULL;
    out->values = NULL;
    out->input_origin.path = strdup(set->input_origin.path ? set->input_origin.path : "?");
    out->target_origin.path = set->target_origin.path ? strdup(set->target_origin.path) : NULL;
    out->input_origin.first_row += first;
    out->target_origin.first_row += first;
    out->count = count;
    void *bytes, *floats, *raw, *labels, *values;
    int failed = !out->input_origin.path || (set->target_origin.path && !out->target_origin.path);
    failed |= copy_rows(&bytes, set->bytes, set->input_size, 1, first, count);
    out->bytes = bytes;
    failed |= copy_rows(&floats, set->floats, set->input_size, sizeof(float), first, count);
    out->floats = floats;
    failed |= copy_rows(&raw, set->raw_targets, (size_t)set->target_width, sizeof(double), first, count);
    out->raw_targets = raw;
    failed |= copy_rows(&labels, set->labels, 1, sizeof(int32_t), first, count);
    out->labels = labels;
    failed |= copy_rows(&values, set->values, (size_t)set->value_width, sizeof(float), first, count);
    out->values = values;
    if (failed) {
        nn_dataset_free(out);
        return nn_error_oom(err, "a split of the data");
    }
    /* The tail stays allocated in set (realloc could move it for nothing);
     * only the count shrinks. */
    set->count = first;
    return 0;
}

/* Reorders a count x width table of size-byte rows by order (row k of the
 * result is row order[k]), through copy (room for the largest table). */
static void permute_rows(void *table, size_t width, size_t size, const uint32_t *order, int64_t count, char *copy) {
    if (!table) return;
    size_t row = width * size;
    for (int64_t k = 0; k < count; k++) memcpy(copy + (size_t)k * row, (const char *)table + (size_t)order[k] * row, row);
    memcpy(table, copy, (size_t)count * row);
}

int nn_dataset_permute(nn_dataset *set, uint64_t seed, nn_error *err) {
    if (set->count < 2) return 0;   /* nothing to reorder (and no malloc(0)) */
    if (set->count > UINT32_MAX) return nn_error_set(err, NN_ERR_INPUT, "%s: too many samples to shuffle", set->input_origin.path);
    uint32_t *order = malloc((size_t)set->count * sizeof *order);
    if (!order) return nn_error_oom(err, "the split order");
    for (int64_t i = 0; i < set->count; i++) order[i] = (uint32_t)i;
    nn_rng rng;
    nn_rng_seed(&rng, seed ^ SPLIT_SEED_MIX);
    for (int64_t i = set->count - 1; i > 0; i--) {
        uint32_t j = nn_rng_below(&rng, (uint32_t)i + 1);
        uint32_t swap = order[i];
        order[i] = order[j];
        order[j] = swap;
    }
    /* One scratch table for all, allocated first: out of memory leaves
     * every table in its old order, never some moved and some not. */
    size_t rows[] = {set->bytes ? set->input_size : 0, set->floats ? set->input_size * sizeof(float) : 0,
                     set->raw_targets ? (size_t)set->target_width * sizeof(double) : 0,
                     set->labels ? sizeof(int32_t) : 0, set->values ? (size_t)set->value_width * sizeof(float) : 0};
    size_t largest = 1;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) largest = rows[i] > largest ? rows[i] : largest;
    char *copy = malloc((size_t)set->count * largest);
    if (!copy) {
        free(order);
        return nn_error_oom(err, "shuffling the data");
    }
    permute_rows(set->bytes, set->input_size, 1, order, set->count, copy);
    permute_rows(set->floats, set->input_size, sizeof(float), order, set->count, copy);
    permute_rows(set->raw_targets, (size_t)set->target_width, sizeof(double), order, set->count, copy);
    permute_rows(set->labels, 1, sizeof(int32_t), order, set->count, copy);
    permute_rows(set->values, (size_t)set->value_width, sizeof(float), order, set->count, copy);
    free(copy);
    free(order);
    return 0;
}

void nn_input_transform_free(nn_input_transform *transform) {
    free(transform->mean);
    free(transform->std);
    memset(transform, 0, sizeof *transform);
}

static int transform_alloc(nn_input_transform *t, size_t size, nn_error *err) {
    nn_input_transform_free(t);
    t->mean = malloc(size * sizeof *t->mean);
    t->std = malloc(size * sizeof *t->std);
    if (!t->mean || !t->std) {
        nn_input_transform_free(t);
        return nn_error_oom(err, "the normalisation");
    }
    t->size = size;
    t->normalize = true;
    return 0;
}

int nn_input_transform_from_lists(nn_input_transform *t, nn_shape shape, const double *mean, const double *std,
                                  int count, nn_error *err) {
    size_t size = nn_shape_size(shape);
    size_t per = 0;   /* values that share one entry */
    if (count == 1) per = size;
    else if (shape.rank == 3 && count == shape.dims[0]) per = size / (size_t)shape.dims[0];
    else if ((size_t)count == size) per = 1;
    if (!per) {
        char text[64];
        nn_shape_format(shape, text, sizeof text);
        char channels[48] = "";
        if (shape.rank == 3) snprintf(channels, sizeof channels, ", %d (one per channel)", shape.dims[0]);
        return nn_error_set(err, NN_ERR_INPUT,
                            "data.normalize has %d values, but inputs of shape %s take 1%s or %zu (one per value)",
                            count, text, channels, size);
    }
    if (transform_alloc(t, size, err) != 0) return -1;
    for (size_t i = 0; i < size; i++) {
        t->mean[i] = (float)mean[i / per];
        t->std[i] = (float)std[i / per];
    }
    return 0;
}

static float sample_value(const nn_dataset *set, size_t index) {
    return set->inputs_are_bytes ? (float)set->bytes[index] / 255.0f : set->floats[index];
}

int nn_input_transform_fit(nn_input_transform *t, const nn_dataset *set, int64_t first, int64_t count, nn_error *err) {
    if (count < 1) return nn_error_set(err, NN_ERR_INPUT, "normalize: auto needs training samples");
    size_t size = set->input_size;
    /* Per channel for images (rank 3), per value otherwise. */
    size_t groups = set->shape.rank == 3 ? (size_t)set->shape.dims[0] : size, per = size / groups;
    double *sum = calloc(groups, sizeof *sum), *squares = calloc(groups, sizeof *squares);
    if (!sum || !squares || transform_alloc(t, size, err) != 0) {
        free(sum);
        free(squares);
        return err->status ? -1 : nn_error_oom(err, "the normalisation");
    }
    /* Two passes in double: the mean, then the squared deviations from it
     * (no cancellation, unlike sum of squares minus square of sums). */
    for (int64_t s = first; s < first + count; s++)
        for (size_t j = 0; j < size; j++) sum[j / per] += sample_value(set, (size_t)s * size + j);
    double n = (double)count * (double)per;
    for (size_t g = 0; g < groups; g++) sum[g] /= n;
    for (int64_t s = first; s < first + count; s++)
        for (size_t j = 0; j < size; j++) {
            double d = sample_value(set, (size_t)s * size + j) - sum[j / per];
            squares[j / per] += d * d;
        }
    for (size_t j = 0; j < size; j++) {
        double sd = sqrt(squares[j / per] / n);
        t->mean[j] = (float)sum[j / per];
        t->std[j] = sd > 0 && (float)sd > 0 ? (float)sd : 1.0f;
    }
    free(sum);
    free(squares);
    return 0;
}

/* Arithmetic rather than a 256-entry table: the conversion vectorises, a
 * table lookup per value does not; the divisions keep it bit-identical to
 * torch_ref.py's float32 numpy. */
NN_VECTOR_CLONES void nn_dataset_gather_inputs(const nn_dataset *set, const nn_input_transform *t,
                                               const uint32_t *order, int64_t first, int count, float *input) {
    size_t size = set->input_size;
    bool normalize = t && t->normalize;
    const float *restrict mean = normalize ? t->mean : NULL, *restrict std = normalize ? t->std : NULL;
    for (int b = 0; b < count; b++) {
        size_t index = order ? order[first + b] : (size_t)(first + b);
        float *restrict dst = input + (size_t)b * size;
        if (set->inputs_are_bytes) {
            const uint8_t *restrict src = set->bytes + index * size;
            if (normalize)
                for (size_t j = 0; j < size; j++) dst[j] = ((float)src[j] / 255.0f - mean[j]) / std[j];
            else
                for (size_t j = 0; j < size; j++) dst[j] = (float)src[j] / 255.0f;
        } else {
            const float *restrict src = set->floats + index * size;
            if (normalize)
                for (size_t j = 0; j < size; j++) dst[j] = (src[j] - mean[j]) / std[j];
            else
                memcpy(dst, src, size * sizeof *dst);
        }
    }
}

nn_targets nn_dataset_gather_targets(const nn_dataset *set, const uint32_t *order, int64_t first, int count,
                                     int32_t *labels, float *values) {
    nn_targets targets = {NULL, NULL};
    if (set->target_is_input) {
        nn_dataset_gather_inputs(set, NULL, order, first, count, values);
        targets.values = values;
        return targets;
    }
    for (int b = 0; b < count; b++) {
        size_t index = order ? order[first + b] : (size_t)(first + b);
        if (set->labels) labels[b] = set->labels[index];
        if (set->values)
            memcpy(values + (size_t)b * set->value_width, set->values + index * set->value_width,
                   (size_t)set->value_width * sizeof *values);
    }
    if (set->labels) targets.labels = labels;
    if (set->values) targets.values = values;
    return targets;
}

/* zlib's crc32 takes at most UINT_MAX bytes a call: a long buffer goes in
 * pieces, which gives the CRC of the whole. */
static uint32_t crc_of(uint32_t crc, const void *data, size_t size) {
    const unsigned char *bytes = data;
    while (size > 0) {
        size_t piece = size < (1u << 30) ? size : (1u << 30);
        crc = (uint32_t)crc32(crc, bytes, (unsigned)piece);
        bytes += piece;
        size -= piece;
    }
    return crc;
}

nn_data_fingerprint nn_dataset_fingerprint(const nn_dataset *set) {
    nn_data_fingerprint f = {set->count, (int64_t)set->input_size, 0, 0};
    size_t values = (size_t)set->count * set->input_size;
    f.inputs_crc = set->inputs_are_bytes ? crc_of(0, set->bytes, values) : crc_of(0, set->floats, values * sizeof(float));
    if (set->labels) f.targets_crc = crc_of(0, set->labels, (size_t)set->count * sizeof *set->labels);
    else if (set->values)
        f.targets_crc = crc_of(0, set->values, (size_t)set->count * (size_t)set->value_width * sizeof *set->values);
    return f;
}
