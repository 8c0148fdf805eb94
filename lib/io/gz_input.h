/* Reading a data file through zlib, raw or gzip-compressed alike (zlib
 * tells them apart by the first bytes): what the IDX and CSV readers share. */
#ifndef NNSEQ_GZ_INPUT_H
#define NNSEQ_GZ_INPUT_H

#include <stdbool.h>
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

#endif
