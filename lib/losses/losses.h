/* Every loss nnseq knows, one file each in this folder and one entry in
 * loss.c's table, and the pieces they share. All use torch's
 * reduction='mean'. Private to lib/losses/. */
#ifndef NNSEQ_LOSSES_H
#define NNSEQ_LOSSES_H

#include <stdbool.h>

#include "losses/loss.h"

extern const nn_loss_kind nn_cross_entropy_kind;
extern const nn_loss_kind nn_nll_kind;
extern const nn_loss_kind nn_bce_kind;
extern const nn_loss_kind nn_bce_with_logits_kind;
extern const nn_loss_kind nn_mse_kind;
extern const nn_loss_kind nn_l1_kind;
extern const nn_loss_kind nn_smooth_l1_kind;
extern const nn_loss_kind nn_huber_kind;

/* The check of losses over class labels: a flat output of at least two
 * scores (one_output says what to use instead for one output) and a class
 * weight vector, if given, of one finite value >= 0 per output. */
int nn_loss_check_classes(const nn_loss *loss, nn_shape shape, const char *one_output, nn_error *err);

/* The check of loss->vector (if given) for outputs outputs: outputs values,
 * or also a single one when single_allowed; each finite and >= 0. */
int nn_loss_check_vector(const nn_loss *loss, int outputs, bool single_allowed, nn_error *err);

/* For a class loss, a label it must skip (label == ignore_index:
 * numerator and denominator 0) or cannot use (out of range: numerator NaN,
 * denominator 1); either way the sample's gradient row is zeroed. Returns
 * true when the caller should move on to the next sample. ignore_index is
 * nn_loss_arg(loss, "ignore_index"), looked up once per batch. */
bool nn_loss_skip_label(int32_t label, double ignore_index, int outputs, float *grad_row, double *numerator,
                        double *denominator);

/* The losses of output - target alone (mse, l1, smooth_l1, huber): term
 * returns an element's loss and writes its derivative by the difference;
 * parameter is the loss's one scalar (beta, delta). Sample b's numerator is
 * the sum over its outputs, its denominator the number of outputs. */
typedef double (*nn_difference_term)(double difference, double parameter, double *derivative);
void nn_loss_of_differences(const float *output, const float *target, int batch, int outputs,
                            nn_difference_term term, double parameter, float *grad, double *numerator,
                            double *denominator);

#endif
