/* The Sequential model, the trainer and the checkpoint working together on
 * small generated data: learning happens, runs are reproducible, a resumed
 * run equals a straight one bit for bit, checkpoints round-trip. */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/checkpoint.h"
#include "config/config.h"
#include "data/idx.h"
#include "layers/layers.h"
#include "core/model.h"
#include "train/train.h"
#include "synthetic.h"
#include "testutil.h"

static char dir[256];

static void write_dataset(const char *prefix, int count, uint64_t seed) {
    nn_error err = {0};
    ck_assert_msg(synthetic_write(dir, prefix, count, seed, &err) == 0, "%s", err.message);
}

static const char *base_config =
    "seed: 7\n"
    "data:\n"
    "  train: {images: train-images.idx, labels: train-labels.idx.gz}\n"
    "  test: {images: test-images.idx, labels: test-labels.idx.gz}\n"
    "  val_split: 0.25\n"
    "  normalize: {mean: 0.3, std: 0.3}\n"
    "model:\n"
    "  layers:\n"
    "    - Flatten\n"
    "    - Linear: {out_features: 16}\n"
    "    - ReLU\n"
    "    - Dropout: {p: 0.25}\n"
    "    - Linear: {out_features: 4}\n"
    "optimizer: {name: %s, lr: %s}\n"
    "train: {epochs: %d, batch_size: 10}\n";

static void make_config(nn_config *cfg, const char *optimizer, const char *lr, int epochs) {
    char text[2048], path[512];
    snprintf(text, sizeof text, base_config, optimizer, lr, epochs);
    snprintf(path, sizeof path, "%s/test.yaml", dir);
    nn_error err = {0};
    int status = nn_config_parse(cfg, text, strlen(text), path, dir, &err);
    ck_assert_msg(status == 0, "%s", err.message);
}

static nn_trainer *trainer_threads(nn_config *cfg, int threads) {
    nn_error err = {0};
    nn_trainer *t = nn_trainer_create(cfg, threads, &err);
    ck_assert_msg(t != NULL, "%s", err.message);
    return t;
}

static nn_trainer *trainer_for(nn_config *cfg) {
    nn_error err = {0};
    nn_trainer *t = nn_trainer_create(cfg, 1, &err);
    ck_assert_msg(t != NULL, "%s", err.message);
    return t;
}

static void run_epochs(nn_trainer *t, nn_epoch_report *last) {
    nn_error err = {0};
    while (t->epoch < t->config->train.epochs) ck_assert_msg(nn_trainer_epoch(t, last, NULL, NULL, NULL, &err) == 0, "%s", err.message);
}

static void setup(void) {
    ck_assert_ptr_nonnull(testutil_tmpdir(dir, sizeof dir));
    write_dataset("train", 240, 1);
    write_dataset("test", 80, 2);
}

static void teardown(void) {
    char command[600];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(command), 0);
}

START_TEST(training_learns_the_task) {
    nn_config cfg;
    make_config(&cfg, "adam", "0.01", 8);
    nn_trainer *t = trainer_for(&cfg);
    nn_epoch_report first, last;
    nn_error err = {0};
    ck_assert_int_eq(nn_trainer_epoch(t, &first, NULL, NULL, NULL, &err), 0);
    run_epochs(t, &last);
    ck_assert_int_eq(last.epoch, 8);
    ck_assert(last.train.loss < first.train.loss);
    ck_assert(last.has_val && last.val.count == 60);
    ck_assert_msg(last.val.accuracy > 0.9, "val accuracy %g", last.val.accuracy);
    nn_trainer_free(t);
    nn_config_free(&cfg);
}
END_TEST

static void assert_same_state(const nn_trainer *a, const nn_trainer *b) {
    ck_assert_int_eq(a->model->param_count, b->model->param_count);
    ck_assert_msg(memcmp(a->model->params, b->model->params, a->model->param_count * sizeof(float)) == 0,
                  "weights differ");
    for (int i = 0; i < NN_OPTIMIZER_MAX_BUFFERS; i++)
        if (a->optimizer.buffers[i])
            ck_assert(memcmp(a->optimizer.buffers[i], b->optimizer.buffers[i], a->optimizer.param_count * sizeof(float)) == 0);
    ck_assert_int_eq(a->optimizer.steps, b->optimizer.steps);
}

