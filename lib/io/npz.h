/* numpy's .npz: a zip archive of .npy files, one per array, named
 * "KEY.npy". Read and written with zlib (no other zip library).
 *
 * The reader accepts what np.savez (stored entries) and np.savez_compressed
 * (deflated entries) write: .npy format versions 1.0, 2.0 and 3.0, C order,
 * little-endian (or byte-sized) f4 f8 u1 i1 i2 u2 i4 u4 i8 u8 b1 of any rank
 * (ranks above NN_MAX_RANK fold into the last dim; the .npy code is
 * io/npy_format.c); big-endian or Fortran order, a damaged zip, a CRC
 * mismatch or a truncated file is an NN_ERR_INPUT error naming the file, the
 * key and what was expected. The writer writes f4, i8 and u1. */
#ifndef NNSEQ_NPZ_H
#define NNSEQ_NPZ_H

#include <stddef.h>

#include "core/error.h"
#include "core/shape.h"

/* Writes arrays (keys from array.name) as a deflate-compressed .npz, to a
 * temporary file in the same folder, flushed and renamed over path. */
int nn_npz_write(const char *path, const nn_array *arrays, size_t count, nn_error *err);

/* The .npy 1.0 header of array (dtype f4, i8 or u1; its data not read),
 * byte for byte as numpy writes it, into out (room for NN_NPY_HEADER_MAX
 * bytes); returns its length, a multiple of 64. numpy's spare room for the
 * first axis keeps the length the same whatever that count, so a header
 * can be rewritten in place once the count is known. */
#define NN_NPY_HEADER_MAX 320
size_t nn_npy_encode_header(unsigned char *out, const nn_array *array);

/* Reads every array; *arrays (and each data) is owned by the caller: free
 * with nn_arrays_free. Names are the keys without ".npy". */
int nn_npz_read(const char *path, nn_array **arrays, size_t *count, nn_error *err);

/* The array named key of the .npz at path (key NULL: the
 * archive must hold exactly one array; "KEY" and "KEY.npy" both name it),
 * inflating that entry alone. Errors name the path and list the keys the
 * archive holds when key is missing or not given. out->data is the
 * caller's. */
int nn_npz_read_key(const char *path, const char *key, nn_array *out, nn_error *err);

#endif
