#ifndef NNSEQ_NORM_ROWS_H
#define NNSEQ_NORM_ROWS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "core/layer.h"

/* The per-sample normalisation that LayerNorm, GroupNorm and InstanceNorm2d
 * share (norm_rows.c), and the centred sums BatchNorm uses too. A batch is
 * seen as rows, each normalised on its own: rows_per_sample contiguous rows
 * per sample, each of channels * positions values; the values of channel j
 * of row r share weight and bias [(r % weight_rows) * channels + j] (LayerNorm:
 * weight_rows 1, every row has the same weights; GroupNorm: weight_rows =
 * rows_per_sample). weight and bias NULL: no affine. */
typedef struct nn_norm_rows {
    int rows_per_sample, channels, positions, weight_rows;
    const float *weight, *bias;
} nn_norm_rows;
double nn_sum_centered_squares(const float *x, float center, int count);
double nn_sum_centered_dot(const float *y, const float *x, float center, int count);
/* Per row: mean, 1 / sqrt(biased variance + eps) and, unless NULL, the biased variance. */
void nn_norm_rows_statistics(const nn_norm_rows *g, const float *x, int batch, double eps, float *mean,
                             float *inv_std, double *variance);
void nn_norm_rows_apply(const nn_norm_rows *g, float *out, const float *x, int batch, const float *mean,
                        const float *inv_std);
/* Writes grad (weight's then bias's gradient, 2 * weight_rows * channels
 * floats, summed in sums, as many doubles) unless weight is NULL, and din
 * unless NULL: with fixed statistics (eval with running ones) din is
 * dout * weight * inv_std, else the derivative through the row's mean and variance. */
void nn_norm_rows_backward(const nn_norm_rows *g, float *din, float *grad, double *sums, const float *dout,
                           const float *x, int batch, const float *mean, const float *inv_std, bool fixed_statistics);

/* BatchNorm's and InstanceNorm's state_dict entries in torch's order:
 * weight and bias when affine, then, when track, the running statistics
 * the layer owns at their initial values (mean 0, var 1, no batches), in
 * *running_mean, *running_var and *batches_tracked. what names the layer in
 * an out-of-memory message. */
int nn_norm_add_state(nn_layer *layer, int channels, bool affine, bool track, float **running_mean,
                      float **running_var, int64_t **batches_tracked, const char *what, nn_error *err);

#endif
