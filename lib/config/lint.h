/* Warnings about configs that parse and train but train the wrong thing
 * without a word: a softmax before cross_entropy, nll without LogSoftmax,
 * torch.optim.SGD's missing learning rate, Keras's BatchNorm momentum. They
 * are not errors (torch accepts the same models); the command line prints
 * them and goes on. */
#ifndef NNSEQ_LINT_H
#define NNSEQ_LINT_H

#include "config/config.h"

#define NN_CONFIG_MAX_WARNINGS 8   /* ample: each rule but momentum's warns at most once */

typedef struct nn_config_warning {
    int line, column;      /* where in the config, 1-based; 0 when it is not written there */
    char message[1024];    /* "PATH:LINE:COLUMN: what is wrong (what to do)", or "PATH: ..." without a place */
} nn_config_warning;

/* Checks cfg (after any command-line overrides, which count as given) and
 * writes its first max warnings to warnings (which may be NULL when max is
 * 0): the layers' first, in order, then the loss's, then the optimiser's.
 * Returns how many there are in all, which may be more than max. Never
 * fails. */
int nn_config_lint(const nn_config *cfg, nn_config_warning *warnings, int max);

#endif
