/* nnseq train CONFIG: the training loop's outside: options, metrics lines,
 * progress bar, CSV log, checkpoints (last, and best under early stopping). */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io/atomic_file.h"
#include "io/output_lock.h"
#include "train/fit.h"
#include "io/checkpoint.h"
#include "config/config.h"
#include "config/lint.h"
#include "train/train.h"
#ifdef NN_MPI
#include "train/collective_mpi.h"
#endif
#include "cli.h"
#include "progress.h"
#include "train_report.h"

static const char train_help[] =
    "usage: nnseq train CONFIG [--epochs N] [--lr X] [--batch-size N] [--seed N]\n"
    "                          [--threads N] [--out CKPT | --no-checkpoint] [--resume CKPT]\n"
    "                          [--init NPZ] [--log CSV|JSONL] [--format text|json|tsv]\n"
    "                          [--resume-anyway] [--allow-nonfinite]\n"
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
    "same model, loss, optimiser and data handling (epochs may grow), and the\n"
    "data files must hold what it trained on (their sizes and CRCs are stored);\n"
    "--resume-anyway goes on despite a difference and records it in the\n"
    "checkpoint. --allow-nonfinite resumes from NaN or infinite weights.\n"
    "SIGINT or SIGTERM (^C) finishes the step, saves a checkpoint that --resume\n"
    "continues exactly, and exits 130 or 143; a second one exits at once.\n"
    "--threads N splits each batch across N threads (default: every core this\n"
    "process may use); the same N gives the same bits.\n"
    "--log FILE writes a row per epoch: CSV, or JSON lines (--format json's\n"
    "epoch objects) when FILE ends in .jsonl; --resume appends to it, after\n"
    "cutting off rows of epochs the checkpoint has not trained.\n"
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
    bool no_checkpoint, resume_anyway, allow_nonfinite;
    int thread_count;    /* --threads, or every core */
    char config_difference[512];   /* what --resume-anyway let through of the config, or "" */
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

/* SIGINT and SIGTERM: the first lets the step in flight finish, then the
 * run saves a checkpoint that --resume continues from exactly and exits
 * 128 + the signal; a second one exits at once (the atomic writer blocks
 * signals while its temporary file has a name, so none is left). The only
 * state the handler may touch is this flag. */
static volatile sig_atomic_t received_signal;

/* The run's lock files, which the second signal removes on its way out
 * (unlink is async-signal-safe), as the lock's release would have. */
enum { LOCK_FILES = 3 };
static char lock_files[LOCK_FILES][4096];

static void on_signal(int signal_number) {
    if (received_signal) {
        for (int i = 0; i < LOCK_FILES; i++)
            if (lock_files[i][0]) unlink(lock_files[i]);
        _exit(128 + signal_number);
    }
    received_signal = signal_number;
}

static void catch_signals(const nn_output_lock *const locks[LOCK_FILES]) {
    for (int i = 0; i < LOCK_FILES; i++)
        if (locks[i]->fd >= 0) snprintf(lock_files[i], sizeof lock_files[i], "%s", locks[i]->lock_path);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    /* A write in progress when the signal lands (to a pipe: mpirun's, a
     * pager's) goes on instead of failing with EINTR. */
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
}

static bool stop_requested(void *user) {
    (void)user;
    return received_signal != 0;
}

/* What the fit loop's callbacks write to: the progress bar, stdout, the
 * log and the checkpoint files. */
