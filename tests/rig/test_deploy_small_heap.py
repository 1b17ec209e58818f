"""A board with little free RAM gets the firmware too: the probe reports the free heap and the
host cuts smaller pieces with a smaller inflate window (``rig.deploy.pieces.SIZES``).

The board is the unix port started with ``-X heapsize``: the firmware's files (about 45 kB)
deploy on a 16 kB heap, as they do with mpremote's chunked copy; 8 kB pieces would not fit.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rig.board import Board, VirtualBoard
from rig.board.virtual import find_micropython
from rig.deploy.pieces import PIECE_BYTES, sizes_for
from rig.deploy.plan import make_plan
from rig.deploy.sync import sync
from rig.firmware_config import FirmwareConfig

REPO = Path(__file__).resolve().parents[2]
HEAP = "16k"


@pytest.fixture
def virtual_board(flash: Path, tmp_path: Path) -> Iterator[Board]:
    """The conftest's virtual board, on a MicroPython with a 16 kB heap."""
    small = tmp_path / "micropython-small-heap"
    small.write_text(f'#!/bin/sh\nexec {find_micropython()} -X heapsize={HEAP} "$@"\n')
    small.chmod(0o755)
    board = Board(VirtualBoard("vsmall", flash, micropython=str(small)), session_log=tmp_path / "serial.log")
    board.connect()
    yield board
    board.close()


def test_the_firmware_lands_whole_on_a_board_with_a_small_heap(flash: Path, virtual_board: Board) -> None:
    with virtual_board.repl() as transport:
        free = int(transport.exec("import gc\ngc.collect()\nprint(gc.mem_free())"))
    assert sizes_for(free)[0] < PIECE_BYTES  # the small sizes are the ones under test
    config = FirmwareConfig("127.0.0.1", 1883, "small", "rig/small")
    plan = make_plan(REPO / "firmware", [], config.file_bytes())  # the app's files, no dependency cache

    report = sync(virtual_board, plan, reset=False)

    assert report.transfer == "deflate", report.summary()
    assert {i.board_path: (flash / i.board_path).read_bytes() for i in plan.items} == {
        i.board_path: i.data for i in plan.items
    }


def test_sizes_grow_with_the_free_heap() -> None:
    assert sizes_for(-1) == sizes_for(200_000) == (PIECE_BYTES, 12)
    assert sizes_for(10_000) == (1024, 9)
    pieces = [sizes_for(free)[0] for free in range(0, 64_000, 1000)]
    assert pieces == sorted(pieces)
