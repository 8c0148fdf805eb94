#!/bin/sh
# Writes the seed corpus of tests/fuzz/corpus/ (committed; run again only to
# change it): small valid files of each format, each a few hundred bytes to
# a few KB, from nnseq's own writer (checkpoints, trained for an epoch on a
# few generated samples) and numpy's (.npz). Every IDX and checkpoint seed
# starts with the harness's control byte (see fuzz_idx.c and
# fuzz_checkpoint.c). Needs NNSEQ (default ./nnseq, built by `make`) and
# python3 with numpy (PYTHON, default python3).
#   sh tests/fuzz/make_corpus.sh
set -eu
cd "$(dirname "$0")/../.."
root=$(pwd)
NNSEQ=${NNSEQ:-$root/nnseq}
PYTHON=${PYTHON:-python3}
corpus=$root/tests/fuzz/corpus
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Files written here are replaced; others (regression-* inputs added by
# hand) are left alone.
mkdir -p "$corpus/config" "$corpus/idx" "$corpus/checkpoint" "$corpus/npz"

# --- configs: every section, flow and block styles, each data format -------
cat >"$corpus/config/mlp.yaml" <<'EOF'
name: mlp
seed: 7
data:
  train: {images: train-images.idx.gz, labels: train-labels.idx.gz}
  test: {images: test-images.idx, labels: test-labels.idx}
  val_split: 0.1
  normalize: {mean: 0.2860, std: 0.3530}
model:
  input_shape: [1, 28, 28]
  layers:
    - Flatten
    - Linear: {in_features: 784, out_features: 16}
    - ReLU
    - Dropout: {p: 0.2}
    - Linear: {out_features: 10}
loss: cross_entropy
optimizer: {name: adam, lr: 0.001, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0}
scheduler: {name: cosine, T_max: 10, eta_min: 0}
train: {epochs: 2, batch_size: 32, shuffle: true, log: runs/mlp.csv}
checkpoint: {path: runs/mlp.ckpt}
EOF
cat >"$corpus/config/cnn.yaml" <<'EOF'
data:
  train:
    images: a.idx
    labels: b.idx
  normalize:
    mean: [0.5]
    std: [0.25]
model:
  input_shape: [1, 8, 8]
  layers:
    - Conv2d: {out_channels: 4, kernel_size: 3, padding: 1, stride: [1, 1]}
    - BatchNorm2d: {eps: 1e-5, momentum: 0.1}
    - LeakyReLU: {negative_slope: 0.1}
    - MaxPool2d: {kernel_size: 2}
    - Conv2d:
        out_channels: 2
        kernel_size: [3, 3]
        bias: false
    - AvgPool2d: {kernel_size: 3, stride: 1, padding: 1}
    - Flatten: {start_dim: 1, end_dim: -1}
    - Linear: {out_features: 3}
    - LogSoftmax: {dim: 1}
loss: {name: nll, weight: [1, 2, 0.5], ignore_index: -100}
optimizer:
  name: sgd
  lr: 0.1
  momentum: 0.9
  nesterov: true
scheduler: {name: multistep, milestones: [2, 4], gamma: 0.5}
train:
  epochs: 5
  early_stop: {patience: 2, min_delta: 0.001}
EOF
cat >"$corpus/config/csv.yaml" <<'EOF'
# sklearn's breast cancer table
data:
  format: csv
  train: {file: ../data/sklearn/breast_cancer.csv}
  csv: {skip_rows: 1, header: false, delimiter: ";", features: "0:29", target: 30}
  shuffle_split: true
  test_split: 0.2
  val_split: 0.1
  normalize: auto
model:
  layers:
    - Linear: {out_features: 8}
    - Tanh
    - BatchNorm1d
    - Linear: {out_features: 1}
    - Sigmoid
loss: {name: bce, weight: [1.0]}
optimizer: {name: adamw, lr: 0.01, weight_decay: 0.01}
scheduler: {name: step, step_size: 3, gamma: 0.1}
EOF
cat >"$corpus/config/autoencoder.yaml" <<'EOF'
data:
  format: npy
  train: {features: x.npy}
  target: input
model:
  input_shape: [6]
  layers:
    - Linear: {out_features: 2}
    - GELU
    - Linear:
        out_features: 6
    - Sigmoid
loss: {name: smooth_l1, beta: 0.5}
init: w.npz
EOF
cat >"$corpus/config/regression.yaml" <<'EOF'
name: "a name with: a colon"
data:
  format: csv
  train: {features: f.csv, targets: t.csv}
  csv: {delimiter: whitespace, header: true, features: [a, "b:c", -1], target: [y]}
model:
  input_shape: [3]
  layers: [Linear: {out_features: 2}, ReLU, {Linear: {out_features: 2, bias: false}}, Softmax]
loss: {name: bce_with_logits, pos_weight: 2}
optimizer: {lr: .5}
train: {batch_size: 1, shuffle: false}
EOF
printf 'model:\n  layers:\n    - Linear: {out_features: 1}\nloss: huber\n' >"$corpus/config/minimal.yaml"

# --- IDX: every element type, ranks 1 to 5; control byte 0 raw, 1 gzip-wrapped
"$PYTHON" - "$corpus/idx" <<'EOF'
import gzip, struct, sys
import numpy as np
out = sys.argv[1]
def idx(code, dtype, shape, values):
    return bytes([0, 0, code, len(shape)]) + struct.pack(">%dI" % len(shape), *shape) + \
        np.asarray(values, dtype=dtype).astype(dtype.newbyteorder(">")).tobytes()
def write(name, control, data):
    open("%s/%s" % (out, name), "wb").write(bytes([control]) + data)
rng = np.random.default_rng(1)
u8 = idx(0x08, np.dtype("u1"), (3, 4, 4), rng.integers(0, 256, 48))
write("u8_images", 0, u8)
write("u8_images_gz", 1 | 2 << 3, u8)
write("u8_images_gzfile", 0, gzip.compress(u8, mtime=0))
write("u8_labels", 0, idx(0x08, np.dtype("u1"), (5,), [0, 1, 2, 3, 9]))
write("i8", 1, idx(0x09, np.dtype("i1"), (2, 3), [-128, -1, 0, 1, 2, 127]))
write("i16", 0, idx(0x0B, np.dtype(">i2"), (2, 2), [-32768, -1, 1, 32767]))
write("i32", 1, idx(0x0C, np.dtype(">i4"), (4,), [-2**31, -1, 0, 2**31 - 1]))
write("f32", 0 | 1 << 3, idx(0x0D, np.dtype(">f4"), (2, 1, 2, 2), [0.5, -1e30, np.inf, np.nan, 1, 2, 3, 4]))
write("f64_rank5", 1, idx(0x0E, np.dtype(">f8"), (2, 1, 2, 1, 2), [1e300, -1e-300, 0, 1, 2, 3, 4, 5]))
EOF

# --- npz: np.savez (stored) and np.savez_compressed (deflated), many dtypes
"$PYTHON" - "$corpus/npz" <<'EOF'
import sys
import numpy as np
out = sys.argv[1]
rng = np.random.default_rng(2)
np.savez(out + "/weights.npz", **{"0.weight": rng.standard_normal((3, 4)).astype("f4"),
                                  "0.bias": np.zeros(3, "f4")})
np.savez_compressed(out + "/weights_compressed.npz",
                    **{"0.weight": rng.standard_normal((2, 1, 3, 3)).astype("f4"),
                       "1.running_mean": np.ones(2, "f4"), "1.num_batches_tracked": np.array(5, "i8")})
np.savez(out + "/dtypes.npz", f8=np.arange(3, dtype="f8"), u1=np.arange(4, dtype="u1"), i1=np.array([-1], "i1"),
         i2=np.array([[1, -2]], "i2"), u2=np.array([7], "u2"), i4=np.array([1, 2], "i4"), u4=np.array([3], "u4"),
         u8=np.array([1], "u8"), b1=np.array([True, False]))
np.savez_compressed(out + "/one.npz", x=rng.integers(0, 255, (2, 3, 2, 2, 2)).astype("u1"))
np.savez(out + "/empty_and_scalar.npz", e=np.zeros((0, 3), "f4"), s=np.float32(2.5))
EOF

# --- checkpoints: trained an epoch on a few generated samples -------------
"$PYTHON" - "$work" <<'EOF'
import struct, sys
import numpy as np
out = sys.argv[1]
rng = np.random.default_rng(3)
def idx(path, array):
    array = np.asarray(array, dtype="u1")
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, array.ndim]) + struct.pack(">%dI" % array.ndim, *array.shape) + array.tobytes())
idx(out + "/images.idx", rng.integers(0, 256, (8, 4, 4)))
idx(out + "/labels.idx", np.arange(8) % 3)
with open(out + "/rows.csv", "w") as f:
    for i in range(8):
        f.write("%g,%g,%d\n" % (rng.standard_normal(), rng.standard_normal(), i % 2))
