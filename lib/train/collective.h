/* The processes of a data-parallel run: a group of ranks that sum, share
 * and gather values, MPI's COMM_WORLD under `mpirun` (collective_mpi.c,
 * built with `make MPI=1`). The trainer and the engine only call through
 * this table, so lib/train knows nothing of MPI and the default build has
 * no MPI dependency.
 *
 * Every function is collective: every rank calls it, in the same order,
 * with the same counts (gather's sizes may differ), from the thread that
 * started the group (MPI_THREAD_FUNNELED). Results are the same bits on
 * every rank. A failure is NN_ERR_RUNTIME; the caller ends the job (one
 * rank cannot go on alone). */
#ifndef NNSEQ_COLLECTIVE_H
#define NNSEQ_COLLECTIVE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct nn_collective nn_collective;

struct nn_collective {
    int rank, size;   /* this process's rank, 0 .. size - 1; size >= 1 */
    void *impl;
    /* values[0 .. count) summed over the ranks, in place. */
    int (*sum_doubles)(const nn_collective *c, double *values, int count, nn_error *err);
    int (*sum_floats)(const nn_collective *c, float *values, size_t count, nn_error *err);
    /* Rank 0's size bytes at data, to every rank's data. */
    int (*broadcast)(const nn_collective *c, void *data, size_t size, nn_error *err);
    /* Each rank's size bytes to rank 0, in rank order: on rank 0 *all is a
     * malloc'ed buffer of every rank's bytes one after another and sizes[r]
     * rank r's size (sizes has c->size entries); other ranks get *all NULL. */
    int (*gather)(const nn_collective *c, const void *data, size_t size, void **all, size_t *sizes, nn_error *err);
    /* The two halves of sum_floats, for an update sharded over the ranks
     * (each rank updates its slice, nn_collective_slice, then every rank
     * gets every slice): reduce_scatter_floats sums values[0 .. count) over
     * the ranks into this rank's slice of values, leaving the rest of
     * values unspecified; scratch holds nn_collective_slice_max floats.
     * allgather_floats copies every rank's slice of values to every rank.
     * Either may be NULL: the group sums whole buffers only. */
    int (*reduce_scatter_floats)(const nn_collective *c, float *values, size_t count, float *scratch, nn_error *err);
    int (*allgather_floats)(const nn_collective *c, float *values, size_t count, nn_error *err);
};

/* Rank rank's slice [*first, *first + *count) of a buffer of total values
 * in a sharded update: contiguous, in rank order, covering the buffer,
 * its ends at multiples of NN_COLLECTIVE_SLICE_ALIGN values (a 64-byte
 * line of floats) but for the buffer's end; some may be empty. */
#define NN_COLLECTIVE_SLICE_ALIGN 16
void nn_collective_slice(const nn_collective *c, int rank, size_t total, size_t *first, size_t *count);
/* The largest of the ranks' slices of total values. */
size_t nn_collective_slice_max(const nn_collective *c, size_t total);

/* Rows [first, first + count) of a global batch or split, this rank's
 * share: [*mine_first, *mine_first + *mine_count), contiguous, rank order,
 * sizes differing by at most one. NULL or size 1: the whole range. */
void nn_collective_share(const nn_collective *c, int64_t first, int64_t count, int64_t *mine_first,
                         int64_t *mine_count);

#endif
