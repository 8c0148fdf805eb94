/* The checkpoint container: round trips, the byte layout as documented,
 * determinism, atomic replacement, and every kind of damaged file.
 *
 * Expected bytes come from this file's own encoder of the layout in
 * docs/checkpoint.md and a bit-by-bit CRC-32, never from archive.c. */
#include <check.h>
#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "io/container.h"
#include "testutil.h"

#define HEADER_BYTES 40

/* ---- a scratch folder per test ---- */

typedef struct workspace {
    char dir[256];
    char path[512]; /* dir/model.ckpt */
} workspace;

static void workspace_open(workspace *w) {
    ck_assert_ptr_nonnull(testutil_tmpdir(w->dir, sizeof w->dir));
    snprintf(w->path, sizeof w->path, "%s/model.ckpt", w->dir);
}

/* Entries of dir (without . and ..) whose name contains part; part "" counts all. */
static int count_entries(const char *dir, const char *part) {
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int count = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strstr(e->d_name, part)) count++;
    closedir(d);
    return count;
}

static void workspace_close(workspace *w) {
    DIR *d = opendir(w->dir);
    if (!d) return;
    char path[1024];
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", w->dir, e->d_name);
        if (unlink(path) != 0) rmdir(path);
    }
    closedir(d);
    rmdir(w->dir);
}

static unsigned char *slurp(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long length = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *data = malloc(length > 0 ? (size_t)length : 1);
    ck_assert_uint_eq(fread(data, 1, (size_t)length, f), (size_t)length);
    fclose(f);
    *size = (size_t)length;
    return data;
}

/* ---- the layout, encoded independently of archive.c ---- */

static uint32_t reference_crc32(const unsigned char *bytes, size_t size) {
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < size; i++) {
        crc ^= bytes[i];
        for (int k = 0; k < 8; k++) crc = crc & 1 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
    }
    return ~crc;
}

typedef struct buffer {
    unsigned char *data;
    size_t size, capacity;
} buffer;

static void put_bytes(buffer *b, const void *data, size_t size) {
    if (b->size + size > b->capacity) {
        b->capacity = 2 * (b->size + size) + 64;
        b->data = realloc(b->data, b->capacity);
        ck_assert_ptr_nonnull(b->data);
    }
    if (size) memcpy(b->data + b->size, data, size);
    b->size += size;
}

static void put_le(buffer *b, uint64_t value, int bytes) {
    for (int i = 0; i < bytes; i++) {
        unsigned char byte = (unsigned char)(value >> (8 * i));
        put_bytes(b, &byte, 1);
    }
}

/* One record; elements are given as 64-bit patterns and stored in
 * element_size little-endian bytes each. */
static void put_record(buffer *b, const char *name, size_t name_length, int dtype, int rank, const uint64_t *dims,
                       const uint64_t *elements, size_t element_count, int element_size) {
    put_le(b, name_length, 2);
    put_bytes(b, name, name_length);
    put_le(b, (uint64_t)dtype, 1);
    put_le(b, (uint64_t)rank, 1);
    for (int d = 0; d < rank; d++) put_le(b, dims[d], 8);
    for (size_t i = 0; i < element_count; i++) put_le(b, elements[i], element_size);
}

typedef struct container {
    uint32_t version, flags;
    int64_t raw_bytes;                /* -1: the real raw size */
    const unsigned char *compressed;  /* NULL: compress the raw payload */
    size_t compressed_bytes;
} container;

static const container plain = {1, 0, -1, NULL, 0};

/* A file with correct CRCs around whatever raw payload (or compressed
 * bytes) the test made, so that only the payload's own lies are tested.
 * Level 9, not the writer's 6: the reader must not care. */
static void write_container(const char *path, const buffer *raw, container c) {
    uLong bound = compressBound(raw->size);
    unsigned char *compressed = malloc(bound);
    ck_assert_ptr_nonnull(compressed);
    if (!c.compressed) {
        ck_assert_int_eq(compress2(compressed, &bound, raw->data, raw->size, 9), Z_OK);
        c.compressed = compressed;
        c.compressed_bytes = bound;
    }
    buffer file = {0};
    put_bytes(&file, "NNSEQCK", 8);
    put_le(&file, c.version, 4);
    put_le(&file, c.flags, 4);
    put_le(&file, c.compressed_bytes, 8);
    put_le(&file, c.raw_bytes < 0 ? raw->size : (uint64_t)c.raw_bytes, 8);
    put_le(&file, reference_crc32(c.compressed, c.compressed_bytes), 4);
    put_le(&file, reference_crc32(file.data, 36), 4);
    put_bytes(&file, c.compressed, c.compressed_bytes);
    ck_assert_int_eq(testutil_write_file(path, file.data, file.size), 0);
    free(file.data);
    free(compressed);
}

/* ---- sample arrays: every dtype, ranks 0 to 4, empty ones, odd floats ---- */

typedef struct sample {
    float weight[6];
    int64_t counters[5];
    uint8_t flag;
    float cube[12];
    int64_t nothing[1];
    uint8_t text[11];
    float scalar;
    nn_array arrays[7];
} sample;

static uint32_t float_bits(float value) {
    uint32_t bits;
    memcpy(&bits, &value, 4);
    return bits;
}

static float bits_float(uint32_t bits) {
    float value;
    memcpy(&value, &bits, 4);
    return value;
}

static nn_array make_array(const char *name, nn_dtype dtype, int rank, const int64_t *dims, void *data) {
    nn_array a = {.dtype = dtype, .rank = rank, .data = data};
    snprintf(a.name, sizeof a.name, "%s", name);
    for (int d = 0; d < rank; d++) a.dims[d] = dims[d];
    return a;
}

