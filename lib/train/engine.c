#include "train/engine.h"

#include "core/target_clones.h"
#include "train/collective.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* What a step asks of each replica. */
typedef enum job_kind { JOB_TRAIN, JOB_EVAL, JOB_FORWARD, JOB_UPDATE, JOB_QUIT } job_kind;

typedef struct worker {
    nn_engine *engine;
    int index;
    nn_replica *replica;
    pthread_t thread;
    bool started;
    /* The slice of the current job and its per-sample buffers. */
    int first, count;
    int32_t *labels;
    float *values;
    double *numerator, *denominator;
    uint64_t *keys;
    nn_targets targets;
    const float *output;
    double *scratch;          /* allreduce's sums */
    int scratch_size;
    int failed;
    bool nonfinite;           /* a gradient of its range is NaN or infinite */
    nn_error err;
} worker;

struct nn_engine {
    nn_model *model;
    int threads, max_batch, slice_capacity, outputs;
    size_t input_size;
    worker *workers;
    /* The job, set by the caller's thread before it wakes the workers. */
    job_kind job;
    int active;                     /* replicas with rows in this job */
    const nn_batch *batch;
    const nn_loss *loss;
    nn_optimizer *optimizer;        /* JOB_TRAIN: updates after the sum, or NULL */
    nn_gradient_hook hook;          /* JOB_TRAIN: sees the summed gradients first, or NULL */
    void *hook_user;
    int hook_status;
    nn_error hook_err;
    const float *raw_inputs;        /* JOB_FORWARD */
    float *forward_out;             /* JOB_FORWARD: count x outputs */
    /* JOB_UPDATE: parameters [update_first, + update_count) scaled by
     * update_scale and updated, in `active` parts of whole blocks. */
    nn_optimizer *update_optimizer;
    size_t update_first, update_count;
    float update_scale;
    /* The pool: workers wait for a new generation, the caller for pending
     * to reach 0. */
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    unsigned long generation;
    int pending;
    bool sync_ready;
    /* The barrier of the reductions inside a step. */
    pthread_mutex_t barrier_lock;
    pthread_cond_t barrier_cond;
    int barrier_waiting;
    unsigned long barrier_generation;
    double **slots;                 /* per replica: its values in an allreduce */
    /* Dynamic scheduling (no collective layer): the replicas of a job and
     * then the gradient blocks are claimed by whichever thread is free, so
     * a thread on a busy core takes less; each replica's rows and each
     * block's sum are fixed, so the bits are the same whoever runs them.
     * A claim word is generation (24 bits), limit and next (20 bits
     * each): a thread woken late for a finished job finds the generation
     * changed and claims nothing. */
    bool dynamic;
    /* Data-parallel ranks (collective.h): a training step's gradients,
     * loss denominator and BatchNorm statistics are summed over them too.
     * collective_step: this step does (a group of more than one). */
    const nn_collective *collective;
    bool collective_step;
    /* The sharded update (collective_update): the reduce-scatter's receive
     * buffer, and whether the optimiser's state is this rank's slice only
     * since the last nn_engine_share_optimizer. */
    float *shard_scratch;
    bool optimizer_sharded;
    _Atomic uint64_t replica_claim, block_claim;
    int replicas_done, blocks_done; /* under lock; done is broadcast when a phase ends */
    int block_count;
    atomic_int nonfinite;
};

int nn_engine_threads(const nn_engine *e) { return e->threads; }

/* --- The reductions inside a step ------------------------------------------- */

static void barrier_wait(nn_engine *e) {
    pthread_mutex_lock(&e->barrier_lock);
    unsigned long generation = e->barrier_generation;
    if (++e->barrier_waiting == e->active) {
        e->barrier_waiting = 0;
        e->barrier_generation++;
        pthread_cond_broadcast(&e->barrier_cond);
    } else {
        while (generation == e->barrier_generation) pthread_cond_wait(&e->barrier_cond, &e->barrier_lock);
    }
    pthread_mutex_unlock(&e->barrier_lock);
}

/* nn_mode.allreduce: every active replica publishes its values, then each
 * sums all of them in replica order (so every replica gets the same bits),
 * then all wait until everyone has read before anyone overwrites. */
