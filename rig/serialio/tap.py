"""Lets mpremote talk to a board through the port the rig already holds.

mpremote opens its device with ``serial.serial_for_url``, so the rig registers a pyserial URL
handler, ``rigtap://<tap id>``. A ``Tap`` is a sink of a ``BoardPort``: it queues what the
board sends for mpremote to read, and passes mpremote's writes to the port. The capture goes on
seeing every byte, REPL traffic included, and nothing else ever opens the device.

mpremote's own timeouts cannot bound a wait on a board that keeps talking: ``read_until``
restarts its timeout with every byte and checks ``timeout_overall`` only when no byte came, and
``enter_raw_repl`` drains input for as long as there is any. So the rig bounds them here: past
the deadline its owner set, the tap refuses every read (``TapExpired``), whatever the board
sends, and mpremote's loops end with that error.
"""

from __future__ import annotations

import itertools
import threading

import serial

from rig.deadline import Deadline
from rig.errors import BoardUnreachable
from rig.serialio.errors import CaptureFailed
from rig.serialio.port import BoardPort

SCHEME = "rigtap"
# What mpremote may leave unread before the tap gives up on it. The raw REPL answers in a few
# bytes; only a board that floods its console outruns mpremote's byte-by-byte reads by this much.
BUFFER_LIMIT = 4 * 1024 * 1024

_taps: dict[str, Tap] = {}
_ids = itertools.count(1)
_registry_lock = threading.Lock()


class TapExpired(BoardUnreachable):
    """A read through the tap past the deadline its owner set: what was ``awaited``, the bound,
    and how many bytes the board sent meanwhile (``received``), which tells a flood from a
    silence. Not an ``OSError``, so that no ``except OSError`` inside mpremote swallows it."""

    def __init__(self, port: str, awaited: str, timeout: float | None, received: int) -> None:
        self.port = port
        self.awaited = awaited
        self.timeout = timeout
        self.received = received
        bound = f"{timeout:.1f}s" if timeout is not None else "its deadline"
        super().__init__(
            f"{port}: {awaited} not done within {bound}; the board sent {received} bytes meanwhile"
        )


class TapOverflow(BoardUnreachable):
    """The board sent more than ``limit`` bytes that mpremote did not read: it floods."""

    def __init__(self, port: str, awaited: str, limit: int) -> None:
        self.port = port
        self.awaited = awaited
        self.limit = limit
        super().__init__(
            f"{port}: the board sent more than {limit} bytes that were not read while awaiting "
            f"{awaited}: it floods its console"
        )


class Tap:
    """A byte queue between a ``BoardPort`` and one pyserial client.

    Lifecycle: created open and attached to the port; ``url`` is what to hand to mpremote;
    ``close()`` detaches it. ``max_block`` bounds every blocking read, because mpremote reads
    with no timeout at all in places and a wedged board must fail the test, not hang it.
    ``expire_at(deadline, awaited)`` bounds the whole conversation: past it, ``read`` and
    ``waiting`` raise ``TapExpired``. At most ``limit`` unread bytes are kept; past that the
    next read raises ``TapOverflow`` (the capture still has every byte).
    """

    def __init__(
        self,
        port: BoardPort,
        max_block: float = 10.0,
        deadline: Deadline | None = None,
        awaited: str = "the REPL",
        limit: int = BUFFER_LIMIT,
    ) -> None:
        self.port = port
        self.max_block = max_block
        self.limit = limit
        self._deadline = deadline if deadline is not None else Deadline(None)
        self._awaited = awaited
        self._received = 0  # since the deadline was set
        self._overflowed = False
        self._buffer = bytearray()
        self._failed: CaptureFailed | None = None
        self._cond = threading.Condition()
        with _registry_lock:
            self.id = f"{port.name}-{next(_ids)}"
            _taps[self.id] = self
        port.add_sink(self)

    @property
    def url(self) -> str:
        return f"{SCHEME}://{self.id}"

    def expire_at(self, deadline: Deadline, awaited: str) -> None:
        """From now on, reads end at ``deadline``; ``awaited`` names the work in the error."""
        with self._cond:
            self._deadline = deadline
            self._awaited = awaited
            self._received = 0
            self._cond.notify_all()

    def feed(self, t: float, data: bytes) -> None:
        with self._cond:
            self._received += len(data)
            self._buffer += data
            if len(self._buffer) > self.limit:
                # Keep the newest bytes, where a prompt would be; the next read reports it.
                del self._buffer[: len(self._buffer) - self.limit]
                self._overflowed = True
            self._cond.notify_all()

    def port_lost(self, t: float, error: BaseException) -> None:
        with self._cond:
            self._cond.notify_all()

    def sink_failed(self, failure: CaptureFailed) -> None:
        with self._cond:
            self._failed = failure
            self._cond.notify_all()

    def __repr__(self) -> str:
        return f"Tap({self.url})"

    def waiting(self) -> int:
        with self._cond:
            self._check()
            return len(self._buffer)

    def _check(self) -> None:
        """Raise what ends the conversation now; called with the lock held."""
        if self._failed is not None:
            raise serial.SerialException(str(self._failed)) from self._failed
        if self.port.lost is not None:
            raise serial.SerialException(f"port {self.port.url} lost: {self.port.lost}")
        if self._overflowed:
            raise TapOverflow(self.port.name, self._awaited, self.limit)
        if self._deadline.expired:
            raise TapExpired(self.port.name, self._awaited, self._deadline.timeout, self._received)

    def read(self, size: int, timeout: float | None) -> bytes:
        bound = self.max_block if timeout is None else min(timeout, self.max_block)
        deadline = Deadline(bound)
        with self._cond:
            while True:
                self._check()
                if len(self._buffer) >= size:
                    break
                left = deadline.remaining_or(bound)
                if left <= 0:
                    break
                self._cond.wait(self._deadline.remaining_or(left))
            data = bytes(self._buffer[:size])
            del self._buffer[:size]
            return data

    def discard_input(self) -> None:
        with self._cond:
            self._buffer.clear()

    def write(self, data: bytes) -> None:
        self.port.write(data)

    def close(self) -> None:
        self.port.remove_sink(self)
        with _registry_lock:
            _taps.pop(self.id, None)


def lookup(tap_id: str) -> Tap:
    with _registry_lock:
        tap = _taps.get(tap_id)
    if tap is None:
        raise serial.SerialException(f"no open rig tap {tap_id!r}")
    return tap
