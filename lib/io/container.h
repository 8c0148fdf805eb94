/* The checkpoint container: a list of named, typed arrays in one file.
 *
 *   header (little-endian): magic "NNSEQCK\0" (8 bytes), u32 format version,
 *   u32 flags (0), u64 payload bytes compressed, u64 payload bytes raw,
 *   u32 CRC-32 of the compressed payload, u32 CRC-32 of the 36 header bytes before it;
 *   then the zlib-compressed payload: u32 array count, then per array
 *   u16 name length, name bytes, u8 dtype, u8 rank, u64 dims[rank], data.
 *
 * Written to PATH.tmp-XXXXXX in the same folder, fsync'ed, renamed over
 * PATH, so a crash never leaves a half-written file where a good one stood.
 * The reader checks magic, version, sizes, both CRCs and every length against
 * what remains before trusting it, and inflates the payload as it streams
 * from the file straight into each array's own allocation: a file costs its
 * arrays and some 50 KB, however much it claims. At most 65536 arrays and
 * 4 GiB of raw payload. docs/checkpoint.md has the full layout. */
#ifndef NNSEQ_CONTAINER_H
#define NNSEQ_CONTAINER_H

#include <stddef.h>

#include "core/error.h"
#include "core/shape.h"

#define NN_ARCHIVE_VERSION 1

int nn_container_write(const char *path, const nn_array *arrays, size_t count, nn_error *err);

/* On success *arrays (and each data) belongs to the caller: nn_arrays_free.
 * A missing, foreign, truncated, damaged or newer-version file is an
 * NN_ERR_INPUT error whose message names the path and the problem. */
int nn_container_read(const char *path, nn_array **arrays, size_t *count, nn_error *err);

/* The array named name in arrays[0..count), or NULL. */
const nn_array *nn_container_find(const nn_array *arrays, size_t count, const char *name);

#endif
