/* nnseq plot RUN... -o OUT.svg: learning curves (issue 18). Each run is
 * the CSV that `nnseq train --log` writes (train_report.c: log_header,
 * log_epoch; JSON lines when it is a .jsonl) or a checkpoint's per-epoch
 * history; two panels, the loss and
 * the task's headline metric (accuracy, or r2 for regression: mse when no
 * r2 is defined), train solid and validation dashed, one colour per run.
 * An empty field, nan or inf leaves a gap in the line. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "io/file_kind.h"
#include "io/svg.h"
#include "cli.h"

static const char plot_help[] =
    "usage: nnseq plot RUN.csv|CKPT [RUN...] -o OUT.svg\n"
    "  RUN.csv: the per-epoch file of nnseq train --log; CKPT: a checkpoint (its history)\n"
    "\n"
    "Draws the train (solid) and validation (dashed) loss and the task's metric\n"
    "(accuracy; r2 for regression, or mse when r2 is undefined) against the epoch,\n"
    "one colour per run, named by its file name, as an SVG file.\n";

/* Runs and epochs one plot takes: one colour each, and what keeps the SVG
 * within about 10 MB (4 points an epoch). */
#define MAX_RUNS 50
#define MAX_EPOCHS 200000
/* A log line holds at most a few dozen numbers. */
#define MAX_LINE 4096
#define MAX_COLUMNS 64

enum { C_EPOCH, C_TRAIN_LOSS, C_VAL_LOSS, C_TRAIN_METRIC, C_VAL_METRIC, C_TRAIN_MSE, C_VAL_MSE, C_COUNT };

typedef struct run {
    const char *path;
    const char *metric;   /* "accuracy", "r2"; becomes "mse" when no r2 is finite */
    int count, capacity;
    double *column[C_COUNT];
} run;

static void run_free(run *r) {
    for (int c = 0; c < C_COUNT; c++) free(r->column[c]);
}

/* Room for one more epoch; total counts the epochs of every run so far. */
static int grow(run *r, int *total, int line, nn_error *err) {
    if (*total >= MAX_EPOCHS)
        return nn_error_set(err, NN_ERR_INPUT, "%s: line %d: more than %d epochs in the runs together, the most "
                            "nnseq plot draws", r->path, line, MAX_EPOCHS);
    if (r->count == r->capacity) {
        int capacity = r->capacity ? 2 * r->capacity : 64;
        for (int c = 0; c < C_COUNT; c++) {
            double *bigger = realloc(r->column[c], (size_t)capacity * sizeof *bigger);
            if (!bigger) return nn_error_oom(err, "the epochs of a run");
            r->column[c] = bigger;
        }
        r->capacity = capacity;
    }
    (*total)++;
    return 0;
}

static int column_index(char *const *names, int count, const char *name) {
    for (int i = 0; i < count; i++)
        if (!strcmp(names[i], name)) return i;
    return -1;
}

/* Splits line (its newline removed) at commas, in place. */
static int split(char *line, char **fields, int max) {
    int count = 0;
    for (char *s = line;; s++) {
        if (count == max) return max + 1;
        fields[count++] = s;
        s = strchr(s, ',');
        if (!s) return count;
        *s = '\0';
    }
}

static const char log_shape[] = "the --log file of nnseq train: a CSV whose header starts epoch,lr,train_loss, "
                                "or JSON lines";

/* The line into buf without its line end: 1, 0 at the end, -1 with err set. */
static int read_line(FILE *file, const char *path, int line, char *buf, nn_error *err) {
    if (!fgets(buf, MAX_LINE + 2, file)) {
        if (ferror(file)) return nn_error_set(err, NN_ERR_INPUT, "%s: line %d: cannot read: %s", path, line,
                                              strerror(errno));
        return 0;
    }
    size_t length = strlen(buf);
    if (length && buf[length - 1] == '\n') buf[--length] = '\0';
    else if (length > MAX_LINE) return nn_error_set(err, NN_ERR_INPUT, "%s: line %d: longer than %d bytes: not %s",
                                                    path, line, MAX_LINE, log_shape);
    if (length && buf[length - 1] == '\r') buf[--length] = '\0';
    return 1;
}

