/* collective.h over MPI's COMM_WORLD. Sums use MPI_Allreduce, which gives
 * every rank the same bits (Open MPI reduces each element once and
 * distributes the result); messages above INT_MAX elements go in pieces. */
#include <limits.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/collective_mpi.h"

/* A piece of at most this many elements per MPI call (MPI counts are int). */
#define MPI_PIECE ((size_t)1 << 28)

static int mpi_fail(nn_error *err, const char *what, int code) {
    char text[MPI_MAX_ERROR_STRING] = "";
    int length = 0;
    MPI_Error_string(code, text, &length);
    return nn_error_set(err, NN_ERR_RUNTIME, "MPI %s failed: %s", what, text);
}

static int sum_doubles(const nn_collective *c, double *values, int count, nn_error *err) {
    (void)c;
    int code = MPI_Allreduce(MPI_IN_PLACE, values, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    return code == MPI_SUCCESS ? 0 : mpi_fail(err, "Allreduce", code);
}

static int sum_floats(const nn_collective *c, float *values, size_t count, nn_error *err) {
    (void)c;
    for (size_t done = 0; done < count; done += MPI_PIECE) {
        size_t n = count - done < MPI_PIECE ? count - done : MPI_PIECE;
        int code = MPI_Allreduce(MPI_IN_PLACE, values + done, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        if (code != MPI_SUCCESS) return mpi_fail(err, "Allreduce", code);
    }
    return 0;
}

static int broadcast(const nn_collective *c, void *data, size_t size, nn_error *err) {
    (void)c;
    for (size_t done = 0; done < size; done += MPI_PIECE) {
        size_t n = size - done < MPI_PIECE ? size - done : MPI_PIECE;
        int code = MPI_Bcast((char *)data + done, (int)n, MPI_BYTE, 0, MPI_COMM_WORLD);
        if (code != MPI_SUCCESS) return mpi_fail(err, "Bcast", code);
    }
    return 0;
}

static int gather(const nn_collective *c, const void *data, size_t size, void **all, size_t *sizes, nn_error *err) {
    *all = NULL;
    if (size > INT_MAX) return nn_error_set(err, NN_ERR_RUNTIME, "MPI gather of %zu bytes (at most %d)", size, INT_MAX);
    int mine = (int)size;
    int *counts = NULL, *offsets = NULL;
    char *buffer = NULL;
    if (c->rank == 0) {
        counts = calloc((size_t)c->size, sizeof *counts);
        offsets = calloc((size_t)c->size, sizeof *offsets);
        if (!counts || !offsets) {
            free(counts);
            free(offsets);
            /* Still take part, or the others wait for ever: the job ends on the error. */
            MPI_Gather(&mine, 1, MPI_INT, NULL, 1, MPI_INT, 0, MPI_COMM_WORLD);
            return nn_error_oom(err, "the ranks' sizes");
        }
    }
    int code = MPI_Gather(&mine, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (code != MPI_SUCCESS) {
        free(counts);
        free(offsets);
        return mpi_fail(err, "Gather", code);
    }
    size_t total = 0;
    if (c->rank == 0) {
        for (int r = 0; r < c->size; r++) {
            if (total > (size_t)INT_MAX - (size_t)counts[r]) {
                free(counts);
                free(offsets);
                return nn_error_set(err, NN_ERR_RUNTIME, "MPI gather of more than %d bytes", INT_MAX);
            }
            offsets[r] = (int)total;
            sizes[r] = (size_t)counts[r];
            total += (size_t)counts[r];
        }
        buffer = malloc(total ? total : 1);
    }
    code = MPI_Gatherv(data, mine, MPI_BYTE, buffer, counts, offsets, MPI_BYTE, 0, MPI_COMM_WORLD);
    free(counts);
    free(offsets);
    if (code != MPI_SUCCESS) {
        free(buffer);
        return mpi_fail(err, "Gatherv", code);
    }
    if (c->rank == 0 && !buffer) return nn_error_oom(err, "the ranks' gathered values");
    *all = buffer;
    return 0;
}

bool nn_mpi_launched(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

int nn_mpi_start(nn_collective *c, nn_error *err) {
    int provided = 0;
    int code = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (code != MPI_SUCCESS) return mpi_fail(err, "Init", code);
    if (provided < MPI_THREAD_FUNNELED)
        return nn_error_set(err, NN_ERR_RUNTIME, "this MPI library does not support threads (MPI_THREAD_FUNNELED)");
    /* Errors come back as codes, so that the failing rank can name itself. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    memset(c, 0, sizeof *c);
    MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c->size);
    c->sum_doubles = sum_doubles;
    c->sum_floats = sum_floats;
    c->broadcast = broadcast;
    c->gather = gather;
    return 0;
}

void nn_mpi_finish(void) {
    int started = 0, finished = 0;
    MPI_Initialized(&started);
    MPI_Finalized(&finished);
    if (started && !finished) MPI_Finalize();
}

void nn_mpi_abort(int status) { MPI_Abort(MPI_COMM_WORLD, status); }

void nn_mpi_library(char *buffer, size_t size) {
    char version[MPI_MAX_LIBRARY_VERSION_STRING] = "";
    int length = 0;
    MPI_Get_library_version(version, &length);
    char *newline = strchr(version, '\n');
    if (newline) *newline = '\0';
    char *comma = strchr(version, ',');
    if (comma) *comma = '\0';
    snprintf(buffer, size, "%s", version);
}
