"""Serial capture: a board printing several MB as fast as it can, captured by BoardPort +
SerialCapture (with its session log, as in a pytest session), against a plain ``os.read`` loop
on the same kind of pty with the same burst.

The board's main.py waits for ``go`` on its console, prints ``BURST-BEGIN``, then the burst
(lines of known content), then ``BURST-END <bytes> <sha256>`` computed on the board over what it
printed. Every capture is checked against that: a single lost or altered byte fails the module.

CPU: ``time.process_time()`` of this process over the burst. With the rig, the main thread only
waits (``SerialCapture.wait_text``, as ``SerialLog.expect`` does) while the reader thread works;
with the baseline the main thread reads. The board's own processes (supervisor, MicroPython)
are not counted on either side.
Idle: the process's CPU over 1 s with the rig's port open and the board silent; the reader
blocks in ``select`` on the port's fd, so it should be about zero.
"""

from __future__ import annotations

import hashlib
import os
import re
import select
import time
import tty
from pathlib import Path
from typing import Any

from benchmarks.runner import BenchContext, Figure

ORDER = 20
BUDGET_S = 40

LINE = 64  # bytes per line, newline included
LINES_PER_BLOCK = 64  # 4 KiB per block

BURST_MAIN = """\
import sys, hashlib, binascii
PAD = "{pad}"
def burst(blocks):
    h = hashlib.sha256()
    n = 0
    w = sys.stdout.write
    print("BURST-BEGIN")
    for b in range(blocks):
        block = "".join(["%06d:%02d:%s\\n" % (b, i, PAD) for i in range({per_block})])
        w(block)
        h.update(block.encode())
        n += len(block)
    print("BURST-END %d %s" % (n, binascii.hexlify(h.digest()).decode()))
print("burst ready")  # the supervisor reports READY on the board's first output
while True:
    cmd = sys.stdin.readline()
    if not cmd.startswith("go"):
        break
    burst(int(cmd.split()[1]))
"""


def flash_with_burst(flash: Path) -> Path:
    flash.mkdir(parents=True, exist_ok=True)
    pad = ("0123456789abcdefghijklmnopqrstuvwxyz" * 3)[: LINE - 11]
    (flash / "main.py").write_text(BURST_MAIN.format(pad=pad, per_block=LINES_PER_BLOCK))
    return flash


def check(region: bytes, end_line: str, what: str) -> int:
    _, n, digest = end_line.split()
    if len(region) != int(n) or hashlib.sha256(region).hexdigest() != digest:
        raise RuntimeError(
            f"{what}: captured {len(region)} bytes (sha256 {hashlib.sha256(region).hexdigest()[:12]}), "
            f"the board printed {n} (sha256 {digest[:12]}): bytes were lost or altered"
        )
    return int(n)


END_LINE = re.compile(r"^BURST-END ")


def rig_burst(board: Any, blocks: int, timeout: float) -> tuple[float, float, int]:
    """One burst through the rig: (seconds, process CPU seconds, bytes verified)."""
    from rig.deadline import Deadline

    capture = board.capture
    start = capture.next_index
    c0, t0 = time.process_time(), time.perf_counter()
    board.write(f"go {blocks}\n".encode())
    # The wait SerialLog.expect makes (a compiled pattern's search over each line's text).
    end = capture.wait_text(END_LINE.search, start, Deadline(timeout), include_partial=False)
    t1, c1 = time.perf_counter(), time.process_time()
    if end is None:
        raise RuntimeError(f"rig: no BURST-END within {timeout}s; last: {capture.tail(3)}")
    lines = capture.lines(start)
    begin = next(i for i, ln in enumerate(lines) if ln.text == "BURST-BEGIN")
    stop = next(i for i, ln in enumerate(lines) if ln.index == end.index)
    region = "".join(ln.text + "\n" for ln in lines[begin + 1 : stop]).encode()
    return t1 - t0, c1 - c0, check(region, end.text, "rig capture")


def plain_burst(fd: int, blocks: int, timeout: float) -> tuple[float, float, int]:
    """The same burst read by a plain blocking os.read loop on the board's pty."""
    c0, t0 = time.process_time(), time.perf_counter()
    os.write(fd, f"go {blocks}\n".encode())
    buf = bytearray()
    scan = 0
    at = -1
    deadline = time.monotonic() + timeout
    while True:
        if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            raise RuntimeError(f"baseline: no BURST-END within {timeout}s; got {len(buf)} bytes")
        data = os.read(fd, 65536)
        buf += data
        if at < 0:  # once found, kept: its newline may come several reads later
            at = buf.find(b"BURST-END ", max(0, scan - 16))
        scan = len(buf)
        if at >= 0 and buf.find(b"\n", at) >= 0:
            break
        if time.monotonic() > deadline:
            raise RuntimeError("baseline: no BURST-END in time")
    t1, c1 = time.perf_counter(), time.process_time()
    text = bytes(buf).replace(b"\r\n", b"\n")
    begin = text.index(b"BURST-BEGIN\n") + len(b"BURST-BEGIN\n")
    at = text.index(b"BURST-END ", begin)
    end_line = text[at : text.index(b"\n", at)].decode()
    return t1 - t0, c1 - c0, check(text[begin:at], end_line, "os.read loop")


