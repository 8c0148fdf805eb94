/* The config schema: the tree of yaml_tree.c checked against tables of
 * fields (key, type, default, valid range) for the fixed sections, and each
 * kind's nn_arg_spec table for the arguments of layers, the optimiser and
 * the scheduler.
 *
 * torch_ref.py reads the same files with PyYAML (YAML 1.1), so a file both
 * accept must mean the same thing. Numbers, booleans and null are therefore
 * only recognised in plain (unquoted) scalars, and the forms where YAML 1.1
 * and a reader's intuition part ways (010 is octal 8, yes is true, 1_000 is
 * 1000) are refused rather than guessed. */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/suggest.h"
#include "config/yaml_tree.h"
#include "io/file_kind.h"

/* What nn_yaml_read takes (NN_YAML_MAX_BYTES): reading stops one byte
 * past it, so a wrong or endless file costs no more. */
#define MAX_CONFIG_BYTES NN_YAML_MAX_BYTES
#define MAX_NAMES 128                 /* kinds listed in one "expected one of" message */
#define STRINGIFY(x) #x
#define DIGITS_OF(x) STRINGIFY(x)

typedef nn_yaml_node node;
#define NODE_SCALAR NN_YAML_SCALAR
#define NODE_MAPPING NN_YAML_MAPPING
#define NODE_SEQUENCE NN_YAML_SEQUENCE

typedef struct parser {
    const char *path;       /* for messages */
    const char *dir;        /* relative paths written in the file resolve against it */
    nn_yaml_tree tree;      /* path and err as above */
    nn_config *cfg;
    nn_error *err;
} parser;

__attribute__((format(printf, 3, 4))) static int fail(const parser *p, const node *at, const char *format,
                                                      ...) {
    va_list ap;
    va_start(ap, format);
    nn_yaml_vfail(&p->tree, at->line, at->column, format, ap);
    va_end(ap);
    return -1;
}

static const node *first_child(const parser *p, const node *n) { return nn_yaml_first_child(&p->tree, n); }
static const node *next_sibling(const parser *p, const node *n) { return nn_yaml_next_sibling(&p->tree, n); }
static const node *next_key(const parser *p, const node *key) { return nn_yaml_next_key(&p->tree, key); }
static bool is_null(const node *n) { return nn_yaml_is_null(n); }
static const char *describe(const node *n, char *buffer, size_t size) { return nn_yaml_describe(n, buffer, size); }


/* --- Names ---------------------------------------------------------------- */

/* "a, b, c": the names an "expected one of" or "nnseq has" message lists. */
static const char *join_names(char *list, size_t size, const char *const *names, int count) {
    size_t used = 0;
    list[0] = '\0';
    for (int i = 0; i < count && used < size; i++)
        used += (size_t)snprintf(list + used, size - used, "%s%s", i ? ", " : "", names[i]);
    return list;
}

/* The message for an unknown name, the most telling first: a torch name of
 * something nnseq lacks says so plainly (ELU is not a typo of GELU); then
 * the caller's note (where the key belongs instead); then a note on Keras's
 * and torch's spellings (units is out_features); then the nearest name
 * ("unknown layer 'Relu' (did you mean 'ReLU'?)"); else the whole list.
 * names[0..shown) are listed, names[0..count) (which may add torch's
 * aliases) can be suggested. context: " in train", " for Linear", "". */
static int unknown_name_noted(const parser *p, const node *at, nn_name_kind kind, const char *what,
                              const char *context, const char *const *names, int shown, int count,
                              const char *note) {
    char list[1536];
    const char *torch = kind <= NN_NAME_SCHEDULER ? nn_unsupported_name(kind, at->text) : NULL;
    if (torch) {
        const char *dot = strrchr(torch, '.');
        const char *short_name = dot ? dot + 1 : torch;
        join_names(list, sizeof list, names, shown);
        if (!strcasecmp(short_name, at->text))
            return fail(p, at, "'%s' is a %.*s %s that nnseq does not have yet (nnseq has: %s)", at->text,
                        (int)(short_name - torch - 1), torch, what, list);
        return fail(p, at, "'%s' means %s, a %s that nnseq does not have yet (nnseq has: %s)", at->text, torch,
                    what, list);
    }
    if (!note) note = nn_name_hint(kind, at->text, names, count);
    if (note) return fail(p, at, "unknown %s '%s'%s (%s)", what, at->text, context, note);
    const char *nearest = nn_nearest_name(at->text, names, count);
    if (nearest)
        return fail(p, at, "unknown %s '%s'%s (did you mean '%s'?)", what, at->text, context, nearest);
    if (shown == 0) return fail(p, at, "unknown %s '%s'%s (expected none)", what, at->text, context);
    return fail(p, at, "unknown %s '%s'%s (expected one of: %s)", what, at->text, context,
                join_names(list, sizeof list, names, shown));
}

static int unknown_name(const parser *p, const node *at, nn_name_kind kind, const char *what, const char *context,
                        const char *const *names, int shown, int count) {
    return unknown_name_noted(p, at, kind, what, context, names, shown, count, NULL);
}

/* Checks that a mapping's key is a name and not a repeat of an earlier key. */
static int check_key(const parser *p, const node *map, const node *key, const char *context) {
    char shown[80];
    if (key->type != NODE_SCALAR || is_null(key))
        return fail(p, key, "expected a key name%s, got %s", context, describe(key, shown, sizeof shown));
    for (const node *k = first_child(p, map); k && k != key; k = next_key(p, k))
        if (!strcmp(k->text, key->text))
            return fail(p, key, "duplicate key '%s'%s (expected each key once; the first is at line %d, column %d)",
                        key->text, context, k->line, k->column);
    return 0;
}

/* The value of key in map (NULL when map is NULL or has no such key). */
static const node *lookup(const parser *p, const node *map, const char *key) {
    for (const node *k = first_child(p, map); k; k = next_key(p, k))
        if (k->type == NODE_SCALAR && !strcmp(k->text, key)) return next_sibling(p, k);
    return NULL;
}

/* --- Scalars --------------------------------------------------------------- */

typedef enum number_form { NOT_A_NUMBER, INTEGER_FORM, FLOAT_FORM, LEADING_ZERO_FORM } number_form;

/* Decimal integers (-3, +7, 0) and floats (0.5, 1., .5, 1e-3, 2.5E+4); what
 * PyYAML reads differently (010, 0x1f, 1_000, .inf) is NOT_A_NUMBER or
 * LEADING_ZERO_FORM. */
static number_form number_form_of(const char *s) {
    static const char digits[] = "0123456789";
    if (*s == '+' || *s == '-') s++;
    size_t whole = strspn(s, digits);
    const char *rest = s + whole;
    if (whole > 0 && !*rest) return whole > 1 && s[0] == '0' ? LEADING_ZERO_FORM : INTEGER_FORM;
    size_t fraction = 0;
    if (*rest == '.') {
        fraction = strspn(rest + 1, digits);
        rest += 1 + fraction;
    }
    if (whole + fraction == 0) return NOT_A_NUMBER;
    if (*rest == 'e' || *rest == 'E') {
        rest++;
        if (*rest == '+' || *rest == '-') rest++;
        size_t exponent = strspn(rest, digits);
        if (exponent == 0) return NOT_A_NUMBER;
        rest += exponent;
    }
    return *rest ? NOT_A_NUMBER : FLOAT_FORM;
}

static number_form node_number_form(const node *n) {
    return n->type == NODE_SCALAR && n->plain ? number_form_of(n->text) : NOT_A_NUMBER;
}

static bool bool_of(const node *n, bool *value) {
    if (n->type != NODE_SCALAR || !n->plain) return false;
    const char *t = n->text;
    bool is_true = !strcmp(t, "true") || !strcmp(t, "True") || !strcmp(t, "TRUE");
    bool is_false = !strcmp(t, "false") || !strcmp(t, "False") || !strcmp(t, "FALSE");
    if (is_true || is_false) *value = is_true;
    return is_true || is_false;
}

/* "expected an integer for batch_size, got '6.5'", with a hint for the
 * near misses. */
static int type_error(const parser *p, const node *n, const char *expected, const char *what) {
    char shown[80];
    const char *hint = "";
    if (node_number_form(n) == LEADING_ZERO_FORM)
        hint = " (leading zeros are not allowed: YAML 1.1 reads 010 as the octal 8)";
    else if (n->type == NODE_SCALAR && !n->plain &&
             (number_form_of(n->text) != NOT_A_NUMBER || !strcasecmp(n->text, "true") ||
              !strcasecmp(n->text, "false")))
        hint = " (write numbers and true/false without quotes)";
    return fail(p, n, "expected %s for %s, got %s%s", expected, what, describe(n, shown, sizeof shown), hint);
}

/* A valid range of numbers; infinite bounds for none. */
typedef struct range {
    double min, max;
    bool min_open, max_open;   /* min < v rather than min <= v */
} range;

