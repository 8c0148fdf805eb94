/* nnseq train CONFIG: the training loop's outside: options, metrics lines,
 * progress bar, CSV log, checkpoints (last, and best under early stopping). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io/checkpoint.h"
#include "config/config.h"
#include "train/train.h"
#include "cli.h"
#include "progress.h"
#include "train_report.h"

static const char train_help[] =
    "usage: nnseq train CONFIG [--epochs N] [--lr X] [--batch-size N] [--seed N]\n"
    "                          [--threads N] [--out CKPT] [--resume CKPT] [--init NPZ]\n"
    "                          [--log CSV] [--format text|json|tsv]\n"
    "\n"
    "Trains the model of CONFIG, prints one line of metrics per epoch on stdout,\n"
    "evaluates on the test split and writes the checkpoint (config's\n"
    "checkpoint.path, or --out). --resume goes on from a checkpoint until the\n"
    "total number of epochs is reached. A progress bar goes to stderr when it\n"
    "is a terminal.\n";

/* The "best" checkpoint beside the last: runs/x.ckpt -> runs/x.best.ckpt. */
static void best_path(char *buffer, size_t size, const char *path) {
    size_t length = strlen(path);
    if (length > 5 && strcmp(path + length - 5, ".ckpt") == 0)
        snprintf(buffer, size, "%.*s.best.ckpt", (int)(length - 5), path);
    else
        snprintf(buffer, size, "%s.best", path);
}

typedef struct train_options {
    const char *epochs, *lr, *batch_size, *seed, *threads, *out, *resume, *init, *log, *format;
} train_options;

/* Applies the command-line overrides to the parsed config. */
static int apply_overrides(nn_config *cfg, const train_options *o) {
    long value;
    if (o->epochs) {
        if (cli_int("train", "--epochs", o->epochs, 1, 1000000, &value)) return EXIT_USAGE;
        cfg->train.epochs = (int)value;
    }
    if (o->batch_size) {
        if (cli_int("train", "--batch-size", o->batch_size, 1, 1 << 20, &value)) return EXIT_USAGE;
        cfg->train.batch_size = (int)value;
    }
    if (o->seed) {
        if (cli_int("train", "--seed", o->seed, 0, 2147483647L, &value)) return EXIT_USAGE;
        cfg->seed = (uint64_t)value;
    }
    if (o->lr) {
        double lr;
        if (cli_double("train", "--lr", o->lr, 0, &lr)) return EXIT_USAGE;
        int index = nn_arg_find(cfg->optimizer.kind->args, cfg->optimizer.kind->arg_count, "lr");
        cfg->optimizer.args[index].value[0] = lr;
        cfg->optimizer.args[index].given = true;
    }
    return 0;
}

static int replace_string(char **field, const char *value) {
    char *copy = strdup(value);
    if (!copy) return -1;
    free(*field);
    *field = copy;
    return 0;
}

