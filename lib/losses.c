/* cross_entropy (log-softmax fused with nll, stable), nll (input is
 * log-probabilities) and mse (against one-hot targets), all with torch's
 * reduction='mean': cross_entropy and nll average over the batch, mse over
 * every element (batch x outputs). Per-sample losses are each sample's term
 * of that mean (for mse, the mean over the sample's outputs), so that their
 * mean is the returned loss. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "loss.h"

static int check_class_output(nn_shape shape, int classes, nn_error *err) {
    char text[64];
    nn_shape_format(shape, text, sizeof text);
    if (shape.rank != 1)
        return nn_error_set(err, NN_ERR_INPUT,
                            "the model's output has shape %s but the loss needs one score per class, "
                            "shape (%d,): end the model with Flatten and Linear(out_features=%d)",
                            text, classes, classes);
    if (shape.dims[0] < classes)
        return nn_error_set(err, NN_ERR_INPUT,
                            "the model's output has shape %s but the labels have %d classes: "
                            "the last layer needs %d outputs",
                            text, classes, classes);
    return 0;
}

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

static const nn_loss_kind cross_entropy_kind = {"cross_entropy", check_class_output, cross_entropy};
static const nn_loss_kind nll_kind = {"nll", check_class_output, nll};
static const nn_loss_kind mse_kind = {"mse", check_class_output, mse};

static const nn_loss_kind *const kinds[] = {&cross_entropy_kind, &nll_kind, &mse_kind};

const nn_loss_kind *nn_loss_kind_find(const char *name) {
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i]->name, name) == 0) return kinds[i];
    return NULL;
}

const nn_loss_kind *const *nn_loss_kinds(int *count) {
    *count = (int)(sizeof kinds / sizeof kinds[0]);
    return kinds;
}
