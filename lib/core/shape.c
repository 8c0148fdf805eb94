#include "core/shape.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t nn_shape_size(nn_shape shape) {
    size_t n = 1;
    for (int i = 0; i < shape.rank; i++) n *= (size_t)shape.dims[i];
    return n;
}

int nn_shape_format(nn_shape shape, char *buffer, size_t size) {
    switch (shape.rank) {
    case 1: return snprintf(buffer, size, "(%d,)", shape.dims[0]);
    case 2: return snprintf(buffer, size, "(%d, %d)", shape.dims[0], shape.dims[1]);
    default: return snprintf(buffer, size, "(%d, %d, %d)", shape.dims[0], shape.dims[1], shape.dims[2]);
    }
}

int nn_shape_equal(nn_shape a, nn_shape b) {
    if (a.rank != b.rank) return 0;
    for (int i = 0; i < a.rank; i++)
        if (a.dims[i] != b.dims[i]) return 0;
    return 1;
}

size_t nn_dtype_size(nn_dtype dtype) {
    switch (dtype) {
    case NN_I64: case NN_F64: case NN_U64: return 8;
    case NN_U8: case NN_I8: case NN_BOOL: return 1;
    case NN_I16: case NN_U16: return 2;
    default: return 4;
    }
}

const char *nn_dtype_name(nn_dtype dtype) {
    static const char *const names[] = {"float32", "int64", "uint8", "float64", "int32", "int16",
                                        "int8", "uint16", "uint32", "uint64", "bool"};
    return (unsigned)dtype < sizeof names / sizeof names[0] ? names[dtype] : "unknown";
}

/* C leaves a double outside float's range undefined when converted: such
 * values become infinities, as IEEE rounding would make them. */
static float narrow(double value) {
    if (value > FLT_MAX) return INFINITY;
    if (value < -FLT_MAX) return -INFINITY;
    return (float)value;
}

float nn_dtype_bits_to_float(nn_dtype dtype, uint64_t raw) {
    float f32;
    double f64;
    uint32_t bits;
    switch (dtype) {
    case NN_F32:
        bits = (uint32_t)raw;
        memcpy(&f32, &bits, sizeof f32);
        return f32;
    case NN_F64:
        memcpy(&f64, &raw, sizeof f64);
        return narrow(f64);
    case NN_I8: return (float)(int8_t)(uint8_t)raw;
    case NN_I16: return (float)(int16_t)(uint16_t)raw;
    case NN_I32: return (float)(int32_t)(uint32_t)raw;
    case NN_I64: return (float)(int64_t)raw;
    case NN_BOOL: return raw != 0;
    case NN_U8: case NN_U16: case NN_U32: case NN_U64: break;
    }
    return (float)raw;
}

size_t nn_array_count(const nn_array *array) {
    size_t n = 1;
    for (int i = 0; i < array->rank; i++) n *= (size_t)array->dims[i];
    return n;
}

size_t nn_array_bytes(const nn_array *array) { return nn_array_count(array) * nn_dtype_size(array->dtype); }

void nn_arrays_free(nn_array *arrays, size_t count) {
    if (!arrays) return;
    for (size_t i = 0; i < count; i++) free(arrays[i].data);
    free(arrays);
}
