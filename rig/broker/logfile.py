"""Reading a broker's log file while the broker appends to it."""

from __future__ import annotations

import os
from pathlib import Path

# tail() reads at most this much from the end: enough for any sane number of lines.
_TAIL_WINDOW_BYTES = 64 * 1024


def _decode(data: bytes) -> str:
    # A broker may log client ids or payload bytes that are not UTF-8; never fail on them.
    return data.decode("utf-8", errors="replace")


class LogFile:
    """A read-only view of one log file that a broker process appends to.

    It never writes; a missing file reads as empty, since a broker that has not started yet has
    no log.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def size(self) -> int:
        """Bytes in the file now: a mark to wait for events logged after this point."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def lines(self, since: int = 0) -> list[str]:
        """Complete lines from byte offset ``since`` on."""
        try:
            with self.path.open("rb") as f:
                f.seek(since)
                return _decode(f.read()).splitlines()
        except FileNotFoundError:
            return []

    def lines_before(self, end: int) -> tuple[list[str], int]:
        """The complete lines before byte offset ``end`` (a ``size()`` taken earlier), and where
        they end: a line the broker was still writing at ``end`` belongs to what comes after."""
        try:
            with self.path.open("rb") as f:
                data = f.read(end)
        except FileNotFoundError:
            return [], 0
        complete = data.rfind(b"\n") + 1
        return _decode(data[:complete]).splitlines(), complete

    def tail(self, count: int) -> list[str]:
        """The last ``count`` lines."""
        try:
            with self.path.open("rb") as f:
                start = max(0, f.seek(0, os.SEEK_END) - _TAIL_WINDOW_BYTES)
                f.seek(start)
                lines = _decode(f.read()).splitlines()
        except FileNotFoundError:
            return []
        # Reading from mid-file, the first line is probably cut: drop it.
        return (lines[1:] if start else lines)[-count:]


class LogFollower:
    """Reads only what was appended since its last read, and hands out complete lines only.

    Lifecycle: create at a byte offset, call ``read_new_lines()`` as often as needed. A line the
    broker is still writing stays buffered until its newline arrives.
    """

    def __init__(self, path: Path, offset: int = 0) -> None:
        self._path = path
        self._offset = offset
        self._partial = b""

    def read_new_lines(self) -> list[str]:
        try:
            with self._path.open("rb") as f:
                end = f.seek(0, os.SEEK_END)
                if end < self._offset:
                    # Truncated or replaced underneath us: start over rather than read nothing forever.
                    self._offset, self._partial = 0, b""
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self._offset += len(data)
        data = self._partial + data
        complete, _, self._partial = data.rpartition(b"\n")
        return _decode(complete).splitlines() if complete else []
