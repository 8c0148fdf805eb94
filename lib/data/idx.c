/* IDX files: a magic of four bytes (0, 0, element type, rank), rank sizes as
 * big-endian uint32, then the elements, big-endian. Raw and gzip files both
 * go through nn_gz_reader, which recognises a file by its first bytes, never
 * by its name, and inflates no more than is asked for. The header says how
 * much data follows, so nothing is read past it but one byte to see that
 * nothing follows; a regular file must be able to hold what its header
 * promises before anything is allocated for it. */
#include "data/idx.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "io/file_kind.h"
#include "io/gz_input.h"

/* The rank byte allows up to 255 sizes. */
#define IDX_RANK_LIMIT 255
/* gzwrite takes an unsigned length and returns an int. */
#define IO_CHUNK ((size_t)1 << 30)
#define FIRST_CAPACITY ((size_t)1 << 20)
/* A whole read holds the data in memory: a header promising more is refused
 * before anything is allocated (the stream has no such limit). */
#define WHOLE_LIMIT ((uint64_t)16 << 30)
#define WHOLE_LIMIT_TEXT "16 GiB"
/* The stream converts, and the writer byte-swaps, through this many bytes
 * at a time (a multiple of every element size). */
#define PIECE ((size_t)1 << 16)

static const struct idx_type {
    uint8_t code;
    nn_dtype dtype;
} idx_types[] = {
    {0x08, NN_U8}, {0x09, NN_I8}, {0x0B, NN_I16}, {0x0C, NN_I32}, {0x0D, NN_F32}, {0x0E, NN_F64},
};

#define IDX_ACCEPTED \
    "0x08 (uint8), 0x09 (int8), 0x0b (int16), 0x0c (int32), 0x0d (float32) or 0x0e (float64)"

typedef struct idx_header {
    nn_dtype dtype;
    size_t value_size;
    int file_rank;                      /* as in the file */
    size_t header_size;                 /* bytes: magic and sizes */
    uint32_t file_dims[IDX_RANK_LIMIT];
    int rank;                           /* folded */
    int64_t dims[NN_MAX_RANK];
    size_t item_size;                   /* bytes of one item (dims[1..]) */
    size_t data_size;
} idx_header;

struct nn_idx_stream {
    nn_gz_reader *input;
    char *name;
    idx_header header;
    int64_t remaining; /* items not yet handed out */
    size_t item_values;
    bool failed;
    uint8_t piece[PIECE];
};

static const struct idx_type *type_of_code(int code) {
    for (size_t i = 0; i < sizeof idx_types / sizeof *idx_types; i++)
        if (idx_types[i].code == code) return &idx_types[i];
    return NULL;
}

static const struct idx_type *type_of_dtype(nn_dtype dtype) {
    for (size_t i = 0; i < sizeof idx_types / sizeof *idx_types; i++)
        if (idx_types[i].dtype == dtype) return &idx_types[i];
    return NULL;
}

/* "60000 x 28 x 28", for messages. */
static const char *format_dims(char *buffer, size_t size, int rank, const uint32_t *dims) {
    size_t used = 0;
    buffer[0] = '\0';
    for (int i = 0; i < rank && used < size; i++)
        used += (size_t)snprintf(buffer + used, size - used, i ? " x %lu" : "%lu", (unsigned long)dims[i]);
    return buffer;
}

/* ------------------------------------------------------------ values */

static uint64_t load_be(const uint8_t *bytes, size_t size) {
    uint64_t value = 0;
    for (size_t i = 0; i < size; i++) value = value << 8 | bytes[i];
    return value;
}

static void store_be(uint8_t *bytes, uint64_t value, size_t size) {
    for (size_t i = size; i-- > 0; value >>= 8) bytes[i] = (uint8_t)value;
}

/* Big-endian values as stored into host order, in place. Done by shifts,
 * so it is right on any host. */
static void to_host_order(uint8_t *data, size_t value_size, size_t count) {
    for (size_t i = 0; i < count; i++, data += value_size) {
        uint64_t value = load_be(data, value_size);
        if (value_size == 2) {
            uint16_t v = (uint16_t)value;
            memcpy(data, &v, 2);
        } else if (value_size == 4) {
            uint32_t v = (uint32_t)value;
            memcpy(data, &v, 4);
        } else if (value_size == 8) {
            memcpy(data, &value, 8);
        }
    }
}

