/* The command line: parses arguments, calls lib/, prints results on stdout
 * and messages on stderr, chooses the exit status (0 done, 1 failed while
 * running, 2 bad usage or bad input). */
#ifndef NNSEQ_CLI_H
#define NNSEQ_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "core/error.h"

#define NNSEQ_VERSION "0.1.0"

/* "0.1.0 (git 1234567890)", or NNSEQ_VERSION alone when built outside a
 * git checkout: what --version prints, checkpoints record and the ranks
 * of an MPI run compare (cli/main.c; the Makefile gives the revision). */
const char *nnseq_version(void);

enum { EXIT_DONE = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

typedef enum output_format { FORMAT_TEXT, FORMAT_JSON, FORMAT_TSV } output_format;

/* One option of a command. value receives the argument of options that take
 * one; flag is set for those that do not. */
typedef struct cli_option {
    const char *name;   /* "--epochs" */
    const char **value;
    bool *flag;
} cli_option;

/* Parses argv[first..argc) into options and up to max_positionals
 * positionals ("-" counts as one). Returns 0, or prints a usage error and
 * returns EXIT_USAGE. --help sets *help. */
int cli_parse(const char *command, int argc, char **argv, int first, const cli_option *options, int option_count,
              const char **positionals, int max_positionals, int *positional_count, bool *help);

/* Strict number parsing for option values; on failure prints
 * "nnseq COMMAND: --name expects ..." and returns EXIT_USAGE. */
int cli_int(const char *command, const char *name, const char *text, long min, long max, long *out);
int cli_double(const char *command, const char *name, const char *text, double min, double *out);
int cli_format(const char *command, const char *text, output_format *out);
/* --threads N: nnseq's threads (default: every core this process may
 * use), into *threads; OpenBLAS is set to one thread. */
int cli_threads(const char *command, const char *text, int *threads);

/* Prints text as a JSON string literal (quotes, escapes) on stdout. */
void cli_print_json_string(const char *text);

/* Prints "nnseq: MESSAGE" on stderr and returns the exit status for err. */
int cli_fail(const nn_error *err);

/* Creates the folders above path (mkdir -p of its parent). */
int cli_make_parent_dirs(const char *path, nn_error *err);

int command_train(int argc, char **argv);
int command_eval(int argc, char **argv);
int command_print(int argc, char **argv);
int command_predict(int argc, char **argv);
int command_export(int argc, char **argv);
int command_plot(int argc, char **argv);
int command_diff(int argc, char **argv);

#endif
