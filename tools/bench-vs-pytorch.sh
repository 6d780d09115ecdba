#!/usr/bin/env bash
# tools/bench-vs-pytorch.sh - Ember's training steps and AdamW epoch next to PyTorch's, alternated
# in the same minutes on the same machine, with medians and ratios (PyTorch time / Ember time:
# above 1 means Ember is faster). A benchmark, never a test: the test suite does not use it.
#
# Usage: tools/bench-vs-pytorch.sh [BUILD_DIR] [--quick]
#   BUILD_DIR (default build) holds the ember tool; --quick runs 1 round instead of 3
#   (BENCH_ROUNDS=N overrides either).
#
# Which PyTorch (every one found is measured; none found: a "skipped: ..." line and exit 0):
# - PyTorch 2.x from PyPI (TORCH_PIP_SPEC, default "torch>=2,<3"), in a venv at
#   BUILD_DIR/torch-venv, installed there when missing; never a dependency of Ember itself.
#   PyPI's Linux x86-64 wheel is the CUDA build and PyPI has no CPU-only one (that lives on
#   download.pytorch.org, another index). Its libtorch_cpu.so, libtorch_cuda.so and
#   libtorch_python.so are linked against NVIDIA's libraries (cudart, cupti, cublas, cufft,
#   cufile, cusparse, cusolver, cusparseLt, cudnn, nccl, nvshmem, nvrtc), so `import torch`
#   fails without them even on a CPU-only machine (torch 2.15.0 installed with --no-deps
#   stops at "libcufile.so.0: cannot open shared object file", with or without a system CUDA
#   toolkit). The lightest install from PyPI alone that imports is therefore: torch with
#   --no-deps, then its requirements except triton and cuda-bindings (Python packages for
#   torch.compile's GPU code and CUDA's Python API, which eager CPU code never imports), plus
#   numpy: about 4.4 GB for torch 2.15.0 (the wheel itself is 0.54 GB; the NVIDIA libraries are
#   the rest).
# - Debian's python3-torch (1.13, BLAS from OpenBLAS) through /usr/bin/python3, when installed.
#
# Threads: Ember runs with its own thread count (EMBER_NUM_THREADS, else every CPU). Each PyTorch
# runs in every split of intra-op threads (torch.set_num_threads) x BLAS threads (OpenBLAS's or
# MKL's own pool) over {1, Ember's threads}: on 2 CPUs 1x1, 1x2, 2x1 and the oversubscribed
# default 2x2; the table keeps the best split per case, and lists the others.
#
# Alternation: each round runs, for each PyTorch, `ember bench --train --quick` and then
# tools/bench_torch.py --quick in every split; the table takes each side's median over all its
# runs. A PyTorch run over BENCH_TORCH_TIMEOUT seconds (default 900; oversubscribed splits on a
# busy machine can take that long) is stopped, keeping the cases it finished.
# Cases: the training steps (3-64-128-10 at batch 64, 784-256-128-10 at batch 64 and 256; SGD
# momentum and Adam) and one epoch of ggml mnist-train's 784-500-10 AdamW at batch 1000
# (Fashion-MNIST when installed, else synthetic data of its shape, as the epoch line says):
# same model, optimizer, dtype (f32) and batch on both sides.
set -euo pipefail
cd "$(dirname "$0")/.."
bench="bench-vs-pytorch"
source tools/bench-args.sh

# PyTorch 2.x from PyPI into $venv; returns non-zero (with the reason on stderr) when it can't.
venv=$build/torch-venv
install_pypi_torch() {
    local spec=${TORCH_PIP_SPEC:-torch>=2,<3}
    echo "bench-vs-pytorch: installing $spec from PyPI into $venv (about 4.4 GB: see this" \
         "script's header; pip then says triton and cuda-bindings are missing, on purpose)" >&2
    python3 -m venv "$venv" >&2 || { echo "python3 -m venv failed (apt-get install" \
                                          "python3-venv)" >&2; return 1; }
    local pip=("$venv/bin/pip" install -q --disable-pip-version-check --retries 1 --timeout 30)
    "${pip[@]}" --no-deps "$spec" >&2 || return 1
    local names reqs
    names=$("$venv/bin/python" - <<'EOF'
import importlib.metadata as m
for r in m.requires("torch") or []:
    name = r.split(";")[0].strip()
    if "extra ==" not in r and not name.startswith(("triton", "cuda-bindings")):
        print(name)
EOF
) || return 1
    mapfile -t reqs <<<"$names"
    "${pip[@]}" "${reqs[@]}" numpy >&2
}

