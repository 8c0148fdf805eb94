#include "data/sample_stream.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/idx.h"
#include "data/npy.h"

struct nn_sample_stream {
    nn_data_format format;
    nn_idx_stream *idx;
    nn_npy_stream *npy;
    nn_csv_stream *csv;
    nn_dataset whole;        /* an .npz, read at once */
    int64_t next;            /* of whole */
    bool bytes;              /* uint8 values: scaled by 1/255 */
    size_t values;
    nn_shape shape;
    const char *path;        /* borrowed, for messages */
    int64_t done;            /* samples read so far */
};

/* The sample shape of dims[1..rank), as nn_dataset_set_inputs makes it. */
static nn_shape shape_of(int rank, const int64_t *dims) {
    if (rank <= 1) return (nn_shape){1, {1, 0, 0}};
    if (rank == 2) return (nn_shape){1, {(int)dims[1], 0, 0}};
    if (rank == 3) return (nn_shape){3, {1, (int)dims[1], (int)dims[2]}};
    return (nn_shape){3, {(int)dims[1], (int)dims[2], (int)dims[3]}};
}

static bool is_npz(const char *path) {
    if (!strcmp(path, "-")) return false;
    FILE *file = fopen(path, "rb");
    unsigned char magic[4] = {0};
    if (!file) return false;
    size_t got = fread(magic, 1, 4, file);
    fclose(file);
    return got == 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4;
}

nn_sample_stream *nn_sample_stream_open(nn_data_format format, const nn_csv_options *csv, const char *path,
                                        nn_error *err) {
    nn_sample_stream *s = calloc(1, sizeof *s);
    if (!s) {
        nn_error_oom(err, "the input stream");
        return NULL;
    }
    s->format = format;
    s->path = path;
    switch (format) {
    case NN_FORMAT_IDX:
        if (!(s->idx = nn_idx_stream_open(path, err))) goto fail;
        s->bytes = nn_idx_stream_dtype(s->idx) == NN_U8;
        s->values = nn_idx_stream_item_values(s->idx);
        s->shape = shape_of(nn_idx_stream_rank(s->idx), nn_idx_stream_dims(s->idx));
        break;
    case NN_FORMAT_NPY:
        if (is_npz(path)) {
            nn_array array = {0};
            if (nn_npy_read(path, NULL, &array, err) != 0 || nn_dataset_set_inputs(&s->whole, &array, path, 0, err) != 0)
                goto fail;
            s->values = s->whole.input_size;
            s->shape = s->whole.shape;
            break;
        }
        if (!(s->npy = nn_npy_stream_open(path, err))) goto fail;
        s->bytes = nn_npy_stream_dtype(s->npy) == NN_U8;
        s->shape = shape_of(nn_npy_stream_rank(s->npy), nn_npy_stream_dims(s->npy));
        s->values = nn_shape_size(s->shape);
        break;
    case NN_FORMAT_CSV:
        if (!(s->csv = nn_csv_stream_open(path, csv, err))) goto fail;
        s->values = (size_t)nn_csv_stream_width(s->csv);
        s->shape = (nn_shape){1, {(int)s->values, 0, 0}};
        break;
    }
    return s;
fail:
    nn_sample_stream_close(s);
    return NULL;
}

size_t nn_sample_stream_values(const nn_sample_stream *s) { return s->values; }
nn_shape nn_sample_stream_shape(const nn_sample_stream *s) { return s->shape; }

int nn_sample_stream_read(nn_sample_stream *s, float *out, int max, nn_error *err) {
    int got;
    if (s->idx) got = nn_idx_stream_read(s->idx, out, max, err);
    else if (s->npy) got = nn_npy_stream_read(s->npy, out, max, err);
    else if (s->csv) got = nn_csv_stream_read(s->csv, out, max, err);
    else {
        int64_t left = s->whole.count - s->next;
        got = left < max ? (int)left : max;
        nn_dataset_gather_inputs(&s->whole, NULL, NULL, s->next, got, out);
        s->next += got;
        return got;
    }
    size_t total = got > 0 ? (size_t)got * s->values : 0;
    if (s->bytes) {
        for (size_t i = 0; i < total; i++) out[i] = out[i] / 255.0f;
    } else {
        for (size_t i = 0; i < total; i++)
            if (!isfinite(out[i]))
                return nn_error_set(err, NN_ERR_INPUT, "%s: sample %lld: value %zu is %s (expected finite numbers)",
                                    s->path, (long long)(s->done + (int64_t)(i / s->values)), i % s->values + 1,
                                    isnan(out[i]) ? "NaN" : "Inf");
    }
    if (got > 0) s->done += got;
    return got;
}

void nn_sample_stream_close(nn_sample_stream *s) {
    if (!s) return;
    if (s->idx) nn_idx_stream_close(s->idx);
    if (s->npy) nn_npy_stream_close(s->npy);
    if (s->csv) nn_csv_stream_close(s->csv);
    nn_dataset_free(&s->whole);
    free(s);
}
