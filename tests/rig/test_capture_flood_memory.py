"""The capture survives a flood: its memory stays bounded, its log keeps every line, and its
waits still end at their deadline."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rig.deadline import Deadline
from rig.serialio import capture as capture_module
from rig.serialio.capture import LONGEST_LINE, SerialCapture

BUDGET = 1024 * 1024


def test_a_flood_of_lines_keeps_the_newest_and_logs_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(capture_module, "MEMORY_BYTES", BUDGET)
    capture = SerialCapture("flood", tmp_path / "session.log")
    chunk = (b"x" * 100 + b"\n") * 1000
    for _ in range(100):  # 10 MB, ten times the budget
        capture.feed(time.time(), chunk)
    kept = capture.lines()
    assert sum(len(ln.text) + capture_module.LINE_OVERHEAD for ln in kept) <= BUDGET * 1.25
    assert capture.next_index == 100_000, "indexes go on counting"
    assert kept[-1].index == 99_999 and kept[0].index > 0
    assert capture.lines(0)[0].index == kept[0].index, "a forgotten start gives the oldest kept"
    capture.close()
    assert len((tmp_path / "session.log").read_text().splitlines()) == 100_000


def test_a_flood_without_newlines_is_cut_into_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capture_module, "MEMORY_BYTES", BUDGET)
    capture = SerialCapture("flood", tmp_path / "session.log")
    for _ in range(1000):  # 10 MB with no newline at all
        capture.feed(time.time(), b"y" * 10_000)
    assert len(capture.partial()) <= LONGEST_LINE
    assert all(len(ln.text) == LONGEST_LINE for ln in capture.lines())
    started = time.monotonic()
    assert capture.wait(lambda ln: ln.text == "never", 0, Deadline(0.5), include_partial=True) is None
    assert time.monotonic() - started < 2.0
    capture.close()
