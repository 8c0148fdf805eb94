/* IDX files: a magic of four bytes (0, 0, element type, rank), rank sizes as
 * big-endian uint32, then the elements. Raw and gzip files both go through
 * zlib's gz* functions, which pass content that is not gzip through
 * unchanged: a file is recognised by its first bytes, never by its name. */
#include "data/idx.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "io/file_kind.h"

#define IDX_UNSIGNED_BYTE 0x08
/* gzread and gzwrite take an unsigned length and return an int. */
#define IO_CHUNK ((size_t)1 << 30)
#define FIRST_CAPACITY ((size_t)1 << 20)
#define ZLIB_BUFFER (128u * 1024u)
/* A pipe may never end: the stream reader stops counting extra bytes here. */
#define STREAM_EXTRA_LIMIT ((size_t)1 << 20)

typedef struct idx_header {
    int rank;
    int dims[NN_IDX_MAX_RANK];
    size_t item_size;
    size_t data_size;
} idx_header;

struct nn_idx_stream {
    gzFile file;
    char *name;
    idx_header header;
    int remaining; /* items not yet handed out */
    bool failed;
};

static const char *type_name(int type) {
    switch (type) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return "unknown";
    }
}

/* "60000 x 28 x 28", for messages. */
static const char *format_dims(char *buffer, size_t size, int rank, const int *dims) {
    size_t used = 0;
    buffer[0] = '\0';
    for (int i = 0; i < rank && used < size; i++)
        used += (size_t)snprintf(buffer + used, size - used, i ? " x %d" : "%d", dims[i]);
    return buffer;
}

static gzFile open_input(const char *path, const char *name, bool stdin_allowed, nn_error *err) {
    int fd = stdin_allowed && strcmp(path, "-") == 0 ? dup(STDIN_FILENO) : open(path, O_RDONLY);
    if (fd < 0) {
        nn_error_set(err, NN_ERR_INPUT, "%s: cannot open: %s", name, strerror(errno));
        return NULL;
    }
    gzFile file = gzdopen(fd, "rb");
    if (!file) {
        close(fd);
        nn_error_oom(err, "a zlib reader");
        return NULL;
    }
    gzbuffer(file, ZLIB_BUFFER);
    return file;
}

/* gzread returns 0, as at a clean end, when a gzip stream is cut short
 * (Z_BUF_ERROR is no "serious" error to zlib): only gzerror tells them apart. */
static int at_clean_end(gzFile file) {
    int zlib_status;
    gzerror(file, &zlib_status);
    return zlib_status == Z_OK;
}

/* Reads until size bytes or the end of the input; *got says how many.
 * Returns -1 when zlib reports damage or the read itself fails. */
static int read_fully(gzFile file, uint8_t *buffer, size_t size, size_t *got) {
    *got = 0;
    while (*got < size) {
        size_t want = size - *got < IO_CHUNK ? size - *got : IO_CHUNK;
        int count = gzread(file, buffer + *got, (unsigned)want);
        if (count < 0) return -1;
        if (count == 0) return at_clean_end(file) ? 0 : -1;
        *got += (size_t)count;
    }
    return 0;
}

/* After read_fully failed: says what zlib saw, with where it happened. */
static int report_read_error(nn_error *err, const char *name, gzFile file, const char *where) {
    int saved_errno = errno, zlib_status;
    const char *text = gzerror(file, &zlib_status);
    if (zlib_status == Z_ERRNO)
        return nn_error_set(err, NN_ERR_INPUT, "%s: read failed %s: %s", name, where,
                            strerror(saved_errno));
    if (zlib_status == Z_BUF_ERROR)
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s: truncated: the gzip stream ends unexpectedly %s", name, where);
    return nn_error_set(err, NN_ERR_INPUT, "%s: damaged gzip data %s: %s", name, where, text);
}

