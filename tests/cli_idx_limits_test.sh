#!/usr/bin/env bash
# End-to-end: IDX files whose headers promise more or less than they hold,
# and pipes that never end. Each bad file is refused (exit 2, the message
# naming the file and what its header promised) before its data is read: a
# header promising more than the file can hold, bytes after the data, data
# after the gzip stream, a gzip bomb, more than 16 GiB, images and labels of
# different counts. An IDX on a pipe is read as far as its header says and
# no further, so `eval --images /dev/stdin` and `predict -` fed for ever
# finish (under `timeout 20`).
# Needs NNSEQ and GEN_DATA (`make check` sets both).
set -u
NNSEQ=${NNSEQ:?set NNSEQ to the nnseq binary}
GEN_DATA=${GEN_DATA:?set GEN_DATA to the gen_data tool}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/shell_checks.sh"

"$GEN_DATA" "$work" 300 1 train && "$GEN_DATA" "$work" 100 2 test || { echo "gen_data failed"; exit 1; }
cat >"$work/tiny.yaml" <<'EOF'
seed: 3
data:
  train: {images: train-images.idx, labels: train-labels.idx.gz}
  test: {images: test-images.idx, labels: test-labels.idx.gz}
model:
  layers:
    - Flatten
    - Linear: {out_features: 4}
optimizer: {name: adam, lr: 0.01}
train: {epochs: 2, batch_size: 32}
checkpoint: {path: tiny.ckpt}
EOF
"$NNSEQ" train "$work/tiny.yaml" >/dev/null 2>&1 || { echo "training the tiny model failed"; exit 1; }
ckpt=$work/tiny.ckpt
labels=$work/test-labels.idx.gz

# IDX headers by hand: byte N, be32 N (big-endian), header TYPE DIMS...
byte() { printf "\\$(printf '%03o' "$1")"; }
be32() { byte $(($1 >> 24 & 255)); byte $(($1 >> 16 & 255)); byte $(($1 >> 8 & 255)); byte $(($1 & 255)); }
header() {
    local type=$1; shift
    byte 0; byte 0; byte "$type"; byte $#
    for dim in "$@"; do be32 "$dim"; done
}
# at_once NAME START: the command begun at START (date +%s) took at most 5 s
at_once() { check "$1 ...at once" test $(($(date +%s) - $2)) -le 5; }

"$NNSEQ" eval "$ckpt" --images "$work/test-images.idx" --labels "$labels" >"$work/expected.out" 2>/dev/null
check "eval of the real files" grep -q '^samples   100$' "$work/expected.out"

# --- more or less than the header promises --------------------------------------
{ cat "$work/test-images.idx"; printf 'xyz'; } >"$work/trailing.idx"
expect_error "raw bytes after the data" 2 \
    'trailing.idx: 3 trailing bytes after the 3600 bytes of data the header promises' \
    "$NNSEQ" eval "$ckpt" --images "$work/trailing.idx" --labels "$labels"
gzip -c "$work/test-images.idx" >"$work/images.gz"
{ cat "$work/images.gz"; printf 'garbage!'; } >"$work/garbage.gz"
expect_error "garbage after the gzip stream" 2 \
    'garbage.gz: 8 bytes after the end of the gzip stream \(not gzip data\), expected nothing after the 3600 bytes' \
    "$NNSEQ" eval "$ckpt" --images "$work/garbage.gz" --labels "$labels"
cat "$work/images.gz" "$work/images.gz" >"$work/two.gz"
expect_error "a second gzip member" 2 'two.gz: [0-9]+ bytes after the end of the gzip stream \(a second gzip member\)' \
    "$NNSEQ" eval "$ckpt" --images "$work/two.gz" --labels "$labels"
{ header 8 100 6 6; head -c 3601 /dev/zero; } | gzip -c >"$work/more.gz"
expect_error "a gzip member with more than the header promises" 2 \
    'more.gz: the gzip data goes on after the 3600 bytes of data the header promises' \
    "$NNSEQ" eval "$ckpt" --images "$work/more.gz" --labels "$labels"
{ header 8 100 6 6; head -c 3599 /dev/zero; } >"$work/short.idx"
expect_error "a raw file one byte short" 2 'short.idx: truncated: header promises 3600 bytes of data, file has 3599' \
    "$NNSEQ" eval "$ckpt" --images "$work/short.idx" --labels "$labels"

# --- headers promising more than the file can hold, refused before reading ---------
{ header 8 1048576 1048576; head -c 20 /dev/zero; } >"$work/huge.idx"
start=$(date +%s)
expect_error "2^40 bytes promised by a 32-byte file" 2 \
    'huge.idx: truncated: header promises 1099511627776 bytes of data, file has 20' \
    "$NNSEQ" eval "$ckpt" --images "$work/huge.idx" --labels "$labels"
at_once "2^40 bytes" "$start"
sed "s|train-images.idx|huge.idx|" "$work/tiny.yaml" >"$work/huge.yaml"
expect_error "train on it" 2 'huge.idx: truncated: header promises 1099511627776 bytes' \
    "$NNSEQ" train "$work/huge.yaml" --no-checkpoint
