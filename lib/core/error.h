/* Errors in lib/: every function that can fail returns 0 on success or -1 and
 * fills an nn_error, never prints and never exits. The status says which
 * exit code the command line should choose. */
#ifndef NNSEQ_ERROR_H
#define NNSEQ_ERROR_H

enum nn_status {
    NN_OK = 0,
    NN_ERR_RUNTIME = 1, /* failed while running: out of memory, write failed */
    NN_ERR_INPUT = 2    /* bad input: config, data file, checkpoint, arguments */
};

typedef struct nn_error {
    int status;
    char message[1024];
} nn_error;

/* Sets status and a printf-formatted message; returns -1 so callers can write
 * `return nn_error_set(err, NN_ERR_INPUT, "...")`. err may be NULL. */
int nn_error_set(nn_error *err, int status, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to the message already in err (for adding a file name
 * or a layer index as the error travels up). Returns -1. */
int nn_error_prefix(nn_error *err, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* Out of memory while allocating `what`. Returns -1. */
int nn_error_oom(nn_error *err, const char *what);

#endif
