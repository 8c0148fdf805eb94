/* nnseq predict CKPT [INPUT|-]: streams samples through the model in
 * batches and writes one line per sample as it goes, so a pipe of any
 * length runs in bounded memory. What a line holds follows the task: the
 * class and its probability (classification), the probability of the
 * positive class (binary), the labels' probabilities (multi-label), the
 * output values (regression, reconstruction); --logits gives the raw
 * outputs; --output FILE.npy writes the same values as an array instead. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/sample_stream.h"
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "io/npz.h"
#include "train/train.h"
#include "cli.h"

static const char predict_help[] =
    "usage: nnseq predict CKPT [INPUT|-] [--input-format idx|csv|npy] [--top K] [--logits]\n"
    "                     [--output FILE.npy] [--format text|json|tsv] [--threads N]\n"
    "                     [--allow-nonfinite]\n"
    "\n"
    "Reads samples from INPUT or standard input ('-', the default) in the format\n"
    "the checkpoint trained on (or --input-format): IDX of any type, .npy (or an\n"
    ".npz of one array), or a CSV read with the config's data.csv columns (target\n"
    "columns skipped). Writes one line per sample: its index, then for\n"
    "classification the predicted class and its probability (softmax), with\n"
    "--top K the K most probable, best first; for a binary output the predicted\n"
    "class (probability > 0.5) and the probability; for multi-label the\n"
    "probability of each label; for regression and autoencoders the output\n"
    "values. --logits writes the raw outputs instead. --output FILE.npy writes the\n"
    "values (probabilities, or with --logits the outputs) as a float32 array of\n"
    "samples x outputs instead of lines. Example:\n"
    "  nnseq predict runs/fashion_mlp.ckpt - < imgs.idx | cut -f2 | sort | uniq -c\n";

typedef struct predict_options {
    int top;
    bool logits;
    output_format format;
    const char *output;     /* .npy path, or NULL */
    int threads;
} predict_options;

/* Softmax of one output row into probabilities (the outputs are logits for
 * cross_entropy and log-probabilities for nll; softmax suits both). */
static void softmax(float *probabilities, const float *row, int n) {
    float max = row[0], sum = 0;
    for (int j = 1; j < n; j++)
        if (row[j] > max) max = row[j];
    for (int j = 0; j < n; j++) sum += probabilities[j] = expf(row[j] - max);
    for (int j = 0; j < n; j++) probabilities[j] /= sum;
}

static float sigmoid(float x) { return x >= 0 ? 1.0f / (1.0f + expf(-x)) : expf(x) / (1.0f + expf(x)); }

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

