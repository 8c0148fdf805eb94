#!/bin/sh
# `make bench`: nnseq against PyTorch (tests/torch_ref.py) on the same
# configs, machine, data and amount of work, measured side by side in one run,
# alternating (the order reversed every other repeat), REPEATS times each;
# medians everywhere, since the machine is shared and noisy.
#
#   sh bench/run.sh [CONFIG...]
#
# Default configs: configs/fashion_mlp, bench/configs/fashion_mlp_b64
# (784-128-10 at batch 64), bench/configs/fashion_mlp_wide (784-1024-1024-10),
# configs/fashion_cnn, configs/fashion_cnn_bn; one epoch each.
#
# What it measures, per config:
#   - training samples/s (each program's own epoch timer: training samples of
#     the epoch over its seconds, validation left out in both) for nnseq at
#     each --threads in THREADS and at its default (no --threads: every core),
#     and torch_ref.py at each --threads in TORCH_THREADS; peak RSS of each run
#     (ru_maxrss of the child, bench/helper.py measure);
#   - eval samples/s: nnseq eval CKPT --images/--labels on the 10k test split
#     written uncompressed once and EVAL_COPIES times; the figure is the
#     difference, (EVAL_COPIES - 1) * 10k samples over the difference of the
#     median wall times, so process start, checkpoint and file loading cancel
#     out (the whole-process figure, 10k over the wall time of the 1-copy run,
#     is printed too); torch: torch_ref.py --bench-eval (evaluate() on the 10k
#     test split after loading, no training);
#   - the same nnseq training with the second core kept busy by a spinning
#     `sh` loop, at --threads 1 and at the default;
#   - for MLPs, the sgemm-only ceiling (SHARED/bench/gemm_ceiling.c) at the
#     config's batch and widths: one OpenBLAS thread, NPROC OpenBLAS threads,
#     and NPROC one-thread processes side by side on batch/NPROC each (the
#     shape of nnseq's replicas);
#   - data-parallel over MPI, for fashion_cnn and fashion_mlp_wide, when
#     MPI_NNSEQ (make MPI=1 BUILD=build/mpi NNSEQ_BIN=build/mpi/nnseq) and
#     mpirun are there: training samples/s of `mpirun -np 2 MPI_NNSEQ train
#     --threads 1` against one MPI_NNSEQ process at --threads 2 and at
#     --threads 1 (the per-step compute), alternating; and bench/allreduce.c
#     (built with mpicc into the temporary folder with nnseq's collective
#     files; by hand, see its head) at -np 2 on the config's parameter
#     count: the median of nnseq's ring reduce-scatter + allgather (what a
#     step communicates), of one MPI_Allreduce for comparison, and the
#     ring's share of a 2-rank step (docs/scaling.md uses these);
# then a "targets" block, pass or miss with the measured values.
#
# The amount of work: the training runs read the first SAMPLES images of the
# config's training file (written uncompressed to a temporary folder; the
# config's val_split is held out of them as usual) and a 100-sample test file,
# through a copy of the config with those paths, the same for nnseq and torch.
# SAMPLES defaults per config so that the whole bench stays near 10 minutes
# on a 2-core machine (torch at 2 threads is very slow there): 20000 for the
# 784-128-10 MLPs, 6000 for the wide MLP, 4000 for the CNNs; SAMPLES=0 reads
# the config's own files (all 60k; the test split in full).
#
# Env: REPEATS (3), THREADS ("1 2"), TORCH_THREADS ("1 2"), EPOCHS (1),
# SAMPLES (per config, above), EVAL (1; 0 skips eval), EVAL_COPIES (5),
# EVAL_REPEATS (REPEATS), BUSY (1; 0 skips the busy-core part), CEILING (1),
# NNSEQ (./nnseq; copied once at the start, so a rebuild during the bench does
# not change the binary under test), TORCH_REF (tests/torch_ref.py),
# SHARED (../shared, for bench/gemm_ceiling.c; that part is left out without it),
# SECTIONS ("train busy ceiling mpi": the parts to run; the configs are
# prepared whatever it says, so SECTIONS=mpi runs the MPI rows alone; the
# targets block has the lines of the parts that ran), MPI_NNSEQ
# (build/mpi/nnseq; copied at the start like NNSEQ), MPIRUN (mpirun),
# MPIRUN_ARGS (--oversubscribe, and --allow-run-as-root when root),
# ALLREDUCE_CALLS (300 timed calls per size).
set -eu
cd "$(dirname "$0")/.."
REPEATS=${REPEATS:-3}
THREADS=${THREADS:-"1 2"}
TORCH_THREADS=${TORCH_THREADS:-"1 2"}
EPOCHS=${EPOCHS:-1}
SAMPLES=${SAMPLES:-}
EVAL=${EVAL:-1}
EVAL_COPIES=${EVAL_COPIES:-5}
EVAL_REPEATS=${EVAL_REPEATS:-$REPEATS}
BUSY=${BUSY:-1}
CEILING=${CEILING:-1}
NNSEQ=${NNSEQ:-./nnseq}
SHARED=${SHARED:-../shared}
TORCH_REF=${TORCH_REF:-tests/torch_ref.py}
SECTIONS=${SECTIONS:-"train busy ceiling mpi"}
MPI_NNSEQ=${MPI_NNSEQ:-build/mpi/nnseq}
MPIRUN=${MPIRUN:-mpirun}
[ "$(id -u)" != 0 ] || root_args=--allow-run-as-root
MPIRUN_ARGS=${MPIRUN_ARGS:-"--oversubscribe ${root_args:-}"}
ALLREDUCE_CALLS=${ALLREDUCE_CALLS:-300}
in_section() { case " $SECTIONS " in *" $1 "*) return 0 ;; esac; return 1; }
PY=/usr/bin/python3
HELPER=bench/helper.py
[ "$#" -gt 0 ] || set -- configs/fashion_mlp.yaml bench/configs/fashion_mlp_b64.yaml \
    bench/configs/fashion_mlp_wide.yaml configs/fashion_cnn.yaml configs/fashion_cnn_bn.yaml
