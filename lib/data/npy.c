/* numpy arrays as data: a .npy file read through stdio (so that a pipe
 * works as well as a file), or one entry of an .npz through io/npz.c. The
 * header is parsed by io/npy_format.c, the same code as for .npz entries;
 * this file adds reading it from a stream, checking the data length
 * against it before anything large is allocated, and the float32 stream
 * for predict. */
#include "data/npy.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/file_kind.h"
#include "io/npy_format.h"
#include "io/npz.h"

/* numpy reads at most 10000 header bytes unless told otherwise; a shape of
 * 64 long dims needs under 2000. More is a damaged file, not an array. */
#define HEADER_TEXT_LIMIT ((uint64_t)1 << 16)
#define FIRST_CAPACITY ((size_t)1 << 20)
/* A pipe may never end: the stream stops counting extra bytes here. */
#define STREAM_EXTRA_LIMIT ((size_t)1 << 20)
/* The stream converts through this many bytes at a time (a multiple of
 * every element size). */
#define STREAM_PIECE ((size_t)1 << 16)

/* An open .npy whose header has been read. */
typedef struct npy_input {
    FILE *file;
    char *name;             /* for messages: the path or "<stdin>" */
    npy_header header;
    size_t header_bytes;    /* prefix and header text: where the data starts */
    int rank;               /* folded */
    int64_t dims[NN_MAX_RANK];
    bool size_checked;      /* a regular file holding exactly the data the header promises */
} npy_input;

struct nn_npy_stream {
    npy_input input;
    int64_t remaining;      /* items not yet handed out */
    size_t item_bytes, item_values;
    bool failed;
    unsigned char piece[STREAM_PIECE];
};

/* Reads until size bytes or the end; returns how many. */
static size_t read_up_to(FILE *file, void *buffer, size_t size) {
    size_t got = 0;
    while (got < size) {
        size_t count = fread((unsigned char *)buffer + got, 1, size - got, file);
        if (count == 0) break;
        got += count;
    }
    return got;
}

static int read_failed(const npy_input *input, nn_error *err, const char *where) {
    return nn_error_set(err, NN_ERR_INPUT, "%s: read failed %s: %s", input->name, where,
                        errno ? strerror(errno) : "I/O error");
}

static int open_input(npy_input *input, const char *path, bool stdin_allowed, nn_error *err) {
    bool use_stdin = stdin_allowed && strcmp(path, "-") == 0;
    const char *name = use_stdin ? "<stdin>" : path;
    memset(input, 0, sizeof *input);
    input->name = malloc(strlen(name) + 1);
    if (!input->name) return nn_error_oom(err, "a .npy reader");
    strcpy(input->name, name);
    if (use_stdin) {
        int fd = dup(STDIN_FILENO);
        input->file = fd < 0 ? NULL : fdopen(fd, "rb");
        if (!input->file && fd >= 0) close(fd);
    } else {
        input->file = fopen(path, "rb");
    }
    if (!input->file) return nn_error_set(err, NN_ERR_INPUT, "%s: cannot open: %s", name, strerror(errno));
    return 0;
}

static void close_input(npy_input *input) {
    if (input->file) fclose(input->file);
    free(input->name);
    memset(input, 0, sizeof *input);
}

static bool is_zip(const unsigned char *bytes, size_t size) {
    return size >= 4 && bytes[0] == 'P' && bytes[1] == 'K' &&
           ((bytes[2] == 3 && bytes[3] == 4) || (bytes[2] == 5 && bytes[3] == 6));
}

/* Neither .npy nor what the caller handles itself: say what it looks like. */
static int not_npy(const npy_input *input, const unsigned char *bytes, size_t size, const char *expected,
                   nn_error *err) {
    if (size == 0) return nn_error_set(err, NN_ERR_INPUT, "%s: empty file, expected %s", input->name, expected);
    const char *kind = nn_file_kind(bytes, size);
    if (kind) return nn_error_set(err, NN_ERR_INPUT, "%s: not %s: it looks like %s", input->name, expected, kind);
    char seen[3 * 8 + 1] = "";
    for (size_t i = 0; i < size && i < 6; i++) snprintf(seen + 3 * i, sizeof seen - 3 * i, " %02x", bytes[i]);
    return nn_error_set(err, NN_ERR_INPUT, "%s: not %s: the file starts with%s, expected 93 4e 55 4d 50 59 (\\x93NUMPY)",
                        input->name, expected, seen);
}

