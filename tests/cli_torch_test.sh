#!/usr/bin/env bash
# Cross-checks of nnseq against PyTorch, end to end through the command line:
#  1. `nnseq print` shows what PyTorch's print(model) shows (torch_ref.py
#     --print), and its table has torch's output shapes and parameter counts,
#     for configs/*.yaml and generated configs covering every layer kind;
#  2. weights exported by `nnseq export` load into torch_ref's nn.Sequential
#     (strict load_state_dict) and give the probabilities `nnseq predict`
#     prints, to 1e-4, on generated images and on real Fashion-MNIST;
#  3. one epoch of SGD from the same `--init` weights gives the same weights,
#     BatchNorm buffers and losses in nnseq and in torch_ref.py (to 1e-3);
#  4. `nnseq train --init` rejects a missing key, an extra key, a wrong shape
#     and a wrong dtype with exit 2 and the key's name, and loads np.savez and
#     np.savez_compressed files alike.
# Needs NNSEQ and GEN_DATA (`make check` sets both) and /usr/bin/python3 with
# torch, numpy and yaml (Debian's python3-torch, python3-numpy, python3-yaml);
# the reference is tests/torch_ref.py (TORCH_REF overrides it). Without
# them it is skipped (exit 77); without data/fashion-mnist (make data) the
# Fashion-MNIST checks are skipped and counted as one skipped check.
set -u
NNSEQ=${NNSEQ:?set NNSEQ to the nnseq binary}
GEN_DATA=${GEN_DATA:?set GEN_DATA to the gen_data tool}
cd "$(dirname "$0")/.." || exit 1
. tests/shell_checks.sh
PYTHON=/usr/bin/python3
TORCH_REF=${TORCH_REF:-tests/torch_ref.py}
[ -x "$PYTHON" ] || skip_all cli_torch "$PYTHON not found (make deps)"
[ -f "$TORCH_REF" ] || skip_all cli_torch "$TORCH_REF not found"
"$PYTHON" -c 'import torch, numpy, yaml' 2>/dev/null ||
    skip_all cli_torch "$PYTHON cannot import torch, numpy and yaml (make deps installs python3-torch)"
TORCH_REF=$(cd "$(dirname "$TORCH_REF")" && pwd)/$(basename "$TORCH_REF")
FASHION=$(pwd)/data/fashion-mnist

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# run NAME COMMAND...: the command must succeed; its stderr is shown if not
run() {
    local name=$1; shift
    if "$@" 2>"$work/run.err"; then ok; else fail "$name: exit $? ($(head -c 300 "$work/run.err"))"; return 1; fi
}

# The Python side: subcommands separated by '+', so that one process (one
# torch import) does many checks. Each check prints "ok NAME" or
# "FAIL NAME: why"; lines starting with two spaces report measured figures.
cat >"$work/xcheck.py" <<'PY'
import contextlib, gzip, io, json, os, re, struct, subprocess, sys
import numpy as np
import torch
import yaml

sys.path.insert(0, os.path.dirname(os.environ["TORCH_REF"]))
import torch_ref  # noqa: E402


def ok(name):
    print(f"ok {name}")


def fail(name, why):
    print(f"FAIL {name}: {why}")


def note(text):
    print(f"  {text}")


def load_config(path):
    with open(path) as f:
        return yaml.safe_load(f)


def images_of(path, cfg):
    """The model's input for an IDX file, as nnseq and torch_ref.py make it."""
    x = torch_ref.read_idx(path).astype(np.float32) / 255.0
    norm = (cfg.get("data") or {}).get("normalize") or {}
    x = (x - float(norm.get("mean", 0.0))) / float(norm.get("std", 1.0))
    if x.ndim == 3:
        x = x[:, None, :, :]
    return torch.from_numpy(np.ascontiguousarray(x))


def input_shape(cfg, config_path):
    if "input_shape" in cfg["model"]:
        return tuple(cfg["model"]["input_shape"])
    images = cfg["data"]["train"]["images"]
    images = images if os.path.isabs(images) else os.path.join(os.path.dirname(config_path), images)
    return tuple(images_of(images, cfg).shape[1:])


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


def print_shape(cfg):
    """The input nnseq print assumes without data files at hand: input_shape,
    else a first Linear's in_features (the tabular configs), else (1, 28, 28)."""
    if "input_shape" in cfg["model"]:
        return tuple(cfg["model"]["input_shape"])
    name, args = torch_ref.layer_name_and_args(cfg["model"]["layers"][0])
    if name == "Linear" and "in_features" in args:
        return (int(args["in_features"]),)
    return (1, 28, 28)


