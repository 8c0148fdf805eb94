/* Optimisers with torch.optim's update equations, over the model's one flat
 * parameter buffer. One file per optimiser in lib/optimizers/, one entry in
 * lib/optimizer.c's table.
 *
 * The state (momentum buffers, Adam's moments, the step count) lives in an
 * nn_optimizer the caller owns and is listed as named arrays so that the
 * checkpoint can save and restore it. */
#ifndef NNSEQ_OPTIMIZER_H
#define NNSEQ_OPTIMIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/args.h"
#include "core/error.h"
#include "core/shape.h"

#define NN_OPTIMIZER_MAX_BUFFERS 2

typedef struct nn_optimizer_kind nn_optimizer_kind;

typedef struct nn_optimizer {
    const nn_optimizer_kind *kind;
    nn_arg_value args[NN_MAX_ARGS];   /* indexed like kind->args */
    double lr;                        /* current learning rate (a scheduler may change it) */
    int64_t steps;                    /* updates made so far */
    size_t param_count;
    float *buffers[NN_OPTIMIZER_MAX_BUFFERS]; /* each param_count floats, zero at start */
} nn_optimizer;

struct nn_optimizer_kind {
    const char *name;                 /* "sgd", "adam", "adamw" */
    const char *alias;                /* torch's class name: "SGD" */
    const nn_arg_spec *args;
    int arg_count;
    int buffer_count;
    const char *buffer_names[NN_OPTIMIZER_MAX_BUFFERS]; /* "momentum_buffer", "exp_avg", ... */
    /* Checks argument values (ranges, combinations); message without location. */
    int (*check)(const nn_arg_value *args, nn_error *err);
    /* One update of the parameters [first, first + count) from their
     * gradients, using and updating opt's state for that range only.
     * params, grads and opt->buffers are the whole flat buffers; disjoint
     * ranges of one update may run on different threads at once, and any
     * split gives the same bits (the rules are elementwise). opt->steps
     * counts the updates before this one. */
    void (*update)(const nn_optimizer *opt, float *params, const float *grads, size_t first, size_t count);
};

/* The registry (optimizer.c; core/registry.h says what each does). */
const nn_optimizer_kind *nn_optimizer_kind_find(const char *name);
const nn_optimizer_kind *const *nn_optimizer_kind_list(int *count);
int nn_optimizer_kind_names(const char **names, int max, int *shown);

/* Allocates the state for param_count parameters; lr from args. */
int nn_optimizer_init(nn_optimizer *opt, const nn_optimizer_kind *kind, const nn_arg_value *args,
                      size_t param_count, nn_error *err);
/* One whole update: every parameter, then the step count. */
void nn_optimizer_step(nn_optimizer *opt, float *params, const float *grads);
/* The parts of one update, for callers that split it across threads:
 * nn_optimizer_update on disjoint ranges covering every parameter, then
 * nn_optimizer_finish_step once. */
void nn_optimizer_update(const nn_optimizer *opt, float *params, const float *grads, size_t first, size_t count);
void nn_optimizer_finish_step(nn_optimizer *opt);
void nn_optimizer_free(nn_optimizer *opt);

/* Value of the named argument (first number), for kinds' step functions. */
double nn_optimizer_arg(const nn_optimizer *opt, const char *name, int index);

#endif
