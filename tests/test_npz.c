/* .npz files: round trips through our writer and reader, our writer's bytes
 * checked against what numpy writes, our reader checked against archives
 * built here byte by byte (an independent zip layout, with a naive CRC-32),
 * every kind of damaged input, and the writer's all-or-nothing promise. */
#include <check.h>
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "io/npz.h"
#include "testutil.h"

static char test_dir[256];
static char npz_path[300];

static void setup(void) {
    ck_assert_ptr_nonnull(testutil_tmpdir(test_dir, sizeof test_dir));
    snprintf(npz_path, sizeof npz_path, "%s/weights.npz", test_dir);
}

/* Removes test_dir and what the test left in it (files and empty folders). */
static void teardown(void) {
    DIR *dir = opendir(test_dir);
    if (!dir) return;
    struct dirent *item;
    while ((item = readdir(dir))) {
        if (strcmp(item->d_name, ".") == 0 || strcmp(item->d_name, "..") == 0) continue;
        char path[600];
        snprintf(path, sizeof path, "%s/%s", test_dir, item->d_name);
        if (unlink(path) != 0) rmdir(path);
    }
    closedir(dir);
    rmdir(test_dir);
}

static int compare_names(const void *a, const void *b) { return strcmp(a, b); }

/* Names in test_dir, sorted into one string "a b c" for easy comparison. */
static int list_dir(char *out, size_t size) {
    char names[16][64];
    int count = 0;
    DIR *dir = opendir(test_dir);
    struct dirent *item;
    while (dir && (item = readdir(dir)) && count < 16)
        if (strcmp(item->d_name, ".") && strcmp(item->d_name, ".."))
            snprintf(names[count++], sizeof names[0], "%s", item->d_name);
    if (dir) closedir(dir);
    qsort(names, (size_t)count, sizeof names[0], compare_names);
    out[0] = '\0';
    for (int i = 0; i < count; i++) {
        strncat(out, i ? " " : "", size - strlen(out) - 1);
        strncat(out, names[i], size - strlen(out) - 1);
    }
    return count;
}

static long read_whole_file(const char *path, unsigned char *out, size_t size) {
    FILE *file = fopen(path, "rb");
    if (!file) return -1;
    size_t got = fread(out, 1, size, file);
    fclose(file);
    return (long)got;
}

/* CRC-32 (IEEE, reflected, polynomial 0xEDB88320) bit by bit, independent of zlib. */
static uint32_t naive_crc32(const unsigned char *data, size_t size) {
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < size; i++) {
        crc ^= data[i];
        for (int bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
    }
    return ~crc;
}

/* ---------------------------------------------------- building archives */

typedef struct byte_buffer {
    unsigned char bytes[16384];
    size_t size;
} byte_buffer;

static void put_bytes(byte_buffer *buffer, const void *data, size_t size) {
    ck_assert_uint_le(buffer->size + size, sizeof buffer->bytes);
    memcpy(buffer->bytes + buffer->size, data, size);
    buffer->size += size;
}

static void put_le(byte_buffer *buffer, uint64_t value, int size) {
    for (int i = 0; i < size; i++) {
        unsigned char byte = (unsigned char)(value >> (8 * i));
        put_bytes(buffer, &byte, 1);
    }
}

static void patch_le(byte_buffer *buffer, size_t at, uint64_t value, int size) {
    for (int i = 0; i < size; i++) buffer->bytes[at + (size_t)i] = (unsigned char)(value >> (8 * i));
}

/* A .npy file with the given version and header text, taken as is (no
 * padding added, so unaligned headers are exercised too). */
static void make_npy(byte_buffer *npy, int major, const char *header, const void *data, size_t data_size) {
    npy->size = 0;
    put_bytes(npy, "\x93NUMPY", 6);
    put_le(npy, (uint64_t)major, 1);
    put_le(npy, 0, 1);
    put_le(npy, strlen(header), major == 1 ? 2 : 4);
    put_bytes(npy, header, strlen(header));
    put_bytes(npy, data, data_size);
}

typedef struct test_entry {
    const char *name;
    const byte_buffer *npy;
    const byte_buffer *deflated; /* NULL: stored; else npy (or other bytes) deflated by deflate_bytes */
    size_t declared;             /* the size the headers declare; 0: npy's */
} test_entry;

