/* nll: the output is log-probabilities (after LogSoftmax); the loss is
 * -output[label], averaged over the batch (torch.nn.NLLLoss). */
#include <string.h>

#include "losses/losses.h"

static double nll(float *grad, float *sample_losses, const float *output, const uint8_t *labels,
                  int batch, int outputs) {
    double total = 0;
    if (grad) memset(grad, 0, (size_t)batch * outputs * sizeof *grad);
    for (int b = 0; b < batch; b++) {
        float loss = -output[(size_t)b * outputs + labels[b]];
        total += loss;
        if (sample_losses) sample_losses[b] = loss;
        if (grad) grad[(size_t)b * outputs + labels[b]] = -1.0f / (float)batch;
    }
    return total / batch;
}

const nn_loss_kind nn_nll_kind = {"nll", "NLLLoss", nn_loss_check_classes, nll};
