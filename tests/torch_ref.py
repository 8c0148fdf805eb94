#!/usr/bin/python3
"""nnseq's PyTorch reference: the model of an nnseq config, trained by torch.

Reads the config `nnseq train` reads (docs/config.md), builds the same
nn.Sequential and trains and evaluates it the way nnseq does, printing JSON
lines with nnseq's `--format json` field names, the metrics of the task
(loss first; NaN is printed as null):

    {"epoch": 1, "epochs": 1, "lr": 0.001, "train_loss": 0.46, "train_accuracy": 0.83, "val_loss": ...,
     "seconds": 3.1, "samples_per_s": 19354}
    {"final": true, "test_loss": 0.42, "test_accuracy": 0.85, "test_samples": 10000, ...}

    /usr/bin/python3 tests/torch_ref.py CONFIG [--print] [--epochs N] [--seed N]
        [--threads T] [--init NPZ] [--save NPZ] [--train-limit N] [--nnseq-order]
        [--dump-split train|val|test [--dump-to FILE]] [--bench-eval]

Needs Debian's python3-torch, python3-numpy and python3-yaml. As in nnseq:
relative paths resolve against the config's folder; the data is IDX (any
element type), CSV or npy/npz; byte inputs are byte / 255, other inputs the
values as stored, then (x - mean) / std (normalize: {mean, std} or auto:
the train split's statistics), in float32; with shuffle_split the training
file is permuted by nnseq's xoshiro256** stream (seed ^ 0x5851f42d4c957f2d);
the last floor(test_split * N) samples of it are the test split, the last
floor(val_split * rest) of the rest validate (never trained on); the
schedule (scheduler: nnseq's name or torch's class name) steps as in torch's
usual loop: OneCycleLR and CosineAnnealingWarmRestarts (with
step(epoch + (i + 1) / steps_per_epoch) after step i, so that step i + 1
trains at its own position, as nnseq does) after every optimiser step,
ReduceLROnPlateau after each epoch with the validation loss (the training
loss without validation), the others after each epoch; an epoch line's lr is
the one its first step used; optimizer.no_decay: [bias, norm] keeps weight
decay off biases and normalisation layers' parameters (a second param
group); a split's loss is sum(numerators) / sum(denominators) of torch's
reduction='mean', and an epoch's training loss sum(batch loss * batch
denominator) / sum(denominators).

Tasks and metrics (from the loss, the outputs and data.target):
classification (cross_entropy, nll): accuracy; binary (bce, bce_with_logits,
one output): accuracy, precision, recall, f1, roc_auc; multi-label (those
with several outputs): accuracy (subset), label_accuracy, micro_f1, macro_f1;
regression (mse, l1, smooth_l1, huber, or any loss with target: input): mse,
rmse, mae, r2. Epoch lines have train_<metric> and val_<metric>, the final
line test_<metric> and test_samples.

What cannot match nnseq bit for bit: the initial weights (torch's, from
torch.manual_seed(seed), unless --init), the shuffling order (torch.randperm
from torch.Generator().manual_seed(seed), unless --nnseq-order, which draws
nnseq's order: xoshiro256** from seed ^ 0x9e3779b97f4a7c15, a Fisher-Yates
from the end each epoch) and Dropout's masks (torch's generators).

--train-limit N trains on the first N samples of the train split only (the
normalize: auto statistics are still those of the whole train split; val
and test are unchanged). --print takes the input shape from
model.input_shape, else the training data, else a first Linear's
in_features, else (1, 28, 28).
--dump-split NAME writes split NAME (train, val or test; after --train-limit)
as the model sees it, and stops: to --dump-to FILE.npz an .npz with
`inputs` (float32, N x input shape, normalised), `targets` (int64 class
indices (N,) or float32 rows (N, outputs), as bound to the loss), `rows`
(int64: each sample's row in its file, after shuffle_split's permutation
that is order[k]) and `mean`, `std` (float32 per input value; 0 and 1
without normalize); otherwise (no --dump-to, or --dump-to - or any other
name) JSON lines, one per sample: {"split", "index", "row", "input" (the
flattened values), "target" (an int or a list)}, each float32 written as
Python's repr of it as a double (reads back as exactly that float32).

--bench-eval (for make bench) loads as usual, then only times evaluate()
on the test split (no training; the initial weights): one warm-up batch, then
passes until a second is spent (at most 25), and prints
{"eval_samples_per_s": ...} from the median pass.

Weights are .npz files keyed by state_dict names, as `nnseq export` writes
and `nnseq train --init` reads.

As a module (tests/cli_torch_test.sh, tests/layer_ref.py): build(layers,
input_shape), make_optimizer(spec, model), make_scheduler(spec, optimizer,
epochs, steps_per_epoch), read_idx(path), load_config(path), main().
"""
import argparse
import gzip
import inspect
import json
import math
import os
import re
import struct
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn as nn
import yaml

DEFAULT_INPUT_SHAPE = (1, 28, 28)  # what `nnseq print` assumes without data

M64 = (1 << 64) - 1
SPLIT_SEED_MIX = 0x5851F42D4C957F2D    # data.shuffle_split's stream
SHUFFLE_SEED_MIX = 0x9E3779B97F4A7C15  # the training shuffle's stream (--nnseq-order)


def fail(message):
    sys.exit(f"torch_ref.py: {message}")


# --- nnseq's random numbers (lib/core/rng.c) ---------------------------------

class Rng:
    """nnseq's nn_rng: xoshiro256** seeded through splitmix64, with Lemire's
    below() and the Fisher-Yates shuffle from the end."""

    def __init__(self, seed):
        x, state = seed & M64, []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & M64
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
            state.append(z ^ (z >> 31))
        self.s = state

    def next(self):
        s0, s1, s2, s3 = self.s
        r = ((s1 * 5) & M64)
        result = ((((r << 7) | (r >> 57)) & M64) * 9) & M64
        t = (s1 << 17) & M64
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = ((s3 << 45) | (s3 >> 19)) & M64
        self.s = [s0, s1, s2, s3]
        return result

    def below(self, bound):
        m = (self.next() >> 32) * bound
        low = m & 0xFFFFFFFF
        if low < bound:
            threshold = ((1 << 32) - bound) % bound
            while low < threshold:
                m = (self.next() >> 32) * bound
                low = m & 0xFFFFFFFF
        return m >> 32

    def permutation(self, n):
        """order = 0..n-1, then for i = n-1 down to 1: swap(order[i], order[below(i + 1)]).
        The xoshiro step and below() are inlined: ~0.1 s for 60000 samples."""
        order = list(range(n))
        s0, s1, s2, s3 = self.s
        for i in range(n - 1, 0, -1):
            bound = i + 1
            while True:
                r = (s1 * 5) & M64
                result = ((((r << 7) | (r >> 57)) & M64) * 9) & M64
                t = (s1 << 17) & M64
                s2 ^= s0
                s3 ^= s1
                s1 ^= s2
                s0 ^= s3
                s2 ^= t
                s3 = ((s3 << 45) | (s3 >> 19)) & M64
                m = (result >> 32) * bound
                low = m & 0xFFFFFFFF
                # accept unless low < (2^32 - bound) % bound (checked only when low < bound)
                if low >= bound or low >= ((1 << 32) - bound) % bound:
                    break
            j = m >> 32
            order[i], order[j] = order[j], order[i]
        self.s = [s0, s1, s2, s3]
        return order


