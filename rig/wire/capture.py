"""One capture of a virtual board's link for a whole session, by ``tcpdump``.

Why tcpdump (Debian's package): it is the capture tool every network engineer knows, writes
the libpcap files Wireshark opens, and with ``-U`` writes each packet as it is captured, so
the file is whole up to the last packet even when pytest, or tcpdump itself, is killed;
``--immediate-mode`` hands each packet over at once (libpcap otherwise waits up to a second to
fill a buffer, longer than many tests last). A
capture in Python (scapy's sniffer) would run in the rig's own process, where the GIL and a busy
test could drop packets, and would need a thread per board to own.

It listens on the host end of the board's veth pair (``rig.netns.BoardNetwork.host_if``): every
packet the board sends or receives passes there, and nothing else does. Nothing is filtered
at capture time (the link carries only the board's traffic); the decoder keeps the broker's
ports. On the host's interface toward a board on Wi-Fi (``rig.wire.link``), which carries
other traffic too, a capture filter keeps the broker's ports and the board's address.

Lifecycle: ``start()`` launches tcpdump (its PID is the rig's, ``rig.processes.ChildProcess``,
killed by the kernel if the rig dies) and waits, bounded, until it says it is listening;
``poll()`` decodes what was written since the last call; ``stop()`` ends it by PID (SIGTERM:
tcpdump flushes and exits) and removes the raw file, which holds the run's secrets in the clear;
a run killed before ``stop()`` leaves it, and the next capture removes it (``remove_stale``).
When the board's network is removed and made again (a board stopped and started), tcpdump
exits with its interface; ``ensure_running()`` starts a new one on a new file, and every file
is read in turn.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from rig.deadline import Deadline
from rig.errors import InfrastructureError
from rig.processes import SYSTEM_ENV, ChildProcess, child_environment, is_running
from rig.wire.pcap import Frame, read_from
from rig.wire.records import WireRecord

TCPDUMP = "tcpdump"
# tcpdump opens its interface and says "listening on" at once; seconds mean it is stuck.
START_S = 10.0
STOP_S = 5.0
# Whole packets: MQTT messages are small, and a cut one could not be decoded.
SNAPLEN = 65535
# tcpdump's ring in KiB (-B). Its default, 2 MiB, holds only about 30 frames at this snaplen
# (each slot is sized for the largest frame); a capture starved of the CPU for some tens of
# milliseconds on a loaded machine then lost frames (seen: 70 bytes of a board's stream, its
# DISCONNECT after them). 16 MiB holds about 250, and costs 16 MiB per board.
BUFFER_KIB = 16384
# The raw capture's folder names the PID of the rig that owns it: a folder whose owner is gone
# (a pytest killed with SIGKILL never reaches ``stop()``) is removed by the next capture, as
# ``rig.netns.remove_stale`` does with namespaces. It holds the board's password in the clear.
PREFIX = "rig-wire-"
_FOLDER = re.compile(rf"^{PREFIX}(\d+)-")


class CaptureError(InfrastructureError):
    """tcpdump could not be started, or stopped, on the board's link."""


def unavailable() -> str | None:
    """Why no capture can be made on this machine, or None."""
    if shutil.which(TCPDUMP) is None:
        return "no tcpdump on this machine (Debian: apt-get install tcpdump)"
    if importlib.util.find_spec("scapy") is None:
        return "scapy, which decodes the capture, is not installed (pip install 'micropython-mqtt-rig[wire]')"
    return None


