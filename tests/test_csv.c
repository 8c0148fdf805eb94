/* The CSV reader: the number parser against strtod in the C locale (and
 * against the compiler's own rounding of literals), every selector form
 * and option, raw and gzip files, whole reads and streams (files and
 * stdin), and every kind of bad input with its message. Files are written
 * here, by printf and zlib, into a temporary folder. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "data/csv.h"
#include "testutil.h"

/* One directory for the whole program, made and removed by the parent
 * process (unchecked fixture), so it goes even when a test fails. */
static char tmpdir[256];

static void make_tmpdir(void) { ck_assert_ptr_nonnull(testutil_tmpdir(tmpdir, sizeof tmpdir)); }

static void remove_tmpdir(void) { testutil_remove_tmpdir(tmpdir); }

static const char *temp_path(char *buffer, size_t size, const char *name) {
    return testutil_path(buffer, size, tmpdir, name);
}

static void write_bytes(const char *path, const char *bytes, size_t size, bool gzip) {
    if (!gzip) {
        ck_assert_int_eq(testutil_write_file(path, bytes, size), 0);
        return;
    }
    gzFile file = gzopen(path, "wb");
    ck_assert_ptr_nonnull(file);
    if (size) ck_assert_int_eq(gzwrite(file, bytes, (unsigned)size), (int)size);
    ck_assert_int_eq(gzclose(file), Z_OK);
}

/* Writes text into the temporary folder under name (".gz" added for gzip). */
static const char *write_text(char *path, size_t size, const char *name, const char *text, bool gzip) {
    char file_name[128];
    snprintf(file_name, sizeof file_name, "%s%s", name, gzip ? ".gz" : "");
    temp_path(path, size, file_name);
    write_bytes(path, text, strlen(text), gzip);
    return path;
}

static size_t read_file(const char *path, char *buffer, size_t capacity) {
    FILE *file = fopen(path, "rb");
    ck_assert_ptr_nonnull(file);
    size_t size = fread(buffer, 1, capacity, file);
    fclose(file);
    return size;
}

/* Selector lists as one string, items separated by ';' (NULL: not given). */
static void add_list(nn_csv_columns *columns, const char *list) {
    if (!list) return;
    char copy[256];
    snprintf(copy, sizeof copy, "%s", list);
    char *rest = copy, *item;
    while ((item = strtok_r(rest, ";", &rest))) {
        nn_error err = {0};
        ck_assert_msg(nn_csv_columns_add(columns, item, &err) == 0, "%s: %s", item, err.message);
    }
}

static nn_csv_options make_options(char delimiter, int skip_rows, bool header, const char *features,
                                   const char *target) {
    nn_csv_options options = {.delimiter = delimiter, .skip_rows = skip_rows, .header = header};
    add_list(&options.features, features);
    add_list(&options.target, target);
    return options;
}

static void free_options(nn_csv_options *options) {
    nn_csv_columns_free(&options->features);
    nn_csv_columns_free(&options->target);
}

static void assert_input_error(const nn_error *err, const char *path, const char *expected) {
    ck_assert_int_eq(err->status, NN_ERR_INPUT);
    ck_assert_msg(strncmp(err->message, path, strlen(path)) == 0, "no path first: %s", err->message);
    ck_assert_msg(strstr(err->message, expected), "'%s' not in: %s", expected, err->message);
}

/* Bit for bit, so that -0.0 and 0.0 differ. */
static void assert_same_double(double got, double expected, const char *text) {
    ck_assert_msg(memcmp(&got, &expected, sizeof got) == 0, "'%s': got %.17g (%a), expected %.17g (%a)", text, got,
                  got, expected, expected);
}

static void assert_array(const nn_array *array, int64_t rows, int64_t width, const double *expected) {
    ck_assert_int_eq(array->dtype, NN_F64);
    ck_assert_int_eq(array->rank, 2);
    ck_assert_int_eq(array->dims[0], rows);
    ck_assert_int_eq(array->dims[1], width);
    const double *data = array->data;
    for (int64_t i = 0; i < rows * width; i++)
        ck_assert_msg(data[i] == expected[i], "value %lld (row %lld, column %lld): got %.17g, expected %.17g",
                      (long long)i, (long long)(i / width), (long long)(i % width), data[i], expected[i]);
}

/* Reads path and checks that it worked; the caller frees the data. */
static void read_ok(const char *path, const nn_csv_options *options, bool require_targets, nn_array *features,
                    nn_array *targets, int64_t *first_line) {
    nn_error err = {0};
    ck_assert_msg(nn_csv_read(path, options, require_targets, features, targets, first_line, &err) == 0, "%s",
                  err.message);
}

/* xorshift64*: the same numbers on every run and machine. */
typedef struct test_rng {
    uint64_t state;
} test_rng;

static uint64_t next_random(test_rng *rng) {
    rng->state ^= rng->state >> 12;
    rng->state ^= rng->state << 25;
    rng->state ^= rng->state >> 27;
    return rng->state * UINT64_C(2685821657736338717);
}

static int random_below(test_rng *rng, int n) { return (int)(next_random(rng) % (uint64_t)n); }

/* ================= numbers ================= */

static double reference(const char *text, bool *finite) {
    char *end;
    double value = strtod(text, &end);
    ck_assert_msg(*end == '\0', "strtod stopped early in '%s'", text);
    *finite = !isinf(value);
    return value;
}

/* Our parse against strtod in the C locale: the same double, or an error
 * where strtod overflows. */
static void assert_matches_strtod(const char *text) {
    bool finite;
    double expected = reference(text, &finite), value = 12345;
    int status = nn_csv_parse_number(text, strlen(text), &value);
    if (!finite) {
        ck_assert_msg(status == -1, "'%s' overflows but parsed as %.17g", text, value);
        return;
    }
    ck_assert_msg(status == 0, "'%s' refused", text);
    assert_same_double(value, expected, text);
}

/* Literals are rounded by the compiler, a reference independent of the
 * C library. */
