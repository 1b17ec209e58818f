"""A board without MicroPython's ``deflate`` module (older than 1.21, or built without it) gets
the same files, sent as they are.

The board is the real unix port, which has ``deflate``: its boot.py hides the module from
``import``, as a board without it would answer (``ImportError``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rig.board import Board
from rig.deploy.plan import DeployItem, DeployPlan
from rig.deploy.sync import sync

HIDE_DEFLATE = """\
import builtins
_import = builtins.__import__
def _no_deflate(name, *args):
    if name == 'deflate':
        raise ImportError("no module named 'deflate'")
    return _import(name, *args)
builtins.__import__ = _no_deflate
"""


@pytest.fixture
def flash(tmp_path: Path) -> Path:
    """The board's flash, holding the boot.py that hides ``deflate`` before the board starts."""
    path = tmp_path / "flash"
    path.mkdir()
    (path / "boot.py").write_text(HIDE_DEFLATE)
    return path


def test_without_deflate_the_files_go_as_they_are_and_land_the_same(
    flash: Path, virtual_board: Board
) -> None:
    with virtual_board.repl() as transport:  # the board really lacks it, as seen from code
        assert transport.exec("try:\n import deflate\nexcept ImportError:\n print('none')").strip() == b"none"
    items = [
        DeployItem("main.py", b"import lib.m\nprint('running', lib.m.M)\n"),
        DeployItem("lib/m.py", b"M = 'without deflate'\n" * 500),
        DeployItem("lib/raw.bin", bytes(range(256)) * 3),
    ]

    report = sync(virtual_board, DeployPlan(items), reset=False)

    assert report.transfer == "stored"
    assert {i.board_path: (flash / i.board_path).read_bytes() for i in items} == {
        i.board_path: i.data for i in items
    }
    # Uncompressed: the files' bytes, the escapes (a newline costs two) and the writer.
    assert report.bytes_sent < 1.15 * sum(len(i.data) for i in items), report.summary()
