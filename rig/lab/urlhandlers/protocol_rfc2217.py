"""``rfc2217://``: pyserial's RFC2217 client, accepting a write timeout.

``BoardPort`` bounds every write with ``write_timeout``; pyserial's RFC2217 client refuses the
setting outright (``NotImplementedError`` at open) although its writes are bounded anyway, by
the socket's own timeout. This handler takes the setting and makes it that socket timeout. It is
registered ahead of pyserial's own handlers only in a process that uses a labgrid place; it can
go once ``BoardPort`` sets ``write_timeout`` only on handlers that support it.
"""

from __future__ import annotations

import socket

from serial import rfc2217


class Serial(rfc2217.Serial):
    # pyserial's private attributes, read and set through getattr/setattr: its stubs do not
    # declare them.
    def open(self) -> None:
        super().open()
        sock: socket.socket | None = getattr(self, "_socket", None)
        if self.write_timeout is not None and sock is not None:
            # Bounds sendall; the reader thread's recv already treats a timeout as "no data yet".
            sock.settimeout(self.write_timeout)

    def _reconfigure_port(self) -> None:
        # pyserial refuses any write timeout here; it is applied to the socket in open() instead.
        wanted = self.write_timeout
        setattr(self, "_write_timeout", None)  # noqa: B010
        try:
            getattr(super(), "_reconfigure_port")()  # noqa: B009
        finally:
            setattr(self, "_write_timeout", wanted)  # noqa: B010