#define ANY_NUMBER {-INFINITY, INFINITY, false, false}
#define INT_RANGE(low) {(low), INT_MAX, false, false}

/* Writes the bound that v breaks (">= 1", "< 1") and returns true, or false
 * when v is in range. */
static bool out_of_range(const range *r, double v, char *bound, size_t size) {
    if (r->min_open ? !(v > r->min) : !(v >= r->min)) {
        snprintf(bound, size, "%s %.15g", r->min_open ? ">" : ">=", r->min);
        return true;
    }
    if (r->max_open ? !(v < r->max) : !(v <= r->max)) {
        snprintf(bound, size, "%s %.15g", r->max_open ? "<" : "<=", r->max);
        return true;
    }
    return false;
}

static int get_integer(const parser *p, const node *n, const char *what, const range *r, long long *out) {
    if (node_number_form(n) != INTEGER_FORM) return type_error(p, n, "an integer", what);
    /* strtoll saturates at LLONG_MIN/MAX, outside every range used here. */
    long long value = strtoll(n->text, NULL, 10);
    char bound[64];
    if (out_of_range(r, (double)value, bound, sizeof bound))
        return fail(p, n, "expected an integer %s for %s, got '%s'", bound, what, n->text);
    *out = value;
    return 0;
}

/* A float or an integer; is_integer (may be NULL) says which was written. */
static int get_number(const parser *p, const node *n, const char *what, const range *r, double *out,
                      bool *is_integer) {
    number_form form = node_number_form(n);
    if (form != INTEGER_FORM && form != FLOAT_FORM) return type_error(p, n, "a number", what);
    double value = strtod(n->text, NULL);
    if (!isfinite(value)) return fail(p, n, "expected a finite number for %s, got '%s'", what, n->text);
    char bound[64];
    if (out_of_range(r, value, bound, sizeof bound))
        return fail(p, n, "expected a number %s for %s, got '%s'", bound, what, n->text);
    *out = value;
    if (is_integer) *is_integer = form == INTEGER_FORM;
    return 0;
}

/* yes, no, on and off are booleans to PyYAML but not to YAML 1.2 readers:
 * refused, with a hint. */
static int get_bool(const parser *p, const node *n, const char *what, bool *out) {
    if (bool_of(n, out)) return 0;
    const char *t = n->type == NODE_SCALAR && n->plain ? n->text : "";
    if (!strcasecmp(t, "yes") || !strcasecmp(t, "no") || !strcasecmp(t, "on") || !strcasecmp(t, "off"))
        return fail(p, n, "expected true or false for %s, got '%s' (write true or false)", what, t);
    return type_error(p, n, "true or false", what);
}

/* A scalar that names something: not null, not a mapping or list. */
static int require_text(const parser *p, const node *n, const char *expected, const char *what) {
    if (n->type != NODE_SCALAR || is_null(n) || !*n->text) return type_error(p, n, expected, what);
    return 0;
}

static char *join_path(const char *dir, const char *path) {
    if (path[0] == '/' || !dir || !*dir || !strcmp(dir, ".")) return strdup(path);
    size_t dir_length = strlen(dir);
    bool slash = dir[dir_length - 1] == '/';
    size_t size = dir_length + strlen(path) + 2;
    char *joined = malloc(size);
    if (joined) snprintf(joined, size, "%s%s%s", dir, slash ? "" : "/", path);
    return joined;
}

static int get_path(const parser *p, const node *n, const char *what, char **out) {
    if (require_text(p, n, "a file path", what)) return -1;
    *out = join_path(p->dir, n->text);
    return *out ? 0 : nn_error_oom(p->err, "a path");
}

/* --- Arguments of layers, optimisers and schedulers ---------------------- */

static const char *arg_type_text(nn_arg_type type) {
    switch (type) {
    case NN_ARG_INT: return "an integer";
    case NN_ARG_FLOAT: return "a number";
    case NN_ARG_BOOL: return "true or false";
    case NN_ARG_INT_PAIR: return "an integer or a list of 2 integers";
    case NN_ARG_FLOAT_PAIR: return "a list of 2 numbers";
    case NN_ARG_INT_LIST: return "a list of up to " DIGITS_OF(NN_ARG_MAX_VALUES) " integers";
    case NN_ARG_CHOICE: return "one of";
    }
    return "a value";
}

/* What an argument takes, for messages: "an integer or a list of 2
 * integers, or one of 'same', 'valid'", "a number, or null". */
static const char *arg_expected(const nn_arg_spec *spec, char *buffer, size_t size) {
    size_t used = 0;
    const char *base = arg_type_text(spec->type);
    if (spec->type == NN_ARG_INT_LIST && (spec->flags & NN_ARG_SCALAR)) base = "an integer or a list of integers";
    if (spec->type == NN_ARG_FLOAT_PAIR && (spec->flags & NN_ARG_SCALAR)) base = "a number or a list of 2 numbers";
    if (spec->type != NN_ARG_CHOICE) used += (size_t)snprintf(buffer, size, "%s", base);
    if (spec->choices) {
        used += (size_t)snprintf(buffer + used, used < size ? size - used : 0, "%s", used ? ", or one of " : "one of ");
        for (int i = 0; spec->choices[i] && used < size; i++)
            used += (size_t)snprintf(buffer + used, size - used, "%s'%s'", i ? ", " : "", spec->choices[i]);
    }
    if ((spec->flags & NN_ARG_NULLABLE) && used < size) snprintf(buffer + used, size - used, ", or null");
    return buffer;
}

static int arg_type_error(const parser *p, const node *n, const nn_arg_spec *spec) {
    char expected[256];
    return type_error(p, n, arg_expected(spec, expected, sizeof expected), spec->name);
}

/* Numbers of a list argument: count items (exactly, or at most when
 * at_most), each an integer (integers) or any number. */
static int get_list(const parser *p, const node *n, const nn_arg_spec *spec, int count, bool at_most,
                    bool integers, nn_arg_value *value) {
    if (n->type != NODE_SEQUENCE || (at_most ? n->child_count > count : n->child_count != count))
        return arg_type_error(p, n, spec);
    static const range any = ANY_NUMBER, int_range = {INT_MIN, INT_MAX, false, false};
    value->is_integer = true;
    int i = 0;
    for (const node *item = first_child(p, n); item; item = next_sibling(p, item), i++) {
        char what[80];
        snprintf(what, sizeof what, "%s[%d]", spec->name, i);
        bool is_integer = true;
        long long whole;
        if (integers ? get_integer(p, item, what, &int_range, &whole)
                     : get_number(p, item, what, &any, &value->value[i], &is_integer))
            return -1;
        if (integers) value->value[i] = (double)whole;
        value->is_integer = value->is_integer && is_integer;
    }
    value->count = i;
    value->is_list = true;
    return 0;
}

static int get_arg(const parser *p, const node *n, const nn_arg_spec *spec, nn_arg_value *value) {
    static const range any = ANY_NUMBER, int_range = {INT_MIN, INT_MAX, false, false};
    long long whole;
    bool flag;
    value->given = true;
    value->is_null = false;
    value->choice = 0;
    if (is_null(n)) {
        if (!(spec->flags & NN_ARG_NULLABLE)) return arg_type_error(p, n, spec);
        value->is_null = true;
        return 0;
    }
    /* A string where the argument takes one: 'same', bilinear. */
    if (spec->choices && n->type == NODE_SCALAR && number_form_of(n->text) == NOT_A_NUMBER && !bool_of(n, &flag)) {
        for (int i = 0; spec->choices[i]; i++)
            if (!strcmp(n->text, spec->choices[i])) {
                value->choice = i + 1;
                if (spec->type == NN_ARG_CHOICE) value->value[0] = i;
                return 0;
            }
        return arg_type_error(p, n, spec);
    }
    if (spec->type == NN_ARG_CHOICE) return arg_type_error(p, n, spec);
    bool scalar = (spec->flags & NN_ARG_SCALAR) && n->type == NODE_SCALAR;
    switch (spec->type) {
    case NN_ARG_INT:
        if (get_integer(p, n, spec->name, &int_range, &whole)) return -1;
        value->value[0] = (double)whole;
        return 0;
    case NN_ARG_FLOAT:
        return get_number(p, n, spec->name, &any, &value->value[0], &value->is_integer);
    case NN_ARG_BOOL:
        if (get_bool(p, n, spec->name, &flag)) return -1;
        value->value[0] = flag;
        return 0;
    case NN_ARG_INT_PAIR:
        if (n->type == NODE_SEQUENCE) return get_list(p, n, spec, 2, false, true, value);
        if (node_number_form(n) != INTEGER_FORM) return arg_type_error(p, n, spec);
        if (get_integer(p, n, spec->name, &int_range, &whole)) return -1;
        value->value[0] = value->value[1] = (double)whole;
        value->is_list = false;
        value->count = 2;
        return 0;
    case NN_ARG_FLOAT_PAIR:
        if (scalar) {
            value->is_list = false;
            value->count = 1;
            if (get_number(p, n, spec->name, &any, &value->value[0], &value->is_integer)) return -1;
            value->value[1] = value->value[0];
            return 0;
        }
        return get_list(p, n, spec, 2, false, false, value);
    case NN_ARG_INT_LIST:
        if (scalar) {
            if (get_integer(p, n, spec->name, &int_range, &whole)) return -1;
            value->is_list = false;
            value->count = 1;
            value->value[0] = (double)whole;
            return 0;
        }
        return get_list(p, n, spec, NN_ARG_MAX_VALUES, true, true, value);
    case NN_ARG_CHOICE:
        break;
    }
    return 0;
}

