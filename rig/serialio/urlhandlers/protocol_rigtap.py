"""pyserial URL handler for ``rigtap://<id>``: a pyserial port backed by a ``rig.serialio.tap.Tap``.

Modem lines (DTR/RTS) are deliberately inert: mpremote drops both on close, which would reset
an ESP32. Resets are the rig's decision, made on the real port.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import serial
from serial.serialutil import SerialBase

from rig.serialio.tap import SCHEME, Tap, lookup


class Serial(SerialBase):
    _tap: Tap | None = None

    def open(self) -> None:
        if self.port is None:
            raise serial.SerialException("port must be configured before it can be used")
        parts = urlsplit(self.port)
        if parts.scheme != SCHEME:
            raise serial.SerialException(f"expected a {SCHEME}:// URL, got {self.port!r}")
        self._tap = lookup(parts.netloc)
        self.is_open = True

    def close(self) -> None:
        self.is_open = False
        self._tap = None

    def _reconfigure_port(self, *args: Any, **kwargs: Any) -> None:
        pass

    def _update_dtr_state(self) -> None:
        pass

    def _update_rts_state(self) -> None:
        pass

    def _update_break_state(self) -> None:
        pass

    def _need_tap(self) -> Tap:
        if not self.is_open or self._tap is None:
            raise serial.PortNotOpenError()
        return self._tap

    @property
    def in_waiting(self) -> int:
        return self._need_tap().waiting()

    def read(self, size: int = 1) -> bytes:
        return self._need_tap().read(size, self.timeout)

    def write(self, data: bytes) -> int:  # type: ignore[override]  # pyserial takes any buffer; mpremote sends bytes
        self._need_tap().write(bytes(data))
        return len(data)

    def reset_input_buffer(self) -> None:
        self._need_tap().discard_input()

    def reset_output_buffer(self) -> None:
        pass

    @property
    def cts(self) -> bool:
        return True

    @property
    def dsr(self) -> bool:
        return True

    @property
    def ri(self) -> bool:
        return False

    @property
    def cd(self) -> bool:
        return True
