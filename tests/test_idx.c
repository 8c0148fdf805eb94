/* IDX reading and writing: round trips raw and gzip, datasets, every kind of
 * bad input, and the streaming reader. Expected bytes come from a naive
 * encoder written here and from zlib used directly, not from lib/idx.c. */
#include <check.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "data/idx.h"
#include "testutil.h"

/* One directory for the whole program, made and removed by the parent
 * process (unchecked fixture), so it goes even when a test fails. */
static char tmpdir[256];

static void make_tmpdir(void) { ck_assert_ptr_nonnull(testutil_tmpdir(tmpdir, sizeof tmpdir)); }

static void remove_tmpdir(void) {
    DIR *dir = opendir(tmpdir);
    if (!dir) return;
    struct dirent *entry;
    char path[512];
    while ((entry = readdir(dir)))
        if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0) {
            snprintf(path, sizeof path, "%s/%s", tmpdir, entry->d_name);
            unlink(path);
        }
    closedir(dir);
    rmdir(tmpdir);
}

static const char *temp_path(char *buffer, size_t size, const char *name) {
    snprintf(buffer, size, "%s/%s", tmpdir, name);
    return buffer;
}

/* The IDX format straight from its description, independent of lib/idx.c. */
static size_t encode_idx(uint8_t *out, int type, int rank, const unsigned *dims, const uint8_t *data,
                         size_t data_size) {
    out[0] = 0, out[1] = 0, out[2] = (uint8_t)type, out[3] = (uint8_t)rank;
    for (int i = 0; i < rank; i++) {
        out[4 + 4 * i] = (uint8_t)(dims[i] >> 24);
        out[5 + 4 * i] = (uint8_t)(dims[i] >> 16);
        out[6 + 4 * i] = (uint8_t)(dims[i] >> 8);
        out[7 + 4 * i] = (uint8_t)dims[i];
    }
    if (data_size) memcpy(out + 4 + 4 * rank, data, data_size);
    return 4 + 4 * (size_t)rank + data_size;
}

/* Pseudo-random bytes (an LCG), so that gzip cannot shrink them to nothing. */
static void fill_bytes(uint8_t *data, size_t size, unsigned seed) {
    unsigned state = seed * 2654435761u + 1;
    for (size_t i = 0; i < size; i++) {
        state = state * 1103515245u + 12345u;
        data[i] = (uint8_t)(state >> 16);
    }
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

START_TEST(idx_round_trip) {
    bool gzip = _i == 1;
    char path[512];
    temp_path(path, sizeof path, gzip ? "round.idx.gz" : "round.idx");
    int dims[3] = {5, 4, 3};
    unsigned header_dims[3] = {5, 4, 3};
    uint8_t data[60], expected[128], bytes[4096];
    fill_bytes(data, sizeof data, 1);
    size_t expected_size = encode_idx(expected, 0x08, 3, header_dims, data, sizeof data);
    nn_error err = {0};
    ck_assert_int_eq(nn_idx_write(path, 3, dims, data, gzip, &err), 0);

    size_t stored = read_file(path, bytes, sizeof bytes);
    ck_assert_int_eq(stored >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b, gzip);
    if (!gzip) ck_assert_int_eq(stored, expected_size);
    ck_assert_int_eq(read_through_zlib(path, bytes, sizeof bytes), expected_size);
    ck_assert_mem_eq(bytes, expected, expected_size);

    nn_idx idx;
    ck_assert_int_eq(nn_idx_read(&idx, path, &err), 0);
    ck_assert_int_eq(idx.rank, 3);
    ck_assert_int_eq(idx.dims[0], 5);
    ck_assert_int_eq(idx.dims[1], 4);
    ck_assert_int_eq(idx.dims[2], 3);
    ck_assert_uint_eq(idx.item_size, 12);
    ck_assert_mem_eq(idx.data, data, sizeof data);
    nn_idx_free(&idx);
    ck_assert_ptr_null(idx.data);
}
END_TEST

/* Files made without nn_idx_write, every rank, raw and gzip. */
START_TEST(idx_reads_each_rank) {
    bool gzip = _i % 2 == 1;
    int rank = 1 + _i / 2;
    unsigned dims[4] = {3, 2, 5, 2};
    size_t item_size = 1;
    for (int i = 1; i < rank; i++) item_size *= dims[i];
    uint8_t data[64], bytes[128];
    fill_bytes(data, 3 * item_size, (unsigned)_i + 7);
    size_t size = encode_idx(bytes, 0x08, rank, dims, data, 3 * item_size);
    char path[512], name[32];
    snprintf(name, sizeof name, "rank%d%s", rank, gzip ? ".gz" : "");
    write_input(temp_path(path, sizeof path, name), bytes, size, gzip);

    nn_idx idx;
    nn_error err = {0};
    ck_assert_msg(nn_idx_read(&idx, path, &err) == 0, "%s", err.message);
    ck_assert_int_eq(idx.rank, rank);
    for (int i = 0; i < rank; i++) ck_assert_int_eq(idx.dims[i], (int)dims[i]);
    ck_assert_uint_eq(idx.item_size, item_size);
    ck_assert_mem_eq(idx.data, data, 3 * item_size);
    nn_idx_free(&idx);
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
        nn_idx idx;
        nn_error err = {0};
        ck_assert_msg(nn_idx_read(&idx, paths[i], &err) == 0, "%s", err.message);
        ck_assert_mem_eq(idx.data, data, sizeof data);
        nn_idx_free(&idx);
    }
}
END_TEST

