/* A YAML document as a tree of nodes with positions (libyaml's event API
 * underneath). The config schema walks it; nothing else knows YAML. */
#ifndef NNSEQ_YAML_TREE_H
#define NNSEQ_YAML_TREE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"

typedef enum nn_yaml_type { NN_YAML_SCALAR, NN_YAML_MAPPING, NN_YAML_SEQUENCE } nn_yaml_type;

typedef struct nn_yaml_node {
    nn_yaml_type type;
    bool plain;             /* unquoted scalar: only these can be numbers, booleans or null */
    int line, column;       /* 1-based */
    char *text;             /* a scalar's value */
    int child_count;        /* a mapping's children alternate key, value */
    int first_child, last_child, next;  /* indices into the tree, -1 for none */
} nn_yaml_node;

typedef struct nn_yaml_tree {
    const char *path;       /* named in messages; set before nn_yaml_read */
    nn_error *err;          /* receives errors; set before nn_yaml_read */
    nn_yaml_node *nodes;
    int count, capacity;
} nn_yaml_tree;

/* Limits on what nn_yaml_read takes, far above any real config: libyaml's
 * time grows with the square of the flow nesting (a 400 KB "[[[...]]]" took
 * 72 s), and the tree and its schema with the size. */
#define NN_YAML_MAX_BYTES ((size_t)1 << 20)
#define NN_YAML_MAX_DEPTH 64

/* An NN_ERR_INPUT error naming path and the limit when length passes
 * NN_YAML_MAX_BYTES; for callers that can tell before reading or copying
 * the text (nn_yaml_read checks it again). */
int nn_yaml_check_size(const char *path, size_t length, nn_error *err);

/* Builds the tree of the one document in text; *root is its top node, a
 * mapping. Errors are NN_ERR_INPUT "PATH:LINE:COLUMN: invalid YAML: ...",
 * and "PATH:LINE:COLUMN: nesting deeper than 64 levels" from the first
 * list or mapping past NN_YAML_MAX_DEPTH, before libyaml reads further. */
int nn_yaml_read(nn_yaml_tree *tree, const char *text, size_t length, const nn_yaml_node **root);
void nn_yaml_free(nn_yaml_tree *tree);

/* Navigation; each returns NULL past the end (and for a NULL node). A
 * mapping's children alternate key and value. */
const nn_yaml_node *nn_yaml_first_child(const nn_yaml_tree *tree, const nn_yaml_node *node);
const nn_yaml_node *nn_yaml_next_sibling(const nn_yaml_tree *tree, const nn_yaml_node *node);
const nn_yaml_node *nn_yaml_next_key(const nn_yaml_tree *tree, const nn_yaml_node *key);

/* An empty plain scalar, ~ or null. */
bool nn_yaml_is_null(const nn_yaml_node *node);

/* "'6.5'", "the string \"3\"", "a mapping", "a list of 2 items", "nothing":
 * how a value that does not fit is quoted back. */
const char *nn_yaml_describe(const nn_yaml_node *node, char *buffer, size_t size);

/* Sets an NN_ERR_INPUT error "PATH:LINE:COLUMN: message"; returns -1. */
int nn_yaml_fail(const nn_yaml_tree *tree, int line, int column, const char *format, ...)
    __attribute__((format(printf, 4, 5)));
int nn_yaml_vfail(const nn_yaml_tree *tree, int line, int column, const char *format, va_list ap);

#endif