static int parse_number(const char *text, double *out) {
    if (!*text) {
        *out = NAN;   /* no validation split: an empty field */
        return 0;
    }
    char *end;
    *out = strtod(text, &end);
    return *end || end == text ? -1 : 0;
}

static int read_log(run *r, FILE *file, int *total, nn_error *err) {
    char header[MAX_LINE + 2], buf[MAX_LINE + 2];
    char *names[MAX_COLUMNS + 1], *fields[MAX_COLUMNS + 1];
    int got = read_line(file, r->path, 1, header, err);
    if (got < 0) return -1;
    if (!got) return nn_error_set(err, NN_ERR_INPUT, "%s: empty: expected %s", r->path, log_shape);
    int columns = split(header, names, MAX_COLUMNS);
    if (columns > MAX_COLUMNS)
        return nn_error_set(err, NN_ERR_INPUT, "%s: line 1: more than %d columns: not %s", r->path, MAX_COLUMNS,
                            log_shape);
    r->metric = column_index(names, columns, "train_accuracy") >= 0 ? "accuracy" : "r2";
    char train_metric[32], val_metric[32];
    snprintf(train_metric, sizeof train_metric, "train_%s", r->metric);
    snprintf(val_metric, sizeof val_metric, "val_%s", r->metric);
    const char *wanted[C_COUNT] = {"epoch", "train_loss", "val_loss", train_metric, val_metric, "train_mse", "val_mse"};
    int at[C_COUNT];
    for (int c = 0; c < C_COUNT; c++) {
        at[c] = column_index(names, columns, wanted[c]);
        bool optional = c >= C_TRAIN_MSE && !strcmp(r->metric, "accuracy");
        if (at[c] < 0 && !optional)
            return nn_error_set(err, NN_ERR_INPUT, "%s: line 1: no column %s%s: not %s", r->path, wanted[c],
                                c == C_TRAIN_METRIC ? " (nor train_accuracy)" : "", log_shape);
    }
    if (at[C_EPOCH] != 0 || column_index(names, columns, "lr") != 1)
        return nn_error_set(err, NN_ERR_INPUT, "%s: line 1: the header starts '%s,%s': not %s", r->path, names[0],
                            columns > 1 ? names[1] : "", log_shape);
    for (int line = 2;; line++) {
        if ((got = read_line(file, r->path, line, buf, err)) <= 0) {
            if (got < 0) return -1;
            break;
        }
        if (!*buf) continue;
        if (!strncmp(buf, "epoch,", 6)) continue;   /* the header again: a log appended to on --resume */
        int count = split(buf, fields, MAX_COLUMNS);
        if (count != columns)
            return nn_error_set(err, NN_ERR_INPUT, "%s: line %d: %d fields, expected %d as in the header", r->path,
                                line, count > MAX_COLUMNS ? MAX_COLUMNS + 1 : count, columns);
        /* Every field, drawn or not: a row of a log is all numbers. */
        double values[MAX_COLUMNS];
        for (int i = 0; i < columns; i++)
            if (parse_number(fields[i], &values[i]) != 0)
                return nn_error_set(err, NN_ERR_INPUT, "%s: line %d, column %s: '%.40s' is not a number", r->path,
                                    line, names[i], fields[i]);
        if (grow(r, total, line, err) != 0) return -1;
        for (int c = 0; c < C_COUNT; c++) r->column[c][r->count] = at[c] >= 0 ? values[at[c]] : NAN;
        double epoch = r->column[C_EPOCH][r->count];
        if (!(epoch >= 1 && epoch <= 2147483647.0) || epoch != floor(epoch))
            return nn_error_set(err, NN_ERR_INPUT, "%s: line %d, column epoch: '%.40s' is not a whole number >= 1",
                                r->path, line, fields[0]);
        r->count++;
    }
    if (!r->count) return nn_error_set(err, NN_ERR_INPUT, "%s: no epochs: only the header", r->path);
    return 0;
}

