/* Help for unknown names in configs and on the command line: "did you mean"
 * for near misses, pointers from Keras's and torch's spellings to nnseq's,
 * and a plain "not supported" for torch names nnseq does not have. The
 * tables of names live in suggest.c only, so adding a layer, loss,
 * optimiser or scheduler to nnseq means deleting its line there. */
#ifndef NNSEQ_SUGGEST_H
#define NNSEQ_SUGGEST_H

#include <stddef.h>

/* What an unknown name was meant to be; the hint tables are per kind. */
typedef enum nn_name_kind {
    NN_NAME_LAYER,
    NN_NAME_LOSS,
    NN_NAME_OPTIMIZER,
    NN_NAME_SCHEDULER,
    NN_NAME_LAYER_ARG,
    NN_NAME_OPTIMIZER_ARG,
    NN_NAME_SCHEDULER_ARG,
    NN_NAME_KEY             /* a key of a fixed config section */
} nn_name_kind;

/* Edit distance between a and b: optimal string alignment (insertions,
 * deletions, substitutions and transpositions of two adjacent characters
 * each count one), comparing ASCII letters ignoring case. INT_MAX if a
 * long string's rows cannot be allocated. */
int nn_name_distance(const char *a, const char *b);

/* The most edits a suggestion for a name of length characters may be away:
 * 0 up to 2 characters (only a difference of case), 1 up to 4, 2 up to 8,
 * 3 beyond; always fewer than half the length. */
int nn_suggestion_max_edits(size_t length);

/* The candidate nearest to name by nn_name_distance (the first on a tie),
 * when it is within nn_suggestion_max_edits(strlen(name)); else NULL. NULL
 * candidates are skipped. For "did you mean" messages. */
const char *nn_nearest_name(const char *name, const char *const *candidates, int count);

/* When name (matched ignoring case) is a torch or Keras name of a layer,
 * loss, optimiser or scheduler that nnseq does not have, torch's full name
 * for it ("torch.nn.ELU", "torch.nn.BCELoss"); else NULL. kind is one of
 * NN_NAME_LAYER .. NN_NAME_SCHEDULER. */
const char *nn_unsupported_name(nn_name_kind kind, const char *name);

/* A note on an unknown name that Keras or torch spells that way, such as
 * "Keras's units is torch's out_features", or NULL. Names match ignoring
 * case, except a case variant of the very name pointed to (conv2d). A note
 * that points to a name of nnseq's applies only when that name is among
 * candidates[0..count) (units is out_features for Linear, not Conv2d). */
const char *nn_name_hint(nn_name_kind kind, const char *name, const char *const *candidates, int count);

#endif
