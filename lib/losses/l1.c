/* l1: |output - target| averaged over every element (torch.nn.L1Loss). The
 * gradient is the sign of the difference, 0 where it is 0, as torch's. */
#include "losses/losses.h"

static int check(const nn_loss *loss, nn_shape shape, nn_error *err) {
    return nn_loss_check_vector(loss, (int)nn_shape_size(shape), false, err);
}

static double absolute(double difference, double parameter, double *derivative) {
    (void)parameter;
    *derivative = (difference > 0) - (difference < 0);
    return difference < 0 ? -difference : difference;
}

static void compute(const nn_loss *loss, const float *output, const nn_targets *targets, int batch, int outputs,
                    float *grad, double *numerator, double *denominator) {
    (void)loss;
    nn_loss_of_differences(output, targets->values, batch, outputs, absolute, 0, grad, numerator, denominator);
}

const nn_loss_kind nn_l1_kind = {
    .name = "l1",
    .alias = "L1Loss",
    .target = NN_LOSS_VALUES,
    .check = check,
    .compute = compute,
};
