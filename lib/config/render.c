/* The effective config as YAML, and the first difference between two
 * configs.
 *
 * A checkpoint stores the config that actually trained: the file with every
 * command-line override applied and every path made absolute, so that
 * `print`, `eval`, `--resume` and `export` see what ran, from any folder.
 * The text is rendered from the parsed struct rather than edited, so it is
 * always something nn_config_parse reads back to the same struct: numbers
 * are written with the fewest digits that read back to the same double, and
 * layer arguments keep the form they were given in (2 or [2, 2], 1 or 1.0),
 * which `nnseq print` shows as torch does. */
#include "config/config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct text_buffer {
    char *data;
    size_t length, capacity;
    bool failed;
} text_buffer;

__attribute__((format(printf, 2, 3))) static void put(text_buffer *b, const char *format, ...) {
    if (b->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, format);
        size_t room = b->capacity - b->length;
        int n = vsnprintf(b->data ? b->data + b->length : NULL, b->data ? room : 0, format, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if (b->data && (size_t)n < room) {
            b->length += (size_t)n;
            return;
        }
        size_t capacity = b->capacity ? b->capacity : 1024;
        while (capacity - b->length <= (size_t)n) capacity *= 2;
        char *grown = realloc(b->data, capacity);
        if (!grown) {
            b->failed = true;
            return;
        }
        b->data = grown;
        b->capacity = capacity;
    }
}

/* Python's repr (nn_format_python_float: the shortest decimal that reads
 * back as value), with a dot before any exponent: PyYAML (YAML 1.1) reads
 * 1e-08 as a string, 1.0e-08 as a float. */
static void format_number(char *out, size_t size, double value, bool is_integer) {
    char repr[40];
    nn_format_python_float(repr, sizeof repr, value, is_integer);
    char *exponent = strpbrk(repr, "eE");
    if (exponent && !memchr(repr, '.', (size_t)(exponent - repr)))
        snprintf(out, size, "%.*s.0%s", (int)(exponent - repr), repr, exponent);
    else
        snprintf(out, size, "%s", repr);
}

static void put_number(text_buffer *b, double value, bool is_integer) {
    char number[40];
    format_number(number, sizeof number, value, is_integer);
    put(b, "%s", number);
}

/* A YAML double-quoted string: every path and name goes out quoted, so a
 * colon, a '#' or a leading space cannot change its meaning. */
static void put_string(text_buffer *b, const char *text) {
    put(b, "\"");
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        if (*c == '"' || *c == '\\') put(b, "\\%c", *c);
        else if (*c < 0x20) put(b, "\\x%02x", *c);
        else put(b, "%c", *c);
    }
    put(b, "\"");
}

/* path made absolute against cwd and cleaned of "." and ".." parts
 * lexically (the file need not exist yet: a checkpoint path). */
static void put_path(text_buffer *b, const char *path, const char *cwd) {
    size_t size = strlen(path) + strlen(cwd) + 2;
    char *joined = malloc(size), *clean = malloc(size + 1);
    if (!joined || !clean) {
        b->failed = true;
        free(joined);
        free(clean);
        return;
    }
    snprintf(joined, size, "%s%s%s", path[0] == '/' ? "" : cwd, path[0] == '/' ? "" : "/", path);
    size_t used = 0;
    char *rest = NULL;
    for (char *part = strtok_r(joined, "/", &rest); part; part = strtok_r(NULL, "/", &rest)) {
        if (!strcmp(part, ".")) continue;
        if (!strcmp(part, "..")) {
            while (used > 0 && clean[used - 1] != '/') used--;
            if (used > 0) used--;
            continue;
        }
        used += (size_t)snprintf(clean + used, size + 1 - used, "/%s", part);
    }
    if (used == 0) clean[used++] = '/';
    clean[used] = '\0';
    put_string(b, clean);
    free(joined);
    free(clean);
}

