/* What nnseq train prints per epoch (text, JSON lines, TSV), its CSV log,
 * and the test metrics at the end. The metrics are the task's
 * (nn_metrics_names: loss and accuracy for classification, loss, mse, rmse,
 * mae and r2 for regression, ...), each as train_NAME, val_NAME and
 * test_NAME. docs/output.md documents the shapes; scripts parse them, so a
 * change there is a change of interface. */
#include "train_report.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* "accuracy" is "acc" in the text lines, as before tasks had metrics. */
static const char *short_name(const char *name) { return !strcmp(name, "accuracy") ? "acc" : name; }

static void json_number(FILE *out, double value) {
    if (isfinite(value)) fprintf(out, "%.6f", value);
    else fputs("null", out);   /* JSON has no NaN: an AUC of one class, an R^2 of constant targets */
}

static void print_json_number(double value) { json_number(stdout, value); }

/* An undefined metric (the AUC of one class) is an empty field, as
 * docs/output.md promises TSV readers. */
static void tsv_number(double value) {
    if (isfinite(value)) printf("%.6f", value);
}

/* One table for the whole run: the epoch rows leave the test columns empty
 * and the test row leaves the epoch columns empty, so `cut -f1,6` is the
 * epoch and its val_accuracy all the way down (classification). */
static void tsv_header_once(train_output *out) {
    if (out->header_printed) return;
    const char *const *names;
    int count = nn_metrics_names(out->task, &names);
    printf("epoch\tlr");
    for (int i = 0; i < count; i++) printf("\ttrain_%s", names[i]);
    for (int i = 0; i < count; i++) printf("\tval_%s", names[i]);
    printf("\tseconds\tsamples_per_s");
    for (int i = 0; i < count; i++) printf("\ttest_%s", names[i]);
    printf("\ttest_samples\n");
    out->header_printed = true;
}

/* --format json's epoch line, and the .jsonl log's. */
static void epoch_json_to(FILE *out, nn_task task, const nn_epoch_report *r) {
    const char *const *names;
    int count = nn_metrics_names(task, &names);
    fprintf(out, "{\"epoch\": %d, \"epochs\": %d, \"lr\": %.6g", r->epoch, r->epochs, r->lr);
    for (int i = 0; i < count; i++) {
        fprintf(out, ", \"train_%s\": ", names[i]);
        json_number(out, nn_metrics_value(&r->train, names[i]));
    }
    for (int i = 0; r->has_val && i < count; i++) {
        fprintf(out, ", \"val_%s\": ", names[i]);
        json_number(out, nn_metrics_value(&r->val, names[i]));
    }
    fprintf(out, ", \"seconds\": %.3f, \"samples_per_s\": %.0f}\n", r->seconds, r->samples_per_second);
}

static void epoch_json(const train_output *out, const nn_epoch_report *r) { epoch_json_to(stdout, out->task, r); }

static void epoch_tsv(const train_output *out, const nn_epoch_report *r) {
    const char *const *names;
    int count = nn_metrics_names(out->task, &names);
    printf("%d\t%.6g", r->epoch, r->lr);
    for (int i = 0; i < count; i++) {
        putchar('\t');
        tsv_number(nn_metrics_value(&r->train, names[i]));
    }
    for (int i = 0; i < count; i++) {
        putchar('\t');
        if (r->has_val) tsv_number(nn_metrics_value(&r->val, names[i]));
    }
    printf("\t%.3f\t%.0f", r->seconds, r->samples_per_second);
    for (int i = 0; i <= count; i++) putchar('\t');
    putchar('\n');
}

/* The text line keeps to the task's headline metrics, so that it fits a
 * terminal; the machine formats and the test line have them all. */
