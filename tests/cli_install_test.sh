#!/usr/bin/env bash
# `make install` and `make uninstall` into a staging folder (DESTDIR): the two
# files, their modes, the installed binary run from another folder, the man
# page rendered and covering every option of every command; and the message
# of .ci/deps for a user who is not root and has no sudo. Parts that need
# groff, mandoc or man, or a way to drop root, are skipped without them; a
# run that skipped something and failed nothing exits 77.
# Needs NNSEQ (the binary to install); `make check` sets it. Installs that
# binary as it is: make runs with -o all, so that nothing in build/ (shared
# with whoever else builds) is rebuilt, with other flags or at all.
set -u
NNSEQ=${NNSEQ:?set NNSEQ to the nnseq binary}
case "$NNSEQ" in /*) ;; *) NNSEQ=$PWD/$NNSEQ ;; esac
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/shell_checks.sh"

stage=$work/stage
bin=$stage/usr/bin/nnseq
page=$stage/usr/share/man/man1/nnseq.1
# plain_make ARGS...: make in the repository, cut off from any make that runs
# this script (its MAKEFLAGS would carry BUILD=, NNSEQ_BIN=, -j and the like)
# and from install variables in the environment.
plain_make() {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u DESTDIR -u PREFIX -u BINDIR -u MANDIR make -C "$root" "$@"
}
# make_here ARGS...: make -s ARGS, installing $NNSEQ, never rebuilding it.
make_here() { plain_make -s -o all NNSEQ_BIN="$NNSEQ" "$@"; }
mode() { stat -c %a "$1"; }

# --- make install ------------------------------------------------------------
plain_make -pq install >"$work/database" 2>/dev/null
check "install depends on all (builds first)" grep -qx 'install: all' "$work/database"
make_here -n install >"$work/dry-run"
check "PREFIX defaults to /usr/local: the binary" grep -q ' "/usr/local/bin/nnseq"$' "$work/dry-run"
check "PREFIX defaults to /usr/local: the man page" grep -q ' "/usr/local/share/man/man1/nnseq.1"$' "$work/dry-run"
check "make install" make_here install DESTDIR="$stage" PREFIX=/usr
check "the binary is in BINDIR" test -f "$bin"
check "the binary is mode 755" test "$(mode "$bin")" = 755
check "the binary is the one built" cmp -s "$bin" "$NNSEQ"
check "the man page is in MANDIR/man1" test -f "$page"
check "the man page is mode 644" test "$(mode "$page")" = 644
check "the man page is docs/nnseq.1" cmp -s "$page" "$root/docs/nnseq.1"
check "nothing else is installed" test "$(cd "$stage" && find . ! -type d | sort | tr '\n' ' ')" = "./usr/bin/nnseq ./usr/share/man/man1/nnseq.1 "
check "make install again" make_here install DESTDIR="$stage" PREFIX=/usr
make_here install DESTDIR="$work/alt" BINDIR=/opt/b MANDIR=/opt/m
check "BINDIR and MANDIR can be set" test -x "$work/alt/opt/b/nnseq" -a -f "$work/alt/opt/m/man1/nnseq.1"

# --- the installed binary, run from elsewhere ----------------------------------
check "installed --version" sh -c "cd / && '$bin' --version | grep -qxE 'nnseq [0-9][0-9.]*( \\(git [0-9a-f]+(-dirty)?\\))?'"
check "installed --version is the built one's" test "$(cd / && "$bin" --version)" = "$("$NNSEQ" --version)"
check "installed --help lists the commands" sh -c "cd / && '$bin' --help | grep -q '^  train CONFIG' && '$bin' --help | grep -q '^  export CKPT'"
check "installed train --help" sh -c "cd / && '$bin' train --help | grep -q -- --resume"
check "installed print of a config by absolute path" sh -c "cd / && '$bin' print '$root/configs/fashion_mlp.yaml' >'$work/print.out' &&
    head -1 '$work/print.out' | grep -qx 'Sequential(' && grep -q '^Total params: ' '$work/print.out'"
expect_error "installed binary: bad usage exits 2" 2 "unknown command" sh -c "cd / && '$bin' fly"

# --- the man page ---------------------------------------------------------------
# render FILE: plain text, wide lines, no hyphenation, no overstrike.
if command -v groff >/dev/null 2>&1; then
    render() { groff -man -Tascii -rLL=250n -rHY=0 "$1" 2>/dev/null | sed 's/.\x08//g'; }
    groff -man -Tutf8 -ww -z "$page" >"$work/lint.out" 2>&1
    check "groff -ww: no warning" test $? -eq 0 -a ! -s "$work/lint.out"
elif command -v mandoc >/dev/null 2>&1; then
    render() { mandoc -Tascii -Owidth=250 "$1" | sed 's/.\x08//g'; }
    mandoc -Tlint -Wwarning "$page" >"$work/lint.out" 2>&1
    check "mandoc -Tlint: no warning" test $? -eq 0 -a ! -s "$work/lint.out"
elif command -v man >/dev/null 2>&1; then
    render() { MANWIDTH=250 man -l "$1" 2>/dev/null | sed 's/.\x08//g'; }
else
    render() { return 1; }
fi
[ ! -s "$work/lint.out" ] || cat "$work/lint.out"
if render "$page" >"$work/page.txt" && [ -s "$work/page.txt" ]; then
    for section in NAME SYNOPSIS DESCRIPTION COMMANDS CONFIGURATION FILES ENVIRONMENT "EXIT STATUS" EXAMPLES "SEE ALSO"; do
        check "man page section $section" grep -qx "$section" "$work/page.txt"
    done
    check "man page NAME line" grep -qx ' *nnseq - train .*' "$work/page.txt"
    for command in train eval print predict export plot diff; do
        check "man page describes $command" grep -q "^ *nnseq $command " "$work/page.txt"
        # Every option that the command's usage lines name.
        for option in $("$NNSEQ" "$command" --help | sed -n '/^usage:/,/^$/p' | grep -o -- '--[a-z][a-z0-9-]*' | sort -u); do
            check "man page documents $command $option" grep -qE -- "^ *(--[a-z0-9-]+ [A-Z]+ )*$option\\b" "$work/page.txt"
        done
    done
    check "man page documents train --no-checkpoint" grep -q -- '^ *--no-checkpoint$' "$work/page.txt"
    for variable in OPENBLAS_CORETYPE OPENBLAS_NUM_THREADS COLUMNS; do
        check "man page documents $variable" grep -qx " *$variable" "$work/page.txt"
    done
    check "man page has the predict pipeline" grep -q 'nnseq predict .* - <.*| cut -f2 | sort | uniq -c' "$work/page.txt"
else
    skip_part install "the man page is not rendered: no groff, mandoc or man"
fi
# man itself (man-db) is not needed: groff renders the page above.
if command -v man >/dev/null 2>&1; then
    check "man finds the installed page" sh -c "MANWIDTH=100 man -M '$stage/usr/share/man' 1 nnseq 2>/dev/null | grep -q 'nnseq train'"
fi

# --- make uninstall --------------------------------------------------------------
touch "$stage/usr/bin/other" "$stage/usr/share/man/man1/other.1"
check "make uninstall" make_here uninstall DESTDIR="$stage" PREFIX=/usr
check "the binary is gone" test ! -e "$bin"
check "the man page is gone" test ! -e "$page"
check "uninstall removes only its two files" test -e "$stage/usr/bin/other" -a -e "$stage/usr/share/man/man1/other.1"
check "make uninstall again" make_here uninstall DESTDIR="$stage" PREFIX=/usr

# --- .ci/deps without root -------------------------------------------------------
# As a user who is not root, with a PATH of only `id` (so no sudo, and no
# dpkg-query to find that everything is there already), and with a fake sudo.
nobody=65534
as_user=""
if [ "$(id -u)" -ne 0 ]; then
    as_user="env"
elif command -v setpriv >/dev/null 2>&1 && setpriv --reuid=$nobody --regid=$nobody --clear-groups true 2>/dev/null; then
    as_user="setpriv --reuid=$nobody --regid=$nobody --clear-groups"
elif command -v runuser >/dev/null 2>&1 && runuser -u nobody -- true 2>/dev/null; then
    as_user="runuser -u nobody --"
fi
as_user() { $as_user "$@"; }
if [ -z "$as_user" ]; then
    skip_part install ".ci/deps without root: cannot drop root here"
else
    chmod 755 "$work"
    mkdir -p "$work/deps" "$work/nosudo" "$work/withsudo"
    cp "$root/.ci/deps" "$work/deps/deps"
    ln -s "$(command -v id)" "$work/nosudo/id"
    ln -s "$(command -v id)" "$work/withsudo/id"
    printf '#!/bin/sh\necho "fake sudo: $*"\n' >"$work/withsudo/sudo"
    chmod 755 "$work/deps" "$work/nosudo" "$work/withsudo" "$work/withsudo/sudo"
    chmod 644 "$work/deps/deps"
    expect_error ".ci/deps without root or sudo" 1 "not root and sudo is not installed" \
        as_user env PATH="$work/nosudo" /bin/sh "$work/deps/deps"
    check ".ci/deps says what to run as root" grep -q '^    apt-get update && apt-get install -y .*libopenblas-dev.*groff-base' "$work/err"
    as_user env PATH="$work/withsudo" /bin/sh "$work/deps/deps" >"$work/out" 2>"$work/err"
    check ".ci/deps with sudo: exits 0" test $? -eq 0
    check ".ci/deps with sudo: says it uses sudo" grep -q '^make deps: not root: using sudo to install .*libyaml-dev' "$work/out"
    check ".ci/deps with sudo: runs itself under sudo" grep -qx "fake sudo: sh $work/deps/deps" "$work/out"
fi

finish install
