#!/usr/bin/env bash
# End-to-end tests of tabular data, float targets and autoencoders on small
# data generated here: CSV (header, names, ranges, gzip, delimiters), .npy
# and .npz, IDX of every element type; binary, multi-label, regression and
# reconstruction tasks with their metrics in train, eval and predict; and
# the bad inputs of each reader, every one exit 2 with a message naming the
# file, the row and what was expected, before any training.
# Needs NNSEQ; python3 with numpy writes the .npy/.npz/typed IDX files.
set -u
NNSEQ=${NNSEQ:?set NNSEQ to the nnseq binary}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/shell_checks.sh"
PYTHON=${PYTHON:-/usr/bin/python3}
"$PYTHON" -c 'import numpy' 2>/dev/null || skip_all cli_tabular "$PYTHON cannot import numpy (make deps installs python3-numpy)"

# --- The data: separable tables, written by numpy -------------------------
"$PYTHON" - "$work" <<'EOF' || { echo "generating the data failed"; exit 1; }
import gzip, os, struct, sys
import numpy as np
w = sys.argv[1]
rng = np.random.default_rng(7)
n = 400
x = rng.normal(size=(n, 5)) * [1, 10, 100, 0.1, 1] + [0, 5, -50, 0, 3]
z = (x - x.mean(0)) / x.std(0)
binary = (z[:, 0] + z[:, 1] - z[:, 2] > 0).astype(int)
with open(f"{w}/binary.csv", "w") as f:
    f.write("# a comment line, skipped\n")
    f.write("f0,f1,f2,f3,f4,label\n")
    for row, y in zip(x, binary):
        f.write(",".join(repr(float(v)) for v in row) + f",{y}\n")
with gzip.open(f"{w}/binary_semicolon.csv.gz", "wt") as f:
    for row, y in zip(x, binary):
        f.write(";".join(repr(float(v)) for v in row) + f";{y}\n")
with open(f"{w}/features_only.csv", "w") as f:
    f.write("# a comment line, skipped\nf0,f1,f2,f3,f4\n")
    for row in x[:50]:
        f.write(",".join(repr(float(v)) for v in row) + "\n")
# Regression: y = 2 z0 - z1 + 0.5 z3, small noise; two targets, whitespace-delimited.
y = np.stack([2 * z[:, 0] - z[:, 1] + 0.5 * z[:, 3], z[:, 4] - z[:, 2]], 1) + rng.normal(size=(n, 2)) * 0.05
with open(f"{w}/regression.txt", "w") as f:
    for row, t in zip(x, y):
        f.write("  ".join(repr(float(v)) for v in row) + "\t" + " ".join(repr(float(v)) for v in t) + "\n")
# Multi-label: three labels from signs, as .npy float64 features and uint8 targets.
labels = np.stack([z[:, 0] > 0, z[:, 1] > 0, z[:, 0] + z[:, 1] > 0], 1).astype(np.uint8)
np.save(f"{w}/ml_x.npy", x)
np.save(f"{w}/ml_y.npy", labels)
np.savez(f"{w}/ml_x.npz", x.astype(np.float32))
# Classification on IDX of float32 features (rank 2) and int32 labels of 3 classes.
classes = (z[:, 0] > 0).astype(int) + (z[:, 1] > 0).astype(int)
def idx(path, array, code):
    big = array.astype(array.dtype.newbyteorder(">"))
    with open(path, "wb") as f:
        f.write(struct.pack(">HBB", 0, code, array.ndim))
        f.write(struct.pack(f">{array.ndim}I", *array.shape))
        f.write(big.tobytes())
idx(f"{w}/c_x.idx", z.astype(np.float32), 0x0D)
idx(f"{w}/c_x64.idx", z.astype(np.float64), 0x0E)
idx(f"{w}/c_x16.idx", np.round(z * 1000).astype(np.int16), 0x0B)
idx(f"{w}/c_y.idx", classes.astype(np.int32), 0x0C)
idx(f"{w}/c_y8.idx", classes.astype(np.int8), 0x09)
idx(f"{w}/c_y_big.idx", np.where(np.arange(n) == 17, 5, classes).astype(np.int32), 0x0C)
# Autoencoder: 6x6 byte images, two bright patterns.
img = np.zeros((n, 6, 6), np.uint8)
img[binary == 1, :3, :] = 200
img[binary == 0, 3:, :] = 200
img += rng.integers(0, 40, size=img.shape, dtype=np.uint8)
idx(f"{w}/ae.idx", img, 0x08)
# Bad files.
x_nan = x.copy(); x_nan[12, 3] = np.nan
np.save(f"{w}/nan_x.npy", x_nan)
np.save(f"{w}/wide_y.npy", np.zeros((n, 2), np.float32))
np.save(f"{w}/big_endian.npy", x.astype(">f8"))
bce_y = labels.astype(np.float32); bce_y[30, 1] = 2.0
np.save(f"{w}/bce_bad_y.npy", bce_y)
EOF

