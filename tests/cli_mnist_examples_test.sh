#!/usr/bin/env bash
# Issue 15's yardstick: pytorch/examples' mnist Net written as a Sequential
# (configs/mnist_examples_net.yaml: Conv2d, ReLU, MaxPool2d, Dropout,
# Flatten, Linear, LogSoftmax; nll loss; Adadelta lr 1.0; StepLR gamma 0.7)
# trains on the 10k real MNIST digits from the same --init weights in nnseq
# and in the project's PyTorch reference (tests/torch_ref.py, in nnseq's
# sample order), and the test accuracies agree within 0.005. Dropout's masks
# differ (each program draws its own), which is what the tolerance covers.
# EPOCHS (default 2) sets the epochs of both.
# Needs NNSEQ, /usr/bin/python3 with torch, and `make data` (data/mnist).
set -u
NNSEQ=${NNSEQ:?set NNSEQ to the nnseq binary}
PYTHON=${PYTHON:-/usr/bin/python3}
TORCH_REF=${TORCH_REF:-$(dirname "$0")/torch_ref.py}
EPOCHS=${EPOCHS:-2}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/shell_checks.sh"
"$PYTHON" -c 'import torch, numpy, yaml' 2>/dev/null ||
    skip_all cli_mnist_examples "$PYTHON cannot import torch, numpy and yaml (make deps installs python3-torch)"
[ -s "$root/data/mnist/train-images-idx3-ubyte.gz" ] ||
    skip_all cli_mnist_examples "no data/mnist (make data)"
config=$root/configs/mnist_examples_net.yaml

check "nnseq print is torch's print(model)" sh -c "'$NNSEQ' print '$config' | sed -n '1,/^)/p' >'$work/nnseq.txt' &&
    '$PYTHON' '$TORCH_REF' '$config' --print >'$work/torch.txt' && diff '$work/torch.txt' '$work/nnseq.txt'"

"$PYTHON" - "$TORCH_REF" "$config" "$work/init.npz" <<'PY' || fail "writing torch's initial weights"
import importlib.util, sys, torch
spec = importlib.util.spec_from_file_location("torch_ref", sys.argv[1])
ref = importlib.util.module_from_spec(spec); spec.loader.exec_module(ref)
cfg = ref.load_config(sys.argv[2])
torch.manual_seed(int(cfg.get("seed", 0)))
ref.save_npz(ref.build(cfg["model"]["layers"], tuple(cfg["model"]["input_shape"])), sys.argv[3])
PY
check "nnseq trains the Net from torch's initial weights" sh -c "'$NNSEQ' train '$config' --init '$work/init.npz' \
    --epochs $EPOCHS --format json --no-checkpoint >'$work/nnseq.json' 2>'$work/nnseq.err'"
check "torch_ref.py trains it in nnseq's order" sh -c "'$PYTHON' '$TORCH_REF' '$config' --init '$work/init.npz' \
    --nnseq-order --epochs $EPOCHS >'$work/torch.json' 2>'$work/torch.err'"
compare() {
    "$PYTHON" - "$work/nnseq.json" "$work/torch.json" <<'PY'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
for x, y in zip(a[:-1], b[:-1]):
    print(f"  epoch {x['epoch']}: lr {x['lr']:g}/{y['lr']:g}, train_loss {x['train_loss']:.4f}/{y['train_loss']:.4f} (nnseq/torch)")
fa, fb = a[-1], b[-1]
print(f"  test accuracy {fa['test_accuracy']:.4f}/{fb['test_accuracy']:.4f}, loss {fa['test_loss']:.4f}/{fb['test_loss']:.4f}")
lrs_agree = all(abs(x["lr"] - y["lr"]) <= 1e-12 * abs(y["lr"]) for x, y in zip(a[:-1], b[:-1]))
sys.exit(0 if lrs_agree and abs(fa["test_accuracy"] - fb["test_accuracy"]) <= 0.005 + 1e-9 else 1)
PY
}
check "the test accuracies agree within 0.005 and the learning rates match" compare
finish cli_mnist_examples
