/* The outputs of nnseq train (shapes: docs/output.md). */
#ifndef NNSEQ_CLI_TRAIN_REPORT_H
#define NNSEQ_CLI_TRAIN_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "cli.h"
#include "train/train.h"

/* What one run has printed on stdout so far. The TSV is one table, so its
 * header comes exactly once and first, whether the first row is an epoch's
 * or, after a --resume of a finished run, the test row. Start it as
 * {format, false, task}. */
typedef struct train_output {
    output_format format;
    bool header_printed;
    nn_task task;        /* whose metrics the columns are */
} train_output;

/* One epoch's line (TSV: the header first if not yet printed). */
void output_epoch(train_output *out, const nn_epoch_report *report);
/* The test split's metrics after training, the last line (TSV: the row
 * "test" in the same columns); checkpoint: where the run was saved, or
 * NULL if it saved nothing (JSON null). */
void output_test(train_output *out, const nn_metrics *metrics, const char *checkpoint);
/* The CSV log's header, and one epoch's row. */
void log_header(FILE *log, nn_task task);
void log_epoch(FILE *log, nn_task task, const nn_epoch_report *report);
/* A .jsonl log's line: the object --format json prints for the epoch. */
void log_epoch_json(FILE *log, nn_task task, const nn_epoch_report *report);

#endif
