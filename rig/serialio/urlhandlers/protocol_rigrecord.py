"""pyserial URL handler ``rigrecord://<name>``: a port that records its modem lines.

What an ESP32's auto-reset circuit would see cannot be observed on a pty (it has no DTR/RTS),
so this port keeps every DTR/RTS change, including those made before ``open()``, in
``RECORDINGS[name]`` as ``(event, value)`` tuples. Reads return nothing; writes are kept.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

import serial
from serial.serialutil import SerialBase

RECORDINGS: dict[str, list[tuple[str, Any]]] = {}
WRITTEN: dict[str, bytearray] = {}


class Serial(SerialBase):
    _name = ""
    _closed = threading.Event()

    def _record(self, event: str, value: Any) -> None:
        name = urlsplit(self.port or "").netloc or "default"
        RECORDINGS.setdefault(name, []).append((event, value))

    def open(self) -> None:
        if self.port is None:
            raise serial.SerialException("port must be configured before it can be used")
        self._name = urlsplit(self.port).netloc or "default"
        self._closed = threading.Event()
        self._record("open", True)
        self.is_open = True

    def close(self) -> None:
        if self.is_open:
            self._record("close", True)
        self.is_open = False
        self._closed.set()

    def _reconfigure_port(self, *args: Any, **kwargs: Any) -> None:
        pass

    def _update_dtr_state(self) -> None:
        self._record("dtr", self._dtr_state)

    def _update_rts_state(self) -> None:
        self._record("rts", self._rts_state)

    def _update_break_state(self) -> None:
        pass

    # pyserial applies DTR/RTS only once open; record what is asked before open too, since
    # that is exactly what decides whether opening the port resets an ESP32.
    @property
    def dtr(self) -> bool:
        return bool(self._dtr_state)

    @dtr.setter
    def dtr(self, value: bool) -> None:
        self._dtr_state = value
        self._record("dtr" if self.is_open else "dtr-before-open", value)

    @property
    def rts(self) -> bool:
        return bool(self._rts_state)

    @rts.setter
    def rts(self, value: bool) -> None:
        self._rts_state = value
        self._record("rts" if self.is_open else "rts-before-open", value)

    @property
    def in_waiting(self) -> int:
        return 0

    def read(self, size: int = 1) -> bytes:
        # Block like a quiet board until closed, bounded by the timeout if one is set.
        self._closed.wait(self.timeout if self.timeout is not None else None)
        return b""

    def cancel_read(self) -> None:
        self._closed.set()

    def write(self, data: bytes) -> int:  # type: ignore[override]  # pyserial takes any buffer
        WRITTEN.setdefault(self._name, bytearray()).extend(data)
        return len(data)

    def reset_input_buffer(self) -> None:
        pass

    def reset_output_buffer(self) -> None:
        pass
