"""Lets mpremote talk to a board through the port the rig already holds.

mpremote opens its device with ``serial.serial_for_url``, so the rig registers a pyserial URL
handler, ``rigtap://<tap id>``. A ``Tap`` is a sink of a ``BoardPort``: it queues what the
board sends for mpremote to read, and passes mpremote's writes to the port. The capture goes on
seeing every byte, REPL traffic included, and nothing else ever opens the device.
"""

from __future__ import annotations

import itertools
import threading

import serial

from rig.deadline import Deadline
from rig.serialio.errors import CaptureFailed
from rig.serialio.port import BoardPort

SCHEME = "rigtap"

_taps: dict[str, Tap] = {}
_ids = itertools.count(1)
_registry_lock = threading.Lock()


class Tap:
    """A byte queue between a ``BoardPort`` and one pyserial client.

    Lifecycle: created open and attached to the port; ``url`` is what to hand to mpremote;
    ``close()`` detaches it. ``max_block`` bounds every blocking read, because mpremote reads
    with no timeout at all in places and a wedged board must fail the test, not hang it.
    """

    def __init__(self, port: BoardPort, max_block: float = 10.0) -> None:
        self.port = port
        self.max_block = max_block
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

    def feed(self, t: float, data: bytes) -> None:
        with self._cond:
            self._buffer += data
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
            return len(self._buffer)

    def read(self, size: int, timeout: float | None) -> bytes:
        bound = self.max_block if timeout is None else min(timeout, self.max_block)
        deadline = Deadline(bound)
        with self._cond:
            while len(self._buffer) < size:
                if self._failed is not None:
                    raise serial.SerialException(str(self._failed)) from self._failed
                if self.port.lost is not None:
                    raise serial.SerialException(f"port {self.port.url} lost: {self.port.lost}")
                left = deadline.remaining()
                if left is not None and left <= 0:
                    break
                self._cond.wait(left)
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
