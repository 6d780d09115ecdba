#!/usr/bin/python3
"""tests/optim/golden/gen_golden.py - writes the PyTorch reference values the optim tests use.

Run with Debian's interpreter, which has torch 1.13 (never the python3 on PATH):

    /usr/bin/python3 tests/optim/golden/gen_golden.py

It writes, next to itself, the files that are committed:

  torch_values.h              every optimizer (SGD, Adam, AdamW, RMSprop with their options)
                              for three steps on a tiny float64 parameter with fixed gradients,
                              the same with a parameter that has no gradient on the first step,
                              and the learning rates of the schedulers for a range of epochs;
  mlp_init.safetensors        the state_dict of the tutorial's MLP
                              (Sequential(Linear(3, 64), ReLU(), Linear(64, 128), ReLU(),
                              Linear(128, 10))) from torch.manual_seed(0): a file written by
                              PyTorch that Ember must load;
  mlp_batch.safetensors       a fixed batch (x, y) and the losses of each step;
  mlp_sgd3.safetensors        the parameters after three SGD(lr=0.1, momentum=0.9) steps
                              on that batch with CrossEntropyLoss;
  mlp_adam3.safetensors       the parameters after three Adam(lr=0.01) steps;
  mlp_*3_f64.safetensors      the same two runs in float64 (from the same float32 weights);
  cnn_*.safetensors           the same for Sequential(Conv2d(1, 4, 3), ReLU(), MaxPool2d(2),
                              Flatten(), Linear(36, 10)) on 1x8x8 inputs.

The .safetensors files are written with safetensors.torch.save_file when that package is
installed for this interpreter, else by hand in the same format (8-byte little-endian header
length, JSON header, raw little-endian bytes).

check_load.py is the other direction: it loads a file written by Ember into PyTorch.
"""
import math
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", ".."))
from golden_safetensors import save_safetensors  # noqa: E402  (tests/golden_safetensors.py)


# ---- optimizers on a tiny parameter ------------------------------------------------------------

P0 = [1.0, -2.0, 3.0, 0.5]
GRADS = [[0.5, -1.0, 2.0, 0.0],
         [0.1, 0.3, -0.2, 1.5],
         [-0.4, 0.05, 0.02, -0.7]]
# (Ember spec, PyTorch constructor); PyTorch runs the single-tensor code (foreach=False).
OPTIMIZERS = [
    ("SGD(lr=0.1)", lambda p: torch.optim.SGD(p, lr=0.1, foreach=False)),
    ("SGD(lr=0.1, momentum=0.9)", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, foreach=False)),
    ("SGD(lr=0.1, momentum=0.9, dampening=0.5)",
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.5, foreach=False)),
    ("SGD(lr=0.1, momentum=0.9, nesterov=true, weight_decay=0.01)",
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01,
                               foreach=False)),
    ("SGD(lr=0.1, momentum=0.5, weight_decay=0.1, maximize=true)",
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.5, weight_decay=0.1, maximize=True,
                               foreach=False)),
    ("Adam(lr=0.01)", lambda p: torch.optim.Adam(p, lr=0.01, foreach=False)),
    ("Adam()", lambda p: torch.optim.Adam(p, foreach=False)),
    ("Adam(lr=0.01, betas=[0.8, 0.99], eps=1e-6, weight_decay=0.1, amsgrad=true)",
     lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1,
                                amsgrad=True, foreach=False)),
    ("Adam(lr=0.01, maximize=true)", lambda p: torch.optim.Adam(p, lr=0.01, maximize=True,
                                                                 foreach=False)),
    ("AdamW(lr=0.01)", lambda p: torch.optim.AdamW(p, lr=0.01, foreach=False)),
    ("AdamW(lr=0.01, weight_decay=0.5, amsgrad=true, maximize=true)",
     lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.5, amsgrad=True, maximize=True,
                                 foreach=False)),
    ("RMSprop(lr=0.01)", lambda p: torch.optim.RMSprop(p, lr=0.01, foreach=False)),
    ("RMSprop()", lambda p: torch.optim.RMSprop(p, foreach=False)),
    ("RMSprop(lr=0.01, alpha=0.9, eps=1e-4, momentum=0.9, centered=true, weight_decay=0.1)",
     lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-4, momentum=0.9,
                                   centered=True, weight_decay=0.1, foreach=False)),
    ("RMSprop(lr=0.01, centered=true, maximize=true)",
     lambda p: torch.optim.RMSprop(p, lr=0.01, centered=True, maximize=True, foreach=False)),
]


def run_tiny(make):
    p = torch.tensor(P0, dtype=torch.float64, requires_grad=True)
    opt = make([p])
    out = []
    for g in GRADS:
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        out.append(p.detach().tolist())
    return out


