"""The one deadline type for every bounded wait in the rig."""

from __future__ import annotations

import time


class Deadline:
    """A point in monotonic time that a wait must not pass.

    ``Deadline(5.0)`` expires five seconds after creation. ``Deadline(None)`` never expires and
    exists only for callers that explicitly opt out of a bound; the rig itself never uses it.
    """

    __slots__ = ("_end", "timeout")

    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout
        self._end = None if timeout is None else time.monotonic() + timeout

    def remaining(self) -> float | None:
        """Seconds left (never negative), or None for an unbounded deadline."""
        if self._end is None:
            return None
        return max(0.0, self._end - time.monotonic())

    def remaining_or(self, cap: float) -> float:
        """Seconds left, but at most ``cap``: for loops that wake periodically to check state."""
        left = self.remaining()
        return cap if left is None else min(cap, left)

    @property
    def expired(self) -> bool:
        left = self.remaining()
        return left is not None and left <= 0.0

    def __repr__(self) -> str:
        return f"Deadline(timeout={self.timeout}, remaining={self.remaining()})"
