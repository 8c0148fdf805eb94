/* nnseq print CONFIG|CKPT: PyTorch's print(model), then each layer's output
 * shape and parameter count, then what torchinfo's summary reports (each
 * layer's mult-adds and output bytes, its totals); with --profile, each
 * layer's forward and backward timed at the batch size, as `caffe time`. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io/checkpoint.h"
#include "io/container.h"
#include "data/idx.h"
#include "data/source.h"
#include "cli.h"

static const char print_help[] =
    "usage: nnseq print CONFIG|CKPT [--config]\n"
    "       nnseq print --profile CONFIG|CKPT [--steps N] [--batch-size N]\n"
    "\n"
    "--config prints the effective config instead: for a checkpoint, what it\n"
    "trained with (command-line options applied, paths absolute); for a\n"
    "CONFIG, the file with every default filled in. Either is a config that\n"
    "nnseq train accepts.\n"
    "\n"
    "Prints the model exactly as PyTorch's print(model) shows the same\n"
    "nn.Sequential, then a table of each layer's output shape and parameters.\n"
    "The input shape is model.input_shape, else the training images' shape\n"
    "(read from their header), else (1, 28, 28) as torch_ref.py assumes.\n"
    "A second table gives each layer's mult-adds and output bytes for one\n"
    "sample, and the totals, as torchinfo's summary counts them for a batch of 1.\n"
    "\n"
    "--profile times the forward and backward of every layer in training mode\n"
    "on random inputs, on one thread: a warm-up step, then --steps N steps\n"
    "(default 20, at most 10000); it prints the median milliseconds of each.\n"
    "--batch-size N (1 to 1048576) instead of train.batch_size.\n";

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
}

/* torchinfo's unit for mult-adds: M below a billion, then G, then T. */
static const char *mult_adds_unit(double count, double *scaled) {
    const char *unit = count >= 1e12 ? "T" : count >= 1e9 ? "G" : "M";
    *scaled = count / (count >= 1e12 ? 1e12 : count >= 1e9 ? 1e9 : 1e6);
    return unit;
}

/* What torchinfo's summary(model, input_size=(1, ...)) reports, in its
 * words and format (MB of 10^6 bytes): each layer's mult-adds (the kind's
 * mult_adds, torchinfo's rules) and output bytes, then its totals. Like
 * torchinfo, the forward/backward pass size counts only the outputs of
 * layers with parameters, twice (values and gradients). */
static void print_costs(const nn_model *model, int batch_size) {
    const char *rule = "================================================================";
    char name[64], macs_text[32], bytes_text[32];
    printf("\n%-28s %17s %17s\n%s\n", "Layer (type)", "Mult-Adds", "Output Bytes", rule);
    int64_t total_macs = 0;
    size_t pass_bytes = 0;
    for (int i = 0; i < model->layer_count; i++) {
        const nn_layer *layer = model->layers[i];
        int64_t macs = layer->kind->mult_adds ? layer->kind->mult_adds(layer) : 0;
        size_t bytes = nn_shape_size(layer->out_shape) * sizeof(float);
        total_macs += macs;
        if (nn_layer_param_count(layer) > 0) pass_bytes += 2 * bytes;
        snprintf(name, sizeof name, "%s-%d", layer->kind->name, i);
        if (macs > 0) format_count(macs_text, sizeof macs_text, (size_t)macs);
        else snprintf(macs_text, sizeof macs_text, "--");
        format_count(bytes_text, sizeof bytes_text, bytes);
        printf("%-28s %17s %17s\n", name, macs_text, bytes_text);
    }
    double input_bytes = (double)nn_shape_size(model->input_shape) * sizeof(float);
    double param_bytes = (double)model->param_count * sizeof(float), scaled;
    const char *unit = mult_adds_unit((double)total_macs, &scaled);
    printf("%s\nTotal mult-adds (%s): %.2f\n%s\n", rule, unit, scaled, rule);
    printf("Input size (MB): %.2f\nForward/backward pass size (MB): %.2f\nParams size (MB): %.2f\n"
           "Estimated Total Size (MB): %.2f\n%s\n",
           input_bytes / 1e6, pass_bytes / 1e6, param_bytes / 1e6, (input_bytes + pass_bytes + param_bytes) / 1e6,
           rule);
    unit = mult_adds_unit((double)total_macs * batch_size, &scaled);
    printf("At the batch size %d: total mult-adds (%s): %.2f; input size (MB): %.2f; "
           "forward/backward pass size (MB): %.2f\n",
           batch_size, unit, scaled, input_bytes * batch_size / 1e6, (double)pass_bytes * batch_size / 1e6);
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

/* --profile's bounds: steps (time) and the buffers it allocates beyond the
 * layers' own contexts (activations, the two gradient buffers, the timings). */
#define PROFILE_MAX_STEPS 10000
#define PROFILE_MAX_BYTES ((double)((size_t)4 << 30))

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *values, int count) {
    qsort(values, (size_t)count, sizeof *values, compare_doubles);
    return count % 2 ? values[count / 2] : (values[count / 2 - 1] + values[count / 2]) / 2;
}