def run_late(make):
    """Two parameters; b has no gradient on the first step (PyTorch skips it and starts its
    state, step count included, at its first gradient)."""
    a = torch.tensor(P0, dtype=torch.float64, requires_grad=True)
    b = torch.tensor([-x for x in P0], dtype=torch.float64, requires_grad=True)
    opt = make([a, b])
    for k, g in enumerate(GRADS):
        opt.zero_grad(set_to_none=True)
        a.grad = torch.tensor(g, dtype=torch.float64)
        if k > 0:
            b.grad = torch.tensor(GRADS[k - 1], dtype=torch.float64)
        opt.step()
    return a.detach().tolist(), b.detach().tolist()


# ---- schedulers --------------------------------------------------------------------------------

SCHEDULERS = [
    ("StepLR(step_size=3, gamma=0.5)", 0.1, 12,
     lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5)),
    ("StepLR(2)", 1.0, 7, lambda o: torch.optim.lr_scheduler.StepLR(o, 2)),
    ("MultiStepLR(milestones=[2, 5, 8], gamma=0.1)", 0.1, 11,
     lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[2, 5, 8], gamma=0.1)),
    ("MultiStepLR([6, 3, 3], gamma=0.5)", 0.2, 9,
     lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [6, 3, 3], gamma=0.5)),
    ("CosineAnnealingLR(T_max=10, eta_min=0.001)", 0.1, 25,
     lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=0.001)),
    ("CosineAnnealingLR(4)", 0.5, 9, lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 4)),
    ("LinearLR()", 0.1, 9, lambda o: torch.optim.lr_scheduler.LinearLR(o)),
    ("LinearLR(start_factor=0.5, end_factor=0.1, total_iters=4)", 0.2, 8,
     lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=0.5, end_factor=0.1,
                                                 total_iters=4)),
    ("ExponentialLR(gamma=0.8)", 0.1, 10,
     lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.8)),
    ("ConstantLR()", 0.3, 8, lambda o: torch.optim.lr_scheduler.ConstantLR(o)),
    ("ConstantLR(factor=0.5, total_iters=2)", 0.1, 5,
     lambda o: torch.optim.lr_scheduler.ConstantLR(o, factor=0.5, total_iters=2)),
    # warm-up then cosine decay, the usual use of SequentialLR
    ("SequentialLR(LinearLR(start_factor=0.1, total_iters=4), CosineAnnealingLR(T_max=6), "
     "milestones=[4])", 0.1, 16,
     lambda o: torch.optim.lr_scheduler.SequentialLR(
         o, [torch.optim.lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=4),
             torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=6)], milestones=[4])),
    ("SequentialLR(ConstantLR(factor=0.5, total_iters=2), ExponentialLR(0.9), StepLR(2), "
     "milestones=[3, 6])", 0.2, 11,
     lambda o: torch.optim.lr_scheduler.SequentialLR(
         o, [torch.optim.lr_scheduler.ConstantLR(o, factor=0.5, total_iters=2),
             torch.optim.lr_scheduler.ExponentialLR(o, 0.9),
             torch.optim.lr_scheduler.StepLR(o, 2)], milestones=[3, 6])),
]


def run_scheduler(base, n, make):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=base)
    s = make(opt)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(n - 1):
        opt.step()
        s.step()
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


# ---- the MLP and the CNN -----------------------------------------------------------------------

def mlp():
    return torch.nn.Sequential(torch.nn.Linear(3, 64), torch.nn.ReLU(), torch.nn.Linear(64, 128),
                               torch.nn.ReLU(), torch.nn.Linear(128, 10))


def cnn():
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                               torch.nn.Flatten(), torch.nn.Linear(36, 10))


def train3(make_model, init, x, y, make_opt, dtype=torch.float32):
    model = make_model().to(dtype)
    model.load_state_dict(init)   # float32 values, exactly representable in float64 too
    x = x.to(dtype)
    opt = make_opt(model.parameters())
    loss_fn = torch.nn.CrossEntropyLoss()
    losses = []
    for _ in range(3):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return model.state_dict(), losses


