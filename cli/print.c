/* nnseq print CONFIG|CKPT: PyTorch's print(model), then each layer's output
 * shape and parameter count. */
#include <stdlib.h>
#include <string.h>

#include "io/checkpoint.h"
#include "io/container.h"
#include "data/idx.h"
#include "data/source.h"
#include "cli.h"

static const char print_help[] =
    "usage: nnseq print CONFIG|CKPT [--config]\n"
    "\n"
    "--config prints the effective config instead: for a checkpoint, what it\n"
    "trained with (command-line options applied, paths absolute); for a\n"
    "CONFIG, the file with every default filled in. Either is a config that\n"
    "nnseq train accepts.\n"
    "\n"
    "Prints the model exactly as PyTorch's print(model) shows the same\n"
    "nn.Sequential, then a table of each layer's output shape and parameters.\n"
    "The input shape is model.input_shape, else the training images' shape\n"
    "(read from their header), else (1, 28, 28) as torch_ref.py assumes.\n";

static bool is_checkpoint(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    char magic[8] = {0};
    size_t got = fread(magic, 1, sizeof magic, f);
    fclose(f);
    return got == sizeof magic && memcmp(magic, "NNSEQCK", 8) == 0;
}

/* Groups digits in threes, as torchsummary and Keras print counts. */
static void format_count(char *buffer, size_t size, size_t value) {
    char digits[32];
    int length = snprintf(digits, sizeof digits, "%zu", value), used = 0;
    for (int i = 0; i < length && (size_t)used + 2 < size; i++) {
        if (i && (length - i) % 3 == 0) buffer[used++] = ',';
        buffer[used++] = digits[i];
    }
    buffer[used] = '\0';
}

static void format_output_shape(char *buffer, size_t size, nn_shape shape) {
    int used = snprintf(buffer, size, "[-1");
    for (int i = 0; i < shape.rank; i++) used += snprintf(buffer + used, size - (size_t)used, ", %d", shape.dims[i]);
    snprintf(buffer + used, size - (size_t)used, "]");
}

static void print_table(const nn_model *model) {
    const char *rule = "================================================================";
    char shape_text[64], count_text[32];
    format_output_shape(shape_text, sizeof shape_text, model->input_shape);
    printf("\n%-28s %-22s %12s\n%s\n", "Layer (type)", "Output Shape", "Param #", rule);
    printf("%-28s %-22s %12s\n", "Input", shape_text, "");
    size_t buffers = 0;
    for (int i = 0; i < model->layer_count; i++) {
        const nn_layer *layer = model->layers[i];
        char name[64];
        snprintf(name, sizeof name, "%s-%d", layer->kind->name, i);
        format_output_shape(shape_text, sizeof shape_text, layer->out_shape);
        format_count(count_text, sizeof count_text, nn_layer_param_count(layer));
        printf("%-28s %-22s %12s\n", name, shape_text, count_text);
        for (int s = 0; s < layer->state_count; s++)
            if (!layer->state[s].trainable) buffers += nn_array_count(&layer->state[s].array);
    }
    format_count(count_text, sizeof count_text, model->param_count);
    printf("%s\nTotal params: %s\nTrainable params: %s\n", rule, count_text, count_text);
    format_count(count_text, sizeof count_text, buffers);
    printf("Non-trainable buffers: %s\n", count_text);
    size_t activations = 0;
    for (int i = 0; i < model->layer_count; i++) activations += nn_shape_size(model->layers[i]->out_shape);
    printf("Activations per sample: %.1f KiB; parameters: %.1f KiB\n", activations * 4 / 1024.0,
           model->param_count * 4 / 1024.0);
}

/* The input shape print builds the model for: the config's, else the
 * training data's (an IDX header is enough; a table is read), else the
 * default (1, 28, 28) with a note: printing needs no data. */
