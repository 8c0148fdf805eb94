// node tests/onnx_run.js MODEL.onnx INPUT.f32 DIMS OUTPUT.f32 [BATCH]
// Runs MODEL in onnxruntime-node (NODE_PATH names the folder that holds
// it: tests/cli_onnx_test.sh installs it outside the repository) on
// INPUT, raw little-endian float32 of shape DIMS ("1000,1,28,28", the batch
// first), BATCH samples at a time (default 256: the last batch is smaller,
// so the batch dimension is exercised as dynamic), and writes the outputs
// as raw float32 to OUTPUT. Prints the output's dims and the model's
// producer to stdout.
"use strict";
const fs = require("fs");
const ort = require("onnxruntime-node");

async function main() {
    const [model, input, dimsText, output, batchText] = process.argv.slice(2);
    if (!output) {
        console.error("usage: node onnx_run.js MODEL.onnx INPUT.f32 DIMS OUTPUT.f32 [BATCH]");
        process.exit(2);
    }
    const dims = dimsText.split(",").map(Number);
    const per = dims.slice(1).reduce((a, b) => a * b, 1);
    const bytes = fs.readFileSync(input);
    const all = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    if (all.length !== dims[0] * per) throw new Error(`${input}: ${all.length} floats, expected ${dims[0] * per}`);
    const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
    if (session.inputNames[0] !== "input" || session.outputNames[0] !== "output")
        throw new Error(`names ${session.inputNames} -> ${session.outputNames}, expected input -> output`);
    const batch = Number(batchText || 256);
    const chunks = [];
    let outDims = null;
    for (let first = 0; first < dims[0]; first += batch) {
        const count = Math.min(batch, dims[0] - first);
        const x = new ort.Tensor("float32", all.slice(first * per, (first + count) * per), [count, ...dims.slice(1)]);
        const y = (await session.run({ input: x })).output;
        if (y.dims[0] !== count) throw new Error(`batch of ${count} gave ${y.dims[0]} outputs`);
        outDims = y.dims;
        chunks.push(Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
    }
    fs.writeFileSync(output, Buffer.concat(chunks));
    console.log(JSON.stringify({ dims: [dims[0], ...outDims.slice(1)] }));
}

main().catch((e) => {
    console.error(`onnx_run.js: ${e.message}`);
    process.exit(1);
});
