#!/usr/bin/env bash
# nnseq diff end to end on generated data: two runs differing only in --lr
# name exactly that key and every epoch's metrics; the same run twice, and
# a run resumed half-way against the straight one, are the same run (exit
# 0, so the history in the checkpoint is whole across --resume); seed,
# threads and data show as such; bad files and forged histories exit 2.
# Needs NNSEQ, GEN_DATA and TOOLS (tests/tools); `make check` sets them.
set -u
NNSEQ=${NNSEQ:?set NNSEQ to the nnseq binary}
GEN_DATA=${GEN_DATA:?set GEN_DATA to the gen_data tool}
TOOLS=${TOOLS:?set TOOLS to the folder of the test tools}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/shell_checks.sh"

"$GEN_DATA" "$work" 1200 1 train && "$GEN_DATA" "$work" 200 2 test || { echo "gen_data failed"; exit 1; }
mkdir "$work/other" && "$GEN_DATA" "$work/other" 1200 3 train && "$GEN_DATA" "$work/other" 200 2 test ||
    { echo "gen_data failed"; exit 1; }
config() { # config FILE: a 3-epoch MLP with validation on the data beside FILE
    printf '%s\n' 'seed: 3' 'data:' \
        '  train: {images: train-images.idx, labels: train-labels.idx.gz}' \
        '  test: {images: test-images.idx, labels: test-labels.idx.gz}' \
        '  val_split: 0.25' 'model:' '  layers:' '    - Flatten' '    - Linear: {out_features: 8}' '    - ReLU' \
        '    - Linear: {out_features: 4}' 'optimizer: {name: sgd, lr: 0.05}' 'train: {epochs: 3, batch_size: 32}' >"$1"
}
config "$work/run.yaml"
config "$work/other/run.yaml"
train() { "$NNSEQ" train "$@" --threads 1 >/dev/null 2>"$work/train.err" || cat "$work/train.err" >&3; }
train "$work/run.yaml" --out "$work/a.ckpt"
train "$work/run.yaml" --out "$work/again.ckpt"
train "$work/run.yaml" --out "$work/lr.ckpt" --lr 0.1
train "$work/run.yaml" --out "$work/seed.ckpt" --seed 4
"$NNSEQ" train "$work/run.yaml" --out "$work/threads.ckpt" --threads 2 >/dev/null 2>&1
train "$work/other/run.yaml" --out "$work/data.ckpt"
train "$work/run.yaml" --out "$work/half.ckpt" --epochs 1
train --resume "$work/half.ckpt" --epochs 3

diff_runs() { "$NNSEQ" diff "$1" "$2" >"$work/diff.out" 2>"$work/diff.err"; echo $? >"$work/diff.status"; }
status() { cat "$work/diff.status"; }
# The lines of the config section: between "config:" and the first line that is not indented.
config_lines() { sed -n '/^config:/,/^[^ ]/p' "$work/diff.out" | sed '1d;$d'; }

# --- the same run ------------------------------------------------------------
diff_runs "$work/a.ckpt" "$work/again.ckpt"
check "the same run twice: exit 0" test "$(status)" -eq 0
check "the same run twice: says so" grep -qx "the same run" "$work/diff.out"
check "the same run twice: config the same" test "$(config_lines)" = "  (the same)"
check "the same run twice: the metrics of 3 epochs, none marked" \
    test "$(grep -cE '^  +[123] ' "$work/diff.out")" -eq 3
check "the same run twice: nothing on stderr" test ! -s "$work/diff.err"
diff_runs "$work/a.ckpt" "$work/half.ckpt"
check "1 epoch then --resume to 3 is the straight run: exit 0 ($(tail -1 "$work/diff.out"))" test "$(status)" -eq 0
check "1 epoch then --resume to 3: the history has all 3 epochs" \
    test "$(grep -cE '^  +[123] ' "$work/diff.out")" -eq 3

# --- --lr: exactly that key, and every epoch's metrics -------------------------
diff_runs "$work/a.ckpt" "$work/lr.ckpt"
check "--lr: exit 1" test "$(status)" -eq 1
check "--lr: the config differs in exactly optimizer.lr ($(config_lines | tr '\n' '|'))" \
    test "$(config_lines)" = "  optimizer.lr: 0.05 -> 0.1"