static void sample_init(sample *s) {
    memset(s, 0, sizeof *s);
    const float weight[6] = {1.5f, -0.0f, INFINITY, bits_float(0x7fc00123u), 1e-45f, -3.25e10f};
    const int64_t counters[5] = {0, -1, INT64_MIN, INT64_MAX, 0x0102030405060708};
    memcpy(s->weight, weight, sizeof weight);
    memcpy(s->counters, counters, sizeof counters);
    s->flag = 0xA5;
    for (int i = 0; i < 12; i++) s->cube[i] = (float)i * 0.5f - 2.0f;
    memcpy(s->text, "seed: 1\nx: ", 11);
    s->scalar = 0.1f;
    s->arrays[0] = make_array("0.weight", NN_F32, 2, (int64_t[]){2, 3}, s->weight);
    s->arrays[1] = make_array("train.counters", NN_I64, 1, (int64_t[]){5}, s->counters);
    s->arrays[2] = make_array("flag", NN_U8, 0, NULL, &s->flag);
    s->arrays[3] = make_array("3.weight", NN_F32, 4, (int64_t[]){2, 1, 3, 2}, s->cube);
    s->arrays[4] = make_array("empty.i64", NN_I64, 3, (int64_t[]){2, 0, 3}, s->nothing);
    s->arrays[5] = make_array("config.yaml", NN_U8, 1, (int64_t[]){11}, s->text);
    s->arrays[6] = make_array("lr", NN_F32, 0, NULL, &s->scalar);
}

/* The raw payload the documentation says the sample must become. */
static void sample_payload(const sample *s, buffer *raw) {
    put_le(raw, 7, 4);
    uint64_t elements[12];
    for (int i = 0; i < 6; i++) elements[i] = float_bits(s->weight[i]);
    put_record(raw, "0.weight", 8, 0, 2, (uint64_t[]){2, 3}, elements, 6, 4);
    for (int i = 0; i < 5; i++) elements[i] = (uint64_t)s->counters[i];
    put_record(raw, "train.counters", 14, 1, 1, (uint64_t[]){5}, elements, 5, 8);
    put_record(raw, "flag", 4, 2, 0, NULL, (uint64_t[]){0xA5}, 1, 1);
    for (int i = 0; i < 12; i++) elements[i] = float_bits(s->cube[i]);
    put_record(raw, "3.weight", 8, 0, 4, (uint64_t[]){2, 1, 3, 2}, elements, 12, 4);
    put_record(raw, "empty.i64", 9, 1, 3, (uint64_t[]){2, 0, 3}, NULL, 0, 8);
    for (int i = 0; i < 11; i++) elements[i] = s->text[i];
    put_record(raw, "config.yaml", 11, 2, 1, (uint64_t[]){11}, elements, 11, 1);
    put_record(raw, "lr", 2, 0, 0, NULL, (uint64_t[]){float_bits(0.1f)}, 1, 4);
}

/* NULL when equal, else what differs. Order matters: the reader keeps the file's. */
static const char *arrays_differ(const nn_array *a, size_t a_count, const nn_array *b, size_t b_count) {
    static char why[256];
    if (a_count != b_count) return snprintf(why, sizeof why, "%zu arrays vs %zu", a_count, b_count), why;
    for (size_t i = 0; i < a_count; i++) {
        if (strcmp(a[i].name, b[i].name) || a[i].dtype != b[i].dtype || a[i].rank != b[i].rank)
            return snprintf(why, sizeof why, "array %zu: '%s' vs '%s'", i, a[i].name, b[i].name), why;
        for (int d = 0; d < a[i].rank; d++)
            if (a[i].dims[d] != b[i].dims[d]) return snprintf(why, sizeof why, "'%s': dim %d", a[i].name, d), why;
        size_t bytes = nn_array_bytes(&a[i]);
        if (bytes && memcmp(a[i].data, b[i].data, bytes))
            return snprintf(why, sizeof why, "'%s': data differs", a[i].name), why;
    }
    return NULL;
}

/* Reading path must fail with an input error that starts with the path and
 * contains phrase (NULL: any). */
static void expect_input_error(const char *path, const char *phrase) {
    nn_array *arrays = (nn_array *)1;
    size_t count = 99;
    nn_error err = {0};
    ck_assert_int_eq(nn_container_read(path, &arrays, &count, &err), -1);
    ck_assert_ptr_null(arrays);
    ck_assert_uint_eq(count, 0);
    ck_assert_msg(err.status == NN_ERR_INPUT, "status %d: %s", err.status, err.message);
    size_t length = strlen(path);
    ck_assert_msg(!strncmp(err.message, path, length) && err.message[length] == ':', "%s", err.message);
    ck_assert_msg(!phrase || strstr(err.message, phrase), "expected '%s' in: %s", phrase, err.message);
}

static void write_sample(const char *path, sample *s) {
    nn_error err = {0};
    ck_assert_msg(nn_container_write(path, s->arrays, 7, &err) == 0, "%s", err.message);
}

/* ---- round trip, layout, determinism ---- */

START_TEST(round_trip_keeps_every_array) {
    workspace w;
    workspace_open(&w);
    sample s;
    sample_init(&s);
    write_sample(w.path, &s);
    nn_array *arrays;
    size_t count;
    nn_error err = {0};
    ck_assert_msg(nn_container_read(w.path, &arrays, &count, &err) == 0, "%s", err.message);
    const char *why = arrays_differ(s.arrays, 7, arrays, count);
    ck_assert_msg(!why, "%s", why);
    ck_assert_ptr_eq(nn_container_find(arrays, count, "3.weight"), &arrays[3]);
    ck_assert_ptr_eq(nn_container_find(arrays, count, "lr"), &arrays[6]);
    ck_assert_ptr_null(nn_container_find(arrays, count, "3.weigh"));
    ck_assert_ptr_null(nn_container_find(arrays, count, "3.weights"));
    ck_assert_ptr_null(nn_container_find(arrays, count, ""));
    ck_assert_ptr_nonnull(arrays[4].data); /* empty, but still a pointer */
    nn_arrays_free(arrays, count);
    workspace_close(&w);
}
END_TEST

START_TEST(round_trip_of_no_arrays) {
    workspace w;
    workspace_open(&w);
    nn_error err = {0};
    ck_assert_int_eq(nn_container_write(w.path, NULL, 0, &err), 0);
    nn_array *arrays = NULL;
    size_t count = 5;
    ck_assert_msg(nn_container_read(w.path, &arrays, &count, &err) == 0, "%s", err.message);
    ck_assert_uint_eq(count, 0);
    ck_assert_ptr_nonnull(arrays);
    nn_arrays_free(arrays, count);
    workspace_close(&w);
}
END_TEST

