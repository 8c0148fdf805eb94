/* cross_entropy: log-softmax fused with nll (torch.nn.CrossEntropyLoss),
 * with torch's class weight, ignore_index and label_smoothing.
 *
 * With C classes, weights w (all 1 when not given), smoothing eps and
 * -log p_c = lse - x_c, torch's mean is (aten's
 * cross_entropy_loss_label_smoothing)
 *     (1 - eps) sum_b w_y (-log p_y) / sum_b w_y
 *   + (eps / C) sum_b sum_c w_c (-log p_c) / sum_b w_y,
 * over the samples not ignored, so sample b's numerator is
 * (1 - eps) w_y (-log p_y) + (eps / C) sum_c w_c (-log p_c) and its
 * denominator w_y. */
#include <math.h>

#include "losses/losses.h"

static const nn_arg_spec args[] = {
    {"ignore_index", NN_ARG_INT, 0, {-100, 0}, NULL},
    {"label_smoothing", NN_ARG_FLOAT, 0, {0, 0}, NULL},
};

static int check(const nn_loss *loss, nn_shape shape, nn_error *err) {
    if (nn_loss_check_classes(loss, shape,
                              "for a yes/no target with one output use bce_with_logits (BCEWithLogitsLoss)", err))
        return -1;
    double smoothing = nn_loss_arg(loss, "label_smoothing");
    if (!(smoothing >= 0 && smoothing <= 1))
        return nn_error_set(err, NN_ERR_INPUT, "label_smoothing is %g but must be between 0 and 1", smoothing);
    return 0;
}

/* -log p_c is computed as (max - x_c) + log(sum_j exp(x_j - max)): no exp
 * overflows and the large terms cancel before the small one is added. The
 * exponentials wait in grad between the two passes rather than being
 * computed twice. The gradient of the numerator is
 *     p_j ((1 - eps) w_y + (eps / C) W) - (1 - eps) w_y [j == y] - (eps / C) w_j,
 * W = sum_c w_c. */
static void compute(const nn_loss *loss, const float *output, const nn_targets *targets, int batch, int outputs,
                    float *grad, double *numerator, double *denominator) {
    const float *weight = loss->vector;
    double ignore_index = nn_loss_arg(loss, "ignore_index");
    double smoothing = nn_loss_arg(loss, "label_smoothing");
    double spread = smoothing / outputs;
    double weight_sum = outputs;
    if (weight) {
        weight_sum = 0;
        for (int j = 0; j < outputs; j++) weight_sum += weight[j];
    }
    for (int b = 0; b < batch; b++) {
        const float *row = output + (size_t)b * outputs;
        float *grad_row = grad ? grad + (size_t)b * outputs : NULL;
        int32_t label = targets->labels[b];
        if (nn_loss_skip_label(label, ignore_index, outputs, grad_row, &numerator[b], &denominator[b])) continue;
        float max = row[0];
        for (int j = 1; j < outputs; j++) max = row[j] > max ? row[j] : max;
        double sum = 0;
        for (int j = 0; j < outputs; j++) {
            double e = exp((double)row[j] - max);
            sum += e;
            if (grad_row) grad_row[j] = (float)e;
        }
        double log_sum = log(sum);
        double label_weight = weight ? weight[label] : 1;
        double loss_value = (1 - smoothing) * label_weight * (((double)max - row[label]) + log_sum);
        if (smoothing > 0) {
            double smooth = 0;
            for (int j = 0; j < outputs; j++) smooth += (weight ? weight[j] : 1) * (((double)max - row[j]) + log_sum);
            loss_value += spread * smooth;
        }
        numerator[b] = loss_value;
        denominator[b] = label_weight;
        if (grad_row) {
            double scale = ((1 - smoothing) * label_weight + spread * weight_sum) / sum;
            for (int j = 0; j < outputs; j++)
                grad_row[j] = (float)(grad_row[j] * scale - spread * (weight ? weight[j] : 1) -
                                      (j == label ? (1 - smoothing) * label_weight : 0));
        }
    }
}

const nn_loss_kind nn_cross_entropy_kind = {
    .name = "cross_entropy",
    .alias = "CrossEntropyLoss",
    .target = NN_LOSS_CLASSES,
    .args = args,
    .arg_count = (int)(sizeof args / sizeof args[0]),
    .vector_arg = "weight",
    .check = check,
    .compute = compute,
};
