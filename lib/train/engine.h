/* The batch-parallel engine: one training or evaluation step of a batch
 * split across replicas of the model, one per thread of nnseq's own pool.
 *
 * Replica r takes the rows [r * n / R, (r + 1) * n / R) of a batch of n,
 * gathers them itself, runs forward and backward with one OpenBLAS thread
 * (the caller sets OpenBLAS to one thread), and writes its own gradients.
 * What must be the whole batch's is reduced across the replicas inside the
 * step, in replica order: BatchNorm's statistics (through
 * nn_mode.allreduce) and the loss's denominator (torch's mean). After
 * backward the replicas' gradients are summed in replica order into
 * model->grads and divided by that denominator (backward is linear in the
 * output gradient, so dividing at the end is the same mean), a
 * hook sees them (the place where MPI ranks will reduce theirs), and the
 * optimiser updates each replica's range of the parameters on its thread. Dropout keys each sample's draws by the
 * batch key and the sample's row, so the masks do not depend on the split.
 *
 * Which thread runs a replica is not fixed unless a layer is collective
 * (BatchNorm, whose replicas meet inside forward and backward): the
 * replicas of a step, and then blocks of 4096 parameters (summed, checked,
 * updated), are claimed by whichever thread is free, the caller's
 * included, so a thread whose core is busy takes less of the step instead
 * of holding it up. The rows of each replica and the order of each sum are
 * fixed, so who runs what never changes a bit.
 *
 * Same thread count, same bits; another thread count splits the sums
 * differently, so the results agree to float tolerance. Workers block on a
 * condition variable between steps and at the reductions (no spinning), so
 * a busy core slows nnseq down rather than stalling it. */
#ifndef NNSEQ_ENGINE_H
#define NNSEQ_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/model.h"
#include "data/dataset.h"
#include "losses/loss.h"
#include "optim/optimizer.h"
#include "train/metrics.h"

typedef struct nn_engine nn_engine;

/* An engine of threads replicas (1: no worker threads, the caller's thread
 * runs the model's own replica) for batches of up to max_batch samples. */
nn_engine *nn_engine_create(nn_model *model, int threads, int max_batch, nn_error *err);
void nn_engine_free(nn_engine *engine);
int nn_engine_threads(const nn_engine *engine);

/* The samples of one step: rows order[first .. first + count) of set (or
 * first .. first + count when order is NULL), inputs through transform.
 * key: the batch's Dropout key; row i's key is nn_key_mix(key, i). */
typedef struct nn_batch {
    const nn_dataset *set;
    const nn_input_transform *transform;
    const uint32_t *order;
    int64_t first;
    int count;
    uint64_t key;
} nn_batch;

/* What a step leaves: the batch's loss and its sums (for running means). */
typedef struct nn_step_result {
    double loss;              /* sum(numerator) / sum(denominator), 0 when the denominator is 0 */
    double numerator, denominator;
    bool gradients_finite;    /* false when a summed gradient is NaN or infinite */
} nn_step_result;

/* Called with the batch's gradient (summed over the replicas) before the
 * optimiser steps; -1 with err set stops training. */
typedef int (*nn_gradient_hook)(void *user, float *grads, size_t count, nn_error *err);

/* One training step: forward, loss, backward on every replica, the
 * gradients summed into model->grads, hook (may be NULL), then, unless
 * optimizer is NULL, its update, split across the threads by parameter
 * range (fused with the sum when there is no hook) and counted once.
 * metrics, unless NULL, receives the batch's outputs in row order. A
 * non-finite gradient is reported in result, not refused: the caller
 * decides (the parameters have been updated with it). */
int nn_engine_train_step(nn_engine *engine, const nn_batch *batch, const nn_loss *loss, nn_optimizer *optimizer,
                         nn_gradient_hook hook, void *hook_user, nn_metrics_acc *metrics, nn_step_result *result,
                         nn_error *err);

typedef struct nn_collective nn_collective;

/* Data-parallel ranks (collective.h; NULL or one rank: none): from then
 * on each rank runs its rows of a batch (the caller gives each its share)
 * and a training step sums the gradients, the loss denominator and
 * BatchNorm's statistics over every rank, then updates the parameters the
 * same way everywhere. A rank's share may be empty (count 0) only when no
 * layer is collective. Evaluation stays per rank (the caller merges). */
void nn_engine_set_collective(nn_engine *engine, const nn_collective *collective);
/* Across ranks a training step updates each rank's slice of the
 * parameters and of the optimiser's state only (then shares the
 * parameters): this makes every rank's optimiser state whole again, for a
 * checkpoint. Collective: every rank calls it at the same point. */
int nn_engine_share_optimizer(nn_engine *engine, nn_optimizer *optimizer, nn_error *err);
/* Whether a layer of the model is collective (BatchNorm): its replicas meet inside forward and backward. */
bool nn_engine_collective_layers(const nn_engine *engine);

/* Where the last training step went NaN or infinite: the first layer
 * whose output was not finite in forward (on any replica), else the first
 * layer that backward reached whose parameters' summed gradient was not
 * finite (the last such layer in model order), else -1 (the loss itself,
 * from finite outputs). Reads what the step left (activations, gradients). */
typedef struct nn_nonfinite_place {
    int layer;            /* -1: none found */
    bool in_forward;      /* an output; else a gradient */
} nn_nonfinite_place;

nn_nonfinite_place nn_engine_find_nonfinite(const nn_engine *engine);

/* Evaluates samples [first, first + count) of set in batches of
 * batch_size (at most the engine's max_batch), forward only, adding them
 * to metrics in row order. */
int nn_engine_evaluate(nn_engine *engine, int batch_size, const nn_loss *loss, const nn_input_transform *transform,
                       const nn_dataset *set, int64_t first, int64_t count, nn_metrics_acc *metrics, nn_error *err);

/* Forward only on count rows of raw model inputs (count x input values,
 * already transformed), split across the replicas; returns the outputs,
 * count x outputs, in the engine's buffer, valid until the next call. */
const float *nn_engine_forward(nn_engine *engine, const float *inputs, int count, nn_error *err);

#endif
