#!/usr/bin/env bash
# Every command on a short training run under valgrind's leak checker: no
# definite or indirect leak and no memory error, on success and on error
# paths. Skipped (exit 77) without valgrind. It does not apply to a
# sanitizer build (make asan): valgrind and ASan cannot share a process, and
# the sanitizers check every test's memory there; it passes with no checks.
set -u
NNSEQ=${NNSEQ:?set NNSEQ to the nnseq binary}
GEN_DATA=${GEN_DATA:?set GEN_DATA to the gen_data tool}
. "$(dirname "$0")/shell_checks.sh"
case "$NNSEQ" in
    */asan/*) echo "valgrind: not applicable: $NNSEQ is built with sanitizers, which check memory instead"; exit 0 ;;
esac
command -v valgrind >/dev/null 2>&1 || skip_all valgrind "valgrind is not installed (make deps)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# clean NAME WANT_STATUS COMMAND...: runs under valgrind; the status must be WANT_STATUS and valgrind silent
clean() {
    local name=$1 want=$2; shift 2
    valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
        --log-file="$work/valgrind.log" "$NNSEQ" "$@" >/dev/null 2>"$work/stderr" </dev/null
    local got=$?
    if [ "$got" -eq "$want" ] && [ ! -s "$work/valgrind.log" ]; then
        ok
    else
        fail "$name: exit $got (expected $want)"
        head -40 "$work/valgrind.log" "$work/stderr"
    fi
}
"$GEN_DATA" "$work" 120 1 train && "$GEN_DATA" "$work" 40 2 test || exit 1
cat >"$work/c.yaml" <<'YAML'
seed: 1
data:
  train: {images: train-images.idx, labels: train-labels.idx.gz}
  test: {images: test-images.idx, labels: test-labels.idx.gz}
  val_split: 0.25
model:
  layers:
    - Conv2d: {out_channels: 3, kernel_size: 3, padding: 1}
    - BatchNorm2d
    - ReLU
    - MaxPool2d: {kernel_size: 2}
    - AvgPool2d: {kernel_size: [1, 1]}
    - Flatten
    - Dropout: {p: 0.1}
    - Linear: {out_features: 8}
    - BatchNorm1d
    - GELU
    - Linear: {out_features: 4}
optimizer: {name: adamw}
scheduler: {name: cosine, T_max: 2}
train: {epochs: 2, batch_size: 16, early_stop: {patience: 1}}
checkpoint: {path: out.ckpt}
YAML
clean "train" 0 train "$work/c.yaml" --log "$work/log.csv"
clean "resume" 0 train "$work/c.yaml" --epochs 3 --resume "$work/out.ckpt" --out "$work/more.ckpt"
clean "eval" 0 eval "$work/out.ckpt" --format json
clean "predict" 0 predict "$work/out.ckpt" "$work/test-images.idx" --top 2
clean "print" 0 print "$work/out.ckpt"
clean "export" 0 export "$work/out.ckpt" "$work/w.npz"
clean "init from npz" 0 train "$work/c.yaml" --init "$work/w.npz" --epochs 1 --out "$work/init.ckpt"
sed 's/- GELU/- GELLU/' "$work/c.yaml" >"$work/bad.yaml"
clean "bad config" 2 train "$work/bad.yaml"
head -c 300 "$work/out.ckpt" >"$work/short.ckpt"
clean "truncated checkpoint" 2 eval "$work/short.ckpt"
head -c 500 "$work/train-images.idx" >"$work/short.idx"
clean "truncated images" 2 predict "$work/out.ckpt" "$work/short.idx"
# A CSV table: normalize: auto, test_split, bce_with_logits; predict to an .npy; bad cells.
awk 'BEGIN { srand(3); print "a,b,c,y"; for (i = 0; i < 90; i++) { x = rand(); y = rand(); printf "%.4f,%.4f,%.4f,%d\n", x, y, rand(), (x > y) } }' >"$work/t.csv"
cat >"$work/t.yaml" <<'YAML'
seed: 1
data:
  format: csv
  train: {file: t.csv}
  csv: {header: true, features: "a:c", target: y}
  test_split: 0.2
  val_split: 0.2
  shuffle_split: true
  normalize: auto
model: {layers: [{Linear: {out_features: 4}}, ReLU, {Linear: {out_features: 1}}]}
loss: {name: bce_with_logits, pos_weight: [2]}
train: {epochs: 2, batch_size: 8}
checkpoint: {path: t.ckpt}
YAML
clean "train csv" 0 train "$work/t.yaml"
clean "eval csv" 0 eval "$work/t.ckpt" --format tsv
clean "predict csv to npy" 0 predict "$work/t.ckpt" "$work/t.csv" --output "$work/p.npy"
printf 'a,b,c,y\n1,2,3,0\n1,x,3,1\n' >"$work/bad.csv"
clean "bad csv cell" 2 eval "$work/t.ckpt" --file "$work/bad.csv"
finish valgrind
