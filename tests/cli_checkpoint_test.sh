#!/usr/bin/env bash
# End-to-end: checkpoints mean what ran, and outputs are checked before any
# training. The checkpoint holds the effective config (overrides applied,
# absolute paths), so eval, print, --resume and export work from any folder;
# --resume without CONFIG writes back to CKPT; a CONFIG that differs from
# what trained is refused naming the difference; every output (--out,
# --log, exports) is checked up front, and nothing that is not a regular
# file of ours is replaced; bad test data fails before the first epoch.
# Needs NNSEQ and GEN_DATA (`make check` sets both).
set -u
NNSEQ=${NNSEQ:?set NNSEQ to the nnseq binary}
GEN_DATA=${GEN_DATA:?set GEN_DATA to the gen_data tool}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/shell_checks.sh"

"$GEN_DATA" "$work" 300 1 train && "$GEN_DATA" "$work" 100 2 test || { echo "gen_data failed"; exit 1; }
mkdir -p "$work/conf" "$work/elsewhere"
mv "$work"/train-* "$work"/test-* "$work/conf/"
cat >"$work/conf/m.yaml" <<'EOF'
seed: 1
data:
  train: {images: train-images.idx, labels: train-labels.idx.gz}
  test: {images: test-images.idx, labels: test-labels.idx.gz}
  val_split: 0.2
model:
  layers:
    - Flatten
    - Linear: {out_features: 12}
    - ReLU
    - Linear: {out_features: 4}
optimizer: {name: adam, lr: 0.01}
train: {epochs: 2, batch_size: 8}
checkpoint: {path: runs/m.ckpt}
EOF

# --- the effective config ----------------------------------------------------
(cd "$work/elsewhere" && "$NNSEQ" train ../conf/m.yaml --lr 0.5 --batch-size 16 --seed 7 --epochs 1 \
    --out "$work/o.ckpt" >"$work/o.out" 2>/dev/null)
"$NNSEQ" print "$work/o.ckpt" --config >"$work/o.yaml"
check "stored config has --lr" grep -q '^optimizer: {name: adam, lr: 0.5,' "$work/o.yaml"
check "stored config has --batch-size" grep -q '^  batch_size: 16$' "$work/o.yaml"
check "stored config has --seed" grep -q '^seed: 7$' "$work/o.yaml"
check "stored config has --epochs" grep -q '^  epochs: 1$' "$work/o.yaml"
check "stored data paths are absolute" grep -q "^    images: \"$work/conf/train-images.idx\"$" "$work/o.yaml"
check "the stored config trains as it is" "$NNSEQ" train "$work/o.yaml" --out "$work/o2.ckpt" >/dev/null 2>&1
"$NNSEQ" export "$work/o.ckpt" "$work/o.npz" 2>/dev/null
"$NNSEQ" export "$work/o2.ckpt" "$work/o2.npz" 2>/dev/null
check "...to the same weights, bit for bit" cmp -s "$work/o.npz" "$work/o2.npz"
test_line=$(grep '^test' "$work/o.out" | sed 's/.*accuracy \([0-9.]*\).*/\1/')
check "eval from another folder" sh -c "cd / && '$NNSEQ' eval '$work/o.ckpt' | grep -qx 'accuracy  $test_line'"
check "eval uses the batch size that trained" sh -c "cd / && '$NNSEQ' eval '$work/o.ckpt' --format json | grep -q '\"accuracy\": $test_line'"

# Arguments survive the checkpoint's stored config as given: a float pair
# written as one number (Upsample's scale_factor 1.5) stays 1.5.
sed 's/    - Flatten/    - Upsample: {scale_factor: 1.5, mode: bilinear}\n    - Flatten/' "$work/conf/m.yaml" >"$work/conf/up.yaml"
"$NNSEQ" train "$work/conf/up.yaml" --epochs 1 --out "$work/up.ckpt" >/dev/null 2>&1
check "the checkpoint prints the model its config prints" sh -c "'$NNSEQ' print '$work/conf/up.yaml' | sed -n '1,/^)/p' >'$work/up1.txt' &&
    '$NNSEQ' print '$work/up.ckpt' | sed -n '1,/^)/p' >'$work/up2.txt' && cmp -s '$work/up1.txt' '$work/up2.txt' &&
    grep -q 'scale_factor=1.5' '$work/up2.txt'"

