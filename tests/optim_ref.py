#!/usr/bin/python3
"""nnseq's optimisers against torch.optim's (1.13), parameter by parameter.

    /usr/bin/python3 tests/optim_ref.py TOOL [--steps N] [--verbose]

TOOL is tests/tools/optim_eval (built by make into build/tests/tools). For
every optimiser and each of its arguments (amsgrad, centered, momentum,
nesterov, dampening, maximize, weight_decay with and without a no_decay
mask, lr_decay, initial_accumulator_value, ...), and with the learning rate
and the momentum changed every step as a schedule does, it runs STEPS
(300) steps of optim_eval's fixed problem (described in optim_eval.c) in
one optim_eval process and the same with torch.optim in float32 (no_decay
as a second param group with weight_decay 0), and prints one line per
case, "ok KIND ARGS: worst ..." or "FAIL KIND ARGS: ...", with the largest
difference relative to max(|torch's parameter|, 1) (parameters start at
up to 2 in magnitude). It fails (exit 1) above TOLERANCE. Cases with
values torch refuses (ValueError) must be refused by nnseq, and the
boundary values torch accepts accepted. A last line per kind, starting
with two spaces, gives the kind's worst figure.
"""
import argparse
import math
import subprocess
import sys

import numpy as np
import torch

TOLERANCE = 1e-5
COUNT = 150
PULL = 0.3   # the gradient's parameter term; -PULL with maximize, so that the ascent converges
TORCH = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
         "adadelta": torch.optim.Adadelta, "adagrad": torch.optim.Adagrad, "rmsprop": torch.optim.RMSprop,
         "adamax": torch.optim.Adamax, "nadam": torch.optim.NAdam, "radam": torch.optim.RAdam}

BETAS = ({}, {"betas": (0.5, 0.9)}, {"betas": (0.0, 0.99)}, {"eps": 0.1}, {"weight_decay": 0.05})


def cases():
    """(kind, {arg: value}, no_decay, schedule) for every kind and argument."""
    out = []

    def add(kind, variants, decay_arg="weight_decay", decay=0.05):
        for args in variants:
            out.append((kind, dict(args), False, False))
        # Weight decay with a no_decay mask, and a schedule, on the first
        # variant (the defaults) and the last (the most options).
        for args in (variants[0], variants[-1]):
            with_decay = dict(args)
            with_decay.setdefault(decay_arg, decay)
            out.append((kind, with_decay, True, False))
            out.append((kind, dict(args), False, True))
            out.append((kind, with_decay, True, True))

    sgd = [{"lr": 0.05}, {"lr": 0.05, "weight_decay": 0.05}, {"lr": 0.05, "maximize": True},
           {"lr": 0.05, "momentum": 0.9}, {"lr": 0.05, "momentum": 0.9, "dampening": 0.3},
           {"lr": 0.05, "momentum": 0.9, "nesterov": True},
           {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.05, "maximize": True}]
    add("sgd", sgd)
    for kind in ("adam", "adamw"):
        variants = [{}] + [dict(v, lr=0.01) for v in BETAS] + [
            {"lr": 0.01, "amsgrad": True}, {"lr": 0.01, "maximize": True},
            {"lr": 0.01, "amsgrad": True, "maximize": True, "weight_decay": 0.1, "betas": (0.8, 0.95)}]
        add(kind, variants)
    add("adadelta", [{}, {"lr": 0.5}, {"rho": 0.5}, {"rho": 0.0}, {"rho": 1.0}, {"eps": 1e-3},
                     {"weight_decay": 0.05}, {"maximize": True},
                     {"lr": 0.5, "rho": 0.8, "eps": 1e-4, "weight_decay": 0.05, "maximize": True}])
    add("adagrad", [{}, {"lr": 0.05}, {"lr_decay": 0.01}, {"initial_accumulator_value": 0.5},
                    {"eps": 1e-3}, {"weight_decay": 0.05}, {"maximize": True},
                    {"lr": 0.05, "lr_decay": 0.02, "initial_accumulator_value": 0.1, "eps": 1e-6,
                     "weight_decay": 0.05, "maximize": True}])
    add("rmsprop", [{}, {"lr": 0.001}, {"alpha": 0.9}, {"eps": 1e-3}, {"weight_decay": 0.05},
                    {"momentum": 0.9}, {"centered": True}, {"centered": True, "momentum": 0.5},
                    {"maximize": True},
                    {"lr": 0.001, "alpha": 0.9, "eps": 1e-4, "weight_decay": 0.05, "momentum": 0.8,
                     "centered": True, "maximize": True}])
    add("adamax", [{}] + [dict(v, lr=0.01) for v in BETAS] + [
        {"maximize": True}, {"lr": 0.01, "betas": (0.8, 0.95), "weight_decay": 0.1, "maximize": True}])
    add("nadam", [{}] + [dict(v, lr=0.01) for v in BETAS] + [
        {"momentum_decay": 0.0}, {"momentum_decay": 0.1},
        {"lr": 0.01, "betas": (0.8, 0.95), "weight_decay": 0.1, "momentum_decay": 0.01}])
    add("radam", [{}] + [dict(v, lr=0.01) for v in BETAS] + [
        {"betas": (0.9, 0.5)}, {"lr": 0.01, "betas": (0.8, 0.95), "weight_decay": 0.1, "eps": 1e-4}])
    return out


