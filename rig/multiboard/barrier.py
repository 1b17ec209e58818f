"""Barriers: wait until each board of a test has reached a named point, bounded.

A point is what a witness shows of a board: an event line on its console (``Console``), or a
record at the broker about its client (``AtBroker``). ``wait_all`` waits for every board's point
under one bound; on expiry ``BarrierTimeout`` names each board that had not arrived, what it
showed last, and where its whole log is, as every wait of the rig does.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rig.broker.records import BrokerRecord
from rig.deadline import Deadline
from rig.errors import WaitTimeout
from rig.multiboard.group import GroupBoard

# How often a barrier looks again (s): the witnesses are files and lists filled by reader threads.
POLL_S = 0.05
LAST_SEEN = 4


class Point(Protocol):
    """A named point a board may reach, and how to tell."""

    def describe(self) -> str: ...
    def reached(self, board: GroupBoard) -> bool: ...
    def last_seen(self, board: GroupBoard) -> list[str]: ...
    def log(self, board: GroupBoard) -> Path: ...


@dataclass(frozen=True)
class Console:
    """The board printed the ``@rig`` event ``event`` (with ``fields``) during this test."""

    event: str
    fields: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        extra = "".join(f" {k}={v!r}" for k, v in self.fields.items())
        return f"console event {self.event!r}{extra}"

    def reached(self, board: GroupBoard) -> bool:
        return bool(board.serial_log.events(self.event, **self.fields))

    def last_seen(self, board: GroupBoard) -> list[str]:
        return [line.text for line in board.serial_log.lines()[-LAST_SEEN:]]

    def log(self, board: GroupBoard) -> Path:
        return board.serial_log.path


@dataclass(frozen=True)
class AtBroker:
    """The broker recorded a ``kind`` record (``rig.broker.records``: ``Connect``,
    ``Subscribe``...) of the board's client id during this test."""

    kind: type[BrokerRecord]

    def describe(self) -> str:
        return f"a {self.kind.__name__.upper()} at the broker"

    def reached(self, board: GroupBoard) -> bool:
        return bool(board.records.of(self.kind, board.config.client_id))

    def last_seen(self, board: GroupBoard) -> list[str]:
        return list(board.records.tail(LAST_SEEN))

    def log(self, board: GroupBoard) -> Path:
        return Path(board.broker_log.records_path)


class BarrierTimeout(WaitTimeout):
    """Some boards did not reach their point in time: ``missing`` names them (``a (vb-1)``)."""

    def __init__(self, missing: list[tuple[GroupBoard, Point]], timeout: float) -> None:
        self.missing = [b.label for b, _ in missing]
        lines: list[str] = []
        for board, point in missing:
            lines.append(f"board {board.label} had not reached {point.describe()}; it showed last:")
            lines += [f"  {text}" for text in point.last_seen(board)] or ["  (nothing)"]
            lines.append(f"  its log: {point.log(board)}")
        awaited = "every board at its point; not arrived: " + ", ".join(self.missing)
        super().__init__(awaited, timeout, lines, None)


def wait_all(points: Sequence[tuple[GroupBoard, Point]], timeout: float) -> dict[str, float]:
    """Wait until each board has reached its point; returns when each was first seen there
    (wall clock, by role). Raises ``BarrierTimeout`` after ``timeout`` seconds."""
    deadline = Deadline(timeout)
    arrived: dict[str, float] = {}
    while True:
        for board, point in points:
            if board.role not in arrived and point.reached(board):
                arrived[board.role] = time.time()
        missing = [(b, p) for b, p in points if b.role not in arrived]
        if not missing:
            return arrived
        if deadline.expired:
            raise BarrierTimeout(missing, timeout)
        time.sleep(deadline.remaining_or(POLL_S))
