/* numpy arrays as data (lib/data/npy.c): .npy files written here byte by
 * byte with exactly the header numpy writes, each dtype's values checked
 * against little-endian bytes made by a naive encoder; .npz archives with
 * one array and with several (built here as stored zips, or deflated by
 * nn_npz_write); the errors with their messages; and the float32 stream,
 * whose values must equal the whole read converted here. */
#include <check.h>
#include <dirent.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "data/npy.h"
#include "io/npz.h"
#include "testutil.h"

static char tmpdir[256];

static void make_tmpdir(void) { ck_assert_ptr_nonnull(testutil_tmpdir(tmpdir, sizeof tmpdir)); }

static void remove_tmpdir(void) { testutil_remove_tmpdir(tmpdir); }

static const char *temp_path(char *buffer, size_t size, const char *name) {
    return testutil_path(buffer, size, tmpdir, name);
}

/* ------------------------------------------------------------- the bytes */

typedef struct bytes {
    unsigned char data[1 << 16];
    size_t size;
} bytes;

static void put(bytes *out, const void *data, size_t size) {
    ck_assert_uint_le(out->size + size, sizeof out->data);
    memcpy(out->data + out->size, data, size);
    out->size += size;
}

static void put_le(bytes *out, uint64_t value, int size) {
    for (int i = 0; i < size; i++) {
        unsigned char byte = (unsigned char)(value >> (8 * i));
        put(out, &byte, 1);
    }
}

/* Python's repr of a shape. */
static void shape_repr(char *buffer, size_t size, int rank, const int64_t *dims) {
    size_t used = (size_t)snprintf(buffer, size, "(");
    for (int i = 0; i < rank; i++) used += (size_t)snprintf(buffer + used, size - used, "%s%lld", i ? ", " : "", (long long)dims[i]);
    snprintf(buffer + used, size - used, rank == 1 ? ",)" : ")");
}

/* The .npy header as numpy 1.24's format.write_array writes it (version
 * 1.0): the dict with sorted keys and a trailing ", ", 21 minus the digits
 * of the growing axis in spare spaces, then spaces and '\n' so that the
 * data starts at a multiple of 64 (a whole 64 more when it already would). */
static void numpy_header(bytes *out, const char *descr, bool fortran, int rank, const int64_t *dims) {
    char shape[1024], dict[1200];
    shape_repr(shape, sizeof shape, rank, dims);
    int length = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }", descr,
                          fortran ? "True" : "False", shape);
    if (rank > 0) {
        char digits[32];
        int growth = 21 - snprintf(digits, sizeof digits, "%lld", (long long)dims[fortran ? rank - 1 : 0]);
        length += snprintf(dict + length, sizeof dict - (size_t)length, "%*s", growth, "");
    }
    size_t text = (size_t)length + 1, padding = 64 - (10 + text) % 64;
    out->size = 0;
    put(out, "\x93NUMPY\x01\x00", 8);
    put_le(out, text + padding, 2);
    put(out, dict, (size_t)length);
    for (size_t i = 0; i < padding; i++) put(out, " ", 1);
    put(out, "\n", 1);
}

/* A header taken as is, in any version, unpadded. */
static void raw_header(bytes *out, int major, const char *text) {
    out->size = 0;
    put(out, "\x93NUMPY", 6);
    put_le(out, (uint64_t)major, 1);
    put_le(out, 0, 1);
    put_le(out, strlen(text), major == 1 ? 2 : 4);
    put(out, text, strlen(text));
}

static void write_bytes(const char *path, const bytes *content) {
    ck_assert_int_eq(testutil_write_file(path, content->data, content->size), 0);
}

/* ------------------------------------------------------------ the dtypes */

static const struct {
    const char *descr;
    nn_dtype dtype;
    size_t size;
} dtypes[] = {
    {"<f4", NN_F32, 4}, {"<f8", NN_F64, 8}, {"|u1", NN_U8, 1},  {"|i1", NN_I8, 1},  {"<i2", NN_I16, 2}, {"<u2", NN_U16, 2},
    {"<i4", NN_I32, 4}, {"<u4", NN_U32, 4}, {"<i8", NN_I64, 8}, {"<u8", NN_U64, 8}, {"|b1", NN_BOOL, 1},
};
#define DTYPES ((int)(sizeof dtypes / sizeof dtypes[0]))

/* count values of dtype spanning its range (extremes first), in host order. */
static void fill_values(void *data, nn_dtype dtype, size_t count, unsigned seed) {
    uint64_t state = seed * 6364136223846793005ull + 1442695040888963407ull;
    for (size_t i = 0; i < count; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t r = state >> 11;
        switch (dtype) {
        case NN_F32: ((float *)data)[i] = i == 0 ? -INFINITY : ((float)(r % 20001) - 10000.0f) / 64.0f; break;
        case NN_F64: ((double *)data)[i] = i == 0 ? 1e300 : ((double)(r % 2000001) - 1e6) / 1024.0; break;
        case NN_U8: ((uint8_t *)data)[i] = i == 0 ? 255 : (uint8_t)r; break;
        case NN_I8: ((int8_t *)data)[i] = i == 0 ? -128 : (int8_t)(uint8_t)r; break;
        case NN_I16: ((int16_t *)data)[i] = i == 0 ? INT16_MIN : (int16_t)(uint16_t)r; break;
        case NN_U16: ((uint16_t *)data)[i] = i == 0 ? UINT16_MAX : (uint16_t)r; break;
        case NN_I32: ((int32_t *)data)[i] = i == 0 ? INT32_MIN : (int32_t)(uint32_t)r; break;
        case NN_U32: ((uint32_t *)data)[i] = i == 0 ? UINT32_MAX : (uint32_t)r; break;
        case NN_I64: ((int64_t *)data)[i] = i == 0 ? INT64_MIN : (int64_t)(state ^ (state << 7)); break;
        case NN_U64: ((uint64_t *)data)[i] = i == 0 ? UINT64_MAX : state; break;
        case NN_BOOL: ((uint8_t *)data)[i] = (uint8_t)(r & 1); break;
        }
    }
}

