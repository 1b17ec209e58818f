"""RFC2217: serial capture and deploy through ser2net, against the local pty in the same run.

A board on another host is reached as a labgrid place exports it: ser2net (Debian's package,
4.3.x) in front of its serial port, and the rig's ``BoardPort`` on
``rfc2217://HOST:PORT?ign_set_control``. Here ser2net runs on 127.0.0.1 in front of a virtual
board's pty, and a second virtual board with the same flash is opened locally: the baseline.

- Capture: the burst of ``bench_serial`` (the board prints it and its sha256), captured by
  ``BoardPort`` + ``SerialCapture`` with a session log; every byte checked. The two boards take
  turns, so that they do not share the CPU.
- Deploy: ``sync`` of the firmware tree as ``bench_deploy`` times it (``reset=False``), cold
  (flash wiped on the host side) and unchanged, on a rig ``Board`` whose port is the RFC2217
  URL, against the same on a local ``Board``.
- Open: ``BoardPort.open()`` + ``close()`` of the RFC2217 URL (the rig opens it once per run).

ser2net is stopped by PID (``ChildProcess``). Without a ``ser2net`` binary the module is
skipped, saying so.
"""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_serial import flash_with_burst, rig_burst
from benchmarks.runner import BenchContext, Figure, ModuleSkipped
from rig.deadline import Deadline
from rig.processes import ChildProcess

ORDER = 24
BUDGET_S = 60

HOST = "127.0.0.1"
START_BOUND = 10.0
# ser2net 4.x: the connection labgrid's exporter starts for a serial port (telnet with RFC2217
# as server, no UUCP lock, ``local``: no modem-control lines), bound to loopback here.
CONFIG = """\
%YAML 1.1
---
connection: &board
  accepter: telnet(rfc2217,mode=server),tcp,{host},{port}
  connector: serialdev(nouucplock=true),{device},115200n81,local
  options:
    max-connections: 10
"""


class Ser2net:
    """ser2net in the foreground on ``HOST``, in front of ``device``; ``url`` is what the rig opens.

    Lifecycle: ``start()`` runs it (a ``ChildProcess``) and waits, bounded, until its port
    accepts connections; ``stop()`` ends it by PID.
    """

    def __init__(self, binary: str, device: str, workdir: Path) -> None:
        self.binary = binary
        self.device = device
        self.workdir = workdir
        self.port = 0
        self.child: ChildProcess | None = None

    @property
    def url(self) -> str:
        return f"rfc2217://{HOST}:{self.port}?ign_set_control"

    @property
    def log_path(self) -> Path:
        return self.workdir / "ser2net.log"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with socket.socket() as probe:  # a port the kernel says is free; ser2net binds it next
            probe.bind((HOST, 0))
            self.port = probe.getsockname()[1]
        config = self.workdir / "ser2net.yaml"
        config.write_text(CONFIG.format(host=HOST, port=self.port, device=self.device))
        # -n: stay in the foreground (our child, stopped by PID); -d: log to stderr, not syslog;
        # -P: its pid file in the work dir, not in /run.
        self.child = ChildProcess.spawn(
            [self.binary, "-n", "-d", "-c", str(config), "-P", str(self.workdir / "ser2net.pid")],
            name="ser2net",
            log_path=self.log_path,
        )
        deadline = Deadline(START_BOUND)
        while not _listening(self.port):
            code = self.child.poll()
            if code is not None or deadline.expired:
                log = self.log_path.read_text(errors="replace")[-2000:]
                why = f"exited with {code}" if code is not None else f"not listening within {START_BOUND:g}s"
                raise RuntimeError(f"ser2net on {HOST}:{self.port} {why}; log {self.log_path}:\n{log}")
            time.sleep(0.05)

    def stop(self) -> None:
        child, self.child = self.child, None
        if child is not None:
            child.stop(5.0)


def _listening(port: int) -> bool:
    """Whether ser2net listens on ``port``: a connect that ser2net answers, then closed at once."""
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


class UrlTransport:
    """A started VirtualBoard reached through another URL (here ser2net's): what ``Board`` opens."""

    kind = "virtual"
    reenumerates = False

    def __init__(self, vb: Any, url: str) -> None:
        self.vb = vb
        self.name = vb.name
        self.url = url

    @property
    def port_url(self) -> str:
        return self.url

    def start(self) -> None:
        pass  # the context started the board, and ser2net

    def hard_reset(self, port: Any) -> None:
        self.vb.power_cycle()

    def rediscover(self, timeout: float) -> str:
        return self.url

    def stop(self) -> None:
        pass  # the context stops the board and ser2net

    def process_ids(self) -> list[int]:
        return list(self.vb.process_ids())