started=$(date +%s)

if [ ! -x "$NNSEQ" ]; then
    echo "bench: $NNSEQ missing: make -s" >&2
    make -s
fi
if ! $PY -c 'import yaml' 2>/dev/null; then
    echo "bench: $PY cannot import yaml (make deps)" >&2
    exit 1
fi
have_torch=0
if [ ! -f "$TORCH_REF" ]; then
    echo "bench: no PyTorch column: $TORCH_REF not found" >&2
elif ! $PY -c 'import torch, numpy, yaml' 2>/dev/null; then
    echo "bench: no PyTorch column: $PY cannot import torch, numpy and yaml (make deps)" >&2
else
    have_torch=1
fi
[ $have_torch = 1 ] || TORCH_THREADS=""

tmp=$(mktemp -d)
spinner=""
cleanup() {
    [ -z "$spinner" ] || kill "$spinner" 2>/dev/null || :
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$tmp/data" "$tmp/cfg" "$tmp/run" "$tmp/res" "$tmp/ckpt"
cp "$NNSEQ" "$tmp/nnseq"
NN=$tmp/nnseq
MPINN=""
if in_section mpi; then
    if [ ! -x "$MPI_NNSEQ" ]; then
        mpi_skip="$MPI_NNSEQ missing (make MPI=1 BUILD=build/mpi NNSEQ_BIN=build/mpi/nnseq)"
    elif ! command -v "$MPIRUN" >/dev/null 2>&1; then
        mpi_skip="$MPIRUN not found (apt-get install openmpi-bin libopenmpi-dev)"
    else
        cp "$MPI_NNSEQ" "$tmp/nnseq-mpi"
        MPINN=$tmp/nnseq-mpi
    fi
fi
: >"$tmp/problems"
ncpu=$(nproc)

# --- header ------------------------------------------------------------------
lscpu_field() { lscpu | sed -n "s/^$1: *//p" | head -1; }
cc -O2 bench/openblas_info.c -o "$tmp/openblas_info" $(pkg-config --cflags --libs openblas) 2>/dev/null &&
    blas=$("$tmp/openblas_info") || blas="OpenBLAS $(pkg-config --modversion openblas 2>/dev/null || echo '?')"
echo "machine:  $(lscpu_field 'Model name'), $(nproc --all) cores, $ncpu in this process's affinity; $(lscpu_field 'Hypervisor vendor' | sed 's/^./hypervisor &/')"
echo "flags:    $(lscpu_field Flags | tr ' ' '\n' | grep -E '^(avx|avx2|fma|avx512f|avx512bw|avx512vl|avx512_vnni|avx512_bf16|avx_vnni)$' | tr '\n' ' ')"
echo "blas:     OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}; $blas"
if [ $have_torch = 1 ]; then
    echo "torch:    $($PY -c 'import torch; print(torch.__version__)' 2>/dev/null) ($TORCH_REF; its BLAS: $(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || echo '?'))"
else
    echo "torch:    absent"
fi
echo "nnseq:    $NNSEQ of $(date -u -r "$NNSEQ" +%Y-%m-%dT%H:%M:%SZ), sha256 $(sha256sum "$NN" | cut -c1-12); tree $(git rev-parse --short HEAD 2>/dev/null || echo '?') on $(git rev-parse --abbrev-ref HEAD 2>/dev/null || echo '?') with $(git status --porcelain 2>/dev/null | wc -l) changed files"
echo "date:     $(date -u +%Y-%m-%dT%H:%M:%SZ)  repeats: $REPEATS (eval $EVAL_REPEATS)  epochs: $EPOCHS  load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "threads:  nnseq $THREADS and default (= $ncpu); torch ${TORCH_THREADS:-none}"
echo

# --- helpers -------------------------------------------------------------------
median() { sort -n | awk 'NF { v[++n] = $1 } END { if (n == 0) print ""; else if (n % 2) print v[(n + 1) / 2]; else print (v[n / 2] + v[n / 2 + 1]) / 2 }'; }
med() { if [ -s "$1" ]; then median <"$1"; fi; }   # median of a result file, "" when none
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print ""; else printf "%.2f", a / b }'; }
num() { awk -v a="$1" 'BEGIN { if (a == "") print "-"; else printf "%.0f", a }'; }
mb() { awk -v a="$1" 'BEGIN { if (a == "") print "-"; else printf "%.0f", a / 1024 }'; }
or_dash() { if [ -n "$1" ]; then echo "$1${2:-}"; else echo "-"; fi; }   # VALUE [SUFFIX]
key() { printf '%s' "$1" | cksum | cut -d' ' -f1; }
reverse() { printf '%s\n' $1 | awk '{ v[NR] = $0 } END { for (i = NR; i >= 1; i--) printf "%s ", v[i] }'; }
# The run order of one repeat: nnseq and torch alternating, nnseq's default last.
interleave() {
    printf '%s\n' "$1" "$2" | awk 'NR == 1 { n = split($0, a, " ") } NR == 2 { m = split($0, b, " ") }
        END { for (i = 1; i <= (n > m ? n : m); i++) { if (i <= n) printf "nnseq:%s ", a[i]; if (i <= m) printf "torch:%s ", b[i] } }'
}
problem() { echo "$*" >>"$tmp/problems"; }
# run LABEL OUT CMD...: CMD under helper.py measure; stdout to OUT.out, stderr to OUT.err,
# "wall maxrss user sys status" to OUT.m; a failure is noted, not fatal.
run() {
    label=$1 out=$2
    shift 2
    if $PY "$HELPER" measure "$out.m" "$@" >"$out.out" 2>"$out.err"; then
        return 0
    fi
    problem "$label: exit $(cut -d' ' -f5 "$out.m" 2>/dev/null || echo '?'): $(grep -v '^ *$' "$out.err" | tail -2 | tr '\n' ' ' | cut -c1-300)"
    return 1
}
wall() { cut -d' ' -f1 "$1.m"; }
rss() { cut -d' ' -f2 "$1.m"; }

