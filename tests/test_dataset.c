/* The dataset module (lib/data/dataset.c), through its public functions on
 * arrays built here in memory: the sample shape and dtype conversion of the
 * inputs, the checks on inputs and targets and their messages ("FILE: item
 * K" or "FILE:LINE"), binding the targets to class and value losses (labels,
 * float rows, one-hot rows, target_range, data.target: input), the tail
 * split and its origins, the shuffle_split permutation against a
 * Fisher-Yates written here, the input transform (from lists and fitted,
 * against statistics computed here in double) and gathering batches of
 * inputs and targets, bit for bit. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/args.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "losses/loss.h"
#include "testutil.h"

/* ---- helpers ---- */

/* An array of dtype and dims whose data is a malloc'd copy of values (what
 * the readers hand over: the dataset takes the data). */
static nn_array array_new(nn_dtype dtype, const void *values, int rank, const int64_t *dims) {
    nn_array a;
    memset(&a, 0, sizeof a);
    a.dtype = dtype;
    a.rank = rank;
    for (int i = 0; i < rank; i++) a.dims[i] = dims[i];
    size_t bytes = nn_array_bytes(&a);
    a.data = malloc(bytes ? bytes : 1);
    ck_assert_ptr_nonnull(a.data);
    if (bytes) memcpy(a.data, values, bytes);
    return a;
}

#define DIMS(...) (int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (const int64_t[]){__VA_ARGS__}

static void set_inputs(nn_dataset *set, nn_dtype dtype, const void *values, int rank, const int64_t *dims,
                       const char *path, int64_t first_line) {
    nn_array a = array_new(dtype, values, rank, dims);
    nn_error err = {0};
    ck_assert_msg(nn_dataset_set_inputs(set, &a, path, first_line, &err) == 0, "set_inputs: %s", err.message);
    ck_assert_ptr_null(a.data);
}

static void set_targets(nn_dataset *set, nn_dtype dtype, const void *values, int rank, const int64_t *dims,
                        const char *path, int64_t first_line) {
    nn_array a = array_new(dtype, values, rank, dims);
    nn_error err = {0};
    ck_assert_msg(nn_dataset_set_targets(set, &a, path, first_line, &err) == 0, "set_targets: %s", err.message);
    ck_assert_ptr_null(a.data);
}

static void assert_contains(const char *message, const char *part) {
    ck_assert_msg(strstr(message, part) != NULL, "message \"%s\" lacks \"%s\"", message, part);
}

/* set_inputs on a fresh set fails with NN_ERR_INPUT, a message holding
 * each of parts (NULL-terminated), and takes the data all the same. */
