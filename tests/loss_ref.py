#!/usr/bin/python3
"""nnseq's losses against PyTorch's, value and gradient.

    /usr/bin/python3 tests/loss_ref.py TOOL [--seed N] [--repeat N] [--verbose]

TOOL is tests/tools/loss_eval (built by make into build/tests/tools). Draws
a few hundred seeded cases covering every loss and every argument nnseq
gives it (class weights, ignore_index hitting some and all samples,
label_smoothing with and without weights, pos_weight scalar and vector,
beta 0 and > 0, delta, bce at p = 0 and 1, logits of +-1e4, outputs equal
to their targets), float32 inputs; runs them all through one loss_eval
process; computes torch.nn's loss (reduction='mean', the same arguments)
in float64 from the same float32 numbers, and its gradient with autograd;
and prints, per loss, "ok LOSS: ..." or "FAIL LOSS: ..." with the worst
absolute and relative differences (relative to max(1, |torch's value|)).
It fails (exit 1) when one exceeds 1e-6. A few cases with arguments torch
refuses (label_smoothing 1.5, beta -1, delta 0, a weight of the wrong
length) must be refused by nnseq too, and label_smoothing -0.25, which
torch 1.13 accepts, by nnseq alone.

Where nnseq differs from torch 1.13 on purpose (lib/losses/loss.h), the
expected figures are nnseq's and a line says what torch gave:
- nothing counted (every label ignored, or only zero-weight classes):
  torch's 0/0 is NaN, nnseq's loss and gradient are 0;
- smooth_l1 with beta = 0 is l1: where output == target, torch's
  SmoothL1Loss has gradient -1/N, its L1Loss (and nnseq) 0.

Lines starting with two spaces are notes; tests/cli_loss_torch_test.sh
counts the ok/FAIL lines.
"""
import argparse
import subprocess
import sys

import numpy as np
import torch

TOLERANCE = 1e-6
ALIASES = {"cross_entropy": "CrossEntropyLoss", "nll": "NLLLoss", "bce": "BCELoss",
           "bce_with_logits": "BCEWithLogitsLoss", "mse": "MSELoss", "l1": "L1Loss",
           "smooth_l1": "SmoothL1Loss", "huber": "HuberLoss"}
VECTOR_ARG = {"cross_entropy": "weight", "nll": "weight", "bce": "weight", "bce_with_logits": "pos_weight"}
CLASS_LOSSES = ("cross_entropy", "nll")


class Case:
    def __init__(self, name, output, target, args=None, vector=None, refused=False, what=""):
        self.name = name
        self.output = np.ascontiguousarray(output, np.float32)
        self.target = np.ascontiguousarray(target, np.int32 if name in CLASS_LOSSES else np.float32)
        self.args = args or {}
        self.vector = None if vector is None else np.ascontiguousarray(vector, np.float32)
        self.refused = refused   # "both": torch refuses it and nnseq must; "nnseq": only nnseq does
        self.what = what

    def text(self, index):
        """The case in loss_eval's format; odd cases name the loss by torch's class name."""
        batch, outputs = self.output.shape
        words = ["loss", ALIASES[self.name] if index % 2 else self.name, str(batch), str(outputs)]
        words += [f"{key}={value!r}" for key, value in self.args.items()]
        if self.vector is not None:
            words += ["vector", str(len(self.vector))] + ["%.9g" % v for v in self.vector]
        words += ["output"] + ["%.9g" % v for v in self.output.ravel()]
        words += ["target"] + ([str(int(v)) for v in self.target.ravel()] if self.name in CLASS_LOSSES
                               else ["%.9g" % v for v in self.target.ravel()])
        return " ".join(words)


# --- the cases ----------------------------------------------------------------

def logits(rng, batch, classes, huge):
    x = rng.normal(0, 2, (batch, classes))
    if huge:
        mask = rng.random((batch, classes)) < 0.3
        x[mask] = rng.choice([-1e4, 1e4], int(mask.sum()))
    return x.astype(np.float32)


def class_weights(rng, classes):
    w = rng.uniform(0.1, 3, classes)
    if classes >= 3 and rng.random() < 0.5:
        w[rng.integers(classes)] = 0   # a class that weighs nothing
    return w


