/* The progress bar of nnseq train on stderr, when it is a terminal. */
#include "progress.h"

#include <stdio.h>
#include <time.h>

double wall_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

void progress_draw(void *user, int done, int total, double running_loss) {
    progress_bar *bar = user;
    double now = wall_seconds();
    if (done < total && now - bar->last_draw < 0.1) return;
    bar->last_draw = now;
    double elapsed = now - bar->start, rate = elapsed > 0 ? done / elapsed : 0;
    int width = 30, filled = (int)((double)width * done / total);
    char cells[64];
    for (int i = 0; i < width; i++) cells[i] = i < filled ? '=' : i == filled ? '>' : ' ';
    cells[width] = '\0';
    fprintf(stderr, "\r\033[Kepoch %d/%d [%s] %d/%d %.0f samples/s ETA %.0fs loss %.4f", bar->epoch, bar->epochs,
            cells, done, total, rate, rate > 0 ? (total - done) / rate : 0, running_loss);
    if (done == total) fputs("\r\033[K", stderr);
    fflush(stderr);
}

