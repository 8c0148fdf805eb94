#include "io/gz_input.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* zlib's buffer, and the reader's: large enough that the per-call overhead
 * vanishes. */
#define ZLIB_BUFFER (128u * 1024u)
/* read() and inflate() take lengths that must fit ssize_t and uInt. */
#define IO_CHUNK ((size_t)1 << 30)

static int open_fd(const char *path, const char *name, bool stdin_allowed, nn_error *err) {
    int fd = stdin_allowed && strcmp(path, "-") == 0 ? dup(STDIN_FILENO) : open(path, O_RDONLY);
    if (fd < 0) nn_error_set(err, NN_ERR_INPUT, "%s: cannot open: %s", name, strerror(errno));
    return fd;
}

gzFile nn_gz_open(const char *path, const char *name, bool stdin_allowed, bool *regular_file, nn_error *err) {
    int fd = open_fd(path, name, stdin_allowed, err);
    if (fd < 0) return NULL;
    if (regular_file) {
        struct stat status;
        *regular_file = fstat(fd, &status) == 0 && S_ISREG(status.st_mode);
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

bool nn_gz_clean_end(gzFile file) {
    int zlib_status;
    gzerror(file, &zlib_status);
    return zlib_status == Z_OK;
}

/* ---------------------------------------------------------------- reader */

typedef enum failure { FAILED_NOT, FAILED_READ, FAILED_DAMAGED, FAILED_TRUNCATED, FAILED_MEMORY } failure;

struct nn_gz_reader {
    int fd;
    char *name;
    bool gzip, inflating, input_end, member_end;
    int64_t file_size; /* -1: not a regular file */
    int64_t taken;     /* bytes read from the file so far */
    failure failed;
    int saved_errno;
    const char *zlib_message;
    z_stream zs; /* next_in and avail_in: what is buffered, raw files too */
    unsigned char buffer[ZLIB_BUFFER];
};

static int fail(nn_gz_reader *reader, failure why) {
    reader->failed = why;
    return -1;
}

static ssize_t read_input(nn_gz_reader *reader, unsigned char *out, size_t size) {
    ssize_t count;
    do count = read(reader->fd, out, size < IO_CHUNK ? size : IO_CHUNK);
    while (count < 0 && errno == EINTR);
    if (count < 0) {
        reader->saved_errno = errno;
        return fail(reader, FAILED_READ);
    }
    if (count == 0) reader->input_end = true;
    reader->taken += count;
    return count;
}

/* Until at least want bytes are buffered or the input ends. Reads only
 * what one read() returns beyond that, so a pipe is not waited on. */
static int buffer_input(nn_gz_reader *reader, size_t want) {
    z_stream *zs = &reader->zs;
    if (zs->avail_in > 0 && zs->next_in != reader->buffer) memmove(reader->buffer, zs->next_in, zs->avail_in);
    zs->next_in = reader->buffer;
    while (zs->avail_in < want && !reader->input_end) {
        ssize_t count = read_input(reader, reader->buffer + zs->avail_in, sizeof reader->buffer - zs->avail_in);
        if (count < 0) return -1;
        zs->avail_in += (uInt)count;
    }
    return 0;
}

nn_gz_reader *nn_gz_reader_open(const char *path, const char *name, bool stdin_allowed, nn_error *err) {
    nn_gz_reader *reader = calloc(1, sizeof *reader);
    char *name_copy = malloc(strlen(name) + 1);
    if (!reader || !name_copy) {
        free(reader);
        free(name_copy);
        nn_error_oom(err, "a file reader");
        return NULL;
    }
    reader->name = strcpy(name_copy, name);
    reader->file_size = -1;
    reader->fd = open_fd(path, name, stdin_allowed, err);
    if (reader->fd < 0) {
        free(name_copy);
        free(reader);
        return NULL;
    }
    struct stat status;
    if (fstat(reader->fd, &status) == 0 && S_ISREG(status.st_mode)) {
        /* Standard input may be a file read from somewhere in its middle. */
        off_t start = lseek(reader->fd, 0, SEEK_CUR);
        reader->file_size = (int64_t)status.st_size - (start > 0 ? (int64_t)start : 0);
        if (reader->file_size < 0) reader->file_size = 0;
    }
    reader->zs.next_in = reader->buffer;
    if (buffer_input(reader, 2) < 0) {
        nn_gz_reader_report(reader, "at its start", err);
        nn_gz_reader_close(reader);
        return NULL;
    }
    reader->gzip = reader->zs.avail_in >= 2 && reader->buffer[0] == 0x1f && reader->buffer[1] == 0x8b;
    /* 16 + MAX_WBITS: a gzip wrapper, one member, the largest window. */
    if (reader->gzip && inflateInit2(&reader->zs, 16 + MAX_WBITS) != Z_OK) {
        nn_gz_reader_close(reader);
        nn_error_oom(err, "a zlib reader");
        return NULL;
    }
    reader->inflating = reader->gzip;
    return reader;
}

bool nn_gz_reader_is_gzip(const nn_gz_reader *reader) { return reader->gzip; }

int64_t nn_gz_reader_file_size(const nn_gz_reader *reader) { return reader->file_size; }

static int read_raw(nn_gz_reader *reader, unsigned char *out, size_t size, size_t *got) {
    z_stream *zs = &reader->zs;
    while (*got < size) {
        if (zs->avail_in > 0) {
            size_t count = size - *got < zs->avail_in ? size - *got : zs->avail_in;
            memcpy(out + *got, zs->next_in, count);
            zs->next_in += count;
            zs->avail_in -= (uInt)count;
            *got += count;
        } else if (reader->input_end) {
            break;
        } else {
            ssize_t count = read_input(reader, out + *got, size - *got);
            if (count < 0) return -1;
            *got += (size_t)count;
        }
    }
    return 0;
}

static int read_gzip(nn_gz_reader *reader, unsigned char *out, size_t size, size_t *got) {
    z_stream *zs = &reader->zs;
    while (*got < size && !reader->member_end) {
        if (zs->avail_in == 0 && buffer_input(reader, 1) < 0) return -1;
        size_t want = size - *got < IO_CHUNK ? size - *got : IO_CHUNK;
        zs->next_out = out + *got;
        zs->avail_out = (uInt)want;
        int status = inflate(zs, Z_NO_FLUSH);
        *got += want - zs->avail_out;
        if (status == Z_STREAM_END) {
            reader->member_end = true;
        } else if (status == Z_MEM_ERROR) {
            return fail(reader, FAILED_MEMORY);
        } else if (status != Z_OK && status != Z_BUF_ERROR) {
            reader->zlib_message = zs->msg ? zs->msg : "unknown error";
            return fail(reader, FAILED_DAMAGED);
        } else if (zs->avail_in == 0 && reader->input_end && zs->avail_out > 0) {
            /* inflate stops short of a full buffer only for want of input. */
            return fail(reader, FAILED_TRUNCATED);
        }
    }
    return 0;
}

int nn_gz_reader_read(nn_gz_reader *reader, void *buffer, size_t size, size_t *got) {
    *got = 0;
    if (reader->failed) return -1;
    return reader->gzip ? read_gzip(reader, buffer, size, got) : read_raw(reader, buffer, size, got);
}

int nn_gz_reader_report(const nn_gz_reader *reader, const char *where, nn_error *err) {
    const char *name = reader->name;
    switch (reader->failed) {
    case FAILED_READ:
        return nn_error_set(err, NN_ERR_INPUT, "%s: read failed %s: %s", name, where, strerror(reader->saved_errno));
    case FAILED_TRUNCATED:
        return nn_error_set(err, NN_ERR_INPUT, "%s: truncated: the gzip stream ends unexpectedly %s", name, where);
    case FAILED_DAMAGED:
        return nn_error_set(err, NN_ERR_INPUT, "%s: damaged gzip data %s: %s", name, where, reader->zlib_message);
    case FAILED_MEMORY: return nn_error_oom(err, "zlib's inflate state");
    case FAILED_NOT: break;
    }
    return nn_error_set(err, NN_ERR_RUNTIME, "%s: no read failed %s", name, where);
}

int nn_gz_reader_rest(nn_gz_reader *reader, nn_gz_rest *rest, int64_t *extra, bool *second_member) {
    int64_t more = 0;
    bool second = false;
    *rest = NN_GZ_REST_NONE;
    if (reader->gzip && !reader->member_end) {
        unsigned char byte;
        size_t got;
        if (nn_gz_reader_read(reader, &byte, 1, &got) < 0) return -1;
        if (got) {
            *rest = NN_GZ_REST_DATA;
            more = -1;
        }
    }
    /* Only a regular file's size says without blocking what follows. */
    if (*rest == NN_GZ_REST_NONE && reader->file_size >= 0) {
        more = reader->file_size - (reader->taken - (int64_t)reader->zs.avail_in);
        if (more > 0 && !reader->gzip) *rest = NN_GZ_REST_DATA;
        if (more > 0 && reader->gzip) {
            *rest = NN_GZ_REST_AFTER_STREAM;
            if (buffer_input(reader, 2) < 0) return -1;
            second = reader->zs.avail_in >= 2 && reader->zs.next_in[0] == 0x1f && reader->zs.next_in[1] == 0x8b;
        }
        if (more < 0) more = 0;
    }
    if (extra) *extra = more;
    if (second_member) *second_member = second;
    return 0;
}

void nn_gz_reader_close(nn_gz_reader *reader) {
    if (!reader) return;
    if (reader->inflating) inflateEnd(&reader->zs);
    if (reader->fd >= 0) close(reader->fd);
    free(reader->name);
    free(reader);
}
