#!/usr/bin/python3
"""tests/optim/golden/check_load.py - loads a safetensors file written by Ember into PyTorch.

    /usr/bin/python3 check_load.py ARCH EMBER_FILE GOLDEN_FILE BATCH_FILE

ARCH is "mlp" or "cnn" (the architectures of gen_golden.py). The file written by Ember must load
into the PyTorch model with load_state_dict(strict=True) (same names, shapes and dtypes), hold
the values of GOLDEN_FILE within 1e-5 relative, and the loaded model must run on the batch.

Exit status: 0 when it loads and matches, 1 on any mismatch (the reason on stderr), 77 when torch
is not installed for this interpreter (the caller skips, with the reason).
"""
import json
import struct
import sys

try:
    import torch
except ImportError as e:
    sys.stderr.write("torch is not available for %s: %s\n" % (sys.executable, e))
    sys.exit(77)

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "I32": torch.int32,
          "U8": torch.uint8, "F16": torch.float16, "BF16": torch.bfloat16, "BOOL": torch.bool}


def load_safetensors(path):
    """safetensors.torch.load_file when available, else a reader of the format by hand."""
    try:
        from safetensors.torch import load_file
        return load_file(path)
    except ImportError:
        pass
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        dt = DTYPES[e["dtype"]]
        buf = bytearray(data[b:end])
        t = torch.frombuffer(buf, dtype=dt) if buf else torch.empty(0, dtype=dt)
        out[name] = t.reshape(e["shape"]).clone()
    return out


def model(arch):
    nn = torch.nn
    if arch == "mlp":
        return nn.Sequential(nn.Linear(3, 64), nn.ReLU(), nn.Linear(64, 128), nn.ReLU(),
                             nn.Linear(128, 10))
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(36, 10))


def main(argv):
    arch, ember_file, golden_file, batch_file = argv[1:5]
    m = model(arch)
    state = load_safetensors(ember_file)
    try:
        m.load_state_dict(state, strict=True)
    except RuntimeError as e:
        sys.stderr.write("load_state_dict(strict=True) refused %s: %s\n" % (ember_file, e))
        return 1
    golden = load_safetensors(golden_file)
    for name, want in golden.items():
        got = m.state_dict()[name]
        if got.dtype != want.dtype or got.shape != want.shape:
            sys.stderr.write("%s: %s %s, expected %s %s\n" % (name, got.dtype, list(got.shape),
                                                              want.dtype, list(want.shape)))
            return 1
        if not torch.allclose(got, want, rtol=1e-5, atol=1e-7):
            err = (got - want).abs().max().item()
            sys.stderr.write("%s differs from the golden value by up to %g\n" % (name, err))
            return 1
    x = load_safetensors(batch_file)["x"]
    with torch.no_grad():
        y = m(x)
    if not torch.isfinite(y).all():
        sys.stderr.write("the loaded model gives non-finite outputs\n")
        return 1
    print("PyTorch %s loaded %s: %d tensors match %s" % (torch.__version__, ember_file,
                                                         len(golden), golden_file))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
