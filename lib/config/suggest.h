/* Suggestions for unknown names in configs and on the command line. */
#ifndef NNSEQ_SUGGEST_H
#define NNSEQ_SUGGEST_H

/* The known name nearest to name (Levenshtein distance, at most 3 edits and
 * less than the name's length), or NULL. For "did you mean" messages. */
const char *nn_nearest_name(const char *name, const char *const *candidates, int count);

#endif