typedef struct run_outputs {
    progress_bar bar;
    train_output out;
    FILE *log;
    bool log_json;          /* a .jsonl log: --format json's epoch objects, no header */
    const char *log_path;
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

/* Every write is checked as it happens: a full disk stops the run with
 * the file named, rather than ending in exit 0 and an empty log. */
static int epoch_end(void *user, const nn_epoch_report *report, nn_error *err) {
    run_outputs *o = user;
    output_epoch(&o->out, report);
    if (fflush(stdout) != 0 || ferror(stdout))
        return nn_error_set(err, NN_ERR_RUNTIME, "cannot write the metrics to standard output: %s", strerror(errno));
    if (o->log) {
        (o->log_json ? log_epoch_json : log_epoch)(o->log, o->out.task, report);
        if (fflush(o->log) != 0 || ferror(o->log))
            return nn_error_set(err, NN_ERR_RUNTIME, "%s: cannot write the log: %s", o->log_path, strerror(errno));
    }
    return 0;
}

static int save_checkpoint(void *user, const nn_trainer *t, bool best, nn_error *err) {
    run_outputs *o = user;
    return nn_checkpoint_save(best ? o->best : o->checkpoint, t, err);
}

/* The locks on the run's outputs, held from before the first epoch to
 * the end (see output_lock.h). */
typedef struct run_locks {
    nn_output_lock checkpoint, best, log;
} run_locks;

static int lock_outputs(run_locks *locks, const nn_config *cfg, const char *checkpoint, const char *best,
                        const char *log_path, nn_error *err) {
    locks->checkpoint.fd = locks->best.fd = locks->log.fd = -1;
    if (checkpoint && nn_output_lock_take(&locks->checkpoint, checkpoint, "checkpoint", err) != 0) return -1;
    if (checkpoint && cfg->train.early_stop && nn_output_lock_take(&locks->best, best, "best checkpoint", err) != 0)
        return -1;
    if (log_path && nn_output_lock_take(&locks->log, log_path, "log", err) != 0) return -1;
    return 0;
}

static void unlock_outputs(run_locks *locks) {
    nn_output_lock_release(&locks->checkpoint);
    nn_output_lock_release(&locks->best);
    nn_output_lock_release(&locks->log);
}

static const char *signal_name(int signal_number) {
    return signal_number == SIGINT ? "SIGINT" : signal_number == SIGTERM ? "SIGTERM" : "a signal";
}

/* Under mpirun (a build with MPI): the ranks, whose rank 0 alone prints,
 * logs and writes; a failure on any rank ends the whole job, named. */
typedef struct ranks {
    nn_collective group;
    bool started;
} ranks;

static bool quiet_rank(const ranks *r) { return r->started && r->group.rank != 0; }

static int rank_fail(const ranks *r, const nn_error *err) {
    if (!r->started || r->group.size <= 1) return cli_fail(err);
    fprintf(stderr, "nnseq: rank %d of %d: %s\n", r->group.rank, r->group.size, err->message);
    int status = err->status == NN_ERR_INPUT ? EXIT_USAGE : EXIT_FAILED;
#ifdef NN_MPI
    /* The others may be waiting in a collective step: end them all. */
    fflush(stderr);
    nn_mpi_abort(status);
#endif
    return status;
}

/* A log named *.jsonl holds JSON lines, any other CSV. */
static bool is_jsonl(const char *path) {
    size_t length = strlen(path);
    return length >= 6 && strcmp(path + length - 6, ".jsonl") == 0;
}

/* Before a resumed run appends to its log: the rows of epochs the
 * checkpoint has not done (a run killed between writing the row and the
 * checkpoint, a resume from the best checkpoint) and a last line cut short
 * are cut off, so that the log ends where the checkpoint does and reads as
 * a straight run's. A line that is not one of our rows is refused: the file
 * is not this run's log. *has_header: a CSV log kept its header line. */
static int trim_log(const char *path, bool json, int epochs, bool *has_header, nn_error *err) {
    FILE *file = fopen(path, "r");
    if (!file) return nn_error_set(err, NN_ERR_RUNTIME, "%s: cannot read the log: %s", path, strerror(errno));
    char *line = NULL;
    size_t capacity = 0;
    long keep = 0, number = 0;
    ssize_t length;
    int status = 0, dropped_from = 0;
    *has_header = false;
    while ((length = getline(&line, &capacity, file)) > 0) {
        number++;
        if (line[length - 1] != '\n') break;   /* cut short by a kill: dropped */
        int epoch = 0, used = 0;
        if (number == 1 && !json && strncmp(line, "epoch,", 6) == 0) {
            *has_header = true;
        } else if (json ? sscanf(line, "{\"epoch\": %d,%n", &epoch, &used) != 1 || used == 0
                        : sscanf(line, "%d,%n", &epoch, &used) != 1 || used == 0) {
            status = nn_error_set(err, NN_ERR_INPUT, "%s: line %ld is not a row of nnseq's %s log (expected %s): give "
                                  "--log another file to resume this run", path, number, json ? "JSON lines" : "CSV",
                                  json ? "{\"epoch\": N, ...}" : "N,lr,...");
            break;
        } else if (epoch > epochs) {
            dropped_from = epoch;
            break;
        }
        keep += (long)length;
    }
    free(line);
    if (ferror(file) && status == 0)
        status = nn_error_set(err, NN_ERR_RUNTIME, "%s: cannot read the log: %s", path, strerror(errno));
    fclose(file);
    if (status != 0) return status;
    if (dropped_from)
        fprintf(stderr, "nnseq: %s: dropped the rows from epoch %d on, which the checkpoint has not trained\n", path,
                dropped_from);
    if (truncate(path, keep) != 0)
        return nn_error_set(err, NN_ERR_RUNTIME, "%s: cannot write the log: %s", path, strerror(errno));
    return 0;
}

static int run_training(nn_config *cfg, const train_options *o, output_format format, const ranks *group) {
    nn_resume_options resume = {o->resume_anyway, o->config_difference[0] ? o->config_difference : NULL,
                                o->allow_nonfinite};
    nn_error err = {0};
    int status = EXIT_DONE;
    FILE *log = NULL;
    bool quiet = quiet_rank(group);
    const char *checkpoint = o->no_checkpoint || quiet ? NULL : cfg->checkpoint_path;
    const char *log_path = quiet ? NULL : o->log ? o->log : cfg->train.log;
    char best[4096] = "";
    if (checkpoint) best_path(best, sizeof best, checkpoint);
    if (check_outputs(cfg, checkpoint, best, log_path, &err) != 0) return rank_fail(group, &err);
    run_locks locks;
    nn_trainer *t = NULL;
    if (lock_outputs(&locks, cfg, checkpoint, best, log_path, &err) != 0) goto fail;
    if (!(t = nn_trainer_create(cfg, o->thread_count, &err))) goto fail;
    t->version = nnseq_version();
    if (o->resume && nn_trainer_resume(t, o->resume, &resume, &err) != 0) goto fail;
    if (group->started && nn_trainer_distribute(t, &group->group, nnseq_version(), &err) != 0) goto fail;
    bool log_json = log_path && is_jsonl(log_path), has_header = false;
    if (log_path) {
        bool append = o->resume && access(log_path, F_OK) == 0;
        if (append && trim_log(log_path, log_json, t->epoch, &has_header, &err) != 0) goto fail;
        if (!(log = fopen(log_path, append ? "a" : "w"))) {
            nn_error_set(&err, NN_ERR_RUNTIME, "%s: cannot write the log: %s", log_path, strerror(errno));
            goto fail;
        }
        if (!log_json && !has_header) log_header(log, t->task);
        if (fflush(log) != 0 || ferror(log)) {
            nn_error_set(&err, NN_ERR_RUNTIME, "%s: cannot write the log: %s", log_path, strerror(errno));
            goto fail;
        }
    }
    if (t->epoch >= cfg->train.epochs && !quiet)
        fprintf(stderr, "nnseq: %s has already trained %d of %d epochs\n", o->resume, t->epoch, cfg->train.epochs);
    run_outputs outputs = {{isatty(STDERR_FILENO) != 0 && !quiet, 0, 0, 0, cfg->train.epochs}, {format, false, t->task}, log,
                           log_json, log_path, checkpoint, best};
    nn_fit_callbacks callbacks = {&outputs, epoch_start, outputs.bar.enabled ? progress_to_bar : NULL,
                                  stop_requested, epoch_end, checkpoint ? save_checkpoint : NULL};
    nn_fit_result result;
    const nn_output_lock *const held[LOCK_FILES] = {&locks.checkpoint, &locks.best, &locks.log};
    catch_signals(held);
    if (nn_fit(t, &callbacks, &result, &err) != 0) goto fail;
    if (result.interrupted && quiet) {
        status = 128 + received_signal;
        goto done;
    }
    if (result.interrupted) {
        if (outputs.bar.enabled) fputs("\r\033[K", stderr);
        int signal_number = received_signal;
        char where[96];
        if (result.interrupted_position > 0)
            snprintf(where, sizeof where, "in epoch %d after %d of %d samples", result.interrupted_epoch,
                     result.interrupted_position, t->train_count);
        else
            snprintf(where, sizeof where, "before epoch %d", result.interrupted_epoch);
        if (checkpoint)
            fprintf(stderr, "nnseq: stopped by %s %s: saved %s; go on with: nnseq train --resume %s\n",
                    signal_name(signal_number), where, checkpoint, checkpoint);
        else
            fprintf(stderr, "nnseq: stopped by %s %s: nothing saved (--no-checkpoint)\n", signal_name(signal_number),
                    where);
        status = 128 + signal_number;
        goto done;
    }
    if (quiet) {
        if (received_signal) status = 128 + received_signal;
        goto done;
    }
    if (result.stopped_early)
        fprintf(stderr, "nnseq: early stop after epoch %d: no validation improvement for %d epochs%s%s%s\n",
                result.stop_epoch, cfg->train.patience, checkpoint ? " (best in " : "", checkpoint ? best : "",
                checkpoint ? ")" : "");
    if (result.has_test) output_test(&outputs.out, &result.test, checkpoint);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        nn_error_set(&err, NN_ERR_RUNTIME, "cannot write the metrics to standard output: %s", strerror(errno));
        goto fail;
    }
    if (checkpoint) fprintf(stderr, "nnseq: wrote %s\n", checkpoint);
    else fprintf(stderr, "nnseq: no checkpoint written (--no-checkpoint)\n");
    /* A signal during the last validation or the test: the run is
     * complete and saved, and the status still says it was stopped. */
    if (received_signal) status = 128 + received_signal;
    goto done;
fail:
    status = rank_fail(group, &err);
done:
    if (log && fclose(log) != 0 && status == EXIT_DONE) {
        nn_error_set(&err, NN_ERR_RUNTIME, "%s: cannot write the log: %s", log_path, strerror(errno));
        status = cli_fail(&err);
    }
    nn_trainer_free(t);
    unlock_outputs(&locks);
    /* The ranks leave together, once rank 0 has written and let go of its
     * outputs: mpirun kills the rest of a job as soon as one rank ends
     * with a non-zero status (130 after a signal). */
    if (group->started && group->group.size > 1) {
        double done = 0;
        nn_error ignored = {0};
        group->group.sum_doubles(&group->group, &done, 1, &ignored);
    }
    return status;
}