/* Host-order values into big-endian bytes (out must not overlap in). */
static void to_file_order(uint8_t *out, const uint8_t *in, size_t value_size, size_t count) {
    for (size_t i = 0; i < count; i++, in += value_size, out += value_size) {
        uint64_t value = 0;
        if (value_size == 1) {
            value = in[0];
        } else if (value_size == 2) {
            uint16_t v;
            memcpy(&v, in, 2);
            value = v;
        } else if (value_size == 4) {
            uint32_t v;
            memcpy(&v, in, 4);
            value = v;
        } else {
            memcpy(&value, in, 8);
        }
        store_be(out, value, value_size);
    }
}

/* Big-endian values as stored into float32 (u8 not scaled). */
static void to_float(float *out, const uint8_t *bytes, nn_dtype dtype, size_t count) {
    size_t size = nn_dtype_size(dtype);
    for (size_t i = 0; i < count; i++, bytes += size) out[i] = nn_dtype_bits_to_float(dtype, load_be(bytes, size));
}

/* -------------------------------------------------------------- reading */

/* After the data the header promises (declared: "the 12 bytes of data",
 * "the 5 items"), nothing may follow; see nn_gz_reader_rest for what can be
 * seen on a pipe. */
static int check_end(nn_gz_reader *input, const char *name, const char *declared, nn_error *err) {
    nn_gz_rest rest;
    int64_t extra;
    bool second_member;
    if (nn_gz_reader_rest(input, &rest, &extra, &second_member) < 0) {
        char where[128];
        snprintf(where, sizeof where, "after %s", declared);
        return nn_gz_reader_report(input, where, err);
    }
    switch (rest) {
    case NN_GZ_REST_NONE: return 0;
    case NN_GZ_REST_DATA:
        if (extra < 0)
            return nn_error_set(err, NN_ERR_INPUT, "%s: the gzip data goes on after %s the header promises", name,
                                declared);
        return nn_error_set(err, NN_ERR_INPUT, "%s: %lld trailing bytes after %s the header promises", name,
                            (long long)extra, declared);
    case NN_GZ_REST_AFTER_STREAM:
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s: %lld bytes after the end of the gzip stream (%s), expected nothing after %s the "
                            "header promises",
                            name, (long long)extra, second_member ? "a second gzip member" : "not gzip data",
                            declared);
    }
    return 0;
}

/* ---------------------------------------------------------------- header */

static int check_magic(const uint8_t magic[4], const char *name, nn_error *err) {
    const char *kind = nn_file_kind(magic, 4);
    if ((magic[0] != 0 || magic[1] != 0) && kind)
        return nn_error_set(err, NN_ERR_INPUT, "%s: not an IDX file: it looks like %s", name, kind);
    if (magic[0] != 0 || magic[1] != 0)
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s: not an IDX file: magic is %02x %02x %02x %02x, expected 00 00, the element type "
                            "(08, 09, 0b, 0c, 0d or 0e) and the rank",
                            name, magic[0], magic[1], magic[2], magic[3]);
    if (!type_of_code(magic[2]))
        return nn_error_set(err, NN_ERR_INPUT, "%s: unsupported IDX element type 0x%02x, expected " IDX_ACCEPTED,
                            name, magic[2]);
    if (magic[3] < 1)
        return nn_error_set(err, NN_ERR_INPUT, "%s: unsupported IDX rank 0, expected 1 to %d", name, IDX_RANK_LIMIT);
    return 0;
}

/* Checks each size and that every product fits a byte count (and an
 * int64 dim once folded), before anything trusts them. */