/* One line of a .jsonl log: a flat object of "name": number|null pairs
 * (the epoch lines of train --format json), names pointing into line. */
static int parse_json_line(char *line, char **names, double *values, int *count) {
    char *s = line;
    *count = 0;
    while (*s == ' ') s++;
    if (*s++ != '{') return -1;
    for (;;) {
        while (*s == ' ') s++;
        if (*s == '}' && *count == 0) break;
        if (*s++ != '"' || *count == MAX_COLUMNS) return -1;
        names[*count] = s;
        while (*s && *s != '"' && *s != '\\') s++;
        if (*s != '"') return -1;
        *s++ = '\0';
        while (*s == ' ') s++;
        if (*s++ != ':') return -1;
        while (*s == ' ') s++;
        if (!strncmp(s, "null", 4)) {
            values[*count] = NAN;
            s += 4;
        } else {
            char *end;
            values[*count] = strtod(s, &end);
            if (end == s) return -1;
            s = end;
        }
        ++*count;
        while (*s == ' ') s++;
        if (*s == '}') break;
        if (*s++ != ',') return -1;
    }
    for (s++; *s == ' '; s++) {}
    return *s ? -1 : 0;
}

/* The --log file when its name ends in .jsonl: no header, a key per value. */
static int read_jsonl(run *r, FILE *file, int *total, nn_error *err) {
    char buf[MAX_LINE + 2], *names[MAX_COLUMNS];
    double values[MAX_COLUMNS];
    int got, count;
    for (int line = 1; (got = read_line(file, r->path, line, buf, err)) != 0; line++) {
        if (got < 0) return -1;
        if (!*buf) continue;
        if (parse_json_line(buf, names, values, &count) != 0)
            return nn_error_set(err, NN_ERR_INPUT, "%s: line %d: not a JSON object of at most %d numbers, as the "
                                "lines of a .jsonl --log", r->path, line, MAX_COLUMNS);
        if (!r->metric) r->metric = column_index(names, count, "train_accuracy") >= 0 ? "accuracy" : "r2";
        char train_metric[32], val_metric[32];
        snprintf(train_metric, sizeof train_metric, "train_%s", r->metric);
        snprintf(val_metric, sizeof val_metric, "val_%s", r->metric);
        const char *wanted[C_COUNT] = {"epoch", "train_loss", "val_loss", train_metric, val_metric, "train_mse",
                                       "val_mse"};
        for (int c = 0; c < C_COUNT; c++) {
            /* No val_ keys: a run without a validation split. */
            bool optional = c == C_VAL_LOSS || c == C_VAL_METRIC || c >= C_TRAIN_MSE;
            if (!optional && column_index(names, count, wanted[c]) < 0)
                return nn_error_set(err, NN_ERR_INPUT, "%s: line %d: no key %s: not a .jsonl --log of nnseq train",
                                    r->path, line, wanted[c]);
        }
        if (grow(r, total, line, err) != 0) return -1;
        for (int c = 0; c < C_COUNT; c++) {
            int at = column_index(names, count, wanted[c]);
            r->column[c][r->count] = at >= 0 ? values[at] : NAN;
        }
        double epoch = r->column[C_EPOCH][r->count];
        if (!(epoch >= 1 && epoch <= 2147483647.0) || epoch != floor(epoch))
            return nn_error_set(err, NN_ERR_INPUT, "%s: line %d: epoch %g is not a whole number >= 1", r->path, line,
                                epoch);
        r->count++;
    }
    if (!r->count) return nn_error_set(err, NN_ERR_INPUT, "%s: empty: expected %s", r->path, log_shape);
    return 0;
}