static void put_arg_value(text_buffer *b, const nn_arg_spec *spec, const nn_arg_value *value) {
    if (value->is_null) {
        put(b, "null");
        return;
    }
    const char *choice = nn_arg_choice(spec, value);
    if (choice) {
        put_string(b, choice);
        return;
    }
    if (spec->type == NN_ARG_BOOL) {
        put(b, "%s", value->value[0] != 0 ? "true" : "false");
        return;
    }
    bool as_list = value->is_list ||
                   ((spec->type == NN_ARG_FLOAT_PAIR || spec->type == NN_ARG_INT_LIST) && !(spec->flags & NN_ARG_SCALAR));
    if (!as_list) {
        bool float_type = spec->type == NN_ARG_FLOAT || spec->type == NN_ARG_FLOAT_PAIR;
        put_number(b, value->value[0], !float_type || value->is_integer);
        return;
    }
    bool integers = spec->type != NN_ARG_FLOAT_PAIR || value->is_integer;
    put(b, "[");
    for (int i = 0; i < value->count; i++) {
        if (i) put(b, ", ");
        put_number(b, value->value[i], integers);
    }
    put(b, "]");
}

/* {a: 1, b: [2, 2]} of the arguments; all_set: also those left at a fixed
 * default (optimisers and schedules, whose every value matters to a rerun). */
static void put_args(text_buffer *b, const char *name, const nn_arg_spec *specs, int count,
                     const nn_arg_value *values, bool all_set) {
    int written = 0;
    put(b, "{");
    if (name) {
        put(b, "name: %s", name);
        written++;
    }
    for (int i = 0; i < count; i++) {
        bool has_value = values[i].given || (all_set && !(specs[i].flags & (NN_ARG_OPTIONAL | NN_ARG_REQUIRED)));
        if (!has_value) continue;
        put(b, "%s%s: ", written++ ? ", " : "", specs[i].name);
        put_arg_value(b, &specs[i], &values[i]);
    }
    put(b, "}");
}

/* Takes back the '}' that put_args wrote last, to add keys to its mapping. */
static void reopen_mapping(text_buffer *b) {
    if (!b->failed && b->length > 0 && b->data[b->length - 1] == '}') b->data[--b->length] = '\0';
}

/* A schedule and, for SequentialLR, its schedules as a flow list. */
static void put_schedule(text_buffer *b, const nn_schedule *schedule) {
    put_args(b, schedule->kind->name, schedule->kind->args, schedule->kind->arg_count, schedule->args, true);
    if (!schedule->kind->takes_children) return;
    reopen_mapping(b);
    put(b, ", schedulers: [");
    for (int i = 0; i < schedule->child_count; i++) {
        if (i) put(b, ", ");
        put_schedule(b, &schedule->children[i]);
    }
    put(b, "]}");
}

static void put_split(text_buffer *b, const char *key, const nn_data_files *split, const char *cwd) {
    const char *names[] = {"images", "labels", "file", "features", "targets"};
    const char *paths[] = {split->images, split->labels, split->file, split->features, split->targets};
    bool any = false;
    for (int i = 0; i < 5; i++) any = any || paths[i];
    if (!any) return;
    put(b, "  %s:\n", key);
    for (int i = 0; i < 5; i++) {
        if (!paths[i]) continue;
        put(b, "    %s: ", names[i]);
        put_path(b, paths[i], cwd);
        put(b, "\n");
    }
}

/* A column selector as written: an integer plain (an index), anything else
 * quoted (a name or a range), so that it reads back the same. */
static void put_selector_text(text_buffer *b, const char *text) {
    const char *c = text + (*text == '-');
    bool integer = *c != '\0';
    for (; *c; c++) integer = integer && *c >= '0' && *c <= '9';
    if (integer) put(b, "%s", text);
    else put_string(b, text);
}

