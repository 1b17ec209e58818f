"""The process that *is* a virtual board: MicroPython's unix port behind a pty that acts like USB.

Run as ``python -m rig.board.virtual_supervisor --flash DIR``. It prints ``PORT /dev/pts/N`` on
stdout once the port can be opened, then ``BOOT <pid> <reason>`` each time MicroPython starts.
It reads commands on stdin, one per line: ``power-cut`` (kill without cleanup, then boot again),
``power-off``, ``power-on``, ``unplug`` (the port goes away, the board runs on), ``plug`` (it
comes back under a new name: ``PORT <path>`` again) and ``quit``. End of stdin means its owner
died: it kills MicroPython and exits, so a killed test run never leaves a board process behind.
SIGTERM does the same. MicroPython is signalled by this process only, its parent, which alone
knows when its PID is free for reuse; if this process is SIGKILLed, the kernel kills MicroPython
(its parent-death signal). ``GONE <pid>`` says that MicroPython was killed and reaped on the way
out.

Files MicroPython writes into the flash are private to the user (umask 077): with an external
broker its ``config.json`` holds the broker's password.

Two ptys, because a USB port outlives the firmware it talks to:

- the *port* pty, whose slave path is what pyserial and mpremote open; it stays open for the
  supervisor's whole life, across soft resets and power cuts;
- the *console* pty, the controlling terminal of one MicroPython process; a new one per boot.

Bytes are copied between the two masters. MicroPython's unix port ends its process on a soft
reset (Ctrl-D), so the supervisor plays the part of the board's reset logic: it prints the soft
reboot banner, starts MicroPython again, and re-enters the raw REPL if the reset came from there,
which is what mpremote expects of a real board.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import pty
import selectors
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

from rig.board.virtual_port import Outbox, open_port, write_dropping
from rig.processes import SYSTEM_ENV, child_environment
from rig.settings import FLASH, RUN_MAIN

BOOTSTRAP = Path(__file__).parent / "mpy" / "bootstrap.py"
# What MicroPython takes over from the supervisor's environment, besides the system's: the unix
# port's module path. Never the rest: a firmware has no business with the host's secrets.
MICROPYTHON_ENV = ("MICROPYPATH",)

SOFT_REBOOT_BANNER = b"MPY: soft reboot\r\n"
RAW_REPL_BANNER = b"raw REPL; CTRL-B to exit\r\n"
FRIENDLY_BANNER = b'Type "help()" for more information.'
FRIENDLY_PROMPT = b">>> "

# A board whose firmware dies this fast this many times in a row is crash-looping; a real board
# would keep resetting, but here that would only burn CPU, so the supervisor stops and says so.
# Only a crash counts: a soft reset (Ctrl-D, exit 0) is asked for by the host, and a rig that
# deploys and resets a firmware that is refused at once (short backoffs) does so within this
# bound, again and again.
CRASH_LOOP_SECONDS = 0.5
CRASH_LOOP_LIMIT = 5
# What a USB-serial bridge would buffer for a board that is still booting.
HELD_INPUT_LIMIT = 64 * 1024


def _console_termios(fd: int) -> None:
    """Make the console pty byte-transparent but keep ISIG.

    MicroPython switches the terminal to raw mode only while its REPL reads a line; while code
    runs it restores these settings. ISIG must then be on so that Ctrl-C raises
    KeyboardInterrupt in running code, and OPOST must be off or every "\\r\\n" that the raw REPL
    prints arrives as "\\r\\r\\n" and mpremote never sees its markers.
    """
    attrs = termios.tcgetattr(fd)
    attrs[0] &= ~(
        termios.BRKINT
        | termios.ICRNL
        | termios.INLCR
        | termios.IGNCR
        | termios.INPCK
        | termios.ISTRIP
        | termios.IXON
        | termios.IXOFF
    )
    attrs[1] &= ~termios.OPOST
    attrs[2] = (attrs[2] & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
    attrs[3] = termios.ISIG
    attrs[6][termios.VMIN] = 1
    attrs[6][termios.VTIME] = 0
    attrs[6][termios.VINTR] = 3
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


class _Firmware:
    """One MicroPython process on its own console pty, from boot to exit."""

    def __init__(self, micropython: str, flash: Path, run_main: bool, netns: str | None = None) -> None:
        self.master, slave = pty.openpty()
        os.set_blocking(self.master, False)
        _console_termios(slave)
        env = child_environment(
            SYSTEM_ENV, MICROPYTHON_ENV, add={FLASH.env: str(flash), RUN_MAIN.env: "1" if run_main else "0"}
        )
        # MicroPython only turns Ctrl-C into KeyboardInterrupt if the pty is its controlling
        # terminal, hence a new session that then claims the slave as ctty.
        argv = [micropython, "-i", str(BOOTSTRAP)]
        if netns is not None:
            # The board's own network (rig.netns); `ip netns exec` execs, so the PID is the same.
            argv = ["ip", "netns", "exec", netns, *argv]
        self.process = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=str(flash),
            preexec_fn=_claim_controlling_tty,
            close_fds=True,
        )
        os.close(slave)
        self.started = time.monotonic()
        self.pidfd = os.pidfd_open(self.process.pid)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        # A SIGSTOPped process still dies of SIGKILL, so this wait is short.
        self.process.wait(timeout=5)

    def close(self) -> None:
        for fd in (self.master, self.pidfd):
            with contextlib.suppress(OSError):
                os.close(fd)


def _claim_controlling_tty() -> None:
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    # Until MicroPython runs code it has no SIGINT handler, and the default action would kill
    # the board on a Ctrl-C typed during boot. Ignored at exec, SIGINT stays ignored until
    # MicroPython installs its own handler for running code; the CPython wrapper around the
    # unix port also leaves an ignored SIGINT alone.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # MicroPython lives in a session of its own, so nothing else would stop it if the
    # supervisor were SIGKILLed.
    _die_with_parent(signal.SIGKILL)


class Supervisor:
    """Owns the port pty and one firmware process at a time; see the module docstring."""

    def __init__(self, micropython: str, flash: Path, netns: str | None = None) -> None:
        self.micropython = micropython
        self.flash = flash
        self.netns = netns
        self.port_master, self._port_slave, self.port_path = open_port()
        self.outbox = Outbox(self.port_master)
        # Unplugged (the ``unplug`` command): the port is gone, the board runs on, what it
        # prints is lost; ``plug`` brings the port back under a new name, as USB re-enumerates.
        self.plugged = True
        self._next_port: tuple[int, int, str] | None = None
        self.firmware: _Firmware | None = None
        self.powered = True
        self.raw_repl = False
        self._tail = b""
        self._enter_raw_on_prompt = False
        self._booting = False
        self._held_input = bytearray()
        self._quick_deaths = 0
        self.selector = selectors.DefaultSelector()

    # -- lifecycle ---------------------------------------------------------------------------

    def boot(self, reason: str, run_main: bool) -> None:
        self.firmware = _Firmware(self.micropython, self.flash, run_main, self.netns)
        self.selector.register(self.firmware.master, selectors.EVENT_READ, "console")
        self.selector.register(self.firmware.pidfd, selectors.EVENT_READ, "exit")
        self._tail = b""
        self._booting = True
        _report(f"BOOT {self.firmware.process.pid} {reason}")

    def _forget_firmware(self) -> None:
        if self.firmware is None:
            return
        for fd in (self.firmware.master, self.firmware.pidfd):
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(fd)
        self.firmware.close()
        self.firmware = None

    def power_off(self) -> None:
        if self.firmware is not None:
            self.firmware.kill()
            self._forget_firmware()
        self.powered = False
        self.raw_repl = False
        self._enter_raw_on_prompt = False
        self._held_input.clear()

    def power_on(self) -> None:
        self.powered = True
        self._quick_deaths = 0
        self.boot("power-on", run_main=True)

    def _on_firmware_exit(self) -> None:
        assert self.firmware is not None
        fw = self.firmware
        self._drain_console(fw.master)
        code = fw.process.wait()
        lived = time.monotonic() - fw.started
        self._forget_firmware()
        crashed = code != 0  # the unix port exits 0 on a soft reset (see below)
        self._quick_deaths = self._quick_deaths + 1 if crashed and lived < CRASH_LOOP_SECONDS else 0
        if self._quick_deaths >= CRASH_LOOP_LIMIT:
            _report(f"DEAD micropython exited {self._quick_deaths} times within {CRASH_LOOP_SECONDS}s")
            self.powered = False
            return
        # The unix port exits 0 on Ctrl-D (a soft reset); anything else is a crash, which on a
        # real board ends in a watchdog or panic reset. Either way the board comes back.
        self._to_port(SOFT_REBOOT_BANNER)
        if self.raw_repl:
            # After a soft reset from the raw REPL a board runs boot.py, skips main.py and
            # returns to the raw REPL. The unix port cannot start there, so type Ctrl-A for it
            # once its friendly prompt shows that it is reading input.
            self._enter_raw_on_prompt = True
            self.boot(f"soft-reset exit={code} raw-repl", run_main=False)
        else:
            self.boot(f"soft-reset exit={code}", run_main=True)

    # -- byte pumps --------------------------------------------------------------------------

    def _drain_console(self, fd: int) -> None:
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                return
            if not data:
                return
            self._from_console(data)

    def _from_console(self, data: bytes) -> None:
        window = self._tail + data
        if self._booting and self.firmware is not None and not self._enter_raw_on_prompt:
            self._ready()
        if self._enter_raw_on_prompt:
            if FRIENDLY_PROMPT in window and self.firmware is not None:
                self._enter_raw_on_prompt = False
                os.write(self.firmware.master, b"\x01")
                self._ready()
            # The friendly banner of this hidden restart is not what a board shows here.
            self._to_port(data.replace(FRIENDLY_PROMPT, b""))
        else:
            self._to_port(data)
        # The REPL announces its own mode changes; following its output rather than the input
        # keeps us right even when control bytes travel inside pasted data.
        raw_at = window.rfind(RAW_REPL_BANNER)
        friendly_at = window.rfind(FRIENDLY_BANNER)
        if raw_at != friendly_at:
            self.raw_repl = raw_at > friendly_at
        self._tail = window[-64:]

    def _ready(self) -> None:
        """First words of this boot: MicroPython is up and reads its console."""
        assert self.firmware is not None
        self._booting = False
        if self._held_input:
            write_dropping(self.firmware.master, bytes(self._held_input))
            self._held_input.clear()
        _report(f"READY {self.firmware.process.pid}")

    def _from_port(self) -> None:
        try:
            data = os.read(self.port_master, 65536)
        except OSError:
            return
        if not self.powered:
            return  # an unpowered board drops what it is sent, as a real one does
        if self.firmware is None or self._booting:
            # A board's UART buffers what arrives while it resets; MicroPython would lose it
            # (or die of a Ctrl-C) before it reads its console, so hold it until then.
            self._held_input += data[: HELD_INPUT_LIMIT - len(self._held_input)]
            return
        write_dropping(self.firmware.master, data)

    def _to_port(self, data: bytes) -> None:
        if not self.plugged:
            return  # nobody can hear it: a board's UART transmits into the void
        was_idle = not self.outbox.pending
        self.outbox.push(data)
        if was_idle and self.outbox.pending:
            self.selector.modify(self.port_master, selectors.EVENT_READ | selectors.EVENT_WRITE, "port")

    def _port_writable(self) -> None:
        self.outbox.flush()
        if not self.outbox.pending:
            self.selector.modify(self.port_master, selectors.EVENT_READ, "port")

    # -- main loop ---------------------------------------------------------------------------

    def run(self) -> int:
        self.selector.register(self.port_master, selectors.EVENT_READ, "port")
        self.selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "control")
        _report(f"PORT {self.port_path}")
        self.boot("power-on", run_main=True)
        try:
            while True:
                for key, events in self.selector.select():
                    if key.data == "port":
                        if events & selectors.EVENT_WRITE:
                            self._port_writable()
                        if events & selectors.EVENT_READ:
                            self._from_port()
                    elif key.data == "console" and self.firmware is not None:
                        try:
                            data = os.read(self.firmware.master, 65536)
                        except OSError:
                            data = b""
                        if data:
                            self._from_console(data)
                    elif key.data == "exit":
                        self._on_firmware_exit()
                    elif key.data == "control" and not self._control():
                        return 0
        finally:
            if self.firmware is not None:
                pid = self.firmware.process.pid
                self.firmware.kill()
                self._forget_firmware()
                with contextlib.suppress(OSError):  # an owner that died reads no more
                    _report(f"GONE {pid}")

    def unplug(self) -> None:
        """The port goes away, as a USB device pulled out: its users get an error."""
        if not self.plugged:
            return
        # Made now, before the old one is freed, so that the port comes back under another name.
        self._next_port = open_port()
        self.selector.unregister(self.port_master)
        for fd in (self.port_master, self._port_slave):
            os.close(fd)
        self.plugged = False

    def plug(self) -> None:
        if self.plugged:
            return
        assert self._next_port is not None
        self.port_master, self._port_slave, self.port_path = self._next_port
        self._next_port = None
        self.outbox = Outbox(self.port_master)
        self.selector.register(self.port_master, selectors.EVENT_READ, "port")
        self.plugged = True
        _report(f"PORT {self.port_path}")

    def _control(self) -> bool:
        line = sys.stdin.readline()
        command = line.strip()
        if not line or command == "quit":
            return False
        if command == "power-cut":
            self.power_off()
            self.power_on()
        elif command == "power-off":
            self.power_off()
        elif command == "power-on":
            if not self.powered:
                self.power_on()
        elif command == "unplug":
            self.unplug()
        elif command == "plug":
            self.plug()
        else:
            _report(f"ERROR unknown command {command!r}")
            return True
        _report(f"DONE {command}")
        return True


def _report(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flash", required=True, type=Path, help="directory that is the board's /")
    parser.add_argument("--micropython", default="micropython", help="the unix port executable")
    parser.add_argument("--netns", default=None, help="run MicroPython in this network namespace")
    args = parser.parse_args(argv)
    # Die with the owner even if it is SIGKILLed and never closes our stdin.
    _die_with_parent(signal.SIGTERM)
    # What MicroPython writes to the flash (config.json with the broker's password) is the
    # user's alone, whatever the umask of the shell that started the rig.
    os.umask(0o077)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    return Supervisor(args.micropython, args.flash.resolve(), args.netns).run()


def _die_with_parent(sig: signal.Signals) -> None:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, int(sig))
    except (OSError, AttributeError):
        pass  # not Linux: end-of-stdin still stops us


if __name__ == "__main__":
    sys.exit(main())