sed 's/  val_split: 0.2/  val_split: 0/; s/^optimizer: .*/&\nscheduler: {name: ReduceLROnPlateau}/' "$work/conf/m.yaml" >"$work/conf/plateau.yaml"
expect_error "ReduceLROnPlateau without a validation split is refused before training" 2 \
    "scheduler plateau watches the validation loss: set data.val_split > 0" \
    "$NNSEQ" train "$work/conf/plateau.yaml" --out "$work/plateau.ckpt"

# --- resume ------------------------------------------------------------------
"$NNSEQ" train "$work/conf/m.yaml" --epochs 1 --out "$work/r.ckpt" >/dev/null 2>&1
cp "$work/r.ckpt" "$work/keep.ckpt"
cp "$work/r.ckpt" "$work/keep.orig"
(cd / && "$NNSEQ" train --resume "$work/r.ckpt" --epochs 2 >"$work/r.out" 2>"$work/r.err")
check "resume without CONFIG" grep -q '^epoch 2/2' "$work/r.out"
check "resume writes back to CKPT" grep -q "wrote $work/r.ckpt" "$work/r.err"
check "and nowhere else" test ! -e "$work/conf/runs/m.ckpt"
"$NNSEQ" train "$work/conf/m.yaml" --epochs 2 --out "$work/straight.ckpt" >/dev/null 2>&1
check "resumed == straight, byte for byte" cmp -s "$work/r.ckpt" "$work/straight.ckpt"
# Optimisers with optional state (amsgrad, centered) and schedules that
# change the rate every step or keep state (ReduceLROnPlateau): 2 epochs
# then --resume to 3 is 3 straight, byte for byte.
n=0
for pair in "{name: RMSprop, lr: 0.01, centered: true, momentum: 0.5}|{name: OneCycleLR, max_lr: 0.02, epochs: 3, steps_per_epoch: 30}" \
    "{name: Adam, lr: 0.01, amsgrad: true, weight_decay: 0.01, no_decay: [bias]}|{name: ReduceLROnPlateau, patience: 0, threshold: 0.9}" \
    "{name: NAdam, lr: 0.01}|{name: SequentialLR, milestones: [1], schedulers: [{name: LinearLR, total_iters: 1}, {name: ExponentialLR, gamma: 0.5}]}" \
    "{name: AdamW, lr: 0.01}|{name: CosineAnnealingWarmRestarts, T_0: 1, T_mult: 2}"; do
    n=$((n + 1))
    sed "s/^optimizer: .*/optimizer: ${pair%%|*}\nscheduler: ${pair#*|}/" "$work/conf/m.yaml" >"$work/conf/s$n.yaml"
    "$NNSEQ" train "$work/conf/s$n.yaml" --epochs 2 --out "$work/s$n.ckpt" >/dev/null 2>"$work/s$n.err" &&
        "$NNSEQ" train --resume "$work/s$n.ckpt" --epochs 3 >/dev/null 2>>"$work/s$n.err" &&
        "$NNSEQ" train "$work/conf/s$n.yaml" --epochs 3 --out "$work/s$n-straight.ckpt" >/dev/null 2>>"$work/s$n.err"
    check "resumed == straight with ${pair#*|}" cmp -s "$work/s$n.ckpt" "$work/s$n-straight.ckpt"
done
"$NNSEQ" train "$work/conf/m.yaml" --resume "$work/keep.ckpt" --epochs 2 --out "$work/r2.ckpt" >/dev/null 2>&1
check "resume with the same CONFIG, --out elsewhere" cmp -s "$work/r2.ckpt" "$work/straight.ckpt"
check "--out leaves CKPT as it was" sh -c "'$NNSEQ' print '$work/keep.ckpt' --config | grep -q '^  epochs: 1$'"
sed 's/out_features: 12/out_features: 10/' "$work/conf/m.yaml" >"$work/conf/wide.yaml"
expect_error "resume with another model names the layer and both sizes" 2 \
    'model.layers\[1\] \(Linear\) out_features: 12 in the checkpoint, 10 now' \
    "$NNSEQ" train "$work/conf/wide.yaml" --resume "$work/keep.ckpt" --epochs 2