static int read_checkpoint(run *r, int *total, nn_error *err) {
    nn_checkpoint ck;
    /* The weights do not matter here: a run that diverged plots too. */
    if (nn_checkpoint_load(&ck, r->path, true, err) != 0) return -1;
    int status = 0;
    if (ck.history_count <= 0) {
        status = nn_error_set(err, NN_ERR_INPUT, "%s: the checkpoint holds no history (it was written before "
                              "nnseq kept one): plot its --log file instead", r->path);
    } else {
        nn_task task = ck.history[0].train.task;
        r->metric = task == NN_TASK_REGRESSION ? "r2" : "accuracy";
        for (int i = 0; i < ck.history_count && status == 0; i++) {
            const nn_epoch_record *e = &ck.history[i];
            if ((status = grow(r, total, i + 1, err)) != 0) break;
            double values[C_COUNT] = {
                e->epoch, e->train.loss, e->has_val ? e->val.loss : NAN, nn_metrics_value(&e->train, r->metric),
                e->has_val ? nn_metrics_value(&e->val, r->metric) : NAN, nn_metrics_value(&e->train, "mse"),
                e->has_val ? nn_metrics_value(&e->val, "mse") : NAN};
            for (int c = 0; c < C_COUNT; c++) r->column[c][r->count] = values[c];
            r->count++;
        }
    }
    nn_checkpoint_free(&ck);
    return status;
}

