/* nnseq eval CKPT: loss, accuracy, per-class accuracy, precision and recall,
 * and the confusion matrix on the config's test split or the given files. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/checkpoint.h"
#include "train/train.h"
#include "cli.h"

static const char eval_help[] =
    "usage: nnseq eval CKPT [--images IDX --labels IDX] [--format text|json|tsv] [--threads N]\n"
    "\n"
    "Evaluates the checkpoint on its config's test split (or the IDX files\n"
    "given): loss, accuracy, per-class accuracy (= recall), precision, and the\n"
    "confusion matrix (rows: true class, columns: predicted class). --format tsv\n"
    "is one long table: metric, class, predicted, value (docs/output.md).\n";

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

static void print_json(const nn_metrics *m, const int64_t *confusion, int classes, const char *path) {
    printf("{\"checkpoint\": ");
    cli_print_json_string(path);
    printf(", \"samples\": %d, \"loss\": %.6f, \"accuracy\": %.6f, \"classes\": [", m->count, m->loss, m->accuracy);
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
    printf("samples   %d\nloss      %.4f\naccuracy  %.4f\n\n", m->count, m->loss, m->accuracy);
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
    printf("metric\tclass\tpredicted\tvalue\n");
    printf("samples\tall\t\t%d\nloss\tall\t\t%.6f\naccuracy\tall\t\t%.6f\n", m->count, m->loss, m->accuracy);
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

int command_eval(int argc, char **argv) {
    const char *images = NULL, *labels = NULL, *format_text = NULL, *threads = NULL;
    bool help = false;
    cli_option options[] = {
        {"--images", &images, NULL}, {"--labels", &labels, NULL}, {"--format", &format_text, NULL},
        {"--threads", &threads, NULL},
    };
    const char *positionals[1];
    int count;
    if (cli_parse("eval", argc, argv, 2, options, 4, positionals, 1, &count, &help)) return EXIT_USAGE;
    if (help) {
        fputs(eval_help, stdout);
        return EXIT_DONE;
    }
    output_format format = FORMAT_TEXT;
    if (count != 1 || (!images != !labels)) {
        fprintf(stderr, "nnseq eval: expected one CKPT, and --images with --labels or neither\n%s", eval_help);
        return EXIT_USAGE;
    }
    if ((format_text && cli_format("eval", format_text, &format)) || cli_threads("eval", threads)) return EXIT_USAGE;
    nn_error err = {0};
    nn_checkpoint ck;
    if (nn_checkpoint_load(&ck, positionals[0], &err) != 0) return cli_fail(&err);
    int status = EXIT_DONE;
    if (!images) {
        images = ck.config.data.test.images;
        labels = ck.config.data.test.labels;
        /* The stored paths are absolute: if they fail, the data moved. */
        const char *gone = !images ? NULL : access(images, R_OK) ? images : access(labels, R_OK) ? labels : NULL;
        if (gone) {
            nn_error_set(&err, NN_ERR_INPUT, "%s: cannot read %s (%s), the test data %s was trained with: if it "
                         "has moved, give --images and --labels", positionals[0], gone, strerror(errno),
                         positionals[0]);
            nn_checkpoint_free(&ck);
            return cli_fail(&err);
        }
    }
    int classes = nn_model_output_shape(ck.model).dims[0];
    int64_t *confusion = calloc((size_t)classes * classes, sizeof *confusion);
    nn_dataset set = {0};
    nn_metrics metrics;
    nn_pixel_transform pixels;
    nn_pixel_transform_init(&pixels, &ck.config);
    if (!images) {
        nn_error_set(&err, NN_ERR_INPUT, "%s: its config has no data.test: give --images and --labels", positionals[0]);
        status = cli_fail(&err);
    } else if (!confusion) {
        nn_error_oom(&err, "the confusion matrix");
        status = cli_fail(&err);
    } else if (nn_dataset_load(&set, images, labels, classes, &err) != 0 ||
               /* The batch size train evaluated with: the same sums, so the same numbers. */
               nn_model_reserve(ck.model, ck.config.train.batch_size, &err) != 0 ||
               (nn_shape_size(nn_dataset_shape(&set)) != nn_shape_size(ck.model->input_shape) &&
                nn_error_set(&err, NN_ERR_INPUT, "%s: images of %dx%dx%d do not fit the model's input", images,
                             set.channels, set.height, set.width)) ||
               nn_evaluate(ck.model, ck.config.loss, &pixels, &set, 0, set.count, &metrics, confusion, &err) != 0) {
        status = cli_fail(&err);
    } else if (format == FORMAT_JSON) {
        print_json(&metrics, confusion, classes, positionals[0]);
    } else if (format == FORMAT_TSV) {
        print_tsv(&metrics, confusion, classes);
    } else {
        print_text(&metrics, confusion, classes);
    }
    nn_dataset_free(&set);
    free(confusion);
    nn_checkpoint_free(&ck);
    return status;
}
