/* Argument tables: how a layer, optimiser or scheduler declares the keyword
 * arguments it takes, their types and torch's defaults. The config parser is
 * the only code that reads YAML; it checks each given argument against the
 * table (unknown name, wrong type) and hands the kind an array of values
 * indexed like the table, defaults filled in. */
#ifndef NNSEQ_ARGS_H
#define NNSEQ_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#define NN_MAX_ARGS 12         /* arguments of one kind */
#define NN_ARG_MAX_VALUES 16   /* numbers in one list argument */

typedef enum nn_arg_type {
    NN_ARG_INT,        /* 3 */
    NN_ARG_FLOAT,      /* 0.5 or 1 */
    NN_ARG_BOOL,       /* true / false */
    NN_ARG_INT_PAIR,   /* 3 or [3, 5]: an int means [3, 3] */
    NN_ARG_FLOAT_PAIR, /* [0.9, 0.999] */
    NN_ARG_INT_LIST,   /* [30, 80]: 0 to NN_ARG_MAX_VALUES ints */
    NN_ARG_CHOICE      /* one of the spec's choices, a string: mode: bilinear */
} nn_arg_type;

enum nn_arg_flags {
    NN_ARG_REQUIRED = 1, /* must be given */
    NN_ARG_OPTIONAL = 2, /* may be left out with no fixed default: the kind decides
                            (in_features follows from the input, stride from kernel_size) */
    NN_ARG_NULLABLE = 4, /* null (Python's None) is a value: BatchNorm's momentum, Softmax's dim */
    NN_ARG_SCALAR = 8    /* INT_LIST and FLOAT_PAIR: one number is accepted too (count 1,
                            is_list false): ZeroPad2d(2), Upsample(scale_factor=2) */
};

typedef struct nn_arg_spec {
    const char *name;
    nn_arg_type type;
    unsigned flags;
    double default_value[2]; /* used when neither flag is set; pairs use both; a CHOICE's
                                default is the index of its choice */
    /* NULL-terminated strings. NN_ARG_CHOICE: the values it takes. A number
     * type: strings it takes instead of a number (Conv2d's padding 'same'
     * and 'valid'). NULL: none. */
    const char *const *choices;
} nn_arg_spec;

typedef struct nn_arg_value {
    bool given;       /* false: the default (or nothing, for NN_ARG_OPTIONAL) */
    bool is_list;     /* given as a YAML sequence ("[2, 2]"), which PyTorch prints as a tuple */
    bool is_integer;  /* given as an integer scalar, which Python prints without ".0" */
    bool is_null;     /* given as null (NN_ARG_NULLABLE only) */
    int choice;       /* 1 + the index in spec.choices of the string given (or of a CHOICE's
                         default); 0: a number */
    int count;        /* numbers in value: 1 for scalars, 2 for pairs, n for lists */
    double value[NN_ARG_MAX_VALUES];
} nn_arg_value;

/* Index of name in specs[0..count), or -1. */
int nn_arg_find(const nn_arg_spec *specs, int count, const char *name);

/* The string given for a CHOICE argument or instead of a number: its
 * choice, or NULL when the value is a number (or null). */
const char *nn_arg_choice(const nn_arg_spec *spec, const nn_arg_value *value);

/* Python's repr of a value as torch prints it in a module's repr: 3, (3, 3),
 * 0.5, True, None, 'same'. Pairs print as tuples when given as lists or when
 * their two numbers differ, else as one number (torch keeps what it was
 * given: Conv2d(kernel_size=3) prints (3, 3); callers that need that pass
 * as_tuple). Returns what snprintf returns. */
int nn_arg_format_python(char *buffer, size_t size, const nn_arg_spec *spec, const nn_arg_value *value,
                         bool as_tuple);

/* Fills values[i] with spec i's default (given = false). */
void nn_arg_defaults(nn_arg_value *values, const nn_arg_spec *specs, int count);

/* Python's repr() of a float as PyTorch prints it: 0.2, 1e-05, 0.001, 1.0;
 * with is_integer, an int ("1"). Returns what snprintf returns. */
int nn_format_python_float(char *buffer, size_t size, double value, bool is_integer);

#endif
