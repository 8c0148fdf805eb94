/* nnseq diff A.ckpt B.ckpt: what differs between two runs, from what their
 * checkpoints store (docs/checkpoint.md): the effective config key by key,
 * the data's fingerprints, seed, threads, ranks, nnseq version, weights,
 * and each epoch's metrics side by side. Exit 0 when they are the same
 * run, 1 when they differ, 2 for a file that is not a checkpoint. */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config/yaml_tree.h"
#include "io/checkpoint.h"
#include "io/container.h"
#include "cli.h"

static const char diff_help[] =
    "usage: nnseq diff A.ckpt B.ckpt\n"
    "\n"
    "Shows what differs between the runs that wrote two checkpoints: the\n"
    "effective config key by key (defaults filled in; where the checkpoint\n"
    "was written is not part of it) as 'key: A -> B', the training and test\n"
    "data (samples, values per sample and CRC-32s of inputs and targets,\n"
    "stored at training), seed, threads and MPI ranks, nnseq version, whether\n"
    "the weights are the same bits, then each epoch's learning rate and\n"
    "metrics of A and B side by side (a '*' marks an epoch that differs; the\n"
    "wall time is not stored, so it is not compared).\n"
    "Exits 0 when they are the same run, 1 when something differs, 2 when a\n"
    "file is not a checkpoint.\n";

/* One leaf of a config: "optimizer.lr" and "0.01". */
typedef struct config_entry {
    char *key, *value;
} config_entry;

typedef struct config_entries {
    config_entry *items;
    int count, capacity;
} config_entries;

static void entries_free(config_entries *e) {
    for (int i = 0; i < e->count; i++) {
        free(e->items[i].key);
        free(e->items[i].value);
    }
    free(e->items);
}

static int entries_add(config_entries *e, const char *key, const char *value) {
    if (e->count == e->capacity) {
        int capacity = e->capacity ? 2 * e->capacity : 64;
        config_entry *grown = realloc(e->items, (size_t)capacity * sizeof *grown);
        if (!grown) return -1;
        e->items = grown;
        e->capacity = capacity;
    }
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return -1;
    }
    e->items[e->count++] = (config_entry){k, v};
    return 0;
}

/* A scalar as the config shows it: quoted unless plain. */
static void scalar_text(const nn_yaml_node *n, char *buffer, size_t size) {
    snprintf(buffer, size, n->plain ? "%s" : "\"%s\"", n->text ? n->text : "");
}

/* Whether a list holds scalars only: it is one value ("[0.9, 0.999]"). */
static bool scalar_list(const nn_yaml_tree *tree, const nn_yaml_node *list) {
    for (const nn_yaml_node *c = nn_yaml_first_child(tree, list); c; c = nn_yaml_next_sibling(tree, c))
        if (c->type != NN_YAML_SCALAR) return false;
    return true;
}

/* Every leaf under node, its key the path from the top ("model.layers[1].Linear.out_features"). */
static int flatten(const nn_yaml_tree *tree, const nn_yaml_node *node, const char *prefix, config_entries *out) {
    char key[1024], value[4096];
    if (node->type == NN_YAML_SCALAR) {
        scalar_text(node, value, sizeof value);
        return entries_add(out, prefix, value);
    }
    if (node->type == NN_YAML_SEQUENCE && scalar_list(tree, node)) {
        size_t used = (size_t)snprintf(value, sizeof value, "[");
        for (const nn_yaml_node *c = nn_yaml_first_child(tree, node); c && used < sizeof value;
             c = nn_yaml_next_sibling(tree, c)) {
            char item[1024];
            scalar_text(c, item, sizeof item);
            used += (size_t)snprintf(value + used, sizeof value - used, "%s%s", used > 1 ? ", " : "", item);
        }
        if (used < sizeof value) snprintf(value + used, sizeof value - used, "]");
        return entries_add(out, prefix, value);
    }
    if (node->type == NN_YAML_SEQUENCE) {
        int index = 0;
        for (const nn_yaml_node *c = nn_yaml_first_child(tree, node); c; c = nn_yaml_next_sibling(tree, c), index++) {
            snprintf(key, sizeof key, "%s[%d]", prefix, index);
            if (flatten(tree, c, key, out) != 0) return -1;
        }
        return index == 0 ? entries_add(out, prefix, "[]") : 0;
    }
    int children = 0;
    for (const nn_yaml_node *k = nn_yaml_first_child(tree, node); k; k = nn_yaml_next_key(tree, k), children++) {
        const nn_yaml_node *v = nn_yaml_next_sibling(tree, k);
        snprintf(key, sizeof key, "%s%s%s", prefix, prefix[0] ? "." : "", k->text ? k->text : "");
        if (v && flatten(tree, v, key, out) != 0) return -1;
    }
    return children == 0 && prefix[0] ? entries_add(out, prefix, "{}") : 0;
}