static void inputs_fail(nn_dtype dtype, const void *values, int rank, const int64_t *dims, const char *path,
                        int64_t first_line, const char *const *parts) {
    nn_dataset set;
    memset(&set, 0, sizeof set);
    nn_array a = array_new(dtype, values, rank, dims);
    nn_error err = {0};
    ck_assert_int_eq(nn_dataset_set_inputs(&set, &a, path, first_line, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    ck_assert_ptr_null(a.data);
    for (; *parts; parts++) assert_contains(err.message, *parts);
    ck_assert_ptr_null(set.floats);
    nn_dataset_free(&set);
}

static nn_loss loss_named(const char *name) {
    nn_loss loss;
    memset(&loss, 0, sizeof loss);
    loss.kind = nn_loss_kind_find(name);
    ck_assert_msg(loss.kind != NULL, "no loss %s", name);
    nn_arg_defaults(loss.args, loss.kind->args, loss.kind->arg_count);
    return loss;
}

static nn_loss with_ignore_index(const char *name, double ignore_index) {
    nn_loss loss = loss_named(name);
    int i = nn_arg_find(loss.kind->args, loss.kind->arg_count, "ignore_index");
    ck_assert_int_ge(i, 0);
    loss.args[i].given = true;
    loss.args[i].value[0] = ignore_index;
    return loss;
}

static void bind_ok(nn_dataset *set, const nn_loss *loss, int outputs, bool target_is_input, const char *split) {
    nn_error err = {0};
    ck_assert_msg(nn_dataset_bind(set, loss, outputs, target_is_input, split, &err) == 0, "bind: %s", err.message);
}

/* bind fails with NN_ERR_INPUT and a message holding each of parts. */
static void bind_fails(nn_dataset *set, const nn_loss *loss, int outputs, bool target_is_input, const char *split,
                       const char *const *parts) {
    nn_error err = {0};
    ck_assert_int_eq(nn_dataset_bind(set, loss, outputs, target_is_input, split, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    for (; *parts; parts++) assert_contains(err.message, *parts);
}

#define PARTS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Bit for bit (so 0.0 and -0.0 differ, and NaN equals the same NaN). */
static void assert_same_floats(const float *got, const float *want, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(memcmp(&got[i], &want[i], sizeof got[i]) == 0, "%s[%zu]: got %.9g, expected %.9g", what, i,
                      (double)got[i], (double)want[i]);
}

static void assert_where(const nn_dataset *set, bool target, int64_t index, const char *expected) {
    char buffer[256];
    ck_assert_str_eq(nn_dataset_where(set, target, index, buffer, sizeof buffer), expected);
}

/* count samples of width floats, value (r, j) = r * 10 + j + 0.5, with
 * class labels r % classes (int64) or no targets when classes is 0. */
static void make_rows(nn_dataset *set, int64_t count, int width, int classes) {
    memset(set, 0, sizeof *set);
    float *x = malloc((size_t)count * (size_t)width * sizeof *x);
    ck_assert_ptr_nonnull(x);
    for (int64_t r = 0; r < count; r++)
        for (int j = 0; j < width; j++) x[r * width + j] = (float)(r * 10 + j) + 0.5f;
    set_inputs(set, NN_F32, x, 2, (const int64_t[]){count, width}, "in.npy", 0);
    free(x);
    if (!classes) return;
    int64_t *y = malloc((size_t)count * sizeof *y);
    ck_assert_ptr_nonnull(y);
    for (int64_t r = 0; r < count; r++) y[r] = r % classes;
    set_targets(set, NN_I64, y, 1, (const int64_t[]){count}, "lab.npy", 0);
    free(y);
}

/* ---- set_inputs ---- */

START_TEST(input_shapes_follow_the_dims) {
    const float x[24] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23};
    nn_dataset set;

    memset(&set, 0, sizeof set);
    set_inputs(&set, NN_F32, x, DIMS(24), "a.npy", 0);
    ck_assert_int_eq(set.count, 24);
    ck_assert_int_eq(set.shape.rank, 1);
    ck_assert_int_eq(set.shape.dims[0], 1);
    ck_assert_uint_eq(set.input_size, 1);
    ck_assert(!set.inputs_are_bytes);
    assert_same_floats(set.floats, x, 24, "(N)");
    nn_dataset_free(&set);

    set_inputs(&set, NN_F32, x, DIMS(4, 6), "a.npy", 0);
    ck_assert_int_eq(set.count, 4);
    ck_assert_int_eq(set.shape.rank, 1);
    ck_assert_int_eq(set.shape.dims[0], 6);
    ck_assert_uint_eq(set.input_size, 6);
    assert_same_floats(set.floats, x, 24, "(N, F)");
    nn_dataset_free(&set);

    set_inputs(&set, NN_F32, x, DIMS(2, 3, 4), "a.npy", 0);
    ck_assert_int_eq(set.count, 2);
    ck_assert_int_eq(set.shape.rank, 3);
    ck_assert_int_eq(set.shape.dims[0], 1);
    ck_assert_int_eq(set.shape.dims[1], 3);
    ck_assert_int_eq(set.shape.dims[2], 4);
    ck_assert_uint_eq(set.input_size, 12);
    assert_same_floats(set.floats, x, 24, "(N, H, W)");
    nn_dataset_free(&set);

    set_inputs(&set, NN_F32, x, DIMS(2, 3, 2, 2), "a.npy", 0);
    ck_assert_int_eq(set.count, 2);
    ck_assert_int_eq(set.shape.rank, 3);
    ck_assert_int_eq(set.shape.dims[0], 3);
    ck_assert_int_eq(set.shape.dims[1], 2);
    ck_assert_int_eq(set.shape.dims[2], 2);
    ck_assert_uint_eq(set.input_size, 12);
    assert_same_floats(set.floats, x, 24, "(N, C, H, W)");
    ck_assert_str_eq(set.input_origin.path, "a.npy");
    ck_assert_int_eq(set.input_origin.first_line, 0);
    ck_assert_int_eq(set.input_origin.first_row, 0);
    nn_dataset_free(&set);
}
END_TEST

START_TEST(uint8_inputs_stay_bytes) {
    const uint8_t b[6] = {0, 1, 127, 128, 254, 255};
    nn_dataset set;
    memset(&set, 0, sizeof set);
    nn_array a = array_new(NN_U8, b, 2, (const int64_t[]){3, 2});
    void *data = a.data;
    nn_error err = {0};
    ck_assert_int_eq(nn_dataset_set_inputs(&set, &a, "img.idx", 0, &err), 0);
    ck_assert_ptr_null(a.data);
    ck_assert(set.inputs_are_bytes);
    ck_assert_ptr_eq(set.bytes, data);   /* taken, not copied */
    ck_assert_ptr_null(set.floats);
    ck_assert_int_eq(set.count, 3);
    ck_assert_uint_eq(set.input_size, 2);
    ck_assert_mem_eq(set.bytes, b, sizeof b);
    nn_dataset_free(&set);
}
END_TEST

/* Each non-uint8 dtype: the values as float32 ((float) of the stored value). */
typedef struct dtype_case {
    nn_dtype dtype;
    const void *values;
    float expected[4];
} dtype_case;

static const double f64_values[4] = {0.1, -2.5, 1e30, -0.0};
static const float f32_values[4] = {0.1f, -2.5f, 3.0e38f, -0.0f};
static const int8_t i8_values[4] = {-128, -1, 0, 127};
static const int16_t i16_values[4] = {-32768, -7, 300, 32767};
static const uint16_t u16_values[4] = {0, 1, 40000, 65535};
static const int32_t i32_values[4] = {INT32_MIN, -5, 16777217, INT32_MAX};
static const uint32_t u32_values[4] = {0, 3, 16777217u, UINT32_MAX};
static const int64_t i64_values[4] = {-100, 0, (int64_t)1 << 40, INT64_MIN};
static const uint64_t u64_values[4] = {0, 9, (uint64_t)1 << 63, UINT64_MAX};
static const uint8_t bool_values[4] = {0, 1, 1, 0};

static const dtype_case dtype_cases[] = {
    {NN_F64, f64_values, {0.1f, -2.5f, 1e30f, -0.0f}},
    {NN_F32, f32_values, {0.1f, -2.5f, 3.0e38f, -0.0f}},
    {NN_I8, i8_values, {-128.0f, -1.0f, 0.0f, 127.0f}},
    {NN_I16, i16_values, {-32768.0f, -7.0f, 300.0f, 32767.0f}},
    {NN_U16, u16_values, {0.0f, 1.0f, 40000.0f, 65535.0f}},
    /* 16777217 = 2^24 + 1 rounds to 2^24 (to even); INT32_MAX to 2^31. */
    {NN_I32, i32_values, {-2147483648.0f, -5.0f, 16777216.0f, 2147483648.0f}},
    {NN_U32, u32_values, {0.0f, 3.0f, 16777216.0f, 4294967296.0f}},
    {NN_I64, i64_values, {-100.0f, 0.0f, 1099511627776.0f, -9223372036854775808.0f}},
    {NN_U64, u64_values, {0.0f, 9.0f, 9223372036854775808.0f, 18446744073709551616.0f}},
    {NN_BOOL, bool_values, {0.0f, 1.0f, 1.0f, 0.0f}},
};

START_TEST(other_dtypes_become_the_same_float32_values) {
    const dtype_case *c = &dtype_cases[_i];
    nn_dataset set;
    memset(&set, 0, sizeof set);
    set_inputs(&set, c->dtype, c->values, DIMS(2, 2), "x.npy", 0);
    ck_assert_msg(!set.inputs_are_bytes, "%s", nn_dtype_name(c->dtype));
    ck_assert_ptr_null(set.bytes);
    ck_assert_int_eq(set.count, 2);
    ck_assert_uint_eq(set.input_size, 2);
    assert_same_floats(set.floats, c->expected, 4, nn_dtype_name(c->dtype));
    nn_dataset_free(&set);
}
END_TEST

START_TEST(nan_and_inf_inputs_name_the_item_and_value) {
    float x[6] = {1, 2, 3, 4, 5, 6};
    x[5] = NAN;   /* sample 1, value 3 */
    inputs_fail(NN_F32, x, DIMS(2, 3), "x.npy", 0, PARTS("x.npy: item 1: value 3 of the sample is NaN"));

    double d[6] = {1, 2, 3, 4, 5, 6};
    d[1] = INFINITY;   /* sample 0, value 2 */
    inputs_fail(NN_F64, d, DIMS(3, 2), "x.npy", 0, PARTS("x.npy: item 0: value 2 of the sample is Inf"));

    float y[4] = {0, 0, 0, -INFINITY};   /* sample 3 of (N) inputs: value 1 */
    inputs_fail(NN_F32, y, DIMS(4), "col.npy", 0, PARTS("col.npy: item 3: value 1 of the sample is -Inf"));

    /* A text file: "FILE:LINE", line = first_line + row. */
    float z[6] = {1, 2, 3, 4, 5, 6};
    z[4] = NAN;   /* row 2, value 1 */
    inputs_fail(NN_F32, z, DIMS(3, 2), "t.csv", 5, PARTS("t.csv:7: value 1 of the sample is NaN"));
}
END_TEST

START_TEST(float64_beyond_float32_is_an_error) {
    const double fits[2] = {FLT_MAX, -(double)FLT_MAX};
    nn_dataset set;
    memset(&set, 0, sizeof set);
    set_inputs(&set, NN_F64, fits, DIMS(2), "x.npy", 0);
    ck_assert(set.floats[0] == FLT_MAX && set.floats[1] == -FLT_MAX);
    nn_dataset_free(&set);

    const double big[4] = {1, 2, 3, 1e300};
    inputs_fail(NN_F64, big, DIMS(2, 2), "x.npy", 0, PARTS("x.npy: item 1: value 2 of the sample", "too large for float32"));
    const double negative[2] = {-1e39, 0};
    inputs_fail(NN_F64, negative, DIMS(1, 2), "x.npy", 0, PARTS("x.npy: item 0: value 1", "too large for float32"));
}
END_TEST

START_TEST(zero_samples_is_an_error) {
    const float none[1] = {0};
    inputs_fail(NN_F32, none, DIMS(0, 3), "empty.npy", 0, PARTS("empty.npy", "no samples"));
    inputs_fail(NN_U8, none, DIMS(0), "empty.idx", 0, PARTS("empty.idx", "no samples"));
    inputs_fail(NN_F32, none, 0, NULL, "scalar.npy", 0, PARTS("scalar.npy", "no samples"));
}
END_TEST

/* ---- set_targets ---- */

START_TEST(target_width_is_the_product_of_the_dims) {
    nn_dataset set;
    make_rows(&set, 2, 1, 0);
    const double t[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11.5};
    set_targets(&set, NN_F64, t, DIMS(2, 2, 3), "t.npy", 0);
    ck_assert_int_eq(set.target_width, 6);
    ck_assert(!set.targets_integer);
    for (int i = 0; i < 12; i++) ck_assert(set.raw_targets[i] == t[i]);
    ck_assert_str_eq(set.target_origin.path, "t.npy");

    const float f[2] = {0.25f, -1.0f};
    set_targets(&set, NN_F32, f, DIMS(2), "f.npy", 0);   /* replaces the first */
    ck_assert_int_eq(set.target_width, 1);
    ck_assert(!set.targets_integer);
    ck_assert(set.raw_targets[0] == 0.25 && set.raw_targets[1] == -1.0);
    ck_assert_str_eq(set.target_origin.path, "f.npy");

    const int64_t l[4] = {3, -100, 7, 2147483647};
    set_targets(&set, NN_I64, l, DIMS(2, 2), "l.npy", 0);
    ck_assert_int_eq(set.target_width, 2);
    ck_assert(set.targets_integer);
    for (int i = 0; i < 4; i++) ck_assert(set.raw_targets[i] == (double)l[i]);

    const uint8_t u[2] = {9, 255};
    set_targets(&set, NN_U8, u, DIMS(2, 1), "u.idx", 0);
    ck_assert_int_eq(set.target_width, 1);
    ck_assert(set.targets_integer);
    ck_assert(set.raw_targets[0] == 9 && set.raw_targets[1] == 255);

    const uint8_t b[2] = {1, 0};
    set_targets(&set, NN_BOOL, b, DIMS(2), "b.npy", 0);
    ck_assert(set.targets_integer);
    ck_assert(set.raw_targets[0] == 1 && set.raw_targets[1] == 0);
    nn_dataset_free(&set);
}
END_TEST

START_TEST(target_count_mismatch_names_both_files) {
    nn_dataset set;
    make_rows(&set, 3, 2, 0);
    const int64_t l[2] = {0, 1};
    nn_array a = array_new(NN_I64, l, 1, (const int64_t[]){2});
    nn_error err = {0};
    ck_assert_int_eq(nn_dataset_set_targets(&set, &a, "lab.npy", 0, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    ck_assert_ptr_null(a.data);
    assert_contains(err.message, "in.npy has 3 samples but lab.npy has 2 targets");
    ck_assert_ptr_null(set.raw_targets);
    ck_assert_int_eq(set.target_width, 0);

    const int64_t more[4] = {0, 1, 2, 3};
    a = array_new(NN_I64, more, 1, (const int64_t[]){4});
    ck_assert_int_eq(nn_dataset_set_targets(&set, &a, "more.npy", 0, &err), -1);
    ck_assert_ptr_null(a.data);
    assert_contains(err.message, "in.npy has 3 samples but more.npy has 4 targets");
    nn_dataset_free(&set);
}
END_TEST

START_TEST(nan_target_names_the_item) {
    nn_dataset set;
    make_rows(&set, 3, 1, 0);
    double t[6] = {0, 1, 2, 3, 4, 5};
    t[5] = NAN;   /* row 2, target 2 */
    nn_array a = array_new(NN_F64, t, 2, (const int64_t[]){3, 2});
    nn_error err = {0};
    ck_assert_int_eq(nn_dataset_set_targets(&set, &a, "lab.npy", 0, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    ck_assert_ptr_null(a.data);
    assert_contains(err.message, "lab.npy: item 2: target 2 is NaN");
    ck_assert_ptr_null(set.raw_targets);

    float f[3] = {0, -INFINITY, 1};   /* row 1 of a text file from line 2: line 3 */
    a = array_new(NN_F32, f, 1, (const int64_t[]){3});
    ck_assert_int_eq(nn_dataset_set_targets(&set, &a, "t.csv", 2, &err), -1);
    ck_assert_ptr_null(a.data);
    assert_contains(err.message, "t.csv:3: target 1 is -Inf");
    nn_dataset_free(&set);
}
END_TEST

/* ---- bind: class losses ---- */

START_TEST(class_labels_in_range_are_bound) {
    nn_dataset set;
    make_rows(&set, 5, 2, 0);
    const int64_t l[5] = {0, 2, 1, 0, 2};
    set_targets(&set, NN_I64, l, DIMS(5), "lab.npy", 0);
    nn_loss loss = loss_named("cross_entropy");
    bind_ok(&set, &loss, 3, false, "train");
    ck_assert_ptr_nonnull(set.labels);
    ck_assert_ptr_null(set.values);
    ck_assert_ptr_null(set.raw_targets);   /* freed once bound */
    ck_assert(!set.target_is_input);
    for (int i = 0; i < 5; i++) ck_assert_int_eq(set.labels[i], l[i]);
    nn_dataset_free(&set);

    /* Float targets that are whole numbers are class indices too. */
    make_rows(&set, 3, 1, 0);
    const double d[3] = {1, 0, 1};
    set_targets(&set, NN_F64, d, DIMS(3, 1), "lab.npy", 0);
    loss = loss_named("nll");
    bind_ok(&set, &loss, 2, false, "train");
    ck_assert_int_eq(set.labels[0], 1);
    ck_assert_int_eq(set.labels[1], 0);
    ck_assert_int_eq(set.labels[2], 1);
    nn_dataset_free(&set);
}
END_TEST

START_TEST(class_label_out_of_range_is_named) {
    nn_loss loss = loss_named("cross_entropy");
    nn_dataset set;
    make_rows(&set, 4, 2, 0);
    const int64_t l[4] = {0, 1, 3, 2};
    set_targets(&set, NN_I64, l, DIMS(4), "lab.npy", 0);
    bind_fails(&set, &loss, 3, false, "train",
               PARTS("lab.npy: item 2: train label 3 is beyond the model's 3 outputs", "0 to 2"));
    /* Nothing half-bound is left behind, and the raw targets stay, so a
     * second bind with more outputs works. */
    ck_assert_ptr_null(set.labels);
    ck_assert_ptr_null(set.values);
    ck_assert(!set.target_is_input);
    bind_ok(&set, &loss, 4, false, "train");
    ck_assert_int_eq(set.labels[2], 3);
    nn_dataset_free(&set);

    /* A negative label that is not ignore_index. */
    make_rows(&set, 2, 2, 0);
    const int64_t negative[2] = {0, -1};
    set_targets(&set, NN_I64, negative, DIMS(2), "lab.npy", 0);
    bind_fails(&set, &loss, 3, false, "test", PARTS("lab.npy: item 1: test target -1 is not a class index"));
    nn_dataset_free(&set);

    /* One more than the last output passes with one output more. */
    make_rows(&set, 4, 2, 0);
    set_targets(&set, NN_I64, l, DIMS(4), "lab.npy", 0);
    bind_ok(&set, &loss, 4, false, "train");
    ck_assert_int_eq(set.labels[2], 3);
    nn_dataset_free(&set);
}
END_TEST

START_TEST(fractional_label_is_not_a_class_index) {
    nn_loss loss = loss_named("cross_entropy");
    nn_dataset set;
    make_rows(&set, 3, 2, 0);
    const double d[3] = {0, 1.5, 1};
    set_targets(&set, NN_F64, d, DIMS(3), "lab.npy", 0);
    bind_fails(&set, &loss, 3, false, "train", PARTS("lab.npy: item 1: train target 1.5 is not a class index"));
    nn_dataset_free(&set);
}
END_TEST

START_TEST(ignore_index_labels_pass) {
    nn_loss loss = loss_named("cross_entropy");
    ck_assert(nn_loss_arg(&loss, "ignore_index") == -100);
    nn_dataset set;
    make_rows(&set, 3, 2, 0);
    const int64_t l[3] = {1, -100, 0};
    set_targets(&set, NN_I64, l, DIMS(3), "lab.npy", 0);
    bind_ok(&set, &loss, 2, false, "train");
    ck_assert_int_eq(set.labels[0], 1);
    ck_assert_int_eq(set.labels[1], -100);
    ck_assert_int_eq(set.labels[2], 0);
    nn_dataset_free(&set);

    /* ignore_index 3 with 3 outputs: 3 passes, -100 is now out of range. */
    loss = with_ignore_index("cross_entropy", 3);
    make_rows(&set, 3, 2, 0);
    const int64_t three[3] = {3, 2, 3};
    set_targets(&set, NN_I64, three, DIMS(3), "lab.npy", 0);
    bind_ok(&set, &loss, 3, false, "train");
    ck_assert_int_eq(set.labels[0], 3);
    ck_assert_int_eq(set.labels[1], 2);
    ck_assert_int_eq(set.labels[2], 3);
    nn_dataset_free(&set);

    make_rows(&set, 3, 2, 0);
    set_targets(&set, NN_I64, l, DIMS(3), "lab.npy", 0);
    bind_fails(&set, &loss, 3, false, "train", PARTS("lab.npy: item 1: train target -100 is not a class index (expected an integer 0 to 2)"));
    nn_dataset_free(&set);

    /* 4 is neither in range nor ignore_index. */
    make_rows(&set, 2, 2, 0);
    const int64_t four[2] = {3, 4};
    set_targets(&set, NN_I64, four, DIMS(2), "lab.npy", 0);
    bind_fails(&set, &loss, 3, false, "train", PARTS("lab.npy: item 1: train label 4 is beyond the model's 3 outputs"));
    nn_dataset_free(&set);
}
END_TEST

START_TEST(class_loss_needs_one_target_per_sample) {
    nn_loss loss = loss_named("cross_entropy");
    nn_dataset set;
    make_rows(&set, 2, 2, 0);
    const int64_t l[4] = {0, 1, 1, 0};
    set_targets(&set, NN_I64, l, DIMS(2, 2), "lab.npy", 0);
    bind_fails(&set, &loss, 2, false, "train", PARTS("lab.npy: 2 targets per sample", "one class index"));
    nn_dataset_free(&set);

    make_rows(&set, 2, 2, 0);   /* no targets read */
    bind_fails(&set, &loss, 2, false, "train", PARTS("in.npy: the train split has no targets"));
    nn_dataset_free(&set);
}
END_TEST

START_TEST(text_file_messages_name_the_line) {
    nn_loss loss = loss_named("cross_entropy");
    nn_dataset set;
    memset(&set, 0, sizeof set);
    const float x[4] = {1, 2, 3, 4};
    set_inputs(&set, NN_F32, x, DIMS(4, 1), "data.csv", 2);
    const double l[4] = {0, 1, 5, 1};   /* row 2: line 4 */
    set_targets(&set, NN_F64, l, DIMS(4), "data.csv", 2);
    assert_where(&set, false, 0, "data.csv:2");
    assert_where(&set, true, 3, "data.csv:5");
    bind_fails(&set, &loss, 2, false, "test", PARTS("data.csv:4: test label 5 is beyond the model's 2 outputs"));
    nn_dataset_free(&set);

    nn_loss bce = loss_named("bce");
    memset(&set, 0, sizeof set);
    set_inputs(&set, NN_F32, x, DIMS(2, 2), "data.csv", 10);
    const double t[4] = {0, 1, 1, -0.5};   /* row 1, target 2: line 11 */
    set_targets(&set, NN_F64, t, DIMS(2, 2), "data.csv", 10);
    bind_fails(&set, &bce, 2, false, "train", PARTS("data.csv:11: train target 2 of 2 is -0.5, outside [0, 1], which loss bce takes"));
    nn_dataset_free(&set);
}
END_TEST

/* ---- bind: value losses ---- */

START_TEST(value_targets_are_copied_as_floats) {
    nn_loss loss = loss_named("mse");
    nn_dataset set;
    make_rows(&set, 3, 2, 0);
    const double t[6] = {0.1, -2.5, 1e10, 3, 0.3333333333333333, -0.0};
    set_targets(&set, NN_F64, t, DIMS(3, 2), "t.npy", 0);
    bind_ok(&set, &loss, 2, false, "train");
    ck_assert_ptr_null(set.labels);
    ck_assert_ptr_null(set.raw_targets);
    ck_assert_int_eq(set.value_width, 2);
    const float want[6] = {0.1f, -2.5f, 1e10f, 3.0f, 0.333333343f, -0.0f};
    assert_same_floats(set.values, want, 6, "values");
    nn_dataset_free(&set);

    /* One output, one target: a value, not a class index. */
    make_rows(&set, 2, 2, 0);
    const double one[2] = {1.75, -3};
    set_targets(&set, NN_F64, one, DIMS(2), "t.npy", 0);
    bind_ok(&set, &loss, 1, false, "train");
    ck_assert_int_eq(set.value_width, 1);
    ck_assert(set.values[0] == 1.75f && set.values[1] == -3.0f);
    nn_dataset_free(&set);

    /* An image-shaped target of (N, 2, 2) for 4 outputs. */
    make_rows(&set, 1, 1, 0);
    const float img[4] = {0.5f, 1.5f, 2.5f, 3.5f};
    set_targets(&set, NN_F32, img, DIMS(1, 2, 2), "t.npy", 0);
    bind_ok(&set, &loss, 4, false, "train");
    assert_same_floats(set.values, img, 4, "image target");
    nn_dataset_free(&set);

    /* Too large for float32. */
    make_rows(&set, 2, 1, 0);
    const double big[2] = {0, 1e300};
    set_targets(&set, NN_F64, big, DIMS(2), "t.npy", 0);
    bind_fails(&set, &loss, 1, false, "train", PARTS("t.npy: item 1: train target 1", "too large for float32"));
    nn_dataset_free(&set);
}
END_TEST

START_TEST(class_index_becomes_a_one_hot_row) {
    nn_loss loss = loss_named("mse");
    nn_dataset set;
    make_rows(&set, 4, 2, 0);
    const int64_t l[4] = {2, 0, 1, 2};
    set_targets(&set, NN_I64, l, DIMS(4), "lab.npy", 0);
    bind_ok(&set, &loss, 3, false, "train");
    ck_assert_ptr_null(set.labels);
    ck_assert_int_eq(set.value_width, 3);
    const float want[12] = {0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1};
    assert_same_floats(set.values, want, 12, "one-hot");
    nn_dataset_free(&set);

    make_rows(&set, 4, 2, 0);
    const int64_t beyond[4] = {2, 0, 3, 1};
    set_targets(&set, NN_I64, beyond, DIMS(4), "lab.npy", 0);
    bind_fails(&set, &loss, 3, false, "train", PARTS("lab.npy: item 2: train label 3 is beyond the model's 3 outputs"));
    nn_dataset_free(&set);

    /* mse has no ignore_index: -100 is no label. */
    make_rows(&set, 2, 2, 0);
    const int64_t ignored[2] = {1, -100};
    set_targets(&set, NN_I64, ignored, DIMS(2), "lab.npy", 0);
    bind_fails(&set, &loss, 3, false, "train", PARTS("lab.npy: item 1: train target -100 is not a class index"));
    nn_dataset_free(&set);

    make_rows(&set, 2, 2, 0);
    const double fraction[2] = {0.5, 1};
    set_targets(&set, NN_F64, fraction, DIMS(2), "lab.npy", 0);
    bind_fails(&set, &loss, 3, false, "train", PARTS("lab.npy: item 0: train target 0.5 is not a class index"));
    nn_dataset_free(&set);
}
END_TEST

START_TEST(other_target_widths_name_both_numbers) {
    nn_loss loss = loss_named("mse");
    nn_dataset set;
    make_rows(&set, 2, 2, 0);
    const double t[4] = {0, 1, 2, 3};
    set_targets(&set, NN_F64, t, DIMS(2, 2), "t.npy", 0);
    bind_fails(&set, &loss, 3, false, "train", PARTS("t.npy: 2 targets per sample, but the model has 3 outputs"));
    bind_fails(&set, &loss, 1, false, "train", PARTS("t.npy: 2 targets per sample, but the model has 1 outputs"));
    ck_assert_ptr_nonnull(set.raw_targets);   /* still there to bind */
    bind_ok(&set, &loss, 2, false, "train");
    nn_dataset_free(&set);
}
END_TEST

START_TEST(bce_target_range_is_checked) {
    nn_loss loss = loss_named("bce");
    nn_dataset set;
    make_rows(&set, 3, 2, 0);
    const double t[6] = {0, 1, 0.25, 1.5, 1, 0};   /* row 1, target 2 */
    set_targets(&set, NN_F64, t, DIMS(3, 2), "t.npy", 0);
    bind_fails(&set, &loss, 2, false, "train", PARTS("t.npy: item 1: train target 2 of 2 is 1.5, outside [0, 1]"));
    nn_dataset_free(&set);

    make_rows(&set, 3, 2, 0);
    const double ok[6] = {0, 1, 0.25, 0.75, 1, 0};
    set_targets(&set, NN_F64, ok, DIMS(3, 2), "t.npy", 0);
    bind_ok(&set, &loss, 2, false, "train");
    const float want[6] = {0, 1, 0.25f, 0.75f, 1, 0};
    assert_same_floats(set.values, want, 6, "bce values");
    nn_dataset_free(&set);

    /* mse has no range: 1.5 is fine. */
    nn_loss mse = loss_named("mse");
    make_rows(&set, 3, 2, 0);
    set_targets(&set, NN_F64, t, DIMS(3, 2), "t.npy", 0);
    bind_ok(&set, &mse, 2, false, "train");
    ck_assert(set.values[3] == 1.5f);
    nn_dataset_free(&set);
}
END_TEST

/* ---- bind: data.target: input ---- */

START_TEST(target_is_input_needs_no_targets) {
    nn_loss loss = loss_named("mse");
    nn_dataset set;
    make_rows(&set, 3, 4, 0);
    bind_ok(&set, &loss, 4, true, "train");
    ck_assert(set.target_is_input);
    ck_assert_int_eq(set.value_width, 4);
    ck_assert_ptr_null(set.labels);
    ck_assert_ptr_null(set.values);
    nn_dataset_free(&set);

    /* Targets read anyway are dropped. */
    make_rows(&set, 3, 4, 2);
    bind_ok(&set, &loss, 4, true, "train");
    ck_assert_ptr_null(set.raw_targets);
    ck_assert_ptr_null(set.labels);
    ck_assert_int_eq(set.value_width, 4);
    nn_dataset_free(&set);

    make_rows(&set, 3, 4, 0);
    bind_fails(&set, &loss, 3, true, "train",
               PARTS("in.npy: data.target is input, so the model's 3 outputs must be the 4 input values"));
    nn_dataset_free(&set);

    nn_loss ce = loss_named("cross_entropy");
    make_rows(&set, 3, 4, 2);
    bind_fails(&set, &ce, 4, true, "train", PARTS("data.target is input", "not class indices"));
    nn_dataset_free(&set);
}
END_TEST

START_TEST(target_is_input_under_bce_needs_inputs_in_range) {
    nn_loss loss = loss_named("bce");
    nn_dataset set;
    memset(&set, 0, sizeof set);
    const float x[6] = {0, 0.5f, 1, 0.25f, 1.25f, 0};   /* sample 1, value 2 */
    set_inputs(&set, NN_F32, x, DIMS(2, 3), "in.npy", 0);
    bind_fails(&set, &loss, 3, true, "train", PARTS("in.npy: item 1: train input value 2 is 1.25, outside [0, 1]"));
    nn_dataset_free(&set);

    const float negative[4] = {0, -0.125f, 1, 1};
    set_inputs(&set, NN_F32, negative, DIMS(1, 4), "in.npy", 0);
    bind_fails(&set, &loss, 4, true, "train", PARTS("in.npy: item 0: train input value 2 is -0.125"));
    nn_dataset_free(&set);

    const float ok[6] = {0, 0.5f, 1, 0.25f, 0.75f, 0};
    set_inputs(&set, NN_F32, ok, DIMS(2, 3), "in.npy", 0);
    bind_ok(&set, &loss, 3, true, "train");
    nn_dataset_free(&set);

    /* Bytes are in [0, 1] once divided by 255. */
    const uint8_t b[4] = {0, 255, 128, 7};
    set_inputs(&set, NN_U8, b, DIMS(2, 2), "in.idx", 0);
    bind_ok(&set, &loss, 2, true, "train");
    nn_dataset_free(&set);

    /* mse has no range. */
    nn_loss mse = loss_named("mse");
    set_inputs(&set, NN_F32, x, DIMS(2, 3), "in.npy", 0);
    bind_ok(&set, &mse, 3, true, "train");
    nn_dataset_free(&set);
}
END_TEST

/* ---- split_tail ---- */

START_TEST(split_tail_moves_floats_and_labels) {
    nn_dataset set, tail;
    make_rows(&set, 5, 2, 5);
    nn_loss loss = loss_named("cross_entropy");
    bind_ok(&set, &loss, 5, false, "train");
    nn_error err = {0};
    ck_assert_int_eq(nn_dataset_split_tail(&set, 2, &tail, &err), 0);
    ck_assert_int_eq(set.count, 3);
    ck_assert_int_eq(tail.count, 2);
    ck_assert(!tail.inputs_are_bytes);
    ck_assert_int_eq(tail.shape.rank, 1);
    ck_assert_int_eq(tail.shape.dims[0], 2);
    ck_assert_uint_eq(tail.input_size, 2);
    const float head_x[6] = {0.5f, 1.5f, 10.5f, 11.5f, 20.5f, 21.5f};
    const float tail_x[4] = {30.5f, 31.5f, 40.5f, 41.5f};
    assert_same_floats(set.floats, head_x, 6, "head inputs");
    assert_same_floats(tail.floats, tail_x, 4, "tail inputs");
    for (int i = 0; i < 3; i++) ck_assert_int_eq(set.labels[i], i);
    ck_assert_int_eq(tail.labels[0], 3);
    ck_assert_int_eq(tail.labels[1], 4);
    ck_assert_ptr_null(tail.values);
    ck_assert_str_eq(tail.input_origin.path, "in.npy");
    ck_assert_int_eq(tail.input_origin.first_row, 3);
    assert_where(&tail, false, 0, "in.npy: item 3");
    assert_where(&tail, true, 1, "lab.npy: item 4");
    assert_where(&set, false, 2, "in.npy: item 2");

    /* A split of the split: origins add up. */
    nn_dataset last;
    ck_assert_int_eq(nn_dataset_split_tail(&tail, 1, &last, &err), 0);
    ck_assert_int_eq(tail.count, 1);
    ck_assert_int_eq(last.count, 1);
    ck_assert_int_eq(last.labels[0], 4);
    assert_where(&last, false, 0, "in.npy: item 4");
    nn_dataset_free(&last);
    nn_dataset_free(&tail);
    nn_dataset_free(&set);
}
END_TEST

START_TEST(split_tail_moves_bytes_and_values) {
    nn_dataset set, tail;
    memset(&set, 0, sizeof set);
    uint8_t b[16];
    for (int i = 0; i < 16; i++) b[i] = (uint8_t)(i * 13 + 1);
    set_inputs(&set, NN_U8, b, DIMS(4, 2, 2), "data.csv", 2);   /* (1, 2, 2) images */
    double t[8];
    for (int i = 0; i < 8; i++) t[i] = i * 0.25;
    set_targets(&set, NN_F64, t, DIMS(4, 2), "data.csv", 2);
    nn_loss loss = loss_named("mse");
    bind_ok(&set, &loss, 2, false, "train");
    nn_error err = {0};
    ck_assert_int_eq(nn_dataset_split_tail(&set, 1, &tail, &err), 0);
    ck_assert_int_eq(set.count, 3);
    ck_assert_int_eq(tail.count, 1);
    ck_assert(tail.inputs_are_bytes);
    ck_assert_ptr_null(tail.floats);
    ck_assert_int_eq(tail.shape.rank, 3);
    ck_assert_uint_eq(tail.input_size, 4);
    ck_assert_mem_eq(tail.bytes, b + 12, 4);
    ck_assert_mem_eq(set.bytes, b, 12);
    ck_assert_int_eq(tail.value_width, 2);
    const float want[2] = {1.5f, 1.75f};
    assert_same_floats(tail.values, want, 2, "tail values");
    assert_where(&tail, false, 0, "data.csv:5");   /* line 2 + row 3 */
    assert_where(&tail, true, 0, "data.csv:5");
    nn_dataset_free(&tail);
    nn_dataset_free(&set);
}
END_TEST

START_TEST(split_tail_moves_raw_targets) {
    nn_dataset set, tail;
    make_rows(&set, 4, 1, 0);
    const double t[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    set_targets(&set, NN_F64, t, DIMS(4, 2), "t.npy", 0);
    nn_error err = {0};
    ck_assert_int_eq(nn_dataset_split_tail(&set, 3, &tail, &err), 0);
    ck_assert_int_eq(tail.target_width, 2);
    for (int i = 0; i < 6; i++) ck_assert(tail.raw_targets[i] == t[i + 2]);
    /* The tail binds on its own, and names its own rows. */
    nn_loss loss = loss_named("bce");
    bind_fails(&tail, &loss, 2, false, "test", PARTS("t.npy: item 1: test target 1 of 2 is 2"));
    nn_dataset_free(&tail);
    nn_dataset_free(&set);
}
END_TEST

START_TEST(split_tail_of_none_or_all) {
    nn_dataset set, tail;
    make_rows(&set, 3, 2, 3);
    nn_error err = {0};
    ck_assert_int_eq(nn_dataset_split_tail(&set, 0, &tail, &err), 0);
    ck_assert_int_eq(set.count, 3);
    ck_assert_int_eq(tail.count, 0);
    nn_dataset_free(&tail);

    ck_assert_int_eq(nn_dataset_split_tail(&set, 3, &tail, &err), 0);
    ck_assert_int_eq(set.count, 0);
    ck_assert_int_eq(tail.count, 3);
    const float x[6] = {0.5f, 1.5f, 10.5f, 11.5f, 20.5f, 21.5f};
    assert_same_floats(tail.floats, x, 6, "everything");
    for (int i = 0; i < 3; i++) ck_assert(tail.raw_targets[i] == i);
    assert_where(&tail, false, 0, "in.npy: item 0");
    nn_dataset_free(&tail);

    ck_assert_int_eq(nn_dataset_split_tail(&set, 1, &tail, &err), -1);   /* more than there is */
    ck_assert_int_eq(tail.count, 0);
    ck_assert_int_eq(nn_dataset_split_tail(&set, -1, &tail, &err), -1);
    nn_dataset_free(&set);
}
END_TEST

/* ---- permute ---- */

/* Fisher-Yates from the end, on the row numbers, with the split stream:
 * row k of the result is row rows[k] of the set. */
static void reference_order(uint64_t seed, int64_t count, uint32_t *rows) {
    for (int64_t i = 0; i < count; i++) rows[i] = (uint32_t)i;
    nn_rng rng;
    nn_rng_seed(&rng, seed ^ 0x5851f42d4c957f2dULL);
    for (int64_t i = count - 1; i >= 1; i--) {
        uint32_t j = nn_rng_below(&rng, (uint32_t)(i + 1));
        uint32_t t = rows[i];
        rows[i] = rows[j];
        rows[j] = t;
    }
}

enum { PERMUTED = 23 };

START_TEST(permute_keeps_each_row_with_its_target) {
    nn_dataset set;
    make_rows(&set, PERMUTED, 3, PERMUTED);   /* row r: label r */
    nn_loss loss = loss_named("cross_entropy");
    bind_ok(&set, &loss, PERMUTED, false, "train");
    nn_error err = {0};
    ck_assert_int_eq(nn_dataset_permute(&set, 7, &err), 0);
    ck_assert_int_eq(set.count, PERMUTED);
    bool seen[PERMUTED] = {false};
    int moved = 0;
    for (int k = 0; k < PERMUTED; k++) {
        int r = set.labels[k];
        ck_assert(r >= 0 && r < PERMUTED && !seen[r]);
        seen[r] = true;
        moved += r != k;
        for (int j = 0; j < 3; j++) ck_assert(set.floats[k * 3 + j] == (float)(r * 10 + j) + 0.5f);
    }
    ck_assert_int_gt(moved, 0);
    nn_dataset_free(&set);
}
END_TEST

START_TEST(permute_is_the_reference_fisher_yates) {
    const uint64_t seeds[] = {0, 1, 42, 0xdeadbeefULL, 0x5851f42d4c957f2dULL};
    for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++) {
        uint32_t rows[PERMUTED];
        reference_order(seeds[s], PERMUTED, rows);

        /* Bytes and one-hot values. */
        nn_dataset set;
        memset(&set, 0, sizeof set);
        uint8_t b[PERMUTED * 2];
        int64_t l[PERMUTED];
        for (int r = 0; r < PERMUTED; r++) {
            b[r * 2] = (uint8_t)r;
            b[r * 2 + 1] = (uint8_t)(200 - r);
            l[r] = r % 4;
        }
        set_inputs(&set, NN_U8, b, DIMS(PERMUTED, 2), "in.idx", 0);
        set_targets(&set, NN_I64, l, DIMS(PERMUTED), "lab.idx", 0);
        nn_loss mse = loss_named("mse");
        bind_ok(&set, &mse, 4, false, "train");
        nn_error err = {0};
        ck_assert_int_eq(nn_dataset_permute(&set, seeds[s], &err), 0);
        for (int k = 0; k < PERMUTED; k++) {
            uint32_t r = rows[k];
            ck_assert_msg(set.bytes[k * 2] == r && set.bytes[k * 2 + 1] == 200 - r, "seed %zu row %d", s, k);
            for (int j = 0; j < 4; j++) ck_assert(set.values[k * 4 + j] == (j == (int)(r % 4) ? 1.0f : 0.0f));
        }
        nn_dataset_free(&set);

        /* Floats and raw (unbound) targets. */
        make_rows(&set, PERMUTED, 2, 0);
        double t[PERMUTED * 3];
        for (int i = 0; i < PERMUTED * 3; i++) t[i] = i;
        set_targets(&set, NN_F64, t, DIMS(PERMUTED, 3), "t.npy", 0);
        ck_assert_int_eq(nn_dataset_permute(&set, seeds[s], &err), 0);
        for (int k = 0; k < PERMUTED; k++) {
            uint32_t r = rows[k];
            ck_assert(set.floats[k * 2] == (float)(r * 10) + 0.5f && set.floats[k * 2 + 1] == (float)(r * 10 + 1) + 0.5f);
            for (int j = 0; j < 3; j++) ck_assert(set.raw_targets[k * 3 + j] == r * 3 + j);
        }
        nn_dataset_free(&set);
    }
}
END_TEST

START_TEST(permute_depends_on_the_seed_only) {
    int32_t first[PERMUTED], again[PERMUTED], other[PERMUTED];
    int32_t *out[3] = {first, again, other};
    const uint64_t seeds[3] = {123, 123, 124};
    for (int i = 0; i < 3; i++) {
        nn_dataset set;
        make_rows(&set, PERMUTED, 1, PERMUTED);
        nn_loss loss = loss_named("cross_entropy");
        bind_ok(&set, &loss, PERMUTED, false, "train");
        nn_error err = {0};
        ck_assert_int_eq(nn_dataset_permute(&set, seeds[i], &err), 0);
        memcpy(out[i], set.labels, sizeof first);
        nn_dataset_free(&set);
    }
    ck_assert_mem_eq(first, again, sizeof first);
    ck_assert(memcmp(first, other, sizeof first) != 0);
}
END_TEST

START_TEST(permute_of_one_or_no_samples) {
    nn_dataset set, tail;
    make_rows(&set, 1, 2, 1);
    nn_error err = {0};
    ck_assert_int_eq(nn_dataset_permute(&set, 5, &err), 0);
    ck_assert(set.floats[0] == 0.5f && set.floats[1] == 1.5f && set.raw_targets[0] == 0);

    ck_assert_int_eq(nn_dataset_split_tail(&set, 1, &tail, &err), 0);
    ck_assert_int_eq(set.count, 0);
    ck_assert_int_eq(nn_dataset_permute(&set, 5, &err), 0);
    ck_assert_int_eq(set.count, 0);
    nn_dataset_free(&tail);
    nn_dataset_free(&set);
}
END_TEST

/* ---- nn_input_transform_from_lists ---- */

START_TEST(transform_from_one_value) {
    nn_input_transform t = {0};
    nn_error err = {0};
    const double mean = 0.1307, std = 0.3081;
    nn_shape shape = {3, {2, 2, 3}};
    ck_assert_int_eq(nn_input_transform_from_lists(&t, shape, &mean, &std, 1, &err), 0);
    ck_assert(t.normalize);
    ck_assert_uint_eq(t.size, 12);
    for (int i = 0; i < 12; i++) ck_assert(t.mean[i] == 0.1307f && t.std[i] == 0.3081f);
    nn_input_transform_free(&t);
    ck_assert_ptr_null(t.mean);
    ck_assert(!t.normalize);
}
END_TEST

START_TEST(transform_per_channel_and_per_value) {
    nn_input_transform t = {0};
    nn_error err = {0};
    const double mean[3] = {0.485, 0.456, 0.406}, std[3] = {0.229, 0.224, 0.225};
    nn_shape image = {3, {3, 2, 2}};
    ck_assert_int_eq(nn_input_transform_from_lists(&t, image, mean, std, 3, &err), 0);
    ck_assert_uint_eq(t.size, 12);
    for (int i = 0; i < 12; i++) {
        ck_assert_msg(t.mean[i] == (float)mean[i / 4] && t.std[i] == (float)std[i / 4], "value %d", i);
    }
    ck_assert(t.mean[3] == 0.485f && t.mean[4] == 0.456f && t.std[11] == 0.225f);
    nn_input_transform_free(&t);

    const double vm[4] = {1, -2, 0.5, 1e-3}, vs[4] = {2, 4, 0.25, 3};
    nn_shape features = {1, {4, 0, 0}};
    ck_assert_int_eq(nn_input_transform_from_lists(&t, features, vm, vs, 4, &err), 0);
    ck_assert_uint_eq(t.size, 4);
    for (int i = 0; i < 4; i++) ck_assert(t.mean[i] == (float)vm[i] && t.std[i] == (float)vs[i]);
    nn_input_transform_free(&t);

    /* One per value of an image. */
    double im[12], is[12];
    for (int i = 0; i < 12; i++) {
        im[i] = i * 0.125;
        is[i] = 1 + i;
    }
    ck_assert_int_eq(nn_input_transform_from_lists(&t, image, im, is, 12, &err), 0);
    for (int i = 0; i < 12; i++) ck_assert(t.mean[i] == (float)(i * 0.125) && t.std[i] == (float)(1 + i));
    nn_input_transform_free(&t);
}
END_TEST

START_TEST(transform_with_a_wrong_count_is_refused) {
    nn_input_transform t = {0};
    nn_error err = {0};
    const double mean[5] = {0}, std[5] = {1, 1, 1, 1, 1};
    nn_shape image = {3, {3, 2, 2}};
    ck_assert_int_eq(nn_input_transform_from_lists(&t, image, mean, std, 2, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    assert_contains(err.message, "data.normalize has 2 values");
    assert_contains(err.message, "(3, 2, 2)");
    assert_contains(err.message, "take 1, 3 (one per channel) or 12 (one per value)");
    ck_assert(!t.normalize);
    ck_assert_ptr_null(t.mean);

    nn_shape features = {1, {4, 0, 0}};
    err = (nn_error){0};
    ck_assert_int_eq(nn_input_transform_from_lists(&t, features, mean, std, 5, &err), -1);
    assert_contains(err.message, "data.normalize has 5 values, but inputs of shape (4,) take 1 or 4 (one per value)");
    ck_assert_int_eq(nn_input_transform_from_lists(&t, features, mean, std, 0, &err), -1);
    assert_contains(err.message, "has 0 values");
}
END_TEST

/* ---- nn_input_transform_fit ---- */

/* The statistics computed here: value (s, j) of a count x size table as
 * the model sees it, grouped by j / per, over samples [first, first +
 * count), population std, 0 -> 1. */
static void reference_stats(const double *x, size_t size, size_t groups, int64_t first, int64_t count, double *mean,
                            double *std) {
    size_t per = size / groups;
    for (size_t g = 0; g < groups; g++) {
        double sum = 0, n = 0;
        for (int64_t s = first; s < first + count; s++)
            for (size_t j = g * per; j < (g + 1) * per; j++) {
                sum += x[s * size + j];
                n++;
            }
        double m = sum / n, squares = 0;
        for (int64_t s = first; s < first + count; s++)
            for (size_t j = g * per; j < (g + 1) * per; j++) squares += (x[s * size + j] - m) * (x[s * size + j] - m);
        mean[g] = m;
        std[g] = sqrt(squares / n);
        if (std[g] == 0) std[g] = 1;
    }
}

START_TEST(fit_per_feature_over_the_given_samples) {
    /* Rows 0 and 5 lie outside the range [1, 5) and would change everything. */
    const float x[18] = {1000, -1000, 1e6,   1, 7, 0.5f,   2, 7, -1.5f,
                         3,    7,     2.25f, 4, 7, 6.75f,  -1000, 1000, -1e6};
    nn_dataset set;
    memset(&set, 0, sizeof set);
    set_inputs(&set, NN_F32, x, DIMS(6, 3), "in.npy", 0);
    nn_input_transform t = {0};
    nn_error err = {0};
    ck_assert_int_eq(nn_input_transform_fit(&t, &set, 1, 4, &err), 0);
    ck_assert(t.normalize);
    ck_assert_uint_eq(t.size, 3);
    /* By hand: {1, 2, 3, 4}: mean 2.5, variance 1.25 (ddof 0, not 5/3);
     * {7, 7, 7, 7}: constant, std 1; {0.5, -1.5, 2.25, 6.75}: mean 2,
     * squared deviations 2.25 + 12.25 + 0.0625 + 22.5625 = 37.125. */
    ck_assert(t.mean[0] == 2.5f && t.std[0] == (float)sqrt(1.25));
    ck_assert(t.mean[1] == 7.0f && t.std[1] == 1.0f);
    ck_assert(t.mean[2] == 2.0f && t.std[2] == (float)sqrt(37.125 / 4));
    double xd[18], mean[3], std[3];
    for (int i = 0; i < 18; i++) xd[i] = x[i];
    reference_stats(xd, 3, 3, 1, 4, mean, std);
    for (int j = 0; j < 3; j++) ck_assert(t.mean[j] == (float)mean[j] && t.std[j] == (float)std[j]);

    /* Over all six rows the numbers differ. */
    nn_input_transform all = {0};
    ck_assert_int_eq(nn_input_transform_fit(&all, &set, 0, 6, &err), 0);
    reference_stats(xd, 3, 3, 0, 6, mean, std);
    for (int j = 0; j < 3; j++) {
        ck_assert(fabs(all.mean[j] - mean[j]) <= 1e-6 * fabs(mean[j]) + 1e-6);
        ck_assert(fabs(all.std[j] - std[j]) <= 1e-6 * std[j]);
        ck_assert(all.std[j] != t.std[j]);
    }
    nn_input_transform_free(&all);
    nn_input_transform_free(&t);

    ck_assert_int_eq(nn_input_transform_fit(&t, &set, 0, 0, &err), -1);
    assert_contains(err.message, "needs training samples");
    nn_dataset_free(&set);
}
END_TEST

START_TEST(fit_per_channel_for_images) {
    /* (N=3, C=3, H=1, W=2); samples 0 and 1 are measured, sample 2 not. */
    const float x[18] = {1, 3,   0.25f, 0.25f,  -2, 0,
                         5, 7,   0.25f, 0.25f,  0, 6,
                         99, -99, 50, 50,       1e3f, 1e3f};
    nn_dataset set;
    memset(&set, 0, sizeof set);
    set_inputs(&set, NN_F32, x, DIMS(3, 3, 1, 2), "in.npy", 0);
    nn_input_transform t = {0};
    nn_error err = {0};
    ck_assert_int_eq(nn_input_transform_fit(&t, &set, 0, 2, &err), 0);
    ck_assert_uint_eq(t.size, 6);
    /* Channel 0 {1, 3, 5, 7}: mean 4, variance 20 / 4; channel 1 constant;
     * channel 2 {-2, 0, 0, 6}: mean 1, variance 36 / 4. */
    const float mean[6] = {4, 4, 0.25f, 0.25f, 1, 1};
    const float std[6] = {(float)sqrt(5.0), (float)sqrt(5.0), 1, 1, 3, 3};
    assert_same_floats(t.mean, mean, 6, "channel means");
    assert_same_floats(t.std, std, 6, "channel stds");
    double xd[18], rm[3], rs[3];
    for (int i = 0; i < 18; i++) xd[i] = x[i];
    reference_stats(xd, 6, 3, 0, 2, rm, rs);
    for (int j = 0; j < 6; j++) ck_assert(t.mean[j] == (float)rm[j / 2] && t.std[j] == (float)rs[j / 2]);
    nn_input_transform_free(&t);

    /* Samples [1, 3) instead. */
    ck_assert_int_eq(nn_input_transform_fit(&t, &set, 1, 2, &err), 0);
    reference_stats(xd, 6, 3, 1, 2, rm, rs);
    for (int j = 0; j < 6; j++)
        ck_assert_msg(t.mean[j] == (float)rm[j / 2] && t.std[j] == (float)rs[j / 2], "value %d: %.9g %.9g", j,
                      (double)t.mean[j], (double)t.std[j]);
    nn_input_transform_free(&t);
    nn_dataset_free(&set);
}
END_TEST

START_TEST(fit_measures_bytes_after_dividing_by_255) {
    /* (N=5, F=3); sample 4 is not measured. */
    const uint8_t b[15] = {0, 51, 9,   255, 102, 9,   0, 153, 9,   255, 204, 9,   17, 0, 255};
    nn_dataset set;
    memset(&set, 0, sizeof set);
    set_inputs(&set, NN_U8, b, DIMS(5, 3), "in.idx", 0);
    nn_input_transform t = {0};
    nn_error err = {0};
    ck_assert_int_eq(nn_input_transform_fit(&t, &set, 0, 4, &err), 0);
    ck_assert(t.mean[0] == 0.5f && t.std[0] == 0.5f);   /* {0, 1, 0, 1} */
    ck_assert(t.mean[2] == 9.0f / 255.0f && t.std[2] == 1.0f);   /* constant */
    double xd[15], mean[3], std[3];
    for (int i = 0; i < 15; i++) xd[i] = (float)b[i] / 255.0f;
    reference_stats(xd, 3, 3, 0, 4, mean, std);
    for (int j = 0; j < 3; j++) {
        ck_assert_msg(fabs(t.mean[j] - mean[j]) <= FLT_EPSILON * fabs(mean[j]), "mean %d: %.9g vs %.9g", j,
                      (double)t.mean[j], mean[j]);
        ck_assert_msg(fabs(t.std[j] - std[j]) <= FLT_EPSILON * std[j], "std %d: %.9g vs %.9g", j, (double)t.std[j],
                      std[j]);
    }
    /* {0.2, 0.4, 0.6, 0.8}: mean 0.5, std sqrt(0.05). */
    ck_assert(fabs(t.mean[1] - 0.5) < 1e-7 && fabs(t.std[1] - sqrt(0.05)) < 1e-7);
    nn_input_transform_free(&t);
    nn_dataset_free(&set);

    /* (N, H, W) bytes: one channel, every value of the image together. */
    const uint8_t img[12] = {0, 255, 0, 255,   255, 0, 255, 0,   1, 2, 3, 4};
    set_inputs(&set, NN_U8, img, DIMS(3, 2, 2), "img.idx", 0);
    ck_assert_int_eq(nn_input_transform_fit(&t, &set, 0, 2, &err), 0);
    ck_assert_uint_eq(t.size, 4);
    for (int j = 0; j < 4; j++) ck_assert(t.mean[j] == 0.5f && t.std[j] == 0.5f);
    nn_input_transform_free(&t);
    nn_dataset_free(&set);
}
END_TEST

/* ---- gather_inputs ---- */

enum { GATHER_N = 6, GATHER_F = 13 };   /* 13: not a multiple of any vector width */

static void gather_bytes_set(nn_dataset *set) {
    memset(set, 0, sizeof *set);
    uint8_t b[GATHER_N * GATHER_F];
    for (int i = 0; i < GATHER_N * GATHER_F; i++) b[i] = (uint8_t)((i * 37 + 5) % 256);
    b[0] = 0;
    b[1] = 255;
    set_inputs(set, NN_U8, b, DIMS(GATHER_N, GATHER_F), "in.idx", 0);
}

static void gather_floats_set(nn_dataset *set) {
    memset(set, 0, sizeof *set);
    float x[GATHER_N * GATHER_F];
    for (int i = 0; i < GATHER_N * GATHER_F; i++) x[i] = (float)sin(i * 0.7) * 3.0f + 0.1f;
    set_inputs(set, NN_F32, x, DIMS(GATHER_N, GATHER_F), "in.npy", 0);
}

static void gather_transform(nn_input_transform *t, double *mean, double *std) {
    for (int j = 0; j < GATHER_F; j++) {
        mean[j] = 0.1307 + 0.037 * j;
        std[j] = 0.3081 + 0.11 * j;
    }
    nn_error err = {0};
    memset(t, 0, sizeof *t);
    nn_shape shape = {1, {GATHER_F, 0, 0}};
    ck_assert_int_eq(nn_input_transform_from_lists(t, shape, mean, std, GATHER_F, &err), 0);
}

START_TEST(gather_bytes_with_and_without_transform) {
    nn_dataset set;
    gather_bytes_set(&set);
    nn_input_transform t;
    double mean[GATHER_F], std[GATHER_F];
    gather_transform(&t, mean, std);
    const uint32_t order[GATHER_N] = {4, 0, 5, 2, 1, 3};
    float got[3 * GATHER_F], want[3 * GATHER_F];

    /* Plain, samples 2..4. */
    nn_dataset_gather_inputs(&set, NULL, NULL, 2, 3, got);
    for (int b = 0; b < 3; b++)
        for (int j = 0; j < GATHER_F; j++) want[b * GATHER_F + j] = (float)set.bytes[(2 + b) * GATHER_F + j] / 255.0f;
    assert_same_floats(got, want, 3 * GATHER_F, "bytes");
    ck_assert(got[0] != 0 || got[1] != 0);

    /* Normalised, by order from position 1: samples 0, 5, 2. */
    nn_dataset_gather_inputs(&set, &t, order, 1, 3, got);
    for (int b = 0; b < 3; b++)
        for (int j = 0; j < GATHER_F; j++) {
            uint8_t v = set.bytes[order[1 + b] * GATHER_F + j];
            want[b * GATHER_F + j] = ((float)v / 255.0f - (float)mean[j]) / (float)std[j];
        }
    assert_same_floats(got, want, 3 * GATHER_F, "normalised bytes");

    /* Sample 0's first two values, 0 and 255, by hand. */
    nn_dataset_gather_inputs(&set, &t, NULL, 0, 1, got);
    ck_assert(got[0] == (0.0f - 0.1307f) / 0.3081f);
    ck_assert(got[1] == (1.0f - (float)(0.1307 + 0.037)) / (float)(0.3081 + 0.11));

    /* A transform that does not normalise is none. */
    nn_input_transform off = {.normalize = false, .size = GATHER_F};
    nn_dataset_gather_inputs(&set, &off, order, 0, 2, got);
    for (int b = 0; b < 2; b++)
        for (int j = 0; j < GATHER_F; j++)
            want[b * GATHER_F + j] = (float)set.bytes[order[b] * GATHER_F + j] / 255.0f;
    assert_same_floats(got, want, 2 * GATHER_F, "bytes, normalize off");
    nn_input_transform_free(&t);
    nn_dataset_free(&set);
}
END_TEST

START_TEST(gather_floats_with_and_without_transform) {
    nn_dataset set;
    gather_floats_set(&set);
    nn_input_transform t;
    double mean[GATHER_F], std[GATHER_F];
    gather_transform(&t, mean, std);
    const uint32_t order[GATHER_N] = {5, 3, 1, 0, 2, 4};
    float got[GATHER_N * GATHER_F], want[GATHER_N * GATHER_F];

    nn_dataset_gather_inputs(&set, NULL, order, 2, 4, got);
    for (int b = 0; b < 4; b++)
        memcpy(want + b * GATHER_F, set.floats + order[2 + b] * GATHER_F, GATHER_F * sizeof *want);
    assert_same_floats(got, want, 4 * GATHER_F, "floats by order");

    nn_dataset_gather_inputs(&set, &t, NULL, 0, GATHER_N, got);
    for (int i = 0; i < GATHER_N * GATHER_F; i++)
        want[i] = (set.floats[i] - (float)mean[i % GATHER_F]) / (float)std[i % GATHER_F];
    assert_same_floats(got, want, GATHER_N * GATHER_F, "normalised floats");

    nn_dataset_gather_inputs(&set, &t, order, 5, 1, got);   /* the last position: sample 4 */
    for (int j = 0; j < GATHER_F; j++)
        want[j] = (set.floats[4 * GATHER_F + j] - (float)mean[j]) / (float)std[j];
    assert_same_floats(got, want, GATHER_F, "normalised floats, last");
    nn_input_transform_free(&t);
    nn_dataset_free(&set);
}
END_TEST

START_TEST(gather_images_per_channel) {
    nn_dataset set;
    memset(&set, 0, sizeof set);
    uint8_t b[2 * 3 * 2 * 3];
    for (int i = 0; i < 36; i++) b[i] = (uint8_t)(i * 7);
    set_inputs(&set, NN_U8, b, DIMS(2, 3, 2, 3), "img.npy", 0);
    const double mean[3] = {0.485, 0.456, 0.406}, std[3] = {0.229, 0.224, 0.225};
    nn_input_transform t = {0};
    nn_error err = {0};
    ck_assert_int_eq(nn_input_transform_from_lists(&t, set.shape, mean, std, 3, &err), 0);
    float got[36], want[36];
    const uint32_t order[2] = {1, 0};
    nn_dataset_gather_inputs(&set, &t, order, 0, 2, got);
    for (int s = 0; s < 2; s++)
        for (int j = 0; j < 18; j++)
            want[s * 18 + j] = ((float)b[order[s] * 18 + j] / 255.0f - (float)mean[j / 6]) / (float)std[j / 6];
    assert_same_floats(got, want, 36, "images");
    nn_input_transform_free(&t);
    nn_dataset_free(&set);
}
END_TEST

/* ---- gather_targets ---- */

START_TEST(gather_labels_and_values_by_order) {
    const uint32_t order[5] = {3, 1, 4, 0, 2};
    nn_dataset set;
    make_rows(&set, 5, 2, 0);
    const int64_t l[5] = {10, 11, 12, 13, 14};
    set_targets(&set, NN_I64, l, DIMS(5), "lab.npy", 0);
    nn_loss ce = loss_named("cross_entropy");
    bind_ok(&set, &ce, 15, false, "train");
    int32_t labels[5] = {-1, -1, -1, -1, -1};
    float values[4] = {0};
    nn_targets targets = nn_dataset_gather_targets(&set, order, 1, 3, labels, values);
    ck_assert_ptr_eq(targets.labels, labels);
    ck_assert_ptr_null(targets.values);
    ck_assert_int_eq(labels[0], 11);
    ck_assert_int_eq(labels[1], 14);
    ck_assert_int_eq(labels[2], 10);
    ck_assert_int_eq(labels[3], -1);   /* only count written */
    targets = nn_dataset_gather_targets(&set, NULL, 3, 2, labels, values);
    ck_assert_int_eq(labels[0], 13);
    ck_assert_int_eq(labels[1], 14);
    nn_dataset_free(&set);

    make_rows(&set, 5, 2, 0);
    double t[10];
    for (int i = 0; i < 10; i++) t[i] = i * 0.5;
    set_targets(&set, NN_F64, t, DIMS(5, 2), "t.npy", 0);
    nn_loss mse = loss_named("mse");
    bind_ok(&set, &mse, 2, false, "train");
    float rows[6];
    targets = nn_dataset_gather_targets(&set, order, 2, 3, labels, rows);
    ck_assert_ptr_null(targets.labels);
    ck_assert_ptr_eq(targets.values, rows);
    const float want[6] = {4.0f, 4.5f, 0.0f, 0.5f, 2.0f, 2.5f};   /* samples 4, 0, 2 */
    assert_same_floats(rows, want, 6, "values by order");
    targets = nn_dataset_gather_targets(&set, NULL, 0, 2, labels, rows);
    const float first[4] = {0.0f, 0.5f, 1.0f, 1.5f};
    assert_same_floats(rows, first, 4, "values");
    nn_dataset_free(&set);
}
END_TEST

START_TEST(gather_targets_of_input_targets_are_the_raw_inputs) {
    const uint32_t order[GATHER_N] = {2, 5, 0, 1, 4, 3};
    nn_dataset set;
    gather_bytes_set(&set);
    nn_loss bce = loss_named("bce");
    bind_ok(&set, &bce, GATHER_F, true, "train");
    int32_t labels[4];
    float got[3 * GATHER_F], want[3 * GATHER_F];
    nn_targets targets = nn_dataset_gather_targets(&set, order, 1, 3, labels, got);
    ck_assert_ptr_null(targets.labels);
    ck_assert_ptr_eq(targets.values, got);
    for (int b = 0; b < 3; b++)
        for (int j = 0; j < GATHER_F; j++)
            want[b * GATHER_F + j] = (float)set.bytes[order[1 + b] * GATHER_F + j] / 255.0f;
    assert_same_floats(got, want, 3 * GATHER_F, "byte targets");
    nn_dataset_free(&set);

    gather_floats_set(&set);
    nn_loss mse = loss_named("mse");
    bind_ok(&set, &mse, GATHER_F, true, "train");
    targets = nn_dataset_gather_targets(&set, order, 3, 3, labels, got);
    ck_assert_ptr_eq(targets.values, got);
    for (int b = 0; b < 3; b++)
        memcpy(want + b * GATHER_F, set.floats + order[3 + b] * GATHER_F, GATHER_F * sizeof *want);
    assert_same_floats(got, want, 3 * GATHER_F, "float targets");

    /* The inputs of the same batch, normalised, are not the targets. */
    nn_input_transform t;
    double mean[GATHER_F], std[GATHER_F];
    gather_transform(&t, mean, std);
    float inputs[3 * GATHER_F];
    nn_dataset_gather_inputs(&set, &t, order, 3, 3, inputs);
    ck_assert(memcmp(inputs, got, sizeof inputs) != 0);
    nn_input_transform_free(&t);
    nn_dataset_free(&set);
}
END_TEST

int main(void) {
    Suite *suite = suite_create("dataset");

    TCase *tc = tcase_create("set_inputs");
    tcase_add_test(tc, input_shapes_follow_the_dims);
    tcase_add_test(tc, uint8_inputs_stay_bytes);
    tcase_add_loop_test(tc, other_dtypes_become_the_same_float32_values, 0,
                        (int)(sizeof dtype_cases / sizeof dtype_cases[0]));
    tcase_add_test(tc, nan_and_inf_inputs_name_the_item_and_value);
    tcase_add_test(tc, float64_beyond_float32_is_an_error);
    tcase_add_test(tc, zero_samples_is_an_error);
    suite_add_tcase(suite, tc);

    tc = tcase_create("set_targets");
    tcase_add_test(tc, target_width_is_the_product_of_the_dims);
    tcase_add_test(tc, target_count_mismatch_names_both_files);
    tcase_add_test(tc, nan_target_names_the_item);
    suite_add_tcase(suite, tc);

    tc = tcase_create("bind_classes");
    tcase_add_test(tc, class_labels_in_range_are_bound);
    tcase_add_test(tc, class_label_out_of_range_is_named);
    tcase_add_test(tc, fractional_label_is_not_a_class_index);
    tcase_add_test(tc, ignore_index_labels_pass);
    tcase_add_test(tc, class_loss_needs_one_target_per_sample);
    tcase_add_test(tc, text_file_messages_name_the_line);
    suite_add_tcase(suite, tc);

    tc = tcase_create("bind_values");
    tcase_add_test(tc, value_targets_are_copied_as_floats);
    tcase_add_test(tc, class_index_becomes_a_one_hot_row);
    tcase_add_test(tc, other_target_widths_name_both_numbers);
    tcase_add_test(tc, bce_target_range_is_checked);
    suite_add_tcase(suite, tc);

    tc = tcase_create("target_is_input");
    tcase_add_test(tc, target_is_input_needs_no_targets);
    tcase_add_test(tc, target_is_input_under_bce_needs_inputs_in_range);
    suite_add_tcase(suite, tc);

    tc = tcase_create("split_tail");
    tcase_add_test(tc, split_tail_moves_floats_and_labels);
    tcase_add_test(tc, split_tail_moves_bytes_and_values);
    tcase_add_test(tc, split_tail_moves_raw_targets);
    tcase_add_test(tc, split_tail_of_none_or_all);
    suite_add_tcase(suite, tc);

    tc = tcase_create("permute");
    tcase_add_test(tc, permute_keeps_each_row_with_its_target);
    tcase_add_test(tc, permute_is_the_reference_fisher_yates);
    tcase_add_test(tc, permute_depends_on_the_seed_only);
    tcase_add_test(tc, permute_of_one_or_no_samples);
    suite_add_tcase(suite, tc);

    tc = tcase_create("transform_from_lists");
    tcase_add_test(tc, transform_from_one_value);
    tcase_add_test(tc, transform_per_channel_and_per_value);
    tcase_add_test(tc, transform_with_a_wrong_count_is_refused);
    suite_add_tcase(suite, tc);

    tc = tcase_create("transform_fit");
    tcase_add_test(tc, fit_per_feature_over_the_given_samples);
    tcase_add_test(tc, fit_per_channel_for_images);
    tcase_add_test(tc, fit_measures_bytes_after_dividing_by_255);
    suite_add_tcase(suite, tc);

    tc = tcase_create("gather");
    tcase_add_test(tc, gather_bytes_with_and_without_transform);
    tcase_add_test(tc, gather_floats_with_and_without_transform);
    tcase_add_test(tc, gather_images_per_channel);
    tcase_add_test(tc, gather_labels_and_values_by_order);
    tcase_add_test(tc, gather_targets_of_input_targets_are_the_raw_inputs);
    suite_add_tcase(suite, tc);

    return testutil_run(suite);
}
