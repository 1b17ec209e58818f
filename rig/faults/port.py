"""The board's serial port unplugged, and back under a new name: a fault of the rig's own link.

The firmware does not see it (its console goes nowhere for a while); the rig must: its capture
reports the port lost, and once the port is back, under whatever name, the rig attaches to it
again and the test goes on reading the board. On the virtual board the supervisor closes the
port's pty and opens another (``unplug`` / ``plug``). A USB board's cable the rig cannot pull.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

from rig.board.board import Board
from rig.faults.base import Expectations, Fault, FaultUnavailable


@runtime_checkable
class Replugging(Protocol):
    """A transport whose port the rig can take away and give back (the virtual board's)."""

    def unplug(self, timeout: float = ...) -> None: ...

    def plug(self, timeout: float = ...) -> str: ...


class PortReenumerated(Fault):
    """Lifecycle: ``start()`` unplugs and waits (bounded) until the rig's capture saw the port go;
    ``end()`` plugs it back and reattaches the board to the new port."""

    name = "port_reenumerated"
    title = "unplugged port"
    where = "serial port"
    expect = Expectations(detected=False, will=False, reconnects=False)

    def __init__(self, board: Board, timeout: float) -> None:
        transport = board.transport
        if not isinstance(transport, Replugging):
            raise FaultUnavailable(
                f"board {board.name}: the rig cannot unplug its port (a USB cable); see "
                "tests/rig/test_reenumeration.py for the rig finding a re-enumerated board"
            )
        self.board = board
        self.transport: Replugging = transport
        self.timeout = timeout
        self.active = False
        self.old_url = transport.port_url
        self.new_url: str | None = None
        # How long the rig took to notice the port had gone (s).
        self.noticed_s: float | None = None

    def start(self) -> None:
        port = self.board.port
        assert port is not None, "the board is not connected"
        self.active = True
        began = time.monotonic()
        self.transport.unplug(self.timeout)
        if port.wait_lost(self.timeout):
            self.noticed_s = time.monotonic() - began

    def end(self) -> None:
        if not self.active:
            return
        self.active = False
        self.new_url = self.transport.plug(self.timeout)
        # What a board that re-enumerated after a reset goes through.
        self.board.reattach(self.timeout)
