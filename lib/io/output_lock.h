/* One writer per output for the length of a run. Two trainers writing one
 * checkpoint would each replace the other's file in turn and both report
 * success; so a run holds an advisory lock (flock) on PATH.lock beside its
 * output, a file that holds the writer's pid, and a second writer is
 * refused with that pid in the message. flock dies with its process, so a
 * killed run leaves no stale lock, only the small file, which the next
 * writer takes over.
 *
 * Under the lock nobody else writes PATH, so a temporary file of PATH's
 * (PATH.tmp-*, see atomic_file.h) still there is a leftover of a killed
 * run: taking the lock removes them. */
#ifndef NNSEQ_OUTPUT_LOCK_H
#define NNSEQ_OUTPUT_LOCK_H

#include "core/error.h"

typedef struct nn_output_lock {
    int fd;              /* -1: not held */
    char *lock_path;
} nn_output_lock;

/* Takes the lock of path (what names it in messages: "checkpoint", "log").
 * Another holder: NN_ERR_INPUT "PATH: another nnseq (pid N) is writing
 * this checkpoint ...". A symbolic link at path locks the file it names,
 * so two names for one file share one lock. */
int nn_output_lock_take(nn_output_lock *lock, const char *path, const char *what, nn_error *err);

/* Releases the lock and removes the lock file; a lock not held is a no-op. */
void nn_output_lock_release(nn_output_lock *lock);

#endif
