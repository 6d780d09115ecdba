#!/usr/bin/python3
"""tools/bench_torch.py - PyTorch's side of tools/bench-vs-pytorch.sh.

The same training steps as `ember bench --train` (zero_grad, forward, CrossEntropyLoss,
backward, SGD momentum step; median microseconds per step) and one shuffled Fashion-MNIST
epoch through a DataLoader with the 784-256-128-10 MLP. Uses as many threads as Ember
(EMBER_NUM_THREADS, else all cores). Prints lines the shell script pairs with Ember's."""
import gzip
import os
import statistics
import sys
import time

import torch
from torch import nn

threads = int(os.environ.get("EMBER_NUM_THREADS", os.cpu_count()))
torch.set_num_threads(threads)
torch.manual_seed(0)
quick = "--quick" in sys.argv


def mlp(sizes):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def step_us(sizes, batch, reps, iters):
    model = mlp(sizes)
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, sizes[0])
    y = torch.randint(0, sizes[-1], (batch,))

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(20):
        step()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(iters):
            step()
        times.append((time.perf_counter() - t0) / iters * 1e6)
    return statistics.median(times)


def read_idx(path, offset):
    with gzip.open(path, "rb") as f:
        return f.read()[offset:]


def fashion_epoch(root="/usr/share/datasets/fashion-mnist"):
    imgs = os.path.join(root, "train-images-idx3-ubyte.gz")
    labs = os.path.join(root, "train-labels-idx1-ubyte.gz")
    if not (os.path.exists(imgs) and os.path.exists(labs)):
        return None
    x = torch.frombuffer(bytearray(read_idx(imgs, 16)), dtype=torch.uint8).view(-1, 784)
    y = torch.frombuffer(bytearray(read_idx(labs, 8)), dtype=torch.uint8).long()
    ds = torch.utils.data.TensorDataset(x.float() / 255.0, y)
    dl = torch.utils.data.DataLoader(ds, batch_size=256, shuffle=True)
    model = mlp([784, 256, 128, 10])
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    t0 = time.perf_counter()
    for xb, yb in dl:
        opt.zero_grad()
        loss_fn(model(xb), yb).backward()
        opt.step()
    return time.perf_counter() - t0


reps = 3 if quick else 7
for name, sizes, batch in [("3-64-128-10", [3, 64, 128, 10], 64),
                           ("784-256-128-10", [784, 256, 128, 10], 64),
                           ("784-256-128-10", [784, 256, 128, 10], 256)]:
    iters = (200 if quick else 2000) if sizes[0] < 100 else (20 if quick else 200)
    print(f"  step {name:<16} batch {batch:4d} {step_us(sizes, batch, reps, iters):12.1f}")
if not quick:
    s = fashion_epoch()
    if s is None:
        print("  epoch fashion-mnist      (skipped: dataset-fashion-mnist not installed)")
    else:
        print(f"  epoch fashion-mnist      batch  256 {s:12.2f} s")
print(f"torch {torch.__version__}, {threads} threads")
