/* Help for unknown names: the nearest known name by edit distance, and two
 * tables (Keras's and torch's spellings of what nnseq has, and torch's
 * things that nnseq does not have). The tables are the one place that
 * knows those names: when nnseq gains a layer, loss, optimiser or
 * scheduler, its line in the second table goes. */
#include "config/suggest.h"

#include <ctype.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define COUNT_OF(array) ((int)(sizeof(array) / sizeof((array)[0])))

/* --- Distance ------------------------------------------------------------- */

static int fold(char c) { return tolower((unsigned char)c); }

static int min2(int a, int b) { return a < b ? a : b; }

/* Optimal string alignment, three rows at a time: a swapped pair of
 * neighbours (modle, Linaer, trian) is the commonest typo and counts one
 * edit, not two. Letters compare ignoring case because a case slip (Relu,
 * conv2d) is not a different name. */
int nn_name_distance(const char *a, const char *b) {
    enum { SHORT = 64 };
    int short_rows[3 * SHORT];
    size_t b_length = strlen(b);
    size_t width = b_length + 1;
    int *rows = width <= SHORT ? short_rows : malloc(3 * width * sizeof *rows);
    if (!rows) return INT_MAX;
    int *before = rows, *previous = rows + width, *current = rows + 2 * width;
    for (size_t j = 0; j <= b_length; j++) previous[j] = (int)j;
    for (int i = 1; a[i - 1]; i++) {
        current[0] = i;
        for (size_t j = 1; j <= b_length; j++) {
            int same = fold(a[i - 1]) == fold(b[j - 1]);
            int best = min2(previous[j - 1] + !same, min2(previous[j] + 1, current[j - 1] + 1));
            if (i > 1 && j > 1 && fold(a[i - 1]) == fold(b[j - 2]) && fold(a[i - 2]) == fold(b[j - 1]))
                best = min2(best, before[j - 2] + 1);
            current[j] = best;
        }
        int *spare = before;
        before = previous;
        previous = current;
        current = spare;
    }
    int distance = previous[b_length];
    if (rows != short_rows) free(rows);
    return distance;
}

/* A fixed allowance of edits would let short names match almost anything
 * (bce is 2 edits from mse, units 3 from bias): the allowance grows with
 * the length, and stays under half of it so that most of the name is
 * right. */
int nn_suggestion_max_edits(size_t length) {
    int limit = length <= 4 ? 1 : length <= 8 ? 2 : 3;
    while (limit > 0 && 2 * (size_t)limit >= length) limit--;
    return limit;
}

const char *nn_nearest_name(const char *name, const char *const *candidates, int count) {
    size_t length = strlen(name);
    int limit = nn_suggestion_max_edits(length);
    const char *best = NULL;
    int best_distance = INT_MAX;
    for (int i = 0; i < count; i++) {
        if (!candidates[i]) continue;
        size_t other = strlen(candidates[i]);
        /* Lengths further apart than the limit are further apart in edits. */
        if ((length > other ? length - other : other - length) > (size_t)limit) continue;
        int distance = nn_name_distance(name, candidates[i]);
        if (distance < best_distance) {
            best = candidates[i];
            best_distance = distance;
        }
    }
    return best_distance <= limit ? best : NULL;
}

/* --- What nnseq does not have ------------------------------------------------ */

typedef struct unsupported {
    nn_name_kind kind;
    const char *name;    /* as a config may write it; matched ignoring case */
    const char *torch;   /* torch's full name */
} unsupported;

#define LAYER(n) {NN_NAME_LAYER, #n, "torch.nn." #n}
#define LOSS(n) {NN_NAME_LOSS, #n, "torch.nn." #n}
#define OPTIMIZER(n) {NN_NAME_OPTIMIZER, #n, "torch.optim." #n}
#define SCHEDULER(n) {NN_NAME_SCHEDULER, #n, "torch.optim.lr_scheduler." #n}