# A gzip bomb: 4 GiB promised, 1 MiB of zeros inside, a file of about 1 KiB.
{ header 8 4096 1024 1024; head -c 1048576 /dev/zero; } | gzip -9 -c >"$work/bomb.gz"
start=$(date +%s)
expect_error "a gzip bomb" 2 \
    'bomb.gz: header promises 4294967296 bytes of data, more than a gzip file of [0-9]+ bytes can hold \(deflate expands at most 1032 times\)' \
    "$NNSEQ" eval "$ckpt" --images "$work/bomb.gz" --labels "$labels"
at_once "the bomb" "$start"
expect_error "predict on the bomb" 2 'bomb.gz: header promises 4294967296 bytes of data, more than a gzip file' \
    "$NNSEQ" predict "$ckpt" "$work/bomb.gz"
# 17 GiB of data in a sparse file: as large as promised, over the limit.
{ header 8 17 1024 1048576; } >"$work/sparse.idx"
truncate -s $((16 + (17 << 30))) "$work/sparse.idx"
start=$(date +%s)
expect_error "more than 16 GiB" 2 \
    'sparse.idx: header promises 18253611008 bytes of data, more than the 16 GiB \(17179869184 bytes\) a data file may hold' \
    "$NNSEQ" eval "$ckpt" --images "$work/sparse.idx" --labels "$labels"
at_once "17 GiB" "$start"
rm -f "$work/sparse.idx"
# 2^30 x 3 float64: 24 GiB, for ever.
header 14 1073741824 3 >"$work/f64-header"
start=$(date +%s)
expect_error "more than 16 GiB promised on a pipe" 2 \
    '/dev/stdin: header promises 25769803776 bytes of data, more than the 16 GiB' \
    bash -c "cat '$work/f64-header' /dev/zero | timeout 20 '$NNSEQ' eval '$ckpt' --images /dev/stdin --labels '$labels'"
at_once "24 GiB on a pipe" "$start"

# --- counts compared before either body is read -----------------------------------
# 100 images of 4096 x 4096 (1.6 GB) for ever from a pipe, 300 labels.
start=$(date +%s)
header 8 100 4096 4096 >"$work/big-header"
expect_error "images and labels of different counts" 2 \
    '/dev/stdin has 100 samples but .*train-labels.idx.gz has 300 targets' \
    bash -c "cat '$work/big-header' /dev/zero | timeout 20 '$NNSEQ' eval '$ckpt' --images /dev/stdin --labels '$work/train-labels.idx.gz'"
at_once "the count mismatch" "$start"

# --- pipes that never end --------------------------------------------------------
start=$(date +%s)
bash -c "{ cat '$work/test-images.idx'; cat /dev/zero; } | timeout 20 '$NNSEQ' eval '$ckpt' --images /dev/stdin --labels '$labels'" \
    >"$work/piped.out" 2>"$work/piped.err"
check "eval --images /dev/stdin then zeros for ever: the real files' result" cmp -s "$work/expected.out" "$work/piped.out"
at_once "eval on an endless pipe" "$start"
start=$(date +%s)
check "eval on a header then \`yes\` for ever" bash -c \
    "{ head -c 16 '$work/test-images.idx'; yes; } | timeout 20 '$NNSEQ' eval '$ckpt' --images /dev/stdin --labels '$labels' | grep -q '^samples   100$'"
at_once "eval on yes" "$start"
start=$(date +%s)
check "eval on a gzip stream followed by zeros for ever (not looked at on a pipe)" bash -c \
    "{ cat '$work/images.gz'; cat /dev/zero; } | timeout 20 '$NNSEQ' eval '$ckpt' --images /dev/stdin --labels '$labels' | cmp -s - '$work/expected.out'"
at_once "gzip then zeros" "$start"
start=$(date +%s)
expect_error "a gzip stream of zeros for ever" 2 '/dev/stdin: the gzip data goes on after the 3600 bytes of data the header promises' \
    bash -c "{ cat '$work/test-images.idx'; cat /dev/zero; } | gzip -1 | timeout 20 '$NNSEQ' eval '$ckpt' --images /dev/stdin --labels '$labels'"
at_once "endless gzip" "$start"
start=$(date +%s)
lines=$(bash -c "{ cat '$work/test-images.idx'; yes; } | timeout 20 '$NNSEQ' predict '$ckpt' - 2>/dev/null | wc -l")
check "predict - on an endless pipe: one line per promised image" test "$lines" -eq 100
at_once "predict on an endless pipe" "$start"
check "predict - on it agrees with the file" bash -c \
    "cmp -s <({ cat '$work/test-images.idx'; cat /dev/zero; } | timeout 20 '$NNSEQ' predict '$ckpt' -) <('$NNSEQ' predict '$ckpt' '$work/test-images.idx')"
mkfifo "$work/fifo"
{ cat "$work/test-images.idx"; exec sleep 30; } >"$work/fifo" &
writer=$!
start=$(date +%s)
check "eval on a FIFO whose writer stays open" bash -c \
    "timeout 20 '$NNSEQ' eval '$ckpt' --images '$work/fifo' --labels '$labels' | cmp -s - '$work/expected.out'"
at_once "the FIFO" "$start"
kill "$writer" 2>/dev/null
wait "$writer" 2>/dev/null

finish cli_idx_limits
