#!/bin/sh
# tests/dist/run.sh - the 'dist' suite's cases, each under tools/mpirun.sh and bounded by
# `timeout` (a hang fails the test instead of stalling CI). Exit 77 (skip) without mpirun.
#   run.sh collectives|timeout|equivalence-sgd|equivalence-adam|unused-find|unused-refuse|
#          compress-exact|train|train-compress|train-resume|train-interrupt|train-failure|
#          train-kill|eval|fashion-mnist|bench
# Environment (set by meson): MPIRUN, EMBER, DIST_COLLECTIVES, DDP_EQUIVALENCE, DDP_UNUSED,
# DDP_COMPRESS, DIGITS_CSV, FASHION_INI.
set -u
case_name=$1
command -v mpirun >/dev/null 2>&1 || { echo "SKIP: mpirun not installed (openmpi-bin)"; exit 77; }
if [ -z "$(EMBER_DIST= "$EMBER" info 2>/dev/null | grep -E '^  mpi ')" ]; then
    echo "SKIP: the mpi communicator plugin was not built (no MPI library found)"
    exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# A digits config whose training split (1436 samples) divides by 2 and 4.
write_config() {   # $1 file, $2 batch size, $3 optimizer, $4 dataset path, [$5 more [train] lines]
    cat > "$1" <<INI
[data]
dataset = CSV(path="$4", label="label", scale=0.0625)
split = 0.79912
batch_size = $2
shuffle = true
[model]
spec = Sequential(Linear(64, 32), ReLU(), Linear(32, 10))
loss = CrossEntropyLoss()
[train]
optimizer = $3
epochs = 3
seed = 0
${5:-}
INI
}

# Largest difference between the tensors of two safetensors files (float32 only), relative to
# each tensor's largest magnitude; at most $3 (default 1e-5).
compare_weights() {
    python3 - "$1" "$2" "${3:-1e-5}" <<'PY'
import json, struct, sys
def load(p):
    b = open(p, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8:8 + n])
    out = {}
    for k, v in h.items():
        if k == '__metadata__':
            continue
        s, e = v['data_offsets']
        raw = b[8 + n + s:8 + n + e]
        out[k] = struct.unpack('<%df' % (len(raw) // 4), raw)
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
assert a.keys() == b.keys(), (a.keys(), b.keys())
# per tensor: the largest difference relative to the tensor's largest magnitude
worst = max(max(abs(x - y) for x, y in zip(a[k], b[k])) / max(max(map(abs, b[k])), 1e-12)
            for k in a)
print('max difference relative to each tensor\'s largest weight: %.3g' % worst)
sys.exit(0 if worst <= float(sys.argv[3]) else 1)
PY
}

case $case_name in
collectives)
    for n in 2 4; do
        timeout 120 "$MPIRUN" -np $n "$DIST_COLLECTIVES" || fail "collectives on $n ranks"
    done ;;
timeout)
    start=$(date +%s)
    EMBER_DIST_TIMEOUT=3 timeout 100 "$MPIRUN" -x EMBER_DIST_TIMEOUT -np 2 \
        "$DIST_COLLECTIVES" --hang > "$work/out" 2>&1
    rc=$?
    cat "$work/out"
    [ $rc -ne 0 ] || fail "a rank that never joined did not fail the job"
    [ $rc -ne 124 ] || fail "the job hung until timeout(1) killed it"
    grep -q "all_reduce timed out after 3 s on rank 0" "$work/out" || fail "no timeout message"
    echo "ended after $(( $(date +%s) - start )) s with status $rc" ;;
equivalence-sgd|equivalence-adam)
    if [ $case_name = equivalence-sgd ]; then opt="SGD(lr=0.1, momentum=0.9)"
    else opt="Adam(lr=0.01)"; fi
    for n in 2 4; do
        timeout 240 "$MPIRUN" -np $n "$DDP_EQUIVALENCE" "$opt" 3 || fail "$opt on $n ranks"
    done ;;
unused-find|unused-refuse)
    # a parameter without a gradient on some ranks (and, for find, on all): a short collective
    # timeout turns a mismatch into a failure instead of a 300 s wait
    for n in 2 4; do
        EMBER_DIST_TIMEOUT=20 timeout 120 "$MPIRUN" -x EMBER_DIST_TIMEOUT -np $n "$DDP_UNUSED" \
            "${case_name#unused-}" || fail "$case_name on $n ranks"
    done ;;
