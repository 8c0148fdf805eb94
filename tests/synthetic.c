#include "synthetic.h"

#include <stdio.h>
#include <stdlib.h>

#include "data/idx.h"
#include "core/rng.h"

int synthetic_write(const char *dir, const char *prefix, int count, uint64_t seed, nn_error *err) {
    if (count < 1) return nn_error_set(err, NN_ERR_INPUT, "count must be at least 1");
    nn_rng rng;
    nn_rng_seed(&rng, seed);
    uint8_t *images = malloc((size_t)count * 36), *labels = malloc((size_t)count);
    int status = -1;
    if (!images || !labels) {
        nn_error_oom(err, "the generated data");
        goto done;
    }
    for (int i = 0; i < count; i++) {
        int c = (int)nn_rng_below(&rng, 4);
        labels[i] = (uint8_t)c;
        for (int y = 0; y < 6; y++)
            for (int x = 0; x < 6; x++) {
                int lit = (y / 3) * 2 + (x / 3) == c;
                images[i * 36 + y * 6 + x] = (uint8_t)(lit ? 150 + nn_rng_below(&rng, 100) : nn_rng_below(&rng, 120));
            }
    }
    char path[4096];
    int image_dims[3] = {count, 6, 6}, label_dims[1] = {count};
    snprintf(path, sizeof path, "%s/%s-images.idx", dir, prefix);
    if (nn_idx_write(path, 3, image_dims, images, 0, err) != 0) goto done;
    snprintf(path, sizeof path, "%s/%s-labels.idx.gz", dir, prefix);
    status = nn_idx_write(path, 1, label_dims, labels, 1, err);
done:
    free(images);
    free(labels);
    return status;
}