cfg() { # cfg NAME LINES...: a config in $work
    local name=$1; shift
    printf '%s\n' "seed: 2" "$@" "checkpoint: {path: runs/$name.ckpt}" >"$work/$name.yaml"
}
json_field() { # json_field KEY < json lines: the value of KEY in the last line
    "$PYTHON" -c 'import json, sys; v = json.loads(sys.stdin.read().splitlines()[-1]).get(sys.argv[1]); print("null" if v is None else v)' "$1"
}
above() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }

# --- Binary classification on a CSV: header, names, ranges, normalize: auto
cfg binary "data:" "  format: csv" "  train: {file: binary.csv}" \
    "  csv: {skip_rows: 1, header: true, features: \"f0:f4\", target: label}" \
    "  test_split: 0.25" "  val_split: 0.1" "  shuffle_split: true" "  normalize: auto" \
    "model:" "  layers:" "    - Linear: {out_features: 8}" "    - ReLU" "    - Linear: {out_features: 1}" \
    "loss: bce_with_logits" "optimizer: {name: adam, lr: 0.01}" "train: {epochs: 15, batch_size: 16}"
"$NNSEQ" train "$work/binary.yaml" --format json >"$work/binary.out" 2>"$work/binary.err"
check "binary csv: trains" test $? -eq 0
for key in test_loss test_accuracy test_precision test_recall test_f1 test_roc_auc; do
    check "binary csv: $key reported" sh -c "grep -q '\"$key\"' '$work/binary.out'"