/* The stored effective config of a checkpoint as its leaves. */
static int config_leaves(const nn_checkpoint *ck, const char *path, config_entries *out, nn_error *err) {
    const nn_array *yaml = nn_container_find(ck->arrays, ck->array_count, "config.yaml");
    if (!yaml || yaml->dtype != NN_U8) return nn_error_set(err, NN_ERR_INPUT, "%s: checkpoint has no 'config.yaml'", path);
    nn_yaml_tree tree = {.path = path, .err = err};
    const nn_yaml_node *root;
    if (nn_yaml_read(&tree, yaml->data, nn_array_count(yaml), &root) != 0) return -1;
    int status = flatten(&tree, root, "", out);
    nn_yaml_free(&tree);
    return status != 0 ? nn_error_oom(err, "the config's keys") : 0;
}

static int by_key(const void *a, const void *b) {
    return strcmp((*(config_entry *const *)a)->key, (*(config_entry *const *)b)->key);
}

static const config_entry *find_entry(config_entry **sorted, int count, const char *key) {
    config_entry probe = {(char *)key, NULL}, *p = &probe;
    config_entry **hit = count ? bsearch(&p, sorted, (size_t)count, sizeof *sorted, by_key) : NULL;
    return hit ? *hit : NULL;
}

static config_entry **sorted_entries(const config_entries *e) {
    config_entry **sorted = malloc((size_t)(e->count ? e->count : 1) * sizeof *sorted);
    if (!sorted) return NULL;
    for (int i = 0; i < e->count; i++) sorted[i] = &e->items[i];
    qsort(sorted, (size_t)e->count, sizeof *sorted, by_key);
    return sorted;
}

/* Prints "  key: A -> B" for each key that differs, in A's order then B's
 * own keys; returns how many, or -1 out of memory. */
static int diff_configs(const config_entries *a, const config_entries *b) {
    config_entry **sorted_a = sorted_entries(a), **sorted_b = sorted_entries(b);
    int differences = -1;
    if (sorted_a && sorted_b) {
        differences = 0;
        for (int i = 0; i < a->count; i++) {
            const config_entry *other = find_entry(sorted_b, b->count, a->items[i].key);
            if (other && strcmp(other->value, a->items[i].value) == 0) continue;
            printf("  %s: %s -> %s\n", a->items[i].key, a->items[i].value, other ? other->value : "(absent)");
            differences++;
        }
        for (int i = 0; i < b->count; i++)
            if (!find_entry(sorted_a, a->count, b->items[i].key)) {
                printf("  %s: (absent) -> %s\n", b->items[i].key, b->items[i].value);
                differences++;
            }
    }
    free(sorted_a);
    free(sorted_b);
    return differences;
}

/* A stored int64 scalar, or false when the checkpoint predates it. */
static bool stored_int(const nn_checkpoint *ck, const char *name, int64_t *value) {
    const nn_array *a = nn_container_find(ck->arrays, ck->array_count, name);
    if (!a || a->dtype != NN_I64 || nn_array_count(a) != 1) return false;
    *value = *(const int64_t *)a->data;
    return true;
}

/* A fingerprint or a version as text ("(not recorded)" when absent). */
static void fingerprint_text(const nn_checkpoint *ck, const char *name, char *buffer, size_t size) {
    const nn_array *a = nn_container_find(ck->arrays, ck->array_count, name);
    if (!a || a->dtype != NN_I64 || nn_array_count(a) != 4) {
        snprintf(buffer, size, "(not recorded)");
        return;
    }
    const int64_t *v = a->data;
    snprintf(buffer, size, "%" PRId64 " samples of %" PRId64 " values, CRC-32 inputs %08" PRIx64 " targets %08" PRIx64,
             v[0], v[1], v[2], v[3]);
}

