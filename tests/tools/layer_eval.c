/* Runs a config's model once through lib/ for tests/layer_ref.py, which
 * compares every number with torch's.
 *
 *   layer_eval CONFIG WORKDIR
 *
 * CONFIG needs model.input_shape and model.layers (nothing else is read).
 * Writes WORKDIR/init.npz, the model's state_dict as built from the
 * config's seed; reads WORKDIR/input.npy (float32, batch x input shape) and
 * WORKDIR/dout.npy (float32, batch x output shape); then, with the main
 * replica as nn_model_forward and nn_model_backward run it:
 *   a training forward, whose output is train_out;
 *   the buffers after it (running statistics): buffer.NAME;
 *   nn_model_backward with dout: grad.NAME for each trainable entry;
 *   din, dLoss/dInput: nn_model_backward leaves the first layer's input
 *     gradient out (nobody else needs it), so a second training forward and
 *     a backward of our own that asks the first layer for it give it (the
 *     buffers are put back to what the first forward left);
 *   an eval forward: eval_out;
 * all written to WORKDIR/out.npz. Gradients start as NaN, so that one a
 * backward leaves unwritten shows.
 *
 * Exit status: 0 done; 2 the config or a file was refused (the message on
 * stderr is nnseq's, for the !error cases); 1 anything else. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/model.h"
#include "data/npy.h"
#include "io/npz.h"

typedef struct run {
    nn_config cfg;
    bool cfg_loaded;
    nn_model *model;
    nn_array *state;         /* views into the model */
    size_t state_count;
    nn_array input, dout;    /* read from WORKDIR */
    nn_array *outputs;       /* train_out, eval_out, din, then one per state entry */
    size_t output_count, output_max;
    nn_error err;
} run;

static void run_free(run *r) {
    for (size_t i = 0; i < r->output_count; i++) free(r->outputs[i].data);
    free(r->outputs);
    free(r->input.data);
    free(r->dout.data);
    free(r->state);
    nn_model_free(r->model);
    if (r->cfg_loaded) nn_config_free(&r->cfg);
}

static int finish(run *r, int status) {
    if (status != 0) fprintf(stderr, "layer_eval: %s\n", r->err.message);
    run_free(r);
    return status == 0 ? 0 : r->err.status == NN_ERR_INPUT ? 2 : 1;
}

/* A new output array named name: a copy of data, of shape's dtype and dims. */
static int add_output(run *r, const char *name, const nn_array *shape, const void *data) {
    if (r->output_count == r->output_max) return nn_error_set(&r->err, NN_ERR_RUNTIME, "too many outputs");
    nn_array *out = &r->outputs[r->output_count];
    *out = *shape;
    snprintf(out->name, sizeof out->name, "%s", name);
    size_t bytes = nn_array_bytes(out);
    if (!(out->data = malloc(bytes ? bytes : 1))) return nn_error_oom(&r->err, name);
    memcpy(out->data, data, bytes);
    r->output_count++;
    return 0;
}

/* Whether entry n of nn_model_state's list is trainable (the list runs over
 * the layers' states in order). */
static bool trainable(const nn_model *model, size_t n) {
    for (int i = 0; i < model->layer_count; i++) {
        if (n < (size_t)model->layers[i]->state_count) return model->layers[i]->state[n].trainable;
        n -= (size_t)model->layers[i]->state_count;
    }
    return false;
}

/* The batch-major float array of batch samples of shape, as an nn_array header. */
static nn_array batch_array(int batch, nn_shape shape) {
    nn_array a = {.dtype = NN_F32, .rank = shape.rank + 1};
    a.dims[0] = batch;
    for (int i = 0; i < shape.rank; i++) a.dims[i + 1] = shape.dims[i];
    return a;
}