static void engine_allreduce(void *group, double *values, int count) {
    worker *w = group;
    nn_engine *e = w->engine;
    if (w->scratch_size < count) {
        double *grown = realloc(w->scratch, (size_t)count * sizeof *grown);
        if (!grown) {
            /* Still meet the others at both barriers (no one may wait
             * forever); the step then fails with out of memory. */
            w->failed = 1;
            e->slots[w->index] = values;
            barrier_wait(e);
            barrier_wait(e);
            return;
        }
        w->scratch = grown;
        w->scratch_size = count;
    }
    e->slots[w->index] = values;
    barrier_wait(e);
    for (int i = 0; i < count; i++) {
        double total = 0;
        for (int r = 0; r < e->active; r++) total += e->slots[r][i];
        w->scratch[i] = total;
    }
    if (!e->collective_step) {
        barrier_wait(e);
        memcpy(values, w->scratch, (size_t)count * sizeof *values);
        return;
    }
    /* Then over the ranks: replica 0 runs on the caller's thread, the one
     * that may call MPI; everyone copies its result, and waits until all
     * have before replica 0 may reuse its buffer. */
    if (w->index == 0 && e->collective->sum_doubles(e->collective, w->scratch, count, &w->err) != 0) w->failed = 2;
    barrier_wait(e);
    memcpy(values, e->workers[0].scratch, (size_t)count * sizeof *values);
    barrier_wait(e);
}

/* --- One replica's part of a job --------------------------------------------- */

static nn_mode mode_of(worker *w, bool training) {
    nn_engine *e = w->engine;
    nn_mode mode = {.training = training, .sample_keys = w->keys, .update_buffers = w->index == 0};
    if ((e->active > 1 || (training && e->collective_step)) && !e->dynamic) {
        mode.allreduce = engine_allreduce;
        mode.group = w;
    }
    return mode;
}

static void gather(worker *w) {
    const nn_batch *b = w->engine->batch;
    int64_t first = b->first + w->first;
    nn_dataset_gather_inputs(b->set, b->transform, b->order, first, w->count, nn_replica_input(w->replica));
    w->targets = nn_dataset_gather_targets(b->set, b->order, first, w->count, w->labels, w->values);
    for (int i = 0; i < w->count; i++) {
        uint64_t row = b->order ? b->order[first + i] : (uint64_t)(first + i);
        w->keys[i] = nn_key_mix(b->key, row);
    }
}

/* Parameters per block of the gradient sum and update: small enough that
 * a block's gradients, parameters and optimiser state stay in L2. */
#define GRADIENT_BLOCK ((size_t)4096)

/* grads[0 .. n) *= scale; true when one of them is NaN or infinite (all
 * exponent bits set), checked on the bits so that the loop vectorises (a
 * float reduction would not, without reassociation). */
NN_VECTOR_CLONES static bool scale_checked(float *restrict grads, size_t n, float scale) {
    uint32_t nonfinite = 0;
    for (size_t i = 0; i < n; i++) {
        float g = grads[i] * scale;
        grads[i] = g;
        uint32_t bits;
        memcpy(&bits, &g, sizeof bits);
        nonfinite |= (bits & 0x7f800000u) == 0x7f800000u;
    }
    return nonfinite != 0;
}

/* grads[first .. first + n) = (sum over the replicas in replica order) *
 * scale, into replica 0's buffer (model->grads); true when one of them is
 * not finite. */
NN_VECTOR_CLONES static bool sum_gradients(nn_engine *e, size_t first, size_t n, float scale) {
    float *restrict grads = e->workers[0].replica->grads + first;
    for (int r = 1; r < e->active; r++) {
        const float *restrict other = e->workers[r].replica->grads + first;
        for (size_t i = 0; i < n; i++) grads[i] += other[i];
    }
    return scale_checked(grads, n, scale);
}

/* Forward, loss and backward of one replica's rows. */
static void train_replica(worker *w) {
    nn_engine *e = w->engine;
    nn_mode mode = mode_of(w, true);
    gather(w);
    w->output = nn_replica_forward(w->replica, w->count, &mode);
    /* Back-propagated as d(numerator)/d(output): torch's mean divides by
     * the whole batch's denominator, and since backward is linear in its
     * output gradient the division waits until the gradients are summed,
     * which saves the replicas a meeting in the middle of every step. */
    e->loss->kind->compute(e->loss, w->output, &w->targets, w->count, e->outputs, nn_replica_output_grad(w->replica),
                           w->numerator, w->denominator);
    nn_replica_backward(w->replica, w->count, &mode);
}

/* The batch's loss denominator on this rank. */
static double local_denominator(const nn_engine *e) {
    double total = 0;
    for (int r = 0; r < e->active; r++)
        for (int i = 0; i < e->workers[r].count; i++) total += e->workers[r].denominator[i];
    return total;
}

