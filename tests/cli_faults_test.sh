#!/usr/bin/env bash
# Faults a long run meets, end to end on generated data: SIGINT and SIGTERM
# (a checkpoint that resumes bit for bit, mid-epoch included, exit 130 and
# 143, no temporary file left), SIGKILL at many moments (the checkpoint on
# disk always loads and resumes exactly), a second writer of one checkpoint
# (refused, naming the holder's pid), full disks (every write error is an
# error), NaN during training (stops naming the layer, keeps the last good
# checkpoint), NaN or forged counts in a checkpoint, resuming on other data
# or another config (refused unless --resume-anyway, which is recorded),
# sizes beyond the machine, --threads beyond the cores.
# Needs NNSEQ, GEN_DATA and TOOLS (tests/tools); `make check` sets them.
set -u
NNSEQ=${NNSEQ:?set NNSEQ to the nnseq binary}
GEN_DATA=${GEN_DATA:?set GEN_DATA to the gen_data tool}
TOOLS=${TOOLS:?set TOOLS to the folder of the test tools}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
. "$(dirname "$0")/shell_checks.sh"

"$GEN_DATA" "$work" 30000 1 train && "$GEN_DATA" "$work" 500 2 test || { echo "gen_data failed"; exit 1; }

# A run of a second or more: 24000 training samples of 6x6 through a
# 512-wide MLP in batches of 8, four epochs; Dropout, so the per-sample
# streams are part of what must resume exactly. The signals are sent at
# fractions of the time the uninterrupted run took here, so that they land
# all over the run on any machine and under the sanitizers.
config() { # config FILE [EXTRA LINES...]
    local file=$1; shift
    {
        echo "seed: 5"
        echo "data:"
        echo "  train: {images: train-images.idx, labels: train-labels.idx.gz}"
        echo "  test: {images: test-images.idx, labels: test-labels.idx.gz}"
        echo "  val_split: 0.2"
        echo "model:"
        echo "  layers:"
        echo "    - Flatten"
        echo "    - Linear: {out_features: 512}"
        echo "    - ReLU"
        echo "    - Dropout: {p: 0.2}"
        echo "    - Linear: {out_features: 4}"
        echo "optimizer: {name: adam, lr: 0.001}"
        echo "train: {epochs: 4, batch_size: 8}"
        for line in "$@"; do echo "$line"; done
    } >"$file"
}
config "$work/run.yaml"

# The epoch lines without their timings, which differ from run to run.
strip_timing() { sed -E 's/, "seconds": [0-9.]+, "samples_per_s": [0-9]+//; s/, "checkpoint": .*\}/}/' "$1"; }
no_temporaries() { # no_temporaries DIR: none there (the ones found are named)
    local found
    found=$(ls -a "$1" | grep -E '\.tmp-|\.lock$')
    [ -z "$found" ] || echo "left in $1: $found" >&3
    [ -z "$found" ]
}

started=$(date +%s%N)
"$NNSEQ" train "$work/run.yaml" --threads 2 --out "$work/ref.ckpt" --format json >"$work/ref.out" 2>"$work/ref.err"
run_ns=$(($(date +%s%N) - started))
check "the uninterrupted run" test -s "$work/ref.ckpt"
# at FRACTION: seconds into the run, FRACTION (0-100) percent of it
at() { awk -v ns="$run_ns" -v f="$1" 'BEGIN { printf "%.3f", ns * f / 100 / 1e9 }'; }
strip_timing "$work/ref.out" >"$work/ref.lines"

