/* Losses: values and gradients against closed forms computed here in double,
 * gradients against central finite differences, stability for huge logits,
 * per-sample losses and the shape checks. */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "losses/loss.h"
#include "core/rng.h"
#include "testutil.h"

/* (batch, outputs, classes): outputs may exceed classes, which is allowed. */
static const int sizes[][3] = {{1, 2, 2}, {3, 5, 5}, {8, 10, 10}, {4, 7, 5}, {16, 3, 3}};
#define SIZE_COUNT ((int)(sizeof sizes / sizeof sizes[0]))

typedef struct batch_data {
    int batch, outputs;
    float *output;
    uint8_t *labels;
} batch_data;

/* Outputs uniform in [-3, 3]; for nll, log-probabilities (log-softmax of
 * such scores) so that the input is what nll expects. */
static batch_data make_batch(int batch, int outputs, int classes, uint64_t seed, bool log_probabilities) {
    nn_rng rng;
    nn_rng_seed(&rng, seed);
    batch_data data = {batch, outputs, malloc((size_t)batch * outputs * sizeof(float)),
                       malloc((size_t)batch)};
    for (int b = 0; b < batch; b++) {
        float *row = data.output + (size_t)b * outputs;
        double sum = 0;
        for (int j = 0; j < outputs; j++) {
            row[j] = nn_rng_uniform_range(&rng, -3, 3);
            sum += exp(row[j]);
        }
        if (log_probabilities)
            for (int j = 0; j < outputs; j++) row[j] = (float)(row[j] - log(sum));
        data.labels[b] = (uint8_t)nn_rng_below(&rng, (uint32_t)classes);
    }
    return data;
}

static void free_batch(batch_data *data) {
    free(data->output);
    free(data->labels);
}

/* The closed forms, in double, from the definitions (no max shift: the
 * inputs here are small), one sample at a time. Each writes the sample's
 * loss and its gradient already divided as torch's reduction='mean' does. */
typedef double (*reference_loss)(double *grad, const float *row, int label, int batch, int outputs);

static double reference_cross_entropy(double *grad, const float *row, int label, int batch, int outputs) {
    double sum = 0;
    for (int j = 0; j < outputs; j++) sum += exp((double)row[j]);
    for (int j = 0; j < outputs; j++) grad[j] = (exp((double)row[j]) / sum - (j == label)) / batch;
    return log(sum) - row[label];
}

static double reference_nll(double *grad, const float *row, int label, int batch, int outputs) {
    for (int j = 0; j < outputs; j++) grad[j] = j == label ? -1.0 / batch : 0.0;
    return -(double)row[label];
}

/* Per-sample mse is the mean over the sample's outputs; the batch loss is
 * the mean over all batch x outputs elements. */
static double reference_mse(double *grad, const float *row, int label, int batch, int outputs) {
    double sum = 0;
    for (int j = 0; j < outputs; j++) {
        double diff = (double)row[j] - (j == label);
        sum += diff * diff;
        grad[j] = 2 * diff / ((double)batch * outputs);
    }
    return sum / outputs;
}

typedef struct loss_case {
    const char *name;
    reference_loss reference;
    bool log_probabilities;
} loss_case;

static const loss_case cases[] = {
    {"cross_entropy", reference_cross_entropy, false},
    {"nll", reference_nll, true},
    {"mse", reference_mse, false},
};

static const nn_loss_kind *find_kind(const char *name) {
    const nn_loss_kind *kind = nn_loss_kind_find(name);
    ck_assert_msg(kind != NULL, "no loss %s", name);
    return kind;
}

static void assert_close(double actual, double expected, double rtol, double atol, const char *what,
                         const char *name, int batch, int outputs, int index) {
    ck_assert_msg(isfinite(actual) && fabs(actual - expected) <= atol + rtol * fabs(expected),
                  "%s %s (batch %d, outputs %d) [%d]: got %.9g, expected %.9g", name, what, batch, outputs,
                  index, actual, expected);
}

START_TEST(loss_values_and_gradients_match_closed_forms) {
    const loss_case *c = &cases[_i];
    const nn_loss_kind *kind = find_kind(c->name);
    for (int s = 0; s < SIZE_COUNT; s++) {
        int batch = sizes[s][0], outputs = sizes[s][1], classes = sizes[s][2];
        batch_data data = make_batch(batch, outputs, classes, 100 + (uint64_t)s, c->log_probabilities);
        float *grad = malloc((size_t)batch * outputs * sizeof *grad);
        float *sample_losses = malloc((size_t)batch * sizeof *sample_losses);
        double *expected_grad = malloc((size_t)outputs * sizeof *expected_grad);
        double loss = kind->compute(grad, sample_losses, data.output, data.labels, batch, outputs);
        double expected_total = 0;
        for (int b = 0; b < batch; b++) {
            double expected = c->reference(expected_grad, data.output + (size_t)b * outputs, data.labels[b],
                                           batch, outputs);
            expected_total += expected;
            assert_close(sample_losses[b], expected, 1e-6, 1e-7, "sample loss", c->name, batch, outputs, b);
            for (int j = 0; j < outputs; j++)
                assert_close(grad[(size_t)b * outputs + j], expected_grad[j], 1e-5, 1e-8, "gradient", c->name,
                             batch, outputs, b * outputs + j);
        }
        assert_close(loss, expected_total / batch, 1e-6, 1e-7, "loss", c->name, batch, outputs, -1);
        free(expected_grad);
        free(sample_losses);
        free(grad);
        free_batch(&data);
    }
}
END_TEST