done
check "binary csv: epoch lines carry train_roc_auc and val_f1" sh -c "head -1 '$work/binary.out' | grep -q train_roc_auc && head -1 '$work/binary.out' | grep -q val_f1"
acc=$(json_field test_accuracy <"$work/binary.out")
auc=$(json_field test_roc_auc <"$work/binary.out")
check "binary csv: accuracy > 0.9 (got $acc)" above "$acc" 0.9
check "binary csv: roc_auc > 0.95 (got $auc)" above "$auc" 0.95
check "binary csv: 100 test rows (test_split 0.25 of 400)" test "$(json_field test_samples <"$work/binary.out")" = 100
"$NNSEQ" eval "$work/runs/binary.ckpt" --format json >"$work/binary_eval.json"
check "binary csv: eval gives train's test accuracy" test "$(json_field accuracy <"$work/binary_eval.json")" = "$acc"
check "binary csv: eval names the task" grep -q '"task": "binary"' "$work/binary_eval.json"
"$NNSEQ" eval "$work/runs/binary.ckpt" >"$work/binary_eval.txt"
check "binary csv: eval text lists roc_auc" grep -q '^roc_auc ' "$work/binary_eval.txt"
# predict: a features-only CSV (no label column) from stdin; normalisation from the checkpoint.
"$NNSEQ" predict "$work/runs/binary.ckpt" - <"$work/features_only.csv" >"$work/binary_predict.out" 2>"$work/binary_predict.err"
check "binary csv: predict from stdin ($(head -c 200 "$work/binary_predict.err"))" test $? -eq 0
check "binary csv: predict writes one line per row" test "$(wc -l <"$work/binary_predict.out")" -eq 50
check "binary csv: predict lines are index, class, probability" awk -F'\t' 'NF != 3 || ($2 != 0 && $2 != 1) || $3 < 0 || $3 > 1 { exit 1 }' "$work/binary_predict.out"
check "binary csv: a class is probability > 0.5" awk -F'\t' '($2 == 1) != ($3 > 0.5) { exit 1 }' "$work/binary_predict.out"
"$NNSEQ" predict "$work/runs/binary.ckpt" "$work/features_only.csv" --logits >"$work/logits.out"
check "binary csv: --logits gives the raw output" awk -F'\t' 'NF != 2 { exit 1 } $2 < 0 || $2 > 1 { raw = 1 } END { exit !raw }' "$work/logits.out"
"$NNSEQ" predict "$work/runs/binary.ckpt" "$work/features_only.csv" --output "$work/p.npy" 2>/dev/null
check "binary csv: --output writes a 50 x 1 .npy of the same probabilities" "$PYTHON" -c "
import numpy as np, sys
a = np.load('$work/p.npy'); t = np.loadtxt('$work/binary_predict.out')
assert a.shape == (50, 1) and a.dtype == np.float32, a.shape
assert abs(a[:, 0] - t[:, 2]).max() < 1e-6
"
# Resume: 15 epochs straight equal 7 and then 8 more from the checkpoint
# (the split, the normalize: auto statistics and the shuffle all recomputed
# or restored the same), weights bit for bit.
"$NNSEQ" train "$work/binary.yaml" --epochs 7 --out "$work/half.ckpt" --format json >/dev/null 2>&1
"$NNSEQ" train "$work/binary.yaml" --resume "$work/half.ckpt" --out "$work/resumed.ckpt" --format json >"$work/resumed.out" 2>/dev/null
"$NNSEQ" export "$work/runs/binary.ckpt" "$work/straight.npz" 2>/dev/null
"$NNSEQ" export "$work/resumed.ckpt" "$work/resumed.npz" 2>/dev/null
check "binary csv: a resumed run ends with the straight run's weights" "$PYTHON" -c "
import numpy as np
a, b = np.load('$work/straight.npz'), np.load('$work/resumed.npz')
assert sorted(a.files) == sorted(b.files) and all((a[k] == b[k]).all() for k in a.files)"
check "binary csv: and with its test accuracy" test "$(json_field test_accuracy <"$work/resumed.out")" = "$acc"
# The same table gzip'd, ';'-delimited, no header, by index.
cfg binary_gz "data:" "  format: csv" "  train: {file: binary_semicolon.csv.gz}" \
    "  csv: {delimiter: \";\", features: \"0:4\", target: -1}" "  test_split: 0.25" "  val_split: 0.1" "  shuffle_split: true" \
    "  normalize: auto" "model:" "  layers:" "    - Linear: {out_features: 8}" "    - ReLU" \
    "    - Linear: {out_features: 1}" "loss: bce_with_logits" "optimizer: {name: adam, lr: 0.01}" \
    "train: {epochs: 15, batch_size: 16}"
"$NNSEQ" train "$work/binary_gz.yaml" --format json >"$work/binary_gz.out" 2>/dev/null
check "gzip ';' csv by index trains the same model as the csv by name" \
    test "$(json_field test_accuracy <"$work/binary_gz.out")" = "$acc"

# --- Regression: whitespace-delimited, two targets, mse ----------------------
cfg regression "data:" "  format: csv" "  train: {file: regression.txt}" \
    "  csv: {delimiter: whitespace, features: \"0:4\", target: \"5:6\"}" "  test_split: 0.2" "  normalize: auto" \
    "model:" "  layers:" "    - Linear: {out_features: 16}" "    - Tanh" "    - Linear: {out_features: 2}" \
    "loss: mse" "optimizer: {name: adam, lr: 0.01}" "train: {epochs: 30, batch_size: 16}"
"$NNSEQ" train "$work/regression.yaml" --format json >"$work/regression.out" 2>"$work/regression.err"
check "regression: trains ($(head -c 200 "$work/regression.err"))" test $? -eq 0
r2=$(json_field test_r2 <"$work/regression.out")
check "regression: r2 > 0.9 (got $r2)" above "$r2" 0.9
for key in test_mse test_rmse test_mae; do check "regression: $key reported" grep -q "\"$key\"" "$work/regression.out"; done
mse=$(json_field test_mse <"$work/regression.out") rmse=$(json_field test_rmse <"$work/regression.out")
check "regression: rmse is sqrt(mse)" awk -v a="$mse" -v b="$rmse" 'BEGIN { d = b * b - a; exit !(d < 1e-5 && d > -1e-5) }'
check "regression: mse loss equals the mse metric" test "$(json_field test_loss <"$work/regression.out")" = "$mse"
"$NNSEQ" predict "$work/runs/regression.ckpt" "$work/regression.txt" --format tsv >"$work/reg_predict.tsv"
check "regression: predict writes two values a row" awk -F'\t' 'NR == 1 { ok = $0 == "index\tvalue0\tvalue1"; next } NF != 3 { exit 1 } END { exit !ok || NR != 401 }' "$work/reg_predict.tsv"
for loss in l1 "{name: smooth_l1, beta: 0.5}" "{name: huber, delta: 2}"; do
    sed "s/^loss: mse/loss: $loss/" "$work/regression.yaml" >"$work/reg_other.yaml"
    "$NNSEQ" train "$work/reg_other.yaml" --format json --no-checkpoint >"$work/reg_other.out" 2>/dev/null
    check "regression with $loss: r2 > 0.8" above "$(json_field test_r2 <"$work/reg_other.out")" 0.8
