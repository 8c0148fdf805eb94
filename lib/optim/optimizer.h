/* Optimisers with torch.optim's update equations (1.13, single-tensor), over
 * the model's one flat parameter buffer. One file per optimiser in
 * lib/optim/, one entry in lib/optim/optimizer.c's table.
 *
 * The state (momentum buffers, Adam's moments, the step count) lives in an
 * nn_optimizer the caller owns and is listed as named arrays so that the
 * checkpoint can save and restore it: buffers[i] is named
 * kind->buffer_names[i]; the first kind->buffer_count always exist, the
 * others (amsgrad's max_exp_avg_sq, centered RMSprop's grad_avg) only when
 * the arguments use them, and are NULL otherwise. A checkpoint saves and
 * restores every non-NULL buffers[i], i < NN_OPTIMIZER_MAX_BUFFERS. */
#ifndef NNSEQ_OPTIMIZER_H
#define NNSEQ_OPTIMIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/args.h"
#include "core/error.h"
#include "core/shape.h"

#define NN_OPTIMIZER_MAX_BUFFERS 3

typedef struct nn_optimizer_kind nn_optimizer_kind;

typedef struct nn_optimizer {
    const nn_optimizer_kind *kind;
    nn_arg_value args[NN_MAX_ARGS];   /* indexed like kind->args */
    double lr;                        /* current learning rate (a scheduler may change it) */
    /* Current momentum: SGD's and RMSprop's momentum, beta1 of the Adam
     * family; NaN for kinds without one. Set from the arguments by
     * nn_optimizer_init; updates read it, not the arguments, so that a
     * schedule (OneCycleLR's cycle_momentum) may change it between steps. */
    double momentum;
    int64_t steps;                    /* updates made so far */
    size_t param_count;
    float *buffers[NN_OPTIMIZER_MAX_BUFFERS]; /* each param_count floats, or NULL: unused */
    /* NULL: weight decay applies to every parameter. Else param_count flags,
     * 1: no weight decay for this parameter (no_decay: [bias, norm]); owned,
     * set by nn_optimizer_set_no_decay. */
    unsigned char *no_decay;
} nn_optimizer;

struct nn_optimizer_kind {
    const char *name;                 /* "sgd", "adam", "adamw" */
    const char *alias;                /* torch's class name: "SGD" */
    const nn_arg_spec *args;
    int arg_count;
    int buffer_count;                 /* buffers every instance has: buffer_names[0, buffer_count) */
    /* Torch's state names: "momentum_buffer", "exp_avg", ...; after the
     * first buffer_count, those that depend on the arguments, then NULL. */
    const char *buffer_names[NN_OPTIMIZER_MAX_BUFFERS];
    /* Checks argument values (ranges, combinations); message without location. */
    int (*check)(const nn_arg_value *args, nn_error *err);
    /* One update of the parameters [first, first + count) from their
     * gradients, using and updating opt's state for that range only.
     * params, grads and opt->buffers are the whole flat buffers; disjoint
     * ranges of one update may run on different threads at once, and any
     * split gives the same bits (the rules are elementwise). opt->steps
     * counts the updates before this one. */
    void (*update)(const nn_optimizer *opt, float *params, const float *grads, size_t first, size_t count);
    /* NULL: no optional buffers. Else whether args use buffer_names[index]
     * (index >= buffer_count). */
    bool (*uses_buffer)(const nn_arg_value *args, int index);
    /* NULL: buffers start at zero. Else buffer index's value before the
     * first step (Adagrad's initial_accumulator_value, NAdam's mu_product). */
    float (*buffer_start)(const nn_arg_value *args, int index);
    /* The argument whose first number is the momentum ("momentum",
     * "betas"), or NULL: the kind has none. */
    const char *momentum_arg;
};

/* The registry (optimizer.c; core/registry.h says what each does). */
const nn_optimizer_kind *nn_optimizer_kind_find(const char *name);
const nn_optimizer_kind *const *nn_optimizer_kind_list(int *count);
int nn_optimizer_kind_names(const char **names, int max, int *shown);

/* Whether the kind has a momentum a schedule may cycle (opt->momentum). */
bool nn_optimizer_has_momentum(const nn_optimizer_kind *kind);

/* Checks args, allocates the state for param_count parameters; lr and
 * momentum from args. On failure opt holds nothing to free. */
int nn_optimizer_init(nn_optimizer *opt, const nn_optimizer_kind *kind, const nn_arg_value *args,
                      size_t param_count, nn_error *err);
/* Copies mask (param_count flags, see no_decay above), or with NULL goes
 * back to decaying every parameter. */
int nn_optimizer_set_no_decay(nn_optimizer *opt, const unsigned char *mask, nn_error *err);
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

/* For kinds' updates: the end (at most end) of the run of parameters from
 * first whose no_decay flags equal first's, and in *decayed whether weight
 * decay applies to them. Updates loop over these runs so that their inner
 * loops stay branch-free. */
size_t nn_optimizer_decay_run(const nn_optimizer *opt, size_t first, size_t end, bool *decayed);

#endif
