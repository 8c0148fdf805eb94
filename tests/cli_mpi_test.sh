#!/usr/bin/env bash
# Data-parallel training over MPI (issue 16), end to end with Open MPI's
# mpirun on this machine: 2 ranks x 1 thread give the weights of 1 process
# x 2 threads (and 3 ranks those of 1 process x 1 thread) to float
# tolerance, with Dropout, BatchNorm and a schedule on the validation loss;
# --resume works from a single-process checkpoint with 2 ranks and back;
# faults end the whole job with the failing rank named: a bad file on one
# rank, ranks whose configs differ, a killed rank, SIGINT to mpirun (rank 0
# saves a checkpoint that resumes). Needs NNSEQ (the default build, for
# export), NNSEQ_MPI (a `make MPI=1` build, default build/mpi/nnseq) and
# mpirun; without them it is skipped.
set -u
NNSEQ=${NNSEQ:?set NNSEQ to the nnseq binary}
GEN_DATA=${GEN_DATA:?set GEN_DATA to the gen_data tool}
root=$(cd "$(dirname "$0")/.." && pwd)
NNSEQ_MPI=${NNSEQ_MPI:-$root/build/mpi/nnseq}
. "$root/tests/shell_checks.sh"
command -v mpirun >/dev/null || skip_all cli_mpi "no mpirun (make deps installs openmpi-bin)"
[ -x "$NNSEQ_MPI" ] || skip_all cli_mpi "no MPI build at $NNSEQ_MPI (make MPI=1 BUILD=build/mpi NNSEQ_BIN=build/mpi/nnseq)"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
cd "$work" || exit 1
MPIRUN=(mpirun --oversubscribe)
[ "$(id -u)" -eq 0 ] && MPIRUN+=(--allow-run-as-root)

check "the default build says MPI is not in" sh -c "'$NNSEQ' --version | grep -q '^MPI: not built in'"
check "the MPI build says it is" sh -c "'$NNSEQ_MPI' --version | grep -q '^MPI: Open MPI'"

"$GEN_DATA" . 600 1 train >/dev/null && "$GEN_DATA" . 200 2 test >/dev/null || { echo "gen_data failed"; exit 1; }
config() { # config FILE OPTIMIZER EPOCHS LAYER...
    local file=$1 optimizer=$2 epochs=$3; shift 3
    {
        echo "seed: 3"
        echo "data:"
        echo "  train: {images: train-images.idx, labels: train-labels.idx.gz}"
        echo "  test: {images: test-images.idx, labels: test-labels.idx.gz}"
        echo "  val_split: 0.2"
        echo "model:"
        echo "  layers:"
        for layer in "$@"; do echo "    - $layer"; done
        echo "optimizer: $optimizer"
        echo "scheduler: {name: ReduceLROnPlateau, patience: 0, threshold: 0.9, factor: 0.5}"
        echo "train: {epochs: $epochs, batch_size: 20}"
    } >"$file"
}
config mlp.yaml "{name: adam, lr: 0.01}" 3 Flatten "Linear: {out_features: 32}" ReLU "Dropout: {p: 0.2}" \
    "Linear: {out_features: 4}"
config cnn.yaml "{name: sgd, lr: 0.05, momentum: 0.9}" 3 "Conv2d: {out_channels: 4, kernel_size: 3, padding: 1}" \
    BatchNorm2d ReLU "MaxPool2d: {kernel_size: 2}" Flatten "Dropout: {p: 0.1}" "Linear: {out_features: 4}"

# same NAME A.ckpt B.ckpt [TOLERANCE]: the two checkpoints' weights and
# buffers agree to TOLERANCE (1e-5; 0: the same bits)
same() {
    "$NNSEQ" export "$2" "$work/a.npz" >/dev/null 2>&1 && "$NNSEQ" export "$3" "$work/b.npz" >/dev/null 2>&1 &&
        /usr/bin/python3 - "$work/a.npz" "$work/b.npz" "$1" "${4:-1e-5}" <<'PY'
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert set(a) == set(b), (sorted(a), sorted(b))
worst = max(float(np.abs(a[k].astype(np.float64) - b[k]).max()) for k in a)
print(f"  {sys.argv[3]}: max |difference| {worst:.2e}")
sys.exit(0 if worst <= float(sys.argv[4]) else 1)
PY
}

