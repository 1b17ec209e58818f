"""The deploy's conversation with the board in the raw REPL: one probe, then the pieces.

Round one (``probe``) makes the directories, hashes every planned file on the board and asks
whether the board can inflate. Then each piece (``rig.deploy.pieces``) is one round trip, sent
as source through mpremote's ``exec`` (raw-paste mode and its flow control when the board has
it, mpremote's paced raw REPL when it does not); the first also defines the board's writer and
the last has the written files hashed again, so a deploy that writes costs two round trips plus
one per extra 8 kB of files.
"""

from __future__ import annotations

import ast
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
    the sha256 of the file there, None when missing; ``inflate``: the board has ``deflate``."""

    inflate: bool
    hashes: dict[str, str | None]


def _board_said(e: TransportError) -> str:
    if isinstance(e, TransportExecError):
        lines = e.error_output.strip().splitlines()
        return lines[-1] if lines else "an error without a message"
    return str(e)


def _named(board_path: str, origin: str) -> str:
    return f"{board_path} (from {origin})" if origin else board_path


def _answer(out: bytes, what: str) -> object:
    try:
        return ast.literal_eval(out.decode().strip())
    except (ValueError, SyntaxError, UnicodeDecodeError) as e:
        raise DeployError(f"{what}: the board answered {out[-200:]!r}") from e


def probe(transport: SerialTransport, paths: Sequence[str], directories: Sequence[str]) -> BoardFiles:
    """Make ``directories`` and hash ``paths`` (all absolute board paths) in one round trip."""
    head = f"_D={list(directories)!r}\n_P={list(paths)!r}\n".encode()
    try:
        out = transport.exec(head + board_script("deploy_probe"))
    except TransportError as e:
        raise DeployError(f"could not read file hashes from the board: {_board_said(e)}") from e
    answer = _answer(out, "could not read file hashes from the board")
    if not (isinstance(answer, tuple) and len(answer) == 2 and isinstance(answer[1], list)):
        raise DeployError(f"could not read file hashes from the board: it answered {answer!r}")
    inflate, hashes = answer
    if len(hashes) != len(paths):
        raise DeployError(f"the board hashed {len(hashes)} files of {len(paths)}")
    return BoardFiles(bool(inflate), dict(zip(paths, hashes, strict=True)))


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
            source += b"print(repr([_h(_P[i]) for i in %s]))\n" % repr(tuple(rehash)).encode()
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
    hashes = _answer(out, "could not read the written files' hashes from the board")
    if not isinstance(hashes, list) or len(hashes) != len(rehash):
        raise DeployError(f"the board hashed the written files as {hashes!r}")
    return hashes, sent