EOF
cat >"$work/mlp.yaml" <<'EOF'
data:
  train: {images: images.idx, labels: labels.idx}
  val_split: 0.25
model:
  layers:
    - Flatten
    - Linear: {out_features: 3}
optimizer: {name: adam, lr: 0.01}
scheduler: {name: step, step_size: 1}
train: {batch_size: 4}
EOF
cat >"$work/cnn.yaml" <<'EOF'
data:
  train: {images: images.idx, labels: labels.idx}
  normalize: auto
model:
  input_shape: [1, 4, 4]
  layers:
    - Conv2d: {out_channels: 2, kernel_size: 2}
    - BatchNorm2d
    - ReLU
    - MaxPool2d: {kernel_size: 3}
    - Flatten
    - Linear: {out_features: 3}
    - LogSoftmax
loss: nll
optimizer: {name: sgd, lr: 0.1, momentum: 0.9}
train: {batch_size: 8}
EOF
cat >"$work/csv.yaml" <<'EOF'
data:
  format: csv
  train: {file: rows.csv}
  csv: {target: 2}
  test_split: 0.25
  val_split: 0.34
model:
  layers:
    - Linear: {out_features: 1}
loss: bce_with_logits
optimizer: {name: adamw}
train: {batch_size: 2, early_stop: {patience: 1}}
EOF
for config in mlp cnn csv; do
    "$NNSEQ" train "$work/$config.yaml" --out "$work/$config.ckpt" >/dev/null 2>&1 </dev/null ||
        { echo "make_corpus.sh: nnseq train $config.yaml failed" >&2; exit 1; }