/* The scale of the summed gradients: 1 / the batch's loss denominator;
 * 1 across ranks, whose sum is scaled once it is the whole batch's. */
static float gradient_scale(const nn_engine *e) {
    if (e->collective_step) return 1.0f;
    double total = 0;
    for (int r = 0; r < e->active; r++)
        for (int i = 0; i < e->workers[r].count; i++) total += e->workers[r].denominator[i];
    return total > 0 ? (float)(1.0 / total) : 0.0f;
}

/* Static scheduling: replica r on thread r, meeting at barriers. */
static void run_train(worker *w) {
    nn_engine *e = w->engine;
    train_replica(w);
    /* The replicas' gradients onto replica 0's (model->grads), each replica
     * summing and scaling its own range of the parameters over the others
     * in replica order: the same bits for the same thread count, the work
     * spread over the threads. Everyone's backward must be done first. */
    if (e->active > 1) barrier_wait(e);
    float scale = gradient_scale(e);
    size_t count = e->model->param_count;
    size_t lo = count * (size_t)w->index / (size_t)e->active, hi = count * (size_t)(w->index + 1) / (size_t)e->active;
    /* Without a hook the optimiser updates each block of the range right
     * after it is summed, while the block is still in cache; a hook must
     * see every gradient first, so it runs between two meetings. */
    nn_optimizer *optimizer = e->optimizer;
    bool fused = optimizer && !e->hook && !e->collective_step;
    w->nonfinite = false;
    for (size_t block = lo; block < hi; block += GRADIENT_BLOCK) {
        size_t n = hi - block < GRADIENT_BLOCK ? hi - block : GRADIENT_BLOCK;
        w->nonfinite |= sum_gradients(e, block, n, scale);
        if (fused) nn_optimizer_update(optimizer, e->model->params, e->model->grads, block, n);
    }
    if (!optimizer || fused || e->collective_step) return;
    if (e->active > 1) barrier_wait(e);
    if (w->index == 0) e->hook_status = e->hook(e->hook_user, e->model->grads, count, &e->hook_err);
    if (e->active > 1) barrier_wait(e);
    if (e->hook_status == 0) nn_optimizer_update(optimizer, e->model->params, e->model->grads, lo, hi - lo);
}

static void run_eval(worker *w) {
    nn_engine *e = w->engine;
    nn_mode mode = mode_of(w, false);
    gather(w);
    w->output = nn_replica_forward(w->replica, w->count, &mode);
    e->loss->kind->compute(e->loss, w->output, &w->targets, w->count, e->outputs, NULL, w->numerator, w->denominator);
}

static void run_forward(worker *w) {
    nn_engine *e = w->engine;
    nn_mode mode = mode_of(w, false);
    memcpy(nn_replica_input(w->replica), e->raw_inputs + (size_t)w->first * e->input_size,
           (size_t)w->count * e->input_size * sizeof(float));
    const float *out = nn_replica_forward(w->replica, w->count, &mode);
    memcpy(e->forward_out + (size_t)w->first * e->outputs, out, (size_t)w->count * e->outputs * sizeof(float));
}

/* The summed gradients [first, first + count) scaled in place, each block
 * then given to the optimiser (while it is in cache); whether any was not
 * finite. */
static bool scale_and_update(const nn_engine *e, nn_optimizer *optimizer, float scale, size_t first, size_t count) {
    bool nonfinite = false;
    for (size_t block = first; block < first + count; block += GRADIENT_BLOCK) {
        size_t n = first + count - block < GRADIENT_BLOCK ? first + count - block : GRADIENT_BLOCK;
        nonfinite = scale_checked(e->model->grads + block, n, scale) || nonfinite;
        if (optimizer) nn_optimizer_update(optimizer, e->model->params, e->model->grads, block, n);
    }
    return nonfinite;
}

/* Part w->index of e->active of a JOB_UPDATE, in whole blocks. */
static void run_update(worker *w) {
    const nn_engine *e = w->engine;
    size_t blocks = (e->update_count + GRADIENT_BLOCK - 1) / GRADIENT_BLOCK;
    size_t lo = blocks * (size_t)w->index / (size_t)e->active, hi = blocks * (size_t)(w->index + 1) / (size_t)e->active;
    size_t first = lo * GRADIENT_BLOCK, end = hi * GRADIENT_BLOCK < e->update_count ? hi * GRADIENT_BLOCK : e->update_count;
    w->nonfinite = end > first &&
                   scale_and_update(e, e->update_optimizer, e->update_scale, e->update_first + first, end - first);
}

