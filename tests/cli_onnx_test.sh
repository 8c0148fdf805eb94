#!/usr/bin/env bash
# ONNX export (issue 17) checked by a real runtime: for every shipped config
# whose data is there (make data) and for 14 small generated models that
# between them hold every layer kind nnseq has (each kind the exporter
# maps), train one epoch (the image configs on their first 2000 training
# images; ONNX_CONFIGS="..." picks config paths), export CKPT model.onnx,
# check it with python3-onnx's checker (full_check: shapes inferred too),
# run it in onnxruntime-node 1.30.0 on 1000 test inputs (every row for the
# CSV configs, which have fewer), normalised as the model's metadata_props
# say, and compare with `nnseq predict CKPT --logits`: max |diff| <= 1e-5,
# printed per model. Layers ONNX 13 cannot express are refused with exit 2.
# ONNX_KEEP=1 keeps the scratch folder.
#
# onnxruntime-node is installed once, outside the repository, into
# ${XDG_CACHE_HOME:-$HOME/.cache}/nnseq-test/onnxruntime (ONNX_CACHE), as
# `ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node@1.30.0`; its
# npm package carries the Linux x64 library. Skipped (77, saying why) when
# this nnseq has no ONNX, or node, npm, the registry or python3-onnx is
# missing.
#
# Until every tree has `nnseq export CKPT OUT.onnx`, the export goes through
# $TOOLS/onnx_export_tool (nn_onnx_export on the loaded checkpoint) when
# nnseq's export does not take .onnx.
set -u
NNSEQ=${NNSEQ:?set NNSEQ to the nnseq binary}
PYTHON=${PYTHON:-/usr/bin/python3}
root=$(cd "$(dirname "$0")/.." && pwd)
TOOLS=${TOOLS:-$root/build/tests/tools}
ONNX_CACHE=${ONNX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nnseq-test/onnxruntime}
TOLERANCE=1e-5
work=$(mktemp -d)
[ -n "${ONNX_KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/shell_checks.sh"
name=cli_onnx

if "$NNSEQ" export --help 2>&1 | grep -q 'onnx'; then
    export_onnx() { "$NNSEQ" export "$1" "$2"; }
    "$NNSEQ" export "$work/none.ckpt" "$work/x.onnx" 2>"$work/why" | :
    if grep -q 'built without ONNX' "$work/why"; then skip_all $name "$(cat "$work/why")"; fi
else
    [ -x "$TOOLS/onnx_export_tool" ] || skip_all $name "no $TOOLS/onnx_export_tool (make $TOOLS/onnx_export_tool)"
    export_onnx() { "$TOOLS/onnx_export_tool" "$1" "$2"; }
    "$TOOLS/onnx_export_tool" --available 2>"$work/why" || skip_all $name "$(cat "$work/why")"
fi
command -v node >/dev/null 2>&1 || skip_all $name "no node (Debian's nodejs)"
"$PYTHON" -c 'import onnx, numpy, yaml' 2>/dev/null ||
    skip_all $name "$PYTHON cannot import onnx, numpy and yaml (Debian's python3-onnx)"
if [ ! -d "$ONNX_CACHE/node_modules/onnxruntime-node" ]; then
    command -v npm >/dev/null 2>&1 || skip_all $name "no npm to install onnxruntime-node"
    mkdir -p "$ONNX_CACHE" && [ -f "$ONNX_CACHE/package.json" ] ||
        echo '{"name": "nnseq-onnx-test", "private": true}' >"$ONNX_CACHE/package.json"
    (cd "$ONNX_CACHE" && ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund onnxruntime-node@1.30.0) \
        >"$work/npm.log" 2>&1 ||
        skip_all $name "npm could not install onnxruntime-node@1.30.0 (registry unreachable?): $(tail -n 3 "$work/npm.log")"
fi
export NODE_PATH=$ONNX_CACHE/node_modules
node -e 'require("onnxruntime-node")' 2>"$work/why" || skip_all $name "onnxruntime-node does not load: $(head -c 300 "$work/why")"

# verify NAME CKPT RAW.npy: export, check, run, compare; prints the figure
verify() {
    local what=$1 ckpt=$2 raw=$3 dir=$work/$1
    mkdir -p "$dir"
    if ! export_onnx "$ckpt" "$dir/model.onnx" 2>"$dir/export.err"; then
        fail "$what: export: $(cat "$dir/export.err")"; return
    fi
    check "$what: onnx.checker accepts it" "$PYTHON" -c '
import sys, onnx
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
assert m.ir_version == 7 and [(o.domain, o.version) for o in m.opset_import] == [("", 13)], m.opset_import
assert m.producer_name == "nnseq" and m.producer_version, m.producer_name
assert [i.name for i in m.graph.input] == ["input"] and [o.name for o in m.graph.output] == ["output"]
assert m.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
assert m.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
' "$dir/model.onnx"
    # the inputs as the first layer sees them, from the metadata's statistics
    if ! "$PYTHON" - "$dir/model.onnx" "$raw" "$dir/in.f32" >"$dir/dims" <<'PY'; then
import json, sys, numpy as np, onnx
meta = {p.key: p.value for p in onnx.load(sys.argv[1]).metadata_props}
x = np.load(sys.argv[2])
shape = json.loads(meta["input_shape"])
x = x.astype(np.float32) / np.float32(255) if x.dtype == np.uint8 else x.astype(np.float32)
x = x.reshape(len(x), *shape)
layout = meta["normalize_layout"]
if layout != "none":
    mean = np.array(json.loads(meta["normalize_mean"]), np.float32)
    std = np.array(json.loads(meta["normalize_std"]), np.float32)
    if layout == "per_channel":
        mean, std = mean.reshape(-1, *[1] * (len(shape) - 1)), std.reshape(-1, *[1] * (len(shape) - 1))
    elif layout == "per_value":
        mean, std = mean.reshape(shape), std.reshape(shape)
    x = (x - mean) / std
np.ascontiguousarray(x, "<f4").tofile(sys.argv[3])
print(",".join(str(d) for d in x.shape))
PY
        fail "$what: preparing the inputs"; return
    fi
    if ! "$NNSEQ" predict "$ckpt" "$raw" --input-format npy --logits --output "$dir/ref.npy" 2>"$dir/predict.err"; then
        fail "$what: nnseq predict: $(cat "$dir/predict.err")"; return
    fi
    if ! node "$root/tests/onnx_run.js" "$dir/model.onnx" "$dir/in.f32" "$(cat "$dir/dims")" "$dir/out.f32" \
        >/dev/null 2>"$dir/run.err"; then
        fail "$what: onnxruntime: $(cat "$dir/run.err")"; return
    fi
    check "$what: onnxruntime's outputs are nnseq's to $TOLERANCE" "$PYTHON" - "$dir/ref.npy" "$dir/out.f32" \
        "$what" "$TOLERANCE" "$(du -b "$dir/model.onnx" | cut -f1)" <<'PY'
import sys, numpy as np
ref = np.load(sys.argv[1])
out = np.fromfile(sys.argv[2], "<f4").reshape(ref.shape)
diff = float(np.abs(out.astype(np.float64) - ref).max())
spread = float(ref.std(axis=0).max())
if spread < 1e-3:
    print(f"{sys.argv[3]}: the outputs hardly vary across samples (std {spread:.3g}): the comparison shows nothing",
          file=sys.stderr)
    sys.exit(1)
print(f"{sys.argv[3]}: {len(ref)} samples x {ref.shape[1]} outputs, max |onnx - nnseq| = {diff:.3g} "
      f"(largest |logit| {float(np.abs(ref).max()):.3g}), {sys.argv[5]} bytes of ONNX", file=sys.stderr)
sys.exit(0 if diff <= float(sys.argv[4]) else 1)
PY
}

# The shipped configs, trained one epoch on a cut of their data into $work.
# prepare_config NAME writes $work/NAME.yaml and $work/NAME.raw.npy, or
# returns 1 when the data is not there.
prepare_config() {
    "$PYTHON" - "$root/configs/$1.yaml" "$work" <<'PY'
import gzip, os, sys, numpy as np, yaml
path, work = sys.argv[1], sys.argv[2]
name = os.path.splitext(os.path.basename(path))[0]
cfg = yaml.safe_load(open(path))
base = os.path.dirname(os.path.abspath(path))
data = cfg["data"]
here = lambda p: os.path.normpath(os.path.join(base, p))
def idx_read(p):
    raw = (gzip.open if p.endswith(".gz") else open)(p, "rb").read()
    rank = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return raw[:4], dims, raw[4 + 4 * rank:]
def idx_cut(src, dst, count):
    magic, dims, body = idx_read(src)
    per = int(np.prod(dims[1:])) if len(dims) > 1 else 1
    dims[0] = min(dims[0], count)
    with open(dst, "wb") as f:
        f.write(magic + b"".join(d.to_bytes(4, "big") for d in dims) + body[:dims[0] * per])
try:
    if data.get("format", "idx") == "idx":
        for split, count in (("train", 2000), ("test", 1000)):
            for key in ("images", "labels"):
                if key in data[split]:
                    src = here(data[split][key])
                    dst = os.path.join(work, f"{name}.{split}.{key}.idx")
                    idx_cut(src, dst, count)
                    data[split][key] = dst
        _, dims, body = idx_read(data["test"]["images"])
        shape = cfg["model"].get("input_shape") or dims[1:]
        np.save(os.path.join(work, name + ".raw.npy"), np.frombuffer(body, np.uint8).reshape(dims[0], *shape))
    else:
        data["train"]["file"] = here(data["train"]["file"])
        csv = data.get("csv", {})
        first, last = (int(v) for v in str(csv["features"]).split(":"))
        x = np.loadtxt(data["train"]["file"], delimiter=",", skiprows=int(csv.get("skip_rows", 0)),
                       usecols=range(first, last + 1), ndmin=2)
        np.save(os.path.join(work, name + ".raw.npy"), x.astype(np.float32))
except FileNotFoundError as e:
    print(f"{name}: {e.filename} is not there (make data)", file=sys.stderr)
    sys.exit(1)
cfg["train"]["epochs"] = 1
cfg["checkpoint"] = {"path": os.path.join(work, name + ".ckpt")}
yaml.safe_dump(cfg, open(os.path.join(work, name + ".yaml"), "w"), sort_keys=False)
PY
}

for config in ${ONNX_CONFIGS:-"$root"/configs/*.yaml}; do
    config_name=$(basename "$config" .yaml)
    if ! prepare_config "$config_name" 2>"$work/why"; then
        skip_part $name "$(cat "$work/why")"; continue
    fi
    if ! "$NNSEQ" train "$work/$config_name.yaml" --threads 2 >/dev/null 2>"$work/train.err"; then
        fail "$config_name: training: $(head -c 400 "$work/train.err")"; continue
    fi
    verify "$config_name" "$work/$config_name.ckpt" "$work/$config_name.raw.npy"
done

# Generated models covering every kind the exporter maps: (3, 12, 12)
# images and (4, 20) sequences, random inputs and labels.
"$PYTHON" - "$work" <<'PY' || fail "generating the data"
import sys, numpy as np
rng = np.random.default_rng(17)
for name, shape in (("images", (3, 12, 12)), ("sequences", (4, 20))):
    for split, count in (("train", 96), ("test", 1000)):
        np.save(f"{sys.argv[1]}/{name}.{split}.x.npy", rng.standard_normal((count, *shape)).astype(np.float32) * 2 + 0.5)
        np.save(f"{sys.argv[1]}/{name}.{split}.y.npy", rng.integers(0, 10, count).astype(np.int64))
PY
shape_of() { if [ "$1" = images ]; then echo "[3, 12, 12]"; else echo "[4, 20]"; fi; }
generated_config() { # NAME DATA NORMALIZE LAYERS... (DATA: images or sequences)
    local gname=$1 data=$2 normalize=$3; shift 3
    {
        printf '%s\n' "seed: 5" "data:" "  format: npy" \
            "  train: {features: $work/$data.train.x.npy, targets: $work/$data.train.y.npy}" \
            "  test: {features: $work/$data.test.x.npy, targets: $work/$data.test.y.npy}" \
            "  normalize: $normalize" "model:" "  input_shape: $(shape_of "$data")" "  layers:"
        for layer in "$@"; do printf '    - %s\n' "$layer"; done
        printf '%s\n' "optimizer: {name: adam, lr: 0.01}" "train: {epochs: 1, batch_size: 16}" \
            "checkpoint: {path: $work/$gname.ckpt}"
    } >"$work/$gname.yaml"
}
# Each generated model is a few kinds then Flatten and Linear, short enough
# that its outputs still vary from sample to sample (verify checks they do:
# a model that maps everything to one output would hide a wrong mapping).
# DATA|NORMALIZE|LAYER|LAYER...
model_number=0
while IFS='|' read -r data normalize layers; do
    model_number=$((model_number + 1))
    gname=generated_$model_number
    IFS='|' read -r -a layer_list <<EOF
$layers
EOF
    generated_config "$gname" "$data" "$normalize" "${layer_list[@]}" "Flatten" "Linear: {out_features: 10}"
    if ! "$NNSEQ" train "$work/$gname.yaml" --threads 2 >/dev/null 2>"$work/train.err"; then
        fail "$gname ($layers): training: $(head -c 600 "$work/train.err")"; continue
    fi
    echo "$gname: $data: $layers" >&3
    verify "$gname" "$work/$gname.ckpt" "$work/$data.test.x.npy"
done <<'MODELS'
images|auto|Conv2d: {out_channels: 6, kernel_size: 3, padding: 1}|BatchNorm2d|PReLU: {num_parameters: 6}|Conv2d: {out_channels: 6, kernel_size: 3, padding: same, padding_mode: reflect, groups: 2, dilation: 2}|LeakyReLU: {negative_slope: 0.2}
images|auto|Conv2d: {out_channels: 6, kernel_size: [3, 2], padding: [1, 2], padding_mode: replicate, stride: [1, 2], bias: false}|ELU: {alpha: 0.7}|InstanceNorm2d: {affine: true}|SELU|InstanceNorm2d: {track_running_stats: true}
images|auto|ConvTranspose2d: {out_channels: 4, kernel_size: 3, stride: 2, padding: 1, output_padding: 1}|CELU: {alpha: 1.3}|GroupNorm: {num_groups: 2}|Softplus: {beta: 2, threshold: 3}|MaxPool2d: {kernel_size: 3, stride: 2, padding: 1, ceil_mode: true}
images|{mean: [0.1, 0.2, 0.3], std: [1.5, 2, 2.5]}|Softsign|LocalResponseNorm: {size: 3}|Hardsigmoid|ZeroPad2d: {padding: 1}|Hardswish|ConstantPad2d: {padding: [1, 0, 2, 1], value: 0.5}
images|auto|SiLU|ReflectionPad2d: {padding: 1}|Mish|ReplicationPad2d: {padding: [1, 2, 0, 1]}|GELU|AvgPool2d: {kernel_size: 2, padding: 1, count_include_pad: false}|GELU: {approximate: tanh}
images|auto|Upsample: {scale_factor: 2}|Hardtanh: {min_val: -0.5, max_val: 2}|MaxPool2d: {kernel_size: 2, dilation: 2}|ReLU6|Upsample: {scale_factor: [1.5, 1.5], mode: bilinear}|Threshold: {threshold: 0.1, value: -1}
images|auto|UpsamplingBilinear2d: {size: [12, 14]}|Dropout2d|UpsamplingNearest2d: {scale_factor: 2}|AvgPool2d: {kernel_size: 3, stride: 2, ceil_mode: true}|Identity|Upsample: {size: [13, 15], mode: nearest-exact}
images|auto|Upsample: {size: [8, 8], mode: bicubic}|AdaptiveMaxPool2d: {output_size: 4}|Tanh|AdaptiveAvgPool2d: {output_size: 2}|Softmax: {dim: 1}
images|auto|Upsample: {scale_factor: 2, mode: bilinear, align_corners: true}|AdaptiveAvgPool2d: {output_size: 1}|Flatten|Unflatten: {dim: 1, unflattened_size: [3, 1, 1]}|AdaptiveMaxPool2d: {output_size: 1}
images|auto|LayerNorm: {normalized_shape: [12, 12]}|Flatten: {start_dim: 2}|Unflatten: {dim: 2, unflattened_size: [4, 36]}|LayerNorm: {normalized_shape: 36, elementwise_affine: false}|Flatten|Linear: {out_features: 24}|BatchNorm1d|PReLU|AlphaDropout|Sigmoid|Dropout|Linear: {out_features: 12}|FeatureAlphaDropout|ReLU|LogSoftmax: {dim: 1}
sequences|{mean: 0.5, std: 2}|Conv1d: {out_channels: 8, kernel_size: 3, padding: 1}|BatchNorm1d|ReLU|Conv1d: {out_channels: 8, kernel_size: 3, padding: same, padding_mode: reflect, groups: 4}|MaxPool1d: {kernel_size: 2}
sequences|{mean: 0.5, std: 2}|ConstantPad1d: {padding: [1, 2], value: 0.1}|ReflectionPad1d: {padding: 2}|ReplicationPad1d: {padding: [0, 1]}|AvgPool1d: {kernel_size: 3, stride: 2, ceil_mode: true}|Dropout1d
sequences|{mean: 0.5, std: 2}|GroupNorm: {num_groups: 2}|Upsample: {scale_factor: 2, mode: linear}|LayerNorm: {normalized_shape: 40}|MaxPool1d: {kernel_size: 3, stride: 2, padding: 1, dilation: 2}|Softmax: {dim: -1}
sequences|auto|Conv1d: {out_channels: 6, kernel_size: 5, padding: 2, padding_mode: replicate, dilation: 2, stride: 2}|Tanh|AvgPool1d: {kernel_size: 2, padding: 1}
MODELS

# What ONNX 13 cannot express is refused, plainly, with exit 2 and no file.
refused() { # NAME DATA PATTERN LAYERS...
    local what=$1 data=$2 pattern=$3; shift 3
    generated_config refused "$data" "{mean: 0, std: 1}" "$@"
    if ! "$NNSEQ" train "$work/refused.yaml" --threads 1 >/dev/null 2>"$work/train.err"; then
        fail "$what: training: $(head -c 400 "$work/train.err")"; return
    fi
    rm -f "$work/refused.onnx"
    expect_error "$what" 2 "$pattern" export_onnx "$work/refused.ckpt" "$work/refused.onnx"
    check "$what: no file left" test ! -e "$work/refused.onnx"
}
while IFS='|' read -r what data pattern layers; do
    IFS='|' read -r -a layer_list <<EOF
$layers
EOF
    refused "refused: $what" "$data" "$pattern" "${layer_list[@]}" "Flatten" "Linear: {out_features: 10}"
done <<'CASES'
circular padding|sequences|layer 0 \(Conv1d\) cannot be exported to ONNX opset 13: padding_mode 'circular'|Conv1d: {out_channels: 4, kernel_size: 3, padding: 1, padding_mode: circular}
BatchNorm without running statistics|sequences|layer 0 \(BatchNorm1d\) .*track_running_stats=False|BatchNorm1d: {track_running_stats: false}
LocalResponseNorm of even size|images|layer 0 \(LocalResponseNorm\) .*even size \(2\)|LocalResponseNorm: {size: 2}
AvgPool2d divisor_override|images|layer 0 \(AvgPool2d\) .*divisor_override|AvgPool2d: {kernel_size: 2, divisor_override: 3}
Upsample area|images|layer 0 \(Upsample\) .*mode 'area'|Upsample: {scale_factor: 2, mode: area}
adaptive pool of uneven windows|images|layer 0 \(AdaptiveAvgPool2d\) .*does not divide|AdaptiveAvgPool2d: {output_size: 5}
ceil_mode window in the padding|images|layer 0 \(MaxPool2d\) .*ceil_mode|MaxPool2d: {kernel_size: 2, stride: 5, padding: 1, ceil_mode: true}
CASES

finish $name
