"""Lines of serial output: the record, how a chunk is cut into lines, and how a log shows them.

The capture (``rig.serialio.capture``) runs these on the serial reader thread for every chunk a
board sends, so each works on a whole chunk in a few C-level passes, never byte by byte.
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Iterable
from operator import attrgetter
from pathlib import Path
from typing import IO, NamedTuple


class Line(NamedTuple):
    """One line of serial output; ``t`` is the wall-clock arrival of its first byte.

    A named tuple rather than a dataclass: a batch of them is made in one C-level pass
    (``rig.serialio.line_store.Span.lines``), with no Python frame per line.
    """

    # Shadows tuple.index(), which nothing calls on a Line; the name is the capture's API.
    index: int  # type: ignore[assignment]
    t: float
    text: str


_T = attrgetter("t")
_TEXT = attrgetter("text")


def stamp(t: float) -> str:
    """How a log shows an arrival time: local ISO time to the microsecond."""
    return datetime.datetime.fromtimestamp(t).isoformat(timespec="microseconds")


def format_line(line: Line) -> str:
    return f"{stamp(line.t)} {line.text}"


def format_lines(lines: Iterable[Line]) -> str:
    """``format_line`` of each line, each ended by a newline. The stamp is made once per arrival
    time: the lines of one chunk share it, all but the first."""
    parts = []
    for t, run in itertools.groupby(lines, key=_T):
        mark = stamp(t)
        parts.append(f"{mark} " + f"\n{mark} ".join(map(_TEXT, run)) + "\n")
    return "".join(parts)


def decode_line(raw: bytes) -> str:
    return raw.rstrip(b"\r").decode("utf-8", errors="backslashreplace")


def split_lines(complete: bytes) -> list[str]:
    """The lines of ``complete`` (whole lines, the last newline cut off), each decoded and
    stripped of trailing CRs as ``decode_line`` would, in a few C-level passes over the chunk. A
    newline never occurs inside a UTF-8 sequence, so decoding once equals decoding line by line."""
    text = complete.decode("utf-8", errors="backslashreplace")
    if "\r" in text:
        if "\r\r" in text:  # CRs in a row: the exact, slow way
            return [line.rstrip("\r") for line in text.split("\n")]
        text = text.replace("\r\n", "\n").removesuffix("\r")
    return text.split("\n")


def write_flushed(file: IO[str], path: Path | None, text: str) -> None:
    """Append ``text`` to ``file`` and flush it, so the log is whole up to here even if the
    process dies. A failed write (disk full) names the file: the reader's report of a dead
    capture then says which log could not be written."""
    try:
        file.write(text)
        file.flush()
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from e
