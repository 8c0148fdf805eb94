#!/usr/bin/env bash
# End-to-end: the messages for mistakes. A mistyped command gets "did you
# mean"; Keras's and torch's names get a pointer to nnseq's; torch names
# nnseq lacks are said to be missing; a checkpoint or a data file given as
# a config is named for what it is; torch's class names train as aliases;
# and the silent modelling mistakes are warned about on stderr while
# training goes on (exit 0).
# Needs NNSEQ and GEN_DATA (`make check` sets both).
set -u
NNSEQ=${NNSEQ:?set NNSEQ to the nnseq binary}
GEN_DATA=${GEN_DATA:?set GEN_DATA to the gen_data tool}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/shell_checks.sh"

"$GEN_DATA" "$work" 200 1 train && "$GEN_DATA" "$work" 50 2 test || { echo "gen_data failed"; exit 1; }

# config FILE LAST_LAYER_LINES LOSS_LINE OPTIMIZER_LINE: a tiny run whose
# model ends with the given lines (from line 10 on).
config() {
    local file=$1 last=$2 loss=$3 optimizer=$4
    {
        echo "seed: 3"                                                           # 1
        echo "data:"                                                             # 2
        echo "  train: {images: train-images.idx, labels: train-labels.idx.gz}"  # 3
        echo "  test: {images: test-images.idx, labels: test-labels.idx.gz}"     # 4
        echo "model:"                                                            # 5
        echo "  layers:"                                                         # 6
        echo "    - Flatten"                                                     # 7
        echo "    - Linear: {out_features: 12}"                                  # 8
        echo "    - ReLU"                                                        # 9
        printf '%s\n' "$last"                                                    # 10...
        [ -z "$loss" ] || echo "$loss"
        [ -z "$optimizer" ] || echo "$optimizer"
        echo "train: {epochs: 1, batch_size: 16}"
        echo "checkpoint: {path: runs/model.ckpt}"
    } >"$file"
}
linear='    - Linear: {out_features: 4}'
adam='optimizer: {name: adam, lr: 0.01}'
config "$work/good.yaml" "$linear" "loss: cross_entropy" "$adam"

# --- commands ------------------------------------------------------------------
expect_error "a swapped pair in a command" 2 "^nnseq: unknown command 'trian' \(did you mean 'train'\?\)$" \
    "$NNSEQ" trian "$work/good.yaml"
expect_error "a command's case" 2 "unknown command 'Eval' \(did you mean 'eval'\?\)" "$NNSEQ" Eval x.ckpt
expect_error "a typo in predict" 2 "unknown command 'predcit' \(did you mean 'predict'\?\)" "$NNSEQ" predcit x.ckpt
expect_error "nothing near: no suggestion" 2 "^nnseq: unknown command 'fly'$" "$NNSEQ" fly
expect_error "the usage follows" 2 "^usage: nnseq COMMAND" "$NNSEQ" fly
expect_error "Keras's fit" 2 "unknown command 'fit' \(Keras's model\.fit\(\) is 'nnseq train'\)" "$NNSEQ" fit x.yaml
expect_error "a config without a command" 2 "unknown command '.*good\.yaml' \(did you mean 'nnseq train .*good\.yaml'\?\)" \
    "$NNSEQ" "$work/good.yaml"
expect_error "an option's typo" 2 "unknown option '--epoch' \(did you mean '--epochs'\?\)" \
    "$NNSEQ" train "$work/good.yaml" --epoch 3

# --- Keras's and torch's names ---------------------------------------------------
bad() { # bad NAME PATTERN SED: good.yaml edited by SED must fail with exit 2 and PATTERN
    sed "$3" "$work/good.yaml" >"$work/bad.yaml"
    expect_error "$1" 2 "$2" "$NNSEQ" train "$work/bad.yaml"
}
bad "units" "bad\.yaml:8:16: unknown argument 'units' for Linear \(Keras's units is torch's out_features\)$" \
    's/{out_features: 12}/{units: 12}/'
bad "Dense" "bad\.yaml:8:7: unknown layer 'Dense' \(Keras's Dense is torch's Linear\)$" 's/- Linear: {out_features: 12}/- Dense: {units: 12}/'
bad "activation argument" "bad\.yaml:8:34: unknown argument 'activation' for Linear \(write the activation as a separate layer after it: - ReLU\)$" \
    's/{out_features: 12}/{out_features: 12, activation: relu}/'
bad "Dropout rate" "unknown argument 'rate' for Dropout \(Keras's rate is torch's p\)$" 's/    - ReLU/    - Dropout: {rate: 0.5}/'
bad "GLU is not suggested GELU" "bad\.yaml:9:7: 'GLU' is a torch\.nn layer that nnseq does not have yet \(nnseq has: Linear, ReLU, .*\)$" \
    's/    - ReLU/    - GLU/'
bad "Relu suggests ReLU" "bad\.yaml:9:7: unknown layer 'Relu' \(did you mean 'ReLU'\?\)$" 's/    - ReLU/    - Relu/'
bad "kl_div is not suggested nll" "'kl_div' means torch\.nn\.KLDivLoss, a loss that nnseq does not have yet \(nnseq has: cross_entropy, nll, bce, .*\)$" \
    's/loss: cross_entropy/loss: kl_div/'
bad "Keras's binary_crossentropy" "unknown loss 'binary_crossentropy' \(Keras's binary_crossentropy is bce \(bce_with_logits for logits\)\)$" \
    's/loss: cross_entropy/loss: binary_crossentropy/'
bad "Keras's loss" "unknown loss 'sparse_categorical_crossentropy' \(Keras's sparse_categorical_crossentropy is cross_entropy\)$" \
    's/loss: cross_entropy/loss: sparse_categorical_crossentropy/'
