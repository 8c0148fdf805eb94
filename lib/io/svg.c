#include "io/svg.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "io/atomic_file.h"

#define FONT "font-family=\"sans-serif\""

/* The length of the valid UTF-8 sequence at s that XML 1.0 allows as a
 * character (no overlong forms, surrogates, U+FFFE/U+FFFF), or 0. */
static int xml_char_length(const unsigned char *s) {
    unsigned char c = s[0];
    if (c >= 0x20 && c < 0x7f) return 1;
    int length = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    for (int i = 1; i < length; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0) || (c == 0xf0 && s[1] < 0x90) ||
        (c == 0xf4 && s[1] >= 0x90) || (c == 0xef && s[1] == 0xbf && s[2] >= 0xbe))
        return 0;
    return length;
}

/* text as XML character data, at most max_chars characters (then an
 * ellipsis). */
static void put_text(FILE *f, const char *text, int max_chars) {
    const unsigned char *s = (const unsigned char *)(text ? text : "");
    for (int chars = 0; *s; chars++) {
        if (chars == max_chars) {
            fputs("\xe2\x80\xa6", f);
            return;
        }
        int length = xml_char_length(s);
        if (!length) {
            fputc('?', f);
            s++;
            continue;
        }
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default: fwrite(s, 1, (size_t)length, f);
        }
        s += length;
    }
}

static void put_header(FILE *f, int width, int height, const char *title) {
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\">\n<title>", width, height, width, height);
    put_text(f, title, 200);
    fprintf(f, "</title>\n<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", width, height);
}

/* Tableau's ten colours, then hues a golden angle apart. */
static void colour_of(int key, char out[8]) {
    static const char *const palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                          "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
    if (key < 10) {
        memcpy(out, palette[key], 8);
        return;
    }
    double hue = fmod(key * 137.508, 360.0) / 60.0, chroma = 0.6, x = chroma * (1 - fabs(fmod(hue, 2.0) - 1));
    double r = 0, g = 0, b = 0, m = 0.45 - chroma / 2;
    switch ((int)hue) {
    case 0: r = chroma, g = x; break;
    case 1: r = x, g = chroma; break;
    case 2: g = chroma, b = x; break;
    case 3: g = x, b = chroma; break;
    case 4: r = x, b = chroma; break;
    default: r = chroma, b = x; break;
    }
    snprintf(out, 8, "#%02x%02x%02x", (int)((r + m) * 255), (int)((g + m) * 255), (int)((b + m) * 255));
}

/* An axis from lo to hi on round ticks step apart, labelled with decimals
 * digits after the point (-1: %g, for ranges too wide to round). */
typedef struct axis {
    double lo, hi, step;
    int decimals;
} axis;

static axis axis_for(double lo, double hi, bool integer) {
    if (!(lo <= hi)) lo = 0, hi = 1;   /* no finite value at all */
    if (!isfinite(hi - lo)) return (axis){lo, hi, hi / 4 - lo / 4, -1};
    /* A flat line still gets a range, a few significant digits wide. */
    double least = fmax(fabs(lo), fabs(hi)) * 1e-4;
    if (least == 0) least = 1;
    if (hi - lo < least) {
        double middle = lo / 2 + hi / 2;
        lo = middle - least / 2, hi = middle + least / 2;
    }
    double raw = (hi - lo) / 5, magnitude = pow(10, floor(log10(raw))), f = raw / magnitude;
    double step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * magnitude;
    if (integer && step < 1) step = 1;
    if (!(step > 0) || !isfinite(step)) return (axis){lo, hi, (hi - lo) / 4, -1};
    axis a = {floor(lo / step) * step, ceil(hi / step) * step, step, 0};
    if (a.hi <= a.lo) a.hi = a.lo + step;
    if (step < 1) a.decimals = (int)ceil(-log10(step) - 1e-9);
    if (a.decimals > 12) a.decimals = -1;
    return a;
}

static void put_tick_label(FILE *f, const axis *a, double value) {
    if (fabs(value) < a->step * 1e-6) value = 0;   /* no "-0" */
    if (a->decimals >= 0 && fabs(value) < 1e9) fprintf(f, "%.*f", a->decimals, value);
    else fprintf(f, "%.4g", value);
}