def class_cases(rng, name, repeat):
    cases = []
    smoothings = [None, 0.0, "random", 1.0] if name == "cross_entropy" else [None]
    for _ in range(repeat):
        for weighted in (False, True):
            for ignore in ("none", "-100 some", "class some", "all"):
                for smoothing in smoothings:
                    for huge in ((False, True) if name == "cross_entropy" else (False,)):
                        batch, classes = int(rng.integers(1, 17)), int(rng.integers(2, 13))
                        x = logits(rng, batch, classes, huge)
                        if name == "nll":   # log-probabilities, as after LogSoftmax
                            x = torch.log_softmax(torch.from_numpy(x).double(), 1).numpy().astype(np.float32)
                        labels = rng.integers(0, classes, batch)
                        args = {}
                        if ignore == "-100 some":
                            labels[1::3] = -100
                        elif ignore == "class some":
                            args["ignore_index"] = int(rng.integers(0, classes))
                            labels[::3] = args["ignore_index"]
                        elif ignore == "all":
                            args["ignore_index"] = int(rng.choice([-100, 0, classes - 1, 7]))
                            labels[:] = args["ignore_index"]
                        if smoothing is not None:
                            args["label_smoothing"] = round(float(rng.uniform(0.01, 0.99)), 3) \
                                if smoothing == "random" else smoothing
                        vector = class_weights(rng, classes) if weighted else None
                        what = f"weight {weighted}, ignore {ignore}, smoothing {smoothing}, huge {huge}"
                        cases.append(Case(name, x, labels, args, vector, what=what))
    return cases


def bce_cases(rng, repeat):
    cases = []
    for _ in range(repeat * 2):
        for weighted in (False, True):
            for edges in ("plain", "clamp", "tiny"):
                batch, outputs = int(rng.integers(1, 17)), int(rng.integers(1, 13))
                p = rng.uniform(0, 1, (batch, outputs))
                y = rng.uniform(0, 1, (batch, outputs))
                y[rng.random(y.shape) < 0.3] = 0
                y[rng.random(y.shape) < 0.3] = 1
                if edges == "clamp":   # log(0) clamped at -100
                    p[rng.random(p.shape) < 0.25] = 0
                    p[rng.random(p.shape) < 0.25] = 1
                elif edges == "tiny":   # p (1 - p) under torch's 1e-12
                    p[rng.random(p.shape) < 0.3] = 1e-30
                    p[rng.random(p.shape) < 0.2] = 1 - 2 ** -24
                vector = rng.uniform(0, 3, outputs) if weighted else None
                cases.append(Case("bce", p, y, vector=vector, what=f"weight {weighted}, {edges}"))
    return cases


def bce_with_logits_cases(rng, repeat):
    cases = []
    for _ in range(repeat * 2):
        for pos_weight in ("none", "scalar", "vector"):
            for huge in (False, True):
                batch, outputs = int(rng.integers(1, 17)), int(rng.integers(1, 13))
                x = logits(rng, batch, outputs, huge)
                if huge:
                    x[rng.random(x.shape) < 0.2] = rng.choice([-50, 50, -20, 20])
                y = rng.uniform(0, 1, (batch, outputs))
                y[rng.random(y.shape) < 0.3] = 0
                y[rng.random(y.shape) < 0.3] = 1
                vector = {"none": None, "scalar": rng.uniform(0.1, 5, 1),
                          "vector": rng.uniform(0, 5, outputs)}[pos_weight]
                cases.append(Case("bce_with_logits", x, y, vector=vector, what=f"pos_weight {pos_weight}, huge {huge}"))
    return cases


def value_cases(rng, name, parameters, repeat):
    """mse, l1, smooth_l1, huber: some targets equal the output, some at
    |difference| = beta or delta exactly, some far off."""
    cases = []
    for _ in range(repeat * 2):
        for parameter in parameters:
            batch, outputs = int(rng.integers(1, 17)), int(rng.integers(1, 13))
            scale = float(rng.choice([0.3, 1, 3, 100]))
            x = (rng.normal(0, scale, (batch, outputs))).astype(np.float32)
            y = (rng.normal(0, scale, (batch, outputs))).astype(np.float32)
            same = rng.random(x.shape) < 0.2
            y[same] = x[same]
            args = {}
            if parameter is not None:
                key = "beta" if name == "smooth_l1" else "delta"
                args[key] = round(float(rng.uniform(0.05, 3)), 3) if parameter == "random" else parameter
                kink = rng.random(x.shape) < 0.15
                y[kink] = x[kink] - np.float32(args[key]) * rng.choice([-1, 1], int(kink.sum()))
            cases.append(Case(name, x, y, args, what=f"{args}, scale {scale}"))
    return cases