for model in mlp cnn; do
    check "$model: 2 ranks x 1 thread train" "${MPIRUN[@]}" -np 2 "$NNSEQ_MPI" train $model.yaml --threads 1 \
        --out $model-r2.ckpt --format json >$model-r2.out 2>$model-r2.err
    check "$model: 1 process x 2 threads trains" "$NNSEQ_MPI" train $model.yaml --threads 2 --out $model-t2.ckpt \
        --format json >$model-t2.out 2>/dev/null
    check "$model: same weights (2 ranks x 1 thread, 1 x 2), the same bits" same "$model 2x1 vs 1x2" $model-r2.ckpt \
        $model-t2.ckpt 0
    check "$model: rank 0 alone prints (one line per epoch and the test)" test "$(grep -c '"epoch"' $model-r2.out)" -eq 3
    check "$model: the same metrics lines" cmp -s <(sed -E 's/, "seconds".*//' $model-r2.out | grep epoch) \
        <(sed -E 's/, "seconds".*//' $model-t2.out | grep epoch)
done
# Threads within ranks: the sharded update is split over each rank's
# threads (wide's slices are several 4096-parameter blocks).
config wide.yaml "{name: adam, lr: 0.01}" 2 Flatten "Linear: {out_features: 512}" ReLU "Dropout: {p: 0.2}" \
    "Linear: {out_features: 4}"
for model in wide cnn; do
    check "$model: 2 ranks x 2 threads train" "${MPIRUN[@]}" --bind-to none -np 2 "$NNSEQ_MPI" train $model.yaml \
        --threads 2 --out $model-r2t2.ckpt >$model-r2t2.out 2>$model-r2t2.err
    check "$model: each rank runs 2 threads (mpirun --bind-to none)" sh -c "! grep -q 'using 1' $model-r2t2.err"
    "$NNSEQ_MPI" train $model.yaml --threads 4 --out $model-t4.ckpt >/dev/null 2>&1
    check "$model: 2 ranks x 2 threads = 1 process x 4 threads, to tolerance" same "$model 2x2 vs 1x4" \
        $model-r2t2.ckpt $model-t4.ckpt
done
check "mlp: 3 ranks train" "${MPIRUN[@]}" -np 3 "$NNSEQ_MPI" train mlp.yaml --threads 1 --out mlp-r3.ckpt \
    >/dev/null 2>&1
"$NNSEQ_MPI" train mlp.yaml --threads 1 --out mlp-t1.ckpt >/dev/null 2>&1
check "mlp: 3 ranks = 1 process x 1 thread, to tolerance" same "mlp 3x1 vs 1x1" mlp-r3.ckpt mlp-t1.ckpt

# --- resume with another number of processes --------------------------------
config mlp5.yaml "{name: adam, lr: 0.01}" 5 Flatten "Linear: {out_features: 32}" ReLU "Dropout: {p: 0.2}" \
    "Linear: {out_features: 4}"
"$NNSEQ_MPI" train mlp5.yaml --threads 2 --epochs 2 --out one.ckpt >/dev/null 2>&1
check "resume a single-process checkpoint on 2 ranks" "${MPIRUN[@]}" -np 2 "$NNSEQ_MPI" train --resume one.ckpt \
    --epochs 4 --threads 1 >/dev/null 2>&1
check "and back on 1 process" "$NNSEQ_MPI" train --resume one.ckpt --epochs 5 --threads 2 >/dev/null 2>&1
"$NNSEQ_MPI" train mlp5.yaml --threads 2 --out straight.ckpt >/dev/null 2>&1
check "1 + 2 ranks + 1 = straight, to tolerance" same "resumed across process counts" one.ckpt straight.ckpt

# --- faults ---------------------------------------------------------------------
sed 's/train-images.idx/missing-images.idx/' mlp.yaml >bad.yaml
sed 's/lr: 0.01/lr: 0.02/' mlp.yaml >other.yaml
expect_error "a bad file on one rank ends the job, naming the rank" 2 "rank 1 of 2: .*missing-images\.idx: cannot open" \
    "${MPIRUN[@]}" -np 1 "$NNSEQ_MPI" train mlp.yaml --threads 1 --out f.ckpt : -np 1 "$NNSEQ_MPI" train bad.yaml \
    --threads 1 --out f.ckpt
check "and nothing is written" test ! -e f.ckpt
expect_error "ranks whose configs differ refuse to start" 2 "rank 1 has another config .* than rank 0" \
    "${MPIRUN[@]}" -np 1 "$NNSEQ_MPI" train mlp.yaml --threads 1 --out f.ckpt : -np 1 "$NNSEQ_MPI" train other.yaml \
    --threads 1 --out f.ckpt