# --- readers -----------------------------------------------------------------

IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def open_maybe_gzip(path):
    """A file, read through gzip when its first bytes say so (or its name ends in .gz)."""
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" or path.endswith(".gz") else open(path, "rb")


def read_idx(path):
    """An IDX file (raw or .gz) as an array of its dims: uint8 for unsigned
    bytes (0x08), int8, int16, int32, float32 or float64 (native byte order)."""
    with open_maybe_gzip(path) as f:
        raw = f.read()
    if len(raw) < 4:
        fail(f"{path}: not an IDX file (too short)")
    zero, kind, rank = struct.unpack(">HBB", raw[:4])
    if zero != 0 or kind not in IDX_TYPES:
        fail(f"{path}: not an IDX file (type byte 0x{kind:02x})")
    dims = struct.unpack(f">{rank}I", raw[4:4 + 4 * rank])
    dtype = np.dtype(IDX_TYPES[kind])
    count = int(np.prod(dims, dtype=np.int64))
    if len(raw) != 4 + 4 * rank + count * dtype.itemsize:
        fail(f"{path}: {len(raw)} bytes, but dims {list(dims)} of {dtype} need {4 + 4 * rank + count * dtype.itemsize}")
    data = np.frombuffer(raw, dtype, count=count, offset=4 + 4 * rank).reshape(dims)
    return data if dtype == np.uint8 else data.astype(dtype.newbyteorder("="))


def idx_dims(path):
    """The dims of an IDX file, from its header only."""
    with open_maybe_gzip(path) as f:
        head = f.read(4)
        zero, kind, rank = struct.unpack(">HBB", head)
        if zero != 0 or kind not in IDX_TYPES:
            fail(f"{path}: not an IDX file")
        return struct.unpack(f">{rank}I", f.read(4 * rank))


NPY_KINDS = {"f4", "f8", "u1", "i1", "i2", "u2", "i4", "u4", "i8", "u8", "b1"}


def read_npy(path):
    """A .npy file, or the one array of an .npz, of an accepted dtype."""
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic[:4] == b"PK\x03\x04":
        with np.load(path, allow_pickle=False) as z:
            if len(z.files) != 1:
                fail(f"{path}: an .npz for data holds one array, this one holds {len(z.files)} ({', '.join(z.files)})")
            array = z[z.files[0]]
    elif magic == b"\x93NUMPY":
        array = np.load(path, allow_pickle=False)
    else:
        fail(f"{path}: not a .npy or .npz file")
    kind = f"{array.dtype.kind}{array.dtype.itemsize}"
    if kind not in NPY_KINDS or array.dtype.byteorder == ">":
        fail(f"{path}: dtype {array.dtype.str} is not one of {' '.join(sorted(NPY_KINDS))} (little-endian)")
    if array.ndim == 0:
        fail(f"{path}: a scalar, not an array of samples")
    return np.ascontiguousarray(array)


NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
INTEGER = re.compile(r"[+-]?[0-9]+\Z")


def split_cells(line, delimiter):
    """The cells of one line: delimiter None means runs of spaces and tabs.
    Spaces around a cell are dropped; a cell may be in double quotes ("" inside is ")."""
    cells, i, n = [], 0, len(line)
    if delimiter is None:
        line = line.strip(" \t")
        n = len(line)
        if n == 0:
            return []
    while True:
        while i < n and line[i] in " \t" and line[i] != delimiter:
            i += 1
        if i < n and line[i] == '"':
            i += 1
            cell = []
            while True:
                if i >= n:
                    raise ValueError("a quoted cell does not end")
                if line[i] == '"':
                    if i + 1 < n and line[i + 1] == '"':
                        cell.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                cell.append(line[i])
                i += 1
            cell = "".join(cell)
            if delimiter is not None:
                while i < n and line[i] in " \t" and line[i] != delimiter:
                    i += 1
            if i < n and line[i] != delimiter and not (delimiter is None and line[i] in " \t"):
                raise ValueError("text after a quoted cell")
        else:
            start = i
            if delimiter is None:
                while i < n and line[i] not in " \t":
                    i += 1
            else:
                while i < n and line[i] != delimiter:
                    i += 1
            cell = line[start:i].strip(" \t")
        cells.append(cell)
        if i >= n:
            return cells
        if delimiter is None:
            while i < n and line[i] in " \t":
                i += 1
            if i >= n:
                return cells
        else:
            i += 1  # the delimiter
            if i >= n:
                cells.append("")
                return cells


class CsvOptions:
    def __init__(self, spec):
        spec = dict(spec or {})
        unknown = set(spec) - {"delimiter", "skip_rows", "header", "features", "target"}
        if unknown:
            fail(f"unknown key(s) in data.csv: {', '.join(sorted(unknown))}")
        delimiter = spec.get("delimiter", ",")
        if delimiter == "whitespace":
            self.delimiter = None
        elif isinstance(delimiter, str) and len(delimiter) == 1:
            self.delimiter = delimiter
        else:
            fail(f"data.csv.delimiter is one character or whitespace, not {delimiter!r}")
        self.skip_rows = int(spec.get("skip_rows", 0))
        self.header = bool(spec.get("header", False))
        self.features = spec.get("features")
        self.target = spec.get("target")


def read_csv_table(path, options):
    """(header names or None, rows of cells, line number of the first row)."""
    with open_maybe_gzip(path) as f:
        text = f.read().decode("utf-8")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    at = options.skip_rows
    names = None
    if options.header:
        if at >= len(lines):
            fail(f"{path}: no header line after {options.skip_rows} skipped lines")
        names = split_cells(lines[at], options.delimiter)
        at += 1
    first_line = at + 1
    body = lines[at:]
    while body and body[-1].strip(" \t") == "":
        body.pop()
    rows = []
    width = len(names) if names is not None else None
    for k, line in enumerate(body):
        where = f"{path}:{first_line + k}"
        if line.strip(" \t") == "":
            fail(f"{where}: a blank line before the end of the data")
        try:
            cells = split_cells(line, options.delimiter)
        except ValueError as e:
            fail(f"{where}: {e}")
        if width is None:
            width = len(cells)
        elif len(cells) != width:
            fail(f"{where}: {len(cells)} cells, but the first row has {width}")
        rows.append(cells)
    if not rows:
        fail(f"{path}: no data rows")
    return names, rows, first_line