# A config for the bench's work: the first $n training images, a 100-sample test file.
prepare() {   # CONFIG N NAME -> sets train_cfg, eval_cfg
    set -- "$1" "$2" "$3" $($PY "$HELPER" paths "$1")
    cfg=$1 n=$2 name=$3 tri=$4 trl=$5 tei=${6:-} tel=${7:-}
    train_cfg=$cfg eval_cfg=$cfg
    [ "$n" -gt 0 ] || return 0
    k=$(key "$tri.$n")
    [ -f "$tmp/data/$k-images" ] || { $PY "$HELPER" idx "$tri" "$tmp/data/$k-images" --head "$n" &&
        $PY "$HELPER" idx "$trl" "$tmp/data/$k-labels" --head "$n"; }
    $PY "$HELPER" derive "$cfg" "$tmp/cfg/$name.eval.yaml" "$tmp/data/$k-images" "$tmp/data/$k-labels"
    eval_cfg=$tmp/cfg/$name.eval.yaml
    train_cfg=$eval_cfg
    if [ -n "$tei" ]; then
        t=$(key "$tei.test100")
        [ -f "$tmp/data/$t-images" ] || { $PY "$HELPER" idx "$tei" "$tmp/data/$t-images" --head 100 &&
            $PY "$HELPER" idx "$tel" "$tmp/data/$t-labels" --head 100; }
        sed "s#$tei#$tmp/data/$t-images#; s#$tel#$tmp/data/$t-labels#" "$eval_cfg" >"$tmp/cfg/$name.train.yaml"
        train_cfg=$tmp/cfg/$name.train.yaml
    fi
}

