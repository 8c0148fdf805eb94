#!/usr/bin/python3
"""nnseq's learning-rate schedules against torch.optim.lr_scheduler's.

    /usr/bin/python3 tests/sched_ref.py TOOL [--seed N] [--verbose]

TOOL is tests/tools/sched_eval (built by make into build/tests/tools). For
every schedule kind it draws cases covering each argument (each value with
the others at their defaults, then seeded random combinations), runs them
all through one sched_eval process, and runs torch 1.13's scheduler on an
SGD(momentum=0.9) optimiser in torch's usual loop: per-epoch schedules
stepped after each epoch, OneCycleLR after each optimiser step,
CosineAnnealingWarmRestarts after each optimiser step with the fractional
epoch of the next step (scheduler.step(epoch + (i + 1) / iters); torch's
docs step it with epoch + i / iters after batch i, which gives each batch
the rate of the one before), ReduceLROnPlateau with the case's metric after
each epoch. Every step's lr and momentum must agree within 1e-12 relative
(plus 1e-15 of the configured rate, for rates that cross 0); 500 steps or
epochs per case.

Where torch raises partway (OneCycleLR stepped past total_steps), nnseq
holds the rate and momentum of the last scheduled step: the expected
figures after that point are torch's last ones. Arguments torch refuses
(or divides by zero on) must be refused by nnseq's check; a few nnseq
refuses alone (a OneCycleLR in SequentialLR) are listed as such.

Prints one line per kind, "ok KIND: ..." or "FAIL KIND: ...", and one for
the refusals; lines starting with two spaces are notes.
tests/cli_sched_torch_test.sh counts the ok/FAIL lines. Exit 1 on a failure.
"""
import argparse
import contextlib
import io
import math
import random
import subprocess
import sys
import warnings

import torch

TOLERANCE = 1e-12
ABSOLUTE = 1e-15  # times the configured rate
PER_STEP = ("onecycle", "cosine_restarts")
CLASSES = {"step": "StepLR", "multistep": "MultiStepLR", "cosine": "CosineAnnealingLR",
           "exponential": "ExponentialLR", "linear": "LinearLR", "constant": "ConstantLR",
           "polynomial": "PolynomialLR", "onecycle": "OneCycleLR",
           "cosine_restarts": "CosineAnnealingWarmRestarts", "plateau": "ReduceLROnPlateau",
           "sequential": "SequentialLR"}
KINDS = list(CLASSES)


class Case:
    def __init__(self, kind, args, epochs, steps, lr=0.1, children=None, metrics=None, refused=None):
        self.kind = kind
        self.args = args
        self.epochs = epochs
        self.steps = steps
        self.lr = lr
        self.children = children or []   # [(kind, args)] for SequentialLR
        self.metrics = metrics
        self.refused = refused           # None, "both" (torch raises too) or "nnseq"

    def describe(self):
        text = f"{self.kind}({', '.join(f'{k}={v!r}' for k, v in self.args.items())})"
        if self.children:
            text += " of " + ", ".join(f"{k}({', '.join(f'{a}={v!r}' for a, v in args.items())})"
                                       for k, args in self.children)
        return f"{text} over {self.epochs}x{self.steps}"


def value_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(str(v) for v in value) + "]"
    return repr(value)


def spec_text(index, case):
    """The case in sched_eval's format; odd cases name kinds by torch's class name."""
    def schedule(kind, args):
        name = CLASSES[kind] if index % 2 else kind
        return " ".join([name] + [f"{k}={value_text(v)}" for k, v in args.items()])

    words = ["case", str(index), str(case.epochs), str(case.steps), repr(case.lr), "0.9",
             "sched", schedule(case.kind, case.args)]
    words += ["child " + schedule(kind, args) for kind, args in case.children]
    if case.metrics is not None:
        words += ["metrics"] + [repr(m) for m in case.metrics]
    return " ".join(words + ["end"])


