#!/usr/bin/env bash
# nnseq print's costs table (mult-adds and output bytes per layer, as
# torchinfo counts them) against hand counts of the fashion configs and,
# with python3-torch, against torchinfo (or, where torchinfo is not
# installed, its counting rule applied to torch's modules); and
# nnseq print --profile (one row per layer, positive medians, bad options).
# Needs NNSEQ (the binary) and GEN_DATA (tests/tools/gen_data); `make check` sets both.
set -u
NNSEQ=${NNSEQ:?set NNSEQ to the nnseq binary}
GEN_DATA=${GEN_DATA:?set GEN_DATA to the gen_data tool}
cd "$(dirname "$0")/.." || exit 1
. tests/shell_checks.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# row FILE LAYER: "MULT_ADDS BYTES" of the costs table's row for LAYER ("Linear-1")
row() { awk -v name="$2" '$1 == name && NF == 3 && $2 !~ /^\[/ { gsub(",", "", $2); gsub(",", "", $3); print $2, $3 }' "$1"; }
# expect_row FILE LAYER MULT_ADDS BYTES
expect_row() {
    local got
    got=$(row "$1" "$2")
    if [ "$got" = "$3 $4" ]; then ok; else fail "$(basename "$1") $2: mult-adds and bytes '$got', expected '$3 $4'"; fi
}
expect_line() { # expect_line FILE LINE
    if grep -qxF -- "$2" "$1"; then ok; else fail "$(basename "$1"): no line '$2'"; fi
}

# torchinfo counts every weight and bias element once per sample (a
# convolution: once per output position), so a Linear costs in*out + out.
"$NNSEQ" print configs/fashion_mlp.yaml >"$work/mlp.out" 2>"$work/err" || fail "print fashion_mlp: $(cat "$work/err")"
expect_row "$work/mlp.out" Flatten-0 -- $((784 * 4))
expect_row "$work/mlp.out" Linear-1 $((784 * 128 + 128)) $((128 * 4))
expect_row "$work/mlp.out" ReLU-2 -- $((128 * 4))
expect_row "$work/mlp.out" Linear-3 $((128 * 10 + 10)) $((10 * 4))
# The products alone are 784*128 + 128*10 = 101,632; torchinfo adds the 138 biases.
mlp_total=$(awk '$1 ~ /-[0-9]+$/ && NF == 3 && $2 !~ /^\[/ && $2 != "--" { gsub(",", "", $2); s += $2 } END { print s }' "$work/mlp.out")
[ "$mlp_total" = $((784 * 128 + 128 * 10 + 128 + 10)) ] && [ "$mlp_total" = 101770 ] && ok ||
    fail "fashion_mlp: mult-adds sum to $mlp_total, expected 101,632 + 138 = 101,770"
expect_line "$work/mlp.out" "Total mult-adds (M): 0.10"
expect_line "$work/mlp.out" "Params size (MB): 0.41"                 # 101,770 * 4 bytes
expect_line "$work/mlp.out" "Forward/backward pass size (MB): 0.00"  # 2 * (128 + 10) * 4 bytes

