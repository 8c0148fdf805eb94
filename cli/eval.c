/* nnseq eval CKPT: the task's metrics on the config's test split or the
 * given files; for classification also per-class accuracy, precision and
 * recall, and the confusion matrix. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "io/svg.h"
#include "train/train.h"
#include "cli.h"

static const char eval_help[] =
    "usage: nnseq eval CKPT [DATA] [--format text|json|tsv] [--threads N] [--allow-nonfinite]\n"
    "                  [--plot CONFUSION.svg]\n"
    "  DATA, in the format the checkpoint was trained on: --images IDX --labels IDX,\n"
    "  --file CSV (features and targets in columns), or --features F --targets T\n"
    "\n"
    "Evaluates the checkpoint on its config's test split (or the files given)\n"
    "with the metrics of its task: loss and accuracy for classification, with\n"
    "per-class accuracy (= recall), precision and the confusion matrix (rows: true\n"
    "class, columns: predicted class); accuracy, precision, recall, F1 and ROC AUC\n"
    "for a binary output; subset and per-label accuracy, micro and macro F1 for\n"
    "multi-label; MSE, RMSE, MAE and R^2 for regression and reconstruction.\n"
    "--format tsv is one long table: metric, class, predicted, value (docs/output.md).\n"
    "--plot draws the confusion matrix of a classifier as an SVG heat map with the counts.\n";

typedef struct class_stats {
    int64_t samples, predicted, correct;
} class_stats;

static class_stats stats_of(const int64_t *confusion, int classes, int c) {
    class_stats s = {0, 0, confusion[(size_t)c * classes + c]};
    for (int j = 0; j < classes; j++) {
        s.samples += confusion[(size_t)c * classes + j];
        s.predicted += confusion[(size_t)j * classes + c];
    }
    return s;
}

static double ratio(int64_t a, int64_t b) { return b ? (double)a / (double)b : 0.0; }

static void json_number(double value) {
    if (isfinite(value)) printf("%.6f", value);
    else fputs("null", stdout);
}

static void print_json(const nn_metrics *m, const int64_t *confusion, int classes, const char *path) {
    const char *const *names;
    int count = nn_metrics_names(m->task, &names);
    printf("{\"checkpoint\": ");
    cli_print_json_string(path);
    printf(", \"task\": \"%s\", \"samples\": %lld", nn_task_name(m->task), (long long)m->count);
    for (int i = 0; i < count; i++) {
        printf(", \"%s\": ", names[i]);
        json_number(nn_metrics_value(m, names[i]));
    }
    if (!confusion) {
        printf("}\n");
        return;
    }
    printf(", \"classes\": [");
    for (int c = 0; c < classes; c++) {
        class_stats s = stats_of(confusion, classes, c);
        printf("%s{\"class\": %d, \"samples\": %lld, \"accuracy\": %.6f, \"precision\": %.6f, \"recall\": %.6f}",
               c ? ", " : "", c, (long long)s.samples, ratio(s.correct, s.samples), ratio(s.correct, s.predicted),
               ratio(s.correct, s.samples));
    }
    printf("], \"confusion\": [");
    for (int c = 0; c < classes; c++) {
        printf("%s[", c ? ", " : "");
        for (int j = 0; j < classes; j++) printf("%s%lld", j ? ", " : "", (long long)confusion[(size_t)c * classes + j]);
        printf("]");
    }
    printf("]}\n");
}

static void print_text(const nn_metrics *m, const int64_t *confusion, int classes) {
    const char *const *names;
    int count = nn_metrics_names(m->task, &names);
    printf("samples   %lld\n", (long long)m->count);
    for (int i = 0; i < count; i++) printf("%-9s %.4f\n", names[i], nn_metrics_value(m, names[i]));
    if (!confusion) return;
    printf("\n");
    printf("class  samples  accuracy  precision  recall\n");
    for (int c = 0; c < classes; c++) {
        class_stats s = stats_of(confusion, classes, c);
        double accuracy = ratio(s.correct, s.samples), precision = ratio(s.correct, s.predicted);
        printf("%5d  %7lld  %8.4f  %9.4f  %6.4f\n", c, (long long)s.samples, accuracy, precision, accuracy);
    }
    printf("\nconfusion (rows: true class, columns: predicted)\n      ");
    for (int j = 0; j < classes; j++) printf(" %5d", j);
    printf("\n");
    for (int c = 0; c < classes; c++) {
        printf("%5d ", c);
        for (int j = 0; j < classes; j++) printf(" %5lld", (long long)confusion[(size_t)c * classes + j]);
        printf("\n");
    }
}

/* One long table, metric/class/predicted/value, so that the summary, the
 * per-class figures and the confusion matrix all go through one awk or
 * sort: 3 + 4 * classes + classes^2 rows under one header. class is "all"
 * for the whole set; predicted is set on confusion rows only. */