START_TEST(file_matches_documented_layout) {
    ck_assert_uint_eq(reference_crc32((const unsigned char *)"123456789", 9), 0xCBF43926u);
    workspace w;
    workspace_open(&w);
    sample s;
    sample_init(&s);
    write_sample(w.path, &s);
    size_t size;
    unsigned char *file = slurp(w.path, &size);
    ck_assert_uint_ge(size, HEADER_BYTES);
    ck_assert_int_eq(memcmp(file, "NNSEQCK\0", 8), 0);
    ck_assert_int_eq(memcmp(file + 8, "\1\0\0\0" "\0\0\0\0", 8), 0); /* version 1, flags 0 */
    uint64_t compressed = 0, raw_size = 0;
    for (int i = 7; i >= 0; i--) compressed = compressed << 8 | file[16 + i];
    for (int i = 7; i >= 0; i--) raw_size = raw_size << 8 | file[24 + i];
    ck_assert_uint_eq(compressed, size - HEADER_BYTES);
    buffer expected = {0};
    sample_payload(&s, &expected);
    ck_assert_uint_eq(raw_size, expected.size);
    buffer crcs = {0};
    put_le(&crcs, reference_crc32(file + HEADER_BYTES, size - HEADER_BYTES), 4);
    put_le(&crcs, reference_crc32(file, 36), 4);
    ck_assert_int_eq(memcmp(file + 32, crcs.data, 8), 0);
    unsigned char *inflated = malloc(expected.size + 16);
    uLong inflated_size = expected.size + 16;
    ck_assert_int_eq(uncompress(inflated, &inflated_size, file + HEADER_BYTES, size - HEADER_BYTES), Z_OK);
    ck_assert_uint_eq(inflated_size, expected.size);
    ck_assert_int_eq(memcmp(inflated, expected.data, expected.size), 0);
    free(inflated);
    free(crcs.data);
    free(expected.data);
    free(file);
    workspace_close(&w);
}
END_TEST

START_TEST(same_arrays_give_same_bytes) {
    workspace w;
    workspace_open(&w);
    sample s;
    sample_init(&s);
    char other[600];
    snprintf(other, sizeof other, "%s/other.ckpt", w.dir);
    write_sample(w.path, &s);
    write_sample(other, &s);
    write_sample(other, &s); /* over itself */
    size_t a_size, b_size;
    unsigned char *a = slurp(w.path, &a_size), *b = slurp(other, &b_size);
    ck_assert_uint_eq(a_size, b_size);
    ck_assert_int_eq(memcmp(a, b, a_size), 0);
    free(a);
    free(b);
    workspace_close(&w);
}
END_TEST

/* A file written by the test's own encoder reads back as the sample: proof
 * that the lying payloads below fail for their lie, not for the encoder. */
START_TEST(hand_made_file_reads) {
    workspace w;
    workspace_open(&w);
    sample s;
    sample_init(&s);
    buffer raw = {0};
    sample_payload(&s, &raw);
    write_container(w.path, &raw, plain);
    nn_array *arrays;
    size_t count;
    nn_error err = {0};
    ck_assert_msg(nn_container_read(w.path, &arrays, &count, &err) == 0, "%s", err.message);
    const char *why = arrays_differ(s.arrays, 7, arrays, count);
    ck_assert_msg(!why, "%s", why);
    nn_arrays_free(arrays, count);
    free(raw.data);
    workspace_close(&w);
}
END_TEST

/* ---- writing: invalid arrays, atomic replacement, permissions ---- */

/* The file at path is still exactly old, and no temporary file is left. */
static void expect_untouched(const workspace *w, const unsigned char *old, size_t old_size) {
    size_t size;
    unsigned char *now = slurp(w->path, &size);
    ck_assert_uint_eq(size, old_size);
    ck_assert_msg(memcmp(now, old, size) == 0, "old file changed");
    free(now);
    ck_assert_int_eq(count_entries(w->dir, ".tmp-"), 0);
}

START_TEST(write_rejects_invalid_arrays) {
    workspace w;
    workspace_open(&w);
    sample s;
    sample_init(&s);
    write_sample(w.path, &s);
    size_t old_size;
    unsigned char *old = slurp(w.path, &old_size);
    struct {
        const char *what, *phrase;
        nn_array array;
    } cases[] = {
        {"empty name", "empty name", make_array("", NN_F32, 1, (int64_t[]){6}, s.weight)},
        {"repeated name", "two arrays are named 'lr'", make_array("lr", NN_F32, 1, (int64_t[]){6}, s.weight)},
        {"rank 5", "rank 5", make_array("a", NN_F32, 0, NULL, s.weight)},
        {"rank -1", "rank -1", make_array("a", NN_F32, 0, NULL, s.weight)},
        {"negative dim", "dimension 1 is -2", make_array("a", NN_F32, 2, (int64_t[]){3, -2}, s.weight)},
        {"dtype 7", "unknown dtype 7", make_array("a", NN_F32, 0, NULL, s.weight)},
        {"no data", "has no data", make_array("a", NN_F32, 1, (int64_t[]){6}, NULL)},
        {"unterminated name", "NUL-terminated", make_array("a", NN_U8, 0, NULL, &s.flag)},
        {"overflow", "4 GiB", make_array("a", NN_I64, 2, (int64_t[]){INT64_MAX / 4, 4}, s.counters)},
        {"too big", "4 GiB", make_array("a", NN_U8, 2, (int64_t[]){65536, 65537}, s.text)},
    };
    cases[2].array.rank = 5;
    cases[3].array.rank = -1;
    cases[5].array.dtype = (nn_dtype)7;
    memset(cases[7].array.name, 'x', sizeof cases[7].array.name);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nn_array arrays[8];
        memcpy(arrays, s.arrays, sizeof s.arrays);
        arrays[7] = cases[i].array;
        nn_error err = {0};
        ck_assert_msg(nn_container_write(w.path, arrays, 8, &err) == -1, "%s accepted", cases[i].what);
        ck_assert_int_eq(err.status, NN_ERR_INPUT);
        ck_assert_msg(strstr(err.message, cases[i].phrase) && !strncmp(err.message, w.path, strlen(w.path)),
                      "%s: %s", cases[i].what, err.message);
        expect_untouched(&w, old, old_size);
    }
    free(old);
    workspace_close(&w);
}
END_TEST