check "--lr: every epoch marked" test "$(grep -cE '^\* +[123] ' "$work/diff.out")" -eq 3
check "--lr: the lr columns side by side" grep -qE '^\* +1 +0\.05 +0\.1 ' "$work/diff.out"
check "--lr: data, seed, threads, version the same" \
    test "$(grep -cE '^(data\.train|data\.test|seed|threads|ranks|version): .*\(the same\)$' "$work/diff.out")" -eq 6
check "--lr: the summary" grep -qx "different runs: 1 config key, 3 epochs of metrics differ" "$work/diff.out"

# --- seed, threads, data ----------------------------------------------------------
diff_runs "$work/a.ckpt" "$work/seed.ckpt"
check "--seed: exit 1" test "$(status)" -eq 1
check "--seed: the config key" test "$(config_lines)" = "  seed: 3 -> 4"
check "--seed: the seed line" grep -qx "seed: 3 -> 4" "$work/diff.out"
diff_runs "$work/a.ckpt" "$work/threads.ckpt"
check "--threads 2: exit 1" test "$(status)" -eq 1
check "--threads 2: config the same" test "$(config_lines)" = "  (the same)"
check "--threads 2: the thread counts" grep -qx "threads: 1 -> 2" "$work/diff.out"
diff_runs "$work/a.ckpt" "$work/data.ckpt"
check "other data: exit 1" test "$(status)" -eq 1
check "other data: the training files' paths" grep -qE "^  data\.train\.images: .*$work/train-images\.idx\" -> .*$work/other/train-images\.idx\"$" "$work/diff.out"
check "other data: the training data's CRCs differ" grep -qE "^data\.train: 1200 samples of 36 values, CRC-32 inputs [0-9a-f]{8} targets [0-9a-f]{8} -> 1200 samples" "$work/diff.out"
check "other data: the same test data" grep -qE "^data\.test: .*\(the same\)$" "$work/diff.out"

# --- bad files and usage --------------------------------------------------------
expect_error "a missing file: exit 2" 2 "$work/missing.ckpt" "$NNSEQ" diff "$work/a.ckpt" "$work/missing.ckpt"
expect_error "a config instead of a checkpoint: exit 2" 2 "$work/run.yaml" "$NNSEQ" diff "$work/run.yaml" "$work/a.ckpt"
expect_error "one file: exit 2" 2 "expected two checkpoints" "$NNSEQ" diff "$work/a.ckpt"
# Forged histories, valid containers: epoch 1 twice, more epochs than trained, a task of 9.
one_bits=4607182418800017408   # the bits of 1.0
"$TOOLS/ckpt_edit" "$work/a.ckpt" "$work/twice.ckpt" train.history_bits 32 "$one_bits"
expect_error "history: an epoch that does not increase" 2 \
    "twice.ckpt: checkpoint entry 'train.history_bits' row 2 of 3: its epoch is out of range \(expected epochs increasing from 1 to 3" \
    "$NNSEQ" diff "$work/a.ckpt" "$work/twice.ckpt"
"$TOOLS/ckpt_edit" "$work/a.ckpt" "$work/short.ckpt" train.epoch 0 2
expect_error "history: more epochs than trained" 2 \
    "short.ckpt: checkpoint entry 'train.history_bits' has 3 epochs \(expected at most the 2 trained\)" \
    "$NNSEQ" diff "$work/a.ckpt" "$work/short.ckpt"
expect_error "history: resuming from it is refused too" 2 "short.ckpt: checkpoint entry 'train.history_bits' has 3 epochs" \
    "$NNSEQ" train --resume "$work/short.ckpt" --out "$work/never.ckpt"
"$TOOLS/ckpt_edit" "$work/a.ckpt" "$work/task.ckpt" train.history_bits 3 4621256167635550208   # 9.0
expect_error "history: a task of 9" 2 "row 1 of 3: its task is out of range" "$NNSEQ" diff "$work/task.ckpt" "$work/a.ckpt"

finish cli_diff