/* "(4, 3, 2)", with "N" for a first dim < 0. */
static void format_dims(char *buffer, size_t size, int rank, const int64_t *dims) {
    size_t used = (size_t)snprintf(buffer, size, "(");
    for (int i = 0; i < rank && used < size; i++) {
        if (i) used += (size_t)snprintf(buffer + used, size - used, ", ");
        if (used < size)
            used += dims[i] < 0 ? (size_t)snprintf(buffer + used, size - used, "N")
                                : (size_t)snprintf(buffer + used, size - used, "%lld", (long long)dims[i]);
    }
    if (used < size) snprintf(buffer + used, size - used, rank == 1 ? ",)" : ")");
}

/* Reads WORKDIR/NAME.npy into out, which must be float32 of batch x shape
 * (*batch < 0: any batch from 1 to 2^20, which becomes *batch). */
static int read_batch(run *r, const char *dir, const char *name, nn_shape shape, int *batch, nn_array *out) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    if (nn_npy_read(path, NULL, out, &r->err) != 0) return -1;
    nn_array want = batch_array(*batch, shape);
    int same = out->dtype == NN_F32 && out->rank == want.rank && out->dims[0] >= 1 && out->dims[0] <= 1 << 20 &&
               (*batch < 0 || out->dims[0] == *batch);
    for (int i = 1; same && i < want.rank; i++) same = out->dims[i] == want.dims[i];
    if (!same) {
        char want_text[96], got_text[96];
        format_dims(want_text, sizeof want_text, want.rank, want.dims);
        format_dims(got_text, sizeof got_text, out->rank, out->dims);
        return nn_error_set(&r->err, NN_ERR_INPUT, "%s: expected float32 of shape %s%s, found %s of shape %s", path,
                            want_text, *batch < 0 ? " (N from 1 to 2^20)" : "", nn_dtype_name(out->dtype), got_text);
    }
    *batch = (int)out->dims[0];
    return 0;
}

/* dLoss/dInput for the batch in the model's input buffer and dout: a
 * training forward, then the layers' backward from the last to the first,
 * as nn_replica_backward runs them but with the first layer's din asked
 * for. scratch receives the parameter gradients (param_count floats). */
