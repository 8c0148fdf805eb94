/* Replacing a file so that a crash, a full disk or a kill never leaves a
 * half-written one where a good one stood: write a temporary file beside it,
 * flush and fsync it, rename it over PATH, fsync the folder. On any failure
 * the temporary file is removed and PATH is left as it was. The checkpoint
 * and .npz writers share this.
 *
 * The temporary file is an unnamed one (O_TMPFILE) where the file system
 * has them, so a kill while writing leaves nothing behind; it gets its name
 * (PATH.tmp-XXXXXX) only to be renamed, with signals blocked between the
 * two. Elsewhere it is a named PATH.tmp-XXXXXX from the start, which a
 * kill can leave: the next writer that takes the output's lock removes it
 * (output_lock.h). */
#ifndef NNSEQ_ATOMIC_FILE_H
#define NNSEQ_ATOMIC_FILE_H

#include <stdio.h>

#include "core/error.h"

typedef struct nn_atomic_file {
    FILE *file;          /* write here between open and commit */
    const char *path;    /* borrowed */
    char *temp_path;
    char *folder;
    char *resolved_path; /* the file a symbolic link at path names, or NULL */
    int anonymous;       /* the file has no name yet (O_TMPFILE) */
} nn_atomic_file;

/* Whether path may receive an output (what: "checkpoint", "log", ...): it
 * does not exist and its folder (or the nearest existing one above) is
 * writable, or it is a writable regular file (a symbolic link to one
 * counts). A folder, a FIFO, a device, a socket or a read-only file is
 * refused with NN_ERR_INPUT: nnseq never replaces what is not its own. */
int nn_output_check(const char *path, const char *what, nn_error *err);

/* Creates the temporary file, with PATH's permissions if it exists, else
 * 0666 less the umask. A missing folder is an error naming it; a target
 * that nn_output_check refuses is refused here too. */
int nn_atomic_open(nn_atomic_file *atomic, const char *path, nn_error *err);

/* Flushes, syncs, closes and renames over path; on failure removes the
 * temporary file. Either way the struct is released. */
int nn_atomic_commit(nn_atomic_file *atomic, nn_error *err);

/* Closes and removes the temporary file, leaving path untouched. */
void nn_atomic_abort(nn_atomic_file *atomic);

#endif
