#include "io/container.h"

#include "io/atomic_file.h"
#include "io/file_kind.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define HEADER_BYTES 40
#define HEADER_CRC_OFFSET 36
#define COMPRESSION_LEVEL 6
#define NAME_CAPACITY sizeof(((nn_array *)0)->name)
/* The smallest record: 2-byte name length, a 1-byte name, dtype, rank 0 and
 * one u8 element. Bounds the array count a payload of a given size can hold. */
#define MIN_RECORD_BYTES 6
/* The largest raw payload either side accepts. */
#define MAX_RAW_BYTES ((uint64_t)1 << 32)
/* The most arrays either side accepts: far more than any model has (five
 * per layer at most, and a few for the run), and few enough that the list
 * of a file that claims them all stays a few MB. */
#define MAX_ARRAYS 65536
/* Compressed bytes read from the file at a time. */
#define INPUT_CHUNK 32768
/* Deflate cannot expand more than 1032:1 (a 258-byte match in at least two
 * bits), so a larger raw size is a lie and must not cost an allocation. */
#define MAX_DEFLATE_RATIO 1032

static const unsigned char magic[8] = {'N', 'N', 'S', 'E', 'Q', 'C', 'K', '\0'};

typedef struct header {
    uint32_t version, flags;
    uint64_t compressed_bytes, raw_bytes;
    uint32_t payload_crc;
} header;

/* The file is little-endian whatever the host: every integer goes through
 * these, byte by byte. */
static void put_u16(unsigned char *out, uint16_t value) {
    for (int i = 0; i < 2; i++) out[i] = (unsigned char)(value >> (8 * i));
}

static void put_u32(unsigned char *out, uint32_t value) {
    for (int i = 0; i < 4; i++) out[i] = (unsigned char)(value >> (8 * i));
}

static void put_u64(unsigned char *out, uint64_t value) {
    for (int i = 0; i < 8; i++) out[i] = (unsigned char)(value >> (8 * i));
}

static uint16_t get_u16(const unsigned char *in) { return (uint16_t)(in[0] | in[1] << 8); }

static uint32_t get_u32(const unsigned char *in) {
    uint32_t value = 0;
    for (int i = 3; i >= 0; i--) value = value << 8 | in[i];
    return value;
}

static uint64_t get_u64(const unsigned char *in) {
    uint64_t value = 0;
    for (int i = 7; i >= 0; i--) value = value << 8 | in[i];
    return value;
}

static int dtype_known(unsigned dtype) { return dtype == NN_F32 || dtype == NN_I64 || dtype == NN_U8; }

/* Elements of dims[0..rank), or -1 when the product of the non-zero dims
 * passes INT64_MAX / element_size: rejected even when another dim is zero,
 * so that the answer does not depend on the order of the dims. */
static int64_t element_count(const int64_t *dims, int rank, size_t element_size) {
    int64_t product = 1, limit = INT64_MAX / (int64_t)element_size;
    int empty = 0;
    for (int i = 0; i < rank; i++) {
        if (dims[i] == 0) empty = 1;
        else if (product > limit / dims[i]) return -1;
        else product *= dims[i];
    }
    return empty ? 0 : product;
}

/* Sorting by name finds a repeated name in n log n: a damaged file may claim
 * millions of arrays. Returns the index of a repeated name, count if none,
 * or -1 when out of memory. */
static int compare_names(const void *a, const void *b) {
    return strcmp((*(const nn_array *const *)a)->name, (*(const nn_array *const *)b)->name);
}

static ptrdiff_t find_repeated_name(const nn_array *arrays, size_t count) {
    const nn_array **sorted = malloc((count ? count : 1) * sizeof *sorted);
    if (!sorted) return -1;
    for (size_t i = 0; i < count; i++) sorted[i] = &arrays[i];
    qsort(sorted, count, sizeof *sorted, compare_names);
    ptrdiff_t repeated = (ptrdiff_t)count;
    for (size_t i = 1; i < count && repeated == (ptrdiff_t)count; i++)
        if (strcmp(sorted[i - 1]->name, sorted[i]->name) == 0) repeated = sorted[i] - arrays;
    free(sorted);
    return repeated;
}

/* ---- writing ---- */

/* Checks one array the writer was given; *bytes is its record's size in
 * the raw payload. */
