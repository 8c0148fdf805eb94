#!/usr/bin/env bash
# End-to-end tests of .npz archives that claim more than they hold (issue
# 14): `train --init` and `predict` refuse them with exit 2 and a message
# naming the file, the entry and the limit, in little memory and time; and
# what numpy writes (np.savez, np.savez_compressed, zipfile's data
# descriptors) still loads. The archives are made here by /usr/bin/python3
# (numpy and zipfile, some bytes by hand).
# Needs NNSEQ (the binary) and GEN_DATA (tests/tools/gen_data); `make check` sets both.
set -u
NNSEQ=${NNSEQ:?set NNSEQ to the nnseq binary}
GEN_DATA=${GEN_DATA:-$(dirname "$0")/../build/tests/tools/gen_data}
PYTHON=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/shell_checks.sh"

[ -x "$PYTHON" ] || skip_all cli_npz_limits "$PYTHON not found (make deps)"
"$PYTHON" -c 'import numpy' 2>/dev/null || skip_all cli_npz_limits "$PYTHON cannot import numpy (make deps)"
"$GEN_DATA" "$work" 300 1 train && "$GEN_DATA" "$work" 100 2 test || { echo "gen_data failed"; exit 1; }

tiny_config "$work/tiny.yaml"
check "train the tiny model" "$NNSEQ" train "$work/tiny.yaml" --out "$work/tiny.ckpt" --format tsv >/dev/null 2>&1
check "export its weights" "$NNSEQ" export "$work/tiny.ckpt" "$work/w.npz" 2>/dev/null

# make.py KIND OUT: the archives, from w.npz's arrays ('1.weight' (4, 36), '1.bias' (4,)).
cat >"$work/make.py" <<'EOF'
import ctypes, io, struct, sys, zipfile, zlib
import numpy as np
kind, out = sys.argv[1], sys.argv[2]
weights = dict(np.load(sys.argv[3])) if len(sys.argv) > 3 else {}

def npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()

def local_header(name, crc, compressed, size, method=8, flags=0):
    return struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, method, 0, 0x21, crc, compressed, size, len(name), 0) + name

def central_header(name, crc, compressed, size, offset, method=8, flags=0):
    return struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, flags, method, 0, 0x21, crc, compressed, size,
                       len(name), 0, 0, 0, 0, 0, offset) + name

def end_record(count, directory_size, directory_offset):
    return struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, directory_size, directory_offset, 0)

def deflate(data):
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()

def rewrite(path, old, new):
    data = open(path, "rb").read()
    assert old in data, old
    open(path, "wb").write(data.replace(old, new))

def set_central_flags(path, flags):
    data = bytearray(open(path, "rb").read())
    at = struct.unpack_from("<I", data, len(data) - 6)[0]  # the directory's offset (no comment)
    assert struct.unpack_from("<I", data, at)[0] == 0x02014B50
    struct.pack_into("<H", data, at + 8, struct.unpack_from("<H", data, at + 8)[0] | flags)
    open(path, "wb").write(data)

if kind == "savez":
    np.savez(out, **weights)
elif kind == "savez_compressed":
    np.savez_compressed(out, **weights)
elif kind == "descriptors":
    # zipfile writes data descriptors (flag bit 3, zeros in the local
    # header) when it cannot seek back.
    class Unseekable(io.RawIOBase):
        def __init__(self, file): self.file = file
        def writable(self): return True
        def write(self, b): return self.file.write(b)
    with open(out, "wb") as file, zipfile.ZipFile(Unseekable(file), "w", zipfile.ZIP_DEFLATED) as z:
        for key, value in weights.items():
            z.writestr(key + ".npy", npy_bytes(value))
    with zipfile.ZipFile(out) as z:
        assert all(info.flag_bits & 8 for info in z.infolist())
