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
