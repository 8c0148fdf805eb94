/* nnseq export CKPT OUT: the model as numpy's .npz (the state_dict), ONNX,
 * or a dependency-free C source (issue 17), by OUT's extension or --format. */
#include <stdlib.h>
#include <string.h>

#include "io/atomic_file.h"
#include "io/c_export.h"
#include "io/checkpoint.h"
#include "io/npz.h"
#include "io/onnx_export.h"
#include "train/train.h"
#include "cli.h"

static const char export_help[] =
    "usage: nnseq export CKPT OUT.npz|OUT.onnx|OUT.c [--format npz|onnx|c] [--int8]\n"
    "                    [--allow-nonfinite]\n"
    "\n"
    "Writes the trained model in the format OUT's extension names (or --format):\n"
    "  .npz   the weights and buffers keyed by PyTorch's state_dict names\n"
    "         (0.weight, 4.running_mean, ...). In Python:\n"
    "           w = np.load('OUT.npz')\n"
    "           model.load_state_dict({k: torch.from_numpy(v) for k, v in w.items()})\n"
    "  .onnx  an ONNX model (opset 13, dynamic batch), when nnseq was built with\n"
    "         protobuf-c; the normalisation's mean and std in its metadata_props\n"
    "  .c     one C99 source and its header (model.c, model.h: the base name is\n"
    "         the prefix of the C names and must be a C identifier) with\n"
    "         int model_predict(const float *input, float *output), no allocation,\n"
    "         nothing but libm; model_INPUT_SIZE, model_OUTPUT_SIZE, the input\n"
    "         shape and the normalisation (model_MEAN_VALUES, model_STD_VALUES)\n"
    "         as macros.\n"
    "ONNX and C take the input as the first layer sees it: float32 after the\n"
    "1/255 scaling and normalize. --int8 (.c only) quantises the weights per\n"
    "output channel and each Linear/Conv input per tensor, calibrated on the\n"
    "first 1000 samples of the checkpoint's training data (which must be there).\n"
    "Any other extension or format is refused.\n";

#define CALIBRATION_SAMPLES 1000

/* The first CALIBRATION_SAMPLES training inputs, transformed as in training. */
static float *calibration_inputs(const nn_checkpoint *ck, int *count, nn_error *err) {
    nn_dataset set;
    if (nn_load_split(&ck->config, &ck->config.data.train, ck->model, true, "train", &set, err) != 0) return NULL;
    int n = set.count < CALIBRATION_SAMPLES ? (int)set.count : CALIBRATION_SAMPLES;
    size_t size = nn_shape_size(ck->model->input_shape);
    float *inputs = n > 0 ? malloc((size_t)n * size * sizeof *inputs) : NULL;
    if (!inputs) nn_error_set(err, n > 0 ? NN_ERR_RUNTIME : NN_ERR_INPUT, n > 0 ? "out of memory" : "no training samples to calibrate --int8 on");
    else nn_dataset_gather_inputs(&set, &ck->transform, NULL, 0, n, inputs);
    nn_dataset_free(&set);
    *count = n;
    return inputs;
}

static int write_npz(const nn_checkpoint *ck, const char *out, nn_error *err) {
    size_t state_count;
    nn_array *state = nn_model_state(ck->model, &state_count, err);
    int status = !state || nn_npz_write(out, state, state_count, err) != 0 ? -1 : 0;
    if (status == 0) fprintf(stderr, "nnseq: wrote %zu arrays to %s\n", state_count, out);
    free(state);
    return status;
}

int command_export(int argc, char **argv) {
    bool help = false, allow_nonfinite = false, int8 = false;
    const char *positionals[2], *format = NULL;
    int count;
    cli_option options[] = {{"--allow-nonfinite", NULL, &allow_nonfinite}, {"--int8", NULL, &int8}, {"--format", &format, NULL}};
    if (cli_parse("export", argc, argv, 2, options, 3, positionals, 2, &count, &help)) return EXIT_USAGE;
    if (help) {
        fputs(export_help, stdout);
        return EXIT_DONE;
    }
    if (count != 2) {
        fprintf(stderr, "nnseq export: expected CKPT and OUT\n%s", export_help);
        return EXIT_USAGE;
    }
    const char *out = positionals[1], *slash = strrchr(out, '/'), *dot = strrchr(slash ? slash : out, '.');
    const char *chosen = format ? format : dot ? dot + 1 : "";
    if (strcmp(chosen, "npz") && strcmp(chosen, "onnx") && strcmp(chosen, "c")) {
        if (format) fprintf(stderr, "nnseq export: --format %s: expected npz, onnx or c\n", format);
        else fprintf(stderr, "nnseq export: %s: cannot tell the format from %s%s%s (expected .npz, .onnx or .c, or --format npz|onnx|c)\n",
                     out, dot ? "the extension '" : "a name without an extension", dot ? dot : "", dot ? "'" : "");
        return EXIT_USAGE;
    }
    if (int8 && strcmp(chosen, "c")) {
        fprintf(stderr, "nnseq export: --int8 applies to the C source only (OUT.c or --format c), not %s\n", chosen);
        return EXIT_USAGE;
    }
    nn_error err = {0};
    if (!strcmp(chosen, "onnx") && !nn_onnx_available()) {
        nn_error_set(&err, NN_ERR_INPUT, "%s: this nnseq was built without ONNX export (it needs protobuf-c and onnx.proto: "
                     "Debian's libprotobuf-c-dev, protobuf-c-compiler and libonnx-dev, then make)", out);
        return cli_fail(&err);
    }
    if (nn_output_check(out, "export", &err) != 0) return cli_fail(&err);
    nn_checkpoint ck;
    if (nn_checkpoint_load(&ck, positionals[0], allow_nonfinite, &err) != 0) return cli_fail(&err);
    int status = 0;
    if (!strcmp(chosen, "npz")) status = write_npz(&ck, out, &err);
    else if (!strcmp(chosen, "onnx")) {
        status = nn_onnx_export(&ck, out, &err);
        if (status == 0) fprintf(stderr, "nnseq: wrote %s\n", out);
    } else {
        nn_c_export_options c_options = {int8, NULL, 0};
        float *calibration = NULL;
        if (int8) {
            calibration = calibration_inputs(&ck, &c_options.calibration_count, &err);
            c_options.calibration = calibration;
            if (!calibration) status = -1;
        }
        if (status == 0) status = nn_c_export(&ck, out, &c_options, &err);
        if (status == 0) fprintf(stderr, "nnseq: wrote %s and its header%s\n", out, int8 ? " (int8)" : "");
        free(calibration);
    }
    nn_checkpoint_free(&ck);
    return status == 0 ? EXIT_DONE : cli_fail(&err);
}