START_TEST(write_replaces_existing_file) {
    workspace w;
    workspace_open(&w);
    sample s;
    sample_init(&s);
    write_sample(w.path, &s);
    s.weight[0] = 42.0f;
    s.arrays[5].dims[0] = 4; /* a shorter text */
    write_sample(w.path, &s);
    nn_array *arrays;
    size_t count;
    nn_error err = {0};
    ck_assert_msg(nn_container_read(w.path, &arrays, &count, &err) == 0, "%s", err.message);
    const char *why = arrays_differ(s.arrays, 7, arrays, count);
    ck_assert_msg(!why, "%s", why);
    ck_assert_float_eq(((float *)arrays[0].data)[0], 42.0f);
    nn_arrays_free(arrays, count);
    ck_assert_int_eq(count_entries(w.dir, ""), 1);
    workspace_close(&w);
}
END_TEST

START_TEST(write_into_missing_folder_fails) {
    workspace w;
    workspace_open(&w);
    sample s;
    sample_init(&s);
    char path[700], folder[600];
    snprintf(folder, sizeof folder, "%s/no-such-folder", w.dir);
    snprintf(path, sizeof path, "%s/model.ckpt", folder);
    nn_error err = {0};
    ck_assert_int_eq(nn_container_write(path, s.arrays, 7, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_RUNTIME);
    ck_assert_msg(strstr(err.message, folder) && strstr(err.message, "does not exist"), "%s", err.message);
    ck_assert_int_eq(count_entries(w.dir, ""), 0);
    workspace_close(&w);
}
END_TEST

START_TEST(write_over_a_folder_fails) {
    workspace w;
    workspace_open(&w);
    sample s;
    sample_init(&s);
    ck_assert_int_eq(mkdir(w.path, 0755), 0);
    nn_error err = {0};
    ck_assert_int_eq(nn_container_write(w.path, s.arrays, 7, &err), -1);
    /* Refused before anything is written: a folder is not ours to replace. */
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    ck_assert_msg(strstr(err.message, w.path) && strstr(err.message, "is a folder"), "%s", err.message);
    struct stat info;
    ck_assert_int_eq(stat(w.path, &info), 0);
    ck_assert(S_ISDIR(info.st_mode));
    ck_assert_int_eq(count_entries(w.dir, ""), 1);
    ck_assert_int_eq(count_entries(w.path, ""), 0);
    workspace_close(&w);
}
END_TEST

/* A disk that fills up mid-write, simulated with a file size limit (which
 * binds root too): the old checkpoint must survive byte for byte. */
START_TEST(failed_write_keeps_old_file) {
    workspace w;
    workspace_open(&w);
    sample s;
    sample_init(&s);
    write_sample(w.path, &s);
    size_t old_size;
    unsigned char *old = slurp(w.path, &old_size);
    enum { NOISE = 20000 };
    float *noise = malloc(NOISE * sizeof *noise);
    uint32_t state = 12345;
    for (int i = 0; i < NOISE; i++) noise[i] = bits_float((state = state * 1664525u + 1013904223u) >> 2);
    nn_array big = make_array("noise", NN_F32, 1, (int64_t[]){NOISE}, noise);
    struct rlimit saved, limit;
    getrlimit(RLIMIT_FSIZE, &saved);
    limit = saved;
    limit.rlim_cur = 4096;
    void (*saved_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &limit), 0);
    nn_error err = {0};
    int status = nn_container_write(w.path, &big, 1, &err);
    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, saved_handler);
    ck_assert_int_eq(status, -1);
    ck_assert_int_eq(err.status, NN_ERR_RUNTIME);
    ck_assert_msg(strstr(err.message, w.path) && strstr(err.message, "too large"), "%s", err.message);
    expect_untouched(&w, old, old_size);
    free(noise);
    free(old);
    workspace_close(&w);
}
END_TEST

static mode_t mode_of(const char *path) {
    struct stat info;
    ck_assert_int_eq(stat(path, &info), 0);
    return info.st_mode & 0777;
}

/* mkstemp makes 0600 files; a checkpoint gets the umask's permissions like
 * any other file, and keeps those of the file it replaces. */
START_TEST(write_sets_usual_permissions) {
    workspace w;
    workspace_open(&w);
    sample s;
    sample_init(&s);
    mode_t saved = umask(022);
    write_sample(w.path, &s);
    ck_assert_uint_eq(mode_of(w.path), 0644);
    ck_assert_int_eq(chmod(w.path, 0640), 0);
    write_sample(w.path, &s);
    ck_assert_uint_eq(mode_of(w.path), 0640);
    char other[600];
    snprintf(other, sizeof other, "%s/private.ckpt", w.dir);
    umask(077);
    write_sample(other, &s);
    ck_assert_uint_eq(mode_of(other), 0600);
    umask(saved);
    workspace_close(&w);
}
END_TEST

/* ---- reading damaged, foreign and newer files ---- */

START_TEST(read_missing_empty_short_foreign) {
    workspace w;
    workspace_open(&w);
    expect_input_error(w.path, "No such file");
    ck_assert_int_eq(testutil_write_file(w.path, "", 0), 0);
    expect_input_error(w.path, "empty file");
    sample s;
    sample_init(&s);
    write_sample(w.path, &s);
    size_t size;
    unsigned char *file = slurp(w.path, &size);
    ck_assert_int_eq(testutil_write_file(w.path, file, 20), 0);
    expect_input_error(w.path, "truncated: 20 bytes, shorter than the 40-byte header");
    ck_assert_int_eq(testutil_write_file(w.path, "hello, world", 12), 0);
    expect_input_error(w.path, "not an nnseq checkpoint: it looks like text (a YAML config");
    memcpy(file, "PK\3\4", 4);
    ck_assert_int_eq(testutil_write_file(w.path, file, size), 0);
    expect_input_error(w.path, "not an nnseq checkpoint: it looks like a zip archive");
    const char *text = "name: fashion_mlp\nseed: 1\nmodel:\n  layers: [Flatten, ReLU]\n";
    ck_assert_int_eq(testutil_write_file(w.path, text, strlen(text)), 0);
    expect_input_error(w.path, "not an nnseq checkpoint: it looks like text (a YAML config or a CSV table?); a "
                               "config goes to nnseq train");
    expect_input_error(w.dir, "not a regular file");
    free(file);
    workspace_close(&w);
}
END_TEST

