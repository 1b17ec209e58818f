"""The single owner of a board's serial port, and the thread that reads it."""

from __future__ import annotations

import contextlib
import errno
import os
import select
import threading
import time
from collections.abc import Callable
from typing import Protocol

import serial
from serial import rfc2217

from rig.errors import BoardUnreachable
from rig.serialio.errors import CaptureFailed

# Seconds one write may wait for the board to take it. Writes are small (a control byte, a 2 kB
# chunk of a deploy): at 115200 baud, 2 kB leaves in 0.2 s.
WRITE_TIMEOUT = 5.0
# The most one read of a local port takes: more than a pty or a USB-serial driver ever holds.
READ_SIZE = 64 * 1024
# A read this long suggests a board that talks faster than the reader reads (a pty hands out
# at most 4 KiB a read): then the reader reads on, without waiting, up to READ_SIZE, and hands
# the sinks one chunk, so that the capture splits, logs and wakes its waiters once for it.
GATHER_FROM = 2048
# What pyserial's own read raises for these, so that a lost port reads the same either way.
_RETRY_ERRNOS = (errno.EAGAIN, errno.EALREADY, errno.EWOULDBLOCK, errno.EINPROGRESS, errno.EINTR)
_NO_DATA = (
    "device reports readiness to read but returned no data (device disconnected or multiple access on port?)"
)


class ChunkSink(Protocol):
    """Receives every chunk the board sends, in order, on the reader thread.

    A sink must be quick and should not raise: it stores or forwards, it never parses at length.
    One that raises anyway (a full disk under its log file) is detached and told why through
    ``sink_failed``; the reader goes on feeding the other sinks.
    """

    def feed(self, t: float, data: bytes) -> None: ...

    def port_lost(self, t: float, error: BaseException) -> None: ...

    def sink_failed(self, failure: CaptureFailed) -> None:
        """This sink raised and is detached: it must make every later wait on it raise
        ``failure``. Called once, on the reader thread; must not raise."""