/* Raw deflate (no zlib header), as zip's method 8 holds it. */
static void deflate_bytes(byte_buffer *out, const void *data, size_t size) {
    z_stream stream = {0};
    ck_assert_int_eq(deflateInit2(&stream, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    stream.next_in = (unsigned char *)data;
    stream.avail_in = (uInt)size;
    stream.next_out = out->bytes;
    stream.avail_out = sizeof out->bytes;
    ck_assert_int_eq(deflate(&stream, Z_FINISH), Z_STREAM_END);
    out->size = stream.total_out;
    deflateEnd(&stream);
}

static uint32_t entry_size(const test_entry *entry) {
    return (uint32_t)(entry->declared ? entry->declared : entry->npy->size);
}

static const byte_buffer *entry_data(const test_entry *entry) {
    return entry->deflated ? entry->deflated : entry->npy;
}

typedef struct zip_options {
    int data_descriptor; /* flag bit 3: zeros in the local header, sizes after the data */
    int local_zip64;     /* a ZIP64 extra in the local header, as np.savez writes */
    int central_zip64;   /* 0xFFFFFFFF in the central directory, values in a ZIP64 extra */
    const char *comment;
    size_t comment_size;
} zip_options;

/* Where things went, so that tests can damage them. */
typedef struct zip_layout {
    size_t local[4], data[4], central[4], directory, end;
} zip_layout;

static void put_local_entry(byte_buffer *zip, const test_entry *entry, zip_options options, zip_layout *layout,
                            int index) {
    uint32_t crc = naive_crc32(entry->npy->bytes, entry->npy->size);
    uint32_t size = entry_size(entry), compressed = (uint32_t)entry_data(entry)->size;
    uint32_t known = options.data_descriptor ? 0 : 1;
    layout->local[index] = zip->size;
    put_le(zip, 0x04034b50, 4);
    put_le(zip, options.local_zip64 ? 45 : 20, 2);
    put_le(zip, options.data_descriptor ? 8 : 0, 2);
    put_le(zip, entry->deflated ? 8 : 0, 2); /* method */
    put_le(zip, 0, 2);       /* time */
    put_le(zip, 0x21, 2);    /* date */
    put_le(zip, crc * known, 4);
    put_le(zip, compressed * known, 4);
    put_le(zip, size * known, 4);
    put_le(zip, strlen(entry->name), 2);
    put_le(zip, options.local_zip64 ? 20 : 0, 2);
    put_bytes(zip, entry->name, strlen(entry->name));
    if (options.local_zip64) {
        put_le(zip, 1, 2);
        put_le(zip, 16, 2);
        put_le(zip, size * known, 8);
        put_le(zip, compressed * known, 8);
    }
    layout->data[index] = zip->size;
    put_bytes(zip, entry_data(entry)->bytes, compressed);
    if (options.data_descriptor) {
        put_le(zip, 0x08074b50, 4);
        put_le(zip, crc, 4);
        put_le(zip, compressed, options.local_zip64 ? 8 : 4);
        put_le(zip, size, options.local_zip64 ? 8 : 4);
    }
}

static void put_central_entry(byte_buffer *zip, const test_entry *entry, zip_options options, zip_layout *layout,
                              int index) {
    uint32_t size = entry_size(entry), compressed = (uint32_t)entry_data(entry)->size, marker = 0xFFFFFFFFu;
    layout->central[index] = zip->size;
    put_le(zip, 0x02014b50, 4);
    put_le(zip, 20, 2);
    put_le(zip, options.central_zip64 ? 45 : 20, 2);
    put_le(zip, options.data_descriptor ? 8 : 0, 2);
    put_le(zip, entry->deflated ? 8 : 0, 2);
    put_le(zip, 0, 2);
    put_le(zip, 0x21, 2);
    put_le(zip, naive_crc32(entry->npy->bytes, entry->npy->size), 4);
    put_le(zip, options.central_zip64 ? marker : compressed, 4);
    put_le(zip, options.central_zip64 ? marker : size, 4);
    put_le(zip, strlen(entry->name), 2);
    put_le(zip, options.central_zip64 ? 28 : 0, 2);
    put_le(zip, 0, 2); /* comment */
    put_le(zip, 0, 2); /* disk */
    put_le(zip, 0, 2); /* internal attributes */
    put_le(zip, 0, 4); /* external attributes */
    put_le(zip, options.central_zip64 ? marker : layout->local[index], 4);
    put_bytes(zip, entry->name, strlen(entry->name));
    if (options.central_zip64) {
        put_le(zip, 1, 2);
        put_le(zip, 24, 2);
        put_le(zip, size, 8);
        put_le(zip, compressed, 8);
        put_le(zip, layout->local[index], 8);
    }
}

/* The end record, after a central directory of count entries that starts
 * at directory and ends here. */
static void put_end_record(byte_buffer *zip, int count, size_t directory, const char *comment, size_t comment_size) {
    put_le(zip, 0x06054b50, 4);
    put_le(zip, 0, 2);
    put_le(zip, 0, 2);
    put_le(zip, (uint64_t)count, 2);
    put_le(zip, (uint64_t)count, 2);
    put_le(zip, zip->size - 12 - directory, 4);
    put_le(zip, directory, 4);
    put_le(zip, comment ? comment_size : 0, 2);
    if (comment) put_bytes(zip, comment, comment_size);
}

static void build_zip(byte_buffer *zip, const test_entry *entries, int count, zip_options options,
                      zip_layout *layout) {
    zip->size = 0;
    for (int i = 0; i < count; i++) put_local_entry(zip, &entries[i], options, layout, i);
    layout->directory = zip->size;
    for (int i = 0; i < count; i++) put_central_entry(zip, &entries[i], options, layout, i);
    layout->end = zip->size;
    put_end_record(zip, count, layout->directory, options.comment, options.comment_size);
}

/* Three arrays in three .npy versions, headers in unusual but valid forms. */
static const float matrix[6] = {1.5f, -2.0f, 0.25f, 3.0f, -0.0f, 1e-30f};
static const int64_t scalar = -9000000000000000001LL;
static const uint8_t vector[5] = {0, 1, 127, 128, 255};
static byte_buffer npy_matrix, npy_scalar, npy_vector;

static void make_sample_entries(test_entry entries[3]) {
    make_npy(&npy_matrix, 1, "{ 'shape' : (2,3) ,'fortran_order':False, \"descr\": '<f4' }  \n", matrix,
             sizeof matrix);
    make_npy(&npy_scalar, 2, "{'descr': '<i8', 'fortran_order': False, 'shape': ()}", &scalar, sizeof scalar);
    make_npy(&npy_vector, 3, "{'fortran_order': False, 'shape': (5L,), 'descr': '|u1', }\n", vector, sizeof vector);
    entries[0] = (test_entry){.name = "0.weight.npy", .npy = &npy_matrix};
    entries[1] = (test_entry){.name = "1.num_batches_tracked.npy", .npy = &npy_scalar};
    entries[2] = (test_entry){.name = "pixels.npy", .npy = &npy_vector};
}

static void write_bytes_to_npz(const byte_buffer *zip) {
    ck_assert_int_eq(testutil_write_file(npz_path, zip->bytes, zip->size), 0);
}

/* Reads npz_path expecting failure; checks the status and that the message
 * starts with the path and holds every given phrase. */
static void expect_read_error(const char *phrase1, const char *phrase2) {
    nn_error err = {0};
    nn_array *arrays = (nn_array *)&err; /* must be reset to NULL */
    size_t count = 99;
    ck_assert_int_eq(nn_npz_read(npz_path, &arrays, &count, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    ck_assert_ptr_null(arrays);
    ck_assert_uint_eq(count, 0);
    ck_assert_msg(strncmp(err.message, npz_path, strlen(npz_path)) == 0, "%s", err.message);
    ck_assert_msg(!phrase1 || strstr(err.message, phrase1), "expected \"%s\" in: %s", phrase1, err.message);
    ck_assert_msg(!phrase2 || strstr(err.message, phrase2), "expected \"%s\" in: %s", phrase2, err.message);
}

static void expect_sample_arrays(const nn_array *arrays, size_t count) {
    ck_assert_uint_eq(count, 3);
    ck_assert_str_eq(arrays[0].name, "0.weight");
    ck_assert_int_eq(arrays[0].dtype, NN_F32);
    ck_assert_int_eq(arrays[0].rank, 2);
    ck_assert_int_eq(arrays[0].dims[0], 2);
    ck_assert_int_eq(arrays[0].dims[1], 3);
    ck_assert_mem_eq(arrays[0].data, matrix, sizeof matrix);
    ck_assert_str_eq(arrays[1].name, "1.num_batches_tracked");
    ck_assert_int_eq(arrays[1].dtype, NN_I64);
    ck_assert_int_eq(arrays[1].rank, 0);
    ck_assert_int_eq(*(const int64_t *)arrays[1].data, scalar);
    ck_assert_str_eq(arrays[2].name, "pixels");
    ck_assert_int_eq(arrays[2].dtype, NN_U8);
    ck_assert_int_eq(arrays[2].rank, 1);
    ck_assert_int_eq(arrays[2].dims[0], 5);
    ck_assert_mem_eq(arrays[2].data, vector, sizeof vector);
}

/* ------------------------------------------------------------ round trips */

/* Element i of a test array: distinct values that use every byte. */
static void fill_pattern(nn_array *array) {
    size_t count = nn_array_count(array);
    for (size_t i = 0; i < count; i++) {
        if (array->dtype == NN_F32) ((float *)array->data)[i] = ((float)i - 3.5f) / 7.0f * (i % 2 ? 1e-20f : 1e20f);
        if (array->dtype == NN_I64) ((int64_t *)array->data)[i] = ((int64_t)i - 5) * 0x0123456789ABCDLL;
        if (array->dtype == NN_U8) ((uint8_t *)array->data)[i] = (uint8_t)(i * 37 + 11);
    }
}

/* Every dtype at every rank 0 to 4 (shapes (), (2,), (2, 3), (2, 3, 1),
 * (2, 3, 1, 2)), an empty array and int64's extremes. */
START_TEST(round_trip_every_dtype_and_rank) {
    static const int64_t shape[NN_MAX_RANK] = {2, 3, 1, 2};
    static const int64_t extremes[4] = {INT64_MIN, -1, 0, INT64_MAX};
    nn_array arrays[3 * (NN_MAX_RANK + 1) + 2];
    size_t written = 0;
    for (int dtype = NN_F32; dtype <= NN_U8; dtype++) {
        for (int rank = 0; rank <= NN_MAX_RANK; rank++) {
            nn_array *array = &arrays[written++];
            *array = (nn_array){.dtype = (nn_dtype)dtype, .rank = rank};
            snprintf(array->name, sizeof array->name, "%d.rank%d", dtype, rank);
            memcpy(array->dims, shape, sizeof shape);
            array->data = malloc(nn_array_bytes(array));
            fill_pattern(array);
        }
    }
    arrays[written++] = (nn_array){"empty", NN_F32, 2, {0, 3}, NULL};
    arrays[written++] = (nn_array){"extremes", NN_I64, 1, {4}, (void *)extremes};
    size_t count;
    nn_error err = {0};
    nn_array *read;
    ck_assert_msg(nn_npz_write(npz_path, arrays, written, &err) == 0, "%s", err.message);
    ck_assert_msg(nn_npz_read(npz_path, &read, &count, &err) == 0, "%s", err.message);
    ck_assert_uint_eq(count, written);
    for (size_t i = 0; i < count; i++) {
        ck_assert_str_eq(read[i].name, arrays[i].name);
        ck_assert_int_eq(read[i].dtype, arrays[i].dtype);
        ck_assert_int_eq(read[i].rank, arrays[i].rank);
        for (int d = 0; d < arrays[i].rank; d++) ck_assert_int_eq(read[i].dims[d], arrays[i].dims[d]);
        ck_assert_ptr_nonnull(read[i].data);
        if (arrays[i].data) ck_assert_mem_eq(read[i].data, arrays[i].data, nn_array_bytes(&arrays[i]));
    }
    nn_arrays_free(read, count);
    for (size_t i = 0; i < written - 2; i++) free(arrays[i].data);
    char names[256];
    ck_assert_int_eq(list_dir(names, sizeof names), 1); /* no temporary file left behind */
    ck_assert_str_eq(names, "weights.npz");
}
END_TEST

START_TEST(round_trip_empty_archive) {
    nn_error err = {0};
    nn_array *read = (nn_array *)&err;
    size_t count = 5;
    ck_assert_msg(nn_npz_write(npz_path, NULL, 0, &err) == 0, "%s", err.message);
    ck_assert_msg(nn_npz_read(npz_path, &read, &count, &err) == 0, "%s", err.message);
    ck_assert_uint_eq(count, 0);
    nn_arrays_free(read, count);
}
END_TEST

/* Our writer's zip, walked here by hand: local header at 0, deflated with
 * method 8, its CRC right by the naive CRC, and the .npy inside byte for byte
 * what np.save writes for float32 (3, 4) (numpy 1.24: header length 118,
 * the data at byte 128). */
START_TEST(writer_output_matches_numpy_layout) {
    float values[12];
    for (int i = 0; i < 12; i++) values[i] = (float)i;
    nn_array array = {"a", NN_F32, 2, {3, 4}, values};
    nn_error err = {0};
    ck_assert_msg(nn_npz_write(npz_path, &array, 1, &err) == 0, "%s", err.message);
    static unsigned char file[4096];
    long size = read_whole_file(npz_path, file, sizeof file);
    ck_assert_int_gt(size, 30);
    ck_assert_mem_eq(file, "PK\3\4", 4);
    ck_assert_int_eq(file[8] | file[9] << 8, 8);
    uint32_t crc = (uint32_t)(file[14] | file[15] << 8 | file[16] << 16 | (uint32_t)file[17] << 24);
    uint32_t compressed = (uint32_t)(file[18] | file[19] << 8 | file[20] << 16 | (uint32_t)file[21] << 24);
    uint32_t plain = (uint32_t)(file[22] | file[23] << 8 | file[24] << 16 | (uint32_t)file[25] << 24);
    int name_length = file[26] | file[27] << 8, extra_length = file[28] | file[29] << 8;
    ck_assert_int_eq(name_length, 5);
    ck_assert_mem_eq(file + 30, "a.npy", 5);
    ck_assert_uint_eq(plain, 128 + sizeof values);

    unsigned char npy[256];
    z_stream stream = {0};
    ck_assert_int_eq(inflateInit2(&stream, -15), Z_OK);
    stream.next_in = file + 30 + name_length + extra_length;
    stream.avail_in = compressed;
    stream.next_out = npy;
    stream.avail_out = sizeof npy;
    ck_assert_int_eq(inflate(&stream, Z_FINISH), Z_STREAM_END);
    ck_assert_uint_eq(stream.total_out, plain);
    inflateEnd(&stream);
    ck_assert_uint_eq(naive_crc32(npy, plain), crc);

    char expected[128];
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }";
    memcpy(expected, "\x93NUMPY\x01\x00\x76\x00", 10);
    memset(expected + 10, ' ', sizeof expected - 10);
    memcpy(expected + 10, dict, strlen(dict));
    expected[127] = '\n';
    ck_assert_mem_eq(npy, expected, sizeof expected);
    ck_assert_mem_eq(npy + 128, values, sizeof values);
}
END_TEST

/* Inflates the first entry of the archive at npz_path into out; returns
 * its size. */
static size_t inflate_first_entry(unsigned char *out, size_t size) {
    static unsigned char file[1 << 16];
    long file_size = read_whole_file(npz_path, file, sizeof file);
    ck_assert_int_gt(file_size, 30);
    size_t start = 30 + (size_t)(file[26] | file[27] << 8) + (size_t)(file[28] | file[29] << 8);
    z_stream stream = {0};
    ck_assert_int_eq(inflateInit2(&stream, -15), Z_OK);
    stream.next_in = file + start;
    stream.avail_in = (uInt)((size_t)file_size - start);
    stream.next_out = out;
    stream.avail_out = (uInt)size;
    ck_assert_int_eq(inflate(&stream, Z_FINISH), Z_STREAM_END);
    size_t produced = stream.total_out;
    inflateEnd(&stream);
    return produced;
}

/* Headers as numpy 1.24 writes them (np.save, or format._write_array_header
 * for shapes too big to allocate): the dict, 21 minus the digits of the first
 * dimension in spare spaces, then padding to a multiple of 64 and '\n'. The
 * header lengths are numpy's; the last shape is one where leaving out the
 * spare spaces would change the length. */
START_TEST(writer_headers_match_numpy) {
    static const struct {
        nn_dtype dtype;
        int rank;
        int64_t dims[4];
        const char *dict;
        int header_length;
    } cases[] = {
        {NN_I64, 0, {0}, "{'descr': '<i8', 'fortran_order': False, 'shape': (), }", 118},
        {NN_U8, 1, {7}, "{'descr': '|u1', 'fortran_order': False, 'shape': (7,), }", 118},
        {NN_U8, 1, {1234567}, "{'descr': '|u1', 'fortran_order': False, 'shape': (1234567,), }", 118},
        {NN_F32, 4, {2, 1, 3, 2}, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1, 3, 2), }", 118},
        {NN_F32, 4, {1000000000000000, 0, 1000000000000000, 1000000000000000},
         "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000000, 0, 1000000000000000, "
         "1000000000000000), }",
         118},
        {NN_F32, 4, {0, 1000000000000000, 1000000000000000, 1000000000000000},
         "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 1000000000000000, 1000000000000000, "
         "1000000000000000), }",
         182},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        nn_array array = {"x", cases[i].dtype, cases[i].rank, {0}, NULL};
        memcpy(array.dims, cases[i].dims, sizeof array.dims);
        array.data = calloc(nn_array_bytes(&array) + 1, 1);
        nn_error err = {0};
        ck_assert_msg(nn_npz_write(npz_path, &array, 1, &err) == 0, "%s", err.message);
        size_t data_size = nn_array_bytes(&array);
        free(array.data);
        static unsigned char npy[1 << 21];
        size_t size = inflate_first_entry(npy, sizeof npy);
        size_t length = (size_t)cases[i].header_length, dict_length = strlen(cases[i].dict);
        ck_assert_mem_eq(npy, "\x93NUMPY\x01\x00", 8);
        ck_assert_int_eq(npy[8] | npy[9] << 8, cases[i].header_length);
        ck_assert_uint_eq(size, 10 + length + data_size);
        ck_assert_mem_eq(npy + 10, cases[i].dict, dict_length);
        for (size_t at = 10 + dict_length; at < 10 + length - 1; at++) ck_assert_int_eq(npy[at], ' ');
        ck_assert_int_eq(npy[10 + length - 1], '\n');
    }
}
END_TEST

/* ------------------------------------------------ reading hand-built zips */

static void check_hand_built(zip_options options) {
    test_entry entries[3];
    byte_buffer zip;
    zip_layout layout;
    make_sample_entries(entries);
    build_zip(&zip, entries, 3, options, &layout);
    write_bytes_to_npz(&zip);
    nn_error err = {0};
    nn_array *arrays;
    size_t count;
    ck_assert_msg(nn_npz_read(npz_path, &arrays, &count, &err) == 0, "%s", err.message);
    expect_sample_arrays(arrays, count);
    nn_arrays_free(arrays, count);
}

START_TEST(reads_stored_archive_built_by_hand) { check_hand_built((zip_options){0}); }
END_TEST

START_TEST(reads_zip64_extra_as_numpy_writes_it) { check_hand_built((zip_options){.local_zip64 = 1}); }
END_TEST

START_TEST(reads_data_descriptors) { check_hand_built((zip_options){.data_descriptor = 1}); }
END_TEST

START_TEST(reads_data_descriptors_with_zip64) {
    check_hand_built((zip_options){.data_descriptor = 1, .local_zip64 = 1, .central_zip64 = 1});
}
END_TEST

START_TEST(reads_past_archive_comment) {
    /* The comment holds an end-record signature whose own comment length
     * (the two zero bytes 20 bytes on) would fit: it must not be taken for
     * the real record, which is the one whose comment ends the file. */
    static const char comment[] = "by hand PK\5\6 sixteen bytes..\0\0 and more text after it";
    check_hand_built((zip_options){.comment = comment, .comment_size = sizeof comment - 1});
}
END_TEST

/* --------------------------------------------------------------- bad input */

static void build_sample_zip(byte_buffer *zip, zip_layout *layout) {
    test_entry entries[3];
    make_sample_entries(entries);
    build_zip(zip, entries, 3, (zip_options){0}, layout);
}

/* One entry "w.npy" holding a .npy with the given header and data. */
static void write_single_npy(const char *header, const void *data, size_t data_size) {
    static byte_buffer npy, zip;
    zip_layout layout;
    make_npy(&npy, 1, header, data, data_size);
    test_entry entry ={.name = "w.npy", .npy = &npy};
    build_zip(&zip, &entry, 1, (zip_options){0}, &layout);
    write_bytes_to_npz(&zip);
}

START_TEST(rejects_missing_file) { expect_read_error("cannot open", NULL); }
END_TEST

START_TEST(rejects_empty_file) {
    ck_assert_int_eq(testutil_write_file(npz_path, "", 0), 0);
    expect_read_error("not a zip file", "empty");
}
END_TEST

START_TEST(rejects_non_zip) {
    const char *text = "This is a plain text file, long enough to hold an end record but it has none.\n";
    ck_assert_int_eq(testutil_write_file(npz_path, text, strlen(text)), 0);
    expect_read_error("not a zip file", NULL);
    /* A bare .npy is not an .npz either. */
    make_npy(&npy_matrix, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }\n", matrix, sizeof matrix);
    ck_assert_int_eq(testutil_write_file(npz_path, npy_matrix.bytes, npy_matrix.size), 0);
    expect_read_error("not a zip file", NULL);
}
END_TEST

/* Every prefix of a valid archive, both a hand-built stored one and one our
 * writer deflated, is refused cleanly (under ASan this also proves that no
 * read goes out of bounds). */
START_TEST(rejects_every_truncation) {
    static byte_buffer zip;
    zip_layout layout;
    build_sample_zip(&zip, &layout);
    for (size_t size = 0; size < zip.size; size++) {
        ck_assert_int_eq(testutil_write_file(npz_path, zip.bytes, size), 0);
        expect_read_error(size < 4 ? NULL : "truncated", NULL);
    }
    nn_array array = {"w", NN_F32, 1, {6}, (void *)matrix};
    nn_error err = {0};
    ck_assert_msg(nn_npz_write(npz_path, &array, 1, &err) == 0, "%s", err.message);
    long size = read_whole_file(npz_path, zip.bytes, sizeof zip.bytes);
    ck_assert_int_gt(size, 100);
    for (long cut = 0; cut < size; cut++) {
        ck_assert_int_eq(testutil_write_file(npz_path, zip.bytes, (size_t)cut), 0);
        expect_read_error(NULL, NULL);
    }
}
END_TEST

/* Bytes missing from the middle while the central directory survives: every
 * offset then points past where it should. */
START_TEST(rejects_middle_cuts) {
    static byte_buffer zip, cut;
    zip_layout layout;
    build_sample_zip(&zip, &layout);
    size_t tail = zip.size - layout.directory;
    for (size_t keep = 0; keep < layout.directory; keep += 7) {
        cut.size = 0;
        put_bytes(&cut, zip.bytes, keep);
        put_bytes(&cut, zip.bytes + layout.directory, tail);
        write_bytes_to_npz(&cut);
        expect_read_error(NULL, NULL);
    }
}
END_TEST

START_TEST(rejects_out_of_range_fields) {
    static byte_buffer zip;
    zip_layout layout;
    struct {
        int entry;     /* -1: the end record */
        size_t field;  /* offset in the record */
        uint64_t value;
        int size;
        size_t also;   /* another field given the same value, 0: none */
        const char *phrase;
    } damage[] = {
        {-1, 16, 0x7FFFFFF0, 4, 0, "truncated"},           /* central directory offset */
        {-1, 12, 0x7FFFFFF0, 4, 0, "truncated"},           /* central directory size */
        {-1, 10, 4, 2, 8, "damaged central directory"},    /* one entry more than there is */
        {-1, 10, 5, 2, 8, "5 entries cannot fit in its 185 bytes"},
        {-1, 10, 0xFFFF, 2, 8, "ZIP64"},
        {-1, 10, 2, 2, 0, "multi-disk"},
        {1, 42, 0x7FFFFFF0, 4, 0, "truncated"},            /* local header offset */
        {1, 42, 3, 4, 0, "no local file header"},
        {1, 42, 0, 4, 0, "overlaps entry 0.weight.npy"},   /* entry 0's header */
        {1, 20, 0x100000, 4, 0, "compressed size"},        /* stored sizes disagree */
        {2, 20, 0x7FFFFFF0, 4, 24, "truncated"},           /* both sizes past the end */
        {2, 28, 0xFFFF, 2, 0, "damaged central directory"}, /* name length */
        {0, 0, 0x12345678, 4, 0, "damaged central directory"}, /* signature */
        {0, 8, 1, 2, 0, "encrypted"},
        {0, 8, 0x40, 2, 0, "encrypted"},                    /* strong encryption */
        {0, 8, 0x2000, 2, 0, "encrypted"},                  /* masked local headers */
    };
    for (size_t i = 0; i < sizeof damage / sizeof *damage; i++) {
        build_sample_zip(&zip, &layout);
        size_t base = damage[i].entry < 0 ? layout.end : layout.central[damage[i].entry];
        patch_le(&zip, base + damage[i].field, damage[i].value, damage[i].size);
        if (damage[i].also) patch_le(&zip, base + damage[i].also, damage[i].value, damage[i].size);
        write_bytes_to_npz(&zip);
        expect_read_error(damage[i].phrase, NULL);
    }
}
END_TEST

START_TEST(rejects_crc_mismatch) {
    static byte_buffer zip;
    zip_layout layout;
    build_sample_zip(&zip, &layout);
    zip.bytes[layout.data[0] + npy_matrix.size - 1] ^= 0x40;     /* a bit of the last float */
    write_bytes_to_npz(&zip);
    expect_read_error("CRC mismatch in entry 0.weight.npy", NULL);
}
END_TEST

/* Damage inside deflated data is caught by inflate or by the CRC: here
 * flipping a bit yields a malformed stream, or data of the wrong length, or
 * data of the right length whose CRC differs. */
START_TEST(rejects_damaged_deflate_data) {
    float values[64];
    for (int i = 0; i < 64; i++) values[i] = (float)i;
    nn_array array = {"w", NN_F32, 1, {64}, values};
    nn_error err = {0};
    ck_assert_msg(nn_npz_write(npz_path, &array, 1, &err) == 0, "%s", err.message);
    static unsigned char file[4096];
    long size = read_whole_file(npz_path, file, sizeof file);
    long compressed = file[18] | file[19] << 8;
    /* Not the last byte: its high bits may be padding after the final
     * block, and flipping those changes nothing. */
    for (long at = 35; at < 35 + compressed - 1; at++) {
        file[at] ^= 0x10;
        ck_assert_int_eq(testutil_write_file(npz_path, file, (size_t)size), 0);
        expect_read_error("entry w.npy", NULL);
        file[at] ^= 0x10;
    }
}
END_TEST

/* The central directory's sizes of a deflated entry, off by a few bytes. */
START_TEST(rejects_wrong_declared_sizes) {
    nn_array array = {"w", NN_F32, 1, {6}, (void *)matrix};
    nn_error err = {0};
    ck_assert_msg(nn_npz_write(npz_path, &array, 1, &err) == 0, "%s", err.message);
    static unsigned char file[4096];
    long size = read_whole_file(npz_path, file, sizeof file);
    ck_assert_int_gt(size, 22);
    unsigned char *end = file + size - 22, *central = file + (end[16] | end[17] << 8);
    ck_assert_mem_eq(central, "PK\1\2", 4);
    struct {
        size_t field;
        int change;
        const char *phrase;
    } cases[] = {{24, -1, "needs 24 bytes of data, the entry holds 23"},
                 {24, +1, "fewer than its declared"}, /* the stream ends inside the .npy read first */
                 {20, -3, "truncated deflate data"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        central[cases[i].field] = (unsigned char)(central[cases[i].field] + cases[i].change);
        ck_assert_int_eq(testutil_write_file(npz_path, file, (size_t)size), 0);
        expect_read_error("entry w.npy", cases[i].phrase);
        central[cases[i].field] = (unsigned char)(central[cases[i].field] - cases[i].change);
    }
}
END_TEST

/* The stream inflates to more or fewer bytes than the sizes declare, while
 * the .npy header agrees with the declared size: inflating stops one byte
 * past it, or finds the end too soon. */
START_TEST(rejects_streams_longer_or_shorter_than_declared) {
    static byte_buffer npy, other, deflated, zip;
    zip_layout layout;
    make_npy(&npy, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }\n", matrix, sizeof matrix);
    struct {
        size_t other_size; /* what the stream holds: npy's first bytes, or npy and more */
        const char *phrase;
    } cases[] = {{npy.size, NULL}, {npy.size + 1, "inflates to more than its declared"},
                 {npy.size - 1, "fewer than its declared"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        other = npy;
        other.bytes[npy.size] = 7;
        deflate_bytes(&deflated, other.bytes, cases[i].other_size);
        test_entry entry = {.name = "w.npy", .npy = &npy, .deflated = &deflated, .declared = npy.size};
        build_zip(&zip, &entry, 1, (zip_options){0}, &layout);
        write_bytes_to_npz(&zip);
        if (cases[i].phrase) {
            expect_read_error("entry w.npy", cases[i].phrase);
            continue;
        }
        nn_error err = {0};
        nn_array array;
        ck_assert_msg(nn_npz_read_key(npz_path, "w", &array, &err) == 0, "%s", err.message);
        ck_assert_mem_eq(array.data, matrix, sizeof matrix);
        free(array.data);
    }
}
END_TEST

/* A deflated entry may declare at most 1032 bytes per compressed byte
 * (deflate's bound), and the .npy header bounds it exactly. */
START_TEST(rejects_sizes_the_data_cannot_give) {
    static byte_buffer npy, deflated, zip;
    zip_layout layout;
    make_npy(&npy, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }\n", matrix, sizeof matrix);
    deflate_bytes(&deflated, npy.bytes, npy.size);
    size_t limit = deflated.size * 1032 + 1031;
    test_entry entry = {.name = "w.npy", .npy = &npy, .deflated = &deflated, .declared = limit + 1};
    build_zip(&zip, &entry, 1, (zip_options){0}, &layout);
    write_bytes_to_npz(&zip);
    expect_read_error("entry w.npy: size", "cannot come from");
    entry.declared = limit; /* possible for deflate, but not for this stream */
    build_zip(&zip, &entry, 1, (zip_options){0}, &layout);
    write_bytes_to_npz(&zip);
    expect_read_error("entry w.npy", "fewer than its declared");
    /* A header length beyond what is read, whatever the entry holds. */
    make_npy(&npy, 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }\n", matrix, sizeof matrix);
    patch_le(&npy, 8, 0x7FFFFFFF, 4);
    entry = (test_entry){.name = "w.npy", .npy = &npy};
    build_zip(&zip, &entry, 1, (zip_options){0}, &layout);
    write_bytes_to_npz(&zip);
    expect_read_error("entry w.npy", ".npy header of 2147483647 bytes, more than the 65536 read");
}
END_TEST

/* Five entries that each declare almost 4 GiB (and enough compressed bytes
 * for it, in a sparse file) add up past the 16 GiB limit; four do not, and
 * fail later, on their missing local headers. */
START_TEST(rejects_sizes_over_the_total_limit) {
    for (int count = 4; count <= 5; count++) {
        static byte_buffer zip;
        const uint64_t size = 0xFFFFFFFEu, compressed = 0x410000, directory = 0x500000;
        zip.size = 0;
        for (int i = 0; i < count; i++) {
            char name[16];
            snprintf(name, sizeof name, "%d.npy", i);
            put_le(&zip, 0x02014b50, 4);
            put_le(&zip, 20, 2);
            put_le(&zip, 20, 2);
            put_le(&zip, 0, 2);
            put_le(&zip, 8, 2);
            put_le(&zip, 0, 4);
            put_le(&zip, 0, 4);
            put_le(&zip, compressed, 4);
            put_le(&zip, size, 4);
            put_le(&zip, strlen(name), 2);
            put_le(&zip, 0, 8);
            put_le(&zip, 0, 8); /* external attributes, local header offset */
            put_bytes(&zip, name, strlen(name));
        }
        put_le(&zip, 0x06054b50, 4);
        put_le(&zip, 0, 4);
        put_le(&zip, (uint64_t)count, 2);
        put_le(&zip, (uint64_t)count, 2);
        put_le(&zip, zip.size - 12, 4);
        put_le(&zip, directory, 4);
        put_le(&zip, 0, 2);
        FILE *file = fopen(npz_path, "wb");
        ck_assert_ptr_nonnull(file);
        ck_assert_int_eq(fseek(file, (long)directory, SEEK_SET), 0);
        ck_assert_uint_eq(fwrite(zip.bytes, 1, zip.size, file), zip.size);
        ck_assert_int_eq(fclose(file), 0);
        if (count == 4) expect_read_error("entry 0.npy", "no local file header");
        else expect_read_error("the 5 entries declare 21474836470 bytes in all", "limit of 17179869184 (16 GiB)");
    }
}
END_TEST

/* The classic overlap bomb: one local header and its data, and many
 * central directory entries under their own names, all pointing at it. */
START_TEST(rejects_entries_sharing_a_local_header) {
    static byte_buffer npy, zip;
    zip_layout layout;
    make_npy(&npy, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }\n", matrix, sizeof matrix);
    test_entry entry ={.name = "k0.npy", .npy = &npy};
    zip.size = 0;
    put_local_entry(&zip, &entry, (zip_options){0}, &layout, 0);
    size_t directory = zip.size;
    char names[50][16];
    for (int i = 0; i < 50; i++) {
        snprintf(names[i], sizeof names[i], "k%d.npy", i);
        entry.name = names[i];
        put_central_entry(&zip, &entry, (zip_options){0}, &layout, 0);
    }
    put_end_record(&zip, 50, directory, NULL, 0);
    write_bytes_to_npz(&zip);
    expect_read_error("entry k1.npy: overlaps entry k0.npy: it starts at offset 0, inside that entry's bytes 0 to",
                      "zip bomb");
    nn_npz *npz = (nn_npz *)&zip;
    nn_error err = {0};
    ck_assert_int_eq(nn_npz_open(&npz, npz_path, &err), -1);
    ck_assert_ptr_null(npz);
}
END_TEST

/* An entry whose data runs into the next entry (or the central directory)
 * by a single byte is refused; ending right where the next starts is fine
 * (every other archive here). */
START_TEST(rejects_entries_overlapping_by_one_byte) {
    static byte_buffer zip;
    zip_layout layout;
    build_sample_zip(&zip, &layout);
    uint64_t spans = layout.local[1] - layout.data[0] + 1;
    patch_le(&zip, layout.central[0] + 20, spans, 4);
    patch_le(&zip, layout.central[0] + 24, spans, 4);
    write_bytes_to_npz(&zip);
    char phrase[160];
    snprintf(phrase, sizeof phrase, "entry 1.num_batches_tracked.npy: overlaps entry 0.weight.npy: it starts at offset "
             "%zu, inside that entry's bytes 0 to %zu", layout.local[1], layout.local[1] + 1);
    expect_read_error(phrase, NULL);
    build_sample_zip(&zip, &layout);
    spans = layout.directory - layout.data[2] + 1;
    patch_le(&zip, layout.central[2] + 20, spans, 4);
    patch_le(&zip, layout.central[2] + 24, spans, 4);
    write_bytes_to_npz(&zip);
    snprintf(phrase, sizeof phrase, "entry pixels.npy: its bytes %zu to %zu do not end before the central directory at offset %zu",
             layout.local[2], layout.directory + 1, layout.directory);
    expect_read_error(phrase, NULL);
    /* Not overlapping, but naming another entry. */
    build_sample_zip(&zip, &layout);
    zip.bytes[layout.local[1] + 30] = '7';
    write_bytes_to_npz(&zip);
    expect_read_error("entry 1.num_batches_tracked.npy: local file header names a different entry", NULL);
}
END_TEST

/* Entries are inflated only when asked for: with the last one damaged, the
 * others still read, through nn_npz_read_key and an open archive. */
START_TEST(reads_only_the_entries_asked_for) {
    static byte_buffer zip;
    zip_layout layout;
    build_sample_zip(&zip, &layout);
    zip.bytes[layout.data[2] + npy_vector.size - 1] ^= 1;
    write_bytes_to_npz(&zip);
    expect_read_error("CRC mismatch in entry pixels.npy", NULL);
    nn_error err = {0};
    nn_array array;
    ck_assert_msg(nn_npz_read_key(npz_path, "0.weight", &array, &err) == 0, "%s", err.message);
    ck_assert_mem_eq(array.data, matrix, sizeof matrix);
    free(array.data);
    nn_npz *npz = NULL;
    ck_assert_msg(nn_npz_open(&npz, npz_path, &err) == 0, "%s", err.message);
    ck_assert_uint_eq(nn_npz_count(npz), 3);
    ck_assert_str_eq(nn_npz_key(npz, 1), "1.num_batches_tracked");
    ck_assert_ptr_null(nn_npz_key(npz, 3));
    size_t index = 99;
    ck_assert(nn_npz_find(npz, "pixels.npy", &index));
    ck_assert_uint_eq(index, 2);
    ck_assert(nn_npz_find(npz, "pixels", &index));
    ck_assert_uint_eq(index, 2);
    ck_assert(!nn_npz_find(npz, "pixel", &index));
    /* The header alone: the damaged data is not looked at. */
    ck_assert_msg(nn_npz_read_header(npz, 2, &array, &err) == 0, "%s", err.message);
    ck_assert_str_eq(array.name, "pixels");
    ck_assert_int_eq(array.dtype, NN_U8);
    ck_assert_int_eq(array.rank, 1);
    ck_assert_int_eq(array.dims[0], 5);
    ck_assert_ptr_null(array.data);
    ck_assert_int_eq(nn_npz_read_entry(npz, 2, &array, &err), -1);
    ck_assert_msg(strstr(err.message, "CRC mismatch in entry pixels.npy"), "%s", err.message);
    ck_assert_ptr_null(array.data);
    ck_assert_msg(nn_npz_read_entry(npz, 1, &array, &err) == 0, "%s", err.message);
    ck_assert_str_eq(array.name, "1.num_batches_tracked");
    ck_assert_int_eq(*(const int64_t *)array.data, scalar);
    free(array.data);
    ck_assert_int_eq(nn_npz_read_entry(npz, 3, &array, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_RUNTIME);
    nn_npz_close(npz);
}
END_TEST

START_TEST(rejects_unsupported_method) {
    static byte_buffer zip;
    zip_layout layout;
    build_sample_zip(&zip, &layout);
    patch_le(&zip, layout.central[1] + 10, 12, 2); /* bzip2 */
    write_bytes_to_npz(&zip);
    expect_read_error("unsupported compression method 12", "1.num_batches_tracked.npy");
}
END_TEST

START_TEST(rejects_bad_npy_magic) {
    static byte_buffer zip;
    zip_layout layout;
    build_sample_zip(&zip, &layout);
    zip.bytes[layout.data[2] + 1] = 'n';
    patch_le(&zip, layout.central[2] + 16, naive_crc32(zip.bytes + layout.data[2], npy_vector.size), 4);
    write_bytes_to_npz(&zip);
    expect_read_error("pixels.npy", "magic");
}
END_TEST

START_TEST(rejects_unsupported_npy_version) {
    static byte_buffer zip;
    zip_layout layout;
    build_sample_zip(&zip, &layout);
    zip.bytes[layout.data[2] + 6] = 4;
    patch_le(&zip, layout.central[2] + 16, naive_crc32(zip.bytes + layout.data[2], npy_vector.size), 4);
    write_bytes_to_npz(&zip);
    expect_read_error("pixels.npy", "version 4.0");
}
END_TEST

/* The dtypes the data reader added are read too; others name themselves
 * and list what is accepted. */
START_TEST(rejects_unsupported_dtypes) {
    const char *dtypes[] = {"<f2", "<c8", "<U1", "|O", "|V8", "=f4", "|f4", "<b2", "f4"};
    double data[4] = {0};
    for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++) {
        char header[128];
        snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': (2,), }\n", dtypes[i]);
        write_single_npy(header, data, 16);
        char found[32];
        snprintf(found, sizeof found, "dtype '%s' is not supported", dtypes[i]);
        expect_read_error(found, "w.npy");
        expect_read_error("'<f4' (float32)", "'|b1' (bool)");
    }
}
END_TEST

/* Big-endian arrays say how to save them little-endian. */
START_TEST(rejects_big_endian) {
    const char *dtypes[][2] = {{">f4", "'<f4'"}, {">f8", "'<f8'"}, {">i2", "'<i2'"}, {">u8", "'<u8'"}};
    double data[4] = {0};
    for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++) {
        char header[128];
        snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': (2,), }\n", dtypes[i][0]);
        write_single_npy(header, data, 16); /* the dtype is refused before the size is looked at */
        expect_read_error("big-endian arrays", "w.npy");
        expect_read_error(dtypes[i][1], "astype");
    }
}
END_TEST

/* np.save's headers for the dtypes beyond the writer's three, and a byte
 * type under any byte-order mark (numpy reads '<u1' as '|u1'), read in host
 * order; a rank above 4 folds its trailing dims into the last. */
START_TEST(reads_data_dtypes_and_folds_ranks) {
    static const struct {
        const char *descr;
        nn_dtype dtype;
        unsigned char bytes[8];
        size_t size;
    } cases[] = {
        {"<f8", NN_F64, {0, 0, 0, 0, 0, 0, 0xf8, 0x3f}, 8},  /* 1.5 */
        {"|i1", NN_I8, {0xfe}, 1},
        {"<i1", NN_I8, {0x80}, 1},
        {">u1", NN_U8, {0xfd}, 1},
        {"<i2", NN_I16, {0x02, 0x80}, 2},
        {"<u2", NN_U16, {0x02, 0x80}, 2},
        {"<i4", NN_I32, {0xff, 0xff, 0xff, 0xff}, 4},
        {"<u4", NN_U32, {0x04, 0x03, 0x02, 0x81}, 4},
        {"<u8", NN_U64, {1, 2, 3, 4, 5, 6, 7, 0x88}, 8},
        {"|b1", NN_BOOL, {0x01}, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char header[128];
        snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': (1,), }\n", cases[i].descr);
        write_single_npy(header, cases[i].bytes, cases[i].size);
        nn_error err = {0};
        nn_array *arrays;
        size_t count;
        ck_assert_msg(nn_npz_read(npz_path, &arrays, &count, &err) == 0, "%s: %s", cases[i].descr, err.message);
        ck_assert_uint_eq(count, 1);
        ck_assert_int_eq(arrays[0].dtype, cases[i].dtype);
        ck_assert_uint_eq(nn_array_bytes(&arrays[0]), cases[i].size);
        uint64_t expected = 0, got = 0;
        for (size_t b = cases[i].size; b-- > 0;) expected = expected << 8 | cases[i].bytes[b];
        if (cases[i].size == 1) got = *(const uint8_t *)arrays[0].data;
        if (cases[i].size == 2) got = *(const uint16_t *)arrays[0].data;
        if (cases[i].size == 4) got = *(const uint32_t *)arrays[0].data;
        if (cases[i].size == 8) got = *(const uint64_t *)arrays[0].data;
        ck_assert_uint_eq(got, expected);
        nn_arrays_free(arrays, count);
    }
    float values[2 * 3 * 1 * 2 * 2];
    for (int i = 0; i < 24; i++) values[i] = (float)i;
    write_single_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 1, 2, 2), }\n", values, sizeof values);
    nn_error err = {0};
    nn_array *arrays;
    size_t count;
    ck_assert_msg(nn_npz_read(npz_path, &arrays, &count, &err) == 0, "%s", err.message);
    ck_assert_int_eq(arrays[0].rank, 4);
    ck_assert_int_eq(arrays[0].dims[0], 2);
    ck_assert_int_eq(arrays[0].dims[1], 3);
    ck_assert_int_eq(arrays[0].dims[2], 1);
    ck_assert_int_eq(arrays[0].dims[3], 4);
    ck_assert_mem_eq(arrays[0].data, values, sizeof values);
    nn_arrays_free(arrays, count);
}
END_TEST

START_TEST(rejects_fortran_order) {
    write_single_npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }\n", matrix, sizeof matrix);
    expect_read_error("Fortran order", "w.npy");
}
END_TEST

START_TEST(rejects_shape_length_mismatch) {
    write_single_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", matrix, sizeof matrix - 4);
    expect_read_error("(2, 3)", "24 bytes");
    write_single_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }\n", matrix, sizeof matrix);
    expect_read_error("w.npy", "4 bytes");
    /* A product that overflows 64 bits must not wrap around to the length. */
    write_single_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 2), }\n", matrix, 0);
    expect_read_error("w.npy", "needs");
}
END_TEST