done

# --- Multi-label from .npy, and .npz features ----------------------------------
cfg multilabel "data:" "  format: npy" "  train: {features: ml_x.npy, targets: ml_y.npy}" "  test_split: 0.25" \
    "  normalize: auto" "model:" "  layers:" "    - Linear: {out_features: 16}" "    - ReLU" \
    "    - Linear: {out_features: 3}" "loss: {name: bce_with_logits, pos_weight: [1, 1, 2]}" \
    "optimizer: {name: adam, lr: 0.01}" "train: {epochs: 20, batch_size: 16}"
"$NNSEQ" train "$work/multilabel.yaml" --format json >"$work/ml.out" 2>"$work/ml.err"
check "multi-label npy: trains ($(head -c 200 "$work/ml.err"))" test $? -eq 0
for key in test_accuracy test_label_accuracy test_micro_f1 test_macro_f1; do
    check "multi-label npy: $key reported" grep -q "\"$key\"" "$work/ml.out"
done
check "multi-label npy: label accuracy > 0.9" above "$(json_field test_label_accuracy <"$work/ml.out")" 0.9
"$NNSEQ" predict "$work/runs/multilabel.ckpt" "$work/ml_x.npz" --format json >"$work/ml_predict.out" 2>"$work/ml_predict.err"
check "multi-label: predict reads an .npz of one array ($(head -c 200 "$work/ml_predict.err"))" test "$(wc -l <"$work/ml_predict.out")" -eq 400
check "multi-label: predict gives three probabilities" sh -c "head -1 '$work/ml_predict.out' | grep -qE '\"probabilities\": \[[^,]+, [^,]+, [^,]+\]'"
"$NNSEQ" predict "$work/runs/multilabel.ckpt" - <"$work/ml_x.npy" >"$work/ml_stdin.out" 2>/dev/null
check "multi-label: predict reads an .npy from stdin" test "$(wc -l <"$work/ml_stdin.out")" -eq 400

# --- IDX of other element types ---------------------------------------------
cfg idx_float "data:" "  train: {images: c_x.idx, labels: c_y.idx}" "  val_split: 0.2" "model:" "  layers:" \
    "    - Linear: {out_features: 16}" "    - ReLU" "    - Linear: {out_features: 3}" \
    "loss: {name: cross_entropy, label_smoothing: 0.05, weight: [1, 0.5, 1]}" "optimizer: {name: adam, lr: 0.01}" \
    "train: {epochs: 10, batch_size: 16}"
"$NNSEQ" train "$work/idx_float.yaml" --format json >"$work/idx_float.out" 2>"$work/idx_float.err"
check "float32 IDX features, int32 IDX labels: trains ($(head -c 200 "$work/idx_float.err"))" test $? -eq 0
check "float32 IDX: val accuracy > 0.85" above "$(json_field val_accuracy <"$work/idx_float.out")" 0.85
sed -e 's/c_x.idx/c_x64.idx/' -e 's/c_y.idx/c_y8.idx/' "$work/idx_float.yaml" >"$work/idx_f64.yaml"
"$NNSEQ" train "$work/idx_f64.yaml" --format json --no-checkpoint >"$work/idx_f64.out" 2>/dev/null
check "float64 IDX features and int8 labels give float32's numbers" \
    test "$(json_field val_loss <"$work/idx_f64.out")" = "$(json_field val_loss <"$work/idx_float.out")"
sed -e 's/c_x.idx/c_x16.idx/' "$work/idx_float.yaml" >"$work/idx_i16.yaml"
check "int16 IDX features train" sh -c "'$NNSEQ' train '$work/idx_i16.yaml' --no-checkpoint >/dev/null 2>&1"
"$NNSEQ" predict "$work/runs/idx_float.ckpt" "$work/c_x.idx" | cut -f2 | sort | uniq -c >"$work/idx_predict.out"
check "float32 IDX: predict gives three classes" test "$(wc -l <"$work/idx_predict.out")" -eq 3

