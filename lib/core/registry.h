/* The registries of kinds: layers (lib/layers/registry.c), losses
 * (lib/losses/loss.c), optimisers (lib/optim/optimizer.c) and schedules
 * (lib/optim/scheduler.c). Each is a static table of pointers to kind
 * structs that have `const char *name` and `const char *alias` members
 * (alias: torch's class name, or NULL); NN_REGISTRY defines the three
 * functions every registry has from that table, so the lookup is written
 * once:
 *
 *   const TYPE *PREFIX_find(const char *name);      by name or alias, NULL if none
 *   const TYPE *const *PREFIX_list(int *count);    the table, in order
 *   int PREFIX_names(const char **names, int max, int *shown);
 *       the names into names (at most max): nnseq's names first (*shown of
 *       them: what messages list), then the aliases (what suggestions may
 *       also match); returns how many were written.
 *
 * ignore_case: names match regardless of case (optimisers, as torch_ref.py
 * lowercases them); otherwise exactly, as torch's class names do. */
#ifndef NNSEQ_REGISTRY_H
#define NNSEQ_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

/* Whether query is name or alias (alias may be NULL). */
bool nn_registry_matches(const char *name, const char *alias, const char *query, bool ignore_case);

#define NN_REGISTRY(type, prefix, table, ignore_case)                                                    \
    const type *prefix##_find(const char *query) {                                                       \
        for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)                                      \
            if (nn_registry_matches(table[i]->name, table[i]->alias, query, ignore_case)) return table[i]; \
        return NULL;                                                                                     \
    }                                                                                                    \
    const type *const *prefix##_list(int *count) {                                                       \
        *count = (int)(sizeof table / sizeof table[0]);                                                  \
        return table;                                                                                    \
    }                                                                                                    \
    int prefix##_names(const char **names, int max, int *shown) {                                        \
        int n = 0, count = (int)(sizeof table / sizeof table[0]);                                        \
        for (int i = 0; i < count && n < max; i++) names[n++] = table[i]->name;                          \
        *shown = n;                                                                                      \
        for (int i = 0; i < count && n < max; i++)                                                       \
            if (table[i]->alias) names[n++] = table[i]->alias;                                           \
        return n;                                                                                        \
    }

#endif