START_TEST(rejects_malformed_headers) {
    const char *headers[] = {
        "{'descr': '<f4', 'fortran_order': False, 'shape': (6), }",        /* an int, not a tuple */
        "{'descr': '<f4', 'fortran_order': False}",                        /* no shape */
        "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'x': 1}", /* unknown key */
        "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}",
        "{'descr': '<f4', 'fortran_order': 0, 'shape': (6,)}",
        "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,)}",
        NULL, /* 65 dims: made below */
        "{'descr': '<f4', 'fortran_order': False, 'shape': (-6,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)} trailing",
        "{'descr': '<f4' 'fortran_order': False, 'shape': (6,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)",
        "",
    };
    /* numpy allows 64 dims (32 before numpy 2): one more is refused. */
    char many_dims[512];
    size_t used = (size_t)snprintf(many_dims, sizeof many_dims, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < 65; i++) used += (size_t)snprintf(many_dims + used, sizeof many_dims - used, "1, ");
    snprintf(many_dims + used, sizeof many_dims - used, ")}");
    headers[6] = many_dims;
    for (size_t i = 0; i < sizeof headers / sizeof *headers; i++) {
        write_single_npy(headers[i], matrix, sizeof matrix);
        expect_read_error("w.npy", NULL);
    }
    write_single_npy(headers[0], matrix, sizeof matrix);
    expect_read_error("shape", NULL);
    write_single_npy(headers[6], matrix, sizeof matrix);
    expect_read_error("more than 64 dimensions", NULL);
}
END_TEST