/* What the stream must give for value i: the value as a float. */
static float value_as_float(const void *data, nn_dtype dtype, size_t i) {
    switch (dtype) {
    case NN_F32: return ((const float *)data)[i];
    case NN_F64: {
        double value = ((const double *)data)[i]; /* beyond float's range: an infinity */
        return value > FLT_MAX ? INFINITY : value < -FLT_MAX ? -INFINITY : (float)value;
    }
    case NN_U8: return (float)((const uint8_t *)data)[i];
    case NN_I8: return (float)((const int8_t *)data)[i];
    case NN_I16: return (float)((const int16_t *)data)[i];
    case NN_U16: return (float)((const uint16_t *)data)[i];
    case NN_I32: return (float)((const int32_t *)data)[i];
    case NN_U32: return (float)((const uint32_t *)data)[i];
    case NN_I64: return (float)((const int64_t *)data)[i];
    case NN_U64: return (float)((const uint64_t *)data)[i];
    case NN_BOOL: return ((const uint8_t *)data)[i] ? 1.0f : 0.0f;
    }
    return 0;
}

/* Host-order values into little-endian bytes, by shifts. */
static void put_values(bytes *out, const void *values, size_t size, size_t count) {
    const unsigned char *in = values;
    for (size_t i = 0; i < count; i++, in += size) {
        uint64_t value = 0;
        if (size == 1) value = in[0];
        if (size == 2) value = *(const uint16_t *)(const void *)in;
        if (size == 4) value = *(const uint32_t *)(const void *)in;
        if (size == 8) value = *(const uint64_t *)(const void *)in;
        put_le(out, value, (int)size);
    }
}

static void assert_input_error(const nn_error *err, const char *path, const char *expected) {
    ck_assert_int_eq(err->status, NN_ERR_INPUT);
    ck_assert_msg(strncmp(err->message, path, strlen(path)) == 0, "no path first: %s", err->message);
    ck_assert_msg(strstr(err->message, expected), "'%s' not in: %s", expected, err->message);
}

/* Reads path expecting an error with each phrase; out must stay empty. */
static void expect_read_error(const char *path, const char *key, const char *phrase1, const char *phrase2) {
    nn_array out = {.rank = 2, .data = &out};
    nn_error err = {0};
    ck_assert_int_eq(nn_npy_read(path, key, &out, &err), -1);
    assert_input_error(&err, path, phrase1);
    if (phrase2) ck_assert_msg(strstr(err.message, phrase2), "'%s' not in: %s", phrase2, err.message);
    ck_assert_ptr_null(out.data);
    ck_assert_int_eq(out.rank, 0);
}

/* ---------------------------------------------------------------- reading */

/* The header our generator makes is numpy's, byte for byte (np.save of a
 * float64 (3, 2) array in numpy 1.24: header length 118, data at 128). */
START_TEST(header_generator_matches_numpy) {
    bytes file;
    numpy_header(&file, "<f8", false, 2, (const int64_t[]){3, 2});
    char expected[128];
    const char *dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }";
    memcpy(expected, "\x93NUMPY\x01\x00\x76\x00", 10);
    memset(expected + 10, ' ', sizeof expected - 10);
    memcpy(expected + 10, dict, strlen(dict));
    expected[127] = '\n';
    ck_assert_uint_eq(file.size, sizeof expected);
    ck_assert_mem_eq(file.data, expected, sizeof expected);
}
END_TEST

/* Each dtype as np.save writes a (3, 2) array: the values come back in
 * host order, and the stream's floats are those values converted. */
START_TEST(reads_each_dtype) {
    int d = _i;
    char path[512], name[32];
    snprintf(name, sizeof name, "dtype%d.npy", d);
    temp_path(path, sizeof path, name);
    uint64_t values[6];
    fill_values(values, dtypes[d].dtype, 6, (unsigned)d);
    bytes file;
    numpy_header(&file, dtypes[d].descr, false, 2, (const int64_t[]){3, 2});
    put_values(&file, values, dtypes[d].size, 6);
    write_bytes(path, &file);

    nn_array out;
    nn_error err = {0};
    ck_assert_msg(nn_npy_read(path, NULL, &out, &err) == 0, "%s: %s", dtypes[d].descr, err.message);
    ck_assert_int_eq(out.dtype, dtypes[d].dtype);
    ck_assert_int_eq(out.rank, 2);
    ck_assert_int_eq(out.dims[0], 3);
    ck_assert_int_eq(out.dims[1], 2);
    ck_assert_uint_eq(nn_array_bytes(&out), 6 * dtypes[d].size);
    ck_assert_mem_eq(out.data, values, 6 * dtypes[d].size);

    nn_npy_stream *stream = nn_npy_stream_open(path, &err);
    ck_assert_msg(stream != NULL, "%s", err.message);
    ck_assert_int_eq(nn_npy_stream_dtype(stream), dtypes[d].dtype);
    ck_assert_int_eq(nn_npy_stream_rank(stream), 2);
    ck_assert_int_eq(nn_npy_stream_dims(stream)[0], 3);
    ck_assert_int_eq(nn_npy_stream_dims(stream)[1], 2);
    float floats[6];
    ck_assert_int_eq(nn_npy_stream_read(stream, floats, 2, &err), 2);
    ck_assert_int_eq(nn_npy_stream_read(stream, floats + 4, 2, &err), 1);
    ck_assert_int_eq(nn_npy_stream_read(stream, floats, 2, &err), 0);
    for (size_t i = 0; i < 6; i++) {
        float expected = value_as_float(out.data, out.dtype, i);
        ck_assert_msg(memcmp(&floats[i], &expected, sizeof expected) == 0, "%s value %zu: %g, expected %g",
                      dtypes[d].descr, i, floats[i], expected);
    }
    nn_npy_stream_close(stream);
    free(out.data);
}
END_TEST

/* Bytes written by hand: little-endian order, signs, a float64's bits, and
 * bools (numpy stores 0 and 1; any other byte reads as true, 1). */