typedef struct box {
    double left, top, width, height;
} box;

/* Where value falls between lo (0) and hi (1), in halves so that a range
 * wider than the largest double (-1e308 to 1e308) does not overflow. */
static double fraction(const axis *a, double value) { return (value / 2 - a->lo / 2) / (a->hi / 2 - a->lo / 2); }
static double tick(const axis *a, int k) { return 2 * (a->lo / 2 + k * (a->step / 2)); }
static double x_at(const box *b, const axis *a, double x) { return b->left + fraction(a, x) * b->width; }
static double y_at(const box *b, const axis *a, double y) { return b->top + b->height - fraction(a, y) * b->height; }

static bool finite_point(const nn_svg_series *s, int i) { return isfinite(s->x[i]) && isfinite(s->y[i]); }

/* The gridlines, frame, ticks and labels of one axis pair. */
static void draw_axes(FILE *f, const box *b, const axis *ax, const axis *ay, const nn_svg_panel *panel) {
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" %s font-size=\"14\" font-weight=\"bold\">", b->left, b->top - 10, FONT);
    put_text(f, panel->title, 60);
    fputs("</text>\n", f);
    for (int k = 0; k <= 50; k++) {
        double v = tick(ax, k);
        if (v > ax->hi + ax->step * 1e-6 || !isfinite(v)) break;
        double x = x_at(b, ax, v);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>", x, b->top, x,
                b->top + b->height);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333333\"/>", x, b->top + b->height,
                x, b->top + b->height + 5);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" %s font-size=\"11\" text-anchor=\"middle\">", x,
                b->top + b->height + 17, FONT);
        put_tick_label(f, ax, v);
        fputs("</text>\n", f);
    }
    for (int k = 0; k <= 50; k++) {
        double v = tick(ay, k);
        if (v > ay->hi + ay->step * 1e-6 || !isfinite(v)) break;
        double y = y_at(b, ay, v);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>", b->left, y,
                b->left + b->width, y);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333333\"/>", b->left - 5, y,
                b->left, y);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" %s font-size=\"11\" text-anchor=\"end\">", b->left - 8, y + 4, FONT);
        put_tick_label(f, ay, v);
        fputs("</text>\n", f);
    }
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333333\"/>\n",
            b->left, b->top, b->width, b->height);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" %s font-size=\"12\" text-anchor=\"middle\">", b->left + b->width / 2,
            b->top + b->height + 34, FONT);
    put_text(f, panel->x_label, 60);
    fputs("</text>\n", f);
}

static void draw_series(FILE *f, const box *b, const axis *ax, const axis *ay, const nn_svg_series *s) {
    char colour[8];
    colour_of(s->key, colour);
    const char *dash = s->dashed ? " stroke-dasharray=\"7 4\"" : "";
    for (int i = 0; i < s->count;) {
        if (!finite_point(s, i)) {
            i++;
            continue;
        }
        int end = i;
        while (end < s->count && finite_point(s, end)) end++;
        if (end - i == 1) {
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", x_at(b, ax, s->x[i]),
                    y_at(b, ay, s->y[i]), colour);
        } else {
            fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", colour, dash);
            for (int j = i; j < end; j++)
                fprintf(f, "%s%.1f,%.1f", j > i ? " " : "", x_at(b, ax, s->x[j]), y_at(b, ay, s->y[j]));
            fputs("\"/>\n", f);
        }
        i = end;
    }
    /* Markers while they stay apart: hollow ones for the dashed style. */
    if (s->count > 60) return;
    for (int i = 0; i < s->count; i++)
        if (finite_point(s, i))
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\" stroke=\"%s\"/>", x_at(b, ax, s->x[i]),
                    y_at(b, ay, s->y[i]), s->dashed ? "#ffffff" : colour, colour);
    fputc('\n', f);
}

