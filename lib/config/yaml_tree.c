/* libyaml's event stream built into a small tree of nodes that remember
 * their 1-based line and column, so that the schema (config.c) can check a
 * config in any order and still point at the offending spot.
 *
 * torch_ref.py reads the same files with PyYAML (YAML 1.1), so a file both
 * accept must mean the same thing: anchors, aliases, tags and a second
 * document are refused here, as is a tab in the indentation (with a hint).
 * Aliases being refused, no subtree is ever copied; the text's size and the
 * nesting are bounded (yaml_tree.h says why), the nesting as the events come,
 * before libyaml scans much further. */
#include "config/yaml_tree.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define SHOWN_TEXT 40                 /* bytes of a bad value quoted back in a message */

static const nn_yaml_node *node_at(const nn_yaml_tree *t, int index) {
    return index < 0 ? NULL : &t->nodes[index];
}

int nn_yaml_vfail(const nn_yaml_tree *t, int line, int column, const char *format, va_list ap) {
    char message[800];
    vsnprintf(message, sizeof message, format, ap);
    return nn_error_set(t->err, NN_ERR_INPUT, "%s:%d:%d: %s", t->path, line, column, message);
}

int nn_yaml_fail(const nn_yaml_tree *t, int line, int column, const char *format, ...) {
    va_list ap;
    va_start(ap, format);
    nn_yaml_vfail(t, line, column, format, ap);
    va_end(ap);
    return -1;
}

const nn_yaml_node *nn_yaml_first_child(const nn_yaml_tree *t, const nn_yaml_node *n) {
    return n ? node_at(t, n->first_child) : NULL;
}

const nn_yaml_node *nn_yaml_next_sibling(const nn_yaml_tree *t, const nn_yaml_node *n) {
    return n ? node_at(t, n->next) : NULL;
}

const nn_yaml_node *nn_yaml_next_key(const nn_yaml_tree *t, const nn_yaml_node *key) {
    return nn_yaml_next_sibling(t, nn_yaml_next_sibling(t, key));
}

bool nn_yaml_is_null(const nn_yaml_node *n) {
    if (!n || n->type != NN_YAML_SCALAR || !n->plain) return false;
    const char *t = n->text;
    return !*t || !strcmp(t, "~") || !strcmp(t, "null") || !strcmp(t, "Null") || !strcmp(t, "NULL");
}
const char *nn_yaml_describe(const nn_yaml_node *n, char *buffer, size_t size) {
    if (n->type == NN_YAML_MAPPING) return "a mapping";
    if (n->type == NN_YAML_SEQUENCE) {
        snprintf(buffer, size, "a list of %d item%s", n->child_count, n->child_count == 1 ? "" : "s");
        return buffer;
    }
    if (n->plain && !*n->text) return "nothing";
    size_t shown = strlen(n->text);
    bool cut = shown > SHOWN_TEXT;
    if (cut) {
        shown = SHOWN_TEXT;
        while (shown > 0 && ((unsigned char)n->text[shown] & 0xC0) == 0x80) shown--;
    }
    snprintf(buffer, size, n->plain ? "'%.*s%s'" : "the string \"%.*s%s\"", (int)shown, n->text,
             cut ? "..." : "");
    return buffer;
}

static int tree_add(nn_yaml_tree *p, nn_yaml_type type, const yaml_mark_t *mark, int parent) {
    nn_yaml_tree *t = p;
    if (t->count == t->capacity) {
        int capacity = t->capacity ? 2 * t->capacity : 64;
        nn_yaml_node *nodes = realloc(t->nodes, (size_t)capacity * sizeof *nodes);
        if (!nodes) return nn_error_oom(p->err, "the config's nodes");
        t->nodes = nodes;
        t->capacity = capacity;
    }
    int index = t->count++;
    t->nodes[index] = (nn_yaml_node){.type = type, .line = (int)mark->line + 1, .column = (int)mark->column + 1,
                             .first_child = -1, .last_child = -1, .next = -1};
    if (parent >= 0) {
        nn_yaml_node *up = &t->nodes[parent];
        if (up->last_child < 0)
            up->first_child = index;
        else
            t->nodes[up->last_child].next = index;
        up->last_child = index;
        up->child_count++;
    }
    return index;
}

