#!/bin/sh
# Runs each test program given (the Check programs and tests/cli_*.sh), keeps
# going past failures, and ends with one line counting programs:
#
#     tests: N passed, N failed, N skipped
#
# A program's exit status says how it went (automake's convention):
#   0    passed: everything it checks ran, and passed;
#   77   skipped: nothing failed, but something it needs is missing here (no
#        python3-torch, no data, no valgrind), for the whole program or a part
#        of it. It prints "NAME: skipped: why" for each missing part, and a
#        script's own summary counts its checks as "N passed, N failed,
#        N skipped" (a skipped part is one skipped check);
#   else failed; a failed check wins over a skipped one.
# A test that does not apply to the build under test (valgrind's on a
# sanitizer build) passes with nothing to check: "skipped" means "missing".
#
# Before the summary come the failed programs and the skipped ones with the
# reasons they gave. With NNSEQ_NO_SKIPS=1 (CI, which installs every
# dependency and fetches the data), a skipped program fails the run too:
# after the summary, a line names the skipped programs and the exit is 1.
passed=0
failed=0
skipped=0
failed_names=""
skipped_names=""
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
: >"$tmp/reasons"
for test in "$@"; do
    echo "== $test"
    case "$test" in
        *.sh) runner="bash" ;;
        *) runner="" ;;
    esac
    # stdout also goes to a file, to collect the "NAME: skipped: why" lines
    started=$(date +%s)
    { CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-600} $runner "$test"; echo $? >"$tmp/status"; } | tee "$tmp/out"
    status=$(cat "$tmp/status")
    echo "   ($(($(date +%s) - started)) s)"
    case "$status" in
        0) passed=$((passed + 1)) ;;
        77)
            skipped=$((skipped + 1))
            skipped_names="$skipped_names $test"
            grep -E '^[A-Za-z0-9_.-]+: skipped: ' "$tmp/out" | sed "s|^|  $test: |" >>"$tmp/reasons"
            ;;
        *)
            failed=$((failed + 1))
            failed_names="$failed_names $test (exit $status)"
            ;;
    esac
done
[ -z "$failed_names" ] || echo "failed:$failed_names"
if [ -n "$skipped_names" ]; then
    echo "skipped:$skipped_names"
    cat "$tmp/reasons"
fi
echo "tests: $passed passed, $failed failed, $skipped skipped"
if [ "${NNSEQ_NO_SKIPS:-0}" = 1 ] && [ "$skipped" -gt 0 ]; then
    echo "NNSEQ_NO_SKIPS=1: no test may be skipped, but these were:$skipped_names"
    exit 1
fi
[ "$failed" -eq 0 ]
