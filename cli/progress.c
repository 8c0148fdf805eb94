/* The progress bar of nnseq train on stderr, when it is a terminal.
 *
 * It must stay narrower than the terminal: a line that reaches the last
 * column wraps (or leaves the cursor pending a wrap), and "\r" then returns
 * only to the start of the last row, so every redraw would leave a line
 * behind. The width is read again on every redraw (at most 10 a second), so
 * a resized pane is followed without a SIGWINCH handler. */
#include "progress.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

enum { BAR_CELLS_MAX = 30, BAR_CELLS_MIN = 8, PART_SIZE = 48 };

/* The parts of the line in the order shown. The bar shrinks, then goes,
 * then the others go in drop_order: what is left is what matters most. */
enum { PART_HEAD, PART_BAR, PART_DONE, PART_RATE, PART_ETA, PART_LOSS, PARTS };
static const int drop_order[] = {PART_ETA, PART_RATE, PART_LOSS, PART_DONE};

double wall_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int progress_columns(int fd) {
    struct winsize size;
    if (ioctl(fd, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
    /* A terminal that reports no size (some serial consoles, a pty nobody
     * sized): the shell's idea of the width, if it exported one. */
    const char *columns = getenv("COLUMNS");
    if (columns && *columns) {
        char *end;
        long value = strtol(columns, &end, 10);
        if (*end == '\0' && value > 0 && value <= 10000) return (int)value;
    }
    return 80;
}

/* The bar's cells, as wide as the room left (up to BAR_CELLS_MAX), or 0
 * when less than BAR_CELLS_MIN is left: a stub of a bar tells nothing. */
static int bar_cells(int limit, int others) {
    int room = limit - others - 3; /* the brackets and a space */
    if (room > BAR_CELLS_MAX) room = BAR_CELLS_MAX;
    return room >= BAR_CELLS_MIN ? room : 0;
}

static void fill_bar(char *out, int cells, int done, int total) {
    int filled = (int)((double)cells * done / total);
    out[0] = '[';
    for (int i = 0; i < cells; i++) out[1 + i] = i < filled ? '=' : i == filled ? '>' : ' ';
    out[1 + cells] = ']';
    out[2 + cells] = '\0';
}

/* Joins the parts kept into line, at most limit characters (all ASCII, so
 * characters are columns). */
static void join_parts(char *line, size_t size, int limit, char parts[PARTS][PART_SIZE], const bool *keep) {
    size_t length = 0;
    line[0] = '\0';
    for (int i = 0; i < PARTS; i++) {
        if (!keep[i]) continue;
        length += (size_t)snprintf(line + length, size - length, "%s%s", length ? " " : "", parts[i]);
        if (length >= size) length = size - 1;
    }
    if ((size_t)limit < length) line[limit] = '\0'; /* only a terminal narrower than "epoch N/M" */
}

/* The line for this redraw, fitted into limit columns. */
static void compose(char *line, size_t size, int limit, const progress_bar *bar, int done, int total,
                    double rate, double loss) {
    char parts[PARTS][PART_SIZE];
    bool keep[PARTS];
    snprintf(parts[PART_HEAD], PART_SIZE, "epoch %d/%d", bar->epoch, bar->epochs);
    int digits = snprintf(NULL, 0, "%d", total); /* a steady width: the bar does not jump as done grows */
    snprintf(parts[PART_DONE], PART_SIZE, "%*d/%d", digits, done, total);
    snprintf(parts[PART_RATE], PART_SIZE, "%.0f samples/s", rate);
    snprintf(parts[PART_ETA], PART_SIZE, "ETA %.0fs", rate > 0 ? (total - done) / rate : 0);
    snprintf(parts[PART_LOSS], PART_SIZE, "loss %.4f", loss);
    int others = -1; /* n parts take n - 1 spaces */
    for (int i = 0; i < PARTS; i++) {
        keep[i] = i != PART_BAR;
        if (keep[i]) others += (int)strlen(parts[i]) + 1;
    }
    int cells = bar_cells(limit, others);
    for (size_t i = 0; cells == 0 && others > limit && i < sizeof drop_order / sizeof drop_order[0]; i++) {
        keep[drop_order[i]] = false;
        others -= (int)strlen(parts[drop_order[i]]) + 1;
    }
    if (cells > 0) {
        fill_bar(parts[PART_BAR], cells, done, total);
        keep[PART_BAR] = true;
    }
    join_parts(line, size, limit, parts, keep);
}

void progress_draw(void *user, int done, int total, double running_loss) {
    progress_bar *bar = user;
    double now = wall_seconds();
    if (done < total && now - bar->last_draw < 0.1) return;
    bar->last_draw = now;
    if (done >= total) { /* the epoch's line on stdout comes next: leave a clean row */
        fputs("\r\033[K", stderr);
        fflush(stderr);
        return;
    }
    /* Never the last column: writing there leaves the cursor pending a wrap. */
    int limit = progress_columns(STDERR_FILENO) - 1;
    if (limit <= 0) return;
    double elapsed = now - bar->start, rate = elapsed > 0 ? done / elapsed : 0;
    char line[256];
    compose(line, sizeof line, limit, bar, done, total, rate, running_loss);
    fprintf(stderr, "\r\033[K%s", line);
    fflush(stderr);
}
