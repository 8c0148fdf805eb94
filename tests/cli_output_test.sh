#!/usr/bin/env bash
# End-to-end tests of the shapes of nnseq's outputs (docs/output.md): train's
# and eval's TSV and JSON lines, and the progress bar fitted to the terminal,
# in tmux panes of 60, 80 and 120 columns and through script(1) for $COLUMNS.
# Needs NNSEQ (the binary) and GEN_DATA (tests/tools/gen_data); `make check`
# sets both. Without tmux, script or python3 their parts count as skipped.
set -u
NNSEQ=${NNSEQ:?set NNSEQ to the nnseq binary}
GEN_DATA=${GEN_DATA:?set GEN_DATA to the gen_data tool}
work=$(mktemp -d)
tmux_socket="$work/tmux.sock"
# Our own tmux server (its own socket, no user config): only it is killed.
trap '[ -S "$tmux_socket" ] && tmux -S "$tmux_socket" kill-server 2>/dev/null; rm -rf "$work"' EXIT
. "$(dirname "$0")/shell_checks.sh"

"$GEN_DATA" "$work" 300 1 train && "$GEN_DATA" "$work" 100 2 test && "$GEN_DATA" "$work" 20000 5 big ||
    { echo "gen_data failed"; exit 1; }

# A model that learns only part of the way in 3 epochs, so that the metrics
# and the confusion matrix are not all ones and a diagonal.
config() { # config FILE TRAIN_PREFIX HIDDEN_LAYER_LINES...
    local file=$1 prefix=$2; shift 2
    {
        echo "seed: 3"
        echo "data:"
        echo "  train: {images: $prefix-images.idx, labels: $prefix-labels.idx.gz}"
        echo "  test: {images: test-images.idx, labels: test-labels.idx.gz}"
        echo "  val_split: 0.2"
        echo "model:"
        echo "  layers:"
        echo "    - Flatten"
        for line in "$@"; do echo "    - $line"; done
        echo "    - Linear: {out_features: 4}"
        echo "optimizer: {name: adam, lr: 0.002}"
        echo "train: {epochs: 3, batch_size: 16}"
        echo "checkpoint: {path: runs/model.ckpt}"
    } >"$file"
}
config "$work/small.yaml" train "Linear: {out_features: 8}" ReLU
# Big enough for an epoch of about half a second: several redraws of the bar.
config "$work/big.yaml" big "Linear: {out_features: 512}" ReLU "Linear: {out_features: 512}" ReLU

# rows_have_columns FILE N: every line of the TSV FILE has N fields
rows_have_columns() { awk -F'\t' -v n="$2" 'NF != n { bad = 1 } END { exit bad || NR == 0 }' "$1"; }
# close A B: two numbers agree to the 4 decimals of the text output
close() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; exit !(a != "" && b != "" && d < 6e-5 && d > -6e-5) }'; }

# --- train --format tsv: one table ------------------------------------------
run() { "$NNSEQ" train "$work/small.yaml" --threads 1 "$@" 2>/dev/null; }
run --out "$work/t.ckpt" --format tsv >"$work/train.tsv"
run --out "$work/x.ckpt" --format text >"$work/train.txt"
header='epoch	lr	train_loss	train_accuracy	val_loss	val_accuracy	seconds	samples_per_s	test_loss	test_accuracy	test_samples'
check "train tsv: the header first" test "$(head -1 "$work/train.tsv")" = "$header"
check "train tsv: the header once" test "$(grep -c '^epoch	' "$work/train.tsv")" -eq 1
check "train tsv: 11 columns on every row" rows_have_columns "$work/train.tsv" 11
check "train tsv: header, 3 epochs, test" test "$(wc -l <"$work/train.tsv")" -eq 5
check "train tsv: cut -f1 is the epochs, then test" \
    test "$(cut -f1 "$work/train.tsv" | tail -n +2 | tr '\n' ' ')" = "1 2 3 test "
check "train tsv: cut -f6 is val_accuracy on epoch rows" \
    sh -c "cut -f1,6 '$work/train.tsv' | sed -n 2,4p | grep -cE '^[1-3]	[01]\\.[0-9]{6}\$' | grep -qx 3"
