/* numpy's .npy header and data (numpy/lib/format.py): the one parser that
 * both the .npz reader and the .npy data reader use. The header is a
 * Python dict literal, parsed here by a small recursive reader that accepts
 * what numpy's own writer and Python's repr produce (either quote, spaces
 * anywhere, a trailing comma, Python 2's "L" suffix) and nothing that would
 * need Python to evaluate. */
#include "io/npy_format.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char npy_magic[6] = "\x93NUMPY";

enum {
    PREFIX_V1 = 10, /* magic (6), version (2), u16 header length */
    PREFIX_V2 = 12, /* ... u32 header length */
};

static const struct npy_type {
    char kind;      /* numpy's kind letter: f, u, i, b */
    int size;
    nn_dtype dtype;
} npy_types[] = {
    {'f', 4, NN_F32}, {'f', 8, NN_F64}, {'u', 1, NN_U8},  {'i', 1, NN_I8},  {'i', 2, NN_I16}, {'u', 2, NN_U16},
    {'i', 4, NN_I32}, {'u', 4, NN_U32}, {'i', 8, NN_I64}, {'u', 8, NN_U64}, {'b', 1, NN_BOOL},
};

#define NPY_ACCEPTED                                                                                        \
    "'<f4' (float32), '<f8' (float64), '|u1' (uint8), '|i1' (int8), '<i2' (int16), '<u2' (uint16), '<i4' " \
    "(int32), '<u4' (uint32), '<i8' (int64), '<u8' (uint64), '|b1' (bool)"

int npy_parse_prefix(const unsigned char *bytes, size_t size, size_t *prefix_size, uint64_t *text_size,
                     nn_error *err) {
    if (size < sizeof npy_magic || memcmp(bytes, npy_magic, sizeof npy_magic) != 0)
        return nn_error_set(err, NN_ERR_INPUT, "not a .npy array (no \\x93NUMPY magic)");
    if (size < 8) return nn_error_set(err, NN_ERR_INPUT, "truncated .npy header (no format version)");
    int major = bytes[6], minor = bytes[7];
    if (major != 1 && major != 2 && major != 3)
        return nn_error_set(err, NN_ERR_INPUT, "unsupported .npy format version %d.%d (expected 1.0, 2.0 or 3.0)",
                            major, minor);
    *prefix_size = major == 1 ? PREFIX_V1 : PREFIX_V2;
    if (size < *prefix_size)
        return nn_error_set(err, NN_ERR_INPUT, "truncated .npy header: %zu bytes, expected at least %zu", size,
                            *prefix_size);
    const unsigned char *length = bytes + 8;
    *text_size = (uint64_t)length[0] | (uint64_t)length[1] << 8;
    if (major != 1) *text_size |= (uint64_t)length[2] << 16 | (uint64_t)length[3] << 24;
    return 0;
}

/* ------------------------------------------------------- the header dict */

/* A position in the header text. */
typedef struct text_cursor {
    const char *at, *end;
} text_cursor;

static void skip_space(text_cursor *text) {
    while (text->at < text->end && (*text->at == ' ' || *text->at == '\t' || *text->at == '\n' || *text->at == '\r'))
        text->at++;
}

static int accept_char(text_cursor *text, char expected) {
    skip_space(text);
    if (text->at < text->end && *text->at == expected) {
        text->at++;
        return 1;
    }
    return 0;
}

static int header_error(nn_error *err, const text_cursor *text, const char *expected) {
    int remaining = (int)(text->end - text->at);
    return nn_error_set(err, NN_ERR_INPUT, "bad .npy header: expected %s at \"%.*s\"", expected,
                        remaining < 24 ? remaining : 24, text->at);
}

/* A quoted Python string without escapes (all that dtype strings and keys
 * need). */
static int parse_string(text_cursor *text, char *out, size_t size, nn_error *err) {
    skip_space(text);
    if (text->at >= text->end || (*text->at != '\'' && *text->at != '"')) return header_error(err, text, "a string");
    char quote = *text->at;
    const char *start = text->at + 1, *stop = start;
    while (stop < text->end && *stop != quote && *stop != '\\') stop++;
    if (stop >= text->end || *stop != quote) return header_error(err, text, "a simple quoted string");
    if ((size_t)(stop - start) >= size) return header_error(err, text, "a shorter string");
    memcpy(out, start, (size_t)(stop - start));
    out[stop - start] = '\0';
    text->at = stop + 1;
    return 0;
}