START_TEST(rejects_duplicate_keys) {
    static byte_buffer zip;
    zip_layout layout;
    test_entry entries[3];
    make_sample_entries(entries);
    entries[2].name = entries[0].name;
    entries[2].npy = entries[0].npy;
    build_zip(&zip, entries, 3, (zip_options){0}, &layout);
    write_bytes_to_npz(&zip);
    expect_read_error("duplicate key '0.weight'", NULL);
}
END_TEST

START_TEST(rejects_names_that_are_not_arrays) {
    const char *names[] = {"weights.txt", ".npy", "npy",
                           "a_key_much_longer_than_the_sixty_three_characters_that_nnseq_keeps.npy"};
    static byte_buffer zip;
    zip_layout layout;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        make_npy(&npy_vector, 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }", vector, 5);
        test_entry entry ={.name = names[i], .npy = &npy_vector};
        build_zip(&zip, &entry, 1, (zip_options){0}, &layout);
        write_bytes_to_npz(&zip);
        expect_read_error(names[i], NULL);
    }
    test_entry entry ={.name = "aXb.npy", .npy = &npy_vector};
    build_zip(&zip, &entry, 1, (zip_options){0}, &layout);
    zip.bytes[layout.local[0] + 31] = zip.bytes[layout.central[0] + 47] = '\0';
    write_bytes_to_npz(&zip);
    expect_read_error("entry a: a NUL byte in its name", NULL);
}
END_TEST

