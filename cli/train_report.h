/* The outputs of nnseq train. */
#ifndef NNSEQ_CLI_TRAIN_REPORT_H
#define NNSEQ_CLI_TRAIN_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "cli.h"
#include "train/train.h"

/* One epoch's line on stdout; first: the first line of the run (TSV header). */
void print_epoch(output_format format, const nn_epoch_report *report, bool first);
/* One epoch's row of the CSV log. */
void log_epoch(FILE *log, const nn_epoch_report *report);
/* The test split's metrics after training; checkpoint: where the run was saved. */
void print_test(output_format format, const nn_metrics *metrics, const char *checkpoint);

#endif
