/* Reading a data file raw or gzip-compressed alike (told apart by the first
 * bytes, never the name): what the IDX and CSV readers share. Two ways in:
 * nn_gz_open hands a gzFile to readers that read to the end of the data
 * (CSV); nn_gz_reader is for formats whose header says how much data follows
 * (IDX), which must stop there and see whatever comes after it, and so
 * inflate one gzip member themselves: gzread decodes any further member as
 * more data and silently drops bytes after the last one. */
#ifndef NNSEQ_GZ_INPUT_H
#define NNSEQ_GZ_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#include "core/error.h"

/* Opens path ("-" is standard input when stdin_allowed) for gzread; name
 * is what messages call it. regular_file, unless NULL, says whether it is a
 * regular file (a pipe may never end). NULL with err set on failure. */
gzFile nn_gz_open(const char *path, const char *name, bool stdin_allowed, bool *regular_file, nn_error *err);

/* After gzread returned 0: whether that was the end of the data, not a
 * gzip stream cut short (Z_BUF_ERROR is no "serious" error to zlib, so
 * gzread returns 0 as at a clean end: only gzerror tells them apart). */
bool nn_gz_clean_end(gzFile file);

/* deflate expands at most about 1032 times (a 258-byte match in 2 bits), so
 * a gzip file of N bytes holds at most this many times N, plus the slack. */
#define NN_GZ_MAX_RATIO 1032
#define NN_GZ_SLACK 4096

typedef struct nn_gz_reader nn_gz_reader;

/* Opens path as nn_gz_open does and looks at the first bytes: gzip if they
 * are 1f 8b, else raw. name is what messages call it (copied). */
nn_gz_reader *nn_gz_reader_open(const char *path, const char *name, bool stdin_allowed, nn_error *err);
bool nn_gz_reader_is_gzip(const nn_gz_reader *reader);
/* The bytes of a regular file from where reading began to its end (the
 * compressed size for gzip); -1 for a pipe, FIFO or device, which may never
 * end. */
int64_t nn_gz_reader_file_size(const nn_gz_reader *reader);
/* Reads up to size bytes of data (decompressed) into buffer; *got says how
 * many, fewer than size only at the end of the data: the end of the file, or
 * of the first gzip member. Inflates no more than size bytes (whatever the
 * compressed data would expand to). -1 on a failed read, damaged gzip data
 * or a gzip member cut short; nn_gz_reader_report words it. */
int nn_gz_reader_read(nn_gz_reader *reader, void *buffer, size_t size, size_t *got);
/* The last failure, as "NAME: what WHERE" (where e.g. "in the header"). */
int nn_gz_reader_report(const nn_gz_reader *reader, const char *where, nn_error *err);

typedef enum nn_gz_rest {
    NN_GZ_REST_NONE,         /* nothing follows (or, on a pipe, nothing was looked at) */
    NN_GZ_REST_DATA,         /* the data goes on: raw bytes, or more in the gzip member */
    NN_GZ_REST_AFTER_STREAM, /* bytes after the end of the gzip member */
} nn_gz_rest;

/* Once the caller has read all the data it expected: whether anything
 * follows, reading at most one more byte of data. A gzip member is read to
 * its end (so its CRC is checked) on any input. Past the data, only a
 * regular file is looked at, by its size: a pipe may stay open without ever
 * sending more, and waiting for its end would hang. *extra (unless NULL) is
 * how many bytes follow, -1 when the gzip data goes on (inflating it to
 * count could take forever), 0 when nothing follows or nothing was looked
 * at; *second_member (unless NULL) whether bytes after a gzip member start
 * another one. -1 with the failure left for nn_gz_reader_report. */
int nn_gz_reader_rest(nn_gz_reader *reader, nn_gz_rest *rest, int64_t *extra, bool *second_member);
void nn_gz_reader_close(nn_gz_reader *reader);

#endif