static void run_job(worker *w) {
    switch (w->engine->job) {
    case JOB_TRAIN: run_train(w); break;
    case JOB_EVAL: run_eval(w); break;
    case JOB_FORWARD: run_forward(w); break;
    case JOB_UPDATE: run_update(w); break;
    case JOB_QUIT: break;
    }
}

/* --- Dynamic scheduling ------------------------------------------------------ */

#define CLAIM_LIMIT 0xfffffu

static uint64_t claim_word(unsigned long generation, int limit) {
    return ((uint64_t)(generation & 0xffffffu) << 40) | ((uint64_t)limit << 20);
}

/* The next unclaimed item of the current job's phase, or -1 when none is
 * left or the job is not generation's any more. */
static long claim(_Atomic uint64_t *word, unsigned long generation) {
    uint64_t value = atomic_load_explicit(word, memory_order_acquire);
    for (;;) {
        if ((value >> 40) != (generation & 0xffffffu)) return -1;
        uint64_t limit = (value >> 20) & CLAIM_LIMIT, next = value & CLAIM_LIMIT;
        if (next >= limit) return -1;
        if (atomic_compare_exchange_weak_explicit(word, &value, value + 1, memory_order_acq_rel,
                                                  memory_order_acquire))
            return (long)next;
    }
}

static void run_replica(worker *w, job_kind job) {
    switch (job) {
    case JOB_TRAIN: train_replica(w); break;
    case JOB_EVAL: run_eval(w); break;
    case JOB_FORWARD: run_forward(w); break;
    case JOB_UPDATE: run_update(w); break;
    case JOB_QUIT: break;
    }
}

/* One gradient block: the replicas' sum in replica order, scaled, checked,
 * and (without a hook) the optimiser's update of those parameters. */
static void run_block(nn_engine *e, long block, float scale) {
    size_t count = e->model->param_count, first = (size_t)block * GRADIENT_BLOCK;
    size_t n = count - first < GRADIENT_BLOCK ? count - first : GRADIENT_BLOCK;
    if (sum_gradients(e, first, n, scale)) atomic_store(&e->nonfinite, 1);
    if (e->optimizer && !e->hook && !e->collective_step)
        nn_optimizer_update(e->optimizer, e->model->params, e->model->grads, first, n);
}

/* What every thread does with a job of generation: claim replicas until
 * none is left; for training, once every replica is done, claim gradient
 * blocks until none is left. The caller's thread runs this too. */
static void run_dynamic(nn_engine *e, unsigned long generation, job_kind job) {
    long r;
    while ((r = claim(&e->replica_claim, generation)) >= 0) {
        run_replica(&e->workers[r], job);
        pthread_mutex_lock(&e->lock);
        if (++e->replicas_done == e->active) pthread_cond_broadcast(&e->done);
        pthread_mutex_unlock(&e->lock);
    }
    if (job != JOB_TRAIN) return;
    pthread_mutex_lock(&e->lock);
    while (e->generation == generation && e->replicas_done < e->active) pthread_cond_wait(&e->done, &e->lock);
    pthread_mutex_unlock(&e->lock);
    /* A block claimed means the job is still on (it cannot end without
     * that block), so what the replicas left may be read from here on. */
    float scale = 0;
    bool scaled = false;
    long b;
    while ((b = claim(&e->block_claim, generation)) >= 0) {
        if (!scaled) scale = gradient_scale(e), scaled = true;
        run_block(e, b, scale);
        pthread_mutex_lock(&e->lock);
        if (++e->blocks_done == e->block_count) pthread_cond_broadcast(&e->done);
        pthread_mutex_unlock(&e->lock);
    }
}

static void *worker_main(void *argument) {
    worker *w = argument;
    nn_engine *e = w->engine;
    unsigned long seen = 0;
    for (;;) {
        pthread_mutex_lock(&e->lock);
        while (e->generation == seen) pthread_cond_wait(&e->wake, &e->lock);
        seen = e->generation;
        job_kind job = e->job;
        bool mine = w->index < e->active, dynamic = e->dynamic;
        pthread_mutex_unlock(&e->lock);
        if (job == JOB_QUIT) return NULL;
        if (dynamic) {
            run_dynamic(e, seen, job);
            continue;
        }
        if (mine) run_job(w);
        pthread_mutex_lock(&e->lock);
        if (--e->pending == 0) pthread_cond_signal(&e->done);
        pthread_mutex_unlock(&e->lock);
    }
}

/* Runs the job on the active replicas, the caller's thread taking part;
 * returns when all are done (and, for training, every gradient block). */