static int parse_dims(idx_header *header, const uint8_t *bytes, const char *name, nn_error *err) {
    const uint64_t limit = (uint64_t)INT64_MAX < (uint64_t)SIZE_MAX ? (uint64_t)INT64_MAX : (uint64_t)SIZE_MAX;
    for (int i = 0; i < header->file_rank; i++) {
        header->file_dims[i] = (uint32_t)load_be(bytes + 4 * i, 4);
        if (header->file_dims[i] == 0)
            return nn_error_set(err, NN_ERR_INPUT, "%s: size %d of %d in the header is 0, expected at least 1", name,
                                i + 1, header->file_rank);
    }
    uint64_t size = header->value_size;
    for (int i = 0; i < header->file_rank; i++) {
        uint32_t dim = header->file_dims[i];
        if (size > limit / dim) {
            char text[128];
            return nn_error_set(err, NN_ERR_INPUT, "%s: header sizes %s overflow a byte count", name,
                                format_dims(text, sizeof text, header->file_rank, header->file_dims));
        }
        size *= dim;
    }
    /* Dims beyond NN_MAX_RANK fold into the last kept one (their product,
     * which the check above bounds). */
    header->rank = header->file_rank < NN_MAX_RANK ? header->file_rank : NN_MAX_RANK;
    for (int i = 0; i < header->file_rank; i++) {
        if (i < NN_MAX_RANK)
            header->dims[i] = header->file_dims[i];
        else
            header->dims[NN_MAX_RANK - 1] *= header->file_dims[i];
    }
    header->data_size = (size_t)size;
    header->item_size = header->data_size / header->file_dims[0];
    return 0;
}

static int read_header(nn_gz_reader *input, const char *name, idx_header *header, nn_error *err) {
    uint8_t magic[4], sizes[4 * IDX_RANK_LIMIT];
    size_t got;
    if (nn_gz_reader_read(input, magic, 4, &got) < 0) return nn_gz_reader_report(input, "in the header", err);
    if (got == 0) return nn_error_set(err, NN_ERR_INPUT, "%s: empty file, expected an IDX header", name);
    if (got < 4)
        return nn_error_set(err, NN_ERR_INPUT, "%s: truncated header: expected a 4-byte magic, file has %zu bytes",
                            name, got);
    if (check_magic(magic, name, err) < 0) return -1;
    memset(header, 0, sizeof *header);
    header->dtype = type_of_code(magic[2])->dtype;
    header->value_size = nn_dtype_size(header->dtype);
    header->file_rank = magic[3];
    size_t sizes_bytes = 4 * (size_t)header->file_rank;
    header->header_size = 4 + sizes_bytes;
    if (nn_gz_reader_read(input, sizes, sizes_bytes, &got) < 0)
        return nn_gz_reader_report(input, "in the header", err);
    if (got < sizes_bytes)
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s: truncated header: expected %zu bytes (magic and %d sizes), file has %zu", name,
                            4 + sizes_bytes, header->file_rank, 4 + got);
    return parse_dims(header, sizes, name, err);
}

/* Before the header's sizes are trusted with an allocation or a long read:
 * a regular file must be able to hold them. A raw one holds exactly the
 * header and the data, a gzip one at most NN_GZ_MAX_RATIO times its size. A
 * pipe's length is unknown; it is read only as far as the header says. */
static int check_file_holds(const nn_gz_reader *input, const idx_header *header, const char *name, nn_error *err) {
    int64_t file_size = nn_gz_reader_file_size(input);
    if (file_size < 0) return 0;
    uint64_t size = (uint64_t)file_size, data = header->data_size;
    if (!nn_gz_reader_is_gzip(input)) {
        uint64_t body = size > header->header_size ? size - header->header_size : 0;
        if (data > body)
            return nn_error_set(err, NN_ERR_INPUT, "%s: truncated: header promises %zu bytes of data, file has %llu",
                                name, header->data_size, (unsigned long long)body);
        if (data < body)
            return nn_error_set(err, NN_ERR_INPUT, "%s: %llu trailing bytes after the %zu bytes of data the header "
                                "promises", name, (unsigned long long)(body - data), header->data_size);
        return 0;
    }
    uint64_t most = size <= (UINT64_MAX - NN_GZ_SLACK) / NN_GZ_MAX_RATIO ? size * NN_GZ_MAX_RATIO + NN_GZ_SLACK
                                                                         : UINT64_MAX;
    if (data + header->header_size > most)
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s: header promises %zu bytes of data, more than a gzip file of %llu bytes can hold "
                            "(deflate expands at most %d times)",
                            name, header->data_size, (unsigned long long)size, NN_GZ_MAX_RATIO);
    return 0;
}

