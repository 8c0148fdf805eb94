/* IDX reading and writing: every element type round trips raw and gzip,
 * big-endian bytes written here by hand read as the values they stand for,
 * ranks 1 to 6 with the dims past the fourth folded, every kind of bad input
 * with its message, and the streaming reader, whose floats must equal the
 * whole read converted here. Expected bytes come from a naive encoder
 * written here and from zlib used directly, not from lib/data/idx.c. The
 * limits: headers promising more than a file can hold are refused before
 * anything is allocated (under an address-space limit that the promised size
 * would break), data after a gzip stream is refused, and on a pipe that never
 * ends the readers stop where the header says (a test that waited would time
 * out). */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "data/dataset.h"
#include "data/idx.h"
#include "data/source.h"
#include "testutil.h"

/* One directory for the whole program, made and removed by the parent
 * process (unchecked fixture), so it goes even when a test fails. */
static char tmpdir[256];

static void make_tmpdir(void) { ck_assert_ptr_nonnull(testutil_tmpdir(tmpdir, sizeof tmpdir)); }

static void remove_tmpdir(void) { testutil_remove_tmpdir(tmpdir); }

static const char *temp_path(char *buffer, size_t size, const char *name) {
    return testutil_path(buffer, size, tmpdir, name);
}

/* The element types, as the IDX description lists them. */
static const struct {
    uint8_t code;
    nn_dtype dtype;
    size_t size;
    const char *name;
} types[] = {
    {0x08, NN_U8, 1, "u8"},   {0x09, NN_I8, 1, "i8"},   {0x0B, NN_I16, 2, "i16"},
    {0x0C, NN_I32, 4, "i32"}, {0x0D, NN_F32, 4, "f32"}, {0x0E, NN_F64, 8, "f64"},
};
#define TYPES ((int)(sizeof types / sizeof types[0]))

/* The IDX header straight from its description, independent of
 * lib/data/idx.c: dim_count sizes are written whatever the rank byte says
 * (fewer makes a truncated header). */
static size_t encode_header(uint8_t *out, int type, int rank, int dim_count, const unsigned *dims) {
    out[0] = 0, out[1] = 0, out[2] = (uint8_t)type, out[3] = (uint8_t)rank;
    for (int i = 0; i < dim_count; i++) {
        out[4 + 4 * i] = (uint8_t)(dims[i] >> 24);
        out[5 + 4 * i] = (uint8_t)(dims[i] >> 16);
        out[6 + 4 * i] = (uint8_t)(dims[i] >> 8);
        out[7 + 4 * i] = (uint8_t)dims[i];
    }
    return 4 + 4 * (size_t)dim_count;
}

static size_t encode_idx(uint8_t *out, int type, int rank, const unsigned *dims, const uint8_t *data,
                         size_t data_size) {
    size_t header = encode_header(out, type, rank, rank, dims);
    if (data_size) memcpy(out + header, data, data_size);
    return header + data_size;
}

/* Host-order values of size bytes each into big-endian bytes, by shifts. */
static void to_big_endian(uint8_t *out, const void *values, size_t size, size_t count) {
    const uint8_t *in = values;
    for (size_t i = 0; i < count; i++, in += size, out += size) {
        uint64_t value = 0;
        if (size == 1) value = in[0];
        if (size == 2) value = *(const uint16_t *)(const void *)in;
        if (size == 4) value = *(const uint32_t *)(const void *)in;
        if (size == 8) value = *(const uint64_t *)(const void *)in;
        for (size_t b = 0; b < size; b++) out[b] = (uint8_t)(value >> (8 * (size - 1 - b)));
    }
}

/* Pseudo-random bytes (an LCG), so that gzip cannot shrink them to nothing. */
static void fill_bytes(uint8_t *data, size_t size, unsigned seed) {
    unsigned state = seed * 2654435761u + 1;
    for (size_t i = 0; i < size; i++) {
        state = state * 1103515245u + 12345u;
        data[i] = (uint8_t)(state >> 16);
    }
}

/* count values of dtype that use the type's range: signs, extremes,
 * fractions, and (for floats) an infinity and tiny numbers. */
static void fill_values(void *data, nn_dtype dtype, size_t count, unsigned seed) {
    uint8_t noise[8];
    for (size_t i = 0; i < count; i++) {
        fill_bytes(noise, sizeof noise, seed + (unsigned)i);
        int64_t wide = (int64_t)((uint64_t)noise[0] << 24 | (uint64_t)noise[1] << 16 | noise[2] << 8 | noise[3]);
        switch (dtype) {
        case NN_U8: ((uint8_t *)data)[i] = noise[0]; break;
        case NN_I8: ((int8_t *)data)[i] = (int8_t)(i == 0 ? -128 : (int)noise[0] - 128); break;
        case NN_I16: ((int16_t *)data)[i] = (int16_t)(i == 0 ? -32768 : (int)(wide & 0xFFFF) - 32768); break;
        case NN_I32: ((int32_t *)data)[i] = i == 0 ? INT32_MIN : i == 1 ? INT32_MAX : (int32_t)(uint32_t)wide; break;
        case NN_F32: ((float *)data)[i] = i == 0 ? INFINITY : ((float)wide - 2e9f) * (i % 2 ? 1e-30f : 1e20f); break;
        case NN_F64: ((double *)data)[i] = i == 0 ? -0.0 : ((double)wide - 2e9) * (i % 2 ? 1e-300 : 1e-7); break;
        default: ck_abort_msg("no IDX type %d", (int)dtype);
        }
    }
}

/* What the stream must give: each value as a float, bytes unscaled. */
static float value_as_float(const void *data, nn_dtype dtype, size_t i) {
    switch (dtype) {
    case NN_U8: return (float)((const uint8_t *)data)[i];
    case NN_I8: return (float)((const int8_t *)data)[i];
    case NN_I16: return (float)((const int16_t *)data)[i];
    case NN_I32: return (float)((const int32_t *)data)[i];
    case NN_F32: return ((const float *)data)[i];
    case NN_F64: {
        double value = ((const double *)data)[i]; /* beyond float's range: an infinity */
        return value > FLT_MAX ? INFINITY : value < -FLT_MAX ? -INFINITY : (float)value;
    }
    default: ck_abort_msg("no IDX type %d", (int)dtype);
    }
    return 0;
}

static void write_input(const char *path, const uint8_t *bytes, size_t size, bool gzip) {
    if (!gzip) {
        ck_assert_int_eq(testutil_write_file(path, bytes, size), 0);
        return;
    }
    gzFile file = gzopen(path, "wb");
    ck_assert_ptr_nonnull(file);
    if (size) ck_assert_int_eq(gzwrite(file, bytes, (unsigned)size), (int)size);
    ck_assert_int_eq(gzclose(file), Z_OK);
}

static size_t read_file(const char *path, uint8_t *buffer, size_t capacity) {
    FILE *file = fopen(path, "rb");
    ck_assert_ptr_nonnull(file);
    size_t size = fread(buffer, 1, capacity, file);
    fclose(file);
    return size;
}

/* Whatever zlib itself makes of the file: plain bytes or decompressed. */
static size_t read_through_zlib(const char *path, uint8_t *buffer, size_t capacity) {
    gzFile file = gzopen(path, "rb");
    ck_assert_ptr_nonnull(file);
    int size = gzread(file, buffer, (unsigned)capacity);
    ck_assert_int_ge(size, 0);
    gzclose(file);
    return (size_t)size;
}

static void assert_input_error(const nn_error *err, const char *path, const char *expected) {
    ck_assert_int_eq(err->status, NN_ERR_INPUT);
    ck_assert_msg(strncmp(err->message, path, strlen(path)) == 0, "no path first: %s", err->message);
    ck_assert_msg(strstr(err->message, expected), "'%s' not in: %s", expected, err->message);
}

static void assert_empty_array(const nn_array *array) {
    ck_assert_ptr_null(array->data);
    ck_assert_int_eq(array->rank, 0);
}

/* ------------------------------------------------------------ round trips */