"$NNSEQ" print configs/fashion_cnn.yaml >"$work/cnn.out" 2>"$work/err" || fail "print fashion_cnn: $(cat "$work/err")"
# Conv2d(1, 32, 3) on 28x28: (32*1*3*3 + 32) parameters at 26*26 positions
expect_row "$work/cnn.out" Conv2d-0 $(((32 * 9 + 32) * 26 * 26)) $((32 * 26 * 26 * 4))
expect_row "$work/cnn.out" MaxPool2d-2 -- $((32 * 13 * 13 * 4))
# Conv2d(32, 64, 3) on 13x13: (64*32*3*3 + 64) at 11*11
expect_row "$work/cnn.out" Conv2d-3 $(((64 * 32 * 9 + 64) * 11 * 11)) $((64 * 11 * 11 * 4))
# Linear(64*5*5, 128), Linear(128, 10)
expect_row "$work/cnn.out" Linear-7 $((1600 * 128 + 128)) $((128 * 4))
expect_row "$work/cnn.out" Linear-9 $((128 * 10 + 10)) 40
# 216,320 + 2,238,016 + 204,928 + 1,290 = 2,660,554
[ $(((32 * 9 + 32) * 676 + (64 * 32 * 9 + 64) * 121 + 1600 * 128 + 128 + 1290)) = 2660554 ] && ok || fail "hand count"
expect_line "$work/cnn.out" "Total mult-adds (M): 2.66"
# twice the outputs of the layers with parameters: 2 * (86,528 + 30,976 + 512 + 40) bytes
expect_line "$work/cnn.out" "Forward/backward pass size (MB): 0.24"
expect_line "$work/cnn.out" "Params size (MB): 0.90"
expect_line "$work/cnn.out" "Estimated Total Size (MB): 1.14"
expect_line "$work/cnn.out" "At the batch size 64: total mult-adds (M): 170.28; input size (MB): 0.20; forward/backward pass size (MB): 15.11"

# BatchNorm: weight and bias once per sample (2 * channels), whatever the image size
"$NNSEQ" print configs/fashion_cnn_bn.yaml >"$work/bn.out" 2>"$work/err" || fail "print fashion_cnn_bn: $(cat "$work/err")"
expect_row "$work/bn.out" Conv2d-0 $((32 * 9 * 28 * 28)) $((32 * 28 * 28 * 4))   # bias: false, padding 1
expect_row "$work/bn.out" BatchNorm2d-1 64 $((32 * 28 * 28 * 4))
expect_row "$work/bn.out" BatchNorm1d-11 256 512
expect_row "$work/bn.out" Dropout-9 -- $((64 * 7 * 7 * 4))

# Past a billion the unit is G, as torchinfo's
printf '%s\n' 'model:' '  input_shape: [3, 224, 224]' '  layers:' \
    '    - Conv2d: {out_channels: 64, kernel_size: 3, padding: 1}' \
    '    - Conv2d: {out_channels: 64, kernel_size: 3, padding: 1}' >"$work/big.yaml"
"$NNSEQ" print "$work/big.yaml" >"$work/big.out" 2>"$work/err" || fail "print big: $(cat "$work/err")"
# (64*3*9 + 64) * 224*224 + (64*64*9 + 64) * 224*224 = 1,942,814,720
expect_line "$work/big.out" "Total mult-adds (G): 1.94"

# Against torchinfo on every shipped config, or its rule where it is not installed.
PYTHON=/usr/bin/python3
if [ -x "$PYTHON" ] && "$PYTHON" -c 'import torch, yaml' 2>/dev/null; then
    cat >"$work/macs.py" <<'PY'
import os, re, subprocess, sys
import torch
import yaml

sys.path.insert(0, "tests")
import torch_ref  # noqa: E402

try:
    import torchinfo
except ImportError:
    torchinfo = None
    print("note: torchinfo is not installed: checked against its counting rule (LayerInfo.calculate_macs) on torch's modules")


def rule(module, output):
    """torchinfo 1.8's calculate_macs for one leaf module and a batch of 1."""
    macs = 0
    for name, param in module.named_parameters():
        if name in ("weight", "bias"):
            size = list(output.shape)
            positions = 1
            for d in size[:1] + size[2:]:
                positions *= d
            macs += param.numel() * (positions if "Conv" in type(module).__name__ else size[0])
    return macs


