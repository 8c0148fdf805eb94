/* The row normalisation that GroupNorm, LayerNorm and InstanceNorm2d share
 * (norm_rows.h). Sums are in double (in float lanes the compiler
 * vectorises, as batch_norm.c's). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers/conv_util.h"
#include "layers/norm_rows.h"

double nn_sum_centered_squares(const float *x, float center, int count) {
    float lanes[LANES] = {0};
    int i = 0;
    for (; i + LANES <= count; i += LANES)
        for (int k = 0; k < LANES; k++) lanes[k] += (x[i + k] - center) * (x[i + k] - center);
    double total = 0;
    for (; i < count; i++) total += (double)(x[i] - center) * (x[i] - center);
    for (int k = 0; k < LANES; k++) total += lanes[k];
    return total;
}

double nn_sum_centered_dot(const float *y, const float *x, float center, int count) {
    float lanes[LANES] = {0};
    int i = 0;
    for (; i + LANES <= count; i += LANES)
        for (int k = 0; k < LANES; k++) lanes[k] += y[i + k] * (x[i + k] - center);
    double total = 0;
    for (; i < count; i++) total += (double)y[i] * (x[i] - center);
    for (int k = 0; k < LANES; k++) total += lanes[k];
    return total;
}

static int row_length(const nn_norm_rows *g) { return g->channels * g->positions; }

static int weight_offset(const nn_norm_rows *g, int row) { return row % g->weight_rows * g->channels; }

void nn_norm_rows_statistics(const nn_norm_rows *g, const float *x, int batch, double eps, float *mean,
                             float *inv_std, double *variance) {
    int rows = batch * g->rows_per_sample, length = row_length(g);
    for (int r = 0; r < rows; r++) {
        const float *row = x + (size_t)r * length;
        mean[r] = (float)(sum_floats(row, (size_t)length) / length);
        double biased = nn_sum_centered_squares(row, mean[r], length) / length;
        inv_std[r] = (float)(1.0 / sqrt(biased + eps));
        if (variance) variance[r] = biased;
    }
}

void nn_norm_rows_apply(const nn_norm_rows *g, float *out, const float *x, int batch, const float *mean,
                        const float *inv_std) {
    int rows = batch * g->rows_per_sample, length = row_length(g), positions = g->positions;
    for (int r = 0; r < rows; r++) {
        size_t start = (size_t)r * length;
        const float *weight = g->weight ? g->weight + weight_offset(g, r) : NULL;
        const float *bias = g->bias ? g->bias + weight_offset(g, r) : NULL;
        float m = mean[r], s = inv_std[r];
        if (positions == 1) { /* LayerNorm's usual case: vectorise across channels */
            for (int j = 0; j < length; j++)
                out[start + j] = weight ? (x[start + j] - m) * s * weight[j] + bias[j] : (x[start + j] - m) * s;
            continue;
        }
        for (int j = 0; j < g->channels; j++) {
            float scale = weight ? weight[j] * s : s, shift = (bias ? bias[j] : 0.0f) - m * scale;
            const float *in = x + start + (size_t)j * positions;
            float *o = out + start + (size_t)j * positions;
            for (int p = 0; p < positions; p++) o[p] = in[p] * scale + shift;
        }
    }
}

/* One value per channel: total = sum of dout * weight, dot = sum of
 * dout * weight * (x - mean), in float lanes (rows of one sample are short). */
static void row_sums(const float *weight, const float *y, const float *x, float mean, int count, double *total,
                     double *dot) {
    float lanes_total[LANES] = {0}, lanes_dot[LANES] = {0};
    int i = 0;
    for (; i + LANES <= count; i += LANES)
        for (int k = 0; k < LANES; k++) {
            float wy = weight ? weight[i + k] * y[i + k] : y[i + k];
            lanes_total[k] += wy;
            lanes_dot[k] += wy * (x[i + k] - mean);
        }
    *total = *dot = 0;
    for (; i < count; i++) {
        double wy = weight ? (double)weight[i] * y[i] : y[i];
        *total += wy;
        *dot += wy * (x[i] - mean);
    }
    for (int k = 0; k < LANES; k++) *total += lanes_total[k], *dot += lanes_dot[k];
}

