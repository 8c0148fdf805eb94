/* Linear: gradients by finite differences, where backward writes them,
 * shape inference and its errors. */
#include <check.h>
#include <math.h>
#include <string.h>

#include "layers/layers.h"
#include "gradcheck.h"
#include "testutil.h"

START_TEST(linear_gradients) {
    nn_arg_value args[NN_MAX_ARGS];
    gradcheck_args_default(&nn_linear_kind, args);
    gradcheck_args_set(&nn_linear_kind, args, "out_features", 5, 0);
    gradcheck_result r = gradcheck_layer(&nn_linear_kind, args, (nn_shape){1, {7, 0, 0}},
                                         (gradcheck_options){.batch = 4, .seed = 1});
    ck_assert_msg(r.ok, "%s", r.message);
}
END_TEST

START_TEST(linear_gradients_without_bias) {
    nn_arg_value args[NN_MAX_ARGS];
    gradcheck_args_default(&nn_linear_kind, args);
    gradcheck_args_set(&nn_linear_kind, args, "out_features", 3, 0);
    gradcheck_args_set(&nn_linear_kind, args, "bias", 0, 0);
    gradcheck_result r = gradcheck_layer(&nn_linear_kind, args, (nn_shape){1, {6, 0, 0}},
                                         (gradcheck_options){.batch = 1, .seed = 2});
    ck_assert_msg(r.ok, "%s", r.message);
}
END_TEST

/* backward overwrites its slice of the replica's gradient buffer (weight,
 * then bias) and nothing around it, with or without din; the layer needs
 * no context. */
START_TEST(linear_backward_writes_its_gradient_slice) {
    nn_arg_value args[NN_MAX_ARGS];
    gradcheck_args_default(&nn_linear_kind, args);
    gradcheck_args_set(&nn_linear_kind, args, "out_features", 3, 0);
    nn_error err = {0};
    nn_layer *layer = nn_linear_kind.create(args, (nn_shape){1, {4, 0, 0}}, &err);
    ck_assert_ptr_nonnull(layer);
    ck_assert_ptr_null(nn_linear_kind.context_create);
    enum { BATCH = 2, IN = 4, OUT = 3, PARAMS = OUT * IN + OUT };
    ck_assert_int_eq(nn_layer_param_count(layer), PARAMS);
    float params[PARAMS], in[BATCH * IN], out[BATCH * OUT], dout[BATCH * OUT], din[BATCH * IN];
    float grad[PARAMS + 2], again[PARAMS + 2];
    for (int i = 0; i < PARAMS; i++) params[i] = 0.25f * (float)(i % 5) - 0.5f;
    for (int i = 0; i < BATCH * IN; i++) in[i] = 0.5f * (float)(i % 3) - 0.25f;
    for (int i = 0; i < BATCH * OUT; i++) dout[i] = 0.125f * (float)(i + 1);
    nn_layer_bind(layer, params);
    nn_mode mode = {.training = true};
    for (int i = 0; i < PARAMS + 2; i++) grad[i] = again[i] = NAN;
    nn_linear_kind.forward(layer, NULL, out, in, BATCH, &mode);
    nn_linear_kind.backward(layer, NULL, din, dout, in, out, BATCH, grad + 1, &mode);
    /* small dyadic values: every sum below is exact in float */
    for (int o = 0; o < OUT; o++) {
        float dbias = 0;
        for (int b = 0; b < BATCH; b++) dbias += dout[b * OUT + o];
        ck_assert_float_eq(grad[1 + OUT * IN + o], dbias);
        for (int i = 0; i < IN; i++) {
            float dweight = 0;
            for (int b = 0; b < BATCH; b++) dweight += dout[b * OUT + o] * in[b * IN + i];
            ck_assert_float_eq(grad[1 + o * IN + i], dweight);
        }
    }
    ck_assert(isnan(grad[0]) && isnan(grad[PARAMS + 1]));
    nn_linear_kind.backward(layer, NULL, NULL, dout, in, out, BATCH, again + 1, &mode);
    ck_assert(memcmp(grad, again, sizeof grad) == 0);
    nn_linear_kind.destroy(layer);
}
END_TEST

START_TEST(linear_rejects_mismatched_in_features) {
    nn_arg_value args[NN_MAX_ARGS];
    gradcheck_args_default(&nn_linear_kind, args);
    gradcheck_args_set(&nn_linear_kind, args, "out_features", 3, 0);
    gradcheck_args_set(&nn_linear_kind, args, "in_features", 100, 0);
    nn_error err = {0};
    nn_layer *layer = nn_linear_kind.create(args, (nn_shape){1, {784, 0, 0}}, &err);
    ck_assert_ptr_null(layer);
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    ck_assert_msg(strstr(err.message, "100") && strstr(err.message, "784"), "%s", err.message);
}
END_TEST

START_TEST(linear_rejects_image_input) {
    nn_arg_value args[NN_MAX_ARGS];
    gradcheck_args_default(&nn_linear_kind, args);
    gradcheck_args_set(&nn_linear_kind, args, "out_features", 3, 0);
    nn_error err = {0};
    ck_assert_ptr_null(nn_linear_kind.create(args, (nn_shape){3, {1, 28, 28}}, &err));
    ck_assert_msg(strstr(err.message, "Flatten"), "%s", err.message);
}
END_TEST

START_TEST(linear_describe_matches_pytorch) {
    nn_arg_value args[NN_MAX_ARGS];
    gradcheck_args_default(&nn_linear_kind, args);
    gradcheck_args_set(&nn_linear_kind, args, "out_features", 10, 0);
    nn_error err = {0};
    nn_layer *layer = nn_linear_kind.create(args, (nn_shape){1, {128, 0, 0}}, &err);
    char text[128];
    nn_linear_kind.describe(layer, text, sizeof text);
    ck_assert_str_eq(text, "Linear(in_features=128, out_features=10, bias=True)");
    nn_linear_kind.destroy(layer);
}
END_TEST

int main(void) {
    Suite *suite = suite_create("linear");
    TCase *tc = tcase_create("linear");
    tcase_add_test(tc, linear_gradients);
    tcase_add_test(tc, linear_gradients_without_bias);
    tcase_add_test(tc, linear_backward_writes_its_gradient_slice);
    tcase_add_test(tc, linear_rejects_mismatched_in_features);
    tcase_add_test(tc, linear_rejects_image_input);
    tcase_add_test(tc, linear_describe_matches_pytorch);
    suite_add_tcase(suite, tc);
    return testutil_run(suite);
}