static int run_training(nn_config *cfg, const train_options *o, output_format format) {
    nn_error err = {0};
    int status = EXIT_DONE;
    FILE *log = NULL;
    nn_trainer *t = nn_trainer_create(cfg, &err);
    if (!t) return cli_fail(&err);
    if (o->resume && nn_trainer_resume(t, o->resume, &err) != 0) goto fail;
    const char *checkpoint = o->out ? o->out : cfg->checkpoint_path;
    char best[4096];
    best_path(best, sizeof best, checkpoint);
    if (cli_make_parent_dirs(checkpoint, &err) != 0) goto fail;
    const char *log_path = o->log ? o->log : cfg->train.log;
    if (log_path) {
        bool append = o->resume && access(log_path, F_OK) == 0;
        if (cli_make_parent_dirs(log_path, &err) != 0) goto fail;
        if (!(log = fopen(log_path, append ? "a" : "w"))) {
            nn_error_set(&err, NN_ERR_RUNTIME, "%s: cannot write the log", log_path);
            goto fail;
        }
        if (!append) fprintf(log, "epoch,lr,train_loss,train_accuracy,val_loss,val_accuracy,seconds,samples_per_s\n");
    }
    if (t->epoch >= cfg->train.epochs)
        fprintf(stderr, "nnseq: %s has already trained %d of %d epochs\n", o->resume, t->epoch, cfg->train.epochs);
    progress_bar bar = {isatty(STDERR_FILENO) != 0, 0, 0, 0, cfg->train.epochs};
    bool first = true;
    while (t->epoch < cfg->train.epochs) {
        bar.epoch = t->epoch + 1;
        bar.start = wall_seconds();
        nn_epoch_report report;
        if (nn_trainer_epoch(t, &report, bar.enabled ? progress_draw : NULL, &bar, &err) != 0) goto fail;
        print_epoch(format, &report, first);
        first = false;
        if (log) log_epoch(log, &report);
        if (nn_checkpoint_save(checkpoint, t, &err) != 0) goto fail;
        if (report.improved && cfg->train.early_stop && nn_checkpoint_save(best, t, &err) != 0) goto fail;
        if (report.stop) {
            fprintf(stderr, "nnseq: early stop after epoch %d: no validation improvement for %d epochs (best in %s)\n",
                    report.epoch, cfg->train.patience, best);
            break;
        }
    }
    if (first && nn_checkpoint_save(checkpoint, t, &err) != 0) goto fail;
    if (cfg->data.test.images) {
        nn_dataset test;
        nn_metrics metrics;
        if (nn_dataset_load(&test, cfg->data.test.images, cfg->data.test.labels, t->classes, &err) != 0) goto fail;
        int eval_status = nn_evaluate(t->model, cfg->loss, &t->pixels, &test, 0, test.count, &metrics, NULL, &err);
        nn_dataset_free(&test);
        if (eval_status != 0) goto fail;
        print_test(format, &metrics, checkpoint);
    }
    fflush(stdout);
    fprintf(stderr, "nnseq: wrote %s\n", checkpoint);
    goto done;
fail:
    status = cli_fail(&err);
done:
    if (log) fclose(log);
    nn_trainer_free(t);
    return status;
}

int command_train(int argc, char **argv) {
    train_options o = {0};
    bool help = false;
    cli_option options[] = {
        {"--epochs", &o.epochs, NULL}, {"--lr", &o.lr, NULL},           {"--batch-size", &o.batch_size, NULL},
        {"--seed", &o.seed, NULL},     {"--threads", &o.threads, NULL}, {"--out", &o.out, NULL},
        {"--resume", &o.resume, NULL}, {"--init", &o.init, NULL},       {"--log", &o.log, NULL},
        {"--format", &o.format, NULL},
    };
    const char *positionals[1];
    int count;
    if (cli_parse("train", argc, argv, 2, options, sizeof options / sizeof options[0], positionals, 1, &count, &help))
        return EXIT_USAGE;
    if (help) {
        fputs(train_help, stdout);
        return EXIT_DONE;
    }
    if (count != 1) {
        fprintf(stderr, "nnseq train: expected one CONFIG file\n%s", train_help);
        return EXIT_USAGE;
    }
    output_format format = FORMAT_TEXT;
    if ((o.format && cli_format("train", o.format, &format)) || cli_threads("train", o.threads)) return EXIT_USAGE;
    nn_config cfg;
    nn_error err = {0};
    if (nn_config_load(&cfg, positionals[0], &err) != 0) return cli_fail(&err);
    int status = apply_overrides(&cfg, &o);
    if (status == 0 && o.init && replace_string(&cfg.init, o.init) != 0) {
        nn_error_oom(&err, "--init");
        status = cli_fail(&err);
    }
    if (status == 0) status = run_training(&cfg, &o, format);
    nn_config_free(&cfg);
    return status;
}
