#!/bin/sh
# `make bench`: training speed of nnseq against PyTorch (tests/torch_ref.py)
# on the same configs, machine and thread count, measured side by side in one
# run, alternating, REPEATS times each; medians of samples/s and their ratio
# (training samples, the validation split held out in both). Also
# the sgemm-only ceiling of MLP training (gemm_ceiling.c) for the MLP shape.
#   sh bench/run.sh [CONFIG...]      (default: the fashion configs)
# Env: REPEATS (3), THREADS ("1 2"), EPOCHS (1), TORCH_REF (tests/torch_ref.py),
# SHARED (../shared, for bench/gemm_ceiling.c; that part is left out without it).
set -eu
cd "$(dirname "$0")/.."
REPEATS=${REPEATS:-3}
THREADS=${THREADS:-"1 2"}
EPOCHS=${EPOCHS:-1}
SHARED=${SHARED:-../shared}
TORCH_REF=${TORCH_REF:-tests/torch_ref.py}
[ "$#" -gt 0 ] || set -- configs/fashion_mlp.yaml configs/fashion_cnn.yaml
[ -x ./nnseq ] || make -s
have_torch=0
if [ ! -f "$TORCH_REF" ]; then
    echo "bench: no PyTorch column: $TORCH_REF not found" >&2
elif ! /usr/bin/python3 -c 'import torch, numpy, yaml' 2>/dev/null; then
    echo "bench: no PyTorch column: /usr/bin/python3 cannot import torch, numpy and yaml (make deps)" >&2
else
    have_torch=1
fi

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
echo "flags:   $(lscpu | sed -n 's/^Flags: *//p' | tr ' ' '\n' | grep -E '^(avx|avx2|fma|avx512f|avx512bw|avx512_vnni)$' | tr '\n' ' ')"
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}  torch: $( [ $have_torch = 1 ] && /usr/bin/python3 -c 'import torch; print(torch.__version__)' || echo absent)"
echo "date:    $(date -u +%Y-%m-%dT%H:%MZ)  repeats: $REPEATS  epochs: $EPOCHS"
echo

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

printf '%-28s %7s %14s %14s %8s\n' config threads nnseq_samp/s torch_samp/s ratio
for config in "$@"; do
    [ -f "$config" ] || { echo "skip $config: missing"; continue; }
    for threads in $THREADS; do
        : >"$tmp/nnseq"
        : >"$tmp/torch"
        i=0
        while [ "$i" -lt "$REPEATS" ]; do
            ./nnseq train "$config" --epochs "$EPOCHS" --threads "$threads" --format json --out "$tmp/bench.ckpt" 2>/dev/null |
                sed -n 's/.*"epoch": [0-9]*,.*"samples_per_s": \([0-9.]*\).*/\1/p' | tail -1 >>"$tmp/nnseq"
            if [ $have_torch = 1 ]; then
                /usr/bin/python3 "$TORCH_REF" "$config" --epochs "$EPOCHS" --threads "$threads" 2>/dev/null |
                    sed -n 's/.*"samples_per_s": \([0-9.]*\).*/\1/p' | tail -1 >>"$tmp/torch"
            fi
            i=$((i + 1))
        done
        ours=$(median <"$tmp/nnseq")
        theirs=$( [ -s "$tmp/torch" ] && median <"$tmp/torch" || echo "")
        ratio=$( [ -n "$theirs" ] && awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%.2f", a / b }' || echo "-")
        printf '%-28s %7s %14.0f %14s %8s\n' "$(basename "$config")" "$threads" "$ours" "${theirs:--}" "$ratio"
    done
done

if [ -f "$SHARED/bench/gemm_ceiling.c" ]; then
    cc -O2 "$SHARED/bench/gemm_ceiling.c" -o "$tmp/gemm_ceiling" $(pkg-config --cflags --libs openblas)
    batch=$(sed -n 's/.*batch_size: *\([0-9]*\).*/\1/p' configs/fashion_mlp.yaml | head -1)
    echo
    echo "sgemm-only ceiling of fashion_mlp (784-128-10, batch $batch; products only, no activations, loss or optimiser):"
    for threads in $THREADS; do
        printf '  threads %s: ' "$threads"
        OPENBLAS_NUM_THREADS=$threads "$tmp/gemm_ceiling" "$batch" 784 128 10
    done
fi
