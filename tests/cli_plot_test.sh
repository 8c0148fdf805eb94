#!/usr/bin/env bash
# End-to-end tests of the SVG plots (issue 18): nnseq plot of --log CSVs and
# of checkpoints, nnseq eval --plot's confusion heat map, their XML, what
# headless Chromium renders of them (PNG decoded here with zlib: not blank,
# the runs' colours present), and the bad inputs that must leave nothing
# written. Needs NNSEQ, GEN_DATA and python3; without chromium the
# rendering checks count as skipped.
set -u
NNSEQ=${NNSEQ:?set NNSEQ to the nnseq binary}
GEN_DATA=${GEN_DATA:?set GEN_DATA to the gen_data tool}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/shell_checks.sh"
command -v python3 >/dev/null 2>&1 || skip_all cli_plot_test "no python3 to read the SVG and PNG files"

"$GEN_DATA" "$work" 300 1 train && "$GEN_DATA" "$work" 100 2 test || { echo "gen_data failed"; exit 1; }
config() { # config FILE OPTIMIZER
    printf '%s\n' 'seed: 3' 'data:' \
        '  train: {images: train-images.idx, labels: train-labels.idx.gz}' \
        '  test: {images: test-images.idx, labels: test-labels.idx.gz}' \
        '  val_split: 0.2' 'model:' '  layers:' '    - Flatten' '    - Linear: {out_features: 8}' '    - ReLU' \
        '    - Linear: {out_features: 4}' "optimizer: $2" 'train: {epochs: 5, batch_size: 16}' >"$1"
}
config "$work/adam.yaml" "{name: adam, lr: 0.002}"
config "$work/sgd.yaml" "{name: sgd, lr: 0.05}"
# An autoencoder: a regression run, for eval --plot's refusal and r2 curves.
printf '%s\n' 'seed: 3' 'data:' '  train: {images: train-images.idx}' '  target: input' '  test_split: 0.25' \
    '  val_split: 0.2' 'model:' '  layers:' '    - Flatten' '    - Linear: {out_features: 4}' '    - ReLU' \
    '    - Linear: {out_features: 36}' 'loss: mse' 'optimizer: {name: adam, lr: 0.01}' \
    'train: {epochs: 3, batch_size: 16}' >"$work/ae.yaml"
train() { "$NNSEQ" train "$@" --threads 1 >/dev/null 2>&1; }
train "$work/adam.yaml" --log "$work/adam.csv" --out "$work/adam.ckpt" &&
    train "$work/sgd.yaml" --log "$work/sgd.csv" --out "$work/sgd.ckpt" &&
    train "$work/ae.yaml" --log "$work/ae.csv" --out "$work/ae.ckpt" &&
    train "$work/adam.yaml" --log "$work/adam.jsonl" --out "$work/adam2.ckpt" || { echo "training failed"; exit 1; }

# svg_check FILE WHAT...: FILE parses as XML with an <svg> root, and holds
# each WHAT: text=STRING (a <text> element whose text is STRING),
# polylines>=N, polylines=N, circles>=N, cells=N (heat map rectangles),
# cell_sum=N (their numbers add up to N)
cat >"$work/svg_check.py" <<'EOF'
import sys, xml.etree.ElementTree as ET
ns = "{http://www.w3.org/2000/svg}"
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == ns + "svg", root.tag
texts = [t.text or "" for t in root.iter(ns + "text")]
polylines = len(list(root.iter(ns + "polyline")))
circles = len(list(root.iter(ns + "circle")))
# heat map cells: the rectangles with a thin border, each followed by its count
cells = [r for r in root.iter(ns + "rect") if r.get("stroke-width") == "0.5"]
numbers = [int(t.text) for t in root.iter(ns + "text") if t.get("fill") in ("#000000", "#ffffff")]
for want in sys.argv[2:]:
    key, value = want.split(">=", 1) if ">=" in want else want.split("=", 1)
    if want.startswith("text="):
        assert value in texts, "no text %r in %r" % (value, texts[:40])
    elif want.startswith("polylines>="):
        assert polylines >= int(value), "%d polylines < %s" % (polylines, value)
    elif want.startswith("polylines="):
        assert polylines == int(value), "%d polylines != %s" % (polylines, value)
    elif want.startswith("circles>="):
        assert circles >= int(value), "%d circles < %s" % (circles, value)
    elif want.startswith("cells="):
        assert len(cells) == int(value) and len(numbers) == int(value), (len(cells), len(numbers))
    elif want.startswith("cell_sum="):
        assert sum(numbers) == int(value), "counts add to %d" % sum(numbers)
    else:
        raise SystemExit("unknown check " + want)