def check_table(name, cfg, lines):
    shape = print_shape(cfg)
    model = torch_ref.build(cfg["model"]["layers"], shape)
    rows, total = table_rows(lines)
    x, problems = torch.zeros((2,) + shape), []
    with torch.no_grad():
        for i, module in enumerate(model):
            x = module.eval()(x)
            want = (type(module).__name__, tuple(x.shape[1:]), sum(p.numel() for p in module.parameters()))
            if rows.get(i) != want:
                problems.append(f"layer {i}: nnseq {rows.get(i)}, torch {want}")
    want_total = sum(p.numel() for p in model.parameters())
    if total != want_total:
        problems.append(f"total params: nnseq {total}, torch {want_total}")
    if problems:
        fail(name + " table", "; ".join(problems[:3]))
    else:
        ok(name + " table")


def cmd_print(nnseq, *configs):
    """nnseq print against torch_ref.py --print (its own code path, run in-process)."""
    for path in configs:
        name = "print " + os.path.basename(path)
        out = io.StringIO()
        sys.argv = ["torch_ref.py", path, "--print"]
        try:
            with contextlib.redirect_stdout(out):
                torch_ref.main()
        except (Exception, SystemExit) as e:
            fail(name, f"torch_ref.py --print rejects the config (a test bug): {e!r}")
            continue
        want = out.getvalue().splitlines()
        run = subprocess.run([nnseq, "print", path], capture_output=True, text=True)
        if run.returncode != 0:
            fail(name, f"exit {run.returncode}: {run.stderr.strip()[:300]}")
            continue
        got = run.stdout.splitlines()
        differ = [i for i in range(len(want)) if i >= len(got) or got[i] != want[i]]
        if differ:
            i = differ[0]
            fail(name, f"{len(differ)} of {len(want)} lines differ; line {i + 1}: "
                       f"nnseq {got[i] if i < len(got) else '<missing>'!r}, torch {want[i]!r}")
        else:
            ok(name)
        check_table(name, load_config(path), got[len(want):])


def torch_model(name, cfg, shape, npz):
    """torch_ref's nn.Sequential with nnseq's exported weights, strictly loaded."""
    model = torch_ref.build(cfg["model"]["layers"], shape)
    weights = dict(np.load(npz).items())
    expected = {k: v.numpy().dtype for k, v in model.state_dict().items()}
    found = {k: v.dtype for k, v in weights.items()}
    if found != expected:
        fail(name + " export keys", f"nnseq exports {sorted(found.items())}, torch's state_dict has "
                                    f"{sorted(expected.items())}")
        return None
    try:
        model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    except RuntimeError as e:
        fail(name + " export loads", str(e).replace("\n", " "))
        return None
    ok(name + " export loads into torch")
    return model.eval()


def cmd_predict(name, config, npz, images, predictions, tolerance="1e-4"):
    """nnseq predict's probabilities against torch's softmax of the same model."""
    cfg = load_config(config)
    x = images_of(images, cfg)
    model = torch_model(name, cfg, input_shape(cfg, config), npz)
    if model is None:
        return
    with torch.no_grad():
        want = torch.softmax(torch.cat([model(x[i:i + 1000]) for i in range(0, len(x), 1000)]), 1)
    want = want.double().numpy()
    rows = [json.loads(line) for line in open(predictions)]
    got = np.full_like(want, np.nan)
    for i, row in enumerate(rows[:len(want)]):
        for top in row.get("top", [row]):
            got[i, top["class"]] = top["probability"]
    if len(rows) != len(want) or np.isnan(got).any():
        fail(name + " predict", f"{len(rows)} rows for {len(want)} images, or classes missing from --top")
        return
    diff = np.abs(got - want)
    worst = np.unravel_index(diff.argmax(), diff.shape)
    note(f"{name}: max |p_nnseq - p_torch| = {diff.max():.2e} over {want.shape[0]} images x {want.shape[1]} classes")
    if diff.max() > float(tolerance):
        fail(name + " predict", f"image {worst[0]} class {worst[1]}: nnseq {got[worst]:.6f}, torch {want[worst]:.6f}")
    else:
        ok(name + " predict")
    ordered = np.sort(want, 1)
    clear = ordered[:, -1] - ordered[:, -2] > 2 * float(tolerance)
    classes = np.array([row["class"] for row in rows])
    wrong = np.flatnonzero(clear & (classes != want.argmax(1)))
    if len(wrong):
        fail(name + " predicted class", f"{len(wrong)} images, first {wrong[0]}: nnseq {classes[wrong[0]]}, "
                                        f"torch {want[wrong[0]].argmax()}")
    else:
        ok(name + " predicted class")


