/* nnseq predict CKPT [IMAGES|-]: streams IDX images through the model in
 * batches and writes one line per image as it goes, so a pipe of any length
 * runs in bounded memory. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/checkpoint.h"
#include "data/idx.h"
#include "train/train.h"
#include "cli.h"

static const char predict_help[] =
    "usage: nnseq predict CKPT [IMAGES|-] [--top K] [--format text|json|tsv] [--threads N]\n"
    "\n"
    "Reads IDX images (raw or gzip) from IMAGES or standard input ('-', the\n"
    "default) and writes one line per image: index, predicted class and its\n"
    "probability (softmax of the model's outputs), tab-separated; with --top K\n"
    "the K most probable classes, best first. Example:\n"
    "  nnseq predict runs/fashion_mlp.ckpt - < imgs.idx | cut -f2 | sort | uniq -c\n";

/* Softmax of one output row into probabilities (the outputs are logits for
 * cross_entropy and log-probabilities for nll; softmax suits both). */
static void softmax(float *probabilities, const float *row, int n) {
    float max = row[0], sum = 0;
    for (int j = 1; j < n; j++)
        if (row[j] > max) max = row[j];
    for (int j = 0; j < n; j++) sum += probabilities[j] = expf(row[j] - max);
    for (int j = 0; j < n; j++) probabilities[j] /= sum;
}

/* The k best classes, best first (ties: lower class first). */
static void top_classes(int *best, const float *probabilities, int n, int k) {
    for (int i = 0; i < k; i++) {
        int pick = -1;
        for (int j = 0; j < n; j++) {
            bool taken = false;
            for (int t = 0; t < i; t++) taken |= best[t] == j;
            if (!taken && (pick < 0 || probabilities[j] > probabilities[pick])) pick = j;
        }
        best[i] = pick;
    }
}

static void print_row(output_format format, long index, const int *best, const float *probabilities, int k) {
    if (format == FORMAT_JSON) {
        printf("{\"index\": %ld, \"class\": %d, \"probability\": %.6f", index, best[0], probabilities[best[0]]);
        if (k > 1) {
            printf(", \"top\": [");
            for (int i = 0; i < k; i++)
                printf("%s{\"class\": %d, \"probability\": %.6f}", i ? ", " : "", best[i], probabilities[best[i]]);
            printf("]");
        }
        printf("}\n");
        return;
    }
    printf("%ld", index);
    for (int i = 0; i < k; i++) printf("\t%d\t%.6f", best[i], probabilities[best[i]]);
    printf("\n");
}

static int run_predict(nn_checkpoint *ck, const char *images, int k, output_format format) {
    nn_error err = {0};
    nn_idx_stream *stream = nn_idx_stream_open(images, &err);
    if (!stream) return cli_fail(&err);
    int status = EXIT_DONE, classes = nn_model_output_shape(ck->model).dims[0];
    size_t item_size = nn_idx_stream_item_size(stream);
    int rank = nn_idx_stream_rank(stream), batch_size = NN_EVAL_BATCH;
    uint8_t *bytes = malloc((size_t)batch_size * item_size);
    float *probabilities = malloc((size_t)classes * sizeof *probabilities);
    int *best = malloc((size_t)k * sizeof *best);
    nn_pixel_transform pixels;
    nn_pixel_transform_init(&pixels, &ck->config);
    if (rank < 3 || item_size != nn_shape_size(ck->model->input_shape)) {
        char want[64];
        nn_shape_format(ck->model->input_shape, want, sizeof want);
        nn_error_set(&err, NN_ERR_INPUT, "%s: items of %zu bytes (rank %d) do not fit the model's input %s",
                     images, item_size, rank, want);
        goto fail;
    }
    if (!bytes || !probabilities || !best) {
        nn_error_oom(&err, "the batch");
        goto fail;
    }
    if (nn_model_reserve(ck->model, batch_size, &err) != 0) goto fail;
    if (k > classes) k = classes;
    if (format == FORMAT_TSV) {
        printf("index");
        for (int i = 0; i < k; i++) printf(k > 1 ? "\tclass%d\tprobability%d" : "\tclass\tprobability", i + 1, i + 1);
        printf("\n");
    }
    long index = 0;
    for (;;) {
        int got = nn_idx_stream_read(stream, bytes, batch_size, &err);
        if (got < 0) goto fail;
        if (got == 0) break;
        nn_gather_batch(nn_model_input(ck->model), &pixels, bytes, item_size, NULL, 0, got);
        const float *output = nn_model_forward(ck->model, got, false);
        for (int b = 0; b < got; b++) {
            softmax(probabilities, output + (size_t)b * classes, classes);
            top_classes(best, probabilities, classes, k);
            print_row(format, index++, best, probabilities, k);
        }
        fflush(stdout);
    }
    goto done;
fail:
    fflush(stdout);
    status = cli_fail(&err);
done:
    free(bytes);
    free(probabilities);
    free(best);
    nn_idx_stream_close(stream);
    return status;
}

int command_predict(int argc, char **argv) {
    const char *top = NULL, *format_text = NULL, *threads = NULL;
    bool help = false;
    cli_option options[] = {{"--top", &top, NULL}, {"--format", &format_text, NULL}, {"--threads", &threads, NULL}};
    const char *positionals[2];
    int count;
    if (cli_parse("predict", argc, argv, 2, options, 3, positionals, 2, &count, &help)) return EXIT_USAGE;
    if (help) {
        fputs(predict_help, stdout);
        return EXIT_DONE;
    }
    if (count < 1) {
        fprintf(stderr, "nnseq predict: expected CKPT [IMAGES|-]\n%s", predict_help);
        return EXIT_USAGE;
    }
    long k = 1;
    output_format format = FORMAT_TEXT;
    if ((top && cli_int("predict", "--top", top, 1, 1000, &k)) ||
        (format_text && cli_format("predict", format_text, &format)) || cli_threads("predict", threads))
        return EXIT_USAGE;
    nn_error err = {0};
    nn_checkpoint ck;
    if (nn_checkpoint_load(&ck, positionals[0], &err) != 0) return cli_fail(&err);
    int status = run_predict(&ck, count > 1 ? positionals[1] : "-", (int)k, format);
    nn_checkpoint_free(&ck);
    return status;
}
