#!/usr/bin/env bash
# nnseq's losses against PyTorch's: tests/loss_ref.py draws a few hundred
# seeded cases covering every loss and argument, evaluates them with
# $TOOLS/loss_eval (nn_loss_batch) and with torch.nn's loss in float64 with
# autograd, and needs the loss and the gradient within 1e-6 (relative to
# max(1, |torch's value|)); one check per loss, and the worst differences
# printed. Needs TOOLS (`make check` sets it) and /usr/bin/python3 with
# torch and numpy (Debian's python3-torch); without them it is skipped
# (exit 77).
set -u
TOOLS=${TOOLS:?set TOOLS to the folder of the test tools (build/tests/tools)}
cd "$(dirname "$0")/.." || exit 1
. tests/shell_checks.sh
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || skip_all cli_loss_torch "$PYTHON not found (make deps)"
"$PYTHON" -c 'import torch, numpy' 2>/dev/null ||
    skip_all cli_loss_torch "$PYTHON cannot import torch and numpy (make deps installs python3-torch)"
[ -x "$TOOLS/loss_eval" ] || { echo "FAIL: $TOOLS/loss_eval not built"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PYTHON" tests/loss_ref.py "$TOOLS/loss_eval" >"$work/out" 2>"$work/err"
status=$?
losses=0
while IFS= read -r line; do
    case $line in
        "ok "*) ok; losses=$((losses + 1)); echo "$line" ;;
        "FAIL "*) fail "${line#FAIL }"; losses=$((losses + 1)) ;;
        *) echo "$line" ;;
    esac
done <"$work/out"
# Every loss reported (8), and the script's own verdict agrees.
check "loss_ref.py reports all 8 losses (it reported $losses)" test "$losses" -eq 8
[ "$status" -eq 0 ] || [ "$failed" -gt 0 ] || fail "loss_ref.py failed: $(tail -3 "$work/err")"
finish cli_loss_torch
