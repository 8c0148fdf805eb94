/* Writes a small generated data set for the end-to-end tests:
 *   gen_data DIR COUNT SEED PREFIX
 * makes DIR/PREFIX-images.idx (COUNT 6x6 images) and
 * DIR/PREFIX-labels.idx.gz: 4 classes, class c lights quadrant c. */
#include <stdio.h>
#include <stdlib.h>

#include "../../lib/idx.h"
#include "../../lib/rng.h"

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: gen_data DIR COUNT SEED PREFIX\n");
        return 2;
    }
    int count = atoi(argv[2]);
    nn_rng rng;
    nn_rng_seed(&rng, (uint64_t)atoll(argv[3]));
    uint8_t *images = malloc((size_t)count * 36), *labels = malloc((size_t)count);
    if (count < 1 || !images || !labels) return 1;
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
    nn_error err = {0};
    int image_dims[3] = {count, 6, 6}, label_dims[1] = {count};
    snprintf(path, sizeof path, "%s/%s-images.idx", argv[1], argv[4]);
    int status = nn_idx_write(path, 3, image_dims, images, 0, &err);
    snprintf(path, sizeof path, "%s/%s-labels.idx.gz", argv[1], argv[4]);
    if (status == 0) status = nn_idx_write(path, 1, label_dims, labels, 1, &err);
    if (status != 0) fprintf(stderr, "gen_data: %s\n", err.message);
    free(images);
    free(labels);
    return status == 0 ? 0 : 1;
}
