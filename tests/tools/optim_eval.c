/* Runs optimisers on a fixed problem for tests/optim_ref.py, which runs the
 * same with torch.optim and compares.
 *
 *   optim_eval < CASES
 *
 * One case a line: KIND STEPS COUNT [OPTION ...], KIND nnseq's name or
 * torch's class name, OPTION one of
 *   NAME=V or NAME=V,V   an argument (true/false for booleans)
 *   no_decay             parameter i has no weight decay when i % 5 == 2
 *                        or 40 <= i < 60
 *   schedule             lr and momentum change every step (below)
 *   pull=V               the gradient's parameter term (0.3 unless given);
 *                        optim_ref.py gives -0.3 with maximize, so that the
 *                        ascent converges too
 * For each case it prints one line:
 *   ok P ...             the COUNT parameters after STEPS steps, each %.9g
 *   error MESSAGE        nn_optimizer_init refused the arguments
 *
 * The problem, in float32 as torch computes it: parameter i starts at
 * float(2 sin(1.3 i + 0.4)); at step t (from 0) its gradient is 0 when
 * i % 7 == 0 and t % 3 == 0 and otherwise
 * pull p + float(cos(0.7 i + 1.1 t) (1 + 0.01 t)), of either sign. (A
 * parameter whose gradient is always 0 under weight decay ends up
 * oscillating around 0 by about lr in the adaptive optimisers, where a
 * rounding difference flips its sign: not comparable.) With schedule, step t uses lr (1 + 0.5 sin(0.05 t)) and
 * momentum (beta1) m (1 - 0.05 (1 + sin(0.03 t))). Each step updates the
 * parameters in blocks of 64 from the last, as the engine's threads may.
 * Malformed input is a message on stderr and exit 2. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optim/optimizer.h"

enum { MAX_LINE = 4096, MAX_COUNT = 1 << 20, MAX_STEPS = 1 << 20, BLOCK = 64 };

static void die(long line, const char *what, const char *token) {
    fprintf(stderr, "optim_eval: line %ld: %s: %s\n", line, what, token);
    exit(2);
}

static void *allocate(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size);
    if (!p) {
        fprintf(stderr, "optim_eval: out of memory\n");
        exit(1);
    }
    return p;
}

static long whole(long line, const char *token, long high) {
    char *end;
    long value = token ? strtol(token, &end, 10) : 0;
    if (!token || *end || end == token || value < 0 || value > high) die(line, "expected a count", token ? token : "");
    return value;
}

/* NAME=V or NAME=V,V into args. */
static void set_arg(long line, const nn_optimizer_kind *kind, nn_arg_value *args, char *token) {
    char *equals = strchr(token, '=');
    *equals = '\0';
    int i = nn_arg_find(kind->args, kind->arg_count, token);
    if (i < 0) die(line, "the optimizer has no such argument", token);
    char *text = equals + 1;
    args[i].given = true;
    for (int n = 0; n < 2 && *text; n++) {
        char *end;
        if (!strncmp(text, "true", 4) || !strncmp(text, "false", 5)) {
            args[i].value[n] = text[0] == 't';
            end = text + (text[0] == 't' ? 4 : 5);
        } else {
            args[i].value[n] = strtod(text, &end);
            if (end == text) die(line, "an argument's value is not a number", text);
        }
        if (*end && *end != ',') die(line, "an argument's value is not a number", text);
        text = *end ? end + 1 : end;
    }
}

static void run_case(long line, char *text) {
    char *token = strtok(text, " \t\n");
    if (!token) return;
    const nn_optimizer_kind *kind = nn_optimizer_kind_find(token);
    if (!kind) die(line, "no such optimizer", token);
    long steps = whole(line, strtok(NULL, " \t\n"), MAX_STEPS);
    size_t count = (size_t)whole(line, strtok(NULL, " \t\n"), MAX_COUNT);
    nn_arg_value args[NN_MAX_ARGS];
    nn_arg_defaults(args, kind->args, kind->arg_count);
    bool no_decay = false, schedule = false;
    float pull = 0.3f;
    while ((token = strtok(NULL, " \t\n"))) {
        if (!strcmp(token, "no_decay")) no_decay = true;
        else if (!strncmp(token, "pull=", 5)) pull = strtof(token + 5, NULL);
        else if (!strcmp(token, "schedule")) schedule = true;
        else if (strchr(token, '=')) set_arg(line, kind, args, token);
        else die(line, "unknown option", token);
    }
    nn_optimizer opt;
    nn_error err = {0};
    if (nn_optimizer_init(&opt, kind, args, count, &err) != 0) {
        printf("error %s\n", err.message);
        return;
    }
    float *params = allocate(count, sizeof *params), *grads = allocate(count, sizeof *grads);
    unsigned char *mask = allocate(count, 1);
    for (size_t i = 0; i < count; i++) {
        params[i] = (float)(2 * sin(1.3 * (double)i + 0.4));
        mask[i] = i % 5 == 2 || (i >= 40 && i < 60);
    }
    if (no_decay && nn_optimizer_set_no_decay(&opt, mask, &err) != 0) die(line, "no_decay", err.message);
    double lr = opt.lr, momentum = opt.momentum;
    for (long t = 0; t < steps; t++) {
        for (size_t i = 0; i < count; i++)
            grads[i] = i % 7 == 0 && t % 3 == 0
                           ? 0.0f
                           : pull * params[i] + (float)(cos(0.7 * (double)i + 1.1 * (double)t) * (1 + 0.01 * (double)t));
        if (schedule) {
            opt.lr = lr * (1 + 0.5 * sin(0.05 * (double)t));
            if (nn_optimizer_has_momentum(kind)) opt.momentum = momentum * (1 - 0.05 * (1 + sin(0.03 * (double)t)));
        }
        for (size_t end = count; end > 0; end = end > BLOCK ? end - BLOCK : 0) {
            size_t first = end > BLOCK ? end - BLOCK : 0;
            nn_optimizer_update(&opt, params, grads, first, end - first);
        }
        nn_optimizer_finish_step(&opt);
    }
    printf("ok");
    for (size_t i = 0; i < count; i++) printf(" %.9g", (double)params[i]);
    printf("\n");
    free(params);
    free(grads);
    free(mask);
    nn_optimizer_free(&opt);
}

int main(int argc, char **argv) {
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: optim_eval < CASES (see tests/tools/optim_eval.c)\n");
        return 2;
    }
    char text[MAX_LINE];
    long line = 0;
    while (fgets(text, sizeof text, stdin)) {
        line++;
        if (!strchr(text, '\n') && !feof(stdin)) die(line, "line too long", "");
        run_case(line, text);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
