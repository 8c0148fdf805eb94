/* The effective config (render.c): rendered text parses back to the same
 * config and renders to the same text again, for every shipped config and
 * for awkward values; paths come out absolute and clean; nn_config_differ
 * names the first difference that matters to a resume and ignores what may
 * change (epochs, paths). */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "testutil.h"

static void parse_text(nn_config *cfg, const char *text) {
    nn_error err = {0};
    ck_assert_msg(nn_config_parse(cfg, text, strlen(text), "t.yaml", "/data/cfg", &err) == 0, "%s\n%s",
                  err.message, text);
}

static char *render(const nn_config *cfg) {
    nn_error err = {0};
    char *text = nn_config_render(cfg, true, &err);
    ck_assert_msg(text != NULL, "%s", err.message);
    return text;
}

/* render(parse(text)) is a fixed point after one step, and the parsed
 * structs agree on everything nn_config_differ compares. */
static void check_round_trip(const char *text) {
    nn_config first, second;
    parse_text(&first, text);
    char *once = render(&first);
    parse_text(&second, once);
    char *twice = render(&second);
    ck_assert_str_eq(once, twice);
    char difference[256];
    ck_assert_msg(!nn_config_differ(&first, &second, difference, sizeof difference), "%s", difference);
    ck_assert_int_eq(first.seed, second.seed);
    ck_assert_int_eq(first.train.epochs, second.train.epochs);
    ck_assert_int_eq(first.model.layer_count, second.model.layer_count);
    for (int i = 0; i < first.model.layer_count; i++)
        for (int a = 0; a < first.model.layers[i].kind->arg_count; a++) {
            const nn_arg_value *x = &first.model.layers[i].args[a], *y = &second.model.layers[i].args[a];
            ck_assert_int_eq(x->given, y->given);
            ck_assert_int_eq(x->is_list, y->is_list);
            ck_assert_int_eq(x->is_integer, y->is_integer);
            ck_assert_mem_eq(x->value, y->value, sizeof x->value);
        }
    free(once);
    free(twice);
    nn_config_free(&first);
    nn_config_free(&second);
}

START_TEST(shipped_configs_round_trip) {
    DIR *dir = opendir("configs");
    ck_assert_msg(dir != NULL, "run from the repository's root");
    int seen = 0;
    for (struct dirent *entry; (entry = readdir(dir));) {
        size_t length = strlen(entry->d_name);
        if (length < 6 || strcmp(entry->d_name + length - 5, ".yaml")) continue;
        char path[512];
        snprintf(path, sizeof path, "configs/%s", entry->d_name);
        FILE *file = fopen(path, "rb");
        ck_assert(file != NULL);
        static char text[1 << 16];
        size_t got = fread(text, 1, sizeof text - 1, file);
        fclose(file);
        text[got] = '\0';
        check_round_trip(text);
        seen++;
    }
    closedir(dir);
    ck_assert_int_ge(seen, 5);
}
END_TEST

START_TEST(awkward_values_round_trip) {
    check_round_trip("seed: 18446744073709551615\n"
                     "data: {train: {images: 'a b/x:y.idx', labels: \"q\\\"uote.idx\"}, val_split: 0.3333333333333333,\n"
                     "       normalize: {mean: 0.1307, std: 3.0e-07}}\n"
                     "model: {input_shape: [1, 28, 28], layers: [Flatten, {Conv2d: {out_channels: 3, kernel_size: [3, 5], "
                     "padding: 1}}, {Dropout: {p: 1}}, {LeakyReLU: {negative_slope: 0.1}}, {BatchNorm2d: {eps: 1.0e-03, "
                     "momentum: 0.0}}]}\n"
                     "optimizer: {name: sgd, lr: 1, momentum: 0.9, nesterov: true}\n"
                     "scheduler: {name: multistep, milestones: [3, 7, 11], gamma: 0.5}\n"
                     "train: {epochs: 7, batch_size: 3, shuffle: false, log: ../logs/x.csv,\n"
                     "        early_stop: {patience: 2, min_delta: 0.001}}\n"
                     "init: w.npz\n");
}
END_TEST

START_TEST(tabular_data_and_loss_arguments_round_trip) {
    check_round_trip("data: {format: csv, train: {file: t.csv.gz}, test_split: 0.2, val_split: 0.1, shuffle_split: true,\n"
                     "       csv: {delimiter: ';', skip_rows: 2, header: true, features: [\"sepal length\", \"2:-2\", 7],\n"
                     "             target: -1}, normalize: auto}\n"
                     "model: {layers: [{Linear: {out_features: 3}}]}\n"
                     "loss: {name: CrossEntropyLoss, weight: [1, 2.5, 0.125], ignore_index: 2, label_smoothing: 0.1}\n");
    check_round_trip("data: {format: csv, train: {features: x.csv, targets: y.csv}, csv: {delimiter: whitespace}}\n"
                     "model: {layers: [{Linear: {out_features: 2}}]}\n"
                     "loss: {name: bce_with_logits, pos_weight: [3, 0.5]}\n");
    check_round_trip("data: {format: npy, train: {features: x.npy, targets: y.npz}, test: {features: a.npy, targets: b.npy},\n"
                     "       normalize: {mean: [0.5, 0.25, 0], std: [1, 2, 4]}}\n"
                     "model: {layers: [{Linear: {out_features: 2}}]}\n"
                     "loss: {name: smooth_l1, beta: 0.5}\n");
    check_round_trip("data: {train: {images: x.idx}, target: input}\n"
                     "model: {layers: [Flatten, {Linear: {out_features: 4}}, Sigmoid]}\nloss: bce\n");
    check_round_trip("data: {train: {images: x.idx, labels: y.idx}}\n"
                     "model: {layers: [{Linear: {out_features: 4}}]}\nloss: {name: huber, delta: 2}\n");
}
END_TEST