nnseq_threads_args() { [ "$1" = default ] || echo "--threads $1"; }
train_nnseq() {   # NAME CONFIG THREADS REP TAG
    o=$tmp/run/$1.nnseq.$3.$4$5
    if run "$1 nnseq train --threads $3$5" "$o" "$NN" train "$2" --epochs "$EPOCHS" $(nnseq_threads_args "$3") \
        --format json --out "$tmp/ckpt/$1.ckpt"; then
        $PY "$HELPER" train-rate "$o.out" >>"$tmp/res/$1.nnseq.$3.train$5"
        rss "$o" >>"$tmp/res/$1.nnseq.$3.rss$5"
    fi
}
train_torch() {   # NAME CONFIG THREADS REP
    o=$tmp/run/$1.torch.$3.$4
    if run "$1 torch_ref.py --threads $3" "$o" "$PY" "$TORCH_REF" "$2" --epochs "$EPOCHS" --threads "$3"; then
        $PY "$HELPER" train-rate "$o.out" >>"$tmp/res/$1.torch.$3.train"
        rss "$o" >>"$tmp/res/$1.torch.$3.rss"
    fi
}
eval_nnseq() {   # NAME THREADS REP IMAGES1 LABELS1 IMAGESK LABELSK
    [ -f "$tmp/ckpt/$1.ckpt" ] || return 0
    for copies in 1 k; do
        if [ $copies = 1 ]; then images=$4 labels=$5; else images=$6 labels=$7; fi
        o=$tmp/run/$1.nnseq-eval$copies.$2.$3
        if run "$1 nnseq eval --threads $2 ($copies copies)" "$o" "$NN" eval "$tmp/ckpt/$1.ckpt" \
            --images "$images" --labels "$labels" $(nnseq_threads_args "$2") --format json; then
            wall "$o" >>"$tmp/res/$1.nnseq.$2.evalwall$copies"
        fi
    done
}
eval_torch() {   # NAME CONFIG THREADS REP
    o=$tmp/run/$1.torch-eval.$3.$4
    if run "$1 torch_ref.py --bench-eval --threads $3" "$o" "$PY" "$TORCH_REF" "$2" --bench-eval --threads "$3"; then
        $PY "$HELPER" field "$o.out" eval_samples_per_s >>"$tmp/res/$1.torch.$3.eval"
    fi
}