compress-exact)
    # bf16 compression: 2 ranks bit for bit the hand-made bf16 average, 4 within its rounding
    for n in 2 4; do
        EMBER_DIST_TIMEOUT=20 timeout 120 "$MPIRUN" -x EMBER_DIST_TIMEOUT -np $n \
            "$DDP_COMPRESS" || fail "bf16 compression on $n ranks"
    done ;;
train-compress)
    # [train] ddp_compress = bf16: 2 ranks still learn digits (test accuracy within 2 points of
    # the uncompressed run, loss falling), the weights differ from it (the key took effect),
    # and a bad value is an error naming the file and line.
    write_config "$work/plain.ini" 16 "SGD(lr=0.1, momentum=0.9)" "$DIGITS_CSV"
    write_config "$work/bf16.ini" 16 "SGD(lr=0.1, momentum=0.9)" "$DIGITS_CSV" \
        "ddp_compress = bf16"
    for c in plain bf16; do
        timeout 120 "$MPIRUN" -np 2 "$EMBER" train "$work/$c.ini" --out "$work/$c" --quiet \
            --no-plot > "$work/$c.log" 2>&1 || { cat "$work/$c.log"; fail "2 ranks, $c"; }
    done
    cat "$work/plain/metrics.csv" "$work/bf16/metrics.csv"
    python3 - "$work/plain/metrics.csv" "$work/bf16/metrics.csv" <<'PY' || fail "bf16 learns worse"
import sys
rows = [[l.split(',') for l in open(p).read().split()[1:]] for p in sys.argv[1:]]
plain, bf16 = rows
assert len(plain) == len(bf16) == 3, rows
loss = [float(r[1]) for r in bf16]
assert loss[2] < loss[0], ('training loss did not fall', loss)
acc_plain, acc_bf16 = float(plain[-1][3]), float(bf16[-1][3])
assert acc_bf16 >= acc_plain - 0.02, (acc_bf16, acc_plain)
print('test accuracy after 3 epochs: bf16 %.4f, float32 %.4f' % (acc_bf16, acc_plain))
PY
    if compare_weights "$work/bf16/last.safetensors" "$work/plain/last.safetensors" 1e-5; then
        fail "the weights equal the uncompressed run's: ddp_compress had no effect"
    fi
    write_config "$work/bad.ini" 16 "SGD(lr=0.1)" "$DIGITS_CSV" "ddp_compress = fp8"
    timeout 60 "$MPIRUN" -np 2 "$EMBER" train "$work/bad.ini" --out "$work/bad" --quiet \
        > "$work/bad.log" 2>&1
    rc=$?
    cat "$work/bad.log"
    [ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "a bad ddp_compress gave status $rc"
    grep -q "bad.ini:13: train.ddp_compress: expected none or bf16, got 'fp8'" "$work/bad.log" \
        || fail "the error does not name the file, line, key and value" ;;
train)
    # 2 ranks x batch 16 (2 epochs, then --resume to 3) against 1 process x batch 32.
    write_config "$work/one.ini" 32 "SGD(lr=0.1, momentum=0.9)" "$DIGITS_CSV"
    write_config "$work/two.ini" 16 "SGD(lr=0.1, momentum=0.9)" "$DIGITS_CSV"
    timeout 120 "$EMBER" train "$work/one.ini" --out "$work/one" --quiet > "$work/one.log" 2>&1 \
        || { cat "$work/one.log"; fail "one process"; }
    timeout 120 "$MPIRUN" -np 2 "$EMBER" train "$work/two.ini" --out "$work/two" --epochs 2 \
        --quiet > "$work/two.log" 2>&1 || { cat "$work/two.log"; fail "2 ranks"; }
    timeout 120 "$MPIRUN" -np 2 "$EMBER" train "$work/two.ini" --out "$work/two" --resume \
        --quiet >> "$work/two.log" 2>&1 || { cat "$work/two.log"; fail "2 ranks --resume"; }
    cat "$work/two.log"
    [ "$(grep -c '^epoch 1/' "$work/two.log")" = 1 ] || fail "epoch lines not printed once"
    grep -q "2 ranks (mpi)" "$work/two.log" || fail "no rank count in the banner"
    cut -d, -f1-4 "$work/one/metrics.csv" > "$work/a"
    cut -d, -f1-4 "$work/two/metrics.csv" > "$work/b"
    python3 - "$work/a" "$work/b" <<'PY' || fail "metrics differ"
