/* cross_entropy (log-softmax fused with nll, stable), nll (input is
 * log-probabilities) and mse (against one-hot targets), all with torch's
 * reduction='mean'. */
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

static double cross_entropy(float *grad, float *sample_losses, const float *output,
                            const uint8_t *labels, int batch, int outputs) {
    double total = 0;
    float scale = 1.0f / (float)batch;
    for (int b = 0; b < batch; b++) {
        const float *row = output + (size_t)b * outputs;
        float max = row[0];
        for (int j = 1; j < outputs; j++)
            if (row[j] > max) max = row[j];
        float sum = 0;
        for (int j = 0; j < outputs; j++) sum += expf(row[j] - max);
        float log_sum = logf(sum);
        float loss = log_sum + max - row[labels[b]];
        total += loss;
        if (sample_losses) sample_losses[b] = loss;
        if (grad) {
            float *grad_row = grad + (size_t)b * outputs;
            for (int j = 0; j < outputs; j++) grad_row[j] = expf(row[j] - max - log_sum) * scale;
            grad_row[labels[b]] -= scale;
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
    float scale = 2.0f / ((float)batch * (float)outputs);
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
