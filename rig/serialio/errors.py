"""Errors of the serial layer that ``rig.errors`` does not already name."""

from __future__ import annotations

from pathlib import Path

from rig.errors import InfrastructureError


class CaptureFailed(InfrastructureError):
    """A sink of the serial reader raised (say, disk full while writing the session log), so what
    the board said from then on is not captured: every later wait on that capture raises this at
    once instead of timing out. ``sink`` describes the sink, ``error`` is what it raised."""

    def __init__(self, port: str, sink: str, error: BaseException, context: str = "") -> None:
        self.port = port
        self.sink = sink
        self.error = error
        self.context = context
        super().__init__(
            f"{port}: serial capture failed: {sink} raised {type(error).__name__}: {error}; "
            f"nothing the board said since is captured{context}"
        )

    def while_awaiting(self, awaited: str, log: Path | None) -> CaptureFailed:
        """The same failure, saying which wait it ended and where that wait's log is."""
        where = f"; full log: {log}" if log is not None else ""
        return CaptureFailed(self.port, self.sink, self.error, f" (awaiting {awaited}{where})")
