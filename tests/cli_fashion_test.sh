#!/usr/bin/env bash
# End-to-end on the real data, when `make data` has fetched it: the default
# job's accuracy after one epoch, eval reproducing it, the README's pipeline,
# and the MLP on the real handwritten digits. Skips (exit 0) without the data.
set -u
NNSEQ=${NNSEQ:?set NNSEQ to the nnseq binary}
fashion=data/fashion-mnist
mnist=data/mnist
if [ ! -f "$fashion/t10k-labels-idx1-ubyte.gz" ]; then
    echo "fashion: skipped: no data in $fashion (run 'make data')"
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/shell_checks.sh"
at_least() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }

"$NNSEQ" train configs/fashion_mlp.yaml --epochs 1 --out "$work/fashion.ckpt" >"$work/train.out" 2>"$work/train.err"
check "fashion_mlp trains" test -s "$work/fashion.ckpt"
cat "$work/train.out"
accuracy=$(sed -n 's/^test .*accuracy \([0-9.]*\).*/\1/p' "$work/train.out")
check "fashion_mlp: test accuracy >= 0.85 after one epoch (got $accuracy)" at_least "${accuracy:-0}" 0.85
check "eval reproduces the accuracy train printed" grep -q "^accuracy  $accuracy\$" <("$NNSEQ" eval "$work/fashion.ckpt")
counts=$(gzip -dc "$fashion/t10k-images-idx3-ubyte.gz" | "$NNSEQ" predict "$work/fashion.ckpt" - | cut -f2 | sort | uniq -c)
check "predict pipeline: 10 classes, 10000 images" test "$(echo "$counts" | awk '{ n += $1 } END { print NR, n }')" = "10 10000"

if [ -f "$mnist/t10k-labels-idx1-ubyte.gz" ]; then
    "$NNSEQ" train configs/mnist_mlp.yaml --out "$work/mnist.ckpt" >"$work/mnist.out" 2>/dev/null
    accuracy=$(sed -n 's/^test .*accuracy \([0-9.]*\).*/\1/p' "$work/mnist.out")
    check "mnist_mlp: test accuracy >= 0.95 on the real digits (got $accuracy)" at_least "${accuracy:-0}" 0.95
fi
echo "fashion: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