elif kind == "overlap_bomb":
    # Fifield's "better zip bomb": entry i's deflate stream is a stored
    # block quoting its .npy header and entry i+1's local header, then
    # entry i+1's stream; all share one kernel of deflated zeros. The CRCs
    # and .npy headers are right, so only the overlap gives it away: 29
    # entries of 100 MB in 100 KB.
    count, kernel_size = 29, 100_000_000
    libz = ctypes.CDLL("libz.so.1")
    libz.crc32_combine.restype = ctypes.c_ulong
    libz.crc32_combine.argtypes = [ctypes.c_ulong, ctypes.c_ulong, ctypes.c_long]
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    kernel = compressor.compress(bytes(kernel_size)) + compressor.flush()
    names = [b"%d.weight.npy" % i for i in range(count)]
    def npy_header(size):  # 128 bytes: a uint8 vector filling the rest
        text = ("{'descr': '|u1', 'fortran_order': False, 'shape': (%d,), }" % (size - 128)).ljust(117) + "\n"
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) + text.encode()
    size, crc, tail, entries = kernel_size, zlib.crc32(bytes(kernel_size)), kernel, []
    for i in reversed(range(count)):
        following = local_header(names[i + 1], *entries[-1][1:]) if entries else b""
        size += 128 + len(following)
        quoted = npy_header(size) + following
        tail = struct.pack("<BHH", 0, len(quoted), len(quoted) ^ 0xFFFF) + quoted + tail
        crc = libz.crc32_combine(zlib.crc32(quoted), crc, size - len(quoted)) & 0xFFFFFFFF
        entries.append((names[i], crc, len(tail), size))
    entries.reverse()
    body = local_header(*entries[0]) + tail
    directory, offset = b"", 0
    for name, crc, compressed, size in entries:
        directory += central_header(name, crc, compressed, size, offset)
        offset += 30 + len(name) + 5 + 128
    open(out, "wb").write(body + directory + end_record(count, len(directory), len(body)))
elif kind == "shared_header":
    # The classic overlap: one entry's bytes, and 1000 directory entries
    # under their own names pointing at them.
    data = npy_bytes(weights["1.weight"])
    packed = deflate(data)
    crc = zlib.crc32(data)
    body = local_header(b"1.weight.npy", crc, len(packed), len(data)) + packed
    directory = b"".join(central_header(b"k%d.npy" % i, crc, len(packed), len(data), 0) for i in range(1000))
    open(out, "wb").write(body + directory + end_record(1000, len(directory), len(body)))
elif kind == "ratio":
    # One deflated entry declaring 2 GB from a few hundred bytes.
    data = npy_bytes(weights["1.weight"])
    packed = deflate(data)
    body = local_header(b"1.weight.npy", zlib.crc32(data), len(packed), 2_000_000_000) + packed
    directory = central_header(b"1.weight.npy", zlib.crc32(data), len(packed), 2_000_000_000, 0)
    open(out, "wb").write(body + directory + end_record(1, len(directory), len(body)))
elif kind == "header_mismatch":
    # '1.weight' (4, 36) float32 plus 500 MB of zeros: a size deflate can
    # give, that the .npy header inside disagrees with.
    data = npy_bytes(weights["1.weight"])
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = compressor.compress(data) + compressor.compress(bytes(500_000_000)) + compressor.flush()
    size, crc = len(data) + 500_000_000, zlib.crc32(bytes(500_000_000), zlib.crc32(data))
    body = local_header(b"1.weight.npy", crc, len(packed), size) + packed
    directory = central_header(b"1.weight.npy", crc, len(packed), size, 0)
    open(out, "wb").write(body + directory + end_record(1, len(directory), len(body)))
elif kind == "encrypted":
    np.savez(out, **weights)
    set_central_flags(out, 1)
elif kind == "bzip2":
    with zipfile.ZipFile(out, "w", zipfile.ZIP_BZIP2) as z:
        for key, value in weights.items():
            z.writestr(key + ".npy", npy_bytes(value))
elif kind == "duplicate":
    import warnings
    warnings.simplefilter("ignore")
    with zipfile.ZipFile(out, "w") as z:
        for key in ["1.weight", "1.bias", "1.weight"]:
            z.writestr(key + ".npy", npy_bytes(weights[key]))
elif kind == "crc":
    np.savez(out, **dict(weights, **{"1.bias": np.full(4, 1.5, np.float32)}))
    rewrite(out, struct.pack("<f", 1.5) * 4, struct.pack("<f", 1.5) * 3 + struct.pack("<f", 2.5))
elif kind == "nul":
    np.savez(out, **weights)
    rewrite(out, b"1.bias.npy", b"1.b\0as.npy")
