"""The rig against its closest peer, pytest-embedded, on one virtual board in one run.

pytest-embedded (``pytest-embedded-serial``) is what Espressif's own test suites use: a ``dut``
fixture with ``expect``. Its pipeline is assembled here from its own parts, as its pytest
plugin assembles the ``dut`` fixture: a ``MessageQueueManager`` process and its
``MessageQueue``; the listener process (``_listener_gn``) that appends every byte to the DUT's
log file; ``PexpectProcess`` reading that file; ``pytest_embedded_serial.Serial`` (its read
thread) on the board's port; ``SerialDut.expect``. The rig's side is its own serial stack as a
test uses it: ``BoardPort`` + ``SerialCapture`` (with the session log) + ``SerialLog.expect``.

Both take turns on the same virtual board (the port is held by one at a time), in rounds, so
that drift hits both alike:

- latency: the host sends ``ping N``; the board takes ``time.time_ns()`` and prints
  ``PONG N <ns>``; the figure is the wall clock when ``expect`` for that line returns, minus the
  board's stamp (one host, one clock). A random pause before each ping spreads the pings over
  the peer's 50 ms polling period, as a real test's events are spread.
- throughput: the burst of ``bench_serial`` (``BURST-BEGIN``, lines of known content, then
  ``BURST-END <bytes> <sha256>``), awaited with each tool's ``expect``; the bytes between the
  markers, as each tool captured them, are checked against the board's sha256.

The peer's listener prints every byte to its stdout, as it does at a terminal; here that
stdout is /dev/null (cheaper than a terminal, so if anything in the peer's favour). Its
processes are stopped by its own calls, then checked by PID and killed if still there.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import random
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.bench_serial import LINE, LINES_PER_BLOCK, check
from benchmarks.runner import BenchContext, Figure, ModuleSkipped
from benchmarks.stats import percentile

ORDER = 22
BUDGET_S = 60

PEER_MAIN = """\
import sys, time, hashlib, binascii
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
print("peer ready")  # the supervisor reports READY on the board's first output
while True:
    cmd = sys.stdin.readline().split()
    if not cmd:
        break
    if cmd[0] == "ping":
        print("PONG %s %d" % (cmd[1], time.time_ns()))
    elif cmd[0] == "go":
        burst(int(cmd[1]))
    else:
        break
"""

# Pause before each ping: uniform over the peer's read period (its thread reads, then sleeps 50 ms).
PAUSE_S = 0.05


def flash_for_peer(flash: Path) -> Path:
    flash.mkdir(parents=True, exist_ok=True)
    pad = ("0123456789abcdefghijklmnopqrstuvwxyz" * 3)[: LINE - 11]
    (flash / "main.py").write_text(PEER_MAIN.format(pad=pad, per_block=LINES_PER_BLOCK))
    return flash


# -- the rig -----------------------------------------------------------------------------------


class RigSide:
    """The rig's serial stack on the board's port, as a test has it: opened per round."""

    def __init__(self, url: str, work: Path) -> None:
        self.url = url
        self.work = work

    @contextlib.contextmanager
    def opened(self) -> Iterator[Any]:
        from rig.serialio import BoardPort, SerialCapture, SerialLog

        capture = SerialCapture("peer-bench", self.work / "session.log")
        port = BoardPort(self.url, name="peer-bench")
        port.add_sink(capture)
        port.open()
        log = SerialLog(capture, self.work / "test-serial.log")
        try:
            yield port, log
        finally:
            log.close()
            port.close()
            capture.close()

    def latencies(self, count: int, first: int, rng: random.Random) -> list[float]:
        out = []
        with self.opened() as (port, log):
            for n in range(first, first + count):
                time.sleep(rng.uniform(0, PAUSE_S))
                port.write(f"ping {n}\n".encode())
                match = log.expect(f"PONG {n} (\\d+)", timeout=10)
                out.append((time.time_ns() - int(match.group(1))) / 1e6)
        return out

    def burst(self, blocks: int, timeout: float) -> float:
        with self.opened() as (port, log):
            t0 = time.perf_counter()
            port.write(f"go {blocks}\n".encode())
            log.expect("^BURST-BEGIN$", timeout=timeout)
            begin = log.cursor
            end = log.expect(r"^BURST-END \d+ [0-9a-f]{64}$", timeout=timeout)
            seconds = time.perf_counter() - t0
            lines = [ln for ln in log.lines() if begin <= ln.index < log.cursor - 1]
            region = "".join(ln.text + "\n" for ln in lines).encode()
            size = check(region, end.group(0), "rig capture")
        return size / 1e6 / seconds


# -- the peer ----------------------------------------------------------------------------------


class PeerSide:
    """pytest-embedded's pipeline for one DUT, assembled as its plugin assembles ``dut``.

    The manager, the listener and the pexpect reader live for the whole module; the serial port
    (``Serial``, with its read thread) is opened per round.
    """

    def __init__(self, url: str, work: Path) -> None:
        factory, log = _peer("pytest_embedded.dut_factory"), _peer("pytest_embedded.log")

        self.url = url
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.logfile = str(work / "dut.log")
        self.pids: list[int] = []
        # The plugin's session fixture starts the manager the same way, in the default context.
        self.manager = log.MessageQueueManager()
        self.manager.start()
        self.pids.append(self.manager._process.pid)
        self.msg_queue = self.manager.MessageQueue()
        self.listener = factory._listener_gn(self.msg_queue, self.logfile, True, 0, 1)
        with _stdout_to_devnull():  # the listener echoes every byte to its stdout
            self.pexpect_fr = factory._pexpect_fr_gn(self.logfile, self.listener)
        self.pids.append(self.listener.pid)
        self.pexpect_proc = log.PexpectProcess(self.pexpect_fr)

    @contextlib.contextmanager
    def opened(self) -> Iterator[Any]:
        serial = _peer("pytest_embedded_serial.serial").Serial(self.msg_queue, port=self.url, baud=115200)
        try:
            yield _peer("pytest_embedded_serial.dut").SerialDut(
                serial=serial,
                pexpect_proc=self.pexpect_proc,
                msg_queue=self.msg_queue,
                app=_peer("pytest_embedded.app").App(app_path=str(self.work)),
                pexpect_logfile=self.logfile,
                test_case_name="bench_peer",
            )
        finally:
            serial.close()

    def latencies(self, count: int, first: int, rng: random.Random) -> list[float]:
        out = []
        with self.opened() as dut:
            for n in range(first, first + count):
                time.sleep(rng.uniform(0, PAUSE_S))
                dut.write(f"ping {n}")  # the peer adds the newline
                match = dut.expect(re.compile(rb"PONG %d (\d+)" % n), timeout=10)
                out.append((time.time_ns() - int(match.group(1))) / 1e6)
        return out

    def burst(self, blocks: int, timeout: float) -> float:
        with self.opened() as dut:
            t0 = time.perf_counter()
            dut.write(f"go {blocks}")
            dut.expect(re.compile(rb"BURST-BEGIN\r?\n"), timeout=timeout)
            end = dut.expect(re.compile(rb"BURST-END \d+ [0-9a-f]{64}"), timeout=timeout)
            seconds = time.perf_counter() - t0
            region = bytes(self.pexpect_proc.before).replace(b"\r\n", b"\n")
            size = check(region, end.group(0).decode(), "pytest-embedded capture")
        return size / 1e6 / seconds

    def close(self) -> None:
        """The peer's own teardown (as ``DutFactory.close`` does it), then by PID what is left."""
        with contextlib.suppress(Exception):
            self.pexpect_proc.terminate()
        with contextlib.suppress(Exception):
            self.listener.terminate()
            self.listener.join(5)
        with contextlib.suppress(Exception):
            self.manager.shutdown()
        for pid in self.pids:
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            self.listener.join(5)


