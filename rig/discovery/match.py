"""Which serial port is a given board: matching inventory entries against port records.

Every function takes the port records as an argument (or a function returning them), so the
matching is pure and is tested on fabricated ``ListPortInfo`` records; ``list_serial_ports`` is
the one place that asks the operating system.
"""

from __future__ import annotations

import fnmatch
import os
import time
from collections.abc import Callable, Sequence

from serial.tools.list_ports_common import ListPortInfo

from rig.deadline import Deadline
from rig.discovery.errors import BoardAmbiguous, BoardNotPresent, NoBoardPresent, SeveralBoardsPresent
from rig.inventory.spec import BoardSpec, UsbMatch

_GLOB_CHARS = frozenset("*?[")


def port_matches(match: UsbMatch, record: ListPortInfo) -> bool:
    """Whether every field given in ``match`` agrees with the record (``url`` is not looked at).

    An entry that gives no field at all matches any USB serial port (one with a VID), never a
    built-in UART: with a single board plugged in, that is the board.
    """
    if match.vid is None and match.pid is None and not (match.serial_number or match.location or match.port):
        return record.vid is not None
    if match.vid is not None and record.vid != match.vid:
        return False
    if match.pid is not None and record.pid != match.pid:
        return False
    if match.serial_number is not None and record.serial_number != match.serial_number:
        return False
    if match.location is not None and record.location != match.location:
        return False
    return match.port is None or _device_matches(match.port, record.device)


def _device_matches(pattern: str, device: str) -> bool:
    if _GLOB_CHARS.intersection(pattern):
        return fnmatch.fnmatchcase(device, pattern)
    # A /dev/serial/by-id/... link names the same port as the device it points to; the port list
    # holds only the latter (links are left out so that no port is listed twice).
    return device == pattern or os.path.realpath(pattern) == device


def _searched(spec: BoardSpec) -> str:
    return "any USB serial port" if spec.match.is_empty else spec.match.describe()


def find_port(spec: BoardSpec, ports: Sequence[ListPortInfo]) -> str:
    """The pyserial URL or device path to open for ``spec``, chosen among ``ports``.

    ``match.url`` is returned as is, without looking at the ports. Otherwise exactly one record
    must match: none raises ``BoardNotPresent``, several raise ``BoardAmbiguous``.
    """
    if spec.traits.started_here:
        raise ValueError(f"board {spec.name} is started by the rig: it has no serial port to find")
    if spec.match.url:
        return spec.match.url
    found = [r for r in ports if port_matches(spec.match, r)]
    if not found:
        raise BoardNotPresent(spec.name, spec.origin, _searched(spec), ports)
    if len(found) > 1:
        raise BoardAmbiguous(spec.name, spec.origin, _searched(spec), found)
    return found[0].device


def wait_for_port(
    spec: BoardSpec, lister: Callable[[], list[ListPortInfo]], timeout: float, poll: float = 0.2
) -> str:
    """Poll ``lister`` until ``spec`` is present, for at most ``timeout`` seconds; its port.

    For a board that re-enumerates after a reset (``/dev/ttyACM0`` comes back as ``ttyACM1``):
    matching by serial number finds it under its new name. The caller waits for the old port to
    go away first if it must not get the old name back. On timeout, raises ``BoardNotPresent``
    listing the ports of the last poll; ``BoardAmbiguous`` is raised at once, since waiting does
    not fix an entry that matches several ports.
    """
    deadline = Deadline(timeout)
    while True:
        ports = lister()
        try:
            return find_port(spec, ports)
        except BoardNotPresent:
            if deadline.expired:
                raise BoardNotPresent(
                    spec.name, spec.origin, _searched(spec), ports, waited=timeout
                ) from None
        time.sleep(deadline.remaining_or(poll))


def pick_auto(specs: Sequence[BoardSpec], ports: Sequence[ListPortInfo]) -> BoardSpec:
    """For ``--board auto``: the one inventory board found on a serial port that is plugged in.

    Boards reached by ``url`` are not candidates: their presence cannot be told from the local
    port list, so they are chosen by name. None present raises ``NoBoardPresent`` (what the
    inventory expects and what is plugged in); several raise ``SeveralBoardsPresent``. A board
    whose entry matches several ports counts as present: using it then raises ``BoardAmbiguous``.
    """
    candidates = [s for s in specs if not s.traits.started_here and not s.match.url]
    present: dict[str, str] = {}
    chosen: list[BoardSpec] = []
    for spec in candidates:
        found = [r.device for r in ports if port_matches(spec.match, r)]
        if found:
            present[spec.name] = ", ".join(found)
            chosen.append(spec)
    if not chosen:
        expected = [f"{s.name}{f' ({s.origin})' if s.origin else ''}: {_searched(s)}" for s in candidates]
        raise NoBoardPresent(expected, ports)
    if len(chosen) > 1:
        raise SeveralBoardsPresent(present)
    return chosen[0]
