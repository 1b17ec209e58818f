"""The compressed deploy: what reaches the board is byte for byte what was planned, in fewer bytes,
and a transfer that goes wrong is caught on the board's own hashes.

The unix port is the board: its lexer reads the bytes literals, its ``deflate`` inflates, its
``hashlib`` judges. What mpremote sends for the same files is measured by benchmarks/bench_deploy.py.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest

import rig.deploy.pieces
from rig.board import Board
from rig.deploy.plan import DeployItem, DeployPlan
from rig.deploy.sync import sync
from rig.deploy.wire_literal import bytes_literal
from rig.errors import DeployError

# Every byte value, and each control byte the literal escapes with an octal digit after it
# (where the short escape would swallow the digit) and at the very end.
EVERY_BYTE = bytes(range(256)) + b"\x001\x017\x028\x033\x04" + b"\x00"


def source_tree() -> list[DeployItem]:
    """Source that deflates, a file longer than a piece, binary that does not deflate, an
    empty file and nested folders."""
    rng = random.Random(18)
    long_source = "".join(f"def handler_{n}(event):\n    return {n} * event\n" for n in range(900)).encode()
    assert len(long_source) > 2 * rig.deploy.pieces.PIECE_BYTES
    return [
        DeployItem("main.py", b"import app.core\nprint('running', app.core.X)\n"),
        DeployItem("app/__init__.py", b""),
        DeployItem("app/core.py", b"X = 1\n" * 200),
        DeployItem("app/handlers.py", long_source),
        DeployItem("lib/blob.bin", rng.randbytes(5000) + EVERY_BYTE),
        DeployItem("lib/deep/er/n.py", b"N = 'nested'\n"),
    ]


def on_flash(flash: Path, items: list[DeployItem]) -> dict[str, bytes]:
    return {
        i.board_path: (flash / i.board_path).read_bytes() for i in items if (flash / i.board_path).is_file()
    }


def test_every_byte_value_survives_the_literal_on_the_board(virtual_board: Board) -> None:
    """The board's lexer, through the raw REPL and its console, reads back exactly the bytes:
    each of the 256 values, escapes followed by octal digits, a control byte at the end."""
    for data in (EVERY_BYTE, EVERY_BYTE + b"'" * 3):  # quoted with ' and with "
        with virtual_board.repl() as transport:
            out = transport.exec(
                b"import hashlib, binascii\nx=" + bytes_literal(data) + b"\n"
                b"print(len(x), binascii.hexlify(hashlib.sha256(x).digest()).decode())\n"
            )
        assert out.split() == [str(len(data)).encode(), hashlib.sha256(data).hexdigest().encode()]


def test_a_cold_deploy_leaves_the_same_bytes_and_sends_fewer(flash: Path, virtual_board: Board) -> None:
    items = source_tree()
    plan = DeployPlan(items)

    calls: list[tuple[str, int, int]] = []
    report = sync(virtual_board, plan, reset=False, progress=lambda *call: calls.append(call))

    assert on_flash(flash, items) == {i.board_path: i.data for i in items}
    assert report.transfer == "deflate"
    # Once per file, when its last piece has landed.
    assert calls == [(path, n, len(items)) for n, path in enumerate(report.written, start=1)]
    assert sorted(report.written) == sorted(i.board_path for i in items)
    total = sum(len(i.data) for i in items)
    assert report.bytes_written == total
    # The random bytes do not deflate (sent as they are), the source does, to well under half.
    assert report.bytes_sent < 0.6 * total, report.summary()


def test_one_change_sends_one_file_and_no_change_nothing(flash: Path, virtual_board: Board) -> None:
    items = source_tree()
    sync(virtual_board, DeployPlan(items), reset=False)

    assert sync(virtual_board, DeployPlan(items), reset=False).bytes_sent == 0

    items[2] = DeployItem("app/core.py", b"X = 2\n" * 200)
    report = sync(virtual_board, DeployPlan(items), reset=False)
    assert report.written == ["app/core.py"]
    # The changed file deflated, with the board's writer defined: fewer bytes than the file.
    assert report.bytes_sent < len(items[2].data), report.summary()
    assert (flash / "app/core.py").read_bytes() == b"X = 2\n" * 200


def test_bytes_flipped_on_the_wire_fail_the_deploy_naming_the_files(
    virtual_board: Board, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flipped byte in a deflated piece: the board's inflate stops on the broken stream (a
    flip it could not see would fail the hash round, below); the deploy stops naming the file."""
    real = bytes_literal

    def flipped(data: bytes) -> bytes:
        wrong = bytearray(data)
        wrong[len(wrong) // 2] ^= 0x10
        return real(bytes(wrong))

    monkeypatch.setattr("rig.deploy.pieces.bytes_literal", flipped)
    plan = DeployPlan([DeployItem("main.py", b"print('hello')\n" * 100, "fw/main.py")])
    with pytest.raises(
        DeployError, match=r"writing main\.py \(from fw/main\.py\) \(deflated\) failed on the board: "
    ):
        sync(virtual_board, plan, reset=False)


def test_a_file_that_lands_with_other_bytes_is_caught_by_the_hash_round(
    flash: Path, virtual_board: Board, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream inflates fine but carries other bytes than planned (one byte off): only the
    board's sha256 of what it wrote can tell, and the error names the file and says so."""
    real = rig.deploy.pieces.deflate

    def off_by_one(data: bytes, window_bits: int) -> bytes:
        return real(data.replace(b"X = 1", b"X = 7", 1), window_bits)

    monkeypatch.setattr(rig.deploy.pieces, "deflate", off_by_one)
    plan = DeployPlan([DeployItem("main.py", b"print(1)\n"), DeployItem("app/core.py", b"X = 1\n" * 200)])
    with pytest.raises(DeployError, match=r"other content than was written for: app/core\.py \(sent deflate"):
        sync(virtual_board, plan, reset=False)
    assert (flash / "app/core.py").read_bytes().startswith(b"X = 7")  # it did land, wrongly