# --- An autoencoder: target: input -----------------------------------------------
cfg ae "data:" "  train: {images: ae.idx}" "  target: input" "  test_split: 0.25" "model:" "  layers:" "    - Flatten" \
    "    - Linear: {out_features: 4}" "    - ReLU" "    - Linear: {out_features: 36}" "    - Sigmoid" "loss: bce" \
    "optimizer: {name: adam, lr: 0.01}" "train: {epochs: 20, batch_size: 16}"
"$NNSEQ" train "$work/ae.yaml" --format json >"$work/ae.out" 2>"$work/ae.err"
check "autoencoder: trains without labels ($(head -c 200 "$work/ae.err"))" test $? -eq 0
check "autoencoder: reconstruction r2 > 0.5" above "$(json_field test_r2 <"$work/ae.out")" 0.5
check "autoencoder: mse < 0.02" above 0.02 "$(json_field test_mse <"$work/ae.out")"
"$NNSEQ" predict "$work/runs/ae.ckpt" "$work/ae.idx" --output "$work/ae_out.npy" 2>/dev/null
check "autoencoder: predict --output gives 400 x 36 reconstructions in [0, 1]" "$PYTHON" -c "
import numpy as np
a = np.load('$work/ae_out.npy'); assert a.shape == (400, 36) and a.min() >= 0 and a.max() <= 1, a.shape"
sed 's/^loss: bce/loss: mse/' "$work/ae.yaml" >"$work/ae_mse.yaml"
check "autoencoder with mse trains" sh -c "'$NNSEQ' train '$work/ae_mse.yaml' --no-checkpoint >/dev/null 2>&1"

# --- Bad inputs: exit 2, a message naming the file, row and column -----------
printf 'a,b,y\n1,2,0\n3,x7,1\n' >"$work/text_cell.csv"
printf 'a,b,y\n1,2,0\n3,,1\n' >"$work/empty_cell.csv"
printf 'a,b,y\n1,2,0\n3,4\n' >"$work/ragged.csv"
printf 'a,b,y\n1,2,0\n3,nan,1\n' >"$work/nan_cell.csv"
printf 'a,b,y\n1,2,0\n3,4,2\n' >"$work/label2.csv"
printf 'a,b,y\n1,2,0\n3,4,0.5\n' >"$work/half_label.csv"
bad_csv() { # bad_csv NAME FILE LOSS OUTPUTS [COLUMNS]
    cfg "$1" "data:" "  format: csv" "  train: {file: $2}" "  csv: {header: true, features: ${5:-\"a:b\"}, target: y}" \
        "model:" "  layers:" "    - Linear: {out_features: $4}" "loss: $3" "train: {epochs: 1, batch_size: 2}"
}
bad_csv text text_cell.csv bce_with_logits 1
expect_error "csv: a text cell" 2 "text_cell.csv:3: column 2 \('b'\): expected a number, got 'x7'" "$NNSEQ" train "$work/text.yaml"
bad_csv empty empty_cell.csv bce_with_logits 1
expect_error "csv: an empty cell" 2 "empty_cell.csv:3: column 2 \('b'\).*empty" "$NNSEQ" train "$work/empty.yaml"
bad_csv ragged ragged.csv bce_with_logits 1
expect_error "csv: a ragged row" 2 "ragged.csv:3: .*2 .*3|ragged.csv:3: .*3 .*2" "$NNSEQ" train "$work/ragged.yaml"
bad_csv nan nan_cell.csv bce_with_logits 1
expect_error "csv: a NaN cell" 2 "nan_cell.csv:3: column 2 \('b'\).*NaN" "$NNSEQ" train "$work/nan.yaml"
bad_csv missing text_cell.csv bce_with_logits 1 '"a:c"'
expect_error "csv: a column name that is not there" 2 "'c'" "$NNSEQ" train "$work/missing.yaml"
bad_csv label2 label2.csv cross_entropy 2
expect_error "csv: a label beyond the outputs" 2 "label2.csv:3: train label 2 is beyond the model's 2 outputs" "$NNSEQ" train "$work/label2.yaml"
bad_csv half half_label.csv cross_entropy 2
expect_error "csv: a fractional class index" 2 "half_label.csv:3: train target 0.5 is not a class index" "$NNSEQ" train "$work/half.yaml"
bad_csv bce_range label2.csv bce 1
expect_error "csv: a bce target outside [0, 1]" 2 "label2.csv:3: train target is 2, outside \[0, 1\], which loss bce takes" "$NNSEQ" train "$work/bce_range.yaml"
cfg npy_nan "data:" "  format: npy" "  train: {features: nan_x.npy, targets: ml_y.npy}" "model:" "  layers:" \
    "    - Linear: {out_features: 3}" "loss: bce_with_logits"