/* Each type, raw and gzip: the file holds exactly the big-endian bytes a
 * naive encoder makes, and reads back as the values written. */
START_TEST(idx_round_trip_each_type) {
    int t = _i / 2;
    bool gzip = _i % 2 == 1;
    char path[512], name[64];
    snprintf(name, sizeof name, "round-%s%s", types[t].name, gzip ? ".gz" : "");
    temp_path(path, sizeof path, name);
    unsigned header_dims[3] = {5, 4, 3};
    enum { COUNT = 60 };
    double storage[COUNT]; /* room for 60 values of any type, aligned for all */
    nn_array array = {.dtype = types[t].dtype, .rank = 3, .dims = {5, 4, 3}, .data = storage};
    fill_values(storage, types[t].dtype, COUNT, (unsigned)_i);
    uint8_t expected[16 + COUNT * 8], bytes[4096];
    size_t header_size = encode_header(expected, types[t].code, 3, 3, header_dims);
    to_big_endian(expected + header_size, storage, types[t].size, COUNT);
    size_t expected_size = header_size + COUNT * types[t].size;
    nn_error err = {0};
    ck_assert_msg(nn_idx_write_array(path, &array, gzip, &err) == 0, "%s", err.message);

    size_t stored = read_file(path, bytes, sizeof bytes);
    ck_assert_int_eq(stored >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b, gzip);
    if (!gzip) ck_assert_uint_eq(stored, expected_size);
    ck_assert_uint_eq(read_through_zlib(path, bytes, sizeof bytes), expected_size);
    ck_assert_mem_eq(bytes, expected, expected_size);

    nn_array read;
    ck_assert_msg(nn_idx_read(path, &read, &err) == 0, "%s", err.message);
    ck_assert_int_eq(read.dtype, types[t].dtype);
    ck_assert_int_eq(read.rank, 3);
    ck_assert_int_eq(read.dims[0], 5);
    ck_assert_int_eq(read.dims[1], 4);
    ck_assert_int_eq(read.dims[2], 3);
    ck_assert_uint_eq(nn_array_bytes(&read), COUNT * types[t].size);
    ck_assert_mem_eq(read.data, storage, COUNT * types[t].size);
    free(read.data);
}
END_TEST

/* Bytes written here by hand, each type's extremes among them: the reader
 * turns the file's big-endian order into these values on any host. */