typedef struct section section;

/* Where else in a config key goes ("did you mean train.epochs?"), leaving
 * out the section skip and the paths starting with skip_prefix; NULL when
 * nowhere. Defined with the section tables below. */
static const char *elsewhere_note(const char *key, const section *skip, const char *skip_prefix, char *buffer,
                                  size_t size);

/* Names compare ignoring case and underscores: Keras's leaky_relu is
 * LeakyReLU. */
static bool same_loose_name(const char *a, const char *b) {
    for (;; a++, b++) {
        while (*a == '_') a++;
        while (*b == '_') b++;
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return false;
        if (!*a) return true;
    }
}

/* Keras's activation: argument, answered with the layer to write when its
 * value names one (activation: relu is "- ReLU"); NULL to use the general
 * note. */
static const char *activation_note(const parser *p, const node *key, char *buffer, size_t size) {
    const node *value = next_sibling(p, key);
    if (strcmp(key->text, "activation") || !value || value->type != NODE_SCALAR || is_null(value)) return NULL;
    if (!strcasecmp(value->text, "linear")) return "Keras's activation 'linear' means none: leave it out";
    int count;
    const nn_layer_kind *const *kinds = nn_layer_kind_list(&count);
    for (int i = 0; i < count; i++)
        if (same_loose_name(value->text, kinds[i]->name)) {
            snprintf(buffer, size, "write the activation as a separate layer after it: - %s", kinds[i]->name);
            return buffer;
        }
    return NULL;
}

/* Fills values (indexed like specs) from the mapping args (NULL or null: no
 * arguments). owner names whose arguments they are ("Linear", "optimizer
 * adam") and kind what they are arguments of; reserved (NULL-terminated,
 * or NULL) are keys of the mapping that are not arguments ("name"); a
 * missing required argument is reported at missing_at. */
static int parse_args(const parser *p, const node *args, const node *missing_at, const char *owner,
                      nn_name_kind kind, const nn_arg_spec *specs, int count, nn_arg_value *values,
                      const char *const *reserved) {
    if (count > NN_MAX_ARGS)
        return nn_error_set(p->err, NN_ERR_RUNTIME, "%s declares %d arguments, more than NN_MAX_ARGS", owner,
                            count);
    nn_arg_defaults(values, specs, count);
    char context[96];
    snprintf(context, sizeof context, " for %s", owner);
    if (args && !is_null(args)) {
        char shown[80];
        if (args->type != NODE_MAPPING)
            return fail(p, args, "expected a mapping of arguments for %s%s%s%s, got %s", owner,
                        count ? " (such as {" : "", count ? specs[0].name : "", count ? ": ...})" : "",
                        describe(args, shown, sizeof shown));
        const char *names[NN_MAX_ARGS + 4];
        int reserved_count = 0;
        for (int i = 0; i < count; i++) names[i] = specs[i].name;
        while (reserved && reserved[reserved_count] && reserved_count < 4) {
            names[count + reserved_count] = reserved[reserved_count];
            reserved_count++;
        }
        for (const node *key = first_child(p, args); key; key = next_key(p, key)) {
            if (check_key(p, args, key, context)) return -1;
            bool is_reserved = false;
            for (int i = 0; i < reserved_count; i++) is_reserved = is_reserved || !strcmp(key->text, reserved[i]);
            if (is_reserved) continue;
            int index = nn_arg_find(specs, count, key->text);
            if (index < 0) {
                /* An optimiser's or scheduler's argument may belong elsewhere
                 * (epochs); a layer's arguments are too unlike the sections'
                 * keys for that to help, but Keras's activation is common. */
                char note[160];
                const char *where = NULL;
                const char *own = kind == NN_NAME_OPTIMIZER_ARG ? "optimizer." : "scheduler.";
                if (kind == NN_NAME_LAYER_ARG)
                    where = activation_note(p, key, note, sizeof note);
                else
                    where = elsewhere_note(key->text, NULL, own, note, sizeof note);
                int listed = count + reserved_count;
                return unknown_name_noted(p, key, kind, "argument", context, names, listed, listed, where);
            }
            if (get_arg(p, next_sibling(p, key), &specs[index], &values[index])) return -1;
        }
    }
    for (int i = 0; i < count; i++)
        if ((specs[i].flags & NN_ARG_REQUIRED) && !values[i].given) {
            char expected[256];
            return fail(p, missing_at, "missing argument '%s' for %s (expected %s)", specs[i].name, owner,
                        arg_expected(&specs[i], expected, sizeof expected));
        }
    return 0;
}

/* --- Layers ---------------------------------------------------------------- */

/* An unknown name of a registry's kind: names_fn is the registry's
 * NAME_names (core/registry.h), listing nnseq's names and suggesting
 * torch's aliases too. */
#define UNKNOWN_KIND(p, at, name_kind, what, names_fn)                                            \
    do {                                                                                          \
        const char *names_[MAX_NAMES];                                                            \
        int shown_, total_ = names_fn(names_, MAX_NAMES, &shown_);                                \
        return unknown_name(p, at, name_kind, what, "", names_, shown_, total_);                 \
    } while (0)

static int unknown_layer(const parser *p, const node *at) {
    UNKNOWN_KIND(p, at, NN_NAME_LAYER, "layer", nn_layer_kind_names);
}

/* An item of model.layers: "ReLU" or {Linear: {out_features: 10}}. */
static int parse_layer(const parser *p, const node *item, nn_layer_spec *layer) {
    static const char expected[] = "a layer: a name such as ReLU or {Name: {arguments}}";
    char shown[80];
    layer->line = item->line;
    layer->column = item->column;
    const node *name = item, *args = NULL;
    if (item->type == NODE_SEQUENCE || (item->type == NODE_MAPPING && item->child_count == 0))
        return fail(p, item, "expected %s, got %s", expected, describe(item, shown, sizeof shown));
    if (item->type == NODE_MAPPING) {
        name = first_child(p, item);
        args = next_sibling(p, name);
        const node *second = next_sibling(p, args);
        if (second)
            return fail(p, second,
                        "a layer item has one key, the layer's name, but '%s' follows '%s' (expected the "
                        "arguments indented under the name, or a '-' before each layer)",
                        second->type == NODE_SCALAR ? second->text : "a value",
                        name->type == NODE_SCALAR ? name->text : "a value");
    }
    if (name->type != NODE_SCALAR || is_null(name))
        return fail(p, name, "expected %s, got %s", expected, describe(name, shown, sizeof shown));
    layer->kind = nn_layer_kind_find(name->text);
    if (!layer->kind) return unknown_layer(p, name);
    return parse_args(p, args, item, layer->kind->name, NN_NAME_LAYER_ARG, layer->kind->args, layer->kind->arg_count,
                      layer->args, NULL);
}

static int parse_layers(parser *p, const node *key, const node *value) {
    (void)key;
    if (is_null(value) || (value->type == NODE_SEQUENCE && value->child_count == 0))
        return fail(p, value, "model.layers is empty (expected a list of at least one layer)");
    if (value->type != NODE_SEQUENCE) {
        char shown[80];
        return fail(p, value, "expected a list of layers for layers (each item '- Name' or '- Name: {args}'), got %s",
                    describe(value, shown, sizeof shown));
    }
    nn_config *cfg = p->cfg;
    cfg->model.layers = calloc((size_t)value->child_count, sizeof *cfg->model.layers);
    if (!cfg->model.layers) return nn_error_oom(p->err, "the config's layers");
    for (const node *item = first_child(p, value); item; item = next_sibling(p, item))
        if (parse_layer(p, item, &cfg->model.layers[cfg->model.layer_count++])) return -1;
    return 0;
}

static int parse_input_shape(parser *p, const node *key, const node *value) {
    (void)key;
    if (value->type != NODE_SEQUENCE || value->child_count < 1 || value->child_count > 3)
        return type_error(p, value, "[features], [channels, length] or [channels, height, width]", "input_shape");
    static const range positive = INT_RANGE(1);
    nn_shape *shape = &p->cfg->model.input_shape;
    double size = 1;
    shape->rank = 0;
    for (const node *item = first_child(p, value); item; item = next_sibling(p, item)) {
        char what[32];
        long long dim;
        snprintf(what, sizeof what, "input_shape[%d]", shape->rank);
        if (get_integer(p, item, what, &positive, &dim)) return -1;
        shape->dims[shape->rank++] = (int)dim;
        size *= (double)dim;
    }
    if (size > INT_MAX)
        return fail(p, value, "input_shape has %.0f values per sample (expected at most %d)", size, INT_MAX);
    p->cfg->model.has_input_shape = true;
    return 0;
}