static int parse_bool(text_cursor *text, int *value, nn_error *err) {
    skip_space(text);
    size_t remaining = (size_t)(text->end - text->at);
    if (remaining >= 4 && memcmp(text->at, "True", 4) == 0) {
        *value = 1;
        text->at += 4;
    } else if (remaining >= 5 && memcmp(text->at, "False", 5) == 0) {
        *value = 0;
        text->at += 5;
    } else {
        return header_error(err, text, "True or False");
    }
    return 0;
}

static int parse_dimension(text_cursor *text, int64_t *value, nn_error *err) {
    skip_space(text);
    if (text->at >= text->end || *text->at < '0' || *text->at > '9') return header_error(err, text, "a dimension");
    int64_t result = 0;
    while (text->at < text->end && *text->at >= '0' && *text->at <= '9') {
        int digit = *text->at - '0';
        if (result > (INT64_MAX - digit) / 10) return header_error(err, text, "a smaller dimension");
        result = result * 10 + digit;
        text->at++;
    }
    if (text->at < text->end && *text->at == 'L') text->at++; /* Python 2's long suffix */
    *value = result;
    return 0;
}

/* A tuple of ints; "(5)" is an int in Python, not a tuple, so numpy rejects
 * it and so do we. */
static int parse_shape(text_cursor *text, npy_header *header, nn_error *err) {
    if (!accept_char(text, '(')) return header_error(err, text, "a shape tuple");
    header->rank = 0;
    if (accept_char(text, ')')) return 0;
    for (;;) {
        if (header->rank == NPY_MAX_DIMS)
            return nn_error_set(err, NN_ERR_INPUT, "bad .npy header: shape has more than %d dimensions",
                                NPY_MAX_DIMS);
        if (parse_dimension(text, &header->dims[header->rank++], err)) return -1;
        int comma = accept_char(text, ',');
        if (accept_char(text, ')')) {
            if (header->rank == 1 && !comma) return header_error(err, text, "\",)\" ending a 1-d shape");
            return 0;
        }
        if (!comma) return header_error(err, text, "',' or ')' in the shape");
    }
}

typedef struct header_fields {
    int fortran_order;
    int seen[3]; /* descr, fortran_order, shape */
} header_fields;

static const char *const header_keys[] = {"descr", "fortran_order", "shape"};

static int parse_header_value(text_cursor *text, const char *key, npy_header *header, header_fields *fields,
                              nn_error *err) {
    int index = -1;
    for (int i = 0; i < 3; i++)
        if (strcmp(key, header_keys[i]) == 0) index = i;
    if (index < 0)
        return nn_error_set(err, NN_ERR_INPUT,
                            "bad .npy header: unknown key '%s' (expected 'descr', 'fortran_order', 'shape')", key);
    if (fields->seen[index]++) return nn_error_set(err, NN_ERR_INPUT, "bad .npy header: key '%s' given twice", key);
    if (index == 0) {
        if (parse_string(text, header->descr, sizeof header->descr, err))
            return nn_error_prefix(err, "descr must be a simple dtype string (structured dtypes are not supported)");
        return 0;
    }
    if (index == 1) return parse_bool(text, &fields->fortran_order, err);
    return parse_shape(text, header, err);
}

static int parse_dict(const char *start, size_t length, npy_header *header, header_fields *fields, nn_error *err) {
    text_cursor text = {start, start + length};
    if (!accept_char(&text, '{')) return header_error(err, &text, "'{'");
    int closed = accept_char(&text, '}');
    while (!closed) {
        char key[32];
        if (parse_string(&text, key, sizeof key, err)) return -1;
        if (!accept_char(&text, ':')) return header_error(err, &text, "':'");
        if (parse_header_value(&text, key, header, fields, err)) return -1;
        int comma = accept_char(&text, ',');
        closed = accept_char(&text, '}');
        if (!comma && !closed) return header_error(err, &text, "',' or '}'");
    }
    skip_space(&text);
    if (text.at != text.end) return header_error(err, &text, "only spaces after the header dict");
    for (int i = 0; i < 3; i++)
        if (!fields->seen[i]) return nn_error_set(err, NN_ERR_INPUT, "bad .npy header: no '%s' key", header_keys[i]);
    return 0;
}

/* ------------------------------------------------------ what it describes */

/* "<f4", "|u1": a byte-order mark, numpy's kind letter, the size. A
 * byte-sized type has no byte order, so any mark will do (numpy reads
 * '<u1' as '|u1'); a wider one must be little-endian. */
