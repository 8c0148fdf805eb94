/* CSV and other delimited text tables of numbers, raw or gzip-compressed
 * (recognised by the first bytes, read through zlib).
 *
 * A file is skip_rows lines skipped, then a header row naming the columns
 * (when header is set), then one row per sample. A UTF-8 byte-order mark
 * at the start is passed over. Cells are separated by one delimiter
 * character, or by runs of spaces and tabs (whitespace, where spaces at
 * the start and end of a line are ignored too); spaces around a cell are
 * ignored, a cell may be in double quotes ("" inside them is a quote; a
 * quoted cell ends on its line), lines may end in \r\n, blank lines are
 * allowed only after the last row. Every cell of a selected column must be
 * a number: decimal, optional sign, fraction and exponent, read the same
 * in every locale (not strtod's locale) and rounded correctly to double;
 * "nan", "inf", an empty cell, text, a number beyond double's range, a
 * row with a different number of cells than the header (or, without one,
 * the first row) are errors (NN_ERR_INPUT) naming PATH:LINE, the column
 * (1-based number, and name when there is a header) and what was
 * expected, as in "iris.csv:12: column 3 ('petal_length'): expected a
 * number, got 'abc'". Cells of columns not selected may hold any text.
 * Damaged or truncated gzip data is an error, never a shorter table.
 *
 * Columns are chosen by nn_csv_columns: an index (0-based), a header
 * name, a range "A:B" of either (inclusive at both ends), or a list of
 * those; negative indexes count from the end (-1 is the last column).
 * Text that is an integer is an index, so a header name that is one, or
 * that holds a ':', cannot be selected by name. A column selected twice
 * (in features, in target, or in both), an index out of range, a name
 * not in the header (or with no header), and a range that runs backwards
 * in this file are errors naming the selector as written and the
 * header's names or the column count. */
#ifndef NNSEQ_CSV_H
#define NNSEQ_CSV_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "core/shape.h"

#define NN_CSV_MAX_SELECTORS 64
/* Longest line (without its \n or \r\n), and most cells in a row: past
 * these a file is refused, so that memory stays bounded by them. */
#define NN_CSV_LINE_LIMIT ((size_t)16 << 20)
#define NN_CSV_COLUMN_LIMIT (1 << 20)

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
    char delimiter;       /* ',' by default; 0: runs of whitespace; never a digit, '+', '-', '.', 'e', 'E' or '"' */
    int skip_rows;        /* lines skipped before the header or the data */
    bool header;          /* the first line after skip_rows names the columns */
    nn_csv_columns features;  /* not given: every column that is not a target */
    nn_csv_columns target;    /* not given: no targets (predict; target: input; a features-only file) */
} nn_csv_options;

/* Parses a selector from text as written in a config ("0:29", "30",
 * "species", "-1", "2:-1"; spaces around each end are dropped); for a
 * list, call once per item. columns starts zeroed; on error (empty text,
 * a range without both ends or with two ':', "5:3", more than
 * NN_CSV_MAX_SELECTORS) nothing is added. */
int nn_csv_columns_add(nn_csv_columns *columns, const char *text, nn_error *err);
void nn_csv_columns_free(nn_csv_columns *columns);

/* Reads the whole file: features (count x F, NN_F64) and, when
 * options->target is given, targets (count x T, NN_F64), as nn_arrays of
 * rank 2 whose data the caller owns; when no targets are read *targets is
 * zeroed (data NULL, rank 0), and targets may be NULL. options NULL:
 * commas, no header, every column a feature. *first_line (may be NULL) is
 * the line number (1-based) of the first data row; row i is on line
 * first_line + i. With require_targets false the target columns are not
 * read even when given (predict): they only leave the default features,
 * where they resolve in this file, so a file without them reads too. A
 * feature column that is also a target column is an error. Memory grows
 * with the rows read (doubling, trimmed at the end). On error the arrays
 * are zeroed and *first_line is left alone. path "-" is stdin. */
int nn_csv_read(const char *path, const nn_csv_options *options, bool require_targets, nn_array *features,
                nn_array *targets, int64_t *first_line, nn_error *err);

/* Streaming, for nnseq predict: the header part and the first row on
 * open, then rows in chunks, features only (the target columns are
 * treated as by nn_csv_read with require_targets false), so any number of
 * rows passes in memory bounded by the longest line. path "-" is stdin
 * (named "<stdin>" in messages). options NULL as for nn_csv_read. */
typedef struct nn_csv_stream nn_csv_stream;
nn_csv_stream *nn_csv_stream_open(const char *path, const nn_csv_options *options, nn_error *err);
/* Feature columns per row; known after the first row was read (opening
 * reads it ahead), or from the selectors. */
int nn_csv_stream_width(const nn_csv_stream *stream);
/* Reads up to max_rows rows of features into out (row-major, float32);
 * returns the rows read (0 at the end) or -1 with err set: a bad row
 * (the rows before it were handed out), or a value beyond float32's
 * range. After -1 every read fails with the same error. */
int nn_csv_stream_read(nn_csv_stream *stream, float *out, int max_rows, nn_error *err);
void nn_csv_stream_close(nn_csv_stream *stream);

/* The number parser: the double nearest to the decimal in text[0..length)
 * (correctly rounded, ties to even; underflow gives a subnormal or zero),
 * 0 on success, -1 when it is not a number of the form
 * [+-]digits[.digits][(e|E)[+-]digits] (".5" and "5." included; nan,
 * inf, hex, spaces and empty text are not) or is beyond double's range.
 * *value is written only on success. */
int nn_csv_parse_number(const char *text, size_t length, double *value);

#endif
