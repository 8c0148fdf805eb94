/* numpy's .npz: a zip archive of .npy files, one per array, named
 * "KEY.npy". Read and written with zlib (no other zip library).
 *
 * The reader accepts what np.savez (stored entries) and np.savez_compressed
 * (deflated entries) write: .npy format versions 1.0, 2.0 and 3.0, C order,
 * little-endian float32 ('<f4'), int64 ('<i8') and uint8 ('|u1'); any other
 * dtype, Fortran order, a damaged zip, a CRC mismatch or a truncated file is
 * an NN_ERR_INPUT error naming the file, the key and what was expected. */
#ifndef NNSEQ_NPZ_H
#define NNSEQ_NPZ_H

#include <stddef.h>

#include "core/error.h"
#include "core/shape.h"

/* Writes arrays (keys from array.name) as a deflate-compressed .npz, to a
 * temporary file in the same folder, flushed and renamed over path. */
int nn_npz_write(const char *path, const nn_array *arrays, size_t count, nn_error *err);

/* Reads every array; *arrays (and each data) is owned by the caller: free
 * with nn_arrays_free. Names are the keys without ".npy". */
int nn_npz_read(const char *path, nn_array **arrays, size_t *count, nn_error *err);

#endif