static int check_whole_limit(const idx_header *header, const char *name, nn_error *err) {
    if ((uint64_t)header->data_size <= WHOLE_LIMIT) return 0;
    return nn_error_set(err, NN_ERR_INPUT,
                        "%s: header promises %zu bytes of data, more than the " WHOLE_LIMIT_TEXT
                        " (%llu bytes) a data file may hold",
                        name, header->data_size, (unsigned long long)WHOLE_LIMIT);
}

/* ------------------------------------------------------------ whole file */

/* Grows as the data arrives instead of allocating the promised size up front,
 * so that a gzip file or a pipe that ends early allocates only what came. */
static int read_data(nn_gz_reader *input, const char *name, size_t size, uint8_t **data_out, nn_error *err) {
    uint8_t *data = NULL;
    size_t capacity = 0, filled = 0;
    char declared[64];
    snprintf(declared, sizeof declared, "the %zu bytes of data", size);
    while (filled < size) {
        if (filled == capacity) {
            size_t next = capacity ? capacity * 2 : FIRST_CAPACITY;
            if (next > size || next < capacity) next = size;
            uint8_t *grown = realloc(data, next);
            if (!grown) {
                free(data);
                return nn_error_oom(err, "IDX data");
            }
            data = grown;
            capacity = next;
        }
        size_t got;
        if (nn_gz_reader_read(input, data + filled, capacity - filled, &got) < 0) {
            free(data);
            char where[128];
            snprintf(where, sizeof where, "after %zu of %s the header promises", filled + got, declared);
            return nn_gz_reader_report(input, where, err);
        }
        filled += got;
        if (filled < capacity) break;
    }
    if (filled < size) {
        free(data);
        return nn_error_set(err, NN_ERR_INPUT, "%s: truncated: header promises %zu bytes of data, file has %zu", name,
                            size, filled);
    }
    if (check_end(input, name, declared, err) < 0) {
        free(data);
        return -1;
    }
    *data_out = data;
    return 0;
}

static nn_idx_stream *open_idx(const char *path, const char *name, bool stdin_allowed, bool whole, nn_error *err) {
    nn_idx_stream *stream = calloc(1, sizeof *stream);
    char *name_copy = malloc(strlen(name) + 1);
    if (!stream || !name_copy) {
        free(stream);
        free(name_copy);
        nn_error_oom(err, "an IDX reader");
        return NULL;
    }
    stream->name = strcpy(name_copy, name);
    stream->input = nn_gz_reader_open(path, name, stdin_allowed, err);
    if (!stream->input || read_header(stream->input, name, &stream->header, err) < 0 ||
        check_file_holds(stream->input, &stream->header, name, err) < 0 ||
        (whole && check_whole_limit(&stream->header, name, err) < 0)) {
        nn_idx_stream_close(stream);
        return NULL;
    }
    stream->remaining = stream->header.dims[0];
    stream->item_values = stream->header.item_size / stream->header.value_size;
    return stream;
}

nn_idx_stream *nn_idx_open(const char *path, nn_error *err) { return open_idx(path, path, false, true, err); }

int nn_idx_read_all(nn_idx_stream *stream, nn_array *out, nn_error *err) {
    memset(out, 0, sizeof *out);
    const idx_header *header = &stream->header;
    if (stream->failed || stream->remaining != header->dims[0])
        return nn_error_set(err, NN_ERR_RUNTIME, "%s: read in part already: cannot be read whole", stream->name);
    uint8_t *data = NULL;
    if (check_whole_limit(header, stream->name, err) < 0 ||
        read_data(stream->input, stream->name, header->data_size, &data, err) < 0) {
        stream->failed = true;
        return -1;
    }
    stream->remaining = 0;
    to_host_order(data, header->value_size, header->data_size / header->value_size);
    out->dtype = header->dtype;
    out->rank = header->rank;
    memcpy(out->dims, header->dims, sizeof out->dims);
    out->data = data;
    return 0;
}

int nn_idx_read(const char *path, nn_array *out, nn_error *err) {
    memset(out, 0, sizeof *out);
    nn_idx_stream *stream = nn_idx_open(path, err);
    if (!stream) return -1;
    int status = nn_idx_read_all(stream, out, err);
    nn_idx_stream_close(stream);
    return status;
}