static void split_rows(nn_engine *e, job_kind job, int count) {
    e->job = job;
    e->active = count < e->threads ? count : e->threads;
    if (job == JOB_UPDATE) return;   /* count parts; the rows stay the step's */
    for (int r = 0; r < e->threads; r++) {
        worker *w = &e->workers[r];
        w->first = (int)((int64_t)count * r / e->active);
        w->count = r < e->active ? (int)((int64_t)count * (r + 1) / e->active) - w->first : 0;
    }
}

static void run_all(nn_engine *e, job_kind job, int count) {
    if (e->dynamic && job != JOB_QUIT) {
        /* Under the lock: a worker woken late for the last job may be
         * reading the job's fields there. */
        pthread_mutex_lock(&e->lock);
        split_rows(e, job, count);
        e->replicas_done = e->blocks_done = 0;
        e->block_count = job == JOB_TRAIN ? (int)((e->model->param_count + GRADIENT_BLOCK - 1) / GRADIENT_BLOCK) : 0;
        atomic_store(&e->nonfinite, 0);
        unsigned long generation = ++e->generation;
        atomic_store_explicit(&e->replica_claim, claim_word(generation, e->active), memory_order_release);
        atomic_store_explicit(&e->block_claim, claim_word(generation, e->block_count), memory_order_release);
        if (e->threads > 1) pthread_cond_broadcast(&e->wake);
        pthread_mutex_unlock(&e->lock);
        run_dynamic(e, generation, job);
        pthread_mutex_lock(&e->lock);
        while (e->replicas_done < e->active || e->blocks_done < e->block_count) pthread_cond_wait(&e->done, &e->lock);
        pthread_mutex_unlock(&e->lock);
        return;
    }
    /* Static: every worker is waiting for the next generation, so the job
     * may be set up before the lock that wakes them. */
    split_rows(e, job, count);
    if (e->threads > 1) {
        pthread_mutex_lock(&e->lock);
        e->pending = e->threads - 1;
        e->generation++;
        pthread_cond_broadcast(&e->wake);
        pthread_mutex_unlock(&e->lock);
    }
    if (job != JOB_QUIT) run_job(&e->workers[0]);
    if (e->threads > 1) {
        pthread_mutex_lock(&e->lock);
        while (e->pending > 0) pthread_cond_wait(&e->done, &e->lock);
        pthread_mutex_unlock(&e->lock);
    }
}

/* --- Life ----------------------------------------------------------------------- */

static void free_worker(worker *w) {
    if (w->index > 0) nn_replica_free(w->replica);
    free(w->labels);
    free(w->values);
    free(w->numerator);
    free(w->denominator);
    free(w->keys);
    free(w->scratch);
}

void nn_engine_free(nn_engine *e) {
    if (!e) return;
    if (e->sync_ready) {
        bool any = false;
        for (int r = 1; r < e->threads; r++) any = any || e->workers[r].started;
        if (any) {
            /* Every started worker sees the quit generation and returns. */
            pthread_mutex_lock(&e->lock);
            e->job = JOB_QUIT;
            e->generation++;
            pthread_cond_broadcast(&e->wake);
            pthread_mutex_unlock(&e->lock);
            for (int r = 1; r < e->threads; r++)
                if (e->workers[r].started) pthread_join(e->workers[r].thread, NULL);
        }
        pthread_mutex_destroy(&e->lock);
        pthread_cond_destroy(&e->wake);
        pthread_cond_destroy(&e->done);
        pthread_mutex_destroy(&e->barrier_lock);
        pthread_cond_destroy(&e->barrier_cond);
    }
    if (e->workers)
        for (int r = 0; r < e->threads; r++) free_worker(&e->workers[r]);
    free(e->workers);
    free(e->slots);
    free(e->forward_out);
    free(e->shard_scratch);
    free(e);
}

