#!/usr/bin/env python3
"""tests/e2e/check_pictures.py - checks that `ember plot` and `ember eval --plot` drew real
pictures, not empty files: the SVGs parse as XML and hold a title, axes labels, one polyline
per curve with a point per epoch, and a grid of classes x classes cells; the PNGs decode and
are not one flat colour.

usage: check_pictures.py RUN_DIR EPOCHS CLASSES | --confusion FILE CLASSES | --png RUN_DIR
Prints "ok ..." or a reason, and exits 1 on failure.
"""
import os, struct, sys, zlib
import xml.etree.ElementTree as ET

NS = "{http://www.w3.org/2000/svg}"


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def svg(path):
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        fail("%s: %s" % (path, e))
    if root.tag != NS + "svg":
        fail("%s: the root element is %s, not svg" % (path, root.tag))
    texts = [t.text or "" for t in root.iter(NS + "text")]
    return root, texts


def curves(path, epochs, want_curves, words):
    root, texts = svg(path)
    lines = [p.get("points").split() for p in root.iter(NS + "polyline")]
    full = [pts for pts in lines if len(pts) == epochs]
    if len(full) < want_curves:
        fail("%s: %d polylines of %d points, wanted %d" % (path, len(full), epochs, want_curves))
    ys = {float(p.split(",")[1]) for pts in full for p in pts}
    if epochs > 1 and len(ys) < 2:
        fail("%s: every point at the same height" % path)
    for w in words:
        if not any(w in t for t in texts):
            fail("%s: no text saying %r (title, labels, legend)" % (path, w))


def confusion(path, classes):
    root, texts = svg(path)
    cells = [r for r in root.iter(NS + "rect")
             if r.get("stroke") == "#ffffff" and r.get("width") == r.get("height")]
    if len(cells) != classes * classes:
        fail("%s: %d cells, wanted %d" % (path, len(cells), classes * classes))
    if len({c.get("fill") for c in cells}) < 2:
        fail("%s: every cell the same colour" % path)
    for w in ("confusion", "predicted class", "true class"):
        if not any(w in t for t in texts):
            fail("%s: no text saying %r" % (path, w))


def png_pixels(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail("%s: not a PNG" % path)
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, ctype = ihdr[:4]
    if depth != 8 or ctype not in (2, 6):
        fail("%s: unexpected PNG format (depth %d, colour type %d)" % (path, depth, ctype))
    bpp = 3 if ctype == 2 else 4
    raw, stride, prev, rows = zlib.decompress(idat), w * bpp, bytearray(w * bpp), []
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, rows, bpp


args = sys.argv[1:]
if args[:1] == ["--confusion"]:
    confusion(args[1], int(args[2]))
    print("ok: %s" % args[1])
elif args[:1] == ["--png"]:
    for name in ("loss.png", "accuracy.png", "confusion.png"):
        path = os.path.join(args[1], name)
        if os.path.getsize(path) == 0:
            fail("%s is empty" % path)
        w, h, rows, bpp = png_pixels(path)
        colours = {row[i:i + bpp] for row in rows[::7] for i in range(0, len(row), bpp * 5)}
        if len(colours) < 3:
            fail("%s: %d colours only" % (path, len(colours)))
    print("ok: PNGs of %dx%d and more" % (w, h))
else:
    run, epochs, classes = args[0], int(args[1]), int(args[2])
    curves(os.path.join(run, "loss.svg"), epochs, 2, ("loss per epoch", "epoch", "train loss", "test loss"))
    curves(os.path.join(run, "accuracy.svg"), epochs, 1, ("accuracy", "epoch", "best"))
    confusion(os.path.join(run, "confusion.svg"), classes)
    print("ok: %s" % run)