bad "LBFGS" "'LBFGS' is a torch\.optim optimizer that nnseq does not have yet \(nnseq has: sgd, adam, adamw, adadelta, adagrad, rmsprop, adamax, nadam, radam\)$" \
    's/name: adam/name: LBFGS/'
bad "Keras's learning_rate" "unknown argument 'learning_rate' for optimizer adam \(Keras's learning_rate is torch's lr\)$" \
    's/lr: 0.01/learning_rate: 0.01/'
bad "epochs at the top level" "unknown key 'epochs' at the top level \(did you mean train\.epochs or scheduler\.epochs\?\)$" 's/^seed: 3/epochs: 3/'
bad "CyclicLR" "'CyclicLR' is a torch\.optim\.lr_scheduler scheduler that nnseq does not have yet" \
    's/^train: /scheduler: {name: CyclicLR, base_lr: 0.01, max_lr: 0.1}\ntrain: /'

# torch's class names train as nnseq's kinds.
sed 's/loss: cross_entropy/loss: CrossEntropyLoss/; s/^train: /scheduler: {name: StepLR, step_size: 1}\ntrain: /' \
    "$work/good.yaml" >"$work/alias.yaml"
check "torch's class names are aliases" "$NNSEQ" train "$work/alias.yaml" --out "$work/alias.ckpt" \
    >"$work/alias.out" 2>"$work/alias.err"
check "an alias trains like nnseq's name" sh -c "grep -q '^epoch' '$work/alias.out'"
check "no warning for aliases" sh -c "! grep -q 'warning' '$work/alias.err'"

# --- files that are not configs -------------------------------------------------
"$NNSEQ" train "$work/good.yaml" --out "$work/model.ckpt" >/dev/null 2>&1
check "a checkpoint to pass to train" test -s "$work/model.ckpt"
expect_error "a checkpoint given as the config" 2 \
    "^nnseq: .*model\.ckpt: this is an nnseq checkpoint, not a config: use nnseq train --resume .*model\.ckpt$" \
    "$NNSEQ" train "$work/model.ckpt"
check "the suggested command runs" "$NNSEQ" train --resume "$work/model.ckpt" --epochs 2 --out "$work/more.ckpt" \
    >/dev/null 2>&1
expect_error "gzip data given as the config" 2 "train-labels\.idx\.gz: not a YAML config: it looks like a gzip file$" \
    "$NNSEQ" train "$work/train-labels.idx.gz"
expect_error "IDX data given as the config" 2 "train-images\.idx: not a YAML config: it looks like an IDX data file$" \
    "$NNSEQ" train "$work/train-images.idx"
printf '\211PNG\r\n\032\n\0\0\0\rIHDR' >"$work/digit.png"
expect_error "a PNG given as the config" 2 "digit\.png: not a YAML config: it looks like a PNG image$" \
    "$NNSEQ" train "$work/digit.png"
expect_error "a PNG given to print" 2 "digit\.png: not a YAML config: it looks like a PNG image$" \
    "$NNSEQ" print "$work/digit.png"
"$NNSEQ" export "$work/model.ckpt" "$work/w.npz" >/dev/null 2>&1
expect_error "npz weights given as the config" 2 "w\.npz: not a YAML config: it looks like a zip archive \\(such as \\.npz weights\\)$" \
    "$NNSEQ" train "$work/w.npz"

# --- warnings: printed on stderr, training goes on --------------------------------
warns() { # warns NAME CONFIG PATTERN [OPTIONS...]: trains to the end (exit 0) with a warning matching PATTERN
    local name=$1 file=$2 pattern=$3; shift 3
    "$NNSEQ" train "$file" --out "$work/w.ckpt" "$@" >"$work/w.out" 2>"$work/w.err"
    local got=$?
    if [ "$got" -ne 0 ]; then fail "$name: exit $got ($(head -c 300 "$work/w.err"))"; return; fi
    if ! grep -qE -- "^nnseq: warning: $pattern" "$work/w.err"; then
        fail "$name: stderr lacks /$pattern/: $(head -c 300 "$work/w.err")"; return
    fi
    if ! grep -q '^epoch' "$work/w.out" || grep -q 'warning' "$work/w.out"; then
        fail "$name: stdout should have the epochs and no warning"; return
    fi
    ok
}
config "$work/softmax.yaml" "$linear"$'\n''    - Softmax' "loss: cross_entropy" "$adam"
warns "Softmax before cross_entropy" "$work/softmax.yaml" \
    ".*softmax\.yaml:11:7: the last layer is Softmax but loss cross_entropy applies its own softmax"
config "$work/nll.yaml" "$linear" "loss: nll" "$adam"
warns "nll without LogSoftmax" "$work/nll.yaml" \
    ".*nll\.yaml:10:7: loss nll expects log-probabilities but the last layer is Linear, not LogSoftmax"
config "$work/sgd.yaml" "$linear" "" "optimizer: {name: sgd, momentum: 0.9}"
warns "sgd without lr" "$work/sgd.yaml" \
    ".*sgd\.yaml:11:1: optimizer sgd without lr: torch\.optim\.SGD requires one; nnseq uses its default lr=0\.001"
check "--lr counts as giving lr" sh -c "'$NNSEQ' train '$work/sgd.yaml' --lr 0.1 --out '$work/w.ckpt' 2>&1 >/dev/null | { ! grep -q warning; }"
config "$work/clean.yaml" "$linear"$'\n''    - LogSoftmax' "loss: NLLLoss" "optimizer: {name: SGD, lr: 0.1}"
check "a clean config trains without warnings" sh -c "'$NNSEQ' train '$work/clean.yaml' --out '$work/w.ckpt' 2>&1 >/dev/null | { ! grep -q warning; }"

echo "messages: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
