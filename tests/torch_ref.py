#!/usr/bin/python3
"""nnseq's PyTorch reference: the model of an nnseq config, trained by torch.

Reads the config `nnseq train` reads (docs/config.md), builds the same
nn.Sequential and trains and evaluates it the way nnseq does, printing JSON
lines with nnseq's `--format json` field names:

    {"epoch": 1, "epochs": 1, "lr": 0.001, "train_loss": 0.46, ..., "samples_per_s": 19354}
    {"final": true, "test_loss": 0.42, "test_accuracy": 0.85, "test_samples": 10000, ...}

    /usr/bin/python3 tests/torch_ref.py CONFIG [--print] [--epochs N] [--seed N]
        [--threads T] [--init NPZ] [--save NPZ] [--train-limit N]

Needs Debian's python3-torch, python3-numpy and python3-yaml. As in nnseq:
relative paths resolve against the config's folder; pixels are byte / 255,
then (x - mean) / std, in float32; the last floor(val_split * N) training
samples are held out for validation (never trained on); the learning rate is
set once per epoch. What cannot match nnseq bit for bit: the initial weights
(torch's, from torch.manual_seed(seed), unless --init), the shuffling order
and Dropout's masks (torch's generators). --train-limit N trains on the first
N samples of what the validation split leaves. Weights are .npz files keyed
by state_dict names, as `nnseq export` writes and `nnseq train --init` reads.

As a module (tests/cli_torch_test.sh): build(layers, input_shape),
read_idx(path), load_config(path), main().
"""
import argparse
import gzip
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml

DEFAULT_INPUT_SHAPE = (1, 28, 28)  # what `nnseq print` assumes without data


def read_idx(path):
    """An unsigned-byte IDX file (raw or .gz) as a uint8 array of its dims."""
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        raw = f.read()
    zero, kind, rank = struct.unpack(">HBB", raw[:4])
    if zero != 0 or kind != 0x08:
        sys.exit(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(f">{rank}I", raw[4:4 + 4 * rank])
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * rank).reshape(dims)


def load_config(path):
    with open(path) as f:
        return yaml.safe_load(f) or {}


def layer_name_and_args(item):
    """`Name`, `{Name: null}` or `{Name: {args}}` -> (name, args)."""
    if isinstance(item, str):
        return item, {}
    if isinstance(item, dict) and len(item) == 1:
        (name, args), = item.items()
        return name, dict(args or {})
    sys.exit(f"a layer is a name or {{name: {{arguments}}}}, not {item!r}")


def build(layers, input_shape):
    """The nn.Sequential of a layer list, in_features, in_channels and
    num_features inferred from the shape coming in when left out."""
    modules, shape = [], tuple(input_shape)
    for item in layers:
        name, args = layer_name_and_args(item)
        if name == "Linear":
            args.setdefault("in_features", shape[-1])
        elif name == "Conv2d":
            args.setdefault("in_channels", shape[0])
        elif name in ("BatchNorm1d", "BatchNorm2d"):
            args.setdefault("num_features", shape[0])
        elif name in ("Softmax", "LogSoftmax"):
            args.setdefault("dim", 1)
        for key in ("kernel_size", "stride", "padding"):
            if isinstance(args.get(key), list):
                args[key] = tuple(args[key])
        module = getattr(nn, name)(**args)
        with torch.no_grad():
            shape = tuple(module.eval()(torch.zeros((2,) + shape)).shape[1:])
        modules.append(module)
    return nn.Sequential(*modules)


class Data:
    """A split's model inputs (float32, N x shape) and labels (int64)."""

    def __init__(self, images, labels, normalize, shape):
        x = read_idx(images).astype(np.float32) / np.float32(255)
        if normalize is not None:
            mean = np.float32(normalize.get("mean", 0.0))
            std = np.float32(normalize.get("std", 1.0))
            x = (x - mean) / std
        self.x = torch.from_numpy(np.ascontiguousarray(x.reshape((len(x),) + shape)))
        self.y = torch.from_numpy(read_idx(labels).astype(np.int64))

    def part(self, start, stop):
        part = object.__new__(Data)
        part.x, part.y = self.x[start:stop], self.y[start:stop]
        return part


def make_loss(name, classes):
    if name == "cross_entropy":
        return nn.CrossEntropyLoss()
    if name == "nll":
        return nn.NLLLoss()
    if name == "mse":
        mse = nn.MSELoss()
        return lambda output, y: mse(output, F.one_hot(y, classes).to(output.dtype))
    sys.exit(f"unknown loss {name!r}")


def make_optimizer(spec, parameters):
    args = dict(spec or {})
    name = str(args.pop("name", "sgd")).lower()
    if "betas" in args:
        args["betas"] = tuple(args["betas"])
    if name == "sgd":
        args.setdefault("lr", 0.001)  # torch.optim.SGD has no default; nnseq's
    classes = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    if name not in classes:
        sys.exit(f"unknown optimizer {name!r}")
    return classes[name](parameters, **args)


