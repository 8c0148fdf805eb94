/* nnseq train CONFIG: the training loop's outside: options, metrics lines,
 * progress bar, CSV log, checkpoints (last, and best under early stopping). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io/atomic_file.h"
#include "train/fit.h"
#include "io/checkpoint.h"
#include "config/config.h"
#include "config/lint.h"
#include "train/train.h"
#include "cli.h"
#include "progress.h"
#include "train_report.h"

static const char train_help[] =
    "usage: nnseq train CONFIG [--epochs N] [--lr X] [--batch-size N] [--seed N]\n"
    "                          [--threads N] [--out CKPT | --no-checkpoint] [--resume CKPT]\n"
    "                          [--init NPZ] [--log CSV] [--format text|json|tsv]\n"
    "       nnseq train --resume CKPT [--epochs N] [--out CKPT] [...]\n"
    "\n"
    "Trains the model of CONFIG, prints one line of metrics per epoch on stdout,\n"
    "evaluates on the test split and writes the checkpoint (config's\n"
    "checkpoint.path, or --out; --no-checkpoint writes none). The checkpoint\n"
    "holds the effective config: the file with these options applied.\n"
    "\n"
    "--resume CKPT goes on from a checkpoint until the total number of epochs is\n"
    "reached, and writes back to CKPT unless --out says otherwise. Without\n"
    "CONFIG the checkpoint's own config is used; with one, it must describe the\n"
    "same model, loss, optimiser and data handling (epochs may grow).\n"
    "--threads N splits each batch across N threads (default: every core this\n"
    "process may use); the same N gives the same bits.\n"
    "A progress bar goes to stderr when it is a terminal.\n";

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
    bool no_checkpoint;
    int thread_count;    /* --threads, or every core */
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

/* Every output of the run, checked before the first epoch: a wrong --out
 * or --log fails in the first second, and nothing that is not a regular
 * file of ours is ever replaced. */
static int check_outputs(const nn_config *cfg, const char *checkpoint, const char *best, const char *log_path,
                         nn_error *err) {
    if (checkpoint && nn_output_check(checkpoint, "checkpoint", err) != 0) return -1;
    if (checkpoint && cfg->train.early_stop && nn_output_check(best, "best checkpoint", err) != 0) return -1;
    if (log_path && nn_output_check(log_path, "log", err) != 0) return -1;
    if (checkpoint && cli_make_parent_dirs(checkpoint, err) != 0) return -1;
    if (log_path && cli_make_parent_dirs(log_path, err) != 0) return -1;
    return 0;
}

/* What the fit loop's callbacks write to: the progress bar, stdout, the
 * log and the checkpoint files. */
typedef struct run_outputs {
    progress_bar bar;
    train_output out;
    FILE *log;
    const char *checkpoint, *best;
} run_outputs;

static void epoch_start(void *user, int epoch) {
    run_outputs *o = user;
    o->bar.epoch = epoch;
    o->bar.start = wall_seconds();
}

static void progress_to_bar(void *user, int done, int total, double running_loss) {
    progress_draw(&((run_outputs *)user)->bar, done, total, running_loss);
}

static void epoch_end(void *user, const nn_epoch_report *report) {
    run_outputs *o = user;
    output_epoch(&o->out, report);
    if (o->log) log_epoch(o->log, o->out.task, report);
}

static int save_checkpoint(void *user, const nn_trainer *t, bool best, nn_error *err) {
    run_outputs *o = user;
    return nn_checkpoint_save(best ? o->best : o->checkpoint, t, err);
}

static int run_training(nn_config *cfg, const train_options *o, output_format format) {
    nn_error err = {0};
    int status = EXIT_DONE;
    FILE *log = NULL;
    const char *checkpoint = o->no_checkpoint ? NULL : cfg->checkpoint_path;
    const char *log_path = o->log ? o->log : cfg->train.log;
    char best[4096] = "";
    if (checkpoint) best_path(best, sizeof best, checkpoint);
    if (check_outputs(cfg, checkpoint, best, log_path, &err) != 0) return cli_fail(&err);
    nn_trainer *t = nn_trainer_create(cfg, o->thread_count, &err);
    if (!t) return cli_fail(&err);
    if (o->resume && nn_trainer_resume(t, o->resume, &err) != 0) goto fail;
    if (log_path) {
        bool append = o->resume && access(log_path, F_OK) == 0;
        if (!(log = fopen(log_path, append ? "a" : "w"))) {
            nn_error_set(&err, NN_ERR_RUNTIME, "%s: cannot write the log: %s", log_path, strerror(errno));
            goto fail;
        }
        if (!append) log_header(log, t->task);
    }
    if (t->epoch >= cfg->train.epochs)
        fprintf(stderr, "nnseq: %s has already trained %d of %d epochs\n", o->resume, t->epoch, cfg->train.epochs);
    run_outputs outputs = {{isatty(STDERR_FILENO) != 0, 0, 0, 0, cfg->train.epochs}, {format, false, t->task}, log,
                           checkpoint, best};
    nn_fit_callbacks callbacks = {&outputs, epoch_start, outputs.bar.enabled ? progress_to_bar : NULL, epoch_end,
                                  checkpoint ? save_checkpoint : NULL};
    nn_fit_result result;
    if (nn_fit(t, &callbacks, &result, &err) != 0) goto fail;
    if (result.stopped_early)
        fprintf(stderr, "nnseq: early stop after epoch %d: no validation improvement for %d epochs%s%s%s\n",
                result.stop_epoch, cfg->train.patience, checkpoint ? " (best in " : "", checkpoint ? best : "",
                checkpoint ? ")" : "");
    if (result.has_test) output_test(&outputs.out, &result.test, checkpoint);
    fflush(stdout);
    if (checkpoint) fprintf(stderr, "nnseq: wrote %s\n", checkpoint);
    else fprintf(stderr, "nnseq: no checkpoint written (--no-checkpoint)\n");
    goto done;
fail:
    status = cli_fail(&err);
done:
    if (log) fclose(log);
    nn_trainer_free(t);
    return status;
}