static void put_columns(text_buffer *b, const char *key, const nn_csv_columns *columns) {
    if (columns->count == 0) return;
    put(b, ", %s: [", key);
    for (int i = 0; i < columns->count; i++) {
        const nn_csv_selector *s = &columns->items[i];
        if (i) put(b, ", ");
        if (s->is_range) {
            size_t size = strlen(s->first) + strlen(s->last) + 2;
            char *range = malloc(size);
            if (!range) {
                b->failed = true;
                return;
            }
            snprintf(range, size, "%s:%s", s->first, s->last);
            put_string(b, range);
            free(range);
        } else {
            put_selector_text(b, s->first);
        }
    }
    put(b, "]");
}

static void put_numbers(text_buffer *b, const double *values, int count, bool as_list) {
    if (as_list) put(b, "[");
    for (int i = 0; i < count; i++) {
        if (i) put(b, ", ");
        put_number(b, values[i], false);
    }
    if (as_list) put(b, "]");
}

static void put_data(text_buffer *b, const nn_config *cfg, const char *cwd) {
    put(b, "data:\n  format: %s\n", nn_data_format_name(cfg->data.format));
    put_split(b, "train", &cfg->data.train, cwd);
    put_split(b, "test", &cfg->data.test, cwd);
    if (cfg->data.format == NN_FORMAT_CSV) {
        const nn_csv_options *csv = &cfg->data.csv;
        put(b, "  csv: {delimiter: ");
        if (csv->delimiter) {
            char delimiter[2] = {csv->delimiter, '\0'};
            put_string(b, delimiter);
        } else {
            put(b, "whitespace");
        }
        put(b, ", skip_rows: %d, header: %s", csv->skip_rows, csv->header ? "true" : "false");
        put_columns(b, "features", &csv->features);
        put_columns(b, "target", &csv->target);
        put(b, "}\n");
    }
    put(b, "  test_split: ");
    put_number(b, cfg->data.test_split, false);
    put(b, "\n  val_split: ");
    put_number(b, cfg->data.val_split, false);
    put(b, "\n  shuffle_split: %s\n  target: %s\n", cfg->data.shuffle_split ? "true" : "false",
        cfg->data.target_is_input ? "input" : "labels");
    if (cfg->data.normalize == NN_NORMALIZE_AUTO) {
        put(b, "  normalize: auto\n");
    } else if (cfg->data.normalize == NN_NORMALIZE_GIVEN) {
        put(b, "  normalize: {mean: ");
        put_numbers(b, cfg->data.mean, cfg->data.normalize_count, cfg->data.mean_is_list);
        put(b, ", std: ");
        put_numbers(b, cfg->data.std, cfg->data.normalize_count, cfg->data.mean_is_list);
        put(b, "}\n");
    }
}

static void put_loss(text_buffer *b, const nn_loss *loss) {
    const nn_loss_kind *kind = loss->kind;
    if (kind->arg_count == 0 && !loss->vector) {
        put(b, "loss: %s\n", kind->name);
        return;
    }
    put(b, "loss: {name: %s", kind->name);
    for (int i = 0; i < kind->arg_count; i++) {
        if (kind->args[i].flags & (NN_ARG_OPTIONAL | NN_ARG_REQUIRED) && !loss->args[i].given) continue;
        put(b, ", %s: ", kind->args[i].name);
        put_arg_value(b, &kind->args[i], &loss->args[i]);
    }
    if (loss->vector) {
        put(b, ", %s: [", kind->vector_arg);
        for (int i = 0; i < loss->vector_count; i++) {
            if (i) put(b, ", ");
            put_number(b, loss->vector[i], false);
        }
        put(b, "]");
    }
    put(b, "}\n");
}