def _peer(module: str) -> Any:
    """A module of the peer: imported by name, as it is installed in the benchmark environment only."""
    return importlib.import_module(module)


def _alive(pid: int) -> bool:
    from rig.processes import is_running

    return is_running(pid)


@contextlib.contextmanager
def _stdout_to_devnull() -> Iterator[None]:
    """fd 1 is /dev/null while a child process starts (it inherits fd 1), then ours again."""
    import sys

    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def run(ctx: BenchContext) -> list[Figure]:
    try:
        _peer("pytest_embedded_serial")
    except ImportError as e:
        raise ModuleSkipped(f"pytest-embedded-serial is not installed ({e})") from e
    rounds = ctx.n(1 if ctx.quick else 3)
    pings = 5 if ctx.quick else 20
    blocks = 16 if ctx.quick else 64  # x 4 KiB: 64 KiB or 256 KiB
    timeout = 60.0
    rng = random.Random(2217)

    vb = ctx.virtual_board("peer", flash_for_peer(ctx.tmp / "flash-peer"))
    rig = RigSide(vb.port_url, ctx.tmp / "rig")
    peer = PeerSide(vb.port_url, ctx.tmp / "peer")
    ctx.on_close(peer.close, peer)

    lat: dict[str, list[float]] = {"rig": [], "peer": []}
    tput: dict[str, list[float]] = {"rig": [], "peer": []}
    n = 0
    for _ in range(rounds):
        for name, side in (("rig", rig), ("peer", peer)):
            lat[name] += side.latencies(pings, n, rng)
            n += pings
            tput[name].append(side.burst(blocks, timeout))
    ctx.log(f"latency ms: rig {lat['rig']}, peer {lat['peer']}")
    ctx.log(f"throughput MB/s: rig {tput['rig']}, peer {tput['peer']}")
    version = _peer_version()
    return [
        Figure.from_samples(
            "peer.expect_latency",
            lat["rig"],
            "ms",
            baseline_name=f"pytest-embedded {version}",
            baseline=lat["peer"],
            notes=f"board prints a line -> expect returns; p90 rig {percentile(lat['rig'], 90):.2f} ms, "
            f"peer {percentile(lat['peer'], 90):.2f} ms; ratio < 1: the rig is faster",
        ),
        Figure.from_samples(
            "peer.throughput",
            tput["rig"],
            "MB/s",
            baseline_name=f"pytest-embedded {version}",
            baseline=tput["peer"],
            notes=f"{blocks * 4096} bytes per burst, awaited with expect, every byte checked against "
            "the board's sha256; ratio > 1: the rig is faster",
        ),
    ]


def _peer_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pytest-embedded-serial")
    except PackageNotFoundError:
        return "?"