/* --- Loss, optimiser, scheduler -------------------------------------------- */

static int unknown_loss(const parser *p, const node *at) { UNKNOWN_KIND(p, at, NN_NAME_LOSS, "loss", nn_loss_kind_names); }

/* A loss's list argument (weight, pos_weight): a list of numbers, one per
 * class or output (the trainer checks the count against the model), or one
 * number. */
#define MAX_LOSS_VECTOR (1 << 20)
static int parse_loss_vector(parser *p, const node *n, const char *name, nn_loss *loss) {
    /* Stored as floats: a value beyond float's range would become an
     * infinity (found by fuzz_config). */
    static const range non_negative = {0, FLT_MAX, false, false};
    int items = n->type == NODE_SEQUENCE ? n->child_count : 1;
    if (n->type == NODE_MAPPING || (n->type == NODE_SEQUENCE && items == 0) || items > MAX_LOSS_VECTOR)
        return type_error(p, n, "a list of numbers (one per class or output)", name);
    free(loss->vector);
    if (!(loss->vector = malloc((size_t)items * sizeof *loss->vector))) return nn_error_oom(p->err, "the loss weights");
    loss->vector_count = items;
    int i = 0;
    for (const node *item = n->type == NODE_SEQUENCE ? first_child(p, n) : n; item;
         item = n->type == NODE_SEQUENCE ? next_sibling(p, item) : NULL, i++) {
        char what[48];
        double v;
        snprintf(what, sizeof what, n->type == NODE_SEQUENCE ? "%s[%d]" : "%s", name, i);
        if (get_number(p, item, what, &non_negative, &v, NULL)) return -1;
        loss->vector[i] = (float)v;
    }
    return 0;
}

/* loss: NAME, or {name: NAME, args...}: nnseq's name or torch's class name
 * (CrossEntropyLoss), torch's arguments. */
static int parse_loss(parser *p, const node *key, const node *value) {
    nn_loss *loss = &p->cfg->loss;
    p->cfg->loss_line = key->line;
    p->cfg->loss_column = key->column;
    const node *map = NULL, *name = value;
    if (value->type == NODE_MAPPING) {
        map = value;
        if (!(name = lookup(p, map, "name")))
            return fail(p, map, "missing key 'name' in loss (expected {name: cross_entropy, ...arguments})");
    }
    if (require_text(p, name, "a loss name or {name: NAME, ...arguments}", "loss")) return -1;
    loss->kind = nn_loss_kind_find(name->text);
    if (!loss->kind) return unknown_loss(p, name);
    const nn_loss_kind *kind = loss->kind;
    char owner[96];
    snprintf(owner, sizeof owner, "loss %s", kind->name);
    nn_arg_defaults(loss->args, kind->args, kind->arg_count);
    if (!map) return 0;
    /* The scalar arguments through the shared table; the list argument and
     * torch's reduction here. */
    nn_arg_spec specs[NN_MAX_ARGS + 2];
    int count = 0;
    for (int i = 0; i < kind->arg_count && i < NN_MAX_ARGS; i++) specs[count++] = kind->args[i];
    for (const node *k = first_child(p, map); k; k = next_key(p, k)) {
        if (check_key(p, map, k, " for loss")) return -1;
        const node *v = next_sibling(p, k);
        if (!strcmp(k->text, "name")) continue;
        if (kind->vector_arg && !strcmp(k->text, kind->vector_arg)) {
            if (parse_loss_vector(p, v, kind->vector_arg, loss)) return -1;
            continue;
        }
        if (!strcmp(k->text, "reduction")) {
            if (v->type != NODE_SCALAR || strcmp(v->text, "mean"))
                return fail(p, v, "loss reduction '%s' is not supported (expected mean: nnseq trains on the mean "
                            "over the batch; for sum, scale the learning rate by the batch size)",
                            v->type == NODE_SCALAR ? v->text : "?");
            continue;
        }
        int index = nn_arg_find(specs, count, k->text);
        if (index < 0) {
            const char *names[NN_MAX_ARGS + 3];
            int listed = 0;
            names[listed++] = "name";
            for (int i = 0; i < count; i++) names[listed++] = specs[i].name;
            if (kind->vector_arg) names[listed++] = kind->vector_arg;
            return unknown_name(p, k, NN_NAME_KEY, "argument", " for loss", names, listed, listed);
        }
        if (get_arg(p, v, &specs[index], &loss->args[index])) return -1;
    }
    return 0;
}

static int unknown_optimizer(const parser *p, const node *at) {
    UNKNOWN_KIND(p, at, NN_NAME_OPTIMIZER, "optimizer", nn_optimizer_kind_names);
}

static int unknown_scheduler(const parser *p, const node *at) {
    UNKNOWN_KIND(p, at, NN_NAME_SCHEDULER, "scheduler", nn_scheduler_kind_names);
}

/* The mapping of a {name: KIND, args...} section, NULL when it is null. */
static int kind_mapping(const parser *p, const node *value, const char *what, const char *example,
                        const node **map) {
    char shown[80];
    *map = is_null(value) ? NULL : value;
    if (*map && value->type != NODE_MAPPING)
        return fail(p, value, "expected a mapping for %s (such as %s), got %s", what, example,
                    describe(value, shown, sizeof shown));
    return 0;
}

/* no_decay: [bias, norm]: the parameter groups a PyTorch user builds to
 * keep weight decay off biases and normalisation layers. */
static int parse_no_decay(parser *p, const node *value) {
    static const char expected[] = "a list of bias, norm";
    if (value->type != NODE_SEQUENCE) return type_error(p, value, expected, "no_decay");
    for (const node *item = first_child(p, value); item; item = next_sibling(p, item)) {
        if (require_text(p, item, expected, "no_decay")) return -1;
        if (!strcmp(item->text, "bias")) p->cfg->optimizer.no_decay_bias = true;
        else if (!strcmp(item->text, "norm")) p->cfg->optimizer.no_decay_norm = true;
        else
            return fail(p, item, "unknown no_decay group '%s' (expected bias: every layer's bias, or norm: the "
                        "parameters of BatchNorm, LayerNorm, GroupNorm and InstanceNorm layers)", item->text);
    }
    return 0;
}

static int parse_optimizer(parser *p, const node *key, const node *value) {
    const node *map, *name;
    if (kind_mapping(p, value, "optimizer", "{name: adam, lr: 0.001}", &map)) return -1;
    const nn_optimizer_kind *kind = nn_optimizer_kind_find("sgd");
    if ((name = lookup(p, map, "name"))) {
        if (require_text(p, name, "an optimizer name", "name")) return -1;
        if (!(kind = nn_optimizer_kind_find(name->text))) return unknown_optimizer(p, name);
    }
    if (!kind) return nn_error_set(p->err, NN_ERR_RUNTIME, "no sgd optimizer is registered");
    char owner[96];
    snprintf(owner, sizeof owner, "optimizer %s", kind->name);
    p->cfg->optimizer.kind = kind;
    p->cfg->optimizer.line = key->line;
    p->cfg->optimizer.column = key->column;
    static const char *const optimizer_keys[] = {"name", "no_decay", NULL};
    if (parse_args(p, map, value, owner, NN_NAME_OPTIMIZER_ARG, kind->args, kind->arg_count, p->cfg->optimizer.args,
                   optimizer_keys))
        return -1;
    const node *no_decay = map ? lookup(p, map, "no_decay") : NULL;
    if (no_decay && parse_no_decay(p, no_decay)) return -1;
    if (kind->check && kind->check(p->cfg->optimizer.args, p->err))
        return nn_error_prefix(p->err, "%s:%d:%d: %s", p->path, value->line, value->column, owner);
    return 0;
}

/* One schedule from its {name: KIND, args...} mapping, SequentialLR's
 * `schedulers:` recursively (one level: a child holds none). */
