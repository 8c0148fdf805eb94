#!/usr/bin/env bash
# End-to-end tests of the nnseq command on small generated data: outputs,
# exit statuses, bad inputs, checkpoints, resume, pipelines.
# Needs NNSEQ (the binary) and GEN_DATA (tests/tools/gen_data); `make check` sets both.
set -u
NNSEQ=${NNSEQ:?set NNSEQ to the nnseq binary}
GEN_DATA=${GEN_DATA:?set GEN_DATA to the gen_data tool}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/shell_checks.sh"

"$GEN_DATA" "$work" 300 1 train && "$GEN_DATA" "$work" 100 2 test || { echo "gen_data failed"; exit 1; }

config() { # config FILE EXTRA_LAYER_LINES...
    local file=$1; shift
    {
        echo "seed: 3"
        echo "data:"
        echo "  train: {images: train-images.idx, labels: train-labels.idx.gz}"
        echo "  test: {images: test-images.idx, labels: test-labels.idx.gz}"
        echo "  val_split: 0.2"
        echo "model:"
        echo "  layers:"
        echo "    - Flatten"
        echo "    - Linear: {out_features: 12}"
        echo "    - ReLU"
        echo "    - Dropout: {p: 0.1}"
        echo "    - Linear: {out_features: 4}"
        for line in "$@"; do echo "$line"; done
        echo "optimizer: {name: adam, lr: 0.01}"
        echo "train: {epochs: 3, batch_size: 16}"
        echo "checkpoint: {path: runs/model.ckpt}"
    } >"$file"
}
config "$work/good.yaml"

# --- train, eval, predict, print, export -----------------------------------
check "train" "$NNSEQ" train "$work/good.yaml" --format text >"$work/train.out" 2>"$work/train.err"
check "three epoch lines" test "$(grep -c '^epoch' "$work/train.out")" -eq 3
check "validation metrics shown" grep -q 'val_acc' "$work/train.out"
check "checkpoint written beside the config" test -s "$work/runs/model.ckpt"
check "no progress bar when stderr is not a terminal" sh -c "! grep -q 'ETA' '$work/train.err'"
test_acc=$(sed -n 's/^test .*accuracy \([0-9.]*\).*/\1/p' "$work/train.out")
check "train prints the test accuracy" test -n "$test_acc"
check "the model learned" awk -v a="$test_acc" 'BEGIN { exit !(a > 0.9) }'
"$NNSEQ" eval "$work/runs/model.ckpt" >"$work/eval.out"
check "eval reproduces train's test accuracy" grep -q "^accuracy  $test_acc\$" "$work/eval.out"
check "eval prints per-class rows" test "$(grep -cE '^ +[0-3] +[0-9]+ ' "$work/eval.out")" -ge 4
check "eval prints the confusion matrix" grep -q '^confusion' "$work/eval.out"
if command -v python3 >/dev/null; then
    check "eval --format json parses" sh -c "'$NNSEQ' eval '$work/runs/model.ckpt' --format json | python3 -m json.tool >/dev/null"
    mkdir -p "$work/odd\"name"
    check "JSON escapes a path with a quote" sh -c "'$NNSEQ' train '$work/good.yaml' --epochs 1 --out '$work/odd\"name/m.ckpt' --format json 2>/dev/null | tail -1 | python3 -m json.tool >/dev/null && '$NNSEQ' eval '$work/odd\"name/m.ckpt' --format json | python3 -m json.tool >/dev/null"
    check "train --format json lines parse" sh -c "'$NNSEQ' train '$work/good.yaml' --epochs 1 --out '$work/j.ckpt' --format json | python3 -c 'import sys, json; [json.loads(l) for l in sys.stdin]'"
