"""Barriers of several boards (rig.multiboard.barrier): each board's point, one bound; on expiry
the failure names the board that had not arrived, what it showed last and where its log is.
Consoles are real captures fed the lines a board prints; no board, no process."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, cast

import pytest

from rig.multiboard.barrier import BarrierTimeout, Console, wait_all
from rig.multiboard.group import GroupBoard
from rig.serialio.capture import SerialCapture, SerialLog


class ConsoleOnly:
    """What a barrier on the console reads of a ``GroupBoard``: its role, label and serial log."""

    def __init__(self, role: str, name: str, folder: Path) -> None:
        self.role = role
        self.label = f"{role} ({name})"
        self.capture = SerialCapture(name)
        self.serial_log = SerialLog(self.capture, folder / f"{role}-serial.log")

    def prints(self, *lines: str) -> None:
        self.capture.feed(time.time(), "".join(f"{line}\n" for line in lines).encode())


def boards(tmp_path: Path) -> tuple[Any, Any]:
    return ConsoleOnly("a", "vb-1", tmp_path), ConsoleOnly("b", "vb-2", tmp_path)


def test_a_barrier_returns_once_every_board_reached_its_point(tmp_path: Path) -> None:
    a, b = boards(tmp_path)
    a.prints('@rig {"ev": "subscribed", "topic": "rig/vb-1/echo"}')
    b.prints('@rig {"ev": "stats", "handled": 100, "mem_free": 5}')
    points = [
        (cast(GroupBoard, a), Console("subscribed")),
        (cast(GroupBoard, b), Console("stats", {"handled": 100})),
    ]
    arrived = wait_all(points, 1.0)
    assert sorted(arrived) == ["a", "b"]


def test_an_expired_barrier_names_the_board_that_had_not_arrived_and_what_it_showed(tmp_path: Path) -> None:
    a, b = boards(tmp_path)
    a.prints('@rig {"ev": "subscribed", "topic": "rig/vb-1/echo"}')
    b.prints('@rig {"ev": "connected", "session_present": false}', "other operator")
    points = [(cast(GroupBoard, board), Console("subscribed")) for board in (a, b)]
    with pytest.raises(BarrierTimeout) as caught:
        wait_all(points, 0.2)
    message = str(caught.value)
    assert caught.value.missing == ["b (vb-2)"]
    assert "not arrived: b (vb-2)" in message
    assert "board b (vb-2) had not reached console event 'subscribed'; it showed last:" in message
    assert "other operator" in message and str(tmp_path / "b-serial.log") in message
    assert "board a (" not in message  # a arrived: not named
