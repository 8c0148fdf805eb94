#!/bin/sh
# The libFuzzer harnesses of tests/fuzz (see README.md there), built with
# clang under ASan+UBSan into build/fuzz/:
#   sh tests/fuzz/run.sh build               build them only
#   sh tests/fuzz/run.sh replay [NAME...]    run each over its committed corpus once
#   sh tests/fuzz/run.sh fuzz SECONDS [NAME...]   fuzz each for SECONDS
# NAME is config, idx, checkpoint or npz (default: all four). Exits non-zero
# if any harness crashes, leaks, hangs (10 s an input) or goes over 2 GB;
# the input that did it is kept in build/fuzz/artifacts/NAME/ and the log
# with the stack in build/fuzz/NAME.log. New inputs that fuzzing finds go to
# build/fuzz/corpus/NAME/ (kept between runs, merged down to what adds
# coverage after each); the committed corpus is only read. FUZZ_CC picks the compiler (default clang), FUZZ_JOBS the parallel
# compiles (default 2); FUZZ_FLAGS adds libFuzzer flags to every run.
set -eu
cd "$(dirname "$0")/../.."
out=build/fuzz
all="config idx checkpoint npz"
cc=${FUZZ_CC:-clang}
jobs=${FUZZ_JOBS:-2}
sanitize="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
cflags="-std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -Wall -Wextra -Ilib $sanitize $(pkg-config --cflags openblas yaml-0.1 zlib)"
libs="$(pkg-config --libs openblas yaml-0.1 zlib) -lm -lpthread"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

usage() {
    echo "usage: sh tests/fuzz/run.sh build | replay [NAME...] | fuzz SECONDS [NAME...]  (NAME: $all)" >&2
    exit 2
}

# The library once, with coverage for the fuzzer but not its main; an
# object is rebuilt when its source or any library header is newer, or the
# flags changed.
build_lib() {
    mkdir -p "$out/obj"
    flags="$cc -fsanitize=fuzzer-no-link $cflags"
    if [ "$(cat "$out/obj/flags" 2>/dev/null)" != "$flags" ]; then
        rm -f "$out"/obj/*.o
        printf '%s\n' "$flags" >"$out/obj/flags"
    fi
    newest_header=$(ls -t lib/*/*.h | head -n 1)
    for src in lib/*/*.c; do
        # The MPI group needs mpi.h: only `make MPI=1` builds it.
        [ "$src" = lib/train/collective_mpi.c ] && continue
        obj=$out/obj/$(echo "$src" | sed 's|/|_|g; s|\.c$|.o|')
        if [ ! -f "$obj" ] || [ -n "$(find "$src" "$newest_header" -newer "$obj")" ]; then
            printf '%s %s\n' "$src" "$obj"
        fi
    done | xargs -r -n 2 -P "$jobs" sh -c "$flags -c \"\$0\" -o \"\$1\" || exit 255"
}

build() {
    command -v "$cc" >/dev/null 2>&1 || { echo "run.sh: $cc not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
    build_lib
    for name in $all; do
        # shellcheck disable=SC2086
        $cc -fsanitize=fuzzer $cflags -o "$out/fuzz_$name" "tests/fuzz/fuzz_$name.c" "$out"/obj/*.o $libs
    done
    # The config harness's dictionary: the words of the seed configs and the
    # config reference, so that mutations spell keys and layer names.
    { cat tests/fuzz/corpus/config/*; sed -n 's/[^`]*`\([^`]*\)`/\1\n/gp' docs/config.md; } |
        grep -o '[A-Za-z_][A-Za-z0-9_]*' | sort -u | sed 's/.*/"&"/' >"$out/config.dict"
}

# What went wrong: the harness's own words when one of its checks failed,
# else libFuzzer's or a sanitizer's summary.
summary() {
    grep -a '^fuzz_[a-z]*: ' "$1" | tail -n 1 | grep . || grep -a '^SUMMARY: ' "$1" | tail -n 1 || true
}

names() {
    # shellcheck disable=SC2086
    [ $# -eq 0 ] && set -- $all
    for name in "$@"; do
        case " $all " in *" $name "*) ;; *) usage ;; esac
    done
    echo "$@"
}

# Each committed input once (libFuzzer runs the files it is given, no
# fuzzing).
replay() {
    failed=0
    for name in $(names "$@"); do
        log=$out/$name.replay.log
        count=$(ls tests/fuzz/corpus/"$name" | wc -l)
        mkdir -p "$out/artifacts/$name"
        if "$out/fuzz_$name" -rss_limit_mb=2048 -timeout=10 -artifact_prefix="$out/artifacts/$name/" ${FUZZ_FLAGS:-} \
            tests/fuzz/corpus/"$name"/* >"$log" 2>&1 </dev/null; then
            echo "fuzz_$name: replayed $count inputs"
        else
            echo "fuzz_$name: FAILED replaying its corpus: $(summary "$log"); the end of $log:"
            tail -n 40 "$log"
            failed=1
        fi
    done
    return $failed
}

fuzz() {
    seconds=$1
    shift
    failed=0
    for name in $(names "$@"); do
        log=$out/$name.log
        mkdir -p "$out/corpus/$name" "$out/artifacts/$name"
        dict=
        [ "$name" = config ] && dict=-dict=$out/config.dict
        # The first folder receives what fuzzing finds; the committed one is only read.
        if "$out/fuzz_$name" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
            -print_final_stats=1 -artifact_prefix="$out/artifacts/$name/" $dict ${FUZZ_FLAGS:-} \
            "$out/corpus/$name" tests/fuzz/corpus/"$name" >"$log" 2>&1 </dev/null; then
            done_line=$(grep -a '^Done [0-9]* runs in [0-9]* second' "$log" | tail -n 1)
            runs=$(echo "$done_line" | sed 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1/')
            secs=$(echo "$done_line" | sed 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\2/')
            # libFuzzer leaves the inputs that later ones made redundant: keep
            # only what adds coverage, so that the folder does not grow run after run.
            rm -rf "$out/corpus/$name.merged"
            mkdir "$out/corpus/$name.merged"
            if "$out/fuzz_$name" -merge=1 -max_len=65536 -rss_limit_mb=2048 -timeout=10 "$out/corpus/$name.merged" \
                "$out/corpus/$name" >"$out/$name.merge.log" 2>&1 </dev/null; then
                rm -rf "$out/corpus/$name"
                mv "$out/corpus/$name.merged" "$out/corpus/$name"
            fi
            echo "fuzz_$name: $runs runs in $secs s ($(ls "$out/corpus/$name" | wc -l) inputs in $out/corpus/$name)"
        else
            echo "fuzz_$name: FAILED: $(summary "$log") (the input in $out/artifacts/$name/); the end of $log:"
            tail -n 60 "$log"
            failed=1
        fi
    done
    return $failed
}

[ $# -ge 1 ] || usage
command=$1
shift
case $command in
    build) [ $# -eq 0 ] || usage; build ;;
    replay) names "$@" >/dev/null; build; replay "$@" ;;
    fuzz)
        [ $# -ge 1 ] || usage
        case $1 in '' | *[!0-9]* | 0*) usage ;; esac   # 0 would be no limit to libFuzzer
        seconds=$1
        shift
        names "$@" >/dev/null
        build
        fuzz "$seconds" "$@"
        ;;
    *) usage ;;
esac