START_TEST(same_seed_same_numbers) {
    nn_config cfg;
    make_config(&cfg, "sgd", "0.05", 2);
    nn_trainer *a = trainer_for(&cfg), *b = trainer_for(&cfg);
    nn_epoch_report ra, rb;
    run_epochs(a, &ra);
    run_epochs(b, &rb);
    assert_same_state(a, b);
    ck_assert(ra.train.loss == rb.train.loss && ra.val.loss == rb.val.loss);
    nn_trainer_free(a);
    nn_trainer_free(b);
    nn_trainer *c = trainer_for(&cfg);
    nn_config other_seed;
    make_config(&other_seed, "sgd", "0.05", 2);
    other_seed.seed = 8;
    nn_trainer *d = trainer_for(&other_seed);
    ck_assert_msg(memcmp(c->model->params, d->model->params, d->model->param_count * sizeof(float)) != 0,
                  "a different seed gave the same initial weights");
    nn_trainer_free(c);
    nn_trainer_free(d);
    nn_config_free(&cfg);
    nn_config_free(&other_seed);
}
END_TEST

/* A stop function that says stop after its count of steps. */
static bool stop_after(void *user) {
    int *steps_left = user;
    return --*steps_left <= 0;
}

/* Stopped in the middle of an epoch (a signal), saved, resumed in another
 * trainer and finished: the same weights, optimiser state and epoch
 * metrics (the interrupted epoch's train metrics included) as a run that
 * was never stopped, with the train metrics of a binary-free task. */
START_TEST(a_run_stopped_mid_epoch_resumes_exactly) {
    char path[512];
    snprintf(path, sizeof path, "%s/mid.ckpt", dir);
    nn_error err = {0};
    nn_config cfg;
    make_config(&cfg, "adam", "0.01", 3);
    nn_trainer *straight = trainer_threads(&cfg, 2), *stopped = trainer_threads(&cfg, 2);
    nn_epoch_report straight_reports[3], report;
    for (int e = 0; e < 3; e++)
        ck_assert_msg(nn_trainer_epoch(straight, &straight_reports[e], NULL, NULL, NULL, &err) == 0, "%s", err.message);
    /* 180 training samples in batches of 10: stop after 7 steps of epoch 2. */
    ck_assert_int_eq(nn_trainer_epoch(stopped, &report, NULL, NULL, NULL, &err), 0);
    int steps_left = 7;
    ck_assert_msg(nn_trainer_epoch(stopped, &report, NULL, stop_after, &steps_left, &err) == 0, "%s", err.message);
    ck_assert(report.interrupted);
    ck_assert_int_eq(report.epoch, 2);
    ck_assert_int_eq(report.position, 70);
    ck_assert_int_eq(stopped->epoch, 1);
    ck_assert_msg(nn_checkpoint_save(path, stopped, &err) == 0, "%s", err.message);
    nn_trainer *resumed = trainer_threads(&cfg, 2);
    ck_assert_msg(nn_trainer_resume(resumed, path, NULL, &err) == 0, "%s", err.message);
    ck_assert_int_eq(resumed->epoch, 1);
    ck_assert_int_eq(resumed->epoch_position, 70);
    for (int e = 1; e < 3; e++) {
        ck_assert_msg(nn_trainer_epoch(resumed, &report, NULL, NULL, NULL, &err) == 0, "%s", err.message);
        ck_assert(!report.interrupted);
        ck_assert_int_eq(report.epoch, e + 1);
        ck_assert_msg(report.train.loss == straight_reports[e].train.loss &&
                          report.train.accuracy == straight_reports[e].train.accuracy &&
                          report.val.loss == straight_reports[e].val.loss,
                      "epoch %d: train loss %.17g / %.17g, accuracy %.17g / %.17g", e + 1, report.train.loss,
                      straight_reports[e].train.loss, report.train.accuracy, straight_reports[e].train.accuracy);
    }
    assert_same_state(straight, resumed);
    nn_trainer_free(straight);
    nn_trainer_free(stopped);
    nn_trainer_free(resumed);
    nn_config_free(&cfg);
}
END_TEST