START_TEST(reads_hand_written_bytes) {
    static const struct {
        const char *descr;
        unsigned char data[16];
        size_t size;
        float expected[4];
        int count;
    } cases[] = {
        {"<i2", {0x00, 0x80, 0xff, 0x7f, 0x01, 0x00, 0xfe, 0xff}, 8, {-32768, 32767, 1, -2}, 4},
        {"<u2", {0x00, 0x80, 0xff, 0xff}, 4, {32768, 65535}, 2},
        {"<f8", {0, 0, 0, 0, 0, 0, 0xf8, 0x3f, 0, 0, 0, 0, 0, 0, 0x24, 0xc0}, 16, {1.5f, -10.0f}, 2},
        {"<f4", {0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x80, 0xff}, 8, {1.5f, -INFINITY}, 2},
        {"<i4", {0xfe, 0xff, 0xff, 0xff, 0x01, 0x02, 0x00, 0x00}, 8, {-2, 513}, 2},
        {"<u8", {0, 0, 0, 0, 0, 0, 0, 0x80, 7, 0, 0, 0, 0, 0, 0, 0}, 16, {9223372036854775808.0f, 7}, 2},
        {"|i1", {0x80, 0xff, 0x7f}, 3, {-128, -1, 127}, 3},
        {"<u1", {0x80, 0xff}, 2, {128, 255}, 2}, /* numpy reads '<u1' as '|u1' */
        {"|b1", {0, 1, 2, 0xff}, 4, {0, 1, 1, 1}, 4},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char path[512], name[32];
        snprintf(name, sizeof name, "hand%zu.npy", c);
        temp_path(path, sizeof path, name);
        bytes file;
        numpy_header(&file, cases[c].descr, false, 1, (const int64_t[]){cases[c].count});
        put(&file, cases[c].data, cases[c].size);
        write_bytes(path, &file);
        nn_array out;
        nn_error err = {0};
        ck_assert_msg(nn_npy_read(path, NULL, &out, &err) == 0, "%s", err.message);
        ck_assert_int_eq(out.rank, 1);
        ck_assert_int_eq(out.dims[0], cases[c].count);
        for (int i = 0; i < cases[c].count; i++)
            ck_assert_msg(value_as_float(out.data, out.dtype, (size_t)i) == cases[c].expected[i], "%s value %d",
                          cases[c].descr, i);
        if (out.dtype == NN_BOOL) ck_assert_mem_eq(out.data, "\0\1\1\1", 4);
        free(out.data);

        nn_npy_stream *stream = nn_npy_stream_open(path, &err);
        ck_assert_msg(stream != NULL, "%s", err.message);
        float floats[4];
        ck_assert_int_eq(nn_npy_stream_read(stream, floats, 4, &err), cases[c].count);
        for (int i = 0; i < cases[c].count; i++) ck_assert(floats[i] == cases[c].expected[i]);
        nn_npy_stream_close(stream);
    }
}
END_TEST

/* Headers numpy or Python may write other than np.save's usual one:
 * versions 2.0 and 3.0, no padding, other key orders and quotes, Python 2's
 * "L", a scalar, an empty array. */
