from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rig.board import Board, VirtualBoard
from rig.serialio import SerialLog


@pytest.fixture
def flash(tmp_path: Path) -> Path:
    path = tmp_path / "flash"
    path.mkdir()
    return path


@pytest.fixture
def virtual_board(flash: Path, tmp_path: Path) -> Iterator[Board]:
    """A connected virtual board on an empty or test-prepared flash directory."""
    board = Board(VirtualBoard("vtest", flash), session_log=tmp_path / "serial.log")
    board.connect()
    yield board
    board.close()


@pytest.fixture
def console(virtual_board: Board, tmp_path: Path) -> Iterator[SerialLog]:
    log = SerialLog(virtual_board.capture, tmp_path / "console.log")
    yield log
    log.close()
