#!/usr/bin/env python3
"""tools/bench_torch.py - PyTorch's side of tools/bench-vs-pytorch.sh, and the script's table.

bench_torch.py [--quick] [--intra N] [--blas N]
    The cases `ember bench --train` measures (tools/ember/bench_train.c; keep the two in step),
    printed in its line format: training steps (zero_grad, forward, CrossEntropyLoss, backward,
    SGD momentum / Adam step; median microseconds per step over repetitions of a fixed number
    of steps, after 20 warm-up steps) for 3-64-128-10 at batch 64 and 784-256-128-10 at batch
    64 and 256, and one shuffled epoch of ggml mnist-train's 784-500-10 AdamW at batch 1000
    (Fashion-MNIST when /usr/share/datasets/fashion-mnist has it, otherwise synthetic data of
    its shape, as the line says; 3 untimed warm-up steps). The epoch gathers each batch with
    one index into tensors already in memory (the fastest plain-PyTorch way; a DataLoader over
    a TensorDataset would add Python per sample). Threads: --intra is torch.set_num_threads
    (ATen's intra-op OpenMP threads), --blas the BLAS library's own threads (OPENBLAS_NUM_THREADS
    for Debian's OpenBLAS build, MKL_Set_Num_Threads_Local for PyPI's MKL build, which
    set_num_threads would otherwise tie to --intra); both default to the CPU count.

bench_torch.py --table DIR
    Reads the runs tools/bench-vs-pytorch.sh saved in DIR (ember.R.I and torch.LABEL.SPLIT.R, R
    the round) and prints, for each case and PyTorch build: Ember's median over its runs,
    PyTorch's median in its best thread split, the ratio (PyTorch time / Ember time: above 1
    means Ember is faster) and that split. Needs no torch.
"""
import os
import statistics
import sys
import time


def arg(name, default):
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def set_threads(intra, blas):
    """ATen's intra-op threads to intra and the BLAS library's to blas; returns a description
    of what the libraries report."""
    import ctypes
    import torch
    torch.set_num_threads(intra)
    libdir = os.path.join(os.path.dirname(torch.__file__), "lib")
    blas_name, blas_threads = torch.__config__.show(), None
    if "BLAS_INFO=mkl" in blas_name:
        cpu = ctypes.CDLL(os.path.join(libdir, "libtorch_cpu.so"))
        # MKL's C interface (the lowercase mkl_set_num_threads_local takes a pointer)
        if hasattr(cpu, "MKL_Set_Num_Threads_Local"):
            cpu.MKL_Set_Num_Threads_Local(ctypes.c_int(blas))
            blas_threads = cpu.MKL_Get_Max_Threads()
        blas_name = "MKL"
    else:
        try:
            ob = ctypes.CDLL("libopenblas.so.0")
            blas_threads, blas_name = ob.openblas_get_num_threads(), "OpenBLAS"
            ob.openblas_get_corename.restype = ctypes.c_char_p
            blas_name += " " + ob.openblas_get_corename().decode()
        except (OSError, AttributeError):
            blas_name = "BLAS"
    return f"intra {torch.get_num_threads()} x {blas_name} {blas_threads or '?'}"


def mlp(sizes):
    from torch import nn
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def make_step(model, opt, x, y):
    import torch
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(xb=x, yb=y):
        opt.zero_grad()
        loss_fn(model(xb), yb).backward()
        opt.step()
    return step


def step_us(sizes, optim, batch, reps, iters):
    import torch
    torch.manual_seed(0)
    model = mlp(sizes)
    opt = optim(model.parameters())
    step = make_step(model, opt, torch.randn(batch, sizes[0]),
                     torch.randint(0, sizes[-1], (batch,)))
    for _ in range(20):
        step()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(iters):
            step()
        times.append((time.perf_counter() - t0) / iters * 1e6)
    return statistics.median(times)


def fashion_data(root="/usr/share/datasets/fashion-mnist"):
    """(x, y, source): Fashion-MNIST's training split as float32 in [0, 1] and int64 labels,
    or synthetic data of its shape when the dataset is not installed."""
    import gzip
    import torch
    imgs = os.path.join(root, "train-images-idx3-ubyte.gz")
    labs = os.path.join(root, "train-labels-idx1-ubyte.gz")
    if os.path.exists(imgs) and os.path.exists(labs):
        with gzip.open(imgs, "rb") as f:
            x = torch.frombuffer(bytearray(f.read()[16:]), dtype=torch.uint8).view(-1, 784)
        with gzip.open(labs, "rb") as f:
            y = torch.frombuffer(bytearray(f.read()[8:]), dtype=torch.uint8).long()
        return x.float() / 255.0, y, "Fashion-MNIST"
    torch.manual_seed(0)
    return (torch.randn(60000, 784), torch.randint(0, 10, (60000,)),
            "synthetic Fashion-MNIST-shaped data")