/* A CRC-32 catches every single-byte error, so each position must fail,
 * and with the message of the part it hit. */
START_TEST(every_byte_flip_fails) {
    workspace w;
    workspace_open(&w);
    sample s;
    sample_init(&s);
    write_sample(w.path, &s);
    size_t size;
    unsigned char *file = slurp(w.path, &size);
    char damaged[600];
    snprintf(damaged, sizeof damaged, "%s/damaged.ckpt", w.dir);
    const unsigned char patterns[] = {0x01, 0x80, 0xFF, 0x5A};
    for (size_t i = 0; i < size; i++) {
        for (size_t p = 0; p < sizeof patterns; p++) {
            file[i] ^= patterns[p];
            ck_assert_int_eq(testutil_write_file(damaged, file, size), 0);
            expect_input_error(damaged, i < 8 ? "bad magic" : i < HEADER_BYTES ? "header CRC mismatch"
                                                                               : "CRC mismatch in the compressed");
            file[i] ^= patterns[p];
        }
    }
    free(file);
    workspace_close(&w);
}
END_TEST

START_TEST(every_truncation_fails) {
    workspace w;
    workspace_open(&w);
    sample s;
    sample_init(&s);
    write_sample(w.path, &s);
    size_t size;
    unsigned char *file = slurp(w.path, &size);
    char damaged[600], phrase[64];
    snprintf(damaged, sizeof damaged, "%s/damaged.ckpt", w.dir);
    for (size_t length = 0; length < size; length++) {
        ck_assert_int_eq(testutil_write_file(damaged, file, length), 0);
        snprintf(phrase, sizeof phrase, "truncated: %zu bytes missing", size - length);
        expect_input_error(damaged, length == 0 ? "empty" : length < HEADER_BYTES ? "truncated" : phrase);
    }
    unsigned char *longer = malloc(size + 3);
    memcpy(longer, file, size);
    memcpy(longer + size, "abc", 3);
    ck_assert_int_eq(testutil_write_file(damaged, longer, size + 3), 0);
    expect_input_error(damaged, "damaged: 3 bytes after the");
    free(longer);
    free(file);
    workspace_close(&w);
}
END_TEST

START_TEST(newer_version_and_unknown_flags) {
    workspace w;
    workspace_open(&w);
    sample s;
    sample_init(&s);
    buffer raw = {0};
    sample_payload(&s, &raw);
    write_container(w.path, &raw, (container){2, 0, -1, NULL, 0});
    nn_error err = {0};
    nn_array *arrays;
    size_t count;
    ck_assert_int_eq(nn_container_read(w.path, &arrays, &count, &err), -1);
    char expected[700];
    snprintf(expected, sizeof expected, "%s: written by a newer nnseq (format version 2, this build reads 1)",
             w.path);
    ck_assert_str_eq(err.message, expected);
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    write_container(w.path, &raw, (container){0x01000000, 0, -1, NULL, 0});
    expect_input_error(w.path, "format version 16777216, this build reads 1");
    write_container(w.path, &raw, (container){0, 0, -1, NULL, 0});
    expect_input_error(w.path, "unknown format version 0");
    write_container(w.path, &raw, (container){1, 4, -1, NULL, 0});
    expect_input_error(w.path, "unknown flags 0x4");
    free(raw.data);
    workspace_close(&w);
}
END_TEST

/* Header sizes that lie, with both CRCs correct. */
START_TEST(sizes_that_lie) {
    workspace w;
    workspace_open(&w);
    sample s;
    sample_init(&s);
    buffer raw = {0};
    sample_payload(&s, &raw);
    int64_t size = (int64_t)raw.size;
    write_container(w.path, &raw, (container){1, 0, size + 1, NULL, 0});
    expect_input_error(w.path, "inflates to");
    write_container(w.path, &raw, (container){1, 0, size - 1, NULL, 0});
    expect_input_error(w.path, "inflates to more than");
    write_container(w.path, &raw, (container){1, 0, 3, NULL, 0});
    expect_input_error(w.path, "raw payload size 3 impossible");
    write_container(w.path, &raw, (container){1, 0, (int64_t)5 << 30, NULL, 0});
    expect_input_error(w.path, "raw payload size 5368709120 impossible");
    write_container(w.path, &raw, (container){1, 0, INT64_MAX, NULL, 0});
    expect_input_error(w.path, "impossible");
    /* Under 4 GiB, but far more than deflate can expand these few bytes to:
     * must be refused before allocating it. */
    write_container(w.path, &raw, (container){1, 0, (int64_t)3 << 30, NULL, 0});
    expect_input_error(w.path, "impossible");
    const unsigned char not_zlib[] = "this is not a zlib stream at all";
    write_container(w.path, &raw, (container){1, 0, -1, not_zlib, sizeof not_zlib});
    expect_input_error(w.path, "not a valid zlib stream");
    /* A valid stream followed by garbage inside the compressed size. */
    uLong bound = compressBound(raw.size) + 8;
    unsigned char *stream = malloc(bound);
    ck_assert_int_eq(compress2(stream, &bound, raw.data, raw.size, 6), Z_OK);
    memcpy(stream + bound, "junk", 4);
    write_container(w.path, &raw, (container){1, 0, -1, stream, bound + 4});
    expect_input_error(w.path, "4 bytes after the end of the zlib stream");
    /* A stream cut short. */
    write_container(w.path, &raw, (container){1, 0, -1, stream, bound / 2});
    expect_input_error(w.path, "not a valid zlib stream");
    free(stream);
    free(raw.data);
    workspace_close(&w);
}
END_TEST

