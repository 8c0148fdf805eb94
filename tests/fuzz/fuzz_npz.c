/* libFuzzer harness for the .npz reader (lib/io/npz.h): the input is the
 * file. It is opened (nn_npz_open), every entry's header and then data
 * read (nn_npz_read_header, nn_npz_read_entry), then read whole
 * (nn_npz_read) and, when it holds one array, by nn_npz_read_key. A failure
 * must be an input error naming the file; an entry's data must match its
 * header; the whole read must succeed exactly when every entry does, with
 * the same arrays. Seeds: tests/fuzz/corpus/npz (np.savez and
 * np.savez_compressed files). */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/error.h"
#include "core/shape.h"
#include "io/npz.h"

/* The readers open files by name: the input goes to a memfd, rewritten for
 * each input, so nothing is left on disk whatever ends the process. */
static const char *input_file(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz_npz", MFD_CLOEXEC);
        if (fd < 0) {
            perror("fuzz_npz: memfd_create");
            abort();
        }
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size)) {
        perror("fuzz_npz: writing the input");
        abort();
    }
    return path;
}

static void fail(const char *what, const nn_error *err) {
    fprintf(stderr, "fuzz_npz: %s%s%s\n", what, err ? ": " : "", err ? err->message : "");
    abort();
}

/* A failure must be bad input, told as such, naming the file. */
static void check_error(const char *reader, const nn_error *err, const char *path) {
    if (err->status != NN_ERR_INPUT || !strstr(err->message, path)) {
        fprintf(stderr, "fuzz_npz: %s failed with status %d and a message that %s the file: %s\n", reader,
                err->status, strstr(err->message, path) ? "names" : "does not name", err->message);
        abort();
    }
}

static bool same_shape(const nn_array *a, const nn_array *b) {
    return !strcmp(a->name, b->name) && a->dtype == b->dtype && a->rank == b->rank &&
           !memcmp(a->dims, b->dims, (size_t)a->rank * sizeof a->dims[0]);
}

static bool same_array(const nn_array *a, const nn_array *b) {
    size_t bytes = nn_array_bytes(a);
    return same_shape(a, b) && (!bytes || !memcmp(a->data, b->data, bytes));
}

/* Every entry by itself into *entries (NULL where one fails); true when all
 * were read. */
static bool read_entries(nn_npz *npz, const char *path, nn_array **entries, size_t *count) {
    *count = nn_npz_count(npz);
    *entries = calloc(*count + 1, sizeof **entries);
    if (!*entries) fail("out of memory", NULL);
    bool all = true;
    for (size_t i = 0; i < *count; i++) {
        const char *key = nn_npz_key(npz, i);
        size_t found = SIZE_MAX;
        if (!key || !nn_npz_find(npz, key, &found) || found != i) {
            fprintf(stderr, "fuzz_npz: entry %zu's key '%s' finds entry %zu\n", i, key ? key : "(null)", found);
            fail("an entry's key does not find that entry", NULL);
        }
        nn_error err = {0};
        nn_array header, *entry = &(*entries)[i];
        int header_status = nn_npz_read_header(npz, i, &header, &err);
        if (header_status) check_error("nn_npz_read_header", &err, path);
        else if (header.data) fail("nn_npz_read_header gave data", NULL);
        if (nn_npz_read_entry(npz, i, entry, &err)) {
            check_error("nn_npz_read_entry", &err, path);
            if (entry->data) fail("nn_npz_read_entry failed but left data", NULL);
            all = false;
            continue;
        }
        if (header_status) fail("an entry reads but its header does not", NULL);
        if (!same_shape(&header, entry)) fail("an entry's data does not match its header", NULL);
        if (strcmp(entry->name, key)) fail("an entry's name is not its key", NULL);
        if (nn_array_bytes(entry) && !entry->data) fail("an entry with values has no data", NULL);
    }
    if (nn_npz_count(npz) != *count || nn_npz_key(npz, *count)) fail("the archive's count changed", NULL);
    return all;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = input_file(data, size);
    nn_error err = {0};
    nn_npz *npz;
    if (nn_npz_open(&npz, path, &err)) {
        check_error("nn_npz_open", &err, path);
        if (npz) fail("nn_npz_open failed but gave an archive", NULL);
        nn_array *arrays;
        size_t count;
        if (!nn_npz_read(path, &arrays, &count, &err)) fail("nn_npz_read reads what nn_npz_open refuses", NULL);
        return 0;
    }
    nn_array *entries;
    size_t count;
    bool all = read_entries(npz, path, &entries, &count);
    nn_npz_close(npz);

    nn_array *arrays;
    size_t read_count;
    int status = nn_npz_read(path, &arrays, &read_count, &err);
    if (status) check_error("nn_npz_read", &err, path);
    if (!status != all) fail(all ? "nn_npz_read fails where every entry reads" : "nn_npz_read reads a bad entry", &err);
    if (!status) {
        if (read_count != count) fail("nn_npz_read gives another count", NULL);
        for (size_t i = 0; i < count; i++)
            if (!same_array(&arrays[i], &entries[i])) fail("nn_npz_read gives another array", NULL);
        nn_arrays_free(arrays, read_count);
    }
    if (count == 1) {
        nn_array one;
        status = nn_npz_read_key(path, NULL, &one, &err);
        if (status) check_error("nn_npz_read_key", &err, path);
        if (!status != all || (!status && !same_array(&one, &entries[0])))
            fail("nn_npz_read_key disagrees with nn_npz_read_entry", &err);
        free(one.data);
    }
    nn_arrays_free(entries, count);
    return 0;
}
