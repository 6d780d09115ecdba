#!/usr/bin/python3
"""tests/nn/golden/gen_golden.py - writes the PyTorch reference values of the nn plugin's tests.

Run with Debian's interpreter, which has torch 1.13 (never the python3 on PATH):

    /usr/bin/python3 tests/nn/golden/gen_golden.py

It writes, next to itself, the files that are committed:

  mlp_weights.safetensors  the state_dict of the tutorial's MLP, Sequential(Linear(3, 64),
                           ReLU(), Linear(64, 128), ReLU(), Linear(128, 10)), initialised by
                           PyTorch from torch.manual_seed(0) and rounded to float16 (stored as
                           F16 to keep the file small; the values are exact in float32)
  mlp_data.safetensors     a batch x (8, 3), class targets y (8), and, computed in float64 from
                           those exact values: the output, the CrossEntropyLoss and the gradient
                           of every parameter ("grad.0.weight"...), stored as F32 (loss F64)
  cnn_weights.safetensors  the same for Sequential(Conv2d(1, 4, 3), ReLU(), MaxPool2d(2),
  cnn_data.safetensors     Flatten(), Linear(36, 10)) on a batch of 4 1x8x8 images
  layers.safetensors       float64 cases for single layers; the header's __metadata__ maps each
                           case name to the spec that builds it. Per case: "<case>.x" (input),
                           "<case>.p.<name>" (parameters copied into the layer), "<case>.y"
                           (output in training mode), "<case>.gy" (upstream gradient),
                           "<case>.gx" and "<case>.g.<name>" (gradients), "<case>.b.<name>"
                           (buffers after the pass), and optionally "<case>.x2"/"<case>.y2" (a
                           second input and its output in eval mode)
  losses.safetensors       float64 cases for losses: "<case>.x", "<case>.t" (target), "<case>.y"
                           (the loss), "<case>.gy" (upstream gradient, for reduction="none")
                           and "<case>.gx" (gradient of the input)

The files are safetensors (8-byte little-endian header length, JSON header, raw little-endian
bytes), written by safetensors.torch.save_file when that package is installed for this
interpreter, else by hand in the same format.
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", ".."))
from golden_safetensors import save_safetensors  # noqa: E402  (tests/golden_safetensors.py)


def save(tensors, name, metadata=None):
    save_safetensors(tensors, os.path.join(HERE, name), metadata)


# ---- the tutorial's MLP and a small CNN ---------------------------------------------------------

def model_parity(prefix, model, x, y):
    """Weights rounded to f16 (exact in f32), reference values computed in float64."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    save({k: v.half() for k, v in model.state_dict().items()}, prefix + "_weights.safetensors")
    m64 = model.double()
    out = m64(x.double())
    loss = F.cross_entropy(out, y)
    loss.backward()
    data = {"x": x.float(), "y": y, "out": out.float(), "loss": loss.detach()}
    for name, p in m64.named_parameters():
        data["grad." + name] = p.grad.float()
    save(data, prefix + "_data.safetensors")


def parity():
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(3, 64), nn.ReLU(), nn.Linear(64, 128), nn.ReLU(),
                        nn.Linear(128, 10))
    x = torch.randn(8, 3).half().float()
    y = torch.randint(0, 10, (8,))
    model_parity("mlp", mlp, x, y)

    torch.manual_seed(1)
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(36, 10))
    x = torch.randn(4, 1, 8, 8).half().float()
    y = torch.randint(0, 10, (4,))
    model_parity("cnn", cnn, x, y)


# ---- single layers (float64) --------------------------------------------------------------------

def exact32(t):
    """t rounded to float32 and back: its values are exact in the F32 the files store."""
    return t.float().double() if t.is_floating_point() else t


def f32(tensors):
    """Float tensors stored as F32 (references computed in float64, then rounded once)."""
    return {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}


