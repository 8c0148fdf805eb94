#!/usr/bin/env bash
# The per-epoch log (--log) end to end on generated data: CSV, or JSON
# lines when the name ends in .jsonl (exactly --format json's epoch lines);
# a run stopped by SIGINT in the middle of an epoch and resumed leaves the
# log a straight run leaves (header once, every epoch once), timings
# aside; rows the checkpoint has not trained and a cut line are dropped
# on --resume; a file that is not a log is refused.
# Needs NNSEQ and GEN_DATA; `make check` sets them.
set -u
NNSEQ=${NNSEQ:?set NNSEQ to the nnseq binary}
GEN_DATA=${GEN_DATA:?set GEN_DATA to the gen_data tool}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
. "$(dirname "$0")/shell_checks.sh"

"$GEN_DATA" "$work" 30000 1 train && "$GEN_DATA" "$work" 200 2 test || { echo "gen_data failed"; exit 1; }
# About a second: batches of 8 through a 512-wide MLP, four epochs, with validation.
printf '%s\n' 'seed: 5' 'data:' \
    '  train: {images: train-images.idx, labels: train-labels.idx.gz}' \
    '  test: {images: test-images.idx, labels: test-labels.idx.gz}' \
    '  val_split: 0.2' 'model:' '  layers:' '    - Flatten' '    - Linear: {out_features: 512}' '    - ReLU' \
    '    - Linear: {out_features: 4}' 'optimizer: {name: adam, lr: 0.001}' 'train: {epochs: 4, batch_size: 8}' \
    >"$work/run.yaml"
train() { "$NNSEQ" train "$work/run.yaml" --threads 2 "$@"; }
# The rows without their timings (the last two CSV fields, JSON's seconds and samples_per_s).
strip_timing() { sed -E 's/,[0-9.]+,[0-9.]+$//; s/, "seconds": [0-9.]+, "samples_per_s": [0-9]+\}$/}/' "$1"; }

started=$(date +%s%N)
train --out "$work/ref.ckpt" --log "$work/ref.csv" --format json >"$work/ref.out" 2>"$work/ref.err"
run_ns=$(($(date +%s%N) - started))
train --out "$work/refj.ckpt" --log "$work/ref.jsonl" --format json >"$work/refj.out" 2>&1

# --- the shapes ----------------------------------------------------------------
check "CSV: a header and 4 rows" test "$(wc -l <"$work/ref.csv")" -eq 5
check "CSV: the header" test "$(head -1 "$work/ref.csv")" = "epoch,lr,train_loss,train_accuracy,val_loss,val_accuracy,seconds,samples_per_s"
check "JSON lines: 4 lines, no header" test "$(wc -l <"$work/ref.jsonl")" -eq 4
check "JSON lines: exactly the run's --format json epoch lines" cmp -s "$work/ref.jsonl" <(grep '^{"epoch"' "$work/refj.out")
check "JSON lines: each line an object with the epoch lines' keys" /usr/bin/python3 -c '
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
keys = ["epoch", "epochs", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds", "samples_per_s"]
sys.exit(not (all(list(r) == keys for r in rows) and [r["epoch"] for r in rows] == [1, 2, 3, 4]))' "$work/ref.jsonl"
check "CSV and JSON lines: the same numbers" test "$(cut -d, -f1 "$work/ref.csv" | sed 1d | tr '\n' ' ')" = "1 2 3 4 "

# --- SIGINT in the middle of an epoch, then --resume ------------------------------
at() { awk -v ns="$run_ns" -v f="$1" 'BEGIN { printf "%.3f", ns * f / 100 / 1e9 }'; }
mid_epoch=0
for log in csv jsonl; do
    for fraction in 30 50 70 85; do
        delay=$(at "$fraction")
        rm -f "$work/int.ckpt" "$work/int.$log"
        # nnseq itself in the background, not the function's subshell, which the signal would not pass.
        "$NNSEQ" train "$work/run.yaml" --threads 2 --out "$work/int.ckpt" --log "$work/int.$log" >/dev/null 2>"$work/int.err" &
        pid=$!
        sleep "$delay"
        kill -INT "$pid" 2>/dev/null
        wait "$pid"
        status=$?
        grep -q "stopped by SIGINT in epoch" "$work/int.err" || continue   # between epochs or already done
        mid_epoch=$((mid_epoch + 1))
        check "$log, SIGINT after ${delay}s: exit 130" test "$status" -eq 130
        rows_before=$(grep -c '^[0-9{]' "$work/int.$log")
        "$NNSEQ" train --resume "$work/int.ckpt" --threads 2 --log "$work/int.$log" >/dev/null 2>"$work/resume.err"
        check "$log, SIGINT after ${delay}s: the resumed run ends" test $? -eq 0
        check "$log, SIGINT after ${delay}s ($rows_before rows before): the log is the straight run's, timings aside" \
            cmp -s <(strip_timing "$work/ref.$log") <(strip_timing "$work/int.$log")
    done
done
check "at least one SIGINT of each log landed in the middle of an epoch ($mid_epoch)" test "$mid_epoch" -ge 2

# --- what --resume cuts off -------------------------------------------------------
train --epochs 2 --out "$work/two.ckpt" --log "$work/cut.csv" >/dev/null 2>&1
cp "$work/two.ckpt" "$work/two-epochs.ckpt"
sed -n 4p "$work/ref.csv" >>"$work/cut.csv"    # epoch 3, as if killed before the checkpoint was written
printf '4,0.001,0.5' >>"$work/cut.csv"          # a row cut short
train --resume "$work/two.ckpt" --epochs 4 --log "$work/cut.csv" >/dev/null 2>"$work/cut.err"
check "a row beyond the checkpoint: said" grep -q "cut.csv: dropped the rows from epoch 3 on, which the checkpoint has not trained" "$work/cut.err"
check "a row beyond the checkpoint and a cut row: dropped, the log is the straight run's" \
    cmp -s <(strip_timing "$work/ref.csv") <(strip_timing "$work/cut.csv")
train --epochs 2 --out "$work/twoj.ckpt" --log "$work/cut.jsonl" >/dev/null 2>&1
sed -n 3p "$work/ref.jsonl" >>"$work/cut.jsonl"
train --resume "$work/twoj.ckpt" --epochs 4 --log "$work/cut.jsonl" >/dev/null 2>&1
check "JSON lines: a row beyond the checkpoint dropped, the log is the straight run's" \
    cmp -s <(strip_timing "$work/ref.jsonl" | sed 's/"epochs": 4/"epochs": N/') \
           <(strip_timing "$work/cut.jsonl" | sed 's/"epochs": [24]/"epochs": N/')
train --resume "$work/two-epochs.ckpt" --epochs 3 --out "$work/new.ckpt" --log "$work/new.csv" >/dev/null 2>&1
check "--resume into a new log: the header, then the new epoch" \
    test "$(cut -d, -f1 "$work/new.csv" | tr '\n' ' ')" = "epoch 3 "
printf 'epoch,lr\nnot a row\n' >"$work/foreign.csv"
expect_error "--resume into a file that is not a log: refused" 2 \
    "foreign.csv: line 2 is not a row of nnseq's CSV log \(expected N,lr,...\): give --log another file" \
    train --resume "$work/two-epochs.ckpt" --epochs 3 --out "$work/never.ckpt" --log "$work/foreign.csv"
check "the refused log is left as it was" test "$(cat "$work/foreign.csv")" = "$(printf 'epoch,lr\nnot a row')"

finish cli_log