/* Central differences of the returned loss with respect to each output,
 * using the step actually taken after rounding to float. */
START_TEST(loss_gradients_match_finite_differences) {
    const loss_case *c = &cases[_i];
    const nn_loss_kind *kind = find_kind(c->name);
    for (int s = 0; s < SIZE_COUNT; s++) {
        int batch = sizes[s][0], outputs = sizes[s][1], classes = sizes[s][2];
        batch_data data = make_batch(batch, outputs, classes, 200 + (uint64_t)s, c->log_probabilities);
        size_t count = (size_t)batch * outputs;
        float *grad = malloc(count * sizeof *grad);
        kind->compute(grad, NULL, data.output, data.labels, batch, outputs);
        for (size_t i = 0; i < count; i++) {
            float saved = data.output[i];
            float plus = saved + 1e-2f, minus = saved - 1e-2f;
            data.output[i] = plus;
            double loss_plus = kind->compute(NULL, NULL, data.output, data.labels, batch, outputs);
            data.output[i] = minus;
            double loss_minus = kind->compute(NULL, NULL, data.output, data.labels, batch, outputs);
            data.output[i] = saved;
            double numeric = (loss_plus - loss_minus) / ((double)plus - minus);
            assert_close(grad[i], numeric, 1e-3, 2e-6, "finite-difference gradient", c->name, batch, outputs,
                         (int)i);
        }
        free(grad);
        free_batch(&data);
    }
}
END_TEST

/* Logits of +-1000 overflow exp() unless the maximum is subtracted first. */
START_TEST(cross_entropy_is_stable_for_huge_logits) {
    const nn_loss_kind *kind = find_kind("cross_entropy");
    enum { BATCH = 4, OUTPUTS = 3 };
    const float output[BATCH * OUTPUTS] = {
        1000, -1000, 0,      /* label 0: the winner, loss log(1 + e^-1000 + e^-1000) = 0 */
        1000, -1000, 0,      /* label 1: loss 2000 */
        -1000, -1000, -1000, /* all equal: loss log 3 */
        1000, 1000, -1000,   /* two winners, label 1: loss log 2 */
    };
    const uint8_t labels[BATCH] = {0, 1, 2, 1};
    const double expected[BATCH] = {0, 2000, log(3.0), log(2.0)};
    const double softmax[BATCH * OUTPUTS] = {1, 0, 0, 1, 0, 0, 1 / 3.0, 1 / 3.0, 1 / 3.0, 0.5, 0.5, 0};
    float grad[BATCH * OUTPUTS], sample_losses[BATCH];
    double loss = kind->compute(grad, sample_losses, output, labels, BATCH, OUTPUTS);
    double expected_total = 0;
    for (int b = 0; b < BATCH; b++) {
        expected_total += expected[b];
        assert_close(sample_losses[b], expected[b], 1e-6, 1e-6, "sample loss", "cross_entropy", BATCH,
                     OUTPUTS, b);
        double row_sum = 0;
        for (int j = 0; j < OUTPUTS; j++) {
            int i = b * OUTPUTS + j;
            assert_close(grad[i], (softmax[i] - (j == labels[b])) / BATCH, 1e-6, 1e-7, "gradient",
                         "cross_entropy", BATCH, OUTPUTS, i);
            row_sum += grad[i];
        }
        /* Softmax sums to one, so each gradient row sums to zero. */
        ck_assert_msg(fabs(row_sum) < 1e-6, "row %d gradient sums to %g", b, row_sum);
    }
    assert_close(loss, expected_total / BATCH, 1e-6, 1e-6, "loss", "cross_entropy", BATCH, OUTPUTS, -1);
}
END_TEST