static void draw_panel(FILE *f, const box *b, const nn_svg_panel *panel) {
    double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
    for (int k = 0; k < panel->series_count; k++) {
        const nn_svg_series *s = &panel->series[k];
        for (int i = 0; i < s->count; i++) {
            if (!finite_point(s, i)) continue;
            x_lo = fmin(x_lo, s->x[i]), x_hi = fmax(x_hi, s->x[i]);
            y_lo = fmin(y_lo, s->y[i]), y_hi = fmax(y_hi, s->y[i]);
        }
    }
    axis ax = axis_for(x_lo, x_hi, panel->integer_x), ay = axis_for(y_lo, y_hi, false);
    draw_axes(f, b, &ax, &ay, panel);
    if (!(x_lo <= x_hi))
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" %s font-size=\"13\" text-anchor=\"middle\" fill=\"#888888\">"
                   "no finite values</text>\n", b->left + b->width / 2, b->top + b->height / 2, FONT);
    /* Only what falls inside the plot area shows: a finite value far out of
     * range must not paint the legend. */
    fprintf(f, "<svg x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" viewBox=\"%.1f %.1f %.1f %.1f\" "
               "overflow=\"hidden\">\n", b->left - 4, b->top - 4, b->width + 8, b->height + 8, b->left - 4,
            b->top - 4, b->width + 8, b->height + 8);
    for (int k = 0; k < panel->series_count; k++) draw_series(f, b, &ax, &ay, &panel->series[k]);
    fputs("</svg>\n", f);
}

static void legend_line(FILE *f, double x, double y, const char *colour, bool dashed, const char *label) {
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"%s\"%s/>", x, y - 4,
            x + 26, y - 4, colour, dashed ? "2" : "3", dashed ? " stroke-dasharray=\"7 4\"" : "");
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" %s font-size=\"12\">", x + 32, y, FONT);
    put_text(f, label, 26);
    fputs("</text>\n", f);
}

enum { CHART_WIDTH = 800, PANEL_LEFT = 70, PANEL_WIDTH = 470, PANEL_HEIGHT = 200, PANEL_PITCH = 280,
       LEGEND_LEFT = 570, LEGEND_PITCH = 18 };

int nn_svg_line_charts(const char *path, const nn_svg_panel *panels, int panel_count, const nn_svg_legend *legend,
                       nn_error *err) {
    if (panel_count < 1 || panel_count > 8)
        return nn_error_set(err, NN_ERR_INPUT, "%s: a chart has 1 to 8 panels, not %d", path, panel_count);
    if (legend->key_count < 0 || legend->key_count > NN_SVG_MAX_KEYS)
        return nn_error_set(err, NN_ERR_INPUT, "%s: %d lines to tell apart, at most %d colours", path,
                            legend->key_count, NN_SVG_MAX_KEYS);
    int64_t points = 0;
    for (int p = 0; p < panel_count; p++)
        for (int k = 0; k < panels[p].series_count; k++) {
            const nn_svg_series *s = &panels[p].series[k];
            if (s->key < 0 || s->key >= legend->key_count || s->count < 0)
                return nn_error_set(err, NN_ERR_INPUT, "%s: a line of panel '%s' has key %d of %d", path,
                                    panels[p].title, s->key, legend->key_count);
            points += s->count;
        }
    if (points > NN_SVG_MAX_POINTS)
        return nn_error_set(err, NN_ERR_INPUT, "%s: %" PRId64 " points to draw, at most %d", path, points,
                            NN_SVG_MAX_POINTS);
    int legend_rows = legend->key_count + (legend->solid ? 1 : 0) + (legend->dashed ? 1 : 0) + 1;
    int height = 20 + panel_count * PANEL_PITCH;
    if (height < 60 + legend_rows * LEGEND_PITCH) height = 60 + legend_rows * LEGEND_PITCH;
    nn_atomic_file atomic;
    if (nn_atomic_open(&atomic, path, err) != 0) return -1;
    FILE *f = atomic.file;
    put_header(f, CHART_WIDTH, height, panels[0].title);
    for (int p = 0; p < panel_count; p++) {
        box b = {PANEL_LEFT, 40 + p * PANEL_PITCH, PANEL_WIDTH, PANEL_HEIGHT};
        draw_panel(f, &b, &panels[p]);
    }
    double y = 44;
    if (legend->solid) legend_line(f, LEGEND_LEFT, y, "#444444", false, legend->solid), y += LEGEND_PITCH;
    if (legend->dashed) legend_line(f, LEGEND_LEFT, y, "#444444", true, legend->dashed), y += LEGEND_PITCH;
    y += LEGEND_PITCH / 2;
    for (int k = 0; k < legend->key_count; k++, y += LEGEND_PITCH) {
        char colour[8];
        colour_of(k, colour);
        legend_line(f, LEGEND_LEFT, y, colour, false, legend->keys[k]);
    }
    fputs("</svg>\n", f);
    return nn_atomic_commit(&atomic, err);
}