def refused_cases(rng):
    """Arguments torch refuses, which nnseq must refuse too."""
    x, labels = logits(rng, 4, 3, False), np.array([0, 1, 2, 1])
    v = rng.normal(0, 1, (3, 5)).astype(np.float32)
    p, y = rng.uniform(0, 1, (3, 5)), rng.uniform(0, 1, (3, 5))
    cases = [
        Case("cross_entropy", x, labels, {"label_smoothing": 1.5}),
        Case("cross_entropy", x, labels, vector=[1, 2]),
        Case("cross_entropy", x, labels, vector=[1, 2, 3, 4]),
        Case("nll", x, labels, vector=[1, 2]),
        Case("bce", p, y, vector=[1, 2, 3]),
        Case("bce_with_logits", v, y, vector=[1, 2, 3]),
        Case("smooth_l1", v, v * 0.5, {"beta": -1.0}),
        Case("huber", v, v * 0.5, {"delta": 0.0}),
        Case("huber", v, v * 0.5, {"delta": -2.0}),
    ]
    for case in cases:
        case.refused, case.what = "both", f"refused: {case.args or 'vector of ' + str(len(case.vector))}"
    # torch 1.13 checks only label_smoothing <= 1 (though its message says
    # "between 0.0 and 1.0"); nnseq holds to the range the message gives.
    negative = Case("cross_entropy", x, labels, {"label_smoothing": -0.25}, refused="nnseq")
    negative.what = "refused by nnseq only: {'label_smoothing': -0.25}"
    return cases + [negative]


def all_cases(seed, repeat):
    rng = np.random.default_rng(seed)
    cases = class_cases(rng, "cross_entropy", repeat) + class_cases(rng, "nll", repeat * 3)
    cases += bce_cases(rng, repeat) + bce_with_logits_cases(rng, repeat)
    cases += value_cases(rng, "mse", [None] * 4, repeat) + value_cases(rng, "l1", [None] * 4, repeat)
    cases += value_cases(rng, "smooth_l1", [None, 0.0, 0.5, 1.0, 2.5, "random"], repeat)
    cases += value_cases(rng, "huber", [None, 0.3, 1.0, 2.0, "random"], repeat)
    return cases + refused_cases(rng)


# --- torch's side -------------------------------------------------------------

def module_of(case, name=None):
    kwargs = dict(case.args)
    if case.vector is not None:
        kwargs[VECTOR_ARG[case.name]] = torch.from_numpy(case.vector.astype(np.float64))
    return getattr(torch.nn, ALIASES[name or case.name])(**kwargs)


def torch_value_and_grad(case, name=None, args=None):
    """torch's loss and d loss / d output, float64 from the float32 inputs."""
    if args is not None:
        case = Case(case.name, case.output, case.target, args, case.vector)
    x = torch.from_numpy(case.output.astype(np.float64)).requires_grad_()
    if case.name in CLASS_LOSSES:
        target = torch.from_numpy(case.target.astype(np.int64))
    else:
        target = torch.from_numpy(case.target.astype(np.float64))
    loss = module_of(case, name)(x, target)
    loss.backward()
    return loss.item(), x.grad.numpy().ravel()


def nothing_counted(case):
    if case.name not in CLASS_LOSSES:
        return False
    ignore = case.args.get("ignore_index", -100)
    kept = case.target[case.target != ignore]
    weights = case.vector[kept] if case.vector is not None else np.ones(len(kept))
    return weights.sum() == 0


def expected(case, notes):
    """What nnseq should give: torch's, but for the divergences above."""
    if nothing_counted(case):
        value, _ = torch_value_and_grad(case)
        notes.setdefault(case.name + " nothing counted", [0, value])[0] += 1
        return 0.0, np.zeros(case.output.size)
    value, grad = torch_value_and_grad(case)
    if case.name == "smooth_l1" and case.args.get("beta", 1.0) == 0:
        l1_value, l1_grad = torch_value_and_grad(case, "l1", {})
        zero = (case.output.astype(np.float64) - case.target).ravel() == 0
        differ = grad != l1_grad
        if abs(l1_value - value) > 1e-12 * max(1, abs(value)) or (differ & ~zero).any():
            raise AssertionError(f"torch's SmoothL1Loss(beta=0) differs from L1Loss beyond zero differences: "
                                 f"{case.what}")
        entry = notes.setdefault("smooth_l1 beta 0", [0, 0])
        entry[0] += int(differ.sum())
        entry[1] = float(np.abs(grad[differ]).max()) if differ.any() else entry[1]
        grad = l1_grad
    return value, grad