typedef struct bad_file {
    const char *name;
    uint8_t type;
    int rank;             /* written into the magic */
    unsigned dims[5];
    int header_bytes;     /* -1: the whole header */
    size_t data_bytes;
    const char *expected; /* in the message */
} bad_file;

static const bad_file bad_files[] = {
    {"empty", 0x08, 1, {1}, 0, 0, "empty file"},
    {"magic-only", 0x08, 2, {3, 4}, 2, 0, "truncated header"},
    {"short-header", 0x08, 3, {3, 4, 5}, 9, 0, "truncated header: expected 16 bytes"},
    {"bad-magic", 0x08, 1, {4}, -1, 4, "not an IDX file"},
    {"float-type", 0x0D, 1, {4}, -1, 16, "type 0x0d (float32), expected 0x08"},
    {"rank-0", 0x08, 0, {0}, -1, 4, "rank 0, expected 1 to 4"},
    {"rank-5", 0x08, 5, {1, 1, 1, 1, 1}, -1, 1, "rank 5, expected 1 to 4"},
    {"zero-dim", 0x08, 3, {3, 0, 4}, -1, 0, "size 2 of 3 in the header is 0"},
    {"huge-dim", 0x08, 1, {0x80000000u}, -1, 4, "2147483648"},
    {"overflow", 0x08, 4, {0x7fffffffu, 0x7fffffffu, 0x7fffffffu, 0x7fffffffu}, -1, 4, "overflow"},
    {"truncated", 0x08, 2, {3, 4}, -1, 10, "truncated: header promises 12 bytes of data, file has 10"},
    {"trailing", 0x08, 2, {3, 4}, -1, 15, "3 trailing bytes after the 12 bytes of data"},
};
#define BAD_FILES ((int)(sizeof bad_files / sizeof bad_files[0]))

