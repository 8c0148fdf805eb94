#include "io/gz_input.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* zlib's buffer: large enough that the per-call overhead vanishes. */
#define ZLIB_BUFFER (128u * 1024u)

gzFile nn_gz_open(const char *path, const char *name, bool stdin_allowed, bool *regular_file, nn_error *err) {
    int fd = stdin_allowed && strcmp(path, "-") == 0 ? dup(STDIN_FILENO) : open(path, O_RDONLY);
    if (fd < 0) {
        nn_error_set(err, NN_ERR_INPUT, "%s: cannot open: %s", name, strerror(errno));
        return NULL;
    }
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