static const unsupported unsupported_names[] = {
    LAYER(GLU), LAYER(Hardshrink), LAYER(Softshrink), LAYER(Tanhshrink), LAYER(RReLU), LAYER(LogSigmoid),
    LAYER(Softmin), LAYER(Softmax2d), LAYER(InstanceNorm1d), LAYER(InstanceNorm3d), LAYER(BatchNorm3d),
    LAYER(Conv3d), LAYER(ConvTranspose1d), LAYER(ConvTranspose3d), LAYER(MaxPool3d), LAYER(AvgPool3d),
    LAYER(AdaptiveAvgPool1d), LAYER(AdaptiveMaxPool1d), LAYER(LPPool2d), LAYER(MaxUnpool2d), LAYER(Dropout3d),
    LAYER(Embedding), LAYER(EmbeddingBag), LAYER(RNN), LAYER(LSTM), LAYER(GRU),
    LAYER(RNNCell), LAYER(LSTMCell), LAYER(GRUCell), LAYER(Transformer), LAYER(TransformerEncoder),
    LAYER(TransformerDecoder), LAYER(TransformerEncoderLayer), LAYER(TransformerDecoderLayer),
    LAYER(MultiheadAttention), LAYER(Bilinear), LAYER(PixelShuffle),
    LAYER(ConstantPad3d), LAYER(ReflectionPad3d), LAYER(ReplicationPad3d),
    /* Keras's names for some of them (Conv1D, LSTM, GRU, Embedding match the above ignoring case). */
    {NN_NAME_LAYER, "SimpleRNN", "torch.nn.RNN"},

    LOSS(KLDivLoss),
    LOSS(PoissonNLLLoss), LOSS(GaussianNLLLoss), LOSS(CTCLoss), LOSS(CosineEmbeddingLoss),
    LOSS(HingeEmbeddingLoss), LOSS(MarginRankingLoss), LOSS(MultiMarginLoss), LOSS(MultiLabelMarginLoss),
    LOSS(MultiLabelSoftMarginLoss), LOSS(SoftMarginLoss), LOSS(TripletMarginLoss),
    /* The short names torch.nn.functional and Keras use. */
    {NN_NAME_LOSS, "kl_div", "torch.nn.KLDivLoss"},
    {NN_NAME_LOSS, "kld", "torch.nn.KLDivLoss"},
    {NN_NAME_LOSS, "kl_divergence", "torch.nn.KLDivLoss"},
    {NN_NAME_LOSS, "poisson", "torch.nn.PoissonNLLLoss"},
    {NN_NAME_LOSS, "ctc", "torch.nn.CTCLoss"},

    OPTIMIZER(ASGD), OPTIMIZER(LBFGS), OPTIMIZER(Rprop), OPTIMIZER(SparseAdam),

    SCHEDULER(CyclicLR), SCHEDULER(LambdaLR), SCHEDULER(MultiplicativeLR), SCHEDULER(ChainedScheduler),
    {NN_NAME_SCHEDULER, "cyclic", "torch.optim.lr_scheduler.CyclicLR"},
};

const char *nn_unsupported_name(nn_name_kind kind, const char *name) {
    for (int i = 0; i < COUNT_OF(unsupported_names); i++)
        if (unsupported_names[i].kind == kind && !strcasecmp(unsupported_names[i].name, name))
            return unsupported_names[i].torch;
    return NULL;
}

/* --- Other libraries' spellings of what nnseq has ------------------------------- */

typedef struct hint {
    nn_name_kind kind;
    const char *name;    /* as Keras or torch write it; matched ignoring case too */
    const char *target;  /* nnseq's name it points to, which must be a candidate; NULL: always applies */
    const char *note;
} hint;

