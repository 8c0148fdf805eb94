/* smooth_l1: with z = |output - target|, 0.5 z^2 / beta below beta and
 * z - 0.5 beta above, averaged over every element (torch.nn.SmoothL1Loss).
 * beta 0 is l1, as torch says; its gradient where output == target is then
 * l1's 0 (torch 1.13's smooth_l1 kernel gives -1 there, an artifact of its
 * "x <= -beta" branch; its l1_loss gives 0). */
#include <math.h>

#include "losses/losses.h"

static const nn_arg_spec args[] = {
    {"beta", NN_ARG_FLOAT, 0, {1.0, 0}, NULL},
};

static int check(const nn_loss *loss, nn_shape shape, nn_error *err) {
    double beta = nn_loss_arg(loss, "beta");
    if (!(beta >= 0 && isfinite(beta)))
        return nn_error_set(err, NN_ERR_INPUT, "beta is %g but must be a number >= 0 (0 is l1)", beta);
    return nn_loss_check_vector(loss, (int)nn_shape_size(shape), false, err);
}

static double smooth(double difference, double beta, double *derivative) {
    double z = fabs(difference);
    if (z < beta) {
        *derivative = difference / beta;
        return 0.5 * z * z / beta;
    }
    *derivative = (difference > 0) - (difference < 0);
    return z - 0.5 * beta;
}

static void compute(const nn_loss *loss, const float *output, const nn_targets *targets, int batch, int outputs,
                    float *grad, double *numerator, double *denominator) {
    nn_loss_of_differences(output, targets->values, batch, outputs, smooth, nn_loss_arg(loss, "beta"), grad,
                           numerator, denominator);
}

const nn_loss_kind nn_smooth_l1_kind = {
    .name = "smooth_l1",
    .alias = "SmoothL1Loss",
    .target = NN_LOSS_VALUES,
    .args = args,
    .arg_count = (int)(sizeof args / sizeof args[0]),
    .check = check,
    .compute = compute,
};
