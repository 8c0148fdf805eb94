#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "usage: nnseq COMMAND [ARGS]\n"
    "\n"
    "Trains PyTorch-style Sequential models described by YAML configs.\n"
    "\n"
    "commands:\n"
    "  train CONFIG      train, print per-epoch metrics, write the checkpoint\n"
    "  eval CKPT         loss, accuracy, per-class metrics, confusion matrix\n"
    "  print CONFIG|CKPT the model as PyTorch prints it, then a shape table\n"
    "  predict CKPT [IMAGES|-]  one line per image: index, class, probability\n"
    "  export CKPT OUT.npz      the weights as numpy's .npz, state_dict names\n"
    "\n"
    "'nnseq COMMAND --help' describes a command. Exit status: 0 done, 1 failed\n"
    "while running, 2 bad usage or bad input.\n";

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
        printf("nnseq %s\n", NNSEQ_VERSION);
        return EXIT_DONE;
    }
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } commands[] = {
        {"train", command_train}, {"eval", command_eval},     {"print", command_print},
        {"predict", command_predict}, {"export", command_export},
    };
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(command, commands[i].name) == 0) return commands[i].run(argc, argv);
    fprintf(stderr, "nnseq: unknown command '%s'\n\n%s", command, usage);
    return EXIT_USAGE;
}