def epoch_lines(path):
    rows = [json.loads(line) for line in open(path) if line.startswith("{")]
    return [r["train_loss"] for r in rows if "epoch" in r], [r["test_loss"] for r in rows if r.get("final")]


def cmd_weights(name, init, nnseq_npz, torch_npz, nnseq_out, torch_out):
    """Weights, buffers and losses after the same training in nnseq and torch."""
    start, got, want = dict(np.load(init)), dict(np.load(nnseq_npz)), dict(np.load(torch_npz))
    if set(got) != set(want):
        fail(name + " weights", f"keys: nnseq {sorted(got)}, torch {sorted(want)}")
        return
    worst, worst_key, moved, problems = 0.0, None, 0.0, []
    for key, value in want.items():
        if got[key].dtype != value.dtype or got[key].shape != value.shape:
            problems.append(f"{key}: nnseq {got[key].dtype}{got[key].shape}, torch {value.dtype}{value.shape}")
        elif value.dtype.kind != "f":
            if not np.array_equal(got[key], value):
                problems.append(f"{key}: nnseq {got[key]}, torch {value}")
        else:
            diff = float(np.abs(got[key].astype(np.float64) - value).max())
            moved = max(moved, float(np.abs(value.astype(np.float64) - start[key]).max()))
            if diff >= worst:
                worst, worst_key = diff, key
    note(f"{name}: max |w_nnseq - w_torch| = {worst:.2e} (in {worst_key}); torch moved the weights by up to {moved:.2e}")
    if worst > 1e-3:
        problems.append(f"{worst_key} differs by {worst:.2e}")
    if moved < 1e-2:
        problems.append(f"training moved the weights by {moved:.2e} only: the comparison says nothing")
    if problems:
        fail(name + " weights", "; ".join(problems[:3]))
    else:
        ok(name + " weights")
    (got_train, got_test), (want_train, want_test) = epoch_lines(nnseq_out), epoch_lines(torch_out)
    if len(got_train) != len(want_train) or len(got_test) != 1 or len(want_test) != 1:
        fail(name + " losses", f"nnseq printed {got_train} {got_test}, torch {want_train} {want_test}")
        return
    train_diff = max(abs(a - b) for a, b in zip(got_train, want_train))
    test_diff = abs(got_test[0] - want_test[0])
    note(f"{name}: train loss nnseq {got_train[-1]:.6f} torch {want_train[-1]:.6f}; "
         f"test loss nnseq {got_test[0]:.6f} torch {want_test[0]:.6f}")
    # nnseq prints losses to 6 decimals
    if train_diff > 1e-4 or test_diff > 1e-3:
        fail(name + " losses", f"train loss differs by {train_diff:.2e}, test loss by {test_diff:.2e}")
    else:
        ok(name + " losses")
    # The rate each epoch started with (a schedule's), to the printed digits.
    got_lr, want_lr = epoch_rates(nnseq_out), epoch_rates(torch_out)
    if len(got_lr) != len(want_lr) or any(abs(a - b) > 1e-4 * max(abs(b), 1e-12) for a, b in zip(got_lr, want_lr)):
        fail(name + " learning rates", f"nnseq {got_lr}, torch {want_lr}")
    else:
        ok(name + " learning rates")


def epoch_rates(path):
    return [json.loads(line)["lr"] for line in open(path) if line.startswith("{") and '"epoch"' in line]


def cmd_same(name, first, second):
    """Two .npz files hold the same arrays, bit for bit."""
    a, b = dict(np.load(first)), dict(np.load(second))
    same = set(a) == set(b) and all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a)
    if same:
        ok(name)
    else:
        fail(name, f"{os.path.basename(first)} and {os.path.basename(second)} differ")


def cmd_init(config, out, seed):
    """PyTorch's initial weights for a config, BatchNorm's made non-trivial."""
    cfg = load_config(config)
    torch.manual_seed(int(seed))
    model = torch_ref.build(cfg["model"]["layers"], input_shape(cfg, config))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(7)
    np.savez(out, **{k: v.numpy() for k, v in model.state_dict().items()})