def resolve_columns(selection, width, names, what, path):
    """A column selection (index, name, "A:B" range or a list of those) as a list of indexes."""
    def one(item):
        if isinstance(item, bool):
            fail(f"{path}: data.csv.{what}: {item!r} is not a column")
        if isinstance(item, int):
            index = item + width if item < 0 else item
            if not 0 <= index < width:
                fail(f"{path}: data.csv.{what}: column {item} is out of range ({width} columns)")
            return index
        if isinstance(item, str):
            if INTEGER.match(item.strip()):
                return one(int(item.strip()))
            if names is not None and item in names:
                if names.count(item) > 1:
                    fail(f"{path}: data.csv.{what}: the header names {item!r} more than once")
                return names.index(item)
            fail(f"{path}: data.csv.{what}: no column {item!r}"
                 + (" (the file has no header)" if names is None else f" (the header has {', '.join(names)})"))
        fail(f"{path}: data.csv.{what}: {item!r} is not a column")

    def group(item):
        if isinstance(item, list):
            return [c for sub in item for c in group(sub)]
        if isinstance(item, str) and not (names is not None and item in names) and ":" in item:
            first, last = item.split(":", 1)
            a, b = one(first.strip()), one(last.strip())
            if a > b:
                fail(f"{path}: data.csv.{what}: the range {item!r} runs backwards (columns {a} to {b})")
            return list(range(a, b + 1))
        return [one(item)]

    columns = group(selection)
    if len(set(columns)) != len(columns):
        fail(f"{path}: data.csv.{what}: a column is selected twice ({columns})")
    return columns


def csv_columns(path, rows, columns, first_line, names):
    """The selected columns of the rows as float64 (N x len(columns)), every cell a number."""
    out = np.empty((len(rows), len(columns)), np.float64)
    for r, cells in enumerate(rows):
        for c, index in enumerate(columns):
            cell = cells[index]
            if not NUMBER.match(cell):
                name = f" ({names[index]})" if names is not None else ""
                fail(f"{path}:{first_line + r}: column {index + 1}{name}: expected a number, got {cell!r}")
            out[r, c] = float(cell)
    return out


def read_csv(path, options, want_features=True, want_targets=True, all_columns=False):
    """(features, targets) of one CSV file, float64 arrays (or None)."""
    names, rows, first_line = read_csv_table(path, options)
    width = len(rows[0])
    target_columns = None
    if want_targets:
        selection = options.target
        if selection is None and all_columns:
            target_columns = list(range(width))
        elif selection is not None:
            target_columns = resolve_columns(selection, width, names, "target", path)
    features = None
    if want_features:
        if options.features is not None:
            feature_columns = resolve_columns(options.features, width, names, "features", path)
        elif all_columns:
            feature_columns = list(range(width))
        else:
            taken = (set(resolve_columns(options.target, width, names, "target", path))
                     if options.target is not None else set())
            feature_columns = [c for c in range(width) if c not in taken]
        if target_columns and set(feature_columns) & set(target_columns):
            fail(f"{path}: column(s) {sorted(set(feature_columns) & set(target_columns))} are both features and target")
        if not feature_columns:
            fail(f"{path}: no feature columns")
        features = csv_columns(path, rows, feature_columns, first_line, names)
    targets = csv_columns(path, rows, target_columns, first_line, names) if target_columns else None
    return features, targets


def load_config(path):
    with open(path) as f:
        return yaml.safe_load(f) or {}


# --- the model ---------------------------------------------------------------

def layer_name_and_args(item):
    """`Name`, `{Name: null}` or `{Name: {args}}` -> (name, args)."""
    if isinstance(item, str):
        return item, {}
    if isinstance(item, dict) and len(item) == 1:
        (name, args), = item.items()
        return name, dict(args or {})
    sys.exit(f"a layer is a name or {{name: {{arguments}}}}, not {item!r}")


# The argument a layer may leave out because the input tells it: (name, the
# per-sample dim it is); torch's class names.
INFERRED = {
    "Linear": ("in_features", -1),
    **{k: ("in_channels", 0) for k in ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
                                       "ConvTranspose3d")},
    **{k: ("num_features", 0) for k in ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "InstanceNorm1d",
                                        "InstanceNorm2d", "InstanceNorm3d")},
    "GroupNorm": ("num_channels", 0),
}


def torch_args(args):
    """YAML lists as tuples (kernel_size, stride, padding, dilation,
    output_padding, size, scale_factor, unflattened_size, output_size,
    normalized_shape ...: torch keeps what it is given and prints a tuple,
    as nnseq does); numbers YAML 1.1 reads as strings ("1e-5") as floats."""
    def value(v):
        if isinstance(v, list):
            return tuple(value(x) for x in v)
        if isinstance(v, str) and NUMBER.match(v.strip()) and "e" in v.lower():
            return float(v)
        return v
    return {k: value(v) for k, v in args.items()}


def build(layers, input_shape):
    """The nn.Sequential of a layer list, with the arguments of INFERRED taken
    from the shape coming in when left out. Softmax and LogSoftmax without
    dim keep torch's dim=None (its implicit choice: dim 1 for samples of rank
    1 or 3, which nnseq follows; rank 2 would be the batch, which nnseq
    refuses)."""
    modules, shape = [], tuple(input_shape)
    for item in layers:
        name, args = layer_name_and_args(item)
        args = torch_args(args)
        if name in INFERRED:
            key, dim = INFERRED[name]
            args.setdefault(key, shape[dim])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the implicit softmax dim's deprecation
            module = getattr(nn, name)(**args)
            with torch.no_grad():
                shape = tuple(module.eval()(torch.zeros((2,) + shape)).shape[1:])
        modules.append(module)
    return nn.Sequential(*modules)


# --- the data ----------------------------------------------------------------

def sample_shape(dims):
    """nnseq's per-sample shape of dims[1..]: () -> (1,), (F,), (H, W) -> (1, H, W),
    (C, H, W); more dims fold into the last."""
    dims = tuple(int(d) for d in dims)
    if len(dims) == 0:
        return (1,)
    if len(dims) == 1:
        return dims
    if len(dims) == 2:
        return (1,) + dims
    return dims[:2] + (int(np.prod(dims[2:], dtype=np.int64)),)