pythons=() labels=() why=()
works='import torch; torch.zeros(1)'   # an empty torch/ folder imports as a namespace package
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$works" 2>/dev/null; then
    pythons+=("$venv/bin/python") labels+=(pypi)
elif install_pypi_torch && "$venv/bin/python" -c "$works" >&2; then
    pythons+=("$venv/bin/python") labels+=(pypi)
else
    why+=("PyTorch 2.x could not be installed from PyPI into $venv")
fi
if /usr/bin/python3 -c "$works" 2>/dev/null; then
    pythons+=(/usr/bin/python3) labels+=(debian)
else
    why+=("/usr/bin/python3 has no torch (apt-get install python3-torch)")
fi
if [ ${#pythons[@]} -eq 0 ]; then
    echo "bench-vs-pytorch: skipped: no PyTorch: ${why[0]}; ${why[1]}"
    exit 0
fi

cpus=$(nproc)
threads=${EMBER_NUM_THREADS:-$cpus}
splits=("1x1")
[ "$threads" -gt 1 ] && splits+=("1x$threads" "${threads}x1" "${threads}x$threads")
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT
versions=""
for i in "${!pythons[@]}"; do
    v=$("${pythons[$i]}" -c 'import torch; print(torch.__version__)')
    versions+="${versions:+, }$v (${labels[$i]})"
done
gemm=$("$ember" info | grep -m1 -o 'GEMM.*' || echo "GEMM: not named by ember info")
cpu=$(awk -F': ' '/^model name/ && !n {n = $2} /^cpu family/ && !f {f = $2}
                 /^model\t/ && !m {m = $2}
                 END {print n " (family " f ", model " m ")"}' /proc/cpuinfo)
echo "$cpu, $cpus CPUs; $(date -u '+%F %H:%M UTC')"
echo "$("$ember" info | head -1), $threads threads; $gemm"
echo "PyTorch $versions; splits tried (intra x BLAS threads): ${splits[*]};" \
     "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}; $rounds round(s)"

limit=${BENCH_TORCH_TIMEOUT:-900}
for r in $(seq "$rounds"); do
    for i in "${!pythons[@]}"; do
        echo "round $r of $rounds: ember, then ${labels[$i]} torch in splits ${splits[*]}" >&2
        "$ember" bench --train --quick >"$runs/ember.$r.$i"
        for s in "${splits[@]}"; do
            out="$runs/torch.${labels[$i]}.$s.$r"
            rc=0
            timeout "$limit" "${pythons[$i]}" tools/bench_torch.py --quick --intra "${s%x*}" \
                --blas "${s#*x}" >"$out" 2>"$out.err" || rc=$?
            if [ "$rc" -eq 124 ]; then
                echo "bench-vs-pytorch: ${labels[$i]} torch in split $s stopped after $limit s" \
                     "(BENCH_TORCH_TIMEOUT); the cases it finished are kept" >&2
            elif [ "$rc" -ne 0 ]; then
                echo "bench-vs-pytorch: ${labels[$i]} torch failed in split $s:" \
                     "$(tail -1 "$out.err")" >&2
                rm -f "$out"
            fi
            rm -f "$out.err"
        done
    done
done
note() { sed -n 's/^  adamw-epoch.*(\(.*\))$/\1/p' "$@" | sort -u | paste -sd';'; }
echo "epoch data: ember: $(note "$runs"/ember.1.*); pytorch: $(note "$runs"/torch.*.1)"
"${pythons[0]}" tools/bench_torch.py --table "$runs"
