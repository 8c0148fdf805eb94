/* ckpt_edit IN OUT NAME INDEX VALUE: a copy of checkpoint IN with element
 * INDEX of array NAME set to VALUE (a float for float32 arrays, "nan" and
 * "inf" too; an integer for int64 ones), written as a valid container, so
 * that the tests can forge what the reader must refuse on its own merits
 * (a NaN weight, an epoch of -5) rather than on a broken CRC. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/container.h"

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: ckpt_edit IN OUT NAME INDEX VALUE\n");
        return 2;
    }
    nn_error err = {0};
    nn_array *arrays = NULL;
    size_t count = 0;
    if (nn_container_read(argv[1], &arrays, &count, &err) != 0) {
        fprintf(stderr, "ckpt_edit: %s\n", err.message);
        return 1;
    }
    int status = 1;
    nn_array *a = (nn_array *)nn_container_find(arrays, count, argv[3]);
    char *end;
    errno = 0;
    unsigned long long index = strtoull(argv[4], &end, 10);
    if (!a) {
        fprintf(stderr, "ckpt_edit: %s has no array '%s'\n", argv[1], argv[3]);
    } else if (*end || errno || index >= nn_array_count(a)) {
        fprintf(stderr, "ckpt_edit: index %s is not in 0..%zu\n", argv[4], nn_array_count(a) - 1);
    } else if (a->dtype == NN_F32) {
        ((float *)a->data)[index] = strtof(argv[5], NULL);
        status = 0;
    } else if (a->dtype == NN_I64) {
        ((int64_t *)a->data)[index] = strtoll(argv[5], NULL, 10);
        status = 0;
    } else {
        fprintf(stderr, "ckpt_edit: '%s' is neither float32 nor int64\n", argv[3]);
    }
    if (status == 0 && nn_container_write(argv[2], arrays, count, &err) != 0) {
        fprintf(stderr, "ckpt_edit: %s\n", err.message);
        status = 1;
    }
    nn_arrays_free(arrays, count);
    return status;
}
