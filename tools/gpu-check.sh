#!/usr/bin/env bash
# tools/gpu-check.sh - the CUDA backend on a machine with an NVIDIA GPU: builds with
# -Dcuda=enabled, shows the device, runs the CUDA tests (the GPU ones run here instead of
# skipping), `ember conformance --backend cuda` (the fused optimizer updates included), `ember
# bench` on cuda, `ember train` on the GPU (alone and under mpirun with the nccl
# communicator: with 2-4 GPUs also the collectives of every dtype, DDP's equivalence and
# `ember bench --dist`), and the same training step in PyTorch on the GPU when torch with
# CUDA is importable. Prints everything; exits non-zero if the build, the tests, conformance
# or a distributed run fail.
# Usage: tools/gpu-check.sh [BUILD_DIR]   (default build-gpu)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
build=${1:-build-gpu}
export EMBER_CONFIG=
status=0
section() { printf '\n==== %s ====\n' "$*"; }

section "machine"
date -u
command -v nvidia-smi >/dev/null && nvidia-smi || echo "nvidia-smi: not found"
command -v nvcc >/dev/null && nvcc --version | tail -2 || echo "nvcc: not on PATH"

section "build ($build, -Dcuda=enabled)"
if [ -d "$build" ]; then
    meson configure "$build" -Dcuda=enabled || status=1
else
    meson setup "$build" -Dcuda=enabled -Dbuildtype=release || status=1
fi
start=$(date +%s)
ninja -C "$build" || { echo "gpu-check: build failed"; exit 1; }
echo "build: $(( $(date +%s) - start )) s"

section "ember info"
"$build"/tools/ember info
if ! "$build"/tools/ember info | grep -qE '^  cuda +available: yes'; then
    echo "gpu-check: the cuda backend is not available here (see the reason above)"
    exit 2
fi

section "CUDA tests (meson test --suite cuda)"
meson test -C "$build" --suite cuda --print-errorlogs || status=1
"$build"/tests/cuda/test_cuda_plugin --verbose 2>&1 | grep -E 'PASS|FAIL|SKIP|Synthesis' || true

section "conformance --backend cuda"
"$build"/tools/ember conformance --backend cuda --junit "$build"/conformance-cuda.xml || status=1
"$build"/tools/ember conformance --backend cuda --support 2>/dev/null | head -80 || true

section "bench --device cuda (device figures, then the training steps on the GPU)"
timeout 300 "$build"/tools/ember bench --device cuda --quick || status=1

section "ember train on the GPU (digits, 3 epochs)"
"$build"/tools/ember train examples/digits.ini --device cuda --epochs 3 --no-plot \
    --out "$build"/gpu-run --force || status=1

# NCCL gives each rank its own GPU (one GPU cannot host two ranks of a communicator), so
# collectives between ranks run only where there are several; with one, a 1-rank job still
# starts NCCL, stages host tensors onto the GPU and runs its (trivial) all-reduces.
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
ranks=$(( gpus >= 4 ? 4 : gpus >= 2 ? gpus : 1 ))
section "nccl communicator under mpirun ($ranks rank(s): $gpus GPU(s))"
if [ -x tools/mpirun.sh ] && command -v mpirun >/dev/null; then
    EMBER_DIST=nccl tools/mpirun.sh -np "$ranks" "$build"/tools/ember info | grep -E -A3 '^communicators' || true
    if [ "$ranks" -ge 2 ]; then
        # every dtype's collectives on CUDA tensors, then on host tensors (staged onto the GPU)
        EMBER_DIST=nccl timeout 300 tools/mpirun.sh -np "$ranks" -x EMBER_BACKEND=cuda \
            "$build"/tests/dist/dist_collectives || status=1
        EMBER_DIST=nccl timeout 300 tools/mpirun.sh -np "$ranks" -x EMBER_BACKEND=cpu \
            "$build"/tests/dist/dist_collectives || status=1
        # DDP on the GPU against one process with the whole batch
        EMBER_DIST=nccl timeout 300 tools/mpirun.sh -np "$ranks" -x EMBER_BACKEND=cuda \
            "$build"/tests/dist/ddp_equivalence "SGD(lr=0.05, momentum=0.9)" 3 || status=1
        EMBER_DIST=nccl timeout 300 tools/mpirun.sh -np "$ranks" "$build"/tools/ember bench \
            --dist --quick || status=1
    else
        echo "one GPU: the collectives between ranks were not exercised"
    fi
    EMBER_DIST=nccl timeout 300 tools/mpirun.sh -np "$ranks" "$build"/tools/ember train \
        examples/digits.ini --device cuda --epochs 2 --no-plot --out "$build"/gpu-run-nccl \
        --force || status=1
else
    echo "skipped: mpirun not installed (openmpi-bin)"
fi

section "PyTorch on the GPU: the same MLP training step"
if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    python3 - <<'PY'
import time, statistics, torch
from torch import nn
torch.manual_seed(0)
dev = "cuda"
for sizes, batch in (((784, 256, 128, 10), 64), ((784, 256, 128, 10), 256)):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.randn(batch, sizes[0], device=dev)
    y = torch.randint(0, sizes[-1], (batch,), device=dev)
    times = []
    for it in range(60):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        torch.cuda.synchronize()
        if it >= 10:
            times.append((time.perf_counter() - t0) * 1e6)
    print(f"  step mlp {'-'.join(map(str, sizes))} batch {batch}: {statistics.median(times):.1f} us (torch {torch.__version__}, {torch.cuda.get_device_name()})")
PY
else
    echo "skipped: torch with CUDA is not importable by python3"
fi

section "result"
[ $status -eq 0 ] && echo "gpu-check: OK" || echo "gpu-check: FAILED (see above)"
exit $status
