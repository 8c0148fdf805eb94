/* CSV and other delimited text tables of numbers, raw or gzip-compressed
 * (recognised by the first bytes, read through zlib).
 *
 * A file is skip_rows lines skipped, then a header row naming the columns
 * (when header is set), then one row per sample. Cells are separated by
 * one delimiter character, or by runs of spaces and tabs (whitespace);
 * spaces around a cell are ignored, a cell may be in double quotes, lines
 * may end in \r\n, blank lines are allowed only at the end. Every cell of
 * a selected column must be a number: decimal, optional sign, fraction
 * and exponent, read the same in every locale (not strtod's locale) and
 * rounded correctly to double; "nan", "inf", an empty cell, text, a row
 * with fewer cells than a selected column needs or with a different
 * number of cells than the first row are errors (NN_ERR_INPUT) naming
 * PATH:LINE, the column (1-based number, and name when there is a header)
 * and what was expected.
 *
 * Columns are chosen by nn_csv_columns: an index (0-based), a header
 * name, a range "A:B" of either (inclusive at both ends), or a list of
 * those; negative indexes count from the end (-1 is the last column). */
#ifndef NNSEQ_CSV_H
#define NNSEQ_CSV_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "core/shape.h"

#define NN_CSV_MAX_SELECTORS 64

/* One selector: a column index, a name, or a range of either. */
typedef struct nn_csv_selector {
    bool is_range;
    char *first, *last;   /* owned text as written ("3", "-1", "sepal length"); last NULL unless a range */
} nn_csv_selector;

typedef struct nn_csv_columns {
    int count;            /* 0: not given */
    nn_csv_selector items[NN_CSV_MAX_SELECTORS];
} nn_csv_columns;

typedef struct nn_csv_options {
    char delimiter;       /* ',' by default; 0: runs of whitespace */
    int skip_rows;        /* lines skipped before the header or the data */
    bool header;          /* the first line after skip_rows names the columns */
    nn_csv_columns features;  /* not given: every column that is not a target */
    nn_csv_columns target;    /* not given: no targets (predict; target: input; a features-only file) */
} nn_csv_options;

/* Parses a selector list from text as written in a config ("0:29", "30",
 * "species", "-1"); for a list, call once per item. */
int nn_csv_columns_add(nn_csv_columns *columns, const char *text, nn_error *err);
void nn_csv_columns_free(nn_csv_columns *columns);

/* Reads the whole file: features (count x F, NN_F64) and, when
 * options->target is given, targets (count x T, NN_F64), as nn_arrays of
 * rank 2 whose data the caller owns. *first_line is the line number
 * (1-based) of the first data row. With require_targets false the target
 * columns are not read even when given (predict). A feature column that
 * is also a target column is an error. Memory grows with the rows read. */
int nn_csv_read(const char *path, const nn_csv_options *options, bool require_targets, nn_array *features,
                nn_array *targets, int64_t *first_line, nn_error *err);

/* Streaming, for nnseq predict: the header part on open, then rows in
 * chunks, features only (the target columns, if selected, are skipped),
 * so any number of rows passes in bounded memory. path "-" is stdin. */
typedef struct nn_csv_stream nn_csv_stream;
nn_csv_stream *nn_csv_stream_open(const char *path, const nn_csv_options *options, nn_error *err);
/* Feature columns per row; known after the first row was read (opening
 * reads it ahead), or from the selectors. */
int nn_csv_stream_width(const nn_csv_stream *stream);
/* Reads up to max_rows rows of features into out (row-major, float32);
 * returns the rows read (0 at the end) or -1 with err set. */
int nn_csv_stream_read(nn_csv_stream *stream, float *out, int max_rows, nn_error *err);
void nn_csv_stream_close(nn_csv_stream *stream);

/* The number parser: the double nearest to the decimal in text[0..length)
 * (correctly rounded), 0 on success, -1 when it is not a number of the
 * form above (nan, inf, hex and empty text included). */
int nn_csv_parse_number(const char *text, size_t length, double *value);

#endif
