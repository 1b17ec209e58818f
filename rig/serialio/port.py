"""The single owner of a board's serial port, and the thread that reads it."""

from __future__ import annotations

import threading
import time
from typing import Protocol

import serial

from rig.errors import BoardUnreachable
from rig.serialio.errors import CaptureFailed

# Seconds one write may wait for the board to take it. Writes are small (a control byte, a 2 kB
# chunk of a deploy): at 115200 baud, 2 kB leaves in 0.2 s.
WRITE_TIMEOUT = 5.0


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
        self._reader = threading.Thread(target=self._read_forever, name=f"serial-{self.name}", daemon=True)
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
        if hasattr(port, "cancel_read"):
            port.cancel_read()
        if self._reader is not None:
            self._reader.join(timeout=5)
        try:
            port.close()
        except (serial.SerialException, OSError) as e:
            raise BoardUnreachable(f"{self.name}: closing {self.url} failed: {e}") from e

    def _read_forever(self) -> None:
        port = self._serial
        assert port is not None
        while not self._stopping.is_set():
            try:
                data = port.read(port.in_waiting or 1)
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


def _lost_detail(error: BaseException | None) -> str:
    return f" (lost: {error})" if error is not None else ""