char *nn_config_render(const nn_config *cfg, bool with_checkpoint_path, nn_error *err) {
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd))
        return nn_error_set(err, NN_ERR_RUNTIME, "cannot read the current folder: %s", strerror(errno)), NULL;
    text_buffer b = {0};
    put(&b, "# The effective config read from %s: every default filled in, command-line options applied.\n",
        cfg->path);
    put(&b, "name: ");
    put_string(&b, cfg->name);
    put(&b, "\nseed: %llu\n", (unsigned long long)cfg->seed);
    put_data(&b, cfg, cwd);
    put(&b, "model:\n");
    if (cfg->model.has_input_shape) {
        put(&b, "  input_shape: [");
        for (int i = 0; i < cfg->model.input_shape.rank; i++)
            put(&b, "%s%d", i ? ", " : "", cfg->model.input_shape.dims[i]);
        put(&b, "]\n");
    }
    put(&b, "  layers:\n");
    for (int i = 0; i < cfg->model.layer_count; i++) {
        const nn_layer_spec *layer = &cfg->model.layers[i];
        put(&b, "    - %s: ", layer->kind->name);
        put_args(&b, NULL, layer->kind->args, layer->kind->arg_count, layer->args, false);
        put(&b, "\n");
    }
    put_loss(&b, &cfg->loss);
    put(&b, "optimizer: ");
    put_args(&b, cfg->optimizer.kind->name, cfg->optimizer.kind->args, cfg->optimizer.kind->arg_count,
             cfg->optimizer.args, true);
    if (cfg->optimizer.no_decay_bias || cfg->optimizer.no_decay_norm) {
        reopen_mapping(&b);   /* for nnseq's own key */
        put(&b, ", no_decay: [%s%s%s]}", cfg->optimizer.no_decay_bias ? "bias" : "",
            cfg->optimizer.no_decay_bias && cfg->optimizer.no_decay_norm ? ", " : "",
            cfg->optimizer.no_decay_norm ? "norm" : "");
    }
    if (cfg->scheduler.kind) {
        put(&b, "\nscheduler: ");
        put_schedule(&b, &cfg->scheduler);
    }
    put(&b, "\ntrain:\n  epochs: %d\n  batch_size: %d\n  shuffle: %s\n", cfg->train.epochs, cfg->train.batch_size,
        cfg->train.shuffle ? "true" : "false");
    if (cfg->train.log) {
        put(&b, "  log: ");
        put_path(&b, cfg->train.log, cwd);
        put(&b, "\n");
    }
    if (cfg->train.early_stop) {
        put(&b, "  early_stop: {patience: %d, min_delta: ", cfg->train.patience);
        put_number(&b, cfg->train.min_delta, false);
        put(&b, "}\n");
    }
    if (with_checkpoint_path) {
        put(&b, "checkpoint:\n  path: ");
        put_path(&b, cfg->checkpoint_path, cwd);
        put(&b, "\n");
    }
    if (cfg->init) {
        put(&b, "init: ");
        put_path(&b, cfg->init, cwd);
        put(&b, "\n");
    }
    if (b.failed) {
        free(b.data);
        nn_error_oom(err, "the effective config");
        return NULL;
    }
    return b.data;
}

/* --- Comparing two configs ------------------------------------------------- */

static void describe_arg(char *out, size_t size, const nn_arg_spec *spec, const nn_arg_value *value) {
    if (!value->given && (spec->flags & NN_ARG_OPTIONAL)) {
        snprintf(out, size, "(inferred)");
        return;
    }
    text_buffer b = {0};
    put_arg_value(&b, spec, value);
    snprintf(out, size, "%s", b.failed || !b.data ? "?" : b.data);
    free(b.data);
}

static bool same_arg(const nn_arg_spec *spec, const nn_arg_value *a, const nn_arg_value *b) {
    bool a_inferred = !a->given && (spec->flags & NN_ARG_OPTIONAL);
    bool b_inferred = !b->given && (spec->flags & NN_ARG_OPTIONAL);
    if (a_inferred || b_inferred) return a_inferred == b_inferred;
    if (a->is_null != b->is_null || a->choice != b->choice) return false;
    if (a->is_null || a->choice) return true;
    /* One number or a list of them prints differently in torch only where a
     * scalar is allowed (Upsample's scale_factor: 2.0 or (2.0, 2.0)). */
    if ((spec->flags & NN_ARG_SCALAR) && a->is_list != b->is_list) return false;
    bool counted = spec->type == NN_ARG_INT_LIST || (spec->flags & NN_ARG_SCALAR);
    int count = counted ? a->count : spec->type == NN_ARG_INT_PAIR || spec->type == NN_ARG_FLOAT_PAIR ? 2 : 1;
    if (counted && a->count != b->count) return false;
    for (int i = 0; i < count; i++)
        if (a->value[i] != b->value[i]) return false;
    return true;
}