void nn_yaml_free(nn_yaml_tree *t) {
    for (int i = 0; i < t->count; i++) free(t->nodes[i].text);
    free(t->nodes);
    memset(t, 0, sizeof *t);
}

/* --- From libyaml's events to the tree ----------------------------------- */

typedef struct builder {
    int stack[NN_YAML_MAX_DEPTH];  /* open mappings and sequences */
    int depth;
    int documents;
    int root;
    bool done;
} builder;

static int refuse_anchor_and_tag(nn_yaml_tree *p, const yaml_event_t *event, const yaml_char_t *anchor,
                                 const yaml_char_t *tag) {
    int line = (int)event->start_mark.line + 1, column = (int)event->start_mark.column + 1;
    if (anchor)
        return nn_yaml_fail(p, line, column,
                       "anchors (&%s) are not supported (expected every value written out in place)",
                       (const char *)anchor);
    if (tag)
        return nn_yaml_fail(p, line, column, "tags (%s) are not supported (expected plain values without tags)",
                       (const char *)tag);
    return 0;
}

static int add_scalar(nn_yaml_tree *p, builder *b, const yaml_event_t *event) {
    const yaml_char_t *value = event->data.scalar.value;
    size_t length = event->data.scalar.length;
    if (strlen((const char *)value) != length)
        return nn_yaml_fail(p, (int)event->start_mark.line + 1, (int)event->start_mark.column + 1,
                       "a NUL character inside a value (expected text)");
    int parent = b->depth ? b->stack[b->depth - 1] : -1;
    int index = tree_add(p, NN_YAML_SCALAR, &event->start_mark, parent);
    if (index < 0) return -1;
    nn_yaml_node *n = &p->nodes[index];
    n->plain = event->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    n->text = malloc(length + 1);
    if (!n->text) return nn_error_oom(p->err, "a config value");
    memcpy(n->text, value, length + 1);
    if (parent < 0) b->root = index;
    return 0;
}

static int open_collection(nn_yaml_tree *p, builder *b, nn_yaml_type type, const yaml_event_t *event) {
    if (b->depth == NN_YAML_MAX_DEPTH)
        return nn_yaml_fail(p, (int)event->start_mark.line + 1, (int)event->start_mark.column + 1,
                            "nesting deeper than %d levels (expected at most %d lists and mappings one inside "
                            "another)", NN_YAML_MAX_DEPTH, NN_YAML_MAX_DEPTH);
    int parent = b->depth ? b->stack[b->depth - 1] : -1;
    int index = tree_add(p, type, &event->start_mark, parent);
    if (index < 0) return -1;
    if (parent < 0) b->root = index;
    b->stack[b->depth++] = index;
    return 0;
}

static int on_event(nn_yaml_tree *p, builder *b, const yaml_event_t *event) {
    int line = (int)event->start_mark.line + 1, column = (int)event->start_mark.column + 1;
    switch (event->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (b->documents++ > 0)
            return nn_yaml_fail(p, line, column, "a second YAML document (expected one config per file)");
        return 0;
    case YAML_STREAM_END_EVENT:
        b->done = true;
        return 0;
    case YAML_ALIAS_EVENT:
        return nn_yaml_fail(p, line, column, "aliases (*%s) are not supported (expected the value written out)",
                       (const char *)event->data.alias.anchor);
    case YAML_SCALAR_EVENT:
        if (refuse_anchor_and_tag(p, event, event->data.scalar.anchor, event->data.scalar.tag)) return -1;
        return add_scalar(p, b, event);
    case YAML_SEQUENCE_START_EVENT:
        if (refuse_anchor_and_tag(p, event, event->data.sequence_start.anchor, event->data.sequence_start.tag))
            return -1;
        return open_collection(p, b, NN_YAML_SEQUENCE, event);
    case YAML_MAPPING_START_EVENT:
        if (refuse_anchor_and_tag(p, event, event->data.mapping_start.anchor, event->data.mapping_start.tag))
            return -1;
        return open_collection(p, b, NN_YAML_MAPPING, event);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        b->depth--;
        return 0;
    default:
        return 0;
    }
}

/* Line and column (1-based) of a byte offset, for reader errors that come
 * with an offset instead of a mark. */