/* The first 8 bytes (magic and version), already read into start, then
 * the header length and text. */
static int read_header(npy_input *input, unsigned char start[NPY_PREFIX_MAX], size_t got, nn_error *err) {
    /* Version 1.0 has a 2-byte length, the others 4 (npy_parse_prefix
     * refuses unknown versions before it looks at the length). */
    if (got >= 8) {
        size_t wanted = start[6] == 1 ? 10 : NPY_PREFIX_MAX;
        errno = 0;
        got += read_up_to(input->file, start + got, wanted - got);
        if (ferror(input->file)) return read_failed(input, err, "in the header");
    }
    size_t prefix_size;
    uint64_t text_size;
    if (npy_parse_prefix(start, got, &prefix_size, &text_size, err))
        return nn_error_prefix(err, "%s", input->name);
    if (text_size > HEADER_TEXT_LIMIT)
        return nn_error_set(err, NN_ERR_INPUT, "%s: .npy header of %llu bytes, more than the %llu read (damaged?)",
                            input->name, (unsigned long long)text_size, (unsigned long long)HEADER_TEXT_LIMIT);
    char *text = malloc(text_size ? (size_t)text_size : 1);
    if (!text) return nn_error_oom(err, "a .npy header");
    size_t text_got = read_up_to(input->file, text, (size_t)text_size);
    int status = 0;
    if (ferror(input->file))
        status = read_failed(input, err, "in the header");
    else if (text_got < text_size)
        status = nn_error_set(err, NN_ERR_INPUT,
                              "%s: truncated .npy header: its length says %llu bytes of text, the file has %zu",
                              input->name, (unsigned long long)text_size, text_got);
    else if (npy_parse_header(text, (size_t)text_size, &input->header, err))
        status = nn_error_prefix(err, "%s", input->name);
    free(text);
    if (status) return -1;
    input->header_bytes = prefix_size + (size_t)text_size;
    npy_fold_shape(&input->header, &input->rank, input->dims);
    return 0;
}

/* "shape (3, 2) of '<f8'", for messages. */
static void describe(const npy_input *input, char *buffer, size_t size) {
    char shape[256];
    npy_format_shape(shape, sizeof shape, input->header.rank, input->header.dims);
    snprintf(buffer, size, "shape %s of '%s'", shape, input->header.descr);
}

/* have: the bytes after the header, known to differ from the size needed. */
static int report_data_size(const npy_input *input, uint64_t have, nn_error *err) {
    char what[300];
    describe(input, what, sizeof what);
    unsigned long long need = (unsigned long long)input->header.data_size;
    if (have < input->header.data_size)
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s: truncated: %s needs %llu bytes of data after the %zu-byte header, the file has %llu",
                            input->name, what, need, input->header_bytes, (unsigned long long)have);
    return nn_error_set(err, NN_ERR_INPUT, "%s: %llu bytes after the %llu bytes of data that %s needs", input->name,
                        (unsigned long long)(have - input->header.data_size), need, what);
}

/* Counts the bytes left, up to limit. */
static int count_remaining(npy_input *input, size_t limit, size_t *count, nn_error *err) {
    unsigned char buffer[16384];
    *count = 0;
    errno = 0;
    while (*count < limit) {
        size_t got = fread(buffer, 1, sizeof buffer, input->file);
        if (got == 0) break;
        *count += got;
    }
    if (ferror(input->file)) return read_failed(input, err, "after the data");
    return 0;
}

/* The data, grown towards the size the header promises rather than
 * allocated up front, so that a damaged header cannot make a short pipe
 * allocate gigabytes; allocated at once when the file's size has been
 * checked already. */