static int dtype_of_descr(const char *descr, nn_dtype *dtype, nn_error *err) {
    char order = descr[0] && strchr("<>|=", descr[0]) ? descr[0] : '\0';
    const char *code = order ? descr + 1 : descr;
    for (size_t i = 0; i < sizeof npy_types / sizeof *npy_types; i++) {
        const struct npy_type *type = &npy_types[i];
        if (code[0] != type->kind || code[1] != (char)('0' + type->size) || code[2] != '\0') continue;
        if (type->size == 1 || order == '<') {
            *dtype = type->dtype;
            return 0;
        }
        if (order == '>')
            return nn_error_set(err, NN_ERR_INPUT,
                                "big-endian arrays (dtype '%s') are not supported: save it little-endian, "
                                "np.save(path, arr.astype('<%s'))",
                                descr, code);
        break;
    }
    return nn_error_set(err, NN_ERR_INPUT, "dtype '%s' is not supported; accepted: " NPY_ACCEPTED, descr);
}

/* Every partial product of the nonzero dims must fit, times the element
 * size, in a byte count: then the data size, the folded dims and a row's
 * size all fit too, even when a zero dim makes the array empty. */
static int check_shape_size(npy_header *header, nn_error *err) {
    const uint64_t limit = (uint64_t)INT64_MAX < (uint64_t)SIZE_MAX ? (uint64_t)INT64_MAX : (uint64_t)SIZE_MAX;
    uint64_t product = nn_dtype_size(header->dtype);
    int empty = 0;
    for (int i = 0; i < header->rank; i++) {
        uint64_t dim = (uint64_t)header->dims[i];
        if (dim == 0) {
            empty = 1;
            continue;
        }
        if (product > limit / dim) {
            char shape[256];
            npy_format_shape(shape, sizeof shape, header->rank, header->dims);
            return nn_error_set(err, NN_ERR_INPUT,
                                "shape %s of '%s' needs more bytes than this machine can address (the header is "
                                "damaged?)",
                                shape, header->descr);
        }
        product *= dim;
    }
    header->data_size = empty ? 0 : product;
    return 0;
}

int npy_parse_header(const char *text, size_t length, npy_header *header, nn_error *err) {
    header_fields fields = {0};
    memset(header, 0, sizeof *header);
    if (parse_dict(text, length, header, &fields, err)) return -1;
    if (dtype_of_descr(header->descr, &header->dtype, err)) return -1;
    if (fields.fortran_order)
        return nn_error_set(err, NN_ERR_INPUT,
                            "the array is in Fortran order; only C order is supported: save it as "
                            "np.save(path, np.ascontiguousarray(arr))");
    return check_shape_size(header, err);
}

void npy_fold_shape(const npy_header *header, int *rank, int64_t dims[NN_MAX_RANK]) {
    *rank = header->rank < NN_MAX_RANK ? header->rank : NN_MAX_RANK;
    for (int i = 0; i < NN_MAX_RANK; i++) dims[i] = i < header->rank ? header->dims[i] : 0;
    /* check_shape_size has bounded the product. */
    for (int i = NN_MAX_RANK; i < header->rank; i++) dims[NN_MAX_RANK - 1] *= header->dims[i];
}

void npy_format_shape(char *buffer, size_t size, int rank, const int64_t *dims) {
    size_t used = (size_t)snprintf(buffer, size, "(");
    for (int i = 0; i < rank && used < size; i++)
        used += (size_t)snprintf(buffer + used, size - used, "%s%lld", i ? ", " : "", (long long)dims[i]);
    if (used < size) snprintf(buffer + used, size - used, rank == 1 ? ",)" : ")");
}

/* ---------------------------------------------------------------- values */

static uint64_t load_le(const unsigned char *bytes, size_t size) {
    uint64_t value = 0;
    for (size_t i = size; i-- > 0;) value = value << 8 | bytes[i];
    return value;
}

void npy_to_host(void *data, nn_dtype dtype, size_t count) {
    unsigned char *bytes = data;
    size_t size = nn_dtype_size(dtype);
    if (dtype == NN_BOOL)
        for (size_t i = 0; i < count; i++) bytes[i] = bytes[i] != 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (size_t i = 0; size > 1 && i < count; i++)
        for (size_t lo = i * size, hi = lo + size - 1; lo < hi; lo++, hi--) {
            unsigned char byte = bytes[lo];
            bytes[lo] = bytes[hi];
            bytes[hi] = byte;
        }
#else
    (void)size; /* little-endian host: stored order is host order */
#endif
}

void npy_to_float(float *out, const unsigned char *bytes, nn_dtype dtype, size_t count) {
    size_t size = nn_dtype_size(dtype);
    for (size_t i = 0; i < count; i++, bytes += size) out[i] = nn_dtype_bits_to_float(dtype, load_le(bytes, size));
}