static int parse_schedule(parser *p, const node *map, const node *at, nn_schedule *schedule, bool is_child) {
    const node *name;
    if (!(name = lookup(p, map, "name"))) {
        int count;
        const nn_scheduler_kind *const *kinds = nn_scheduler_kind_list(&count);
        char list[512] = "";
        size_t used = 0;
        for (int i = 0; i < count && used < sizeof list; i++)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", kinds[i]->name);
        return fail(p, map, "missing key 'name' in scheduler (expected one of: %s)", list);
    }
    if (require_text(p, name, "a scheduler name", "name")) return -1;
    const nn_scheduler_kind *kind = nn_scheduler_kind_find(name->text);
    if (!kind) return unknown_scheduler(p, name);
    char owner[96];
    snprintf(owner, sizeof owner, "scheduler %s", kind->name);
    schedule->kind = kind;
    static const char *const plain_keys[] = {"name", NULL}, *const parent_keys[] = {"name", "schedulers", NULL};
    if (parse_args(p, map, at, owner, NN_NAME_SCHEDULER_ARG, kind->args, kind->arg_count, schedule->args,
                   kind->takes_children ? parent_keys : plain_keys))
        return -1;
    if (kind->takes_children) {
        if (is_child) return fail(p, name, "%s cannot be one of SequentialLR's schedules", kind->name);
        const node *list = lookup(p, map, "schedulers");
        char shown[80];
        if (!list)
            return fail(p, map, "missing key 'schedulers' in scheduler %s (expected a list of schedules such as "
                        "[{name: LinearLR, start_factor: 0.1, total_iters: 5}, {name: cosine, T_max: 20}])", kind->name);
        if (list->type != NODE_SEQUENCE || list->child_count < 1 || list->child_count > NN_SCHEDULE_MAX_CHILDREN)
            return fail(p, list, "expected a list of 1 to %d schedules for schedulers, got %s",
                        NN_SCHEDULE_MAX_CHILDREN, describe(list, shown, sizeof shown));
        if (!(schedule->children = calloc((size_t)list->child_count, sizeof *schedule->children)))
            return nn_error_oom(p->err, "the schedules");
        for (const node *item = first_child(p, list); item; item = next_sibling(p, item)) {
            if (item->type != NODE_MAPPING)
                return fail(p, item, "expected a schedule {name: KIND, ...arguments} in schedulers, got %s",
                            describe(item, shown, sizeof shown));
            if (parse_schedule(p, item, item, &schedule->children[schedule->child_count++], true)) return -1;
        }
    }
    if (kind->check && kind->check(schedule, p->err))
        return nn_error_prefix(p->err, "%s:%d:%d: %s", p->path, at->line, at->column, owner);
    return 0;
}

static int parse_scheduler(parser *p, const node *key, const node *value) {
    (void)key;
    const node *map;
    if (kind_mapping(p, value, "scheduler", "{name: step, step_size: 10}", &map)) return -1;
    if (!map) return 0;
    p->cfg->scheduler_line = value->line;
    p->cfg->scheduler_column = value->column;
    return parse_schedule(p, map, value, &p->cfg->scheduler, false);
}

/* --- The fixed sections: one table per mapping ---------------------------- */

typedef enum field_type {
    FIELD_INT,      /* int in range */
    FIELD_SEED,     /* uint64_t */
    FIELD_FLOAT,    /* double in range */
    FIELD_BOOL,
    FIELD_PATH,     /* char *, resolved against the config's folder */
    FIELD_SECTION,  /* a nested mapping with its own table */
    FIELD_CUSTOM    /* parsed by its own function */
} field_type;

typedef struct field {
    const char *key;
    field_type type;
    size_t offset;                 /* where in nn_config the value goes */
    double default_value;          /* numbers and booleans */
    range range;                   /* numbers */
    const section *section;        /* FIELD_SECTION */
    int (*parse)(parser *p, const node *key, const node *value);   /* FIELD_CUSTOM */
} field;

struct section {
    const char *name;              /* "train.early_stop"; "" for the top level */
    const char *example;           /* shown when a scalar or list stands where it belongs */
    const field *fields;
    int field_count;
    size_t given_offset;           /* bool in nn_config set when the section is written; NOT_FLAGGED: none */
    int (*finish)(parser *p, const node *key, const node *map);   /* checks across keys; may be NULL */
};

#define NOT_FLAGGED ((size_t)-1)
#define AT(member) offsetof(nn_config, member)
#define COUNT(array) ((int)(sizeof(array) / sizeof(array)[0]))

static int parse_name(parser *p, const node *key, const node *value) {
    (void)key;
    if (require_text(p, value, "a name", "name")) return -1;
    if (strchr(value->text, '/'))
        return fail(p, value, "name '%s' contains '/' (expected a plain name: it names runs/NAME.ckpt)",
                    value->text);
    p->cfg->name = strdup(value->text);
    return p->cfg->name ? 0 : nn_error_oom(p->err, "the config's name");
}

static int parse_format(parser *p, const node *key, const node *value) {
    (void)key;
    if (require_text(p, value, "a data format", "format")) return -1;
    static const nn_data_format formats[] = {NN_FORMAT_IDX, NN_FORMAT_CSV, NN_FORMAT_NPY};
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (!strcmp(value->text, nn_data_format_name(formats[i]))) {
            p->cfg->data.format = formats[i];
            return 0;
        }
    if (!strcasecmp(value->text, "npz")) {
        p->cfg->data.format = NN_FORMAT_NPY;   /* .npz files are read by the npy format */
        return 0;
    }
    return fail(p, value, "unsupported data format '%s' (expected idx, csv or npy)", value->text);
}

static int parse_target(parser *p, const node *key, const node *value) {
    (void)key;
    if (require_text(p, value, "labels or input", "target")) return -1;
    if (!strcmp(value->text, "labels") || !strcmp(value->text, "input")) {
        p->cfg->data.target_is_input = !strcmp(value->text, "input");
        return 0;
    }
    return fail(p, value, "unknown data.target '%s' (expected labels, or input for an autoencoder)", value->text);
}

static int parse_delimiter(parser *p, const node *key, const node *value) {
    (void)key;
    if (value->type == NODE_SCALAR && !strcmp(value->text, "whitespace")) {
        p->cfg->data.csv.delimiter = 0;
        return 0;
    }
    if (value->type != NODE_SCALAR || is_null(value) || strlen(value->text) != 1 || value->text[0] == '\n' ||
        value->text[0] == '"' || value->text[0] == '\r')
        return type_error(p, value, "one character (such as \",\", \";\" or \"\\t\") or whitespace", "delimiter");
    p->cfg->data.csv.delimiter = value->text[0];
    return 0;
}

/* features: and target: of data.csv: "0:29", 30, "species", or a list. */
static int parse_columns(parser *p, const node *value, nn_csv_columns *columns, const char *what) {
    nn_csv_columns_free(columns);
    const node *single = value->type == NODE_SCALAR ? value : NULL;
    if (value->type == NODE_SEQUENCE && value->child_count == 0)
        return fail(p, value, "%s is an empty list (expected at least one column)", what);
    for (const node *item = single ? single : first_child(p, value); item;
         item = single ? NULL : next_sibling(p, item)) {
        if (item->type != NODE_SCALAR || is_null(item) || !*item->text)
            return type_error(p, item, "a column: an index, a name, a range \"A:B\" or a list of them", what);
        nn_error inner = {0};
        if (nn_csv_columns_add(columns, item->text, &inner) != 0)
            return fail(p, item, "%s: %s", what, inner.message);
    }
    return 0;
}

static int parse_features(parser *p, const node *key, const node *value) {
    (void)key;
    return parse_columns(p, value, &p->cfg->data.csv.features, "features");
}

static int parse_target_columns(parser *p, const node *key, const node *value) {
    (void)key;
    return parse_columns(p, value, &p->cfg->data.csv.target, "target");
}

/* mean: or std: of normalize: a number or a list of numbers. */
static int parse_stat_list(parser *p, const node *n, const char *what, bool positive, double **out, int *count,
                           bool *is_list) {
    static const range any = ANY_NUMBER, above_zero = {0, INFINITY, true, false};
    const range *r = positive ? &above_zero : &any;
    int items = n->type == NODE_SEQUENCE ? n->child_count : 1;
    if (n->type == NODE_SEQUENCE && items == 0) return fail(p, n, "%s is an empty list (expected numbers)", what);
    if (n->type == NODE_MAPPING) return type_error(p, n, "a number or a list of numbers", what);
    free(*out);
    if (!(*out = malloc((size_t)items * sizeof **out))) return nn_error_oom(p->err, "the normalisation");
    *count = items;
    *is_list = n->type == NODE_SEQUENCE;
    if (!*is_list) return get_number(p, n, what, r, *out, NULL);
    int i = 0;
    for (const node *item = first_child(p, n); item; item = next_sibling(p, item), i++) {
        char name[48];
        snprintf(name, sizeof name, "%s[%d]", what, i);
        if (get_number(p, item, name, r, &(*out)[i], NULL)) return -1;
    }
    return 0;
}