import sys
a = [l.split(',') for l in open(sys.argv[1]).read().split()[1:]]
b = [l.split(',') for l in open(sys.argv[2]).read().split()[1:]]
assert len(a) == len(b) == 3, (a, b)
for ra, rb in zip(a, b):
    for x, y in zip(ra[1:], rb[1:]):
        x, y = float(x), float(y)
        assert abs(x - y) <= 1e-5 * max(abs(y), 1e-3) + 2e-6, (ra, rb)
print('metrics agree:', b)
PY
    compare_weights "$work/two/last.safetensors" "$work/one/last.safetensors" \
        || fail "final weights differ" ;;
train-resume)
    # 2 ranks: 1 epoch then --resume to 2 is bit for bit the uninterrupted 2-epoch run
    # (metrics, weights and optimizer state), which only rank 0 wrote and read.
    write_config "$work/c.ini" 16 "Adam(lr=0.01)" "$DIGITS_CSV"
    timeout 120 "$MPIRUN" -np 2 "$EMBER" train "$work/c.ini" --out "$work/straight" --epochs 2 \
        --quiet --no-plot > "$work/log" 2>&1 || { cat "$work/log"; fail "2 epochs"; }
    timeout 120 "$MPIRUN" -np 2 "$EMBER" train "$work/c.ini" --out "$work/resumed" --epochs 1 \
        --quiet --no-plot >> "$work/log" 2>&1 || { cat "$work/log"; fail "1 epoch"; }
    # rank 0 alone reads the run folder: rank 1's --out may name nothing on its machine
    timeout 120 "$MPIRUN" -np 1 "$EMBER" train "$work/c.ini" --out "$work/resumed" --epochs 2 \
        --resume --quiet --no-plot : -np 1 "$EMBER" train "$work/c.ini" --out "$work/elsewhere" \
        --epochs 2 --resume --quiet --no-plot >> "$work/log" 2>&1 \
        || { cat "$work/log"; fail "--resume"; }
    [ ! -e "$work/elsewhere" ] || fail "rank 1 touched its --out"
    cat "$work/log"
    [ "$(grep -c '^epoch 2/2' "$work/log")" = 2 ] || fail "epoch 2 not printed once per run"
    cut -d, -f1-4 "$work/straight/metrics.csv" > "$work/a"
    cut -d, -f1-4 "$work/resumed/metrics.csv" > "$work/b"
    diff "$work/a" "$work/b" || fail "metrics of the resumed run differ"
    compare_weights "$work/resumed/last.safetensors" "$work/straight/last.safetensors" 0 \
        || fail "weights of the resumed run differ"
    compare_weights "$work/resumed/last.optim.safetensors" \
        "$work/straight/last.optim.safetensors" 0 || fail "optimizer state differs" ;;
train-interrupt)
    # SIGINT to rank 1 alone (as srun forwards Ctrl-C, at whatever step each rank is): every
    # rank finishes the epoch, rank 0 saves it, the job ends with 130, and --resume goes on.
    write_config "$work/c.ini" 16 "SGD(lr=0.1)" "$DIGITS_CSV"
    EMBER_DIST_TIMEOUT=30 timeout 100 "$MPIRUN" -x EMBER_DIST_TIMEOUT -np 2 sh -c \
        'echo $$ > "$1.$OMPI_COMM_WORLD_RANK"; exec "$0" train "$2" --out "$3" --epochs 100000 \
        --quiet --no-plot' "$EMBER" "$work/pid" "$work/c.ini" "$work/out" > "$work/log" 2>&1 &
    job=$!
    for i in $(seq 200); do
        [ -s "$work/out/state.txt" ] && [ -f "$work/pid.1" ] && break
        sleep 0.1
    done
    [ -f "$work/pid.1" ] || fail "rank 1 did not start"
    kill -INT "$(cat "$work/pid.1")"
    wait $job
    rc=$?
    tail -4 "$work/log"
    [ $rc -ne 124 ] || fail "the job hung"
    [ $rc -ne 0 ] || fail "status 0 after an interrupt"
    grep -q "^interrupted: stopped after epoch" "$work/log" || fail "no interrupt message"
    if grep -q -e "MPI_ERR" -e "ending the job" "$work/log"; then
        fail "the ranks fell out of step"
    fi
    done_epochs=$(sed -n 's/^epochs_done=//p' "$work/out/state.txt")
    [ "$(tail -1 "$work/out/metrics.csv" | cut -d, -f1)" = "$done_epochs" ] \
        || fail "state.txt ($done_epochs epochs) and metrics.csv disagree"
    timeout 100 "$MPIRUN" -np 2 "$EMBER" train "$work/c.ini" --out "$work/out" \
        --epochs $((done_epochs + 1)) --resume --quiet --no-plot > "$work/log2" 2>&1 \
        || { cat "$work/log2"; fail "--resume after the interrupt"; }
    grep -q "^epoch $((done_epochs + 1))/" "$work/log2" || fail "the resumed epoch not run" ;;
