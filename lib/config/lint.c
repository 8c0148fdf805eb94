/* The lint rules of lint.h. Each looks only at the parsed config (kinds,
 * arguments, positions), not at the YAML, so a config read back from a
 * checkpoint gets the same warnings. */
#include "config/lint.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct sink {
    const nn_config *cfg;
    nn_config_warning *warnings;
    int max, count;
} sink;

__attribute__((format(printf, 4, 5))) static void warn(sink *s, int line, int column, const char *format, ...) {
    if (s->count < s->max) {
        nn_config_warning *w = &s->warnings[s->count];
        w->line = line;
        w->column = column;
        int used = line > 0 ? snprintf(w->message, sizeof w->message, "%s:%d:%d: ", s->cfg->path, line, column)
                            : snprintf(w->message, sizeof w->message, "%s: ", s->cfg->path);
        if (used < 0 || (size_t)used >= sizeof w->message) used = 0;
        va_list ap;
        va_start(ap, format);
        vsnprintf(w->message + used, sizeof w->message - (size_t)used, format, ap);
        va_end(ap);
    }
    s->count++;
}

static const nn_arg_value *arg_of(const nn_arg_spec *specs, int count, const nn_arg_value *values,
                                  const char *name) {
    int index = nn_arg_find(specs, count, name);
    return index < 0 ? NULL : &values[index];
}

/* Keras's BatchNormalization momentum is the weight of the running
 * average, torch's the weight of the new batch: 0.99 from a Keras model is
 * torch's 0.01, and as torch's it makes the running statistics follow
 * each batch. Above 0.5 it is far likelier the Keras sense. */
static void check_batch_norm_momentum(sink *s, const nn_layer_spec *layer) {
    if (strncmp(layer->kind->name, "BatchNorm", 9)) return;
    const nn_arg_value *momentum = arg_of(layer->kind->args, layer->kind->arg_count, layer->args, "momentum");
    if (!momentum || !momentum->given || !(momentum->value[0] > 0.5)) return;
    warn(s, layer->line, layer->column,
         "%s momentum=%g weights each new batch by %g in the running statistics (torch's momentum is 1 minus "
         "Keras's: Keras's %g is torch's %g)",
         layer->kind->name, momentum->value[0], momentum->value[0], momentum->value[0], 1 - momentum->value[0]);
}

/* The loss and the last layer must agree on what the model outputs:
 * cross_entropy takes logits (it applies log-softmax itself), nll takes
 * log-probabilities, bce probabilities, bce_with_logits logits. */
static void check_output_and_loss(sink *s) {
    const nn_config *cfg = s->cfg;
    if (cfg->model.layer_count < 1 || !cfg->loss.kind) return;
    const nn_layer_spec *last = &cfg->model.layers[cfg->model.layer_count - 1];
    const char *layer = last->kind->name, *loss = cfg->loss.kind->name;
    if (!strcmp(loss, "cross_entropy") && !strcmp(layer, "Softmax"))
        warn(s, last->line, last->column,
             "the last layer is Softmax but loss cross_entropy applies its own softmax: the model trains "
             "through a double softmax (torch's CrossEntropyLoss takes logits: remove the Softmax)");
    else if (!strcmp(loss, "cross_entropy") && !strcmp(layer, "LogSoftmax"))
        warn(s, last->line, last->column,
             "the last layer is LogSoftmax and loss cross_entropy applies log-softmax again, which changes "
             "nothing (remove the LogSoftmax, or use loss: nll)");
    else if (!strcmp(loss, "nll") && strcmp(layer, "LogSoftmax"))
        warn(s, last->line, last->column,
             "loss nll expects log-probabilities but the last layer is %s, not LogSoftmax (end the model with "
             "LogSoftmax, or use loss: cross_entropy on the raw outputs)",
             layer);
    else if (!strcmp(loss, "bce") && strcmp(layer, "Sigmoid"))
        warn(s, last->line, last->column,
             "loss bce expects probabilities in [0, 1] but the last layer is %s, not Sigmoid (end the model with "
             "Sigmoid, or use loss: bce_with_logits on the raw outputs)",
             layer);
    else if (!strcmp(loss, "bce_with_logits") && !strcmp(layer, "Sigmoid"))
        warn(s, last->line, last->column,
             "the last layer is Sigmoid but loss bce_with_logits applies its own sigmoid: the model trains "
             "through a double sigmoid (remove the Sigmoid, or use loss: bce)");
}

/* torch.optim.SGD has no default learning rate, so a config written for
 * torch always gives one; nnseq falls back to its own default, which is
 * rarely the rate meant. */
static void check_sgd_lr(sink *s) {
    const nn_config *cfg = s->cfg;
    const nn_optimizer_kind *kind = cfg->optimizer.kind;
    if (!kind || strcmp(kind->name, "sgd")) return;
    int index = nn_arg_find(kind->args, kind->arg_count, "lr");
    if (index < 0 || cfg->optimizer.args[index].given) return;
    double lr = kind->args[index].default_value[0];
    if (cfg->optimizer.line > 0)
        warn(s, cfg->optimizer.line, cfg->optimizer.column,
             "optimizer sgd without lr: torch.optim.SGD requires one; nnseq uses its default lr=%g (give "
             "optimizer: {name: sgd, lr: ...})",
             lr);
    else
        warn(s, 0, 0,
             "no optimizer given, so sgd without lr: torch.optim.SGD requires one; nnseq uses its default "
             "lr=%g (give optimizer: {name: sgd, lr: ...})",
             lr);
}

int nn_config_lint(const nn_config *cfg, nn_config_warning *warnings, int max) {
    sink s = {cfg, warnings, warnings ? max : 0, 0};
    for (int i = 0; i < cfg->model.layer_count; i++) check_batch_norm_momentum(&s, &cfg->model.layers[i]);
    check_output_and_loss(&s);
    check_sgd_lr(&s);
    return s.count;
}