/* ---------------------------------------------------------------- stream */

nn_idx_stream *nn_idx_stream_open(const char *path, nn_error *err) {
    return open_idx(path, strcmp(path, "-") == 0 ? "<stdin>" : path, true, false, err);
}

int nn_idx_stream_rank(const nn_idx_stream *stream) { return stream->header.rank; }

const int64_t *nn_idx_stream_dims(const nn_idx_stream *stream) { return stream->header.dims; }

nn_dtype nn_idx_stream_dtype(const nn_idx_stream *stream) { return stream->header.dtype; }

size_t nn_idx_stream_item_values(const nn_idx_stream *stream) { return stream->item_values; }

/* Once the promised items are in, anything more is an error: a stream is
 * checked as strictly as a file, as far as it can be without waiting on a
 * pipe (see check_end). */
static int check_stream_end(nn_idx_stream *stream, nn_error *err) {
    char declared[64];
    snprintf(declared, sizeof declared, "the %lld items", (long long)stream->header.dims[0]);
    return check_end(stream->input, stream->name, declared, err);
}

static int report_short_stream(nn_idx_stream *stream, size_t got, nn_error *err) {
    const idx_header *header = &stream->header;
    int64_t total = header->dims[0];
    int64_t done = total - stream->remaining + (int64_t)(got / header->item_size);
    size_t partial = got % header->item_size;
    if (partial)
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s: truncated: the stream ends inside item %lld of %lld (%zu of its %zu bytes)",
                            stream->name, (long long)done + 1, (long long)total, partial, header->item_size);
    return nn_error_set(err, NN_ERR_INPUT,
                        "%s: truncated: the stream ends after %lld of the %lld items the header promises",
                        stream->name, (long long)done, (long long)total);
}

/* Reads want bytes a piece at a time, converting each into out; *got says
 * how many bytes came. */
static int read_converting(nn_idx_stream *stream, float *out, size_t want, size_t *got) {
    size_t value_size = stream->header.value_size;
    *got = 0;
    while (*got < want) {
        size_t piece = want - *got < PIECE ? want - *got : PIECE, count;
        int status = nn_gz_reader_read(stream->input, stream->piece, piece, &count);
        to_float(out + *got / value_size, stream->piece, stream->header.dtype, count / value_size);
        *got += count;
        if (status < 0) return -1;
        if (count < piece) return 0;
    }
    return 0;
}

int nn_idx_stream_read(nn_idx_stream *stream, float *out, int max_items, nn_error *err) {
    if (stream->failed)
        return nn_error_set(err, NN_ERR_INPUT, "%s: the stream failed earlier and cannot be read on", stream->name);
    if (max_items < 1)
        return nn_error_set(err, NN_ERR_RUNTIME, "%s: max_items must be at least 1, got %d", stream->name, max_items);
    if (stream->remaining == 0) return 0;
    int count = max_items < stream->remaining ? max_items : (int)stream->remaining;
    size_t want = (size_t)count * stream->header.item_size, got;
    int status = 0;
    if (read_converting(stream, out, want, &got) < 0) {
        char where[96];
        snprintf(where, sizeof where, "in item %lld of %lld",
                 (long long)(stream->header.dims[0] - stream->remaining + 1 +
                             (int64_t)(got / stream->header.item_size)),
                 (long long)stream->header.dims[0]);
        status = nn_gz_reader_report(stream->input, where, err);
    } else if (got < want) {
        status = report_short_stream(stream, got, err);
    } else {
        stream->remaining -= count;
        if (stream->remaining == 0) status = check_stream_end(stream, err);
    }
    if (status < 0) {
        stream->failed = true;
        return -1;
    }
    return count;
}

void nn_idx_stream_close(nn_idx_stream *stream) {
    if (!stream) return;
    nn_gz_reader_close(stream->input);
    free(stream->name);
    free(stream);
}

/* --------------------------------------------------------------- writing */