train-failure)
    # rank 1 reads a bad data file: the whole job ends, naming the rank.
    write_config "$work/good.ini" 16 "SGD(lr=0.1)" "$DIGITS_CSV"
    printf 'label,a\n1,2\nx,y,z\n' > "$work/bad.csv"
    write_config "$work/bad.ini" 16 "SGD(lr=0.1)" "$work/bad.csv"
    timeout 100 "$MPIRUN" -np 2 sh -c 'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then
        exec "$0" train "$2" --out "$3"; else exec "$0" train "$1" --out "$3"; fi' \
        "$EMBER" "$work/good.ini" "$work/bad.ini" "$work/out" > "$work/log" 2>&1
    rc=$?
    cat "$work/log"
    [ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "status $rc"
    grep -q "rank 1 of 2" "$work/log" || fail "the message does not name rank 1" ;;
train-kill)
    # kill -9 of one rank in the middle of training: mpirun ends the job.
    write_config "$work/c.ini" 16 "SGD(lr=0.1)" "$DIGITS_CSV"
    timeout 100 "$MPIRUN" -np 2 sh -c 'echo $$ > "$1.$OMPI_COMM_WORLD_RANK"; exec "$0" train "$2" \
        --out "$3" --epochs 100000 --quiet' "$EMBER" "$work/pid" "$work/c.ini" "$work/out" \
        > "$work/log" 2>&1 &
    job=$!
    for i in $(seq 200); do   # until the first epoch is written (training is under way)
        [ -s "$work/out/state.txt" ] && [ -f "$work/pid.1" ] && break
        sleep 0.1
    done
    [ -f "$work/pid.1" ] || fail "rank 1 did not start"
    kill -9 "$(cat "$work/pid.1")"
    wait $job
    rc=$?
    tail -5 "$work/log"
    [ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "status $rc after kill -9 of rank 1" ;;
eval)
    # `ember eval` on 2 and 3 ranks prints once the figures of the whole test set (361 samples:
    # uneven shards), the same as one process; only rank 0 reads the checkpoint, and a bad one
    # ends the job.
    write_config "$work/c.ini" 16 "SGD(lr=0.1, momentum=0.9)" "$DIGITS_CSV"
    timeout 120 "$EMBER" train "$work/c.ini" --out "$work/run" --epochs 1 --quiet --no-plot \
        > "$work/train.log" 2>&1 || { cat "$work/train.log"; fail "training the checkpoint"; }
    ck="$work/run/last.safetensors"
    timeout 60 "$EMBER" eval "$work/c.ini" --checkpoint "$ck" > "$work/one" 2>&1 \
        || { cat "$work/one"; fail "eval in one process"; }
    for n in 2 3; do
        timeout 100 "$MPIRUN" -np $n "$EMBER" eval "$work/c.ini" --checkpoint "$ck" \
            --plot "$work/confusion.svg" > "$work/many" 2>&1 \
            || { cat "$work/many"; fail "eval on $n ranks"; }
        cat "$work/many"
        [ "$(grep -c '^test samples: 361$' "$work/many")" = 1 ] \
            || fail "$n ranks: 'test samples: 361' not printed exactly once"
        [ "$(grep -c '^wrote ' "$work/many")" = 1 ] || fail "$n ranks: the plot not written once"
        # the same figures as one process (the loss within rounding of its last digit)
        grep -v -e '^test loss' -e '^wrote ' "$work/many" > "$work/a"
        grep -v '^test loss' "$work/one" > "$work/b"
        diff "$work/b" "$work/a" || fail "$n ranks: figures differ from one process"
        l1=$(sed -n 's/^test loss: //p' "$work/one")
        ln=$(sed -n 's/^test loss: //p' "$work/many")
        awk -v a="$l1" -v b="$ln" 'BEGIN { d = a - b; exit !(d <= 1e-4 && d >= -1e-4) }' \
            || fail "$n ranks: test loss $ln, one process $l1"
    done
    # rank 0 alone reads the checkpoint: rank 1's path may name nothing on its machine
    timeout 100 "$MPIRUN" -np 1 "$EMBER" eval "$work/c.ini" --checkpoint "$ck" : \
        -np 1 "$EMBER" eval "$work/c.ini" --checkpoint "$work/elsewhere/last.safetensors" \
        > "$work/many" 2>&1 || { cat "$work/many"; fail "a checkpoint only rank 0 has"; }
    grep -v '^test loss' "$work/many" > "$work/a"
    grep -v '^test loss' "$work/one" > "$work/b"
    diff "$work/b" "$work/a" || fail "a checkpoint only rank 0 has: figures differ"
    # a bad checkpoint on rank 0 ends the job, naming rank 0 and the file
    echo "not a checkpoint" > "$work/bad.safetensors"
    timeout 100 "$MPIRUN" -np 2 "$EMBER" eval "$work/c.ini" --checkpoint "$work/bad.safetensors" \
        > "$work/log" 2>&1
    rc=$?
    cat "$work/log"
    [ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "bad checkpoint: status $rc"
    grep -q "rank 0 of 2" "$work/log" || fail "the message does not name rank 0"
    grep -q "bad.safetensors" "$work/log" || fail "the message does not name the file" ;;
fashion-mnist)
    # examples/fashion-mnist.ini for 2 epochs on 1 rank and on 2 ranks (batch_size per rank, so
    # twice the global batch): 2 ranks reach the 1-rank test accuracy within 1 point.
    if [ ! -d /usr/share/datasets/fashion-mnist ]; then
        echo "SKIP: Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)"
        exit 77
    fi
    timeout 200 "$EMBER" train "$FASHION_INI" --epochs 2 --out "$work/one" --quiet --no-plot \
        > "$work/log" 2>&1 || { cat "$work/log"; fail "1 rank"; }
    timeout 200 "$MPIRUN" -np 2 -x EMBER_NUM_THREADS=1 "$EMBER" train "$FASHION_INI" --epochs 2 \
        --out "$work/two" --quiet --no-plot >> "$work/log" 2>&1 \
        || { cat "$work/log"; fail "2 ranks"; }
    cat "$work/log"
    a1=$(tail -1 "$work/one/metrics.csv" | cut -d, -f4)
    a2=$(tail -1 "$work/two/metrics.csv" | cut -d, -f4)
    awk -v a="$a1" -v b="$a2" 'BEGIN { exit !(b >= a - 0.01) }' \
        || fail "2 ranks reached test accuracy $a2, 1 rank $a1" ;;