# Another nnseq on rank 1: a copy of the binary whose version text differs
# in one character (as a build of another commit's would).
/usr/bin/python3 - "$NNSEQ_MPI" other-nnseq "$("$NNSEQ_MPI" --version | sed -n '1s/^nnseq //p')" <<'PY'
import sys
data, version = open(sys.argv[1], 'rb').read(), sys.argv[3].encode()
at = data.find(version + b'\0')
assert at >= 0, version
patched = version[:-2] + bytes([version[-2] ^ 1]) + version[-1:]
open(sys.argv[2], 'wb').write(data[:at] + patched + data[at + len(version):])
PY
chmod +x other-nnseq
check "the patched copy says another version" sh -c "test \"\$(./other-nnseq --version | head -1)\" != \"\$('$NNSEQ_MPI' --version | head -1)\""
expect_error "ranks that run another nnseq version refuse to start" 2 "rank 1 has another nnseq version than rank 0" \
    "${MPIRUN[@]}" -np 1 "$NNSEQ_MPI" train mlp.yaml --threads 1 --out f.ckpt : -np 1 ./other-nnseq train mlp.yaml \
    --threads 1 --out f.ckpt
check "and nothing is written" test ! -e f.ckpt
expect_error "BatchNorm needs rows of every batch on every rank" 2 "with 3 ranks every batch needs at least 3 samples" \
    "${MPIRUN[@]}" -np 3 "$NNSEQ_MPI" train cnn.yaml --threads 1 --batch-size 2 --out f.ckpt

config long.yaml "{name: adam, lr: 0.001}" 100000 Flatten "Linear: {out_features: 256}" ReLU "Linear: {out_features: 4}"
# wait_ended SECONDS: whether the background mpirun ended within SECONDS
wait_ended() {
    local tenths=$(($1 * 10))
    while kill -0 "$job" 2>/dev/null && [ "$tenths" -gt 0 ]; do sleep 0.1; tenths=$((tenths - 1)); done
    ! kill -0 "$job" 2>/dev/null
}
# wait_started FILE: until rank 0 has printed an epoch line (the ranks are
# training, their signal handlers set), at most 60 s
wait_started() {
    local tenths=600
    while ! grep -q '^epoch' "$1" 2>/dev/null && [ "$tenths" -gt 0 ]; do sleep 0.1; tenths=$((tenths - 1)); done
}
# rank_pids: the ranks' processes (their argv[0] is the binary; mpirun's is not)
rank_pids() { pgrep -f "^$NNSEQ_MPI train long.yaml"; }
"${MPIRUN[@]}" -np 2 "$NNSEQ_MPI" train long.yaml --threads 1 --out k.ckpt >k.out 2>k.err &
job=$!
wait_started k.out
kill -9 "$(rank_pids | tail -1)" 2>/dev/null
check "a killed rank ends the job within 10 s" wait_ended 10
wait "$job"
check "mpirun says which rank died" sh -c "test $? -ne 0 && grep -q 'rank 1 .*signal 9' k.err"

# SIGINT: a config of many small steps (batch 2), so that the signal
# lands in the middle of an epoch, where the optimiser's state is sharded.
"$GEN_DATA" . 4000 5 sig >/dev/null || { echo "gen_data failed"; exit 1; }
sed 's/train-images.idx/sig-images.idx/; s/train-labels.idx.gz/sig-labels.idx.gz/; s/batch_size: 20/batch_size: 2/' \
    long.yaml >sig.yaml
"${MPIRUN[@]}" -np 2 "$NNSEQ_MPI" train sig.yaml --threads 1 --out s.ckpt >s.out 2>s.err &
job=$!
wait_started s.out
kill -INT "$job"
check "SIGINT to mpirun stops every rank within 10 s" wait_ended 10
wait "$job"
check "rank 0 saved a checkpoint" test -s s.ckpt
check "no rank is left running" sh -c "! pgrep -f '^$NNSEQ_MPI train sig.yaml'"
# It stopped in or before epoch K (rank 0 says which; should mpirun drop
# its last words in the teardown, K is the epoch after the last printed):
# resuming to K epochs finishes that one, and (at 2 threads, whose bits
# are 2 ranks') gives the weights of K epochs straight: the checkpoint
# holds the whole optimiser state, not rank 0's slice of the sharded update.
stopped_in=$(sed -n 's/.*stopped by SIG[A-Z]* [a-z]* epoch \([0-9]*\).*/\1/p' s.err)
[ -n "$stopped_in" ] || stopped_in=$(($(grep -c '^epoch' s.out) + 1))
check "the checkpoint resumes (to epoch $stopped_in) on one process" "$NNSEQ_MPI" train --resume s.ckpt \
    --epochs "$stopped_in" --out s2.ckpt --threads 2 >s2.out 2>/dev/null
check "and the resumed run trains that epoch" grep -q "^epoch $stopped_in/$stopped_in " s2.out
"$NNSEQ_MPI" train sig.yaml --epochs "$stopped_in" --threads 2 --out s3.ckpt >/dev/null 2>&1
check "interrupted on 2 ranks and resumed = straight, the same bits" same "interrupted and resumed" s2.ckpt s3.ckpt 0
finish cli_mpi
