/* Prints the learning rate and momentum of every optimiser step of a
 * schedule, for tests/sched_ref.py, which compares them with torch's.
 *
 *   sched_eval < CASES
 *
 * Cases are whitespace-separated tokens:
 *
 *   case LABEL EPOCHS STEPS LR MOMENTUM
 *   sched KIND [ARG=VALUE ...]       the schedule (nnseq's name or torch's class name)
 *   child KIND [ARG=VALUE ...]       SequentialLR's schedules, in order (0 or more)
 *   metrics V ...                    ReduceLROnPlateau: the metric after each epoch (EPOCHS of them)
 *   end
 *
 * VALUE is a number, true/false, null, a choice's string (anneal_strategy=linear)
 * or a list [2,5] ([] for none). For each case it prints "case LABEL", then
 * the case's check refusal as "error MESSAGE", or one line per step:
 *
 *   EPOCH STEP LR MOMENTUM      (%.17g), as the trainer would use them: lr_at
 *                               (or lr_from_state) and momentum_at (or MOMENTUM)
 *                               before the step, observe after each epoch
 *
 * Malformed input is a message on stderr and exit 2. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optim/scheduler.h"

enum { MAX_STEPS = 1000000, MAX_EPOCHS = 100000 };

typedef struct reader {
    char token[512];
    long count; /* tokens read, for messages */
} reader;

static void die(const reader *r, const char *what) {
    fprintf(stderr, "sched_eval: token %ld (\"%s\"): %s\n", r->count, r->token, what);
    exit(2);
}

static const char *next(reader *r) {
    if (scanf("%511s", r->token) != 1) return NULL;
    r->count++;
    return r->token;
}

static const char *expect_token(reader *r, const char *what) {
    const char *token = next(r);
    if (!token) die(r, what);
    return token;
}

static double parse_number(const reader *r, const char *text, const char *what) {
    char *end;
    errno = 0;
    double value = strtod(text, &end);
    if (end == text || *end) die(r, what);
    return value;
}

static double number(reader *r, const char *what) { return parse_number(r, expect_token(r, what), what); }

/* ARG=VALUE into the schedule's argument, as the config parser would fill it. */
static void set_argument(const reader *r, nn_schedule *schedule, char *text) {
    char *equals = strchr(text, '=');
    if (!equals) die(r, "expected ARG=VALUE");
    *equals = '\0';
    const char *value = equals + 1;
    const nn_scheduler_kind *kind = schedule->kind;
    int i = nn_arg_find(kind->args, kind->arg_count, text);
    if (i < 0) die(r, "no such argument");
    const nn_arg_spec *spec = &kind->args[i];
    nn_arg_value *arg = &schedule->args[i];
    arg->given = true;
    arg->count = 1;
    if (!strcmp(value, "null") || !strcmp(value, "None")) {
        arg->is_null = true;
        return;
    }
    if (spec->type == NN_ARG_BOOL) {
        arg->value[0] = !strcmp(value, "true") || !strcmp(value, "True");
        return;
    }
    if (spec->type == NN_ARG_CHOICE) {
        for (int c = 0; spec->choices[c]; c++)
            if (!strcmp(spec->choices[c], value)) {
                arg->choice = c + 1;
                return;
            }
        die(r, "not one of the argument's choices");
    }
    if (value[0] == '[') {
        arg->is_list = true;
        arg->count = 0;
        char list[512];
        snprintf(list, sizeof list, "%s", value + 1);
        char *close = strchr(list, ']');
        if (!close) die(r, "a list without ]");
        *close = '\0';
        for (char *item = strtok(list, ","); item; item = strtok(NULL, ",")) {
            if (arg->count == NN_ARG_MAX_VALUES) die(r, "too many values in a list");
            arg->value[arg->count++] = parse_number(r, item, "a number in the list");
        }
        return;
    }
    arg->value[0] = parse_number(r, value, "a number");
    arg->is_integer = !strpbrk(value, ".eEn");
}