int nn_svg_write_heat_map(const char *path, const nn_svg_heat_map *map, nn_error *err) {
    int rows = map->rows, columns = map->columns;
    if (rows < 1 || columns < 1 || rows > NN_SVG_MAX_CELLS_SIDE || columns > NN_SVG_MAX_CELLS_SIDE)
        return nn_error_set(err, NN_ERR_INPUT, "%s: a heat map of %d x %d cells: 1 to %d rows and columns", path, rows,
                            columns, NN_SVG_MAX_CELLS_SIDE);
    int64_t largest = 0;
    for (size_t i = 0; i < (size_t)rows * columns; i++) {
        if (map->cells[i] < 0)
            return nn_error_set(err, NN_ERR_INPUT, "%s: cell %zu of the heat map is negative (%" PRId64 ")", path, i,
                                map->cells[i]);
        if (map->cells[i] > largest) largest = map->cells[i];
    }
    int side = rows > columns ? rows : columns;
    double cell = fmin(48, fmax(8, 480.0 / side));
    double left = 80, top = 80;
    int width = (int)ceil(left + columns * cell + 30), height = (int)ceil(top + rows * cell + 30);
    if (width < 360) width = 360;
    /* Labels at least 14 pixels apart. */
    int every = (int)ceil(14 / cell);
    nn_atomic_file atomic;
    if (nn_atomic_open(&atomic, path, err) != 0) return -1;
    FILE *f = atomic.file;
    put_header(f, width, height, map->title);
    fprintf(f, "<text x=\"10\" y=\"22\" %s font-size=\"14\" font-weight=\"bold\">", FONT);
    put_text(f, map->title, 80);
    fprintf(f, "</text>\n<text x=\"%.1f\" y=\"%.1f\" %s font-size=\"12\" text-anchor=\"middle\">",
            left + columns * cell / 2, top - 34, FONT);
    put_text(f, map->column_label, 40);
    fprintf(f, "</text>\n<text x=\"0\" y=\"0\" %s font-size=\"12\" text-anchor=\"middle\" "
               "transform=\"translate(%.1f %.1f) rotate(-90)\">", FONT, left - 46, top + rows * cell / 2);
    put_text(f, map->row_label, 40);
    fputs("</text>\n", f);
    for (int j = 0; j < columns; j += every)
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" %s font-size=\"11\" text-anchor=\"middle\">%d</text>\n",
                left + (j + 0.5) * cell, top - 8, FONT, j);
    for (int i = 0; i < rows; i += every)
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" %s font-size=\"11\" text-anchor=\"end\">%d</text>\n", left - 8,
                top + (i + 0.5) * cell + 4, FONT, i);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < columns; j++) {
            int64_t count = map->cells[(size_t)i * columns + j];
            double t = largest ? (double)count / (double)largest : 0;
            /* White to #08306b (ColorBrewer's darkest blue). */
            int r = (int)lround(255 + (8 - 255) * t), g = (int)lround(255 + (48 - 255) * t),
                b = (int)lround(255 + (107 - 255) * t);
            char digits[24];
            int length = snprintf(digits, sizeof digits, "%" PRId64, count);
            double font = fmin(12, cell * 0.9 / (0.62 * length));
            fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#%02x%02x%02x\" "
                       "stroke=\"#cccccc\" stroke-width=\"0.5\"/>", left + j * cell, top + i * cell, cell, cell, r,
                    g, b);
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" %s font-size=\"%.1f\" text-anchor=\"middle\" fill=\"%s\">%s</text>\n",
                    left + (j + 0.5) * cell, top + (i + 0.5) * cell + font * 0.35, FONT, font,
                    t > 0.5 ? "#ffffff" : "#000000", digits);
        }
    fputs("</svg>\n", f);
    return nn_atomic_commit(&atomic, err);
}