class Source:
    """One data file set (a split as the config gives it), read: raw inputs
    (N x ...; uint8 or another dtype), raw targets (float64 N x T, or None),
    whether the targets were stored as integers, and names for messages."""

    def __init__(self, fmt, files, csv, without_targets, resolve, what):
        files = dict(files or {})
        self.what = what
        if fmt == "idx":
            if "images" not in files:
                fail(f"data.{what}: idx needs images")
            self.input_path = resolve(files["images"])
            self.inputs = read_idx(self.input_path)
            self.target_path = None if without_targets or files.get("labels") is None else resolve(files["labels"])
            if not without_targets and self.target_path is None:
                fail(f"data.{what}: idx needs labels (unless data.target is input)")
            targets = read_idx(self.target_path) if self.target_path else None
            self.targets_integer = targets is not None and targets.dtype.kind in "iu"
        elif fmt == "npy":
            if "features" not in files:
                fail(f"data.{what}: npy needs features")
            self.input_path = resolve(files["features"])
            self.inputs = read_npy(self.input_path)
            if self.inputs.dtype == np.bool_:
                self.inputs = self.inputs.astype(np.float32)
            self.target_path = None if without_targets or files.get("targets") is None else resolve(files["targets"])
            if not without_targets and self.target_path is None:
                fail(f"data.{what}: npy needs targets (unless data.target is input)")
            targets = read_npy(self.target_path) if self.target_path else None
            self.targets_integer = targets is not None and targets.dtype.kind in "iub"
        elif fmt == "csv":
            if "file" in files:
                if "features" in files or "targets" in files:
                    fail(f"data.{what}: csv takes file, or features and targets, not both")
                self.input_path = resolve(files["file"])
                self.target_path = None if without_targets else self.input_path
                if not without_targets and csv.target is None:
                    fail(f"data.{what}: data.csv.target names the target column(s) (or data.target: input)")
                self.inputs, targets = read_csv(self.input_path, csv, True, not without_targets)
            elif "features" in files:
                self.input_path = resolve(files["features"])
                self.inputs, _ = read_csv(self.input_path, csv, True, False, all_columns=True)
                given = files.get("targets")
                self.target_path = None if without_targets or given is None else resolve(given)
                if not without_targets and self.target_path is None:
                    fail(f"data.{what}: csv needs targets with features (unless data.target is input)")
                targets = None
                if self.target_path:
                    _, targets = read_csv(self.target_path, csv, False, True, all_columns=True)
            else:
                fail(f"data.{what}: csv needs file, or features and targets")
            self.targets_integer = False
        else:
            fail(f"unknown data.format {fmt!r} (idx, csv or npy)")
        self.count = len(self.inputs)
        if targets is not None:
            if len(targets) != self.count:
                fail(f"{self.target_path}: {len(targets)} targets, but {self.input_path} has {self.count} samples")
            targets = targets.reshape(self.count, -1).astype(np.float64)
        self.targets = targets
        if self.inputs.dtype != np.uint8 and not np.all(np.isfinite(self.inputs)):
            bad = int(np.argwhere(~np.isfinite(self.inputs.reshape(self.count, -1)))[0][0])
            fail(f"{self.input_path}: item {bad} is not finite")
        self.shape = sample_shape(self.inputs.shape[1:])

    def values(self):
        """The inputs as float32 N x values: bytes / 255, the rest as stored."""
        x = self.inputs.reshape(self.count, -1)
        if x.dtype == np.uint8:
            return x.astype(np.float32) / np.float32(255)
        x = x.astype(np.float32)
        if not np.all(np.isfinite(x)):
            bad = int(np.argwhere(~np.isfinite(x))[0][0])
            fail(f"{self.input_path}: item {bad} is out of float32's range")
        return x


