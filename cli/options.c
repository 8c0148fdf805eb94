#define _GNU_SOURCE   /* sched_getaffinity, CPU_COUNT */
#include <cblas.h>
#include <errno.h>
#include <sched.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config.h"
#include "cli.h"

static int usage_error(const char *command, const char *message, const char *detail) {
    fprintf(stderr, "nnseq %s: %s%s\nTry 'nnseq %s --help'.\n", command, message, detail ? detail : "", command);
    return EXIT_USAGE;
}

int cli_parse(const char *command, int argc, char **argv, int first, const cli_option *options, int option_count,
              const char **positionals, int max_positionals, int *positional_count, bool *help) {
    *positional_count = 0;
    for (int i = first; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            *help = true;
            continue;
        }
        if (arg[0] != '-' || strcmp(arg, "-") == 0) {
            if (*positional_count >= max_positionals) return usage_error(command, "unexpected argument: ", arg);
            positionals[(*positional_count)++] = arg;
            continue;
        }
        const char *equals = strchr(arg, '=');
        size_t name_length = equals ? (size_t)(equals - arg) : strlen(arg);
        const cli_option *option = NULL;
        for (int o = 0; o < option_count; o++)
            if (strlen(options[o].name) == name_length && strncmp(options[o].name, arg, name_length) == 0)
                option = &options[o];
        if (!option) {
            const char *names[32];
            int n = option_count < 32 ? option_count : 32;
            for (int o = 0; o < n; o++) names[o] = options[o].name;
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)name_length, arg);
            const char *nearest = nn_nearest_name(name, names, n);
            char detail[256];
            snprintf(detail, sizeof detail, "'%s'%s%s%s", name, nearest ? " (did you mean '" : "",
                     nearest ? nearest : "", nearest ? "'?)" : "");
            return usage_error(command, "unknown option ", detail);
        }
        if (option->flag) {
            if (equals) return usage_error(command, "this option takes no value: ", arg);
            *option->flag = true;
        } else if (equals) {
            *option->value = equals + 1;
        } else {
            if (i + 1 >= argc) return usage_error(command, "missing value after ", arg);
            *option->value = argv[++i];
        }
    }
    return 0;
}

int cli_int(const char *command, const char *name, const char *text, long min, long max, long *out) {
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno || end == text || *end || value < min || value > max) {
        fprintf(stderr, "nnseq %s: %s expects an integer from %ld to %ld, got '%s'\n", command, name, min, max, text);
        return EXIT_USAGE;
    }
    *out = value;
    return 0;
}

int cli_double(const char *command, const char *name, const char *text, double min, double *out) {
    char *end;
    errno = 0;
    double value = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(value) || value < min) {
        fprintf(stderr, "nnseq %s: %s expects a number >= %g, got '%s'\n", command, name, min, text);
        return EXIT_USAGE;
    }
    *out = value;
    return 0;
}

int cli_format(const char *command, const char *text, output_format *out) {
    if (strcmp(text, "text") == 0) *out = FORMAT_TEXT;
    else if (strcmp(text, "json") == 0) *out = FORMAT_JSON;
    else if (strcmp(text, "tsv") == 0) *out = FORMAT_TSV;
    else {
        fprintf(stderr, "nnseq %s: --format expects text, json or tsv, got '%s'\n", command, text);
        return EXIT_USAGE;
    }
    return 0;
}

/* nnseq's own threads split each batch; OpenBLAS runs one thread in each,
 * since its threads hurt on products this small (and collapse when another
 * process holds a core). The default is every core the process may use. */
/* OpenBLAS's pthread build starts its own pool when it loads, and the pool
 * spins (sched_yield) for a while before it sleeps, beside nnseq's threads:
 * 0.1 s of a core at every start, a third of a short eval. Its exported
 * shutdown ends the pool; with one thread OpenBLAS never restarts it.
 * Weak, so a BLAS without it links and skips this. (Debian's serial
 * OpenBLAS would need no pool, but its GEMM is not safe to call from two
 * threads at once: measured, its results vary from run to run.) */
extern int blas_thread_shutdown_(void) __attribute__((weak));

int cli_threads(const char *command, const char *text, int *threads) {
    openblas_set_num_threads(1);
    if (blas_thread_shutdown_) blas_thread_shutdown_();
    cpu_set_t cpus;
    *threads = sched_getaffinity(0, sizeof cpus, &cpus) == 0 && CPU_COUNT(&cpus) > 0 ? CPU_COUNT(&cpus) : 1;
    if (!text) return 0;
    long value;
    if (cli_int(command, "--threads", text, 1, 1024, &value)) return EXIT_USAGE;
    /* More threads than cores only wait for each other (and each costs a
     * replica's memory): capped, with a note, so a script that asks for
     * more still runs. */
    if (value > *threads) {
        fprintf(stderr, "nnseq %s: note: --threads %ld is more than the %d core%s this process may use: using %d\n",
                command, value, *threads, *threads == 1 ? "" : "s", *threads);
        return 0;
    }
    *threads = (int)value;
    return 0;
}

int cli_fail(const nn_error *err) {
    fprintf(stderr, "nnseq: %s\n", err->message);
    return err->status == NN_ERR_INPUT ? EXIT_USAGE : EXIT_FAILED;
}

int cli_make_parent_dirs(const char *path, nn_error *err) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return 0;
    *slash = '\0';
    for (char *p = dir + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(dir, 0777) != 0 && errno != EEXIST)
                return nn_error_set(err, NN_ERR_RUNTIME, "%s: cannot create folder: %s", dir, strerror(errno));
            *p = saved;
            if (saved == '\0') break;
        }
    }
    return 0;
}

void cli_print_json_string(const char *text) {
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p == '"' || *p == '\\') printf("\\%c", *p);
        else if (*p < 0x20) printf("\\u%04x", *p);
        else putchar(*p);
    }
    putchar('"');
}
