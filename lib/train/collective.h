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
};

/* Rows [first, first + count) of a global batch or split, this rank's
 * share: [*mine_first, *mine_first + *mine_count), contiguous, rank order,
 * sizes differing by at most one. NULL or size 1: the whole range. */
void nn_collective_share(const nn_collective *c, int64_t first, int64_t count, int64_t *mine_first,
                         int64_t *mine_count);

#endif
