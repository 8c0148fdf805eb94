#!/usr/bin/env bash
# The shipped tabular and autoencoder configs against the project's PyTorch
# reference (tests/torch_ref.py): both start from the same --init weights
# and, with torch_ref.py --nnseq-order, train on the same minibatches in the
# same order (nnseq's shuffle), the same splits (shuffle_split) and the same
# normalize: auto statistics. The test metrics must agree: accuracy within
# 0.01, the loss within 2%, and every other metric of the task is printed
# side by side. The autoencoder trains one epoch here (EPOCHS_AE to change);
# the closing notes quote full runs.
# Needs NNSEQ, /usr/bin/python3 with torch, and `make data` (the real data).
set -u
NNSEQ=${NNSEQ:?set NNSEQ to the nnseq binary}
PYTHON=${PYTHON:-/usr/bin/python3}
TORCH_REF=${TORCH_REF:-$(dirname "$0")/torch_ref.py}
EPOCHS_AE=${EPOCHS_AE:-1}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/shell_checks.sh"
"$PYTHON" -c 'import torch, numpy, yaml' 2>/dev/null ||
    skip_all cli_tabular_torch "$PYTHON cannot import torch, numpy and yaml (make deps installs python3-torch)"

# init CONFIG NPZ: torch's initial weights for the config's model, as .npz
init() {
    "$PYTHON" - "$TORCH_REF" "$1" "$2" <<'EOF'
import importlib.util, sys, torch
spec = importlib.util.spec_from_file_location("torch_ref", sys.argv[1])
ref = importlib.util.module_from_spec(spec); spec.loader.exec_module(ref)
cfg = ref.load_config(sys.argv[2])
torch.manual_seed(int(cfg.get("seed", 0)))
layers = cfg["model"]["layers"]
shape = cfg["model"].get("input_shape")
if shape is None:  # the tabular configs give the first Linear's in_features
    name, args = ref.layer_name_and_args(layers[0])
    shape = [args["in_features"]]
ref.save_npz(ref.build(layers, tuple(shape)), sys.argv[3])
EOF
}

# compare NAME NNSEQ_JSON TORCH_JSON: the final lines' test metrics
compare() {
    "$PYTHON" - "$@" <<'EOF'
import json, math, sys
name, ours, theirs = sys.argv[1:4]
a = json.loads(open(ours).read().splitlines()[-1])
b = json.loads(open(theirs).read().splitlines()[-1])
keys = [k for k in a if k.startswith("test_") and k != "test_samples"]
print(f"{name}: " + ", ".join(f"{k[5:]} {a[k]:.4f}/{b.get(k, float('nan')):.4f}" for k in keys) + " (nnseq/torch)")
problems = []
if a.get("test_samples") != b.get("test_samples"):
    problems.append(f"test_samples {a.get('test_samples')} vs {b.get('test_samples')}")
if abs(a["test_loss"] - b["test_loss"]) > 0.02 * abs(b["test_loss"]):
    problems.append(f"loss {a['test_loss']} vs {b['test_loss']} (more than 2% apart)")
if "test_accuracy" in a and abs(a["test_accuracy"] - b["test_accuracy"]) > 0.01 + 1e-9:
    problems.append(f"accuracy {a['test_accuracy']} vs {b['test_accuracy']} (more than 0.01 apart)")
if problems:
    print("  FAIL: " + "; ".join(problems))
    sys.exit(1)
EOF
}

for config in breast_cancer_bce iris_mlp fashion_autoencoder; do
    file=$root/configs/$config.yaml
    epochs=()
    [ "$config" = fashion_autoencoder ] && epochs=(--epochs "$EPOCHS_AE")
    data=$root/data/sklearn/$([ "$config" = iris_mlp ] && echo iris || echo breast_cancer).csv
    [ "$config" = fashion_autoencoder ] && data=$root/data/fashion-mnist/train-images-idx3-ubyte.gz
    if [ ! -s "$data" ]; then
        skip_part cli_tabular_torch "$config: its data is missing (make data)"
        continue
    fi
    if ! init "$file" "$work/$config-init.npz"; then fail "$config: writing the init weights"; continue; fi
    check "$config: nnseq trains from the init weights" sh -c "'$NNSEQ' train '$file' --init '$work/$config-init.npz' \
        --threads 1 --format json --no-checkpoint ${epochs[*]:-} >'$work/$config-nnseq.json' 2>'$work/$config-nnseq.err'"
    check "$config: torch_ref.py trains from them in nnseq's order" sh -c "'$PYTHON' '$TORCH_REF' '$file' \
        --init '$work/$config-init.npz' --nnseq-order --threads 1 ${epochs[*]:-} >'$work/$config-torch.json' \
        2>'$work/$config-torch.err'"
    check "$config: the test metrics agree" compare "$config" "$work/$config-nnseq.json" "$work/$config-torch.json"
done
finish cli_tabular_torch