def normalize_vector(value, shape, what):
    """mean or std as float32 per input value: a number, or a list with one
    value, one per channel (rank-3 shapes), or one per value."""
    size = int(np.prod(shape))
    values = np.asarray(value if isinstance(value, list) else [value], np.float64)
    if values.ndim != 1 or values.size == 0:
        fail(f"data.normalize.{what}: a number or a list of numbers")
    if values.size == 1:
        per_value = np.full(size, values[0])
    elif len(shape) >= 2 and values.size == shape[0]:
        per_value = np.repeat(values, size // shape[0])
    elif values.size == size:
        per_value = values
    else:
        fail(f"data.normalize.{what}: {values.size} values for inputs of shape {list(shape)} "
             f"(expected 1, {shape[0]} per channel or {size} per value)" if len(shape) >= 2 else
             f"data.normalize.{what}: {values.size} values for {size} features")
    return per_value.astype(np.float32)


def auto_normalize(values, shape):
    """normalize: auto: float64 mean and population std per feature (rank 1)
    or channel (rank 3) of the train samples' values, std 0 -> 1, as float32."""
    n = len(values)
    if n == 0:
        fail("normalize: auto needs at least one training sample")
    groups = shape[0] if len(shape) >= 2 else int(np.prod(shape))
    per_group = int(np.prod(shape)) // groups
    mean = np.empty(groups, np.float64)
    std = np.empty(groups, np.float64)
    grouped = values.reshape(n, groups, per_group)
    for g in range(groups):
        v = grouped[:, g, :]
        if v.dtype == np.uint8:  # the float32 byte / 255 the model gets, widened, as nnseq
            v = (v.astype(np.float32) / np.float32(255)).astype(np.float64)
        else:  # the float32 values the model gets, widened
            v = v.astype(np.float32).astype(np.float64)
        mean[g] = v.mean()
        std[g] = np.sqrt(np.mean((v - mean[g]) ** 2))
    std[std == 0] = 1.0
    return (np.repeat(mean, per_group).astype(np.float32), np.repeat(std, per_group).astype(np.float32))


class Data:
    """A split's model inputs (float32, N x shape), targets (int64 class
    indices (N,) or float32 rows (N, outputs)) and each sample's file row."""

    def __init__(self, x, y, rows):
        self.x, self.y, self.rows = x, y, rows
        self._sst = None

    def __len__(self):
        return len(self.x)

    def part(self, start, stop):
        return Data(self.x[start:stop], self.y[start:stop], self.rows[start:stop])

    def sst(self):
        """Regression's total sum of squares per output (float64)."""
        if self._sst is None:
            y = self.y.reshape(len(self.y), -1)
            total, chunk = torch.zeros(y.shape[1], dtype=torch.float64), 4096
            for i in range(0, len(y), chunk):
                total += y[i:i + chunk].double().sum(0)
            mean = total / max(len(y), 1)
            sst = torch.zeros(y.shape[1], dtype=torch.float64)
            for i in range(0, len(y), chunk):
                sst += ((y[i:i + chunk].double() - mean) ** 2).sum(0)
            self._sst = sst.numpy()
        return self._sst


def bind_targets(source, rows, loss, outputs, target_is_input, inputs_before_normalize):
    """The targets of samples `rows` of source, as the loss takes them."""
    if target_is_input:
        if loss.target == "classes":
            fail(f"loss {loss.name} takes class indices; data.target: input needs a loss of values (mse, bce, ...)")
        t = inputs_before_normalize
        if t.shape[1] != outputs:
            fail(f"data.target: input: the model has {outputs} outputs, the inputs {t.shape[1]} values")
        return torch.from_numpy(np.ascontiguousarray(t))
    raw = source.targets[rows]
    where = source.target_path
    if loss.target == "classes":
        if raw.shape[1] != 1:
            fail(f"{where}: {raw.shape[1]} targets per sample; {loss.name} takes one class index")
        labels = raw[:, 0]
        integral = labels == np.round(labels)
        allowed = (integral & (labels >= 0) & (labels < outputs)) | (labels == loss.ignore_index)
        if not np.all(allowed):
            k = int(np.argwhere(~allowed)[0][0])
            fail(f"{where}: row {int(rows[k])}: target {labels[k]!r} is not a class index in [0, {outputs})")
        return torch.from_numpy(labels.astype(np.int64))
    if raw.shape[1] == 1 and outputs > 1:
        labels = raw[:, 0]
        ok = (labels == np.round(labels)) & (labels >= 0) & (labels < outputs)
        if not np.all(ok):
            k = int(np.argwhere(~ok)[0][0])
            fail(f"{where}: row {int(rows[k])}: one target per sample and {outputs} outputs: expected a class index "
                 f"in [0, {outputs}) (made a one-hot row), got {labels[k]!r}")
        values = np.zeros((len(labels), outputs), np.float32)
        values[np.arange(len(labels)), labels.astype(np.int64)] = 1
        return torch.from_numpy(values)
    if raw.shape[1] != outputs:
        fail(f"{where}: {raw.shape[1]} targets per sample, but the model has {outputs} outputs")
    values = raw.astype(np.float32)
    if loss.name == "bce" and not np.all((values >= 0) & (values <= 1)):
        k = int(np.argwhere(~np.all((values >= 0) & (values <= 1), axis=1))[0][0])
        fail(f"{where}: row {int(rows[k])}: bce's targets are in [0, 1]")
    return torch.from_numpy(values)


# --- losses and metrics ------------------------------------------------------

LOSS_ALIASES = {"CrossEntropyLoss": "cross_entropy", "NLLLoss": "nll", "BCELoss": "bce",
                "BCEWithLogitsLoss": "bce_with_logits", "MSELoss": "mse", "L1Loss": "l1",
                "SmoothL1Loss": "smooth_l1", "HuberLoss": "huber"}
LOSS_ARGS = {"cross_entropy": {"weight", "ignore_index", "label_smoothing"}, "nll": {"weight", "ignore_index"},
             "bce": {"weight"}, "bce_with_logits": {"pos_weight"}, "mse": set(), "l1": set(),
             "smooth_l1": {"beta"}, "huber": {"delta"}}


def loss_spec(cfg):
    spec = cfg.get("loss", "cross_entropy")
    if isinstance(spec, dict):
        args = dict(spec)
        name = args.pop("name", None)
        if name is None:
            fail("loss: a mapping needs name")
    else:
        name, args = spec, {}
    name = LOSS_ALIASES.get(name, name)
    if name not in LOSS_ARGS:
        fail(f"unknown loss {name!r} (expected one of {', '.join(LOSS_ARGS)})")
    unknown = set(args) - LOSS_ARGS[name]
    if unknown:
        fail(f"unknown argument(s) for loss {name}: {', '.join(sorted(unknown))}")
    return name, args


class Loss:
    """A configured loss: torch's module (reduction='mean') and, per sample,
    the denominator of that mean (class weight, 0 when ignored; or outputs)."""

    def __init__(self, name, args, outputs):
        self.name, self.args, self.outputs = name, args, outputs
        self.target = "classes" if name in ("cross_entropy", "nll") else "values"
        self.logits = name == "bce_with_logits"
        self.ignore_index = int(args.get("ignore_index", -100))
        self.weight = None

        def vector(key, length):
            value = args.get(key)
            if value is None:
                return None
            v = torch.tensor(value if isinstance(value, list) else [value] * length, dtype=torch.float32)
            if v.ndim != 1 or len(v) != length:
                fail(f"loss {name}: {key} has {len(v)} values, the model {length} outputs")
            return v

        if name == "cross_entropy":
            self.weight = vector("weight", outputs)
            self.module = nn.CrossEntropyLoss(weight=self.weight, ignore_index=self.ignore_index,
                                              label_smoothing=float(args.get("label_smoothing", 0.0)))
        elif name == "nll":
            self.weight = vector("weight", outputs)
            self.module = nn.NLLLoss(weight=self.weight, ignore_index=self.ignore_index)
        elif name == "bce":
            self.module = nn.BCELoss(weight=vector("weight", outputs))
        elif name == "bce_with_logits":
            self.module = nn.BCEWithLogitsLoss(pos_weight=vector("pos_weight", outputs))
        elif name == "mse":
            self.module = nn.MSELoss()
        elif name == "l1":
            self.module = nn.L1Loss()
        elif name == "smooth_l1":
            self.module = nn.SmoothL1Loss(beta=float(args.get("beta", 1.0)))
        elif name == "huber":
            self.module = nn.HuberLoss(delta=float(args.get("delta", 1.0)))

    def __call__(self, output, y):
        if self.target == "classes":
            if output.ndim != 2:
                fail(f"loss {self.name} takes (batch, classes) outputs, the model gives {list(output.shape[1:])}")
            return self.module(output, y)
        return self.module(output.reshape(len(output), -1), y)

    def denominators(self, y):
        """float64 numpy: each sample's share of the mean's denominator."""
        if self.target == "classes":
            labels = y.numpy()
            kept = labels != self.ignore_index
            if self.weight is None:
                return kept.astype(np.float64)
            w = self.weight.numpy().astype(np.float64)
            return np.where(kept, w[np.where(kept, labels, 0)], 0.0)
        return np.full(len(y), float(self.outputs))


TASK_METRICS = {"classification": ["accuracy"],
                "binary": ["accuracy", "precision", "recall", "f1", "roc_auc"],
                "multi-label": ["accuracy", "label_accuracy", "micro_f1", "macro_f1"],
                "regression": ["mse", "rmse", "mae", "r2"]}


def task_for(loss, outputs, target_is_input):
    if target_is_input:
        return "regression"
    if loss.name in ("cross_entropy", "nll"):
        return "classification"
    if loss.name in ("bce", "bce_with_logits"):
        return "binary" if outputs == 1 else "multi-label"
    return "regression"


def ratio(a, b):
    return a / b if b else 0.0


def roc_auc(scores, positive):
    """sklearn's roc_auc_score: the Mann-Whitney U with ties counted half; NaN with one class."""
    p = int(positive.sum())
    n = len(positive) - p
    if p == 0 or n == 0:
        return math.nan
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    ranks = np.empty(len(s), np.float64)
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    ends = np.r_[starts[1:], len(s)]
    for a, b in zip(starts, ends):
        ranks[a:b] = (a + b + 1) / 2.0  # the mean of the 1-based ranks a+1 .. b
    rank_sum = ranks[positive[order]].sum()
    return (rank_sum - p * (p + 1) / 2.0) / (p * n)


class Metrics:
    """A task's metrics (not the loss) accumulated batch by batch over a split."""

    def __init__(self, task, loss, outputs, split):
        self.task, self.loss, self.outputs, self.split = task, loss, outputs, split
        self.count = 0
        if task == "classification":
            self.correct, self.counted = 0, 0
        elif task == "binary":
            self.scores, self.labels = [], []
        elif task == "multi-label":
            self.subset = 0
            self.tp = np.zeros(outputs, np.int64)
            self.fp = np.zeros(outputs, np.int64)
            self.fn = np.zeros(outputs, np.int64)
            self.right = 0
        else:
            self.sse, self.sae = 0.0, 0.0

    def add(self, output, y):
        output = output.detach()
        self.count += len(output)
        if self.task == "classification":
            kept = y != self.loss.ignore_index
            self.correct += ((output.argmax(1) == y) & kept).sum().item()
            self.counted += kept.sum().item()
            return
        out = output.reshape(len(output), -1)
        if self.task == "regression":
            diff = out.double() - y.double()
            self.sse += (diff * diff).sum().item()
            self.sse_per_output = (diff * diff).double().sum(0).numpy() + getattr(self, "sse_per_output", 0.0)
            self.sae += diff.abs().sum().item()
            return
        predicted = (out > 0) if self.loss.logits else (out > 0.5)
        truth = y >= 0.5
        if self.task == "binary":
            self.scores.append(out[:, 0].numpy().astype(np.float64))
            self.labels.append(truth[:, 0].numpy())
            return
        self.subset += (predicted == truth).all(1).sum().item()
        self.right += (predicted == truth).sum().item()
        self.tp += (predicted & truth).sum(0).numpy()
        self.fp += (predicted & ~truth).sum(0).numpy()
        self.fn += (~predicted & truth).sum(0).numpy()

    def finish(self):
        if self.task == "classification":
            return {"accuracy": ratio(self.correct, self.counted)}
        if self.task == "regression":
            values = self.count * self.outputs
            mse = ratio(self.sse, values)
            # sklearn's r2_score(multioutput='variance_weighted'): outputs
            # whose targets are constant (SST 0) weigh nothing, errors too.
            sst = self.split.sst()
            varying = sst > 0
            total = float(sst[varying].sum())
            sse = float(np.asarray(getattr(self, "sse_per_output", np.zeros_like(sst)))[varying].sum())
            return {"mse": mse, "rmse": math.sqrt(mse), "mae": ratio(self.sae, values),
                    "r2": 1.0 - sse / total if total > 0 and len(self.split) > 1 else math.nan}
        if self.task == "binary":
            scores = np.concatenate(self.scores) if self.scores else np.zeros(0)
            truth = np.concatenate(self.labels) if self.labels else np.zeros(0, bool)
            predicted = scores > 0 if self.loss.logits else scores > np.float32(0.5)
            tp = int((predicted & truth).sum())
            fp = int((predicted & ~truth).sum())
            fn = int((~predicted & truth).sum())
            return {"accuracy": ratio(int((predicted == truth).sum()), len(truth)),
                    "precision": ratio(tp, tp + fp), "recall": ratio(tp, tp + fn),
                    "f1": ratio(2 * tp, 2 * tp + fp + fn), "roc_auc": roc_auc(scores, truth)}
        tp, fp, fn = self.tp.sum(), self.fp.sum(), self.fn.sum()
        per_label = [ratio(2 * a, 2 * a + b + c) for a, b, c in zip(self.tp, self.fp, self.fn)]
        return {"accuracy": ratio(self.subset, self.count),
                "label_accuracy": ratio(self.right, self.count * self.outputs),
                "micro_f1": ratio(2 * tp, 2 * tp + fp + fn), "macro_f1": float(np.mean(per_label))}


def split_fields(prefix, task, loss_value, metrics):
    fields = {f"{prefix}_loss": loss_value}
    for name in TASK_METRICS[task]:
        fields[f"{prefix}_{name}"] = metrics[name]
    return fields


# nnseq's optimiser names (lowercase) and torch's class names, matched case-insensitively.
OPTIMIZERS = {c.__name__.lower(): c for c in (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW,
                                              torch.optim.Adadelta, torch.optim.Adagrad, torch.optim.RMSprop,
                                              torch.optim.Adamax, torch.optim.NAdam, torch.optim.RAdam)}
NORM_LAYERS = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm)


