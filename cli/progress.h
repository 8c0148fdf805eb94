/* The training progress bar: one line on stderr, redrawn in place. */
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

/* An nn_progress_fn: draws the bar for epoch bar->epoch (user is a progress_bar). */
void progress_draw(void *user, int done, int total, double running_loss);

#endif