/* The config of the run: CONFIG with the options applied, or with --resume
 * and no CONFIG the checkpoint's own. With both, CONFIG must describe what
 * the checkpoint trained. */
static int effective_config(nn_config *cfg, const char *config_path, const train_options *o) {
    nn_error err = {0};
    int status = config_path ? nn_config_load(cfg, config_path, &err) : nn_checkpoint_read_config(cfg, o->resume, &err);
    if (status != 0) return cli_fail(&err);
    if ((status = apply_overrides(cfg, o)) != 0) {
        nn_config_free(cfg);
        return status;
    }
    if (o->init && replace_string(&cfg->init, o->init) != 0) {
        nn_config_free(cfg);
        return cli_fail((nn_error_oom(&err, "--init"), &err));
    }
    /* The checkpoint goes where it is written: --out, else back where
     * --resume read it, else the config's checkpoint.path. */
    const char *out = o->out ? o->out : o->resume;
    if (out && replace_string(&cfg->checkpoint_path, out) != 0) {
        nn_config_free(cfg);
        return cli_fail((nn_error_oom(&err, "--out"), &err));
    }
    if (config_path && o->resume) {
        nn_config trained;
        if (nn_checkpoint_read_config(&trained, o->resume, &err) != 0) {
            nn_config_free(cfg);
            return cli_fail(&err);
        }
        char difference[512];
        bool differ = nn_config_differ(&trained, cfg, difference, sizeof difference);
        nn_config_free(&trained);
        if (differ) {
            nn_config_free(cfg);
            nn_error_set(&err, NN_ERR_INPUT, "%s: cannot resume from %s: %s (resume with the config it trained "
                         "with, or leave CONFIG out to use the checkpoint's)", config_path, o->resume, difference);
            return cli_fail(&err);
        }
    }
    return 0;
}

int command_train(int argc, char **argv) {
    train_options o = {0};
    bool help = false;
    cli_option options[] = {
        {"--epochs", &o.epochs, NULL}, {"--lr", &o.lr, NULL},           {"--batch-size", &o.batch_size, NULL},
        {"--seed", &o.seed, NULL},     {"--threads", &o.threads, NULL}, {"--out", &o.out, NULL},
        {"--resume", &o.resume, NULL}, {"--init", &o.init, NULL},       {"--log", &o.log, NULL},
        {"--format", &o.format, NULL}, {"--no-checkpoint", NULL, &o.no_checkpoint},
    };
    const char *positionals[1];
    int count;
    if (cli_parse("train", argc, argv, 2, options, sizeof options / sizeof options[0], positionals, 1, &count, &help))
        return EXIT_USAGE;
    if (help) {
        fputs(train_help, stdout);
        return EXIT_DONE;
    }
    if (count != 1 && !o.resume) {
        fprintf(stderr, "nnseq train: expected one CONFIG file (or --resume CKPT)\n%s", train_help);
        return EXIT_USAGE;
    }
    if (o.no_checkpoint && o.out) {
        fprintf(stderr, "nnseq train: --out and --no-checkpoint contradict each other: give one\n");
        return EXIT_USAGE;
    }
    output_format format = FORMAT_TEXT;
    if ((o.format && cli_format("train", o.format, &format)) || cli_threads("train", o.threads, &o.thread_count))
        return EXIT_USAGE;
    nn_config cfg;
    int status = effective_config(&cfg, count ? positionals[0] : NULL, &o);
    if (status != 0) return status;
    nn_config_warning warnings[NN_CONFIG_MAX_WARNINGS];
    int warning_count = nn_config_lint(&cfg, warnings, NN_CONFIG_MAX_WARNINGS);
    for (int i = 0; i < warning_count && i < NN_CONFIG_MAX_WARNINGS; i++)
        fprintf(stderr, "nnseq: warning: %s\n", warnings[i].message);
    status = run_training(&cfg, &o, format);
    nn_config_free(&cfg);
    return status;
}
