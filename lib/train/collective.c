#include <stdint.h>

#include "train/collective.h"

void nn_collective_share(const nn_collective *c, int64_t first, int64_t count, int64_t *mine_first,
                         int64_t *mine_count) {
    if (!c || c->size <= 1) {
        *mine_first = first;
        *mine_count = count;
        return;
    }
    int64_t lo = count * c->rank / c->size, hi = count * (c->rank + 1) / c->size;
    *mine_first = first + lo;
    *mine_count = hi - lo;
}

/* Where rank's slice starts: rank's even share of total, rounded down to
 * the alignment; the end of the buffer for rank == size. */
static size_t slice_start(const nn_collective *c, int rank, size_t total) {
    if (rank >= c->size) return total;
    /* total * rank in two parts, so that it cannot overflow size_t. */
    size_t even = total / (size_t)c->size * (size_t)rank + total % (size_t)c->size * (size_t)rank / (size_t)c->size;
    return even - even % NN_COLLECTIVE_SLICE_ALIGN;
}

void nn_collective_slice(const nn_collective *c, int rank, size_t total, size_t *first, size_t *count) {
    if (!c || c->size <= 1) {
        *first = 0;
        *count = total;
        return;
    }
    size_t lo = slice_start(c, rank, total), hi = slice_start(c, rank + 1, total);
    *first = lo;
    *count = hi - lo;
}

size_t nn_collective_slice_max(const nn_collective *c, size_t total) {
    size_t most = 0;
    for (int r = 0; r < (c ? c->size : 1); r++) {
        size_t first, count;
        nn_collective_slice(c, r, total, &first, &count);
        if (count > most) most = count;
    }
    return most;
}