static int input_shape_of(const nn_config *cfg, nn_shape *shape, nn_error *err) {
    *shape = (nn_shape){3, {1, 28, 28}};
    if (cfg->model.has_input_shape) {
        *shape = cfg->model.input_shape;
        return 0;
    }
    const char *path = nn_data_input_path(&cfg->data.train);
    if (!path) return 0;
    if (cfg->data.format == NN_FORMAT_IDX) {
        nn_idx_stream *stream = nn_idx_stream_open(path, err);
        if (!stream) {
            fprintf(stderr, "nnseq: %s; printing for input (1, 28, 28)\n", err->message);
            return 0;
        }
        const int64_t *dims = nn_idx_stream_dims(stream);
        int rank = nn_idx_stream_rank(stream);
        if (rank == 1) *shape = (nn_shape){1, {1, 0, 0}};
        else if (rank == 2) *shape = (nn_shape){1, {(int)dims[1], 0, 0}};
        else if (rank == 3) *shape = (nn_shape){3, {1, (int)dims[1], (int)dims[2]}};
        else *shape = (nn_shape){3, {(int)dims[1], (int)dims[2], (int)dims[3]}};
        nn_idx_stream_close(stream);
        return 0;
    }
    nn_dataset set;
    if (nn_data_load(&set, cfg->data.format, &cfg->data.csv, &cfg->data.train, true, err) != 0) {
        fprintf(stderr, "nnseq: %s; printing for input (1, 28, 28)\n", err->message);
        return 0;
    }
    *shape = set.shape;
    nn_dataset_free(&set);
    return 0;
}

static int print_model(const nn_model *model) {
    char *text = nn_model_describe(model);
    if (!text) {
        nn_error err;
        nn_error_oom(&err, "the description");
        return cli_fail(&err);
    }
    fputs(text, stdout);
    free(text);
    print_table(model);
    return EXIT_DONE;
}

static int print_config(const char *path) {
    nn_error err = {0};
    nn_config cfg;
    int status = is_checkpoint(path) ? nn_checkpoint_read_config(&cfg, path, &err) : nn_config_load(&cfg, path, &err);
    if (status != 0) return cli_fail(&err);
    char *text = nn_config_render(&cfg, !is_checkpoint(path), &err);
    nn_config_free(&cfg);
    if (!text) return cli_fail(&err);
    fputs(text, stdout);
    free(text);
    return EXIT_DONE;
}

int command_print(int argc, char **argv) {
    bool help = false;
    const char *positionals[1];
    int count;
    bool config_only = false;
    cli_option options[] = {{"--config", NULL, &config_only}};
    if (cli_parse("print", argc, argv, 2, options, 1, positionals, 1, &count, &help)) return EXIT_USAGE;
    if (help) {
        fputs(print_help, stdout);
        return EXIT_DONE;
    }
    if (count != 1) {
        fprintf(stderr, "nnseq print: expected one CONFIG or CKPT\n%s", print_help);
        return EXIT_USAGE;
    }
    nn_error err = {0};
    if (config_only) return print_config(positionals[0]);
    if (is_checkpoint(positionals[0])) {
        nn_checkpoint ck;
        if (nn_checkpoint_load(&ck, positionals[0], true, &err) != 0) return cli_fail(&err);
        int status = print_model(ck.model);
        /* After the model as torch prints it, what a user should not have
         * to dig for: a run stopped in the middle of an epoch, and what
         * --resume-anyway let through (nothing, for most checkpoints). */
        const nn_array *position = nn_container_find(ck.arrays, ck.array_count, "train.epoch_position");
        int64_t samples = position && position->dtype == NN_I64 && nn_array_count(position) == 1
                              ? *(const int64_t *)position->data : 0;
        if (samples > 0)
            printf("Stopped by a signal after %d epoch%s and %lld samples of epoch %d (nnseq train --resume goes on)\n",
                   ck.epoch, ck.epoch == 1 ? "" : "s", (long long)samples, ck.epoch + 1);
        const nn_array *overrides = nn_container_find(ck.arrays, ck.array_count, "train.overrides");
        if (overrides && overrides->dtype == NN_U8)
            printf("%.*s", (int)nn_array_count(overrides), (const char *)overrides->data);
        nn_checkpoint_free(&ck);
        return status;
    }
    nn_config cfg;
    if (nn_config_load(&cfg, positionals[0], &err) != 0) return cli_fail(&err);
    nn_shape shape;
    nn_model *model = NULL;
    int status;
    if (input_shape_of(&cfg, &shape, &err) != 0 ||
        !(model = nn_model_create(cfg.model.layers, cfg.model.layer_count, shape, cfg.seed, cfg.path, &err)))
        status = cli_fail(&err);
    else
        status = print_model(model);
    nn_model_free(model);
    nn_config_free(&cfg);
    return status;
}
