#!/usr/bin/env bash
# End-to-end tests of checkpoints and configs that claim more than they hold
# (issue 14): `print` and `eval` refuse them with exit 2 and a message naming
# the file and the limit, quickly (each under `timeout`); a checkpoint whose
# array is large but real reads in about that array's memory, not twice it;
# a config nested 200000 deep (72 s in libyaml before the depth limit) is
# refused within a second. The checkpoints are made here from a real one by
# /usr/bin/python3 (struct and zlib only).
# Needs NNSEQ (the binary) and GEN_DATA (tests/tools/gen_data); `make check` sets both.
set -u
NNSEQ=${NNSEQ:?set NNSEQ to the nnseq binary}
GEN_DATA=${GEN_DATA:-$(dirname "$0")/../build/tests/tools/gen_data}
PYTHON=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/shell_checks.sh"

[ -x "$PYTHON" ] || skip_all cli_container_limits "$PYTHON not found (make deps)"
"$GEN_DATA" "$work" 300 1 train && "$GEN_DATA" "$work" 100 2 test || { echo "gen_data failed"; exit 1; }

tiny_config "$work/tiny.yaml"
check "train the tiny model" "$NNSEQ" train "$work/tiny.yaml" --out "$work/tiny.ckpt" --format tsv >/dev/null 2>&1

# make.py KIND IN OUT: a checkpoint made from IN's records (docs/checkpoint.md's layout), CRCs correct
# unless KIND damages them.
cat >"$work/make.py" <<'EOF'
import random, struct, sys, zlib
kind, source, out = sys.argv[1:4]

def records(path):
    data = open(path, "rb").read()
    raw = zlib.decompress(data[40:])
    at, found = 4, []
    for _ in range(struct.unpack_from("<I", raw)[0]):
        n, = struct.unpack_from("<H", raw, at)
        name, dtype, rank = raw[at + 2:at + 2 + n], raw[at + 2 + n], raw[at + 3 + n]
        at += 4 + n
        dims = struct.unpack_from(f"<{rank}Q", raw, at)
        at += 8 * rank
        size = {0: 4, 1: 8, 2: 1}[dtype]
        for d in dims:
            size *= d
        found.append([name, dtype, dims, raw[at:at + size]])
        at += size
    return found

def head(name, dtype, dims):
    return struct.pack("<H", len(name)) + name + bytes([dtype, len(dims)]) + b"".join(struct.pack("<Q", d) for d in dims)

def write(pieces, count, raw_size=None, trailing=b"", flip=None):
    """pieces: bytes, or (byte, n): n copies of one byte, compressed as they stream."""
    c = zlib.compressobj(9)
    body, total = [c.compress(struct.pack("<I", count))], 4
    for p in pieces:
        if isinstance(p, tuple):
            left = p[1]
            while left:
                k = min(left, 1 << 24)
                body.append(c.compress(p[0] * k))
                left -= k
            total += p[1]
        else:
            body.append(c.compress(p))
            total += len(p)
    payload = bytearray(b"".join(body) + c.flush())
    header = b"NNSEQCK\0" + struct.pack("<IIQQI", 1, 0, len(payload), total if raw_size is None else raw_size,
                                        zlib.crc32(payload))
    if flip is not None:
        payload[flip] ^= 0x10
    open(out, "wb").write(header + struct.pack("<I", zlib.crc32(header)) + payload + trailing)

recs = records(source)
whole = [head(*r[:3]) + r[3] for r in recs]
def with_config(text):
    return [head(b"config.yaml", 2, (len(text),)) + text if r[0] == b"config.yaml" else head(*r[:3]) + r[3]
            for r in recs]
config = next(r[3] for r in recs if r[0] == b"config.yaml")
if kind == "junk":            # a real 256 MiB array of zeros beside the model (a 256 KB file)
    write(whole + [head(b"junk", 2, (256 << 20,)), (b"\0", 256 << 20)], len(recs) + 1)
elif kind == "short":         # an array of 64 MiB whose stream ends after 70 KB of noise
    noise = random.Random(1).randbytes(70000)
    piece = head(b"junk", 2, (64 << 20,))
    write([piece + noise], 1, raw_size=4 + len(piece) + (64 << 20))
elif kind == "huge-raw":      # a header claiming 1 TiB of raw payload
    write(whole, len(recs), raw_size=1 << 40)
elif kind == "many":          # 70000 arrays claimed, room for them in the payload
    write(whole + [(b"\0", 6 * 70000)], 70000)
elif kind == "trailing":
    write(whole, len(recs), trailing=b"abc")