# --- SIGINT and SIGTERM: save, exit 128 + signal, resume exactly ------------
# run_until SIGNAL DELAY NAME: trains into NAME.ckpt, sends SIGNAL after DELAY
# seconds; leaves the exit status in $status
run_until() {
    local signal=$1 delay=$2 name=$3
    rm -f "$work/$name.ckpt"
    "$NNSEQ" train "$work/run.yaml" --threads 2 --out "$work/$name.ckpt" --format json >"$work/$name.out" 2>"$work/$name.err" &
    local pid=$!
    sleep "$delay"
    kill -"$signal" "$pid" 2>/dev/null
    wait "$pid"
    status=$?
}
mid_epoch=0
for fraction in 15 35 55 75 90; do
    delay=$(at "$fraction")
    run_until INT "$delay" int
    if [ "$status" -eq 0 ]; then continue; fi   # finished before the signal: nothing to resume
    check "SIGINT after ${delay}s: exit 130" test "$status" -eq 130
    if grep -q "^nnseq: wrote $work/int.ckpt" "$work/int.err"; then
        # It landed in the last validation or the test (a loaded machine):
        # the run is complete and saved, and only the status says it was stopped.
        check "SIGINT after ${delay}s, after the last epoch: the complete checkpoint" cmp -s "$work/ref.ckpt" "$work/int.ckpt"
        continue
    fi
    check "SIGINT after ${delay}s: says where it saved" grep -q "stopped by SIGINT .*saved $work/int.ckpt; go on with: nnseq train --resume" "$work/int.err"
    grep -q "stopped by SIGINT in epoch" "$work/int.err" && mid_epoch=$((mid_epoch + 1))
    check "SIGINT after ${delay}s: no temporary file or lock left" no_temporaries "$work"
    "$NNSEQ" train --resume "$work/int.ckpt" --threads 2 --format json >>"$work/int.out" 2>"$work/resume.err"
    check "SIGINT after ${delay}s: the resumed run's checkpoint is the uninterrupted one's" cmp -s "$work/ref.ckpt" "$work/int.ckpt"
    check "SIGINT after ${delay}s: the same epoch lines" cmp -s "$work/ref.lines" <(strip_timing "$work/int.out")
done
check "at least one SIGINT landed in the middle of an epoch" test "$mid_epoch" -ge 1
# On a loaded machine a run may end before its signal: then earlier.
for fraction in 50 25 10; do
    run_until TERM "$(at "$fraction")" term
    [ "$status" -eq 0 ] || break
done
check "SIGTERM: exit 143" test "$status" -eq 143
check "SIGTERM: says so" grep -q "stopped by SIGTERM" "$work/term.err"
"$NNSEQ" train --resume "$work/term.ckpt" --threads 2 >/dev/null 2>&1
check "SIGTERM: resumes to the same checkpoint" cmp -s "$work/ref.ckpt" "$work/term.ckpt"
"$NNSEQ" train "$work/run.yaml" --threads 2 --out "$work/p.ckpt" >/dev/null 2>"$work/p.err" &
pid=$!
sleep "$(at 40)"
kill -INT "$pid"; wait "$pid"
if grep -q "stopped by SIGINT in epoch" "$work/p.err"; then
    check "a checkpoint stopped mid-epoch says so in print" sh -c "'$NNSEQ' print '$work/p.ckpt' | grep -qE '^Stopped by a signal after [0-9]+ epochs? and [0-9]+ samples of epoch [0-9]+'"
else
    check "a checkpoint stopped between epochs prints as its config does" sh -c "! '$NNSEQ' print '$work/p.ckpt' | grep -q '^Stopped'"
fi

# A second SIGINT exits at once, leaving no temporary file.
for fraction in 50 25 10; do
    "$NNSEQ" train "$work/run.yaml" --threads 2 --out "$work/twice.ckpt" >/dev/null 2>"$work/twice.err" &
    pid=$!
    sleep "$(at "$fraction")"
    kill -INT "$pid"; kill -INT "$pid" 2>/dev/null
    wait "$pid"
    status=$?
    [ "$status" -eq 0 ] || break
done
check "two SIGINTs: exit 130 at once" test "$status" -eq 130
check "two SIGINTs: no temporary file or lock left" no_temporaries "$work"

# --- SIGKILL at many moments: what is on disk always loads and resumes ----
kills=0 loaded=0
for fraction in 10 17 24 31 38 45 52 59 66 73 80 87 94; do
    delay=$(at "$fraction")
    rm -f "$work/kill.ckpt"
    "$NNSEQ" train "$work/run.yaml" --threads 2 --out "$work/kill.ckpt" >/dev/null 2>&1 &
    pid=$!
    sleep "$delay"
    kill -KILL "$pid" 2>/dev/null && kills=$((kills + 1))
    wait "$pid" 2>/dev/null
    [ -e "$work/kill.ckpt" ] || continue
    if "$NNSEQ" print "$work/kill.ckpt" >/dev/null 2>&1; then loaded=$((loaded + 1)); else fail "SIGKILL after ${delay}s: the checkpoint on disk does not load"; fi
    "$NNSEQ" train --resume "$work/kill.ckpt" --threads 2 >/dev/null 2>&1
    check "SIGKILL after ${delay}s: resumes to the uninterrupted checkpoint" cmp -s "$work/ref.ckpt" "$work/kill.ckpt"
    check "SIGKILL after ${delay}s: no temporary file or lock after the resume" no_temporaries "$work"