fi
check "eval on given files" sh -c "'$NNSEQ' eval '$work/runs/model.ckpt' --images '$work/train-images.idx' --labels '$work/train-labels.idx.gz' | grep -q '^samples   300'"
lines=$("$NNSEQ" predict "$work/runs/model.ckpt" - <"$work/test-images.idx" | wc -l)
check "predict from stdin: one line per image" test "$lines" -eq 100
check "predict from a file agrees with stdin" bash -c "'$NNSEQ' predict '$work/runs/model.ckpt' '$work/test-images.idx' | cmp -s - <('$NNSEQ' predict '$work/runs/model.ckpt' - <'$work/test-images.idx')"
gzip -c "$work/test-images.idx" >"$work/test-images.idx.gz"
check "predict reads gzip from a pipe" sh -c "cat '$work/test-images.idx.gz' | '$NNSEQ' predict '$work/runs/model.ckpt' - | awk -F'\t' 'NF == 3 && \$3 > 0 && \$3 <= 1' | wc -l | grep -qx 100"
check "predict --top 3 has three classes" sh -c "'$NNSEQ' predict '$work/runs/model.ckpt' '$work/test-images.idx' --top 3 | head -1 | awk -F'\t' '{ exit !(NF == 7 && \$3 >= \$5 && \$5 >= \$7) }'"
agree=$(paste <("$NNSEQ" predict "$work/runs/model.ckpt" "$work/test-images.idx" | cut -f2) \
              <(gzip -dc "$work/test-labels.idx.gz" | tail -c 100 | od -An -v -tu1 -w1 | tr -d ' ') | awk '$1 == $2' | wc -l)
check "predictions agree with eval's accuracy" test "$agree" -eq "$(awk -v a="$test_acc" 'BEGIN { printf "%d", a * 100 + 0.5 }')"
check "print starts like PyTorch" sh -c "'$NNSEQ' print '$work/good.yaml' | head -1 | grep -qx 'Sequential('"
check "print shows the layer" sh -c "'$NNSEQ' print '$work/good.yaml' | grep -qF '(1): Linear(in_features=36, out_features=12, bias=True)'"
check "print of a checkpoint equals print of its config" bash -c "cmp -s <('$NNSEQ' print '$work/good.yaml') <('$NNSEQ' print '$work/runs/model.ckpt')"
check "print counts parameters" sh -c "'$NNSEQ' print '$work/good.yaml' | grep -q '^Total params: 496$'"
check "export writes an npz" "$NNSEQ" export "$work/runs/model.ckpt" "$work/w.npz" 2>/dev/null
check "help" sh -c "'$NNSEQ' --help | grep -q train && '$NNSEQ' train --help | grep -q -- --resume"
check "version" sh -c "'$NNSEQ' --version | grep -q '^nnseq '"

# --- reproducibility and resume ---------------------------------------------
"$NNSEQ" train "$work/good.yaml" --epochs 4 --out "$work/straight.ckpt" --threads 1 >"$work/straight.out" 2>/dev/null
"$NNSEQ" train "$work/good.yaml" --epochs 2 --out "$work/half.ckpt" --threads 1 >/dev/null 2>&1
"$NNSEQ" train "$work/good.yaml" --epochs 4 --resume "$work/half.ckpt" --out "$work/resumed.ckpt" --threads 1 >"$work/resumed.out" 2>/dev/null
check "2 + 2 epochs == 4 epochs, byte for byte" cmp -s "$work/straight.ckpt" "$work/resumed.ckpt"
check "resumed epochs print the same metrics" bash -c "diff <(grep '^epoch [34]' '$work/straight.out' | sed 's/  [0-9.]*s  .*//') <(grep '^epoch' '$work/resumed.out' | sed 's/  [0-9.]*s  .*//') >/dev/null"
"$NNSEQ" train "$work/good.yaml" --epochs 2 --out "$work/again.ckpt" --threads 1 >/dev/null 2>&1
check "same seed, same checkpoint" cmp -s "$work/half.ckpt" "$work/again.ckpt"
"$NNSEQ" train "$work/good.yaml" --epochs 2 --seed 4 --out "$work/seed4.ckpt" --threads 1 >/dev/null 2>&1
check "another seed, other weights" sh -c "! cmp -s '$work/half.ckpt' '$work/seed4.ckpt'"
"$NNSEQ" train "$work/good.yaml" --epochs 2 --log "$work/log.csv" --out "$work/logged.ckpt" >/dev/null 2>&1
check "CSV log: header and one row per epoch" sh -c "head -1 '$work/log.csv' | grep -q '^epoch,lr,train_loss' && test \$(wc -l <'$work/log.csv') -eq 3"

