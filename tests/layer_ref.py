#!/usr/bin/python3
"""Layer by layer, nnseq against torch.nn: every case of the case files.

    /usr/bin/python3 tests/layer_ref.py [--nnseq NNSEQ] [--tools DIR] CASES.txt ...
    /usr/bin/python3 tests/layer_ref.py [--nnseq NNSEQ] --configs CONFIG.yaml ...

NNSEQ and TOOLS (the folder of layer_eval) default to the environment
variables the Makefile sets. A case file (tests/layer_cases/*.txt) has one
case a line; `#` comments and blank lines are skipped:

    [FLAGS] INPUT_SHAPE | LAYER | LAYER ...
    [3, 12, 10] | Conv2d: {out_channels: 6, kernel_size: 3} | ReLU
    !batch 2 [4] | BatchNorm1d
    !error [4] | Linear: {out_features: 0} => out_features

INPUT_SHAPE is the per-sample shape; each LAYER is a YAML flow item as it
would appear after "- " in model.layers. Flags: !random (the layers draw
random numbers in training: only eval mode is compared, and torch runs it
with nnseq's buffers after the training forward), !error (nnseq print must
exit 2 with the text after " => " in its message), !batch N (default 5).

For each case: a config (seed = the line number) goes to nnseq print, whose
model text must be torch's print(model) of torch_ref.build() of the same
layers, and whose table must have torch's output shapes and parameter
counts; then tools/layer_eval runs nnseq on a seeded random input and output
gradient, its initial state is loaded into torch (strict load_state_dict),
and torch's training forward, input and parameter gradients, buffers after
that forward, and eval forward must agree: max|nnseq - torch| <= 1e-4 * (1 +
max|torch|) for each array (integer buffers exactly).

Prints `ok NAME (worst E in ARRAY)` or `FAIL NAME: why` per case, then a
summary line; exit 1 if a case failed. --configs compares nnseq print with
torch_ref.py --print for whole configs (configs/*.yaml) instead, and the
table with torch's shapes and counts for the input nnseq printed for.
"""
import argparse
import contextlib
import io
import os
import re
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import torch
import yaml

sys.dont_write_bytecode = True  # no tests/__pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_ref  # noqa: E402

TOLERANCE = 1e-4
DEFAULT_BATCH = 5


class Case:
    def __init__(self, path, line_number, text):
        self.name = f"{os.path.basename(path)}:{line_number}"
        self.seed = line_number
        self.random = self.error = False
        self.batch = DEFAULT_BATCH
        self.expect = None
        rest = text.strip()
        while rest.startswith("!"):
            flag, _, rest = rest.partition(" ")
            if flag == "!random":
                self.random = True
            elif flag == "!error":
                self.error = True
            elif flag == "!batch":
                count, _, rest = rest.strip().partition(" ")
                self.batch = int(count)
            else:
                raise ValueError(f"unknown flag {flag}")
            rest = rest.strip()
        if self.error:
            rest, arrow, self.expect = rest.partition(" => ")
            if not arrow:
                raise ValueError("an !error case needs ' => TEXT'")
            self.expect = self.expect.strip()
        shape, bar, layers = rest.partition("|")
        self.shape = tuple(yaml.safe_load(shape))
        if not bar or not self.shape or not all(isinstance(d, int) for d in self.shape):
            raise ValueError("expected [SHAPE] | LAYER ...")
        self.layer_texts = split_layers(layers)
        if not self.layer_texts:
            raise ValueError("no layers")
        self.text = text.strip()

    def config(self):
        return (f"seed: {self.seed}\nmodel:\n  input_shape: {list(self.shape)}\n  layers:\n"
                + "".join(f"    - {layer}\n" for layer in self.layer_texts))


def split_layers(text):
    """The LAYER items of "A | B: {x: [1, 2]} | C": split at bars outside brackets and quotes."""
    items, depth, quote, current = [], 0, None, ""
    for c in text:
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
        elif c == "|" and depth == 0:
            items.append(current.strip())
            current = ""
            continue
        current += c
    items.append(current.strip())
    return [item for item in items if item]