static int read_data(npy_input *input, unsigned char **data_out, nn_error *err) {
    size_t size = (size_t)input->header.data_size, capacity = 0, filled = 0;
    unsigned char *data = NULL;
    errno = 0;
    do {
        if (filled == capacity) {
            size_t next = capacity ? capacity * 2 : FIRST_CAPACITY;
            if (next > size || next < capacity || input->size_checked) next = size;
            unsigned char *grown = realloc(data, next ? next : 1);
            if (!grown) {
                free(data);
                return nn_error_oom(err, "the .npy data");
            }
            data = grown;
            capacity = next;
        }
        size_t got = read_up_to(input->file, data + filled, capacity - filled);
        filled += got;
        if (filled < capacity) break;
    } while (filled < size);
    size_t extra = 0;
    int status = 0;
    if (ferror(input->file))
        status = read_failed(input, err, "in the data");
    else if (filled < size)
        status = report_data_size(input, filled, err);
    else if (count_remaining(input, SIZE_MAX, &extra, err))
        status = -1;
    else if (extra > 0)
        status = report_data_size(input, (uint64_t)size + extra, err);
    if (status) {
        free(data);
        return -1;
    }
    *data_out = data;
    return 0;
}

/* A regular file tells its size: a header that promises more or less data
 * than the file holds is refused before anything is allocated. */
static int check_file_size(npy_input *input, nn_error *err) {
    struct stat info;
    if (fstat(fileno(input->file), &info) != 0 || !S_ISREG(info.st_mode)) return 0;
    uint64_t size = (uint64_t)info.st_size;
    uint64_t have = size > input->header_bytes ? size - input->header_bytes : 0;
    if (have != input->header.data_size) return report_data_size(input, have, err);
    input->size_checked = true;
    return 0;
}

static int read_npy_file(npy_input *input, unsigned char start[NPY_PREFIX_MAX], size_t got, nn_array *out,
                         nn_error *err) {
    unsigned char *data = NULL;
    if (read_header(input, start, got, err) || check_file_size(input, err) || read_data(input, &data, err))
        return -1;
    out->dtype = input->header.dtype;
    out->rank = input->rank;
    memcpy(out->dims, input->dims, sizeof out->dims);
    npy_to_host(data, out->dtype, (size_t)input->header.data_size / nn_dtype_size(out->dtype));
    out->data = data;
    return 0;
}

int nn_npy_read(const char *path, const char *key, nn_array *out, nn_error *err) {
    memset(out, 0, sizeof *out);
    npy_input input;
    if (open_input(&input, path, false, err)) {
        close_input(&input);
        return -1;
    }
    unsigned char start[NPY_PREFIX_MAX];
    errno = 0;
    size_t got = read_up_to(input.file, start, 8);
    int status;
    if (ferror(input.file)) {
        status = read_failed(&input, err, "at the start");
    } else if (is_zip(start, got)) {
        /* The zip reader seeks from the end: it opens the file itself. */
        close_input(&input);
        return nn_npz_read_key(path, key, out, err);
    } else if (got < sizeof npy_magic || memcmp(start, npy_magic, sizeof npy_magic) != 0) {
        status = not_npy(&input, start, got, "a .npy or .npz array", err);
    } else if (key) {
        status = nn_error_set(err, NN_ERR_INPUT,
                              "%s: a .npy file holds one unnamed array: leave out the key '%s' (keys name the "
                              "arrays of an .npz)",
                              input.name, key);
    } else {
        status = read_npy_file(&input, start, got, out, err);
    }
    close_input(&input);
    return status;
}

/* ---------------------------------------------------------------- stream */

nn_npy_stream *nn_npy_stream_open(const char *path, nn_error *err) {
    nn_npy_stream *stream = calloc(1, sizeof *stream);
    if (!stream) {
        nn_error_oom(err, "a .npy stream");
        return NULL;
    }
    npy_input *input = &stream->input;
    unsigned char start[NPY_PREFIX_MAX];
    int status = open_input(input, path, true, err);
    size_t got = 0;
    if (!status) {
        errno = 0;
        got = read_up_to(input->file, start, 8);
        if (ferror(input->file)) status = read_failed(input, err, "at the start");
    }
    if (!status && is_zip(start, got))
        status = nn_error_set(err, NN_ERR_INPUT,
                              "%s: an .npz archive, but predict reads a .npy, not an .npz, from a stream: save the "
                              "array alone with np.save",
                              input->name);
    else if (!status && (got < sizeof npy_magic || memcmp(start, npy_magic, sizeof npy_magic) != 0))
        status = not_npy(input, start, got, "a .npy array", err);
    if (!status) status = read_header(input, start, got, err);
    if (!status && input->header.rank == 0)
        status = nn_error_set(err, NN_ERR_INPUT,
                              "%s: a 0-d array (shape ()), expected items along the first dim (shape (N, ...))",
                              input->name);
    if (status) {
        nn_npy_stream_close(stream);
        return NULL;
    }
    stream->remaining = input->dims[0];
    stream->item_values = 1;
    for (int i = 1; i < input->rank; i++) stream->item_values *= (size_t)input->dims[i];
    stream->item_bytes = stream->item_values * nn_dtype_size(input->header.dtype);
    return stream;
}