static void fill_uniform(float *data, size_t count, nn_rng *rng) {
    for (size_t i = 0; i < count; i++) data[i] = nn_rng_uniform_range(rng, -1.0f, 1.0f);
}

/* One training step through the main replica, layer by layer as
 * nn_replica_forward and _backward run them (the first layer computes no
 * input gradient, as in training), each layer's times into forward[i] and
 * backward[i]. The output gradient is drawn anew: backward overwrites it. */
static void profile_step(nn_model *model, int batch, nn_rng *rng, double *forward, double *backward) {
    nn_replica *r = &model->main;
    nn_mode mode = {.training = true, .update_buffers = true};
    for (int i = 0; i < model->layer_count; i++) {
        nn_layer *layer = model->layers[i];
        mode.layer_index = i;
        double start = now_ms();
        layer->kind->forward(layer, r->contexts[i], r->activations[i + 1], r->activations[i], batch, &mode);
        forward[i] = now_ms() - start;
    }
    fill_uniform(nn_model_output_grad(model), (size_t)batch * nn_shape_size(nn_model_output_shape(model)), rng);
    int current = model->layer_count % 2;
    size_t offset = model->param_count;
    for (int i = model->layer_count - 1; i >= 0; i--) {
        const nn_layer *layer = model->layers[i];
        offset -= nn_layer_param_count(layer);
        mode.layer_index = i;
        float *din = i > 0 ? r->deltas[1 - current] : NULL;
        double start = now_ms();
        layer->kind->backward(layer, r->contexts[i], din, r->deltas[current], r->activations[i], r->activations[i + 1],
                              batch, r->grads + offset, &mode);
        backward[i] = now_ms() - start;
        current = 1 - current;
    }
}

/* nnseq print --profile: like `caffe time`, the median forward and
 * backward milliseconds of each layer over steps training steps of batch
 * samples, after one warm-up step, on one thread. */
static int profile_model(nn_model *model, const char *path, int batch, int steps) {
    nn_error err = {0};
    int layers = model->layer_count;
    for (int i = 0; i < layers; i++)
        if (batch < model->layers[i]->min_train_batch) {
            nn_error_set(&err, NN_ERR_INPUT, "%s: layer %d (%s) needs batches of at least %d samples in training, got %d",
                         path, i, model->layers[i]->kind->name, model->layers[i]->min_train_batch, batch);
            return cli_fail(&err);
        }
    /* What nn_replica_reserve allocates (nn_eval_batch's count) and the timings. */
    double largest = (double)nn_shape_size(model->input_shape), floats = largest;
    for (int i = 0; i < layers; i++) {
        double size = (double)nn_shape_size(model->layers[i]->out_shape);
        floats += size;
        largest = size > largest ? size : largest;
    }
    double bytes = (floats + 2 * largest) * sizeof(float) * batch + 2.0 * layers * (steps + 1) * sizeof(double);
    if (bytes > PROFILE_MAX_BYTES) {
        nn_error_set(&err, NN_ERR_INPUT,
                     "%s: profiling at the batch size %d needs %.1f GiB of activations (at most %.0f GiB): "
                     "give a smaller --batch-size",
                     path, batch, bytes / (1 << 30), PROFILE_MAX_BYTES / (1 << 30));
        return cli_fail(&err);
    }
    /* Per-layer times mean one thread: OpenBLAS's would spread a layer's
     * product over cores that other work may hold. */
    openblas_set_num_threads(1);
    double *times = malloc(2 * (size_t)layers * (size_t)(steps + 1) * sizeof *times);
    if (!times) {
        nn_error_oom(&err, "the timings");
        return cli_fail(&err);
    }
    if (nn_model_reserve(model, batch, &err) != 0) {
        free(times);
        return cli_fail(&err);
    }
    nn_rng rng;
    nn_rng_seed(&rng, 1);
    fill_uniform(nn_model_input(model), (size_t)batch * nn_shape_size(model->input_shape), &rng);
    /* times: forward then backward of each step, the warm-up's last (not kept). */
    double *forward = times, *backward = times + (size_t)layers * steps, *scratch = times + 2 * (size_t)layers * steps;
    profile_step(model, batch, &rng, scratch, scratch + layers);
    double *step_total = malloc((size_t)steps * sizeof *step_total);
    if (!step_total) {
        free(times);
        nn_error_oom(&err, "the timings");
        return cli_fail(&err);
    }
    for (int s = 0; s < steps; s++) {
        profile_step(model, batch, &rng, scratch, scratch + layers);
        step_total[s] = 0;
        for (int i = 0; i < layers; i++) {
            forward[(size_t)i * steps + s] = scratch[i];
            backward[(size_t)i * steps + s] = scratch[layers + i];
            step_total[s] += scratch[i] + scratch[layers + i];
        }
    }
    const char *rule = "================================================================";
    printf("Batch size %d, one thread, training mode: median of %d step%s after a warm-up\n", batch, steps,
           steps == 1 ? "" : "s");
    printf("\n%-28s %17s %17s\n%s\n", "Layer (type)", "Forward (ms)", "Backward (ms)", rule);
    double total_forward = 0, total_backward = 0;
    for (int i = 0; i < layers; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s-%d", model->layers[i]->kind->name, i);
        double f = median(forward + (size_t)i * steps, steps), b = median(backward + (size_t)i * steps, steps);
        total_forward += f;
        total_backward += b;
        printf("%-28s %17.4f %17.4f\n", name, f, b);
    }
    printf("%s\n%-28s %17.4f %17.4f\n", rule, "Total (sum of medians)", total_forward, total_backward);
    printf("Forward-backward (median of the steps): %.4f ms per batch of %d\n", median(step_total, steps), batch);
    free(step_total);
    free(times);
    return EXIT_DONE;
}