static int parse_normalize(parser *p, const node *key, const node *value) {
    (void)key;
    nn_config *cfg = p->cfg;
    char shown[80];
    if (value->type == NODE_SCALAR && !is_null(value) && !strcmp(value->text, "auto")) {
        cfg->data.normalize = NN_NORMALIZE_AUTO;
        return 0;
    }
    if (value->type != NODE_MAPPING && !is_null(value))
        return fail(p, value, "expected auto or a mapping {mean: M, std: S} for normalize, got %s",
                    describe(value, shown, sizeof shown));
    const node *mean = NULL, *std = NULL;
    for (const node *k = first_child(p, value); k; k = next_key(p, k)) {
        if (check_key(p, value, k, " in data.normalize")) return -1;
        if (!strcmp(k->text, "mean")) mean = next_sibling(p, k);
        else if (!strcmp(k->text, "std")) std = next_sibling(p, k);
        else {
            static const char *const names[] = {"mean", "std"};
            return unknown_name(p, k, NN_NAME_KEY, "key", " in data.normalize", names, 2, 2);
        }
    }
    int mean_count = 1, std_count = 1;
    bool mean_list = false, std_list = false;
    free(cfg->data.mean);
    free(cfg->data.std);
    cfg->data.mean = cfg->data.std = NULL;
    if (mean) {
        if (parse_stat_list(p, mean, "mean", false, &cfg->data.mean, &mean_count, &mean_list)) return -1;
    }
    if (std) {
        if (parse_stat_list(p, std, "std", true, &cfg->data.std, &std_count, &std_list)) return -1;
    }
    int count = mean_count > std_count ? mean_count : std_count;
    if (mean_count != std_count && mean_count != 1 && std_count != 1)
        return fail(p, value, "normalize has %d means but %d stds (expected as many, or one of either)", mean_count,
                    std_count);
    /* One value of either is repeated to the other's length. */
    double *full_mean = malloc((size_t)count * sizeof *full_mean), *full_std = malloc((size_t)count * sizeof *full_std);
    if (!full_mean || !full_std) {
        free(full_mean);
        free(full_std);
        return nn_error_oom(p->err, "the normalisation");
    }
    for (int i = 0; i < count; i++) {
        full_mean[i] = cfg->data.mean ? cfg->data.mean[mean_count == 1 ? 0 : i] : 0.0;
        full_std[i] = cfg->data.std ? cfg->data.std[std_count == 1 ? 0 : i] : 1.0;
    }
    free(cfg->data.mean);
    free(cfg->data.std);
    cfg->data.mean = full_mean;
    cfg->data.std = full_std;
    cfg->data.normalize_count = count;
    cfg->data.mean_is_list = mean_list || std_list;
    cfg->data.normalize = NN_NORMALIZE_GIVEN;
    return 0;
}

/* What each format needs of a split, checked once the whole data section
 * is read (format:, target: and the splits may come in any order). */
static int check_split(const parser *p, const node *data, const char *name, const nn_data_files *files) {
    const node *at = NULL, *value = NULL;
    for (const node *k = first_child(p, data); k && !at; k = next_key(p, k))
        if (k->type == NODE_SCALAR && !strcmp(k->text, name)) at = k, value = next_sibling(p, k);
    if (!at) return 0;
    const nn_config *cfg = p->cfg;
    bool targets_needed = !cfg->data.target_is_input;
    const char *format = nn_data_format_name(cfg->data.format);
    struct { const char *key; const char *path; } given[] = {
        {"images", files->images}, {"labels", files->labels}, {"file", files->file},
        {"features", files->features}, {"targets", files->targets}};
    const char *allowed[3] = {NULL, NULL, NULL};
    switch (cfg->data.format) {
    case NN_FORMAT_IDX:
        allowed[0] = "images", allowed[1] = "labels";
        if (!files->images) return fail(p, at, "missing key 'images' in data.%s (expected {images: PATH, labels: PATH})", name);
        if (targets_needed && !files->labels)
            return fail(p, at, "missing key 'labels' in data.%s (expected {images: PATH, labels: PATH}; only "
                        "data.target: input needs no labels)", name);
        break;
    case NN_FORMAT_CSV:
        allowed[0] = "file", allowed[1] = "features", allowed[2] = "targets";
        if (files->file && (files->features || files->targets))
            return fail(p, at, "data.%s has file and features/targets (expected {file: PATH}, one file with "
                        "columns, or {features: PATH, targets: PATH})", name);
        if (!files->file && !files->features)
            return fail(p, at, "missing key 'file' in data.%s (expected {file: PATH} for a csv file with columns, "
                        "or {features: PATH, targets: PATH})", name);
        if (files->file && targets_needed && cfg->data.csv.target.count == 0)
            return fail(p, at, "data.%s is one csv file, so data.csv.target must name its target column(s) "
                        "(or data.target: input)", name);
        if (files->features && targets_needed && !files->targets)
            return fail(p, at, "missing key 'targets' in data.%s (expected {features: PATH, targets: PATH})", name);
        break;
    case NN_FORMAT_NPY:
        allowed[0] = "features", allowed[1] = "targets";
        if (!files->features)
            return fail(p, at, "missing key 'features' in data.%s (expected {features: PATH, targets: PATH}, "
                        ".npy files or .npz files of one array)", name);
        if (targets_needed && !files->targets)
            return fail(p, at, "missing key 'targets' in data.%s (expected {features: PATH, targets: PATH})", name);
        break;
    }
    for (size_t i = 0; i < sizeof given / sizeof given[0]; i++) {
        if (!given[i].path) continue;
        bool ok = false;
        for (int j = 0; j < 3; j++) ok = ok || (allowed[j] && !strcmp(allowed[j], given[i].key));
        if (!ok) {
            const node *k = NULL;
            for (const node *c = first_child(p, value); c; c = next_key(p, c))
                if (c->type == NODE_SCALAR && !strcmp(c->text, given[i].key)) k = c;
            return fail(p, k ? k : at, "data.%s.%s does not go with format %s (expected %s%s%s%s%s)", name,
                        given[i].key, format, allowed[0], allowed[1] ? ", " : "", allowed[1] ? allowed[1] : "",
                        allowed[2] ? ", " : "", allowed[2] ? allowed[2] : "");
        }
    }
    return 0;
}

static int finish_data(parser *p, const node *key, const node *map) {
    (void)key;
    nn_config *cfg = p->cfg;
    if (check_split(p, map, "train", &cfg->data.train) || check_split(p, map, "test", &cfg->data.test)) return -1;
    if (cfg->data.has_test && cfg->data.test_split > 0)
        return fail(p, lookup(p, map, "test_split"),
                    "data has both test and test_split (expected one: a test file, or a fraction of train)");
    const node *csv = lookup(p, map, "csv");
    if (csv && cfg->data.format != NN_FORMAT_CSV)
        return fail(p, csv, "data.csv is for format csv, but data.format is %s", nn_data_format_name(cfg->data.format));
    return 0;
}

static int finish_model(parser *p, const node *key, const node *map) {
    (void)map;
    p->cfg->model.line = key->line;
    if (!p->cfg->model.layers)
        return fail(p, key, "missing key 'layers' in model (expected a list of at least one layer)");
    return 0;
}

#define SPLIT_FIELDS(split)                                                            \
    {"images", FIELD_PATH, AT(data.split.images), 0, ANY_NUMBER, NULL, NULL},         \
    {"labels", FIELD_PATH, AT(data.split.labels), 0, ANY_NUMBER, NULL, NULL},         \
    {"file", FIELD_PATH, AT(data.split.file), 0, ANY_NUMBER, NULL, NULL},             \
    {"features", FIELD_PATH, AT(data.split.features), 0, ANY_NUMBER, NULL, NULL},     \
    {"targets", FIELD_PATH, AT(data.split.targets), 0, ANY_NUMBER, NULL, NULL}
static const field train_split_fields[] = {SPLIT_FIELDS(train)};
static const field test_split_fields[] = {SPLIT_FIELDS(test)};
static const field csv_fields[] = {
    {"delimiter", FIELD_CUSTOM, 0, 0, ANY_NUMBER, NULL, parse_delimiter},
    {"skip_rows", FIELD_INT, AT(data.csv.skip_rows), 0, INT_RANGE(0), NULL, NULL},
    {"header", FIELD_BOOL, AT(data.csv.header), 0, ANY_NUMBER, NULL, NULL},
    {"features", FIELD_CUSTOM, 0, 0, ANY_NUMBER, NULL, parse_features},
    {"target", FIELD_CUSTOM, 0, 0, ANY_NUMBER, NULL, parse_target_columns},
};
static const section train_split_section = {"data.train", "{images: PATH, labels: PATH} or {file: PATH}",
                                            train_split_fields, COUNT(train_split_fields), NOT_FLAGGED, NULL};
static const section test_split_section = {"data.test", "{images: PATH, labels: PATH} or {file: PATH}",
                                           test_split_fields, COUNT(test_split_fields), AT(data.has_test), NULL};
static const section csv_section = {"data.csv", "{skip_rows: 1, features: \"0:29\", target: 30}", csv_fields,
                                    COUNT(csv_fields), NOT_FLAGGED, NULL};
