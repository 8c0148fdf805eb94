/* Shapes and named arrays.
 *
 * Activations are float32, contiguous and batch-major: a batch of B samples
 * of per-sample shape (C, H, W) is B*C*H*W floats, sample after sample. An
 * nn_shape is the per-sample shape, without the batch dimension.
 *
 * An nn_array is a named view of typed memory (a weight, a running mean, an
 * optimiser buffer): the unit that checkpoints and .npz files store. */
#ifndef NNSEQ_SHAPE_H
#define NNSEQ_SHAPE_H

#include <stddef.h>
#include <stdint.h>

#define NN_MAX_RANK 4

typedef struct nn_shape {
    int rank;    /* 1: (features), 3: (channels, height, width); 2 is allowed */
    int dims[3];
} nn_shape;

/* Number of elements of one sample. */
size_t nn_shape_size(nn_shape shape);
/* Writes "(32, 13, 13)" (Python tuple style); returns what snprintf returns. */
int nn_shape_format(nn_shape shape, char *buffer, size_t size);
int nn_shape_equal(nn_shape a, nn_shape b);

/* The first three are what checkpoints store; the rest are what data files
 * (IDX, .npy) hold and are converted on reading. */
typedef enum nn_dtype {
    NN_F32 = 0, NN_I64 = 1, NN_U8 = 2,
    NN_F64 = 3, NN_I32 = 4, NN_I16 = 5, NN_I8 = 6, NN_U16 = 7, NN_U32 = 8, NN_U64 = 9, NN_BOOL = 10
} nn_dtype;

typedef struct nn_array {
    char name[64];          /* state_dict name, e.g. "0.weight" or "weight" */
    nn_dtype dtype;
    int rank;               /* 0 for a scalar */
    int64_t dims[NN_MAX_RANK];
    void *data;             /* not owned unless the function says so */
} nn_array;

size_t nn_dtype_size(nn_dtype dtype);
/* numpy's name: "float32", "int64", "uint8", ... */
const char *nn_dtype_name(nn_dtype dtype);
/* One value of dtype as float32, from its bits in the low nn_dtype_size
 * bytes of raw (the readers load them in the file's byte order); float64
 * beyond float32's range becomes an infinity, uint8 is not scaled. */
float nn_dtype_bits_to_float(nn_dtype dtype, uint64_t raw);
size_t nn_array_count(const nn_array *array);   /* product of dims, 1 for rank 0 */
size_t nn_array_bytes(const nn_array *array);

/* Frees each array's data and then the array list itself (for lists whose
 * arrays own their data, as readers return them). */
void nn_arrays_free(nn_array *arrays, size_t count);

#endif