static const hint hints[] = {
    {NN_NAME_LAYER, "Dense", "Linear", "Keras's Dense is torch's Linear"},
    {NN_NAME_LAYER, "Conv2D", "Conv2d", "Keras's Conv2D is torch's Conv2d"},
    {NN_NAME_LAYER, "Convolution2D", "Conv2d", "Keras's Convolution2D is torch's Conv2d"},
    {NN_NAME_LAYER, "MaxPooling2D", "MaxPool2d", "Keras's MaxPooling2D is torch's MaxPool2d"},
    {NN_NAME_LAYER, "MaxPool2D", "MaxPool2d", "Keras's MaxPool2D is torch's MaxPool2d"},
    {NN_NAME_LAYER, "AveragePooling2D", "AvgPool2d", "Keras's AveragePooling2D is torch's AvgPool2d"},
    {NN_NAME_LAYER, "AvgPool2D", "AvgPool2d", "Keras's AvgPool2D is torch's AvgPool2d"},
    {NN_NAME_LAYER, "BatchNormalization", "BatchNorm1d",
     "Keras's BatchNormalization is torch's BatchNorm1d after Linear, BatchNorm2d after Conv2d"},
    {NN_NAME_LAYER, "Swish", "SiLU", "Keras's swish is torch's SiLU"},
    {NN_NAME_LAYER, "LayerNormalization", "LayerNorm", "Keras's LayerNormalization is torch's LayerNorm"},
    {NN_NAME_LAYER, "Conv2DTranspose", "ConvTranspose2d", "Keras's Conv2DTranspose is torch's ConvTranspose2d"},
    {NN_NAME_LAYER, "GlobalAveragePooling2D", "AdaptiveAvgPool2d",
     "Keras's GlobalAveragePooling2D is torch's AdaptiveAvgPool2d(1) followed by Flatten"},
    {NN_NAME_LAYER, "GlobalMaxPooling2D", "AdaptiveMaxPool2d",
     "Keras's GlobalMaxPooling2D is torch's AdaptiveMaxPool2d(1) followed by Flatten"},
    {NN_NAME_LAYER, "SpatialDropout2D", "Dropout2d", "Keras's SpatialDropout2D is torch's Dropout2d"},
    {NN_NAME_LAYER, "UpSampling2D", "Upsample", "Keras's UpSampling2D is torch's Upsample"},
    {NN_NAME_LAYER, "ZeroPadding2D", "ZeroPad2d", "Keras's ZeroPadding2D is torch's ZeroPad2d"},
    {NN_NAME_LAYER, "Reshape", "Unflatten", "Keras's Reshape of a flat input is torch's Unflatten"},
    {NN_NAME_SCHEDULER, "ExponentialDecay", "exponential", "Keras's ExponentialDecay is torch's ExponentialLR"},
    {NN_NAME_SCHEDULER, "PolynomialDecay", "polynomial", "Keras's PolynomialDecay is torch's PolynomialLR"},
    {NN_NAME_LAYER, "Activation", NULL, "write the activation itself as a layer, e.g. - ReLU"},
    {NN_NAME_LAYER, "Input", NULL, "write the input's shape as model.input_shape, e.g. input_shape: [1, 28, 28]"},
    {NN_NAME_LAYER, "InputLayer", NULL,
     "write the input's shape as model.input_shape, e.g. input_shape: [1, 28, 28]"},
    {NN_NAME_LAYER, "Sequential", NULL, "model.layers is the Sequential: list its layers there"},

    {NN_NAME_LAYER_ARG, "units", "out_features", "Keras's units is torch's out_features"},
    {NN_NAME_LAYER_ARG, "filters", "out_channels", "Keras's filters is torch's out_channels"},
    {NN_NAME_LAYER_ARG, "kernel", "kernel_size", "the kernel's size is kernel_size"},
    {NN_NAME_LAYER_ARG, "pool_size", "kernel_size", "Keras's pool_size is torch's kernel_size"},
    {NN_NAME_LAYER_ARG, "strides", "stride", "Keras's strides is torch's stride"},
    {NN_NAME_LAYER_ARG, "rate", "p", "Keras's rate is torch's p"},
    {NN_NAME_LAYER_ARG, "use_bias", "bias", "Keras's use_bias is torch's bias"},
    {NN_NAME_LAYER_ARG, "input_dim", "in_features",
     "Keras's input_dim is torch's in_features, which nnseq infers: leave it out"},
    {NN_NAME_LAYER_ARG, "epsilon", "eps", "Keras's epsilon is torch's eps"},
    {NN_NAME_LAYER_ARG, "alpha", "negative_slope", "Keras's alpha is torch's negative_slope"},
    {NN_NAME_LAYER_ARG, "axis", "dim", "Keras's axis is torch's dim"},
    {NN_NAME_LAYER_ARG, "activation", NULL, "write the activation as a separate layer after it, e.g. - ReLU"},
    {NN_NAME_LAYER_ARG, "input_shape", NULL, "write the input's shape once, as model.input_shape"},
    {NN_NAME_LAYER_ARG, "kernel_initializer", NULL,
     "nnseq initialises as torch does; to start from other weights give init: WEIGHTS.npz"},
    {NN_NAME_LAYER_ARG, "kernel_regularizer", NULL, "for an L2 penalty use the optimizer's weight_decay"},

    {NN_NAME_OPTIMIZER_ARG, "learning_rate", "lr", "Keras's learning_rate is torch's lr"},
    {NN_NAME_OPTIMIZER_ARG, "beta_1", "betas", "Keras's beta_1 and beta_2 are torch's betas: [beta_1, beta_2]"},
    {NN_NAME_OPTIMIZER_ARG, "beta_2", "betas", "Keras's beta_1 and beta_2 are torch's betas: [beta_1, beta_2]"},
    {NN_NAME_OPTIMIZER_ARG, "epsilon", "eps", "Keras's epsilon is torch's eps"},
    {NN_NAME_OPTIMIZER_ARG, "decay", NULL,
     "Keras's decay lowers the learning rate: use a scheduler (weight decay is weight_decay)"},

    {NN_NAME_SCHEDULER_ARG, "decay_rate", "gamma", "Keras's decay_rate is torch's gamma"},
    {NN_NAME_SCHEDULER_ARG, "decay_steps", "step_size",
     "Keras's decay_steps is torch's step_size, counted in epochs here"},

    {NN_NAME_KEY, "learning_rate", NULL, "the learning rate is optimizer.lr"},
    {NN_NAME_KEY, "validation_split", NULL, "Keras's validation_split is data.val_split"},
    {NN_NAME_KEY, "criterion", NULL, "torch's criterion is loss: write loss: cross_entropy"},
    {NN_NAME_KEY, "loss_fn", NULL, "write the loss as loss: cross_entropy"},
    {NN_NAME_KEY, "metrics", NULL, "nnseq reports the metrics of the task (from the loss): leave it out"},

    {NN_NAME_LOSS, "binary_cross_entropy", "bce", "torch's binary_cross_entropy is bce"},
    {NN_NAME_LOSS, "binary_crossentropy", "bce", "Keras's binary_crossentropy is bce (bce_with_logits for logits)"},
    {NN_NAME_LOSS, "BinaryCrossentropy", "bce", "Keras's BinaryCrossentropy is bce (bce_with_logits for logits)"},
    {NN_NAME_LOSS, "binary_cross_entropy_with_logits", "bce_with_logits",
     "torch's binary_cross_entropy_with_logits is bce_with_logits"},
    {NN_NAME_LOSS, "l1_loss", "l1", "torch's l1_loss is l1"},
    {NN_NAME_LOSS, "mae", "l1", "Keras's mae is l1"},
    {NN_NAME_LOSS, "mean_absolute_error", "l1", "Keras's mean_absolute_error is l1"},
    {NN_NAME_LOSS, "MeanAbsoluteError", "l1", "Keras's MeanAbsoluteError is l1"},
    {NN_NAME_LOSS, "smooth_l1_loss", "smooth_l1", "torch's smooth_l1_loss is smooth_l1"},
    {NN_NAME_LOSS, "huber_loss", "huber", "torch's huber_loss is huber"},
    {NN_NAME_LOSS, "Huber", "huber", "Keras's Huber is huber (delta is delta)"},
    {NN_NAME_LOSS, "categorical_crossentropy", "cross_entropy",
     "Keras's categorical_crossentropy is cross_entropy; nnseq's labels are class indices"},
    {NN_NAME_LOSS, "CategoricalCrossentropy", "cross_entropy",
     "Keras's CategoricalCrossentropy is cross_entropy; nnseq's labels are class indices"},
    {NN_NAME_LOSS, "sparse_categorical_crossentropy", "cross_entropy",
     "Keras's sparse_categorical_crossentropy is cross_entropy"},
    {NN_NAME_LOSS, "SparseCategoricalCrossentropy", "cross_entropy",
     "Keras's SparseCategoricalCrossentropy is cross_entropy"},
    {NN_NAME_LOSS, "mean_squared_error", "mse", "Keras's mean_squared_error is mse"},
    {NN_NAME_LOSS, "MeanSquaredError", "mse", "Keras's MeanSquaredError is mse"},
    {NN_NAME_LOSS, "nll_loss", "nll", "torch.nn.functional's nll_loss is nll"},
    {NN_NAME_LOSS, "ce", "cross_entropy", "cross-entropy is written cross_entropy"},

    {NN_NAME_SCHEDULER, "CosineDecay", "cosine", "Keras's CosineDecay is cosine, stepped once per epoch"},
    {NN_NAME_SCHEDULER, "PiecewiseConstantDecay", "multistep",
     "Keras's PiecewiseConstantDecay is multistep, with milestones in epochs"},
};

static bool is_candidate(const char *name, const char *const *candidates, int count) {
    for (int i = 0; i < count; i++)
        if (candidates[i] && !strcmp(candidates[i], name)) return true;
    return false;
}

/* A name written in another case (dense, Units) is still meant the Keras
 * way, unless it is only nnseq's own name in another case (conv2d for
 * Conv2d), which "did you mean" answers better. */
const char *nn_name_hint(nn_name_kind kind, const char *name, const char *const *candidates, int count) {
    for (int i = 0; i < COUNT_OF(hints); i++) {
        const hint *h = &hints[i];
        if (h->kind != kind || strcasecmp(h->name, name)) continue;
        if (h->target && !is_candidate(h->target, candidates, count)) continue;
        if (strcmp(h->name, name) && h->target && !strcasecmp(h->target, name)) continue;
        return h->note;
    }
    return NULL;
}
