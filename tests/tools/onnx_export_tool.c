/* onnx_export_tool CKPT OUT.onnx: nn_onnx_export on a loaded checkpoint,
 * for tests/cli_onnx_test.sh until `nnseq export CKPT OUT.onnx` is wired
 * (issue 17). `onnx_export_tool --available` exits 0 when this build
 * writes ONNX, else 77 with the reason. Exit status as nnseq's: 2 for bad
 * input (a layer ONNX cannot express), 1 for a runtime failure. */
#include <stdio.h>
#include <string.h>

#include "io/checkpoint.h"
#include "io/onnx_export.h"

int main(int argc, char **argv) {
    nn_error err = {0};
    if (argc == 2 && !strcmp(argv[1], "--available")) {
        if (nn_onnx_available()) return 0;
        nn_onnx_export(NULL, "OUT.onnx", &err);
        fprintf(stderr, "%s\n", err.message);
        return 77;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: onnx_export_tool CKPT OUT.onnx | --available\n");
        return 2;
    }
    nn_checkpoint ck;
    if (nn_checkpoint_load(&ck, argv[1], false, &err) != 0) {
        fprintf(stderr, "onnx_export_tool: %s\n", err.message);
        return err.status;
    }
    int status = 0;
    if (nn_onnx_export(&ck, argv[2], &err) != 0) {
        fprintf(stderr, "onnx_export_tool: %s\n", err.message);
        status = err.status;
    }
    nn_checkpoint_free(&ck);
    return status;
}