class WireCapture:
    """The capture of one board's link; see the module docstring for the lifecycle."""

    def __init__(
        self,
        interface: str,
        board_address: str | None,
        ports: dict[int, bool],
        capture_filter: Sequence[str] = (),
    ) -> None:
        self.interface = interface
        self.board_address = board_address
        self.ports = ports
        # tcpdump's filter expression (pcap-filter(7)), as its last arguments; empty: everything.
        self.capture_filter = list(capture_filter)
        remove_stale()
        # 0700: the raw capture has secrets.
        self._folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))
        self.files: list[Path] = []
        self._process: ChildProcess | None = None
        # Imported here: scapy is the "wire" extra's, and the plugin loads this module always.
        from rig.wire.decode import StreamDecoder

        self._decoder = StreamDecoder(board_address, ports)
        self.records: list[WireRecord] = []
        # Per file, the byte offset up to which its frames were decoded.
        self._read: dict[Path, int] = {}
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self, timeout: float = START_S) -> None:
        path = self._folder / f"session-{len(self.files)}.pcap"
        argv = [
            TCPDUMP,
            "-i",
            self.interface,
            "--immediate-mode",
            "-U",
            "-n",
            "-s",
            str(SNAPLEN),
            "-B",
            str(BUFFER_KIB),
            "-w",
            str(path),
            *self.capture_filter,
        ]
        try:
            process = ChildProcess.spawn(
                argv,
                name=f"tcpdump on {self.interface}",
                stderr=subprocess.PIPE,
                env=child_environment(SYSTEM_ENV),
                text=True,
            )
        except OSError as e:
            raise CaptureError(f"{' '.join(argv)}: {e}") from e
        said: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_read_lines, args=(process, said), name="tcpdump-stderr", daemon=True).start()
        deadline = Deadline(timeout)
        seen: list[str] = []
        while not deadline.expired:
            try:
                line = said.get(timeout=deadline.remaining_or(0.1))
            except queue.Empty:
                continue
            seen.append(line)
            if "listening on" in line:
                self._process = process
                self.files.append(path)
                return
            if line == "":
                break
        process.stop(STOP_S)
        raise CaptureError(
            f"tcpdump did not start listening on {self.interface} within {timeout:.0f}s; "
            f"it said: {[s for s in seen if s][-5:]}"
        )

    def ensure_running(self) -> None:
        """Start tcpdump again if it ended (its interface went away and came back)."""
        if self._process is None or self._process.poll() is not None:
            self.start()

    def poll(self) -> list[WireRecord]:
        """Decode what tcpdump wrote since the last call; returns the new records (also kept
        in ``records``)."""
        with self._lock:
            new: list[WireRecord] = []
            for path in self.files:
                frames, self._read[path] = read_from(path, self._read.get(path, 0))
                new.extend(self._decoder.feed(frames))
            self.records.extend(new)
            return new

    def mark(self) -> dict[Path, int]:
        """Where each file's whole records end now: a test's share starts there
        (``frames_since``). Decodes what is new first, so records before it are the past's."""
        self.poll()
        with self._lock:
            return dict(self._read)

    def frames_since(self, mark: dict[Path, int]) -> Iterator[Frame]:
        """The frames written after ``mark`` (a file started since has all of its), in order."""
        for path in list(self.files):
            frames, _ = read_from(path, mark.get(path, 0))
            yield from frames

    def stop(self, timeout: float = STOP_S) -> None:
        """End tcpdump by PID and remove the raw files; raises ``ProcessWouldNotStop`` if it
        would not die (the files are removed all the same)."""
        process, self._process = self._process, None
        try:
            if process is not None:
                process.stop(timeout)
        finally:
            shutil.rmtree(self._folder, ignore_errors=True)


def remove_stale(root: Path | None = None) -> list[Path]:
    """Remove the raw-capture folders in ``root`` (the temporary folder) whose owning rig
    process is gone; return them. A folder of a live run, even another one's, is left alone."""
    removed = []
    for folder in Path(root or tempfile.gettempdir()).glob(f"{PREFIX}*"):
        match = _FOLDER.match(folder.name)
        if match and folder.is_dir() and not is_running(int(match.group(1))):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _read_lines(process: ChildProcess, said: queue.Queue[str]) -> None:
    stream = process.popen.stderr
    if stream is None:
        return
    for line in stream:
        said.put(line.rstrip("\n"))
    said.put("")