def epoch_secs(x, y, sizes, optim, batch):
    import torch
    torch.manual_seed(0)
    model = mlp(sizes)
    step = make_step(model, optim(model.parameters()), x[:batch], y[:batch])
    for _ in range(3):
        step()
    t0 = time.perf_counter()
    perm = torch.randperm(x.shape[0])
    for i in range(0, x.shape[0], batch):
        idx = perm[i:i + batch]
        step(x[idx], y[idx])
    return time.perf_counter() - t0


def measure():
    quick = "--quick" in sys.argv
    n = os.cpu_count()
    intra, blas = arg("--intra", n), arg("--blas", n)
    os.environ["OPENBLAS_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(blas)
    import torch
    threads = set_threads(intra, blas)
    sgd = lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9)  # noqa: E731
    adam = lambda p: torch.optim.Adam(p, lr=1e-3)  # noqa: E731
    reps = 3 if quick else 7
    for label, optim in [("step", sgd), ("adam-step", adam)]:
        for name, sizes, batch in [("3-64-128-10", [3, 64, 128, 10], 64),
                                   ("784-256-128-10", [784, 256, 128, 10], 64),
                                   ("784-256-128-10", [784, 256, 128, 10], 256)]:
            iters = (200 if quick else 2000) if sizes[0] < 100 else (20 if quick else 200)
            print(f"  {label} {name:<16} batch {batch:4d} "
                  f"{step_us(sizes, optim, batch, reps, iters):12.1f}", flush=True)
    x, y, source = fashion_data()
    adamw = lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.01)  # noqa: E731
    s = epoch_secs(x, y, [784, 500, 10], adamw, 1000)
    print(f"  adamw-epoch 784-500-10  batch 1000 {s:12.3f} s ({source}, shuffled, "
          "with loading)")
    if not quick and source == "Fashion-MNIST":
        s = epoch_secs(x, y, [784, 256, 128, 10], sgd, 256)
        print(f"  epoch fashion-mnist      batch  256 {s:12.2f} s (784-256-128-10, shuffled, "
              "with loading)")
    print(f"torch {torch.__version__}, {threads}")


def parse(path):
    """{case: value} from the measurement lines of one run (`ember bench --train` or ours)."""
    out = {}
    with open(path) as f:
        for line in f:
            w = line.split()
            if line.startswith("  ") and len(w) >= 5 and w[2] == "batch":
                try:
                    unit = "s" if len(w) > 5 and w[5] == "s" else "us"
                    out[f"{w[0]} {w[1]} b{w[3]} ({unit})"] = float(w[4])
                except ValueError:
                    pass
    return out


def table(folder):
    ember, torch_runs, versions = {}, {}, {}
    for name in sorted(os.listdir(folder)):
        parts, path = name.split("."), os.path.join(folder, name)
        if parts[0] == "ember":
            for case, v in parse(path).items():
                ember.setdefault(case, []).append(v)
        elif parts[0] == "torch":
            label, split = parts[1], parts[2]
            for case, v in parse(path).items():
                torch_runs.setdefault((label, case), {}).setdefault(split, []).append(v)
            with open(path) as f:
                last = [ln for ln in f if ln.startswith("torch ")]
            if last:
                versions[label] = last[-1].split(",")[0]
    def fmt(v, case):
        return f"{v:.3f}" if case.endswith("(s)") else f"{v:.1f}"

    for label in sorted({k[0] for k in torch_runs}, reverse=True):  # pypi (2.x) first
        print(f"\n{versions.get(label, label)} ({label}):")
        print(f"  {'case':<36} {'ember':>10} {'pytorch':>10} {'ratio':>7}  best split "
              "(intra x BLAS threads)")
        for case in ember:
            runs = torch_runs.get((label, case))
            e = statistics.median(ember[case])
            if not runs:
                print(f"  {case:<36} {fmt(e, case):>10} {'-':>10} {'-':>7}")
                continue
            best = min(runs, key=lambda s: statistics.median(runs[s]))
            t = statistics.median(runs[best])
            others = ", ".join(f"{s} {fmt(statistics.median(v), case)}"
                               for s, v in sorted(runs.items()) if s != best)
            print(f"  {case:<36} {fmt(e, case):>10} {fmt(t, case):>10} {t / e:6.2f}x  {best} "
                  f"(others: {others or 'none'})")
    runs = max((len(v) for v in ember.values()), default=0)
    print(f"\nmedians over {runs} Ember run(s) and each split's runs; ratio = PyTorch time / "
          "Ember time (above 1: Ember is faster); us per step, s per epoch")


if __name__ == "__main__":
    if "--table" in sys.argv:
        table(sys.argv[sys.argv.index("--table") + 1])
    else:
        measure()