def torch_refuses(case):
    try:
        torch_value_and_grad(case)
    except (RuntimeError, ValueError) as e:
        return str(e).splitlines()[0]
    return None


# --- the comparison -----------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tool", help="tests/tools/loss_eval, built")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3, help="scales the number of cases")
    parser.add_argument("--verbose", action="store_true", help="print every case's differences")
    options = parser.parse_args()
    torch.set_num_threads(1)

    cases = all_cases(options.seed, options.repeat)
    text = "\n".join(case.text(i) for i, case in enumerate(cases)) + "\n"
    run = subprocess.run([options.tool], input=text, capture_output=True, text=True)
    lines = run.stdout.splitlines()
    if run.returncode != 0 or len(lines) != len(cases):
        print(f"FAIL loss_eval: exit {run.returncode}, {len(lines)} lines for {len(cases)} cases: "
              f"{run.stderr.strip()[:300]}")
        return 1

    per_loss, notes = {}, {}
    for index, (case, line) in enumerate(zip(cases, lines)):
        stats = per_loss.setdefault(case.name, {"cases": 0, "refused": 0, "value": (0, 0), "grad": (0, 0),
                                                "problems": []})
        stats["cases"] += 1
        where = f"case {index} ({case.what})"
        if case.refused:
            stats["refused"] += 1
            why = torch_refuses(case)
            if (why is None) != (case.refused == "nnseq"):
                stats["problems"].append(f"{where}: torch {'accepts' if why is None else 'refuses'} it (a test bug)")
            elif not line.startswith("error "):
                stats["problems"].append(f"{where}: nnseq gives {line[:80]}")
            elif case.refused == "nnseq":
                notes[case.what] = None
            continue
        if not line.startswith("ok "):
            stats["problems"].append(f"{where}: {line[:200]}")
            continue
        numbers = np.array([float(word) for word in line.split()[1:]])
        want_value, want_grad = expected(case, notes)
        got_value, got_grad = numbers[0], numbers[1:]
        if len(got_grad) != case.output.size:
            stats["problems"].append(f"{where}: {len(got_grad)} gradients for {case.output.size} outputs")
            continue
        for key, got, want in (("value", np.array([got_value]), np.array([want_value])), ("grad", got_grad, want_grad)):
            diff = np.abs(got - want)
            diff[np.isnan(diff)] = np.inf
            relative = diff / np.maximum(1, np.abs(want))
            worst = int(relative.argmax())
            if options.verbose:
                print(f"  {case.name} {where} {key}: max abs {diff.max():.3g}, rel {relative.max():.3g}")
            stats[key] = (max(stats[key][0], float(diff.max())), max(stats[key][1], float(relative[worst])))
            if relative[worst] > TOLERANCE:
                stats["problems"].append(f"{where} {key}[{worst}]: nnseq {got[worst]:.9g}, torch {want[worst]:.9g}")

    failed = False
    for name in ALIASES:
        stats = per_loss.get(name)
        if not stats:
            print(f"FAIL {name}: no cases")
            failed = True
            continue
        summary = (f"{stats['cases']} cases ({stats['refused']} refused); worst loss difference "
                   f"{stats['value'][0]:.2e} abs, {stats['value'][1]:.2e} rel; worst gradient difference "
                   f"{stats['grad'][0]:.2e} abs, {stats['grad'][1]:.2e} rel")
        if stats["problems"]:
            failed = True
            print(f"FAIL {name}: {len(stats['problems'])} problems; {summary}; first: {stats['problems'][0]}")
        else:
            print(f"ok {name}: {summary}")
    for key, note in notes.items():
        if note is None:
            print(f"  {key}: torch 1.13 accepts it")
            continue
        count, value = note
        if key == "smooth_l1 beta 0":
            print(f"  smooth_l1 beta 0: at {count} outputs equal to their targets torch's SmoothL1Loss has gradient "
                  f"+-{value:.3g} (-1/N), its L1Loss and nnseq 0")
        else:
            print(f"  {key}: {count} cases where torch gives {value} and nnseq 0")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
