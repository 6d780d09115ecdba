#!/usr/bin/env bash
# tools/e2e.sh - end-to-end checks of the `ember` tool and the examples in BUILD_DIR.
set -uo pipefail
cd "$(dirname "$0")/.."
build=$(cd "${1:-build}" && pwd)   # absolute: a relative EMBER_PLUGIN_PATH entry is refused
export EMBER_CONFIG=
. tests/e2e/check.sh

ember=$build/tools/ember
check "info lists the cpu backend" 0 'cpu +available: yes' -- "$ember" info
check "info shows the plugin file" 0 'ember_cpu\.so' -- "$ember" info
check "info shows config sources" 0 'runtime\.backend.*default' -- "$ember" info
check "help" 0 'usage: ember' -- "$ember" --help
check "unknown command" 2 "unknown command 'frobnicate'" -- "$ember" frobnicate
check "unknown info option" 2 "unknown option '--bogus'" -- "$ember" info --bogus
check "missing config file" 1 'nonexistent\.ini' -- "$ember" info --config /nonexistent.ini
check "unknown backend" 1 "unknown backend 'tpu'" -- env EMBER_BACKEND=tpu "$ember" info
check "bad plugin dir is reported" 0 'does not exist' -- env EMBER_PLUGIN_PATH=/nonexistent "$ember" info
open_dir=$(mktemp -d) && cp "$build/tests/plugins/mockdev/mockdev.so" "$open_dir/" && chmod 0777 "$open_dir"
check "info shows a world-writable plugin folder refused" 0 'refused: writable by other users \(mode 0777\)' -- \
    env EMBER_PLUGIN_PATH="$open_dir" "$ember" info
check "a relative EMBER_PLUGIN_PATH entry is refused" 0 'refused: a relative folder' -- \
    env EMBER_PLUGIN_PATH=build/tests/plugins/mockdev "$ember" info
rm -rf "$open_dir"
check "tensor example" 0 'tensor\(\[\[999, +2, +3\]' -- "$build/examples/tensors"
check "bench runs" 0 'dispatch overhead' -- "$ember" bench --quick

# The conformance runner: passes, skips (never counted as passes), and the planted bugs of
# tests/conformance/plugins that it must catch.
check "conformance on cpu" 0 '^[1-9][0-9]* passed, 0 failed, 0 skipped$' -- \
    "$ember" conformance --backend cpu --op softmax --junit "$build/conformance-e2e.xml"
check "conformance writes JUnit XML" 0 '<testcase classname="conformance.cpu.softmax"' -- \
    cat "$build/conformance-e2e.xml"
check "conformance skips what a backend lacks" 0 '^[1-9][0-9]* passed, 0 failed, [1-9][0-9]* skipped$' -- \
    env EMBER_PLUGIN_PATH="$build/tests/plugins/mockdev" "$ember" conformance --backend mock
if "$ember" info | grep -qE '^  cuda +available: no.*no plugin provides it'; then
    check "conformance on an absent backend is all skipped" 0 '^0 passed, 0 failed, [1-9][0-9]* skipped$' -- \
        "$ember" conformance --backend cuda
fi
check "conformance: unknown backend" 1 "unknown backend 'tpu'" -- "$ember" conformance --backend tpu
faulty=(env EMBER_PLUGIN_PATH="$build/tests/conformance/plugins" "$ember" conformance --backend faulty)
check "conformance catches a wrong value" 1 'FAIL add f32 same shape .*max abs err' -- \
    "${faulty[@]}" --op add --dtype f32
check "conformance catches NaN where the reference has none" 1 'FAIL exp f32 .*got nan' -- \
    "${faulty[@]}" --op exp --dtype f32
check "conformance guard values catch writes outside a view" 1 \
    'FAIL copy f32 copy_ into every other element .*expected 77' -- "${faulty[@]}" --op copy --dtype f32
check "conformance --support" 0 'softmax +Y +Y +Y +Y +\. +\. +\. +\.' -- \
    "$ember" conformance --support --backend cpu
check "conformance --list" 0 '^[0-9]+ cases, [0-9]+ case-dtype instances$' -- \
    "$ember" conformance --list
# An op plugin built out of tree against an installed Ember (about half a minute).
check "out-of-tree op plugin, end to end" 0 '^op-plugin e2e: ok$' -- tests/e2e/op_plugin.sh

# The main job and the tutorial: accuracy floors, determinism, eval, bad input.
run=$(mktemp -d)
check "train digits reaches 95%" 0 'best test accuracy (9[5-9]|100)\.' -- \
    "$ember" train examples/digits.ini --out "$run/a" --quiet
check "train digits again" 0 'best test accuracy' -- \
    "$ember" train examples/digits.ini --out "$run/b" --quiet
check "two runs are identical bit for bit" 0 '^same$' -- \
    sh -c "cmp -s '$run/a/last.safetensors' '$run/b/last.safetensors' && echo same"