nn_engine *nn_engine_create(nn_model *model, int threads, int max_batch, nn_error *err) {
    if (threads < 1) threads = 1;
    if (max_batch < 1) max_batch = 1;
    nn_engine *e = calloc(1, sizeof *e);
    if (!e) {
        nn_error_oom(err, "the engine");
        return NULL;
    }
    e->model = model;
    e->threads = threads;
    e->max_batch = max_batch;
    e->slice_capacity = (max_batch + threads - 1) / threads;
    e->outputs = (int)nn_shape_size(nn_model_output_shape(model));
    e->input_size = nn_shape_size(model->input_shape);
    e->dynamic = true;
    for (int i = 0; i < model->layer_count; i++) e->dynamic = e->dynamic && !model->layers[i]->kind->collective;
    atomic_init(&e->replica_claim, 0);
    atomic_init(&e->block_claim, 0);
    atomic_init(&e->nonfinite, 0);
    e->workers = calloc((size_t)threads, sizeof *e->workers);
    e->slots = calloc((size_t)threads, sizeof *e->slots);
    e->forward_out = malloc((size_t)max_batch * (size_t)e->outputs * sizeof(float) + 1);
    if (!e->workers || !e->slots || !e->forward_out) goto oom;
    if (pthread_mutex_init(&e->lock, NULL) || pthread_cond_init(&e->wake, NULL) || pthread_cond_init(&e->done, NULL) ||
        pthread_mutex_init(&e->barrier_lock, NULL) || pthread_cond_init(&e->barrier_cond, NULL)) {
        nn_error_set(err, NN_ERR_RUNTIME, "cannot set up the thread pool's locks");
        goto fail;
    }
    e->sync_ready = true;
    size_t slice = (size_t)e->slice_capacity;
    for (int r = 0; r < threads; r++) {
        worker *w = &e->workers[r];
        w->engine = e;
        w->index = r;
        /* Replica 0 is the model's own, whose gradients are model->grads:
         * the sum of the others is added onto it. */
        w->replica = r == 0 ? &model->main : nn_replica_create(model, NULL, err);
        if (!w->replica) goto fail;
        if (nn_replica_reserve(w->replica, (int)slice, err) != 0) goto fail;
        w->labels = malloc(slice * sizeof *w->labels);
        w->values = malloc(slice * (size_t)e->outputs * sizeof *w->values);
        w->numerator = malloc(slice * sizeof *w->numerator);
        w->denominator = malloc(slice * sizeof *w->denominator);
        w->keys = malloc(slice * sizeof *w->keys);
        if (!w->labels || !w->values || !w->numerator || !w->denominator || !w->keys) goto oom;
    }
    model->max_batch = model->main.max_batch;
    for (int r = 1; r < threads; r++) {
        if (pthread_create(&e->workers[r].thread, NULL, worker_main, &e->workers[r]) != 0) {
            nn_error_set(err, NN_ERR_RUNTIME, "cannot start thread %d of %d", r + 1, threads);
            goto fail;
        }
        e->workers[r].started = true;
    }
    return e;
oom:
    nn_error_oom(err, "the engine's buffers");
fail:
    nn_engine_free(e);
    return NULL;
}

/* --- Steps ---------------------------------------------------------------------- */

static bool any_failed(nn_engine *e) {
    bool failed = false;
    for (int r = 0; r < e->threads; r++) {
        failed = failed || e->workers[r].failed;
        e->workers[r].failed = 0;
    }
    return failed;
}

static void add_metrics(nn_engine *e, nn_metrics_acc *metrics, nn_step_result *result, nn_error *err, int *status) {
    double numerator = 0, denominator = 0;
    for (int r = 0; r < e->active; r++) {
        worker *w = &e->workers[r];
        for (int i = 0; i < w->count; i++) {
            numerator += w->numerator[i];
            denominator += w->denominator[i];
        }
        if (metrics && *status == 0 &&
            nn_metrics_acc_add(metrics, w->output, &w->targets, w->count, w->numerator, w->denominator, err) != 0)
            *status = -1;
    }
    if (result) {
        result->numerator = numerator;
        result->denominator = denominator;
        result->loss = denominator > 0 ? numerator / denominator : 0;
    }
}

void nn_engine_set_collective(nn_engine *e, const nn_collective *collective) { e->collective = collective; }

bool nn_engine_collective_layers(const nn_engine *e) { return !e->dynamic; }

/* Parameters [first, first + count) scaled and updated on every thread
 * (each its part of the blocks; the rules are elementwise, so the bits
 * do not depend on the split); whether any gradient was not finite. The
 * replicas' rows of the step stay as they were (find_nonfinite reads
 * them). */
static bool update_range(nn_engine *e, nn_optimizer *optimizer, float scale, size_t first, size_t count) {
    size_t blocks = (count + GRADIENT_BLOCK - 1) / GRADIENT_BLOCK;
    if (e->threads == 1 || blocks < 2) return scale_and_update(e, optimizer, scale, first, count);
    int active = e->active, parts = blocks < (size_t)e->threads ? (int)blocks : e->threads;
    e->update_optimizer = optimizer;
    e->update_first = first;
    e->update_count = count;
    e->update_scale = scale;
    run_all(e, JOB_UPDATE, parts);
    bool nonfinite = false;
    for (int r = 0; r < parts; r++) nonfinite = nonfinite || e->workers[r].nonfinite;
    e->active = active;
    return nonfinite;
}