static void print_tsv(const nn_metrics *m, const int64_t *confusion, int classes) {
    const char *const *names;
    int count = nn_metrics_names(m->task, &names);
    printf("metric\tclass\tpredicted\tvalue\n");
    printf("samples\tall\t\t%lld\n", (long long)m->count);
    for (int i = 0; i < count; i++) {
        double value = nn_metrics_value(m, names[i]);
        if (isfinite(value)) printf("%s\tall\t\t%.6f\n", names[i], value);
        else printf("%s\tall\t\t\n", names[i]);   /* undefined: an empty field */
    }
    if (!confusion) return;
    for (int c = 0; c < classes; c++) {
        class_stats s = stats_of(confusion, classes, c);
        double accuracy = ratio(s.correct, s.samples), precision = ratio(s.correct, s.predicted);
        printf("samples\t%d\t\t%lld\naccuracy\t%d\t\t%.6f\n", c, (long long)s.samples, c, accuracy);
        printf("precision\t%d\t\t%.6f\nrecall\t%d\t\t%.6f\n", c, precision, c, accuracy);
    }
    for (int c = 0; c < classes; c++)
        for (int j = 0; j < classes; j++)
            printf("confusion\t%d\t%d\t%lld\n", c, j, (long long)confusion[(size_t)c * classes + j]);
}

/* The first file of files that cannot be read, or NULL. */
static const char *unreadable(const nn_data_files *files) {
    const char *paths[] = {files->images, files->labels, files->file, files->features, files->targets};
    for (int i = 0; i < 5; i++)
        if (paths[i] && access(paths[i], R_OK) != 0) return paths[i];
    return NULL;
}

/* --plot: a heat map of the confusion matrix, so for classification only. */
static int plot_refused(const char *plot_path, const char *checkpoint, nn_task task, int classes, nn_error *err) {
    if (task != NN_TASK_CLASSIFICATION)
        return nn_error_set(err, NN_ERR_INPUT, "--plot %s: %s is a %s model: --plot draws the confusion matrix of "
                            "a classifier (cross_entropy or nll) only", plot_path, checkpoint, nn_task_name(task));
    if (classes > NN_SVG_MAX_CELLS_SIDE)
        return nn_error_set(err, NN_ERR_INPUT, "--plot %s: %s has %d classes: --plot draws at most %d", plot_path,
                            checkpoint, classes, NN_SVG_MAX_CELLS_SIDE);
    return nn_output_check(plot_path, "plot", err);
}

static int plot_confusion(const char *plot_path, const char *checkpoint, const int64_t *confusion, int classes,
                          int64_t samples, nn_error *err) {
    const char *slash = strrchr(checkpoint, '/');
    char title[512];
    snprintf(title, sizeof title, "confusion matrix: %s (%lld samples)", slash && slash[1] ? slash + 1 : checkpoint,
             (long long)samples);
    nn_svg_heat_map map = {title, "true class", "predicted class", confusion, classes, classes};
    if (cli_make_parent_dirs(plot_path, err) != 0) return -1;
    return nn_svg_write_heat_map(plot_path, &map, err);
}