static int check_array(const char *path, const nn_array *array, size_t index, uint64_t *bytes, nn_error *err) {
    size_t name_length = strnlen(array->name, NAME_CAPACITY);
    if (name_length == 0) return nn_error_set(err, NN_ERR_INPUT, "%s: array %zu has an empty name", path, index);
    if (name_length == NAME_CAPACITY)
        return nn_error_set(err, NN_ERR_INPUT, "%s: array %zu: name not NUL-terminated within %zu bytes", path,
                            index, NAME_CAPACITY);
    if (!dtype_known((unsigned)array->dtype))
        return nn_error_set(err, NN_ERR_INPUT, "%s: array '%s': unknown dtype %d", path, array->name,
                            (int)array->dtype);
    if (array->rank < 0 || array->rank > NN_MAX_RANK)
        return nn_error_set(err, NN_ERR_INPUT, "%s: array '%s': rank %d, expected 0 to %d", path, array->name,
                            array->rank, NN_MAX_RANK);
    for (int i = 0; i < array->rank; i++)
        if (array->dims[i] < 0)
            return nn_error_set(err, NN_ERR_INPUT, "%s: array '%s': dimension %d is %" PRId64, path, array->name,
                                i, array->dims[i]);
    int64_t elements = element_count(array->dims, array->rank, nn_dtype_size(array->dtype));
    uint64_t data_bytes = (uint64_t)elements * nn_dtype_size(array->dtype);
    if (elements < 0 || data_bytes > MAX_RAW_BYTES)
        return nn_error_set(err, NN_ERR_INPUT, "%s: array '%s': larger than the 4 GiB a checkpoint holds", path,
                            array->name);
    if (data_bytes > 0 && !array->data)
        return nn_error_set(err, NN_ERR_INPUT, "%s: array '%s' has no data", path, array->name);
    *bytes = 2 + name_length + 2 + 8 * (uint64_t)array->rank + data_bytes;
    return 0;
}

/* Checks every array before anything is touched on disk; *raw_bytes is the
 * raw payload's size. */
static int check_arrays(const char *path, const nn_array *arrays, size_t count, uint64_t *raw_bytes,
                        nn_error *err) {
    if (count > MAX_ARRAYS)
        return nn_error_set(err, NN_ERR_INPUT, "%s: %zu arrays, a checkpoint holds at most %d", path, count,
                            MAX_ARRAYS);
    *raw_bytes = 4;
    for (size_t i = 0; i < count; i++) {
        uint64_t bytes = 0;
        if (check_array(path, &arrays[i], i, &bytes, err) != 0) return -1;
        *raw_bytes += bytes;
        if (*raw_bytes > MAX_RAW_BYTES)
            return nn_error_set(err, NN_ERR_INPUT, "%s: the arrays need more than the 4 GiB a checkpoint holds",
                                path);
    }
    ptrdiff_t repeated = find_repeated_name(arrays, count);
    if (repeated < 0) return nn_error_oom(err, "the checkpoint's name index");
    if ((size_t)repeated < count)
        return nn_error_set(err, NN_ERR_INPUT, "%s: two arrays are named '%s'", path, arrays[repeated].name);
    return 0;
}

static unsigned char *encode_data(unsigned char *out, const nn_array *array) {
    size_t count = nn_array_count(array);
    const unsigned char *in = array->data;
    if (array->dtype == NN_U8) {
        if (count) memcpy(out, in, count);
        return out + count;
    }
    for (size_t i = 0; i < count; i++) {
        if (array->dtype == NN_F32) {
            uint32_t bits;
            memcpy(&bits, in + 4 * i, 4);
            put_u32(out + 4 * i, bits);
        } else {
            uint64_t bits;
            memcpy(&bits, in + 8 * i, 8);
            put_u64(out + 8 * i, bits);
        }
    }
    return out + count * nn_dtype_size(array->dtype);
}

static void encode_payload(unsigned char *out, const nn_array *arrays, size_t count) {
    put_u32(out, (uint32_t)count);
    out += 4;
    for (size_t i = 0; i < count; i++) {
        const nn_array *array = &arrays[i];
        size_t name_length = strlen(array->name);
        put_u16(out, (uint16_t)name_length);
        memcpy(out + 2, array->name, name_length);
        out += 2 + name_length;
        *out++ = (unsigned char)array->dtype;
        *out++ = (unsigned char)array->rank;
        for (int d = 0; d < array->rank; d++, out += 8) put_u64(out, (uint64_t)array->dims[d]);
        out = encode_data(out, array);
    }
}

