#include "core/args.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int nn_arg_find(const nn_arg_spec *specs, int count, const char *name) {
    for (int i = 0; i < count; i++)
        if (strcmp(specs[i].name, name) == 0) return i;
    return -1;
}

void nn_arg_defaults(nn_arg_value *values, const nn_arg_spec *specs, int count) {
    for (int i = 0; i < count; i++) {
        memset(&values[i], 0, sizeof values[i]);
        int pair = specs[i].type == NN_ARG_INT_PAIR || specs[i].type == NN_ARG_FLOAT_PAIR;
        values[i].count = specs[i].type == NN_ARG_INT_LIST ? 0 : pair ? 2 : 1;
        values[i].value[0] = specs[i].default_value[0];
        values[i].value[1] = pair ? specs[i].default_value[1] : 0;
        values[i].is_integer = specs[i].type == NN_ARG_INT || specs[i].type == NN_ARG_INT_PAIR;
        if (specs[i].type == NN_ARG_CHOICE) values[i].choice = (int)specs[i].default_value[0] + 1;
    }
}

const char *nn_arg_choice(const nn_arg_spec *spec, const nn_arg_value *value) {
    if (!spec->choices || value->choice <= 0 || value->is_null) return NULL;
    return spec->choices[value->choice - 1];
}

int nn_arg_format_python(char *buffer, size_t size, const nn_arg_spec *spec, const nn_arg_value *value,
                         bool as_tuple) {
    if (value->is_null) return snprintf(buffer, size, "None");
    const char *choice = nn_arg_choice(spec, value);
    if (choice) return snprintf(buffer, size, "'%s'", choice);
    if (spec->type == NN_ARG_BOOL) return snprintf(buffer, size, "%s", value->value[0] != 0 ? "True" : "False");
    bool integers = spec->type == NN_ARG_INT || spec->type == NN_ARG_INT_PAIR || spec->type == NN_ARG_INT_LIST ||
                    value->is_integer;
    bool tuple = value->is_list || as_tuple || spec->type == NN_ARG_INT_LIST ||
                 ((spec->type == NN_ARG_INT_PAIR || spec->type == NN_ARG_FLOAT_PAIR) && value->count == 2 &&
                  value->value[0] != value->value[1]);
    if (!tuple) return nn_format_python_float(buffer, size, value->value[0], integers);
    int count = spec->type == NN_ARG_INT_PAIR && !value->is_list ? 2 : value->count;
    size_t used = 0;
    int total = snprintf(buffer, size, "(");
    for (int i = 0; i < count; i++) {
        used = total < 0 ? size : (size_t)total < size ? (size_t)total : size;
        char number[40];
        nn_format_python_float(number, sizeof number, value->value[i], integers);
        total += snprintf(buffer + used, size - used, "%s%s", i ? ", " : "", number);
    }
    used = (size_t)total < size ? (size_t)total : size;
    total += snprintf(buffer + used, size - used, count == 1 ? ",)" : ")");
    return total;
}

int nn_format_python_float(char *buffer, size_t size, double value, bool is_integer) {
    /* Python's repr of the values that have no digits. */
    if (isnan(value)) return snprintf(buffer, size, "nan");
    if (isinf(value)) return snprintf(buffer, size, "%sinf", value < 0 ? "-" : "");
    if (is_integer) return snprintf(buffer, size, "%.0f", value);
    /* Python's repr is the shortest decimal that reads back as the same
     * double; exponent form when the exponent is < -4 or >= 16. */
    char digits[40];
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(digits, sizeof digits, "%.*e", precision - 1, value);
        if (strtod(digits, NULL) == value) break;
    }
    /* digits is "d.ddde[+-]XX": split mantissa and exponent. */
    char *e = strchr(digits, 'e');
    int exponent = atoi(e + 1);
    *e = '\0';
    char mantissa[40];
    size_t m = 0;
    for (const char *p = digits; *p; p++)
        if (*p != '.') mantissa[m++] = *p;
    mantissa[m] = '\0';
    int negative = mantissa[0] == '-';
    const char *d = mantissa + negative;
    int ndigits = (int)strlen(d);
    const char *sign = negative ? "-" : "";
    if (exponent < -4 || exponent >= 16) {
        if (ndigits == 1) return snprintf(buffer, size, "%s%ce%c%02d", sign, d[0], exponent < 0 ? '-' : '+', abs(exponent));
        return snprintf(buffer, size, "%s%c.%se%c%02d", sign, d[0], d + 1, exponent < 0 ? '-' : '+', abs(exponent));
    }
    char zeros[24] = {0};
    if (exponent < 0) {
        memset(zeros, '0', (size_t)(-exponent - 1));
        return snprintf(buffer, size, "%s0.%s%s", sign, zeros, d);
    }
    if (exponent + 1 >= ndigits) {
        memset(zeros, '0', (size_t)(exponent + 1 - ndigits));
        return snprintf(buffer, size, "%s%s%s.0", sign, d, zeros);
    }
    return snprintf(buffer, size, "%s%.*s.%s", sign, exponent + 1, d, d + exponent + 1);
}