done
# Control byte 0: the file; 1: its inflated payload; 2: the file with the
# sizes and CRCs fixed up. Then two that fuzz_checkpoint found (fixed in
# a246790), as regression seeds: a stored config whose layer is invalid
# (the error named the stored config's path, not the checkpoint's) and one
# whose layer claims 960M weights for the 51 the file holds (eval built it:
# 4 GB).
"$PYTHON" - "$work" "$corpus/checkpoint" <<'EOF'
import struct, sys, zlib
work, out = sys.argv[1:]
for name in ("mlp", "cnn", "csv"):
    data = open("%s/%s.ckpt" % (work, name), "rb").read()
    open("%s/%s" % (out, name), "wb").write(b"\0" + data)
    open("%s/%s_payload" % (out, name), "wb").write(b"\1" + zlib.decompress(data[40:]))
open("%s/mlp_fixed" % out, "wb").write(b"\6" + open(work + "/mlp.ckpt", "rb").read())

def with_config(payload, old, new):
    count, at, records = struct.unpack_from("<I", payload)[0], 4, []
    for _ in range(count):
        start, length = at, struct.unpack_from("<H", payload, at)[0]
        name = payload[at + 2:at + 2 + length]
        dtype, rank = payload[at + 2 + length], payload[at + 3 + length]
        dims = struct.unpack_from("<%dQ" % rank, payload, at + 4 + length)
        at += 4 + length + 8 * rank
        size = {0: 4, 1: 8, 2: 1}[dtype]
        for dim in dims:
            size *= dim
        if name == b"config.yaml":
            text = payload[at:at + size].replace(old, new)
            records.append(payload[start:start + 4 + length] + struct.pack("<Q", len(text)) + text)
        else:
            records.append(payload[start:at + size])
        at += size
    return struct.pack("<I", count) + b"".join(records)
mlp = zlib.decompress(open(work + "/mlp.ckpt", "rb").read()[40:])
for name, features in (("mlp_payload_zero_features", b"0"), ("mlp_payload_huge_layer", b"60000000")):
    open("%s/%s" % (out, name), "wb").write(b"\1" + with_config(mlp, b"out_features: 3}", b"out_features: %s}" % features))
EOF
ls -l "$corpus"/*
