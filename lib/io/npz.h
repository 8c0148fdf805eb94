/* numpy's .npz: a zip archive of .npy files, one per array, named
 * "KEY.npy". Read and written with zlib (no other zip library).
 *
 * The reader accepts what np.savez (stored entries) and np.savez_compressed
 * (deflated entries) write: .npy format versions 1.0, 2.0 and 3.0, C order,
 * little-endian (or byte-sized) f4 f8 u1 i1 i2 u2 i4 u4 i8 u8 b1 of any rank
 * (ranks above NN_MAX_RANK fold into the last dim; the .npy code is
 * io/npy_format.c); data descriptors and ZIP64 extra fields are read.
 * Everything else is an NN_ERR_INPUT error naming the file, the entry and
 * what was expected: big-endian or Fortran order, a damaged zip, a CRC
 * mismatch, a truncated file, encryption, methods other than stored and
 * deflate, duplicate keys, names that are not KEY.npy (a NUL byte in one
 * included), ZIP64 archives (4 GiB or 65535 entries and more), and what
 * would let a small file claim much memory: entries that share bytes
 * (overlap each other or the central directory), a size that the
 * compressed bytes cannot give (deflate gives at most 1032 times its input)
 * or that the .npy header inside disagrees with, sizes adding up to more
 * than 16 GiB, data that inflates past the declared size. These are checked
 * on opening, before any entry is inflated, except the last two, which are
 * checked before the entry's data is allocated and while it is inflated.
 * The writer writes f4, i8 and u1. */
#ifndef NNSEQ_NPZ_H
#define NNSEQ_NPZ_H

#include <stdbool.h>
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

/* An .npz open for reading: its directory read and checked, the file kept
 * open; entries are inflated only when read. One thread at a time. */
typedef struct nn_npz nn_npz;

/* Opens path and checks its whole directory (every limit above but the
 * .npy headers and the inflated lengths); *npz is NULL on error. */
int nn_npz_open(nn_npz **npz, const char *path, nn_error *err);
void nn_npz_close(nn_npz *npz); /* NULL is fine */

/* The entries in archive order, by their keys (names without ".npy";
 * NULL past the end). */
size_t nn_npz_count(const nn_npz *npz);
const char *nn_npz_key(const nn_npz *npz, size_t index);
/* The index of the entry that key names ("KEY" or "KEY.npy"). */
bool nn_npz_find(const nn_npz *npz, const char *key, size_t *index);

/* Entry index's name, dtype and shape with out->data NULL, from the .npy
 * header alone (at most its first 64 KiB inflated): what a caller checks
 * before it lets the data be inflated. */
int nn_npz_read_header(nn_npz *npz, size_t index, nn_array *out, nn_error *err);
/* Inflates entry index alone into out (name, dtype, shape and data, which
 * is the caller's); out is zeroed on error. */
int nn_npz_read_entry(nn_npz *npz, size_t index, nn_array *out, nn_error *err);

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