/* Payloads with correct CRCs whose records lie. */
START_TEST(records_that_lie) {
    workspace w;
    workspace_open(&w);
    float values[4] = {1, 2, 3, 4};
    uint64_t bits[4];
    for (int i = 0; i < 4; i++) bits[i] = float_bits(values[i]);
    struct {
        const char *phrase;
        uint32_t count;
        int records; /* which of the records below to append, as bits */
    } cases[] = {
        {"array 2: the name length needs 2 bytes, 0 left", 3, 3},
        {"8 bytes after the last of the 0 arrays", 0, 1 << 8},
        {"4294967295 arrays cannot fit", 0xFFFFFFFF, 1},
        {"array 0 has an empty name", 1, 1 << 2 | 1 << 12},
        {"array 0: the name needs 40 bytes, 4 left", 1, 1 << 3 | 1 << 12},
        {"name of 64 bytes, at most 63", 1, 1 << 4},
        {"name contains a NUL byte", 1, 1 << 5},
        {"unknown dtype 3", 1, 1 << 6},
        {"rank 5, at most 4", 1, 1 << 7},
        {"dimensions overflow", 1, 1 << 9},
        {"dimension 0 is 9223372036854775808", 1, 1 << 10},
        {"'short': data needs 16 bytes, 12 left", 1, 1 << 11},
        {"1 bytes after the last of the 2 arrays", 2, 3 | 1 << 12},
        {"two arrays are named 'a'", 2, 1 | 1 << 13},
        {"dimensions overflow", 1, 1 << 14},
        {"a dimension needs 8 bytes, 4 left", 1, 1 << 15},
    };
    char name64[64];
    memset(name64, 'n', sizeof name64);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        buffer raw = {0};
        put_le(&raw, cases[i].count, 4);
        int r = cases[i].records;
        if (r & 1) put_record(&raw, "a", 1, 0, 1, (uint64_t[]){4}, bits, 4, 4);
        if (r & 2) put_record(&raw, "b", 1, 2, 0, NULL, (uint64_t[]){7}, 1, 1);
        if (r & 1 << 2) put_record(&raw, "", 0, 2, 0, NULL, (uint64_t[]){7}, 1, 1);
        if (r & 1 << 3) {
            put_le(&raw, 40, 2);
            put_bytes(&raw, "abc", 3);
        }
        if (r & 1 << 4) put_record(&raw, name64, 64, 2, 0, NULL, (uint64_t[]){7}, 1, 1);
        if (r & 1 << 5) put_record(&raw, "a\0b", 3, 2, 0, NULL, (uint64_t[]){7}, 1, 1);
        if (r & 1 << 6) put_record(&raw, "a", 1, 3, 0, NULL, (uint64_t[]){7}, 1, 4);
        if (r & 1 << 7) put_record(&raw, "a", 1, 0, 5, (uint64_t[]){1, 1, 1, 1, 1}, bits, 1, 4);
        if (r & 1 << 8) put_le(&raw, 0, 8);
        if (r & 1 << 9) put_record(&raw, "a", 1, 0, 3, (uint64_t[]){1u << 31, 1u << 31, 1u << 31}, bits, 4, 4);
        if (r & 1 << 10) put_record(&raw, "a", 1, 2, 1, (uint64_t[]){UINT64_C(1) << 63}, NULL, 0, 1);
        if (r & 1 << 11) put_record(&raw, "short", 5, 0, 1, (uint64_t[]){4}, bits, 3, 4);
        if (r & 1 << 12) put_le(&raw, 0, 1);
        if (r & 1 << 13) put_record(&raw, "a", 1, 2, 0, NULL, (uint64_t[]){7}, 1, 1);
        /* Zero in one dim does not excuse an overflow in the others. */
        if (r & 1 << 14) put_record(&raw, "a", 1, 1, 3, (uint64_t[]){INT64_MAX, 16, 0}, NULL, 0, 8);
        if (r & 1 << 15) { /* rank 2, but only one dim and half of another */
            put_record(&raw, "a", 1, 0, 1, (uint64_t[]){1}, NULL, 0, 4);
            raw.data[raw.size - 9] = 2;
            put_le(&raw, 1, 4);
        }
        write_container(w.path, &raw, plain);
        expect_input_error(w.path, cases[i].phrase);
        free(raw.data);
    }
    workspace_close(&w);
}
END_TEST

/* ---- bounded memory and time ---- */

/* Files that claim far more than they hold, with correct CRCs: each must be
 * refused by its claim, before anything of the claimed size is allocated
 * (an allocation of terabytes would fail as out of memory, not as input). */
