"""Why a board of the inventory could not be picked among the serial ports present.

``BoardNotPresent`` is an ``InfrastructureError``: the bench lacks the board right now (unplugged,
still re-enumerating), which says nothing about the firmware, so its tests are skipped.

``BoardAmbiguous`` and ``SeveralBoardsPresent`` are ``ConfigError``s: the ports are all there but
the inventory entry (or ``--board auto``) does not single out one board. Retrying cannot fix
that and skipping would hide it; the fix is an edit to ``boards.yaml`` or to the command line.
"""

from __future__ import annotations

from collections.abc import Sequence

from serial.tools.list_ports_common import ListPortInfo

from rig.discovery.ports import describe_ports
from rig.errors import ConfigError, InfrastructureError


class BoardNotPresent(InfrastructureError):
    """No serial port matches the board.

    The first line of the message (``summary``) stands alone, for a skip reason; the following
    lines list every port seen. ``searched`` is what was looked for, ``seen`` one line per port
    (``["no serial ports at all"]`` when there were none), ``ports`` the records themselves.
    """

    def __init__(
        self,
        board: str,
        origin: str,
        searched: str,
        ports: Sequence[ListPortInfo],
        *,
        waited: float | None = None,
        summary: str | None = None,
        expected: Sequence[str] = (),
    ) -> None:
        self.board = board
        self.origin = origin
        self.searched = searched
        self.ports = tuple(ports)
        self.seen = tuple(describe_ports(self.ports))
        self.waited = waited
        if summary is None:
            where = f" ({origin})" if origin else ""
            after = f" after waiting {waited:.1f}s" if waited is not None else ""
            summary = f"board {board}{where} not present{after}: no serial port matches {searched}"
        self.summary = summary
        lines = [summary]
        if expected:
            lines.append("inventory expects:")
            lines.extend(f"  {line}" for line in expected)
        lines.append("serial ports seen:" if self.ports else "serial ports seen: none")
        if self.ports:
            lines.extend(f"  {line}" for line in self.seen)
        super().__init__("\n".join(lines))


class NoBoardPresent(BoardNotPresent):
    """``--board auto`` found none of the inventory's USB boards; ``expected`` lists them."""

    def __init__(self, expected: Sequence[str], ports: Sequence[ListPortInfo]) -> None:
        self.expected = tuple(expected)
        summary = (
            "--board auto: none of the inventory's USB boards is plugged in"
            if self.expected
            else "--board auto: the inventory has no USB board to look for"
        )
        super().__init__(
            "auto",
            "--board auto",
            "; ".join(self.expected) or "nothing",
            ports,
            summary=summary,
            expected=self.expected,
        )


class BoardAmbiguous(ConfigError):
    """Several serial ports match one board's entry; ``candidates`` are their device names."""

    def __init__(self, board: str, origin: str, searched: str, candidates: Sequence[ListPortInfo]) -> None:
        self.board = board
        self.searched = searched
        self.candidates = tuple(r.device for r in candidates)
        listed = "\n".join(f"  {line}" for line in describe_ports(candidates))
        super().__init__(
            origin or "inventory",
            f"{board}.match",
            f"{len(self.candidates)} serial ports match {searched}; add serial_number or location "
            f"to tell them apart:\n{listed}",
        )


class SeveralBoardsPresent(ConfigError):
    """``--board auto`` found more than one inventory board; ``boards`` maps name to port."""

    def __init__(self, boards: dict[str, str]) -> None:
        self.boards = dict(boards)
        named = ", ".join(f"{name} ({port})" for name, port in self.boards.items())
        super().__init__(
            "--board", "auto", f"several inventory boards are plugged in: {named}; choose one by name"
        )