done
echo "cli_faults: $kills runs killed, $loaded checkpoints left by them loaded and resumed" >&3
check "some SIGKILLs left a checkpoint to resume" test "$loaded" -ge 3

# --- One writer per checkpoint -----------------------------------------------
"$NNSEQ" train "$work/run.yaml" --threads 1 --out "$work/locked.ckpt" >/dev/null 2>&1 &
holder=$!
for _ in $(seq 50); do [ -e "$work/locked.ckpt.lock" ] && break; sleep 0.05; done
expect_error "a second writer is refused, naming the holder" 2 "locked.ckpt: another nnseq \\(pid $holder\\) is writing this checkpoint" \
    "$NNSEQ" train "$work/run.yaml" --out "$work/locked.ckpt"
expect_error "through another name for the same file too" 2 "another nnseq \\(pid $holder\\)" \
    "$NNSEQ" train "$work/run.yaml" --out "$work/./../$(basename "$work")/locked.ckpt"
kill -KILL "$holder"; wait "$holder" 2>/dev/null
check "after the holder is killed, the next writer takes its lock over (and removes it)" sh -c "'$NNSEQ' train '$work/run.yaml' --epochs 1 --out '$work/locked.ckpt' >/dev/null 2>&1 && test ! -e '$work/locked.ckpt.lock'"
"$NNSEQ" train "$work/run.yaml" --threads 1 --no-checkpoint --log "$work/locked.log" >/dev/null 2>&1 &
holder=$!
for _ in $(seq 50); do [ -e "$work/locked.log.lock" ] && break; sleep 0.05; done
expect_error "a second writer of one log is refused" 2 "locked.log: another nnseq \\(pid $holder\\) is writing this log" \
    "$NNSEQ" train "$work/run.yaml" --no-checkpoint --log "$work/locked.log"
kill -KILL "$holder"; wait "$holder" 2>/dev/null
check "and a killed holder's log lock is taken over too" sh -c "'$NNSEQ' train '$work/run.yaml' --epochs 1 --no-checkpoint --log '$work/locked.log' >/dev/null 2>&1 && test ! -e '$work/locked.log.lock'"

# --- Every write error is an error --------------------------------------------
# Thirty short epochs on the 500 test samples: a log of more than the
# 1 KiB that ulimit -f 1 lets a file grow to.
config "$work/short.yaml"
sed -i 's/epochs: 4/epochs: 30/; s/train: {images: train-images.idx, labels: train-labels.idx.gz}/train: {images: test-images.idx, labels: test-labels.idx.gz}/' "$work/short.yaml"
expect_error "a log on a full disk (RLIMIT_FSIZE)" 1 "short.log: cannot write the log: File too large" \
    bash -c "trap '' XFSZ; ulimit -f 1; exec '$NNSEQ' train '$work/short.yaml' --no-checkpoint --log '$work/short.log' --format json >/dev/null"
expect_error "metrics to a full standard output" 1 "cannot write the metrics to standard output: No space left on device" \
    sh -c "'$NNSEQ' train '$work/short.yaml' --no-checkpoint >/dev/full"
expect_error "eval to a full standard output" 1 "standard output.*No space left on device" \
    sh -c "'$NNSEQ' eval '$work/ref.ckpt' >/dev/full"
expect_error "a checkpoint on a full disk" 1 "full.ckpt: .*File too large" \
    bash -c "trap '' XFSZ; ulimit -f 8; exec '$NNSEQ' train '$work/short.yaml' --out '$work/full.ckpt' >/dev/null"
check "a failed checkpoint write leaves no temporary file" no_temporaries "$work"

# --- NaN during training --------------------------------------------------------
cp "$work/ref.ckpt" "$work/good.ckpt"
cp "$work/good.ckpt" "$work/good.copy"
sed -i 's/epochs: 4/epochs: 5/' "$work/run.yaml"
expect_error "a run that diverges stops naming epoch, step and layer" 1 \
    "epoch 5, step [0-9]+: the output of layer [0-9] \\((Linear|ReLU)\\) became NaN or infinite in forward; stopped without saving" \
    "$NNSEQ" train "$work/run.yaml" --resume "$work/good.ckpt" --resume-anyway --lr 1e30