sed 's/name: adam, lr: 0.01/name: sgd, lr: 0.01/' "$work/conf/m.yaml" >"$work/conf/sgd.yaml"
expect_error "resume with another optimiser names it" 2 'optimizer: adam in the checkpoint, sgd now' \
    "$NNSEQ" train "$work/conf/sgd.yaml" --resume "$work/keep.ckpt" --epochs 2
expect_error "resume with another lr names it" 2 'optimizer.lr: 0.01 in the checkpoint, 0.02 now' \
    "$NNSEQ" train "$work/conf/m.yaml" --resume "$work/keep.ckpt" --epochs 2 --lr 0.02
check "a refused resume leaves the checkpoint as it was" cmp -s "$work/keep.ckpt" "$work/keep.orig"
expect_error "train needs a CONFIG or --resume" 2 'expected one CONFIG file' "$NNSEQ" train

# --- moved data ----------------------------------------------------------------
cp -r "$work/conf" "$work/moved"
"$NNSEQ" train "$work/moved/m.yaml" --epochs 1 --out "$work/mv.ckpt" >/dev/null 2>&1
rm "$work/moved/test-images.idx"
expect_error "eval after the data moved names the file and --images/--labels" 2 \
    "$work/moved/test-images.idx.*--images.*--labels" "$NNSEQ" eval "$work/mv.ckpt"
check "eval with --images/--labels still works" sh -c "'$NNSEQ' eval '$work/mv.ckpt' --images '$work/conf/test-images.idx' --labels '$work/conf/test-labels.idx.gz' >/dev/null"

# --- outputs checked before training ----------------------------------------------
mkdir "$work/folder"
expect_error "--out naming a folder, before training" 2 'is a folder' \
    "$NNSEQ" train "$work/conf/m.yaml" --out "$work/folder"
mkfifo "$work/fifo"
expect_error "--out naming a FIFO is refused" 2 'not a regular file \(a FIFO\).*--no-checkpoint' \
    "$NNSEQ" train "$work/conf/m.yaml" --out "$work/fifo"
check "...and the FIFO is still a FIFO" test -p "$work/fifo"
if [ -p "$work/fifo" ] && [ -c /dev/null ]; then
    expect_error "--out /dev/null is refused" 2 'not a regular file \(a character device\)' \
        "$NNSEQ" train "$work/conf/m.yaml" --out /dev/null
    check "...and /dev/null is still a device" test -c /dev/null
fi
echo old >"$work/ro.ckpt"
chmod 444 "$work/ro.ckpt"
expect_error "a read-only checkpoint is refused, even for root" 2 'read-only' \
    "$NNSEQ" train "$work/conf/m.yaml" --out "$work/ro.ckpt"
check "...and left as it was" grep -qx old "$work/ro.ckpt"
expect_error "--log naming a folder" 2 'is a folder \(expected a file name for the log\)' \
    "$NNSEQ" train "$work/conf/m.yaml" --out "$work/l.ckpt" --log "$work/folder"
check "...before a checkpoint was written" test ! -e "$work/l.ckpt"
expect_error "--log under a file" 2 "x.csv: cannot write the log: Not a directory" \
    "$NNSEQ" train "$work/conf/m.yaml" --out "$work/l.ckpt" --log "$work/ro.ckpt/x.csv"
check "--no-checkpoint trains and writes none" sh -c "cd '$work/elsewhere' && '$NNSEQ' train ../conf/m.yaml --no-checkpoint 2>&1 | grep -q 'no checkpoint written' && test ! -e ../conf/runs"
expect_error "--out with --no-checkpoint" 2 'contradict' "$NNSEQ" train "$work/conf/m.yaml" --out x --no-checkpoint
ln -s "$work/target.ckpt" "$work/link.ckpt"
echo placeholder >"$work/target.ckpt"
"$NNSEQ" train "$work/conf/m.yaml" --epochs 1 --out "$work/link.ckpt" >/dev/null 2>&1
check "a symbolic link stays a link; the file it names is replaced" sh -c "test -L '$work/link.ckpt' && '$NNSEQ' print '$work/target.ckpt' >/dev/null"
expect_error "export refuses an extension it does not write" 2 "'.pt'" \
    "$NNSEQ" export "$work/o.ckpt" "$work/model.pt"