/* Across ranks: the gradients (unscaled sums of this rank's rows) and the
 * loss denominators summed over every rank, then scaled by the whole
 * batch's denominator, checked and applied, on every thread.
 *
 * With an optimiser and a group that can, the update is sharded (ZeRO's
 * stage 1): the gradients are reduce-scattered, each rank updates only
 * its slice of the parameters (and of the optimiser's state), and the
 * parameters are allgathered. That moves the bytes of one allreduce (a
 * ring allreduce is these two halves) and spares each rank all but
 * 1/ranks of the optimiser's pass over its state, which on the wide MLP
 * cost as much as the allreduce itself. The rules are elementwise, so
 * the bits are those of the whole update. A step whose gradients are not
 * finite gathers them whole, for nn_engine_find_nonfinite. */
static int collective_update(nn_engine *e, nn_optimizer *optimizer, nn_step_result *result, nn_error *err) {
    const nn_collective *c = e->collective;
    size_t count = e->model->param_count;
    double denominator = local_denominator(e);
    if (c->sum_doubles(c, &denominator, 1, err) != 0) return -1;
    float scale = denominator > 0 ? (float)(1.0 / denominator) : 0.0f;
    bool sharded = optimizer && !e->hook && c->reduce_scatter_floats && c->allgather_floats;
    if (sharded && !e->shard_scratch) {
        size_t most = nn_collective_slice_max(c, count);
        e->shard_scratch = malloc((most ? most : 1) * sizeof *e->shard_scratch);
        /* Every rank must take the same path: agree on the allocation. */
        double missing = e->shard_scratch ? 0 : 1;
        if (c->sum_doubles(c, &missing, 1, err) != 0) return -1;
        if (missing > 0) {
            free(e->shard_scratch);
            e->shard_scratch = NULL;
            return nn_error_oom(err, "the sharded update's buffer");
        }
    }
    if (!sharded) {
        if (c->sum_floats(c, e->model->grads, count, err) != 0) return -1;
        bool nonfinite = update_range(e, optimizer, scale, 0, count);
        if (result) result->gradients_finite = !nonfinite;
        return 0;
    }
    size_t first, mine;
    nn_collective_slice(c, c->rank, count, &first, &mine);
    if (c->reduce_scatter_floats(c, e->model->grads, count, e->shard_scratch, err) != 0) return -1;
    double nonfinite = update_range(e, optimizer, scale, first, mine) ? 1 : 0;
    e->optimizer_sharded = true;
    if (c->sum_doubles(c, &nonfinite, 1, err) != 0 || c->allgather_floats(c, e->model->params, count, err) != 0)
        return -1;
    if (nonfinite > 0 && c->allgather_floats(c, e->model->grads, count, err) != 0) return -1;
    if (result) result->gradients_finite = nonfinite == 0;
    return 0;
}

int nn_engine_share_optimizer(nn_engine *e, nn_optimizer *optimizer, nn_error *err) {
    if (!e->optimizer_sharded) return 0;
    for (int i = 0; i < NN_OPTIMIZER_MAX_BUFFERS; i++)
        if (optimizer->buffers[i] &&
            e->collective->allgather_floats(e->collective, optimizer->buffers[i], optimizer->param_count, err) != 0)
            return -1;
    e->optimizer_sharded = false;
    return 0;
}

