/* cross_entropy: log-softmax fused with nll, numerically stable, averaged
 * over the batch (torch.nn.CrossEntropyLoss). */
#include <math.h>
#include <string.h>

#include "losses/losses.h"

/* loss = log(sum_j exp(x_j)) - x_label, computed as
 * (max - x_label) + log(sum_j exp(x_j - max)) so that no exp overflows and
 * the large terms cancel before the small one is added. The gradient is
 * (softmax - onehot) / batch; the exponentials are kept in grad between the
 * two passes rather than computed twice. */
static double cross_entropy(float *grad, float *sample_losses, const float *output,
                            const uint8_t *labels, int batch, int outputs) {
    double total = 0;
    for (int b = 0; b < batch; b++) {
        const float *row = output + (size_t)b * outputs;
        float *grad_row = grad ? grad + (size_t)b * outputs : NULL;
        float max = row[0];
        for (int j = 1; j < outputs; j++) max = row[j] > max ? row[j] : max;
        double sum = 0;
        if (grad_row) {
            for (int j = 0; j < outputs; j++) {
                grad_row[j] = expf(row[j] - max);
                sum += grad_row[j];
            }
        } else {
            for (int j = 0; j < outputs; j++) sum += expf(row[j] - max);
        }
        double loss = ((double)max - row[labels[b]]) + log(sum);
        total += loss;
        if (sample_losses) sample_losses[b] = (float)loss;
        if (grad_row) {
            float scale = (float)(1 / (sum * batch));
            for (int j = 0; j < outputs; j++) grad_row[j] *= scale;
            grad_row[labels[b]] -= 1.0f / (float)batch;
        }
    }
    return total / batch;
}

const nn_loss_kind nn_cross_entropy_kind = {"cross_entropy", "CrossEntropyLoss", nn_loss_check_classes,
                                            cross_entropy};
