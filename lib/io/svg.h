/* Charts as SVG files written by nnseq itself (issue 18): line charts of
 * learning curves (`nnseq plot`) and a heat map of counts (`nnseq eval
 * --plot`, the confusion matrix). Plain SVG 1.1 that browsers and
 * rsvg-convert render: no script, no external font or style sheet. Text
 * from the caller (run names, titles) is escaped, and bytes that XML 1.0
 * cannot hold (control characters, invalid UTF-8) become '?', so the file
 * is well-formed XML whatever the names. Files are written atomically
 * (atomic_file.h). */
#ifndef NNSEQ_SVG_H
#define NNSEQ_SVG_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"

/* The limits, checked before anything is written: legend entries (one
 * colour each), points in all the series of a chart together (about 20
 * bytes of SVG each), and rows or columns of a heat map (one rectangle
 * and one number per cell). */
#define NN_SVG_MAX_KEYS 100
#define NN_SVG_MAX_POINTS 1000000
#define NN_SVG_MAX_CELLS_SIDE 100

/* One line: count points (x[i], y[i]); a NaN or infinite y (or x) leaves
 * a gap, so a point between two gaps shows as a dot. */
typedef struct nn_svg_series {
    const double *x, *y;
    int count;
    int key;       /* its legend entry, which gives its colour */
    bool dashed;   /* the legend's second line style */
} nn_svg_series;

/* One chart with its own axes; panels are stacked top to bottom. */
typedef struct nn_svg_panel {
    const char *title;     /* above the plot area, and the y axis' name */
    const char *x_label;
    bool integer_x;        /* ticks on whole numbers only (epochs) */
    const nn_svg_series *series;
    int series_count;
} nn_svg_panel;

typedef struct nn_svg_legend {
    const char *const *keys;   /* one colour per entry, in this order */
    int key_count;
    const char *solid, *dashed;   /* what each line style means, or NULL */
} nn_svg_legend;

/* Writes the panels with ticks and tick labels on both axes and the
 * legend beside them. NN_ERR_INPUT when a limit is passed or a series
 * names a key the legend lacks; nothing is written then. */
int nn_svg_line_charts(const char *path, const nn_svg_panel *panels, int panel_count, const nn_svg_legend *legend,
                       nn_error *err);

/* A rows x columns matrix of counts (row-major, each >= 0), shaded from
 * white (0) to dark blue (the largest count), the count written in each
 * cell, row and column indexes on the axes. */
typedef struct nn_svg_heat_map {
    const char *title;
    const char *row_label, *column_label;   /* "true class", "predicted class" */
    const int64_t *cells;
    int rows, columns;
} nn_svg_heat_map;

int nn_svg_write_heat_map(const char *path, const nn_svg_heat_map *map, nn_error *err);

#endif