static const field data_fields[] = {
    {"format", FIELD_CUSTOM, 0, 0, ANY_NUMBER, NULL, parse_format},
    {"train", FIELD_SECTION, 0, 0, ANY_NUMBER, &train_split_section, NULL},
    {"test", FIELD_SECTION, 0, 0, ANY_NUMBER, &test_split_section, NULL},
    {"csv", FIELD_SECTION, 0, 0, ANY_NUMBER, &csv_section, NULL},
    {"test_split", FIELD_FLOAT, AT(data.test_split), 0, {0, 1, false, true}, NULL, NULL},
    {"val_split", FIELD_FLOAT, AT(data.val_split), 0, {0, 1, false, true}, NULL, NULL},
    {"shuffle_split", FIELD_BOOL, AT(data.shuffle_split), 0, ANY_NUMBER, NULL, NULL},
    {"target", FIELD_CUSTOM, 0, 0, ANY_NUMBER, NULL, parse_target},
    {"normalize", FIELD_CUSTOM, 0, 0, ANY_NUMBER, NULL, parse_normalize},
};
static const field model_fields[] = {
    {"input_shape", FIELD_CUSTOM, 0, 0, ANY_NUMBER, NULL, parse_input_shape},
    {"layers", FIELD_CUSTOM, 0, 0, ANY_NUMBER, NULL, parse_layers},
};
static const field early_stop_fields[] = {
    {"patience", FIELD_INT, AT(train.patience), 5, INT_RANGE(1), NULL, NULL},
    {"min_delta", FIELD_FLOAT, AT(train.min_delta), 0, {0, INFINITY, false, false}, NULL, NULL},
};
static const section early_stop_section = {"train.early_stop", "{patience: 5, min_delta: 0}", early_stop_fields,
                                           COUNT(early_stop_fields), AT(train.early_stop), NULL};
static const field train_fields[] = {
    {"epochs", FIELD_INT, AT(train.epochs), 1, INT_RANGE(1), NULL, NULL},
    {"batch_size", FIELD_INT, AT(train.batch_size), 64, INT_RANGE(1), NULL, NULL},
    {"shuffle", FIELD_BOOL, AT(train.shuffle), 1, ANY_NUMBER, NULL, NULL},
    {"log", FIELD_PATH, AT(train.log), 0, ANY_NUMBER, NULL, NULL},
    {"early_stop", FIELD_SECTION, 0, 0, ANY_NUMBER, &early_stop_section, NULL},
};
static const field checkpoint_fields[] = {
    {"path", FIELD_PATH, AT(checkpoint_path), 0, ANY_NUMBER, NULL, NULL},
};
static const section data_section = {"data", "{train: {images: PATH, labels: PATH}}", data_fields,
                                     COUNT(data_fields), NOT_FLAGGED, finish_data};
static const section model_section = {"model", "{layers: [Flatten, {Linear: {out_features: 10}}]}",
                                      model_fields, COUNT(model_fields), NOT_FLAGGED, finish_model};
static const section train_section = {"train", "{epochs: 10, batch_size: 64}", train_fields,
                                      COUNT(train_fields), NOT_FLAGGED, NULL};
static const section checkpoint_section = {"checkpoint", "{path: runs/model.ckpt}", checkpoint_fields,
                                           COUNT(checkpoint_fields), NOT_FLAGGED, NULL};
static const field top_fields[] = {
    {"name", FIELD_CUSTOM, 0, 0, ANY_NUMBER, NULL, parse_name},
    {"seed", FIELD_SEED, AT(seed), 0, ANY_NUMBER, NULL, NULL},
    {"data", FIELD_SECTION, 0, 0, ANY_NUMBER, &data_section, NULL},
    {"model", FIELD_SECTION, 0, 0, ANY_NUMBER, &model_section, NULL},
    {"loss", FIELD_CUSTOM, 0, 0, ANY_NUMBER, NULL, parse_loss},
    {"optimizer", FIELD_CUSTOM, 0, 0, ANY_NUMBER, NULL, parse_optimizer},
    {"scheduler", FIELD_CUSTOM, 0, 0, ANY_NUMBER, NULL, parse_scheduler},
    {"train", FIELD_SECTION, 0, 0, ANY_NUMBER, &train_section, NULL},
    {"checkpoint", FIELD_SECTION, 0, 0, ANY_NUMBER, &checkpoint_section, NULL},
    {"init", FIELD_PATH, AT(init), 0, ANY_NUMBER, NULL, NULL},
};
static const section top_section = {"", "{model: {layers: [...]}}", top_fields, COUNT(top_fields), NOT_FLAGGED,
                                    NULL};

static void apply_defaults(nn_config *cfg, const section *s) {
    for (int i = 0; i < s->field_count; i++) {
        const field *f = &s->fields[i];
        void *target = (char *)cfg + f->offset;
        if (f->type == FIELD_INT) *(int *)target = (int)f->default_value;
        if (f->type == FIELD_FLOAT) *(double *)target = f->default_value;
        if (f->type == FIELD_BOOL) *(bool *)target = f->default_value != 0;
        if (f->type == FIELD_SECTION) apply_defaults(cfg, f->section);
    }
}

static int get_seed(const parser *p, const node *n, uint64_t *out) {
    if (node_number_form(n) != INTEGER_FORM) return type_error(p, n, "an integer", "seed");
    errno = 0;
    unsigned long long value = strtoull(n->text, NULL, 10);
    if (n->text[0] == '-' && value != 0)
        return fail(p, n, "expected an integer >= 0 for seed, got '%s'", n->text);
    if (errno == ERANGE)
        return fail(p, n, "expected an integer <= %llu for seed, got '%s'", (unsigned long long)UINT64_MAX, n->text);
    *out = value;
    return 0;
}

static int parse_section(parser *p, const node *key, const node *value, const section *s);

/* Where a key goes: a path (train.epochs) per section field of that name
 * and per argument of an optimiser or scheduler kind, the first two, none
 * twice. */
typedef struct places {
    char path[2][96];
    int count;
} places;

static void add_place(places *found, const char *prefix, const char *key, const char *skip_prefix) {
    char path[96];
    snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", key);
    if (skip_prefix && !strncmp(path, skip_prefix, strlen(skip_prefix))) return;
    for (int i = 0; i < found->count; i++)
        if (!strcmp(found->path[i], path)) return;
    if (found->count < 2) snprintf(found->path[found->count++], sizeof found->path[0], "%s", path);
}

static void find_in_section(const section *s, const char *key, const section *skip, const char *skip_prefix,
                            places *found) {
    for (int i = 0; i < s->field_count; i++) {
        const field *f = &s->fields[i];
        if (s != skip && !strcmp(f->key, key)) add_place(found, s->name, key, skip_prefix);
        if (f->type == FIELD_SECTION) find_in_section(f->section, key, skip, skip_prefix, found);
    }
}

static const char *elsewhere_note(const char *key, const section *skip, const char *skip_prefix, char *buffer,
                                  size_t size) {
    places found = {.count = 0};
    find_in_section(&top_section, key, skip, skip_prefix, &found);
    int count;
    const nn_optimizer_kind *const *optimizers = nn_optimizer_kind_list(&count);
    for (int i = 0; i < count; i++)
        if (nn_arg_find(optimizers[i]->args, optimizers[i]->arg_count, key) >= 0)
            add_place(&found, "optimizer", key, skip_prefix);
    const nn_scheduler_kind *const *schedulers = nn_scheduler_kind_list(&count);
    for (int i = 0; i < count; i++)
        if (nn_arg_find(schedulers[i]->args, schedulers[i]->arg_count, key) >= 0)
            add_place(&found, "scheduler", key, skip_prefix);
    if (found.count == 0) return NULL;
    if (found.count == 1 && !strchr(found.path[0], '.'))
        snprintf(buffer, size, "did you mean the top-level key '%s'?", key);
    else if (found.count == 1)
        snprintf(buffer, size, "did you mean %s?", found.path[0]);
    else
        snprintf(buffer, size, "did you mean %s or %s?", found.path[0], found.path[1]);
    return buffer;
}

static int parse_field(parser *p, const node *key, const node *value, const field *f) {
    void *target = (char *)p->cfg + f->offset;
    long long whole;
    switch (f->type) {
    case FIELD_INT:
        if (get_integer(p, value, f->key, &f->range, &whole)) return -1;
        *(int *)target = (int)whole;
        return 0;
    case FIELD_SEED: return get_seed(p, value, (uint64_t *)target);
    case FIELD_FLOAT: return get_number(p, value, f->key, &f->range, (double *)target, NULL);
    case FIELD_BOOL: return get_bool(p, value, f->key, (bool *)target);
    case FIELD_PATH: return get_path(p, value, f->key, (char **)target);
    case FIELD_SECTION: return parse_section(p, key, value, f->section);
    case FIELD_CUSTOM: return f->parse(p, key, value);
    }
    return 0;
}

/* Parses a mapping against its table, key by key in the file's order so
 * that the first error reported is the first in the file. A null value
 * ("train:" with nothing after it) is an empty mapping, as torch_ref.py
 * takes it. */