def run(ctx: BenchContext) -> list[Figure]:
    from rig.board.board import Board
    from rig.deploy.step import plan_firmware
    from rig.deploy.sync import sync
    from rig.firmware_config import FirmwareConfig
    from rig.serialio.port import BoardPort

    binary = shutil.which("ser2net")
    if binary is None:
        raise ModuleSkipped("ser2net is not installed (Debian: apt-get install ser2net)")
    n = ctx.n(1 if ctx.quick else 3)
    blocks = 16 if ctx.quick else 256  # x 4 KiB: 64 KiB or 1 MiB
    timeout = 60.0

    # -- capture -----------------------------------------------------------------------------
    remote_vb = ctx.virtual_board("remote", flash_with_burst(ctx.tmp / "flash-remote"))
    ser2net = Ser2net(binary, remote_vb.port_url, ctx.tmp / "ser2net")
    ctx.on_close(ser2net.stop, ser2net)
    ser2net.start()
    remote = Board(UrlTransport(remote_vb, ser2net.url), session_log=ctx.tmp / "remote-serial.log")
    ctx.on_close(remote.close, remote)
    remote.connect()
    local = ctx.board(
        "local", flash_dir=flash_with_burst(ctx.tmp / "flash-local"), session_log=ctx.tmp / "local-serial.log"
    )
    time.sleep(0.3)  # both boards reach their ``readline``

    remote_tp: list[float] = []
    local_tp: list[float] = []
    size = 0
    for _ in range(n):
        s, _, size = rig_burst(remote, blocks, timeout)
        remote_tp.append(size / 1e6 / s)
        s, _, _ = rig_burst(local, blocks, timeout)
        local_tp.append(size / 1e6 / s)
    ctx.log(f"burst {size} bytes: rfc2217 {remote_tp} MB/s, local {local_tp} MB/s")
    ctx.release(remote)
    ctx.release(local)
    ctx.release(remote_vb)

    # -- open ------------------------------------------------------------------------------
    open_vb = ctx.virtual_board("open")
    opener = Ser2net(binary, open_vb.port_url, ctx.tmp / "ser2net-open")
    ctx.on_close(opener.stop, opener)
    opener.start()
    open_s: list[float] = []
    local_open_s: list[float] = []
    for _ in range(n):
        for url, into in ((opener.url, open_s), (open_vb.port_url, local_open_s)):
            port = BoardPort(url, name="open")
            t0 = time.perf_counter()
            port.open()
            port.close()
            into.append(time.perf_counter() - t0)
    ctx.release(opener)

    # -- deploy ----------------------------------------------------------------------------
    config = FirmwareConfig(
        broker_host="127.0.0.1", broker_port=1883, client_id="bench", topic_prefix="rig/bench"
    )
    firmware = ctx.root / "firmware"
    plan = plan_firmware(firmware, config)  # warms the dependency cache if it is cold
    remote_flash = ctx.tmp / "flash-deploy-remote"
    local_flash = ctx.tmp / "flash-deploy-local"
    ctx.release(open_vb)  # a fresh pair of boards with empty flash for the deploys
    dvb_remote = ctx.virtual_board("deploy-remote", remote_flash)
    dser2net = Ser2net(binary, dvb_remote.port_url, ctx.tmp / "ser2net-deploy")
    ctx.on_close(dser2net.stop, dser2net)
    dser2net.start()
    deploy_remote = Board(UrlTransport(dvb_remote, dser2net.url))
    ctx.on_close(deploy_remote.close, deploy_remote)
    deploy_remote.connect()
    deploy_local = ctx.board("deploy-local", flash_dir=local_flash)

    def timed_sync(board: Any) -> float:
        t0 = time.perf_counter()
        sync(board, plan, reset=False)
        return time.perf_counter() - t0

    cold: dict[str, list[float]] = {"remote": [], "local": []}
    nochange: dict[str, list[float]] = {"remote": [], "local": []}
    for _ in range(n):
        _wipe(remote_flash)
        _wipe(local_flash)
        cold["remote"].append(timed_sync(deploy_remote))
        cold["local"].append(timed_sync(deploy_local))
    for _ in range(n):
        nochange["remote"].append(timed_sync(deploy_remote))
        nochange["local"].append(timed_sync(deploy_local))
    for path in (p for p in local_flash.rglob("*") if p.is_file()):
        rel = path.relative_to(local_flash)
        if (remote_flash / rel).read_bytes() != path.read_bytes():
            raise RuntimeError(f"the deploy over RFC2217 left a different {rel} on the board")

    return [
        Figure.from_samples(
            "rfc2217.throughput",
            remote_tp,
            "MB/s",
            baseline_name="local pty",
            baseline=local_tp,
            notes=f"{size} bytes per burst through ser2net {_version(binary)} on {HOST}, every byte "
            "verified by the board's sha256; BoardPort + SerialCapture with a session log on both sides",
        ),
        Figure.from_samples(
            "rfc2217.open_close",
            open_s,
            "s",
            baseline_name="local pty",
            baseline=local_open_s,
            notes="BoardPort.open() + close() of the RFC2217 URL: why the rig opens it once per run",
        ),
        Figure.from_samples(
            "rfc2217.deploy.cold",
            cold["remote"],
            "s",
            baseline_name="local pty",
            baseline=cold["local"],
            notes=f"sync of the firmware tree ({len(plan.items)} files) to an empty flash, reset=False",
        ),
        Figure.from_samples(
            "rfc2217.deploy.nochange",
            nochange["remote"],
            "s",
            baseline_name="local pty",
            baseline=nochange["local"],
            notes="the same tree again: one hash round trip",
        ),
    ]


def _wipe(flash: Path) -> None:
    for entry in flash.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _version(binary: str) -> str:
    import subprocess

    try:
        out = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return "(version unknown)"
    return out.split()[-1] if out.split() else "(version unknown)"
