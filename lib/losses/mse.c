/* mse: (output - target)^2 averaged over every element, batch x outputs
 * (torch.nn.MSELoss). */
#include "losses/losses.h"

static int check(const nn_loss *loss, nn_shape shape, nn_error *err) {
    return nn_loss_check_vector(loss, (int)nn_shape_size(shape), false, err);
}

static double squared(double difference, double parameter, double *derivative) {
    (void)parameter;
    *derivative = 2 * difference;
    return difference * difference;
}

static void compute(const nn_loss *loss, const float *output, const nn_targets *targets, int batch, int outputs,
                    float *grad, double *numerator, double *denominator) {
    (void)loss;
    nn_loss_of_differences(output, targets->values, batch, outputs, squared, 0, grad, numerator, denominator);
}

const nn_loss_kind nn_mse_kind = {
    .name = "mse",
    .alias = "MSELoss",
    .target = NN_LOSS_VALUES,
    .check = check,
    .compute = compute,
};