def read_cases(paths):
    cases, problems = [], []
    for path in paths:
        with open(path) as f:
            for number, line in enumerate(f, 1):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                try:
                    cases.append(Case(path, number, line))
                except (ValueError, TypeError, yaml.YAMLError) as e:
                    problems.append(f"{os.path.basename(path)}:{number}: {e}")
    return cases, problems


def table_rows(lines):
    """nnseq print's table: {index: (kind, output shape, parameters)} and the total."""
    rows, total = {}, None
    for line in lines:
        m = re.match(r"^(\w+)-(\d+)\s+\[-1((?:, \d+)*)\]\s+([\d,]+)\s*$", line)
        if m:
            dims = tuple(int(d) for d in m.group(3).split(", ")[1:])
            rows[int(m.group(2))] = (m.group(1), dims, int(m.group(4).replace(",", "")))
        m = re.match(r"^Total params: ([\d,]+)\s*$", line)
        if m:
            total = int(m.group(1).replace(",", ""))
    return rows, total


def torch_table(model, shape):
    """(kind, output shape, parameters) per module, torch's, and the total."""
    rows, x = {}, torch.zeros((2,) + tuple(shape))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, module in enumerate(model):
            x = module.eval()(x)
            rows[i] = (type(module).__name__, tuple(x.shape[1:]), sum(p.numel() for p in module.parameters()))
    return rows, sum(p.numel() for p in model.parameters())


def compare_print(stdout, model, shape):
    """None, or what differs between nnseq print's output and torch's print(model)."""
    text, _, table = stdout.partition("\nLayer (type)")
    want = str(model) + "\n"
    if text != want:
        got_lines, want_lines = text.splitlines(), want.splitlines()
        for i in range(max(len(got_lines), len(want_lines))):
            g = got_lines[i] if i < len(got_lines) else "<missing>"
            w = want_lines[i] if i < len(want_lines) else "<missing>"
            if g != w:
                return f"print line {i + 1}: nnseq {g!r}, torch {w!r}"
    rows, total = table_rows(table.splitlines())
    want_rows, want_total = torch_table(model, shape)
    for i in sorted(set(rows) | set(want_rows)):
        if rows.get(i) != want_rows.get(i):
            return f"table layer {i}: nnseq {rows.get(i)}, torch {want_rows.get(i)}"
    if total != want_total:
        return f"table total params: nnseq {total}, torch {want_total}"
    return None


class Comparison:
    def __init__(self):
        self.worst, self.worst_name, self.problems = 0.0, None, []

    def add(self, name, got, want):
        want = np.asarray(want)
        if got is None:
            self.problems.append(f"{name}: nnseq has none, torch {want.dtype}{want.shape}")
            return
        if got.shape != want.shape:
            self.problems.append(f"{name}: nnseq shape {got.shape}, torch {want.shape}")
            return
        if want.dtype.kind != "f":
            if not np.array_equal(got, want):
                self.problems.append(f"{name}: nnseq {got.tolist()}, torch {want.tolist()}")
            return
        if got.dtype != want.dtype:
            self.problems.append(f"{name}: nnseq {got.dtype}, torch {want.dtype}")
            return
        if not np.array_equal(np.isfinite(got), np.isfinite(want)):
            self.problems.append(f"{name}: non-finite values differ")
            return
        got, want = got.astype(np.float64), want.astype(np.float64)
        finite = np.isfinite(want)
        if not finite.any():
            return
        diff = np.abs(got - want)[finite]
        scale = 1 + float(np.abs(want[finite]).max())
        relative = float(diff.max()) / scale
        if relative >= self.worst:
            self.worst, self.worst_name = relative, name
        if relative > TOLERANCE:
            at = np.unravel_index(int(np.argmax(np.where(finite, np.abs(got - want), -1))), want.shape)
            self.problems.append(f"{name}: max diff {diff.max():.3g} at {tuple(int(a) for a in at)} "
                                 f"(nnseq {got[at]:.7g}, torch {want[at]:.7g}; limit {TOLERANCE:g} * {scale:.3g})")


