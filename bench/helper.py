#!/usr/bin/python3
"""bench/run.sh's helper (make bench only; needs python3-yaml, not torch).

    helper.py measure OUT CMD [ARG...]   run CMD (stdout and stderr inherited);
        write "wall_s maxrss_kb user_s sys_s status" to OUT; exit with its status
    helper.py idx IN OUT [--head N] [--copies K]   an uncompressed IDX file of
        IN's first N records (0: all), the whole run repeated K times
    helper.py paths CONFIG   the config's train images, train labels, test
        images, test labels: absolute, one a line (empty line when absent)
    helper.py derive CONFIG OUT TRAIN_IMAGES TRAIN_LABELS   CONFIG's text with
        the training files replaced and the other data paths made absolute
    helper.py mlp CONFIG     "BATCH W0 W1 ..." when the model is Linear layers
        and elementwise activations only (gemm_ceiling.c's arguments), else nothing
    helper.py train-count CONFIG N   the training split of a training file of N
        samples (0: the config's own file): N less test_split and val_split
    helper.py train-rate FILE   training samples/s of JSON epoch lines
        (sum of samples over sum of seconds; nnseq's and torch_ref.py's fields)
    helper.py field FILE KEY    the last value of KEY in FILE's JSON lines
"""
import gzip
import json
import os
import resource
import struct
import subprocess
import sys
import time

import yaml


def measure(out, cmd):
    start = time.perf_counter()
    try:
        status = subprocess.call(cmd)
    except OSError as e:
        print(f"bench: {cmd[0]}: {e}", file=sys.stderr)
        status = 127
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out, "w") as f:
        f.write(f"{wall:.6f} {usage.ru_maxrss} {usage.ru_utime:.3f} {usage.ru_stime:.3f} {status}\n")
    return status if status >= 0 else 128 - status


def read_maybe_gzip(path):
    with open(path, "rb") as f:
        raw = f.read()
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def idx(src, dst, head=0, copies=1):
    raw = read_maybe_gzip(src)
    kind, rank = raw[2], raw[3]
    dims = list(struct.unpack(f">{rank}I", raw[4:4 + 4 * rank]))
    size = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}[kind]
    for d in dims[1:]:
        size *= d
    body = raw[4 + 4 * rank:]
    count = dims[0] if head <= 0 else min(head, dims[0])
    dims[0] = count * copies
    with open(dst, "wb") as f:
        f.write(raw[:4] + struct.pack(f">{rank}I", *dims))
        for _ in range(copies):
            f.write(body[:count * size])


def load(path):
    with open(path) as f:
        return yaml.safe_load(f)


def data_paths(config):
    folder = os.path.dirname(os.path.abspath(config))
    data = load(config).get("data") or {}
    absolute = lambda p: p if os.path.isabs(p) else os.path.normpath(os.path.join(folder, p))  # noqa: E731
    out = {}
    for split in ("train", "test"):
        files = data.get(split) or {}
        for key in ("images", "labels"):
            out[split, key] = (files.get(key), absolute(files[key]) if files.get(key) else "")
    return out


def derive(config, out, images, labels):
    with open(config) as f:
        text = f.read()
    paths = data_paths(config)
    replace = {paths["train", "images"][0]: images, paths["train", "labels"][0]: labels}
    for key in ("images", "labels"):
        if paths["test", key][0]:
            replace[paths["test", key][0]] = paths["test", key][1]
    for old, new in replace.items():
        if not old or text.count(old) != 1:
            sys.exit(f"bench: {config}: cannot rewrite the data path {old!r} (found {text.count(old) if old else 0} times)")
        text = text.replace(old, new)
    with open(out, "w") as f:
        f.write(text)
    if data_paths(out)["train", "images"][1] != images:
        sys.exit(f"bench: {config}: the derived config does not read {images}")


ELEMENTWISE = {"relu", "tanh", "sigmoid", "gelu", "silu", "leakyrelu", "elu", "identity", "softmax", "logsoftmax"}


def mlp(config):
    cfg = load(config)
    model = cfg.get("model") or {}
    shape = model.get("input_shape") or [1, 28, 28]
    width = 1
    for d in shape:
        width *= int(d)
    widths = [width]
    for item in model.get("layers") or []:
        name, args = (item, {}) if isinstance(item, str) else next(iter(item.items()))
        args = args or {}
        low = name.lower()
        if low == "flatten":
            continue
        if low == "linear":
            widths.append(int(args["out_features"]))
        elif low not in ELEMENTWISE and low != "dropout":
            return
    batch = int((cfg.get("train") or {}).get("batch_size", 64))
    print(batch, *widths)


def train_count(config, n):
    data = load(config).get("data") or {}
    if n <= 0:
        with gzip.open(data_paths(config)["train", "images"][1]) if data_paths(config)["train", "images"][1].endswith(".gz") \
                else open(data_paths(config)["train", "images"][1], "rb") as f:
            n = struct.unpack(">I", f.read(8)[4:8])[0]
    test = int(float(data.get("test_split", 0) or 0) * n)
    val = int(float(data.get("val_split", 0) or 0) * (n - test))
    print(n - test - val)


def json_lines(path):
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    yield json.loads(line)
                except ValueError:
                    pass


def train_rate(path):
    samples = seconds = 0.0
    for d in json_lines(path):
        if "epoch" in d and d.get("samples_per_s") and d.get("seconds"):
            samples += d["samples_per_s"] * d["seconds"]
            seconds += d["seconds"]
    if seconds > 0:
        print(f"{samples / seconds:.0f}")


def field(path, key):
    value = None
    for d in json_lines(path):
        if key in d:
            value = d[key]
    if value is not None:
        print(value)


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    what, rest = args[0], args[1:]
    if what == "measure":
        sys.exit(measure(rest[0], rest[1:]))
    if what == "idx":
        head = copies = None
        src, dst = rest[0], rest[1]
        opts = rest[2:]
        while opts:
            if opts[0] == "--head":
                head = int(opts[1])
            elif opts[0] == "--copies":
                copies = int(opts[1])
            else:
                sys.exit(f"bench: idx: unknown option {opts[0]}")
            opts = opts[2:]
        idx(src, dst, head or 0, copies or 1)
    elif what == "paths":
        p = data_paths(rest[0])
        for key in (("train", "images"), ("train", "labels"), ("test", "images"), ("test", "labels")):
            print(p[key][1])
    elif what == "derive":
        derive(*rest[:4])
    elif what == "mlp":
        mlp(rest[0])
    elif what == "train-count":
        train_count(rest[0], int(rest[1]))
    elif what == "train-rate":
        train_rate(rest[0])
    elif what == "field":
        field(rest[0], rest[1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