static int print_model(const nn_model *model, int batch_size) {
    char *text = nn_model_describe(model);
    if (!text) {
        nn_error err;
        nn_error_oom(&err, "the description");
        return cli_fail(&err);
    }
    fputs(text, stdout);
    free(text);
    print_table(model);
    print_costs(model, batch_size);
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
    bool config_only = false, profile = false;
    const char *steps_text = NULL, *batch_text = NULL;
    cli_option options[] = {{"--config", NULL, &config_only},
                            {"--profile", NULL, &profile},
                            {"--steps", &steps_text, NULL},
                            {"--batch-size", &batch_text, NULL}};
    if (cli_parse("print", argc, argv, 2, options, 4, positionals, 1, &count, &help)) return EXIT_USAGE;
    if (help) {
        fputs(print_help, stdout);
        return EXIT_DONE;
    }
    if (count != 1) {
        fprintf(stderr, "nnseq print: expected one CONFIG or CKPT\n%s", print_help);
        return EXIT_USAGE;
    }
    if (!profile && (steps_text || batch_text)) {
        fprintf(stderr, "nnseq print: --steps and --batch-size go with --profile\nTry 'nnseq print --help'.\n");
        return EXIT_USAGE;
    }
    if (profile && config_only) {
        fprintf(stderr, "nnseq print: --profile and --config do not go together\nTry 'nnseq print --help'.\n");
        return EXIT_USAGE;
    }
    long steps = 20;
    if (steps_text && cli_int("print", "--steps", steps_text, 1, PROFILE_MAX_STEPS, &steps)) return EXIT_USAGE;
    long batch_option = 0;   /* 0: the config's train.batch_size */
    if (batch_text && cli_int("print", "--batch-size", batch_text, 1, 1048576, &batch_option)) return EXIT_USAGE;
    nn_error err = {0};
    if (config_only) return print_config(positionals[0]);
    if (is_checkpoint(positionals[0])) {
        nn_checkpoint ck;
        if (nn_checkpoint_load(&ck, positionals[0], true, &err) != 0) return cli_fail(&err);
        int status, batch = batch_option ? (int)batch_option : ck.config.train.batch_size;
        if (profile) {
            status = profile_model(ck.model, positionals[0], batch, (int)steps);
            nn_checkpoint_free(&ck);
            return status;
        }
        status = print_model(ck.model, batch);
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
    int status, batch = batch_option ? (int)batch_option : cfg.train.batch_size;
    if (input_shape_of(&cfg, &shape, &err) != 0 ||
        !(model = nn_model_create(cfg.model.layers, cfg.model.layer_count, shape, cfg.seed, cfg.path, &err)))
        status = cli_fail(&err);
    else if (profile)
        status = profile_model(model, positionals[0], batch, (int)steps);
    else
        status = print_model(model, batch);
    nn_model_free(model);
    nn_config_free(&cfg);
    return status;
}
