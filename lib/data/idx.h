/* MNIST's IDX files, raw or gzip-compressed (recognised by their first bytes,
 * not their name; read through zlib). Only the unsigned-byte type (0x08) is
 * accepted: images of rank 3 (N, H, W) or 4 (N, C, H, W), labels of rank 1.
 * Every header field is checked against what the file holds before it is
 * trusted. */
#ifndef NNSEQ_IDX_H
#define NNSEQ_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define NN_IDX_MAX_RANK 4

typedef struct nn_idx {
    int rank;
    int dims[NN_IDX_MAX_RANK];  /* dims[0] is the number of items */
    size_t item_size;           /* bytes per item: product of dims[1..] (1 for rank 1) */
    uint8_t *data;              /* dims[0] * item_size bytes, owned */
} nn_idx;

/* Reads the whole file. Errors (NN_ERR_INPUT) name the path and what was
 * wrong: missing file, bad magic, unsupported type, rank, zero size, fewer
 * or more bytes than the header promises. */
int nn_idx_read(nn_idx *idx, const char *path, nn_error *err);
void nn_idx_free(nn_idx *idx);

/* A labelled set: images (rank 3 or 4) and labels (rank 1) whose counts
 * agree and whose labels are all < classes (0: no check). */
typedef struct nn_dataset {
    nn_idx images, labels;
    int count;          /* images.dims[0] */
    int channels, height, width;
} nn_dataset;

int nn_dataset_load(nn_dataset *set, const char *images_path, const char *labels_path, int classes,
                    nn_error *err);
void nn_dataset_free(nn_dataset *set);

/* Streaming reader for `nnseq predict`: header first, then items in chunks,
 * so any number of images passes with bounded memory. path "-" is stdin;
 * gzip is recognised here too. */
typedef struct nn_idx_stream nn_idx_stream;

/* Opens and reads the header; dims[0] is the promised item count. */
nn_idx_stream *nn_idx_stream_open(const char *path, nn_error *err);
int nn_idx_stream_rank(const nn_idx_stream *stream);
const int *nn_idx_stream_dims(const nn_idx_stream *stream);
size_t nn_idx_stream_item_size(const nn_idx_stream *stream);
/* Reads up to max_items items into buffer; returns how many (0 at the end),
 * or -1 with err set if the stream ends inside an item or before the count
 * the header promised, or has bytes left over after it. */
int nn_idx_stream_read(nn_idx_stream *stream, uint8_t *buffer, int max_items, nn_error *err);
void nn_idx_stream_close(nn_idx_stream *stream);

/* Writes an unsigned-byte IDX file (gzip-compressed when gzip is true), for
 * tests and tools. rank 1..4, dims[0] items. */
int nn_idx_write(const char *path, int rank, const int *dims, const uint8_t *data, int gzip,
                 nn_error *err);

#endif