bench)
    # `ember bench --dist` runs to the end on 2 ranks and reports every figure (the figures
    # themselves are never checked: timings are not pass/fail); --train skips the all-reduce sweep
    timeout 200 "$MPIRUN" -np 2 -x EMBER_NUM_THREADS=1 "$EMBER" bench --dist --quick \
        > "$work/log" 2>&1 || { cat "$work/log"; fail "bench --dist"; }
    cat "$work/log"
    grep -Eq '^ +4194304 +[0-9.]+ +[0-9.]+ ' "$work/log" || fail "no 4 MB all-reduce line"
    for what in "784-256-128-10" "784-500-10"; do
        grep -A3 "^$what" "$work/log" | grep -Eq "2 ranks x 1 thread, float32 gradients: +[0-9]+ samples/s" \
            || fail "no 2-rank float32 throughput for $what"
        grep -A3 "^$what" "$work/log" | grep -q "bf16 gradients" || fail "no bf16 line for $what"
    done
    timeout 200 "$MPIRUN" -np 2 -x EMBER_NUM_THREADS=1 "$EMBER" bench --dist --quick --train \
        > "$work/log" 2>&1 || { cat "$work/log"; fail "bench --dist --train"; }
    if grep -q "MPI us" "$work/log"; then cat "$work/log"; fail "--train ran the all-reduce sweep"; fi
    [ "$(grep -c 'samples/s' "$work/log")" -eq 4 ] || { cat "$work/log"; fail "--train: not 4 throughput lines"; } ;;
*)
    fail "unknown case $case_name" ;;
esac
echo "PASS: $case_name"
