/* IDX files (MNIST's format), raw or gzip-compressed (recognised by their
 * first bytes, not their name; read through zlib). Every element type:
 * 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E
 * float64 (big-endian in the file, host order in memory), and any rank >= 1
 * (dims beyond NN_MAX_RANK fold into the last). Every header field is
 * checked against what the file holds before it is trusted: a regular raw
 * file must hold exactly the header and the data it promises, a gzip file no
 * more than deflate can expand to (NN_GZ_MAX_RATIO times its size), before
 * anything is allocated; nothing is read past the promised data but one
 * byte, so a pipe that goes on for ever is not waited on. */
#ifndef NNSEQ_IDX_H
#define NNSEQ_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/shape.h"

/* Reads the whole file into out (dtype NN_U8, NN_I8, NN_I16, NN_I32, NN_F32
 * or NN_F64; dims[0] items, folded as above; data in host order, owned by
 * the caller; out is zeroed on failure). Errors (NN_ERR_INPUT) name the
 * path and what was wrong: missing file, bad magic, unknown type (the
 * accepted ones listed), zero rank or size, sizes whose byte count
 * overflows, more data than the file can hold or than 16 GiB, fewer or more
 * bytes than the header promises, data after the gzip stream (a second
 * member or anything else), a damaged or truncated gzip stream. Bytes after
 * the data are looked for in regular files only: on a pipe, FIFO or device
 * the read stops where the header says. */
int nn_idx_read(const char *path, nn_array *out, nn_error *err);

/* Streaming reader for `nnseq predict` and `nnseq print`: header first,
 * then items in chunks, so any number of items passes with bounded
 * memory (no 16 GiB limit). path "-" is stdin; gzip is recognised here too.
 * On a pipe the reader stops at the promised count without waiting for the
 * end of the input. */
typedef struct nn_idx_stream nn_idx_stream;

/* Opens and reads the header; dims[0] is the promised item count. */
nn_idx_stream *nn_idx_stream_open(const char *path, nn_error *err);
int nn_idx_stream_rank(const nn_idx_stream *stream);          /* folded, <= NN_MAX_RANK */
const int64_t *nn_idx_stream_dims(const nn_idx_stream *stream);
nn_dtype nn_idx_stream_dtype(const nn_idx_stream *stream);
size_t nn_idx_stream_item_values(const nn_idx_stream *stream); /* product of dims[1..] (1 for rank 1) */
/* Reads up to max_items items as float32 (uint8 not scaled; float64
 * beyond float's range becomes an infinity) into out, which holds
 * max_items * item_values floats; returns how many (0 at the end), or -1
 * with err set if the stream ends inside an item or before the count the
 * header promised, or has bytes left over after it (looked for as in
 * nn_idx_read: in a regular file, and in the gzip member on any input). */
int nn_idx_stream_read(nn_idx_stream *stream, float *out, int max_items, nn_error *err);
void nn_idx_stream_close(nn_idx_stream *stream);

/* nn_idx_read in two steps, so that a split's images and labels can be
 * compared by their headers before either body is read: nn_idx_open reads
 * and checks the header as nn_idx_read does (path is a file name, "-" is no
 * stdin here); the counts are nn_idx_stream_dims; nn_idx_read_all then reads
 * the data into out as nn_idx_read does (once, before any
 * nn_idx_stream_read). Close with nn_idx_stream_close. */
nn_idx_stream *nn_idx_open(const char *path, nn_error *err);
int nn_idx_read_all(nn_idx_stream *stream, nn_array *out, nn_error *err);

/* Writes an IDX file of any of the types above (gzip-compressed when gzip
 * is true), for tests and tools: rank 1..NN_MAX_RANK, dims 1..UINT32_MAX,
 * dims[0] items, data in host order (left unchanged). A bad array is
 * NN_ERR_INPUT, a failed write NN_ERR_RUNTIME (the partial file removed). */
int nn_idx_write_array(const char *path, const nn_array *array, int gzip, nn_error *err);
/* The unsigned-byte case: rank 1..4 with int dims. */
int nn_idx_write(const char *path, int rank, const int *dims, const uint8_t *data, int gzip, nn_error *err);

#endif