check "train tsv: the test row fills only the test columns" \
    awk -F'\t' '$1 == "test" { for (i = 2; i <= 8; i++) if ($i != "") exit 1; found = ($11 == 100) } END { exit !found }' \
    "$work/train.tsv"
check "train tsv: epoch rows leave the test columns empty" \
    awk -F'\t' 'NR > 1 && $1 != "test" && ($9 $10 $11) != "" { bad = 1 } END { exit bad }' "$work/train.tsv"
for e in 1 2 3; do
    text_val=$(sed -n "s/^epoch $e\\/3 .*val_acc \\([0-9.]*\\) .*/\\1/p" "$work/train.txt")
    check "train tsv: epoch $e's val_accuracy is the text's" close "$(awk -F'\t' -v e=$e '$1 == e { print $6 }' "$work/train.tsv")" "$text_val"
done
text_test=$(sed -n 's/^test .*accuracy \([0-9.]*\) .*/\1/p' "$work/train.txt")
check "train tsv: test_accuracy is the text's" close "$(awk -F'\t' '$1 == "test" { print $10 }' "$work/train.tsv")" "$text_test"
check "the test accuracy is not trivial" awk -v a="$text_test" 'BEGIN { exit !(a > 0.3 && a < 1) }'
# A --resume of a finished run prints no epoch row: the header still comes first.
run --resume "$work/t.ckpt" --out "$work/r.ckpt" --format tsv >"$work/resumed.tsv"
check "train tsv: a finished run resumed is the header and the test row" \
    sh -c "head -1 '$work/resumed.tsv' | grep -qx '$header' && sed -n 2p '$work/resumed.tsv' | grep -q '^test	' && test \$(wc -l <'$work/resumed.tsv') -eq 2"
check "train tsv: its test row is the first run's" test "$(tail -1 "$work/resumed.tsv")" = "$(tail -1 "$work/train.tsv")"

# --- train --format json: one object per line, the keys of docs/output.md -----
run --out "$work/j.ckpt" --format json >"$work/train.jsonl"
run --resume "$work/t.ckpt" --out "$work/r.ckpt" --format json >"$work/resumed.jsonl"
check "train json: 3 epoch lines and a final one" test "$(wc -l <"$work/train.jsonl")" -eq 4
check "train json: a finished run resumed is the final line alone" test "$(wc -l <"$work/resumed.jsonl")" -eq 1
if command -v python3 >/dev/null; then
    check "train json: the keys, in order" python3 - "$work/train.jsonl" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
