/* The training progress bar: one line on stderr, redrawn in place, fitted
 * to the terminal's width. */
#ifndef NNSEQ_CLI_PROGRESS_H
#define NNSEQ_CLI_PROGRESS_H

#include <stdbool.h>

typedef struct progress_bar {
    bool enabled;
    double start, last_draw;
    int epoch, epochs;
} progress_bar;

/* Seconds on a monotonic clock. */
double wall_seconds(void);

/* The width of the terminal on fd: its window size, else $COLUMNS, else 80. */
int progress_columns(int fd);

/* An nn_progress_fn: draws the bar for epoch bar->epoch (user is a
 * progress_bar) in at most the terminal's width - 1 columns, dropping the
 * bar, then the ETA, the rate, the loss and the sample count as it narrows;
 * at the end of the epoch it clears the line. */
void progress_draw(void *user, int done, int total, double running_loss);

#endif
