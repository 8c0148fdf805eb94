/* libFuzzer harness for the config parser (lib/config/config.h): the input
 * is the YAML text. A parse that fails must be an input error naming the
 * file; one that succeeds must lint, render (nn_config_render) to YAML
 * that parses back to the same config (nn_config_differ finds nothing) and
 * renders again to the same bytes. Seeds: tests/fuzz/corpus/config; run.sh
 * gives it a dictionary of the config's words. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/lint.h"
#include "core/error.h"

#define PATH "fuzz.yaml"
#define DIR "/fuzz/configs"

static void fail(const char *what, const char *detail) {
    fprintf(stderr, "fuzz_config: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static char *render(const nn_config *cfg) {
    nn_error err = {0};
    char *text = nn_config_render(cfg, true, &err);
    if (!text) fail("nn_config_render failed on a config that parsed", err.message);
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* An exact-size copy without a NUL, so that reading past the given
     * length is caught. */
    char *text = malloc(size + 1);
    if (!text) fail("out of memory", NULL);
    if (size) memcpy(text, data, size);
    nn_config cfg;
    nn_error err = {0};
    int status = nn_config_parse(&cfg, text, size, PATH, DIR, &err);
    free(text);
    if (status) {
        if (err.status != NN_ERR_INPUT || strncmp(err.message, PATH ":", strlen(PATH ":")))
            fail("a failed parse is not an input error that starts with the file's name", err.message);
        if (cfg.text || cfg.path || cfg.model.layers) fail("a failed parse left memory in the config", NULL);
        return 0;
    }
    if (cfg.model.layer_count < 1 || !cfg.model.layers) fail("a parsed config has no layers", NULL);
    nn_config_warning warnings[NN_CONFIG_MAX_WARNINGS];
    int count = nn_config_lint(&cfg, warnings, NN_CONFIG_MAX_WARNINGS);
    if (count < 0) fail("nn_config_lint returned a negative count", NULL);

    char *first = render(&cfg);
    nn_config again;
    if (nn_config_parse(&again, first, strlen(first), PATH, DIR, &err)) {
        fprintf(stderr, "fuzz_config: the rendered config:\n%s\n", first);
        fail("the rendered config does not parse", err.message);
    }
    char difference[512];
    if (nn_config_differ(&cfg, &again, difference, sizeof difference)) {
        fprintf(stderr, "fuzz_config: the rendered config:\n%s\n", first);
        fail("the rendered config parses to a different config", difference);
    }
    char *second = render(&again);
    if (strcmp(first, second)) {
        fprintf(stderr, "fuzz_config: first rendering:\n%s\nsecond rendering:\n%s\n", first, second);
        fail("rendering the rendered config changes it", NULL);
    }
    free(second);
    free(first);
    nn_config_free(&again);
    nn_config_free(&cfg);
    return 0;
}