static int check_write_array(const char *path, const nn_array *array, size_t *size, nn_error *err) {
    if (!type_of_dtype(array->dtype))
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s: cannot write dtype %s to IDX, expected uint8, int8, int16, int32, float32 or "
                            "float64",
                            path, nn_dtype_name(array->dtype));
    if (array->rank < 1 || array->rank > NN_MAX_RANK)
        return nn_error_set(err, NN_ERR_INPUT, "%s: cannot write IDX rank %d, expected 1 to %d", path, array->rank,
                            NN_MAX_RANK);
    *size = nn_dtype_size(array->dtype);
    for (int i = 0; i < array->rank; i++) {
        int64_t dim = array->dims[i];
        if (dim < 1 || dim > (int64_t)UINT32_MAX)
            return nn_error_set(err, NN_ERR_INPUT, "%s: cannot write size %d of %d: %lld, expected 1 to %lu", path,
                                i + 1, array->rank, (long long)dim, (unsigned long)UINT32_MAX);
        if (*size > SIZE_MAX / (size_t)dim)
            return nn_error_set(err, NN_ERR_INPUT, "%s: sizes overflow a byte count", path);
        *size *= (size_t)dim;
    }
    if (!array->data) return nn_error_set(err, NN_ERR_INPUT, "%s: the array to write has no data", path);
    return 0;
}

static int write_fully(gzFile file, const uint8_t *data, size_t size) {
    for (size_t done = 0; done < size;) {
        size_t chunk = size - done < IO_CHUNK ? size - done : IO_CHUNK;
        if (gzwrite(file, data + done, (unsigned)chunk) != (int)chunk) return -1;
        done += chunk;
    }
    return 0;
}

/* The values in file order through a piece-sized buffer, so the caller's
 * array is never changed and no second copy of it is made. */
static int write_values(gzFile file, const nn_array *array, size_t size, uint8_t *piece) {
    size_t value_size = nn_dtype_size(array->dtype);
    if (value_size == 1) return write_fully(file, array->data, size);
    const uint8_t *data = array->data;
    int status = 0;
    for (size_t done = 0; status == 0 && done < size;) {
        size_t chunk = size - done < PIECE ? size - done : PIECE;
        to_file_order(piece, data + done, value_size, chunk / value_size);
        status = write_fully(file, piece, chunk);
        done += chunk;
    }
    return status;
}

int nn_idx_write_array(const char *path, const nn_array *array, int gzip, nn_error *err) {
    size_t size = 0;
    if (check_write_array(path, array, &size, err) < 0) return -1;
    uint8_t header[4 + 4 * NN_MAX_RANK] = {0, 0, type_of_dtype(array->dtype)->code, (uint8_t)array->rank};
    for (int i = 0; i < array->rank; i++) store_be(header + 4 + 4 * i, (uint64_t)array->dims[i], 4);
    uint8_t *piece = malloc(PIECE);
    if (!piece) return nn_error_oom(err, "an IDX write buffer");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) {
        free(piece);
        return nn_error_set(err, NN_ERR_RUNTIME, "%s: cannot open for writing: %s", path, strerror(errno));
    }
    /* "T" asks zlib for a plain copy, so both kinds share one path. */
    gzFile file = gzdopen(fd, gzip ? "wb" : "wbT");
    if (!file) {
        free(piece);
        close(fd);
        unlink(path);
        return nn_error_oom(err, "a zlib writer");
    }
    errno = 0;
    int status = write_fully(file, header, 4 + 4 * (size_t)array->rank);
    if (status == 0) status = write_values(file, array, size, piece);
    if (gzclose(file) != Z_OK) status = -1;
    free(piece);
    if (status < 0) {
        int saved_errno = errno ? errno : EIO;
        unlink(path);
        return nn_error_set(err, NN_ERR_RUNTIME, "%s: write failed: %s", path, strerror(saved_errno));
    }
    return 0;
}

int nn_idx_write(const char *path, int rank, const int *dims, const uint8_t *data, int gzip, nn_error *err) {
    if (rank < 1 || rank > NN_MAX_RANK)
        return nn_error_set(err, NN_ERR_INPUT, "%s: cannot write IDX rank %d, expected 1 to %d", path, rank,
                            NN_MAX_RANK);
    nn_array array = {.dtype = NN_U8, .rank = rank, .data = (void *)data};
    for (int i = 0; i < rank; i++) array.dims[i] = dims[i];
    return nn_idx_write_array(path, &array, gzip, err);
}