static void encode_header(unsigned char *out, const header *h) {
    memcpy(out, magic, sizeof magic);
    put_u32(out + 8, h->version);
    put_u32(out + 12, h->flags);
    put_u64(out + 16, h->compressed_bytes);
    put_u64(out + 24, h->raw_bytes);
    put_u32(out + 32, h->payload_crc);
    put_u32(out + HEADER_CRC_OFFSET, (uint32_t)crc32_z(0, out, HEADER_CRC_OFFSET));
}

/* "." for "ckpt", "/" for "/ckpt", "runs" for "runs/ckpt"; NULL when out of memory. */
/* Header and payload through the shared temp-file-and-rename writer. */
static int write_atomically(const char *path, const unsigned char *head, const unsigned char *payload, size_t size,
                            nn_error *err) {
    nn_atomic_file atomic;
    if (nn_atomic_open(&atomic, path, err) != 0) return -1;
    /* Short writes show up as the stream's error state, which commit checks. */
    fwrite(head, 1, HEADER_BYTES, atomic.file);
    fwrite(payload, 1, size, atomic.file);
    return nn_atomic_commit(&atomic, err);
}

static int deflate_payload(const unsigned char *raw, uint64_t raw_bytes, unsigned char **out, uLong *out_bytes) {
    uLong bound = compressBound((uLong)raw_bytes);
    *out = malloc(bound);
    if (!*out) return -1;
    *out_bytes = bound;
    if (compress2(*out, out_bytes, raw, (uLong)raw_bytes, COMPRESSION_LEVEL) != Z_OK) {
        free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

int nn_container_write(const char *path, const nn_array *arrays, size_t count, nn_error *err) {
    if (!path || !*path) return nn_error_set(err, NN_ERR_INPUT, "checkpoint path is empty");
    uint64_t raw_bytes = 0;
    if (check_arrays(path, arrays, count, &raw_bytes, err) != 0) return -1;
    if ((size_t)raw_bytes != raw_bytes || (uLong)raw_bytes != raw_bytes)
        return nn_error_set(err, NN_ERR_INPUT, "%s: the arrays are too large for this platform", path);
    unsigned char *raw = malloc((size_t)raw_bytes), *compressed = NULL;
    uLong compressed_bytes = 0;
    int status = -1;
    if (!raw) {
        nn_error_oom(err, "the checkpoint payload");
    } else {
        encode_payload(raw, arrays, count);
        if (deflate_payload(raw, raw_bytes, &compressed, &compressed_bytes) != 0) {
            nn_error_oom(err, "the compressed checkpoint payload");
        } else {
            header h = {NN_ARCHIVE_VERSION, 0, compressed_bytes, raw_bytes,
                        (uint32_t)crc32_z(0, compressed, compressed_bytes)};
            unsigned char head[HEADER_BYTES];
            encode_header(head, &h);
            status = write_atomically(path, head, compressed, compressed_bytes, err);
        }
    }
    free(compressed);
    free(raw);
    return status;
}

/* ---- reading ---- */

/* A file shorter than the header: empty, foreign, or a checkpoint cut short. */
/* "not an nnseq checkpoint: it looks like a YAML config", from its first bytes. */
static int not_a_checkpoint(const char *path, const unsigned char *start, size_t size, nn_error *err) {
    const char *kind = nn_file_kind(start, size);
    if (kind && strstr(kind, "nnseq checkpoint")) kind = NULL; /* almost the magic: damaged, say bad magic */
    if (kind && !strncmp(kind, "text", 4))
        return nn_error_set(err, NN_ERR_INPUT, "%s: not an nnseq checkpoint: it looks like %s; a config goes to "
                            "nnseq train, a checkpoint is what train writes", path, kind);
    if (kind) return nn_error_set(err, NN_ERR_INPUT, "%s: not an nnseq checkpoint: it looks like %s", path, kind);
    return nn_error_set(err, NN_ERR_INPUT, "%s: not an nnseq checkpoint (bad magic)", path);
}

static int short_file_error(const char *path, FILE *file, uint64_t size, nn_error *err) {
    unsigned char start[sizeof magic];
    size_t compare = size < sizeof magic ? (size_t)size : sizeof magic;
    if (size == 0) return nn_error_set(err, NN_ERR_INPUT, "%s: empty file, not an nnseq checkpoint", path);
    if (fread(start, 1, compare, file) == compare && memcmp(start, magic, compare) == 0)
        return nn_error_set(err, NN_ERR_INPUT, "%s: truncated: %" PRIu64 " bytes, shorter than the %d-byte header",
                            path, size, HEADER_BYTES);
    return not_a_checkpoint(path, start, compare, err);
}

/* The sizes in a header whose CRC matched: the payload must fill the rest of
 * the file, and the raw size must be one this build can hold and deflate
 * can reach. */
static int check_sizes(const char *path, const header *h, uint64_t file_size, nn_error *err) {
    uint64_t present = file_size - HEADER_BYTES;
    if (h->compressed_bytes > present)
        return nn_error_set(err, NN_ERR_INPUT, "%s: truncated: %" PRIu64 " bytes missing from the %" PRIu64
                            "-byte payload", path, h->compressed_bytes - present, h->compressed_bytes);
    if (h->compressed_bytes < present)
        return nn_error_set(err, NN_ERR_INPUT, "%s: damaged: %" PRIu64 " bytes after the %" PRIu64 "-byte payload",
                            path, present - h->compressed_bytes, h->compressed_bytes);
    if (h->raw_bytes < 4 || h->raw_bytes > MAX_RAW_BYTES || (size_t)h->raw_bytes != h->raw_bytes ||
        h->raw_bytes / MAX_DEFLATE_RATIO > h->compressed_bytes)
        return nn_error_set(err, NN_ERR_INPUT, "%s: damaged: raw payload size %" PRIu64 " impossible for %" PRIu64
                            " compressed bytes (at most 4 GiB, ratio at most %d)", path, h->raw_bytes,
                            h->compressed_bytes, MAX_DEFLATE_RATIO);
    return 0;
}

/* Checks the header fields in the order that gives the most telling message:
 * a foreign file, a damaged header, a newer format, then the sizes. The
 * 40-byte header keeps its layout in every version, so its CRC can be
 * checked before the version is known. */
static int check_header(const char *path, const unsigned char *bytes, uint64_t file_size, header *h,
                        nn_error *err) {
    if (memcmp(bytes, magic, sizeof magic) != 0) return not_a_checkpoint(path, bytes, HEADER_BYTES, err);
    if (get_u32(bytes + HEADER_CRC_OFFSET) != (uint32_t)crc32_z(0, bytes, HEADER_CRC_OFFSET))
        return nn_error_set(err, NN_ERR_INPUT, "%s: damaged: header CRC mismatch", path);
    *h = (header){get_u32(bytes + 8), get_u32(bytes + 12), get_u64(bytes + 16), get_u64(bytes + 24),
                  get_u32(bytes + 32)};
    if (h->version > NN_ARCHIVE_VERSION)
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s: written by a newer nnseq (format version %" PRIu32 ", this build reads %d)", path,
                            h->version, NN_ARCHIVE_VERSION);
    if (h->version < 1)
        return nn_error_set(err, NN_ERR_INPUT, "%s: unknown format version 0 (this build reads %d)", path,
                            NN_ARCHIVE_VERSION);
    if (h->flags != 0)
        return nn_error_set(err, NN_ERR_INPUT, "%s: unknown flags 0x%" PRIx32 " (format version %d has none)",
                            path, h->flags, NN_ARCHIVE_VERSION);
    return check_sizes(path, h, file_size, err);
}

/* The payload as it streams in: compressed bytes from the file, through the
 * CRC and zlib, straight into the buffer each field or array asks for. Only
 * the arrays themselves are ever held, never the payload, compressed or raw. */
typedef struct stream {
    const char *path;
    FILE *file;
    z_stream z;
    uint64_t file_left;   /* compressed bytes not yet read from the file */
    uint64_t raw_left;    /* raw bytes the header promised that no field has claimed yet */
    uint64_t inflated;    /* raw bytes zlib has produced */
    uint64_t trailing;    /* compressed bytes after the end of the zlib stream */
    uint32_t crc;         /* of the compressed bytes read so far */
    int status;           /* Z_OK while running, Z_STREAM_END, a zlib error, or one of the two below */
    int read_errno;
    unsigned char input[INPUT_CHUNK];
} stream;

#define READ_FAILED (-100)
#define FILE_SHRANK (-101)

static void refill(stream *s) {
    size_t want = s->file_left < INPUT_CHUNK ? (size_t)s->file_left : INPUT_CHUNK;
    size_t got = fread(s->input, 1, want, s->file);
    if (got < want) {
        s->status = ferror(s->file) ? READ_FAILED : FILE_SHRANK;
        s->read_errno = errno;
    }
    s->crc = (uint32_t)crc32_z(s->crc, s->input, got);
    s->file_left -= got;
    s->z.next_in = s->input;
    s->z.avail_in = (uInt)got;
}

/* Inflates up to n bytes into out, or into a scratch buffer when out is
 * NULL; fewer come only when the stream has stopped (s->status says why). */
static uint64_t inflate_into(stream *s, unsigned char *out, uint64_t n) {
    unsigned char scratch[16384];
    uint64_t done = 0;
    while (done < n && s->status == Z_OK) {
        if (s->z.avail_in == 0 && s->file_left > 0) {
            refill(s);
            if (s->status != Z_OK) break;
        }
        uint64_t room = out ? (uint64_t)1 << 30 : sizeof scratch;
        uInt chunk = (uInt)(n - done < room ? n - done : room);
        s->z.next_out = out ? out + done : scratch;
        s->z.avail_out = chunk;
        int status = inflate(&s->z, Z_NO_FLUSH);
        done += chunk - s->z.avail_out;
        s->inflated += chunk - s->z.avail_out;
        if (status == Z_STREAM_END)
            s->status = Z_STREAM_END;
        else if (status == Z_BUF_ERROR && s->z.avail_in == 0 && s->file_left == 0)
            s->status = Z_DATA_ERROR; /* the file ends inside the stream */
        else if (status != Z_OK && status != Z_BUF_ERROR)
            s->status = status == Z_MEM_ERROR ? Z_MEM_ERROR : Z_DATA_ERROR;
    }
    return done;
}

/* Exactly n raw bytes into out, within what the header promised, or fails
 * naming what they were for. A stream that stops short is told apart later
 * (stream_verdict), once the whole file has been seen. */
static int take(stream *s, void *out, uint64_t n, size_t index, const char *what, nn_error *err) {
    if (n > s->raw_left)
        return nn_error_set(err, NN_ERR_INPUT, "%s: damaged: array %zu: %s needs %" PRIu64 " bytes, %" PRIu64
                            " left", s->path, index, what, n, s->raw_left);
    s->raw_left -= n;
    if (inflate_into(s, out, n) != n)
        return nn_error_set(err, NN_ERR_INPUT, "%s: damaged: the payload ends early", s->path);
    return 0;
}

static int parse_name(stream *s, size_t index, nn_array *array, nn_error *err) {
    unsigned char bytes[2];
    if (take(s, bytes, 2, index, "the name length", err) != 0) return -1;
    uint16_t length = get_u16(bytes);
    if (length == 0)
        return nn_error_set(err, NN_ERR_INPUT, "%s: damaged: array %zu has an empty name", s->path, index);
    if (length >= NAME_CAPACITY)
        return nn_error_set(err, NN_ERR_INPUT, "%s: damaged: array %zu: name of %u bytes, at most %zu allowed",
                            s->path, index, length, NAME_CAPACITY - 1);
    if (take(s, array->name, length, index, "the name", err) != 0) return -1;
    if (memchr(array->name, '\0', length))
        return nn_error_set(err, NN_ERR_INPUT, "%s: damaged: array %zu: name contains a NUL byte", s->path, index);
    array->name[length] = '\0';
    return 0;
}

/* The file's little-endian values in place, as the host's. */
static void decode_data(nn_array *array) {
    size_t count = nn_array_count(array);
    unsigned char *bytes = array->data;
    for (size_t i = 0; array->dtype != NN_U8 && i < count; i++) {
        if (array->dtype == NN_F32) {
            uint32_t bits = get_u32(bytes + 4 * i);
            memcpy(bytes + 4 * i, &bits, 4);
        } else {
            uint64_t bits = get_u64(bytes + 8 * i);
            memcpy(bytes + 8 * i, &bits, 8);
        }
    }
}

/* One record into array: name, dtype and dims checked, then the data
 * inflated into an allocation of its own, made only once the dims are known
 * to fit in what remains of the payload the header promised. */
static int parse_record(stream *s, size_t index, nn_array *array, nn_error *err) {
    if (parse_name(s, index, array, err) != 0) return -1;
    unsigned char bytes[8];
    if (take(s, bytes, 2, index, "dtype and rank", err) != 0) return -1;
    if (!dtype_known(bytes[0]))
        return nn_error_set(err, NN_ERR_INPUT, "%s: damaged: array '%s': unknown dtype %u (0 f32, 1 i64, 2 u8)",
                            s->path, array->name, bytes[0]);
    if (bytes[1] > NN_MAX_RANK)
        return nn_error_set(err, NN_ERR_INPUT, "%s: damaged: array '%s': rank %u, at most %d", s->path,
                            array->name, bytes[1], NN_MAX_RANK);
    array->dtype = (nn_dtype)bytes[0];
    array->rank = bytes[1];
    for (int d = 0; d < array->rank; d++) {
        if (take(s, bytes, 8, index, "a dimension", err) != 0) return -1;
        uint64_t dim = get_u64(bytes);
        if (dim > INT64_MAX)
            return nn_error_set(err, NN_ERR_INPUT, "%s: damaged: array '%s': dimension %d is %" PRIu64, s->path,
                                array->name, d, dim);
        array->dims[d] = (int64_t)dim;
    }
    int64_t elements = element_count(array->dims, array->rank, nn_dtype_size(array->dtype));
    if (elements < 0)
        return nn_error_set(err, NN_ERR_INPUT, "%s: damaged: array '%s': dimensions overflow", s->path,
                            array->name);
    uint64_t data_bytes = (uint64_t)elements * nn_dtype_size(array->dtype);
    if (data_bytes > s->raw_left)
        return nn_error_set(err, NN_ERR_INPUT, "%s: damaged: array '%s': data needs %" PRIu64 " bytes, %" PRIu64
                            " left", s->path, array->name, data_bytes, s->raw_left);
    /* At least one byte, so that even an empty array's data is a valid pointer. */
    if (!(array->data = malloc(data_bytes ? (size_t)data_bytes : 1))) return nn_error_oom(err, array->name);
    if (take(s, array->data, data_bytes, index, "the data", err) != 0) return -1;
    decode_data(array);
    return 0;
}

/* Every record, into *out (allocated even when the count is zero, and
 * nn_arrays_free'd by the caller whatever happens: entries not reached hold
 * no data). The count is checked against what the payload can hold before
 * the list is allocated. */
static int read_records(stream *s, nn_array **out, size_t *out_count, nn_error *err) {
    unsigned char bytes[4];
    if (take(s, bytes, 4, 0, "the array count", err) != 0) return -1;
    uint32_t count = get_u32(bytes);
    if (count > s->raw_left / MIN_RECORD_BYTES)
        return nn_error_set(err, NN_ERR_INPUT, "%s: damaged: %" PRIu32 " arrays cannot fit in %" PRIu64 " bytes",
                            s->path, count, s->raw_left);
    if (count > MAX_ARRAYS)
        return nn_error_set(err, NN_ERR_INPUT, "%s: damaged: %" PRIu32 " arrays, a checkpoint holds at most %d",
                            s->path, count, MAX_ARRAYS);
    if (!(*out = calloc(count ? count : 1, sizeof **out))) return nn_error_oom(err, "the checkpoint's array list");
    *out_count = count;
    for (uint32_t i = 0; i < count; i++)
        if (parse_record(s, i, &(*out)[i], err) != 0) return -1;
    if (s->raw_left)
        return nn_error_set(err, NN_ERR_INPUT, "%s: damaged: %" PRIu64 " bytes after the last of the %" PRIu32
                            " arrays", s->path, s->raw_left, count);
    ptrdiff_t repeated = find_repeated_name(*out, count);
    if (repeated < 0) return nn_error_oom(err, "the checkpoint's name index");
    if ((size_t)repeated < count)
        return nn_error_set(err, NN_ERR_INPUT, "%s: damaged: two arrays are named '%s'", s->path,
                            (*out)[repeated].name);
    return 0;
}

/* Runs the stream to its end whether or not the records were good, so that
 * the CRC covers every byte and zlib has said whether its stream is whole
 * and how long it really is: up to one byte past the header's raw size,
 * enough to know the header lies, and never more. */
static void stream_finish(stream *s, const header *h) {
    if (s->status == Z_OK) inflate_into(s, NULL, h->raw_bytes + 1 - s->inflated);
    if (s->status == Z_STREAM_END) s->trailing = s->z.avail_in + s->file_left;
    while (s->file_left > 0 && s->status != READ_FAILED && s->status != FILE_SHRANK) refill(s);
}

/* What went wrong with a finished stream, in the order of the most telling
 * message (damage shows as a CRC mismatch, whatever it did to the records),
 * or status, the records' verdict, when nothing did. */
static int stream_verdict(const stream *s, const header *h, int status, nn_error *err) {
    if (s->status == READ_FAILED)
        return nn_error_set(err, NN_ERR_RUNTIME, "%s: read failed: %s", s->path, strerror(s->read_errno));
    if (s->status == FILE_SHRANK) return nn_error_set(err, NN_ERR_INPUT, "%s: truncated while being read", s->path);
    if (s->crc != h->payload_crc)
        return nn_error_set(err, NN_ERR_INPUT, "%s: damaged: CRC mismatch in the compressed payload", s->path);
    if (s->status == Z_MEM_ERROR) return nn_error_oom(err, "zlib's state");
    if (s->status != Z_STREAM_END && s->inflated <= h->raw_bytes)
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s: damaged: payload is not a valid zlib stream (corrupt or cut short)", s->path);
    if (s->inflated > h->raw_bytes)
        return nn_error_set(err, NN_ERR_INPUT, "%s: damaged: payload inflates to more than the %" PRIu64
                            " bytes the header gives", s->path, h->raw_bytes);
    if (s->inflated < h->raw_bytes)
        return nn_error_set(err, NN_ERR_INPUT, "%s: damaged: payload inflates to %" PRIu64
                            " bytes, the header gives %" PRIu64, s->path, s->inflated, h->raw_bytes);
    if (s->trailing)
        return nn_error_set(err, NN_ERR_INPUT, "%s: damaged: %" PRIu64 " bytes after the end of the zlib stream",
                            s->path, s->trailing);
    return status;
}

/* The header, checked, with the file's size; the file is left at the payload. */
static int read_header(const char *path, FILE *file, header *h, nn_error *err) {
    struct stat info;
    if (fstat(fileno(file), &info) != 0)
        return nn_error_set(err, NN_ERR_RUNTIME, "%s: cannot stat: %s", path, strerror(errno));
    if (!S_ISREG(info.st_mode))
        return nn_error_set(err, NN_ERR_INPUT, "%s: not a regular file, not an nnseq checkpoint", path);
    uint64_t size = (uint64_t)info.st_size;
    if (size < HEADER_BYTES) return short_file_error(path, file, size, err);
    unsigned char bytes[HEADER_BYTES];
    if (fread(bytes, 1, HEADER_BYTES, file) != HEADER_BYTES)
        return nn_error_set(err, NN_ERR_INPUT, "%s: cannot read the header: %s", path,
                            ferror(file) ? strerror(errno) : "file shrank while being read");
    return check_header(path, bytes, size, h, err);
}

int nn_container_read(const char *path, nn_array **arrays, size_t *count, nn_error *err) {
    *arrays = NULL;
    *count = 0;
    FILE *file = fopen(path, "rb");
    if (!file) return nn_error_set(err, NN_ERR_INPUT, "%s: cannot open: %s", path, strerror(errno));
    header h = {0};
    if (read_header(path, file, &h, err) != 0) {
        fclose(file);
        return -1;
    }
    /* Some 50 KB: the input chunk and zlib's window, whatever the file holds. */
    stream *s = calloc(1, sizeof *s);
    if (!s || inflateInit(&s->z) != Z_OK) {
        free(s);
        fclose(file);
        return nn_error_oom(err, "zlib's state");
    }
    s->path = path;
    s->file = file;
    s->file_left = h.compressed_bytes;
    s->raw_left = h.raw_bytes;
    nn_array *list = NULL;
    size_t listed = 0;
    int status = read_records(s, &list, &listed, err);
    stream_finish(s, &h);
    status = stream_verdict(s, &h, status, err);
    inflateEnd(&s->z);
    free(s);
    fclose(file);
    if (status != 0) {
        nn_arrays_free(list, listed);
        return -1;
    }
    *arrays = list;
    *count = listed;
    return 0;
}

const nn_array *nn_container_find(const nn_array *arrays, size_t count, const char *name) {
    for (size_t i = 0; i < count; i++)
        if (strcmp(arrays[i].name, name) == 0) return &arrays[i];
    return NULL;
}
