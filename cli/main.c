#include <cblas.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#ifdef NN_MPI
#include "train/collective_mpi.h"
#endif
#include "config/suggest.h"

/* Whatever a command printed must have reached standard output: a full
 * disk or a closed pipe is a failure, not exit 0 with the results lost. */
#ifndef NNSEQ_REVISION
#define NNSEQ_REVISION ""
#endif

const char *nnseq_version(void) {
    return NNSEQ_REVISION[0] ? NNSEQ_VERSION " (git " NNSEQ_REVISION ")" : NNSEQ_VERSION;
}

static int finish_output(int status) {
    if (fflush(stdout) == 0 && !ferror(stdout)) return status;
    fprintf(stderr, "nnseq: cannot write to standard output: %s\n", strerror(errno));
    return status == EXIT_DONE ? EXIT_FAILED : status;
}

static const char usage[] =
    "usage: nnseq COMMAND [ARGS]\n"
    "\n"
    "Trains PyTorch-style Sequential models described by YAML configs.\n"
    "\n"
    "commands:\n"
    "  train CONFIG      train, print per-epoch metrics, write the checkpoint\n"
    "  eval CKPT         loss, accuracy, per-class metrics, confusion matrix\n"
    "  print CONFIG|CKPT the model as PyTorch prints it, shapes, mult-adds (--profile: timings)\n"
    "  predict CKPT [IMAGES|-]  one line per image: index, class, probability\n"
    "  export CKPT OUT.npz|OUT.onnx|OUT.c  the weights (.npz), ONNX, or a C99 source\n"
    "  plot RUN... -o OUT.svg   learning curves of --log files or checkpoints\n"
    "  diff A.ckpt B.ckpt       what differs between two runs\n"
    "\n"
    "'nnseq COMMAND --help' describes a command. Exit status: 0 done, 1 failed\n"
    "while running, 2 bad usage or bad input.\n";

/* The verbs of Keras's model API, which a Keras user reaches for first. */
static const char *keras_command(const char *command) {
    static const char *const verbs[][2] = {{"fit", "train"}, {"evaluate", "eval"}, {"summary", "print"}};
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (strcmp(command, verbs[i][0]) == 0) return verbs[i][1];
    return NULL;
}

/* A file given without a command: a config is for train, a checkpoint for
 * eval. */
static const char *command_for_file(const char *argument) {
    static const char *const suffixes[][2] = {{".yaml", "train"}, {".yml", "train"}, {".ckpt", "eval"}};
    size_t length = strlen(argument);
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        size_t suffix = strlen(suffixes[i][0]);
        if (length > suffix && strcmp(argument + length - suffix, suffixes[i][0]) == 0) return suffixes[i][1];
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    const char *command = argv[1];
    if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0 || strcmp(command, "help") == 0) {
        fputs(usage, stdout);
        return EXIT_DONE;
    }
    if (strcmp(command, "--version") == 0) {
        /* The BLAS line: which OpenBLAS build (SINGLE_THREADED is the serial
         * one the Makefile prefers) and which kernels it picked for this
         * CPU, since the last digits of every result depend on them. */
        printf("nnseq %s\n%s, kernels %s\n", nnseq_version(), openblas_get_config(), openblas_get_corename());
#ifdef NN_MPI
        char library[256];
        nn_mpi_library(library, sizeof library);
        printf("MPI: %s (mpirun -np N nnseq train CONFIG trains data-parallel)\n", library);
#else
        printf("MPI: not built in (make MPI=1 builds with Open MPI)\n");
#endif
        return EXIT_DONE;
    }
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } commands[] = {
        {"train", command_train}, {"eval", command_eval},     {"print", command_print},
        {"predict", command_predict}, {"export", command_export}, {"plot", command_plot}, {"diff", command_diff},
    };
    enum { COMMAND_COUNT = sizeof commands / sizeof commands[0] };
    const char *names[COMMAND_COUNT];
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        if (strcmp(command, commands[i].name) == 0) return finish_output(commands[i].run(argc, argv));
        names[i] = commands[i].name;
    }
    char hint[512] = "";
    const char *nearest = nn_nearest_name(command, names, COMMAND_COUNT);
    const char *meant = keras_command(command);
    const char *file_command = command_for_file(command);
    if (nearest)
        snprintf(hint, sizeof hint, " (did you mean '%s'?)", nearest);
    else if (meant)
        snprintf(hint, sizeof hint, " (Keras's model.%s() is 'nnseq %s')", command, meant);
    else if (file_command)
        snprintf(hint, sizeof hint, " (did you mean 'nnseq %s %s'?)", file_command, command);
    fprintf(stderr, "nnseq: unknown command '%s'%s\n\n%s", command, hint, usage);
    return EXIT_USAGE;
}
