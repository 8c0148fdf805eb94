/* The driver tests/cli_export_c_test.sh compiles with an exported model.c
 * (nnseq export CKPT model.c): reads float32 samples, runs model_predict on
 * each and writes the outputs as float32. Standalone C99 (not a tool the
 * Makefile builds: it needs the generated model.h).
 *
 *   c_export_driver IN.f32 OUT.f32 [REPEAT]
 *
 * IN holds samples x model_INPUT_SIZE floats as pixels / 255 (or the CSV's
 * values): the driver normalises them with the header's model_MEAN_VALUES
 * and model_STD_VALUES as nnseq does, so the test checks those macros too.
 * REPEAT runs the whole set that many times and prints images/s on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "model.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s IN.f32 OUT.f32 [REPEAT]\n", argv[0]);
        return 2;
    }
    FILE *in = fopen(argv[1], "rb");
    if (!in) {
        perror(argv[1]);
        return 1;
    }
    fseek(in, 0, SEEK_END);
    long bytes = ftell(in);
    fseek(in, 0, SEEK_SET);
    long samples = bytes / (long)(sizeof(float) * model_INPUT_SIZE);
    float *inputs = malloc((size_t)bytes + 1), *outputs = malloc(sizeof(float) * model_OUTPUT_SIZE * (size_t)(samples + 1));
    if (!inputs || !outputs || fread(inputs, 1, (size_t)bytes, in) != (size_t)bytes) {
        fprintf(stderr, "%s: cannot read\n", argv[1]);
        return 1;
    }
    fclose(in);
#if model_NORMALIZED
    {
        static const float mean[] = model_MEAN_VALUES, std[] = model_STD_VALUES;
        long s;
        int i;
        for (s = 0; s < samples; s++)
            for (i = 0; i < model_INPUT_SIZE; i++) {
                int j = i / (model_INPUT_SIZE / model_MEAN_COUNT);
                float *x = inputs + s * model_INPUT_SIZE + i;
                *x = (*x - mean[j]) / std[j];
            }
    }
#endif
    int repeat = argc > 3 ? atoi(argv[3]) : 1;
    clock_t start = clock();
    for (int r = 0; r < repeat; r++)
        for (long s = 0; s < samples; s++)
            if (model_predict(inputs + s * model_INPUT_SIZE, outputs + s * model_OUTPUT_SIZE) != 0) return 1;
    double seconds = (double)(clock() - start) / CLOCKS_PER_SEC;
    if (argc > 3) fprintf(stderr, "%.0f images/s\n", seconds > 0 ? (double)samples * repeat / seconds : 0.0);
    FILE *out = fopen(argv[2], "wb");
    if (!out || fwrite(outputs, sizeof(float) * model_OUTPUT_SIZE, (size_t)samples, out) != (size_t)samples || fclose(out)) {
        perror(argv[2]);
        return 1;
    }
    free(inputs);
    free(outputs);
    return 0;
}