static void version_text(const nn_checkpoint *ck, char *buffer, size_t size) {
    const nn_array *a = nn_container_find(ck->arrays, ck->array_count, "train.version");
    if (!a || a->dtype != NN_U8) snprintf(buffer, size, "(not recorded)");
    else snprintf(buffer, size, "%.*s", (int)(nn_array_count(a) < 64 ? nn_array_count(a) : 64), (const char *)a->data);
}

/* "name: A" when the same, "name: A -> B" otherwise; returns whether they differ. */
static bool show_pair(const char *name, const char *a, const char *b) {
    bool differ = strcmp(a, b) != 0;
    if (differ) printf("%s: %s -> %s\n", name, a, b);
    else printf("%s: %s (the same)\n", name, a);
    return differ;
}

static void int_text(const nn_checkpoint *ck, const char *name, char *buffer, size_t size) {
    int64_t value;
    if (stored_int(ck, name, &value)) snprintf(buffer, size, "%" PRId64, value);
    else snprintf(buffer, size, "(not recorded)");
}

/* Whether the model's arrays are the same names, shapes and bits. */
static bool same_weights(const nn_checkpoint *a, const nn_checkpoint *b) {
    size_t seen = 0;
    for (size_t i = 0; i < a->array_count; i++) {
        const nn_array *x = &a->arrays[i];
        if (strncmp(x->name, "model.", 6) != 0) continue;
        seen++;
        const nn_array *y = nn_container_find(b->arrays, b->array_count, x->name);
        if (!y || y->dtype != x->dtype || y->rank != x->rank || memcmp(y->dims, x->dims, sizeof x->dims) != 0 ||
            memcmp(x->data, y->data, nn_array_bytes(x)) != 0)
            return false;
    }
    for (size_t i = 0; i < b->array_count; i++)
        if (strncmp(b->arrays[i].name, "model.", 6) == 0) seen--;
    return seen == 0;
}

static bool same_bits(double x, double y) { return memcmp(&x, &y, sizeof x) == 0; }

static bool same_record(const nn_epoch_record *x, const nn_epoch_record *y, const char *const *names, int count) {
    if (!same_bits(x->lr, y->lr) || x->has_val != y->has_val || x->train.count != y->train.count) return false;
    for (int i = 0; i < count; i++)
        if (!same_bits(nn_metrics_value(&x->train, names[i]), nn_metrics_value(&y->train, names[i])) ||
            (x->has_val && !same_bits(nn_metrics_value(&x->val, names[i]), nn_metrics_value(&y->val, names[i]))))
            return false;
    return true;
}

static void print_value(const nn_epoch_record *r, const nn_metrics *m, const char *name) {
    if (!r || !m) printf("  %18s", "-");
    else printf("  %18.8g", nn_metrics_value(m, name));
}

/* The epochs of both histories side by side; returns how many differ. */
static int diff_metrics(const nn_checkpoint *a, const nn_checkpoint *b) {
    if (a->history_count == 0 && b->history_count == 0) {
        printf("metrics: not recorded in either (checkpoints older than the history)\n");
        return a->epoch != b->epoch;
    }
    const char *const *names;
    nn_task task = a->history_count ? a->history[0].train.task : b->history[0].train.task;
    int count = nn_metrics_names(task, &names);
    bool has_val = (a->history_count && a->history[0].has_val) || (b->history_count && b->history[0].has_val);
    printf("metrics (A, B):\n  %5s  %12s  %12s", "epoch", "A lr", "B lr");
    for (int side = 0; side < (has_val ? 2 : 1); side++)
        for (int k = 0; k < count; k++)
            for (int run = 0; run < 2; run++) {
                char label[64];
                snprintf(label, sizeof label, "%c %s_%s", "AB"[run], side ? "val" : "train", names[k]);
                printf("  %18s", label);
            }
    putchar('\n');
    int differing = 0, i = 0, j = 0;
    while (i < a->history_count || j < b->history_count) {
        const nn_epoch_record *x = i < a->history_count ? &a->history[i] : NULL;
        const nn_epoch_record *y = j < b->history_count ? &b->history[j] : NULL;
        if (x && y && x->epoch != y->epoch) {
            if (x->epoch < y->epoch) y = NULL;
            else x = NULL;
        }
        int epoch = x ? x->epoch : y->epoch;
        bool same = x && y && same_record(x, y, names, count);
        differing += !same;
        printf("%c %5d", same ? ' ' : '*', epoch);
        if (x) printf("  %12.6g", x->lr); else printf("  %12s", "-");
        if (y) printf("  %12.6g", y->lr); else printf("  %12s", "-");
        for (int k = 0; k < count; k++) {
            print_value(x, x ? &x->train : NULL, names[k]);
            print_value(y, y ? &y->train : NULL, names[k]);
        }
        for (int k = 0; has_val && k < count; k++) {
            print_value(x, x && x->has_val ? &x->val : NULL, names[k]);
            print_value(y, y && y->has_val ? &y->val : NULL, names[k]);
        }
        putchar('\n');
        if (x) i++;
        if (y) j++;
    }
    return differing;
}