START_TEST(losses_are_finite_for_huge_inputs) {
    const loss_case *c = &cases[_i];
    const nn_loss_kind *kind = find_kind(c->name);
    const float output[2 * 4] = {1000, -1000, 0, 1e4f, -1000, -1000, 1000, -1e4f};
    const uint8_t labels[2] = {1, 2};
    float grad[2 * 4], sample_losses[2];
    double loss = kind->compute(grad, sample_losses, output, labels, 2, 4);
    ck_assert_msg(isfinite(loss), "%s loss %g", c->name, loss);
    for (int i = 0; i < 2; i++) ck_assert_msg(isfinite(sample_losses[i]), "%s sample %d", c->name, i);
    for (int i = 0; i < 8; i++) ck_assert_msg(isfinite(grad[i]), "%s grad[%d] = %g", c->name, i, grad[i]);
}
END_TEST

/* The loss does not depend on whether the gradient or the per-sample losses
 * are asked for, and the per-sample losses average to it. */
START_TEST(sample_losses_average_to_the_loss) {
    const loss_case *c = &cases[_i];
    const nn_loss_kind *kind = find_kind(c->name);
    batch_data data = make_batch(6, 10, 10, 300, c->log_probabilities);
    float grad[6 * 10], sample_losses[6], alone[6];
    double with_everything = kind->compute(grad, sample_losses, data.output, data.labels, 6, 10);
    double with_nothing = kind->compute(NULL, NULL, data.output, data.labels, 6, 10);
    double with_samples = kind->compute(NULL, alone, data.output, data.labels, 6, 10);
    ck_assert_msg(with_everything == with_nothing && with_nothing == with_samples, "%s: %.17g %.17g %.17g",
                  c->name, with_everything, with_nothing, with_samples);
    double sum = 0;
    for (int b = 0; b < 6; b++) {
        ck_assert_msg(sample_losses[b] == alone[b], "%s sample %d", c->name, b);
        sum += sample_losses[b];
    }
    assert_close(sum / 6, with_nothing, 1e-6, 0, "mean of sample losses", c->name, 6, 10, -1);
    free_batch(&data);
}
END_TEST

START_TEST(check_rejects_outputs_that_are_not_class_scores) {
    const nn_loss_kind *kind = find_kind(cases[_i].name);
    nn_error err = {0};
    ck_assert_int_eq(kind->check((nn_shape){3, {1, 28, 28}}, 10, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    ck_assert_msg(strstr(err.message, "(1, 28, 28)") && strstr(err.message, "10"), "%s", err.message);

    err = (nn_error){0};
    ck_assert_int_eq(kind->check((nn_shape){2, {10, 1, 0}}, 10, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_INPUT);

    err = (nn_error){0};
    ck_assert_int_eq(kind->check((nn_shape){1, {5, 0, 0}}, 10, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    ck_assert_msg(strstr(err.message, "(5,)") && strstr(err.message, "10"), "%s", err.message);

    err = (nn_error){0};
    ck_assert_int_eq(kind->check((nn_shape){1, {9, 0, 0}}, 10, &err), -1);
    ck_assert_msg(strstr(err.message, "(9,)") && strstr(err.message, "10"), "%s", err.message);

    err = (nn_error){0};
    ck_assert_int_eq(kind->check((nn_shape){1, {10, 0, 0}}, 10, &err), 0);
    ck_assert_int_eq(kind->check((nn_shape){1, {12, 0, 0}}, 10, &err), 0);
    ck_assert_int_eq(err.status, NN_OK);
}
END_TEST

START_TEST(loss_table_lists_the_three_losses) {
    int count = 0;
    const nn_loss_kind *const *kinds = nn_loss_kinds(&count);
    ck_assert_int_eq(count, 3);
    for (int i = 0; i < count; i++) ck_assert_ptr_eq(nn_loss_kind_find(kinds[i]->name), kinds[i]);
    ck_assert_ptr_nonnull(nn_loss_kind_find("cross_entropy"));
    ck_assert_ptr_nonnull(nn_loss_kind_find("nll"));
    ck_assert_ptr_nonnull(nn_loss_kind_find("mse"));
    ck_assert_ptr_null(nn_loss_kind_find("CrossEntropyLoss"));
}
END_TEST

int main(void) {
    Suite *suite = suite_create("loss");
    TCase *tc = tcase_create("loss");
    int case_count = (int)(sizeof cases / sizeof cases[0]);
    tcase_add_loop_test(tc, loss_values_and_gradients_match_closed_forms, 0, case_count);
    tcase_add_loop_test(tc, loss_gradients_match_finite_differences, 0, case_count);
    tcase_add_test(tc, cross_entropy_is_stable_for_huge_logits);
    tcase_add_loop_test(tc, losses_are_finite_for_huge_inputs, 0, case_count);
    tcase_add_loop_test(tc, sample_losses_average_to_the_loss, 0, case_count);
    tcase_add_loop_test(tc, check_rejects_outputs_that_are_not_class_scores, 0, case_count);
    tcase_add_test(tc, loss_table_lists_the_three_losses);
    suite_add_tcase(suite, tc);
    return testutil_run(suite);
}