# --- learning-rate schedule and early stopping -----------------------------
sed 's/^optimizer: .*/optimizer: {name: sgd, lr: 0.1}\nscheduler: {name: step, step_size: 1, gamma: 0.5}/' "$work/good.yaml" >"$work/sched.yaml"
"$NNSEQ" train "$work/sched.yaml" --format json --out "$work/sched.ckpt" >"$work/sched.out" 2>/dev/null
check "step schedule halves the lr each epoch" sh -c "grep -o '\"lr\": [0-9.e-]*' '$work/sched.out' | tr '\n' ' ' | grep -qx '\"lr\": 0.1 \"lr\": 0.05 \"lr\": 0.025 '"
sed 's/epochs: 3, batch_size: 16}/epochs: 6, batch_size: 16, early_stop: {patience: 2, min_delta: 100}}/' "$work/good.yaml" >"$work/stop.yaml"
"$NNSEQ" train "$work/stop.yaml" --out "$work/stop.ckpt" >"$work/stop.out" 2>"$work/stop.err"
check "early stop after patience runs out" test "$(grep -c '^epoch' "$work/stop.out")" -eq 3
check "early stop says so" grep -q 'early stop after epoch 3' "$work/stop.err"
check "the best checkpoint is kept beside the last" test -s "$work/stop.best.ckpt"
# The stored configs differ (epochs 1 against 6): the weights must not.
check "the best checkpoint is from epoch 1" sh -c "'$NNSEQ' train '$work/stop.yaml' --epochs 1 --out '$work/one.ckpt' >/dev/null 2>&1 && '$NNSEQ' export '$work/one.ckpt' '$work/one.npz' 2>/dev/null && '$NNSEQ' export '$work/stop.best.ckpt' '$work/best.npz' 2>/dev/null && cmp -s '$work/one.npz' '$work/best.npz'"
sed 's/val_split: 0.2/val_split: 0/; s/epochs: 3, batch_size: 16}/epochs: 3, early_stop: {patience: 2}}/' "$work/good.yaml" >"$work/bad.yaml"
expect_error "early stop without validation" 2 "val_split" "$NNSEQ" train "$work/bad.yaml"