START_TEST(paths_are_absolute_and_clean) {
    nn_config cfg;
    parse_text(&cfg, "data: {train: {images: ../img/./a.idx, labels: /abs/../b.idx}}\n"
                     "model: {layers: [Flatten]}\ncheckpoint: {path: runs/x.ckpt}\n");
    char *text = render(&cfg);
    ck_assert_msg(strstr(text, "images: \"/data/img/a.idx\""), "%s", text);
    ck_assert_msg(strstr(text, "labels: \"/b.idx\""), "%s", text);
    ck_assert_msg(strstr(text, "path: \"/data/cfg/runs/x.ckpt\""), "%s", text);
    nn_error err = {0};
    char *without = nn_config_render(&cfg, false, &err);
    ck_assert_msg(without && !strstr(without, "checkpoint:"), "%s", without ? without : err.message);
    free(without);
    free(text);
    nn_config_free(&cfg);
}
END_TEST

static const char base[] = "data: {val_split: 0.1}\n"
                           "model: {layers: [Flatten, {Linear: {out_features: 8}}, ReLU, {Linear: {out_features: 2}}]}\n"
                           "optimizer: {name: adam, lr: 0.001}\n"
                           "train: {epochs: 2, batch_size: 4}\n";

/* The first difference between base and base with from replaced by to. */
static const char *difference_after(const char *from, const char *to) {
    static char out[256];
    char changed[1024];
    const char *at = strstr(base, from);
    ck_assert_msg(at != NULL, "%s", from);
    snprintf(changed, sizeof changed, "%.*s%s%s", (int)(at - base), base, to, at + strlen(from));
    nn_config a, b;
    parse_text(&a, base);
    parse_text(&b, changed);
    bool differ = nn_config_differ(&a, &b, out, sizeof out);
    nn_config_free(&a);
    nn_config_free(&b);
    return differ ? out : NULL;
}

START_TEST(differ_names_the_first_difference) {
    ck_assert_str_eq(difference_after("out_features: 8", "out_features: 16"),
                     "model.layers[1] (Linear) out_features: 8 in the checkpoint, 16 now");
    ck_assert_str_eq(difference_after("ReLU,", "Tanh,"), "model.layers[2]: ReLU in the checkpoint, Tanh now");
    ck_assert_str_eq(difference_after(", ReLU", ""), "model.layers: 4 layers in the checkpoint, 3 now");
    ck_assert_str_eq(difference_after("name: adam", "name: sgd"), "optimizer: adam in the checkpoint, sgd now");
    ck_assert_str_eq(difference_after("lr: 0.001", "lr: 0.01"), "optimizer.lr: 0.001 in the checkpoint, 0.01 now");
    ck_assert_str_eq(difference_after("val_split: 0.1", "val_split: 0.2"),
                     "data.val_split: 0.1 in the checkpoint, 0.2 now");
    ck_assert_str_eq(difference_after("batch_size: 4", "batch_size: 8"),
                     "train.batch_size: 4 in the checkpoint, 8 now");
    ck_assert_str_eq(difference_after("{out_features: 2}", "{in_features: 8, out_features: 2}"),
                     "model.layers[3] (Linear) in_features: (inferred) in the checkpoint, 8 now");
    ck_assert_str_eq(difference_after("val_split: 0.1", "val_split: 0.1, normalize: auto"),
                     "data.normalize differs from the checkpoint's");
    ck_assert_str_eq(difference_after("val_split: 0.1", "val_split: 0.1, target: input"),
                     "data.target: labels in the checkpoint, input now");
    ck_assert_str_eq(difference_after("val_split: 0.1", "val_split: 0.1, test_split: 0.5"),
                     "data.test_split: 0.0 in the checkpoint, 0.5 now");
    ck_assert_str_eq(difference_after("val_split: 0.1", "val_split: 0.1, shuffle_split: true"),
                     "data.shuffle_split: false in the checkpoint, true now");
    ck_assert_str_eq(difference_after("train: {", "loss: {name: cross_entropy, label_smoothing: 0.2}\ntrain: {"),
                     "loss.label_smoothing: 0.0 in the checkpoint, 0.2 now");
    ck_assert_str_eq(difference_after("train: {", "loss: {name: cross_entropy, weight: [1, 2]}\ntrain: {"),
                     "loss.weight differs from the checkpoint's");
    ck_assert_str_eq(difference_after("train: {", "loss: mse\ntrain: {"), "loss: cross_entropy in the checkpoint, mse now");
    /* What a resume may change. */
    ck_assert_ptr_null(difference_after("epochs: 2", "epochs: 9"));
    ck_assert_ptr_null(difference_after("lr: 0.001", "lr: 1.0e-3"));
}
END_TEST

int main(void) {
    Suite *suite = suite_create("render");
    TCase *tc = tcase_create("render");
    tcase_add_test(tc, shipped_configs_round_trip);
    tcase_add_test(tc, awkward_values_round_trip);
    tcase_add_test(tc, tabular_data_and_loss_arguments_round_trip);
    tcase_add_test(tc, paths_are_absolute_and_clean);
    tcase_add_test(tc, differ_names_the_first_difference);
    suite_add_tcase(suite, tc);
    return testutil_run(suite);
}
