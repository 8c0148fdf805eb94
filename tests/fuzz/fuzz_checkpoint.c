/* libFuzzer harness for the checkpoint readers: the container
 * (lib/io/container.h nn_container_read) and what is in it
 * (lib/io/checkpoint.h nn_checkpoint_load, nn_checkpoint_read_config). All
 * container and the loader read each input, the config reader where its
 * answer is known; a failure must be an input error naming the file, the
 * three must fail alike when the container does, and a checkpoint that
 * loads must have a config that reads.
 *
 * Both CRCs guard the payload, so raw mutations of a file seldom get past
 * the header. The first byte is a control byte, not data; its bits 0..1:
 *   0  the rest is the file as it is;
 *   1  the rest is the raw (inflated) payload, which the harness compresses
 *      and heads with a valid header: mutations reach the records, the
 *      arrays and the stored config;
 *   2  the rest is the file, with the compressed size and both CRCs fixed
 *      up: mutations reach the raw size and the zlib stream;
 *   3  as 1.
 * Bit 2 is allow_nonfinite. Payloads (1, 3) also get a structure-aware
 * mutator that changes one array's name, type, shape or values and keeps
 * the record lengths consistent, so that a change reaches the checkpoint
 * reader (stored config, model, state) rather than stopping at the record
 * parser. Seeds: tests/fuzz/corpus/checkpoint. */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "config/config.h"
#include "core/error.h"
#include "io/checkpoint.h"
#include "io/container.h"

/* The layout of container.h. */
#define HEADER_BYTES 40
#define HEADER_CRC_OFFSET 36

/* The readers open files by name: the input goes to a memfd, rewritten for
 * each input, so nothing is left on disk whatever ends the process. */
static const char *input_file(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz_checkpoint", MFD_CLOEXEC);
        if (fd < 0) {
            perror("fuzz_checkpoint: memfd_create");
            abort();
        }
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size)) {
        perror("fuzz_checkpoint: writing the input");
        abort();
    }
    return path;
}

static void fail(const char *what, const nn_error *err) {
    fprintf(stderr, "fuzz_checkpoint: %s%s%s\n", what, err ? ": " : "", err ? err->message : "");
    abort();
}

/* A failure must be bad input, told as such, naming the file. */
static void check_error(const char *reader, const nn_error *err, const char *path) {
    if (err->status != NN_ERR_INPUT || !strstr(err->message, path)) {
        fprintf(stderr, "fuzz_checkpoint: %s failed with status %d and a message that %s the file: %s\n", reader,
                err->status, strstr(err->message, path) ? "names" : "does not name", err->message);
        abort();
    }
}

static void put_le(unsigned char *out, uint64_t value, int bytes) {
    for (int i = 0; i < bytes; i++) out[i] = (unsigned char)(value >> (8 * i));
}

static uint64_t get_le(const uint8_t *in, int bytes) {
    uint64_t value = 0;
    for (int i = 0; i < bytes; i++) value |= (uint64_t)in[i] << (8 * i);
    return value;
}

static void seal_header(unsigned char *file, uint64_t compressed, uint64_t raw) {
    put_le(file + 16, compressed, 8);
    put_le(file + 24, raw, 8);
    put_le(file + 32, crc32_z(0, file + HEADER_BYTES, (size_t)compressed), 4);
    put_le(file + HEADER_CRC_OFFSET, crc32_z(0, file, HEADER_CRC_OFFSET), 4);
}

/* A container file around payload, as nn_container_write makes it. */
static unsigned char *wrap_payload(const uint8_t *payload, size_t size, size_t *file_size) {
    uLong bound = compressBound((uLong)size);
    unsigned char *file = malloc(HEADER_BYTES + bound);
    if (!file) fail("out of memory wrapping the payload", NULL);
    uLong compressed = bound;
    if (compress2(file + HEADER_BYTES, &compressed, payload, (uLong)size, 6) != Z_OK) fail("compress2 failed", NULL);
    memcpy(file, "NNSEQCK\0", 8);
    put_le(file + 8, NN_ARCHIVE_VERSION, 4);
    put_le(file + 12, 0, 4);
    seal_header(file, compressed, size);
    *file_size = HEADER_BYTES + compressed;
    return file;
}

/* ------------------------------------------------ structure-aware mutation */

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

#define MAX_RECORDS 512

/* One array of a payload; name and data point into the input or into
 * spare, the mutated copy. */
typedef struct record {
    const uint8_t *name;
    size_t name_length;
    uint8_t dtype, rank;
    uint64_t dims[NN_MAX_RANK];
    const uint8_t *data;
    size_t data_length;
} record;

