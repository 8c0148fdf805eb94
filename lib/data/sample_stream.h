/* Samples from a file of any format, in chunks, with bounded memory: what
 * nnseq predict reads (a CSV's feature columns, an .npy, an IDX of any
 * type; "-" is standard input). Values come out as the model's raw input
 * before normalisation: bytes / 255, everything else as stored, float32. */
#ifndef NNSEQ_SAMPLE_STREAM_H
#define NNSEQ_SAMPLE_STREAM_H

#include <stddef.h>

#include "core/error.h"
#include "core/shape.h"
#include "data/csv.h"
#include "data/source.h"

typedef struct nn_sample_stream nn_sample_stream;

/* csv: the columns to read (the config's data.csv; target columns are
 * skipped). An .npz (not streamable) is read whole. */
nn_sample_stream *nn_sample_stream_open(nn_data_format format, const nn_csv_options *csv, const char *path,
                                        nn_error *err);
/* Values per sample and their shape (rank 1 for tables). */
size_t nn_sample_stream_values(const nn_sample_stream *stream);
nn_shape nn_sample_stream_shape(const nn_sample_stream *stream);
/* Up to max samples into out (max x values floats); returns how many, 0 at
 * the end, -1 with err set. */
int nn_sample_stream_read(nn_sample_stream *stream, float *out, int max, nn_error *err);
void nn_sample_stream_close(nn_sample_stream *stream);

#endif