START_TEST(idx_rejects_bad_file) {
    const bad_file *bad = &bad_files[_i / 2];
    bool gzip = _i % 2 == 1;
    uint8_t data[64], bytes[128];
    fill_bytes(data, sizeof data, 3);
    size_t size = encode_idx(bytes, bad->type, bad->rank, bad->dims, data, bad->data_bytes);
    if (strcmp(bad->name, "bad-magic") == 0) bytes[0] = 0x12, bytes[1] = 0x34;
    if (bad->header_bytes >= 0) size = (size_t)bad->header_bytes;
    char path[512], name[64];
    snprintf(name, sizeof name, "%s%s", bad->name, gzip ? ".gz" : "");
    write_input(temp_path(path, sizeof path, name), bytes, size, gzip);

    nn_idx idx;
    nn_error err = {0};
    ck_assert_int_eq(nn_idx_read(&idx, path, &err), -1);
    assert_input_error(&err, path, bad->expected);
    ck_assert_ptr_null(idx.data);
}
END_TEST

START_TEST(idx_rejects_missing_file) {
    char path[512], expected[600];
    temp_path(path, sizeof path, "no-such-file.gz");
    snprintf(expected, sizeof expected, "%s: cannot open: No such file or directory", path);
    nn_idx idx;
    nn_error err = {0};
    ck_assert_int_eq(nn_idx_read(&idx, path, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    ck_assert_str_eq(err.message, expected);
}
END_TEST

/* A gzip file cut short, in the middle of the data and then just before its
 * 8-byte trailer (all data present, CRC missing): both are errors. */
START_TEST(idx_rejects_truncated_gzip) {
    char path[512];
    temp_path(path, sizeof path, _i == 0 ? "cut-middle.gz" : "cut-trailer.gz");
    int dims[2] = {40, 50};
    uint8_t data[2000], bytes[4096];
    fill_bytes(data, sizeof data, 5);
    nn_error err = {0};
    ck_assert_int_eq(nn_idx_write(path, 2, dims, data, 1, &err), 0);
    size_t size = read_file(path, bytes, sizeof bytes);
    ck_assert_uint_gt(size, 1000);
    write_input(path, bytes, _i == 0 ? size / 2 : size - 8, false);

    nn_idx idx;
    ck_assert_int_eq(nn_idx_read(&idx, path, &err), -1);
    assert_input_error(&err, path, "truncated: the gzip stream ends unexpectedly");
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

    nn_idx idx;
    ck_assert_int_eq(nn_idx_read(&idx, path, &err), -1);
    assert_input_error(&err, path, "gzip");
}
END_TEST

/* Writes images (rank 3 or 4) and label_count labels 0, 1, ..., 9, 0, 1, ... */
static void write_dataset(const char *images_path, const char *labels_path, int rank, const int *dims,
                          int label_count, bool gzip) {
    size_t size = 1;
    for (int i = 0; i < rank; i++) size *= (size_t)dims[i];
    uint8_t *images = malloc(size), labels[256];
    fill_bytes(images, size, 9);
    for (int i = 0; i < label_count; i++) labels[i] = (uint8_t)(i % 10);
    nn_error err = {0};
    ck_assert_int_eq(nn_idx_write(images_path, rank, dims, images, gzip, &err), 0);
    ck_assert_int_eq(nn_idx_write(labels_path, 1, &label_count, labels, gzip, &err), 0);
    free(images);
}

START_TEST(dataset_rank3_has_one_channel) {
    char images[512], labels[512];
    temp_path(images, sizeof images, "set3-images");
    temp_path(labels, sizeof labels, "set3-labels");
    int dims[3] = {12, 4, 5};
    write_dataset(images, labels, 3, dims, 12, false);
    nn_dataset set;
    nn_error err = {0};
    ck_assert_msg(nn_dataset_load(&set, images, labels, 10, &err) == 0, "%s", err.message);
    ck_assert_int_eq(set.count, 12);
    ck_assert_int_eq(set.channels, 1);
    ck_assert_int_eq(set.height, 4);
    ck_assert_int_eq(set.width, 5);
    uint8_t expected[240];
    fill_bytes(expected, sizeof expected, 9);
    ck_assert_mem_eq(set.images.data, expected, sizeof expected);
    for (int i = 0; i < 12; i++) ck_assert_int_eq(set.labels.data[i], i % 10);
    nn_dataset_free(&set);
    ck_assert_ptr_null(set.images.data);
}
END_TEST

START_TEST(dataset_rank4_has_channels) {
    char images[512], labels[512];
    temp_path(images, sizeof images, "set4-images.gz");
    temp_path(labels, sizeof labels, "set4-labels.gz");
    int dims[4] = {7, 3, 2, 4};
    write_dataset(images, labels, 4, dims, 7, true);
    nn_dataset set;
    nn_error err = {0};
    ck_assert_msg(nn_dataset_load(&set, images, labels, 10, &err) == 0, "%s", err.message);
    ck_assert_int_eq(set.count, 7);
    ck_assert_int_eq(set.channels, 3);
    ck_assert_int_eq(set.height, 2);
    ck_assert_int_eq(set.width, 4);
    ck_assert_uint_eq(set.images.item_size, 24);
    nn_dataset_free(&set);
}
END_TEST

START_TEST(dataset_rejects_count_mismatch) {
    char images[512], labels[512];
    temp_path(images, sizeof images, "mismatch-images");
    temp_path(labels, sizeof labels, "mismatch-labels");
    int dims[3] = {5, 2, 2};
    write_dataset(images, labels, 3, dims, 4, false);
    nn_dataset set;
    nn_error err = {0};
    ck_assert_int_eq(nn_dataset_load(&set, images, labels, 10, &err), -1);
    assert_input_error(&err, images, "has 5 images");
    ck_assert_msg(strstr(err.message, labels) && strstr(err.message, "4 labels"), "%s", err.message);
    ck_assert_ptr_null(set.images.data);
}
END_TEST

START_TEST(dataset_rejects_label_out_of_range) {
    char images[512], labels[512];
    temp_path(images, sizeof images, "range-images");
    temp_path(labels, sizeof labels, "range-labels");
    int dims[3] = {10, 2, 2};
    write_dataset(images, labels, 3, dims, 10, false);
    nn_dataset set;
    nn_error err = {0};
    /* Labels run 0..9: 9 is out of range for 9 classes, first at index 9. */
    ck_assert_int_eq(nn_dataset_load(&set, images, labels, 9, &err), -1);
    assert_input_error(&err, labels, "label 9 at index 9 is out of range: expected 0 to 8");
    ck_assert_int_eq(nn_dataset_load(&set, images, labels, 0, &err), 0);
    nn_dataset_free(&set);
}
END_TEST

START_TEST(dataset_rejects_wrong_ranks) {
    char images[512], labels[512];
    temp_path(images, sizeof images, "ranks-images");
    temp_path(labels, sizeof labels, "ranks-labels");
    int dims[3] = {4, 3, 3};
    write_dataset(images, labels, 3, dims, 4, false);
    nn_dataset set;
    nn_error err = {0};
    /* Swapped: the labels file as images and the other way round. */
    ck_assert_int_eq(nn_dataset_load(&set, labels, images, 10, &err), -1);
    assert_input_error(&err, labels, "images must have rank 3 (N, H, W) or 4 (N, C, H, W), got rank 1");
    ck_assert_int_eq(nn_dataset_load(&set, images, images, 10, &err), -1);
    assert_input_error(&err, images, "labels must have rank 1");
    char missing[512];
    temp_path(missing, sizeof missing, "missing-labels");
    ck_assert_int_eq(nn_dataset_load(&set, images, missing, 10, &err), -1);
    assert_input_error(&err, missing, "cannot open");
}
END_TEST

static const int stream_chunks[] = {1, 7, 25};

/* 20 items of 2 x 3 read in chunks of 1, 7 and 25, raw and gzip. */
START_TEST(stream_reads_in_chunks) {
    int chunk = stream_chunks[_i / 2];
    bool gzip = _i % 2 == 1;
    char path[512];
    temp_path(path, sizeof path, gzip ? "stream.gz" : "stream");
    int dims[3] = {20, 2, 3};
    uint8_t data[120], out[120 + 25 * 6];
    fill_bytes(data, sizeof data, 11);
    nn_error err = {0};
    ck_assert_int_eq(nn_idx_write(path, 3, dims, data, gzip, &err), 0);

    nn_idx_stream *stream = nn_idx_stream_open(path, &err);
    ck_assert_msg(stream != NULL, "%s", err.message);
    ck_assert_int_eq(nn_idx_stream_rank(stream), 3);
    ck_assert_int_eq(nn_idx_stream_dims(stream)[0], 20);
    ck_assert_int_eq(nn_idx_stream_dims(stream)[2], 3);
    ck_assert_uint_eq(nn_idx_stream_item_size(stream), 6);
    int total = 0, calls = 0, got;
    while ((got = nn_idx_stream_read(stream, out + total * 6, chunk, &err)) > 0) {
        ck_assert_int_eq(got, 20 - total < chunk ? 20 - total : chunk);
        total += got;
        calls++;
    }
    ck_assert_msg(got == 0, "%s", err.message);
    ck_assert_int_eq(total, 20);
    ck_assert_int_eq(calls, (20 + chunk - 1) / chunk);
    ck_assert_mem_eq(out, data, sizeof data);
    ck_assert_int_eq(nn_idx_stream_read(stream, out, chunk, &err), 0);
    nn_idx_stream_close(stream);
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
    uint8_t data[36], out[36];
    fill_bytes(data, sizeof data, 13);
    nn_error err = {0};
    ck_assert_int_eq(nn_idx_write(path, 2, dims, data, 1, &err), 0);
    int saved_stdin;
    nn_idx_stream *stream = open_on_stdin(path, &saved_stdin, &err);
    ck_assert_msg(stream != NULL, "%s", err.message);
    ck_assert_int_eq(nn_idx_stream_read(stream, out, 5, &err), 5);
    ck_assert_int_eq(nn_idx_stream_read(stream, out + 20, 5, &err), 4);
    ck_assert_int_eq(nn_idx_stream_read(stream, out, 5, &err), 0);
    ck_assert_mem_eq(out, data, sizeof data);
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
    size_t data_bytes; /* the header promises 5 items of 6 bytes */
    int chunk;
    int good_reads;    /* reads that succeed before the failing one */
    const char *expected;
} bad_stream;

static const bad_stream bad_streams[] = {
    {"inside-item", 27, 2, 2, "truncated: the stream ends inside item 5 of 5 (3 of its 6 bytes)"},
    {"short-count", 24, 3, 1, "truncated: the stream ends after 4 of the 5 items the header promises"},
    {"extra-bytes", 32, 10, 0, "2 trailing bytes after the 5 items the header promises"},
    {"no-items", 0, 1, 0, "after 0 of the 5 items"},
};

START_TEST(stream_rejects_bad_length) {
    const bad_stream *bad = &bad_streams[_i / 2];
    bool gzip = _i % 2 == 1;
    unsigned dims[2] = {5, 6};
    uint8_t data[64], bytes[128], out[64];
    fill_bytes(data, sizeof data, 17);
    size_t size = encode_idx(bytes, 0x08, 2, dims, data, bad->data_bytes);
    char path[512], name[64];
    snprintf(name, sizeof name, "%s%s", bad->name, gzip ? ".gz" : "");
    write_input(temp_path(path, sizeof path, name), bytes, size, gzip);

    nn_error err = {0};
    nn_idx_stream *stream = nn_idx_stream_open(path, &err);
    ck_assert_msg(stream != NULL, "%s", err.message);
    for (int i = 0; i < bad->good_reads; i++)
        ck_assert_int_eq(nn_idx_stream_read(stream, out, bad->chunk, &err), bad->chunk);
    ck_assert_int_eq(nn_idx_stream_read(stream, out, bad->chunk, &err), -1);
    assert_input_error(&err, path, bad->expected);
    ck_assert_int_eq(nn_idx_stream_read(stream, out, bad->chunk, &err), -1);
    nn_idx_stream_close(stream);
}
END_TEST

/* All items arrive but the gzip trailer does not: the read that completes
 * the count fails rather than leaving the damage unnoticed. */
START_TEST(stream_rejects_truncated_gzip) {
    char path[512];
    temp_path(path, sizeof path, "stream-cut.gz");
    int dims[2] = {5, 300};
    uint8_t data[1500], bytes[4096], out[1500];
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

START_TEST(stream_rejects_bad_header) {
    char missing[512], path[512];
    temp_path(missing, sizeof missing, "stream-missing");
    nn_error err = {0};
    ck_assert_ptr_null(nn_idx_stream_open(missing, &err));
    assert_input_error(&err, missing, "cannot open: No such file or directory");

    unsigned dims[1] = {4};
    uint8_t bytes[16];
    size_t size = encode_idx(bytes, 0x0C, 1, dims, NULL, 0);
    write_input(temp_path(path, sizeof path, "stream-int32.gz"), bytes, size, true);
    ck_assert_ptr_null(nn_idx_stream_open(path, &err));
    assert_input_error(&err, path, "type 0x0c (int32)");
}
END_TEST

START_TEST(write_rejects_bad_shapes) {
    char path[512];
    temp_path(path, sizeof path, "not-written");
    uint8_t data[4] = {0};
    int dims[5] = {2, 2, 1, 1, 1}, zero_dims[2] = {2, 0};
    nn_error err = {0};
    ck_assert_int_eq(nn_idx_write(path, 0, dims, data, 0, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    ck_assert_int_eq(nn_idx_write(path, 5, dims, data, 0, &err), -1);
    ck_assert_int_eq(nn_idx_write(path, 2, zero_dims, data, 1, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    ck_assert_int_eq(access(path, F_OK), -1);

    char unwritable[512];
    temp_path(unwritable, sizeof unwritable, "no-such-dir/file.gz");
    ck_assert_int_eq(nn_idx_write(unwritable, 2, dims, data, 1, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_RUNTIME);
    ck_assert_msg(strstr(err.message, unwritable), "%s", err.message);
}
END_TEST

int main(void) {
    Suite *suite = suite_create("idx");
    TCase *files = tcase_create("files");
    tcase_add_unchecked_fixture(files, make_tmpdir, remove_tmpdir);
    tcase_add_loop_test(files, idx_round_trip, 0, 2);
    tcase_add_loop_test(files, idx_reads_each_rank, 0, 2 * NN_IDX_MAX_RANK);
    tcase_add_test(files, idx_ignores_file_names);
    tcase_add_loop_test(files, idx_rejects_bad_file, 0, 2 * BAD_FILES);
    tcase_add_test(files, idx_rejects_missing_file);
    tcase_add_loop_test(files, idx_rejects_truncated_gzip, 0, 2);
    tcase_add_test(files, idx_rejects_corrupt_gzip);
    tcase_add_test(files, dataset_rank3_has_one_channel);
    tcase_add_test(files, dataset_rank4_has_channels);
    tcase_add_test(files, dataset_rejects_count_mismatch);
    tcase_add_test(files, dataset_rejects_label_out_of_range);
    tcase_add_test(files, dataset_rejects_wrong_ranks);
    tcase_add_loop_test(files, stream_reads_in_chunks, 0, 2 * 3);
    tcase_add_test(files, stream_reads_gzip_stdin);
    tcase_add_test(files, stream_names_stdin_in_errors);
    tcase_add_loop_test(files, stream_rejects_bad_length, 0, 2 * 4);
    tcase_add_test(files, stream_rejects_truncated_gzip);
    tcase_add_test(files, stream_rejects_bad_header);
    tcase_add_test(files, write_rejects_bad_shapes);
    suite_add_tcase(suite, files);
    return testutil_run(suite);
}
