/* libFuzzer harness for the IDX readers (lib/data/idx.h): every input is
 * read three ways, nn_idx_read, nn_idx_open + nn_idx_read_all and the
 * streaming reader, and the three must agree: all succeed with the same
 * values or all fail, each failure an input error that names the file.
 *
 * The first byte is a control byte, not data: bit 0 set gzip-wraps the rest
 * (so that mutations of the IDX bytes also reach the decompressing path,
 * which raw mutations of a gzip file rarely get past the CRC to), bits 3..7
 * are the streaming reader's chunk in items minus one. Seeds:
 * tests/fuzz/corpus/idx; see tests/fuzz/README.md. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "core/error.h"
#include "core/shape.h"
#include "data/idx.h"

/* What the caller of nn_idx_stream_read would allocate at most (predict
 * sizes it from the model's input, which no 64 KiB input can outgrow). */
#define STREAM_BUFFER_FLOATS ((size_t)1 << 24)

/* The readers open files by name: the input goes to a memfd, rewritten for
 * each input, so nothing is left on disk whatever ends the process. */
static const char *input_file(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz_idx", MFD_CLOEXEC);
        if (fd < 0) {
            perror("fuzz_idx: memfd_create");
            abort();
        }
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size)) {
        perror("fuzz_idx: writing the input");
        abort();
    }
    return path;
}

static void fail(const char *what, const nn_error *err) {
    fprintf(stderr, "fuzz_idx: %s%s%s\n", what, err ? ": " : "", err ? err->message : "");
    abort();
}

/* A failure must be bad input, told as such, naming the file. */
static void check_error(const char *reader, const nn_error *err, const char *path) {
    if (err->status != NN_ERR_INPUT || !strstr(err->message, path)) {
        fprintf(stderr, "fuzz_idx: %s failed with status %d and a message that %s the file: %s\n", reader,
                err->status, strstr(err->message, path) ? "names" : "does not name", err->message);
        abort();
    }
}

/* data as one gzip member; NULL if zlib fails (out of memory). */
static unsigned char *gzip_wrap(const uint8_t *data, size_t size, size_t *out_size) {
    z_stream z = {0};
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return NULL;
    uLong bound = deflateBound(&z, (uLong)size);
    unsigned char *out = malloc(bound);
    if (out) {
        z.next_in = (Bytef *)data;
        z.avail_in = (uInt)size;
        z.next_out = out;
        z.avail_out = (uInt)bound;
        if (deflate(&z, Z_FINISH) == Z_STREAM_END) {
            *out_size = z.total_out;
        } else {
            free(out);
            out = NULL;
        }
    }
    deflateEnd(&z);
    return out;
}

/* The whole-file readers' values as the stream gives them. */
static float *as_floats(const nn_array *array) {
    size_t count = nn_array_count(array), size = nn_dtype_size(array->dtype);
    float *out = malloc(count * sizeof *out + 1);
    if (!out) fail("out of memory converting", NULL);
    for (size_t i = 0; i < count; i++) {
        uint64_t raw = 0;
        memcpy(&raw, (const unsigned char *)array->data + i * size, size); /* little-endian host */
        out[i] = nn_dtype_bits_to_float(array->dtype, raw);
    }
    return out;
}

/* All of the stream into *values (malloc'ed, *count floats); 0, or -1 with err
 * set; 1 if the items are too large for a caller's buffer (not read). */
static int read_stream(const char *path, int chunk, float **values, size_t *count, nn_error *err) {
    *values = NULL;
    *count = 0;
    nn_idx_stream *stream = nn_idx_stream_open(path, err);
    if (!stream) return -1;
    size_t item = nn_idx_stream_item_values(stream);
    int64_t items = nn_idx_stream_dims(stream)[0];
    if (item == 0 || items < 1) fail("the stream's header has no items", NULL);
    if (item > STREAM_BUFFER_FLOATS / (size_t)chunk) {
        nn_idx_stream_close(stream);
        return 1;
    }
    float *all = malloc((size_t)items * item * sizeof *all + 1);
    if (!all) fail("out of memory for the stream's items", NULL);
    int status = 0;
    size_t done = 0;
    for (;;) {
        int got = nn_idx_stream_read(stream, all + done * item, chunk, err);
        if (got < 0) {
            status = -1;
            break;
        }
        if (got == 0) break;
        done += (size_t)got;
        if (done > (size_t)items) fail("the stream gave more items than its header promises", NULL);
    }
    if (status == 0 && done != (size_t)items) fail("the stream ended early without an error", NULL);
    nn_idx_stream_close(stream);
    if (status) {
        free(all);
        return -1;
    }
    *values = all;
    *count = done * item;
    return 0;
}

static void check_same(const nn_array *a, const nn_array *b) {
    if (a->dtype != b->dtype || a->rank != b->rank || memcmp(a->dims, b->dims, sizeof a->dims) ||
        memcmp(a->data, b->data, nn_array_bytes(a)))
        fail("nn_idx_read and nn_idx_open + nn_idx_read_all disagree", NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t control = data[0];
    data++, size--;
    unsigned char *wrapped = NULL;
    if (control & 1) {
        if (!(wrapped = gzip_wrap(data, size, &size))) fail("gzip_wrap failed", NULL);
        data = wrapped;
    }
    const char *path = input_file(data, size);
    free(wrapped);

    nn_error err = {0};
    nn_array whole;
    int whole_status = nn_idx_read(path, &whole, &err);
    if (whole_status) {
        check_error("nn_idx_read", &err, path);
        if (whole.data) fail("nn_idx_read failed but left data", NULL);
    } else if (nn_array_count(&whole) == 0 || whole.rank < 1 || whole.rank > NN_MAX_RANK) {
        fail("nn_idx_read gave an empty or badly ranked array", NULL);
    }

    nn_error two_err = {0};
    nn_array two = {0};
    nn_idx_stream *opened = nn_idx_open(path, &two_err);
    int two_status = opened ? nn_idx_read_all(opened, &two, &two_err) : -1;
    nn_idx_stream_close(opened);
    if (two_status != whole_status || (whole_status && strcmp(err.message, two_err.message)))
        fail("nn_idx_read and nn_idx_open + nn_idx_read_all disagree on", whole_status ? &err : &two_err);
    if (!whole_status) check_same(&whole, &two);
    free(two.data);

    nn_error stream_err = {0};
    float *values;
    size_t count;
    int stream_status = read_stream(path, 1 + (control >> 3), &values, &count, &stream_err);
    if (stream_status < 0) check_error("the stream", &stream_err, path);
    if (stream_status <= 0 && (stream_status == 0) != (whole_status == 0))
        fail(whole_status ? "the stream reads what nn_idx_read refuses" : "the stream refuses what nn_idx_read reads",
             whole_status ? &err : &stream_err);
    if (stream_status == 0 && whole_status == 0) {
        float *expected = as_floats(&whole);
        if (count != nn_array_count(&whole) || memcmp(values, expected, count * sizeof *values))
            fail("the stream and nn_idx_read give different values", NULL);
        free(expected);
    }
    free(values);
    free(whole.data);
    return 0;
}