def run_tool(tool, cases):
    text = "\n".join(spec_text(i, c) for i, c in enumerate(cases)) + "\n"
    done = subprocess.run([tool], input=text, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{tool} failed ({done.returncode}): {done.stderr.strip()}")
    results, current = [], None
    for line in done.stdout.splitlines():
        if line.startswith("case "):
            current = {"error": None, "rows": []}
            results.append(current)
        elif line.startswith("error "):
            current["error"] = line[6:]
        else:
            _, _, lr, momentum = line.split()
            current["rows"].append((float(lr), float(momentum)))
    if len(results) != len(cases):
        sys.exit(f"{tool} answered {len(results)} cases of {len(cases)}")
    return results


def make_torch(optimizer, case):
    cls = getattr(torch.optim.lr_scheduler, CLASSES[case.kind])
    args = dict(case.args)
    if case.kind == "sequential":
        children = [getattr(torch.optim.lr_scheduler, CLASSES[k])(optimizer, **a) for k, a in case.children]
        return cls(optimizer, children, **args)
    if case.kind == "onecycle" and args.get("total_steps") is None:
        # nnseq's default: the run's epochs and steps per epoch for those not given.
        args.pop("total_steps", None)
        if args.get("epochs") is None:
            args["epochs"] = case.epochs
        if args.get("steps_per_epoch") is None:
            args["steps_per_epoch"] = case.steps
    return cls(optimizer, **args)


def run_torch(case):
    """Every step's (lr, momentum) in torch's loop, and a note when torch raised partway."""
    param = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    optimizer = torch.optim.SGD([param], lr=case.lr, momentum=0.9)
    scheduler = make_torch(optimizer, case)
    group = optimizer.param_groups[0]
    rows, raised, exceeded, note = [], None, False, None
    for epoch in range(case.epochs):
        for i in range(case.steps):
            rows.append((group["lr"], group["momentum"]))
            optimizer.step()
            if raised is not None:
                continue
            try:
                if case.kind == "onecycle":
                    scheduler.step()
                elif case.kind == "cosine_restarts":
                    scheduler.step(epoch + (i + 1) / case.steps)
            except (ValueError, ZeroDivisionError) as error:
                raised = len(rows)
                exceeded = isinstance(error, ValueError)
                note = f"torch raised {type(error).__name__} ({str(error).split(' times')[0]} ...)"
        if case.kind == "plateau":
            scheduler.step(case.metrics[epoch])
        elif case.kind not in PER_STEP:
            scheduler.step()
    if exceeded:
        # torch stepped total_steps + 1 times before it raised, the last rate past the schedule's end;
        # after a ZeroDivisionError (pct_start 1) its rates stay at the last scheduled ones already.
        total = raised - 1
        rows = rows[:total] + [rows[total - 1]] * (len(rows) - total)
    return rows, note


def torch_refuses(case):
    try:
        run_torch(case)
    except (ValueError, ZeroDivisionError, TypeError) as error:
        return str(error)
    return None


def sweep(kind, values, epochs, steps, base=None, **extra):
    """One case per argument value with the others at their defaults."""
    base = base or {}
    cases = [Case(kind, dict(base), epochs, steps, **extra)]
    for name, choices in values.items():
        for choice in choices:
            cases.append(Case(kind, {**base, name: choice}, epochs, steps, **extra))
    return cases


def combinations(rng, kind, values, count, epochs, steps, base=None, **extra):
    cases = []
    for _ in range(count):
        args = dict(base or {})
        for name, choices in values.items():
            if rng.random() < 0.7:
                args[name] = rng.choice(choices)
        cases.append(Case(kind, args, epochs, steps, **extra))
    return cases


def plateau_metrics(rng, epochs):
    """A loss that falls, stalls and jitters, with exact repeats and ties."""
    loss, metrics = 2.0, []
    for epoch in range(epochs):
        phase = (epoch // 15) % 3
        if phase == 0:
            loss *= rng.uniform(0.9, 0.999)
        elif phase == 1:
            loss *= rng.choice([1.0, 1.0, rng.uniform(0.9999, 1.0001)])
        else:
            loss *= rng.uniform(0.995, 1.01)
        metrics.append(loss)
    return metrics


def build_cases(rng):
    cases = {kind: [] for kind in KINDS}
    long = (500, 1)
    cases["step"] = sweep("step", {"gamma": [0.5, 0.9, 1.5]}, *long, base={"step_size": 3}) + [
        Case("step", {"step_size": s, "gamma": g}, *long) for s in (1, 7, 30) for g in (0.1, 0.7)] + [
        Case("step", {"step_size": 2, "gamma": 0.5}, 30, 7)]
    cases["multistep"] = [Case("multistep", {"milestones": m, "gamma": g}, *long)
                          for m in ([], [1], [2, 5, 11], [3, 4, 19], [100, 200, 300, 450])
                          for g in (0.1, 0.3)] + [Case("multistep", {"milestones": [2, 4]}, 10, 5)]
    cases["cosine"] = [Case("cosine", {"T_max": t, "eta_min": e}, *long)
                       for t in (1, 2, 3, 7, 50, 250, 500) for e in (0, 0.001)] + [
        Case("cosine", {"T_max": 10}, 30, 4)]
    cases["exponential"] = [Case("exponential", {"gamma": g}, *long) for g in (0.99, 0.9, 0.5, 1.01, 1.0)] + [
        Case("exponential", {"gamma": 0.8}, 20, 3)]
    linear = {"start_factor": [0.1, 1.0, 0.001, 0.5], "end_factor": [0.5, 0.0, 0.9], "total_iters": [1, 10, 499, 600]}
    cases["linear"] = sweep("linear", linear, *long) + combinations(rng, "linear", linear, 20, *long)
    constant = {"factor": [0.5, 1.0, 0.001], "total_iters": [1, 100, 499, 700]}
    cases["constant"] = sweep("constant", constant, *long) + combinations(rng, "constant", constant, 10, *long)
    polynomial = {"total_iters": [1, 100, 499, 600], "power": [2.0, 0.5, 0.0, 3.7]}
    cases["polynomial"] = (sweep("polynomial", polynomial, *long)
                           + combinations(rng, "polynomial", polynomial, 12, *long))

    onecycle = {"pct_start": [0.25, 0.05, 0.5, 1.0, 0.0], "anneal_strategy": ["cos", "linear"],
                "cycle_momentum": [True, False], "base_momentum": [0.8], "max_momentum": [0.99],
                "div_factor": [10.0, 3.0], "final_div_factor": [100.0, 1.0], "three_phase": [True, False]}
    for epochs, steps in ((20, 25), (7, 13)):
        total = epochs * steps
        for extra in ({}, {"total_steps": total}, {"total_steps": total + 17}, {"total_steps": total - 40},
                      {"epochs": epochs, "steps_per_epoch": steps}, {"epochs": epochs - 2},
                      {"steps_per_epoch": steps + 3}, {"total_steps": None}):
            cases["onecycle"].append(Case("onecycle", {"max_lr": 1.0, **extra}, epochs, steps))
        cases["onecycle"] += sweep("onecycle", onecycle, epochs, steps, base={"max_lr": 0.5})
        cases["onecycle"] += combinations(rng, "onecycle", onecycle, 25, epochs, steps, base={"max_lr": 0.3})

    cases["cosine_restarts"] = [Case("cosine_restarts", {"T_0": t, "T_mult": m, "eta_min": e}, 40, 13)
                                for t in (1, 2, 5, 10) for m in (1, 2, 3) for e in (0, 0.01)] + [
        Case("cosine_restarts", {"T_0": 3}, 500, 1), Case("cosine_restarts", {"T_0": 1, "T_mult": 2}, 100, 5)]

    plateau = {"mode": ["min", "max"], "factor": [0.5, 0.9], "patience": [0, 2, 5],
               "threshold": [0.0, 0.01, 0.5], "threshold_mode": ["rel", "abs"], "cooldown": [0, 3],
               "min_lr": [0.002, 0.05], "eps": [1e-8, 0.02], "verbose": [False, True]}
    for case in sweep("plateau", plateau, 150, 2) + combinations(rng, "plateau", plateau, 40, 150, 2):
        metrics = plateau_metrics(rng, case.epochs)
        if case.args.get("mode") == "max":
            metrics = [-m for m in metrics]
        case.metrics = metrics
        cases["plateau"].append(case)
    nan_metrics = [1.0, 0.9, float("nan"), 0.8, float("nan"), float("nan"), 0.95, 0.7] * 5
    cases["plateau"].append(Case("plateau", {"patience": 1}, len(nan_metrics), 1, metrics=nan_metrics))

    sequential = [
        ([5], [("linear", {"start_factor": 0.1, "total_iters": 5}), ("cosine", {"T_max": 50})]),
        ([3], [("constant", {"factor": 0.5, "total_iters": 10}), ("exponential", {"gamma": 0.99})]),
        ([3, 10], [("linear", {}), ("step", {"step_size": 4, "gamma": 0.5}), ("multistep", {"milestones": [5, 9]})]),
        ([10], [("cosine", {"T_max": 10}), ("cosine", {"T_max": 20, "eta_min": 0.01})]),
        ([7], [("polynomial", {"total_iters": 10, "power": 2.0}), ("exponential", {"gamma": 0.9})]),
        ([1], [("exponential", {"gamma": 0.5}), ("linear", {"start_factor": 0.2, "end_factor": 0.7})]),
        ([], [("step", {"step_size": 3})]),
        ([2, 4, 6, 8, 10, 12, 14], [("constant", {"factor": 0.5})] * 4 + [("linear", {})] * 4),
        ([100], [("linear", {"total_iters": 200}), ("polynomial", {"total_iters": 300})]),
    ]
    for milestones, children in sequential:
        cases["sequential"].append(Case("sequential", {"milestones": milestones}, 200, 1, children=children))
    cases["sequential"].append(Case("sequential", {"milestones": [4]},
                                    12, 3, children=[("linear", {}), ("exponential", {"gamma": 0.7})]))
    return cases


def refusal_cases():
    both = [
        Case("cosine_restarts", {"T_0": 0}, 2, 2), Case("cosine_restarts", {"T_0": 2, "T_mult": 0}, 2, 2),
        Case("onecycle", {"max_lr": 1.0, "total_steps": 0}, 2, 2),
        Case("onecycle", {"max_lr": 1.0, "epochs": 0, "steps_per_epoch": 3}, 2, 2),
        Case("onecycle", {"max_lr": 1.0, "total_steps": 10, "pct_start": 1.5}, 2, 2),
        Case("onecycle", {"max_lr": 1.0, "total_steps": 10, "pct_start": 0.1}, 2, 2),   # 0/0 at step 0
        Case("plateau", {"factor": 1.0}, 2, 1, metrics=[1, 1]),
        Case("linear", {"start_factor": 1.5}, 3, 1), Case("linear", {"end_factor": -0.5}, 3, 1),
        Case("linear", {"start_factor": 0.0}, 3, 1),                                     # 1/0 at epoch 1
        Case("constant", {"factor": 1.5}, 3, 1), Case("constant", {"factor": 0.0, "total_iters": 2}, 3, 1),
        Case("polynomial", {"power": -1.0, "total_iters": 2}, 3, 1),
        Case("sequential", {"milestones": [2, 3]}, 4, 1, children=[("linear", {}), ("exponential", {"gamma": 0.5})]),
    ]
    nnseq = [
        Case("sequential", {"milestones": [2]}, 4, 1,
             children=[("linear", {}), ("onecycle", {"max_lr": 1.0, "total_steps": 10})]),
        Case("sequential", {"milestones": [3, 2]}, 4, 1,
             children=[("linear", {}), ("exponential", {"gamma": 0.5}), ("step", {"step_size": 1})]),
        Case("multistep", {"milestones": [4, 4]}, 5, 1), Case("step", {"step_size": 0}, 3, 1),
        Case("linear", {"total_iters": 0}, 3, 1),
    ]
    for case in both:
        case.refused = "both"
    for case in nnseq:
        case.refused = "nnseq"
    return both + nnseq


def difference(actual, expected, scale):
    return abs(actual - expected) / (abs(expected) + ABSOLUTE * scale / TOLERANCE)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("tool")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--verbose", action="store_true")
    options = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_default_dtype(torch.float64)
    rng = random.Random(options.seed)
    by_kind = build_cases(rng)
    refusals = refusal_cases()
    flat = [case for kind in KINDS for case in by_kind[kind]] + refusals
    results = iter(run_tool(options.tool, flat))
    failed = False
    for kind in KINDS:
        worst_lr = worst_momentum = 0.0
        problems, notes, steps, rates = [], {}, 0, 0
        for case in by_kind[kind]:
            result = next(results)
            if result["error"]:
                problems.append(f"{case.describe()}: nnseq refused: {result['error']}")
                continue
            with contextlib.redirect_stdout(io.StringIO()):   # ReduceLROnPlateau(verbose=True) prints
                expected, note = run_torch(case)
            if note:
                notes[note] = notes.get(note, 0) + 1
            if len(expected) != len(result["rows"]):
                problems.append(f"{case.describe()}: {len(result['rows'])} steps, torch {len(expected)}")
                continue
            steps += len(expected)
            rates += len(set(lr for lr, _ in expected))
            for step, ((lr, momentum), (torch_lr, torch_momentum)) in enumerate(zip(result["rows"], expected)):
                d_lr = difference(lr, torch_lr, case.lr)
                d_momentum = difference(momentum, torch_momentum, 0.9)
                worst_lr, worst_momentum = max(worst_lr, d_lr), max(worst_momentum, d_momentum)
                if not (d_lr <= TOLERANCE and d_momentum <= TOLERANCE):   # NaN fails too
                    problems.append(f"{case.describe()}: step {step}: lr {lr!r} momentum {momentum!r}, "
                                    f"torch {torch_lr!r} {torch_momentum!r}")
                    break
        summary = (f"{kind} ({CLASSES[kind]}): {len(by_kind[kind])} cases, {steps} steps "
                   f"({rates} distinct rates), worst relative "
                   f"difference lr {worst_lr:.3g}, momentum {worst_momentum:.3g}")
        if problems:
            failed = True
            print(f"FAIL {summary}")
            for problem in problems[:5]:
                print(f"  {problem}")
        else:
            print(f"ok {summary}")
        for note, count in sorted(notes.items()):
            print(f"  {note} partway in {count} cases; nnseq held the last scheduled rate and momentum")
    problems = []
    for case in refusals:
        result = next(results)
        torch_error = torch_refuses(case)
        if not result["error"]:
            problems.append(f"{case.describe()}: nnseq accepted it (torch: {torch_error or 'accepted'})")
        elif case.refused == "both" and torch_error is None:
            problems.append(f"{case.describe()}: torch accepts it, nnseq said: {result['error']}")
        elif options.verbose:
            print(f"  {case.describe()}: nnseq: {result['error']} | torch: {torch_error or 'accepted'}")
    if problems:
        failed = True
        print(f"FAIL refusals: {len(problems)} of {len(refusals)}")
        for problem in problems:
            print(f"  {problem}")
    else:
        print(f"ok refusals: {len(refusals)} cases refused by nnseq "
              f"({sum(c.refused == 'both' for c in refusals)} that torch raises on too)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
