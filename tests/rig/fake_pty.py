"""The board's end of a real pty, for testing the serial layer without a board."""

from __future__ import annotations

import os
import pty
import tty


class FakeBoardEnd:
    """The board's end of a pty: what it writes, the rig reads on the slave path. Raw mode, so
    that the line discipline neither echoes nor rewrites what passes."""

    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)

    def say(self, data: bytes) -> None:
        os.write(self.master, data)

    def heard(self, n: int) -> bytes:
        return os.read(self.master, n)

    def unplug(self) -> None:
        os.close(self.master)
        os.close(self.slave)
