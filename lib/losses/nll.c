/* nll: the output is log-probabilities (after LogSoftmax); sample b's
 * numerator is -w_y output[y], its denominator w_y (torch.nn.NLLLoss, with
 * its class weight and ignore_index; w is 1 without weights). */
#include <string.h>

#include "losses/losses.h"

static const nn_arg_spec args[] = {
    {"ignore_index", NN_ARG_INT, 0, {-100, 0}, NULL},
};

static int check(const nn_loss *loss, nn_shape shape, nn_error *err) {
    return nn_loss_check_classes(loss, shape,
                                 "for a yes/no target with one output use bce (BCELoss) after Sigmoid, "
                                 "or bce_with_logits without it",
                                 err);
}

static void compute(const nn_loss *loss, const float *output, const nn_targets *targets, int batch, int outputs,
                    float *grad, double *numerator, double *denominator) {
    const float *weight = loss->vector;
    double ignore_index = nn_loss_arg(loss, "ignore_index");
    for (int b = 0; b < batch; b++) {
        float *grad_row = grad ? grad + (size_t)b * outputs : NULL;
        int32_t label = targets->labels[b];
        if (nn_loss_skip_label(label, ignore_index, outputs, grad_row, &numerator[b], &denominator[b])) continue;
        double label_weight = weight ? weight[label] : 1;
        numerator[b] = -label_weight * output[(size_t)b * outputs + label];
        denominator[b] = label_weight;
        if (grad_row) {
            memset(grad_row, 0, (size_t)outputs * sizeof *grad_row);
            grad_row[label] = (float)-label_weight;
        }
    }
}

const nn_loss_kind nn_nll_kind = {
    .name = "nll",
    .alias = "NLLLoss",
    .target = NN_LOSS_CLASSES,
    .args = args,
    .arg_count = (int)(sizeof args / sizeof args[0]),
    .vector_arg = "weight",
    .check = check,
    .compute = compute,
};