START_TEST(idx_converts_big_endian_values) {
    static const uint8_t u8_bytes[] = {0x00, 0x7f, 0x80, 0xff};
    static const uint8_t i8_bytes[] = {0x00, 0x7f, 0x80, 0xff};
    static const uint8_t i16_bytes[] = {0x00, 0x01, 0x01, 0x00, 0x80, 0x00, 0xff, 0xfe};
    static const uint8_t i32_bytes[] = {0x00, 0x00, 0x01, 0x02, 0x7f, 0xff, 0xff, 0xff,
                                        0x80, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xfe};
    static const uint8_t f32_bytes[] = {0x3f, 0xc0, 0x00, 0x00, 0xc1, 0x20, 0x00, 0x00,
                                        0x7f, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01};
    static const uint8_t f64_bytes[] = {0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18,
                                        0xbf, 0xf0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                        0xff, 0xef, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t u8_values[] = {0, 127, 128, 255};
    static const int8_t i8_values[] = {0, 127, -128, -1};
    static const int16_t i16_values[] = {1, 256, -32768, -2};
    static const int32_t i32_values[] = {258, INT32_MAX, INT32_MIN, -2};
    float f32_values[] = {1.5f, -10.0f, INFINITY, 0};
    static const double f64_values[] = {3.141592653589793, -1.0, -DBL_MAX}; /* the last: -inf as a float */
    uint32_t denormal_bits = 1;
    memcpy(&f32_values[3], &denormal_bits, sizeof denormal_bits); /* the smallest denormal */
    const struct {
        const uint8_t *bytes;
        size_t size;
        const void *values;
    } cases[TYPES] = {
        {u8_bytes, sizeof u8_bytes, u8_values},    {i8_bytes, sizeof i8_bytes, i8_values},
        {i16_bytes, sizeof i16_bytes, i16_values}, {i32_bytes, sizeof i32_bytes, i32_values},
        {f32_bytes, sizeof f32_bytes, f32_values}, {f64_bytes, sizeof f64_bytes, f64_values},
    };
    for (int t = 0; t < TYPES; t++) {
        unsigned dims[1] = {(unsigned)(cases[t].size / types[t].size)};
        uint8_t file[64];
        size_t size = encode_idx(file, types[t].code, 1, dims, cases[t].bytes, cases[t].size);
        char path[512], name[64];
        snprintf(name, sizeof name, "hand-%s", types[t].name);
        write_input(temp_path(path, sizeof path, name), file, size, t % 2 == 1);
        nn_array read;
        nn_error err = {0};
        ck_assert_msg(nn_idx_read(path, &read, &err) == 0, "%s", err.message);
        ck_assert_int_eq(read.dtype, types[t].dtype);
        ck_assert_int_eq(read.dims[0], (int64_t)dims[0]);
        ck_assert_mem_eq(read.data, cases[t].values, cases[t].size);

        nn_idx_stream *stream = nn_idx_stream_open(path, &err);
        ck_assert_msg(stream != NULL, "%s", err.message);
        ck_assert_int_eq(nn_idx_stream_dtype(stream), types[t].dtype);
        float floats[4];
        ck_assert_int_eq(nn_idx_stream_read(stream, floats, 4, &err), (int)dims[0]);
        for (unsigned i = 0; i < dims[0]; i++)
            ck_assert_msg(floats[i] == value_as_float(cases[t].values, types[t].dtype, i), "%s value %u: %g",
                          types[t].name, i, floats[i]);
        nn_idx_stream_close(stream);
        free(read.data);
    }
}
END_TEST

/* Files made without the writer, ranks 1 to 6, raw and gzip: dims past the
 * fourth fold into the fourth, the data stays as it is. */
START_TEST(idx_reads_each_rank) {
    bool gzip = _i % 2 == 1;
    int rank = 1 + _i / 2;
    unsigned dims[6] = {3, 2, 5, 2, 3, 2};
    size_t count = 1;
    for (int i = 0; i < rank; i++) count *= dims[i];
    int16_t values[360];
    uint8_t data[720], bytes[1024];
    fill_values(values, NN_I16, count, (unsigned)_i + 7);
    to_big_endian(data, values, 2, count);
    size_t size = encode_idx(bytes, 0x0B, rank, dims, data, 2 * count);
    char path[512], name[32];
    snprintf(name, sizeof name, "rank%d%s", rank, gzip ? ".gz" : "");
    write_input(temp_path(path, sizeof path, name), bytes, size, gzip);

    nn_array read;
    nn_error err = {0};
    ck_assert_msg(nn_idx_read(path, &read, &err) == 0, "%s", err.message);
    int64_t expected[4] = {3, 2, 5, 2};
    if (rank == 5) expected[3] = 2 * 3;
    if (rank == 6) expected[3] = 2 * 3 * 2;
    ck_assert_int_eq(read.rank, rank < 4 ? rank : 4);
    for (int i = 0; i < read.rank; i++) ck_assert_int_eq(read.dims[i], expected[i]);
    ck_assert_uint_eq(nn_array_count(&read), count);
    ck_assert_mem_eq(read.data, values, 2 * count);
    free(read.data);

    nn_idx_stream *stream = nn_idx_stream_open(path, &err);
    ck_assert_msg(stream != NULL, "%s", err.message);
    ck_assert_int_eq(nn_idx_stream_rank(stream), rank < 4 ? rank : 4);
    for (int i = 0; i < read.rank; i++) ck_assert_int_eq(nn_idx_stream_dims(stream)[i], expected[i]);
    ck_assert_uint_eq(nn_idx_stream_item_values(stream), count / 3);
    nn_idx_stream_close(stream);
}
END_TEST

/* Gzip is recognised by content: the names here say the opposite. */
START_TEST(idx_ignores_file_names) {
    unsigned dims[2] = {2, 3};
    uint8_t data[6] = {1, 2, 3, 4, 5, 6}, bytes[64];
    size_t size = encode_idx(bytes, 0x08, 2, dims, data, sizeof data);
    char raw_path[512], gzip_path[512];
    write_input(temp_path(raw_path, sizeof raw_path, "raw-named.gz"), bytes, size, false);
    write_input(temp_path(gzip_path, sizeof gzip_path, "gzip-named.idx"), bytes, size, true);
    const char *paths[2] = {raw_path, gzip_path};
    for (int i = 0; i < 2; i++) {
        nn_array read;
        nn_error err = {0};
        ck_assert_msg(nn_idx_read(paths[i], &read, &err) == 0, "%s", err.message);
        ck_assert_int_eq(read.dtype, NN_U8);
        ck_assert_mem_eq(read.data, data, sizeof data);
        free(read.data);
    }
}
END_TEST

/* What a training set's two files look like (the dataset that checks them
 * against each other is lib/data/dataset.c's): images of rank 3 and of rank
 * 4 with channels, labels of rank 1, raw and gzip. */
START_TEST(idx_reads_images_and_labels) {
    bool gzip = _i == 1;
    int rank = gzip ? 4 : 3;
    int dims[4] = {7, 3, 2, 4}, label_count = 7;
    if (rank == 3) dims[1] = 4, dims[2] = 5;
    size_t size = 1;
    for (int i = 0; i < rank; i++) size *= (size_t)dims[i];
    uint8_t images[168], labels[7];
    fill_bytes(images, size, 9);
    for (int i = 0; i < label_count; i++) labels[i] = (uint8_t)(i % 10);
    char images_path[512], labels_path[512];
    temp_path(images_path, sizeof images_path, gzip ? "set-images.gz" : "set-images");
    temp_path(labels_path, sizeof labels_path, gzip ? "set-labels.gz" : "set-labels");
    nn_error err = {0};
    ck_assert_int_eq(nn_idx_write(images_path, rank, dims, images, gzip, &err), 0);
    ck_assert_int_eq(nn_idx_write(labels_path, 1, &label_count, labels, gzip, &err), 0);

    nn_array read;
    ck_assert_msg(nn_idx_read(images_path, &read, &err) == 0, "%s", err.message);
    ck_assert_int_eq(read.dtype, NN_U8);
    ck_assert_int_eq(read.rank, rank);
    for (int i = 0; i < rank; i++) ck_assert_int_eq(read.dims[i], dims[i]);
    ck_assert_mem_eq(read.data, images, size);
    free(read.data);
    ck_assert_msg(nn_idx_read(labels_path, &read, &err) == 0, "%s", err.message);
    ck_assert_int_eq(read.rank, 1);
    ck_assert_int_eq(read.dims[0], label_count);
    ck_assert_mem_eq(read.data, labels, sizeof labels);
    free(read.data);
}
END_TEST

/* ------------------------------------------------------------- bad input */

typedef struct bad_file {
    const char *name;
    uint8_t type;
    int rank;             /* written into the magic */
    int dim_count;        /* sizes written: -1 the rank's */
    unsigned dims[8];
    int header_bytes;     /* -1: the whole header */
    size_t data_bytes;
    const char *expected; /* in the message */
    const char *gzip_expected; /* when gzip-compressed, if not the same */
} bad_file;

static const bad_file bad_files[] = {
    {"empty", 0x08, 1, -1, {1}, 0, 0, "empty file, expected an IDX header", NULL},
    {"magic-only", 0x08, 2, -1, {3, 4}, 2, 0, "truncated header: expected a 4-byte magic, file has 2 bytes", NULL},
    {"short-header", 0x08, 3, -1, {3, 4, 5}, 9, 0,
     "truncated header: expected 16 bytes (magic and 3 sizes), file has 9", NULL},
    {"rank-255-short", 0x0D, 255, 8, {1, 1, 1, 1, 1, 1, 1, 1}, -1, 0,
     "truncated header: expected 1024 bytes (magic and 255 sizes), file has 36", NULL},
    {"bad-magic", 0x08, 1, -1, {4}, -1, 4, "not an IDX file: magic is 12 34 08 01, expected 00 00, the element type",
     NULL},
    {"unknown-type", 0x0A, 1, -1, {4}, -1, 16,
     "unsupported IDX element type 0x0a, expected 0x08 (uint8), 0x09 (int8), 0x0b (int16), 0x0c (int32), 0x0d "
     "(float32) or 0x0e (float64)", NULL},
    {"type-0x07", 0x07, 1, -1, {4}, -1, 16, "element type 0x07", NULL},
    {"rank-0", 0x08, 0, -1, {0}, -1, 4, "unsupported IDX rank 0, expected 1 to 255", NULL},
    {"zero-dim", 0x08, 3, -1, {3, 0, 4}, -1, 0, "size 2 of 3 in the header is 0, expected at least 1", NULL},
    {"zero-dim-5", 0x0C, 6, -1, {3, 1, 4, 1, 0, 2}, -1, 0, "size 5 of 6 in the header is 0", NULL},
    {"huge-dim", 0x08, 1, -1, {0x80000000u}, -1, 4, "truncated: header promises 2147483648 bytes of data, file has 4",
     "header promises 2147483648 bytes of data, more than a gzip file of 32 bytes can hold (deflate expands at most "
     "1032 times)"},
    /* 2^40 items in a file of a few bytes: refused before any allocation. */
    {"2^40-items", 0x08, 2, -1, {0x100000u, 0x100000u}, -1, 20,
     "truncated: header promises 1099511627776 bytes of data, file has 20", "more than a gzip file of"},
    /* Beyond the 16 GiB limit too, but the file's size is checked first. */
    {"24GiB-short", 0x0E, 2, -1, {0x40000000u, 3}, -1, 4, "truncated: header promises 25769803776 bytes",
     "more than a gzip file of"},
    {"overflow", 0x08, 4, -1, {0x7fffffffu, 0x7fffffffu, 0x7fffffffu, 0x7fffffffu}, -1, 4,
     "header sizes 2147483647 x 2147483647 x 2147483647 x 2147483647 overflow a byte count", NULL},
    /* Only the element size makes these overflow: 2^31 * 2^31 * 2 (int16). */
    {"overflow-by-type", 0x0B, 2, -1, {0x80000000u, 0x80000000u}, -1, 4, "overflow a byte count", NULL},
    {"overflow-folded", 0x0E, 6, -1, {1, 1, 1, 0x1000000u, 0x1000000u, 0x1000000u}, -1, 4, "overflow a byte count",
     NULL},
    {"truncated", 0x08, 2, -1, {3, 4}, -1, 10, "truncated: header promises 12 bytes of data, file has 10", NULL},
    {"truncated-i16", 0x0B, 2, -1, {3, 4}, -1, 23, "truncated: header promises 24 bytes of data, file has 23", NULL},
    {"truncated-f64", 0x0E, 1, -1, {2}, -1, 15, "truncated: header promises 16 bytes of data, file has 15", NULL},
    {"trailing", 0x08, 2, -1, {3, 4}, -1, 15, "3 trailing bytes after the 12 bytes of data the header promises",
     "the gzip data goes on after the 12 bytes of data the header promises"},
    {"trailing-i32", 0x0C, 1, -1, {3}, -1, 13, "1 trailing bytes after the 12 bytes of data",
     "the gzip data goes on after the 12 bytes of data"},
    {"trailing-folded", 0x0D, 5, -1, {1, 1, 1, 2, 2}, -1, 20, "4 trailing bytes after the 16 bytes of data",
     "the gzip data goes on after the 16 bytes of data"},
};
#define BAD_FILES ((int)(sizeof bad_files / sizeof bad_files[0]))

START_TEST(idx_rejects_bad_file) {
    const bad_file *bad = &bad_files[_i / 2];
    bool gzip = _i % 2 == 1;
    uint8_t data[64], bytes[128];
    fill_bytes(data, sizeof data, 3);
    int dim_count = bad->dim_count < 0 ? bad->rank : bad->dim_count;
    size_t size = encode_header(bytes, bad->type, bad->rank, dim_count, bad->dims);
    memcpy(bytes + size, data, bad->data_bytes);
    size += bad->data_bytes;
    if (strcmp(bad->name, "bad-magic") == 0) bytes[0] = 0x12, bytes[1] = 0x34;
    if (bad->header_bytes >= 0) size = (size_t)bad->header_bytes;
    char path[512], name[64];
    snprintf(name, sizeof name, "%s%s", bad->name, gzip ? ".gz" : "");
    write_input(temp_path(path, sizeof path, name), bytes, size, gzip);

    const char *expected = gzip && bad->gzip_expected ? bad->gzip_expected : bad->expected;
    nn_array read = {.rank = 3, .data = &read};
    nn_error err = {0};
    ck_assert_int_eq(nn_idx_read(path, &read, &err), -1);
    assert_input_error(&err, path, expected);
    assert_empty_array(&read);
    /* The stream checks the header, and a raw file's size, the same way (it
     * sees a gzip file's data later). */
    if (gzip && (strstr(expected, "truncated: header") || strstr(expected, "goes on"))) return;
    ck_assert_ptr_null(nn_idx_stream_open(path, &err));
    assert_input_error(&err, path, expected);
}
END_TEST

/* Another kind of file names itself rather than quoting its magic. */
START_TEST(idx_names_other_file_kinds) {
    static const struct {
        const char *bytes;
        size_t size;
        const char *expected;
    } kinds[] = {
        {"\x93NUMPY\x01\x00", 8, "not an IDX file: it looks like a NumPy .npy array"},
        {"PK\x03\x04....", 8, "not an IDX file: it looks like a zip archive"},
        {"\x89PNG\r\n\x1a\n", 8, "not an IDX file: it looks like a PNG image"},
        {"model:\n  - Linear", 17, "not an IDX file: it looks like text"},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        char path[512], name[32];
        snprintf(name, sizeof name, "kind-%zu", i);
        write_input(temp_path(path, sizeof path, name), (const uint8_t *)kinds[i].bytes, kinds[i].size, i % 2);
        nn_array read;
        nn_error err = {0};
        ck_assert_int_eq(nn_idx_read(path, &read, &err), -1);
        assert_input_error(&err, path, kinds[i].expected);
    }
}
END_TEST

START_TEST(idx_rejects_missing_file) {
    char path[512], expected[600];
    temp_path(path, sizeof path, "no-such-file.gz");
    snprintf(expected, sizeof expected, "%s: cannot open: No such file or directory", path);
    nn_array read;
    nn_error err = {0};
    ck_assert_int_eq(nn_idx_read(path, &read, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    ck_assert_str_eq(err.message, expected);
    assert_empty_array(&read);
}
END_TEST

/* A gzip file cut short, in the middle of the data and then just before its
 * 8-byte trailer (all data present, CRC missing): both are errors. */
START_TEST(idx_rejects_truncated_gzip) {
    char path[512];
    temp_path(path, sizeof path, _i == 0 ? "cut-middle.gz" : "cut-trailer.gz");
    int32_t values[500];
    fill_values(values, NN_I32, 500, 5);
    nn_array array = {.dtype = NN_I32, .rank = 2, .dims = {20, 25}, .data = values};
    uint8_t bytes[4096];
    nn_error err = {0};
    ck_assert_msg(nn_idx_write_array(path, &array, 1, &err) == 0, "%s", err.message);
    size_t size = read_file(path, bytes, sizeof bytes);
    ck_assert_uint_gt(size, 1000);
    write_input(path, bytes, _i == 0 ? size / 2 : size - 8, false);

    nn_array read;
    ck_assert_int_eq(nn_idx_read(path, &read, &err), -1);
    assert_input_error(&err, path, "truncated: the gzip stream ends unexpectedly");
    assert_empty_array(&read);
}
END_TEST

START_TEST(idx_rejects_corrupt_gzip) {
    char path[512];
    temp_path(path, sizeof path, "corrupt.gz");
    int dims[1] = {3000};
    uint8_t data[3000], bytes[4096];
    fill_bytes(data, sizeof data, 6);
    nn_error err = {0};
    ck_assert_int_eq(nn_idx_write(path, 1, dims, data, 1, &err), 0);
    size_t size = read_file(path, bytes, sizeof bytes);
    for (size_t i = size / 2; i < size / 2 + 16; i++) bytes[i] ^= 0x5a;
    write_input(path, bytes, size, false);

    nn_array read;
    ck_assert_int_eq(nn_idx_read(path, &read, &err), -1);
    assert_input_error(&err, path, "gzip");
}
END_TEST

/* A file of rank 255, the most the rank byte allows: the dims past the
 * fourth fold into it. */
START_TEST(idx_reads_rank_255) {
    unsigned dims[255];
    for (int i = 0; i < 255; i++) dims[i] = i == 0 ? 3 : i == 200 ? 2 : 1;
    uint8_t data[6] = {1, 2, 3, 4, 5, 6}, bytes[4 + 4 * 255 + 6];
    size_t size = encode_idx(bytes, 0x08, 255, dims, data, sizeof data);
    char path[512];
    write_input(temp_path(path, sizeof path, "rank255.gz"), bytes, size, true);
    nn_array read;
    nn_error err = {0};
    ck_assert_msg(nn_idx_read(path, &read, &err) == 0, "%s", err.message);
    ck_assert_int_eq(read.rank, 4);
    ck_assert_int_eq(read.dims[0], 3);
    ck_assert_int_eq(read.dims[3], 2);
    ck_assert_mem_eq(read.data, data, sizeof data);
    free(read.data);
}
END_TEST

static size_t append_file(uint8_t *bytes, size_t size, size_t capacity, const char *path) {
    return size + read_file(path, bytes + size, capacity - size);
}

/* zlib's gzread reads a second member as more data and drops anything else
 * after the first: both must be refused, and so must an empty member. */
START_TEST(idx_rejects_data_after_gzip_stream) {
    static const char *const expected[] = {
        "8 bytes after the end of the gzip stream (not gzip data), expected nothing after",
        "bytes after the end of the gzip stream (a second gzip member), expected nothing after",
        "20 bytes after the end of the gzip stream (a second gzip member)",
    };
    char path[512], more[512];
    temp_path(path, sizeof path, "after-stream.gz");
    temp_path(more, sizeof more, "after-stream-more.gz");
    int dims[2] = {4, 3};
    uint8_t data[12], bytes[1024];
    fill_bytes(data, sizeof data, 31);
    nn_error err = {0};
    ck_assert_int_eq(nn_idx_write(path, 2, dims, data, 1, &err), 0);
    size_t size = read_file(path, bytes, sizeof bytes);
    if (_i == 0) {
        memcpy(bytes + size, "garbage!", 8);
        size += 8;
    } else {
        write_input(more, data, _i == 1 ? sizeof data : 0, true);
        size = append_file(bytes, size, sizeof bytes, more);
    }
    write_input(path, bytes, size, false);

    nn_array read;
    ck_assert_int_eq(nn_idx_read(path, &read, &err), -1);
    assert_input_error(&err, path, expected[_i]);
    assert_input_error(&err, path, "after the 12 bytes of data the header promises");
    assert_empty_array(&read);
    nn_idx_stream *stream = nn_idx_stream_open(path, &err);
    ck_assert_msg(stream != NULL, "%s", err.message);
    float out[12];
    ck_assert_int_eq(nn_idx_stream_read(stream, out, 4, &err), -1);
    assert_input_error(&err, path, expected[_i]);
    assert_input_error(&err, path, "after the 4 items the header promises");
    nn_idx_stream_close(stream);
}
END_TEST

/* The address space is capped at what the process uses now plus limit, so a
 * test that allocated what a header promises would fail. Not under ASan,
 * which reserves terabytes of address space up front. */
static void limit_memory(size_t limit) {
#ifndef __SANITIZE_ADDRESS__
    unsigned long pages = 0;
    FILE *statm = fopen("/proc/self/statm", "r");
    if (!statm) return;
    if (fscanf(statm, "%lu", &pages) != 1) pages = 0;
    fclose(statm);
    if (!pages) return;
    struct rlimit cap = {.rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + limit};
    struct rlimit old;
    ck_assert_int_eq(getrlimit(RLIMIT_AS, &old), 0);
    cap.rlim_max = old.rlim_max;
    if (old.rlim_cur != RLIM_INFINITY && old.rlim_cur < cap.rlim_cur) return;
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &cap), 0);
#else
    (void)limit;
#endif
}

static void write_header_and(const char *path, unsigned d0, unsigned d1, unsigned d2, const uint8_t *data,
                             size_t size, bool gzip) {
    unsigned dims[3] = {d0, d1, d2};
    uint8_t *bytes = malloc(16 + size);
    ck_assert_ptr_nonnull(bytes);
    size_t header = encode_header(bytes, 0x08, 3, 3, dims);
    if (size) memcpy(bytes + header, data, size);
    write_input(path, bytes, header + size, gzip);
    free(bytes);
}

/* A gzip bomb: a 1-KiB file whose header promises 4 GiB of zeros (it holds
 * 1 MiB of them). Refused from its size, at open, before any allocation. */
START_TEST(idx_refuses_gzip_bomb) {
    char path[512];
    temp_path(path, sizeof path, "bomb.gz");
    uint8_t *zeros = calloc(1, 1 << 20);
    write_header_and(path, 4096, 1024, 1024, zeros, 1 << 20, true);
    free(zeros);
    limit_memory((size_t)256 << 20);
    nn_array read;
    nn_error err = {0};
    ck_assert_int_eq(nn_idx_read(path, &read, &err), -1);
    assert_input_error(&err, path, "header promises 4294967296 bytes of data, more than a gzip file of");
    assert_input_error(&err, path, "can hold (deflate expands at most 1032 times)");
    ck_assert_ptr_null(nn_idx_stream_open(path, &err));
    assert_input_error(&err, path, "more than a gzip file of");
}
END_TEST

/* A gzip file that could hold what its header promises (512 KiB of random
 * bytes, 512 MiB promised) but ends early: only what arrives is allocated, so
 * the read fails as truncated, not out of memory. */
START_TEST(idx_short_gzip_allocates_what_arrives) {
    char path[512];
    temp_path(path, sizeof path, "short-plausible.gz");
    size_t size = (size_t)520 << 10;
    uint8_t *noise = malloc(size);
    fill_bytes(noise, size, 37);
    write_header_and(path, 512, 1024, 1024, noise, size, true);
    free(noise);
    limit_memory((size_t)256 << 20);
    nn_array read;
    nn_error err = {0};
    ck_assert_int_eq(nn_idx_read(path, &read, &err), -1);
    assert_input_error(&err, path, "truncated: header promises 536870912 bytes of data, file has 532480");
}
END_TEST

/* 17 GiB of data in a sparse file: as large as the header says, but more
 * than a whole read holds; the stream, which holds an item at a time, opens
 * it. */
START_TEST(idx_refuses_more_than_16_gib) {
    char path[512];
    temp_path(path, sizeof path, "sparse-17GiB");
    write_header_and(path, 17, 1024, 1024 * 1024, NULL, 0, false);
    int fd = open(path, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, 16 + ((off_t)17 << 30)), 0);
    close(fd);
    limit_memory((size_t)256 << 20);
    nn_array read;
    nn_error err = {0};
    ck_assert_int_eq(nn_idx_read(path, &read, &err), -1);
    assert_input_error(&err, path,
                       "header promises 18253611008 bytes of data, more than the 16 GiB (17179869184 bytes) a data "
                       "file may hold");
    nn_idx_stream *stream = nn_idx_stream_open(path, &err);
    ck_assert_msg(stream != NULL, "%s", err.message);
    ck_assert_int_eq(nn_idx_stream_dims(stream)[0], 17);
    nn_idx_stream_close(stream);
    unlink(path);
}
END_TEST