int nn_engine_train_step(nn_engine *e, const nn_batch *batch, const nn_loss *loss, nn_optimizer *optimizer,
                         nn_gradient_hook hook, void *hook_user, nn_metrics_acc *metrics, nn_step_result *result,
                         nn_error *err) {
    e->collective_step = e->collective && e->collective->size > 1;
    if (e->collective_step && batch->count == 0 && e->dynamic) {
        /* A rank whose share of a short last batch is empty still adds its
         * zeros to the sums (a model without collective layers). */
        e->active = 0;
        e->hook = optimizer ? hook : NULL;
        memset(e->model->grads, 0, e->model->param_count * sizeof *e->model->grads);
        if (result) *result = (nn_step_result){0, 0, 0, true};
        int status = collective_update(e, optimizer, result, err);
        if (status == 0 && optimizer) nn_optimizer_finish_step(optimizer);
        e->collective_step = false;
        return status;
    }
    if (batch->count < 1 || batch->count > e->max_batch)
        return nn_error_set(err, NN_ERR_RUNTIME, "a batch of %d samples (the engine holds 1 to %d)", batch->count,
                            e->max_batch);
    e->batch = batch;
    e->loss = loss;
    e->optimizer = optimizer;
    e->hook = optimizer ? hook : NULL;
    e->hook_user = hook_user;
    e->hook_status = 0;
    run_all(e, JOB_TRAIN, batch->count);
    e->optimizer = NULL;
    bool collective_step = e->collective_step;
    e->collective_step = false;
    for (int r = 0; r < e->threads; r++)
        if (e->workers[r].failed == 2) {
            *err = e->workers[r].err;
            any_failed(e);
            return -1;
        }
    if (any_failed(e)) return nn_error_oom(err, "a reduction across threads");
    int status = 0;
    add_metrics(e, metrics, result, err, &status);
    if (collective_step) {
        if (status == 0) status = collective_update(e, optimizer, result, err);
        if (status == 0 && hook) status = hook(hook_user, e->model->grads, e->model->param_count, err);
        if (status == 0 && optimizer) nn_optimizer_finish_step(optimizer);
        return status;
    }
    if (result) {
        result->gradients_finite = !atomic_load(&e->nonfinite);
        for (int r = 0; r < e->active && !e->dynamic; r++) result->gradients_finite &= !e->workers[r].nonfinite;
    }
    /* Dynamic scheduling sums the blocks without updating when there is a
     * hook: the hook, then the update, here (MPI's path, not the threads'). */
    if (e->dynamic && optimizer && hook && status == 0) {
        e->hook_status = hook(hook_user, e->model->grads, e->model->param_count, &e->hook_err);
        if (e->hook_status == 0)
            nn_optimizer_update(optimizer, e->model->params, e->model->grads, 0, e->model->param_count);
    }
    if (e->hook_status != 0) {
        *err = e->hook_err;
        return -1;
    }
    if (status == 0 && !optimizer && hook) status = hook(hook_user, e->model->grads, e->model->param_count, err);
    if (optimizer && e->hook_status == 0) nn_optimizer_finish_step(optimizer);
    return status;
}

int nn_engine_evaluate(nn_engine *e, int batch_size, const nn_loss *loss, const nn_input_transform *transform,
                       const nn_dataset *set, int64_t first, int64_t count, nn_metrics_acc *metrics, nn_error *err) {
    int status = 0;
    if (batch_size < 1 || batch_size > e->max_batch) batch_size = e->max_batch;
    for (int64_t done = 0; done < count && status == 0; done += batch_size) {
        nn_batch batch = {set, transform, NULL, first + done,
                          count - done < batch_size ? (int)(count - done) : batch_size, 0};
        e->batch = &batch;
        e->loss = loss;
        run_all(e, JOB_EVAL, batch.count);
        if (any_failed(e)) return nn_error_oom(err, "a reduction across threads");
        add_metrics(e, metrics, NULL, err, &status);
    }
    return status;
}

const float *nn_engine_forward(nn_engine *e, const float *inputs, int count, nn_error *err) {
    if (count < 1 || count > e->max_batch) {
        nn_error_set(err, NN_ERR_RUNTIME, "a batch of %d samples (the engine holds 1 to %d)", count, e->max_batch);
        return NULL;
    }
    e->raw_inputs = inputs;
    run_all(e, JOB_FORWARD, count);
    if (any_failed(e)) {
        nn_error_oom(err, "a reduction across threads");
        return NULL;
    }
    return e->forward_out;
}

static bool all_finite(const float *values, size_t count) {
    for (size_t i = 0; i < count; i++)
        if (!isfinite(values[i])) return false;
    return true;
}

nn_nonfinite_place nn_engine_find_nonfinite(const nn_engine *e) {
    const nn_model *model = e->model;
    for (int i = 0; i < model->layer_count; i++) {
        size_t size = nn_shape_size(model->layers[i]->out_shape);
        for (int r = 0; r < e->active; r++)
            if (!all_finite(e->workers[r].replica->activations[i + 1], (size_t)e->workers[r].count * size))
                return (nn_nonfinite_place){i, true};
    }
    for (int i = model->layer_count - 1; i >= 0; i--) {
        const nn_layer *layer = model->layers[i];
        for (int j = 0; j < layer->state_count; j++) {
            if (!layer->state[j].trainable) continue;
            size_t offset = (size_t)((const float *)layer->state[j].array.data - model->params);
            if (!all_finite(model->grads + offset, nn_array_count(&layer->state[j].array)))
                return (nn_nonfinite_place){i, false};
        }
    }
    return (nn_nonfinite_place){-1, false};
}
