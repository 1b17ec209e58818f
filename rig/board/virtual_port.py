"""The virtual board's port pty, as its supervisor drives it: made, and written without blocking.

A USB-serial bridge never stalls the board behind it, whoever reads the port (or nobody), and
never makes the host's writes wait for a board that is busy. These helpers give the
supervisor (``rig.board.virtual_supervisor``) the same: bytes for a slow reader are held, up to
a bound, then dropped; bytes for a firmware that does not read are dropped.
"""

from __future__ import annotations

import contextlib
import os
import pty
import tty


def open_port() -> tuple[int, int, str]:
    """A new port pty: (master, our slave fd, the slave's path)."""
    master, slave = pty.openpty()
    # Keeping our own slave fd open means a reader on the master blocks instead of getting
    # EIO whenever no client has the port open: a USB port does not vanish between users.
    tty.setraw(slave)
    os.set_blocking(master, False)
    return master, slave, os.ttyname(slave)


class Outbox:
    """Bytes on their way to the port, held while the port's reader is slow.

    A blocking write would stall the whole board whenever nobody reads the port. A UART keeps
    transmitting into the void instead, so past ``limit`` the oldest bytes are dropped.
    """

    def __init__(self, fd: int, limit: int = 8 * 1024 * 1024) -> None:
        self.fd = fd
        self.limit = limit
        self.chunks: list[bytes] = []
        self.size = 0
        self.dropped = 0

    @property
    def pending(self) -> bool:
        return self.size > 0

    def push(self, data: bytes) -> None:
        if not self.chunks:
            data = data[self._write(data) :]
        if data:
            self.chunks.append(data)
            self.size += len(data)
        while self.size > self.limit:
            self.dropped += len(self.chunks[0])
            self.size -= len(self.chunks.pop(0))

    def flush(self) -> None:
        while self.chunks:
            head = self.chunks[0]
            n = self._write(head)
            self.size -= n
            if n < len(head):
                self.chunks[0] = head[n:]
                return
            self.chunks.pop(0)

    def _write(self, data: bytes) -> int:
        try:
            return os.write(self.fd, data)
        except BlockingIOError:
            return 0


def write_dropping(fd: int, data: bytes) -> None:
    # Input for a firmware that is not reading (busy, or SIGSTOPped) is dropped, as a UART's
    # receive FIFO overflows, rather than blocking the supervisor.
    with contextlib.suppress(OSError):
        os.write(fd, data)