static void print_classes(output_format format, long index, const int *best, const float *probabilities, int k) {
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

static void print_values(output_format format, long index, const char *key, const float *values, int n) {
    if (format == FORMAT_JSON) {
        printf("{\"index\": %ld, \"%s\": [", index, key);
        for (int j = 0; j < n; j++) printf("%s%.6g", j ? ", " : "", values[j]);
        printf("]}\n");
        return;
    }
    printf("%ld", index);
    for (int j = 0; j < n; j++) printf("\t%.6g", values[j]);
    printf("\n");
}

static void print_header(output_format format, nn_task task, bool logits, int k, int outputs) {
    if (format != FORMAT_TSV) return;
    printf("index");
    if (logits || task == NN_TASK_MULTILABEL || task == NN_TASK_REGRESSION) {
        const char *name = logits ? "logit" : task == NN_TASK_MULTILABEL ? "probability" : "value";
        for (int j = 0; j < outputs; j++) printf("\t%s%d", name, j);
    } else if (task == NN_TASK_BINARY) {
        printf("\tclass\tprobability");
    } else {
        for (int i = 0; i < k; i++) printf(k > 1 ? "\tclass%d\tprobability%d" : "\tclass\tprobability", i + 1, i + 1);
    }
    printf("\n");
}

/* A float32 .npy written as the rows come: the header (numpy's, whose
 * length does not depend on the row count) is rewritten with the count at
 * the end; the file is a temporary until then. */
static size_t npy_header(unsigned char *header, long rows, int columns) {
    nn_array array = {.dtype = NN_F32, .rank = 2, .dims = {rows, columns}};
    return nn_npy_encode_header(header, &array);
}

static int run_predict(nn_checkpoint *ck, const char *input, nn_data_format input_format, predict_options *o) {
    nn_error err = {0};
    const nn_config *cfg = &ck->config;
    nn_sample_stream *stream = nn_sample_stream_open(input_format, &cfg->data.csv, input, &err);
    if (!stream) return cli_fail(&err);
    int status = EXIT_DONE, outputs = (int)nn_shape_size(nn_model_output_shape(ck->model));
    nn_task task = nn_task_for(cfg->loss.kind, outputs, cfg->data.target_is_input);
    bool logits_out = !strcmp(cfg->loss.kind->name, "bce_with_logits");
    size_t values = nn_sample_stream_values(stream);
    int batch_size = NN_EVAL_BATCH, k = o->top;
    float *batch = malloc((size_t)batch_size * values * sizeof *batch);
    float *row = malloc((size_t)outputs * sizeof *row);
    int *best = malloc((size_t)k * sizeof *best);
    nn_atomic_file npy = {0};
    bool npy_open = false;
    nn_engine *engine = NULL;
    if (values != nn_shape_size(ck->model->input_shape)) {
        char want[64], got[64];
        nn_shape_format(ck->model->input_shape, want, sizeof want);
        nn_shape_format(nn_sample_stream_shape(stream), got, sizeof got);
        nn_error_set(&err, NN_ERR_INPUT, "%s: samples are %s (%zu values) but the model takes %s (%zu values)",
                     input, got, values, want, nn_shape_size(ck->model->input_shape));
        goto fail;
    }
    if (!batch || !row || !best) {
        nn_error_oom(&err, "the batch");
        goto fail;
    }
    if (!(engine = nn_engine_create(ck->model, o->threads, batch_size, &err))) goto fail;
    if (o->output) {
        if (nn_atomic_open(&npy, o->output, &err) != 0) goto fail;
        npy_open = true;
        unsigned char header[NN_NPY_HEADER_MAX];
        size_t length = npy_header(header, 0, outputs);
        if (fwrite(header, 1, length, npy.file) != length) {
            nn_error_set(&err, NN_ERR_RUNTIME, "%s: cannot write", o->output);
            goto fail;
        }
    }
    if (k > outputs) k = outputs;
    if (!o->output) print_header(o->format, task, o->logits, k, outputs);
    long index = 0;
    const nn_input_transform *t = &ck->transform;
    for (;;) {
        int got = nn_sample_stream_read(stream, batch, batch_size, &err);
        if (got < 0) goto fail;
        if (got == 0) break;
        size_t total = (size_t)got * values;
        /* The same arithmetic as training's gather: (x - mean) / std in float32. */
        if (t->normalize)
            for (size_t i = 0; i < total; i++) batch[i] = (batch[i] - t->mean[i % values]) / t->std[i % values];
        const float *output = nn_engine_forward(engine, batch, got, &err);
        if (!output) goto fail;
        for (int b = 0; b < got; b++, index++) {
            const float *raw = output + (size_t)b * outputs;
            if (o->logits) {
                memcpy(row, raw, (size_t)outputs * sizeof *row);
            } else if (task == NN_TASK_CLASSIFICATION) {
                softmax(row, raw, outputs);
            } else if (task == NN_TASK_BINARY || task == NN_TASK_MULTILABEL) {
                for (int j = 0; j < outputs; j++) row[j] = logits_out ? sigmoid(raw[j]) : raw[j];
            } else {
                memcpy(row, raw, (size_t)outputs * sizeof *row);
            }
            if (o->output) {
                if (fwrite(row, sizeof *row, (size_t)outputs, npy.file) != (size_t)outputs) {
                    nn_error_set(&err, NN_ERR_RUNTIME, "%s: cannot write", o->output);
                    goto fail;
                }
                continue;
            }
            if (o->logits) {
                print_values(o->format, index, "logits", row, outputs);
            } else if (task == NN_TASK_CLASSIFICATION) {
                top_classes(best, row, outputs, k);
                print_classes(o->format, index, best, row, k);
            } else if (task == NN_TASK_BINARY) {
                int predicted = row[0] > 0.5f;
                if (o->format == FORMAT_JSON)
                    printf("{\"index\": %ld, \"class\": %d, \"probability\": %.6f}\n", index, predicted, row[0]);
                else
                    printf("%ld\t%d\t%.6f\n", index, predicted, row[0]);
            } else {
                print_values(o->format, index, task == NN_TASK_MULTILABEL ? "probabilities" : "values", row,
                             outputs);
            }
        }
        fflush(stdout);
    }
    if (o->output) {
        unsigned char header[NN_NPY_HEADER_MAX];
        size_t length = npy_header(header, index, outputs);
        if (fseek(npy.file, 0, SEEK_SET) != 0 || fwrite(header, 1, length, npy.file) != length) {
            nn_error_set(&err, NN_ERR_RUNTIME, "%s: cannot write", o->output);
            goto fail;
        }
        npy_open = false;
        if (nn_atomic_commit(&npy, &err) != 0) goto fail;
        fprintf(stderr, "nnseq: wrote %ld x %d values to %s\n", index, outputs, o->output);
    }
    goto done;
fail:
    fflush(stdout);
    status = cli_fail(&err);
done:
    if (npy_open) nn_atomic_abort(&npy);
    free(batch);
    free(row);
    free(best);
    nn_engine_free(engine);
    nn_sample_stream_close(stream);
    return status;
}

int command_predict(int argc, char **argv) {
    const char *top = NULL, *format_text = NULL, *threads = NULL, *output = NULL, *input_format = NULL;
    bool help = false, logits = false, allow_nonfinite = false;
    cli_option options[] = {{"--top", &top, NULL},           {"--format", &format_text, NULL},
                            {"--threads", &threads, NULL},   {"--output", &output, NULL},
                            {"--logits", NULL, &logits},     {"--input-format", &input_format, NULL},
                            {"--allow-nonfinite", NULL, &allow_nonfinite}};
    const char *positionals[2];
    int count;
    if (cli_parse("predict", argc, argv, 2, options, 7, positionals, 2, &count, &help)) return EXIT_USAGE;
    if (help) {
        fputs(predict_help, stdout);
        return EXIT_DONE;
    }
    if (count < 1) {
        fprintf(stderr, "nnseq predict: expected CKPT [INPUT|-]\n%s", predict_help);
        return EXIT_USAGE;
    }
    long k = 1;
    predict_options o = {1, logits, FORMAT_TEXT, output, 1};
    if ((top && cli_int("predict", "--top", top, 1, 1000, &k)) ||
        (format_text && cli_format("predict", format_text, &o.format)) || cli_threads("predict", threads, &o.threads))
        return EXIT_USAGE;
    o.top = (int)k;
    if (output) {
        size_t length = strlen(output);
        if (length < 4 || strcmp(output + length - 4, ".npy")) {
            fprintf(stderr, "nnseq predict: --output writes an .npy array: give a name ending in .npy, not '%s'\n",
                    output);
            return EXIT_USAGE;
        }
        nn_error err = {0};
        if (nn_output_check(output, "predictions", &err) != 0) return cli_fail(&err);
    }
    nn_error err = {0};
    nn_checkpoint ck;
    if (nn_checkpoint_load(&ck, positionals[0], allow_nonfinite, &err) != 0) return cli_fail(&err);
    nn_data_format format = ck.config.data.format;
    if (input_format) {
        if (!strcmp(input_format, "idx")) format = NN_FORMAT_IDX;
        else if (!strcmp(input_format, "csv")) format = NN_FORMAT_CSV;
        else if (!strcmp(input_format, "npy") || !strcmp(input_format, "npz")) format = NN_FORMAT_NPY;
        else {
            fprintf(stderr, "nnseq predict: unknown --input-format '%s' (expected idx, csv or npy)\n", input_format);
            nn_checkpoint_free(&ck);
            return EXIT_USAGE;
        }
    }
    int status = run_predict(&ck, count > 1 ? positionals[1] : "-", format, &o);
    nn_checkpoint_free(&ck);
    return status;
}
