/* nnseq export CKPT OUT.npz: the model's state_dict as numpy's .npz. */
#include <stdlib.h>
#include <string.h>

#include "io/atomic_file.h"

#include "io/checkpoint.h"
#include "io/npz.h"
#include "cli.h"

static const char export_help[] =
    "usage: nnseq export CKPT OUT.npz [--allow-nonfinite]\n"
    "\n"
    "Writes the checkpoint's weights and buffers as a .npz keyed by PyTorch's\n"
    "state_dict names (0.weight, 0.bias, 4.running_mean, ...). In Python:\n"
    "  w = np.load('OUT.npz')\n"
    "  model.load_state_dict({k: torch.from_numpy(v) for k, v in w.items()})\n"
    "\n"
    "The format follows the extension: .npz is the only one written so far;\n"
    "any other extension is refused rather than written as .npz.\n";

int command_export(int argc, char **argv) {
    bool help = false;
    const char *positionals[2];
    int count;
    bool allow_nonfinite = false;
    cli_option options[] = {{"--allow-nonfinite", NULL, &allow_nonfinite}};
    if (cli_parse("export", argc, argv, 2, options, 1, positionals, 2, &count, &help)) return EXIT_USAGE;
    if (help) {
        fputs(export_help, stdout);
        return EXIT_DONE;
    }
    if (count != 2) {
        fprintf(stderr, "nnseq export: expected CKPT and OUT.npz\n%s", export_help);
        return EXIT_USAGE;
    }
    const char *out = positionals[1], *dot = strrchr(out, '.');
    if (!dot || strchr(dot, '/') || strcmp(dot, ".npz")) {
        fprintf(stderr, "nnseq export: %s: cannot tell the format from %s%s%s (expected OUT.npz: numpy's .npz is "
                "the format nnseq exports)\n", out, dot && !strchr(dot, '/') ? "the extension '" : "a name without an extension",
                dot && !strchr(dot, '/') ? dot : "", dot && !strchr(dot, '/') ? "'" : "");
        return EXIT_USAGE;
    }
    nn_error err = {0};
    if (nn_output_check(out, "export", &err) != 0) return cli_fail(&err);
    nn_checkpoint ck;
    if (nn_checkpoint_load(&ck, positionals[0], allow_nonfinite, &err) != 0) return cli_fail(&err);
    size_t state_count;
    nn_array *state = nn_model_state(ck.model, &state_count, &err);
    int status = EXIT_DONE;
    if (!state || nn_npz_write(positionals[1], state, state_count, &err) != 0) status = cli_fail(&err);
    else fprintf(stderr, "nnseq: wrote %zu arrays to %s\n", state_count, positionals[1]);
    free(state);
    nn_checkpoint_free(&ck);
    return status;
}