/* --epochs 2, then --epochs 4 --resume, equals --epochs 4 straight. */
static void check_resume(const char *optimizer, const char *lr) {
    char path[512];
    snprintf(path, sizeof path, "%s/half.ckpt", dir);
    nn_error err = {0};
    nn_config four, two;
    make_config(&four, optimizer, lr, 4);
    make_config(&two, optimizer, lr, 2);
    nn_trainer *straight = trainer_for(&four), *first_half = trainer_for(&two);
    nn_epoch_report straight_last, resumed_last, half;
    run_epochs(straight, &straight_last);
    run_epochs(first_half, &half);
    ck_assert_msg(nn_checkpoint_save(path, first_half, &err) == 0, "%s", err.message);
    nn_trainer *resumed = trainer_for(&four);
    ck_assert_msg(nn_trainer_resume(resumed, path, NULL, &err) == 0, "%s", err.message);
    ck_assert_int_eq(resumed->epoch, 2);
    run_epochs(resumed, &resumed_last);
    assert_same_state(straight, resumed);
    ck_assert(straight_last.train.loss == resumed_last.train.loss);
    ck_assert(straight_last.val.loss == resumed_last.val.loss);
    nn_trainer_free(straight);
    nn_trainer_free(first_half);
    nn_trainer_free(resumed);
    nn_config_free(&four);
    nn_config_free(&two);
}

/* The weights after two epochs on threads replicas, with the base config
 * or with a BatchNorm1d after the first Linear (whose statistics are the
 * whole batch's across the replicas). */
static float *weights_after(int threads, bool batch_norm, size_t *count) {
    nn_config cfg;
    make_config(&cfg, "adam", "0.01", 2);
    if (batch_norm) {
        char text[2048], path[512];
        snprintf(text, sizeof text, "%s", cfg.text);
        /* The Linear before the BatchNorm has no bias: BatchNorm takes the
         * mean out, so that bias's gradient is rounding noise, which Adam
         * scales up to full steps: it would drift differently with every
         * split and mean nothing. */
        char *at = strstr(text, "    - Linear: {out_features: 16}\n    - ReLU\n");
        ck_assert_ptr_nonnull(at);
        char rest[2048];
        snprintf(rest, sizeof rest, "%s", at + strlen("    - Linear: {out_features: 16}\n"));
        snprintf(at, sizeof text - (size_t)(at - text), "    - Linear: {out_features: 16, bias: false}\n"
                 "    - BatchNorm1d\n%s", rest);
        snprintf(path, sizeof path, "%s/test.yaml", dir);
        nn_config_free(&cfg);
        nn_error err = {0};
        ck_assert_msg(nn_config_parse(&cfg, text, strlen(text), path, dir, &err) == 0, "%s", err.message);
    }
    nn_trainer *t = trainer_threads(&cfg, threads);
    nn_epoch_report report;
    run_epochs(t, &report);
    *count = t->model->param_count;
    float *weights = malloc(*count * sizeof *weights);
    memcpy(weights, t->model->params, *count * sizeof *weights);
    nn_trainer_free(t);
    nn_config_free(&cfg);
    return weights;
}

/* Same --threads, same bits; other thread counts split the sums
 * differently, so they agree to float tolerance, Dropout and BatchNorm
 * included (per-sample masks, whole-batch statistics). */
START_TEST(thread_counts_agree) {
    for (int bn = 0; bn < 2; bn++) {
        size_t count, other;
        float *one = weights_after(1, bn, &count);
        float *two = weights_after(2, bn, &other);
        float *again = weights_after(2, bn, &other);
        float *three = weights_after(3, bn, &other);
        ck_assert_msg(memcmp(two, again, count * sizeof *two) == 0, "two threads twice differ (batch norm %d)", bn);
        double worst = 0;
        for (size_t i = 0; i < count; i++) {
            double scale = 1e-3 + fabs(one[i]);
            worst = fmax(worst, fabs(two[i] - one[i]) / scale);
            worst = fmax(worst, fabs(three[i] - one[i]) / scale);
        }
        ck_assert_msg(worst < 1e-3, "1 vs 2/3 threads: worst relative difference %g (batch norm %d)", worst, bn);
        free(one);
        free(two);
        free(again);
        free(three);
    }
}
END_TEST