static int read_run(run *r, int *total, nn_error *err) {
    struct stat st;
    if (stat(r->path, &st) != 0)
        return nn_error_set(err, NN_ERR_INPUT, "%s: cannot open: %s", r->path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return nn_error_set(err, NN_ERR_INPUT, "%s: a folder, not a --log file or a checkpoint", r->path);
    FILE *file = fopen(r->path, "rb");
    if (!file) return nn_error_set(err, NN_ERR_INPUT, "%s: cannot open: %s", r->path, strerror(errno));
    unsigned char start[8];
    size_t size = fread(start, 1, sizeof start, file);
    const char *kind = nn_file_kind(start, size);
    int status;
    if (size >= 7 && !memcmp(start, "NNSEQCK", 7)) {
        fclose(file);
        return read_checkpoint(r, total, err);
    }
    if (kind && strncmp(kind, "text", 4) != 0)
        status = nn_error_set(err, NN_ERR_INPUT, "%s: not %s nor a checkpoint: it looks like %s", r->path, log_shape,
                              kind);
    else if (fseek(file, 0, SEEK_SET) != 0)
        status = nn_error_set(err, NN_ERR_INPUT, "%s: cannot read it again from the start: %s", r->path,
                              strerror(errno));
    else if (size && start[0] == '{')
        status = read_jsonl(r, file, total, err);
    else
        status = read_log(r, file, total, err);
    fclose(file);
    return status;
}

static bool any_finite(const run *r, int a, int b) {
    for (int i = 0; i < r->count; i++)
        if (isfinite(r->column[a][i]) || isfinite(r->column[b][i])) return true;
    return false;
}

/* The last components of path from the one after its depth-th slash
 * from the end (the whole path when it has fewer). */
static const char *tail_of(const char *path, int depth) {
    const char *s = path + strlen(path);
    while (s > path && s[-1] == '/') s--;   /* "runs/" names "runs/" */
    for (int seen = 0; s > path; s--)
        if (s[-1] == '/' && ++seen == depth) return s;
    return path;
}

/* The legend's name of a run: its file name, with as many folders above
 * it as tell it from the other runs' (one/log.csv, two/log.csv). */
static const char *run_name(const run *runs, int count, int k) {
    for (int depth = 1;; depth++) {
        const char *name = tail_of(runs[k].path, depth);
        bool unique = true;
        for (int j = 0; j < count && unique; j++)
            unique = j == k || strcmp(tail_of(runs[j].path, depth), name) != 0;
        if (unique || name == runs[k].path) return name;
    }
}

static int plot(const char *out, const char **paths, int count, nn_error *err) {
    if (nn_output_check(out, "plot", err) != 0) return -1;
    struct stat out_st, in_st;
    bool out_exists = stat(out, &out_st) == 0;
    run runs[MAX_RUNS] = {{0}};
    int total = 0, status = 0;
    for (int k = 0; k < count && status == 0; k++) {
        runs[k].path = paths[k];
        if (out_exists && stat(paths[k], &in_st) == 0 && in_st.st_dev == out_st.st_dev && in_st.st_ino == out_st.st_ino)
            status = nn_error_set(err, NN_ERR_INPUT, "%s: -o names one of the runs: it would be replaced", out);
        else
            status = read_run(&runs[k], &total, err);
    }
    for (int k = 0; k < count && status == 0; k++) {
        run *r = &runs[k];
        if (!strcmp(r->metric, "r2") && !any_finite(r, C_TRAIN_METRIC, C_VAL_METRIC)) {
            /* R^2 of constant targets is undefined: the MSE then. */
            memcpy(r->column[C_TRAIN_METRIC], r->column[C_TRAIN_MSE], (size_t)r->count * sizeof(double));
            memcpy(r->column[C_VAL_METRIC], r->column[C_VAL_MSE], (size_t)r->count * sizeof(double));
            r->metric = "mse";
        }
        if (k && strcmp(r->metric, runs[0].metric))
            status = nn_error_set(err, NN_ERR_INPUT, "%s plots %s but %s plots %s: plot runs of one kind of task "
                                  "together", runs[0].path, runs[0].metric, r->path, r->metric);
    }
    if (status == 0) {
        nn_svg_series loss[2 * MAX_RUNS], metric[2 * MAX_RUNS];
        const char *names[MAX_RUNS];
        for (int k = 0; k < count; k++) {
            const run *r = &runs[k];
            names[k] = run_name(runs, count, k);
            const double *x = r->column[C_EPOCH];
            loss[2 * k] = (nn_svg_series){x, r->column[C_TRAIN_LOSS], r->count, k, false};
            loss[2 * k + 1] = (nn_svg_series){x, r->column[C_VAL_LOSS], r->count, k, true};
            metric[2 * k] = (nn_svg_series){x, r->column[C_TRAIN_METRIC], r->count, k, false};
            metric[2 * k + 1] = (nn_svg_series){x, r->column[C_VAL_METRIC], r->count, k, true};
        }
        nn_svg_panel panels[2] = {{"loss", "epoch", true, loss, 2 * count},
                                  {runs[0].metric, "epoch", true, metric, 2 * count}};
        nn_svg_legend legend = {names, count, "train", "validation"};
        status = cli_make_parent_dirs(out, err) != 0 ? -1 : nn_svg_line_charts(out, panels, 2, &legend, err);
    }
    for (int k = 0; k < count; k++) run_free(&runs[k]);
    return status;
}

int command_plot(int argc, char **argv) {
    const char *out = NULL;
    bool help = false;
    cli_option options[] = {{"-o", &out, NULL}, {"--out", &out, NULL}};
    const char *paths[MAX_RUNS + 1];
    int count;
    if (cli_parse("plot", argc, argv, 2, options, 2, paths, MAX_RUNS + 1, &count, &help)) return EXIT_USAGE;
    if (help) {
        fputs(plot_help, stdout);
        return EXIT_DONE;
    }
    if (count == 0 || !out) {
        fprintf(stderr, "nnseq plot: expected %s\n%s", count ? "-o OUT.svg" : "at least one run", plot_help);
        return EXIT_USAGE;
    }
    if (count > MAX_RUNS) {
        fprintf(stderr, "nnseq plot: more than %d runs: plot at most %d together\n", MAX_RUNS, MAX_RUNS);
        return EXIT_USAGE;
    }
    nn_error err = {0};
    return plot(out, paths, count, &err) != 0 ? cli_fail(&err) : EXIT_DONE;
}