static bool args_differ(char *out, size_t size, const char *where, const nn_arg_spec *specs, int count,
                        const nn_arg_value *a, const nn_arg_value *b);

/* The first difference of two schedules and their children, into out. */
static bool schedules_differ(char *out, size_t size, const char *where, const nn_schedule *old,
                             const nn_schedule *now) {
    if (old->kind != now->kind) {
        snprintf(out, size, "%s: %s in the checkpoint, %s now", where, old->kind ? old->kind->name : "none",
                 now->kind ? now->kind->name : "none");
        return true;
    }
    if (!old->kind) return false;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s.", where);
    if (args_differ(out, size, prefix, old->kind->args, old->kind->arg_count, old->args, now->args)) return true;
    if (old->child_count != now->child_count) {
        snprintf(out, size, "%s.schedulers: %d schedules in the checkpoint, %d now", where, old->child_count,
                 now->child_count);
        return true;
    }
    for (int i = 0; i < old->child_count; i++) {
        char child[64];
        snprintf(child, sizeof child, "%s.schedulers[%d]", where, i);
        if (schedules_differ(out, size, child, &old->children[i], &now->children[i])) return true;
    }
    return false;
}

/* The first argument that differs, as "KEY: OLD -> NEW" into out. */
static bool args_differ(char *out, size_t size, const char *where, const nn_arg_spec *specs, int count,
                        const nn_arg_value *a, const nn_arg_value *b) {
    for (int i = 0; i < count; i++) {
        if (same_arg(&specs[i], &a[i], &b[i])) continue;
        char old_text[128], new_text[128];
        describe_arg(old_text, sizeof old_text, &specs[i], &a[i]);
        describe_arg(new_text, sizeof new_text, &specs[i], &b[i]);
        snprintf(out, size, "%s%s: %s in the checkpoint, %s now", where, specs[i].name, old_text, new_text);
        return true;
    }
    return false;
}

#define DIFFER(...) (snprintf(out, size, __VA_ARGS__), true)

