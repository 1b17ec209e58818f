"""The deploy's conversation with the board in the raw REPL: one probe, then the pieces.

Round one (``probe``) makes the directories, hashes every planned file on the board and asks
whether the board can inflate and how much heap it has free. Then each piece
(``rig.deploy.pieces``) is one round trip, sent as source through mpremote's ``exec``
(raw-paste mode and its flow control when the board has it, mpremote's paced raw REPL when it
does not); the first also defines the board's writer and
the last has the written files hashed again, so a deploy that writes costs two round trips plus
one per extra piece. Answers come back a line per file, never as one big literal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mpremote.transport import TransportError, TransportExecError
from mpremote.transport_serial import SerialTransport

from rig.deploy.board_script import board_script
from rig.deploy.pieces import Piece
from rig.errors import DeployError


@dataclass(frozen=True)
class BoardFiles:
    """What the probe found: ``hashes`` maps each planned board path (with its leading ``/``) to
    the sha256 of the file there, None when missing; ``inflate``: the board has ``deflate``;
    ``free``: its free heap in bytes, -1 when the port does not say."""

    inflate: bool
    free: int
    hashes: dict[str, str | None]


def _board_said(e: TransportError) -> str:
    if isinstance(e, TransportExecError):
        lines = e.error_output.strip().splitlines()
        return lines[-1] if lines else "an error without a message"
    return str(e)


def _named(board_path: str, origin: str) -> str:
    return f"{board_path} (from {origin})" if origin else board_path


def probe(transport: SerialTransport, paths: Sequence[str], directories: Sequence[str]) -> BoardFiles:
    """Make ``directories`` and hash ``paths`` (all absolute board paths) in one round trip."""
    head = f"_D={list(directories)!r}\n_P={list(paths)!r}\n".encode()
    try:
        out = transport.exec(head + board_script("deploy_probe"))
    except TransportError as e:
        raise DeployError(f"could not read file hashes from the board: {_board_said(e)}") from e
    lines = out.decode(errors="replace").split()
    try:
        inflate, free = int(lines[0]), int(lines[1])
    except (IndexError, ValueError) as e:
        raise DeployError(f"could not read file hashes from the board: it answered {out[-200:]!r}") from e
    hashes = _hashes(lines[2:], len(paths), out)
    return BoardFiles(bool(inflate), free, dict(zip(paths, hashes, strict=True)))


def _hashes(words: list[str], expected: int, out: bytes) -> list[str | None]:
    """The board's hash lines: a sha256 in hex, or ``-`` for none."""
    if len(words) != expected or not all(w == "-" or len(w) == 64 for w in words):
        raise DeployError(f"the board answered {len(words)} hashes for {expected} files: {out[-200:]!r}")
    return [None if w == "-" else w for w in words]


def send(
    transport: SerialTransport,
    pieces: Sequence[Piece],
    rehash: Sequence[int],
    origin: Callable[[str], str],
    after_piece: Callable[[Piece], None] | None = None,
) -> tuple[list[str | None], int]:
    """Write ``pieces`` on a board that ``probe`` ran on, and hash again the files at ``rehash``
    (indexes into the probe's paths). Returns those hashes and the bytes of source sent.
    ``origin(board_path)`` names a file's source for errors; ``after_piece`` runs after each piece."""
    sent = 0
    out = b""
    for number, piece in enumerate(pieces):
        source = piece.call()
        if number == 0:
            source = board_script("deploy_put") + source
        if number == len(pieces) - 1:
            source += b"for i in %s:\n print(_h(_P[i]) or '-')\n" % repr(tuple(rehash)).encode()
        try:
            out = transport.exec(source)
        except TransportError as e:
            files = ", ".join(_named(s.board_path, origin(s.board_path)) for s in piece.spans)
            how = "deflated" if piece.compressed else "as they are"
            raise DeployError(f"writing {files} ({how}) failed on the board: {_board_said(e)}") from e
        sent += len(source)
        if after_piece is not None:
            after_piece(piece)
    if not pieces:
        return [], 0
    return _hashes(out.decode(errors="replace").split(), len(rehash), out), sent