def no_decay_groups(model, what, weight_decay):
    """`no_decay: [bias, norm]`: two param groups, the second without weight
    decay: parameters named *.bias (bias), those of normalisation layers (norm)."""
    unknown = set(what) - {"bias", "norm"}
    if unknown:
        fail(f"optimizer.no_decay takes bias and norm, not {', '.join(sorted(map(str, unknown)))}")
    decay, plain = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            skip = ("bias" in what and name == "bias") or ("norm" in what and isinstance(module, NORM_LAYERS))
            (plain if skip else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def make_optimizer(spec, model):
    """torch.optim's class for nnseq's name or torch's (sgd, adam, adamw,
    adadelta, adagrad, rmsprop, adamax, nadam, radam), with the config's
    arguments passed through (betas as a tuple; SGD's lr defaults to nnseq's
    0.001). model is the nn.Module (needed for no_decay) or its parameters."""
    args = dict(spec or {})
    name = str(args.pop("name", "sgd"))
    if name.lower() not in OPTIMIZERS:
        fail(f"unknown optimizer {name!r} (torch_ref.py knows {', '.join(sorted(OPTIMIZERS))})")
    cls = OPTIMIZERS[name.lower()]
    if "betas" in args:
        args["betas"] = tuple(args["betas"])
    if cls is torch.optim.SGD:
        args.setdefault("lr", 0.001)  # torch.optim.SGD has no default; nnseq's
    no_decay = args.pop("no_decay", None)
    if no_decay:
        if not isinstance(model, nn.Module):
            fail("optimizer.no_decay needs the model, not its parameters")
        weight_decay = args.pop("weight_decay", inspect.signature(cls).parameters["weight_decay"].default)
        return cls(no_decay_groups(model, list(no_decay), weight_decay), **args)
    return cls(model.parameters() if isinstance(model, nn.Module) else model, **args)


S = torch.optim.lr_scheduler
# nnseq's schedule names and torch's class names (matched case-insensitively).
SCHEDULERS = {"step": S.StepLR, "multistep": S.MultiStepLR, "cosine": S.CosineAnnealingLR,
              "exponential": S.ExponentialLR, "linear": S.LinearLR, "constant": S.ConstantLR,
              "polynomial": S.PolynomialLR, "onecycle": S.OneCycleLR,
              "cosine_restarts": S.CosineAnnealingWarmRestarts, "plateau": S.ReduceLROnPlateau,
              "sequential": S.SequentialLR}
SCHEDULERS.update({c.__name__.lower(): c for c in list(SCHEDULERS.values())})


class Schedule:
    """A torch scheduler and how the training loop steps it, as torch's usual
    loop does: OneCycleLR after every optimiser step;
    CosineAnnealingWarmRestarts after every optimiser step with
    step(epoch + (i + 1) / steps_per_epoch) (epoch from 0, i the step just
    made in the epoch: its docs show epoch + i / iters, which gives each
    batch the previous batch's position; nnseq gives each its own); ReduceLROnPlateau after each epoch with the
    validation loss (the training loss without a validation split); the
    others once after each epoch."""

    def __init__(self, scheduler):
        self.scheduler = scheduler
        self.per_step = isinstance(scheduler, (S.OneCycleLR, S.CosineAnnealingWarmRestarts))
        self.plateau = isinstance(scheduler, S.ReduceLROnPlateau)

    def after_step(self, epoch, i, steps_per_epoch):
        if isinstance(self.scheduler, S.OneCycleLR):
            self.scheduler.step()
        elif isinstance(self.scheduler, S.CosineAnnealingWarmRestarts):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch deprecates step(epoch), yet its docs step this one so
                self.scheduler.step(epoch + (i + 1) / steps_per_epoch)

    def after_epoch(self, loss):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SequentialLR steps its children with step(0), which torch deprecates
            if self.plateau:
                self.scheduler.step(loss)
            elif not self.per_step:
                self.scheduler.step()


def torch_scheduler(spec, optimizer, epochs, steps_per_epoch):
    args = dict(spec)
    name = str(args.pop("name", ""))
    if name.lower() not in SCHEDULERS:
        fail(f"unknown scheduler {name!r} (torch_ref.py knows {', '.join(sorted(SCHEDULERS))})")
    cls = SCHEDULERS[name.lower()]
    if cls is S.SequentialLR:
        children = [torch_scheduler(child, optimizer, epochs, steps_per_epoch)
                    for child in args.pop("schedulers", [])]
        return cls(optimizer, children, **args)
    if cls is S.OneCycleLR and not {"total_steps", "epochs", "steps_per_epoch"} & set(args):
        args["total_steps"] = epochs * steps_per_epoch
    return cls(optimizer, **args)


def make_scheduler(spec, optimizer, epochs=1, steps_per_epoch=1):
    """The Schedule of the config's scheduler (None without one): nnseq's
    names and torch's class names, the arguments passed through;
    SequentialLR's `schedulers` are configs of their own; OneCycleLR without
    total_steps, epochs and steps_per_epoch runs over epochs *
    steps_per_epoch of the run."""
    if not spec:
        return None
    return Schedule(torch_scheduler(spec, optimizer, epochs, steps_per_epoch))


def evaluate(model, loss_fn, task, data, batch_size=1000):
    """(loss, metrics) over a split, in eval mode: the loss is
    sum(batch loss * batch denominator) / sum(denominators)."""
    model.eval()
    metrics = Metrics(task, loss_fn, loss_fn.outputs, data)
    numerator, denominator = 0.0, 0.0
    with torch.no_grad():
        for i in range(0, len(data), batch_size):
            x, y = data.x[i:i + batch_size], data.y[i:i + batch_size]
            output = model(x)
            den = float(loss_fn.denominators(y).sum())
            if den > 0:
                numerator += loss_fn(output, y).item() * den
                denominator += den
            metrics.add(output, y)
    return numerator / denominator if denominator else 0.0, metrics.finish()


def train_epoch(model, loss_fn, task, optimizer, data, batch_size, order, after_step=None):
    """One pass over the training split in `order` (a tensor of indexes):
    (loss, metrics, seconds); the loss is sum(batch loss * batch denominator) / sum(denominators).
    after_step(i) runs after the optimiser's step i of the epoch (from 0)."""
    model.train()
    n = len(data)
    metrics = Metrics(task, loss_fn, loss_fn.outputs, data)
    numerator, denominator, start = 0.0, 0.0, time.perf_counter()
    for i in range(0, n, batch_size):
        batch = order[i:i + batch_size]
        x, y = data.x[batch], data.y[batch]
        optimizer.zero_grad(set_to_none=True)
        output = model(x)
        den = float(loss_fn.denominators(y).sum())
        if den > 0:
            loss = loss_fn(output, y)
        else:  # every sample ignored: nnseq's loss 0 and a zero gradient (torch's mean would be NaN)
            loss = (output * 0).sum()
        loss.backward()
        optimizer.step()
        if after_step:
            after_step(i // batch_size)
        numerator += loss.item() * den
        denominator += den
        metrics.add(output, y)
    return numerator / denominator if denominator else 0.0, metrics.finish(), time.perf_counter() - start


def bench_eval(model, loss_fn, task, test, threads, passes=25, budget=1.0):
    """--bench-eval (make bench only): evaluate() over the test split, as the
    final test line does, after one warm-up batch; timed passes until `budget`
    seconds are spent (at least one, at most `passes`), their median in
    samples/s. The weights are the initial ones (no training)."""
    evaluate(model, loss_fn, task, test.part(0, min(len(test), 1000)))
    times = []
    while not times or (len(times) < passes and sum(times) < budget):
        start = time.perf_counter()
        evaluate(model, loss_fn, task, test)
        times.append(time.perf_counter() - start)
    seconds = sorted(times)[len(times) // 2]
    report(eval_samples_per_s=round(len(test) / seconds), eval_seconds=round(seconds, 4),
           eval_seconds_all=[round(t, 4) for t in times], test_samples=len(test), threads=threads,
           torch=torch.__version__)


def save_npz(model, path):
    np.savez(path, **{k: v.detach().numpy() for k, v in model.state_dict().items()})


def load_npz(model, path):
    with np.load(path) as weights:
        model.load_state_dict({k: torch.from_numpy(np.array(weights[k])) for k in weights.files})


def json_value(v):
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return round(v, 7) if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


def report(**fields):
    print(json.dumps({k: json_value(v) for k, v in fields.items()}), flush=True)


def dump_split(name, data, mean, std, path):
    """--dump-split: the split as an .npz (path ending .npz) or JSON lines (stdout, or path)."""
    x = data.x.numpy()
    y = data.y.numpy()
    if path and path.endswith(".npz"):
        size = int(np.prod(x.shape[1:]))
        np.savez(path, inputs=x, targets=y, rows=np.asarray(data.rows, np.int64),
                 mean=mean if mean is not None else np.zeros(size, np.float32),
                 std=std if std is not None else np.ones(size, np.float32))
        return
    out = sys.stdout if not path or path == "-" else open(path, "w")
    try:
        flat = x.reshape(len(x), -1)
        for k in range(len(x)):
            target = int(y[k]) if y.ndim == 1 else [float(v) for v in y[k]]
            out.write(json.dumps({"split": name, "index": k, "row": int(data.rows[k]),
                                  "input": [float(v) for v in flat[k]], "target": target}) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()


def fraction(data_cfg, key):
    value = float(data_cfg.get(key, 0) or 0)
    if not 0 <= value < 1:
        fail(f"data.{key} is in [0, 1), not {value}")
    return value


def main():
    parser = argparse.ArgumentParser(description="Train an nnseq config with PyTorch.")
    parser.add_argument("config")
    parser.add_argument("--print", action="store_true", help="print the model as PyTorch does, then stop")
    parser.add_argument("--epochs", type=int, help="instead of train.epochs")
    parser.add_argument("--seed", type=int, help="instead of the config's seed")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--init", help="start from these weights (.npz); instead of the config's init")
    parser.add_argument("--save", help="write the trained weights here (.npz)")
    parser.add_argument("--train-limit", type=int, help="train on the first N training samples only")
    parser.add_argument("--nnseq-order", action="store_true",
                        help="shuffle the training samples in nnseq's order (its xoshiro256** stream), not torch's")
    parser.add_argument("--dump-split", choices=("train", "val", "test"),
                        help="write this split's model inputs and targets (see --dump-to), then stop")
    parser.add_argument("--dump-to", help="for --dump-split: FILE.npz, else JSON lines to FILE (default: stdout)")
    parser.add_argument("--bench-eval", action="store_true",
                        help="benchmark only: time evaluation of the test split (after loading, no training), "
                             "print {\"eval_samples_per_s\": ...} and stop")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    cfg = load_config(args.config)
    folder = os.path.dirname(os.path.abspath(args.config))
    resolve = lambda p: p if os.path.isabs(p) else os.path.join(folder, p)  # noqa: E731
    data_cfg = cfg.get("data") or {}
    model_cfg = cfg["model"]
    fmt = data_cfg.get("format", "idx")
    csv = CsvOptions(data_cfg.get("csv"))
    target_mode = data_cfg.get("target", "labels")
    if target_mode not in ("labels", "input"):
        fail(f"data.target is labels or input, not {target_mode!r}")
    target_is_input = target_mode == "input"
    train_files, test_files = data_cfg.get("train"), data_cfg.get("test")
    seed = int(args.seed if args.seed is not None else cfg.get("seed", 0))

    shape = model_cfg.get("input_shape")
    if args.print:
        # The shape, as cheaply as the data allows; the default without data.
        if shape is None and train_files:
            try:
                if fmt == "idx" and os.path.exists(resolve(train_files["images"])):
                    shape = sample_shape(idx_dims(resolve(train_files["images"]))[1:])
                elif fmt in ("csv", "npy"):
                    shape = Source(fmt, train_files, csv, True, resolve, "train").shape
            except (OSError, KeyError):
                shape = None
        if shape is None:  # no data to look at: a first Linear's in_features, else nnseq print's default
            first_name, first_args = layer_name_and_args(model_cfg["layers"][0])
            if first_name == "Linear" and "in_features" in first_args:
                shape = (int(first_args["in_features"]),)
        torch.manual_seed(seed)
        print(build(model_cfg["layers"], tuple(shape or DEFAULT_INPUT_SHAPE)))
        return

    if not train_files:
        fail("data.train is needed to train")
    source = Source(fmt, train_files, csv, target_is_input, resolve, "train")
    if shape is not None:
        shape = tuple(int(d) for d in shape)
        if int(np.prod(shape)) != int(np.prod(source.shape)):
            fail(f"model.input_shape {list(shape)} has {int(np.prod(shape))} values, "
                 f"the samples of {source.input_path} {int(np.prod(source.shape))} ({list(source.shape)})")
    else:
        shape = source.shape
    torch.manual_seed(seed)
    model = build(model_cfg["layers"], shape)
    init = args.init or (cfg.get("init") and resolve(cfg["init"]))
    if init:
        load_npz(model, init)
    with torch.no_grad():
        outputs = int(np.prod(model.eval()(torch.zeros((2,) + shape)).shape[1:]))
    loss_fn = Loss(*loss_spec(cfg), outputs)
    task = task_for(loss_fn, outputs, target_is_input)

    # The splits of the training file: [train | val | test], after shuffle_split's permutation.
    n = source.count
    test_split, val_split = fraction(data_cfg, "test_split"), fraction(data_cfg, "val_split")
    if test_split and test_files:
        fail("data.test_split and data.test cannot both be given")
    order = (np.asarray(Rng(seed ^ SPLIT_SEED_MIX).permutation(n), np.int64) if data_cfg.get("shuffle_split", False)
             else np.arange(n, dtype=np.int64))
    test_count = math.floor(test_split * n)
    val_count = math.floor(val_split * (n - test_count))
    train_count = n - test_count - val_count
    if train_count < 1:
        fail(f"no training samples left: {n} samples, {test_count} for test, {val_count} for validation")
    values = source.values()
    normalize = data_cfg.get("normalize")
    if normalize == "auto":
        train_rows = np.sort(order[:train_count])  # the statistics do not depend on the order
        mean, std = auto_normalize(source.inputs.reshape(n, -1)[train_rows], shape)
    elif isinstance(normalize, dict):
        mean = normalize_vector(normalize.get("mean", 0.0), shape, "mean")
        std = normalize_vector(normalize.get("std", 1.0), shape, "std")
        if not np.all(std > 0):
            fail("data.normalize.std must be > 0")
    elif normalize is None:
        mean = std = None
    else:
        fail(f"data.normalize is auto or {{mean: M, std: S}}, not {normalize!r}")

    def make_data(src, vals, rows):
        raw = vals[rows]
        x = raw if mean is None else (raw - mean) / std
        y = bind_targets(src, rows, loss_fn, outputs, target_is_input, raw)
        return Data(torch.from_numpy(np.ascontiguousarray(x.reshape((len(rows),) + shape))), y, rows)

    train = make_data(source, values, order[:train_count])
    val = make_data(source, values, order[train_count:train_count + val_count]) if val_count else None
    test = make_data(source, values, order[train_count + val_count:]) if test_count else None
    del values
    if test_files:
        test_source = Source(fmt, test_files, csv, target_is_input, resolve, "test")
        if int(np.prod(test_source.shape)) != int(np.prod(shape)):
            fail(f"{test_source.input_path}: samples of {list(test_source.shape)}, the model takes {list(shape)}")
        test = make_data(test_source, test_source.values(), np.arange(test_source.count, dtype=np.int64))
    if args.train_limit:
        train = train.part(0, args.train_limit)

    if args.dump_split:
        split = {"train": train, "val": val, "test": test}[args.dump_split]
        if split is None:
            fail(f"--dump-split {args.dump_split}: the config has no {args.dump_split} split")
        dump_split(args.dump_split, split, mean, std, args.dump_to)
        return

    if args.bench_eval:
        if test is None:
            fail("--bench-eval: the config has no test split")
        bench_eval(model, loss_fn, task, test, args.threads)
        return

    run = cfg.get("train") or {}
    epochs = args.epochs or int(run.get("epochs", 1))
    batch_size, shuffle = int(run.get("batch_size", 64)), bool(run.get("shuffle", True))
    steps_per_epoch = math.ceil(len(train) / batch_size)
    optimizer = make_optimizer(cfg.get("optimizer"), model)
    schedule = make_scheduler(cfg.get("scheduler"), optimizer, epochs, steps_per_epoch)
    early_stop = run.get("early_stop")
    patience = int((early_stop or {}).get("patience", 5))
    min_delta = float((early_stop or {}).get("min_delta", 0))
    generator = torch.Generator().manual_seed(seed)
    nnseq_rng = Rng(seed ^ SHUFFLE_SEED_MIX)
    best, bad_epochs = math.inf, 0
    for epoch in range(1, epochs + 1):
        lr = optimizer.param_groups[0]["lr"]
        if not shuffle:
            order = torch.arange(len(train))
        elif args.nnseq_order:
            order = torch.tensor(nnseq_rng.permutation(len(train)), dtype=torch.int64)
        else:
            order = torch.randperm(len(train), generator=generator)
        after_step = (lambda i, e=epoch - 1: schedule.after_step(e, i, steps_per_epoch)) \
            if schedule and schedule.per_step else None
        train_loss, train_metrics, seconds = train_epoch(model, loss_fn, task, optimizer, train, batch_size, order,
                                                         after_step)
        fields = dict(epoch=epoch, epochs=epochs, lr=lr, **split_fields("train", task, train_loss, train_metrics))
        if val is not None:
            fields.update(split_fields("val", task, *evaluate(model, loss_fn, task, val)))
        report(**fields, seconds=round(seconds, 3), samples_per_s=round(len(train) / seconds))
        if schedule:
            schedule.after_epoch(fields["val_loss"] if val is not None else train_loss)
        if early_stop is not None and val is not None:
            if fields["val_loss"] < best - min_delta:
                best, bad_epochs = fields["val_loss"], 0
            else:
                bad_epochs += 1
            if bad_epochs >= patience:
                break

    if args.save:
        save_npz(model, args.save)
    final = dict(final=True)
    if test is not None:
        final.update(split_fields("test", task, *evaluate(model, loss_fn, task, test)))
        final["test_samples"] = len(test)
    report(**final, threads=args.threads, torch=torch.__version__,
           params=sum(p.numel() for p in model.parameters()))


if __name__ == "__main__":
    main()