int command_diff(int argc, char **argv) {
    bool help = false;
    const char *positionals[2];
    int count;
    if (cli_parse("diff", argc, argv, 2, NULL, 0, positionals, 2, &count, &help)) return EXIT_USAGE;
    if (help) {
        fputs(diff_help, stdout);
        return EXIT_DONE;
    }
    if (count != 2) {
        fprintf(stderr, "nnseq diff: expected two checkpoints, A and B\n%s", diff_help);
        return EXIT_USAGE;
    }
    nn_checkpoint runs[2];
    config_entries configs[2] = {{0}};
    nn_error err = {0};
    int loaded = 0, status = EXIT_USAGE;
    /* Weights that diverged are still a run to compare. */
    for (; loaded < 2; loaded++)
        if (nn_checkpoint_load(&runs[loaded], positionals[loaded], true, &err) != 0) break;
    bool leaves = loaded == 2;
    for (int r = 0; leaves && r < 2; r++)
        if (config_leaves(&runs[r], positionals[r], &configs[r], &err) != 0) leaves = false;
    if (!leaves) {
        cli_fail(&err);
        goto done;
    }
    const nn_checkpoint *a = &runs[0], *b = &runs[1];
    printf("A: %s (%d epochs)\nB: %s (%d epochs)\n", positionals[0], a->epoch, positionals[1], b->epoch);
    printf("config:\n");
    int config_differences = diff_configs(&configs[0], &configs[1]);
    if (config_differences < 0) {
        cli_fail((nn_error_oom(&err, "the config's keys"), &err));
        status = EXIT_FAILED;
        goto done;
    }
    if (config_differences == 0) printf("  (the same)\n");
    int differences = config_differences;
    char x[256], y[256];
    const char *names[][2] = {{"data.train", "data.train_fingerprint"}, {"data.test", "data.test_fingerprint"}};
    for (int i = 0; i < 2; i++) {
        fingerprint_text(a, names[i][1], x, sizeof x);
        fingerprint_text(b, names[i][1], y, sizeof y);
        differences += show_pair(names[i][0], x, y);
    }
    snprintf(x, sizeof x, "%" PRIu64, a->config.seed);
    snprintf(y, sizeof y, "%" PRIu64, b->config.seed);
    differences += show_pair("seed", x, y);
    const char *ints[][2] = {{"threads", "train.threads"}, {"ranks", "train.ranks"}};
    for (int i = 0; i < 2; i++) {
        int_text(a, ints[i][1], x, sizeof x);
        int_text(b, ints[i][1], y, sizeof y);
        differences += show_pair(ints[i][0], x, y);
    }
    version_text(a, x, sizeof x);
    version_text(b, y, sizeof y);
    differences += show_pair("version", x, y);
    snprintf(x, sizeof x, "%d", a->epoch);
    snprintf(y, sizeof y, "%d", b->epoch);
    differences += show_pair("epochs trained", x, y);
    bool weights = same_weights(a, b);
    printf("weights: %s\n", weights ? "the same bits" : "differ");
    differences += !weights;
    int epochs_differing = diff_metrics(a, b);
    differences += epochs_differing;
    if (differences == 0) {
        printf("the same run\n");
        status = EXIT_DONE;
    } else {
        printf("different runs: %d config key%s, %d epoch%s of metrics differ\n", config_differences,
               config_differences == 1 ? "" : "s", epochs_differing, epochs_differing == 1 ? "" : "s");
        status = EXIT_FAILED;
    }
done:
    for (int r = 0; r < 2; r++) entries_free(&configs[r]);
    for (int r = 0; r < loaded; r++) nn_checkpoint_free(&runs[r]);
    return status;
}