def layer_case(out, meta, name, spec, module, x, x2=None):
    """Runs module (float64, training mode) on x, back-propagates a random upstream gradient.
    Inputs and parameters are exact in float32, so the file's F32 copies are the same values."""
    meta[name] = spec
    module = module.double()
    for pname, p in module.named_parameters():
        with torch.no_grad():   # parameters other than the default init, to test the copy
            p.copy_(exact32(torch.randn_like(p)))
        out[f"{name}.p.{pname}"] = p.detach().clone()
    x = exact32(x.clone())
    if x.is_floating_point():
        x.requires_grad_(True)
    y = module(x)
    gy = exact32(torch.randn_like(y))
    y.backward(gy)
    out[f"{name}.x"] = x.detach()
    out[f"{name}.y"] = y.detach()
    out[f"{name}.gy"] = gy
    if x.is_floating_point():
        out[f"{name}.gx"] = x.grad
    for pname, p in module.named_parameters():
        out[f"{name}.g.{pname}"] = p.grad
    for bname, b in module.named_buffers():
        out[f"{name}.b.{bname}"] = b.detach().clone()
    if x2 is not None:
        module.eval()
        x2 = exact32(x2)
        with torch.no_grad():
            out[f"{name}.x2"] = x2
            out[f"{name}.y2"] = module(x2)


def layers():
    torch.manual_seed(2)
    out, meta = {}, {}

    def case(*args):
        layer_case(out, meta, *args)

    d = torch.float64
    f64 = ', dtype="float64"'
    case("linear", f"Linear(5, 3{f64})", nn.Linear(5, 3), torch.randn(2, 2, 5, dtype=d))
    case("linear_nobias", f"Linear(4, 2, bias=false{f64})", nn.Linear(4, 2, bias=False),
         torch.randn(3, 4, dtype=d))
    xg = torch.cat([torch.randn(3, 4, dtype=d) * 3,
                    torch.tensor([[-30.0, -6.0, 0.0, 40.0]], dtype=d)])
    case("relu", "ReLU()", nn.ReLU(), torch.randn(3, 5, dtype=d))
    case("sigmoid", "Sigmoid()", nn.Sigmoid(), xg)
    case("tanh", "Tanh()", nn.Tanh(), xg)
    case("gelu", "GELU()", nn.GELU(), xg)
    case("gelu_tanh", 'GELU(approximate="tanh")', nn.GELU(approximate="tanh"), xg)
    case("softmax", "Softmax(dim=1)", nn.Softmax(dim=1), torch.randn(2, 3, 4, dtype=d) * 4)
    case("log_softmax", "LogSoftmax(dim=-1)", nn.LogSoftmax(dim=-1),
         torch.randn(2, 3, 4, dtype=d) * 4)
    case("flatten", "Flatten()", nn.Flatten(), torch.randn(2, 3, 2, 2, dtype=d))
    case("flatten_0_1", "Flatten(0, 1)", nn.Flatten(0, 1), torch.randn(2, 3, 2, dtype=d))
    case("identity", "Identity()", nn.Identity(), torch.randn(4, dtype=d))
    case("bn1d", f"BatchNorm1d(3{f64})", nn.BatchNorm1d(3),
         torch.randn(6, 3, dtype=d) * 2 + 1, torch.randn(2, 3, dtype=d))
    case("bn1d_3d_cumulative", f"BatchNorm1d(2, momentum=None{f64})",
         nn.BatchNorm1d(2, momentum=None), torch.randn(3, 2, 5, dtype=d) - 2,
         torch.randn(1, 2, 4, dtype=d))
    case("bn1d_no_affine", f"BatchNorm1d(4, eps=0.001, momentum=0.3, affine=false{f64})",
         nn.BatchNorm1d(4, eps=1e-3, momentum=0.3, affine=False), torch.randn(5, 4, dtype=d),
         torch.randn(3, 4, dtype=d))
    case("bn2d", f"BatchNorm2d(2{f64})", nn.BatchNorm2d(2), torch.randn(2, 2, 3, 3, dtype=d))
    case("conv", f"Conv2d(2, 3, 3{f64})", nn.Conv2d(2, 3, 3), torch.randn(2, 2, 4, 5, dtype=d))
    case("conv_pad_stride", f"Conv2d(2, 4, 3, stride=2, padding=1{f64})",
         nn.Conv2d(2, 4, 3, stride=2, padding=1), torch.randn(1, 2, 5, 4, dtype=d))
    case("conv_groups_dilation",
         f"Conv2d(4, 6, [3, 2], padding=[1, 0], dilation=[1, 2], groups=2, bias=false{f64})",
         nn.Conv2d(4, 6, (3, 2), padding=(1, 0), dilation=(1, 2), groups=2, bias=False),
         torch.randn(1, 4, 4, 5, dtype=d))
    case("conv_unbatched", f"Conv2d(1, 2, 2, stride=[1, 2]{f64})",
         nn.Conv2d(1, 2, 2, stride=(1, 2)), torch.randn(1, 4, 5, dtype=d))
    case("pool", "MaxPool2d(2)", nn.MaxPool2d(2), torch.randn(2, 2, 4, 5, dtype=d))
    case("pool_pad_stride", "MaxPool2d(3, stride=2, padding=1)",
         nn.MaxPool2d(3, stride=2, padding=1), torch.randn(1, 2, 5, 5, dtype=d))
    case("pool_ceil", "MaxPool2d(2, ceil_mode=true)", nn.MaxPool2d(2, ceil_mode=True),
         torch.randn(1, 2, 5, 5, dtype=d))
    case("pool_dilation", "MaxPool2d([2, 3], stride=1, dilation=2)",
         nn.MaxPool2d((2, 3), stride=1, dilation=2), torch.randn(1, 1, 6, 7, dtype=d))
    case("embedding", f"Embedding(6, 3{f64})", nn.Embedding(6, 3),
         torch.tensor([[0, 5, 2, 2], [1, 3, 5, 0]]))
    case("embedding_padding", f"Embedding(5, 2, padding_idx=-2{f64})",
         nn.Embedding(5, 2, padding_idx=-2), torch.tensor([3, 1, 3, 4, 0]))
    case("sequential", f"Sequential(Linear(4, 5{f64}), Tanh(), Linear(5, 2{f64}))",
         nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 2)),
         torch.randn(3, 4, dtype=d))
    save(f32(out), "layers.safetensors", meta)