check "the last good checkpoint is kept" cmp -s "$work/good.ckpt" "$work/good.copy"
sed -i 's/epochs: 5/epochs: 4/' "$work/run.yaml"

# --- What a checkpoint holds is checked ---------------------------------------
"$TOOLS/ckpt_edit" "$work/ref.ckpt" "$work/nan.ckpt" model.1.weight 7 nan
expect_error "NaN weights are refused" 2 "nan.ckpt: checkpoint entry 'model.1.weight' holds NaN at index 7 .*--allow-nonfinite" \
    "$NNSEQ" eval "$work/nan.ckpt"
check "--allow-nonfinite evaluates them anyway" sh -c "'$NNSEQ' eval '$work/nan.ckpt' --allow-nonfinite >/dev/null"
"$TOOLS/ckpt_edit" "$work/ref.ckpt" "$work/inf.ckpt" optimizer.exp_avg 3 inf
expect_error "an infinite optimiser state stops a resume" 2 "checkpoint entry 'optimizer.exp_avg' holds an infinity at index 3" \
    "$NNSEQ" train --resume "$work/inf.ckpt" --epochs 5
for epoch in -5 2147483648 1099511627776; do
    "$TOOLS/ckpt_edit" "$work/ref.ckpt" "$work/epoch.ckpt" train.epoch 0 "$epoch"
    expect_error "train.epoch $epoch is refused by eval" 2 "checkpoint entry 'train.epoch' is $epoch \\(expected 0 to 1000000\\)" \
        "$NNSEQ" eval "$work/epoch.ckpt"
    expect_error "train.epoch $epoch is refused by a resume" 2 "checkpoint entry 'train.epoch' is $epoch" \
        "$NNSEQ" train --resume "$work/epoch.ckpt" --epochs 5
done
"$TOOLS/ckpt_edit" "$work/ref.ckpt" "$work/steps.ckpt" optimizer.steps 0 -1
expect_error "a negative step count is refused" 2 "checkpoint entry 'optimizer.steps' is -1" \
    "$NNSEQ" train --resume "$work/steps.ckpt" --epochs 5
"$TOOLS/ckpt_edit" "$work/ref.ckpt" "$work/position.ckpt" train.epoch_position 0 7
expect_error "a position inside a batch is refused" 2 "'train.epoch_position' is 7, not a whole number of batches of 8" \
    "$NNSEQ" train --resume "$work/position.ckpt" --epochs 5
"$TOOLS/ckpt_edit" "$work/ref.ckpt" "$work/shape.ckpt" train.input_shape 1 1073741824
expect_error "an input shape beyond 2^28 values is refused" 2 "train.input_shape has a dimension 1073741824" \
    "$NNSEQ" eval "$work/shape.ckpt"

# Found by fuzz_checkpoint (tests/fuzz/corpus/checkpoint/regression-*, the
# checkpoint after the harness's control byte): a 1.4 KB file whose stored
# config asks for a 10^9-parameter model, and one whose layer error named
# only the stored config's path.
corpus=$(dirname "$0")/fuzz/corpus/checkpoint
tail -c +2 "$corpus/regression-claims-huge-model" >"$work/huge_model.ckpt"
expect_error "a stored config larger than the file's weights is refused at once" 2 \
    "huge_model.ckpt: the stored config: .*1020000000 parameters with the layers before it, more than the 51 values the file holds" \
    "$NNSEQ" eval "$work/huge_model.ckpt"
tail -c +2 "$corpus/regression-model-error-without-path" >"$work/bad_layer.ckpt"
expect_error "a stored config's layer error names the checkpoint" 2 \
    "bad_layer.ckpt: the stored config: .*layer 0 \\(Linear\\): out_features must be at least 1" \
    "$NNSEQ" print "$work/bad_layer.ckpt"

# Found by fuzz_config: a loss weight beyond float's range became an
# infinity that crashed print --config (the render).
cp "$(dirname "$0")/fuzz/corpus/config/regression-pos-weight-1e39.yaml" "$work/inf_weight.yaml"
expect_error "a loss weight beyond float's range is refused at its line" 2 \
    "inf_weight.yaml:[0-9]+:[0-9]+: expected a number <= 3.40282346638529e\\+38 for pos_weight, got '1e39'" \
    "$NNSEQ" print "$work/inf_weight.yaml" --config