EOF
svg_check() { python3 "$work/svg_check.py" "$@" 2>"$work/svg_err" || { cat "$work/svg_err" >&3; return 1; }; }

# png_check FILE COLOUR...: the PNG has more than 2% non-white pixels, more
# than 2 colours, and pixels within 40 (per channel) of each #rrggbb COLOUR
cat >"$work/png_check.py" <<'EOF'
import sys, struct, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat = 8, b""
while pos < len(data):
    length, kind = struct.unpack(">I4s", data[pos:pos + 8])
    chunk = data[pos + 8:pos + 8 + length]
    if kind == b"IHDR":
        width, height, depth, colour_type = struct.unpack(">IIBB", chunk[:10])
    elif kind == b"IDAT":
        idat += chunk
    pos += 12 + length
assert depth == 8 and colour_type in (2, 6), (depth, colour_type)
bpp = 3 if colour_type == 2 else 4
raw, stride = zlib.decompress(idat), width * bpp
rows, prev, i = [], bytearray(stride), 0
for y in range(height):
    f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
    i += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0
        b, c = prev[x], prev[x - bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(bytes(line))
    prev = line
pixels = [row[x:x + 3] for row in rows for x in range(0, stride, bpp)]
non_white = sum(1 for p in pixels if p != b"\xff\xff\xff")
colours = set(pixels)
print("%s: %dx%d, %d non-white pixels (%.1f%%), %d colours" % (sys.argv[1], width, height, non_white,
      100.0 * non_white / len(pixels), len(colours)))
assert non_white > 0.02 * len(pixels), "blank: %d non-white pixels" % non_white
assert len(colours) > 2, "%d colours" % len(colours)
for want in sys.argv[2:]:
    r, g, b = (int(want[k:k + 2], 16) for k in (1, 3, 5))
    near = sum(1 for p in colours if abs(p[0] - r) < 40 and abs(p[1] - g) < 40 and abs(p[2] - b) < 40)
    assert near, "no pixel near %s" % want
EOF
chromium_bin=$(command -v chromium || command -v chromium-browser || true)
# rendered NAME SVG COLOUR...: Chromium's screenshot of SVG passes png_check
rendered() {
    local name=$1 svg=$2; shift 2
    if [ -z "$chromium_bin" ]; then skip_part cli_plot_test "$name: no chromium (apt-get install chromium)"; return; fi
    rm -f "$work/shot.png"
    timeout 120 "$chromium_bin" --headless --no-sandbox --disable-gpu --user-data-dir="$work/chromium" \
        --screenshot="$work/shot.png" --window-size=800,600 "file://$svg" >/dev/null 2>&1
    if [ ! -s "$work/shot.png" ]; then fail "$name: chromium wrote no screenshot"; return; fi
    cp "$work/shot.png" "${PLOT_PNG_DIR:-$work}/$(basename "$svg" .svg).png" 2>/dev/null
    if python3 "$work/png_check.py" "$work/shot.png" "$@" >"$work/png_out" 2>&1; then ok
    else fail "$name: $(tail -1 "$work/png_out")"; fi
}

# --- nnseq plot of two CSV logs -------------------------------------------------
check "plot: two logs" "$NNSEQ" plot "$work/adam.csv" "$work/sgd.csv" -o "$work/curves.svg"
# 2 runs x (train, val) x 2 panels lines, 5 markers each
check "plot: the SVG parses, with both names, both panels and 8 lines" svg_check "$work/curves.svg" \
    text=adam.csv text=sgd.csv text=loss text=accuracy text=epoch text=train text=validation polylines=8 "circles>=40"
check "plot: tick labels 1 to 5 on the epoch axis" svg_check "$work/curves.svg" text=1 text=2 text=5
rendered "plot: two logs rendered" "$work/curves.svg" "#1f77b4" "#ff7f0e"

# --- JSON lines logs (--log FILE.jsonl) -------------------------------------------
check "plot: a .jsonl log" "$NNSEQ" plot "$work/adam.jsonl" -o "$work/jsonl.svg"
check "plot: ... the points of the CSV of the same run" test "$(grep polyline "$work/jsonl.svg")" = \
    "$(grep polyline "$work/adam_csv.svg" 2>/dev/null || { "$NNSEQ" plot "$work/adam.csv" -o "$work/adam_csv.svg" &&
        grep polyline "$work/adam_csv.svg"; })"
