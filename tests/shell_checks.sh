# Helpers shared by the end-to-end scripts (tests/cli_*.sh source this).
# They count into $passed, $failed and $skipped and use the scratch folder
# $work. Reports go to file descriptor 3, which a script points at its
# stdout, so that they show even from commands whose stdout is redirected.
# Exit statuses follow tests/run.sh: 0 all ran and passed, 77 skipped (all
# or part, nothing failed), anything else failed.
passed=0
failed=0
skipped=0
exec 3>&1

ok() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*" >&3; }
# skip_all NAME WHY: the script cannot run here (no tool, no data): exit 77
skip_all() { echo "$1: skipped: $2" >&3; exit 77; }
# skip_part NAME WHY: a part of the script cannot run; counts one skipped check
skip_part() { skipped=$((skipped + 1)); echo "$1: skipped: $2" >&3; }
# finish NAME: the summary line, then exit 1 if a check failed, else 77 if
# one was skipped, else 0
finish() {
    echo "$1: $passed passed, $failed failed, $skipped skipped"
    [ "$failed" -eq 0 ] || exit 1
    [ "$skipped" -eq 0 ] || exit 77
    exit 0
}
check() { # check NAME COMMAND...: the command must succeed
    local name=$1; shift
    if "$@"; then ok; else fail "$name"; fi
}
# expect_error NAME STATUS PATTERN COMMAND...: exit STATUS, stderr matching PATTERN, nothing on stdout
expect_error() {
    local name=$1 want=$2 pattern=$3; shift 3
    "$@" >"$work/out" 2>"$work/err" </dev/null
    local got=$?
    if [ "$got" -ne "$want" ]; then fail "$name: exit $got, expected $want ($(head -c 300 "$work/err"))"; return; fi
    if ! grep -qE -- "$pattern" "$work/err"; then fail "$name: stderr lacks /$pattern/: $(head -c 300 "$work/err")"; return; fi
    if [ -s "$work/out" ]; then fail "$name: wrote to stdout on error"; return; fi
    ok
}
# tiny_config FILE: a one-epoch Flatten + Linear(4) config on gen_data's
# train-/test- files beside FILE (the model the limit scripts load)
tiny_config() {
    printf '%s\n' 'seed: 3' 'data:' \
        '  train: {images: train-images.idx, labels: train-labels.idx.gz}' \
        '  test: {images: test-images.idx, labels: test-labels.idx.gz}' \
        'model:' '  layers:' '    - Flatten' '    - Linear: {out_features: 4}' \
        'optimizer: {name: sgd, lr: 0.01}' 'train: {epochs: 1, batch_size: 16}' >"$1"
}
