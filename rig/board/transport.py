"""The protocol every way of reaching a board implements, USB or virtual."""

from __future__ import annotations

from typing import Protocol

from rig.serialio.port import BoardPort


class BoardTransport(Protocol):
    """What sits below the serial port: makes a board present and can cut its power.

    Everything above it (capture, deploy, tests) sees only ``port_url``, a pyserial URL, and
    never asks whether the board is real or virtual.
    """

    name: str

    @property
    def reenumerates(self) -> bool:
        """True if a hard reset takes the board off the bus (native USB): its port then
        vanishes and must be found again, perhaps under a new name."""

    @property
    def kind(self) -> str:
        """ "virtual", "esp32" or "generic": what the board is, which decides how it resets."""

    @property
    def port_url(self) -> str: ...

    def start(self) -> None:
        """Make the board present: after this, ``port_url`` can be opened."""

    def hard_reset(self, port: BoardPort) -> None:
        """Reset with no chance of cleanup: a power cut on the virtual board, the EN line of an
        ESP32. Raises BoardUnreachable where the board has no such means."""

    def rediscover(self, timeout: float) -> str:
        """The port URL after a reset; a board on native USB may come back under a new name."""

    def stop(self) -> None:
        """Release the board; a transport that started processes stops them here, by PID."""

    def process_ids(self) -> list[int]:
        """PIDs of host processes this transport runs (empty for a USB board)."""
