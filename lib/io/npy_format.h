/* Internal to lib/: numpy's .npy format (numpy/lib/format.py), shared by
 * the .npz reader (io/npz.c) and the data reader (data/npy.c) so that the
 * header is parsed and checked in one place (io/npy_format.c), and the one
 * reader of a single .npz entry that data/npy.c needs from io/npz.c.
 *
 * A .npy file is a prefix (the magic "\x93NUMPY", a version byte pair, the
 * header length as a little-endian u16 in 1.0 or u32 in 2.0 and 3.0), the
 * header (a Python dict literal: 'descr', 'fortran_order', 'shape'), then
 * the data. Accepted dtypes: '<f4' '<f8' '|u1' '|i1' '<i2' '<u2' '<i4'
 * '<u4' '<i8' '<u8' '|b1' (a byte-sized type may carry any byte-order
 * mark, as numpy reads '<u1' too), C order only, any rank numpy allows.
 *
 * Messages from these functions carry no file name: the caller prefixes
 * it (and the .npz entry). */
#ifndef NNSEQ_NPY_FORMAT_H
#define NNSEQ_NPY_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/shape.h"

/* numpy 2's NPY_MAXDIMS (numpy 1 allows 32). */
#define NPY_MAX_DIMS 64
/* The longest prefix (versions 2.0 and 3.0). */
#define NPY_PREFIX_MAX 12

extern const char npy_magic[6];

typedef struct npy_header {
    char descr[16];
    nn_dtype dtype;
    int rank;                      /* as the file says: 0 to NPY_MAX_DIMS */
    int64_t dims[NPY_MAX_DIMS];
    uint64_t data_size;            /* bytes the shape needs, checked not to overflow */
} npy_header;

/* Checks the magic and version in the first size bytes (at least 8 are
 * needed to tell the version) and finds the header text: *prefix_size is
 * 10 or 12, *text_size the header's length. An error when size is shorter
 * than the prefix. */
int npy_parse_prefix(const unsigned char *bytes, size_t size, size_t *prefix_size, uint64_t *text_size,
                     nn_error *err);

/* Parses the header text into header and checks it: a supported dtype
 * (big-endian and unknown ones are errors saying what to do), C order, a
 * shape whose byte count fits in 64 bits. */
int npy_parse_header(const char *text, size_t length, npy_header *header, nn_error *err);

/* The shape as an nn_array keeps it: ranks above NN_MAX_RANK fold the
 * trailing dims into the last (their product). */
void npy_fold_shape(const npy_header *header, int *rank, int64_t dims[NN_MAX_RANK]);

/* Turns little-endian values as stored into host order, in place, and
 * bools into 0 and 1. */
void npy_to_host(void *data, nn_dtype dtype, size_t count);

/* Converts count values stored little-endian at bytes into float32 (bools
 * 0 or 1, integers rounded to the nearest float, uint8 not scaled). */
void npy_to_float(float *out, const unsigned char *bytes, nn_dtype dtype, size_t count);

/* "(3, 2)", "(5,)", "()": Python's repr of a shape, into buffer. */
void npy_format_shape(char *buffer, size_t size, int rank, const int64_t *dims);



#endif
