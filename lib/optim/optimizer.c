/* The optimiser table and what all optimisers share: their state's life
 * cycle and argument look-up. Each optimiser's update lives in
 * lib/optimizers/; adding one is a file there and an entry below. */
#include <stdlib.h>
#include <string.h>

#include "core/registry.h"
#include "optim/optimizer.h"
#include "optim/optimizers.h"

double nn_optimizer_arg(const nn_optimizer *opt, const char *name, int index) {
    int i = nn_arg_find(opt->kind->args, opt->kind->arg_count, name);
    return i < 0 ? 0.0 : opt->args[i].value[index];
}

/* Written as !(value >= 0) so that NaN is rejected too. */
int nn_check_not_negative(const char *name, double value, nn_error *err) {
    if (!(value >= 0)) return nn_error_set(err, NN_ERR_INPUT, "%s must be >= 0, got %g", name, value);
    return 0;
}

static const nn_optimizer_kind *const kinds[] = {&nn_sgd_kind, &nn_adam_kind, &nn_adamw_kind};

/* Names ignore case: torch_ref.py lowercases the optimiser's name, so "Adam"
 * is adam there and here. */
NN_REGISTRY(nn_optimizer_kind, nn_optimizer_kind, kinds, true)

int nn_optimizer_init(nn_optimizer *opt, const nn_optimizer_kind *kind, const nn_arg_value *args,
                      size_t param_count, nn_error *err) {
    memset(opt, 0, sizeof *opt);
    opt->kind = kind;
    memcpy(opt->args, args, (size_t)kind->arg_count * sizeof *args);
    if (kind->check(opt->args, err)) return -1;
    opt->lr = nn_optimizer_arg(opt, "lr", 0);
    opt->param_count = param_count;
    for (int i = 0; i < kind->buffer_count; i++) {
        /* calloc: the rules above rely on zero buffers at step 0. */
        opt->buffers[i] = calloc(param_count ? param_count : 1, sizeof(float));
        if (!opt->buffers[i]) {
            nn_optimizer_free(opt);
            return nn_error_oom(err, "optimizer state");
        }
    }
    return 0;
}

void nn_optimizer_update(const nn_optimizer *opt, float *params, const float *grads, size_t first, size_t count) {
    if (count > 0) opt->kind->update(opt, params, grads, first, count);
}

void nn_optimizer_finish_step(nn_optimizer *opt) { opt->steps++; }

void nn_optimizer_step(nn_optimizer *opt, float *params, const float *grads) {
    nn_optimizer_update(opt, params, grads, 0, opt->param_count);
    nn_optimizer_finish_step(opt);
}

void nn_optimizer_free(nn_optimizer *opt) {
    for (int i = 0; i < NN_OPTIMIZER_MAX_BUFFERS; i++) {
        free(opt->buffers[i]);
        opt->buffers[i] = NULL;
    }
}
