/* The config file: the only code that knows YAML (libyaml's event API). It
 * turns the file into the plain structs below, with every default filled in,
 * every path resolved against the config file's folder, every layer,
 * optimiser, loss and scheduler name resolved to its kind and every argument
 * checked against that kind's table. Errors name file:line:column and, for
 * an unknown name, suggest the nearest known one. The schema is in
 * docs/config.md. */
#ifndef NNSEQ_CONFIG_H
#define NNSEQ_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/suggest.h"
#include "core/args.h"
#include "core/error.h"
#include "core/layer.h"
#include "losses/loss.h"
#include "optim/optimizer.h"
#include "optim/scheduler.h"
#include "core/shape.h"
#include "data/source.h"


typedef enum nn_normalize_mode {
    NN_NORMALIZE_NONE,
    NN_NORMALIZE_GIVEN,   /* normalize: {mean, std}: numbers or lists */
    NN_NORMALIZE_AUTO     /* normalize: auto: from the training split */
} nn_normalize_mode;

typedef struct nn_config {
    char *path;          /* the file as given */
    char *dir;           /* its folder, that relative paths resolved against */
    char *text;          /* the whole file, NUL-terminated (stored in checkpoints) */
    size_t text_length;
    char *name;          /* default: base name of the file without .yaml/.yml */
    uint64_t seed;       /* default 0 */

    struct {
        nn_data_format format;        /* default idx */
        nn_data_files train, test;    /* resolved paths; test.* NULL when absent */
        bool has_test;
        nn_csv_options csv;
        double val_split;             /* [0, 1), default 0: of what the test split leaves */
        double test_split;            /* [0, 1), default 0: the tail of the training file */
        bool shuffle_split;           /* permute the training file (from seed) before splitting */
        bool target_is_input;         /* target: input */
        nn_normalize_mode normalize;
        int normalize_count;          /* values in mean and std (GIVEN) */
        double *mean, *std;           /* GIVEN: one value, one per channel or one per value */
        bool mean_is_list;            /* written as a list (rendered back the same way) */
    } data;

    struct {
        bool has_input_shape;
        nn_shape input_shape;         /* rank 1 to 3, all dims >= 1 */
        int layer_count;              /* >= 1 */
        nn_layer_spec *layers;
        int line;                     /* of the model: key */
    } model;

    nn_loss loss;                     /* default cross_entropy; loss.vector owned by the config */
    int loss_line, loss_column;       /* of the loss: key; 0 when not written */

    struct {
        const nn_optimizer_kind *kind;    /* default sgd */
        nn_arg_value args[NN_MAX_ARGS];   /* indexed like kind->args */
        int line, column;                 /* of the optimizer: key; 0 when not written */
        /* no_decay: [bias, norm]: weight decay is not applied to biases,
         * or to the parameters of normalisation layers */
        bool no_decay_bias, no_decay_norm;
    } optimizer;

    /* kind NULL: constant learning rate; SequentialLR's schedules are its
     * children, owned by the config. */
    nn_schedule scheduler;
    int scheduler_line, scheduler_column; /* of its value; 0 when not written */

    struct {
        int epochs;                   /* default 1, >= 1 */
        int batch_size;               /* default 64, >= 1 */
        bool shuffle;                 /* default true */
        char *log;                    /* train.log: CSV of per-epoch metrics; NULL: none */
        bool early_stop;              /* train.early_stop given */
        int patience;                 /* default 5 */
        double min_delta;             /* default 0 */
    } train;

    char *checkpoint_path;            /* checkpoint.path; default "runs/NAME.ckpt" in the current directory */
    char *init;                       /* init: .npz weights to start from; NULL: none */
} nn_config;

/* Reads and parses path. On error returns -1 with err->status NN_ERR_INPUT
 * and a message "PATH:LINE:COLUMN: what was wrong (expected what)". On
 * success cfg owns its memory; release with nn_config_free. */
int nn_config_load(nn_config *cfg, const char *path, nn_error *err);

/* Parses text (length bytes) as if read from path, resolving relative paths
 * against dir (for a config stored in a checkpoint). */
int nn_config_parse(nn_config *cfg, const char *text, size_t length, const char *path, const char *dir,
                    nn_error *err);

void nn_config_free(nn_config *cfg);

/* The effective config as YAML that nn_config_parse reads back to the same
 * struct: defaults, overrides and all, every path absolute (against the
 * current folder). A checkpoint leaves out checkpoint.path (it is where
 * the file is), so that the same run saved under two names is the same
 * bytes. malloc'ed; NULL with err set on failure. */
char *nn_config_render(const nn_config *cfg, bool with_checkpoint_path, nn_error *err);

/* Whether a run of now may go on from a checkpoint trained with old: false
 * when the model, loss, optimiser, schedule, data handling (format,
 * target, normalisation, splits), batch size and shuffling agree; else true with the first difference
 * ("model.layers[1] (Linear) out_features: 128 in the checkpoint, 64 now")
 * in out. Epochs, paths and logging may differ. */
bool nn_config_differ(const nn_config *old, const nn_config *now, char *out, size_t size);

#endif