def cmd_variants(source, folder):
    """Broken and alternative forms of an MLP's weights (keys 1, 3, 5) for --init."""
    w = dict(np.load(source))
    np.savez_compressed(os.path.join(folder, "compressed.npz"), **w)
    np.savez(os.path.join(folder, "missing.npz"), **{k: v for k, v in w.items() if k != "3.bias"})
    np.savez(os.path.join(folder, "extra.npz"), **w, **{"2.weight": np.zeros((4, 4), np.float32)})
    np.savez(os.path.join(folder, "shape.npz"), **{**w, "3.weight": np.ascontiguousarray(w["3.weight"].T)})
    np.savez(os.path.join(folder, "dtype.npz"), **{**w, "5.weight": w["5.weight"].astype(np.float64)})


def cmd_subset(images, labels, count, out_images, out_labels):
    """The first count samples of an IDX pair (images raw, labels gzip)."""
    count = int(count)
    for source, target, opener in ((images, out_images, open), (labels, out_labels, gzip.open)):
        data = torch_ref.read_idx(source)[:count]
        header = struct.pack(">HBB", 0, 8, data.ndim) + struct.pack(">" + "I" * data.ndim, *data.shape)
        with opener(target, "wb") as f:
            f.write(header + data.tobytes())


commands = {"print": cmd_print, "predict": cmd_predict, "weights": cmd_weights, "same": cmd_same,
            "init": cmd_init, "variants": cmd_variants, "subset": cmd_subset}
args = sys.argv[1:]
while args:
    end = args.index("+") if "+" in args else len(args)
    commands[args[0]](*args[1:end])
    args = args[end + 1:]
PY

# py NAME SUBCOMMAND ARGS... [+ SUBCOMMAND ARGS...]: runs the helper and counts its checks
py() {
    local name=$1 line status; shift
    TORCH_REF=$TORCH_REF "$PYTHON" "$work/xcheck.py" "$@" >"$work/py.out" 2>"$work/py.err"
    status=$?
    while IFS= read -r line; do
        case $line in
            "ok "*) ok ;;
            "FAIL "*) failed=$((failed + 1)); echo "$line" >&3 ;;
            *) echo "$line" ;;
        esac
    done <"$work/py.out"
    [ "$status" -eq 0 ] || fail "$name: the Python helper failed: $(tail -3 "$work/py.err")"
}

"$GEN_DATA" "$work" 410 1 train && "$GEN_DATA" "$work" 200 2 test || { echo "gen_data failed"; exit 1; }
have_fashion=false
if [ -f "$FASHION/train-images-idx3-ubyte.gz" ] && [ -f "$FASHION/t10k-images-idx3-ubyte.gz" ]; then
    have_fashion=true
    py "fashion subset" subset "$FASHION/train-images-idx3-ubyte.gz" "$FASHION/train-labels-idx1-ubyte.gz" 2000 \
        "$work/fashion-images.idx" "$work/fashion-labels.idx.gz"
else
    skip_part cli_torch "the Fashion-MNIST checks: no data in $FASHION (run 'make data')"
fi

# config FILE DATA LOSS OPTIMIZER LAYER...: a config on the generated data
# (DATA gen) or on 2000 Fashion-MNIST training images and the real test set
# (DATA fashion); val_split 0, and no shuffling since torch_ref.py's order is
# torch's; batches of $batch_size (default 16).
config() {
    local file=$1 data=$2 loss=$3 optimizer=$4; shift 4
    {
        echo "seed: 5"
        echo "data:"
        if [ "$data" = fashion ]; then
            echo "  train: {images: fashion-images.idx, labels: fashion-labels.idx.gz}"
            echo "  test: {images: $FASHION/t10k-images-idx3-ubyte.gz, labels: $FASHION/t10k-labels-idx1-ubyte.gz}"
            echo "  normalize: {mean: 0.2860, std: 0.3530}"
        else
            echo "  train: {images: train-images.idx, labels: train-labels.idx.gz}"
            echo "  test: {images: test-images.idx, labels: test-labels.idx.gz}"
            echo "  normalize: {mean: 0.3, std: 0.25}"
        fi
        echo "  val_split: ${val_split:-0}"
        echo "model:"
        echo "  layers:"
        for layer in "$@"; do echo "    - $layer"; done
        echo "loss: $loss"
        echo "optimizer: $optimizer"
        [ -n "${scheduler:-}" ] && echo "scheduler: $scheduler"
        echo "train: {epochs: ${epochs:-1}, batch_size: ${batch_size:-16}, shuffle: false}"
        echo "checkpoint: {path: runs/model.ckpt}"
    } >"$file"
}

