/* A trained model as ONNX (issue 17): opset 13, written with protobuf-c
 * over the onnx.proto Debian ships, when nnseq was built with them. */
#ifndef NNSEQ_ONNX_EXPORT_H
#define NNSEQ_ONNX_EXPORT_H

#include <stdbool.h>

#include "core/error.h"
#include "io/checkpoint.h"

/* Whether this build can write ONNX (protobuf-c and onnx.proto were there). */
bool nn_onnx_available(void);
/* Writes the model to path atomically; NN_ERR_INPUT for a build without
 * ONNX (saying how to get it) or a layer ONNX export cannot express. */
int nn_onnx_export(const nn_checkpoint *checkpoint, const char *path, nn_error *err);

#endif