/* KIND ARG=VALUE ... up to the next keyword, which is left in r->token. */
static const char *read_schedule(reader *r, nn_schedule *schedule) {
    const char *name = expect_token(r, "a schedule kind");
    if (!(schedule->kind = nn_scheduler_kind_find(name))) die(r, "no such schedule");
    nn_arg_defaults(schedule->args, schedule->kind->args, schedule->kind->arg_count);
    const char *token;
    while ((token = expect_token(r, "ARG=VALUE, child, metrics or end")) && strchr(token, '='))
        set_argument(r, schedule, r->token);
    return token;
}

static void run(const char *label, nn_schedule *schedule, int epochs, int64_t steps, double lr, double momentum,
                const double *metrics, int metric_count) {
    printf("case %s\n", label);
    nn_error err = {0};
    if (schedule->kind->check && schedule->kind->check(schedule, &err)) {
        printf("error %s\n", err.message);
        return;
    }
    const nn_scheduler_kind *kind = schedule->kind;
    double state[NN_SCHEDULE_MAX_STATE];
    if (kind->state_count) {
        if (kind->state_count > NN_SCHEDULE_MAX_STATE || metric_count != epochs) {
            printf("error sched_eval: a stateful schedule needs %d metrics, got %d\n", epochs, metric_count);
            return;
        }
        kind->state_init(schedule, lr, state);
    }
    for (int epoch = 0; epoch < epochs; epoch++) {
        for (int64_t j = 0; j < steps; j++) {
            nn_schedule_time time = {epoch, epoch * steps + j, steps, epochs};
            double rate = kind->state_count ? kind->lr_from_state(schedule, state) : kind->lr_at(schedule, lr, &time);
            double m = kind->momentum_at ? kind->momentum_at(schedule, momentum, &time) : momentum;
            printf("%d %lld %.17g %.17g\n", epoch, (long long)time.step, rate, m);
        }
        if (kind->state_count) kind->observe(schedule, state, metrics[epoch]);
    }
}

int main(void) {
    reader r = {.count = 0};
    static double metrics[MAX_EPOCHS];
    while (next(&r)) {
        if (strcmp(r.token, "case")) die(&r, "expected case");
        char label[128];
        snprintf(label, sizeof label, "%s", expect_token(&r, "a label"));
        double epochs = number(&r, "EPOCHS"), steps = number(&r, "STEPS");
        if (!(epochs >= 1 && epochs <= MAX_EPOCHS && steps >= 1 && epochs * steps <= MAX_STEPS))
            die(&r, "EPOCHS and STEPS must be >= 1, EPOCHS <= 100000 and EPOCHS * STEPS <= 1000000");
        double lr = number(&r, "LR"), momentum = number(&r, "MOMENTUM");
        if (strcmp(expect_token(&r, "sched"), "sched")) die(&r, "expected sched");
        nn_schedule parsed = {0};
        nn_schedule children[NN_SCHEDULE_MAX_CHILDREN];
        int metric_count = 0;
        const char *token = read_schedule(&r, &parsed);
        while (!strcmp(token, "child")) {
            if (parsed.child_count == NN_SCHEDULE_MAX_CHILDREN) die(&r, "too many children");
            nn_schedule *child = &children[parsed.child_count++];
            *child = (nn_schedule){0};
            token = read_schedule(&r, child);
        }
        if (!strcmp(token, "metrics")) {
            while (strcmp(token = expect_token(&r, "a metric or end"), "end")) {
                if (metric_count == MAX_EPOCHS) die(&r, "too many metrics");
                metrics[metric_count++] = parse_number(&r, token, "a metric");
            }
        }
        if (strcmp(token, "end")) die(&r, "expected end");
        /* The schedule the trainer gets is a copy, children owned (nn_schedule_copy). */
        parsed.children = parsed.child_count ? children : NULL;
        nn_schedule schedule;
        nn_error err = {0};
        if (nn_schedule_copy(&schedule, &parsed, &err)) {
            fprintf(stderr, "sched_eval: %s\n", err.message);
            return 1;
        }
        run(label, &schedule, (int)epochs, (int64_t)steps, lr, momentum, metrics, metric_count);
        nn_schedule_clear(&schedule);
    }
    return 0;
}