typedef struct payload {
    record records[MAX_RECORDS];
    size_t count;
} payload;

static size_t value_bytes(uint8_t dtype) { return dtype == NN_U8 ? 1 : dtype == NN_F32 ? 4 : dtype == NN_I64 ? 8 : 0; }

/* The records of a payload that the container reader would take whole;
 * false for anything else. */
static bool parse_payload(const uint8_t *in, size_t size, payload *p) {
    if (size < 4 || (p->count = get_le(in, 4)) > MAX_RECORDS) return false;
    size_t at = 4;
    for (size_t i = 0; i < p->count; i++) {
        record *r = &p->records[i];
        if (size - at < 2 || size - at - 2 < (r->name_length = get_le(in + at, 2)) + 2) return false;
        r->name = in + at + 2;
        at += 2 + r->name_length;
        r->dtype = in[at];
        r->rank = in[at + 1];
        at += 2;
        uint64_t elements = 1;
        if (!value_bytes(r->dtype) || r->rank > NN_MAX_RANK || size - at < 8u * r->rank) return false;
        for (int d = 0; d < r->rank; d++, at += 8) {
            r->dims[d] = get_le(in + at, 8);
            if (r->dims[d] && elements > size / r->dims[d]) return false;
            elements *= r->dims[d];
        }
        if (elements > (size - at) / value_bytes(r->dtype)) return false;
        r->data = in + at;
        r->data_length = elements * value_bytes(r->dtype);
        at += r->data_length;
    }
    return at == size;
}

static size_t payload_size(const payload *p) {
    size_t size = 4;
    for (size_t i = 0; i < p->count; i++)
        size += 4 + p->records[i].name_length + 8u * p->records[i].rank + p->records[i].data_length;
    return size;
}

static void write_payload(const payload *p, uint8_t *out) {
    put_le(out, p->count, 4);
    out += 4;
    for (size_t i = 0; i < p->count; i++) {
        const record *r = &p->records[i];
        put_le(out, r->name_length, 2);
        memcpy(out + 2, r->name, r->name_length);
        out += 2 + r->name_length;
        *out++ = r->dtype;
        *out++ = r->rank;
        for (int d = 0; d < r->rank; d++, out += 8) put_le(out, r->dims[d], 8);
        if (r->data_length) memcpy(out, r->data, r->data_length);
        out += r->data_length;
    }
}

static uint32_t next_random(uint32_t *state) {
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    return *state;
}

/* Array r's data resized to its dims (zeros added at the end, or cut). */
static void fit_data(record *r, uint8_t *spare, size_t room) {
    uint64_t elements = 1;
    for (int d = 0; d < r->rank; d++) {
        if (r->dims[d] && elements > room / r->dims[d]) return; /* claims more than there is: left so */
        elements *= r->dims[d];
    }
    if (elements > room / value_bytes(r->dtype)) return;
    size_t length = elements * value_bytes(r->dtype);
    memset(spare, 0, length);
    memcpy(spare, r->data, length < r->data_length ? length : r->data_length);
    r->data = spare;
    r->data_length = length;
}