static int check_magic(const uint8_t magic[4], const char *name, nn_error *err) {
    const char *kind = nn_file_kind(magic, 4);
    if ((magic[0] != 0 || magic[1] != 0) && kind)
        return nn_error_set(err, NN_ERR_INPUT, "%s: not an IDX file: it looks like %s", name, kind);
    if (magic[0] != 0 || magic[1] != 0)
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s: not an IDX file: magic is %02x %02x %02x %02x, expected 00 00 08 "
                            "and the rank (01 to 04)",
                            name, magic[0], magic[1], magic[2], magic[3]);
    if (magic[2] != IDX_UNSIGNED_BYTE)
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s: unsupported IDX element type 0x%02x (%s), expected 0x08 (unsigned byte)",
                            name, magic[2], type_name(magic[2]));
    if (magic[3] < 1 || magic[3] > NN_IDX_MAX_RANK)
        return nn_error_set(err, NN_ERR_INPUT, "%s: unsupported IDX rank %d, expected 1 to %d",
                            name, magic[3], NN_IDX_MAX_RANK);
    return 0;
}

/* Checks each size and that the products fit, before anything trusts them. */
static int parse_dims(idx_header *header, const uint8_t *bytes, const char *name, nn_error *err) {
    for (int i = 0; i < header->rank; i++) {
        const uint8_t *b = bytes + 4 * i;
        unsigned long dim = (unsigned long)b[0] << 24 | (unsigned long)b[1] << 16 |
                            (unsigned long)b[2] << 8 | (unsigned long)b[3];
        if (dim == 0)
            return nn_error_set(err, NN_ERR_INPUT,
                                "%s: size %d of %d in the header is 0, expected at least 1", name, i + 1,
                                header->rank);
        if (dim > INT_MAX)
            return nn_error_set(err, NN_ERR_INPUT,
                                "%s: size %d in the header is %lu, more than the %d supported", name, i + 1,
                                dim, INT_MAX);
        header->dims[i] = (int)dim;
    }
    size_t size = 1;
    for (int i = 0; i < header->rank; i++) {
        if (size > SIZE_MAX / (size_t)header->dims[i]) {
            char text[128];
            return nn_error_set(err, NN_ERR_INPUT, "%s: header sizes %s overflow a byte count", name,
                                format_dims(text, sizeof text, header->rank, header->dims));
        }
        size *= (size_t)header->dims[i];
    }
    header->data_size = size;
    header->item_size = size / (size_t)header->dims[0];
    return 0;
}

static int read_header(gzFile file, const char *name, idx_header *header, nn_error *err) {
    uint8_t bytes[4 + 4 * NN_IDX_MAX_RANK];
    size_t got;
    if (read_fully(file, bytes, 4, &got) < 0) return report_read_error(err, name, file, "in the header");
    if (got == 0) return nn_error_set(err, NN_ERR_INPUT, "%s: empty file, expected an IDX header", name);
    if (got < 4)
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s: truncated header: expected a 4-byte magic, file has %zu bytes", name, got);
    if (check_magic(bytes, name, err) < 0) return -1;
    memset(header, 0, sizeof *header);
    header->rank = bytes[3];
    size_t sizes_bytes = 4 * (size_t)header->rank;
    if (read_fully(file, bytes + 4, sizes_bytes, &got) < 0)
        return report_read_error(err, name, file, "in the header");
    if (got < sizes_bytes)
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s: truncated header: expected %zu bytes (magic and %d sizes), file has %zu",
                            name, 4 + sizes_bytes, header->rank, 4 + got);
    return parse_dims(header, bytes + 4, name, err);
}

/* Counts the bytes left, up to limit. Returns -1 on a read error. */
static int count_remaining(gzFile file, size_t limit, size_t *count) {
    uint8_t buffer[16384];
    *count = 0;
    while (*count < limit) {
        int got = gzread(file, buffer, sizeof buffer);
        if (got < 0) return -1;
        if (got == 0) return at_clean_end(file) ? 0 : -1;
        *count += (size_t)got;
    }
    return 0;
}

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
            snprintf(where, sizeof where, "after %zu of the %zu bytes of data the header promises",
                     filled + got, size);
            return report_read_error(err, name, file, where);
        }
        filled += got;
        if (filled < capacity) break;
    }
    if (filled < size) {
        free(data);
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s: truncated: header promises %zu bytes of data, file has %zu", name, size,
                            filled);
    }
    size_t extra;
    int status = count_remaining(file, SIZE_MAX, &extra);
    if (status < 0 || extra > 0) {
        free(data);
        snprintf(where, sizeof where, "after all %zu bytes of data", size);
        if (status < 0) return report_read_error(err, name, file, where);
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s: %zu trailing bytes after the %zu bytes of data the header promises", name,
                            extra, size);
    }
    *data_out = data;
    return 0;
}