/* din = inv_std * (dout * weight - mean(dout * weight) - xhat * mean(dout * weight * xhat)),
 * the means over the row. */
void nn_norm_rows_backward(const nn_norm_rows *g, float *din, float *grad, double *sums, const float *dout,
                           const float *x, int batch, const float *mean, const float *inv_std,
                           bool fixed_statistics) {
    int rows = batch * g->rows_per_sample, length = row_length(g), positions = g->positions;
    int weights = g->weight_rows * g->channels;
    double *dweight = sums, *dbias = sums + weights;
    if (g->weight) memset(sums, 0, 2 * (size_t)weights * sizeof *sums);
    for (int r = 0; r < rows; r++) {
        size_t start = (size_t)r * length;
        int offset = weight_offset(g, r);
        float m = mean[r], s = inv_std[r];
        double total = 0, dot = 0; /* sums over the row of dout * weight and dout * weight * (x - mean) */
        if (positions == 1) {
            row_sums(g->weight ? g->weight + offset : NULL, dout + start, x + start, m, length, &total, &dot);
            if (g->weight)
                for (int j = 0; j < length; j++) {
                    float y = dout[start + j];
                    dweight[offset + j] += y * (x[start + j] - m) * s;
                    dbias[offset + j] += y;
                }
        }
        for (int j = 0; positions > 1 && j < g->channels; j++) {
            const float *y = dout + start + (size_t)j * positions, *in = x + start + (size_t)j * positions;
            double channel_total = sum_floats(y, (size_t)positions);
            double channel_dot = nn_sum_centered_dot(y, in, m, positions);
            double w = g->weight ? g->weight[offset + j] : 1.0;
            total += w * channel_total;
            dot += w * channel_dot;
            if (g->weight) {
                dweight[offset + j] += channel_dot * s;
                dbias[offset + j] += channel_total;
            }
        }
        if (!din) continue;
        float dout_mean = fixed_statistics ? 0.0f : (float)(total / length);
        float dot_mean = fixed_statistics ? 0.0f : (float)(dot * s / length);
        if (positions == 1) { /* vectorise across channels */
            const float *w = g->weight ? g->weight + offset : NULL, *y = dout + start, *in = x + start;
            float *d = din + start;
            for (int j = 0; j < length; j++)
                d[j] = s * ((w ? w[j] : 1.0f) * y[j] - dout_mean - (in[j] - m) * s * dot_mean);
            continue;
        }
        for (int j = 0; j < g->channels; j++) {
            float w = g->weight ? g->weight[offset + j] : 1.0f;
            const float *y = dout + start + (size_t)j * positions, *in = x + start + (size_t)j * positions;
            float *d = din + start + (size_t)j * positions;
            for (int p = 0; p < positions; p++) d[p] = s * (w * y[p] - dout_mean - (in[p] - m) * s * dot_mean);
        }
    }
    if (g->weight)
        for (int i = 0; i < 2 * weights; i++) grad[i] = (float)sums[i];
}


int nn_norm_add_state(nn_layer *layer, int channels, bool affine, bool track, float **running_mean,
                      float **running_var, int64_t **batches_tracked, const char *what, nn_error *err) {
    int64_t dims[1] = {channels};
    if (affine) {
        nn_layer_add_state(layer, "weight", true, NN_F32, 1, dims, NULL);
        nn_layer_add_state(layer, "bias", true, NN_F32, 1, dims, NULL);
    }
    if (!track) return 0;
    size_t count = (size_t)channels;
    *running_mean = calloc(count, sizeof **running_mean);
    *running_var = malloc(count * sizeof **running_var);
    *batches_tracked = calloc(1, sizeof **batches_tracked);
    if (!*running_mean || !*running_var || !*batches_tracked) return nn_error_oom(err, what);
    for (size_t c = 0; c < count; c++) (*running_var)[c] = 1.0f;
    nn_layer_add_state(layer, "running_mean", false, NN_F32, 1, dims, *running_mean);
    nn_layer_add_state(layer, "running_var", false, NN_F32, 1, dims, *running_var);
    nn_layer_add_state(layer, "num_batches_tracked", false, NN_I64, 0, NULL, *batches_tracked);
    return 0;
}
