/* make bench (bench/run.sh's MPI section) and docs/scaling.md: per
 * training step the engine sums the flat gradient buffer over the ranks as
 * the two halves of a ring allreduce with the sharded update between them
 * (lib/train/engine.c collective_update: nnseq's own ring reduce-scatter
 * and allgather, lib/train/collective_mpi.c, linked in here); this times
 * that pair and, for comparison, one MPI_Allreduce(MPI_IN_PLACE, float,
 * SUM) over COMM_WORLD, at the given buffer sizes.
 *
 *   mpicc -O2 -Ilib bench/allreduce.c lib/train/collective_mpi.c \
 *       lib/train/collective.c lib/core/error.c -o build/allreduce
 *   mpirun -np 2 build/allreduce [--calls N] FLOATS...
 *
 * Per size: WARMUP untimed calls, then N calls each timed on every rank
 * between a barrier and its return; a call's time is the slowest rank's
 * (MPI_Reduce MAX), as a training step waits for the slowest. One JSON line
 * per size on rank 0: median, min and 90th percentile in microseconds;
 * algbw = bytes / median; busbw = bytes x 2(N-1)/N / median, the bytes each
 * rank sends (and receives) in a ring allreduce, so busbw is comparable with
 * a link's bandwidth. The buffer holds zeros (sums of zeros stay zeros, so
 * no overflow or subnormals over many calls; the time does not depend on
 * the values). ring_median_us and ring_min_us: the reduce-scatter and
 * allgather pair, timed the same way. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/collective_mpi.h"

#define WARMUP 10
#define MAX_CALLS 100000
#define MAX_FLOATS (1L << 28)   /* 1 GiB of floats: the engine's MPI_PIECE */

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static long parse(const char *text, long low, long high, const char *what, int rank) {
    char *end;
    long value = strtol(text, &end, 10);
    if (end == text || *end || value < low || value > high) {
        if (rank == 0) fprintf(stderr, "allreduce: %s %s: expected an integer %ld to %ld\n", what, text, low, high);
        MPI_Finalize();
        exit(2);
    }
    return value;
}

static double median_of(double *values, int count) {
    qsort(values, (size_t)count, sizeof *values, by_value);
    return count % 2 ? values[count / 2] : (values[count / 2 - 1] + values[count / 2]) / 2;
}

int main(int argc, char **argv) {
    nn_collective group;
    nn_error err;
    if (nn_mpi_start(&group, &err) != 0) {
        fprintf(stderr, "allreduce: %s\n", err.message);
        return 1;
    }
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int calls = 200, first = 1;
    if (argc > 2 && strcmp(argv[1], "--calls") == 0) {
        calls = (int)parse(argv[2], 1, MAX_CALLS, "--calls", rank);
        first = 3;
    }
    if (first >= argc) {
        if (rank == 0) fprintf(stderr, "usage: mpirun -np N allreduce [--calls N] FLOATS...\n");
        MPI_Finalize();
        return 2;
    }
    double *times = malloc((size_t)calls * sizeof *times), *slowest = malloc((size_t)calls * sizeof *slowest);
    if (!times || !slowest) {
        fprintf(stderr, "allreduce: rank %d: out of memory for %d times\n", rank, calls);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    char version[MPI_MAX_LIBRARY_VERSION_STRING] = "";
    int length = 0;
    MPI_Get_library_version(version, &length);
    char *cut = strpbrk(version, ",\n");
    if (cut) *cut = '\0';
    for (int a = first; a < argc; a++) {
        long count = parse(argv[a], 1, MAX_FLOATS, "FLOATS", rank);
        float *buffer = calloc((size_t)count, sizeof *buffer);
        float *scratch = malloc(nn_collective_slice_max(&group, (size_t)count) * sizeof *scratch + sizeof *scratch);
        if (!buffer || !scratch) {
            fprintf(stderr, "allreduce: rank %d: out of memory for %ld floats\n", rank, count);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        for (int i = 0; i < WARMUP; i++)
            MPI_Allreduce(MPI_IN_PLACE, buffer, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        for (int i = 0; i < calls; i++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double start = MPI_Wtime();
            MPI_Allreduce(MPI_IN_PLACE, buffer, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            times[i] = MPI_Wtime() - start;
        }
        MPI_Reduce(times, slowest, calls, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
        double median = 0, least = 0, p90 = 0;
        if (rank == 0) {
            median = median_of(slowest, calls);
            least = slowest[0];
            p90 = slowest[(calls * 9) / 10];
        }
        for (int i = 0; i < WARMUP + calls; i++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double start = MPI_Wtime();
            if (group.reduce_scatter_floats(&group, buffer, (size_t)count, scratch, &err) != 0 ||
                group.allgather_floats(&group, buffer, (size_t)count, &err) != 0) {
                fprintf(stderr, "allreduce: rank %d: %s\n", rank, err.message);
                MPI_Abort(MPI_COMM_WORLD, 1);
            }
            if (i >= WARMUP) times[i - WARMUP] = MPI_Wtime() - start;
        }
        free(buffer);
        free(scratch);
        MPI_Reduce(times, slowest, calls, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
        if (rank == 0) {
            double ring = median_of(slowest, calls);
            double bytes = (double)count * sizeof(float);
            double moved = bytes * 2.0 * (size - 1) / size;
            printf("{\"ranks\": %d, \"floats\": %ld, \"bytes\": %.0f, \"calls\": %d, \"median_us\": %.1f, "
                   "\"min_us\": %.1f, \"p90_us\": %.1f, \"algbw_GBps\": %.3f, \"busbw_GBps\": %.3f, "
                   "\"ring_median_us\": %.1f, \"ring_min_us\": %.1f, \"ring_busbw_GBps\": %.3f, \"mpi\": \"%s\"}\n",
                   size, count, bytes, calls, median * 1e6, least * 1e6, p90 * 1e6, bytes / median / 1e9,
                   moved / median / 1e9, ring * 1e6, slowest[0] * 1e6, moved / ring / 1e9, version);
            fflush(stdout);
        }
    }
    free(times);
    free(slowest);
    nn_mpi_finish();
    return 0;
}
