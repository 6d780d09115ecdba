"""tests/golden_safetensors.py - writes .safetensors files for the golden-value generators
(tests/nn/golden/gen_golden.py, tests/optim/golden/gen_golden.py), which import it.

safetensors.torch.save_file when that package is installed for the interpreter, else the same
format by hand: an 8-byte little-endian header length, the JSON header (padded with spaces to a
multiple of 8), then the tensors' raw little-endian bytes in order.
"""
import json
import os
import struct

import torch

DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64", torch.int32: "I32",
          torch.uint8: "U8", torch.float16: "F16", torch.bfloat16: "BF16", torch.bool: "BOOL"}


def tensor_bytes(t):
    t = t.detach().contiguous().cpu()
    try:
        return t.numpy().tobytes()
    except (RuntimeError, TypeError):   # no numpy for this interpreter, or bf16
        return bytes(t.view(-1).view(torch.uint8).tolist())


def save_safetensors(tensors, path, metadata=None):
    """Writes `tensors` (name -> tensor) to `path` with `metadata` ("format": "pt" added when
    absent); returns which writer was used."""
    metadata = dict(metadata or {})
    metadata.setdefault("format", "pt")
    try:
        from safetensors.torch import save_file
    except ImportError:
        save_file = None
    if save_file is not None:
        save_file({k: v.detach().contiguous() for k, v in tensors.items()}, path, metadata)
        return "safetensors.torch.save_file"
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        b = tensor_bytes(t)
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(path + ".tmp", path)
    return "the hand-written format"