check "...and writes nothing" test ! -e "$work/model.pt"
mkfifo "$work/fifo.npz"
expect_error "export to a FIFO is refused" 2 'not a regular file' "$NNSEQ" export "$work/o.ckpt" "$work/fifo.npz"

# --- test data checked before training -------------------------------------------------
sed 's|test: {images: test-images.idx|test: {images: missing.idx|' "$work/conf/m.yaml" >"$work/conf/badtest.yaml"
start=$(date +%s)
expect_error "a missing test file fails before training" 2 'missing.idx: cannot open' \
    "$NNSEQ" train "$work/conf/badtest.yaml" --epochs 50 --out "$work/bt.ckpt"
check "...at once" test $(($(date +%s) - start)) -le 5
check "...with no checkpoint written" test ! -e "$work/bt.ckpt"
sed 's|test: {images: test-images.idx, labels: test-labels.idx.gz}|test: {images: test-images.idx, labels: train-labels.idx.gz}|' \
    "$work/conf/m.yaml" >"$work/conf/count.yaml"
expect_error "test images and labels of different counts" 2 'test-images.idx has 100 samples but .*train-labels.idx.gz has 300 targets' \
    "$NNSEQ" train "$work/conf/count.yaml" --out "$work/bt.ckpt"
# 100 labels, all 7: beyond a 4-output model (the training labels are 0..3).
{ printf '\000\000\010\001\000\000\000\144'; head -c 100 /dev/zero | tr '\000' '\007'; } >"$work/conf/sevens.idx"
sed 's|test-labels.idx.gz}|sevens.idx}|' "$work/conf/m.yaml" >"$work/conf/labels.yaml"
start=$(date +%s)
expect_error "test labels beyond the model's outputs, before training" 2 \
    'sevens.idx: item 0: test label 7 is beyond the model.s 4 outputs \(expected 0 to 3\)' \
    "$NNSEQ" train "$work/conf/labels.yaml" --epochs 50 --out "$work/bt.ckpt"
check "...at once" test $(($(date +%s) - start)) -le 5
sed 's/out_features: 4}/out_features: 300}/' "$work/conf/m.yaml" >"$work/conf/w300.yaml"
check "a model with 300 outputs trains and tests" sh -c "'$NNSEQ' train '$work/conf/w300.yaml' --epochs 1 --out '$work/w300.ckpt' 2>/dev/null | grep -q '^test' && '$NNSEQ' eval '$work/w300.ckpt' >/dev/null"
# --- files of the wrong kind -----------------------------------------------------------
printf '\211PNG\r\n\032\n0123456789abcdef0123456789abcdef0123456789abcdef' >"$work/x.png"
printf 'a,b,c\n1,2,3\n' >"$work/x.csv"
printf '\223NUMPY\001\000v\000{"descr": "<f4", "fortran_order": False, "shape": (3,), }   \n' >"$work/x.npy"
expect_error "predict names a PNG" 2 'x.png: not an IDX file: it looks like a PNG image' "$NNSEQ" predict "$work/o.ckpt" "$work/x.png"
expect_error "predict names a CSV" 2 'x.csv: not an IDX file: it looks like text' "$NNSEQ" predict "$work/o.ckpt" "$work/x.csv"
expect_error "predict names an .npy" 2 'x.npy: not an IDX file: it looks like a NumPy .npy array' "$NNSEQ" predict "$work/o.ckpt" "$work/x.npy"
expect_error "predict from stdin names a PNG" 2 'not an IDX file: it looks like a PNG image' sh -c "'$NNSEQ' predict '$work/o.ckpt' - <'$work/x.png'"
expect_error "eval of a config says so" 2 'm.yaml: not an nnseq checkpoint: it looks like text.*a config goes to nnseq train' \
    "$NNSEQ" eval "$work/conf/m.yaml"
expect_error "eval of a PNG says so" 2 'not an nnseq checkpoint: it looks like a PNG image' "$NNSEQ" eval "$work/x.png"
finish checkpoint