nnseq = sys.argv[1]
for path in sys.argv[2:]:
    with open(path) as f:
        cfg = yaml.safe_load(f)
    shape = tuple(cfg["model"]["input_shape"]) if "input_shape" in cfg["model"] else None
    if shape is None:
        name, args = torch_ref.layer_name_and_args(cfg["model"]["layers"][0])
        shape = (int(args["in_features"]),) if name == "Linear" and "in_features" in args else (1, 28, 28)
    model = torch_ref.build(cfg["model"]["layers"], shape).eval()
    if torchinfo:
        stats = torchinfo.summary(model, input_size=(1,) + shape, verbose=0)
        want = [info.macs for info in stats.summary_list if info.depth == 1]
        total = stats.total_mult_adds
    else:
        want, x = [], torch.zeros((1,) + shape)
        with torch.no_grad():
            for module in model:
                x = module(x)
                want.append(rule(module, x))
        total = sum(want)
    out = subprocess.run([nnseq, "print", path], capture_output=True, text=True, check=True).stdout
    got = {}
    for line in out.splitlines():
        m = re.match(r"^\w+-(\d+)\s+(--|[\d,]+)\s+[\d,]+$", line)
        if m:
            got[int(m.group(1))] = 0 if m.group(2) == "--" else int(m.group(2).replace(",", ""))
    unit, scale = ("T", 1e12) if total >= 1e12 else ("G", 1e9) if total >= 1e9 else ("M", 1e6)
    line = f"Total mult-adds ({unit}): {total / scale:0.2f}"
    problems = [f"layer {i}: nnseq {got.get(i)}, torchinfo {w}" for i, w in enumerate(want) if got.get(i) != w]
    if line not in out.splitlines():
        problems.append(f"no line {line!r}")
    print(f"{'FAIL' if problems else 'ok'} {os.path.basename(path)} {'; '.join(problems[:3])}")
