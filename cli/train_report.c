/* What nnseq train prints per epoch (text, JSON lines, TSV), its CSV log,
 * and the test metrics at the end. docs/output.md documents the shapes;
 * scripts parse them, so a change there is a change of interface. */
#include "train_report.h"

#include <stdio.h>

/* One table for the whole run: the epoch rows leave the test columns empty
 * and the test row leaves the epoch columns empty, so `cut -f1,6` is the
 * epoch and its val_accuracy all the way down. */
static const char tsv_header[] = "epoch\tlr\ttrain_loss\ttrain_accuracy\tval_loss\tval_accuracy\tseconds\t"
                                 "samples_per_s\ttest_loss\ttest_accuracy\ttest_samples\n";

static void tsv_header_once(train_output *out) {
    if (out->header_printed) return;
    fputs(tsv_header, stdout);
    out->header_printed = true;
}

static void epoch_json(const nn_epoch_report *r) {
    printf("{\"epoch\": %d, \"epochs\": %d, \"lr\": %.6g, \"train_loss\": %.6f, \"train_accuracy\": %.6f", r->epoch,
           r->epochs, r->lr, r->train.loss, r->train.accuracy);
    if (r->has_val) printf(", \"val_loss\": %.6f, \"val_accuracy\": %.6f", r->val.loss, r->val.accuracy);
    printf(", \"seconds\": %.3f, \"samples_per_s\": %.0f}\n", r->seconds, r->samples_per_second);
}

static void epoch_tsv(const nn_epoch_report *r) {
    printf("%d\t%.6g\t%.6f\t%.6f\t", r->epoch, r->lr, r->train.loss, r->train.accuracy);
    if (r->has_val) printf("%.6f\t%.6f\t", r->val.loss, r->val.accuracy);
    else printf("\t\t");
    printf("%.3f\t%.0f\t\t\t\n", r->seconds, r->samples_per_second);
}

static void epoch_text(const nn_epoch_report *r) {
    printf("epoch %*d/%d  train_loss %.4f  train_acc %.4f", r->epochs >= 10 ? 2 : 1, r->epoch, r->epochs,
           r->train.loss, r->train.accuracy);
    if (r->has_val) printf("  val_loss %.4f  val_acc %.4f", r->val.loss, r->val.accuracy);
    printf("  %.1fs  %.0f samples/s\n", r->seconds, r->samples_per_second);
}

void output_epoch(train_output *out, const nn_epoch_report *r) {
    if (out->format == FORMAT_JSON) {
        epoch_json(r);
    } else if (out->format == FORMAT_TSV) {
        tsv_header_once(out);
        epoch_tsv(r);
    } else {
        epoch_text(r);
    }
    fflush(stdout);
}

void output_test(train_output *out, const nn_metrics *m, const char *checkpoint) {
    if (out->format == FORMAT_JSON) {
        printf("{\"final\": true, \"test_loss\": %.6f, \"test_accuracy\": %.6f, \"test_samples\": %d, \"checkpoint\": ",
               m->loss, m->accuracy, m->count);
        if (checkpoint) cli_print_json_string(checkpoint);
        else fputs("null", stdout); /* a run that saved nothing */
        printf("}\n");
    } else if (out->format == FORMAT_TSV) {
        tsv_header_once(out);
        printf("test\t\t\t\t\t\t\t\t%.6f\t%.6f\t%d\n", m->loss, m->accuracy, m->count);
    } else {
        printf("test  loss %.4f  accuracy %.4f  (%d samples)\n", m->loss, m->accuracy, m->count);
    }
    fflush(stdout);
}

void log_epoch(FILE *log, const nn_epoch_report *r) {
    fprintf(log, "%d,%.8g,%.8g,%.8g,", r->epoch, r->lr, r->train.loss, r->train.accuracy);
    if (r->has_val) fprintf(log, "%.8g,%.8g,", r->val.loss, r->val.accuracy);
    else fprintf(log, ",,");
    fprintf(log, "%.4f,%.1f\n", r->seconds, r->samples_per_second);
    fflush(log);
}
