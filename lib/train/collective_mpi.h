/* The MPI group (collective.h) of a run under mpirun: only in builds made
 * with `make MPI=1` (NN_MPI defined), linked against Open MPI. */
#ifndef NNSEQ_COLLECTIVE_MPI_H
#define NNSEQ_COLLECTIVE_MPI_H

#include <stdbool.h>
#include <stddef.h>

#include "train/collective.h"

/* Whether mpirun (or another MPI launcher) started this process: its
 * environment names a rank. A plain `nnseq train` does not start MPI. */
bool nn_mpi_launched(void);
/* MPI_Init_thread (FUNNELED) and the COMM_WORLD group into c. */
int nn_mpi_start(nn_collective *c, nn_error *err);
void nn_mpi_finish(void);
/* Ends every rank of the job (MPI_Abort) with status. */
void nn_mpi_abort(int status);
/* "Open MPI v4.1.4, ..." (MPI_Get_library_version's first line). */
void nn_mpi_library(char *buffer, size_t size);

#endif
