/* mse against one-hot targets, averaged over every element (batch x
 * outputs) as torch.nn.MSELoss; a sample's loss is the mean over its outputs. */
#include "losses/losses.h"

static double mse(float *grad, float *sample_losses, const float *output, const uint8_t *labels,
                  int batch, int outputs) {
    double total = 0;
    float scale = (float)(2.0 / ((double)batch * outputs));
    for (int b = 0; b < batch; b++) {
        const float *row = output + (size_t)b * outputs;
        double sample = 0;
        for (int j = 0; j < outputs; j++) {
            float diff = row[j] - (j == labels[b] ? 1.0f : 0.0f);
            sample += (double)diff * diff;
            if (grad) grad[(size_t)b * outputs + j] = diff * scale;
        }
        total += sample;
        if (sample_losses) sample_losses[b] = (float)(sample / outputs);
    }
    return total / ((double)batch * outputs);
}

const nn_loss_kind nn_mse_kind = {"mse", "MSELoss", nn_loss_check_classes, mse};