static int parse_section(parser *p, const node *key, const node *value, const section *s) {
    char context[64], shown[80];
    snprintf(context, sizeof context, *s->name ? " in %s" : " at the top level", s->name);
    const node *map = is_null(value) ? NULL : value;
    if (map && map->type != NODE_MAPPING)
        return fail(p, value, "expected a mapping for %s (such as %s), got %s", s->name, s->example,
                    describe(value, shown, sizeof shown));
    if (s->given_offset != NOT_FLAGGED) *(bool *)((char *)p->cfg + s->given_offset) = true;
    const char *names[MAX_NAMES];
    for (int i = 0; i < s->field_count && i < MAX_NAMES; i++) names[i] = s->fields[i].key;
    for (const node *k = first_child(p, map); k; k = next_key(p, k)) {
        if (check_key(p, map, k, context)) return -1;
        int index = -1;
        for (int i = 0; i < s->field_count && index < 0; i++)
            if (!strcmp(names[i], k->text)) index = i;
        if (index < 0) {
            char note[160];
            return unknown_name_noted(p, k, NN_NAME_KEY, "key", context, names, s->field_count, s->field_count,
                                      elsewhere_note(k->text, s, NULL, note, sizeof note));
        }
        if (parse_field(p, k, next_sibling(p, k), &s->fields[index])) return -1;
    }
    return s->finish ? s->finish(p, key, map) : 0;
}

/* --- Putting it together --------------------------------------------------- */

static char *default_name(const char *path) {
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t length = strlen(base);
    static const char *const suffixes[] = {".yaml", ".yml"};
    for (int i = 0; i < 2; i++) {
        size_t suffix = strlen(suffixes[i]);
        if (length > suffix && !strcmp(base + length - suffix, suffixes[i])) {
            length -= suffix;
            break;
        }
    }
    return strndup(base, length);
}

static int fill_defaults_after(parser *p, const node *root) {
    nn_config *cfg = p->cfg;
    if (!cfg->model.layers)
        return fail(p, root, "missing key 'model' (expected model: with layers:, a list of at least one layer)");
    if (!cfg->name && !(cfg->name = default_name(cfg->path))) return nn_error_oom(p->err, "the config's name");
    if (!cfg->checkpoint_path) {
        size_t size = strlen(cfg->name) + sizeof "runs/.ckpt";
        if (!(cfg->checkpoint_path = malloc(size))) return nn_error_oom(p->err, "the checkpoint path");
        snprintf(cfg->checkpoint_path, size, "runs/%s.ckpt", cfg->name);
    }
    if (!cfg->loss.kind) {
        if (!(cfg->loss.kind = nn_loss_kind_find("cross_entropy")))
            return nn_error_set(p->err, NN_ERR_RUNTIME, "no cross_entropy loss is registered");
        nn_arg_defaults(cfg->loss.args, cfg->loss.kind->args, cfg->loss.kind->arg_count);
    }
    if (!cfg->optimizer.kind) {
        if (!(cfg->optimizer.kind = nn_optimizer_kind_find("sgd")))
            return nn_error_set(p->err, NN_ERR_RUNTIME, "no sgd optimizer is registered");
        nn_arg_defaults(cfg->optimizer.args, cfg->optimizer.kind->args, cfg->optimizer.kind->arg_count);
    }
    return 0;
}

static int copy_inputs(nn_config *cfg, const char *text, size_t length, const char *path, const char *dir,
                       nn_error *err) {
    cfg->path = strdup(path);
    cfg->dir = strdup(dir);
    cfg->text = malloc(length + 1);
    if (!cfg->path || !cfg->dir || !cfg->text) return nn_error_oom(err, "the config");
    if (length) memcpy(cfg->text, text, length);
    cfg->text[length] = '\0';
    cfg->text_length = length;
    return 0;
}

int nn_config_parse(nn_config *cfg, const char *text, size_t length, const char *path, const char *dir,
                    nn_error *err) {
    memset(cfg, 0, sizeof *cfg);
    if (!path) path = "<config>";
    if (!dir) dir = ".";
    /* Before the copy: a checkpoint's stored config may claim any size. */
    if (nn_yaml_check_size(path, length, err) != 0) return -1;
    if (copy_inputs(cfg, text, length, path, dir, err)) {
        nn_config_free(cfg);
        return -1;
    }
    parser p = {.path = cfg->path, .dir = cfg->dir, .tree = {.path = cfg->path, .err = err}, .cfg = cfg, .err = err};
    apply_defaults(cfg, &top_section);
    cfg->data.csv.delimiter = ',';
    const node *root;
    int status = nn_yaml_read(&p.tree, cfg->text, length, &root);
    if (status == 0) status = parse_section(&p, NULL, root, &top_section);
    if (status == 0) status = fill_defaults_after(&p, root);
    nn_yaml_free(&p.tree);
    if (status != 0) nn_config_free(cfg);
    return status;
}

/* Files that are given where a config belongs, told by their first bytes
 * so that the message names the mistake instead of the YAML error (or the
 * size limit) their bytes would cause. Only beginnings with a control
 * character (a NUL, gzip's 0x1f, PNG's 0x1a, ...) are looked at, which no
 * YAML text has, so no config is ever taken for something else. The
 * checkpoint's magic is the one in docs/checkpoint.md. */
static int sniff_binary(const char *path, const unsigned char *bytes, size_t size, nn_error *err) {
    static const unsigned char checkpoint[8] = {'N', 'N', 'S', 'E', 'Q', 'C', 'K', '\0'};
    if (size >= sizeof checkpoint && !memcmp(bytes, checkpoint, sizeof checkpoint))
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s: this is an nnseq checkpoint, not a config: use nnseq train --resume %s", path,
                            path);
    size_t head = size < 8 ? size : 8;
    bool binary = false;
    for (size_t i = 0; i < head; i++)
        binary = binary || (bytes[i] < 0x20 && bytes[i] != '\t' && bytes[i] != '\n' && bytes[i] != '\r') ||
                 bytes[i] == 0x7f;
    const char *kind = binary ? nn_file_kind(bytes, size) : NULL;
    if (kind) return nn_error_set(err, NN_ERR_INPUT, "%s: not a YAML config: it looks like %s", path, kind);
    return 0;
}

static int read_file(const char *path, char **text, size_t *length, nn_error *err) {
    FILE *file = fopen(path, "rb");
    if (!file) return nn_error_set(err, NN_ERR_INPUT, "%s: cannot open: %s", path, strerror(errno));
    char *buffer = NULL;
    size_t size = 0, capacity = 0;
    int status = 0;
    for (;;) {
        if (size == capacity) {
            if (capacity > MAX_CONFIG_BYTES) {
                status = nn_yaml_check_size(path, size, err);
                break;
            }
            capacity = capacity ? 2 * capacity : 4096;
            if (capacity > MAX_CONFIG_BYTES) capacity = MAX_CONFIG_BYTES + 1;
            char *grown = realloc(buffer, capacity + 1);
            if (!grown) {
                status = nn_error_oom(err, "the config file");
                break;
            }
            buffer = grown;
        }
        size_t got = fread(buffer + size, 1, capacity - size, file);
        bool first = size == 0;
        size += got;
        if (got == 0) break;
        if (first && (status = sniff_binary(path, (const unsigned char *)buffer, size, err)) != 0) break;
    }
    if (status == 0 && ferror(file)) status = nn_error_set(err, NN_ERR_INPUT, "%s: cannot read: %s", path, strerror(errno));
    fclose(file);
    if (status != 0) {
        free(buffer);
        return -1;
    }
    *text = buffer;
    *length = size;
    return 0;
}

static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    return strndup(path, slash == path ? 1 : (size_t)(slash - path));
}

int nn_config_load(nn_config *cfg, const char *path, nn_error *err) {
    memset(cfg, 0, sizeof *cfg);
    char *text = NULL;
    size_t length = 0;
    if (read_file(path, &text, &length, err)) return -1;
    char *dir = dir_of(path);
    int status = dir ? nn_config_parse(cfg, text ? text : "", length, path, dir, err)
                     : nn_error_oom(err, "the config's folder");
    free(dir);
    free(text);
    return status;
}

void nn_config_free(nn_config *cfg) {
    if (!cfg) return;
    free(cfg->path);
    free(cfg->dir);
    free(cfg->text);
    free(cfg->name);
    nn_data_files *splits[] = {&cfg->data.train, &cfg->data.test};
    for (int i = 0; i < 2; i++) {
        free(splits[i]->images);
        free(splits[i]->labels);
        free(splits[i]->file);
        free(splits[i]->features);
        free(splits[i]->targets);
    }
    nn_csv_columns_free(&cfg->data.csv.features);
    nn_csv_columns_free(&cfg->data.csv.target);
    free(cfg->data.mean);
    free(cfg->data.std);
    free(cfg->loss.vector);
    free(cfg->model.layers);
    free(cfg->train.log);
    free(cfg->checkpoint_path);
    free(cfg->init);
    nn_schedule_clear(&cfg->scheduler);
    memset(cfg, 0, sizeof *cfg);
}