int nn_idx_read(nn_idx *idx, const char *path, nn_error *err) {
    memset(idx, 0, sizeof *idx);
    gzFile file = open_input(path, path, false, err);
    if (!file) return -1;
    idx_header header;
    int status = read_header(file, path, &header, err);
    if (status == 0) status = read_data(file, path, header.data_size, &idx->data, err);
    gzclose(file);
    if (status < 0) return -1;
    idx->rank = header.rank;
    memcpy(idx->dims, header.dims, sizeof idx->dims);
    idx->item_size = header.item_size;
    return 0;
}

void nn_idx_free(nn_idx *idx) {
    if (!idx) return;
    free(idx->data);
    memset(idx, 0, sizeof *idx);
}

static int check_dataset(const nn_dataset *set, const char *images_path, const char *labels_path,
                         int classes, nn_error *err) {
    char text[128];
    const nn_idx *images = &set->images, *labels = &set->labels;
    if (images->rank != 3 && images->rank != 4) {
        format_dims(text, sizeof text, images->rank, images->dims);
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s: images must have rank 3 (N, H, W) or 4 (N, C, H, W), got rank %d (%s)",
                            images_path, images->rank, text);
    }
    if (labels->rank != 1) {
        format_dims(text, sizeof text, labels->rank, labels->dims);
        return nn_error_set(err, NN_ERR_INPUT, "%s: labels must have rank 1 (N), got rank %d (%s)",
                            labels_path, labels->rank, text);
    }
    if (images->dims[0] != labels->dims[0])
        return nn_error_set(err, NN_ERR_INPUT, "%s has %d images but %s has %d labels: the counts must agree",
                            images_path, images->dims[0], labels_path, labels->dims[0]);
    /* Labels are bytes: with 256 classes or more none can be out of range. */
    if (classes == 0 || classes >= 256) return 0;
    for (int i = 0; i < labels->dims[0]; i++)
        if (labels->data[i] >= classes)
            return nn_error_set(err, NN_ERR_INPUT,
                                "%s: label %d at index %d is out of range: expected 0 to %d for %d classes",
                                labels_path, labels->data[i], i, classes - 1, classes);
    return 0;
}

int nn_dataset_load(nn_dataset *set, const char *images_path, const char *labels_path, int classes,
                    nn_error *err) {
    memset(set, 0, sizeof *set);
    if (classes < 0) return nn_error_set(err, NN_ERR_INPUT, "classes must be >= 0 (0: no check), got %d", classes);
    if (nn_idx_read(&set->images, images_path, err) < 0) return -1;
    if (nn_idx_read(&set->labels, labels_path, err) < 0 ||
        check_dataset(set, images_path, labels_path, classes, err) < 0) {
        nn_dataset_free(set);
        return -1;
    }
    const int *dims = set->images.dims;
    bool has_channels = set->images.rank == 4;
    set->count = dims[0];
    set->channels = has_channels ? dims[1] : 1;
    set->height = dims[has_channels ? 2 : 1];
    set->width = dims[has_channels ? 3 : 2];
    return 0;
}

void nn_dataset_free(nn_dataset *set) {
    if (!set) return;
    nn_idx_free(&set->images);
    nn_idx_free(&set->labels);
    memset(set, 0, sizeof *set);
}

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
    stream->file = open_input(path, name, true, err);
    if (!stream->file || read_header(stream->file, name, &stream->header, err) < 0) {
        nn_idx_stream_close(stream);
        return NULL;
    }
    stream->remaining = stream->header.dims[0];
    return stream;
}

int nn_idx_stream_rank(const nn_idx_stream *stream) { return stream->header.rank; }

const int *nn_idx_stream_dims(const nn_idx_stream *stream) { return stream->header.dims; }

size_t nn_idx_stream_item_size(const nn_idx_stream *stream) { return stream->header.item_size; }

/* Once the promised items are in, anything more is an error: a stream is
 * checked as strictly as a file. */