# --- 1. print: PyTorch's print(model), then torch's shapes and counts --------
mkdir -p "$work/print"
model_only() { # model_only FILE INPUT_SHAPE LAYER...: a config with just a model
    local file=$1 shape=$2; shift 2
    {
        echo "model:"
        [ -n "$shape" ] && echo "  input_shape: $shape"
        echo "  layers:"
        for layer in "$@"; do echo "    - $layer"; done
    } >"$work/print/$file"
}
model_only conv.yaml "[3, 12, 10]" \
    "Conv2d: {out_channels: 6, kernel_size: 3}" \
    "Conv2d: {in_channels: 6, out_channels: 5, kernel_size: [3, 2], stride: [2, 1], padding: [1, 0], bias: false}" \
    "Conv2d: {out_channels: 4, kernel_size: [1, 3], stride: 2, padding: 1}" \
    "Conv2d: {out_channels: 2, kernel_size: 1, stride: [1, 2], padding: [0, 1], bias: true}" \
    "Conv2d: {out_channels: 3, kernel_size: 2, padding: 0, bias: false}" \
    "Flatten" \
    "Linear: {out_features: 3, bias: false}"
model_only pool.yaml "[2, 11, 9]" \
    "MaxPool2d: {kernel_size: 2}" \
    "MaxPool2d: {kernel_size: [3, 2], stride: [1, 2], padding: [1, 1]}" \
    "AvgPool2d: {kernel_size: 2, stride: 1, padding: 1}" \
    "AvgPool2d: {kernel_size: [2, 3], stride: [2, 1], padding: [0, 1]}" \
    "MaxPool2d: {kernel_size: 3, stride: 2, padding: 1}" \
    "AvgPool2d: {kernel_size: [1, 2]}" \
    "MaxPool2d: {kernel_size: [1, 1], stride: [1, 1]}"
model_only norm.yaml "[4, 5, 5]" \
    "BatchNorm2d" \
    "BatchNorm2d: {num_features: 4, eps: 0.001, momentum: 0.2}" \
    "Flatten" \
    "BatchNorm1d: {eps: 1.0e-6, momentum: 0.05}" \
    "Linear: {out_features: 7}" \
    "BatchNorm1d: {num_features: 7, momentum: 0.01}" \
    "BatchNorm1d: {eps: 0.0001, momentum: 0.5}"
model_only activations.yaml "[1, 4, 4]" \
    "Flatten" "ReLU" "Sigmoid" "Tanh" "GELU" \
    "LeakyReLU" "LeakyReLU: {negative_slope: 0.2}" "LeakyReLU: {negative_slope: 1}" \
    "Dropout" "Dropout: {p: 0}" "Dropout: {p: 1}" "Dropout: {p: 0.25}" "Dropout: {p: 0.1}" \
    "Softmax" "Softmax: {dim: -1}" "LogSoftmax" "LogSoftmax: {dim: 1}" "LogSoftmax: {dim: -1}" \
    "Linear: {in_features: 16, out_features: 5, bias: false}"
model_only flatten.yaml "[3, 4, 5]" \
    "Flatten: {start_dim: 1, end_dim: 2}" \
    "Flatten: {start_dim: 2}" \
    "Flatten: {end_dim: -2}" \
    "Flatten: {start_dim: 1, end_dim: -1}" \
    "Linear: {in_features: 60, out_features: 2}"
model_only lenet.yaml "[1, 28, 28]" \
    "Conv2d: {in_channels: 1, out_channels: 6, kernel_size: 5, padding: 2}" "ReLU" "MaxPool2d: {kernel_size: 2}" \
    "Conv2d: {out_channels: 16, kernel_size: [5, 5]}" "Tanh" "AvgPool2d: {kernel_size: 2, stride: 2}" \
    "Flatten" "Linear: {out_features: 120}" "ReLU" "Dropout: {p: 0.3}" "Linear: {out_features: 84}" \
    "LeakyReLU: {negative_slope: 0.05}" "Linear: {out_features: 10}" "LogSoftmax"