sed '3s/"lr"/"lr" 1/' "$work/adam.jsonl" >"$work/bad.jsonl"
expect_error "plot: a bad .jsonl line" 2 "bad.jsonl: line 3: not a JSON object of at most 64 numbers" \
    "$NNSEQ" plot "$work/bad.jsonl" -o "$work/none.svg"
sed 's/"train_loss"/"loss"/' "$work/adam.jsonl" >"$work/nokey.jsonl"
expect_error "plot: a .jsonl line without train_loss" 2 "nokey.jsonl: line 1: no key train_loss" \
    "$NNSEQ" plot "$work/nokey.jsonl" -o "$work/none.svg"

# --- checkpoints: their history ----------------------------------------------------
"$NNSEQ" plot "$work/adam.ckpt" "$work/ae.ckpt" -o "$work/mixed.svg" 2>"$work/err"
if grep -q "holds no history" "$work/err"; then
    skip_part cli_plot_test "plot CKPT: nn_checkpoint_load does not fill the history yet"
else
    check "plot CKPT: same curves as its log" "$NNSEQ" plot "$work/adam.ckpt" -o "$work/ckpt.svg"
    check "plot CKPT: the SVG parses, 2 panels of train and val" svg_check "$work/ckpt.svg" text=adam.ckpt \
        text=accuracy polylines=4 "circles>=20"
    # The same numbers as the CSV gives: the polylines of both files agree.
    "$NNSEQ" plot "$work/adam.csv" -o "$work/adam_csv.svg"
    check "plot CKPT: the points of its log" test "$(grep polyline "$work/ckpt.svg")" = \
        "$(grep polyline "$work/adam_csv.svg")"
    rendered "plot CKPT: rendered" "$work/ckpt.svg" "#1f77b4"
    check "plot CKPT + CSV together" "$NNSEQ" plot "$work/adam.ckpt" "$work/sgd.csv" -o "$work/both.svg"
    expect_error "plot: a classifier and a regression together" 2 "adam.ckpt plots accuracy but .*ae.ckpt plots r2" \
        "$NNSEQ" plot "$work/adam.ckpt" "$work/ae.ckpt" -o "$work/mixed.svg"
fi

# --- regression: r2, then mse when r2 is undefined --------------------------------
check "plot: a regression log" "$NNSEQ" plot "$work/ae.csv" -o "$work/ae.svg"
check "plot: its metric is r2" svg_check "$work/ae.svg" text=r2 text=ae.csv polylines=4
awk -F, -v OFS=, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i ~ /_r2$/) r2[i] = 1 }
    NR > 1 { for (i in r2) $i = "nan" } { print }' "$work/ae.csv" >"$work/flat.csv"
check "plot: r2 all nan" "$NNSEQ" plot "$work/flat.csv" -o "$work/flat.svg"
check "plot: ... plots mse instead" svg_check "$work/flat.svg" text=mse polylines=4
expect_error "plot: classification and regression logs together" 2 "adam.csv plots accuracy but .*ae.csv plots r2" \
    "$NNSEQ" plot "$work/adam.csv" "$work/ae.csv" -o "$work/mixed.svg"

# --- NaN and empty values: gaps ------------------------------------------------------
awk -F, -v OFS=, 'NR == 3 { $3 = "nan"; $4 = "nan" } NR == 5 { $5 = "inf" } { print }' "$work/adam.csv" >"$work/gaps.csv"
check "plot: nan and inf values" "$NNSEQ" plot "$work/gaps.csv" -o "$work/gaps.svg"
# train loss and accuracy lose epoch 2: a lone dot at 1, a line 3..5 (x2);
# val loss loses epoch 4: lines 1..3 and 5 alone; val accuracy whole
check "plot: nan draws gaps" svg_check "$work/gaps.svg" polylines=4
check "plot: ... and lone points as dots" test "$(grep -c '<circle [^>]*r="3"' "$work/gaps.svg")" -eq 3
rendered "plot: gaps rendered" "$work/gaps.svg" "#1f77b4"
# no validation split: the val columns empty
awk -F, -v OFS=, 'NR > 1 { $5 = ""; $6 = "" } { print }' "$work/adam.csv" >"$work/noval.csv"
check "plot: a log without validation" "$NNSEQ" plot "$work/noval.csv" -o "$work/noval.svg"
check "plot: ... has only the train lines" svg_check "$work/noval.svg" polylines=2

# values from -1e308 to 1e308: a range wider than a double, still drawn
printf '%s\n' epoch,lr,train_loss,train_accuracy,val_loss,val_accuracy,seconds,samples_per_s \
    1,0.1,1e308,0.5,-1e308,0.5,1,1 2,0.1,1,0.5,1,0.5,1,1 >"$work/extreme.csv"