START_TEST(number_hand_picked) {
    static const struct {
        const char *text;
        double value;
    } cases[] = {
        {"0.1", 0.1},
        {"2.2250738585072011e-308", 2.2250738585072011e-308},
        {"2.2250738585072012e-308", 2.2250738585072012e-308},
        {"9007199254740993", 9007199254740993.0},
        {"9007199254740995", 9007199254740995.0},
        {"1e23", 1e23},
        {"8.98846567431158e307", 8.98846567431158e307},
        {"1.7976931348623157e308", 1.7976931348623157e308},
        {"1.7976931348623158e308", 1.7976931348623158e308},
        {"4.9406564584124654e-324", 4.9406564584124654e-324},
        {"2.4703282292062328e-324", 4.9406564584124654e-324},
        {"2.4703282292062327e-324", 0.0},
        {"1e-400", 0.0},
        {"5e-324", 5e-324},
        {"0.30000000000000004", 0.30000000000000004},
        {"123456789012345678901234567890", 123456789012345678901234567890.0},
        {"3.141592653589793238462643383279502884197", 3.141592653589793238462643383279502884197},
        {"1.00000000000000011102230246251565404236316680908203125", 1.0}, /* halfway: to even */
        {"1.00000000000000011102230246251565404236316680908203124", 1.0},
        {"1.00000000000000011102230246251565404236316680908203126", 1.0000000000000002},
        {".5", 0.5},
        {"5.", 5.0},
        {"+.5e-3", 0.0005},
        {"-5.E2", -500.0},
        {"007", 7.0},
        {"0.000123456789012345678", 0.000123456789012345678},
        {"1E5", 1e5},
        {"1e+5", 1e5},
        {"12e-1", 1.2},
        {"1e22", 1e22},
        {"1e-22", 1e-22},
        {"123e20", 123e20},
        {"4503599627370496.5", 4503599627370496.5},
        {"0e999999999999999999999999", 0.0},
        {"1e-99999999999999999999999", 0.0},
        {"255", 255.0},
        {"0", 0.0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double value = -1;
        ck_assert_msg(nn_csv_parse_number(cases[i].text, strlen(cases[i].text), &value) == 0, "'%s' refused",
                      cases[i].text);
        assert_same_double(value, cases[i].value, cases[i].text);
        assert_matches_strtod(cases[i].text);
    }
    double value;
    ck_assert_int_eq(nn_csv_parse_number("-0", 2, &value), 0);
    ck_assert(value == 0 && signbit(value));
    ck_assert_int_eq(nn_csv_parse_number("-0.0e5", 6, &value), 0);
    ck_assert(value == 0 && signbit(value));
    /* Only the given length is read: "1.5" out of "1.5xyz". */
    ck_assert_int_eq(nn_csv_parse_number("1.5xyz", 3, &value), 0);
    ck_assert(value == 1.5);
}
END_TEST

START_TEST(number_rejects) {
    static const char *const bad[] = {
        "", "+", "-", ".", "+.", "-.", "e5", ".e5", "1e", "1e+", "1e-", "1E", "0x10", "0X1p3", "0x1.8p1",
        "nan", "NaN", "-nan", "nan(123)", "inf", "-inf", "+Inf", "Infinity", "-INFINITY", "1.2.3", " 1", "1 ",
        "1,5", "++1", "--1", "+-1", "1e5.5", "1e5e5", "1_000", "1d5", "0b1", "1..", "..1", "\xd9\xa1", "1e309",
        "-1e309", "1.7976931348623159e308", "1e99999999999999999999",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double value = 42;
        ck_assert_msg(nn_csv_parse_number(bad[i], strlen(bad[i]), &value) == -1, "'%s' accepted as %.17g", bad[i],
                      value);
        ck_assert_msg(value == 42, "'%s' wrote the value despite failing", bad[i]);
    }
    double value;
    ck_assert_int_eq(nn_csv_parse_number("1\0", 2, &value), -1);
}
END_TEST

/* Numbers far longer than the 800 digits the slow path keeps. */
START_TEST(number_long_digits) {
    char text[4096];
    /* 0.000...0001 with 1200 zeros: 1e-1201 is zero; with 300: 1e-301. */
    for (int zeros = 300; zeros <= 1200; zeros += 900) {
        size_t n = (size_t)snprintf(text, sizeof text, "0.");
        for (int i = 0; i < zeros; i++) text[n++] = '0';
        text[n++] = '1';
        text[n] = '\0';
        assert_matches_strtod(text);
    }
    /* 2000 nines: rounds up to 1e2000 and overflows; then the same times 1e-1990. */
    size_t n = 0;
    for (int i = 0; i < 2000; i++) text[n++] = '9';
    text[n] = '\0';
    double value;
    ck_assert_int_eq(nn_csv_parse_number(text, n, &value), -1);
    snprintf(text + n, sizeof text - n, "e-1990");
    assert_matches_strtod(text);
    /* 1 followed by 1000 zeros and a 1, times 1e-1000: just above 1. */
    n = 0;
    text[n++] = '1';
    for (int i = 0; i < 1000; i++) text[n++] = '0';
    text[n++] = '1';
    snprintf(text + n, sizeof text - n, "e-1001");
    assert_matches_strtod(text);
    /* Halfway between 1 and the next double, then a nonzero digit 900
     * digits further: rounds up only because of that digit. */
    n = (size_t)snprintf(text, sizeof text, "1.00000000000000011102230246251565404236316680908203125");
    for (int i = 0; i < 900; i++) text[n++] = '0';
    text[n++] = '1';
    text[n] = '\0';
    ck_assert_int_eq(nn_csv_parse_number(text, n, &value), 0);
    assert_same_double(value, 1.0000000000000002, "halfway + 1e-960");
    text[n - 1] = '0';
    ck_assert_int_eq(nn_csv_parse_number(text, n, &value), 0);
    assert_same_double(value, 1.0, "halfway exactly, long");
}
END_TEST

/* Random decimals: various digit counts, points, leading zeros, signs and
 * exponents (none, small, around the limits of double). */
static void random_decimal(test_rng *rng, int max_digits, int min_exponent, int max_exponent, char *out,
                           size_t size) {
    size_t n = 0;
    int sign = random_below(rng, 4);
    if (sign == 1) out[n++] = '-';
    if (sign == 2) out[n++] = '+';
    int zeros = random_below(rng, 5) == 0 ? random_below(rng, 30) : 0;
    int digits = 1 + random_below(rng, max_digits);
    int point = random_below(rng, 3) == 0 ? -1 : random_below(rng, digits + 1);
    for (int i = 0; i < zeros; i++) out[n++] = '0';
    for (int i = 0; i < digits && n + 40 < size; i++) {
        if (i == point) out[n++] = '.';
        out[n++] = (char)('0' + random_below(rng, 10));
    }
    if (point == digits) out[n++] = '.';
    if (random_below(rng, 4) != 0) {
        out[n++] = random_below(rng, 2) ? 'e' : 'E';
        int exponent = min_exponent + random_below(rng, max_exponent - min_exponent + 1);
        if (exponent >= 0 && random_below(rng, 2)) out[n++] = '+';
        n += (size_t)snprintf(out + n, size - n, "%d", exponent);
    }
    out[n] = '\0';
}

static double random_double(test_rng *rng) {
    double value;
    do {
        uint64_t bits = next_random(rng);
        memcpy(&value, &bits, sizeof value);
    } while (!isfinite(value));
    return value;
}

#define RANDOM_CASES 20000

/* _i picks the kind: 0 short (the fast path), 1 up to 25 digits with any
 * exponent, 2 long with leading zeros, 3 doubles printed at every
 * precision (subnormals included), 4 near overflow and underflow, 5
 * midpoints between two doubles written out exactly, and those followed
 * by a far nonzero digit. */
START_TEST(number_matches_strtod) {
    test_rng rng = {UINT64_C(0x9E3779B97F4A7C15) + (uint64_t)_i * 7919};
    char text[2048];
    for (int c = 0; c < RANDOM_CASES; c++) {
        switch (_i) {
        case 0: random_decimal(&rng, 19, -30, 30, text, sizeof text); break;
        case 1: random_decimal(&rng, 25, -350, 330, text, sizeof text); break;
        case 2: random_decimal(&rng, 60, -420, 420, text, sizeof text); break;
        case 3: {
            double value = random_double(&rng);
            int precision = random_below(&rng, 18);
            if (random_below(&rng, 2))
                snprintf(text, sizeof text, "%.*e", precision, value);
            else
                snprintf(text, sizeof text, "%.*g", precision + 1, value);
            break;
        }
        case 4: {
            int digits = 1 + random_below(&rng, 20);
            bool high = random_below(&rng, 2);
            random_decimal(&rng, digits, high ? 290 : -345, high ? 310 : -300, text, sizeof text);
            break;
        }
        default: {
#if LDBL_MANT_DIG >= 64
            /* The midpoint has 54 significant bits: exact in x87's long
             * double, and printed exactly by glibc's printf. */
            double low = fabs(random_double(&rng)), high = nextafter(low, INFINITY);
            if (isinf(high)) continue;
            long double middle = ((long double)low + (long double)high) / 2;
            int n = snprintf(text, sizeof text, "%.780Le", middle);
            if (c % 2) {
                char *e = strchr(text, 'e');
                char exponent[16];
                snprintf(exponent, sizeof exponent, "%s", e);
                n = (int)(e - text);
                for (int i = 0; i < 40; i++) text[n++] = '0';
                text[n++] = '1';
                snprintf(text + n, sizeof text - (size_t)n, "%s", exponent);
            }
#else
            random_decimal(&rng, 800, -330, 310, text, sizeof text);
#endif
            break;
        }
        }
        assert_matches_strtod(text);
    }
}
END_TEST

/* In a locale whose decimal point is a comma the parser still reads '.'
 * (and the slow path still rounds right): runs where such a locale is
 * installed (LOCPATH may point at one built by localedef), else checks
 * nothing. */
START_TEST(number_ignores_locale) {
    static const char *const texts[] = {"1.5", "0.1", "2.2250738585072011e-308",
                                        "3.141592653589793238462643383279502884197", "1e-320", "123e-400"};
    double expected[6];
    bool finite;
    for (int i = 0; i < 6; i++) expected[i] = reference(texts[i], &finite);
    static const char *const locales[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "ru_RU.UTF-8"};
    bool found = false;
    for (int i = 0; i < 4 && !found; i++) found = setlocale(LC_ALL, locales[i]) != NULL;
    if (!found) return;
    ck_assert_str_eq(localeconv()->decimal_point, ",");
    for (int i = 0; i < 6; i++) {
        double value;
        ck_assert_int_eq(nn_csv_parse_number(texts[i], strlen(texts[i]), &value), 0);
        assert_same_double(value, expected[i], texts[i]);
    }
    double value;
    ck_assert_int_eq(nn_csv_parse_number("1,5", 3, &value), -1);

    char path[512];
    write_text(path, sizeof path, "locale.csv", "x;y\n1.5;2.25\n-0.125;3.141592653589793238462643383279502884197\n",
               false);
    nn_csv_options options = make_options(';', 0, true, NULL, "y");
    nn_array features, targets;
    read_ok(path, &options, true, &features, &targets, NULL);
    const double x[] = {1.5, -0.125}, y[] = {2.25, 3.141592653589793238462643383279502884197};
    assert_array(&features, 2, 1, x);
    assert_array(&targets, 2, 1, y);
    free(features.data);
    free(targets.data);
    free_options(&options);
    setlocale(LC_ALL, "C");
}
END_TEST

/* ================= selectors ================= */

START_TEST(selectors_parse_every_form) {
    nn_csv_columns columns = {0};
    nn_error err = {0};
    static const struct {
        const char *text, *first, *last;
    } forms[] = {
        {"3", "3", NULL},
        {"-1", "-1", NULL},
        {"species", "species", NULL},
        {"sepal length", "sepal length", NULL},
        {" 0 : 29 ", "0", "29"},
        {"sepal_length:petal_width", "sepal_length", "petal_width"},
        {"2:-1", "2", "-1"},
        {"-3:-2", "-3", "-2"},
        {"-3:2", "-3", "2"}, /* checked against the column count when the file is read */
        {"a:3", "a", "3"},
    };
    int count = (int)(sizeof forms / sizeof forms[0]);
    for (int i = 0; i < count; i++)
        ck_assert_msg(nn_csv_columns_add(&columns, forms[i].text, &err) == 0, "%s", err.message);
    ck_assert_int_eq(columns.count, count);
    for (int i = 0; i < count; i++) {
        ck_assert_str_eq(columns.items[i].first, forms[i].first);
        ck_assert_int_eq(columns.items[i].is_range, forms[i].last != NULL);
        if (forms[i].last)
            ck_assert_str_eq(columns.items[i].last, forms[i].last);
        else
            ck_assert_ptr_null(columns.items[i].last);
    }
    nn_csv_columns_free(&columns);
    ck_assert_int_eq(columns.count, 0);
    nn_csv_columns_free(&columns);
}
END_TEST

START_TEST(selectors_reject_bad_text) {
    static const struct {
        const char *text, *expected;
    } bad[] = {
        {"", "empty column selector: expected a 0-based index, a header name or a range A:B"},
        {"   ", "empty column selector"},
        {"3:", "column range '3:': expected both ends"},
        {":3", "column range ':3': expected both ends"},
        {" : ", "expected both ends"},
        {"1:2:3", "column range '1:2:3': expected one ':'"},
        {"5:3", "column range '5:3': the first column (5) comes after the last (3)"},
        {"-1:-3", "the first column (-1) comes after the last (-3)"},
    };
    nn_csv_columns columns = {0};
    nn_error err = {0};
    ck_assert_int_eq(nn_csv_columns_add(&columns, "0", &err), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(nn_csv_columns_add(&columns, bad[i].text, &err), -1);
        ck_assert_int_eq(err.status, NN_ERR_INPUT);
        ck_assert_msg(strstr(err.message, bad[i].expected), "'%s' not in: %s", bad[i].expected, err.message);
        ck_assert_int_eq(columns.count, 1);
    }
    ck_assert_int_eq(nn_csv_columns_add(&columns, NULL, &err), -1);
    for (int i = 1; i < NN_CSV_MAX_SELECTORS; i++) ck_assert_int_eq(nn_csv_columns_add(&columns, "1:2", &err), 0);
    ck_assert_int_eq(nn_csv_columns_add(&columns, "7", &err), -1);
    ck_assert_msg(strstr(err.message, "more than 64 selectors"), "%s", err.message);
    ck_assert_int_eq(columns.count, NN_CSV_MAX_SELECTORS);
    nn_csv_columns_free(&columns);
}
END_TEST

/* ================= files ================= */

/* A table of 4 columns and a header; each case selects differently. */
static const char table[] = "a,b,c,label\n"
                            "1,2,3,0\n"
                            "4,5,6,1\n"
                            "7,8,9,2\n";

typedef struct selection {
    const char *features, *target;
    bool require_targets;
    int feature_width, target_width;
    int feature_columns[4], target_columns[4];
} selection;

static const selection selections[] = {
    {"a:c", "label", true, 3, 1, {0, 1, 2}, {3}},
    {NULL, "label", true, 3, 1, {0, 1, 2}, {3}},      /* features: every column not a target */
    {NULL, "-1", true, 3, 1, {0, 1, 2}, {3}},
    {NULL, "0", true, 3, 1, {1, 2, 3}, {0}},
    {"c;a", "b", true, 2, 1, {2, 0}, {1}},           /* in the order written */
    {"0;2:3", "1", true, 3, 1, {0, 2, 3}, {1}},
    {"2:-1", "0:1", true, 2, 2, {2, 3}, {0, 1}},
    {"-3:-2", "label;a", true, 2, 2, {1, 2}, {3, 0}},
    {"b:label", NULL, true, 3, 0, {1, 2, 3}, {0}},
    {NULL, NULL, true, 4, 0, {0, 1, 2, 3}, {0}},
    {"a:b", "label", false, 2, 0, {0, 1}, {0}},       /* targets not read */
    {NULL, "label", false, 3, 0, {0, 1, 2}, {0}},     /* ...but left out of the default features */
    {"0:1", "7", false, 2, 0, {0, 1}, {0}},           /* absent target columns are no matter */
    {NULL, "missing;9", false, 4, 0, {0, 1, 2, 3}, {0}},
    {"a", "a", false, 1, 0, {0}, {0}},                /* with features given the target plays no part */
};

static void expected_columns(const int *columns, int width, double *out) {
    for (int row = 0; row < 3; row++)
        for (int j = 0; j < width; j++) out[row * width + j] = columns[j] == 3 ? row : 3 * row + columns[j] + 1;
}

START_TEST(read_selects_columns) {
    const selection *s = &selections[_i];
    char path[512];
    write_text(path, sizeof path, "table.csv", table, false);
    nn_csv_options options = make_options(',', 0, true, s->features, s->target);
    nn_array features, targets;
    int64_t first_line = 0;
    read_ok(path, &options, s->require_targets, &features, &targets, &first_line);
    ck_assert_int_eq(first_line, 2);
    double expected[12];
    expected_columns(s->feature_columns, s->feature_width, expected);
    assert_array(&features, 3, s->feature_width, expected);
    ck_assert_str_eq(features.name, "features");
    if (s->target_width) {
        expected_columns(s->target_columns, s->target_width, expected);
        assert_array(&targets, 3, s->target_width, expected);
    } else {
        ck_assert_ptr_null(targets.data);
        ck_assert_int_eq(targets.rank, 0);
    }
    free(features.data);
    free(targets.data);
    /* targets NULL: nothing but the features is wanted. */
    read_ok(path, &options, s->require_targets, &features, NULL, NULL);
    ck_assert_int_eq(features.dims[1], s->feature_width);
    free(features.data);
    free_options(&options);
}
END_TEST

/* Indexes without a header, and NULL options (commas, every column). */
START_TEST(read_without_header) {
    char path[512];
    write_text(path, sizeof path, "plain.csv", "1,2,3\n4,5,6\n", false);
    nn_array features, targets;
    read_ok(path, NULL, true, &features, &targets, NULL);
    const double all[] = {1, 2, 3, 4, 5, 6};
    assert_array(&features, 2, 3, all);
    free(features.data);
    nn_csv_options options = make_options(',', 0, false, "-1;0", "1");
    read_ok(path, &options, true, &features, &targets, NULL);
    const double x[] = {3, 1, 6, 4}, y[] = {2, 5};
    assert_array(&features, 2, 2, x);
    assert_array(&targets, 2, 1, y);
    free(features.data);
    free(targets.data);
    free_options(&options);
}
END_TEST

typedef struct layout {
    const char *name, *text;
    char delimiter;
    int skip_rows;
    bool header;
    const char *features, *target;
    int64_t first_line;
} layout;

/* Each reads as x = {1.5, -2, 3e2; 0.25, 5, 6} and y = {7; 8}. */
static const layout layouts[] = {
    {"spaces", "  1.5   -2\t3e2  7\n0.25 5 6 8\n", 0, 0, false, NULL, "3", 1},
    {"tabs", "x\ty\tz\tt\n1.5 \t -2\t3e2\t7\n0.25\t5\t6\t8\n", '\t', 0, true, NULL, "t", 2},
    {"semicolons", "# made by hand\n# two comment lines\n1.5;-2;3e2;7\n0.25;5;6;8\n", ';', 2, false, "0:2", "3", 3},
    {"skip-then-header", "junk\nx,y,z,t\n1.5,-2,3e2,7\n0.25,5,6,8\n", ',', 1, true, "x:z", "t", 3},
    {"crlf-bom", "\xef\xbb\xbfx,y,z,t\r\n1.5,-2,3e2,7\r\n0.25,5,6,8\r\n", ',', 0, true, NULL, "t", 2},
    {"spaces-around", " x , y , z , t \n 1.5 , -2 ,3e2, 7 \n0.25 ,5, 6 ,8\n", ',', 0, true, "x:z", "t", 2},
    {"quoted", "\"x\",\"the \"\"y\"\"\",\"z, too\",t\n\"1.5\",\" -2 \",3e2,\"7\"\n0.25,5,\"6\",8\n", ',', 0, true,
     "x:z, too", "t", 2},
    {"quoted-spaces", "\"a x\"  \"a y\" \"a z\"  t\n1.5 -2 3e2 \"7\"\n 0.25 5 6 8  \n", 0, 0, true, "\"a x\":-2",
     "t", 2},
    {"no-final-newline", "1.5,-2,3e2,7\n0.25,5,6,8", ',', 0, false, NULL, "-1", 1},
    {"blank-lines-at-end", "1.5,-2,3e2,7\n0.25,5,6,8\n\n  \n\r\n\n", ',', 0, false, NULL, "-1", 1},
    {"text-column", "id,x,y,z,t\nfirst,1.5,-2,3e2,7\n\"second, with a comma\",0.25,5,6,8\n", ',', 0, true, "x:z", "t",
     2},
    {"names-by-header", "x,y,z,t,note\n1.5,-2,3e2,7,\n0.25,5,6,8,\"\"\n", ',', 0, true, "x;y;z", "t", 2},
};

START_TEST(read_layouts) {
    const layout *l = &layouts[_i / 2];
    bool gzip = _i % 2;
    char path[512];
    write_text(path, sizeof path, l->name, l->text, gzip);
    nn_csv_options options = make_options(l->delimiter, l->skip_rows, l->header, NULL, l->target);
    /* The quoted-spaces name contains quotes for make_options' sake only. */
    if (l->features && l->features[0] == '"') {
        nn_error err = {0};
        ck_assert_int_eq(nn_csv_columns_add(&options.features, "a x:-2", &err), 0);
    } else {
        add_list(&options.features, l->features);
    }
    nn_array features, targets;
    int64_t first_line;
    read_ok(path, &options, true, &features, &targets, &first_line);
    const double x[] = {1.5, -2, 3e2, 0.25, 5, 6}, y[] = {7, 8};
    assert_array(&features, 2, 3, x);
    assert_array(&targets, 2, 1, y);
    ck_assert_int_eq(first_line, l->first_line);
    free(features.data);
    free(targets.data);
    free_options(&options);
}
END_TEST

/* A header name with a "" inside quotes, selected by its unquoted name. */
START_TEST(read_quoted_header_name) {
    char path[512];
    write_text(path, sizeof path, "quote-name.csv", "\"say \"\"hi\"\"\",b\n1,2\n", false);
    nn_csv_options options = make_options(',', 0, true, "say \"hi\"", NULL);
    nn_array features;
    read_ok(path, &options, true, &features, NULL, NULL);
    const double x[] = {1};
    assert_array(&features, 1, 1, x);
    free(features.data);
    free_options(&options);
}
END_TEST

/* The layouts of sklearn's bundled data: a first line of counts and class
 * names, skipped, then numbers with the class index last. */
static char *sklearn_text(int rows, int features, const char *first_line, double *x, double *y) {
    size_t size = (size_t)rows * (size_t)(features + 1) * 24 + 256, used = 0;
    char *text = malloc(size);
    used += (size_t)snprintf(text, size, "%s\n", first_line);
    for (int row = 0; row < rows; row++) {
        for (int j = 0; j < features; j++) {
            /* Values like 5.1 and 0.2, or 1.234e-02 as breast_cancer has. */
            double value = (double)((row * 37 + j * 11) % 80) / 10.0;
            char cell[32];
            if (j % 3 == 2)
                snprintf(cell, sizeof cell, "%.3e", value / 100);
            else
                snprintf(cell, sizeof cell, "%.1f", value);
            x[row * features + j] = strtod(cell, NULL);
            used += (size_t)snprintf(text + used, size - used, "%s,", cell);
        }
        y[row] = row % (features == 4 ? 3 : 2);
        used += (size_t)snprintf(text + used, size - used, "%d\n", (int)y[row]);
    }
    return text;
}

START_TEST(read_sklearn_layouts) {
    bool iris = _i % 2 == 0, gzip = _i >= 2;
    int rows = iris ? 150 : 569, width = iris ? 4 : 30;
    double *x = malloc(sizeof(double) * (size_t)rows * (size_t)width), *y = malloc(sizeof(double) * (size_t)rows);
    char *text = sklearn_text(rows, width, iris ? "150,4,setosa,versicolor,virginica" : "569,30,malignant,benign", x,
                              y);
    char path[512];
    write_text(path, sizeof path, iris ? "iris.csv" : "breast_cancer.csv", text, gzip);
    nn_csv_options options = make_options(',', 1, false, iris ? "0:3" : "0:29", iris ? "4" : "30");
    nn_array features, targets;
    int64_t first_line;
    read_ok(path, &options, true, &features, &targets, &first_line);
    assert_array(&features, rows, width, x);
    assert_array(&targets, rows, 1, y);
    ck_assert_int_eq(first_line, 2);
    free(features.data);
    free(targets.data);
    free_options(&options);
    /* The same with the defaults: every column but the target. */
    options = make_options(',', 1, false, NULL, "-1");
    read_ok(path, &options, true, &features, &targets, NULL);
    assert_array(&features, rows, width, x);
    free(features.data);
    free(targets.data);
    free_options(&options);
    free(text);
    free(x);
    free(y);
}
END_TEST

/* A table of random numbers in many notations, big enough that lines
 * cross the reader's 1 MiB chunks; written with a header and a label. */
#define BIG_ROWS 3000
#define BIG_WIDTH 40

static char *big_table(double *values, double *labels) {
    test_rng rng = {12345};
    size_t size = (size_t)BIG_ROWS * BIG_WIDTH * 32 + 4096, used = 0;
    char *text = malloc(size);
    for (int j = 0; j < BIG_WIDTH; j++) used += (size_t)snprintf(text + used, size - used, "f%d,", j);
    used += (size_t)snprintf(text + used, size - used, "label\n");
    for (int row = 0; row < BIG_ROWS; row++) {
        for (int j = 0; j < BIG_WIDTH; j++) {
            char cell[64];
            switch (random_below(&rng, 4)) {
            case 0: snprintf(cell, sizeof cell, "%d", random_below(&rng, 256)); break;
            case 1: snprintf(cell, sizeof cell, "%.17g", (double)next_random(&rng) / 3e18); break;
            case 2: snprintf(cell, sizeof cell, "%.6e", ((double)random_below(&rng, 2000000) - 1e6) * 1e-7); break;
            default: random_decimal(&rng, 12, -20, 20, cell, sizeof cell);
            }
            values[row * BIG_WIDTH + j] = strtod(cell, NULL);
            used += (size_t)snprintf(text + used, size - used, "%s,", cell);
        }
        labels[row] = row % 10;
        used += (size_t)snprintf(text + used, size - used, "%d\n", row % 10);
    }
    return text;
}

/* Raw and gzip give the same arrays, and the values strtod gives. */
START_TEST(read_gzip_equals_raw) {
    double *values = malloc(sizeof(double) * BIG_ROWS * BIG_WIDTH), labels[BIG_ROWS];
    char *text = big_table(values, labels);
    char raw[512], packed[512];
    write_text(raw, sizeof raw, "big.csv", text, false);
    write_text(packed, sizeof packed, "big.csv", text, true);
    char magic[2];
    ck_assert_uint_eq(read_file(packed, magic, 2), 2);
    ck_assert(magic[0] == '\x1f' && magic[1] == '\x8b');
    nn_csv_options options = make_options(',', 0, true, NULL, "label");
    nn_array features[2], targets[2];
    read_ok(raw, &options, true, &features[0], &targets[0], NULL);
    read_ok(packed, &options, true, &features[1], &targets[1], NULL);
    assert_array(&features[0], BIG_ROWS, BIG_WIDTH, values);
    assert_array(&targets[0], BIG_ROWS, 1, labels);
    ck_assert_mem_eq(features[0].data, features[1].data, sizeof(double) * BIG_ROWS * BIG_WIDTH);
    ck_assert_mem_eq(targets[0].data, targets[1].data, sizeof(double) * BIG_ROWS);
    for (int i = 0; i < 2; i++) {
        free(features[i].data);
        free(targets[i].data);
    }
    free_options(&options);
    free(text);
    free(values);
}
END_TEST

/* One line of 3 MiB (more than a chunk, less than the limit) between two
 * short ones. */
START_TEST(read_long_line) {
    int cells = 1000000;
    size_t size = 3 * (size_t)cells * 2 + 64, used = 0;
    char *text = malloc(size);
    for (int row = 0; row < 3; row++) {
        for (int j = 0; j < cells; j++) {
            text[used++] = (char)('0' + (j + row) % 10);
            text[used++] = j + 1 < cells ? ',' : '\n';
        }
    }
    text[used] = '\0';
    char path[512];
    write_text(path, sizeof path, "long-line.csv", text, false);
    nn_csv_options options = make_options(',', 0, false, "-2", "-1");
    nn_array features, targets;
    read_ok(path, &options, true, &features, &targets, NULL);
    const double x[] = {(cells - 2) % 10, (cells - 1) % 10, cells % 10};
    const double y[] = {(cells - 1) % 10, cells % 10, (cells + 1) % 10};
    assert_array(&features, 3, 1, x);
    assert_array(&targets, 3, 1, y);
    free(features.data);
    free(targets.data);
    free_options(&options);
    free(text);
}
END_TEST

typedef struct bad_csv {
    const char *name, *text;
    char delimiter;
    int skip_rows;
    bool header;
    const char *features, *target;
    const char *expected; /* after the path */
} bad_csv;

static const bad_csv bad_files[] = {
    {"text-cell", "a,b,petal_length\n1,2,3\n4,5,abc\n", ',', 0, true, NULL, NULL,
     ":3: column 3 ('petal_length'): expected a number, got 'abc'"},
    {"text-no-header", "1,2,3\n4,x y,6\n", ',', 0, false, NULL, NULL, ":2: column 2: expected a number, got 'x y'"},
    {"number-then-text", "1,2.5kg,3\n", ',', 0, false, NULL, NULL, ":1: column 2: expected a number, got '2.5kg'"},
    {"hex", "0x1A\n", ',', 0, false, NULL, NULL, ":1: column 1: expected a number, got '0x1A'"},
    {"decimal-comma", "1;2,5\n", ';', 0, false, NULL, NULL, ":1: column 2: expected a number, got '2,5'"},
    {"whitespace-text", "1 2 three\n", 0, 0, false, NULL, NULL, ":1: column 3: expected a number, got 'three'"},
    {"control-bytes", "1,\x01\x02\n", ',', 0, false, NULL, NULL, "got '\\x01\\x02'"},
    {"empty-cell", "1,,3\n", ',', 0, false, NULL, NULL, ":1: column 2: empty cell, expected a number"},
    {"empty-last-cell", "x,y,z\n1,2,3\n1,2,\n", ',', 0, true, NULL, NULL, ":3: column 3 ('z'): empty cell"},
    {"empty-quoted", "1,\" \",3\n", ',', 0, false, NULL, NULL, ":1: column 2: empty cell"},
    {"nan", "1,nan,3\n", ',', 0, false, NULL, NULL, ":1: column 2: got 'nan': NaN and Inf are not allowed in data"},
    {"NaN-target", "x,y\n1,NaN\n", ',', 0, true, NULL, "y",
     ":2: column 2 ('y'): got 'NaN': NaN and Inf are not allowed"},
    {"inf", "1\n-inf\n", ',', 0, false, NULL, NULL, ":2: column 1: got '-inf': NaN and Inf are not allowed in data"},
    {"infinity", "Infinity 1\n", 0, 0, false, NULL, NULL, "got 'Infinity': NaN and Inf are not allowed"},
    {"overflow", "1,2\n3,1e999\n", ',', 0, false, NULL, NULL, ":2: column 2: '1e999' is out of range"},
    {"ragged-fewer", "1,2,3\n4,5\n", ',', 0, false, NULL, NULL,
     ":2: the row has 2 cells but the first row (line 1) has 3"},
    {"ragged-more", "1,2\n3,4\n5,6,7,8\n", ',', 0, false, NULL, NULL,
     ":3: the row has 4 cells but the first row (line 1) has 2"},
    {"ragged-header", "a,b,c\n1,2\n", ',', 0, true, NULL, NULL,
     ":2: the row has 2 cells but the header (line 1) has 3"},
    {"ragged-skipped", "x\n1 2\n3 4 5\n", 0, 1, false, NULL, NULL,
     ":3: the row has 3 cells but the first row (line 2) has 2"},
    {"ragged-unread", "1,2,a\n3,4\n", ',', 0, false, "0", NULL, ":2: the row has 2 cells but the first row"},
    {"empty-file", "", ',', 0, false, NULL, NULL, ": no data rows: the file is empty"},
    {"header-only", "a,b\n", ',', 0, true, NULL, NULL,
     ": no data rows: the file ends at line 1, after the header (line 1)"},
    {"all-skipped", "1\n2\n", ',', 3, false, NULL, NULL,
     ": no data rows: the file ends at line 2, within the 3 lines skipped (skip_rows)"},
    {"no-header-line", "1\n", ',', 1, true, NULL, NULL, "no data rows: the file ends at line 1, before the header"},
    {"blank-only", "\n \n\n", ',', 0, false, NULL, NULL,
     ": no data rows: the file ends at line 3, with only blank lines"},
    {"bom-only", "\xef\xbb\xbf", ',', 0, false, NULL, NULL, ": no data rows: the file is empty"},
    {"blank-in-middle", "1,2\n3,4\n\n5,6\n", ',', 0, false, NULL, NULL,
     ":3: blank line before more rows (line 4): blank lines are allowed only after the last row"},
    {"spaces-in-middle", "a b\n1 2\n \t \n\n3 4\n", 0, 0, true, NULL, NULL, ":3: blank line before more rows (line 5)"},
    {"blank-after-header", "a,b\n\n1,2\n", ',', 0, true, NULL, NULL, ":2: blank line before more rows (line 3)"},
    {"blank-header", "\na,b\n1,2\n", ',', 0, true, NULL, NULL, ":1: blank line where the header was expected"},
    {"unclosed-quote", "1,\"2\n3,4\n", ',', 0, false, NULL, NULL,
     ":1: column 2: the quote that opens the cell is not closed on this line"},
    {"unclosed-in-header", "a,\"b\nc\"\n1,2\n", ',', 0, true, NULL, NULL, ":1: column 2: the quote that opens"},
    {"unclosed-past-header", "a,b\n1,2,\"x\n", ',', 0, true, NULL, NULL, ":2: column 3: the quote that opens"},
    {"unclosed-unread", "1,2\n3,\"x\n", ',', 0, false, "0", NULL, ":2: column 2: the quote that opens the cell"},
    {"text-after-quote", "\"1\"x,2\n", ',', 0, false, NULL, NULL,
     ":1: column 1: text after the closing quote, expected the delimiter ',' or the end of the line"},
    {"text-after-quote-ws", "\"1\"x 2\n", 0, 0, false, NULL, NULL, "text after the closing quote, expected a space"},
    {"index-out-of-range", "1,2,3\n", ',', 0, false, NULL, "7",
     ": target '7': index 7 is out of range: the file has 3 columns (indexes 0 to 2, or -3 to -1 from the end)"},
    {"negative-out-of-range", "1,2,3\n", ',', 0, false, "-4", NULL, ": features '-4': index -4 is out of range"},
    {"range-out-of-range", "x,y,z\n1,2,3\n", ',', 0, true, "0:29", NULL, ": features '0:29': index 29 is out of range"},
    {"unknown-name", "sepal_length,sepal_width,petal_length,petal_width,species\n1,2,3,4,0\n", ',', 0, true, NULL,
     "specis",
     ": target 'specis': no column named 'specis' in the header (line 1): 'sepal_length', 'sepal_width', "
     "'petal_length', 'petal_width', 'species'"},
    {"many-names", "c1,c2,c3,c4,c5,c6,c7,c8,c9,c10,c11,c12\n1,2,3,4,5,6,7,8,9,10,11,12\n", ',', 0, true, "c1:c99", NULL,
     "no column named 'c99' in the header (line 1): 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'c8', and 4 more"},
    {"name-without-header", "1,2,3\n", ',', 0, false, "0:1", "species",
     ": target 'species': 'species' is a column name, but the file has no header (header: false): select by "
     "0-based index, the file has 3 columns"},
    {"duplicate-name", "a,b,a\n1,2,3\n", ',', 0, true, NULL, "a",
     ": target 'a': the header (line 1) names both column 1 and column 3 'a'"},
    {"twice-in-features", "1,2,3\n", ',', 0, false, "0:1;1", NULL,
     ": column 2 is selected twice: by features '0:1' and by features '1'"},
    {"feature-and-target", "a,b,c\n1,2,3\n", ',', 0, true, "0:2", "c",
     ": column 3 ('c') is selected twice: by target 'c' and by features '0:2'"},
    {"twice-in-target", "a,b,c\n1,2,3\n", ',', 0, true, NULL, "b;-2",
     ": column 2 ('b') is selected twice: by target 'b' and by target '-2'"},
    {"range-backwards", "a,b,c\n1,2,3\n", ',', 0, true, "2:-3", NULL,
     ": features '2:-3': the range runs backwards: its first column, column 3 ('c'), comes after its last, column 1 "
     "('a')"},
    {"names-backwards", "a,b,c\n1,2,3\n", ',', 0, true, "c:b", NULL, ": features 'c:b': the range runs backwards"},
    {"no-features", "1,2\n", ',', 0, false, NULL, "0:-1", ": no feature columns: the target selects all 2 columns"},
    {"delimiter-digit", "1\n", '5', 0, false, NULL, NULL, ": delimiter '5' cannot be used: it can be part of a number"},
    {"delimiter-point", "1\n", '.', 0, false, NULL, NULL, ": delimiter '.' cannot be used"},
    {"delimiter-quote", "1\n", '"', 0, false, NULL, NULL, ": delimiter '\"' cannot be used: it quotes cells"},
    {"delimiter-newline", "1\n", '\n', 0, false, NULL, NULL, ": delimiter 0x0a cannot be used"},
    {"skip-negative", "1\n", ',', -1, false, NULL, NULL, ": skip_rows must be >= 0, got -1"},
    {"idx-file", "\x00\x00\x08\x01\x00\x00\x00\x03\x01\x02\x03", ',', 0, false, NULL, NULL,
     ": not a CSV file: it looks like an IDX data file"},
    {"png-file", "\x89PNG\r\n\x1a\n", ',', 0, false, NULL, NULL, ": not a CSV file: it looks like a PNG image"},
};

#define BAD_FILES ((int)(sizeof bad_files / sizeof bad_files[0]))

START_TEST(read_rejects_bad_file) {
    const bad_csv *bad = &bad_files[_i / 2];
    bool gzip = _i % 2;
    char path[512], name[128];
    snprintf(name, sizeof name, "%s.csv", bad->name);
    /* The binary ones hold NUL bytes: written by size, not strlen. */
    size_t size = strlen(bad->text);
    if (!strcmp(bad->name, "idx-file")) size = 11;
    snprintf(path, sizeof path, "%s/%s%s", tmpdir, name, gzip ? ".gz" : "");
    write_bytes(path, bad->text, size, gzip);
    nn_csv_options options = make_options(bad->delimiter, bad->skip_rows, bad->header, bad->features, bad->target);
    nn_array features, targets;
    int64_t first_line = -7;
    nn_error err = {0};
    ck_assert_int_eq(nn_csv_read(path, &options, true, &features, &targets, &first_line, &err), -1);
    assert_input_error(&err, path, bad->expected);
    ck_assert_ptr_null(features.data);
    ck_assert_ptr_null(targets.data);
    ck_assert_int_eq(first_line, -7);
    /* The stream (features only) fails the same way, at open or on reading,
     * unless the trouble is in the targets it does not read. */
    nn_csv_stream *stream = nn_csv_stream_open(path, &options, &err);
    if (stream) {
        float out[64];
        int got;
        while ((got = nn_csv_stream_read(stream, out, 1, &err)) > 0) continue;
        nn_csv_stream_close(stream);
        if (got == 0) {
            ck_assert_msg(bad->target != NULL, "the stream read %s", bad->name);
            free_options(&options);
            return;
        }
    }
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    ck_assert_msg(strncmp(err.message, path, strlen(path)) == 0, "no path first: %s", err.message);
    free_options(&options);
}
END_TEST

START_TEST(read_rejects_missing_file) {
    char path[512], expected[600];
    temp_path(path, sizeof path, "no-such-file.csv");
    snprintf(expected, sizeof expected, "%s: cannot open: No such file or directory", path);
    nn_array features, targets;
    nn_error err = {0};
    ck_assert_int_eq(nn_csv_read(path, NULL, true, &features, &targets, NULL, &err), -1);
    ck_assert_int_eq(err.status, NN_ERR_INPUT);
    ck_assert_str_eq(err.message, expected);
    ck_assert_ptr_null(nn_csv_stream_open(path, NULL, &err));
    ck_assert_str_eq(err.message, expected);
}
END_TEST

/* A line one byte over the limit (the first one, or a skipped one), and a
 * row one cell over the column limit. */
START_TEST(read_rejects_limits) {
    char path[512];
    size_t size = NN_CSV_LINE_LIMIT + 64, used = 0;
    char *text = malloc(size);
    if (_i == 0) {
        used = (size_t)snprintf(text, size, "1,2\n");
        for (size_t i = 0; i < NN_CSV_LINE_LIMIT + 1; i++) text[used++] = 'x';
        used += (size_t)snprintf(text + used, size - used, "\n1,2\n");
    } else if (_i == 1) {
        for (size_t i = 0; i < NN_CSV_LINE_LIMIT; i++) text[used++] = 'y';
        used += (size_t)snprintf(text + used, size - used, "\r\n1,2\n"); /* at the limit: fine */
    } else {
        for (int i = 0; i <= NN_CSV_COLUMN_LIMIT; i++) {
            text[used++] = '0';
            text[used++] = i < NN_CSV_COLUMN_LIMIT ? (_i == 2 ? ',' : ' ') : '\n';
        }
    }
    temp_path(path, sizeof path, "limits.csv");
    write_bytes(path, text, used, false);
    free(text);
    nn_csv_options options = make_options(_i == 3 ? 0 : ',', _i == 1 ? 1 : 0, _i == 3, NULL, NULL);
    nn_array features;
    nn_error err = {0};
    int status = nn_csv_read(path, &options, true, &features, NULL, NULL, &err);
    if (_i == 1) {
        ck_assert_msg(status == 0, "%s", err.message);
        ck_assert_int_eq(features.dims[0], 1);
        free(features.data);
        return;
    }
    ck_assert_int_eq(status, -1);
    if (_i == 0) assert_input_error(&err, path, ":2: line longer than the limit of 16 MiB");
    if (_i == 2) assert_input_error(&err, path, ":1: the row has more than the 1048576 columns supported");
    if (_i == 3) assert_input_error(&err, path, ":1: the header has more than the 1048576 columns supported");
}
END_TEST

/* A gzip file cut short (in the middle, and just before its 8-byte
 * trailer) or damaged: an error, not a table that silently ends early. */
START_TEST(read_rejects_damaged_gzip) {
    double *values = malloc(sizeof(double) * BIG_ROWS * BIG_WIDTH), labels[BIG_ROWS];
    char *text = big_table(values, labels);
    char path[512];
    write_text(path, sizeof path, "damaged.csv", text, true);
    size_t capacity = strlen(text);
    char *bytes = malloc(capacity);
    size_t size = read_file(path, bytes, capacity);
    ck_assert_uint_gt(size, 100000);
    if (_i == 0) size /= 2;
    if (_i == 1) size -= 8;
    if (_i == 2)
        for (size_t i = size / 2; i < size / 2 + 64; i++) bytes[i] ^= 0x5a;
    write_bytes(path, bytes, size, false);
    nn_csv_options options = make_options(',', 0, true, NULL, "label");
    nn_array features, targets;
    nn_error err = {0};
    ck_assert_int_eq(nn_csv_read(path, &options, true, &features, &targets, NULL, &err), -1);
    assert_input_error(&err, path, _i < 2 ? "truncated: the gzip stream ends unexpectedly" : ": damaged gzip data: ");
    ck_assert_ptr_null(features.data);
    free_options(&options);
    free(bytes);
    free(text);
    free(values);
}
END_TEST

/* ================= streams ================= */

static const int stream_chunks[] = {1, 7, 64, 5000};

/* Chunks of any size give what the whole-file read gives (as float32),
 * target column left out, raw and gzip. */
START_TEST(stream_equals_whole_read) {
    int chunk = stream_chunks[_i / 2];
    bool gzip = _i % 2;
    double *values = malloc(sizeof(double) * BIG_ROWS * BIG_WIDTH), labels[BIG_ROWS];
    char *text = big_table(values, labels);
    char path[512];
    write_text(path, sizeof path, "stream.csv", text, gzip);
    nn_csv_options options = make_options(',', 0, true, NULL, "label");
    nn_array features;
    read_ok(path, &options, false, &features, NULL, NULL);
    ck_assert_int_eq(features.dims[1], BIG_WIDTH);

    nn_error err = {0};
    nn_csv_stream *stream = nn_csv_stream_open(path, &options, &err);
    ck_assert_msg(stream != NULL, "%s", err.message);
    ck_assert_int_eq(nn_csv_stream_width(stream), BIG_WIDTH);
    float *out = malloc(sizeof(float) * (BIG_ROWS + (size_t)chunk) * BIG_WIDTH);
    int total = 0, calls = 0, got;
    while ((got = nn_csv_stream_read(stream, out + (size_t)total * BIG_WIDTH, chunk, &err)) > 0) {
        ck_assert_int_eq(got, BIG_ROWS - total < chunk ? BIG_ROWS - total : chunk);
        total += got;
        calls++;
    }
    ck_assert_msg(got == 0, "%s", err.message);
    ck_assert_int_eq(total, BIG_ROWS);
    ck_assert_int_eq(calls, (BIG_ROWS + chunk - 1) / chunk);
    ck_assert_int_eq(nn_csv_stream_read(stream, out, chunk, &err), 0);
    nn_csv_stream_close(stream);
    const double *whole = features.data;
    for (int i = 0; i < BIG_ROWS * BIG_WIDTH; i++)
        ck_assert_msg(out[i] == (float)whole[i], "value %d: %g in the stream, %g read whole", i, out[i], whole[i]);
    free(out);
    free(features.data);
    free_options(&options);
    free(text);
    free(values);
}
END_TEST

/* Features given, or defaults with a target that this file lacks: the
 * stream reads a predict file with or without the target column. */
START_TEST(stream_selects_features) {
    char path[512];
    write_text(path, sizeof path, "predict.csv", "x,y,z\n1,2,3\n4,5,6\n", false);
    nn_csv_options options = make_options(',', 0, true, _i == 0 ? "z;x" : NULL, _i == 0 ? "y" : "label");
    nn_error err = {0};
    nn_csv_stream *stream = nn_csv_stream_open(path, &options, &err);
    ck_assert_msg(stream != NULL, "%s", err.message);
    ck_assert_int_eq(nn_csv_stream_width(stream), _i == 0 ? 2 : 3);
    float out[6];
    ck_assert_int_eq(nn_csv_stream_read(stream, out, 10, &err), 2);
    const float two[] = {3, 1, 6, 4}, three[] = {1, 2, 3, 4, 5, 6};
    ck_assert_mem_eq(out, _i == 0 ? two : three, sizeof(float) * (_i == 0 ? 4 : 6));
    ck_assert_int_eq(nn_csv_stream_read(stream, out, 10, &err), 0);
    ck_assert_int_eq(nn_csv_stream_read(stream, out, 0, &err), 0);
    nn_csv_stream_close(stream);
    free_options(&options);
}
END_TEST

/* Runs with stdin replaced by path; restores it after. */
static nn_csv_stream *open_on_stdin(const char *path, const nn_csv_options *options, int *saved_stdin,
                                    nn_error *err) {
    FILE *file = fopen(path, "rb");
    ck_assert_ptr_nonnull(file);
    *saved_stdin = dup(STDIN_FILENO);
    ck_assert_int_ge(dup2(fileno(file), STDIN_FILENO), 0);
    fclose(file);
    return nn_csv_stream_open("-", options, err);
}

static void restore_stdin(int saved_stdin) {
    dup2(saved_stdin, STDIN_FILENO);
    close(saved_stdin);
}

START_TEST(stream_reads_stdin) {
    bool gzip = _i == 1;
    char path[512];
    write_text(path, sizeof path, "stdin.csv", "1 2\n3 4\n5 6\n", gzip);
    nn_csv_options options = make_options(0, 0, false, NULL, NULL);
    int saved_stdin;
    nn_error err = {0};
    nn_csv_stream *stream = open_on_stdin(path, &options, &saved_stdin, &err);
    ck_assert_msg(stream != NULL, "%s", err.message);
    float out[6];
    ck_assert_int_eq(nn_csv_stream_read(stream, out, 2, &err), 2);
    ck_assert_int_eq(nn_csv_stream_read(stream, out + 4, 2, &err), 1);
    ck_assert_int_eq(nn_csv_stream_read(stream, out, 2, &err), 0);
    const float expected[] = {1, 2, 3, 4, 5, 6};
    ck_assert_mem_eq(out, expected, sizeof expected);
    nn_csv_stream_close(stream);
    /* stdin itself stays open: the stream closed its own copy. */
    ck_assert_int_ne(fcntl(STDIN_FILENO, F_GETFD), -1);
    restore_stdin(saved_stdin);
}
END_TEST

START_TEST(stream_names_stdin_in_errors) {
    char path[512];
    write_text(path, sizeof path, "stdin-bad.csv", _i == 0 ? "" : "1,2\n3,x\n", false);
    int saved_stdin;
    nn_error err = {0};
    nn_csv_stream *stream = open_on_stdin(path, NULL, &saved_stdin, &err);
    if (_i == 0) {
        ck_assert_ptr_null(stream);
        assert_input_error(&err, "<stdin>", "<stdin>: no data rows: the file is empty");
    } else {
        float out[4];
        ck_assert_ptr_nonnull(stream);
        ck_assert_int_eq(nn_csv_stream_read(stream, out, 2, &err), -1);
        assert_input_error(&err, "<stdin>", "<stdin>:2: column 2: expected a number, got 'x'");
        nn_csv_stream_close(stream);
    }
    restore_stdin(saved_stdin);
}
END_TEST

/* Rows before a bad one are handed out; the read that meets it fails, and
 * every read after fails the same way. */
START_TEST(stream_fails_at_the_bad_row) {
    char path[512];
    write_text(path, sizeof path, "stream-bad.csv", "a,b\n1,2\n3,4\n5,6\n7,\"\n9,10\n", _i == 1);
    nn_csv_options options = make_options(',', 0, true, NULL, NULL);
    nn_error err = {0};
    nn_csv_stream *stream = nn_csv_stream_open(path, &options, &err);
    ck_assert_msg(stream != NULL, "%s", err.message);
    float out[8];
    ck_assert_int_eq(nn_csv_stream_read(stream, out, 2, &err), 2);
    ck_assert_int_eq(nn_csv_stream_read(stream, out, 2, &err), -1);
    assert_input_error(&err, path, ":5: column 2 ('b'): the quote that opens the cell is not closed");
    nn_error again = {0};
    ck_assert_int_eq(nn_csv_stream_read(stream, out, 2, &again), -1);
    ck_assert_str_eq(again.message, err.message);
    ck_assert_int_eq(nn_csv_stream_read(stream, out, 2, NULL), -1);
    nn_csv_stream_close(stream);
    free_options(&options);
}
END_TEST

/* A bad first row fails the open; a number beyond float32 fails the read. */
START_TEST(stream_rejects_bad_values) {
    char path[512];
    nn_error err = {0};
    write_text(path, sizeof path, "stream-first.csv", "1,oops\n2,3\n", false);
    ck_assert_ptr_null(nn_csv_stream_open(path, NULL, &err));
    assert_input_error(&err, path, ":1: column 2: expected a number, got 'oops'");

    write_text(path, sizeof path, "stream-float.csv", "x,y\n1,2\n3,1e300\n", false);
    nn_csv_options options = make_options(',', 0, true, NULL, NULL);
    nn_csv_stream *stream = nn_csv_stream_open(path, &options, &err);
    ck_assert_msg(stream != NULL, "%s", err.message);
    float out[4];
    ck_assert_int_eq(nn_csv_stream_read(stream, out, 1, &err), 1);
    ck_assert_int_eq(nn_csv_stream_read(stream, out, 1, &err), -1);
    assert_input_error(&err, path, ":3: column 2 ('y'): 1e+300 is out of range for float32");
    nn_csv_stream_close(stream);
    free_options(&options);
}
END_TEST

/* All rows arrive but the gzip trailer does not: the stream says so
 * instead of ending as if the file were whole. */
START_TEST(stream_rejects_truncated_gzip) {
    double *values = malloc(sizeof(double) * BIG_ROWS * BIG_WIDTH), labels[BIG_ROWS];
    char *text = big_table(values, labels);
    char path[512];
    write_text(path, sizeof path, "stream-cut.csv", text, true);
    size_t capacity = strlen(text);
    char *bytes = malloc(capacity);
    size_t size = read_file(path, bytes, capacity);
    write_bytes(path, bytes, size - 8, false);
    nn_error err = {0};
    nn_csv_options options = make_options(',', 0, true, NULL, NULL);
    nn_csv_stream *stream = nn_csv_stream_open(path, &options, &err);
    ck_assert_msg(stream != NULL, "%s", err.message);
    float *out = malloc(sizeof(float) * (BIG_WIDTH + 1) * 100);
    int got, total = 0;
    while ((got = nn_csv_stream_read(stream, out, 100, &err)) > 0) total += got;
    ck_assert_int_eq(got, -1);
    ck_assert_int_le(total, BIG_ROWS);
    assert_input_error(&err, path, "truncated: the gzip stream ends unexpectedly");
    nn_csv_stream_close(stream);
    free_options(&options);
    free(out);
    free(bytes);
    free(text);
    free(values);
}
END_TEST

int main(void) {
    Suite *suite = suite_create("csv");

    TCase *numbers = tcase_create("numbers");
    tcase_set_timeout(numbers, 120);
    tcase_add_test(numbers, number_hand_picked);
    tcase_add_test(numbers, number_rejects);
    tcase_add_test(numbers, number_long_digits);
    tcase_add_loop_test(numbers, number_matches_strtod, 0, 6);
    suite_add_tcase(suite, numbers);

    TCase *selectors = tcase_create("selectors");
    tcase_add_test(selectors, selectors_parse_every_form);
    tcase_add_test(selectors, selectors_reject_bad_text);
    suite_add_tcase(suite, selectors);

    TCase *files = tcase_create("files");
    tcase_set_timeout(files, 120);
    tcase_add_unchecked_fixture(files, make_tmpdir, remove_tmpdir);
    tcase_add_test(files, number_ignores_locale);
    tcase_add_loop_test(files, read_selects_columns, 0, (int)(sizeof selections / sizeof selections[0]));
    tcase_add_test(files, read_without_header);
    tcase_add_loop_test(files, read_layouts, 0, 2 * (int)(sizeof layouts / sizeof layouts[0]));
    tcase_add_test(files, read_quoted_header_name);
    tcase_add_loop_test(files, read_sklearn_layouts, 0, 4);
    tcase_add_test(files, read_gzip_equals_raw);
    tcase_add_test(files, read_long_line);
    tcase_add_loop_test(files, read_rejects_bad_file, 0, 2 * BAD_FILES);
    tcase_add_test(files, read_rejects_missing_file);
    tcase_add_loop_test(files, read_rejects_limits, 0, 4);
    tcase_add_loop_test(files, read_rejects_damaged_gzip, 0, 3);
    suite_add_tcase(suite, files);

    TCase *streams = tcase_create("streams");
    tcase_set_timeout(streams, 120);
    tcase_add_unchecked_fixture(streams, make_tmpdir, remove_tmpdir);
    tcase_add_loop_test(streams, stream_equals_whole_read, 0, 2 * 4);
    tcase_add_loop_test(streams, stream_selects_features, 0, 2);
    tcase_add_loop_test(streams, stream_reads_stdin, 0, 2);
    tcase_add_loop_test(streams, stream_names_stdin_in_errors, 0, 2);
    tcase_add_test(streams, stream_fails_at_the_bad_row);
    tcase_add_test(streams, stream_rejects_bad_values);
    tcase_add_test(streams, stream_rejects_truncated_gzip);
    suite_add_tcase(suite, streams);

    return testutil_run(suite);
}
