/* What a file looks like from its first bytes, for messages that name a
 * file of the wrong kind ("not an IDX file: it looks like a PNG image")
 * instead of quoting a magic number. */
#ifndef NNSEQ_FILE_KIND_H
#define NNSEQ_FILE_KIND_H

#include <stddef.h>

/* "a PNG image", "an nnseq checkpoint", "a NumPy .npy array", "a zip
 * archive (.npz)", "a gzip file", "an IDX data file", "text (a YAML config
 * or CSV?)", ...: a description from the first size bytes (4 suffice for
 * most kinds), or NULL when nothing is recognised. */
const char *nn_file_kind(const unsigned char *bytes, size_t size);

#endif
