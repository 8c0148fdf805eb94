#!/bin/sh
# Runs each test program given, keeps going past failures, and ends with one
# "N passed, N failed" line counting programs (each program's own Check
# summary line comes before it).
passed=0
failed=0
failed_names=""
for test in "$@"; do
    echo "== $test"
    case "$test" in
        *.sh) runner="bash" ;;
        *) runner="" ;;
    esac
    if CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-600} $runner "$test"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failed_names="$failed_names $test"
    fi
done
[ -z "$failed_names" ] || echo "failed:$failed_names"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