static void input_grad(nn_model *model, int batch, const float *dout, float *din, float *scratch) {
    nn_replica *r = &model->main;
    nn_model_forward(model, batch, true);
    memcpy(nn_model_output_grad(model), dout, (size_t)batch * nn_shape_size(nn_model_output_shape(model)) *
           sizeof(float));
    nn_mode mode = {.training = true, .update_buffers = true};
    int current = model->layer_count % 2;   /* where nn_model_output_grad is */
    size_t offset = model->param_count;
    for (int i = model->layer_count - 1; i >= 0; i--) {
        const nn_layer *layer = model->layers[i];
        offset -= nn_layer_param_count(layer);
        mode.layer_index = i;
        float *into = i > 0 ? r->deltas[1 - current] : din;
        layer->kind->backward(layer, r->contexts[i], into, r->deltas[current], r->activations[i],
                              r->activations[i + 1], batch, scratch + offset, &mode);
        current = 1 - current;
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: layer_eval CONFIG WORKDIR (see tests/tools/layer_eval.c)\n");
        return 2;
    }
    const char *dir = argv[2];
    run r = {0};
    if (nn_config_load(&r.cfg, argv[1], &r.err) != 0) return finish(&r, -1);
    r.cfg_loaded = true;
    if (!r.cfg.model.has_input_shape) {
        nn_error_set(&r.err, NN_ERR_INPUT, "%s: model.input_shape is needed", argv[1]);
        return finish(&r, -1);
    }
    nn_shape in_shape = r.cfg.model.input_shape;
    if (!(r.model = nn_model_create(r.cfg.model.layers, r.cfg.model.layer_count, in_shape, r.cfg.seed, r.cfg.path,
                                    &r.err)))
        return finish(&r, -1);
    nn_model *model = r.model;
    nn_shape out_shape = nn_model_output_shape(model);
    char path[4096];
    snprintf(path, sizeof path, "%s/init.npz", dir);
    if (!(r.state = nn_model_state(model, &r.state_count, &r.err)) ||
        nn_npz_write(path, r.state, r.state_count, &r.err) != 0)
        return finish(&r, -1);
    r.output_max = r.state_count + 3;
    if (!(r.outputs = calloc(r.output_max, sizeof *r.outputs))) {
        nn_error_oom(&r.err, "the outputs");
        return finish(&r, -1);
    }

    int batch = -1;
    if (read_batch(&r, dir, "input", in_shape, &batch, &r.input) != 0 ||
        read_batch(&r, dir, "dout", out_shape, &batch, &r.dout) != 0)
        return finish(&r, -1);
    for (int i = 0; i < model->layer_count; i++)
        if (batch < model->layers[i]->min_train_batch) {
            nn_error_set(&r.err, NN_ERR_INPUT, "layer %d (%s) trains on batches of %d samples or more, not %d", i,
                         model->layers[i]->kind->name, model->layers[i]->min_train_batch, batch);
            return finish(&r, -1);
        }
    if (nn_model_reserve(model, batch, &r.err) != 0) return finish(&r, -1);
    size_t in_bytes = nn_array_bytes(&r.input), out_bytes = nn_array_bytes(&r.dout);
    nn_array out_array = batch_array(batch, out_shape), in_array = batch_array(batch, in_shape);

    memcpy(nn_model_input(model), r.input.data, in_bytes);
    if (add_output(&r, "train_out", &out_array, nn_model_forward(model, batch, true)) != 0)
        return finish(&r, -1);
    size_t first_buffer = r.output_count;
    for (size_t s = 0; s < r.state_count; s++) {
        if (trainable(model, s)) continue;
        char name[80];
        snprintf(name, sizeof name, "buffer.%s", r.state[s].name);
        if (add_output(&r, name, &r.state[s], r.state[s].data) != 0) return finish(&r, -1);
    }
    size_t buffer_end = r.output_count;

    /* NaN where a backward leaves a gradient unwritten (it must overwrite
     * them all), which torch's side then cannot match. */
    for (size_t i = 0; i < model->param_count; i++) model->grads[i] = NAN;
    memcpy(nn_model_output_grad(model), r.dout.data, out_bytes);
    nn_model_backward(model, batch);
    for (size_t s = 0; s < r.state_count; s++) {
        if (!trainable(model, s)) continue;
        const float *data = r.state[s].data;   /* in the flat buffer, whose layout grads share */
        char name[80];
        snprintf(name, sizeof name, "grad.%s", r.state[s].name);
        if (add_output(&r, name, &r.state[s], model->grads + (data - model->params)) != 0) return finish(&r, -1);
    }

    float *din = malloc(in_bytes), *scratch = calloc(model->param_count + 1, sizeof *scratch);
    if (!din || !scratch) {
        free(din);
        free(scratch);
        nn_error_oom(&r.err, "the input gradient");
        return finish(&r, -1);
    }
    for (size_t i = 0; i < in_bytes / sizeof *din; i++) din[i] = NAN;
    input_grad(model, batch, r.dout.data, din, scratch);
    int status = add_output(&r, "din", &in_array, din);
    free(din);
    free(scratch);
    if (status != 0) return finish(&r, -1);
    /* The second training forward moved the running statistics again. */
    for (size_t i = first_buffer, s = 0; i < buffer_end; i++) {
        while (strcmp(r.outputs[i].name + strlen("buffer."), r.state[s].name) != 0) s++;
        memcpy(r.state[s].data, r.outputs[i].data, nn_array_bytes(&r.outputs[i]));
    }

    memcpy(nn_model_input(model), r.input.data, in_bytes);
    if (add_output(&r, "eval_out", &out_array, nn_model_forward(model, batch, false)) != 0)
        return finish(&r, -1);
    snprintf(path, sizeof path, "%s/out.npz", dir);
    if (nn_npz_write(path, r.outputs, r.output_count, &r.err) != 0) return finish(&r, -1);
    return finish(&r, 0);
}
