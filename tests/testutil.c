#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

int testutil_run(Suite *suite) {
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

const char *testutil_tmpdir(char *buffer, size_t size) {
    const char *base = getenv("TMPDIR");
    snprintf(buffer, size, "%s/nnseq-test-XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(buffer);
}

int testutil_write_file(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t written = size ? fwrite(data, 1, size, f) : 0;
    return fclose(f) == 0 && written == size ? 0 : -1;
}

void testutil_remove_tmpdir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    char path[4096];
    for (struct dirent *entry; (entry = readdir(d));)
        if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0) {
            snprintf(path, sizeof path, "%s/%s", dir, entry->d_name);
            unlink(path);
        }
    closedir(d);
    rmdir(dir);
}

const char *testutil_path(char *buffer, size_t size, const char *dir, const char *name) {
    snprintf(buffer, size, "%s/%s", dir, name);
    return buffer;
}