# Values torch refuses (nnseq must too) and boundary values it accepts.
REFUSED = [("sgd", {"lr": -0.1}), ("sgd", {"lr": 0.1, "momentum": -0.5}), ("sgd", {"lr": 0.1, "weight_decay": -1}),
           ("sgd", {"lr": 0.1, "nesterov": True}), ("sgd", {"lr": 0.1, "nesterov": True, "momentum": 0.9,
                                                            "dampening": 0.1}),
           ("adam", {"lr": -1}), ("adam", {"eps": -1}), ("adam", {"betas": (1.0, 0.9)}),
           ("adamw", {"betas": (0.9, 1.0)}), ("adamw", {"weight_decay": -0.1}),
           ("adadelta", {"lr": -1}), ("adadelta", {"rho": 1.5}), ("adadelta", {"rho": -0.1}),
           ("adadelta", {"eps": -1}), ("adadelta", {"weight_decay": -1}),
           ("adagrad", {"lr": -1}), ("adagrad", {"lr_decay": -1}), ("adagrad", {"weight_decay": -1}),
           ("adagrad", {"initial_accumulator_value": -1}), ("adagrad", {"eps": -1}),
           ("rmsprop", {"lr": -1}), ("rmsprop", {"alpha": -0.1}), ("rmsprop", {"eps": -1}),
           ("rmsprop", {"momentum": -1}), ("rmsprop", {"weight_decay": -1}),
           ("adamax", {"lr": -1}), ("adamax", {"betas": (-0.1, 0.9)}), ("adamax", {"eps": -1}),
           ("adamax", {"weight_decay": -1}),
           ("nadam", {"lr": -1}), ("nadam", {"betas": (0.9, 1.5)}), ("nadam", {"momentum_decay": -1}),
           ("nadam", {"weight_decay": -1}), ("nadam", {"eps": -1}),
           ("radam", {"lr": -1}), ("radam", {"betas": (1.0, 0.9)}), ("radam", {"eps": -1}),
           ("radam", {"weight_decay": -1})]
ACCEPTED = [("sgd", {"lr": 0.0}), ("adam", {"lr": 0.0, "betas": (0.0, 0.0), "eps": 0.0}),
            ("adadelta", {"rho": 1.0}), ("adadelta", {"rho": 0.0}), ("rmsprop", {"alpha": 0.0}),
            ("rmsprop", {"alpha": 2.0}), ("nadam", {"momentum_decay": 0.0}), ("adagrad", {"eps": 0.0})]


def value_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(repr(float(v)) for v in value)
    return repr(float(value))


def line(kind, args, no_decay, schedule, steps):
    words = [kind, str(steps), str(COUNT)] + [f"{k}={value_text(v)}" for k, v in args.items()]
    if no_decay:
        words.append("no_decay")
    if schedule:
        words.append("schedule")
    if args.get("maximize"):
        words.append(f"pull={-PULL!r}")
    return " ".join(words)


def problem():
    index = np.arange(COUNT)
    start = np.array([2 * math.sin(1.3 * i + 0.4) for i in index]).astype(np.float32)
    mask = (index % 5 == 2) | ((index >= 40) & (index < 60))
    return start, mask


def gradient(params, t, pull):
    """optim_eval's gradient, in float32 as it computes it."""
    wave = np.array([math.cos(0.7 * i + 1.1 * t) * (1 + 0.01 * t) for i in range(COUNT)]).astype(np.float32)
    g = params * pull + torch.from_numpy(wave)
    if t % 3 == 0:
        g[torch.arange(COUNT) % 7 == 0] = 0
    return g