class BoardPort:
    """A board's serial port, opened once and read by one thread.

    Lifecycle: ``open()`` opens the port by any pyserial URL (``/dev/ttyACM0``, ``/dev/pts/3``,
    ``rfc2217://host:port``, ``socket://...``) and starts the reader; ``close()`` stops the
    reader and closes the port, raising if the port could not be closed. Every byte read is
    handed, with its wall-clock arrival time, to every attached sink; bytes that arrive while no
    sink is attached are still counted in ``bytes_read``.

    Nothing else may open the port while this object holds it: mpremote reaches the board
    through a sink of this port (see ``rig.serialio.tap``), so the capture never misses a byte.

    The reader is our own rather than pyserial's ``threaded.ReaderThread`` because it hands one
    read to several sinks (capture, tap) and must survive a port that re-enumerates; like
    pyserial's, it survives a sink that raises: that sink is detached, recorded in
    ``sink_failures`` and told through ``sink_failed``, and the other sinks go on being fed.
    """

    def __init__(self, url: str, *, name: str, baudrate: int = 115200) -> None:
        self.url = url
        self.name = name
        self.baudrate = baudrate
        self.bytes_read = 0
        self.lost: BaseException | None = None
        self.sink_failures: list[CaptureFailed] = []
        self._serial: serial.Serial | None = None
        self._sinks: list[ChunkSink] = []
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lost = threading.Event()
        # The write end wakes a reader blocked on a local port's fd (see ``_local_reader``).
        self._wake: tuple[int, int] | None = None

    @property
    def is_open(self) -> bool:
        return self._serial is not None and self.lost is None

    def open(self) -> None:
        try:
            port = serial.serial_for_url(self.url, do_not_open=True, baudrate=self.baudrate, exclusive=True)
            # Block in read() until data arrives; close() wakes the reader with cancel_read().
            # Handlers without cancel_read get a short timeout so the reader can still stop.
            port.timeout = None if hasattr(port, "cancel_read") else 0.2
            # A board that stops reading (wedged, a USB endpoint that stalls) must not block a
            # write for ever: past this, write() raises and the caller's escalation takes over.
            # pyserial's own RFC2217 client refuses the setting (NotImplementedError at open);
            # its socket is made with a 5 s timeout, which bounds each write the same way.
            if not _refuses_write_timeout(port):
                port.write_timeout = WRITE_TIMEOUT
            # An ESP32's auto-reset circuit resets the chip on DTR/RTS edges; keep both lines
            # released before open so that merely opening the port does not reset the board.
            port.dtr = False
            port.rts = False
            port.open()
        except (serial.SerialException, OSError, ValueError) as e:
            raise BoardUnreachable(f"{self.name}: cannot open serial port {self.url}: {e}") from e
        self._serial = port
        self._stopping.clear()
        read = self._local_reader(port) if isinstance(port, _LOCAL) else self._pyserial_reader(port)
        self._reader = threading.Thread(
            target=self._read_forever, args=(read,), name=f"serial-{self.name}", daemon=True
        )
        self._reader.start()

    def add_sink(self, sink: ChunkSink) -> None:
        with self._lock:
            self._sinks.append(sink)

    def remove_sink(self, sink: ChunkSink) -> None:
        with self._lock:
            if sink in self._sinks:
                self._sinks.remove(sink)

    def wait_lost(self, timeout: float) -> bool:
        """True once the device has gone (unplugged, or dropped off USB by a reset)."""
        return self._lost.wait(timeout)

    def write(self, data: bytes) -> None:
        if self._serial is None or self.lost is not None:
            raise BoardUnreachable(f"{self.name}: port {self.url} is not open" + _lost_detail(self.lost))
        try:
            self._serial.write(data)
            self._serial.flush()
        except (serial.SerialException, OSError) as e:
            raise BoardUnreachable(f"{self.name}: write to {self.url} failed: {e}") from e

    def set_modem_lines(self, *, dtr: bool, rts: bool) -> None:
        """Drive DTR and RTS (True = asserted). On an ESP32 they are wired to EN and IO0."""
        if self._serial is None:
            raise BoardUnreachable(f"{self.name}: port {self.url} is not open")
        try:
            self._serial.dtr = dtr
            self._serial.rts = rts
        except (serial.SerialException, OSError) as e:
            raise BoardUnreachable(f"{self.name}: cannot set DTR/RTS on {self.url}: {e}") from e

    def close(self) -> None:
        port, self._serial = self._serial, None
        if port is None:
            return
        self._stopping.set()
        if self._wake is not None:
            os.write(self._wake[1], b"x")
        elif hasattr(port, "cancel_read"):
            port.cancel_read()
        if self._reader is not None:
            self._reader.join(timeout=5)
        if self._wake is not None:
            for fd in self._wake:
                os.close(fd)
            self._wake = None
        try:
            port.close()
        except (serial.SerialException, OSError) as e:
            raise BoardUnreachable(f"{self.name}: closing {self.url} failed: {e}") from e

    def _local_reader(self, port: serial.Serial) -> Callable[[], bytes]:
        """Reads of a local port (a tty, a pty) straight from its fd: one ``read`` syscall per
        chunk while the board talks (a few, gathered into one chunk, while it floods), a
        ``select`` only when it is silent. pyserial's ``read`` costs an ioctl, a select and a
        one-byte read besides, per chunk, which at a flooding board's rate is a good part of a
        core. Errors are raised as pyserial raises them, so a lost port reads the same."""
        fd = port.fileno()
        wake_r, wake_w = os.pipe()
        self._wake = (wake_r, wake_w)

        def read() -> bytes:
            said_ready = False
            while True:
                try:
                    data = os.read(fd, READ_SIZE)
                except BlockingIOError:
                    data = b""
                except OSError as e:
                    if e.errno in _RETRY_ERRNOS:
                        continue
                    raise serial.SerialException(f"read failed: {e}") from e
                if data:
                    return _gather(fd, data) if len(data) >= GATHER_FROM else data
                if said_ready:
                    # Readable, yet nothing to read: the device is gone (pyserial's own test).
                    raise serial.SerialException(_NO_DATA)
                # pyserial sets VMIN=0 on a non-blocking fd, so an empty read means "nothing
                # yet": wait for the board, or for close() to wake us.
                ready, _, _ = select.select([fd, wake_r], [], [])
                if wake_r in ready:
                    return b""
                said_ready = True

        return read

    def _pyserial_reader(self, port: serial.Serial) -> Callable[[], bytes]:
        """Reads through pyserial, for every other URL (rfc2217://, socket://, the rig's own)."""

        def read() -> bytes:
            data: bytes = port.read(port.in_waiting or 1)
            if len(data) == 1:
                # The one byte a blocking read waits for is seldom alone: take what came with
                # it, so that a chunk is not fed as a byte and then the rest.
                more = port.in_waiting
                if more:
                    data += port.read(more)
            return data

        return read

    def _read_forever(self, read: Callable[[], bytes]) -> None:
        while not self._stopping.is_set():
            try:
                data = read()
            except (serial.SerialException, OSError, TypeError) as e:
                # TypeError: pyserial's posix read() can fail this way when the fd is closed
                # underneath it during shutdown.
                if self._stopping.is_set():
                    return
                self.lost = e
                self._lost.set()
                t = time.time()
                for sink in self._attached():
                    try:
                        sink.port_lost(t, e)
                    except Exception as raised:  # a sink's bug must not hide the loss from the others
                        self._sink_raised(sink, raised)
                return
            if not data:
                continue
            t = time.time()
            self.bytes_read += len(data)
            for sink in self._attached():
                try:
                    sink.feed(t, data)
                except Exception as raised:  # any sink bug or I/O error: the reader lives on
                    self._sink_raised(sink, raised)

    def _attached(self) -> list[ChunkSink]:
        with self._lock:
            return list(self._sinks)

    def _sink_raised(self, sink: ChunkSink, error: Exception) -> None:
        """Detach ``sink`` and tell it why, so that its waiters fail at once naming the cause
        instead of timing out; the other sinks go on being fed."""
        failure = CaptureFailed(self.name, repr(sink), error)
        self.remove_sink(sink)
        self.sink_failures.append(failure)
        try:
            sink.sink_failed(failure)
        except Exception as again:  # the sink cannot even take the news: keep both on record
            self.sink_failures.append(CaptureFailed(self.name, repr(sink), again))


def _gather(fd: int, first: bytes) -> bytes:
    """``first`` and whatever else the fd has right now, up to ``READ_SIZE``; never waits. An
    error is left for the next read to raise, after what was read is fed."""
    parts = [first]
    size = len(first)
    while size < READ_SIZE:
        try:
            more = os.read(fd, READ_SIZE - size)
        except OSError:
            break
        if not more:
            break
        parts.append(more)
        size += len(more)
    return b"".join(parts) if len(parts) > 1 else first


# Ports whose fd the reader may read directly: pyserial's POSIX serial port and its variants.
_LOCAL: tuple[type, ...] = ()
with contextlib.suppress(ImportError):
    from serial.serialposix import Serial as _PosixSerial

    _LOCAL = (_PosixSerial,)


def _refuses_write_timeout(port: object) -> bool:
    """pyserial's own RFC2217 client (not a subclass that accepts the setting)."""
    return type(port) is rfc2217.Serial


def _lost_detail(error: BaseException | None) -> str:
    return f" (lost: {error})" if error is not None else ""