check "plot: values of +-1e308" "$NNSEQ" plot "$work/extreme.csv" -o "$work/extreme.svg"
check "plot: ... no nan coordinates" sh -c "! grep -qi nan '$work/extreme.svg'"
check "plot: ... valid XML" svg_check "$work/extreme.svg" polylines=4
check "plot: -o in folders that do not exist yet" "$NNSEQ" plot "$work/adam.csv" -o "$work/new/dir/c.svg"
check "plot: ... created" svg_check "$work/new/dir/c.svg" polylines=4

# --- names that XML must escape; folders in names -------------------------------------
odd="$work/a&b<c>\"d'e.csv"
cp "$work/adam.csv" "$odd"
mkdir -p "$work/one" "$work/two"
cp "$work/adam.csv" "$work/one/log.csv" && cp "$work/sgd.csv" "$work/two/log.csv"
check "plot: a name with & < > \" '" "$NNSEQ" plot "$odd" -o "$work/odd.svg"
check "plot: ... valid XML holding the name" svg_check "$work/odd.svg" "text=a&b<c>\"d'e.csv"
bad_utf8="$work/$(printf 'bad\377\001name.csv')"
cp "$work/adam.csv" "$bad_utf8"
check "plot: a name with invalid UTF-8 and a control byte" "$NNSEQ" plot "$bad_utf8" -o "$work/utf8.svg"
check "plot: ... valid XML, the bytes as ?" svg_check "$work/utf8.svg" "text=bad??name.csv"
check "plot: two logs of one file name" "$NNSEQ" plot "$work/one/log.csv" "$work/two/log.csv" -o "$work/same.svg"
check "plot: ... named by their folder too" svg_check "$work/same.svg" "text=one/log.csv" "text=two/log.csv"
many=""
for i in $(seq 1 12); do cp "$work/adam.csv" "$work/run$i.csv"; many="$many $work/run$i.csv"; done
# shellcheck disable=SC2086
check "plot: 12 runs" "$NNSEQ" plot $many -o "$work/many.svg"
check "plot: ... 12 legend entries" svg_check "$work/many.svg" text=run1.csv text=run12.csv polylines=48
test "$(grep -o 'stroke="#[0-9a-f]*" stroke-width="3"' "$work/many.svg" | grep -v 444444 | sort -u | wc -l)" -eq 12 &&
    ok || fail "plot: 12 runs have 12 colours"

# --- bad input: exit 2, the file and line named, nothing written ----------------------
out="$work/none.svg"
nothing_written() { [ ! -e "$out" ] && [ -z "$(ls "$work" | grep '\.tmp-')" ]; }
bad() { # bad NAME PATTERN ARGS...: plot ARGS -o $out fails with exit 2 and writes nothing
    local name=$1 pattern=$2; shift 2
    expect_error "$name" 2 "$pattern" "$NNSEQ" plot "$@" -o "$out"
    nothing_written && ok || fail "$name: wrote $out"
}
: >"$work/empty.csv"
bad "plot: an empty file" "empty.csv: empty: expected the --log file of nnseq train" "$work/empty.csv"
head -1 "$work/adam.csv" >"$work/header.csv"
bad "plot: only a header" "header.csv: no epochs: only the header" "$work/header.csv"
printf 'a,b,c\n1,2,3\n' >"$work/other.csv"
bad "plot: a CSV that is not a log" "other.csv: line 1: no column epoch: not the --log file" "$work/other.csv"
cut -d, -f1-4,7- "$work/adam.csv" >"$work/noval_cols.csv"
bad "plot: no val columns" "noval_cols.csv: line 1: no column val_loss" "$work/noval_cols.csv"
sed '4s/,[^,]*$//' "$work/adam.csv" >"$work/short.csv"
bad "plot: a short row" "short.csv: line 4: 7 fields, expected 8 as in the header" "$work/short.csv"
sed '3s/^2,/2,abc/' "$work/adam.csv" >"$work/word.csv"
bad "plot: a word for a number" "word.csv: line 3, column lr: 'abc0.002' is not a number" "$work/word.csv"
sed '3s/^2,/x,/' "$work/adam.csv" >"$work/epoch.csv"
bad "plot: a bad epoch" "epoch.csv: line 3, column epoch: 'x' is not a number" "$work/epoch.csv"
sed '3s/^2,/0.5,/' "$work/adam.csv" >"$work/half.csv"
bad "plot: a fractional epoch" "half.csv: line 3, column epoch: '0.5' is not a whole number >= 1" "$work/half.csv"
python3 -c "import sys; sys.stdout.write('epoch,lr,' + 'x' * 5000 + '\n')" >"$work/long.csv"
bad "plot: a line of 5000 bytes" "long.csv: line 1: longer than 4096 bytes" "$work/long.csv"
gzip -c "$work/adam.csv" >"$work/log.csv.gz"
bad "plot: a gzip file" "log.csv.gz: not the --log file .* it looks like a gzip file" "$work/log.csv.gz"
bad "plot: a missing file" "missing.csv: cannot open: No such file" "$work/missing.csv"
bad "plot: a folder as a run" "one: a folder, not a --log file or a checkpoint" "$work/one"
bad "plot: one good run, one bad" "other.csv: line 1" "$work/adam.csv" "$work/other.csv"
expect_error "plot: -o a folder" 2 "one: is a folder \\(expected a file name for the plot\\)" \
    "$NNSEQ" plot "$work/adam.csv" -o "$work/one"
