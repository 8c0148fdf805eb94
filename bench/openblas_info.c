/* make bench: the OpenBLAS that nnseq links, as it runs here: its build
 * string and the kernel it picked (by CPU, or by OPENBLAS_CORETYPE).
 *   cc bench/openblas_info.c -o /tmp/openblas_info $(pkg-config --cflags --libs openblas) */
#include <cblas.h>
#include <stdio.h>

char *openblas_get_config(void);
char *openblas_get_corename(void);

int main(void) {
    printf("%s; kernel %s\n", openblas_get_config(), openblas_get_corename());
    return 0;
}