model_only default_input.yaml "" "Flatten" "Linear: {out_features: 10}"
py "print" print "$NNSEQ" configs/*.yaml "$work"/print/*.yaml

# --- 2. export: nnseq's weights in torch give nnseq's probabilities ----------
config "$work/mlp.yaml" gen cross_entropy "{name: adam, lr: 0.01}" \
    "Flatten" "Linear: {out_features: 16}" "ReLU" "Dropout: {p: 0.2}" "Linear: {out_features: 4}"
config "$work/cnn.yaml" gen cross_entropy "{name: adam, lr: 0.01}" \
    "Conv2d: {out_channels: 4, kernel_size: 3, padding: 1}" "BatchNorm2d" "ReLU" "MaxPool2d: {kernel_size: 2}" \
    "Flatten" "Linear: {out_features: 4}"
# Issue 15's kinds in one model, trained on 2 threads: weights, buffers
# (InstanceNorm's running statistics, GroupNorm, PReLU) and the checkpoint
# round trip must give torch's probabilities too.
config "$work/zoo.yaml" gen cross_entropy "{name: adamw, lr: 0.01, no_decay: [bias, norm]}" \
    "Conv2d: {out_channels: 4, kernel_size: 3, padding: same, padding_mode: reflect}" "GroupNorm: {num_groups: 2}" \
    "PReLU: {num_parameters: 4}" \
    "Conv2d: {out_channels: 4, kernel_size: 3, groups: 2, padding: 1, padding_mode: circular, bias: false}" \
    "InstanceNorm2d: {affine: true, track_running_stats: true}" "SiLU" "MaxPool2d: {kernel_size: 2, ceil_mode: true}" \
    "Dropout2d: {p: 0.1}" "ConvTranspose2d: {out_channels: 2, kernel_size: 2, stride: 2}" "Hardswish" \
    "AdaptiveAvgPool2d: {output_size: 2}" "Flatten" "LayerNorm: {normalized_shape: 8}" "Mish" \
    "Linear: {out_features: 4}"
predict_models="mlp cnn zoo"
if $have_fashion; then
    config "$work/fashion_mlp.yaml" fashion cross_entropy "{name: adam, lr: 0.001}" \
        "Flatten" "Linear: {in_features: 784, out_features: 128}" "ReLU" "Dropout: {p: 0.2}" "Linear: {out_features: 10}"
    config "$work/fashion_cnn.yaml" fashion cross_entropy "{name: adam, lr: 0.002}" \
        "Conv2d: {out_channels: 6, kernel_size: 3}" "BatchNorm2d" "ReLU" "MaxPool2d: {kernel_size: 2}" \
        "Conv2d: {out_channels: 8, kernel_size: [3, 3], padding: 1}" "ReLU" "AvgPool2d: {kernel_size: 2}" \
        "Flatten" "Linear: {out_features: 10}"
    predict_models="$predict_models fashion_mlp fashion_cnn"
fi
comparisons=()
for model in $predict_models; do
    case $model in
        fashion_*) images=$FASHION/t10k-images-idx3-ubyte.gz classes=10 epochs=1 ;;
        *) images=$work/test-images.idx classes=4 epochs=3 ;;
    esac
    threads=1
    [ "$model" = zoo ] && threads=2
    for stage in init trained; do
        # --lr 0 keeps the initial weights (BatchNorm's running statistics still move)
        if [ "$stage" = init ]; then options=(--epochs 1 --lr 0); else options=(--epochs "$epochs"); fi
        name=$model-$stage
        run "$name: train" "$NNSEQ" train "$work/$model.yaml" "${options[@]}" --threads "$threads" --out "$work/$name.ckpt" \
            >/dev/null &&
            run "$name: export" "$NNSEQ" export "$work/$name.ckpt" "$work/$name.npz" &&
            run "$name: predict" "$NNSEQ" predict "$work/$name.ckpt" "$images" --top "$classes" --format json \
                --threads 1 >"$work/$name.json" &&
            comparisons+=(predict "$name" "$work/$model.yaml" "$work/$name.npz" "$images" "$work/$name.json" +)
    done
done
[ ${#comparisons[@]} -eq 0 ] || py "predict" "${comparisons[@]}"

# --- 3. one epoch of SGD from the same weights in nnseq and in PyTorch -------
sgd="{name: sgd, lr: 0.01, momentum: 0.9}"
config "$work/sgd_mlp.yaml" gen cross_entropy "$sgd" \
    "Flatten" "Linear: {out_features: 24}" "ReLU" "Linear: {out_features: 12}" "Tanh" "Linear: {out_features: 4}"
config "$work/sgd_cnn.yaml" gen cross_entropy "$sgd" \
    "Conv2d: {out_channels: 4, kernel_size: 3, padding: 1}" "BatchNorm2d" "ReLU" "MaxPool2d: {kernel_size: 2}" \
    "Flatten" "Linear: {out_features: 4}"
config "$work/sgd_mix.yaml" gen nll "$sgd" \
    "Conv2d: {out_channels: 3, kernel_size: [3, 2], stride: [1, 2], bias: false}" \
    "LeakyReLU: {negative_slope: 0.1}" "AvgPool2d: {kernel_size: 2, stride: 1, padding: 1}" "Flatten" \
    "Linear: {out_features: 10}" "BatchNorm1d: {eps: 0.001, momentum: 0.2}" "GELU" "Linear: {out_features: 8}" \
    "Sigmoid" "Linear: {out_features: 4}" "LogSoftmax"
sgd_models="sgd_mlp sgd_cnn sgd_mix"
if $have_fashion; then
    # 16 steps, not 125: torch's float32 Conv2d weight gradient is off by
    # ~1e-4 of its size on 28x28 images (nnseq's by ~2e-6, against float64),
    # and over many steps the real images amplify that past 1e-3.
    batch_size=128 config "$work/sgd_fashion.yaml" fashion cross_entropy "$sgd" \
        "Conv2d: {out_channels: 4, kernel_size: 3}" "BatchNorm2d" "ReLU" "MaxPool2d: {kernel_size: 2, stride: 2}" \
        "Flatten" "Linear: {out_features: 10}"
    sgd_models="$sgd_models sgd_fashion"
fi
inits=()
for model in $sgd_models; do inits+=(init "$work/$model.yaml" "$work/$model-init.npz" 11 +); done
py "init weights" "${inits[@]}" variants "$work/sgd_mlp-init.npz" "$work"
comparisons=()
for model in $sgd_models; do
    run "$model: nnseq train --init" "$NNSEQ" train "$work/$model.yaml" --init "$work/$model-init.npz" \
        --threads 1 --format json --out "$work/$model.ckpt" >"$work/$model-nnseq.out" &&
        run "$model: export" "$NNSEQ" export "$work/$model.ckpt" "$work/$model-nnseq.npz" &&
        run "$model: torch_ref.py --init" "$PYTHON" "$TORCH_REF" "$work/$model.yaml" --init "$work/$model-init.npz" \
            --save "$work/$model-torch.npz" --epochs 1 --threads 1 >"$work/$model-torch.out" &&
        comparisons+=(weights "$model" "$work/$model-init.npz" "$work/$model-nnseq.npz" "$work/$model-torch.npz"
                      "$work/$model-nnseq.out" "$work/$model-torch.out" +)
done
[ ${#comparisons[@]} -eq 0 ] || py "weights" "${comparisons[@]}"

# --- 3b. the optimisers and schedules of torch.optim, several epochs ---------
# Every optimiser, each with a schedule (per-epoch, per-step, plateau on the
# validation loss, SequentialLR), from the same weights in the same order:
# the weights, losses and per-epoch rates agree with torch's.
mlp=("Flatten" "Linear: {out_features: 16}" "Tanh" "Linear: {out_features: 4}")
# No bias before BatchNorm: its gradient is zero but for rounding, which
# Adam's step turns into full-size moves that differ between any two programs.
norm_mlp=("Flatten" "Linear: {out_features: 16, bias: false}" "BatchNorm1d" "ReLU" "Linear: {out_features: 4}")
epochs=3 scheduler="{name: StepLR, step_size: 1, gamma: 0.7}" config "$work/o_adadelta.yaml" gen nll \
    "{name: Adadelta, lr: 1.0}" "${mlp[@]}" "LogSoftmax: {dim: 1}"
epochs=3 scheduler="{name: OneCycleLR, max_lr: 0.01}" config "$work/o_rmsprop.yaml" gen cross_entropy \
    "{name: RMSprop, lr: 0.001, centered: true, momentum: 0.5}" "${mlp[@]}"
epochs=3 scheduler="{name: CosineAnnealingWarmRestarts, T_0: 1, T_mult: 2}" config "$work/o_nadam.yaml" gen \
    cross_entropy "{name: NAdam, lr: 0.01}" "${mlp[@]}"
epochs=3 scheduler="{name: SequentialLR, milestones: [1], schedulers: [{name: LinearLR, start_factor: 0.2, total_iters: 1}, {name: ExponentialLR, gamma: 0.8}]}" \
    config "$work/o_adamw.yaml" gen cross_entropy \
    "{name: AdamW, lr: 0.01, amsgrad: true, weight_decay: 0.1, no_decay: [bias, norm]}" "${norm_mlp[@]}"
epochs=4 val_split=0.2 scheduler="{name: ReduceLROnPlateau, patience: 0, factor: 0.5, threshold: 0.5}" \
    config "$work/o_sgd.yaml" gen cross_entropy "{name: sgd, lr: 0.05, momentum: 0.9, nesterov: true}" "${mlp[@]}"
epochs=3 scheduler="{name: PolynomialLR, total_iters: 3, power: 2.0}" config "$work/o_adagrad.yaml" gen \
    cross_entropy "{name: Adagrad, lr: 0.05, lr_decay: 0.01, initial_accumulator_value: 0.1}" "${mlp[@]}"
epochs=3 scheduler="{name: ConstantLR, factor: 0.5, total_iters: 2}" config "$work/o_radam.yaml" gen \
    cross_entropy "{name: RAdam, lr: 0.01, weight_decay: 0.01}" "${mlp[@]}"
epochs=3 scheduler="{name: MultiStepLR, milestones: [1, 2], gamma: 0.5}" config "$work/o_adamax.yaml" gen \
    cross_entropy "{name: Adamax, lr: 0.01, maximize: false}" "${norm_mlp[@]}"
optim_models="o_adadelta o_rmsprop o_nadam o_adamw o_sgd o_adagrad o_radam o_adamax"
inits=()
for model in $optim_models; do inits+=(init "$work/$model.yaml" "$work/$model-init.npz" 12 +); done
py "init weights (optimisers)" "${inits[@]}"
comparisons=()
for model in $optim_models; do
    run "$model: nnseq train --init" "$NNSEQ" train "$work/$model.yaml" --init "$work/$model-init.npz" \
        --threads 1 --format json --out "$work/$model.ckpt" >"$work/$model-nnseq.out" &&
        run "$model: export" "$NNSEQ" export "$work/$model.ckpt" "$work/$model-nnseq.npz" &&
        run "$model: torch_ref.py --init" "$PYTHON" "$TORCH_REF" "$work/$model.yaml" --init "$work/$model-init.npz" \
            --save "$work/$model-torch.npz" --threads 1 >"$work/$model-torch.out" &&
        comparisons+=(weights "$model" "$work/$model-init.npz" "$work/$model-nnseq.npz" "$work/$model-torch.npz"
                      "$work/$model-nnseq.out" "$work/$model-torch.out" +)
done
[ ${#comparisons[@]} -eq 0 ] || py "weights" "${comparisons[@]}"

# --- 4. --init: bad files are refused by key, both npz flavours load ---------
init_error() { # init_error NAME FILE KEY
    expect_error "--init $1" 2 "$2.*$3" "$NNSEQ" train "$work/sgd_mlp.yaml" --init "$work/$2" --out "$work/$2.ckpt"
    check "--init $1: no checkpoint written" test ! -e "$work/$2.ckpt"
}
init_error "missing key" missing.npz "3\.bias"
init_error "extra key" extra.npz "2\.weight"
init_error "wrong shape" shape.npz "3\.weight"
init_error "float64 array" dtype.npz "5\.weight"
expect_error "--init of a missing file" 2 "nothere\.npz" "$NNSEQ" train "$work/sgd_mlp.yaml" --init "$work/nothere.npz"
sames=()
for flavour in sgd_mlp-init compressed; do
    run "--init $flavour.npz loads" "$NNSEQ" train "$work/sgd_mlp.yaml" --init "$work/$flavour.npz" --epochs 1 --lr 0 \
        --out "$work/$flavour.ckpt" >/dev/null &&
        run "--init $flavour.npz: export" "$NNSEQ" export "$work/$flavour.ckpt" "$work/$flavour-kept.npz" &&
        sames+=(same "--init $flavour.npz, --lr 0: export gives the same arrays back" "$work/sgd_mlp-init.npz"
                "$work/$flavour-kept.npz" +)
done
[ ${#sames[@]} -eq 0 ] || py "same" "${sames[@]}"

finish cli_torch
