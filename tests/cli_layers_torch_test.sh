#!/bin/sh
# Every layer case of tests/layer_cases/*.txt (or of the case files given as
# arguments) against torch.nn, through tests/layer_ref.py: nnseq print's
# text and table, and tools/layer_eval's initial state, outputs in training
# and eval, input and parameter gradients and buffers against torch's (the
# case format and the tolerance are in layer_ref.py). Each case counts as a
# check. Needs NNSEQ and TOOLS (`make check` sets both) and /usr/bin/python3
# with torch, numpy and yaml; without them it is skipped (exit 77).
set -u
NNSEQ=${NNSEQ:?set NNSEQ to the nnseq binary}
TOOLS=${TOOLS:?set TOOLS to the folder of the test tools (build/tests/tools)}
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/shell_checks.sh"
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || skip_all cli_layers_torch "$PYTHON not found (make deps)"
"$PYTHON" -c 'import torch, numpy, yaml' 2>/dev/null ||
    skip_all cli_layers_torch "$PYTHON cannot import torch, numpy and yaml (make deps installs python3-torch)"
[ -x "$TOOLS/layer_eval" ] || { echo "FAIL: $TOOLS/layer_eval is missing (make it)"; exit 1; }
[ $# -gt 0 ] || set -- "$root"/tests/layer_cases/*.txt

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PYTHON" "$root/tests/layer_ref.py" --nnseq "$NNSEQ" --tools "$TOOLS" "$@" >"$work/out" 2>"$work/err"
status=$?
summary=false
while IFS= read -r line; do
    case $line in
        "ok "*) ok ;;
        "FAIL "*) failed=$((failed + 1)); echo "$line" >&3 ;;
        "layer_ref: "*) summary=true ;;
        *) echo "$line" ;;
    esac
done <"$work/out"
# A crash (a traceback, no summary line) must not pass for the cases it never reached.
if ! $summary || [ "$status" -gt 1 ]; then fail "layer_ref.py exited $status: $(tail -3 "$work/err")"; fi
finish cli_layers_torch