def torch_run(case, model, x, dout, nnseq_buffers):
    """torch's arrays under the names layer_eval writes."""
    arrays = {}
    model.train()
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = model(xt.clone())  # not the leaf itself: inplace=True layers write to their input
        out.backward(torch.from_numpy(dout))
    arrays["train_out"] = out.detach().numpy()
    arrays["din"] = xt.grad.numpy() if xt.grad is not None else np.zeros_like(x)
    for name, p in model.named_parameters():
        arrays["grad." + name] = p.grad.numpy() if p.grad is not None else np.zeros_like(p.detach().numpy())
    for name, b in model.named_buffers():
        arrays["buffer." + name] = b.numpy().copy()
    if case.random:
        # torch's masks differ from nnseq's: eval from nnseq's buffers after its training forward
        with torch.no_grad():
            for name, b in model.named_buffers():
                if "buffer." + name in nnseq_buffers:
                    b.copy_(torch.from_numpy(nnseq_buffers["buffer." + name]))
    model.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arrays["eval_out"] = model(torch.from_numpy(x.copy())).numpy()
    return arrays


def run_case(case, nnseq, layer_eval, work):
    """None (passed) with a note, or the reason it failed."""
    folder = os.path.join(work, case.name.replace(":", "_"))
    os.makedirs(folder, exist_ok=True)
    config = os.path.join(folder, "case.yaml")
    with open(config, "w") as f:
        f.write(case.config())
    printed = subprocess.run([nnseq, "print", config], capture_output=True, text=True)
    if case.error:
        if printed.returncode != 2:
            return f"nnseq print exits {printed.returncode}, expected 2 ({printed.stderr.strip()[:200]})", None
        if case.expect not in printed.stderr:
            return f"the message lacks {case.expect!r}: {printed.stderr.strip()[:300]}", None
        if printed.stdout:
            return "nnseq print wrote to stdout on error", None
        return None, "refused: " + printed.stderr.strip().replace(f"nnseq: {config}:", "")[:200]
    if printed.returncode != 0:
        return f"nnseq print exits {printed.returncode}: {printed.stderr.strip()[:300]}", None
    layers = [yaml.safe_load(text) for text in case.layer_texts]
    torch.manual_seed(case.seed)
    try:
        model = torch_ref.build(layers, case.shape)
    except Exception as e:  # noqa: BLE001 - any refusal by torch is the case's failure
        return f"torch refuses the layers that nnseq accepts: {type(e).__name__}: {e}", None
    problem = compare_print(printed.stdout, model, case.shape)
    if problem:
        return problem, None

    rng = np.random.default_rng(case.seed)
    x = rng.standard_normal((case.batch,) + case.shape).astype(np.float32)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out_shape = tuple(model.eval()(torch.from_numpy(x.copy())).shape)
    dout = rng.standard_normal(out_shape).astype(np.float32)
    np.save(os.path.join(folder, "input.npy"), x)
    np.save(os.path.join(folder, "dout.npy"), dout)
    evaluated = subprocess.run([layer_eval, config, folder], capture_output=True, text=True)
    if evaluated.returncode != 0:
        return f"layer_eval exits {evaluated.returncode}: {evaluated.stderr.strip()[:300]}", None
    with np.load(os.path.join(folder, "init.npz")) as z:
        init = {k: torch.from_numpy(z[k].copy()) for k in z.files}
    with np.load(os.path.join(folder, "out.npz")) as z:
        got = {k: z[k].copy() for k in z.files}
    try:
        model.load_state_dict(init, strict=True)
    except RuntimeError as e:
        return "nnseq's state does not load into torch: " + str(e).replace("\n", " ")[:300], None
    want = torch_run(case, model, x, dout, {k: v for k, v in got.items() if k.startswith("buffer.")})
    unexpected = sorted(set(got) - set(want))
    if unexpected:
        return f"layer_eval writes {unexpected}, which torch has not", None
    comparison = Comparison()
    for name, value in want.items():
        if case.random and name != "eval_out":  # other masks than torch's: the shapes at least
            if got.get(name) is None or got[name].shape != value.shape:
                comparison.problems.append(f"{name}: nnseq {None if got.get(name) is None else got[name].shape}, "
                                           f"torch {value.shape}")
            continue
        comparison.add(name, got.get(name), value)
    if comparison.problems:
        return "; ".join(comparison.problems[:3]), None
    return None, f"worst {comparison.worst:.1e} in {comparison.worst_name}"