static int check_stream_end(nn_idx_stream *stream, nn_error *err) {
    size_t extra;
    if (count_remaining(stream->file, STREAM_EXTRA_LIMIT, &extra) < 0)
        return report_read_error(err, stream->name, stream->file, "after the last item");
    if (extra == 0) return 0;
    return nn_error_set(err, NN_ERR_INPUT, "%s: %s%zu trailing bytes after the %d items the header promises",
                        stream->name, extra >= STREAM_EXTRA_LIMIT ? "at least " : "", extra,
                        stream->header.dims[0]);
}

static int report_short_stream(nn_idx_stream *stream, size_t got, nn_error *err) {
    const idx_header *header = &stream->header;
    int done = header->dims[0] - stream->remaining + (int)(got / header->item_size);
    size_t partial = got % header->item_size;
    if (partial)
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s: truncated: the stream ends inside item %d of %d (%zu of its %zu bytes)",
                            stream->name, done + 1, header->dims[0], partial, header->item_size);
    return nn_error_set(err, NN_ERR_INPUT,
                        "%s: truncated: the stream ends after %d of the %d items the header promises",
                        stream->name, done, header->dims[0]);
}

int nn_idx_stream_read(nn_idx_stream *stream, uint8_t *buffer, int max_items, nn_error *err) {
    if (stream->failed)
        return nn_error_set(err, NN_ERR_INPUT, "%s: the stream failed earlier and cannot be read on",
                            stream->name);
    if (max_items < 1)
        return nn_error_set(err, NN_ERR_RUNTIME, "%s: max_items must be at least 1, got %d", stream->name,
                            max_items);
    if (stream->remaining == 0) return 0;
    int count = max_items < stream->remaining ? max_items : stream->remaining;
    size_t want = (size_t)count * stream->header.item_size, got;
    int status = 0;
    if (read_fully(stream->file, buffer, want, &got) < 0) {
        char where[96];
        snprintf(where, sizeof where, "in item %d of %d",
                 stream->header.dims[0] - stream->remaining + 1, stream->header.dims[0]);
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

static int check_write_shape(const char *path, int rank, const int *dims, size_t *size, nn_error *err) {
    if (rank < 1 || rank > NN_IDX_MAX_RANK)
        return nn_error_set(err, NN_ERR_INPUT, "%s: cannot write IDX rank %d, expected 1 to %d", path, rank,
                            NN_IDX_MAX_RANK);
    *size = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 1)
            return nn_error_set(err, NN_ERR_INPUT, "%s: cannot write size %d of %d: %d, expected at least 1",
                                path, i + 1, rank, dims[i]);
        if (*size > SIZE_MAX / (size_t)dims[i])
            return nn_error_set(err, NN_ERR_INPUT, "%s: sizes overflow a byte count", path);
        *size *= (size_t)dims[i];
    }
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

int nn_idx_write(const char *path, int rank, const int *dims, const uint8_t *data, int gzip,
                 nn_error *err) {
    size_t size = 0;
    if (check_write_shape(path, rank, dims, &size, err) < 0) return -1;
    uint8_t header[4 + 4 * NN_IDX_MAX_RANK] = {0, 0, IDX_UNSIGNED_BYTE, (uint8_t)rank};
    for (int i = 0; i < rank; i++) {
        uint32_t dim = (uint32_t)dims[i];
        for (int byte = 0; byte < 4; byte++) header[4 + 4 * i + byte] = (uint8_t)(dim >> (24 - 8 * byte));
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0)
        return nn_error_set(err, NN_ERR_RUNTIME, "%s: cannot open for writing: %s", path, strerror(errno));
    /* "T" asks zlib for a plain copy, so both kinds share one path. */
    gzFile file = gzdopen(fd, gzip ? "wb" : "wbT");
    if (!file) {
        close(fd);
        unlink(path);
        return nn_error_oom(err, "a zlib writer");
    }
    errno = 0;
    int status = write_fully(file, header, 4 + 4 * (size_t)rank);
    if (status == 0) status = write_fully(file, data, size);
    if (gzclose(file) != Z_OK) status = -1;
    if (status < 0) {
        int saved_errno = errno ? errno : EIO;
        unlink(path);
        return nn_error_set(err, NN_ERR_RUNTIME, "%s: write failed: %s", path, strerror(saved_errno));
    }
    return 0;
}