/* nn_idx_open and nn_idx_read_all read what nn_idx_read does, once. */
START_TEST(idx_open_then_read_all) {
    char path[512];
    temp_path(path, sizeof path, "two-steps.gz");
    int dims[2] = {6, 5};
    uint8_t data[30];
    fill_bytes(data, sizeof data, 41);
    nn_error err = {0};
    ck_assert_int_eq(nn_idx_write(path, 2, dims, data, 1, &err), 0);
    nn_idx_stream *file = nn_idx_open(path, &err);
    ck_assert_msg(file != NULL, "%s", err.message);
    ck_assert_int_eq(nn_idx_stream_dims(file)[0], 6);
    nn_array read;
    ck_assert_msg(nn_idx_read_all(file, &read, &err) == 0, "%s", err.message);
    ck_assert_int_eq(read.dims[1], 5);
    ck_assert_mem_eq(read.data, data, sizeof data);
    free(read.data);
    ck_assert_int_eq(nn_idx_read_all(file, &read, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_RUNTIME);
    assert_empty_array(&read);
    nn_idx_stream_close(file);
    ck_assert_ptr_null(nn_idx_open("-", &err));
    assert_input_error(&err, "-", "cannot open");
}
END_TEST

/* ---------------------------------------------------------------- stream */

static const int stream_chunks[] = {1, 7, 25};

/* Each type, 20 items of 2 x 3 read in chunks of 1, 7 and 25, raw and gzip:
 * the floats are the whole read's values converted one by one. */
START_TEST(stream_matches_whole_read) {
    int t = _i / 6, chunk = stream_chunks[_i / 2 % 3];
    bool gzip = _i % 2 == 1;
    char path[512], name[64];
    snprintf(name, sizeof name, "stream-%s-%d%s", types[t].name, chunk, gzip ? ".gz" : "");
    temp_path(path, sizeof path, name);
    double storage[120];
    nn_array array = {.dtype = types[t].dtype, .rank = 3, .dims = {20, 2, 3}, .data = storage};
    fill_values(storage, types[t].dtype, 120, 11 + (unsigned)t);
    nn_error err = {0};
    ck_assert_msg(nn_idx_write_array(path, &array, gzip, &err) == 0, "%s", err.message);
    nn_array whole;
    ck_assert_msg(nn_idx_read(path, &whole, &err) == 0, "%s", err.message);

    nn_idx_stream *stream = nn_idx_stream_open(path, &err);
    ck_assert_msg(stream != NULL, "%s", err.message);
    ck_assert_int_eq(nn_idx_stream_rank(stream), 3);
    ck_assert_int_eq(nn_idx_stream_dims(stream)[0], 20);
    ck_assert_int_eq(nn_idx_stream_dims(stream)[2], 3);
    ck_assert_int_eq(nn_idx_stream_dtype(stream), types[t].dtype);
    ck_assert_uint_eq(nn_idx_stream_item_values(stream), 6);
    float out[120 + 25 * 6];
    int total = 0, calls = 0, got;
    while ((got = nn_idx_stream_read(stream, out + total * 6, chunk, &err)) > 0) {
        ck_assert_int_eq(got, 20 - total < chunk ? 20 - total : chunk);
        total += got;
        calls++;
    }
    ck_assert_msg(got == 0, "%s", err.message);
    ck_assert_int_eq(total, 20);
    ck_assert_int_eq(calls, (20 + chunk - 1) / chunk);
    for (int i = 0; i < 120; i++) {
        float expected = value_as_float(whole.data, types[t].dtype, (size_t)i);
        ck_assert_msg(memcmp(&out[i], &expected, sizeof expected) == 0, "%s value %d: %g, expected %g",
                      types[t].name, i, out[i], expected);
    }
    ck_assert_int_eq(nn_idx_stream_read(stream, out, chunk, &err), 0);
    nn_idx_stream_close(stream);
    free(whole.data);
}
END_TEST

/* Items larger than the stream's conversion buffer (64 KiB), so that a
 * chunk is converted in several pieces, and folded rank 6. */
START_TEST(stream_converts_large_items) {
    char path[512];
    temp_path(path, sizeof path, _i ? "large.gz" : "large");
    enum { ITEMS = 3, VALUES = 9 * 10 * 11 * 12 * 10 };
    size_t count = (size_t)ITEMS * VALUES;
    unsigned dims[6] = {ITEMS, 9, 10, 11, 12, 10};
    double *values = malloc(count * sizeof *values);
    uint8_t *bytes = malloc(4 + 24 + count * 8);
    fill_values(values, NN_F64, count, 23);
    size_t header = encode_header(bytes, 0x0E, 6, 6, dims);
    to_big_endian(bytes + header, values, 8, count);
    write_input(path, bytes, header + count * 8, _i == 1);
    nn_error err = {0};
    nn_idx_stream *stream = nn_idx_stream_open(path, &err);
    ck_assert_msg(stream != NULL, "%s", err.message);
    ck_assert_int_eq(nn_idx_stream_rank(stream), 4);
    ck_assert_int_eq(nn_idx_stream_dims(stream)[3], 11 * 12 * 10);
    ck_assert_uint_eq(nn_idx_stream_item_values(stream), VALUES);
    float *out = malloc(count * sizeof *out);
    ck_assert_int_eq(nn_idx_stream_read(stream, out, 2, &err), 2);
    ck_assert_int_eq(nn_idx_stream_read(stream, out + 2 * VALUES, 2, &err), 1);
    ck_assert_int_eq(nn_idx_stream_read(stream, out, 2, &err), 0);
    for (size_t i = 0; i < count; i++) ck_assert_msg(out[i] == (float)values[i], "value %zu", i);
    nn_idx_stream_close(stream);
    free(values);
    free(bytes);
    free(out);
}
END_TEST

/* Runs with stdin replaced by path; restores it after. */
static nn_idx_stream *open_on_stdin(const char *path, int *saved_stdin, nn_error *err) {
    FILE *file = fopen(path, "rb");
    ck_assert_ptr_nonnull(file);
    *saved_stdin = dup(STDIN_FILENO);
    ck_assert_int_ge(dup2(fileno(file), STDIN_FILENO), 0);
    fclose(file);
    return nn_idx_stream_open("-", err);
}

static void restore_stdin(int saved_stdin) {
    dup2(saved_stdin, STDIN_FILENO);
    close(saved_stdin);
}

START_TEST(stream_reads_gzip_stdin) {
    char path[512];
    temp_path(path, sizeof path, "stdin.gz");
    int dims[2] = {9, 4};
    uint8_t data[36];
    float out[36];
    fill_bytes(data, sizeof data, 13);
    nn_error err = {0};
    ck_assert_int_eq(nn_idx_write(path, 2, dims, data, 1, &err), 0);
    int saved_stdin;
    nn_idx_stream *stream = open_on_stdin(path, &saved_stdin, &err);
    ck_assert_msg(stream != NULL, "%s", err.message);
    ck_assert_int_eq(nn_idx_stream_read(stream, out, 5, &err), 5);
    ck_assert_int_eq(nn_idx_stream_read(stream, out + 20, 5, &err), 4);
    ck_assert_int_eq(nn_idx_stream_read(stream, out, 5, &err), 0);
    for (int i = 0; i < 36; i++) ck_assert_msg(out[i] == (float)data[i], "value %d: %g (bytes are not scaled)", i, out[i]);
    nn_idx_stream_close(stream);
    restore_stdin(saved_stdin);
}
END_TEST

START_TEST(stream_names_stdin_in_errors) {
    char path[512];
    uint8_t nothing[1] = {0};
    write_input(temp_path(path, sizeof path, "stdin-empty"), nothing, 0, false);
    int saved_stdin;
    nn_error err = {0};
    ck_assert_ptr_null(open_on_stdin(path, &saved_stdin, &err));
    restore_stdin(saved_stdin);
    assert_input_error(&err, "<stdin>", "empty file");
}
END_TEST

typedef struct bad_stream {
    const char *name;
    uint8_t type;      /* the header promises 5 items of 6 values */
    size_t data_bytes;
    int chunk;
    int good_reads;    /* reads that succeed before the failing one */
    const char *expected;      /* gzip file, and raw on a pipe */
    const char *file_expected; /* raw file: at open, from its size */
    const char *gzip_expected; /* gzip file, if not expected */
} bad_stream;

static const bad_stream bad_streams[] = {
    {"inside-item", 0x08, 27, 2, 2, "truncated: the stream ends inside item 5 of 5 (3 of its 6 bytes)",
     "truncated: header promises 30 bytes of data, file has 27", NULL},
    {"inside-item-i16", 0x0B, 50, 2, 2, "truncated: the stream ends inside item 5 of 5 (2 of its 12 bytes)",
     "truncated: header promises 60 bytes of data, file has 50", NULL},
    {"inside-value-f64", 0x0E, 101, 1, 2, "truncated: the stream ends inside item 3 of 5 (5 of its 48 bytes)",
     "truncated: header promises 240 bytes of data, file has 101", NULL},
    {"short-count", 0x08, 24, 3, 1, "truncated: the stream ends after 4 of the 5 items the header promises",
     "truncated: header promises 30 bytes of data, file has 24", NULL},
    {"short-count-i32", 0x0C, 72, 3, 1, "truncated: the stream ends after 3 of the 5 items the header promises",
     "truncated: header promises 120 bytes of data, file has 72", NULL},
    /* Bytes after the items are not looked for on a pipe (NULL). */
    {"extra-bytes", 0x08, 32, 10, 0, NULL, "2 trailing bytes after the 30 bytes of data the header promises",
     "the gzip data goes on after the 5 items the header promises"},
    {"extra-bytes-f32", 0x0D, 121, 4, 1, NULL, "1 trailing bytes after the 120 bytes of data the header promises",
     "the gzip data goes on after the 5 items the header promises"},
    {"no-items", 0x08, 0, 1, 0, "after 0 of the 5 items", "truncated: header promises 30 bytes of data, file has 0",
     NULL},
};
#define BAD_STREAMS ((int)(sizeof bad_streams / sizeof bad_streams[0]))

/* Makes a pipe holding size bytes (less than a pipe's buffer) and puts its
 * reading end on stdin; the writing end is closed unless writer is given. */
static void pipe_on_stdin(const uint8_t *bytes, size_t size, int *saved_stdin, int *writer) {
    int ends[2];
    ck_assert_int_eq(pipe(ends), 0);
    ck_assert_int_eq(write(ends[1], bytes, size), (ssize_t)size);
    *saved_stdin = dup(STDIN_FILENO);
    ck_assert_int_ge(dup2(ends[0], STDIN_FILENO), 0);
    close(ends[0]);
    if (writer) *writer = ends[1];
    else close(ends[1]);
}

/* Each bad length three ways: a raw file, refused at open by its size; a
 * gzip file, refused at the read that finds it; raw on a pipe, likewise. */
START_TEST(stream_rejects_bad_length) {
    const bad_stream *bad = &bad_streams[_i / 3];
    int mode = _i % 3; /* 0 raw file, 1 gzip file, 2 raw on a pipe */
    unsigned dims[2] = {5, 6};
    uint8_t data[256], bytes[512];
    float out[64];
    fill_bytes(data, sizeof data, 17);
    size_t size = encode_idx(bytes, bad->type, 2, dims, data, bad->data_bytes);
    char path[512], name[64];
    snprintf(name, sizeof name, "%s%s", bad->name, mode == 1 ? ".gz" : "");
    write_input(temp_path(path, sizeof path, name), bytes, size, mode == 1);

    nn_error err = {0};
    if (mode == 0) {
        ck_assert_ptr_null(nn_idx_stream_open(path, &err));
        assert_input_error(&err, path, bad->file_expected);
        return;
    }
    int saved_stdin = -1;
    if (mode == 2) pipe_on_stdin(bytes, size, &saved_stdin, NULL);
    const char *expected = mode == 1 && bad->gzip_expected ? bad->gzip_expected : bad->expected;
    const char *shown = mode == 2 ? "<stdin>" : path;
    nn_idx_stream *stream = nn_idx_stream_open(mode == 2 ? "-" : path, &err);
    ck_assert_msg(stream != NULL, "%s", err.message);
    for (int i = 0; i < bad->good_reads; i++)
        ck_assert_int_eq(nn_idx_stream_read(stream, out, bad->chunk, &err), bad->chunk);
    if (!expected) {
        ck_assert_int_eq(nn_idx_stream_read(stream, out, bad->chunk, &err), 5 - bad->good_reads * bad->chunk);
        ck_assert_int_eq(nn_idx_stream_read(stream, out, bad->chunk, &err), 0);
    } else {
        ck_assert_int_eq(nn_idx_stream_read(stream, out, bad->chunk, &err), -1);
        assert_input_error(&err, shown, expected);
        ck_assert_int_eq(nn_idx_stream_read(stream, out, bad->chunk, &err), -1);
        assert_input_error(&err, shown, "the stream failed earlier");
    }
    nn_idx_stream_close(stream);
    if (mode == 2) restore_stdin(saved_stdin);
}
END_TEST

/* All items arrive but the gzip trailer does not: the read that completes
 * the count fails rather than leaving the damage unnoticed. */
START_TEST(stream_rejects_truncated_gzip) {
    char path[512];
    temp_path(path, sizeof path, "stream-cut.gz");
    int dims[2] = {5, 300};
    uint8_t data[1500], bytes[4096];
    float out[1500];
    fill_bytes(data, sizeof data, 19);
    nn_error err = {0};
    ck_assert_int_eq(nn_idx_write(path, 2, dims, data, 1, &err), 0);
    size_t size = read_file(path, bytes, sizeof bytes);
    write_input(path, bytes, size - 8, false);

    nn_idx_stream *stream = nn_idx_stream_open(path, &err);
    ck_assert_msg(stream != NULL, "%s", err.message);
    ck_assert_int_eq(nn_idx_stream_read(stream, out, 4, &err), 4);
    ck_assert_int_eq(nn_idx_stream_read(stream, out, 4, &err), -1);
    assert_input_error(&err, path, "truncated: the gzip stream ends unexpectedly");
    nn_idx_stream_close(stream);
}
END_TEST

START_TEST(stream_rejects_bad_header_and_arguments) {
    char missing[512], path[512];
    temp_path(missing, sizeof missing, "stream-missing");
    nn_error err = {0};
    ck_assert_ptr_null(nn_idx_stream_open(missing, &err));
    assert_input_error(&err, missing, "cannot open: No such file or directory");

    unsigned dims[1] = {4};
    uint8_t bytes[16];
    size_t size = encode_idx(bytes, 0x0A, 1, dims, NULL, 0);
    write_input(temp_path(path, sizeof path, "stream-type.gz"), bytes, size, true);
    ck_assert_ptr_null(nn_idx_stream_open(path, &err));
    assert_input_error(&err, path, "type 0x0a, expected 0x08 (uint8)");

    uint8_t data[4] = {1, 2, 3, 4};
    size = encode_idx(bytes, 0x08, 1, dims, data, 4);
    write_input(temp_path(path, sizeof path, "stream-args"), bytes, size, false);
    nn_idx_stream *stream = nn_idx_stream_open(path, &err);
    ck_assert_msg(stream != NULL, "%s", err.message);
    ck_assert_uint_eq(nn_idx_stream_item_values(stream), 1);
    float out[4];
    ck_assert_int_eq(nn_idx_stream_read(stream, out, 0, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_RUNTIME);
    ck_assert_msg(strstr(err.message, "max_items must be at least 1, got 0"), "%s", err.message);
    ck_assert_int_eq(nn_idx_stream_read(stream, out, 4, &err), 4);
    ck_assert(out[3] == 4.0f);
    nn_idx_stream_close(stream);
}
END_TEST

/* --------------------------------------------------------------- writing */

START_TEST(write_rejects_bad_shapes) {
    char path[512];
    temp_path(path, sizeof path, "not-written");
    uint8_t data[4] = {0};
    int dims[5] = {2, 2, 1, 1, 1}, zero_dims[2] = {2, 0};
    nn_error err = {0};
    ck_assert_int_eq(nn_idx_write(path, 0, dims, data, 0, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    ck_assert_int_eq(nn_idx_write(path, 5, dims, data, 0, &err), -1);
    ck_assert_msg(strstr(err.message, "cannot write IDX rank 5, expected 1 to 4"), "%s", err.message);
    ck_assert_int_eq(nn_idx_write(path, 2, zero_dims, data, 1, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    ck_assert_msg(strstr(err.message, "cannot write size 2 of 2: 0"), "%s", err.message);

    float values[4] = {0};
    struct {
        nn_array array;
        const char *expected;
    } cases[] = {
        {{.dtype = NN_I64, .rank = 1, .dims = {4}, .data = values}, "cannot write dtype int64 to IDX"},
        {{.dtype = NN_U16, .rank = 1, .dims = {2}, .data = values}, "cannot write dtype uint16"},
        {{.dtype = NN_BOOL, .rank = 1, .dims = {2}, .data = values}, "cannot write dtype bool"},
        {{.dtype = NN_F32, .rank = 0, .dims = {4}, .data = values}, "cannot write IDX rank 0"},
        {{.dtype = NN_F32, .rank = 1, .dims = {-1}, .data = values}, "cannot write size 1 of 1: -1"},
        {{.dtype = NN_F32, .rank = 2, .dims = {1, 0x100000000LL}, .data = values}, "size 2 of 2: 4294967296"},
        {{.dtype = NN_F32, .rank = 1, .dims = {4}, .data = NULL}, "no data"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ck_assert_int_eq(nn_idx_write_array(path, &cases[i].array, 0, &err), -1);
        assert_input_error(&err, path, cases[i].expected);
    }
    ck_assert_int_eq(access(path, F_OK), -1);

    char unwritable[512];
    temp_path(unwritable, sizeof unwritable, "no-such-dir/file.gz");
    ck_assert_int_eq(nn_idx_write(unwritable, 2, dims, data, 1, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_RUNTIME);
    ck_assert_msg(strstr(err.message, unwritable), "%s", err.message);
}
END_TEST

/* The writer byte-swaps through a buffer: the caller's array is untouched,
 * and arrays longer than the buffer come out whole. */
START_TEST(write_leaves_array_alone) {
    char path[512];
    temp_path(path, sizeof path, "long.idx");
    enum { COUNT = 50000 };
    int32_t *values = malloc(COUNT * sizeof *values), *copy = malloc(COUNT * sizeof *copy);
    fill_values(values, NN_I32, COUNT, 29);
    memcpy(copy, values, COUNT * sizeof *values);
    nn_array array = {.dtype = NN_I32, .rank = 2, .dims = {COUNT / 10, 10}, .data = values};
    nn_error err = {0};
    ck_assert_msg(nn_idx_write_array(path, &array, 0, &err) == 0, "%s", err.message);
    ck_assert_mem_eq(values, copy, COUNT * sizeof *values);
    nn_array read;
    ck_assert_msg(nn_idx_read(path, &read, &err) == 0, "%s", err.message);
    ck_assert_mem_eq(read.data, values, COUNT * sizeof *values);
    free(read.data);
    free(values);
    free(copy);
}
END_TEST

/* ----------------------------------------------------------------- pipes */

/* A pipe whose writer stays open, with the header, the items and more after
 * them: the stream hands out the 5 items and ends without waiting for more
 * (the test would time out). A gzip member that holds more than the header
 * says is refused as soon as the extra byte comes out. */
START_TEST(stream_stops_at_count_on_open_pipe) {
    unsigned dims[2] = {5, 6};
    uint8_t data[64], bytes[256];
    fill_bytes(data, sizeof data, 43);
    size_t size = encode_idx(bytes, 0x08, 2, dims, data, _i == 2 ? 40 : _i == 1 ? 30 : 64);
    if (_i > 0) {
        char path[512];
        write_input(temp_path(path, sizeof path, "pipe.gz"), bytes, size, true);
        size = read_file(path, bytes, sizeof bytes);
    }
    int saved_stdin, writer;
    pipe_on_stdin(bytes, size, &saved_stdin, &writer);
    nn_error err = {0};
    nn_idx_stream *stream = nn_idx_stream_open("-", &err);
    ck_assert_msg(stream != NULL, "%s", err.message);
    float out[30];
    if (_i < 2) {
        ck_assert_msg(nn_idx_stream_read(stream, out, 8, &err) == 5, "%s", err.message);
        ck_assert_int_eq(nn_idx_stream_read(stream, out, 8, &err), 0);
        for (int i = 0; i < 30; i++) ck_assert(out[i] == (float)data[i]);
    } else {
        ck_assert_int_eq(nn_idx_stream_read(stream, out, 8, &err), -1);
        assert_input_error(&err, "<stdin>", "the gzip data goes on after the 5 items the header promises");
    }
    nn_idx_stream_close(stream);
    restore_stdin(saved_stdin);
    close(writer);
}
END_TEST

/* A child writes the header, then bytes for ever (as `yes` would); the
 * whole read stops at the promised size. */
START_TEST(idx_read_stops_at_declared_size_on_endless_pipe) {
    int ends[2];
    ck_assert_int_eq(pipe(ends), 0);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        close(ends[0]);
        unsigned dims[3] = {100, 28, 28};
        uint8_t block[4096];
        size_t header = encode_header(block, 0x08, 3, 3, dims);
        memset(block + header, 7, sizeof block - header);
        if (write(ends[1], block, sizeof block) < 0) _exit(1);
        memset(block, 7, sizeof block);
        while (write(ends[1], block, sizeof block) > 0) continue;
        _exit(0);
    }
    close(ends[1]);
    char path[64];
    snprintf(path, sizeof path, "/dev/fd/%d", ends[0]);
    nn_array read;
    nn_error err = {0};
    ck_assert_msg(nn_idx_read(path, &read, &err) == 0, "%s", err.message);
    close(ends[0]);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    ck_assert_int_eq(read.dims[0], 100);
    ck_assert_uint_eq(nn_array_bytes(&read), 100 * 28 * 28);
    const uint8_t *bytes = read.data;
    for (size_t i = 0; i < 100 * 28 * 28; i++) ck_assert_int_eq(bytes[i], 7);
    free(read.data);
}
END_TEST

/* A pipe holding only a header promising 24 GiB: refused at once by the 16
 * GiB limit, the only bound a pipe has (its writer stays open: waiting for
 * the data would time out). */
START_TEST(idx_read_refuses_huge_pipe_at_once) {
    unsigned dims[2] = {0x40000000u, 3};
    uint8_t bytes[16];
    size_t size = encode_header(bytes, 0x0E, 2, 2, dims);
    int saved_stdin, writer;
    pipe_on_stdin(bytes, size, &saved_stdin, &writer);
    nn_array read;
    nn_error err = {0};
    ck_assert_int_eq(nn_idx_read("/dev/stdin", &read, &err), -1);
    assert_input_error(&err, "/dev/stdin", "header promises 25769803776 bytes of data, more than the 16 GiB");
    restore_stdin(saved_stdin);
    close(writer);
}
END_TEST

/* A split's images and labels are compared by their headers before either
 * body is read: the images here are a pipe that sends its header and then
 * nothing, so reading the body first would hang. */
START_TEST(load_compares_counts_before_bodies) {
    char labels_path[512], images_path[64];
    temp_path(labels_path, sizeof labels_path, "count-labels.idx");
    int label_count = 300;
    uint8_t labels[300] = {0};
    nn_error err = {0};
    ck_assert_int_eq(nn_idx_write(labels_path, 1, &label_count, labels, 0, &err), 0);
    unsigned dims[3] = {100, 28, 28};
    uint8_t bytes[16];
    size_t size = encode_header(bytes, 0x08, 3, 3, dims);
    int saved_stdin, writer;
    pipe_on_stdin(bytes, size, &saved_stdin, &writer);
    snprintf(images_path, sizeof images_path, "/dev/stdin");
    nn_data_files files = {.images = images_path, .labels = labels_path};
    nn_dataset set;
    ck_assert_int_eq(nn_data_load(&set, NN_FORMAT_IDX, NULL, &files, false, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    ck_assert_msg(strstr(err.message, "/dev/stdin has 100 samples but ") && strstr(err.message, labels_path) &&
                      strstr(err.message, "count-labels.idx has 300 targets"),
                  "%s", err.message);
    restore_stdin(saved_stdin);
    close(writer);

    /* Counts that agree load both bodies. */
    char images_file[512];
    temp_path(images_file, sizeof images_file, "count-images.idx.gz");
    int image_dims[3] = {300, 2, 2};
    uint8_t images[1200];
    fill_bytes(images, sizeof images, 47);
    ck_assert_int_eq(nn_idx_write(images_file, 3, image_dims, images, 1, &err), 0);
    files.images = images_file;
    ck_assert_msg(nn_data_load(&set, NN_FORMAT_IDX, NULL, &files, false, &err) == 0, "%s", err.message);
    ck_assert_int_eq(set.count, 300);
    nn_dataset_free(&set);
}
END_TEST

int main(void) {
    Suite *suite = suite_create("idx");
    TCase *files = tcase_create("files");
    tcase_add_unchecked_fixture(files, make_tmpdir, remove_tmpdir);
    tcase_set_timeout(files, 60);
    tcase_add_loop_test(files, idx_round_trip_each_type, 0, 2 * TYPES);
    tcase_add_test(files, idx_converts_big_endian_values);
    tcase_add_loop_test(files, idx_reads_each_rank, 0, 2 * 6);
    tcase_add_test(files, idx_ignores_file_names);
    tcase_add_loop_test(files, idx_reads_images_and_labels, 0, 2);
    tcase_add_loop_test(files, idx_rejects_bad_file, 0, 2 * BAD_FILES);
    tcase_add_test(files, idx_names_other_file_kinds);
    tcase_add_test(files, idx_rejects_missing_file);
    tcase_add_loop_test(files, idx_rejects_truncated_gzip, 0, 2);
    tcase_add_test(files, idx_rejects_corrupt_gzip);
    tcase_add_test(files, idx_reads_rank_255);
    tcase_add_loop_test(files, idx_rejects_data_after_gzip_stream, 0, 3);
    tcase_add_test(files, idx_refuses_gzip_bomb);
    tcase_add_test(files, idx_short_gzip_allocates_what_arrives);
    tcase_add_test(files, idx_refuses_more_than_16_gib);
    tcase_add_test(files, idx_open_then_read_all);
    tcase_add_loop_test(files, stream_matches_whole_read, 0, TYPES * 3 * 2);
    tcase_add_loop_test(files, stream_converts_large_items, 0, 2);
    tcase_add_test(files, stream_reads_gzip_stdin);
    tcase_add_test(files, stream_names_stdin_in_errors);
    tcase_add_loop_test(files, stream_rejects_bad_length, 0, 3 * BAD_STREAMS);
    tcase_add_test(files, stream_rejects_truncated_gzip);
    tcase_add_test(files, stream_rejects_bad_header_and_arguments);
    tcase_add_test(files, write_rejects_bad_shapes);
    tcase_add_test(files, write_leaves_array_alone);
    suite_add_tcase(suite, files);
    /* What waits on a pipe times out here rather than hanging. */
    TCase *pipes = tcase_create("pipes");
    tcase_add_unchecked_fixture(pipes, make_tmpdir, remove_tmpdir);
    tcase_set_timeout(pipes, 10);
    tcase_add_loop_test(pipes, stream_stops_at_count_on_open_pipe, 0, 3);
    tcase_add_test(pipes, idx_read_stops_at_declared_size_on_endless_pipe);
    tcase_add_test(pipes, idx_read_refuses_huge_pipe_at_once);
    tcase_add_test(pipes, load_compares_counts_before_bodies);
    suite_add_tcase(suite, pipes);
    return testutil_run(suite);
}