EOF
build() { "$PYTHON" "$work/make.py" "$1" "$work/$1.npz" "$work/w.npz" || fail "make.py $1"; }

# --- what numpy writes loads ---------------------------------------------
for kind in savez savez_compressed descriptors; do
    build $kind
    check "--init $kind.npz loads" "$NNSEQ" train "$work/tiny.yaml" --init "$work/$kind.npz" --epochs 1 --lr 0 \
        --out "$work/$kind.ckpt" --format tsv
    check "--init $kind.npz, --lr 0: export gives w.npz back" sh -c "'$NNSEQ' export '$work/$kind.ckpt' '$work/$kind-back.npz' 2>/dev/null &&
        '$PYTHON' -c 'import numpy as np, sys; a, b = np.load(sys.argv[1]), np.load(sys.argv[2]); sys.exit(not all((a[k] == b[k]).all() for k in a))' '$work/w.npz' '$work/$kind-back.npz'"
done >/dev/null 2>&1

# --- hostile archives: refused before anything large is allocated --------
refused() { # refused NAME KIND PATTERN: train --init KIND.npz exits 2 with PATTERN
    expect_error "--init $2.npz: $1" 2 "$3" "$NNSEQ" train "$work/tiny.yaml" --init "$work/$2.npz" --no-checkpoint
}
build overlap_bomb
build shared_header
build ratio
build header_mismatch
build encrypted
build bzip2
build duplicate
build crc
build nul
refused "entries in one deflate stream" overlap_bomb \
    "overlap_bomb\.npz: entry 1\.weight\.npy: overlaps entry 0\.weight\.npy: it starts at offset 175, inside that entry's bytes 0 to [0-9]+ \(entries must not share bytes"
refused "1000 entries on one local header" shared_header "shared_header\.npz: entry k[0-9]+\.npy: overlaps entry k[0-9]+\.npy"
refused "2 GB from a few hundred bytes" ratio \
    "ratio\.npz: entry 1\.weight\.npy: size 2000000000 cannot come from [0-9]+ deflated bytes \(deflate gives at most 1032 times"
refused ".npy header against the declared size" header_mismatch \
    "header_mismatch\.npz: entry 1\.weight\.npy: shape \(4, 36\) of '<f4' needs 576 bytes of data, the entry holds 500000576"
refused "encryption" encrypted "encrypted\.npz: entry 1\.weight\.npy: encrypted entries are not supported"
refused "bzip2" bzip2 "bzip2\.npz: entry 1\.weight\.npy: unsupported compression method 12 \(expected 0, stored, or 8, deflated\)"
refused "duplicate names" duplicate "duplicate\.npz: duplicate key '1\.weight' \(entries 0 and 2\)"
refused "CRC mismatch" crc "crc\.npz: CRC mismatch in entry 1\.bias\.npy \(stored [0-9a-f]{8}, computed [0-9a-f]{8}\)"
refused "NUL in a name" nul "nul\.npz: entry 1\.b: a NUL byte in its name"
expect_error "predict: the overlap bomb" 2 "overlap_bomb\.npz: entry 1\.weight\.npy: overlaps entry 0\.weight\.npy" \
    "$NNSEQ" predict "$work/tiny.ckpt" "$work/overlap_bomb.npz" --input-format npy

# The bomb and the mismatched header cost no more memory or time than a
# plain run: before issue 14 the 100 KB bomb reached 2.9 GB.
if [ -x /usr/bin/time ]; then
    for kind in overlap_bomb header_mismatch; do
        /usr/bin/time -f "%M %e" -o "$work/$kind.time" "$NNSEQ" train "$work/tiny.yaml" --init "$work/$kind.npz" \
            --no-checkpoint >/dev/null 2>&1
        read -r rss seconds < <(tail -1 "$work/$kind.time")
        check "$kind.npz: peak RSS ${rss} KB, under 200 MB" test "$rss" -lt 200000
        check "$kind.npz: ${seconds}s, under 5" awk -v s="$seconds" 'BEGIN { exit !(s < 5) }'
    done
else
    skip_part cli_npz_limits "/usr/bin/time not found: memory and time not measured"
fi

finish cli_npz_limits
