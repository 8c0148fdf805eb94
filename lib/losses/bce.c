/* bce: binary cross-entropy of probabilities (after Sigmoid), element by
 * element (torch.nn.BCELoss): -w_j (y log p + (1 - y) log(1 - p)) with each
 * log clamped at -100 as torch does, so that p = 0 or 1 gives a finite
 * loss (at most 100 per element). weight has one value per output and is
 * broadcast over the batch; it does not change the denominator, the number
 * of outputs, since torch's mean is over every element. */
#include <math.h>

#include "losses/losses.h"

static const double unit_range[2] = {0, 1};

static int check(const nn_loss *loss, nn_shape shape, nn_error *err) {
    return nn_loss_check_vector(loss, (int)nn_shape_size(shape), false, err);
}

/* Written so that NaN (log of a "probability" outside [0, 1]) is not
 * clamped away: fmax would turn it into -100. */
static double clamped_log(double value) { return value < -100 ? -100 : value; }

/* The gradient is torch's binary_cross_entropy_backward,
 * (p - y) / max((1 - p) p, 1e-12): the derivative of the unclamped loss,
 * bounded near p = 0 and 1, where the clamped loss is flat. */
static void compute(const nn_loss *loss, const float *output, const nn_targets *targets, int batch, int outputs,
                    float *grad, double *numerator, double *denominator) {
    const float *weight = loss->vector;
    for (int b = 0; b < batch; b++) {
        size_t row = (size_t)b * outputs;
        double sum = 0;
        for (int j = 0; j < outputs; j++) {
            double p = output[row + j], y = targets->values[row + j], w = weight ? weight[j] : 1;
            sum += w * ((y - 1) * clamped_log(log1p(-p)) - y * clamped_log(log(p)));
            if (grad) {
                double curvature = (1 - p) * p;
                grad[row + j] = (float)(w * (p - y) / (curvature > 1e-12 ? curvature : 1e-12));
            }
        }
        numerator[b] = sum;
        denominator[b] = outputs;
    }
}

const nn_loss_kind nn_bce_kind = {
    .name = "bce",
    .alias = "BCELoss",
    .target = NN_LOSS_VALUES,
    .vector_arg = "weight",
    .target_range = unit_range,
    .check = check,
    .compute = compute,
};
