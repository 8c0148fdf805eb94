/* Argument tables: how a layer, optimiser or scheduler declares the keyword
 * arguments it takes, their types and torch's defaults. The config parser is
 * the only code that reads YAML; it checks each given argument against the
 * table (unknown name, wrong type) and hands the kind an array of values
 * indexed like the table, defaults filled in. */
#ifndef NNSEQ_ARGS_H
#define NNSEQ_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#define NN_MAX_ARGS 8          /* arguments of one kind */
#define NN_ARG_MAX_VALUES 16   /* numbers in one list argument */

typedef enum nn_arg_type {
    NN_ARG_INT,        /* 3 */
    NN_ARG_FLOAT,      /* 0.5 or 1 */
    NN_ARG_BOOL,       /* true / false */
    NN_ARG_INT_PAIR,   /* 3 or [3, 5]: an int means [3, 3] */
    NN_ARG_FLOAT_PAIR, /* [0.9, 0.999] */
    NN_ARG_INT_LIST    /* [30, 80]: 0 to NN_ARG_MAX_VALUES ints */
} nn_arg_type;

enum nn_arg_flags {
    NN_ARG_REQUIRED = 1, /* must be given */
    NN_ARG_OPTIONAL = 2  /* may be left out with no fixed default: the kind decides
                            (in_features follows from the input, stride from kernel_size) */
};

typedef struct nn_arg_spec {
    const char *name;
    nn_arg_type type;
    unsigned flags;
    double default_value[2]; /* used when neither flag is set; pairs use both */
} nn_arg_spec;

typedef struct nn_arg_value {
    bool given;       /* false: the default (or nothing, for NN_ARG_OPTIONAL) */
    bool is_list;     /* given as a YAML sequence ("[2, 2]"), which PyTorch prints as a tuple */
    bool is_integer;  /* given as an integer scalar, which Python prints without ".0" */
    int count;        /* numbers in value: 1 for scalars, 2 for pairs, n for lists */
    double value[NN_ARG_MAX_VALUES];
} nn_arg_value;

/* Index of name in specs[0..count), or -1. */
int nn_arg_find(const nn_arg_spec *specs, int count, const char *name);

/* Fills values[i] with spec i's default (given = false). */
void nn_arg_defaults(nn_arg_value *values, const nn_arg_spec *specs, int count);

/* Python's repr() of a float as PyTorch prints it: 0.2, 1e-05, 0.001, 1.0;
 * with is_integer, an int ("1"). Returns what snprintf returns. */
int nn_format_python_float(char *buffer, size_t size, double value, bool is_integer);

#endif