elif kind == "flipped":
    write(whole, len(recs), flip=100)
elif kind == "deep-config":   # the stored config with a list nested 200000 deep
    write(with_config(config + b"x: " + b"[" * 200000 + b"]" * 200000 + b"\n"), len(recs))
elif kind == "big-config":    # the stored config after a 2 MiB comment
    write(with_config(b"#" * (2 << 20) + b"\n" + config), len(recs))
else:
    sys.exit("unknown kind " + kind)
EOF
for kind in junk short huge-raw many trailing flipped deep-config big-config; do
    check "make $kind.ckpt" "$PYTHON" "$work/make.py" $kind "$work/tiny.ckpt" "$work/$kind.ckpt"
done

# --- hostile checkpoints: exit 2, quickly, naming the file and the limit -------------------------
for command in print eval; do
    expect_error "$command: 1 TiB raw payload" 2 "huge-raw.ckpt: damaged: raw payload size 1099511627776 impossible" \
        timeout 10 "$NNSEQ" $command "$work/huge-raw.ckpt"
    expect_error "$command: 70000 arrays" 2 "many.ckpt: damaged: 70000 arrays, a checkpoint holds at most 65536" \
        timeout 10 "$NNSEQ" $command "$work/many.ckpt"
    expect_error "$command: stream shorter than its array" 2 \
        "short.ckpt: damaged: payload inflates to [0-9]+ bytes, the header gives 67108884" \
        timeout 10 "$NNSEQ" $command "$work/short.ckpt"
    expect_error "$command: trailing bytes" 2 "trailing.ckpt: damaged: 3 bytes after the [0-9]+-byte payload" \
        timeout 10 "$NNSEQ" $command "$work/trailing.ckpt"
    expect_error "$command: flipped payload byte" 2 "flipped.ckpt: damaged: CRC mismatch in the compressed payload" \
        timeout 10 "$NNSEQ" $command "$work/flipped.ckpt"
    expect_error "$command: stored config nested 200000 deep" 2 \
        "deep-config.ckpt: the stored config: .*tiny.yaml:[0-9]+:[0-9]+: nesting deeper than 64 levels" \
        timeout 10 "$NNSEQ" $command "$work/deep-config.ckpt"
    expect_error "$command: stored config of 2 MiB" 2 \
        "big-config.ckpt: the stored config: .*tiny.yaml: 2[0-9]{6} bytes, too large for a config \(expected at most 1048576 bytes, 1 MiB\)" \
        timeout 10 "$NNSEQ" $command "$work/big-config.ckpt"
done

# --- a large real array costs about itself: 256 MiB, not the 512 MiB of raw payload and copy -------
check "print a checkpoint with a 256 MiB array" timeout 60 "$NNSEQ" print "$work/junk.ckpt" >/dev/null 2>&1
if [ -x /usr/bin/time ]; then
    /usr/bin/time -f "%M" -o "$work/rss" timeout 60 "$NNSEQ" print "$work/junk.ckpt" >/dev/null 2>&1
    rss=$(tail -n 1 "$work/rss")
    # 256 MiB is 262144 KB; sanitizers add their own tens of MB, holding the payload too would add 262144 more.
    check "peak RSS ${rss} KB under 400000 KB" [ "$rss" -lt 400000 ]
else
    skip_part cli_container_limits "/usr/bin/time not found: peak RSS not measured"
fi

# --- configs nested too deep: refused within a second --------------------------------------------
"$PYTHON" -c 'import sys; sys.stdout.write("model:\n  layers: " + "[" * 200000 + "]" * 200000 + "\n")' >"$work/flow.yaml"
"$PYTHON" -c 'import sys; sys.stdout.write("model:\n  layers:\n    " + "- " * 200000 + "x\n")' >"$work/block.yaml"
expect_error "print: flow lists nested 200000 deep" 2 "flow.yaml:2:73: nesting deeper than 64 levels" \
    timeout 1 "$NNSEQ" print "$work/flow.yaml"
expect_error "print: block lists nested 200000 deep" 2 "block.yaml:3:129: nesting deeper than 64 levels" \
    timeout 1 "$NNSEQ" print "$work/block.yaml"
"$PYTHON" -c 'import sys; sys.stdout.write("#" * (2 << 20) + "\nmodel: {layers: [ReLU]}\n")' >"$work/big.yaml"
expect_error "print: a 2 MiB config" 2 "big.yaml: [0-9]+ bytes, too large for a config \(expected at most 1048576 bytes" \
    timeout 10 "$NNSEQ" print "$work/big.yaml"

finish cli_container_limits