names=""
# --- training and eval, config by config ---------------------------------------
in_section train && echo "train_samp/s: median (min-max) of $REPEATS runs, each program's own epoch timer; eval_samp/s: nnseq"
in_section train && echo "eval's marginal rate ($((EVAL_COPIES - 1)) x the test split over the extra wall time of $EVAL_COPIES copies against 1),"
in_section train && echo "torch_ref.py --bench-eval; eval_proc_samp/s: test split / wall time of a whole 1-copy nnseq eval;"
in_section train && echo "peak_RSS_MB: of the training runs (median). The ratio line: nnseq's default against torch's best."
in_section train && echo
for config in "$@"; do
    [ -f "$config" ] || { echo "skip $config: missing"; problem "$config: missing"; continue; }
    name=$(basename "$config" .yaml)
    names="$names $name"
    n=${SAMPLES:-}
    if [ -z "$n" ]; then
        case $name in
            fashion_mlp | fashion_mlp_b64) n=20000 ;;
            fashion_mlp_wide) n=6000 ;;
            fashion_cnn | fashion_cnn_bn) n=4000 ;;
            *) n=0 ;;
        esac
    fi
    prepare "$config" "$n" "$name"
    echo "$train_cfg" >"$tmp/res/$name.cfg"
    train_n=$($PY "$HELPER" train-count "$config" "$n")
    batch=$(sed -n 's/.*batch_size: *\([0-9]*\).*/\1/p' "$config" | head -1)
    echo "$train_n ${batch:-}" >"$tmp/res/$name.shape"
    in_section train || continue
    order=$(interleave "$THREADS default" "$TORCH_THREADS")
    echo "== $name: $train_n training samples per epoch ($( [ "$n" -gt 0 ] && echo "the first $n of the training file less val_split" || echo "the config's own files")), batch ${batch:-?}, $EPOCHS epoch(s); load $(cut -d' ' -f1 /proc/loadavg)"
    rep=1
    while [ "$rep" -le "$REPEATS" ]; do
        list=$order
        [ $((rep % 2)) = 1 ] || list=$(reverse "$order")
        for v in $list; do
            case $v in
                nnseq:*) train_nnseq "$name" "$train_cfg" "${v#nnseq:}" "$rep" "" ;;
                torch:*) train_torch "$name" "$train_cfg" "${v#torch:}" "$rep" ;;
            esac
        done
        rep=$((rep + 1))
    done

    # eval on the test split: 1 copy and EVAL_COPIES copies, uncompressed
    tei=$($PY "$HELPER" paths "$eval_cfg" | sed -n 3p)
    tel=$($PY "$HELPER" paths "$eval_cfg" | sed -n 4p)
    if [ "$EVAL" = 1 ] && [ -n "$tei" ]; then
        k=$(key "$tei")
        if [ ! -f "$tmp/data/$k-test1-images" ]; then
            $PY "$HELPER" idx "$tei" "$tmp/data/$k-test1-images"
            $PY "$HELPER" idx "$tel" "$tmp/data/$k-test1-labels"
            $PY "$HELPER" idx "$tei" "$tmp/data/$k-testk-images" --copies "$EVAL_COPIES"
            $PY "$HELPER" idx "$tel" "$tmp/data/$k-testk-labels" --copies "$EVAL_COPIES"
        fi
        test_n=$($PY -c 'import struct, sys; print(struct.unpack(">I", open(sys.argv[1], "rb").read(8)[4:])[0])' "$tmp/data/$k-test1-images")
        echo "$test_n" >"$tmp/res/$name.testn"
        rep=1
        while [ "$rep" -le "$EVAL_REPEATS" ]; do
            list=$order
            [ $((rep % 2)) = 1 ] || list=$(reverse "$order")
            for v in $list; do
                case $v in
                    nnseq:*) eval_nnseq "$name" "${v#nnseq:}" "$rep" "$tmp/data/$k-test1-images" "$tmp/data/$k-test1-labels" \
                        "$tmp/data/$k-testk-images" "$tmp/data/$k-testk-labels" ;;
                    torch:*) eval_torch "$name" "$eval_cfg" "${v#torch:}" "$rep" ;;
                esac
            done
            rep=$((rep + 1))
        done
    fi

    printf '%-6s %-12s %14s %15s %14s %16s %12s\n' who threads train_samp/s "(min-max)" eval_samp/s eval_proc_samp/s peak_RSS_MB
    for v in $order; do
        who=${v%%:*} t=${v#*:}
        r=$tmp/res/$name.$who.$t
        tr=$(med "$r.train")
        if [ "$who" = nnseq ]; then
            w1=$(med "$r.evalwall1") wk=$(med "$r.evalwallk")
            ev=$(awk -v a="$w1" -v b="$wk" -v n="${test_n:-0}" -v k="$EVAL_COPIES" \
                'BEGIN { if (a == "" || b == "" || b <= a || n == 0) print ""; else printf "%.0f", (k - 1) * n / (b - a) }')
            proc=$(awk -v a="$w1" -v n="${test_n:-0}" 'BEGIN { if (a == "" || n == 0) print ""; else printf "%.0f", n / a }')
            echo "$ev" >"$r.evalmed"
        else
            ev=$(med "$r.eval") proc=""
            echo "$ev" >"$r.evalmed"
        fi
        label=$t
        [ "$t" != default ] || label="default($ncpu)"
        range=$( [ -s "$r.train" ] && sort -n "$r.train" | awk 'NR == 1 { a = $1 } { b = $1 } END { printf "(%.0f-%.0f)", a, b }' || echo -)
        printf '%-6s %-12s %14s %15s %14s %16s %12s\n' "$who" "$label" "$(num "$tr")" "$range" "$(num "$ev")" "$(num "$proc")" "$(mb "$(med "$r.rss")")"
    done
    # torch's best thread count (training)
    best="" bestt=""
    for t in $TORCH_THREADS; do
        tr=$(med "$tmp/res/$name.torch.$t.train")
        if [ -n "$tr" ] && { [ -z "$best" ] || awk -v a="$tr" -v b="$best" 'BEGIN { exit !(a > b) }'; }; then best=$tr bestt=$t; fi
    done
    echo "$bestt" >"$tmp/res/$name.torchbest"
    nd=$(med "$tmp/res/$name.nnseq.default.train")
    ebest="" ebt=""
    for t in $TORCH_THREADS; do
        e=$(cat "$tmp/res/$name.torch.$t.evalmed" 2>/dev/null || :)
        if [ -n "$e" ] && { [ -z "$ebest" ] || awk -v a="$e" -v b="$ebest" 'BEGIN { exit !(a > b) }'; }; then ebest=$e ebt=$t; fi
    done
    echo "$ebt" >"$tmp/res/$name.torchevalbest"
    echo "ratio:  nnseq default / torch at its best: training $(or_dash "$(ratio "$nd" "$best")" x) (torch --threads ${bestt:-?}), eval $(or_dash "$(ratio "$(cat "$tmp/res/$name.nnseq.default.evalmed")" "$ebest")" x) (torch --threads ${ebt:-?})"
    echo
done
set --

# --- the second core kept busy ------------------------------------------------
if [ "$BUSY" = 1 ] && in_section busy && [ -n "$names" ]; then
    sh -c 'while :; do :; done' &
    spinner=$!
    echo "== busy: a spinning sh loop (pid $spinner) on the side; nnseq training samples/s, medians of $REPEATS"
    printf '%-18s %14s %14s %16s\n' config threads_1 "default($ncpu)" default/threads_1
    for name in $names; do
        cfg=$(cat "$tmp/res/$name.cfg")
        rep=1
        while [ "$rep" -le "$REPEATS" ]; do
            list="1 default"
            [ $((rep % 2)) = 1 ] || list="default 1"
            for t in $list; do train_nnseq "$name" "$cfg" "$t" "$rep" .busy; done
            rep=$((rep + 1))
        done
        a=$(med "$tmp/res/$name.nnseq.1.train.busy") b=$(med "$tmp/res/$name.nnseq.default.train.busy")
        printf '%-18s %14s %14s %16s\n' "$name" "$(num "$a")" "$(num "$b")" "$(or_dash "$(ratio "$b" "$a")")"
    done
    kill "$spinner" 2>/dev/null || :
    wait "$spinner" 2>/dev/null || :
    spinner=""
    echo
fi

# --- the sgemm-only ceiling of the MLPs ---------------------------------------
if [ "$CEILING" = 1 ] && in_section ceiling && [ -f "$SHARED/bench/gemm_ceiling.c" ] &&
    cc -O2 "$SHARED/bench/gemm_ceiling.c" -o "$tmp/gemm_ceiling" $(pkg-config --cflags --libs openblas); then
    echo "== sgemm-only ceiling (gemm_ceiling.c: the products of forward and backward only, 2 s each, one run):"
    printf '%-18s %-22s %10s %10s %12s %14s %14s\n' config "batch widths" 1_thread "${ncpu}_threads" "${ncpu}x1_proc" nnseq_1/ceil_1 nnseq_def/procs
    for name in $names; do
        shape=$($PY "$HELPER" mlp "$(cat "$tmp/res/$name.cfg")")
        [ -n "$shape" ] || continue
        set -- $shape
        b=$1
        shift
        c1=$(OPENBLAS_NUM_THREADS=1 "$tmp/gemm_ceiling" "$b" "$@" | sed -n 's/.*"ceiling_samples_per_s": \([0-9.]*\).*/\1/p')
        cn=$(OPENBLAS_NUM_THREADS=$ncpu "$tmp/gemm_ceiling" "$b" "$@" | sed -n 's/.*"ceiling_samples_per_s": \([0-9.]*\).*/\1/p')
        # ncpu one-thread processes at once, batch/ncpu each (what nnseq's replicas do)
        part=$(( (b + ncpu - 1) / ncpu )) i=0
        while [ "$i" -lt "$ncpu" ]; do
            OPENBLAS_NUM_THREADS=1 "$tmp/gemm_ceiling" "$part" "$@" >"$tmp/ceil.$i" &
            i=$((i + 1))
        done
        wait
        cp=$(cat "$tmp"/ceil.* | sed -n 's/.*"ceiling_samples_per_s": \([0-9.]*\).*/\1/p' | awk '{ s += $1 } END { print s }')
        cp=$(awk -v s="$cp" -v p="$part" -v b="$b" 'BEGIN { printf "%.0f", s * b / (p * '"$ncpu"') }')  # whole batches/s x batch
        rm -f "$tmp"/ceil.*
        printf '%-18s %-22s %10s %10s %12s %14s %14s\n' "$name" "$b $*" "$(num "$c1")" "$(num "$cn")" "$(num "$cp")" \
            "$(or_dash "$(ratio "$(med "$tmp/res/$name.nnseq.1.train")" "$c1")")" \
            "$(or_dash "$(ratio "$(med "$tmp/res/$name.nnseq.default.train")" "$cp")")"
    done
    set --
    echo
fi

# --- data-parallel over MPI: 2 ranks against 1 process -----------------------
has() { case " $names " in *" $1 "*) return 0 ;; esac; return 1; }
train_mpi() {   # NAME CONFIG WHICH REP; WHICH: 2r_x1, 1p_x2 or 1p_x1 (ranks x threads)
    case $3 in
        2r_x1) launch="$MPIRUN $MPIRUN_ARGS -np 2" t=1 ;;
        1p_x2) launch="" t=2 ;;
        *) launch="" t=1 ;;
    esac
    o=$tmp/run/$1.mpi.$3.$4
    # $launch unquoted: mpirun and its arguments, or nothing
    if run "$1 ${launch:+$launch }nnseq train --threads $t (MPI build)" "$o" $launch "$MPINN" train "$2" \
        --epochs "$EPOCHS" --threads "$t" --format json --out "$tmp/ckpt/$1.mpi.ckpt"; then
        $PY "$HELPER" train-rate "$o.out" >>"$tmp/res/$1.mpi.$3.train"
    fi
}
step_ms() { awk -v b="$1" -v r="$2" 'BEGIN { if (b == "" || r == "" || r + 0 == 0) print ""; else printf "%.2f", 1000 * b / r }'; }   # BATCH SAMPLES/S
mpi_names=""
for name in fashion_cnn fashion_mlp_wide; do
    ! has "$name" || mpi_names="$mpi_names $name"