# --- bad input: exit 2, a clear message, nothing written ---------------------
cp "$work/good.yaml" "$work/bad.yaml"
sed -i 's/- ReLU/- RelU/' "$work/bad.yaml"
expect_error "unknown layer" 2 "bad.yaml:10:.*RelU.*did you mean 'ReLU'" "$NNSEQ" train "$work/bad.yaml"
sed 's/epochs: 3/epoch: 3/' "$work/good.yaml" >"$work/bad.yaml"
expect_error "unknown key" 2 "bad.yaml:[0-9]+:[0-9]+:.*epoch.*did you mean 'epochs'" "$NNSEQ" train "$work/bad.yaml"
sed 's/out_features: 12/out_feature: 12/' "$work/good.yaml" >"$work/bad.yaml"
expect_error "unknown argument" 2 "bad.yaml:9:.*out_feature.*did you mean 'out_features'" "$NNSEQ" train "$work/bad.yaml"
sed 's/out_features: 12/out_features: twelve/' "$work/good.yaml" >"$work/bad.yaml"
expect_error "wrong type" 2 "bad.yaml:9:[0-9]+:.*(integer|int)" "$NNSEQ" train "$work/bad.yaml"
sed 's/- Linear: {out_features: 12}/- Linear: {in_features: 35, out_features: 12}/' "$work/good.yaml" >"$work/bad.yaml"
expect_error "mismatched sizes" 2 "bad.yaml:9:.*layer 1.*35.*36" "$NNSEQ" train "$work/bad.yaml"
sed 's/epochs: 3, batch_size: 16}/epochs: 3, batch_size: 16/' "$work/good.yaml" >"$work/bad.yaml"
expect_error "YAML syntax error" 2 "bad.yaml:[0-9]+:[0-9]+:" "$NNSEQ" train "$work/bad.yaml"
expect_error "missing config" 2 "nothere.yaml" "$NNSEQ" train "$work/nothere.yaml"
sed 's/train-images.idx/missing-images.idx/' "$work/good.yaml" >"$work/bad.yaml"
expect_error "missing IDX file" 2 "missing-images.idx" "$NNSEQ" train "$work/bad.yaml"
head -c 5000 "$work/train-images.idx" >"$work/short-images.idx"
sed 's/train-images.idx/short-images.idx/' "$work/good.yaml" >"$work/bad.yaml"
expect_error "truncated IDX file" 2 "short-images.idx.*(truncated|bytes)" "$NNSEQ" train "$work/bad.yaml"
sed 's/labels: train-labels.idx.gz/labels: test-labels.idx.gz/' "$work/good.yaml" >"$work/bad.yaml"
expect_error "image and label counts differ" 2 "300.*100|100.*300" "$NNSEQ" train "$work/bad.yaml"
check "no checkpoint written on bad input" test ! -e "$work/runs/bad.ckpt"
sed 's/    - ReLU/    - BatchNorm1d/; s/epochs: 3, batch_size: 16}/epochs: 3, batch_size: 239}/' "$work/good.yaml" >"$work/bad.yaml"
expect_error "BatchNorm1d and a last batch of one sample" 2 "bad.yaml:10:7: layer 2 \(BatchNorm1d\) needs at least 2 samples.*has 1" "$NNSEQ" train "$work/bad.yaml"
expect_error "unknown option" 2 "--epoch.*did you mean '--epochs'" "$NNSEQ" train "$work/good.yaml" --epoch 3
expect_error "bad option value" 2 "--epochs expects an integer" "$NNSEQ" train "$work/good.yaml" --epochs three
expect_error "unknown command" 2 "unknown command" "$NNSEQ" fly
cp "$work/runs/model.ckpt" "$work/damaged.ckpt"
byte=$(od -An -tu1 -j200 -N1 "$work/damaged.ckpt" | tr -d ' ')
printf "\\$(printf '%03o' $(( (byte + 1) % 256 )))" | dd of="$work/damaged.ckpt" bs=1 seek=200 conv=notrunc 2>/dev/null
check "the damaged copy differs" sh -c "! cmp -s '$work/damaged.ckpt' '$work/runs/model.ckpt'"
expect_error "damaged checkpoint" 2 "damaged.ckpt" "$NNSEQ" eval "$work/damaged.ckpt"
head -c 100 "$work/runs/model.ckpt" >"$work/short.ckpt"
expect_error "truncated checkpoint" 2 "short.ckpt.*truncated" "$NNSEQ" eval "$work/short.ckpt"
expect_error "foreign file as checkpoint" 2 "good.yaml.*not an nnseq checkpoint" "$NNSEQ" eval "$work/good.yaml"
expect_error "predict: truncated stream" 2 "(truncated|ends)" sh -c "head -c 1000 '$work/test-images.idx' | '$NNSEQ' predict '$work/runs/model.ckpt' - >/dev/null"
expect_error "predict: images of the wrong size" 2 "test-labels.idx.gz: samples are \(1,\) \(1 values\) but the model takes \(1, 6, 6\) \(36 values\)" "$NNSEQ" predict "$work/runs/model.ckpt" "$work/test-labels.idx.gz"
cp "$work/runs/model.ckpt" "$work/keep.ckpt"
"$NNSEQ" train "$work/bad.yaml" --out "$work/keep.ckpt" >/dev/null 2>&1
check "a failed run leaves the old checkpoint alone" cmp -s "$work/keep.ckpt" "$work/runs/model.ckpt"

echo "cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