/* ---------------------------------------------------------------- fuzzing */

static uint64_t next_random(uint64_t *state) { /* splitmix64 */
    uint64_t z = (*state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

/* Random damage to whole archives, hand-built stored ones (with data
 * descriptors and ZIP64 extras, or without) and our writer's deflated one:
 * a few bytes set to random or boundary values, the end cut off, or bytes
 * appended. Every read either fails as bad input naming the file, or gives
 * back exactly the arrays written (zip has fields that nobody reads); ASan
 * sees any read out of bounds or leak, and the limits keep every
 * allocation within what the small file can give. */
START_TEST(fuzz_archive_bytes) {
    static const unsigned char boundary[] = {0, 1, 0x7F, 0x80, 0xFE, 0xFF};
    static byte_buffer archives[3], damaged;
    zip_layout layout;
    test_entry entries[3];
    make_sample_entries(entries);
    build_zip(&archives[0], entries, 3, (zip_options){0}, &layout);
    build_zip(&archives[1], entries, 3, (zip_options){.data_descriptor = 1, .local_zip64 = 1, .central_zip64 = 1},
              &layout);
    nn_array sample[3] = {{"0.weight", NN_F32, 2, {2, 3}, (void *)matrix},
                          {"1.num_batches_tracked", NN_I64, 0, {0}, (void *)&scalar},
                          {"pixels", NN_U8, 1, {5}, (void *)vector}};
    nn_error err = {0};
    ck_assert_msg(nn_npz_write(npz_path, sample, 3, &err) == 0, "%s", err.message);
    long written = read_whole_file(npz_path, archives[2].bytes, sizeof archives[2].bytes);
    ck_assert_int_gt(written, 0);
    archives[2].size = (size_t)written;
    uint64_t state = 20261201;
    int failed = 0, iterations = 0;
    for (int a = 0; a < 3; a++)
        for (int i = 0; i < 1000; i++, iterations++) {
            const byte_buffer *archive = &archives[a];
            damaged = *archive;
            uint64_t kind = next_random(&state) % 6;
            if (kind == 0) damaged.size = 1 + next_random(&state) % archive->size;
            else if (kind == 1)
                for (uint64_t n = 1 + next_random(&state) % 8; n > 0; n--)
                    damaged.bytes[damaged.size++] = (unsigned char)next_random(&state);
            else
                for (uint64_t n = 1 + next_random(&state) % 4; n > 0; n--) {
                    uint64_t r = next_random(&state);
                    damaged.bytes[r % archive->size] =
                        (r >> 32) % 2 ? (unsigned char)(r >> 40) : boundary[(r >> 40) % sizeof boundary];
                }
            write_bytes_to_npz(&damaged);
            nn_array *arrays;
            size_t count;
            if (nn_npz_read(npz_path, &arrays, &count, &err) == 0) {
                expect_sample_arrays(arrays, count);
                nn_arrays_free(arrays, count);
                continue;
            }
            ck_assert_msg(err.status == NN_ERR_INPUT && !strncmp(err.message, npz_path, strlen(npz_path)),
                          "archive %d, iteration %d: %s", a, i, err.message);
            failed++;
        }
    ck_assert_int_gt(failed, iterations / 2);
}
END_TEST

/* ------------------------------------------------------ writer's promises */

static const char old_content[] = "the previous good file";

static void write_old_file(void) {
    ck_assert_int_eq(testutil_write_file(npz_path, old_content, sizeof old_content), 0);
}

static void expect_old_file_alone(void) {
    char names[256], content[64];
    ck_assert_int_eq(list_dir(names, sizeof names), 1);
    ck_assert_str_eq(names, "weights.npz");
    ck_assert_int_eq(read_whole_file(npz_path, (unsigned char *)content, sizeof content), (long)sizeof old_content);
    ck_assert_str_eq(content, old_content);
}

START_TEST(writer_replaces_existing_file) {
    write_old_file();
    nn_array array = {"w", NN_U8, 1, {5}, (void *)vector};
    nn_error err = {0};
    ck_assert_msg(nn_npz_write(npz_path, &array, 1, &err) == 0, "%s", err.message);
    nn_array *arrays;
    size_t count;
    ck_assert_msg(nn_npz_read(npz_path, &arrays, &count, &err) == 0, "%s", err.message);
    ck_assert_uint_eq(count, 1);
    ck_assert_mem_eq(arrays[0].data, vector, sizeof vector);
    nn_arrays_free(arrays, count);
    char names[256];
    ck_assert_int_eq(list_dir(names, sizeof names), 1);
}
END_TEST

START_TEST(writer_fails_in_missing_directory) {
    char path[400], names[256];
    snprintf(path, sizeof path, "%s/missing/weights.npz", test_dir);
    nn_array array = {"w", NN_U8, 1, {5}, (void *)vector};
    nn_error err = {0};
    ck_assert_int_eq(nn_npz_write(path, &array, 1, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_RUNTIME);
    ck_assert_msg(strncmp(err.message, path, strlen(path)) == 0, "%s", err.message);
    ck_assert_int_eq(list_dir(names, sizeof names), 0);
}
END_TEST

/* A folder standing at the path is refused before anything is written: no
 * temporary file is left, and the folder stays. */
START_TEST(writer_removes_temp_file_when_rename_fails) {
    char names[256];
    ck_assert_int_eq(mkdir(npz_path, 0700), 0);
    nn_array array = {"w", NN_U8, 1, {5}, (void *)vector};
    nn_error err = {0};
    ck_assert_int_eq(nn_npz_write(npz_path, &array, 1, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    ck_assert_int_eq(list_dir(names, sizeof names), 1);
    ck_assert_str_eq(names, "weights.npz");
    struct stat info;
    ck_assert_int_eq(stat(npz_path, &info), 0);
    ck_assert(S_ISDIR(info.st_mode));
}
END_TEST

/* A write that fails half way (the file size limit stands in for a full
 * disk) leaves the old file as it was and no temporary file. */
START_TEST(writer_keeps_old_file_when_disk_fills) {
    write_old_file();
    size_t count = 1 << 18;
    float *values = malloc(count * sizeof *values);
    uint32_t state = 12345;
    for (size_t i = 0; i < count; i++) {
        state = state * 1664525u + 1013904223u; /* incompressible noise */
        values[i] = (float)(state >> 8);
    }
    nn_array array = {"w", NN_F32, 1, {(int64_t)count}, values};
    struct rlimit old_limit, limit;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
    limit = old_limit;
    limit.rlim_cur = 64 * 1024;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &limit), 0);
    nn_error err = {0};
    int status = nn_npz_write(npz_path, &array, 1, &err);
    setrlimit(RLIMIT_FSIZE, &old_limit);
    signal(SIGXFSZ, old_handler);
    free(values);
    ck_assert_int_eq(status, -1);
    ck_assert_int_eq(err.status, NN_ERR_RUNTIME);
    ck_assert_msg(strstr(err.message, "cannot write"), "%s", err.message);
    expect_old_file_alone();
}
END_TEST

START_TEST(writer_rejects_bad_arrays_without_touching_path) {
    write_old_file();
    float values[4] = {0};
    nn_array cases[][2] = {
        {{"a", NN_F32, 1, {4}, values}, {"a", NN_F32, 1, {4}, values}},          /* duplicate key */
        {{"a", NN_F32, 1, {4}, values}, {"", NN_F32, 1, {4}, values}},           /* empty name */
        {{"a", NN_F32, 5, {4}, values}, {"b", NN_F32, 1, {4}, values}},          /* rank */
        {{"a", NN_F32, 1, {-4}, values}, {"b", NN_F32, 1, {4}, values}},         /* negative dimension */
        {{"a", (nn_dtype)7, 1, {4}, values}, {"b", NN_F32, 1, {4}, values}},     /* dtype */
        {{"a", NN_F32, 1, {4}, NULL}, {"b", NN_F32, 1, {4}, values}},            /* no data */
        {{"a", NN_F32, 2, {1 << 20, 1 << 10}, values}, {"b", NN_F32, 1, {4}, values}}, /* 4 GiB */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        nn_error err = {0};
        ck_assert_int_eq(nn_npz_write(npz_path, cases[i], 2, &err), -1);
        ck_assert_int_eq(err.status, NN_ERR_RUNTIME);
        ck_assert_msg(strncmp(err.message, npz_path, strlen(npz_path)) == 0, "%s", err.message);
        expect_old_file_alone();
    }
}
END_TEST

int main(void) {
    Suite *suite = suite_create("npz");
    TCase *tc = tcase_create("npz");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60); /* the fuzzing writes thousands of files */
    tcase_add_test(tc, round_trip_every_dtype_and_rank);
    tcase_add_test(tc, round_trip_empty_archive);
    tcase_add_test(tc, writer_output_matches_numpy_layout);
    tcase_add_test(tc, writer_headers_match_numpy);
    tcase_add_test(tc, reads_stored_archive_built_by_hand);
    tcase_add_test(tc, reads_zip64_extra_as_numpy_writes_it);
    tcase_add_test(tc, reads_data_descriptors);
    tcase_add_test(tc, reads_data_descriptors_with_zip64);
    tcase_add_test(tc, reads_past_archive_comment);
    tcase_add_test(tc, rejects_missing_file);
    tcase_add_test(tc, rejects_empty_file);
    tcase_add_test(tc, rejects_non_zip);
    tcase_add_test(tc, rejects_every_truncation);
    tcase_add_test(tc, rejects_middle_cuts);
    tcase_add_test(tc, rejects_out_of_range_fields);
    tcase_add_test(tc, rejects_crc_mismatch);
    tcase_add_test(tc, rejects_damaged_deflate_data);
    tcase_add_test(tc, rejects_wrong_declared_sizes);
    tcase_add_test(tc, rejects_streams_longer_or_shorter_than_declared);
    tcase_add_test(tc, rejects_sizes_the_data_cannot_give);
    tcase_add_test(tc, rejects_sizes_over_the_total_limit);
    tcase_add_test(tc, rejects_entries_sharing_a_local_header);
    tcase_add_test(tc, rejects_entries_overlapping_by_one_byte);
    tcase_add_test(tc, reads_only_the_entries_asked_for);
    tcase_add_test(tc, rejects_unsupported_method);
    tcase_add_test(tc, rejects_bad_npy_magic);
    tcase_add_test(tc, rejects_unsupported_npy_version);
    tcase_add_test(tc, rejects_unsupported_dtypes);
    tcase_add_test(tc, rejects_big_endian);
    tcase_add_test(tc, reads_data_dtypes_and_folds_ranks);
    tcase_add_test(tc, rejects_fortran_order);
    tcase_add_test(tc, rejects_shape_length_mismatch);
    tcase_add_test(tc, rejects_malformed_headers);
    tcase_add_test(tc, rejects_duplicate_keys);
    tcase_add_test(tc, rejects_names_that_are_not_arrays);
    tcase_add_test(tc, fuzz_archive_bytes);
    tcase_add_test(tc, writer_replaces_existing_file);
    tcase_add_test(tc, writer_fails_in_missing_directory);
    tcase_add_test(tc, writer_removes_temp_file_when_rename_fails);
    tcase_add_test(tc, writer_keeps_old_file_when_disk_fills);
    tcase_add_test(tc, writer_rejects_bad_arrays_without_touching_path);
    suite_add_tcase(suite, tc);
    return testutil_run(suite);
}