expect_error "npy: a NaN in the features" 2 "nan_x.npy: item 12: value 4 of the sample is NaN" "$NNSEQ" train "$work/npy_nan.yaml"
cfg npy_wide "data:" "  format: npy" "  train: {features: ml_x.npy, targets: wide_y.npy}" "model:" "  layers:" \
    "    - Linear: {out_features: 3}" "loss: mse"
expect_error "npy: a target width that does not match the outputs" 2 "wide_y.npy: 2 targets per sample, but the model has 3 outputs" "$NNSEQ" train "$work/npy_wide.yaml"
cfg npy_bce "data:" "  format: npy" "  train: {features: ml_x.npy, targets: bce_bad_y.npy}" "model:" "  layers:" \
    "    - Linear: {out_features: 3}" "loss: bce_with_logits"
expect_error "npy: a bce target of 2" 2 "bce_bad_y.npy: item 30: train target 2 of 3 is 2, outside \[0, 1\], which loss bce_with_logits takes" "$NNSEQ" train "$work/npy_bce.yaml"
cfg npy_be "data:" "  format: npy" "  train: {features: big_endian.npy, targets: ml_y.npy}" "model:" "  layers:" \
    "    - Linear: {out_features: 3}" "loss: bce_with_logits"
expect_error "npy: big-endian" 2 "big_endian.npy.*big-endian" "$NNSEQ" train "$work/npy_be.yaml"
cfg idx_big "data:" "  train: {images: c_x.idx, labels: c_y_big.idx}" "model:" "  layers:" "    - Linear: {out_features: 3}"
expect_error "idx: a label beyond the outputs names the row and value" 2 "c_y_big.idx: item 17: train label 5 is beyond the model's 3 outputs" "$NNSEQ" train "$work/idx_big.yaml"
cfg idx_shape "data:" "  train: {images: c_x.idx, labels: c_y.idx}" "model:" "  input_shape: [4]" "  layers:" "    - Linear: {out_features: 3}"
expect_error "a feature count that does not match input_shape" 2 "model.input_shape is \(4,\) \(4 values\) but the samples in .*c_x.idx are \(5,\) \(5 values\)" "$NNSEQ" train "$work/idx_shape.yaml"
cfg ce_one "data:" "  train: {images: c_x.idx, labels: c_y.idx}" "model:" "  layers:" "    - Linear: {out_features: 1}"
expect_error "cross_entropy on one output points to bce_with_logits" 2 "bce_with_logits" "$NNSEQ" train "$work/ce_one.yaml"
cfg weights_count "data:" "  train: {images: c_x.idx, labels: c_y.idx}" "model:" "  layers:" "    - Linear: {out_features: 3}" \
    "loss: {name: cross_entropy, weight: [1, 2]}"
expect_error "a class weight list of the wrong length" 2 "weights_count.yaml:[0-9]+:[0-9]+: loss cross_entropy: .*weight" "$NNSEQ" train "$work/weights_count.yaml"
expect_error "predict: samples of the wrong width" 2 "c_x.idx: samples are \(5,\) \(5 values\) but the model takes \(6, 6\)|c_x.idx: samples are .* but the model takes" "$NNSEQ" predict "$work/runs/ae.ckpt" "$work/c_x.idx"
printf '# comment\nf0,f1,f2,f3,f4\n1,2,3,4,5\n1,2,3,4,nan\n' >"$work/predict_nan.csv"
expect_error "predict: a NaN in a CSV row" 2 "predict_nan.csv:4: column 5 \\('f4'\\).*NaN" "$NNSEQ" predict "$work/runs/binary.ckpt" "$work/predict_nan.csv" --input-format csv
check "nothing half-written after the refusals" sh -c "! ls '$work/runs/' | grep -qE 'text|empty|ragged|nan|missing|label2|half|bce_range|npy_|idx_big|idx_shape|ce_one|weights'"

finish cli_tabular