done
if in_section mpi && [ -n "$mpi_names" ] && [ -z "$MPINN" ]; then
    echo "== MPI rows skipped: $mpi_skip"
    echo
elif in_section mpi && [ -n "$mpi_names" ]; then
    allreduce=""
    if mpicc -std=c11 -O2 -Ilib -D_POSIX_C_SOURCE=200809L bench/allreduce.c lib/train/collective_mpi.c \
        lib/train/collective.c lib/core/error.c -o "$tmp/allreduce" 2>"$tmp/allreduce.err"; then
        allreduce=$tmp/allreduce
    else
        problem "bench/allreduce.c: mpicc failed: $(head -2 "$tmp/allreduce.err" | tr '\n' ' ' | cut -c1-300)"
    fi
    echo "== MPI ($("$MPINN" --version | sed -n 's/^MPI: \([^(]*\).*/\1/p' | sed 's/ *$//'), both ranks on this machine: the allreduce goes through shared memory)"
    echo "training samples/s, medians of $REPEATS, alternating, nnseq's epoch timer, all with $MPI_NNSEQ:"
    echo "2r_x1 = $MPIRUN $MPIRUN_ARGS -np 2 nnseq train --threads 1; 1p_x2, 1p_x1 = one process at --threads 2, 1;"
    echo "step_ms = batch / samples/s; bench/allreduce.c at -np 2 over the config's parameter count, medians of"
    echo "$ALLREDUCE_CALLS calls, the slowest rank's time: ring_us = nnseq's ring reduce-scatter + allgather of the"
    echo "gradients and parameters (what a step does, the sharded update between them), allreduce_us = one"
    echo "MPI_Allreduce (in place, float, SUM) for comparison; busbw = bytes x 2(N-1)/N / ring_us; comm/step ="
    echo "ring_us over the 2-rank step."
    printf '%-18s %9s %8s %8s %8s %11s %12s %9s %8s %12s %9s %9s\n' config params 1p_x1 1p_x2 2r_x1 2r_x1/1p_x2 \
        step_1p_x1_ms step_2r_ms ring_us allreduce_us busbw_GB/s comm/step
    for name in $mpi_names; do
        cfg=$(cat "$tmp/res/$name.cfg")
        batch=$(cut -d' ' -f2 "$tmp/res/$name.shape")
        rep=1
        while [ "$rep" -le "$REPEATS" ]; do
            list="2r_x1 1p_x2 1p_x1"
            [ $((rep % 2)) = 1 ] || list="1p_x1 1p_x2 2r_x1"
            for v in $list; do train_mpi "$name" "$cfg" "$v" "$rep"; done
            rep=$((rep + 1))
        done
        params=$("$MPINN" print "$cfg" 2>/dev/null | sed -n 's/^Total params: *//p' | tr -d ,)
        ar="" bw="" ring=""
        o=$tmp/run/$name.allreduce
        if [ -n "$allreduce" ] && [ -n "$params" ]; then
            if $MPIRUN $MPIRUN_ARGS -np 2 "$allreduce" --calls "$ALLREDUCE_CALLS" "$params" >"$o.out" 2>"$o.err"; then
                ar=$($PY "$HELPER" field "$o.out" median_us) bw=$($PY "$HELPER" field "$o.out" ring_busbw_GBps)
                ring=$($PY "$HELPER" field "$o.out" ring_median_us)
            else
                problem "$name allreduce: $(grep -v '^ *$' "$o.err" | tail -2 | tr '\n' ' ' | cut -c1-300)"
            fi
        fi
        r1=$(med "$tmp/res/$name.mpi.1p_x1.train") r2=$(med "$tmp/res/$name.mpi.1p_x2.train")
        rr=$(med "$tmp/res/$name.mpi.2r_x1.train")
        ratio "$rr" "$r2" >"$tmp/res/$name.mpi.ratio"
        echo "$(num "$rr") / $(num "$r2")" >"$tmp/res/$name.mpi.detail"
        s1=$(step_ms "$batch" "$r1") s2=$(step_ms "$batch" "$rr")
        share=$(awk -v a="$ring" -v s="$s2" 'BEGIN { if (a == "" || s == "" || s + 0 == 0) print ""; else printf "%.0f%%", 100 * a / (1000 * s) }')
        printf '%-18s %9s %8s %8s %8s %11s %12s %9s %8s %12s %9s %9s\n' "$name" "$(or_dash "$params")" "$(num "$r1")" \
            "$(num "$r2")" "$(num "$rr")" "$(or_dash "$(ratio "$rr" "$r2")")" "$(or_dash "$s1")" "$(or_dash "$s2")" \
            "$(or_dash "$ring")" "$(or_dash "$ar")" "$(or_dash "$bw")" "$(or_dash "$share")"
    done
    echo