/* One change to one array, using spare (room bytes) for new bytes. */
static void mutate_record(payload *p, uint32_t *state, uint8_t *spare, size_t room) {
    record *r = &p->records[next_random(state) % p->count];
    /* The stored config's text is fuzz_config's ground; here it mostly
     * stays, so that inputs get past it to the model and its state. */
    if (r->dtype == NN_U8 && next_random(state) % 4) r = &p->records[next_random(state) % p->count];
    switch (next_random(state) % 7) {
    case 0: case 1: { /* the values (the text of config.yaml and the like: any length) */
        bool fixed = r->dtype != NN_U8 || r->rank != 1;
        size_t length = r->data_length;
        if (length > room || (fixed && length == 0)) return;
        memcpy(spare, r->data, length);
        size_t got = LLVMFuzzerMutate(spare, length, fixed ? length : room);
        if (fixed && got < length) memset(spare + got, 0, length - got);
        r->data = spare;
        r->data_length = fixed ? length : got;
        if (!fixed) r->dims[0] = got;
        return;
    }
    case 2: { /* one dimension */
        if (r->rank == 0) return;
        static const uint64_t picks[] = {0, 1, 2, 3, 7, 64, 1000, 1u << 16, 1u << 28, (uint64_t)1 << 31,
                                         (uint64_t)1 << 32, UINT64_MAX};
        uint64_t *dim = &r->dims[next_random(state) % r->rank];
        uint32_t how = next_random(state);
        *dim = how % 3 == 0 ? *dim + 1 : how % 3 == 1 ? *dim - 1 : picks[how / 3 % (sizeof picks / sizeof *picks)];
        fit_data(r, spare, room);
        return;
    }
    case 3: { /* the rank, keeping the values */
        uint64_t elements = r->data_length / value_bytes(r->dtype);
        r->rank = (uint8_t)(next_random(state) % (NN_MAX_RANK + 1));
        for (int d = 0; d < r->rank; d++) r->dims[d] = d == 0 ? elements : 1;
        if (r->rank == 0) fit_data(r, spare, room);
        return;
    }
    case 4: /* the type */
        r->dtype = (uint8_t)(next_random(state) % 3);
        fit_data(r, spare, room);
        return;
    case 5: { /* the name */
        size_t most = room < 80 ? room : 80, length = r->name_length < most ? r->name_length : most;
        memcpy(spare, r->name, length);
        r->name_length = LLVMFuzzerMutate(spare, length, most);
        r->name = spare;
        return;
    }
    default: /* drop it */
        *r = p->records[--p->count];
        return;
    }
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed) {
    uint32_t state = seed | 1;
    static payload p;
    if (size < 2 || !(data[0] & 1) || next_random(&state) % 16 == 0 || !parse_payload(data + 1, size - 1, &p) ||
        p.count == 0)
        return LLVMFuzzerMutate(data, size, max_size);
    /* A fresh copy, for the new bytes and the result. */
    uint8_t *copy = malloc(2 * max_size);
    if (!copy) return LLVMFuzzerMutate(data, size, max_size);
    memcpy(copy, data, size);
    parse_payload(copy + 1, size - 1, &p);
    mutate_record(&p, &state, copy + max_size, max_size);
    size_t new_size = 1 + payload_size(&p);
    if (new_size <= max_size) {
        uint8_t *out = malloc(new_size);
        if (out) {
            out[0] = copy[0];
            write_payload(&p, out + 1);
            memcpy(data, out, new_size);
            free(out);
            size = new_size;
        }
    }
    free(copy);
    return size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t control = data[0];
    data++, size--;
    unsigned char *made = NULL;
    if (control & 1) {
        made = wrap_payload(data, size, &size);
    } else if ((control & 3) == 2 && size >= HEADER_BYTES) {
        if (!(made = malloc(size))) fail("out of memory", NULL);
        memcpy(made, data, size);
        seal_header(made, size - HEADER_BYTES, get_le(made + 24, 8));
    }
    const char *path = input_file(made ? made : data, size);
    free(made);
    bool allow_nonfinite = control & 4;

    nn_error container_err = {0};
    nn_array *arrays;
    size_t count;
    int container_status = nn_container_read(path, &arrays, &count, &container_err);
    if (container_status) {
        check_error("nn_container_read", &container_err, path);
        if (arrays || count) fail("nn_container_read failed but left arrays", NULL);
    } else {
        for (size_t i = 0; i < count; i++)
            if (!memchr(arrays[i].name, '\0', sizeof arrays[i].name) || arrays[i].rank < 0 ||
                arrays[i].rank > NN_MAX_RANK)
                fail("nn_container_read gave an array with no name or a bad rank", NULL);
        nn_arrays_free(arrays, count);
    }

    nn_error load_err = {0};
    nn_checkpoint ck;
    int load_status = nn_checkpoint_load(&ck, path, allow_nonfinite, &load_err);
    if (load_status) {
        check_error("nn_checkpoint_load", &load_err, path);
        if (ck.model || ck.arrays || ck.config.text) fail("nn_checkpoint_load failed but left memory", NULL);
    } else {
        if (!ck.model || ck.epoch < 0) fail("nn_checkpoint_load gave no model or a negative epoch", NULL);
        nn_checkpoint_free(&ck);
    }
    if (container_status && (!load_status || strcmp(container_err.message, load_err.message)))
        fail("the container fails but nn_checkpoint_load says otherwise", &load_err);

    /* The config alone only where its answer is known: reading it for every
     * input would fill the corpus with stored configs in files that fail
     * before the model (their other arrays dropped to make them smaller),
     * and configs are fuzz_config's. */
    if (load_status && !container_status) return 0;
    nn_error config_err = {0};
    nn_config cfg;
    int config_status = nn_checkpoint_read_config(&cfg, path, &config_err);
    if (config_status) {
        check_error("nn_checkpoint_read_config", &config_err, path);
        if (!load_status) fail("the checkpoint loads but its config does not read", &config_err);
        if (strcmp(container_err.message, config_err.message))
            fail("the container fails but nn_checkpoint_read_config says otherwise", &config_err);
    } else {
        if (container_status) fail("nn_checkpoint_read_config reads a container that fails", &container_err);
        nn_config_free(&cfg);
    }
    return 0;
}