check "eval prints accuracy and a confusion matrix" 0 'confusion matrix' -- \
    "$ember" eval examples/digits.ini --checkpoint "$run/a/best.safetensors"
if "$ember" info 2>/dev/null | grep -qE '^  opencl +available: yes'; then
    check "train digits on opencl reaches the CPU's accuracy" 0 'best test accuracy (9[5-9]|100)\.' -- \
        env EMBER_BACKEND=opencl "$ember" train examples/digits.ini --out "$run/ocl" --quiet
fi
check "train iris" 0 'best test accuracy (9[0-9]|100)\.' -- \
    "$ember" train examples/iris.ini --out "$run/iris" --quiet
"$ember" train examples/digits.ini --out "$run/c" --epochs 8 --quiet >/dev/null 2>&1
"$ember" train examples/digits.ini --out "$run/d" --epochs 5 --quiet >/dev/null 2>&1
check "resume continues where the run stopped" 0 'epoch 6/8' -- \
    "$ember" train examples/digits.ini --out "$run/d" --epochs 8 --resume --quiet
check "a resumed run ends where an uninterrupted one does" 0 '^same$' -- \
    sh -c "cmp -s '$run/c/last.safetensors' '$run/d/last.safetensors' && echo same"
printf '[data]\ndataset = CSV(path="data/digits.csv")\n[model]\nspec = Linear(64, 10)\n[train]\noptimiser = SGD(lr=0.1)\n' > "$run/typo.ini"
check "a config typo is named with a suggestion" 2 "unknown key 'train.optimiser'; did you mean 'train.optimizer'" -- \
    "$ember" train "$run/typo.ini"
check "a missing config file" 2 'nosuch.ini: No such file' -- "$ember" train "$run/nosuch.ini"
printf '[data]\ndataset = CSV(path="missing.csv")\n[model]\nspec = Linear(64, 10)\n[train]\noptimizer = SGD(lr=0.1)\n' > "$run/nodata.ini"
check "a missing data file names the file" 1 'missing\.csv' -- "$ember" train "$run/nodata.ini"
printf '[data]\ndataset = CSV(path="%s/examples/data/digits.csv")\n[model]\nspec = Linaer(64, 10)\n[train]\noptimizer = SGD(lr=0.1)\n' "$PWD" > "$run/badmodel.ini"
check "an unknown layer gets a did-you-mean" 1 "unknown module type 'Linaer'; did you mean 'Linear'" -- \
    "$ember" train "$run/badmodel.ini"
printf '[data]\ndataset = CSV(path="%s/examples/data/digits.csv", label="label", scale=0.0625)\n[model]\nspec = Linear(64, 10)\nloss = CrossEntropyLoss()\n[train]\noptimizer = SGD(lr=0.1)\nscheduler = SequentialLR(LinearLR(start_factor=0.1, total_iters=2), StepLR(1, gamma=0.5), milestones=[2])\nepochs = 4\n' "$PWD" > "$run/sched.ini"
check "a warm-up schedule sets each epoch's lr" 0 '^0\.01 0\.055 0\.1 0\.05$' -- \
    sh -c "'$ember' train '$run/sched.ini' --out '$run/sched' --quiet >/dev/null &&
           cut -d, -f5 '$run/sched/metrics.csv' | tail -n +2 | paste -sd' '"
"$ember" train examples/digits.ini --out "$run/int" --epochs 100000 --quiet >"$run/int.log" 2>&1 &
pid=$!
sleep 2
kill -INT "$pid"
wait "$pid"
int_rc=$?
check "Ctrl-C saves a checkpoint and exits cleanly" 0 '^130 interrupted in epoch [0-9]+: saved .*last\.safetensors' -- \
    sh -c "echo $int_rc \$(tail -1 '$run/int.log'); test -s '$run/int/last.safetensors'"
check "summary" 0 'Total params: 9,866' -- \
    "$ember" summary "Sequential(Linear(3, 64), ReLU(), Linear(64, 128), ReLU(), Linear(128, 10))" --input 3
check "summary shows the batch as -1" 0 '^ +Linear-5 +\[-1, 10\] +1,290$' -- \
    "$ember" summary "Sequential(Linear(3, 64), ReLU(), Linear(64, 128), ReLU(), Linear(128, 10))" --input 3
# The command line itself: help, errors, run folders, config layers, pictures, progress bar.
check "the command line (tests/e2e/cli.sh)" 0 '^cli e2e: [1-9][0-9]* passed, 0 failed$' -- \
    tests/e2e/cli.sh "$build"
check "tutorial example" 0 'a.grad = tensor\(\[40\.\]\)' -- "$build/examples/tutorial"
check "tutorial learns" 0 'epoch  29: .*test accuracy (8[0-9]|9[0-9])\.' -- "$build/examples/tutorial"
rm -rf "$run"

echo "e2e: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
