"""The changed files of a deploy, cut into pieces that each cross the wire in one raw-REPL round.

The files' bytes are laid end to end and cut every ``PIECE_BYTES``; a file may run on into the
next piece. Each piece is one zlib stream of its own when the board can inflate and that is
smaller, else the bytes as they are: one stream for the whole deploy would compress ~5% better,
but the board would have to keep a decompressor alive between round trips, and MicroPython's
``deflate.DeflateIO`` only pulls from a stream it can read to the end. A piece is also what the
board must hold in RAM at once: the piece, the inflate window and a buffer, so both are sized to
the heap the board has free (``sizes_for``).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from rig.deploy.wire_literal import bytes_literal

# File bytes per piece on a roomy board: 8 kB of MicroPython source deflate to ~3 kB.
PIECE_BYTES = 8 * 1024
# A 4 kB window: 4 kB of RAM on the board while it inflates; a 32 kB window would shrink the
# firmware's pieces by only ~2%.
WINDOW_BITS = 12
LEVEL = 9
# Piece and window for a board by the heap it has free (after a collection), largest first. A
# piece costs the board a few times its deflated size while the lexer reads it (the literal's
# buffer grows by doubling, then becomes a bytes object), and the window must be one free block.
# Measured on the unix port with -X heapsize: a 24 kB heap (~19 kB free at the probe) fails 8 kB
# pieces and takes 4 kB ones with a 1 kB window; a 16 kB heap (~12 kB free) needs 1 kB pieces
# and a 512-byte window; a 32 kB heap takes 8 kB pieces with a 4 kB window.
SIZES = ((28 * 1024, PIECE_BYTES, WINDOW_BITS), (18 * 1024, 4 * 1024, 10), (0, 1024, 9))


def sizes_for(free: int) -> tuple[int, int]:
    """(piece bytes, window bits) for a board with ``free`` bytes of heap; -1: it did not say."""
    if free < 0:
        return PIECE_BYTES, WINDOW_BITS
    return next((piece, bits) for least, piece, bits in SIZES if free >= least)


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


def deflate(data: bytes, window_bits: int = WINDOW_BITS) -> bytes:
    """``data`` as a zlib stream the board inflates with a ``2**window_bits`` window (its header
    says so: the board reads the size from there)."""
    compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, window_bits, 9)
    return compressor.compress(data) + compressor.flush()


def pack(
    files: Sequence[tuple[int, str, bytes]],
    inflate: bool,
    piece_bytes: int = PIECE_BYTES,
    window_bits: int = WINDOW_BITS,
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
        packed = deflate(data, window_bits) if inflate else data
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
