/* bce_with_logits: Sigmoid fused with bce, element by element
 * (torch.nn.BCEWithLogitsLoss), with pos_weight pw (one per output, or one
 * for all) weighing the positive term:
 *     -(pw y log s(x) + (1 - y) log(1 - s(x)))
 *   = (1 - y) x + (1 + (pw - 1) y) softplus(-x),
 * torch's form, with softplus(-x) = max(-x, 0) + log1p(exp(-|x|)) so that
 * no exp overflows. The denominator is the number of outputs. torch's
 * other list argument, weight, is not offered (one list per loss). */
#include <math.h>

#include "losses/losses.h"

static int check(const nn_loss *loss, nn_shape shape, nn_error *err) {
    return nn_loss_check_vector(loss, (int)nn_shape_size(shape), true, err);
}

static double sigmoid(double x) {
    if (x >= 0) return 1 / (1 + exp(-x));
    double e = exp(x);
    return e / (1 + e);
}

/* d/dx = (1 + (pw - 1) y) s(x) - pw y, which is s(x) - y without pw. */
static void compute(const nn_loss *loss, const float *output, const nn_targets *targets, int batch, int outputs,
                    float *grad, double *numerator, double *denominator) {
    const float *pos_weight = loss->vector;
    bool single = loss->vector_count == 1;
    for (int b = 0; b < batch; b++) {
        size_t row = (size_t)b * outputs;
        double sum = 0;
        for (int j = 0; j < outputs; j++) {
            double x = output[row + j], y = targets->values[row + j];
            double pw = pos_weight ? pos_weight[single ? 0 : j] : 1;
            double log_weight = 1 + (pw - 1) * y;
            double softplus = (x < 0 ? -x : 0) + log1p(exp(-fabs(x)));
            sum += (1 - y) * x + log_weight * softplus;
            if (grad) grad[row + j] = (float)(log_weight * sigmoid(x) - pw * y);
        }
        numerator[b] = sum;
        denominator[b] = outputs;
    }
}

/* Targets are probabilities, as for bce (torch does not check; a target of
 * 2 is always a data error). */
static const double unit_range[2] = {0.0, 1.0};

const nn_loss_kind nn_bce_with_logits_kind = {
    .name = "bce_with_logits",
    .alias = "BCEWithLogitsLoss",
    .target = NN_LOSS_VALUES,
    .target_range = unit_range,
    .vector_arg = "pos_weight",
    .check = check,
    .compute = compute,
};