START_TEST(claims_beyond_the_file_are_refused) {
    workspace w;
    workspace_open(&w);
    buffer raw = {0};
    put_le(&raw, 1, 4);
    put_record(&raw, "a", 1, 2, 0, NULL, (uint64_t[]){7}, 1, 1);
    write_container(w.path, &raw, (container){1, 0, (int64_t)1 << 40, NULL, 0});
    expect_input_error(w.path, "raw payload size 1099511627776 impossible");
    free(raw.data);

    struct {
        const char *phrase;
        uint32_t count;
        uint64_t dims[2];
        size_t padding; /* zero bytes after the record */
    } cases[] = {
        {"2147483648 arrays cannot fit", 1u << 31, {1, 1}, 0},
        {"70000 arrays, a checkpoint holds at most 65536", 70000, {1, 1}, 6 * 70000},
        {"'big': data needs 4398046511104 bytes, 0 left", 1, {1u << 20, 1u << 20}, 0},
        {"'big': data needs 17179869184 bytes, 65536 left", 1, {1u << 16, 1u << 16}, 65536},
        {"dimensions overflow", 1, {UINT64_C(1) << 62, 2}, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        buffer payload = {0};
        put_le(&payload, cases[i].count, 4);
        put_record(&payload, "big", 3, 0, 2, cases[i].dims, NULL, 0, 4);
        for (size_t k = 0; k < cases[i].padding; k++) put_le(&payload, 0, 1);
        write_container(w.path, &payload, plain);
        expect_input_error(w.path, cases[i].phrase);
        free(payload.data);
    }
    workspace_close(&w);
}
END_TEST

/* An array as large as the header allows, in a stream that ends after a
 * few kilobytes: told apart once the stream has ended, and nothing leaks. */
START_TEST(stream_shorter_than_its_arrays_fails) {
    workspace w;
    workspace_open(&w);
    enum { NOISE = 70000, CLAIMED = 64 << 20 };
    buffer raw = {0};
    put_le(&raw, 1, 4);
    put_record(&raw, "noise", 5, 2, 1, (uint64_t[]){CLAIMED}, NULL, 0, 1);
    uint32_t state = 99;
    for (int i = 0; i < NOISE; i++) put_le(&raw, (state = state * 1664525u + 1013904223u) >> 24, 1);
    int64_t declared = (int64_t)raw.size - NOISE + CLAIMED;
    write_container(w.path, &raw, (container){1, 0, declared, NULL, 0});
    char phrase[128];
    snprintf(phrase, sizeof phrase, "payload inflates to %zu bytes, the header gives %" PRId64, raw.size, declared);
    expect_input_error(w.path, phrase);
    free(raw.data);
    workspace_close(&w);
}
END_TEST

/* The most arrays a checkpoint holds round trip, one more is refused. */
START_TEST(array_count_limit) {
    workspace w;
    workspace_open(&w);
    enum { LIMIT = 65536 };
    nn_array *arrays = calloc(LIMIT + 1, sizeof *arrays);
    uint8_t value = 3;
    for (int i = 0; i <= LIMIT; i++) arrays[i] = make_array("", NN_U8, 0, NULL, &value);
    for (int i = 0; i <= LIMIT; i++) snprintf(arrays[i].name, sizeof arrays[i].name, "a%d", i);
    nn_error err = {0};
    ck_assert_int_eq(nn_container_write(w.path, arrays, LIMIT + 1, &err), -1);
    ck_assert_msg(strstr(err.message, "65537 arrays, a checkpoint holds at most 65536"), "%s", err.message);
    ck_assert_msg(nn_container_write(w.path, arrays, LIMIT, &err) == 0, "%s", err.message);
    nn_array *read;
    size_t count;
    ck_assert_msg(nn_container_read(w.path, &read, &count, &err) == 0, "%s", err.message);
    const char *why = arrays_differ(arrays, LIMIT, read, count);
    ck_assert_msg(!why, "%s", why);
    nn_arrays_free(read, count);
    free(arrays);
    workspace_close(&w);
}
END_TEST

/* Bytes of address space the process has mapped now. */
static size_t mapped_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (f) {
        ck_assert_int_eq(fscanf(f, "%lu", &pages), 1);
        fclose(f);
    }
    return pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* Reading holds the arrays and little else: a 64 MiB array reads within
 * 64 MiB and 24 MiB to spare of address space, where holding the raw
 * payload beside it would need twice as much. (ASan maps its own.) */
START_TEST(reading_holds_the_arrays_only) {
#if defined(__SANITIZE_ADDRESS__)
    return;
#endif
    FILE *probe = fopen("/proc/self/statm", "r");
    if (!probe) return;
    fclose(probe);
    workspace w;
    workspace_open(&w);
    enum { SIZE = 64 << 20 };
    buffer raw = {0};
    put_le(&raw, 1, 4);
    put_record(&raw, "zeros", 5, 2, 1, (uint64_t[]){SIZE}, NULL, 0, 1);
    size_t head = raw.size;
    raw.data = realloc(raw.data, head + SIZE);
    memset(raw.data + head, 0, SIZE);
    raw.data[head + SIZE - 1] = 0x5A;
    raw.size = raw.capacity = head + SIZE;
    write_container(w.path, &raw, plain);
    free(raw.data);
    struct rlimit saved, limit;
    getrlimit(RLIMIT_AS, &saved);
    limit = saved;
    limit.rlim_cur = mapped_bytes() + SIZE + (24 << 20);
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &limit), 0);
    nn_array *arrays;
    size_t count;
    nn_error err = {0};
    int status = nn_container_read(w.path, &arrays, &count, &err);
    setrlimit(RLIMIT_AS, &saved);
    ck_assert_msg(status == 0, "%s", err.message);
    ck_assert_uint_eq(count, 1);
    ck_assert_uint_eq(nn_array_bytes(&arrays[0]), SIZE);
    const uint8_t *data = arrays[0].data;
    ck_assert_uint_eq(data[0], 0);
    ck_assert_uint_eq(data[SIZE - 1], 0x5A);
    nn_arrays_free(arrays, count);
    workspace_close(&w);
}
END_TEST

/* ---- fuzzing ---- */

typedef struct fuzz_rng {
    uint64_t state;
} fuzz_rng;