# --- Resume means the same run ---------------------------------------------------
cp "$work/ref.ckpt" "$work/again.ckpt"
expect_error "--resume with another --lr" 2 "cannot resume from .*again.ckpt: optimizer.lr: 0.001 in the checkpoint, 0.5 now" \
    "$NNSEQ" train --resume "$work/again.ckpt" --epochs 5 --lr 0.5
expect_error "--resume with another --seed" 2 "seed: 5 in the checkpoint, 6 now" \
    "$NNSEQ" train --resume "$work/again.ckpt" --epochs 5 --seed 6
expect_error "--resume with another --batch-size" 2 "train.batch_size: 8 in the checkpoint, 32 now" \
    "$NNSEQ" train --resume "$work/again.ckpt" --epochs 5 --batch-size 32
config "$work/other_val.yaml"
sed -i 's/val_split: 0.2/val_split: 0.1/' "$work/other_val.yaml"
expect_error "a CONFIG with another val_split" 2 "data.val_split: 0.2 in the checkpoint, 0.1 now" \
    "$NNSEQ" train "$work/other_val.yaml" --resume "$work/again.ckpt" --epochs 5
expect_error "--init with --resume" 2 "--init and --resume contradict" \
    "$NNSEQ" train --resume "$work/again.ckpt" --init "$work/x.npz"
mv "$work/train-labels.idx.gz" "$work/train-labels.keep"
mkdir -p "$work/other"
"$GEN_DATA" "$work/other" 30000 9 train
cp "$work/other/train-labels.idx.gz" "$work/train-labels.idx.gz"
expect_error "other training labels are refused" 2 "cannot resume from .*again.ckpt: the training data: the same 30000 samples of 36 values, but other targets \\(CRC-32 [0-9a-f]{8} in the checkpoint, [0-9a-f]{8} now\\)" \
    "$NNSEQ" train --resume "$work/again.ckpt" --epochs 5
check "--resume-anyway goes on" sh -c "'$NNSEQ' train --resume '$work/again.ckpt' --epochs 5 --resume-anyway >/dev/null 2>&1"
check "and the checkpoint records it" sh -c "'$NNSEQ' print '$work/again.ckpt' | grep -q 'resumed from .*again.ckpt anyway: the training data: the same 30000 samples'"
check "a config change let through is recorded too" sh -c "'$NNSEQ' train --resume '$work/again.ckpt' --epochs 6 --lr 0.0005 --resume-anyway >/dev/null 2>'$work/anyway.err' && grep -q 'warning: resuming .* anyway: optimizer.lr' '$work/anyway.err' && '$NNSEQ' print '$work/again.ckpt' | grep -q 'anyway: optimizer.lr: 0.001 in the checkpoint, 0.0005 now'"
mv "$work/train-labels.keep" "$work/train-labels.idx.gz"

# --- Sizes from the config and the command line ------------------------------------
config "$work/huge.yaml"
sed -i 's/out_features: 512/out_features: 2147483647/' "$work/huge.yaml"
expect_error "out_features 2^31-1 names the layer's line" 2 "huge.yaml:9:7: layer 1 \\(Linear\\): its output has 2147483647 values per sample" \
    "$NNSEQ" train "$work/huge.yaml" --no-checkpoint
config "$work/wide.yaml"
sed -i 's/out_features: 512/out_features: 40000000/' "$work/wide.yaml"
expect_error "parameters beyond 2^30 name the layer" 2 "wide.yaml:9:7: layer 1 \\(Linear\\): 1480000000 parameters" \
    "$NNSEQ" train "$work/wide.yaml" --no-checkpoint
config "$work/whole.yaml"
sed -i 's/batch_size: 8/batch_size: 2147483647/; s/epochs: 4/epochs: 1/' "$work/whole.yaml"
check "batch_size 2^31-1 trains on the whole data in one batch" sh -c "'$NNSEQ' train '$work/whole.yaml' --no-checkpoint >/dev/null 2>&1"
check "--threads beyond the cores is capped with a note" sh -c "'$NNSEQ' train '$work/whole.yaml' --no-checkpoint --threads 1024 2>&1 >/dev/null | grep -q 'note: --threads 1024 is more than the [0-9]* cores\\? this process may use: using [0-9]*'"

finish cli_faults
