/* Writes the generated data set of tests/synthetic.h for the end-to-end tests:
 *   gen_data DIR COUNT SEED PREFIX */
#include <stdio.h>
#include <stdlib.h>

#include "../synthetic.h"

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: gen_data DIR COUNT SEED PREFIX\n");
        return 2;
    }
    nn_error err = {0};
    if (synthetic_write(argv[1], argv[4], atoi(argv[2]), (uint64_t)atoll(argv[3]), &err) != 0) {
        fprintf(stderr, "gen_data: %s\n", err.message);
        return 1;
    }
    return 0;
}
