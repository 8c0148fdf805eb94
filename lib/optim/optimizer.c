/* The optimiser table and what all optimisers share: their state's life
 * cycle, argument look-up and checks, and the no_decay runs. Each
 * optimiser's update lives in its own file here; adding one is a file and
 * an entry below. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/registry.h"
#include "optim/optimizer.h"
#include "optim/optimizers.h"

double nn_optimizer_arg(const nn_optimizer *opt, const char *name, int index) {
    int i = nn_arg_find(opt->kind->args, opt->kind->arg_count, name);
    return i < 0 ? 0.0 : opt->args[i].value[index];
}

/* Written as !(value >= 0) so that NaN is rejected too, as torch's
 * `not 0.0 <= value` does. */
int nn_check_not_negative(const char *name, double value, nn_error *err) {
    if (!(value >= 0)) return nn_error_set(err, NN_ERR_INPUT, "%s must be >= 0, got %g", name, value);
    return 0;
}

int nn_check_unit_interval(const char *name, double value, nn_error *err) {
    if (!(value >= 0 && value <= 1))
        return nn_error_set(err, NN_ERR_INPUT, "%s must be in [0, 1], got %g", name, value);
    return 0;
}

int nn_check_betas(const nn_arg_value *betas, nn_error *err) {
    for (int i = 0; i < 2; i++)
        if (!(betas->value[i] >= 0 && betas->value[i] < 1))
            return nn_error_set(err, NN_ERR_INPUT, "betas[%d] must be in [0, 1), got %g", i, betas->value[i]);
    return 0;
}

static const nn_optimizer_kind *const kinds[] = {
    &nn_sgd_kind,     &nn_adam_kind,    &nn_adamw_kind, &nn_adadelta_kind, &nn_adagrad_kind,
    &nn_rmsprop_kind, &nn_adamax_kind,  &nn_nadam_kind, &nn_radam_kind,
};

/* Names ignore case: torch_ref.py lowercases the optimiser's name, so "Adam"
 * is adam there and here. */
NN_REGISTRY(nn_optimizer_kind, nn_optimizer_kind, kinds, true)

bool nn_optimizer_has_momentum(const nn_optimizer_kind *kind) { return kind->momentum_arg != NULL; }

static bool buffer_used(const nn_optimizer_kind *kind, const nn_arg_value *args, int index) {
    if (!kind->buffer_names[index]) return false;
    return index < kind->buffer_count || (kind->uses_buffer && kind->uses_buffer(args, index));
}

int nn_optimizer_init(nn_optimizer *opt, const nn_optimizer_kind *kind, const nn_arg_value *args,
                      size_t param_count, nn_error *err) {
    memset(opt, 0, sizeof *opt);
    opt->kind = kind;
    memcpy(opt->args, args, (size_t)kind->arg_count * sizeof *args);
    if (kind->check(opt->args, err)) return -1;
    opt->lr = nn_optimizer_arg(opt, "lr", 0);
    opt->momentum = kind->momentum_arg ? nn_optimizer_arg(opt, kind->momentum_arg, 0) : NAN;
    opt->param_count = param_count;
    for (int i = 0; i < NN_OPTIMIZER_MAX_BUFFERS; i++) {
        if (!buffer_used(kind, opt->args, i)) continue;
        /* calloc: most rules start from zero buffers. */
        opt->buffers[i] = calloc(param_count ? param_count : 1, sizeof(float));
        if (!opt->buffers[i]) {
            nn_optimizer_free(opt);
            return nn_error_oom(err, "optimizer state");
        }
        float start = kind->buffer_start ? kind->buffer_start(opt->args, i) : 0.0f;
        if (start != 0)
            for (size_t j = 0; j < param_count; j++) opt->buffers[i][j] = start;
    }
    return 0;
}

int nn_optimizer_set_no_decay(nn_optimizer *opt, const unsigned char *mask, nn_error *err) {
    free(opt->no_decay);
    opt->no_decay = NULL;
    if (!mask) return 0;
    if (!(opt->no_decay = malloc(opt->param_count ? opt->param_count : 1))) return nn_error_oom(err, "the no_decay mask");
    memcpy(opt->no_decay, mask, opt->param_count);
    return 0;
}

/* A run is equal flags (flags other than 0 and 1 just make shorter runs),
 * read eight at a time: a byte loop costs more than the update it splits. */
size_t nn_optimizer_decay_run(const nn_optimizer *opt, size_t first, size_t end, bool *decayed) {
    const unsigned char *mask = opt->no_decay;
    if (!mask) {
        *decayed = true;
        return end;
    }
    unsigned char flag = mask[first];
    uint64_t same = flag * UINT64_C(0x0101010101010101), word;
    size_t i = first + 1;
    while (i + 8 <= end && (memcpy(&word, mask + i, 8), word == same)) i += 8;
    while (i < end && mask[i] == flag) i++;
    *decayed = flag == 0;
    return i;
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
    free(opt->no_decay);
    opt->no_decay = NULL;
}