bool nn_config_differ(const nn_config *old, const nn_config *now, char *out, size_t size) {
    char where[96];
    const nn_shape *a = &old->model.input_shape, *b = &now->model.input_shape;
    if (old->model.has_input_shape && now->model.has_input_shape &&
        (a->rank != b->rank || memcmp(a->dims, b->dims, (size_t)a->rank * sizeof a->dims[0])))
        return DIFFER("model.input_shape differs from the checkpoint's");
    if (old->model.layer_count != now->model.layer_count)
        return DIFFER("model.layers: %d layers in the checkpoint, %d now", old->model.layer_count,
                      now->model.layer_count);
    for (int i = 0; i < old->model.layer_count; i++) {
        const nn_layer_spec *x = &old->model.layers[i], *y = &now->model.layers[i];
        if (x->kind != y->kind)
            return DIFFER("model.layers[%d]: %s in the checkpoint, %s now", i, x->kind->name, y->kind->name);
        snprintf(where, sizeof where, "model.layers[%d] (%s) ", i, x->kind->name);
        if (args_differ(out, size, where, x->kind->args, x->kind->arg_count, x->args, y->args)) return true;
    }
    if (old->loss.kind != now->loss.kind)
        return DIFFER("loss: %s in the checkpoint, %s now", old->loss.kind->name, now->loss.kind->name);
    if (args_differ(out, size, "loss.", old->loss.kind->args, old->loss.kind->arg_count, old->loss.args,
                    now->loss.args))
        return true;
    if (old->loss.vector_count != now->loss.vector_count ||
        (old->loss.vector && memcmp(old->loss.vector, now->loss.vector, (size_t)old->loss.vector_count * sizeof(float))))
        return DIFFER("loss.%s differs from the checkpoint's", old->loss.kind->vector_arg);
    if (old->optimizer.kind != now->optimizer.kind)
        return DIFFER("optimizer: %s in the checkpoint, %s now", old->optimizer.kind->name,
                      now->optimizer.kind->name);
    if (args_differ(out, size, "optimizer.", old->optimizer.kind->args, old->optimizer.kind->arg_count,
                    old->optimizer.args, now->optimizer.args))
        return true;
    if (old->optimizer.no_decay_bias != now->optimizer.no_decay_bias ||
        old->optimizer.no_decay_norm != now->optimizer.no_decay_norm)
        return DIFFER("optimizer.no_decay differs from the checkpoint's");
    if (schedules_differ(out, size, "scheduler", &old->scheduler, &now->scheduler)) return true;
    char x[40], y[40];
    if (old->data.val_split != now->data.val_split) {
        format_number(x, sizeof x, old->data.val_split, false);
        format_number(y, sizeof y, now->data.val_split, false);
        return DIFFER("data.val_split: %s in the checkpoint, %s now", x, y);
    }
    if (old->data.test_split != now->data.test_split) {
        format_number(x, sizeof x, old->data.test_split, false);
        format_number(y, sizeof y, now->data.test_split, false);
        return DIFFER("data.test_split: %s in the checkpoint, %s now", x, y);
    }
    if (old->data.shuffle_split != now->data.shuffle_split)
        return DIFFER("data.shuffle_split: %s in the checkpoint, %s now", old->data.shuffle_split ? "true" : "false",
                      now->data.shuffle_split ? "true" : "false");
    if (old->data.format != now->data.format)
        return DIFFER("data.format: %s in the checkpoint, %s now", nn_data_format_name(old->data.format),
                      nn_data_format_name(now->data.format));
    if (old->data.target_is_input != now->data.target_is_input)
        return DIFFER("data.target: %s in the checkpoint, %s now", old->data.target_is_input ? "input" : "labels",
                      now->data.target_is_input ? "input" : "labels");
    if (old->data.normalize != now->data.normalize || old->data.normalize_count != now->data.normalize_count ||
        (old->data.normalize == NN_NORMALIZE_GIVEN &&
         (memcmp(old->data.mean, now->data.mean, (size_t)old->data.normalize_count * sizeof(double)) ||
          memcmp(old->data.std, now->data.std, (size_t)old->data.normalize_count * sizeof(double)))))
        return DIFFER("data.normalize differs from the checkpoint's");
    if (old->data.format == NN_FORMAT_CSV) {
        /* The columns and how the file is read: compared as rendered. */
        text_buffer a = {0}, c = {0};
        put_columns(&a, "features", &old->data.csv.features);
        put_columns(&a, "target", &old->data.csv.target);
        put_columns(&c, "features", &now->data.csv.features);
        put_columns(&c, "target", &now->data.csv.target);
        bool same = !a.failed && !c.failed && (a.data == NULL) == (c.data == NULL) &&
                    (!a.data || !strcmp(a.data, c.data)) && old->data.csv.delimiter == now->data.csv.delimiter &&
                    old->data.csv.skip_rows == now->data.csv.skip_rows && old->data.csv.header == now->data.csv.header;
        free(a.data);
        free(c.data);
        if (!same) return DIFFER("data.csv differs from the checkpoint's");
    }
    if (old->seed != now->seed)
        return DIFFER("seed: %llu in the checkpoint, %llu now", (unsigned long long)old->seed,
                      (unsigned long long)now->seed);
    if (old->train.batch_size != now->train.batch_size)
        return DIFFER("train.batch_size: %d in the checkpoint, %d now", old->train.batch_size,
                      now->train.batch_size);
    if (old->train.shuffle != now->train.shuffle)
        return DIFFER("train.shuffle: %s in the checkpoint, %s now", old->train.shuffle ? "true" : "false",
                      now->train.shuffle ? "true" : "false");
    return false;
}