int command_eval(int argc, char **argv) {
    const char *format_text = NULL, *threads = NULL, *plot_path = NULL;
    nn_data_files given = {0};
    bool help = false, allow_nonfinite = false;
    cli_option options[] = {
        {"--images", (const char **)&given.images, NULL}, {"--labels", (const char **)&given.labels, NULL},
        {"--file", (const char **)&given.file, NULL}, {"--features", (const char **)&given.features, NULL},
        {"--targets", (const char **)&given.targets, NULL}, {"--format", &format_text, NULL},
        {"--threads", &threads, NULL}, {"--allow-nonfinite", NULL, &allow_nonfinite},
        {"--plot", &plot_path, NULL},
    };
    const char *positionals[1];
    int count;
    if (cli_parse("eval", argc, argv, 2, options, 9, positionals, 1, &count, &help)) return EXIT_USAGE;
    if (help) {
        fputs(eval_help, stdout);
        return EXIT_DONE;
    }
    output_format format = FORMAT_TEXT;
    bool any_given = given.images || given.labels || given.file || given.features || given.targets;
    if (count != 1) {
        fprintf(stderr, "nnseq eval: expected one CKPT\n%s", eval_help);
        return EXIT_USAGE;
    }
    int thread_count;
    if ((format_text && cli_format("eval", format_text, &format)) || cli_threads("eval", threads, &thread_count))
        return EXIT_USAGE;
    nn_error err = {0};
    nn_checkpoint ck;
    if (nn_checkpoint_load(&ck, positionals[0], allow_nonfinite, &err) != 0) return cli_fail(&err);
    const nn_config *cfg = &ck.config;
    int status = EXIT_DONE;
    /* The given files must be the ones the checkpoint's format reads. */
    const char *misfit = NULL;
    switch (cfg->data.format) {
    case NN_FORMAT_IDX:
        misfit = given.file || given.features || given.targets ? "--images and --labels" : NULL;
        if (!misfit && any_given && (!given.images || (!given.labels && !cfg->data.target_is_input)))
            misfit = "--images and --labels";
        break;
    case NN_FORMAT_CSV:
        misfit = given.images || given.labels ? "--file, or --features and --targets" : NULL;
        if (!misfit && any_given && !given.file && !given.features) misfit = "--file, or --features and --targets";
        break;
    case NN_FORMAT_NPY:
        misfit = given.images || given.labels || given.file ? "--features and --targets" : NULL;
        if (!misfit && any_given && !given.features) misfit = "--features and --targets";
        break;
    }
    if (misfit) {
        fprintf(stderr, "nnseq eval: %s was trained on %s data: give %s\n", positionals[0],
                nn_data_format_name(cfg->data.format), misfit);
        nn_checkpoint_free(&ck);
        return EXIT_USAGE;
    }
    const char *options_hint = cfg->data.format == NN_FORMAT_IDX   ? "--images and --labels"
                               : cfg->data.format == NN_FORMAT_CSV ? "--file (or --features and --targets)"
                                                                   : "--features and --targets";
    if (!any_given) {
        /* The stored paths are absolute: if they fail, the data moved. */
        const nn_data_files *stored = cfg->data.has_test ? &cfg->data.test : &cfg->data.train;
        const char *gone = cfg->data.has_test || cfg->data.test_split > 0 ? unreadable(stored) : NULL;
        if (gone) {
            nn_error_set(&err, NN_ERR_INPUT, "%s: cannot read %s (%s), the test data %s was trained with: if it "
                         "has moved, give %s", positionals[0], gone, strerror(errno), positionals[0], options_hint);
            nn_checkpoint_free(&ck);
            return cli_fail(&err);
        }
    }
    int outputs = (int)nn_shape_size(nn_model_output_shape(ck.model));
    nn_task task = nn_task_for(cfg->loss.kind, outputs, cfg->data.target_is_input);
    bool with_confusion = task == NN_TASK_CLASSIFICATION && outputs <= NN_METRICS_CONFUSION_MAX;
    /* Before the evaluation: a plot that cannot be drawn or written is
     * known at once. */
    if (plot_path && plot_refused(plot_path, positionals[0], task, outputs, &err) != 0) {
        nn_checkpoint_free(&ck);
        return cli_fail(&err);
    }
    int64_t *confusion = with_confusion ? calloc((size_t)outputs * outputs, sizeof *confusion) : NULL;
    nn_dataset set = {0};
    nn_metrics metrics;
    if (!any_given && !cfg->data.has_test && !(cfg->data.test_split > 0)) {
        nn_error_set(&err, NN_ERR_INPUT, "%s: its config has no test split: give %s", positionals[0], options_hint);
        status = cli_fail(&err);
    } else if (with_confusion && !confusion) {
        nn_error_oom(&err, "the confusion matrix");
        status = cli_fail(&err);
    } else if (nn_load_split(cfg, any_given ? &given : NULL, ck.model, false, "test", &set, &err) != 0 ||
               /* The batch size train evaluated with: the same sums, so the
                * same numbers (with the same --threads). */
               nn_evaluate(ck.model, thread_count, nn_eval_batch(ck.model), &cfg->loss, task, &ck.transform, &set, 0,
                           set.count, &metrics, confusion, &err) != 0) {
        status = cli_fail(&err);
    } else if (plot_path && plot_confusion(plot_path, positionals[0], confusion, outputs, metrics.count, &err) != 0) {
        status = cli_fail(&err);
    } else if (format == FORMAT_JSON) {
        print_json(&metrics, confusion, outputs, positionals[0]);
    } else if (format == FORMAT_TSV) {
        print_tsv(&metrics, confusion, outputs);
    } else {
        print_text(&metrics, confusion, outputs);
    }
    nn_dataset_free(&set);
    free(confusion);
    nn_checkpoint_free(&ck);
    return status;
}
