/* What nnseq train prints per epoch (text, JSON lines, TSV), its CSV log,
 * and the test metrics at the end. */
#include "train_report.h"

#include <stdio.h>

void print_epoch(output_format format, const nn_epoch_report *r, bool first) {
    if (format == FORMAT_JSON) {
        printf("{\"epoch\": %d, \"epochs\": %d, \"lr\": %.6g, \"train_loss\": %.6f, \"train_accuracy\": %.6f", r->epoch,
               r->epochs, r->lr, r->train.loss, r->train.accuracy);
        if (r->has_val) printf(", \"val_loss\": %.6f, \"val_accuracy\": %.6f", r->val.loss, r->val.accuracy);
        printf(", \"seconds\": %.3f, \"samples_per_s\": %.0f}\n", r->seconds, r->samples_per_second);
    } else if (format == FORMAT_TSV) {
        if (first) printf("epoch\tlr\ttrain_loss\ttrain_accuracy\tval_loss\tval_accuracy\tseconds\tsamples_per_s\n");
        printf("%d\t%.6g\t%.6f\t%.6f\t", r->epoch, r->lr, r->train.loss, r->train.accuracy);
        if (r->has_val) printf("%.6f\t%.6f\t", r->val.loss, r->val.accuracy);
        else printf("\t\t");
        printf("%.3f\t%.0f\n", r->seconds, r->samples_per_second);
    } else {
        printf("epoch %*d/%d  train_loss %.4f  train_acc %.4f", r->epochs >= 10 ? 2 : 1, r->epoch, r->epochs,
               r->train.loss, r->train.accuracy);
        if (r->has_val) printf("  val_loss %.4f  val_acc %.4f", r->val.loss, r->val.accuracy);
        printf("  %.1fs  %.0f samples/s\n", r->seconds, r->samples_per_second);
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

void print_test(output_format format, const nn_metrics *m, const char *checkpoint) {
    if (format == FORMAT_JSON) {
        printf("{\"final\": true, \"test_loss\": %.6f, \"test_accuracy\": %.6f, \"test_samples\": %d, \"checkpoint\": ",
               m->loss, m->accuracy, m->count);
        cli_print_json_string(checkpoint);
        printf("}\n");
    }
    else if (format == FORMAT_TSV)
        printf("test_loss\ttest_accuracy\ttest_samples\n%.6f\t%.6f\t%d\n", m->loss, m->accuracy, m->count);
    else
        printf("test  loss %.4f  accuracy %.4f  (%d samples)\n", m->loss, m->accuracy, m->count);
}

