/* The loss table, the batch reduction and what the losses share. Each loss
 * lives in its own file in lib/losses/; adding one is a file there and a
 * line below. */
#include <math.h>
#include <string.h>

#include "core/registry.h"
#include "losses/loss.h"
#include "losses/losses.h"

static const nn_loss_kind *const kinds[] = {
    &nn_cross_entropy_kind,
    &nn_nll_kind,
    &nn_bce_kind,
    &nn_bce_with_logits_kind,
    &nn_mse_kind,
    &nn_l1_kind,
    &nn_smooth_l1_kind,
    &nn_huber_kind,
};

NN_REGISTRY(nn_loss_kind, nn_loss_kind, kinds, false)

double nn_loss_batch(const nn_loss *loss, const float *output, const nn_targets *targets, int batch, int outputs,
                     float *grad, double *numerator, double *denominator) {
    loss->kind->compute(loss, output, targets, batch, outputs, grad, numerator, denominator);
    double total = 0, weight = 0;
    for (int b = 0; b < batch; b++) {
        total += numerator[b];
        weight += denominator[b];
    }
    size_t count = (size_t)batch * (size_t)outputs;
    /* Nothing counted (every sample ignored): torch's 0/0 is NaN, which
     * would poison the weights through the optimiser; nothing to learn is
     * a zero step. */
    if (weight == 0) {
        if (grad) memset(grad, 0, count * sizeof *grad);
        return 0;
    }
    if (grad)
        for (size_t i = 0; i < count; i++) grad[i] = (float)(grad[i] / weight);
    return total / weight;
}

double nn_loss_arg(const nn_loss *loss, const char *name) {
    const nn_loss_kind *kind = loss->kind;
    int i = nn_arg_find(kind->args, kind->arg_count, name);
    if (i < 0) return NAN;
    /* The spec's default rather than args[i] when not given, so that a loss
     * the config did not fill (a test's, a tool's) has torch's defaults. */
    return loss->args[i].given ? loss->args[i].value[0] : kind->args[i].default_value[0];
}

bool nn_loss_ignores_label(const nn_loss *loss, int32_t label) {
    const nn_loss_kind *kind = loss->kind;
    if (nn_arg_find(kind->args, kind->arg_count, "ignore_index") < 0) return false;
    /* In double: ignore_index may be any integer, even one no int32 equals. */
    return (double)label == nn_loss_arg(loss, "ignore_index");
}

bool nn_loss_skip_label(int32_t label, double ignore_index, int outputs, float *grad_row, double *numerator,
                        double *denominator) {
    bool ignored = (double)label == ignore_index;
    if (!ignored && label >= 0 && label < outputs) return false;
    if (grad_row) memset(grad_row, 0, (size_t)outputs * sizeof *grad_row);
    /* A label out of range is the dataset's bug; NaN makes the loss say so
     * where reading past the row would crash or, worse, train on garbage. */
    *numerator = ignored ? 0 : NAN;
    *denominator = ignored ? 0 : 1;
    return true;
}

int nn_loss_check_vector(const nn_loss *loss, int outputs, bool single_allowed, nn_error *err) {
    if (!loss->vector) return 0;
    const char *name = loss->kind->vector_arg;
    if (!name) return nn_error_set(err, NN_ERR_INPUT, "%s takes no list argument", loss->kind->name);
    if (loss->vector_count != outputs && !(single_allowed && loss->vector_count == 1))
        return nn_error_set(err, NN_ERR_INPUT, "%s has %d value%s but the model has %d output%s: give %s%d, one per %s",
                            name, loss->vector_count, loss->vector_count == 1 ? "" : "s", outputs,
                            outputs == 1 ? "" : "s", single_allowed ? "1 (for every output) or " : "", outputs,
                            loss->kind->target == NN_LOSS_CLASSES ? "class" : "output");
    for (int i = 0; i < loss->vector_count; i++)
        if (!isfinite(loss->vector[i]) || loss->vector[i] < 0)
            return nn_error_set(err, NN_ERR_INPUT, "%s[%d] is %g but must be a finite number >= 0", name, i,
                                (double)loss->vector[i]);
    return 0;
}

int nn_loss_check_classes(const nn_loss *loss, nn_shape shape, const char *one_output, nn_error *err) {
    char text[64];
    nn_shape_format(shape, text, sizeof text);
    if (shape.rank != 1)
        return nn_error_set(err, NN_ERR_INPUT,
                            "the model's output has shape %s but %s needs one score per class, shape (classes,): "
                            "end the model with Flatten and Linear(out_features=classes)",
                            text, loss->kind->name);
    if (shape.dims[0] < 2)
        return nn_error_set(err, NN_ERR_INPUT,
                            "the model's output has shape %s but %s needs one score per class, at least 2: %s",
                            text, loss->kind->name, one_output);
    return nn_loss_check_vector(loss, shape.dims[0], false, err);
}

void nn_loss_of_differences(const float *output, const float *target, int batch, int outputs,
                            nn_difference_term term, double parameter, float *grad, double *numerator,
                            double *denominator) {
    for (int b = 0; b < batch; b++) {
        size_t row = (size_t)b * (size_t)outputs;
        double sum = 0, derivative;
        for (int j = 0; j < outputs; j++) {
            /* In double, as torch's float64 reference: the difference of two
             * floats is then exact or nearly so. */
            sum += term((double)output[row + j] - target[row + j], parameter, &derivative);
            if (grad) grad[row + j] = (float)derivative;
        }
        numerator[b] = sum;
        denominator[b] = outputs;
    }
}