def idle_cpu(seconds: float = 1.0) -> float:
    c0 = time.process_time()
    time.sleep(seconds)
    return (time.process_time() - c0) / seconds


def run(ctx: BenchContext) -> list[Figure]:
    n = ctx.n(1 if ctx.quick else 4)
    blocks = 64 if ctx.quick else 1024  # x 4 KiB: 256 KiB or 4 MiB
    timeout = 60.0

    board = ctx.board(
        "serial", flash_dir=flash_with_burst(ctx.tmp / "flash-rig"), session_log=ctx.tmp / "serial.log"
    )
    # The same capture with no session log: what the per-line flushed log costs.
    nolog = ctx.board("serial-nolog", flash_dir=flash_with_burst(ctx.tmp / "flash-nolog"))
    plain_vb = ctx.virtual_board("plain", flash_with_burst(ctx.tmp / "flash-plain"))
    fd = os.open(plain_vb.port_url, os.O_RDWR | os.O_NOCTTY)
    ctx.on_close(lambda: os.close(fd))
    tty.setraw(fd)
    # Let both boards reach their ``readline`` and drop what they printed while booting.
    time.sleep(0.3)
    while select.select([fd], [], [], 0)[0]:
        os.read(fd, 65536)

    rig_s: list[float] = []
    rig_cpu: list[float] = []
    base_s: list[float] = []
    base_cpu: list[float] = []
    nolog_s: list[float] = []
    nolog_cpu: list[float] = []
    size = 0
    for _ in range(n):  # interleaved, so that drift hits both alike
        s, c, size = rig_burst(board, blocks, timeout)
        rig_s.append(s)
        rig_cpu.append(c)
        s, c, _ = rig_burst(nolog, blocks, timeout)
        nolog_s.append(s)
        nolog_cpu.append(c)
        s, c, _ = plain_burst(fd, blocks, timeout)
        base_s.append(s)
        base_cpu.append(c)
    mb = size / 1e6
    ctx.log(f"burst {size} bytes, rig {rig_s}, os.read {base_s}")

    rig_idle = idle_cpu(1.0)  # the rig's port is open, the reader thread waits in read()
    board_bytes = board.port.bytes_read if board.port is not None else 0

    rig_tp = [mb / s for s in rig_s]
    base_tp = [mb / s for s in base_s]
    rig_cpmb = [c / mb for c in rig_cpu]
    base_cpmb = [c / mb for c in base_cpu]
    extra = [r - b for r, b in zip(rig_cpmb, base_cpmb, strict=True)]
    return [
        Figure.from_samples(
            "serial.throughput",
            rig_tp,
            "MB/s",
            baseline_name="plain os.read loop",
            baseline=base_tp,
            notes=f"{size} bytes per burst, every byte verified by the board's sha256 "
            f"({board_bytes} bytes read by the rig in all)",
        ),
        Figure.from_samples(
            "serial.cpu_per_MB",
            rig_cpmb,
            "cpu-s/MB",
            baseline_name="plain os.read loop",
            baseline=base_cpmb,
            notes="process CPU (reader thread + session log + waiting main thread); the board's "
            "processes not counted",
        ),
        Figure.from_samples(
            "serial.throughput.no_session_log",
            [mb / s for s in nolog_s],
            "MB/s",
            baseline_name="plain os.read loop",
            baseline=base_tp,
            notes="the same capture, session_log=None (diagnostic: the pytest session always logs)",
        ),
        Figure.from_samples(
            "serial.cpu_per_MB.no_session_log",
            [c / mb for c in nolog_cpu],
            "cpu-s/MB",
            baseline_name="plain os.read loop",
            baseline=base_cpmb,
        ),
        Figure.from_samples(
            "serial.cpu_per_MB_over_baseline",
            extra,
            "cpu-s/MB",
            notes="rig minus os.read loop, per sample: what line splitting, the flushed session log "
            "and the waiter's scan cost",
        ),
        Figure.single(
            "serial.idle_cpu",
            rig_idle,
            "cpu-s/s",
            notes="process CPU over 1 s, port open, board silent: near 0 means the reader blocks",
        ),
    ]
