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
# run_one INDEX TEST: TEST's output into $tmp/INDEX.out, its exit status
# into $tmp/INDEX.status and its wall time into $tmp/INDEX.time.
run_one() {
    case "$2" in
        *.sh) runner="bash" ;;
        *) runner="" ;;
    esac
    started=$(date +%s)
    CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-600} $runner "$2" >"$tmp/$1.out" 2>&1 </dev/null
    echo $? >"$tmp/$1.status"
    echo $(($(date +%s) - started)) >"$tmp/$1.time"
}
# count INDEX TEST: adds a finished program to the totals.
count() {
    status=$(cat "$tmp/$1.status")
    case "$status" in
        0) passed=$((passed + 1)) ;;
        77)
            skipped=$((skipped + 1))
            skipped_names="$skipped_names $2"
            grep -E '^[A-Za-z0-9_.-]+: skipped: ' "$tmp/$1.out" | sed "s|^|  $2: |" >>"$tmp/reasons"
            ;;
        *)
            failed=$((failed + 1))
            failed_names="$failed_names $2 (exit $status)"
            ;;
    esac
}
# show_next TEST: the next program in order, TEST, finished: its output,
# its time, and into the totals.
show_next() {
    shown=$((shown + 1))
    echo "== $1"
    cat "$tmp/$shown.out"
    echo "   ($(cat "$tmp/$shown.time") s)"
    count "$shown" "$1"
}
# TEST_JOBS=N (default 1) runs N programs at once (make asan, whose
# programs are single-threaded and slow); each program's output is shown
# whole, in the order given, when it and those before it are done. With 1,
# the output streams as the program runs.
jobs=${TEST_JOBS:-1}
case "$jobs" in '' | *[!0-9]* | 0) jobs=1 ;; esac
if [ "$jobs" -eq 1 ]; then
    index=0
    for test in "$@"; do
        index=$((index + 1))
        echo "== $test"
        case "$test" in
            *.sh) runner="bash" ;;
            *) runner="" ;;
        esac
        # stdout also goes to a file, to collect the "NAME: skipped: why" lines
        started=$(date +%s)
        { CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-600} $runner "$test"; echo $? >"$tmp/$index.status"; } |
            tee "$tmp/$index.out"
        echo "   ($(($(date +%s) - started)) s)"
        count "$index" "$test"
    done
else
    # A pool of $jobs background runs; the next program starts when one ends.
    index=0 shown=0 running=0
    for test in "$@"; do
        index=$((index + 1))
        while [ "$running" -ge "$jobs" ]; do
            sleep 0.2
            running=0
            i=$shown
            while [ "$i" -lt "$index" ]; do
                i=$((i + 1))
                [ "$i" -lt "$index" ] && [ ! -e "$tmp/$i.time" ] && [ -e "$tmp/$i.started" ] && running=$((running + 1))
            done
        done
        : >"$tmp/$index.started"
        run_one "$index" "$test" &
        running=$((running + 1))
        # Show, in order, every program that has finished.
        while [ "$shown" -lt "$index" ] && [ -e "$tmp/$((shown + 1)).time" ]; do
            eval "show_next \"\${$((shown + 1))}\""
        done
    done
    wait
    while [ "$shown" -lt "$index" ]; do
        eval "show_next \"\${$((shown + 1))}\""
    done
fi
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
