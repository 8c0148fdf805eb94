/* The loss table and the check the class losses share. Each loss lives in
 * lib/losses/ (cross_entropy, nll, mse); adding one is a file there and an
 * entry below. Per-sample losses are each sample's term of the mean, so
 * their mean is the returned loss. */
#include <stdio.h>
#include <string.h>

#include "losses/loss.h"
#include "losses/losses.h"

int nn_loss_check_classes(nn_shape shape, int classes, nn_error *err) {
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

static const nn_loss_kind *const kinds[] = {&nn_cross_entropy_kind, &nn_nll_kind, &nn_mse_kind};

const nn_loss_kind *nn_loss_kind_find(const char *name) {
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i]->name, name) == 0) return kinds[i];
    return NULL;
}

const nn_loss_kind *const *nn_loss_kinds(int *count) {
    *count = (int)(sizeof kinds / sizeof kinds[0]);
    return kinds;
}
