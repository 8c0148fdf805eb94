/* make bench (bench/run.sh's MPI section) and docs/scaling.md: the time of
 * one MPI_Allreduce(MPI_IN_PLACE, float, SUM) over COMM_WORLD, the call the
 * engine makes once per training step over the whole flat gradient buffer
 * (lib/train/engine.c collective_update), at the given buffer sizes.
 *
 *   mpicc -O2 bench/allreduce.c -o build/allreduce
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
 * the values). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
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
        if (!buffer) {
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
        free(buffer);
        MPI_Reduce(times, slowest, calls, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
        if (rank == 0) {
            qsort(slowest, (size_t)calls, sizeof *slowest, by_value);
            double median = calls % 2 ? slowest[calls / 2] : (slowest[calls / 2 - 1] + slowest[calls / 2]) / 2;
            double bytes = (double)count * sizeof(float);
            double moved = bytes * 2.0 * (size - 1) / size;
            printf("{\"ranks\": %d, \"floats\": %ld, \"bytes\": %.0f, \"calls\": %d, \"median_us\": %.1f, "
                   "\"min_us\": %.1f, \"p90_us\": %.1f, \"algbw_GBps\": %.3f, \"busbw_GBps\": %.3f, \"mpi\": \"%s\"}\n",
                   size, count, bytes, calls, median * 1e6, slowest[0] * 1e6, slowest[(calls * 9) / 10] * 1e6,
                   bytes / median / 1e9, moved / median / 1e9, version);
            fflush(stdout);
        }
    }
    free(times);
    free(slowest);
    MPI_Finalize();
    return 0;
}
