/* huber: with z = |output - target|, 0.5 z^2 below delta and
 * delta (z - 0.5 delta) above, averaged over every element
 * (torch.nn.HuberLoss): smooth_l1 scaled by delta, so it stays defined
 * only for delta > 0. */
#include <math.h>

#include "losses/losses.h"

static const nn_arg_spec args[] = {
    {"delta", NN_ARG_FLOAT, 0, {1.0, 0}, NULL},
};

static int check(const nn_loss *loss, nn_shape shape, nn_error *err) {
    double delta = nn_loss_arg(loss, "delta");
    if (!(delta > 0 && isfinite(delta)))
        return nn_error_set(err, NN_ERR_INPUT, "delta is %g but must be a number > 0", delta);
    return nn_loss_check_vector(loss, (int)nn_shape_size(shape), false, err);
}

static double huber(double difference, double delta, double *derivative) {
    double z = fabs(difference);
    if (z < delta) {
        *derivative = difference;
        return 0.5 * z * z;
    }
    *derivative = difference > 0 ? delta : -delta;
    return delta * (z - 0.5 * delta);
}

static void compute(const nn_loss *loss, const float *output, const nn_targets *targets, int batch, int outputs,
                    float *grad, double *numerator, double *denominator) {
    nn_loss_of_differences(output, targets->values, batch, outputs, huber, nn_loss_arg(loss, "delta"), grad,
                           numerator, denominator);
}

const nn_loss_kind nn_huber_kind = {
    .name = "huber",
    .alias = "HuberLoss",
    .target = NN_LOSS_VALUES,
    .args = args,
    .arg_count = (int)(sizeof args / sizeof args[0]),
    .check = check,
    .compute = compute,
};