START_TEST(resume_equals_straight_run_adam) { check_resume("adam", "0.01"); }
END_TEST

START_TEST(resume_equals_straight_run_sgd) { check_resume("sgd", "0.05"); }
END_TEST

START_TEST(resume_refuses_other_optimizer) {
    char path[512];
    snprintf(path, sizeof path, "%s/sgd.ckpt", dir);
    nn_error err = {0};
    nn_config sgd, adam;
    make_config(&sgd, "sgd", "0.05", 1);
    make_config(&adam, "adam", "0.01", 2);
    nn_trainer *a = trainer_for(&sgd);
    nn_epoch_report report;
    run_epochs(a, &report);
    ck_assert_int_eq(nn_checkpoint_save(path, a, &err), 0);
    nn_trainer *b = trainer_for(&adam);
    ck_assert_int_eq(nn_trainer_resume(b, path, NULL, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    ck_assert_msg(strstr(err.message, "adam"), "%s", err.message);
    nn_trainer_free(a);
    nn_trainer_free(b);
    nn_config_free(&sgd);
    nn_config_free(&adam);
}
END_TEST

START_TEST(checkpoint_round_trip_reproduces_evaluation) {
    char path[512];
    snprintf(path, sizeof path, "%s/model.ckpt", dir);
    nn_error err = {0};
    nn_config cfg;
    make_config(&cfg, "adam", "0.01", 3);
    nn_trainer *t = trainer_for(&cfg);
    nn_epoch_report report;
    run_epochs(t, &report);
    ck_assert_int_eq(nn_checkpoint_save(path, t, &err), 0);
    nn_dataset test;
    ck_assert_msg(nn_load_split(&cfg, NULL, t->model, false, "test", &test, &err) == 0, "%s", err.message);
    nn_metrics before, after;
    ck_assert_int_eq(nn_evaluate(t->model, 1, cfg.train.batch_size, &cfg.loss, t->task, &t->transform, &test, 0,
                                 test.count, &before, NULL, &err), 0);
    nn_checkpoint ck;
    ck_assert_msg(nn_checkpoint_load(&ck, path, false, &err) == 0, "%s", err.message);
    ck_assert_int_eq(ck.epoch, 3);
    ck_assert(memcmp(ck.model->params, t->model->params, t->model->param_count * sizeof(float)) == 0);
    /* Evaluated in the same batch size, a loaded model gives the same numbers. */
    ck_assert_int_eq(nn_model_reserve(ck.model, cfg.train.batch_size, &err), 0);
    int64_t confusion[16];
    ck_assert_int_eq(nn_evaluate(ck.model, 1, cfg.train.batch_size, &ck.config.loss, t->task, &ck.transform, &test,
                                 0, test.count, &after, confusion, &err), 0);
    ck_assert(before.loss == after.loss && before.accuracy == after.accuracy);
    int64_t diagonal = 0, total = 0;
    for (int i = 0; i < 16; i++) total += confusion[i];
    for (int i = 0; i < 4; i++) diagonal += confusion[i * 5];
    ck_assert_int_eq(total, test.count);
    ck_assert_int_eq(diagonal, (int64_t)lround(after.accuracy * test.count));
    nn_checkpoint_free(&ck);
    nn_dataset_free(&test);
    nn_trainer_free(t);
    nn_config_free(&cfg);
}
END_TEST

/* The whole Sequential's backward (buffer ping-pong, skipped first input
 * gradient) against finite differences of the cross-entropy loss. */
START_TEST(model_gradients_match_finite_differences) {
    nn_config cfg;
    make_config(&cfg, "sgd", "0.1", 1);
    nn_error err = {0};
    /* Without the Dropout: a deterministic function of the weights. */
    nn_layer_spec layers[4] = {cfg.model.layers[0], cfg.model.layers[1], cfg.model.layers[2], cfg.model.layers[4]};
    layers[2].kind = &nn_tanh_kind;
    nn_model *model = nn_model_create(layers, 4, (nn_shape){3, {1, 6, 6}}, 3, NULL, &err);
    ck_assert_msg(model != NULL, "%s", err.message);
    ck_assert_int_eq(nn_model_reserve(model, 5, &err), 0);
    int32_t labels[5] = {0, 1, 2, 3, 1};
    nn_targets targets = {labels, NULL};
    double numerator[5], denominator[5];
    nn_rng rng;
    nn_rng_seed(&rng, 5);
    float input[5 * 36];
    for (int i = 0; i < 5 * 36; i++) input[i] = nn_rng_uniform_range(&rng, -1, 1);
    memcpy(nn_model_input(model), input, sizeof input);
    const float *out = nn_model_forward(model, 5, false);
    nn_loss_batch(&cfg.loss, out, &targets, 5, 4, nn_model_output_grad(model), numerator, denominator);
    nn_model_backward(model, 5);
    float *analytic = malloc(model->param_count * sizeof *analytic);
    memcpy(analytic, model->grads, model->param_count * sizeof *analytic);
    double worst = 0;
    for (size_t i = 0; i < model->param_count; i += 7) {
        float saved = model->params[i];
        double loss[2];
        for (int side = 0; side < 2; side++) {
            model->params[i] = saved + (side ? -1e-3f : 1e-3f);
            memcpy(nn_model_input(model), input, sizeof input);
            loss[side] = nn_loss_batch(&cfg.loss, nn_model_forward(model, 5, false), &targets, 5, 4, NULL, numerator,
                                       denominator);
        }
        model->params[i] = saved;
        double numeric = (loss[0] - loss[1]) / 2e-3, excess = fabs(numeric - analytic[i]) - (1e-3 + 2e-2 * fabs(numeric));
        if (excess > worst) worst = excess;
    }
    ck_assert_msg(worst <= 0, "gradient off by %g", worst);
    size_t count;
    nn_array *state = nn_model_state(model, &count, &err);
    ck_assert_int_eq(count, 4);
    ck_assert_str_eq(state[0].name, "1.weight");
    ck_assert_str_eq(state[3].name, "3.bias");
    ck_assert_int_eq(state[0].dims[0], 16);
    ck_assert_int_eq(state[0].dims[1], 36);
    free(state);
    free(analytic);
    nn_model_free(model);
    nn_config_free(&cfg);
}
END_TEST

START_TEST(load_state_names_the_bad_key) {
    nn_config cfg;
    make_config(&cfg, "sgd", "0.1", 1);
    nn_error err = {0};
    nn_model *model = nn_model_create(cfg.model.layers, cfg.model.layer_count, (nn_shape){3, {1, 6, 6}}, 1, NULL, &err);
    size_t count;
    nn_array *state = nn_model_state(model, &count, &err);
    ck_assert_int_eq(nn_model_load_state(model, state, count, "", "w.npz", &err), 0);
    state[1].dims[0] = 15;
    ck_assert_int_eq(nn_model_load_state(model, state, count, "", "w.npz", &err), -1);
    ck_assert_msg(strstr(err.message, "1.bias") && strstr(err.message, "(15,)") && strstr(err.message, "(16,)"), "%s",
                  err.message);
    state[1].dims[0] = 16;
    snprintf(state[2].name, sizeof state[2].name, "4.weigth");
    ck_assert_int_eq(nn_model_load_state(model, state, count, "", "w.npz", &err), -1);
    ck_assert_msg(strstr(err.message, "missing key '4.weight'"), "%s", err.message);
    ck_assert_int_eq(nn_model_load_state(model, state, count - 1, "", "w.npz", &err), -1);
    free(state);
    nn_model_free(model);
    nn_config_free(&cfg);
}
END_TEST

int main(void) {
    Suite *suite = suite_create("train");
    TCase *tc = tcase_create("train");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, training_learns_the_task);
    tcase_add_test(tc, same_seed_same_numbers);
    tcase_add_test(tc, a_run_stopped_mid_epoch_resumes_exactly);
    tcase_add_test(tc, thread_counts_agree);
    tcase_add_test(tc, resume_equals_straight_run_adam);
    tcase_add_test(tc, resume_equals_straight_run_sgd);
    tcase_add_test(tc, resume_refuses_other_optimizer);
    tcase_add_test(tc, checkpoint_round_trip_reproduces_evaluation);
    tcase_add_test(tc, model_gradients_match_finite_differences);
    tcase_add_test(tc, load_state_names_the_bad_key);
    suite_add_tcase(suite, tc);
    return testutil_run(suite);
}