static uint64_t fuzz_next(fuzz_rng *r) { /* splitmix64 */
    uint64_t z = (r->state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static size_t fuzz_below(fuzz_rng *r, size_t n) { return (size_t)(fuzz_next(r) % n); }

/* Changes 1 to 4 bytes, or cuts the end off, or appends bytes; the result
 * has at least one byte and at most size + 8 (buffer holds that much). */
static size_t mutate(fuzz_rng *r, unsigned char *data, size_t size) {
    static const unsigned char interesting[] = {0, 1, 2, 3, 4, 5, 63, 64, 0x7F, 0x80, 0xFF};
    switch (fuzz_below(r, 6)) {
    case 0: return 1 + fuzz_below(r, size);
    case 1:
        for (int i = 0; i < 8; i++) data[size + i] = (unsigned char)fuzz_next(r);
        return size + 1 + fuzz_below(r, 8);
    default:
        for (size_t k = 1 + fuzz_below(r, 4); k > 0; k--) {
            size_t at = fuzz_below(r, size);
            data[at] = fuzz_below(r, 2) ? (unsigned char)fuzz_next(r)
                                        : interesting[fuzz_below(r, sizeof interesting)];
        }
        return size;
    }
}

/* Random damage to a whole file: the CRCs stand in the way, so every
 * changed file must fail cleanly (or be the same arrays, if unchanged). */
START_TEST(fuzz_file_bytes) {
    workspace w;
    workspace_open(&w);
    sample s;
    sample_init(&s);
    write_sample(w.path, &s);
    size_t size;
    unsigned char *file = slurp(w.path, &size);
    unsigned char *copy = malloc(size + 8);
    char damaged[600];
    snprintf(damaged, sizeof damaged, "%s/damaged.ckpt", w.dir);
    fuzz_rng rng = {20240611};
    int failed = 0;
    for (int iteration = 0; iteration < 3000; iteration++) {
        memcpy(copy, file, size);
        size_t length = mutate(&rng, copy, size);
        ck_assert_int_eq(testutil_write_file(damaged, copy, length), 0);
        nn_array *arrays;
        size_t count;
        nn_error err = {0};
        if (nn_container_read(damaged, &arrays, &count, &err) == 0) {
            const char *why = arrays_differ(s.arrays, 7, arrays, count);
            ck_assert_msg(!why, "iteration %d read different arrays: %s", iteration, why);
            ck_assert_msg(length == size && !memcmp(copy, file, size), "iteration %d: changed file read",
                          iteration);
            nn_arrays_free(arrays, count);
        } else {
            ck_assert_msg(err.status == NN_ERR_INPUT && !strncmp(err.message, damaged, strlen(damaged)),
                          "iteration %d: %s", iteration, err.message);
            failed++;
        }
    }
    ck_assert_int_gt(failed, 2900);
    free(copy);
    free(file);
    workspace_close(&w);
}
END_TEST

/* A naive reader of the documented payload, written apart from archive.c:
 * the number of arrays (pointing into raw), or -1 for an invalid payload. */
static long reference_parse(const unsigned char *raw, size_t size, nn_array *out, size_t capacity) {
    size_t at = 4;
#define NEED(n) if ((n) > size - at) return -1
    if (size < 4) return -1;
    uint64_t count = 0;
    for (int i = 3; i >= 0; i--) count = count << 8 | raw[i];
    if (count > capacity) return -1;
    for (uint64_t a = 0; a < count; a++) {
        nn_array *array = &out[a];
        memset(array, 0, sizeof *array);
        NEED(2);
        size_t length = raw[at] | (size_t)raw[at + 1] << 8;
        at += 2;
        if (length == 0 || length > 63) return -1;
        NEED(length);
        if (memchr(raw + at, 0, length)) return -1;
        memcpy(array->name, raw + at, length);
        at += length;
        NEED(2);
        if (raw[at] > 2 || raw[at + 1] > 4) return -1;
        array->dtype = (nn_dtype)raw[at];
        array->rank = raw[at + 1];
        at += 2;
        long double product = 1; /* wide enough to see an overflow coming */
        for (int d = 0; d < array->rank; d++) {
            NEED(8);
            uint64_t dim = 0;
            for (int i = 7; i >= 0; i--) dim = dim << 8 | raw[at + i];
            at += 8;
            if (dim > INT64_MAX) return -1;
            array->dims[d] = (int64_t)dim;
            if (dim) product *= dim;
        }
        size_t element_size = array->dtype == NN_F32 ? 4 : array->dtype == NN_I64 ? 8 : 1;
        if (product * element_size > (long double)INT64_MAX) return -1;
        size_t bytes = nn_array_bytes(array);
        NEED(bytes);
        array->data = (void *)(raw + at);
        at += bytes;
        for (uint64_t b = 0; b < a; b++)
            if (!strcmp(out[b].name, array->name)) return -1;
    }
#undef NEED
    return at == size ? (long)count : -1;
}

/* Random damage to the raw payload, recompressed under correct CRCs so it
 * reaches the record parser: archive.c must agree with the naive reader on
 * every payload, accepting the same arrays or failing cleanly. */
START_TEST(fuzz_payload_records) {
    workspace w;
    workspace_open(&w);
    sample s;
    sample_init(&s);
    buffer raw = {0};
    sample_payload(&s, &raw);
    size_t size = raw.size;
    put_bytes(&raw, "12345678", 8); /* room for mutate to append */
    unsigned char *original = malloc(size);
    memcpy(original, raw.data, size);
    size_t capacity = size / 6 + 1;
    nn_array *expected = malloc(capacity * sizeof *expected);
    fuzz_rng rng = {7};
    int accepted = 0, rejected = 0;
    for (int iteration = 0; iteration < 3000; iteration++) {
        memcpy(raw.data, original, size);
        raw.size = mutate(&rng, raw.data, size);
        write_container(w.path, &raw, plain);
        long expected_count = reference_parse(raw.data, raw.size, expected, capacity);
        nn_array *arrays;
        size_t count;
        nn_error err = {0};
        int status = nn_container_read(w.path, &arrays, &count, &err);
        ck_assert_msg((status == 0) == (expected_count >= 0), "iteration %d: reference %ld, archive.c: %s",
                      iteration, expected_count, status == 0 ? "accepted" : err.message);
        if (status == 0) {
            const char *why = arrays_differ(expected, (size_t)expected_count, arrays, count);
            ck_assert_msg(!why, "iteration %d: %s", iteration, why);
            nn_arrays_free(arrays, count);
            accepted++;
        } else {
            ck_assert_msg(err.status == NN_ERR_INPUT && !strncmp(err.message, w.path, strlen(w.path)),
                          "iteration %d: %s", iteration, err.message);
            rejected++;
        }
    }
    /* Both outcomes must be common, or the fuzzing tested little. */
    ck_assert_int_gt(accepted, 300);
    ck_assert_int_gt(rejected, 300);
    free(expected);
    free(original);
    free(raw.data);
    workspace_close(&w);
}
END_TEST

int main(void) {
    Suite *suite = suite_create("archive");
    TCase *tc = tcase_create("archive");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, round_trip_keeps_every_array);
    tcase_add_test(tc, round_trip_of_no_arrays);
    tcase_add_test(tc, file_matches_documented_layout);
    tcase_add_test(tc, same_arrays_give_same_bytes);
    tcase_add_test(tc, hand_made_file_reads);
    tcase_add_test(tc, write_rejects_invalid_arrays);
    tcase_add_test(tc, write_replaces_existing_file);
    tcase_add_test(tc, write_into_missing_folder_fails);
    tcase_add_test(tc, write_over_a_folder_fails);
    tcase_add_test(tc, failed_write_keeps_old_file);
    tcase_add_test(tc, write_sets_usual_permissions);
    tcase_add_test(tc, read_missing_empty_short_foreign);
    tcase_add_test(tc, every_byte_flip_fails);
    tcase_add_test(tc, every_truncation_fails);
    tcase_add_test(tc, newer_version_and_unknown_flags);
    tcase_add_test(tc, sizes_that_lie);
    tcase_add_test(tc, records_that_lie);
    tcase_add_test(tc, claims_beyond_the_file_are_refused);
    tcase_add_test(tc, stream_shorter_than_its_arrays_fails);
    tcase_add_test(tc, array_count_limit);
    tcase_add_test(tc, reading_holds_the_arrays_only);
    tcase_add_test(tc, fuzz_file_bytes);
    tcase_add_test(tc, fuzz_payload_records);
    suite_add_tcase(suite, tc);
    return testutil_run(suite);
}