check "plot: ... the folder untouched" test "$(ls "$work/one")" = log.csv
cp "$work/adam.csv" "$work/keep.csv"
expect_error "plot: -o one of the runs" 2 "keep.csv: -o names one of the runs" \
    "$NNSEQ" plot "$work/keep.csv" -o "$work/keep.csv"
check "plot: ... the run untouched" cmp -s "$work/keep.csv" "$work/adam.csv"
expect_error "plot: no -o" 2 "expected -o OUT.svg" "$NNSEQ" plot "$work/adam.csv"
expect_error "plot: no run" 2 "expected at least one run" "$NNSEQ" plot -o "$out"
# shellcheck disable=SC2046
expect_error "plot: 51 runs" 2 "more than 50 runs" "$NNSEQ" plot $(for i in $(seq 51); do echo "$work/adam.csv"; done) -o "$out"
# an epoch count past the limit: refused while reading, before the memory grows
awk 'BEGIN { print "epoch,lr,train_loss,train_accuracy,val_loss,val_accuracy,seconds,samples_per_s";
    for (i = 1; i <= 200001; i++) print i ",0.1,1,0.5,1,0.5,0.1,100" }' >"$work/huge.csv"
bad "plot: 200001 epochs" "huge.csv: line 200002: more than 200000 epochs" "$work/huge.csv"
cp "$work/adam.csv" "$work/prior.svg"
expect_error "plot: a failed plot keeps the old file" 2 "other.csv" "$NNSEQ" plot "$work/other.csv" -o "$work/prior.svg"
check "plot: ... untouched" cmp -s "$work/prior.svg" "$work/adam.csv"

# --- nnseq eval --plot: the confusion matrix ---------------------------------------------
"$NNSEQ" eval "$work/adam.ckpt" --threads 1 --format tsv >"$work/eval.tsv" 2>/dev/null
check "eval --plot" "$NNSEQ" eval "$work/sgd.ckpt" --threads 1 --format tsv --plot "$work/confusion.svg" \
    >"$work/eval_plot.tsv"
check "eval --plot: 4x4 cells adding to the 100 test samples" svg_check "$work/confusion.svg" cells=16 \
    cell_sum=100 "text=true class" "text=predicted class" text=0 text=3
# each cell's number is the count eval prints
python3 - "$work/confusion.svg" "$work/eval_plot.tsv" <<'EOF' && ok || fail "eval --plot: the cells are eval's counts"
import sys, xml.etree.ElementTree as ET
ns = "{http://www.w3.org/2000/svg}"
cells = [int(t.text) for t in ET.parse(sys.argv[1]).getroot().iter(ns + "text") if t.get("fill") in ("#000000", "#ffffff")]
rows = [l.split("\t") for l in open(sys.argv[2]) if l.startswith("confusion\t")]
assert cells == [int(r[3]) for r in rows], (cells, rows)
EOF
rendered "eval --plot: rendered" "$work/confusion.svg" "#08306b"
expect_error "eval --plot: a regression model" 2 "ae.ckpt is a regression model: --plot draws the confusion matrix of a classifier" \
    "$NNSEQ" eval "$work/ae.ckpt" --plot "$out"
nothing_written && ok || fail "eval --plot regression: wrote $out"
expect_error "eval --plot: a folder" 2 "one: is a folder \\(expected a file name for the plot\\)" "$NNSEQ" eval "$work/adam.ckpt" --plot "$work/one"

finish cli_plot_test
