/* numpy arrays as data: a .npy file, or one array of an .npz, with the
 * .npy code of io/npz.c. Accepted dtypes, little-endian ('<') or
 * byte-sized ('|'): f4 f8 u1 i1 i2 u2 i4 u4 i8 u8 b1, C order only; any
 * rank. Errors (NN_ERR_INPUT) name the file, the key and what was
 * expected. */
#ifndef NNSEQ_NPY_H
#define NNSEQ_NPY_H

#include <stdint.h>

#include "core/error.h"
#include "core/shape.h"

/* Reads the array in path: a .npy file, or the array named key of an
 * .npz (key NULL: the .npz must hold exactly one array). The file kind is
 * told by its first bytes, not its name. out->dtype is the file's dtype,
 * out->data owned by the caller. Ranks above NN_MAX_RANK fold the
 * trailing dims into the last. */
int nn_npy_read(const char *path, const char *key, nn_array *out, nn_error *err);

/* Streaming a .npy (not .npz) for nnseq predict: header on open, then items
 * (rows along the first dim) in chunks; path "-" is stdin. */
typedef struct nn_npy_stream nn_npy_stream;
nn_npy_stream *nn_npy_stream_open(const char *path, nn_error *err);
/* The shape as in the header (dims[0] items), folded as above. */
int nn_npy_stream_rank(const nn_npy_stream *stream);
const int64_t *nn_npy_stream_dims(const nn_npy_stream *stream);
nn_dtype nn_npy_stream_dtype(const nn_npy_stream *stream);
/* Reads up to max_items items as float32 (each value converted, uint8 not
 * scaled) into out; returns the items read, 0 at the end, -1 with err set
 * when the data ends inside an item or before the header's count, or has
 * bytes after it. */
int nn_npy_stream_read(nn_npy_stream *stream, float *out, int max_items, nn_error *err);
void nn_npy_stream_close(nn_npy_stream *stream);

#endif
