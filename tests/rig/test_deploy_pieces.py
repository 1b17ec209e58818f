"""How a deploy's changed files are cut, compressed and written as source (no board needed: the
board's side is tested in test_deploy_transfer.py and test_deploy_fallback.py)."""

from __future__ import annotations

import ast
import random
import zlib

import pytest

from rig.deploy.board_script import board_script
from rig.deploy.pieces import WINDOW_BITS, Span, pack
from rig.deploy.wire_literal import bytes_literal

# What the raw REPL or the board's console would take for a command, never sent bare.
UNSAFE = b"\x00\x01\x02\x03\x04\n\r"


def literal_body(literal: bytes) -> bytes:
    return literal[2:-1]


@pytest.mark.parametrize(
    "data",
    [
        bytes(range(128)),
        b"\x001\x017\x028\x033\x048\x009",  # control bytes followed by (octal) digits
        b"it's \"quoted\" 'twice'\n",
        b"'''\\\r\n\x04",
        b"",
    ],
)
def test_a_literal_means_the_same_bytes_to_python(data: bytes) -> None:
    literal = bytes_literal(data)
    assert ast.literal_eval(literal.decode("ascii")) == data
    assert not set(literal_body(literal)) & set(UNSAFE)


def test_a_literal_costs_about_one_byte_per_byte_of_deflated_data() -> None:
    data = zlib.compress(random.Random(1).randbytes(20000))
    literal = bytes_literal(data)
    assert not set(literal_body(literal).replace(b"\\\\", b"")) & set(UNSAFE)
    assert len(literal) < 1.04 * len(data)  # base64 would be 1.33


def test_files_are_cut_into_pieces_that_carry_each_byte_once() -> None:
    rng = random.Random(2)
    files = [
        (0, "a.py", b"A = 1\n" * 3000),  # 18 kB: three pieces of 8 kB
        (3, "empty.py", b""),
        (5, "b.bin", rng.randbytes(100)),
    ]
    pieces = pack(files, inflate=True)

    spans = [span for piece in pieces for span in piece.spans]
    assert spans == [
        Span(0, "a.py", 8192, append=False),
        Span(0, "a.py", 8192, append=True),
        Span(0, "a.py", 18000 - 2 * 8192, append=True),
        Span(3, "empty.py", 0, append=False),
        Span(5, "b.bin", 100, append=False),
    ]
    joined = b""
    for piece in pieces:
        assert piece.compressed  # each compresses
        inflated = zlib.decompress(piece.payload)
        assert len(inflated) == piece.size
        assert zlib.decompressobj(WINDOW_BITS).decompress(piece.payload) == inflated  # the board's window
        joined += inflated
    assert joined == b"".join(content for _, _, content in files)


def test_bytes_that_do_not_deflate_go_as_they_are() -> None:
    blob = random.Random(3).randbytes(3000)
    (piece,) = pack([(0, "x.bin", blob)], inflate=True)
    assert not piece.compressed and piece.payload == blob
    (stored,) = pack([(0, "x.py", b"X = 1\n" * 100)], inflate=False)
    assert not stored.compressed and stored.payload == b"X = 1\n" * 100
    assert stored.call() == b"_w(" + bytes_literal(stored.payload) + b",0,((0,0,600),))\n"


@pytest.mark.parametrize("name", ["deploy_probe", "deploy_put"])
def test_the_board_scripts_stay_python_once_squeezed(name: str) -> None:
    source = board_script(name)
    compile(source, name, "exec")
    assert b"#" not in source and b"\n\n" not in source
    assert b"\n  import deflate\n" in source or name != "deploy_put"  # one space per level