def write_model(name, make_model, x_shape, seed):
    torch.manual_seed(seed)
    init = make_model().state_dict()
    x = torch.randn(*x_shape)
    y = torch.randint(0, 10, (x_shape[0],))
    sgd, sgd_losses = train3(make_model, init, x, y,
                             lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, foreach=False))
    adam, adam_losses = train3(make_model, init, x, y,
                               lambda p: torch.optim.Adam(p, lr=0.01, foreach=False))
    # The same in float64: differences left there are the update rules', not rounding's.
    sgd64, sgd_losses64 = train3(make_model, init, x, y,
                                 lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9,
                                                           foreach=False), torch.float64)
    adam64, adam_losses64 = train3(make_model, init, x, y,
                                   lambda p: torch.optim.Adam(p, lr=0.01, foreach=False),
                                   torch.float64)
    how = save_safetensors(init, os.path.join(HERE, name + "_init.safetensors"))
    f64 = torch.float64
    save_safetensors({"x": x, "y": y, "sgd_losses": torch.tensor(sgd_losses),
                      "adam_losses": torch.tensor(adam_losses),
                      "sgd_losses64": torch.tensor(sgd_losses64, dtype=f64),
                      "adam_losses64": torch.tensor(adam_losses64, dtype=f64)},
                     os.path.join(HERE, name + "_batch.safetensors"))
    save_safetensors(sgd, os.path.join(HERE, name + "_sgd3.safetensors"))
    save_safetensors(adam, os.path.join(HERE, name + "_adam3.safetensors"))
    save_safetensors(sgd64, os.path.join(HERE, name + "_sgd3_f64.safetensors"))
    save_safetensors(adam64, os.path.join(HERE, name + "_adam3_f64.safetensors"))
    print("%s: written with %s; SGD losses %s, Adam losses %s" % (name, how, sgd_losses,
                                                                  adam_losses))


# ---- the C header ------------------------------------------------------------------------------

def c_doubles(v):
    return "{" + ", ".join(repr(float(x)) for x in v) + "}"


def write_header(path):
    L = []
    L.append("/* tests/optim/golden/torch_values.h - generated by gen_golden.py with torch %s;"
             % torch.__version__)
    L.append(" * do not edit. Values PyTorch computed in float64: the optimizer cases (a tiny")
    L.append(" * parameter, three steps with fixed gradients) and the schedulers' learning rates. */")
    L.append("#ifndef EMBER_TESTS_OPTIM_TORCH_VALUES_H")
    L.append("#define EMBER_TESTS_OPTIM_TORCH_VALUES_H")
    L.append("")
    L.append("#define TV_N %d" % len(P0))
    L.append("static const double tv_p0[TV_N] = %s;" % c_doubles(P0))
    L.append("static const double tv_grads[3][TV_N] = {%s};"
             % ", ".join(c_doubles(g) for g in GRADS))
    L.append("")
    L.append("/* The parameter after steps 1, 2 and 3. */")
    L.append("typedef struct tv_optim_case {")
    L.append("    const char *spec;")
    L.append("    double after[3][TV_N];")
    L.append("} tv_optim_case;")
    L.append("")
    L.append("static const tv_optim_case tv_optim_cases[] = {")
    for spec, make in OPTIMIZERS:
        steps = run_tiny(make)
        L.append('    {"%s",' % spec)
        L.append("     {%s}}," % ",\n      ".join(c_doubles(s) for s in steps))
    L.append("};")
    L.append("")
    L.append("/* Parameters a (from tv_p0) and b (from -tv_p0): a gets tv_grads[k] at step k, b no")
    L.append(" * gradient at step 0 and tv_grads[k - 1] at step k > 0. Values after step 3. */")
    L.append("typedef struct tv_late_case {")
    L.append("    const char *spec;")
    L.append("    double a[TV_N], b[TV_N];")
    L.append("} tv_late_case;")
    L.append("")
    L.append("static const tv_late_case tv_late_cases[] = {")
    for spec, make in (OPTIMIZERS[1], OPTIMIZERS[5], OPTIMIZERS[10], OPTIMIZERS[13]):
        a, b = run_late(make)
        L.append('    {"%s",' % spec)
        L.append("     %s," % c_doubles(a))
        L.append("     %s}," % c_doubles(b))
    L.append("};")
    L.append("")
    L.append("/* The optimizer's lr at epochs 0 .. n-1 (PyTorch's recursive form, as stepped). */")
    L.append("typedef struct tv_sched_case {")
    L.append("    const char *spec;")
    L.append("    double base_lr;")
    L.append("    int n;")
    L.append("    double lr[32];")
    L.append("} tv_sched_case;")
    L.append("")
    L.append("static const tv_sched_case tv_sched_cases[] = {")
    for spec, base, n, make in SCHEDULERS:
        lrs = run_scheduler(base, n, make)
        L.append('    {"%s", %r, %d,' % (spec, base, n))
        L.append("     %s}," % c_doubles(lrs))
    L.append("};")
    L.append("")
    L.append("#endif")
    with open(path, "w") as f:
        f.write("\n".join(L) + "\n")


def main():
    torch.set_num_threads(1)
    write_header(os.path.join(HERE, "torch_values.h"))
    write_model("mlp", mlp, (16, 3), 0)
    write_model("cnn", cnn, (16, 1, 8, 8), 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
