"""The changed files of a deploy, cut into pieces that each cross the wire in one raw-REPL round.

The files' bytes are laid end to end and cut every ``PIECE_BYTES``; a file may run on into the
next piece. Each piece is one zlib stream of its own when the board can inflate and that is
smaller, else the bytes as they are: one stream for the whole deploy would compress ~5% better,
but the board would have to keep a decompressor alive between round trips, and MicroPython's
``deflate.DeflateIO`` only pulls from a stream it can read to the end. A piece is also what the
board must hold in RAM at once: the piece, the inflate window (``2**WINDOW_BITS``) and a buffer.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from rig.deploy.wire_literal import bytes_literal

# File bytes per piece: 8 kB of MicroPython source deflate to ~3 kB, which a small board holds
# (the lexer's buffer and the bytes object, a few times that at most while it parses).
PIECE_BYTES = 8 * 1024
# A 4 kB window: 4 kB of RAM on the board while it inflates; a 32 kB window would shrink the
# firmware's pieces by only ~3%.
WINDOW_BITS = 12
LEVEL = 9


@dataclass(frozen=True)
class Span:
    """``size`` bytes of the planned file number ``index`` (its place in the deploy's path list),
    appended to what an earlier piece wrote of it when ``append``."""

    index: int
    board_path: str
    size: int
    append: bool


@dataclass(frozen=True)
class Piece:
    """One round trip's worth of files: ``payload`` is a zlib stream when ``compressed``."""

    payload: bytes = field(repr=False)
    compressed: bool
    spans: tuple[Span, ...]

    @property
    def size(self) -> int:
        """The file bytes the piece carries."""
        return sum(span.size for span in self.spans)

    def call(self) -> bytes:
        """The line that writes this piece on the board (``_w`` of ``rig/board/mpy/deploy_put.py``)."""
        spans = "".join(f"({s.index},{int(s.append)},{s.size})," for s in self.spans)
        return b"_w(" + bytes_literal(self.payload) + b",%d,(%s))\n" % (self.compressed, spans.encode())


def deflate(data: bytes) -> bytes:
    """``data`` as a zlib stream the board inflates with a ``2**WINDOW_BITS`` window."""
    compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, WINDOW_BITS, 9)
    return compressor.compress(data) + compressor.flush()


def pack(
    files: Sequence[tuple[int, str, bytes]], inflate: bool, piece_bytes: int = PIECE_BYTES
) -> list[Piece]:
    """``files`` (index, board path, content), in order, as pieces; compressed where ``inflate``
    (the board has the deflate module) and compression makes the piece smaller."""
    pieces: list[Piece] = []
    spans: list[Span] = []
    chunks: list[bytes] = []
    room = piece_bytes

    def close() -> None:
        nonlocal room
        data = b"".join(chunks)
        packed = deflate(data) if inflate else data
        compressed = inflate and len(packed) < len(data)
        pieces.append(Piece(packed if compressed else data, compressed, tuple(spans)))
        spans.clear()
        chunks.clear()
        room = piece_bytes

    for index, board_path, content in files:
        offset = 0
        while True:
            take = content[offset : offset + room]
            spans.append(Span(index, board_path, len(take), append=offset > 0))
            chunks.append(take)
            offset += len(take)
            room -= len(take)
            if room == 0:
                close()
            if offset >= len(content):
                break
    if spans:
        close()
    return pieces