def make_scheduler(spec, optimizer):
    if not spec:
        return None
    args = dict(spec)
    name = args.pop("name")
    classes = {"step": torch.optim.lr_scheduler.StepLR, "multistep": torch.optim.lr_scheduler.MultiStepLR,
               "cosine": torch.optim.lr_scheduler.CosineAnnealingLR}
    if name not in classes:
        sys.exit(f"unknown scheduler {name!r}")
    return classes[name](optimizer, **args)


def evaluate(model, loss_fn, data, batch_size=1000):
    """(mean loss, accuracy) over a split, in eval mode."""
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(data.y), batch_size):
            x, y = data.x[i:i + batch_size], data.y[i:i + batch_size]
            output = model(x)
            loss_sum += loss_fn(output, y).item() * len(y)
            correct += (output.argmax(1) == y).sum().item()
    return loss_sum / len(data.y), correct / len(data.y)


def train_epoch(model, loss_fn, optimizer, data, batch_size, shuffle, generator):
    """One pass over the training split: (mean loss, accuracy, seconds)."""
    model.train()
    n = len(data.y)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    loss_sum, correct, start = 0.0, 0, time.perf_counter()
    for i in range(0, n, batch_size):
        batch = order[i:i + batch_size]
        x, y = data.x[batch], data.y[batch]
        optimizer.zero_grad(set_to_none=True)
        output = model(x)
        loss = loss_fn(output, y)
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * len(batch)
        correct += (output.argmax(1) == y).sum().item()
    return loss_sum / n, correct / n, time.perf_counter() - start


def save_npz(model, path):
    np.savez(path, **{k: v.detach().numpy() for k, v in model.state_dict().items()})


def load_npz(model, path):
    with np.load(path) as weights:
        model.load_state_dict({k: torch.from_numpy(np.array(weights[k])) for k in weights.files})


def report(**fields):
    print(json.dumps({k: round(v, 7) if isinstance(v, float) else v for k, v in fields.items()}), flush=True)


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
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    cfg = load_config(args.config)
    folder = os.path.dirname(os.path.abspath(args.config))
    resolve = lambda p: p if os.path.isabs(p) else os.path.join(folder, p)  # noqa: E731
    data = cfg.get("data") or {}
    model_cfg = cfg["model"]
    train_files = data.get("train")
    shape = model_cfg.get("input_shape")
    if shape is None and train_files and os.path.exists(resolve(train_files["images"])):
        dims = read_idx(resolve(train_files["images"])).shape[1:]
        shape = (1,) + dims if len(dims) == 2 else dims
    shape = tuple(shape or DEFAULT_INPUT_SHAPE)
    seed = int(args.seed if args.seed is not None else cfg.get("seed", 0))
    torch.manual_seed(seed)
    model = build(model_cfg["layers"], shape)
    if args.print:
        print(model)
        return
    init = args.init or (cfg.get("init") and resolve(cfg["init"]))
    if init:
        load_npz(model, init)

    normalize = data.get("normalize")
    everything = Data(resolve(train_files["images"]), resolve(train_files["labels"]), normalize, shape)
    held_out = math.floor(float(data.get("val_split", 0)) * len(everything.y))
    train = everything.part(0, len(everything.y) - held_out)
    val = everything.part(len(everything.y) - held_out, len(everything.y)) if held_out else None
    if args.train_limit:
        train = train.part(0, args.train_limit)

    with torch.no_grad():
        classes = model.eval()(train.x[:2]).shape[1]
    loss_fn = make_loss(cfg.get("loss", "cross_entropy"), classes)
    optimizer = make_optimizer(cfg.get("optimizer"), model.parameters())
    scheduler = make_scheduler(cfg.get("scheduler"), optimizer)
    run = cfg.get("train") or {}
    epochs = args.epochs or int(run.get("epochs", 1))
    batch_size, shuffle = int(run.get("batch_size", 64)), bool(run.get("shuffle", True))
    early_stop = run.get("early_stop")
    patience = int((early_stop or {}).get("patience", 5))
    min_delta = float((early_stop or {}).get("min_delta", 0))
    generator = torch.Generator().manual_seed(seed)
    best, bad_epochs = math.inf, 0
    for epoch in range(1, epochs + 1):
        lr = optimizer.param_groups[0]["lr"]
        train_loss, train_accuracy, seconds = train_epoch(model, loss_fn, optimizer, train, batch_size, shuffle,
                                                          generator)
        fields = dict(epoch=epoch, epochs=epochs, lr=lr, train_loss=train_loss, train_accuracy=train_accuracy)
        if val is not None:
            fields["val_loss"], fields["val_accuracy"] = evaluate(model, loss_fn, val)
        report(**fields, seconds=round(seconds, 3), samples_per_s=round(len(train.y) / seconds))
        if scheduler:
            scheduler.step()
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
    test_files = data.get("test")
    if test_files:
        test = Data(resolve(test_files["images"]), resolve(test_files["labels"]), normalize, shape)
        final["test_loss"], final["test_accuracy"] = evaluate(model, loss_fn, test)
        final["test_samples"] = len(test.y)
    report(**final, threads=args.threads, torch=torch.__version__,
           params=sum(p.numel() for p in model.parameters()))


if __name__ == "__main__":
    main()
