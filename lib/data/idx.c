/* IDX files: a magic of four bytes (0, 0, element type, rank), rank sizes as
 * big-endian uint32, then the elements, big-endian. Raw and gzip files both
 * go through zlib's gz* functions, which pass content that is not gzip
 * through unchanged: a file is recognised by its first bytes, never by its
 * name. */
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
/* gzread and gzwrite take an unsigned length and return an int. */
#define IO_CHUNK ((size_t)1 << 30)
#define FIRST_CAPACITY ((size_t)1 << 20)
/* A pipe may never end: the stream reader stops counting extra bytes here. */
#define STREAM_EXTRA_LIMIT ((size_t)1 << 20)
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
    uint32_t file_dims[IDX_RANK_LIMIT];
    int rank;                           /* folded */
    int64_t dims[NN_MAX_RANK];
    size_t item_size;                   /* bytes of one item (dims[1..]) */
    size_t data_size;
} idx_header;

struct nn_idx_stream {
    gzFile file;
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

/* -------------------------------------------------------------- zlib I/O */

/* Reads until size bytes or the end of the input; *got says how many.
 * Returns -1 when zlib reports damage or the read itself fails. */
static int read_fully(gzFile file, uint8_t *buffer, size_t size, size_t *got) {
    *got = 0;
    while (*got < size) {
        size_t want = size - *got < IO_CHUNK ? size - *got : IO_CHUNK;
        int count = gzread(file, buffer + *got, (unsigned)want);
        if (count < 0) return -1;
        if (count == 0) return nn_gz_clean_end(file) ? 0 : -1;
        *got += (size_t)count;
    }
    return 0;
}

/* After read_fully failed: says what zlib saw, with where it happened. */
static int report_read_error(nn_error *err, const char *name, gzFile file, const char *where) {
    int saved_errno = errno, zlib_status;
    const char *text = gzerror(file, &zlib_status);
    if (zlib_status == Z_ERRNO)
        return nn_error_set(err, NN_ERR_INPUT, "%s: read failed %s: %s", name, where, strerror(saved_errno));
    if (zlib_status == Z_BUF_ERROR)
        return nn_error_set(err, NN_ERR_INPUT, "%s: truncated: the gzip stream ends unexpectedly %s", name, where);
    return nn_error_set(err, NN_ERR_INPUT, "%s: damaged gzip data %s: %s", name, where, text);
}

/* Counts the bytes left, up to limit. Returns -1 on a read error. */
static int count_remaining(gzFile file, size_t limit, size_t *count) {
    uint8_t buffer[16384];
    *count = 0;
    while (*count < limit) {
        int got = gzread(file, buffer, sizeof buffer);
        if (got < 0) return -1;
        if (got == 0) return nn_gz_clean_end(file) ? 0 : -1;
        *count += (size_t)got;
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

static int read_header(gzFile file, const char *name, idx_header *header, nn_error *err) {
    uint8_t magic[4], sizes[4 * IDX_RANK_LIMIT];
    size_t got;
    if (read_fully(file, magic, 4, &got) < 0) return report_read_error(err, name, file, "in the header");
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
    if (read_fully(file, sizes, sizes_bytes, &got) < 0) return report_read_error(err, name, file, "in the header");
    if (got < sizes_bytes)
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s: truncated header: expected %zu bytes (magic and %d sizes), file has %zu", name,
                            4 + sizes_bytes, header->file_rank, 4 + got);
    return parse_dims(header, sizes, name, err);
}

/* ------------------------------------------------------------ whole file */

/* Grows towards the promised size instead of allocating it up front, so that
 * a damaged header cannot make a short file allocate gigabytes. */
static int read_data(gzFile file, const char *name, size_t size, uint8_t **data_out, nn_error *err) {
    uint8_t *data = NULL;
    size_t capacity = 0, filled = 0;
    char where[128];
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
        if (read_fully(file, data + filled, capacity - filled, &got) < 0) {
            free(data);
            snprintf(where, sizeof where, "after %zu of the %zu bytes of data the header promises", filled + got,
                     size);
            return report_read_error(err, name, file, where);
        }
        filled += got;
        if (filled < capacity) break;
    }
    if (filled < size) {
        free(data);
        return nn_error_set(err, NN_ERR_INPUT, "%s: truncated: header promises %zu bytes of data, file has %zu", name,
                            size, filled);
    }
    size_t extra;
    int status = count_remaining(file, SIZE_MAX, &extra);
    if (status < 0 || extra > 0) {
        free(data);
        snprintf(where, sizeof where, "after all %zu bytes of data", size);
        if (status < 0) return report_read_error(err, name, file, where);
        return nn_error_set(err, NN_ERR_INPUT, "%s: %zu trailing bytes after the %zu bytes of data the header promises",
                            name, extra, size);
    }
    *data_out = data;
    return 0;
}

int nn_idx_read(const char *path, nn_array *out, nn_error *err) {
    memset(out, 0, sizeof *out);
    gzFile file = nn_gz_open(path, path, false, NULL, err);
    if (!file) return -1;
    idx_header header;
    uint8_t *data = NULL;
    int status = read_header(file, path, &header, err);
    if (status == 0) status = read_data(file, path, header.data_size, &data, err);
    gzclose(file);
    if (status < 0) return -1;
    to_host_order(data, header.value_size, header.data_size / header.value_size);
    out->dtype = header.dtype;
    out->rank = header.rank;
    memcpy(out->dims, header.dims, sizeof out->dims);
    out->data = data;
    return 0;
}

/* ---------------------------------------------------------------- stream */

nn_idx_stream *nn_idx_stream_open(const char *path, nn_error *err) {
    const char *name = strcmp(path, "-") == 0 ? "<stdin>" : path;
    nn_idx_stream *stream = calloc(1, sizeof *stream);
    char *name_copy = malloc(strlen(name) + 1);
    if (!stream || !name_copy) {
        free(stream);
        free(name_copy);
        nn_error_oom(err, "an IDX stream");
        return NULL;
    }
    stream->name = strcpy(name_copy, name);
    stream->file = nn_gz_open(path, name, true, NULL, err);
    if (!stream->file || read_header(stream->file, name, &stream->header, err) < 0) {
        nn_idx_stream_close(stream);
        return NULL;
    }
    stream->remaining = stream->header.dims[0];
    stream->item_values = stream->header.item_size / stream->header.value_size;
    return stream;
}

int nn_idx_stream_rank(const nn_idx_stream *stream) { return stream->header.rank; }

const int64_t *nn_idx_stream_dims(const nn_idx_stream *stream) { return stream->header.dims; }

nn_dtype nn_idx_stream_dtype(const nn_idx_stream *stream) { return stream->header.dtype; }

size_t nn_idx_stream_item_values(const nn_idx_stream *stream) { return stream->item_values; }

/* Once the promised items are in, anything more is an error: a stream is
 * checked as strictly as a file. */
static int check_stream_end(nn_idx_stream *stream, nn_error *err) {
    size_t extra;
    if (count_remaining(stream->file, STREAM_EXTRA_LIMIT, &extra) < 0)
        return report_read_error(err, stream->name, stream->file, "after the last item");
    if (extra == 0) return 0;
    return nn_error_set(err, NN_ERR_INPUT, "%s: %s%zu trailing bytes after the %lld items the header promises",
                        stream->name, extra >= STREAM_EXTRA_LIMIT ? "at least " : "", extra,
                        (long long)stream->header.dims[0]);
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
        int status = read_fully(stream->file, stream->piece, piece, &count);
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
        status = report_read_error(err, stream->name, stream->file, where);
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
    if (stream->file) gzclose(stream->file);
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