PY
    # every kind with parameters, beside the shipped configs
    printf '%s\n' 'model:' '  input_shape: [3, 8, 8]' '  layers:' \
        '    - Conv2d: {out_channels: 4, kernel_size: 3, padding: 1}' \
        '    - GroupNorm: {num_groups: 2, num_channels: 4}' \
        '    - InstanceNorm2d: {num_features: 4, affine: true}' \
        '    - PReLU: {num_parameters: 4}' \
        '    - ConvTranspose2d: {out_channels: 2, kernel_size: 2, stride: 2}' \
        '    - LayerNorm: {normalized_shape: [2, 16, 16]}' \
        '    - Flatten: {start_dim: 2}' \
        '    - Conv1d: {out_channels: 3, kernel_size: 3}' \
        '    - BatchNorm1d: {num_features: 3}' \
        '    - Flatten' \
        '    - Linear: {out_features: 5, bias: false}' >"$work/kinds.yaml"
    "$PYTHON" "$work/macs.py" "$NNSEQ" configs/*.yaml "$work/kinds.yaml" >"$work/macs.out" 2>"$work/macs.err" || fail "macs.py: $(tail -3 "$work/macs.err")"
    while IFS= read -r line; do
        case $line in
            "ok "*) ok ;;
            "FAIL "*) fail "torchinfo: ${line#FAIL }" ;;
            *) echo "$line" ;;
        esac
    done <"$work/macs.out"
else
    skip_part cli_print "$PYTHON cannot import torch and yaml: no check against torchinfo"
fi

# --profile: one row per layer with positive forward and backward medians
# profile_rows FILE LAYERS [ZERO_OK]: every layer's row, in order, with two
# positive times (ZERO_OK: or 0.0000, below 50 ns, for layers of a few values)
profile_rows() {
    awk -v layers="$2" -v zero_ok="${3:-}" '
        $1 ~ /^[A-Za-z0-9]+-[0-9]+$/ && NF == 3 {
            split($1, part, "-")
            if (part[2] != rows || !($2 > 0 || zero_ok && $2 == 0) || !($3 > 0 || zero_ok && $3 == 0)) bad = bad " " $0
            rows++ }
        END { if (rows != layers || bad != "") { print "rows " rows " of " layers ":" bad; exit 1 } }' "$1"
}
if "$NNSEQ" print --profile configs/fashion_cnn.yaml --steps 5 >"$work/profile.out" 2>"$work/err"; then
    check "profile fashion_cnn: 10 rows, positive" profile_rows "$work/profile.out" 10
    check "profile fashion_cnn: the config's batch" grep -q "^Batch size 64, one thread, training mode: median of 5 steps" "$work/profile.out"
    check "profile fashion_cnn: totals" grep -qE "^Total \(sum of medians\) +[0-9.]+ +[0-9.]+$" "$work/profile.out"
else
    fail "print --profile fashion_cnn: $(cat "$work/err")"
fi
if "$NNSEQ" print --profile configs/fashion_cnn_bn.yaml --steps 3 --batch-size 8 >"$work/profile_bn.out" 2>"$work/err"; then
    check "profile fashion_cnn_bn: 15 rows, positive" profile_rows "$work/profile_bn.out" 15
    check "profile fashion_cnn_bn: --batch-size" grep -q "^Batch size 8," "$work/profile_bn.out"
else
    fail "print --profile fashion_cnn_bn: $(cat "$work/err")"
fi
# on a checkpoint, at the batch size it trained with
"$GEN_DATA" "$work" 64 1 train && "$GEN_DATA" "$work" 16 2 test || { echo "gen_data failed"; exit 1; }
tiny_config "$work/tiny.yaml"
echo "checkpoint: {path: tiny.ckpt}" >>"$work/tiny.yaml"
if (cd "$work" && "$NNSEQ" train tiny.yaml >/dev/null 2>"$work/err") &&
    "$NNSEQ" print --profile "$work/tiny.ckpt" --steps 2 >"$work/profile_ck.out" 2>"$work/err"; then
    # Flatten on 16 samples of gen_data's small images copies too little to time
    check "profile CKPT: 2 rows" profile_rows "$work/profile_ck.out" 2 zero_ok
    check "profile CKPT: Linear positive" awk '$1 == "Linear-1" && $2 > 0 && $3 > 0 { found = 1 } END { exit !found }' "$work/profile_ck.out"
    check "profile CKPT: its batch size" grep -q "^Batch size 16," "$work/profile_ck.out"
    check "print CKPT: costs" grep -qx "Total mult-adds (M): 0.00" <("$NNSEQ" print "$work/tiny.ckpt")
else
    fail "profile CKPT: $(cat "$work/err")"
fi

expect_error "--steps 0" 2 "--steps expects an integer from 1 to 10000, got '0'" \
    "$NNSEQ" print --profile configs/fashion_cnn.yaml --steps 0
expect_error "--steps 10001" 2 "--steps expects an integer from 1 to 10000" \
    "$NNSEQ" print --profile configs/fashion_cnn.yaml --steps 10001
expect_error "--steps x" 2 "--steps expects an integer" "$NNSEQ" print --profile configs/fashion_cnn.yaml --steps x
expect_error "--batch-size 0" 2 "--batch-size expects an integer from 1 to 1048576, got '0'" \
    "$NNSEQ" print --profile configs/fashion_cnn.yaml --batch-size 0
expect_error "--steps without --profile" 2 "--steps and --batch-size go with --profile" \
    "$NNSEQ" print configs/fashion_cnn.yaml --steps 3
expect_error "--profile --config" 2 "--profile and --config do not go together" \
    "$NNSEQ" print --profile --config configs/fashion_cnn.yaml
expect_error "BatchNorm1d at batch 1" 2 "fashion_cnn_bn.yaml: layer 11 \(BatchNorm1d\) needs batches of at least 2 samples in training, got 1" \
    "$NNSEQ" print --profile configs/fashion_cnn_bn.yaml --batch-size 1
# refused before allocating: 436 GiB of activations
expect_error "a batch too large" 2 "fashion_cnn.yaml: profiling at the batch size 1048576 needs 436.2 GiB of activations \(at most 4 GiB\)" \
    timeout 10 "$NNSEQ" print --profile configs/fashion_cnn.yaml --batch-size 1048576
finish cli_print