/* The config of the run: CONFIG with the options applied, or with --resume
 * and no CONFIG the checkpoint's own. With both, CONFIG must describe what
 * the checkpoint trained. */
static int effective_config(nn_config *cfg, const char *config_path, train_options *o) {
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
    /* Resuming is going on with the same run: whatever changed since,
     * from CONFIG or from the options, must be asked for. */
    if (o->resume) {
        nn_config trained;
        if (nn_checkpoint_read_config(&trained, o->resume, &err) != 0) {
            nn_config_free(cfg);
            return cli_fail(&err);
        }
        bool differ = nn_config_differ(&trained, cfg, o->config_difference, sizeof o->config_difference);
        nn_config_free(&trained);
        if (differ && o->resume_anyway) {
            fprintf(stderr, "nnseq: warning: resuming %s anyway: %s (recorded in the checkpoint)\n", o->resume,
                    o->config_difference);
        } else if (differ) {
            nn_config_free(cfg);
            nn_error_set(&err, NN_ERR_INPUT, "%s: cannot resume from %s: %s (resume with the config and options it "
                         "trained with, leave CONFIG out to use the checkpoint's, or give --resume-anyway)",
                         config_path ? config_path : o->resume, o->resume, o->config_difference);
            return cli_fail(&err);
        } else {
            o->config_difference[0] = '\0';
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
        {"--resume-anyway", NULL, &o.resume_anyway}, {"--allow-nonfinite", NULL, &o.allow_nonfinite},
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
    if (o.resume && o.init) {
        fprintf(stderr, "nnseq train: --init and --resume contradict each other: a resumed run has its weights\n");
        return EXIT_USAGE;
    }
    if (o.resume_anyway && !o.resume) {
        fprintf(stderr, "nnseq train: --resume-anyway goes with --resume CKPT\n");
        return EXIT_USAGE;
    }
    if (o.no_checkpoint && o.out) {
        fprintf(stderr, "nnseq train: --out and --no-checkpoint contradict each other: give one\n");
        return EXIT_USAGE;
    }
    output_format format = FORMAT_TEXT;
    if ((o.format && cli_format("train", o.format, &format)) || cli_threads("train", o.threads, &o.thread_count))
        return EXIT_USAGE;
    ranks group = {0};
#ifdef NN_MPI
    if (nn_mpi_launched()) {
        nn_error err = {0};
        if (nn_mpi_start(&group.group, &err) != 0) return cli_fail(&err);
        group.started = true;
        /* Rank 0 alone speaks on stdout; the others' errors go to stderr. */
        if (group.group.rank != 0 && !freopen("/dev/null", "w", stdout)) {
            nn_error_set(&err, NN_ERR_RUNTIME, "cannot silence standard output: %s", strerror(errno));
            return rank_fail(&group, &err);
        }
    }
#endif
    nn_config cfg;
    int status = effective_config(&cfg, count ? positionals[0] : NULL, &o);
    if (status != 0) {
        if (group.started && group.group.size > 1) {
            nn_error err = {0};
            nn_error_set(&err, status == EXIT_USAGE ? NN_ERR_INPUT : NN_ERR_RUNTIME, "its config was refused (above)");
            return rank_fail(&group, &err);
        }
        return status;
    }
    nn_config_warning warnings[NN_CONFIG_MAX_WARNINGS];
    int warning_count = nn_config_lint(&cfg, warnings, NN_CONFIG_MAX_WARNINGS);
    for (int i = 0; i < warning_count && i < NN_CONFIG_MAX_WARNINGS && !quiet_rank(&group); i++)
        fprintf(stderr, "nnseq: warning: %s\n", warnings[i].message);
    status = run_training(&cfg, &o, format, &group);
    nn_config_free(&cfg);
#ifdef NN_MPI
    /* After a signal mpirun is tearing the job down (SIGTERM, then SIGKILL
     * a second later): MPI_Finalize's handshake through it may never end,
     * so a stopped rank just exits, its checkpoint written and locks gone. */
    if (group.started && !received_signal) nn_mpi_finish();
#endif
    return status;
}