static int text_names(nn_task task, const char *const **names) {
    static const char *const classification[] = {"loss", "accuracy"};
    static const char *const binary[] = {"loss", "accuracy", "f1", "roc_auc"};
    static const char *const multilabel[] = {"loss", "accuracy", "micro_f1"};
    static const char *const regression[] = {"loss", "rmse", "r2"};
    switch (task) {
    case NN_TASK_BINARY: *names = binary; return 4;
    case NN_TASK_MULTILABEL: *names = multilabel; return 3;
    case NN_TASK_REGRESSION: *names = regression; return 3;
    default: *names = classification; return 2;
    }
}

static void epoch_text(const train_output *out, const nn_epoch_report *r) {
    const char *const *names;
    int count = text_names(out->task, &names);
    printf("epoch %*d/%d", r->epochs >= 10 ? 2 : 1, r->epoch, r->epochs);
    for (int i = 0; i < count; i++) printf("  train_%s %.4f", short_name(names[i]), nn_metrics_value(&r->train, names[i]));
    for (int i = 0; r->has_val && i < count; i++)
        printf("  val_%s %.4f", short_name(names[i]), nn_metrics_value(&r->val, names[i]));
    printf("  %.1fs  %.0f samples/s\n", r->seconds, r->samples_per_second);
}

void output_epoch(train_output *out, const nn_epoch_report *r) {
    if (out->format == FORMAT_JSON) {
        epoch_json(out, r);
    } else if (out->format == FORMAT_TSV) {
        tsv_header_once(out);
        epoch_tsv(out, r);
    } else {
        epoch_text(out, r);
    }
    fflush(stdout);
}

void output_test(train_output *out, const nn_metrics *m, const char *checkpoint) {
    const char *const *names;
    int count = nn_metrics_names(out->task, &names);
    if (out->format == FORMAT_JSON) {
        printf("{\"final\": true");
        for (int i = 0; i < count; i++) {
            printf(", \"test_%s\": ", names[i]);
            print_json_number(nn_metrics_value(m, names[i]));
        }
        printf(", \"test_samples\": %lld, \"checkpoint\": ", (long long)m->count);
        if (checkpoint) cli_print_json_string(checkpoint);
        else fputs("null", stdout); /* a run that saved nothing */
        printf("}\n");
    } else if (out->format == FORMAT_TSV) {
        tsv_header_once(out);
        printf("test\t");
        for (int i = 0; i < 2 * count + 3; i++) putchar('\t');
        for (int i = 0; i < count; i++) {
            tsv_number(nn_metrics_value(m, names[i]));
            putchar('\t');
        }
        printf("%lld\n", (long long)m->count);
    } else {
        printf("test");
        for (int i = 0; i < count; i++) printf("  %s %.4f", names[i], nn_metrics_value(m, names[i]));
        printf("  (%lld samples)\n", (long long)m->count);
    }
    fflush(stdout);
}

void log_header(FILE *log, nn_task task) {
    const char *const *names;
    int count = nn_metrics_names(task, &names);
    fprintf(log, "epoch,lr");
    for (int i = 0; i < count; i++) fprintf(log, ",train_%s", names[i]);
    for (int i = 0; i < count; i++) fprintf(log, ",val_%s", names[i]);
    fprintf(log, ",seconds,samples_per_s\n");
}

void log_epoch_json(FILE *log, nn_task task, const nn_epoch_report *r) {
    epoch_json_to(log, task, r);
    fflush(log);
}

void log_epoch(FILE *log, nn_task task, const nn_epoch_report *r) {
    const char *const *names;
    int count = nn_metrics_names(task, &names);
    fprintf(log, "%d,%.8g", r->epoch, r->lr);
    for (int i = 0; i < count; i++) fprintf(log, ",%.8g", nn_metrics_value(&r->train, names[i]));
    for (int i = 0; i < count; i++) {
        fputc(',', log);
        if (r->has_val) fprintf(log, "%.8g", nn_metrics_value(&r->val, names[i]));
    }
    fprintf(log, ",%.4f,%.1f\n", r->seconds, r->samples_per_second);
    fflush(log);
}