fi

# --- targets -------------------------------------------------------------------
# check LABEL VALUE OP LIMIT DETAIL
check() {
    if [ -z "$2" ]; then
        verdict="n/a "
    elif awk -v a="$2" -v b="$4" "BEGIN { exit !(a $3 b) }"; then
        verdict=pass
    else
        verdict=MISS
    fi
    printf '  %-4s %-48s %6s %s %-4s %s\n' "$verdict" "$1" "$(or_dash "$2")" "$3" "$4" "$5"
}
echo "== targets (medians of this run; nnseq at its default --threads, torch at its best)"
for pair in fashion_mlp:3.0 fashion_mlp_b64:3.0 fashion_cnn:2.0 fashion_cnn_bn:2.0 fashion_mlp_wide:1.5; do
    name=${pair%%:*} limit=${pair#*:}
    in_section train && has "$name" || continue
    bt=$(cat "$tmp/res/$name.torchbest")
    a=$(med "$tmp/res/$name.nnseq.default.train") b=$(med "$tmp/res/$name.torch.$bt.train" 2>/dev/null || :)
    check "training $name vs torch" "$(ratio "$a" "$b")" '>=' "$limit" "($(num "$a") / $(num "$b") at torch --threads ${bt:-?})"
done
for name in fashion_cnn fashion_mlp_wide; do
    in_section train && has "$name" || continue
    a=$(med "$tmp/res/$name.nnseq.2.train") b=$(med "$tmp/res/$name.nnseq.1.train")
    check "training $name --threads 2 vs 1" "$(ratio "$a" "$b")" '>=' 1.7 "($(num "$a") / $(num "$b"))"
done
if [ "$BUSY" = 1 ] && in_section busy; then
    for name in $names; do
        a=$(med "$tmp/res/$name.nnseq.default.train.busy") b=$(med "$tmp/res/$name.nnseq.1.train.busy")
        check "busy core: $name default vs --threads 1" "$(ratio "$a" "$b")" '>=' 0.9 "($(num "$a") / $(num "$b"))"
    done
fi
if [ "$EVAL" = 1 ] && in_section train; then
    for name in $names; do
        bt=$(cat "$tmp/res/$name.torchevalbest")
        best=$(cat "$tmp/res/$name.torch.$bt.evalmed" 2>/dev/null || :)
        a=$(cat "$tmp/res/$name.nnseq.default.evalmed" 2>/dev/null || :)
        check "eval $name vs torch" "$(ratio "$a" "$best")" '>=' 3.0 "($(num "$a") / $(num "$best") at torch --threads ${bt:-?})"
    done
fi
for name in $names; do
    in_section train || break
    bt=$(cat "$tmp/res/$name.torchbest")
    a=$(med "$tmp/res/$name.nnseq.default.rss") b=$(med "$tmp/res/$name.torch.$bt.rss" 2>/dev/null || :)
    check "peak RSS $name vs torch" "$(ratio "$a" "$b")" '<=' 0.5 "($(mb "$a") MB / $(mb "$b") MB, training)"
done
if [ -n "$MPINN" ] && in_section mpi; then
    for name in $mpi_names; do
        check "$name: 2 ranks x 1 thread within 15% of 1 process x 2 threads" "$(cat "$tmp/res/$name.mpi.ratio")" '>=' 0.85 \
            "($(cat "$tmp/res/$name.mpi.detail") samples/s)"
    done
fi

if [ -s "$tmp/problems" ]; then
    echo
    echo "== problems"
    sed 's/^/  /' "$tmp/problems"
fi
echo
echo "took $(( $(date +%s) - started )) s; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