def print_configs(nnseq, configs):
    """nnseq print against torch_ref.py --print for whole configs; the number failed."""
    failed = 0
    for path in configs:
        name = "print " + os.path.basename(path)
        out = io.StringIO()
        sys.argv = ["torch_ref.py", path, "--print"]
        try:
            with contextlib.redirect_stdout(out), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch_ref.main()
        except (Exception, SystemExit) as e:  # noqa: BLE001
            print(f"FAIL {name}: torch_ref.py --print rejects the config: {e!r}")
            failed += 1
            continue
        run = subprocess.run([nnseq, "print", path], capture_output=True, text=True)
        text = run.stdout.partition("\nLayer (type)")[0]
        if run.returncode != 0 or text != out.getvalue():
            why = run.stderr.strip()[:300] if run.returncode else next(
                f"line {i + 1}: nnseq {g!r}, torch {w!r}" for i, (g, w) in
                enumerate(zip(text.splitlines() + ["<missing>"] * 99, out.getvalue().splitlines() + ["<missing>"] * 99))
                if g != w)
            print(f"FAIL {name}: {why}")
            failed += 1
            continue
        # the table too, for the input nnseq printed for
        m = re.search(r"^Input\s+\[-1((?:, \d+)*)\]", run.stdout, re.M)
        shape = tuple(int(d) for d in m.group(1).split(", ")[1:]) if m else None
        problem = compare_print(run.stdout, torch_ref.build(torch_ref.load_config(path)["model"]["layers"], shape),
                                shape) if shape else "no Input row in nnseq print's table"
        if problem:
            print(f"FAIL {name}: {problem}")
            failed += 1
        else:
            print(f"ok {name}")
    return failed


def main():
    parser = argparse.ArgumentParser(description="Compare nnseq's layers with torch.nn's.")
    parser.add_argument("files", nargs="+", help="case files (or configs with --configs)")
    parser.add_argument("--nnseq", default=os.environ.get("NNSEQ"))
    parser.add_argument("--tools", default=os.environ.get("TOOLS"))
    parser.add_argument("--configs", action="store_true", help="the files are configs: compare nnseq print only")
    args = parser.parse_args()
    if not args.nnseq:
        sys.exit("layer_ref.py: set NNSEQ or --nnseq to the nnseq binary")
    torch.set_num_threads(1)
    if args.configs:
        failed = print_configs(args.nnseq, args.files)
        print(f"layer_ref: {len(args.files) - failed} passed, {failed} failed")
        return 1 if failed else 0
    if not args.tools:
        sys.exit("layer_ref.py: set TOOLS or --tools to the folder of layer_eval")
    layer_eval = os.path.join(args.tools, "layer_eval")
    cases, problems = read_cases(args.files)
    for problem in problems:
        print(f"FAIL {problem.split(': ')[0]}: malformed case: {problem.partition(': ')[2]}")
    failed = len(problems)
    with tempfile.TemporaryDirectory(prefix="layer_ref.") as work:
        for case in cases:
            try:
                problem, note = run_case(case, args.nnseq, layer_eval, work)
            except Exception as e:  # noqa: BLE001 - one broken case must not hide the others
                problem, note = f"{type(e).__name__}: {e}", None
            if problem:
                failed += 1
                print(f"FAIL {case.name} {case.text.strip()}: {problem}")
            else:
                print(f"ok {case.name} {case.text.strip()} ({note})")
    total = len(cases) + len(problems)
    print(f"layer_ref: {total - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