# ---- losses (float64) -------------------------------------------------------------------------

def loss_case(out, meta, name, spec, fn, x, t, reduction_none=False):
    meta[name] = spec
    x = exact32(x.clone()).requires_grad_(True)
    t = exact32(t)
    y = fn(x, t)
    gy = exact32(torch.randn_like(y)) if reduction_none else None
    y.backward(gy)
    out[f"{name}.x"] = x.detach()
    out[f"{name}.t"] = t
    out[f"{name}.y"] = y.detach()
    if gy is not None:
        out[f"{name}.gy"] = gy
    out[f"{name}.gx"] = x.grad


def losses():
    torch.manual_seed(3)
    out, meta = {}, {}

    def case(*args):
        loss_case(out, meta, *args)

    d = torch.float64
    x = torch.randn(6, 4, dtype=d) * 2
    t = torch.tensor([0, 3, 1, 1, 2, 3])
    w = [0.5, 2.0, 1.0, 3.0]
    wt = torch.tensor(w, dtype=d)
    ws = "[0.5, 2, 1, 3]"
    case("ce", "CrossEntropyLoss()", nn.CrossEntropyLoss(), x, t)
    case("ce_weight_ignore", f"CrossEntropyLoss(weight={ws}, ignore_index=1)",
         nn.CrossEntropyLoss(weight=wt, ignore_index=1), x, t)
    case("ce_smoothing", f"CrossEntropyLoss(weight={ws}, ignore_index=3, label_smoothing=0.2)",
         nn.CrossEntropyLoss(weight=wt, ignore_index=3, label_smoothing=0.2), x, t)
    case("ce_smoothing_none",
         f'CrossEntropyLoss(weight={ws}, ignore_index=3, reduction="none", '
         'label_smoothing=0.2)',
         nn.CrossEntropyLoss(weight=wt, ignore_index=3, reduction="none", label_smoothing=0.2),
         x, t, True)
    case("ce_smoothing_sum", 'CrossEntropyLoss(reduction="sum", label_smoothing=0.1)',
         nn.CrossEntropyLoss(reduction="sum", label_smoothing=0.1), x, t)
    xn = torch.randn(2, 3, 4, 2, dtype=d)
    tn = torch.randint(0, 3, (2, 4, 2))
    case("ce_nd", "CrossEntropyLoss()", nn.CrossEntropyLoss(), xn, tn)
    case("ce_nd_none", 'CrossEntropyLoss(reduction="none")',
         nn.CrossEntropyLoss(reduction="none"), xn, tn, True)
    case("ce_unbatched", "CrossEntropyLoss()", nn.CrossEntropyLoss(),
         torch.randn(5, dtype=d), torch.tensor(3))
    case("ce_large_logits", "CrossEntropyLoss()", nn.CrossEntropyLoss(),
         torch.tensor([[1e4, -1e4, 5e3], [-3e4, 3e4, 0.0]], dtype=d), torch.tensor([1, 1]))
    p = torch.softmax(torch.randn(6, 4, dtype=d), 1)
    case("ce_probs", "CrossEntropyLoss()", nn.CrossEntropyLoss(), x, p)
    case("ce_probs_weight_smoothing", f"CrossEntropyLoss(weight={ws}, label_smoothing=0.3)",
         nn.CrossEntropyLoss(weight=wt, label_smoothing=0.3), x, p)
    pn = torch.softmax(torch.randn(2, 3, 4, 2, dtype=d), 1)
    case("ce_probs_nd_none", 'CrossEntropyLoss(reduction="none")',
         nn.CrossEntropyLoss(reduction="none"), xn, pn, True)
    lp = torch.log_softmax(x, 1)
    case("nll", "NLLLoss()", nn.NLLLoss(), lp, t)
    case("nll_weight_ignore", f"NLLLoss(weight={ws}, ignore_index=3)",
         nn.NLLLoss(weight=wt, ignore_index=3), lp, t)
    case("nll_none", 'NLLLoss(ignore_index=1, reduction="none")',
         nn.NLLLoss(ignore_index=1, reduction="none"), lp, t, True)
    a, b = torch.randn(3, 5, dtype=d), torch.randn(3, 5, dtype=d)
    case("mse", "MSELoss()", nn.MSELoss(), a, b)
    case("mse_sum", 'MSELoss(reduction="sum")', nn.MSELoss(reduction="sum"), a, b)
    case("l1", "L1Loss()", nn.L1Loss(), a, b)
    case("l1_none", 'L1Loss(reduction="none")', nn.L1Loss(reduction="none"), a, b, True)
    pr = torch.sigmoid(torch.randn(4, 3, dtype=d))
    pr[0, 0], pr[1, 1] = 0.0, 1.0          # exactly 0 and 1: clamped logs, finite gradients
    tg = torch.rand(4, 3, dtype=d)
    tg[0, 0], tg[1, 1] = 0.0, 1.0
    bw = torch.tensor([1.0, 0.5, 2.0], dtype=d)
    case("bce", "BCELoss()", nn.BCELoss(), pr, tg)
    case("bce_weight_none", 'BCELoss(weight=[1, 0.5, 2], reduction="none")',
         nn.BCELoss(weight=bw, reduction="none"), pr, tg, True)
    lg = torch.randn(4, 3, dtype=d) * 3
    lg[0, 0], lg[1, 1], lg[2, 2] = 200.0, -200.0, 0.0
    case("bce_logits", "BCEWithLogitsLoss()", nn.BCEWithLogitsLoss(), lg, tg)
    case("bce_logits_pos_weight",
         'BCEWithLogitsLoss(weight=[1, 0.5, 2], reduction="sum", pos_weight=[3, 1, 0.25])',
         nn.BCEWithLogitsLoss(weight=bw, reduction="sum",
         pos_weight=torch.tensor([3.0, 1.0, 0.25], dtype=d)), lg, tg)
    save(f32(out), "losses.safetensors", meta)


if __name__ == "__main__":
    parity()
    layers()
    losses()
    for f in sorted(os.listdir(HERE)):
        if f.endswith(".safetensors"):
            print(f"{f}: {os.path.getsize(os.path.join(HERE, f))} bytes")
