/* "Did you mean" for unknown names: the nearest known name by edit
 * distance. */
#include "config/suggest.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Levenshtein distance, one row at a time; INT_MAX if a long candidate's
 * row cannot be allocated. */
static int edit_distance(const char *a, const char *b) {
    int short_row[64];
    size_t b_length = strlen(b);
    int *row = b_length < 64 ? short_row : malloc((b_length + 1) * sizeof *row);
    if (!row) return INT_MAX;
    for (size_t j = 0; j <= b_length; j++) row[j] = (int)j;
    for (int i = 1; a[i - 1]; i++) {
        int diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b_length; j++) {
            int above = row[j];
            int best = diagonal + (a[i - 1] != b[j - 1]);
            if (above + 1 < best) best = above + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diagonal = above;
        }
    }
    int distance = row[b_length];
    if (row != short_row) free(row);
    return distance;
}

const char *nn_nearest_name(const char *name, const char *const *candidates, int count) {
    size_t length = strlen(name);
    const char *best = NULL;
    int best_distance = INT_MAX;
    for (int i = 0; i < count; i++) {
        if (!candidates[i]) continue;
        size_t other = strlen(candidates[i]);
        /* Lengths that differ by more than 3 are more than 3 edits apart. */
        if ((length > other ? length - other : other - length) > 3) continue;
        int distance = edit_distance(name, candidates[i]);
        if (distance < best_distance) {
            best = candidates[i];
            best_distance = distance;
        }
    }
    return best && best_distance <= 3 && (size_t)best_distance < length ? best : NULL;
}