epoch = ["epoch", "epochs", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds", "samples_per_s"]
assert [list(l) for l in lines[:-1]] == [epoch] * 3, lines
assert list(lines[-1]) == ["final", "test_loss", "test_accuracy", "test_samples", "checkpoint"], lines[-1]
assert [l["epoch"] for l in lines[:-1]] == [1, 2, 3] and lines[-1]["final"] is True
EOF
    check "train json: the same numbers as the tsv" python3 - "$work/train.jsonl" "$work/train.tsv" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
rows = [r.rstrip("\n").split("\t") for r in open(sys.argv[2])]
head = rows[0]
for l, r in zip(lines[:-1], rows[1:4]):
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
        assert abs(l[key] - float(r[head.index(key)])) < 1e-6, (key, l, r)
for key in ("test_loss", "test_accuracy", "test_samples"):
    assert abs(lines[-1][key] - float(rows[4][head.index(key)])) < 1e-6, key
EOF
else
    skip_part output "python3 is missing: train json keys"
fi

# --- eval --format tsv: one long table --------------------------------------
"$NNSEQ" eval "$work/t.ckpt" --format tsv >"$work/eval.tsv"
"$NNSEQ" eval "$work/t.ckpt" >"$work/eval.txt"
classes=4
check "eval tsv: the header first, once" \
    sh -c "head -1 '$work/eval.tsv' | grep -qx 'metric	class	predicted	value' && test \$(grep -c '^metric	' '$work/eval.tsv') -eq 1"
check "eval tsv: 4 columns on every row" rows_have_columns "$work/eval.tsv" 4
check "eval tsv: 3 + 4 per class + classes^2 rows" \
    test "$(tail -n +2 "$work/eval.tsv" | wc -l)" -eq $((3 + 4 * classes + classes * classes))
check "eval tsv: classes^2 confusion rows" test "$(grep -c '^confusion	' "$work/eval.tsv")" -eq $((classes * classes))
tsv_value() { awk -F'\t' -v m="$1" -v c="$2" -v p="${3:-}" '$1 == m && $2 == c && $3 == p { print $4 }' "$work/eval.tsv"; }
check "eval tsv: samples is the text's" test "$(tsv_value samples all)" = "$(awk '$1 == "samples" { print $2 }' "$work/eval.txt")"
check "eval tsv: loss is the text's" close "$(tsv_value loss all)" "$(awk '$1 == "loss" { print $2 }' "$work/eval.txt")"
check "eval tsv: accuracy is the text's" close "$(tsv_value accuracy all)" "$(awk '$1 == "accuracy" { print $2 }' "$work/eval.txt")"
check "eval tsv: accuracy is train's test accuracy" close "$(tsv_value accuracy all)" "$text_test"
# class_matches C SAMPLES ACCURACY PRECISION RECALL: the tsv's class C is the text's row
class_matches() {
    test "$(tsv_value samples "$1")" = "$2" && close "$(tsv_value accuracy "$1")" "$3" &&
        close "$(tsv_value precision "$1")" "$4" && close "$(tsv_value recall "$1")" "$5"
}
for c in $(seq 0 $((classes - 1))); do
    # shellcheck disable=SC2046 # the text's row: class samples accuracy precision recall
    check "eval tsv: class $c's figures are the text's" class_matches \
        $(awk -v c="$c" 'table && $1 == c { print; exit } /^class +samples/ { table = 1 }' "$work/eval.txt")
done
awk '/^confusion/ { m = 1; getline; next } m && NF { for (j = 2; j <= NF; j++) printf "confusion\t%d\t%d\t%d\n", $1, j - 2, $j }' \
    "$work/eval.txt" >"$work/confusion.txt"
check "eval tsv: the confusion rows are the text's matrix" sh -c "grep '^confusion	' '$work/eval.tsv' | cmp -s - '$work/confusion.txt'"
check "eval tsv: the matrix is not a diagonal" awk -F'\t' '$1 == "confusion" && $2 != $3 && $4 > 0 { found = 1 } END { exit !found }' "$work/eval.tsv"
check "eval tsv: the confusion counts sum to the samples" \
    test "$(awk -F'\t' '$1 == "confusion" { s += $4 } END { print s }' "$work/eval.tsv")" = "$(tsv_value samples all)"
if command -v python3 >/dev/null; then
    "$NNSEQ" eval "$work/t.ckpt" --format json >"$work/eval.json"
    check "eval json: the keys and the tsv's numbers" python3 - "$work/eval.json" "$work/eval.tsv" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
rows = {tuple(r.split("\t")[:3]): float(r.split("\t")[3]) for r in open(sys.argv[2]).read().splitlines()[1:]}
assert list(j) == ["checkpoint", "task", "samples", "loss", "accuracy", "classes", "confusion"], list(j)
assert j["task"] == "classification"
for key in ("samples", "loss", "accuracy"):
    assert abs(j[key] - rows[(key, "all", "")]) < 1e-6, key
for c in j["classes"]:
    assert list(c) == ["class", "samples", "accuracy", "precision", "recall"], list(c)
    for key in ("samples", "accuracy", "precision", "recall"):
        assert abs(c[key] - rows[(key, str(c["class"]), "")]) < 1e-6, (key, c)
for t, row in enumerate(j["confusion"]):
    for p, count in enumerate(row):
        assert count == rows[("confusion", str(t), str(p))], (t, p)
EOF
else
    skip_part output "python3 is missing: eval json"
fi

# --- the progress bar in tmux: fits, one line redrawn -------------------------
# The pane may show the run's own lines (epoch lines, the test line, "nnseq:"
# messages) and at most one bar line; capture-pane -J joins wrapped rows, so
# a bar that wrapped shows as a line wider than the pane.
is_bar='^epoch [0-9]+/[0-9]+( |$)'
is_run_line='^(epoch +[0-9]+/[0-9]+  train_loss |test  loss |nnseq: )'
# inspect_pane FILE WIDTH: prints the bar lines' count and widest, or "stray"
inspect_pane() {
    awk -v bar="$is_bar" -v run="$is_run_line" '
        $0 ~ run { next }
        $0 ~ bar { n++; if (length($0) > widest) widest = length($0); next }
        NF { stray = 1 }
        END { if (stray) print "stray"; else print n + 0, widest + 0 }' "$1"
}
tmux_bar() { # tmux_bar WIDTH
    local width=$1 done="$work/bar$1.done" polls=0 seen=0 widest=0 lines=0 stray=0 n w
    tmux -S "$tmux_socket" -f /dev/null new-session -d -x "$width" -y 20 \
        "'$NNSEQ' train '$work/big.yaml' --threads 1 --out '$work/bar$width.ckpt'; touch '$done'; sleep 600"
    check "tmux: the pane is $width wide" test "$(tmux -S "$tmux_socket" display -p '#{pane_width}')" -eq "$width"
    while [ ! -e "$done" ] && [ $polls -lt 3000 ]; do
        tmux -S "$tmux_socket" capture-pane -p -J >"$work/pane"
        read -r n w < <(inspect_pane "$work/pane")
        if [ "$n" = stray ]; then stray=1; cp "$work/pane" "$work/stray$width"
        else
            [ "$n" -gt 0 ] && seen=$((seen + 1))
            [ "$n" -gt "$lines" ] && lines=$n
            [ "$w" -gt "$widest" ] && widest=$w
        fi
        polls=$((polls + 1))
        sleep 0.1
    done
    tmux -S "$tmux_socket" capture-pane -p -J >"$work/pane"
    tmux -S "$tmux_socket" kill-session 2>/dev/null
    echo "tmux $width columns: bar seen in $seen of $polls captures, widest $widest, at most $lines bar line(s)" >&3
    check "tmux $width: the run ended" test -e "$done"
    check "tmux $width: the bar was drawn" test "$seen" -gt 0
    check "tmux $width: the bar fits in $((width - 1)) columns (widest $widest)" test "$widest" -le $((width - 1))
    check "tmux $width: at most one bar line" test "$lines" -le 1
    check "tmux $width: nothing but the run's lines and the bar" test "$stray" -eq 0
    check "tmux $width: at the end, the run's 5 lines and no bar" \
        sh -c "test \"\$(grep -cE '$is_run_line' '$work/pane')\" -eq 5 && test \"\$(grep -c . '$work/pane')\" -eq 5"
}
if command -v tmux >/dev/null; then
    for width in 60 80 120; do tmux_bar $width; done
    tmux -S "$tmux_socket" kill-server 2>/dev/null
else
    skip_part output "tmux is missing: the progress bar in 60, 80 and 120 columns"
fi

# --- the progress bar on a terminal of no size: $COLUMNS, then 80 -------------
# script(1) without a terminal on stdin gives the run a pty of 0x0.
# bar_widest FILE: the widest bar drawn in the raw stream (redraws split at \r)
bar_widest() {
    tr '\r' '\n' <"$1" | sed 's/\x1b\[K//g' | awk -v bar="$is_bar" '$0 ~ bar && !/train_loss/ && length($0) > w { w = length($0) }
        END { print w + 0 }'
}
if command -v script >/dev/null; then
    for columns in 20 50 ""; do
        limit=$(( ${columns:-80} - 1 ))
        if [ -n "$columns" ]; then set -- env COLUMNS="$columns"; else set -- env -u COLUMNS; fi
        "$@" script -qec "'$NNSEQ' train '$work/big.yaml' --epochs 1 --threads 1 --out '$work/cols.ckpt'" /dev/null \
            </dev/null >"$work/raw"
        widest=$(bar_widest "$work/raw")
        echo "script, COLUMNS=${columns:-unset}: widest bar $widest" >&3
        check "COLUMNS=${columns:-unset}: a bar of 1 to $limit columns (widest $widest)" \
            test "$widest" -gt 0 -a "$widest" -le "$limit"
    done
else
    skip_part output "script (util-linux) is missing: \$COLUMNS"
fi

finish output