int nn_npy_stream_rank(const nn_npy_stream *stream) { return stream->input.rank; }

const int64_t *nn_npy_stream_dims(const nn_npy_stream *stream) { return stream->input.dims; }

nn_dtype nn_npy_stream_dtype(const nn_npy_stream *stream) { return stream->input.header.dtype; }

static int report_short_stream(nn_npy_stream *stream, size_t got, nn_error *err) {
    const npy_input *input = &stream->input;
    int64_t total = input->dims[0];
    int64_t done = total - stream->remaining + (int64_t)(got / stream->item_bytes);
    size_t partial = got % stream->item_bytes;
    if (partial)
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s: truncated: the data ends inside item %lld of %lld (%zu of its %zu bytes)",
                            input->name, (long long)done + 1, (long long)total, partial, stream->item_bytes);
    return nn_error_set(err, NN_ERR_INPUT, "%s: truncated: the data ends after %lld of the %lld items the header "
                        "promises",
                        input->name, (long long)done, (long long)total);
}

/* Once the promised items are in, anything more is an error: a stream is
 * checked as strictly as a file. */
static int check_stream_end(nn_npy_stream *stream, nn_error *err) {
    size_t extra;
    if (count_remaining(&stream->input, STREAM_EXTRA_LIMIT, &extra, err)) return -1;
    if (extra == 0) return 0;
    return nn_error_set(err, NN_ERR_INPUT, "%s: %s%zu bytes after the %lld items the header promises",
                        stream->input.name, extra >= STREAM_EXTRA_LIMIT ? "at least " : "", extra,
                        (long long)stream->input.dims[0]);
}

/* Reads want bytes a piece at a time, converting each into out; *got says
 * how many bytes came. */
static void read_converting(nn_npy_stream *stream, float *out, size_t want, size_t *got) {
    nn_dtype dtype = stream->input.header.dtype;
    size_t value_size = nn_dtype_size(dtype);
    *got = 0;
    while (*got < want) {
        size_t piece = want - *got < STREAM_PIECE ? want - *got : STREAM_PIECE;
        size_t count = read_up_to(stream->input.file, stream->piece, piece);
        npy_to_float(out + *got / value_size, stream->piece, dtype, count / value_size);
        *got += count;
        if (count < piece) return;
    }
}

int nn_npy_stream_read(nn_npy_stream *stream, float *out, int max_items, nn_error *err) {
    if (stream->failed)
        return nn_error_set(err, NN_ERR_INPUT, "%s: the stream failed earlier and cannot be read on",
                            stream->input.name);
    if (max_items < 1)
        return nn_error_set(err, NN_ERR_RUNTIME, "%s: max_items must be at least 1, got %d", stream->input.name,
                            max_items);
    if (stream->remaining == 0) return 0;
    int count = max_items < stream->remaining ? max_items : (int)stream->remaining;
    size_t want = (size_t)count * stream->item_bytes, got;
    errno = 0;
    read_converting(stream, out, want, &got);
    int status = 0;
    if (ferror(stream->input.file)) {
        status = read_failed(&stream->input, err, "in the data");
    } else if (got < want) {
        status = report_short_stream(stream, got, err);
    } else {
        stream->remaining -= count;
        if (stream->remaining == 0) status = check_stream_end(stream, err);
    }
    if (status) {
        stream->failed = true;
        return -1;
    }
    return count;
}

void nn_npy_stream_close(nn_npy_stream *stream) {
    if (!stream) return;
    close_input(&stream->input);
    free(stream);
}