static void offset_position(const char *text, size_t offset, int *line, int *column) {
    size_t line_start = 0;
    *line = 1;
    for (size_t i = 0; i < offset; i++)
        if (text[i] == '\n') {
            (*line)++;
            line_start = i + 1;
        }
    *column = (int)(offset - line_start) + 1;
}

/* Whether line (1-based) is indented with a tab, the commonest YAML mistake. */
static bool indented_with_tab(const char *text, size_t length, int line) {
    size_t i = 0;
    for (int current = 1; current < line && i < length; i++)
        if (text[i] == '\n') current++;
    for (; i < length && (text[i] == ' ' || text[i] == '\t'); i++)
        if (text[i] == '\t') return true;
    return false;
}

static int syntax_error(nn_yaml_tree *p, const yaml_parser_t *yaml, const char *text, size_t length) {
    if (yaml->error == YAML_MEMORY_ERROR) return nn_error_oom(p->err, "the YAML parser");
    int line = (int)yaml->problem_mark.line + 1, column = (int)yaml->problem_mark.column + 1;
    if (yaml->error == YAML_READER_ERROR)
        offset_position(text, yaml->problem_offset < length ? yaml->problem_offset : length, &line, &column);
    const char *problem = yaml->problem ? yaml->problem : "unreadable text";
    char detail[200] = "";
    size_t used = 0;
    if (yaml->error == YAML_READER_ERROR && yaml->problem_value != -1)
        used = (size_t)snprintf(detail, sizeof detail, "byte 0x%02X", (unsigned)yaml->problem_value);
    else if (yaml->context && yaml->context_mark.line == yaml->problem_mark.line &&
             yaml->context_mark.column == yaml->problem_mark.column)
        used = (size_t)snprintf(detail, sizeof detail, "%s", yaml->context);
    else if (yaml->context)
        used = (size_t)snprintf(detail, sizeof detail, "%s at line %d, column %d", yaml->context,
                                (int)yaml->context_mark.line + 1, (int)yaml->context_mark.column + 1);
    if (indented_with_tab(text, length, line) && used < sizeof detail)
        snprintf(detail + used, sizeof detail - used, "%sindent with spaces: YAML does not allow tabs",
                 used ? "; " : "");
    return nn_yaml_fail(p, line, column, "invalid YAML: %s%s%s%s", problem, *detail ? " (" : "", detail,
                   *detail ? ")" : "");
}

int nn_yaml_check_size(const char *path, size_t length, nn_error *err) {
    if (length <= NN_YAML_MAX_BYTES) return 0;
    return nn_error_set(err, NN_ERR_INPUT, "%s: %zu bytes, too large for a config (expected at most %zu bytes, "
                        "%zu MiB)", path, length, NN_YAML_MAX_BYTES, NN_YAML_MAX_BYTES >> 20);
}

/* Builds the tree of the one document in text; *root is its top nn_yaml_node. */
int nn_yaml_read(nn_yaml_tree *p, const char *text, size_t length, const nn_yaml_node **root) {
    if (nn_yaml_check_size(p->path, length, p->err) != 0) return -1;
    yaml_parser_t yaml;
    if (!yaml_parser_initialize(&yaml)) return nn_error_oom(p->err, "the YAML parser");
    yaml_parser_set_input_string(&yaml, (const unsigned char *)text, length);
    builder b = {.root = -1};
    int status = 0;
    while (status == 0 && !b.done) {
        yaml_event_t event;
        if (!yaml_parser_parse(&yaml, &event)) {
            status = syntax_error(p, &yaml, text, length);
            break;
        }
        status = on_event(p, &b, &event);
        yaml_event_delete(&event);
    }
    yaml_parser_delete(&yaml);
    if (status != 0) return -1;
    *root = node_at(p, b.root);
    if (!*root || nn_yaml_is_null(*root))
        return nn_yaml_fail(p, 1, 1, "the config is empty (expected a mapping with at least model: layers:)");
    if ((*root)->type != NN_YAML_MAPPING) {
        char shown[80];
        return nn_yaml_fail(p, (*root)->line, (*root)->column, "expected a mapping of keys at the top level, got %s",
                    nn_yaml_describe(*root, shown, sizeof shown));
    }
    return 0;
}
