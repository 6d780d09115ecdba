#!/usr/bin/env python3
"""tests/e2e/progress_pty.py - `ember train` under a pseudo-terminal of COLS columns: the
progress bar must fit (no line longer than COLS - 1 visible columns), redraw at most about ten
times a second, and show samples/s and an ETA.

usage: progress_pty.py EMBER CONFIG OUT_DIR [COLS]; prints "progress: ok ..." or exits 1.
"""
import fcntl, os, pty, re, select, struct, sys, termios, time

ember, config, out = sys.argv[1:4]
cols = int(sys.argv[4]) if len(sys.argv) > 4 else 80
argv = [ember, "train", config, "--out", out, "--epochs", "3", "--batch-size", "8",
        "--no-plot"]

pid, fd = pty.fork()
if pid == 0:
    # the size is set on the child's own terminal before ember starts, so ember never sees
    # an unset one (it would then assume 80 columns)
    fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", 24, cols, 0, 0))
    os.execv(ember, argv)
t0 = time.monotonic()
data = b""
while True:
    r, _, _ = select.select([fd], [], [], 60)
    if not r:
        break
    try:
        chunk = os.read(fd, 65536)
    except OSError:
        break
    if not chunk:
        break
    data += chunk
elapsed = time.monotonic() - t0
_, status = os.waitpid(pid, 0)
text = data.decode("utf-8", "replace")
fail = []
if os.waitstatus_to_exitcode(status) != 0:
    fail.append("exit status %d" % os.waitstatus_to_exitcode(status))
# every piece between \r or \n is what one redraw leaves on the line
pieces = re.split(r"[\r\n]", re.sub(r"\x1b\[K", "", text))
widest = max((len(p) for p in pieces), default=0)
draws = text.count("\r\x1b[K") - text.count("\r\x1b[K\r\x1b[K")
bars = [p for p in pieces if "samples/s" in p and "%|" in p]
if widest > cols - 1:
    fail.append("a line of %d columns: %r" % (widest, max(pieces, key=len)))
if not bars:
    fail.append("no progress bar drawn")
elif not re.search(r"\[\d\d:\d\d<\d\d:\d\d, \d+ samples/s, loss", bars[-1]):
    fail.append("no elapsed<ETA and samples/s in %r" % bars[-1])
# at most ten redraws a second, plus the final one of each epoch and its clearing
limit = 10 * elapsed + 2 * 3 + 3
if len(bars) > limit:
    fail.append("%d redraws in %.2f s (limit %.0f)" % (len(bars), elapsed, limit))
if fail:
    print("progress: FAIL: " + "; ".join(fail))
    print(text[-2000:])
    sys.exit(1)
print("progress: ok, %d redraws in %.2f s, widest line %d of %d columns" %
      (len(bars), elapsed, widest, cols))