START_TEST(reads_header_variants) {
    static const int32_t values[6] = {1, -2, 3, -4, 5, -6};
    static const struct {
        int major;
        const char *text;
        int rank;
        int64_t dims[2];
        size_t values;
    } cases[] = {
        {2, "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 2), }", 2, {3, 2}, 6},
        {3, "{\"shape\": (6,), \"descr\": \"<i4\", \"fortran_order\": False}\n", 1, {6}, 6},
        {1, "{ 'fortran_order':False,'shape':( 2L , 3L ),'descr':'<i4' }", 2, {2, 3}, 6},
        {1, "{'descr': '<i4', 'fortran_order': False, 'shape': (), }", 0, {0}, 1},
        {1, "{'descr': '<i4', 'fortran_order': False, 'shape': (0, 3), }", 2, {0, 3}, 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char path[512], name[32];
        snprintf(name, sizeof name, "variant%zu.npy", c);
        temp_path(path, sizeof path, name);
        bytes file;
        raw_header(&file, cases[c].major, cases[c].text);
        put_values(&file, values, 4, cases[c].values);
        write_bytes(path, &file);
        nn_array out;
        nn_error err = {0};
        ck_assert_msg(nn_npy_read(path, NULL, &out, &err) == 0, "%s: %s", cases[c].text, err.message);
        ck_assert_int_eq(out.dtype, NN_I32);
        ck_assert_int_eq(out.rank, cases[c].rank);
        for (int i = 0; i < cases[c].rank; i++) ck_assert_int_eq(out.dims[i], cases[c].dims[i]);
        ck_assert_uint_eq(nn_array_bytes(&out), 4 * cases[c].values);
        if (cases[c].values) ck_assert_mem_eq(out.data, values, 4 * cases[c].values);
        free(out.data);
    }
}
END_TEST

/* Ranks 5 and 6 fold their trailing dims into the fourth; a shape tuple
 * as numpy writes it, with the growth padding of the first axis. */
START_TEST(folds_ranks_above_four) {
    static const int64_t shape[6] = {2, 1, 3, 2, 2, 3};
    for (int rank = 5; rank <= 6; rank++) {
        char path[512];
        temp_path(path, sizeof path, rank == 5 ? "rank5.npy" : "rank6.npy");
        size_t count = 1;
        for (int i = 0; i < rank; i++) count *= (size_t)shape[i];
        uint16_t values[72];
        fill_values(values, NN_U16, count, 3);
        bytes file;
        numpy_header(&file, "<u2", false, rank, shape);
        put_values(&file, values, 2, count);
        write_bytes(path, &file);
        nn_array out;
        nn_error err = {0};
        ck_assert_msg(nn_npy_read(path, NULL, &out, &err) == 0, "%s", err.message);
        ck_assert_int_eq(out.rank, 4);
        ck_assert_int_eq(out.dims[0], 2);
        ck_assert_int_eq(out.dims[2], 3);
        ck_assert_int_eq(out.dims[3], rank == 5 ? 4 : 12);
        ck_assert_mem_eq(out.data, values, 2 * count);
        free(out.data);
        nn_npy_stream *stream = nn_npy_stream_open(path, &err);
        ck_assert_msg(stream != NULL, "%s", err.message);
        ck_assert_int_eq(nn_npy_stream_rank(stream), 4);
        ck_assert_int_eq(nn_npy_stream_dims(stream)[3], rank == 5 ? 4 : 12);
        nn_npy_stream_close(stream);
    }
}
END_TEST

/* ------------------------------------------------------------------ .npz */

typedef struct zip_item {
    const char *name;
    const bytes *npy;
    bool bad_crc;
} zip_item;

/* A zip of stored entries, as np.savez writes (without its ZIP64 extras,
 * which test_npz covers). */
static void build_zip(bytes *zip, const zip_item *items, int count) {
    size_t offsets[8];
    zip->size = 0;
    for (int i = 0; i < count; i++) {
        uint32_t crc = (uint32_t)crc32(0, items[i].npy->data, (uInt)items[i].npy->size) ^ (items[i].bad_crc ? 1u : 0u);
        offsets[i] = zip->size;
        put_le(zip, 0x04034b50, 4);
        put_le(zip, 20, 2);
        put_le(zip, 0, 2);
        put_le(zip, 0, 2);
        put_le(zip, 0, 2);
        put_le(zip, 0x21, 2);
        put_le(zip, crc, 4);
        put_le(zip, items[i].npy->size, 4);
        put_le(zip, items[i].npy->size, 4);
        put_le(zip, strlen(items[i].name), 2);
        put_le(zip, 0, 2);
        put(zip, items[i].name, strlen(items[i].name));
        put(zip, items[i].npy->data, items[i].npy->size);
    }
    size_t directory = zip->size;
    for (int i = 0; i < count; i++) {
        uint32_t crc = (uint32_t)crc32(0, items[i].npy->data, (uInt)items[i].npy->size) ^ (items[i].bad_crc ? 1u : 0u);
        put_le(zip, 0x02014b50, 4);
        put_le(zip, 20, 2);
        put_le(zip, 20, 2);
        put_le(zip, 0, 2);
        put_le(zip, 0, 2);
        put_le(zip, 0, 2);
        put_le(zip, 0x21, 2);
        put_le(zip, crc, 4);
        put_le(zip, items[i].npy->size, 4);
        put_le(zip, items[i].npy->size, 4);
        put_le(zip, strlen(items[i].name), 2);
        put_le(zip, 0, 2);
        put_le(zip, 0, 2);
        put_le(zip, 0, 2);
        put_le(zip, 0, 2);
        put_le(zip, 0, 4);
        put_le(zip, offsets[i], 4);
        put(zip, items[i].name, strlen(items[i].name));
    }
    size_t end = zip->size;
    put_le(zip, 0x06054b50, 4);
    put_le(zip, 0, 4);
    put_le(zip, (uint64_t)count, 2);
    put_le(zip, (uint64_t)count, 2);
    put_le(zip, end - directory, 4);
    put_le(zip, directory, 4);
    put_le(zip, 0, 2);
}

static bytes npy_images, npy_labels, npy_weights;
static uint8_t images[4 * 6];
static int64_t labels[4];
static double weights[3];

/* Three arrays: uint8 images (4, 2, 3), int64 labels (4,), float64 (3,). */
static void make_npz_items(zip_item items[3]) {
    fill_values(images, NN_U8, sizeof images, 1);
    fill_values(labels, NN_I64, 4, 2);
    fill_values(weights, NN_F64, 3, 3);
    numpy_header(&npy_images, "|u1", false, 3, (const int64_t[]){4, 2, 3});
    put_values(&npy_images, images, 1, sizeof images);
    numpy_header(&npy_labels, "<i8", false, 1, (const int64_t[]){4});
    put_values(&npy_labels, labels, 8, 4);
    numpy_header(&npy_weights, "<f8", false, 1, (const int64_t[]){3});
    put_values(&npy_weights, weights, 8, 3);
    items[0] = (zip_item){"images.npy", &npy_images, false};
    items[1] = (zip_item){"labels.npy", &npy_labels, false};
    items[2] = (zip_item){"w.npy", &npy_weights, false};
}

static void write_npz(const char *path, const zip_item *items, int count) {
    static bytes zip;
    build_zip(&zip, items, count);
    write_bytes(path, &zip);
}

START_TEST(npz_with_one_array_needs_no_key) {
    char path[512];
    temp_path(path, sizeof path, "one.npz");
    zip_item items[3];
    make_npz_items(items);
    write_npz(path, &items[1], 1);
    const char *keys[] = {NULL, "labels", "labels.npy"};
    for (size_t k = 0; k < 3; k++) {
        nn_array out;
        nn_error err = {0};
        ck_assert_msg(nn_npy_read(path, keys[k], &out, &err) == 0, "%s", err.message);
        ck_assert_str_eq(out.name, "labels");
        ck_assert_int_eq(out.dtype, NN_I64);
        ck_assert_int_eq(out.rank, 1);
        ck_assert_int_eq(out.dims[0], 4);
        ck_assert_mem_eq(out.data, labels, sizeof labels);
        free(out.data);
    }
    expect_read_error(path, "images", "no array 'images'; the archive holds 'labels'", NULL);
}
END_TEST

START_TEST(npz_with_several_arrays_needs_a_key) {
    char path[512];
    temp_path(path, sizeof path, "several.npz");
    zip_item items[3];
    make_npz_items(items);
    write_npz(path, items, 3);
    nn_array out;
    nn_error err = {0};
    ck_assert_msg(nn_npy_read(path, "images", &out, &err) == 0, "%s", err.message);
    ck_assert_int_eq(out.dtype, NN_U8);
    ck_assert_int_eq(out.rank, 3);
    ck_assert_int_eq(out.dims[2], 3);
    ck_assert_mem_eq(out.data, images, sizeof images);
    free(out.data);
    ck_assert_msg(nn_npy_read(path, "w", &out, &err) == 0, "%s", err.message);
    ck_assert_int_eq(out.dtype, NN_F64);
    ck_assert_mem_eq(out.data, weights, sizeof weights);
    free(out.data);

    expect_read_error(path, NULL, "the archive holds 3 arrays ('images', 'labels', 'w'): name the one to read", NULL);
    expect_read_error(path, "image", "no array 'image'; the archive holds 'images', 'labels', 'w'", NULL);
    expect_read_error(path, "w.np", "no array 'w.np'", NULL);
}
END_TEST

/* With a key, only that entry is read: a damaged neighbour goes unnoticed
 * until it is the one asked for. */
START_TEST(npz_reads_only_the_named_entry) {
    char path[512];
    temp_path(path, sizeof path, "damaged.npz");
    zip_item items[3];
    make_npz_items(items);
    items[0].bad_crc = true;
    write_npz(path, items, 3);
    nn_array out;
    nn_error err = {0};
    ck_assert_msg(nn_npy_read(path, "labels", &out, &err) == 0, "%s", err.message);
    ck_assert_mem_eq(out.data, labels, sizeof labels);
    free(out.data);
    expect_read_error(path, "images", "CRC mismatch in entry images.npy", NULL);
}
END_TEST

/* Deflated entries, as np.savez_compressed writes (here by nn_npz_write). */
START_TEST(npz_reads_deflated_entries) {
    char path[512];
    temp_path(path, sizeof path, "compressed.npz");
    float a[6] = {1, 2, 3, 4, 5, 6};
    uint8_t b[3] = {7, 8, 9};
    nn_array arrays[2] = {{"a", NN_F32, 2, {2, 3}, a}, {"b", NN_U8, 1, {3}, b}};
    nn_error err = {0};
    ck_assert_msg(nn_npz_write(path, arrays, 2, &err) == 0, "%s", err.message);
    nn_array out;
    ck_assert_msg(nn_npy_read(path, "b", &out, &err) == 0, "%s", err.message);
    ck_assert_int_eq(out.dtype, NN_U8);
    ck_assert_mem_eq(out.data, b, sizeof b);
    free(out.data);
    ck_assert_msg(nn_npy_read(path, "a", &out, &err) == 0, "%s", err.message);
    ck_assert_int_eq(out.dims[1], 3);
    ck_assert_mem_eq(out.data, a, sizeof a);
    free(out.data);
}
END_TEST

START_TEST(npz_errors_name_path_and_entry) {
    char path[512];
    temp_path(path, sizeof path, "errors.npz");
    write_npz(path, NULL, 0);
    expect_read_error(path, NULL, "the archive holds no arrays, expected one", NULL);
    expect_read_error(path, "x", "no array 'x': the archive holds no arrays", NULL);

    static bytes big_endian;
    numpy_header(&big_endian, ">f4", false, 1, (const int64_t[]){1});
    put(&big_endian, "\0\0\0\0", 4);
    zip_item item = {"x.npy", &big_endian, false};
    write_npz(path, &item, 1);
    expect_read_error(path, NULL, "entry x.npy", "big-endian arrays (dtype '>f4') are not supported");

    /* A key given for a .npy, which holds one unnamed array. */
    char npy_path[512];
    zip_item items[3];
    make_npz_items(items);
    write_bytes(temp_path(npy_path, sizeof npy_path, "keyed.npy"), &npy_images);
    expect_read_error(npy_path, "images", "a .npy file holds one unnamed array: leave out the key 'images'", NULL);
}
END_TEST

/* ---------------------------------------------------------------- errors */

/* A (3, 2) float64 file with its bytes changed by each case. */
typedef struct bad_npy {
    const char *name;
    const char *descr;
    bool fortran;
    long cut;        /* bytes dropped from the end (negative: added) */
    const char *expected;
    const char *also;
} bad_npy;

static const bad_npy bad_npys[] = {
    {"big-endian", ">f8", false, 0, "big-endian arrays (dtype '>f8') are not supported",
     "np.save(path, arr.astype('<f8'))"},
    {"big-endian-i2", ">i2", false, 0, "dtype '>i2'", "arr.astype('<i2')"},
    {"fortran", "<f8", true, 0, "the array is in Fortran order; only C order is supported",
     "np.ascontiguousarray(arr)"},
    {"half", "<f2", false, 0, "dtype '<f2' is not supported; accepted: '<f4' (float32), '<f8' (float64)",
     "'|b1' (bool)"},
    {"complex", "<c16", false, 0, "dtype '<c16' is not supported", NULL},
    {"unicode", "<U1", false, 0, "dtype '<U1' is not supported", NULL},
    {"object", "|O", false, 0, "dtype '|O' is not supported", NULL},
    {"truncated", "<f8", false, 8,
     "truncated: shape (3, 2) of '<f8' needs 48 bytes of data after the 128-byte header, the file has 40", NULL},
    {"no-data", "<f8", false, 48, "needs 48 bytes of data after the 128-byte header, the file has 0", NULL},
    {"cut-header", "<f8", false, 48 + 30, "truncated .npy header: its length says 118 bytes of text, the file has 88",
     NULL},
    {"cut-prefix", "<f8", false, 48 + 119, "truncated .npy header: 9 bytes, expected at least 10", NULL},
    {"no-version", "<f8", false, 48 + 121, "truncated .npy header (no format version)", NULL},
    {"extra", "<f8", false, -8, "8 bytes after the 48 bytes of data that shape (3, 2) of '<f8' needs", NULL},
};
#define BAD_NPYS ((int)(sizeof bad_npys / sizeof bad_npys[0]))

static void make_bad_npy(bytes *file, const bad_npy *bad) {
    double values[7] = {1, 2, 3, 4, 5, 6, 7};
    numpy_header(file, bad->descr, bad->fortran, 2, (const int64_t[]){3, 2});
    put(file, values, sizeof values - 8);
    if (bad->cut < 0) put(file, values, (size_t)-bad->cut);
    else file->size -= (size_t)bad->cut;
}

START_TEST(rejects_bad_npy) {
    const bad_npy *bad = &bad_npys[_i];
    char path[512], name[64];
    snprintf(name, sizeof name, "%s.npy", bad->name);
    temp_path(path, sizeof path, name);
    static bytes file;
    make_bad_npy(&file, bad);
    write_bytes(path, &file);
    expect_read_error(path, NULL, bad->expected, bad->also);
}
END_TEST

/* nn_npy_read of /dev/stdin made a pipe holding file (small enough for
 * the pipe's buffer): a file with no size to check up front. */
static int read_through_pipe(const bytes *file, nn_array *out, nn_error *err) {
    int pipe_ends[2], saved_stdin = dup(STDIN_FILENO);
    ck_assert_int_eq(pipe(pipe_ends), 0);
    ck_assert_int_eq(write(pipe_ends[1], file->data, file->size), (long)file->size);
    close(pipe_ends[1]);
    ck_assert_int_ge(dup2(pipe_ends[0], STDIN_FILENO), 0);
    close(pipe_ends[0]);
    int status = nn_npy_read("/dev/stdin", NULL, out, err);
    dup2(saved_stdin, STDIN_FILENO);
    close(saved_stdin);
    return status;
}

/* The bad files through a pipe: the reader grows towards the header's size
 * and counts what is left, with the same messages. */
START_TEST(rejects_bad_npy_from_a_pipe) {
    static bytes file;
    make_bad_npy(&file, &bad_npys[_i]);
    nn_array out = {.data = NULL};
    nn_error err = {0};
    ck_assert_int_eq(read_through_pipe(&file, &out, &err), -1);
    assert_input_error(&err, "/dev/stdin", bad_npys[_i].expected);
    ck_assert_ptr_null(out.data);
}
END_TEST

/* A good file through a pipe reads like the file. */
START_TEST(reads_npy_from_a_pipe) {
    static bytes file;
    int32_t values[6] = {1, -2, 3, -4, 5, -6};
    numpy_header(&file, "<i4", false, 2, (const int64_t[]){2, 3});
    put_values(&file, values, 4, 6);
    nn_array out;
    nn_error err = {0};
    ck_assert_msg(read_through_pipe(&file, &out, &err) == 0, "%s", err.message);
    ck_assert_int_eq(out.dims[1], 3);
    ck_assert_mem_eq(out.data, values, sizeof values);
    free(out.data);
}
END_TEST

/* A header promising terabytes over a few bytes of data is refused before
 * anything that size is allocated (under ASan such a malloc would fail the
 * test): from its size for a file, by growing as the data comes for a pipe. */
START_TEST(rejects_huge_shape_without_allocating) {
    char path[512];
    temp_path(path, sizeof path, "huge-shape.npy");
    static bytes file;
    numpy_header(&file, "<f8", false, 2, (const int64_t[]){1000000, 1000000});
    put(&file, "\0\0\0\0\0\0\0\0", 8);
    write_bytes(path, &file);
    const char *expected = "truncated: shape (1000000, 1000000) of '<f8' needs 8000000000000 bytes of data after "
                           "the 128-byte header, the file has 8";
    expect_read_error(path, NULL, expected, NULL);
    nn_array out;
    nn_error err = {0};
    ck_assert_int_eq(read_through_pipe(&file, &out, &err), -1);
    assert_input_error(&err, "/dev/stdin", expected);
}
END_TEST

START_TEST(rejects_bad_headers) {
    static const struct {
        int major;
        const char *text;
        const char *expected;
    } cases[] = {
        {4, "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), }", "unsupported .npy format version 4.0"},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (6), }", "bad .npy header: expected \",)\""},
        {1, "{'descr': '<f8', 'fortran_order': False}", "bad .npy header: no 'shape' key"},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), 'x': 1}", "unknown key 'x'"},
        {1, "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (6,)}", "structured dtypes are not supported"},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (-6,)}", "expected a dimension"},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 2)}",
         "shape (4611686018427387904, 2) of '<f8' needs more bytes than this machine can address"},
        /* A zero dim empties the array, but the others must still fit. */
        {1, "{'descr': '|u1', 'fortran_order': False, 'shape': (0, 4294967296, 4294967296)}", "needs more bytes"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char path[512], name[32];
        snprintf(name, sizeof name, "header%zu.npy", c);
        temp_path(path, sizeof path, name);
        bytes file;
        raw_header(&file, cases[c].major, cases[c].text);
        put(&file, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16);
        write_bytes(path, &file);
        expect_read_error(path, NULL, cases[c].expected, NULL);
        nn_error err = {0};
        ck_assert_ptr_null(nn_npy_stream_open(path, &err));
        assert_input_error(&err, path, cases[c].expected);
    }
    /* A version 2.0 length of nearly 4 GiB is a damaged file, not a header
     * to allocate. */
    char path[512];
    temp_path(path, sizeof path, "huge-header.npy");
    bytes file = {.size = 0};
    put(&file, "\x93NUMPY\x02\x00\xf0\xff\xff\xff{'descr'", 19);
    write_bytes(path, &file);
    expect_read_error(path, NULL, ".npy header of 4294967280 bytes, more than the 65536 read", NULL);
}
END_TEST

