#!/usr/bin/env bash
# nnseq's learning-rate schedules against torch.optim.lr_scheduler's:
# tests/sched_ref.py runs a few hundred cases covering every schedule kind
# and argument through $TOOLS/sched_eval and through torch's scheduler on
# an SGD(momentum=0.9) optimiser, and needs every step's rate and momentum
# within 1e-12 relative; one check per kind, one for the arguments both
# refuse. Needs TOOLS (`make check` sets it) and /usr/bin/python3 with torch
# (Debian's python3-torch); without them it is skipped (exit 77).
set -u
TOOLS=${TOOLS:?set TOOLS to the folder of the test tools (build/tests/tools)}
cd "$(dirname "$0")/.." || exit 1
. tests/shell_checks.sh
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || skip_all cli_sched_torch "$PYTHON not found (make deps)"
"$PYTHON" -c 'import torch' 2>/dev/null ||
    skip_all cli_sched_torch "$PYTHON cannot import torch (make deps installs python3-torch)"
[ -x "$TOOLS/sched_eval" ] || { echo "FAIL: $TOOLS/sched_eval not built"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PYTHON" tests/sched_ref.py "$TOOLS/sched_eval" >"$work/out" 2>"$work/err"
status=$?
reports=0
while IFS= read -r line; do
    case $line in
        "ok "*) ok; reports=$((reports + 1)); echo "$line" ;;
        "FAIL "*) fail "${line#FAIL }"; reports=$((reports + 1)) ;;
        *) echo "$line" ;;
    esac
done <"$work/out"
# Every kind reported (11) and the refusals, and the script's own verdict agrees.
check "sched_ref.py reports 11 kinds and the refusals (it reported $reports)" test "$reports" -eq 12
[ "$status" -eq 0 ] || [ "$failed" -gt 0 ] || fail "sched_ref.py failed: $(tail -3 "$work/err")"

# Malformed specs are the tool's message and exit 2, not a crash.
eval_spec() { echo "$1" | "$TOOLS/sched_eval"; }
expect_error "sched_eval: unknown kind" 2 "no such schedule" eval_spec 'case a 1 1 0.1 0.9 sched nosuch end'
expect_error "sched_eval: too many steps" 2 "EPOCHS \\* STEPS" \
    eval_spec 'case a 100000 100000 0.1 0.9 sched step step_size=1 end'
finish cli_sched_torch
