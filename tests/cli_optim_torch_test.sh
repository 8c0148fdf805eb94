#!/usr/bin/env bash
# nnseq's optimisers against torch.optim's: tests/optim_ref.py runs every
# optimiser with each of its arguments (and with no_decay and a per-step
# schedule of lr and momentum) for 300 steps through $TOOLS/optim_eval and
# through torch.optim, and needs every parameter within 1e-5 (relative to
# max(1, |torch's value|)); values torch refuses must be refused. One check
# per kind-arguments combination, and the worst figure per kind printed.
# Needs TOOLS (`make check` sets it) and /usr/bin/python3 with torch and
# numpy (Debian's python3-torch); without them it is skipped (exit 77).
set -u
TOOLS=${TOOLS:?set TOOLS to the folder of the test tools (build/tests/tools)}
cd "$(dirname "$0")/.." || exit 1
. tests/shell_checks.sh
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || skip_all cli_optim_torch "$PYTHON not found (make deps)"
"$PYTHON" -c 'import torch, numpy' 2>/dev/null ||
    skip_all cli_optim_torch "$PYTHON cannot import torch and numpy (make deps installs python3-torch)"
[ -x "$TOOLS/optim_eval" ] || { echo "FAIL: $TOOLS/optim_eval not built"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PYTHON" tests/optim_ref.py "$TOOLS/optim_eval" >"$work/out" 2>"$work/err"
status=$?
cases=0
kinds=0
while IFS= read -r line; do
    case $line in
        "ok "*) ok; cases=$((cases + 1)) ;;
        "FAIL "*) fail "${line#FAIL }"; cases=$((cases + 1)) ;;
        "  worst for "*) kinds=$((kinds + 1)); echo "$line" ;;
        *) echo "$line" ;;
    esac
done <"$work/out"
# Every kind reported (9), each case once, and the script's own verdict agrees.
check "optim_ref.py reports all 9 optimizers (it reported $kinds)" test "$kinds" -eq 9
check "optim_ref.py ran at least 150 cases (it ran $cases)" test "$cases" -ge 150
[ "$status" -eq 0 ] || [ "$failed" -gt 0 ] || fail "optim_ref.py failed: $(tail -3 "$work/err")"
finish cli_optim_torch