START_TEST(rejects_other_files) {
    static const struct {
        const char *name;
        const char *content;
        size_t size;
        const char *expected;
    } cases[] = {
        {"empty.npy", "", 0, "empty file, expected a .npy or .npz array"},
        {"png.npy", "\x89PNG\r\n\x1a\n", 8, "not a .npy or .npz array: it looks like a PNG image"},
        {"gz.npy", "\x1f\x8b\x08\x00\x00\x00", 6, "it looks like a gzip file"},
        {"idx.npy", "\x00\x00\x08\x01\x00\x00\x00\x01\x07", 9, "it looks like an IDX data file"},
        {"noise.npy", "\x01\x02\x03\x04\x05\x06\x07", 7,
         "not a .npy or .npz array: the file starts with 01 02 03 04 05 06, expected 93 4e 55 4d 50 59"},
        {"short.npy", "\x93NU", 3, "not a .npy or .npz array"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char path[512];
        temp_path(path, sizeof path, cases[c].name);
        ck_assert_int_eq(testutil_write_file(path, cases[c].content, cases[c].size), 0);
        expect_read_error(path, NULL, cases[c].expected, NULL);
    }
    char path[512], expected[600];
    temp_path(path, sizeof path, "missing.npy");
    snprintf(expected, sizeof expected, "%s: cannot open: No such file or directory", path);
    nn_array out;
    nn_error err = {0};
    ck_assert_int_eq(nn_npy_read(path, NULL, &out, &err), -1);
    ck_assert_str_eq(err.message, expected);
    ck_assert_ptr_null(nn_npy_stream_open(path, &err));
    ck_assert_str_eq(err.message, expected);
}
END_TEST

/* ---------------------------------------------------------------- stream */

static const int stream_chunks[] = {1, 7, 25};

/* Each dtype, 20 items of (2, 3), in chunks of 1, 7 and 25: the floats are
 * the whole read's values converted one by one. */
START_TEST(stream_matches_whole_read) {
    int d = _i / 3, chunk = stream_chunks[_i % 3];
    char path[512], name[64];
    snprintf(name, sizeof name, "stream%d-%d.npy", d, chunk);
    temp_path(path, sizeof path, name);
    uint64_t values[120];
    fill_values(values, dtypes[d].dtype, 120, 40 + (unsigned)d);
    static bytes file;
    numpy_header(&file, dtypes[d].descr, false, 3, (const int64_t[]){20, 2, 3});
    put_values(&file, values, dtypes[d].size, 120);
    write_bytes(path, &file);
    nn_array whole;
    nn_error err = {0};
    ck_assert_msg(nn_npy_read(path, NULL, &whole, &err) == 0, "%s", err.message);

    nn_npy_stream *stream = nn_npy_stream_open(path, &err);
    ck_assert_msg(stream != NULL, "%s", err.message);
    ck_assert_int_eq(nn_npy_stream_rank(stream), 3);
    ck_assert_int_eq(nn_npy_stream_dims(stream)[0], 20);
    float out[120 + 25 * 6];
    int total = 0, calls = 0, got;
    while ((got = nn_npy_stream_read(stream, out + total * 6, chunk, &err)) > 0) {
        ck_assert_int_eq(got, 20 - total < chunk ? 20 - total : chunk);
        total += got;
        calls++;
    }
    ck_assert_msg(got == 0, "%s", err.message);
    ck_assert_int_eq(total, 20);
    ck_assert_int_eq(calls, (20 + chunk - 1) / chunk);
    for (size_t i = 0; i < 120; i++) {
        float expected = value_as_float(whole.data, whole.dtype, i);
        ck_assert_msg(memcmp(&out[i], &expected, sizeof expected) == 0, "%s value %zu: %g, expected %g",
                      dtypes[d].descr, i, out[i], expected);
    }
    ck_assert_int_eq(nn_npy_stream_read(stream, out, chunk, &err), 0);
    nn_npy_stream_close(stream);
    free(whole.data);
}
END_TEST

/* Items larger than the stream's 64 KiB conversion buffer. */
START_TEST(stream_converts_large_items) {
    char path[512];
    temp_path(path, sizeof path, "large.npy");
    enum { ITEMS = 3, VALUES = 10000 };
    size_t count = (size_t)ITEMS * VALUES;
    double *values = malloc(count * sizeof *values);
    fill_values(values, NN_F64, count, 77);
    bytes header;
    numpy_header(&header, "<f8", false, 2, (const int64_t[]){ITEMS, VALUES});
    FILE *file = fopen(path, "wb");
    ck_assert_ptr_nonnull(file);
    ck_assert_uint_eq(fwrite(header.data, 1, header.size, file), header.size);
    ck_assert_uint_eq(fwrite(values, sizeof *values, count, file), count); /* the host is little-endian */
    ck_assert_int_eq(fclose(file), 0);
    nn_error err = {0};
    nn_npy_stream *stream = nn_npy_stream_open(path, &err);
    ck_assert_msg(stream != NULL, "%s", err.message);
    float *out = malloc(count * sizeof *out);
    ck_assert_int_eq(nn_npy_stream_read(stream, out, 2, &err), 2);
    ck_assert_int_eq(nn_npy_stream_read(stream, out + 2 * VALUES, 2, &err), 1);
    ck_assert_int_eq(nn_npy_stream_read(stream, out, 2, &err), 0);
    for (size_t i = 0; i < count; i++) ck_assert_msg(out[i] == (float)values[i], "value %zu", i);
    nn_npy_stream_close(stream);
    free(values);
    free(out);
}
END_TEST

/* Runs with stdin replaced by path ("-" is stdin); restores it after. */
static nn_npy_stream *open_on_stdin(const char *path, int *saved_stdin, nn_error *err) {
    FILE *file = fopen(path, "rb");
    ck_assert_ptr_nonnull(file);
    *saved_stdin = dup(STDIN_FILENO);
    ck_assert_int_ge(dup2(fileno(file), STDIN_FILENO), 0);
    fclose(file);
    return nn_npy_stream_open("-", err);
}

static void restore_stdin(int saved_stdin) {
    dup2(saved_stdin, STDIN_FILENO);
    close(saved_stdin);
}

START_TEST(stream_reads_stdin) {
    char path[512];
    temp_path(path, sizeof path, "stdin.npy");
    uint8_t values[36];
    fill_values(values, NN_U8, 36, 5);
    static bytes file;
    numpy_header(&file, "|u1", false, 2, (const int64_t[]){9, 4});
    put(&file, values, sizeof values);
    write_bytes(path, &file);
    int saved_stdin;
    nn_error err = {0};
    nn_npy_stream *stream = open_on_stdin(path, &saved_stdin, &err);
    ck_assert_msg(stream != NULL, "%s", err.message);
    float out[36];
    ck_assert_int_eq(nn_npy_stream_read(stream, out, 5, &err), 5);
    ck_assert_int_eq(nn_npy_stream_read(stream, out + 20, 5, &err), 4);
    ck_assert_int_eq(nn_npy_stream_read(stream, out, 5, &err), 0);
    for (int i = 0; i < 36; i++) ck_assert_msg(out[i] == (float)values[i], "value %d: %g (bytes are not scaled)", i, out[i]);
    nn_npy_stream_close(stream);
    restore_stdin(saved_stdin);

    /* Errors name <stdin>. */
    char empty[512];
    ck_assert_int_eq(testutil_write_file(temp_path(empty, sizeof empty, "stdin-empty"), "", 0), 0);
    ck_assert_ptr_null(open_on_stdin(empty, &saved_stdin, &err));
    restore_stdin(saved_stdin);
    assert_input_error(&err, "<stdin>", "empty file, expected a .npy array");
}
END_TEST

typedef struct bad_stream {
    const char *name;
    const char *descr;  /* the header promises 5 items of 3 values */
    size_t data_bytes;
    int chunk;
    int good_reads;     /* reads that succeed before the failing one */
    const char *expected;
} bad_stream;

static const bad_stream bad_streams[] = {
    {"inside-item", "|u1", 13, 2, 2, "truncated: the data ends inside item 5 of 5 (1 of its 3 bytes)"},
    {"inside-value", "<f8", 77, 1, 3, "truncated: the data ends inside item 4 of 5 (5 of its 24 bytes)"},
    {"short-count", "<i2", 18, 2, 1, "truncated: the data ends after 3 of the 5 items the header promises"},
    {"no-items", "<i4", 0, 1, 0, "after 0 of the 5 items"},
    {"extra-bytes", "<u4", 62, 10, 0, "2 bytes after the 5 items the header promises"},
};
#define BAD_STREAMS ((int)(sizeof bad_streams / sizeof bad_streams[0]))

START_TEST(stream_rejects_bad_length) {
    const bad_stream *bad = &bad_streams[_i];
    char path[512], name[64];
    snprintf(name, sizeof name, "%s.npy", bad->name);
    temp_path(path, sizeof path, name);
    static bytes file;
    unsigned char data[256];
    memset(data, 0x11, sizeof data);
    numpy_header(&file, bad->descr, false, 2, (const int64_t[]){5, 3});
    put(&file, data, bad->data_bytes);
    write_bytes(path, &file);

    nn_error err = {0};
    nn_npy_stream *stream = nn_npy_stream_open(path, &err);
    ck_assert_msg(stream != NULL, "%s", err.message);
    float out[64];
    for (int i = 0; i < bad->good_reads; i++)
        ck_assert_int_eq(nn_npy_stream_read(stream, out, bad->chunk, &err), bad->chunk);
    ck_assert_int_eq(nn_npy_stream_read(stream, out, bad->chunk, &err), -1);
    assert_input_error(&err, path, bad->expected);
    ck_assert_int_eq(nn_npy_stream_read(stream, out, bad->chunk, &err), -1);
    assert_input_error(&err, path, "the stream failed earlier");
    nn_npy_stream_close(stream);
}
END_TEST

START_TEST(stream_rejects_npz_scalars_and_arguments) {
    char path[512];
    temp_path(path, sizeof path, "stream.npz");
    zip_item items[3];
    make_npz_items(items);
    write_npz(path, items, 1);
    nn_error err = {0};
    ck_assert_ptr_null(nn_npy_stream_open(path, &err));
    assert_input_error(&err, path, "an .npz archive, but predict reads a .npy, not an .npz, from a stream");

    static bytes file;
    raw_header(&file, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': ()}");
    put(&file, "\0\0\0\0", 4);
    write_bytes(temp_path(path, sizeof path, "scalar.npy"), &file);
    ck_assert_ptr_null(nn_npy_stream_open(path, &err));
    assert_input_error(&err, path, "a 0-d array (shape ()), expected items along the first dim");

    numpy_header(&file, ">f4", false, 1, (const int64_t[]){1});
    put(&file, "\0\0\0\0", 4);
    write_bytes(temp_path(path, sizeof path, "stream-big-endian.npy"), &file);
    ck_assert_ptr_null(nn_npy_stream_open(path, &err));
    assert_input_error(&err, path, "big-endian arrays (dtype '>f4') are not supported");

    numpy_header(&file, "<f4", false, 1, (const int64_t[]){1});
    put(&file, "\0\0\0\0", 4);
    write_bytes(temp_path(path, sizeof path, "stream-args.npy"), &file);
    nn_npy_stream *stream = nn_npy_stream_open(path, &err);
    ck_assert_msg(stream != NULL, "%s", err.message);
    float out[1];
    ck_assert_int_eq(nn_npy_stream_read(stream, out, 0, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_RUNTIME);
    ck_assert_msg(strstr(err.message, "max_items must be at least 1, got 0"), "%s", err.message);
    ck_assert_int_eq(nn_npy_stream_read(stream, out, 1, &err), 1);
    nn_npy_stream_close(stream);
}
END_TEST

int main(void) {
    Suite *suite = suite_create("npy");
    TCase *tc = tcase_create("npy");
    tcase_add_unchecked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, header_generator_matches_numpy);
    tcase_add_loop_test(tc, reads_each_dtype, 0, DTYPES);
    tcase_add_test(tc, reads_hand_written_bytes);
    tcase_add_test(tc, reads_header_variants);
    tcase_add_test(tc, folds_ranks_above_four);
    tcase_add_test(tc, npz_with_one_array_needs_no_key);
    tcase_add_test(tc, npz_with_several_arrays_needs_a_key);
    tcase_add_test(tc, npz_reads_only_the_named_entry);
    tcase_add_test(tc, npz_reads_deflated_entries);
    tcase_add_test(tc, npz_errors_name_path_and_entry);
    tcase_add_loop_test(tc, rejects_bad_npy, 0, BAD_NPYS);
    tcase_add_loop_test(tc, rejects_bad_npy_from_a_pipe, 0, BAD_NPYS);
    tcase_add_test(tc, reads_npy_from_a_pipe);
    tcase_add_test(tc, rejects_huge_shape_without_allocating);
    tcase_add_test(tc, rejects_bad_headers);
    tcase_add_test(tc, rejects_other_files);
    tcase_add_loop_test(tc, stream_matches_whole_read, 0, DTYPES * 3);
    tcase_add_test(tc, stream_converts_large_items);
    tcase_add_test(tc, stream_reads_stdin);
    tcase_add_loop_test(tc, stream_rejects_bad_length, 0, BAD_STREAMS);
    tcase_add_test(tc, stream_rejects_npz_scalars_and_arguments);
    suite_add_tcase(suite, tc);
    return testutil_run(suite);
}
