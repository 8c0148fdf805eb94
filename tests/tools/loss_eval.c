/* Evaluates losses for tests/loss_ref.py, which compares them with torch's.
 *
 *   loss_eval < CASES
 *
 * Reads cases from stdin, whitespace-separated tokens, one after another:
 *
 *   loss NAME BATCH OUTPUTS [ARG=VALUE ...] [vector COUNT V ...]
 *       output V ... (BATCH x OUTPUTS)  target V ... (BATCH labels or BATCH x OUTPUTS values)
 *
 * NAME is nnseq's name or torch's class name; ARG one of the loss's scalar
 * arguments (ignore_index=1, label_smoothing=0.1, beta=0, delta=2); vector
 * its list argument (weight, pos_weight). For each case it runs the loss's
 * check on an output of shape (OUTPUTS,) and prints one line:
 *
 *   ok LOSS GRAD ...       nn_loss_batch's loss and gradient, each %.9g
 *   error MESSAGE          the check refused the case
 *
 * Malformed input is a message on stderr and exit 2. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "losses/loss.h"

typedef struct reader {
    FILE *in;
    char token[256];
    long count;   /* tokens read, for messages */
} reader;

static void die(const reader *r, const char *what) {
    fprintf(stderr, "loss_eval: token %ld (\"%s\"): %s\n", r->count, r->token, what);
    exit(2);
}

/* The next token, or NULL at the end of the input. */
static const char *next(reader *r) {
    if (fscanf(r->in, "%255s", r->token) != 1) return NULL;
    r->count++;
    return r->token;
}

static const char *expect_token(reader *r, const char *what) {
    const char *token = next(r);
    if (!token) die(r, what);
    return token;
}

static double number(reader *r, const char *what) {
    const char *token = expect_token(r, what);
    char *end;
    errno = 0;
    double value = strtod(token, &end);
    if (*end || end == token) die(r, what);
    return value;
}

/* Floats are read with strtof: the shortest decimal of a float32 that
 * Python printed reads back as that float. */
static void floats(reader *r, float *values, size_t count, const char *what) {
    for (size_t i = 0; i < count; i++) {
        const char *token = expect_token(r, what);
        char *end;
        values[i] = strtof(token, &end);
        if (*end || end == token) die(r, what);
    }
}

static long integer(reader *r, const char *what, long low, long high) {
    double value = number(r, what);
    if (value != floor(value) || value < low || value > high) die(r, what);
    return (long)value;
}

static void *allocate(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size);
    if (!p) {
        fprintf(stderr, "loss_eval: out of memory\n");
        exit(1);
    }
    return p;
}

/* Reads the rest of one case (after "loss") and prints its line. */
static void run_case(reader *r) {
    const char *name = expect_token(r, "a loss name");
    nn_loss loss = {.kind = nn_loss_kind_find(name)};
    if (!loss.kind) die(r, "no such loss");
    nn_arg_defaults(loss.args, loss.kind->args, loss.kind->arg_count);
    int batch = (int)integer(r, "the batch size", 1, 1 << 20);
    int outputs = (int)integer(r, "the number of outputs", 1, 1 << 20);
    size_t count = (size_t)batch * outputs;
    const char *token = expect_token(r, "arguments, vector or output");
    while (strchr(token, '=')) {
        char arg[256];
        snprintf(arg, sizeof arg, "%s", token);
        char *equals = strchr(arg, '=');
        *equals = '\0';
        int i = nn_arg_find(loss.kind->args, loss.kind->arg_count, arg);
        if (i < 0) die(r, "the loss has no such argument");
        char *end;
        loss.args[i].value[0] = strtod(equals + 1, &end);
        if (*end || end == equals + 1) die(r, "an argument's value is not a number");
        loss.args[i].given = true;
        token = expect_token(r, "arguments, vector or output");
    }
    if (strcmp(token, "vector") == 0) {
        loss.vector_count = (int)integer(r, "the vector's length", 0, 1 << 20);
        loss.vector = allocate((size_t)loss.vector_count, sizeof *loss.vector);
        floats(r, loss.vector, (size_t)loss.vector_count, "a vector value");
        token = expect_token(r, "output");
    }
    if (strcmp(token, "output") != 0) die(r, "expected output");
    float *output = allocate(count, sizeof *output);
    floats(r, output, count, "an output value");
    if (strcmp(expect_token(r, "target"), "target") != 0) die(r, "expected target");
    nn_targets targets = {0};
    int32_t *labels = NULL;
    float *values = NULL;
    if (loss.kind->target == NN_LOSS_CLASSES) {
        labels = allocate((size_t)batch, sizeof *labels);
        for (int b = 0; b < batch; b++) labels[b] = (int32_t)integer(r, "a label", INT32_MIN, INT32_MAX);
        targets.labels = labels;
    } else {
        values = allocate(count, sizeof *values);
        floats(r, values, count, "a target value");
        targets.values = values;
    }

    nn_error err = {0};
    if (loss.kind->check(&loss, (nn_shape){1, {outputs, 0, 0}}, &err) != 0) {
        printf("error %s\n", err.message);
    } else {
        float *grad = allocate(count, sizeof *grad);
        double *numerator = allocate((size_t)batch, sizeof *numerator);
        double *denominator = allocate((size_t)batch, sizeof *denominator);
        double value = nn_loss_batch(&loss, output, &targets, batch, outputs, grad, numerator, denominator);
        printf("ok %.9g", value);
        for (size_t i = 0; i < count; i++) printf(" %.9g", (double)grad[i]);
        printf("\n");
        free(grad);
        free(numerator);
        free(denominator);
    }
    free(labels);
    free(values);
    free(output);
    free(loss.vector);
}

int main(int argc, char **argv) {
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: loss_eval < CASES (see tests/tools/loss_eval.c)\n");
        return 2;
    }
    reader r = {.in = stdin};
    const char *token;
    while ((token = next(&r))) {
        if (strcmp(token, "loss") != 0) die(&r, "expected loss");
        run_case(&r);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