def run_torch(kind, args, no_decay, schedule, steps):
    start, mask = problem()
    full = torch.from_numpy(start.copy())
    groups_index = [np.flatnonzero(~mask), np.flatnonzero(mask)] if no_decay else [np.arange(COUNT)]
    tensors = [full[torch.from_numpy(ix)].clone().requires_grad_(True) for ix in groups_index]
    groups = [{"params": [tensors[0]]}]
    if no_decay:
        groups.append({"params": [tensors[1]], "weight_decay": 0.0})
    optimizer = TORCH[kind](groups, **args)
    base_lr = optimizer.param_groups[0]["lr"]
    group0 = optimizer.param_groups[0]
    base_momentum = group0["betas"][0] if "betas" in group0 else group0.get("momentum")
    for t in range(steps):
        with torch.no_grad():
            for tensor, ix in zip(tensors, groups_index):
                full[torch.from_numpy(ix)] = tensor.detach()
            g = gradient(full, t, -PULL if args.get("maximize") else PULL)
            for tensor, ix in zip(tensors, groups_index):
                tensor.grad = g[torch.from_numpy(ix)].clone()
        if schedule:
            for group in optimizer.param_groups:
                group["lr"] = base_lr * (1 + 0.5 * math.sin(0.05 * t))
                if base_momentum is not None:
                    m = base_momentum * (1 - 0.05 * (1 + math.sin(0.03 * t)))
                    if "betas" in group:
                        group["betas"] = (m, group["betas"][1])
                    else:
                        group["momentum"] = m
        optimizer.step()
    with torch.no_grad():
        for tensor, ix in zip(tensors, groups_index):
            full[torch.from_numpy(ix)] = tensor.detach()
    return full.numpy().astype(np.float64)


def describe(kind, args, no_decay, schedule):
    text = ", ".join(f"{k}={v}" for k, v in args.items()) or "defaults"
    return f"{kind}({text}){' no_decay' if no_decay else ''}{' schedule' if schedule else ''}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("tool")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--verbose", action="store_true")
    options = parser.parse_args()
    torch.set_num_threads(1)
    runs = cases()
    checks = [(kind, args, False, False, "refused") for kind, args in REFUSED]
    checks += [(kind, args, False, False, "accepted") for kind, args in ACCEPTED]
    lines = [line(k, a, n, s, options.steps) for k, a, n, s in runs]
    lines += [line(k, a, n, s, 1) for k, a, n, s, _ in checks]
    result = subprocess.run([options.tool], input="\n".join(lines) + "\n", capture_output=True, text=True)
    if result.returncode != 0:
        print(f"FAIL optim_eval exited with {result.returncode}: {result.stderr.strip()}")
        return 1
    outputs = result.stdout.splitlines()
    if len(outputs) != len(lines):
        print(f"FAIL optim_eval printed {len(outputs)} lines for {len(lines)} cases")
        return 1
    failed = 0
    worst = {}
    for (kind, args, no_decay, schedule), output in zip(runs, outputs):
        name = describe(kind, args, no_decay, schedule)
        if not output.startswith("ok "):
            print(f"FAIL {name}: nnseq refused it: {output}")
            failed += 1
            continue
        ours = np.array([float(v) for v in output.split()[1:]])
        theirs = run_torch(kind, args, no_decay, schedule, options.steps)
        error = np.abs(ours - theirs) / np.maximum(np.abs(theirs), 1)
        at = int(np.argmax(error))
        figure = f"worst {error[at]:.2e} at parameter {at} (nnseq {ours[at]:.9g}, torch {theirs[at]:.9g})"
        if kind not in worst or error[at] > worst[kind][0]:
            worst[kind] = (error[at], name)
        if not error[at] <= TOLERANCE:
            print(f"FAIL {name}: {figure}")
            failed += 1
        else:
            print(f"ok {name}: {figure}")
    for (kind, args, _, _, expect), output in zip(checks, outputs[len(runs):]):
        name = describe(kind, args, False, False)
        try:
            TORCH[kind]([torch.zeros(1, requires_grad=True)], **args)
            torch_refuses = None
        except ValueError as e:
            torch_refuses = str(e)
        nnseq_refuses = output[len("error "):] if output.startswith("error ") else None
        if (torch_refuses is None) != (expect == "accepted") or (nnseq_refuses is None) != (expect == "accepted"):
            print(f"FAIL {name}: expected {expect}; torch: {torch_refuses or 'accepted'}; "
                  f"nnseq: {nnseq_refuses or 'accepted'}")
            failed += 1
        else:
            print(f"ok {name} {expect}: torch: {torch_refuses or 'accepted'}; nnseq: {nnseq_refuses or 'accepted'}")
    for kind, (figure, name) in worst.items():
        print(f"  worst for {kind}: {figure:.2e} ({name})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
